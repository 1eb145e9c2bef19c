import HDF5

/// One epoch of training, as Keras's `History` records it plus timing.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var acc: Double
    public var valLoss: Double
    public var valAcc: Double
    /// Wall-clock seconds of the epoch (training + validation).
    public var seconds: Double
    /// Training samples per second.
    public var samplesPerSecond: Double
    /// Share of the step time spent in MPI (all-reduce), 0…1.
    public var mpiShare: Double
    /// The learning rate of the epoch's last step (Keras logs `learning_rate` so).
    public var learningRate: Double

    init(epoch: Int, loss: Double, acc: Double, valLoss: Double, valAcc: Double,
                seconds: Double, samplesPerSecond: Double, mpiShare: Double, learningRate: Double) {
        self.epoch = epoch; self.loss = loss; self.acc = acc; self.valLoss = valLoss; self.valAcc = valAcc
        self.seconds = seconds; self.samplesPerSecond = samplesPerSecond; self.mpiShare = mpiShare
        self.learningRate = learningRate
    }
}

/// The per-epoch metrics of a run, stored as one float64 dataset per metric.
public struct History: Sendable, Equatable {
    public var records: [EpochRecord] = []
    init(records: [EpochRecord] = []) { self.records = records }

    static var columns: [(String, KeyPath<EpochRecord, Double>)] { [
        ("loss", \.loss), ("acc", \.acc), ("val_loss", \.valLoss), ("val_acc", \.valAcc),
        ("epoch_seconds", \.seconds), ("samples_per_second", \.samplesPerSecond), ("mpi_share", \.mpiShare),
        ("learning_rate", \.learningRate),
    ] }

    /// Writes `epoch` (int64) and the metric columns into `group`.
    func write(to group: H5Group) throws {
        try group.createDataset("epoch", data: records.map { Int64($0.epoch) })
        for (name, kp) in Self.columns {
            try group.createDataset(name, data: records.map { $0[keyPath: kp] })
        }
    }

    /// `name` in `group` as HDF5 names it: /epoch in the root group, /history/epoch in a checkpoint's.
    private static func objectName(_ group: H5Group, _ name: String) -> String {
        group.name.hasSuffix("/") ? group.name + name : group.name + "/" + name
    }

    /// Reads what `write` wrote, checking that every column has one value per epoch. Files written
    /// before `learning_rate` was recorded get `learningRate` (the run's `--lr`) for every epoch.
    static func read(from group: H5Group, learningRate: Double) throws -> History {
        let epochs: [Int64] = try group.dataset("epoch").read()
        for e in epochs where !(1 ... Int64(TrainConfig.maxEpochs)).contains(e) {
            throw TrainingError.badFile(path: group.path, object: Self.objectName(group, "epoch"), detail: "epoch \(e) is out of range")
        }
        // A run's epochs are 1, 2, … n, each once (a resumed run appends to its checkpoint's).
        if let i = epochs.indices.first(where: { epochs[$0] != Int64($0 + 1) }) {
            throw TrainingError.badFile(path: group.path, object: Self.objectName(group, "epoch"),
                                        detail: "row \(i) is epoch \(epochs[i]), not \(i + 1): the epochs must be 1, 2, … in order")
        }
        var cols: [[Double]] = []
        for (name, _) in columns {
            if name == "learning_rate" && !group.exists(name) {
                cols.append([Double](repeating: learningRate, count: epochs.count))
                continue
            }
            let c: [Double] = try group.dataset(name).read()
            guard c.count == epochs.count else {
                throw TrainingError.badFile(path: group.path, object: Self.objectName(group, name),
                                            detail: "holds \(c.count) values for \(epochs.count) epochs")
            }
            cols.append(c)
        }
        var h = History()
        for i in 0 ..< epochs.count {
            h.records.append(EpochRecord(epoch: Int(epochs[i]), loss: cols[0][i], acc: cols[1][i],
                                         valLoss: cols[2][i], valAcc: cols[3][i], seconds: cols[4][i],
                                         samplesPerSecond: cols[5][i], mpiShare: cols[6][i], learningRate: cols[7][i]))
        }
        return h
    }
}
