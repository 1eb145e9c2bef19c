import Dispatch
import Foundation
import HDF5

/// What `rnn-dist prepare` is asked to do.
public struct PrepareOptions: Sendable {
    /// `aclImdb_v1.tar.gz` (any tar libarchive reads), an extracted `aclImdb/`, or a folder holding it.
    var source: String
    /// The dataset file to write (atomically).
    var output: String
    /// Ids run over `0 ..< numWords` (≥ 4); rarer words become 2 (Keras `num_words`).
    var numWords: Int
    /// Row length: each review's last `maxlen` ids, left-padded with 0 (≥ 1).
    var maxlen: Int
    /// Seed of the row permutation (docs/DATASET.md).
    var seed: UInt64

    public init(source: String, output: String, numWords: Int = 10_000, maxlen: Int = 500, seed: UInt64 = 113) {
        self.source = source
        self.output = output
        self.numWords = numWords
        self.maxlen = maxlen
        self.seed = seed
    }
}

/// What `prepare` wrote.
public struct PrepareReport: Sendable {
    public struct SplitReport: Sendable {
        var rows = 0
        var negatives = 0
        var positives = 0
        /// Tokens over all the split's reviews, before truncation.
        var tokens = 0
        /// Reviews longer than `maxlen` ids (start mark included), cut at the front.
        var truncated = 0
        /// Bytes that were not well-formed UTF-8, replaced by separators.
        var invalidUTF8Bytes = 0
        /// Reviews holding at least one such byte.
        var reviewsWithInvalidUTF8 = 0
    }
    var train = SplitReport()
    var test = SplitReport()
    /// Distinct words of the training split (before the `num_words` cut).
    var distinctWords = 0
    /// The `num_words` stored: the requested one, or fewer when the training split has fewer words.
    var numWords = 0
    var requestedNumWords = 0
    var maxlen = 0
    var seed: UInt64 = 0
    var output = ""
    var source = ""
    /// Archive or folder entries that are not labelled reviews (README, imdb.vocab, unsup/…).
    var ignoredEntries = 0
    var seconds = 0.0

    /// A few lines for the terminal.
    public var summary: [String] {
        func split(_ name: String, _ s: SplitReport) -> String {
            "\(name): \(s.rows) reviews (\(s.negatives) neg, \(s.positives) pos), \(s.tokens) tokens, "
                + "\(s.truncated) cut to maxlen \(maxlen)"
        }
        var lines = [split("train", train), split("test", test)]
        var vocab = "vocabulary: \(distinctWords) distinct training words; ids 4..<\(numWords) keep the \(numWords - 4) most frequent"
        if numWords < requestedNumWords { vocab += " (all of them: --num-words \(requestedNumWords) asked for more)" }
        lines.append(vocab)
        let bad = train.invalidUTF8Bytes + test.invalidUTF8Bytes
        lines.append("invalid UTF-8: \(bad) bytes replaced in \(train.reviewsWithInvalidUTF8 + test.reviewsWithInvalidUTF8) reviews")
        lines.append(String(format: "wrote %@ in %.2f s (seed %llu)", output, seconds, seed))
        return lines
    }
}

