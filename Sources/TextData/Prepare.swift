import Dispatch
import Foundation
import HDF5
#if canImport(Glibc)
import Glibc
import POSIX
#endif

/// Raw labelled text → the tokenized dataset file of docs/DATASET.md (`rnn-dist prepare`).
///
/// The source is read as a stream on the calling thread; batches of about 1 MB of text are
/// tokenized concurrently, each worker interning its words into a batch table and then, under a
/// lock, into the shared table (so text is dropped as soon as it is tokenized). Word ids in those
/// tables are arbitrary; only counts and bytes decide the ranks, so the output is deterministic.
public enum Preparer {
    /// The source as read: its format, and what the options ask of it.
    struct Plan {
        var format: SourceFormat
        /// The test rows are drawn from the source's rows (`--test-split`), not given by it.
        var drawsTest: Bool
        var testFraction: Double

        /// Checks that the options fit the source's format.
        init(_ o: PrepareOptions) throws {
            var exists = stat()
            guard stat(o.source, &exists) == 0 else {
                if errno == ENOENT || errno == ENOTDIR { throw PrepareError.sourceMissing(path: o.source) }
                throw PrepareError.unreadable(path: o.source, detail: SystemError().description)
            }
            format = try o.format ?? SourceFormat.detect(o.source)
            if !format.hasColumns && (o.textColumn != "text" || o.labelColumn != "label") {
                throw PrepareError.badOptions("--text-column and --label-column apply to csv, tsv and jsonl sources, not \(format.rawValue)")
            }
            let ownSplits = format == .aclimdb || (format == .folders && FolderSource.hasSplits(o.source))
            if let t = o.testSource {
                if ownSplits { throw PrepareError.badOptions("--test-source: \(o.source) holds a test split already") }
                if o.testSplit != nil { throw PrepareError.badOptions("--test-split and --test-source exclude each other") }
                guard FileManager.default.fileExists(atPath: t) else { throw PrepareError.sourceMissing(path: t) }
                let kind = try o.format ?? SourceFormat.detect(t)
                guard kind == format else {
                    throw PrepareError.badOptions("--test-source \(t) is \(kind.rawValue), the source is \(format.rawValue)")
                }
            } else if ownSplits, o.testSplit != nil {
                throw PrepareError.badOptions("--test-split: \(o.source) holds a test split already")
            }
            drawsTest = !ownSplits && o.testSource == nil
            testFraction = o.testSplit ?? PrepareOptions.defaultTestSplit
        }
    }

