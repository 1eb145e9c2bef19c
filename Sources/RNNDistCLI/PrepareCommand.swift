import ArgumentParser
import IMDB

/// `rnn-dist prepare`: raw IMDB reviews → the tokenized dataset file (docs/DATASET.md).
struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Raw IMDB reviews (tarball or aclImdb/ folder) → tokenized HDF5 dataset.",
        discussion: """
        Reads train/ and test/ × pos/ and neg/ (files <id>_<rating>.txt) from the official \
        aclImdb_v1.tar.gz (or any tar libarchive reads) or from an extracted aclImdb/ folder, and \
        ignores everything else (unsup/, urls, imdb.vocab, README). Tokenizes as keras.datasets.imdb, \
        builds the vocabulary from the training split, and writes the dataset atomically: on any \
        error nothing is left at the output path. The layout and the row order are in docs/DATASET.md.
        """)

    @Option(help: "The aclImdb_v1.tar.gz tarball, an extracted aclImdb/ folder, or a folder holding aclImdb/.")
    var source: String

    @Option(name: [.customShort("o"), .long], help: "The dataset file to write (its folder must exist).")
    var output: String

    @Option(parsing: .unconditional, help: "Vocabulary size: ids 0..<num-words; rarer words become 2 (out of vocabulary). At least 4.")
    var numWords = 10_000

    @Option(parsing: .unconditional, help: "Ids per review: the last maxlen are kept, shorter reviews are left-padded with 0. At least 1.")
    var maxlen = 500

    @Option(parsing: .unconditional, help: "Seed of the row permutation of each split (113 as Keras).")
    var seed: UInt64 = 113

    func validate() throws {
        guard numWords >= 4 else {
            throw ValidationError("--num-words must be at least 4 (ids 0–3 are reserved), got \(numWords)")
        }
        guard numWords <= Int(Int32.max) else { throw ValidationError("--num-words must fit in int32, got \(numWords)") }
        guard maxlen >= 1 else { throw ValidationError("--maxlen must be at least 1, got \(maxlen)") }
        guard maxlen <= IMDBDataset.maxMaxlen else {
            throw ValidationError("--maxlen must be at most \(IMDBDataset.maxMaxlen), got \(maxlen)")
        }
    }

    func run() throws {
        let report = try IMDBPreparer.prepare(
            PrepareOptions(source: source, output: output, numWords: numWords, maxlen: maxlen, seed: seed))
        for line in report.summary { print(line) }
    }
}
