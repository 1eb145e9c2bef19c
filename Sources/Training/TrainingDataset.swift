import Foundation
import TextData

/// A split of the dataset file as a `RowSource`: reads only the rows asked for.
public struct DatasetRowSource: RowSource {
    let split: DatasetSplit
    public var rowCount: Int { split.count }
    public var maxlen: Int { split.maxlen }

    /// Reads `range` straight into `ids`, checking every id and label.
    public func read(range: Range<Int>, into ids: inout [Int32]) throws -> [Float] {
        try split.read(rows: range, into: &ids).map { Float($0) }
    }

    /// Reads `rows` in ascending order (neighbouring rows share chunks), then restores the order asked.
    public func read(rows: [Int]) throws -> (x: [Int32], y: [Float]) {
        let order = rows.indices.sorted { rows[$0] < rows[$1] }
        let sorted = order.map { rows[$0] }
        let got = try split.read(rows: sorted)
        let T = maxlen
        var x = [Int32](repeating: 0, count: rows.count * T)
        var y = [Float](repeating: 0, count: rows.count)
        x.withUnsafeMutableBufferPointer { xp in
            got.x.withUnsafeBufferPointer { gp in
                for (k, dest) in order.enumerated() {
                    (xp.baseAddress! + dest * T).update(from: gp.baseAddress! + k * T, count: T)
                    y[dest] = Float(got.y[k])
                }
            }
        }
        return (x, y)
    }
}

/// The dataset as the trainer and evaluator see it.
public struct TrainingDataset {
    let file: TextDataset
    public let train: DatasetRowSource
    public let test: DatasetRowSource
    public var numWords: Int { file.numWords }
    public var maxlen: Int { file.maxlen }
    public var seed: Int64 { file.seed }
    public var trainChecksum: String? { file.trainChecksum }
    public var vocabulary: [String] { file.vocabulary.words }
    /// The class names; labels are indices into them.
    public var classNames: [String] { file.classNames }

    /// The tokenizer settings `predict` needs, stored in weights files as JSON.
    public var tokenizerJSON: String {
        // The tokenizer the dataset names: weights from a dataset of another tokenizer are refused on reading.
        WeightsMetadata.tokenizerJSON(numWords: numWords, maxlen: maxlen,
                                      extra: ["tokenizer": file.tokenizer, "dataset_seed": seed, "source": file.source])
    }

    public static func open(_ path: String) throws -> TrainingDataset {
        let f = try TextDataset(path: path)
        return TrainingDataset(file: f, train: DatasetRowSource(split: f.split(.train)), test: DatasetRowSource(split: f.split(.test)))
    }
}