/// Raw IMDB reviews → the tokenized dataset file of docs/DATASET.md (`rnn-dist prepare`).
///
/// The source is read as a stream on the calling thread; batches of about 1 MB of reviews are
/// tokenized concurrently, each worker interning its words into a batch table and then, under a
/// lock, into the shared table (so text is dropped as soon as it is tokenized). Word ids in those
/// tables are arbitrary; only counts and bytes decide the ranks, so the output is deterministic.
public enum IMDBPreparer {
    /// Runs the whole preparation and writes `options.output` atomically.
    public static func prepare(_ options: PrepareOptions) throws -> PrepareReport {
        let start = DispatchTime.now()
        precondition(options.numWords >= 4 && options.maxlen >= 1, "validated by the caller")
        try checkOutput(options.output)

        let tokens = try tokenizeAll(options)
        defer { tokens.table.release() }

        var report = PrepareReport()
        report.requestedNumWords = options.numWords
        report.maxlen = options.maxlen
        report.seed = options.seed
        report.output = options.output
        report.source = options.source
        report.ignoredEntries = tokens.ignoredEntries

        // Ranks: training count descending, then UTF-8 bytes ascending (docs/DATASET.md).
        let table = tokens.table
        var ranked = (0 ..< table.count).filter { table.counts[$0] > 0 }
        ranked.sort { a, b in
            let ca = table.counts[a], cb = table.counts[b]
            if ca != cb { return ca > cb }
            return bytesLess(table.word(a), table.word(b))
        }
        report.distinctWords = ranked.count
        let kept = min(ranked.count, options.numWords - 4)
        report.numWords = kept + 4
        var finalID = [Int32](repeating: Vocabulary.oovID, count: table.count)
        for r in 0 ..< kept { finalID[ranked[r]] = Int32(r + 4) }
        let words = ranked.prefix(kept).map { String(decoding: table.word($0), as: UTF8.self) }

        var rows: [Split: [RowRef]] = [:]
        for split in Split.allCases {
            rows[split] = try sortedRows(split, tokens.batches, source: options.source)
        }
        var rng = SplitMix64(seed: options.seed)
        let trainOrder = Shuffle.permutation(rows[.train]!.count, using: &rng)
        let testOrder = Shuffle.permutation(rows[.test]!.count, using: &rng)

        let sourceName = options.source.split(separator: "/").last.map(String.init) ?? options.source
        try H5File.writeAtomically(to: options.output) { f in
            try f.setAttribute("format", IMDBDataset.format)
            try f.setAttribute("format_version", Int64(IMDBDataset.formatVersion))
            try f.setAttribute("num_words", report.numWords)
            try f.setAttribute("requested_num_words", options.numWords)
            try f.setAttribute("training_words", report.distinctWords)
            try f.setAttribute("maxlen", options.maxlen)
            try f.setAttribute("index_from", Vocabulary.indexFrom)
            try f.setAttribute("start_char", Int(Vocabulary.startID))
            try f.setAttribute("oov_char", Int(Vocabulary.oovID))
            try f.setAttribute("seed", Int64(bitPattern: options.seed))
            try f.setAttribute("shuffle", Shuffle.version)
            try f.setAttribute("source", sourceName)
            try f.setAttribute("tokenizer", Tokenizer.version)
            try f.writeStringList(Vocabulary.defaultName, words)
            for (split, order) in [(Split.train, trainOrder), (.test, testOrder)] {
                let s = try writeSplit(split, f, rows: rows[split]!, order: order, batches: tokens.batches,
                                       finalID: finalID, maxlen: options.maxlen)
                try f.setAttribute("invalid_utf8_bytes_\(split.rawValue)", s.invalidUTF8Bytes)
                if split == .train { report.train = s } else { report.test = s }
            }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return report
    }

    /// Fails early, before any work, when the output cannot be written where asked.
    private static func checkOutput(_ output: String) throws {
        let dir = output.contains("/") ? String(output[..<output.lastIndex(of: "/")!]) : "."
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "/" : dir, isDirectory: &isDir), isDir.boolValue else {
            throw PrepareError.outputFolderMissing(path: output)
        }
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDir), isDir.boolValue {
            throw PrepareError.outputIsFolder(path: output)
        }
    }

    // MARK: Tokenizing, in parallel

    /// Reviews of one batch, stored back to back.
    struct ReviewBatch: Sendable {
        var keys: [ReviewKey] = []
        var ends: [Int] = []
        var text: [UInt8] = []
    }

    /// One batch, tokenized: per review its last `maxlen` word ids (in the shared table) and counts.
    struct BatchTokens: Sendable {
        var keys: [ReviewKey] = []
        var ends: [Int] = []
        var ids: [UInt32] = []
        var totals: [Int32] = []
        var invalid: [Int32] = []
    }

    /// Everything tokenized; the caller releases `table`.
    struct Tokenized {
        var table: TokenTable
        var batches: [BatchTokens]
        var ignoredEntries: Int
    }

    /// State shared by the workers.
    private final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var table = TokenTable(expectedWords: 1 << 17)
        var batches: [BatchTokens?] = []
    }

    private static let batchBytes = 1 << 20

    private static func tokenizeAll(_ options: PrepareOptions) throws -> Tokenized {
        let shared = Shared()
        let group = DispatchGroup()
        let slots = DispatchSemaphore(value: 3)   // batches in flight: bounds memory
        let keep = options.maxlen
        var batch = ReviewBatch()

        func submit() {
            let b = batch
            batch = ReviewBatch()
            shared.lock.lock()
            let index = shared.batches.count
            shared.batches.append(nil)
            shared.lock.unlock()
            slots.wait()
            DispatchQueue.global().async(group: group) {
                let t = tokenize(b, keep: keep, into: shared)
                shared.lock.lock()
                shared.batches[index] = t
                shared.lock.unlock()
                slots.signal()
            }
        }

        let stats: ReviewSource.Stats
        do {
            stats = try ReviewSource.read(options.source) { key, bytes in
                batch.keys.append(key)
                batch.text.append(contentsOf: bytes)
                batch.ends.append(batch.text.count)
                if batch.text.count >= batchBytes { submit() }
            }
            if !batch.keys.isEmpty { submit() }
        } catch {
            group.wait()
            shared.table.release()
            throw error
        }
        group.wait()
        return Tokenized(table: shared.table, batches: shared.batches.map { $0! }, ignoredEntries: stats.ignoredEntries)
    }

    /// Interns each token into the batch's table; counts only training tokens.
    private struct InternSink: TokenSink {
        var table = TokenTable()
        var current: [UInt32] = []
        var train = true
        mutating func token(_ p: UnsafePointer<UInt8>, _ n: Int) {
            let id = table.intern(p, n, hash: TokenTable.hash(p, n))
            if train { table.add(id, 1) }
            current.append(UInt32(truncatingIfNeeded: id))
        }
    }

    /// Tokenizes one batch (on a worker thread), then merges its words into the shared table.
    private static func tokenize(_ batch: ReviewBatch, keep: Int, into shared: Shared) -> BatchTokens {
        let scanner = TokenScanner()
        var sink = InternSink()
        defer { sink.table.release() }
        var out = BatchTokens()
        out.keys = batch.keys
        out.ends.reserveCapacity(batch.keys.count)
        out.totals.reserveCapacity(batch.keys.count)
        out.invalid.reserveCapacity(batch.keys.count)
        out.ids.reserveCapacity(batch.text.count / 5)
        batch.text.withUnsafeBufferPointer { text in
            var begin = 0
            for (k, key) in batch.keys.enumerated() {
                let end = batch.ends[k]
                sink.current.removeAll(keepingCapacity: true)
                sink.train = key.split == .train
                let bad = scanner.scan(UnsafeBufferPointer(rebasing: text[begin ..< end]), into: &sink)
                out.totals.append(Int32(sink.current.count))
                out.invalid.append(Int32(bad))
                out.ids.append(contentsOf: sink.current.suffix(keep))
                out.ends.append(out.ids.count)
                begin = end
            }
        }
        // Batch ids → shared ids.
        let local = sink.table
        var map = [UInt32](repeating: 0, count: local.count)
        shared.lock.lock()
        for l in 0 ..< local.count {
            let w = local.word(l)
            let g = shared.table.intern(w.baseAddress!, w.count, hash: local.hashes[l])
            shared.table.add(g, local.counts[l])
            map[l] = UInt32(g)
        }
        shared.lock.unlock()
        for i in out.ids.indices { out.ids[i] = map[Int(out.ids[i])] }
        return out
    }

    // MARK: Rows

    /// A review's place: batch and index within it.
    struct RowRef: Sendable {
        var key: ReviewKey
        var batch: Int32
        var index: Int32
    }

    /// The split's reviews sorted by (label neg→pos, review id), duplicates refused.
    private static func sortedRows(_ split: Split, _ batches: [BatchTokens], source: String) throws -> [RowRef] {
        var refs: [RowRef] = []
        for (b, batch) in batches.enumerated() {
            for (i, key) in batch.keys.enumerated() where key.split == split {
                refs.append(RowRef(key: key, batch: Int32(b), index: Int32(i)))
            }
        }
        guard !refs.isEmpty else { throw PrepareError.emptySplit(path: source, split: split.rawValue) }
        guard refs.count <= PrepareLimits.maxReviewsPerSplit else {
            throw PrepareError.unreadable(path: source, detail: "more than \(PrepareLimits.maxReviewsPerSplit) reviews in \(split.rawValue)")
        }
        refs.sort { ($0.key.label, $0.key.id) < ($1.key.label, $1.key.id) }
        for i in 1 ..< refs.count where refs[i].key.label == refs[i - 1].key.label && refs[i].key.id == refs[i - 1].key.id {
            throw PrepareError.duplicateReview(path: source, entry: "\(split.rawValue)/\(refs[i].key.label == 1 ? "pos" : "neg")/\(refs[i].key.id)_*.txt")
        }
        return refs
    }

    /// Builds and writes `/<split>/x`, `y`, `review_id`, `rating`: row r holds sorted review `order[r]`.
    private static func writeSplit(_ split: Split, _ file: H5File, rows: [RowRef], order: [Int], batches: [BatchTokens],
                                   finalID: [Int32], maxlen: Int) throws -> PrepareReport.SplitReport {
        let n = rows.count
        var report = PrepareReport.SplitReport()
        report.rows = n
        var y = [Int8](repeating: 0, count: n), reviewID = [Int32](repeating: 0, count: n), rating = [Int8](repeating: 0, count: n)
        for r in 0 ..< n {
            let ref = rows[order[r]]
            y[r] = Int8(ref.key.label)
            reviewID[r] = ref.key.id
            rating[r] = ref.key.rating
            let b = batches[Int(ref.batch)], i = Int(ref.index)
            let total = Int(b.totals[i])
            report.tokens += total
            if total + 1 > maxlen { report.truncated += 1 }
            report.invalidUTF8Bytes += Int(b.invalid[i])
            if b.invalid[i] > 0 { report.reviewsWithInvalidUTF8 += 1 }
        }
        report.positives = y.reduce(0) { $0 + Int($1) }
        report.negatives = n - report.positives

        let x = [Int32](unsafeUninitializedCapacity: n * maxlen) { buf, count in
            let out = SendablePointer(buf.baseAddress!)
            let blocks = min(n, 64)
            DispatchQueue.concurrentPerform(iterations: blocks) { blk in
                for r in (blk * n / blocks) ..< ((blk + 1) * n / blocks) {
                    let ref = rows[order[r]]
                    let b = batches[Int(ref.batch)], i = Int(ref.index)
                    let lo = i == 0 ? 0 : b.ends[i - 1], hi = b.ends[i]
                    fillRow(out.p + r * maxlen, maxlen: maxlen, ids: b.ids[lo ..< hi], total: Int(b.totals[i]), finalID: finalID)
                }
            }
            count = n * maxlen
        }
        // 16 KiB chunks (8 rows at maxlen 500): a rank reads random rows every batch, and each row
        // read decodes and checksums its whole chunk.
        let chunkRows = max(1, (16 << 10) / (maxlen * 4))
        try file.createDataset("\(split.rawValue)/x", shape: [n, maxlen], data: x, chunkRows: chunkRows)
        try file.createDataset("\(split.rawValue)/y", shape: [n], data: y)
        try file.createDataset("\(split.rawValue)/review_id", shape: [n], data: reviewID)
        try file.createDataset("\(split.rawValue)/rating", shape: [n], data: rating)
        return report
    }

    /// One row: `[1] + ids` cut to its last `maxlen` and left-padded with 0. `ids` holds the
    /// review's last (at most `maxlen`) tokens of `total`.
    @inline(__always)
    private static func fillRow(_ row: UnsafeMutablePointer<Int32>, maxlen: Int, ids: ArraySlice<UInt32>, total: Int,
                                finalID: [Int32]) {
        var c = maxlen
        for t in ids.reversed() {
            c -= 1
            row[c] = finalID[Int(t)]
        }
        if total < maxlen {      // room for the start mark, then padding
            c -= 1
            row[c] = Vocabulary.startID
            (row).update(repeating: Vocabulary.padID, count: c)
        }
    }

    /// Lexicographic byte order (a prefix sorts first).
    private static func bytesLess(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = min(a.count, b.count)
        for k in 0 ..< n where a[k] != b[k] { return a[k] < b[k] }
        return a.count < b.count
    }
}

/// A raw pointer handed to `concurrentPerform` workers that write disjoint rows.
private struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
