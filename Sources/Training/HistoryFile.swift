import HDF5

/// history.h5: one float64 dataset per metric, the config and world size as root attributes.
public enum HistoryFile {
    static let format = "rnn-dist-history"
    static let formatVersion = 1

    static func write(to path: String, history: History, config: TrainConfig, worldSize: Int) throws {
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", format)
            try f.setAttribute("format_version", formatVersion)
            try f.setAttribute("config", config.json())
            try f.setAttribute("world_size", worldSize)
            try f.setAttribute("model", config.model.kindName)
            try history.write(to: f)
        }
    }

    public static func read(from path: String) throws -> (History, TrainConfig, Int) {
        let f = try H5File.open(path, requireComplete: true)
        guard let found = try? f.stringAttribute("format") else {
            // Weights and checkpoints keep their format in /rnn_dist.
            if f.exists("rnn_dist"), let other = try? f.group("rnn_dist").stringAttribute("format") {
                throw TrainingError.badFile(path: path, object: "/rnn_dist@format", detail: "is '\(other)', expected a history file ('\(format)' in /@format)")
            }
            throw TrainingError.badFile(path: path, object: "/@format", detail: "missing: not a history file written by rnn-dist")
        }
        guard found == format else {
            throw TrainingError.badFile(path: path, object: "/@format", detail: "is '\(found)', expected '\(format)'")
        }
        try f.checkFormatVersion(formatVersion, object: "/@format_version")
        let config = try TrainConfig.from(json: try f.stringAttribute("config"), path: path, object: "/@config")
        let worldSize = try f.intAttribute("world_size")
        guard TrainingState.worldSizes.contains(Int(worldSize)) else {
            throw TrainingError.badFile(path: path, object: "/@world_size", detail: "is \(worldSize), expected 1…\(TrainingState.worldSizes.upperBound) ranks")
        }
        return (try History.read(from: f, learningRate: config.learningRate), config, Int(worldSize))
    }
}