    /// Runs the whole preparation and writes `options.output` atomically.
    public static func prepare(_ options: PrepareOptions) throws -> PrepareReport {
        let start = DispatchTime.now()
        precondition(options.numWords >= 4 && options.maxlen >= 1, "validated by the caller")
        try checkOutput(options.output)
        for (input, flag) in [(options.source, "--source"), (options.testSource, "--test-source")] {
            if let input, sameFile(input, options.output) {
                throw PrepareError.badOptions("-o \(options.output) is the \(flag) \(input): the dataset would replace the text it is made from")
            }
            // A folder source reads the .txt files of its class folders (aclImdb: [aclImdb/]train/pos/…), links
            // followed: an -o that is one of them — by any spelling or link — would be replaced too.
            if let input, folderHoldsFile(input, options.output, suffix: ".txt", depth: 3) {
                throw PrepareError.badOptions("-o \(options.output) is one of the text files of the \(flag) folder \(input) (by this name or through a link): the dataset would replace the text it is made from")
            }
        }
        let plan = try Plan(options)
        let labels = LabelSet(plan.format == .aclimdb ? ["neg", "pos"] : [])
        let context = SourceContext(labels: labels, textColumn: options.textColumn, labelColumn: options.labelColumn)

        let tokens = try tokenizeAll(options, plan: plan, context: context)
        defer { tokens.table.release() }
        var table = tokens.table

        var report = PrepareReport()
        report.requestedNumWords = options.numWords
        report.maxlen = options.maxlen
        report.seed = options.seed
        report.output = options.output
        report.source = options.source
        report.format = plan.format
        report.ignoredEntries = tokens.ignoredEntries

        // The splits' rows in source order; the test rows drawn first when the source has none.
        var rng = SplitMix64(seed: options.seed)
        var rows: [Split: [RowRef]] = [:]
        if plan.drawsTest {
            let all = try sortedRows(.train, tokens.batches, plan: plan, source: options.source)
            (rows[.train], rows[.test]) = try drawTest(all, fraction: plan.testFraction, using: &rng, source: options.source)
            report.testSplit = plan.testFraction
            // The vocabulary counts only training tokens: take the drawn test rows' back out.
            for ref in rows[.test]! {
                let b = tokens.batches[Int(ref.batch)], i = Int(ref.index)
                for id in b.all[(i == 0 ? 0 : b.allEnds[i - 1]) ..< b.allEnds[i]] { table.add(Int(id), -1) }
            }
        } else {
            for split in Split.allCases {
                rows[split] = try sortedRows(split, tokens.batches, plan: plan, source: split == .test ? options.testSource ?? options.source : options.source)
            }
        }
        let classes = try makeClasses(rows: rows, labels: labels, context: context, plan: plan, source: options.source)
        report.classNames = classes.names

        // Ranks: training count descending, then UTF-8 bytes ascending (docs/DATASET.md).
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

        let trainOrder = Shuffle.permutation(rows[.train]!.count, using: &rng)
        let testOrder = Shuffle.permutation(rows[.test]!.count, using: &rng)

        let sourceName = options.source.split(separator: "/").last.map(String.init) ?? options.source
        let layout = SplitLayout(classIndex: classes.index, classCount: classes.names.count,
                                 origins: plan.format == .aclimdb, maxlen: options.maxlen)
        try H5File.writeAtomically(to: options.output) { f in
            try f.setAttribute("format", TextDataset.format)
            try f.setAttribute("format_version", Int64(TextDataset.formatVersion))
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
            try f.setAttribute("source_format", plan.format.rawValue)
            if let fraction = report.testSplit { try f.setAttribute("test_split", fraction) }
            try f.setAttribute("tokenizer", Tokenizer.version)
            try f.setAttribute("num_classes", classes.names.count)
            try f.writeStringList(Vocabulary.defaultName, words)
            try f.writeStringList(TextDataset.classNamesName, classes.names)
            for (split, order) in [(Split.train, trainOrder), (.test, testOrder)] {
                let s = try writeSplit(split, f, rows: rows[split]!, order: order, batches: tokens.batches,
                                       finalID: finalID, layout: layout)
                try f.setAttribute("invalid_utf8_bytes_\(split.rawValue)", s.invalidUTF8Bytes)
                if split == .train { report.train = s } else { report.test = s }
            }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return report
    }

    /// Fails early, before any work, when the output cannot be written where asked.
    private static func checkOutput(_ output: String) throws {
        guard !output.isEmpty else { throw PrepareError.badOptions("-o is empty: name the dataset file to write") }
        let dir = splitFolder(output).folder
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw PrepareError.outputFolderMissing(path: output)
        }
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDir), isDir.boolValue {
            throw PrepareError.outputIsFolder(path: output)
        }
        // A device, a FIFO, a socket (or a link to one) is not replaced by the atomic write's rename.
        do { _ = try atomicWriteTarget(output) } catch let e as NotAFilePath { throw PrepareError.badOptions("-o \(e)") }
    }

    /// The rows of a source without a test split, cut in two (docs/DATASET.md §Splits): a
    /// Fisher–Yates permutation p of the N rows, drawn first from the run's generator; the rows at
    /// p[0 ..< round(f·N)] are the test set. Both parts keep the source order.
    static func drawTest(_ all: [RowRef], fraction: Double, using rng: inout SplitMix64, source: String) throws -> ([RowRef], [RowRef]) {
        let n = all.count
        let testCount = Int((fraction * Double(n)).rounded())
        guard testCount >= 1 && testCount < n else {
            throw PrepareError.badOptions("--test-split \(fraction) of \(n) rows of \(source) leaves \(testCount == 0 ? "no test row" : "no training row")")
        }
        let p = Shuffle.permutation(n, using: &rng)
        var isTest = [Bool](repeating: false, count: n)
        for k in 0 ..< testCount { isTest[p[k]] = true }
        var train: [RowRef] = [], test: [RowRef] = []
        train.reserveCapacity(n - testCount)
        test.reserveCapacity(testCount)
        for (k, ref) in all.enumerated() {
            if isTest[k] { test.append(ref) } else { train.append(ref) }
        }
        return (train, test)
    }

    /// The classes: the training rows' labels, sorted (`LabelSet.classes`); aclImdb's are neg, pos.
    /// Refuses a single class, and a test label no training row has.
    private static func makeClasses(rows: [Split: [RowRef]], labels: LabelSet, context: SourceContext, plan: Plan,
                                    source: String) throws -> (names: [String], index: [Int32]) {
        var trainCounts = [Int](repeating: 0, count: labels.names.count)
        var used = [Bool](repeating: false, count: labels.names.count)
        for ref in rows[.train]! { trainCounts[Int(ref.key.label)] += 1; used[Int(ref.key.label)] = true }
        for ref in rows[.test]! { used[Int(ref.key.label)] = true }
        let classes = labels.classes(trainCounts: trainCounts, used: used, fixed: plan.format == .aclimdb)
        guard plan.format == .aclimdb || classes.names.count >= 2 else {
            throw PrepareError.singleClass(path: source, label: classes.names.first ?? "")
        }
        // aclImdb's two classes are fixed: both must have training reviews.
        if plan.format == .aclimdb, let only = trainCounts.firstIndex(where: { $0 > 0 }), trainCounts.filter({ $0 > 0 }).count == 1 {
            throw PrepareError.singleClass(path: source, label: labels.name(Int32(only)))
        }
        guard classes.names.count <= PrepareLimits.maxClasses else {
            throw PrepareError.tooManyClasses(path: source, count: classes.names.count)
        }
        for ref in rows[.test]! where classes.index[Int(ref.key.label)] < 0 {
            let at = context.location(ref.key)
            throw PrepareError.unseenLabel(path: at.path, line: at.line, label: labels.name(ref.key.label), classes: classes.names)
        }
        return classes
    }

    // MARK: Tokenizing, in parallel

    /// Texts of one batch, stored back to back.
    struct ReviewBatch: Sendable {
        var keys: [RowKey] = []
        var ends: [Int] = []
        var text: [UInt8] = []
    }

    /// One batch, tokenized: per review its last `maxlen` word ids (in the shared table) and counts.
    struct BatchTokens: Sendable {
        var keys: [RowKey] = []
        var ends: [Int] = []
        var ids: [UInt32] = []
        var totals: [Int32] = []
        var invalid: [Int32] = []
        /// Every token id of each text (not only its last `maxlen`), kept while the split of the
        /// rows is not yet known (`Plan.drawsTest`): `all[allEnds[i − 1] ..< allEnds[i]]`.
        var all: [UInt32] = []
        var allEnds: [Int] = []
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

    private static func tokenizeAll(_ options: PrepareOptions, plan: Plan, context: SourceContext) throws -> Tokenized {
        let shared = Shared()
        let group = DispatchGroup()
        let slots = DispatchSemaphore(value: 3)   // batches in flight: bounds memory
        let keep = options.maxlen, keepAll = plan.drawsTest
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
                let t = tokenize(b, keep: keep, keepAll: keepAll, into: shared)
                shared.lock.lock()
                shared.batches[index] = t
                shared.lock.unlock()
                slots.signal()
            }
        }

        var ignored = 0
        do {
            ignored = try readSource(options, plan: plan, context: context) { key, bytes in
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
        return Tokenized(table: shared.table, batches: shared.batches.map { $0! }, ignoredEntries: ignored)
    }

    /// Reads the source (and the test source) row by row; returns the entries ignored.
    private static func readSource(_ o: PrepareOptions, plan: Plan, context: SourceContext, _ body: RowSink) throws -> Int {
        func read(_ path: String, _ split: Split) throws -> Int {
            switch plan.format {
            case .aclimdb:
                // No NUL byte, as in every format (an empty review file is a review without words:
                // the official layout has none, and its readers take one).
                return try AclImdbSource.read(path) { key, text in
                    if let base = text.baseAddress, memchr(base, 0, text.count) != nil {   // the name formed only then
                        try context.refuseNUL(text, path: "\(path): \(key.entryName)", line: 1)
                    }
                    try body(key, text)
                }.ignoredEntries
            case .folders: return try FolderSource.read(path, split: split, context: context, body)
            case .csv: try DelimitedSource.read(path, separator: UInt8(ascii: ","), split: split, context: context, body)
            case .tsv: try DelimitedSource.read(path, separator: 9, split: split, context: context, body)
            case .jsonl: try JSONLinesSource.read(path, split: split, context: context, body)
            }
            return 0
        }
        var ignored = try read(o.source, .train)
        if let t = o.testSource { ignored += try read(t, .test) }
        return ignored
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
    private static func tokenize(_ batch: ReviewBatch, keep: Int, keepAll: Bool, into shared: Shared) -> BatchTokens {
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
                if keepAll {
                    out.all.append(contentsOf: sink.current)
                    out.allEnds.append(out.all.count)
                }
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
        for i in out.all.indices { out.all[i] = map[Int(out.all[i])] }
        return out
    }

    // MARK: Rows

    /// A text's place: batch and index within it.
    struct RowRef: Sendable {
        var key: RowKey
        var batch: Int32
        var index: Int32
    }

    /// The split's rows in source order (`RowKey.order`); aclImdb's duplicates refused.
    private static func sortedRows(_ split: Split, _ batches: [BatchTokens], plan: Plan, source: String) throws -> [RowRef] {
        var refs: [RowRef] = []
        for (b, batch) in batches.enumerated() {
            for (i, key) in batch.keys.enumerated() where key.split == split {
                refs.append(RowRef(key: key, batch: Int32(b), index: Int32(i)))
            }
        }
        guard !refs.isEmpty else {
            if plan.format == .aclimdb { throw PrepareError.emptySplit(path: source, split: split.rawValue) }
            throw PrepareError.badRecord(path: source, line: 0, detail: "holds no rows")
        }
        guard refs.count <= PrepareLimits.maxReviewsPerSplit else {
            throw PrepareError.unreadable(path: source, detail: "more than \(PrepareLimits.maxReviewsPerSplit) rows in \(split.rawValue)")
        }
        refs.sort { $0.key.order < $1.key.order }
        if plan.format == .aclimdb {
            for i in 1 ..< refs.count where refs[i].key.order == refs[i - 1].key.order {
                throw PrepareError.duplicateReview(path: source, entry: "\(split.rawValue)/\(refs[i].key.label == 1 ? "pos" : "neg")/\(refs[i].key.id)_*.txt")
            }
        }
        return refs
    }

    /// How rows become file contents: each label id's class, whether aclImdb origins are stored.
    struct SplitLayout {
        var classIndex: [Int32]
        var classCount: Int
        var origins: Bool
        var maxlen: Int
    }

    /// Builds and writes `/<split>/x`, `y` (and aclImdb's `review_id`, `rating`): row r holds
    /// sorted row `order[r]`. `y` is int8 up to 127 classes, int32 above.
    private static func writeSplit(_ split: Split, _ file: H5File, rows: [RowRef], order: [Int], batches: [BatchTokens],
                                   finalID: [Int32], layout: SplitLayout) throws -> PrepareReport.SplitReport {
        let n = rows.count, maxlen = layout.maxlen
        var report = PrepareReport.SplitReport()
        report.rows = n
        report.classCounts = [Int](repeating: 0, count: layout.classCount)
        var y = [Int32](repeating: 0, count: n), reviewID = [Int32](repeating: 0, count: n), rating = [Int8](repeating: 0, count: n)
        for r in 0 ..< n {
            let ref = rows[order[r]]
            y[r] = layout.classIndex[Int(ref.key.label)]
            report.classCounts[Int(y[r])] += 1
            reviewID[r] = ref.key.id
            rating[r] = ref.key.rating
            let b = batches[Int(ref.batch)], i = Int(ref.index)
            let total = Int(b.totals[i])
            report.tokens += total
            if total + 1 > maxlen { report.truncated += 1 }
            report.invalidUTF8Bytes += Int(b.invalid[i])
            if b.invalid[i] > 0 { report.reviewsWithInvalidUTF8 += 1 }
        }

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
        if split == .train { try file.setAttribute(TextDataset.trainChecksumName, TextDataset.checksum(x: x, y: y)) }
        // 16 KiB chunks (8 rows at maxlen 500): a rank reads random rows every batch, and each row
        // read decodes and checksums its whole chunk.
        let chunkRows = max(1, (16 << 10) / (maxlen * 4))
        try file.createDataset("\(split.rawValue)/x", shape: [n, maxlen], data: x, chunkRows: chunkRows, blockChecksums: true)
        if layout.classCount <= Int(Int8.max) {
            try file.createDataset("\(split.rawValue)/y", shape: [n], data: y.map { Int8($0) }, blockChecksums: true)
        } else {
            try file.createDataset("\(split.rawValue)/y", shape: [n], data: y, blockChecksums: true)
        }
        if layout.origins {
            try file.createDataset("\(split.rawValue)/review_id", shape: [n], data: reviewID, blockChecksums: true)
            try file.createDataset("\(split.rawValue)/rating", shape: [n], data: rating, blockChecksums: true)
        }
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
