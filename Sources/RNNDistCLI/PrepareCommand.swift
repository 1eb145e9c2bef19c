import ArgumentParser
import POSIX
import TextData

extension SourceFormat: ExpressibleByArgument {}

/// `rnn-dist prepare`: raw labelled text → the tokenized dataset file (docs/DATASET.md).
struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Raw labelled text (IMDB, class folders, CSV, TSV, JSON Lines) → tokenized HDF5 dataset.",
        discussion: """
        Sources (the format comes from the path, or from --format):
          aclimdb  the aclImdb_v1.tar.gz tarball or an extracted aclImdb/ folder (train/ and test/ × pos/ and neg/, files <id>_<rating>.txt)
          folders  DIR/<class>/*.txt, one text per file; DIR/train/<class>/ and DIR/test/<class>/ are the splits when both exist
          csv, tsv a header row, then one row per text (RFC 4180 quoting); --text-column and --label-column name the columns
          jsonl    one JSON object per line; --text-column and --label-column name the keys
        A single .gz, .bz2, .xz or .zst file of csv, tsv or jsonl is decompressed as it is read.
        Classes are the distinct training labels, sorted (numerically when all are integers); any number of them. \
        The test set is --test-source, the source's own test/ split, or --test-split of the rows, drawn with --seed. \
        Tokenizes as keras.datasets.imdb, builds the vocabulary from the training rows, and writes the dataset \
        atomically: on any error (one line naming the file and line, exit 2) nothing new is left at the output path (a file already there is unchanged). \
        The layout and the row order are in docs/DATASET.md.
        """)

    @Option(help: "The training data (or both splits): a tarball, a folder, a .csv, .tsv or .jsonl file (optionally compressed).")
    var source: String

    @Option(name: [.customShort("o"), .long], help: "The dataset file to write (its folder must exist).")
    var output: String

    @Option(help: "The source's format: \(SourceFormat.allCases.map(\.rawValue).joined(separator: ", ")) (default: from the path).")
    var format: SourceFormat?

    @Option(help: "CSV/TSV column or JSON key holding the text.")
    var textColumn = "text"

    @Option(help: "CSV/TSV column or JSON key holding the label (a string or an integer).")
    var labelColumn = "label"

    @Option(help: "A separate test set, in the source's format.")
    var testSource: String?

    @Option(parsing: .unconditional, help: "Fraction of the rows drawn as the test set when the source has no test split (default 0.2).")
    var testSplit: Double?

    @Option(parsing: .unconditional, help: "Vocabulary size: ids 0..<num-words; rarer words become 2 (out of vocabulary). 4 … 2147483647.")
    var numWords = 10_000

    @Option(parsing: .unconditional, help: "Ids per text: the last maxlen are kept, shorter texts are left-padded with 0. 1 … 1048576.")
    var maxlen = 500

    @Option(parsing: .unconditional, help: "Seed of the test-split draw and of the row permutation of each split (113 as Keras).")
    var seed: UInt64 = 113

    func validate() throws {
        guard numWords >= 4 else {
            throw ValidationError("--num-words must be at least 4 (ids 0–3 are reserved), got \(numWords)")
        }
        guard numWords <= Int(Int32.max) else { throw ValidationError("--num-words must fit in int32, got \(numWords)") }
        guard maxlen >= 1 else { throw ValidationError("--maxlen must be at least 1, got \(maxlen)") }
        guard maxlen <= TextDataset.maxMaxlen else {
            throw ValidationError("--maxlen must be at most \(TextDataset.maxMaxlen), got \(maxlen)")
        }
        if let f = testSplit, !(f > 0 && f < 1) {
            throw ValidationError("--test-split must be between 0 and 1 (exclusive), got \(f)")
        }
        // Known from the command line alone: a bad command line (64), as export's exclusive flags.
        if testSplit != nil && testSource != nil { throw ValidationError("--test-split and --test-source exclude each other") }
        guard !output.isEmpty else { throw ValidationError("-o is empty: name the dataset file to write") }
        guard !source.isEmpty else { throw ValidationError("--source is empty: name the raw text to read") }
        guard !textColumn.isEmpty, !labelColumn.isEmpty else {
            throw ValidationError("--text-column and --label-column must not be empty")
        }
        guard textColumn != labelColumn else {
            throw ValidationError("--text-column and --label-column name the same column '\(textColumn)'")
        }
    }

    func run() throws {
        SignalTemporaries.removeOnStopSignals()   // Ctrl-C while writing leaves no temporary
        let report: PrepareReport
        do {
            report = try Preparer.prepare(
                PrepareOptions(source: source, output: output, numWords: numWords, maxlen: maxlen, seed: seed,
                               format: format, textColumn: textColumn, labelColumn: labelColumn,
                               testSource: testSource, testSplit: testSplit))
        } catch let e as PrepareError {
            failAndExit(e, code: 2)
        }
        for line in report.summary { print(line) }
    }
}
