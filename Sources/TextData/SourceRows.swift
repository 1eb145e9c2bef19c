import Foundation

// What every source hands to `prepare`: a key per row (split, label, order, where it came from) with
// the row's text bytes, and the labels seen, from which the classes are made.

/// Receives one row: its key and its text's bytes (valid during the call only).
typealias RowSink = (RowKey, UnsafeBufferPointer<UInt8>) throws -> Void

/// Where one row came from and what it is, as the sources hand it to `prepare` with its text.
struct RowKey: Sendable {
    /// `.train` also for rows of a source without splits, before `--test-split` draws the test rows.
    var split: Split
    /// The row's label, an id in the run's `LabelSet` (aclImdb: 0 = neg, 1 = pos).
    var label: Int32
    /// The row's place within its split before the shuffle: aclImdb sorts by (label, review id),
    /// the other sources keep their own order (a running count).
    var order: Int64
    /// aclImdb only: the `<id>` and `<rating>` of `<id>_<rating>.txt`.
    var id: Int32 = 0
    var rating: Int8 = 0
    /// For messages: the source file (an index into the source's file list) and its 1-based line
    /// (0 when the row is a whole file).
    var file: Int32 = 0
    var line: Int32 = 0
}

/// The distinct labels a source's rows carry, interned in order of first appearance. The classes
/// (`classes(…)`) are made from them once every row has been read and the splits are known.
final class LabelSet {
    /// Each label's text (UTF-8), by id.
    private(set) var names: [[UInt8]] = []
    private var ids: [[UInt8]: Int32] = [:]

    init(_ fixed: [String] = []) {
        for name in fixed { _ = id(Array(name.utf8)) }
    }

    /// The id of a label, added when new.
    func id(_ bytes: [UInt8]) -> Int32 {
        if let id = ids[bytes] { return id }
        let id = Int32(names.count)
        names.append(bytes)
        ids[bytes] = id
        return id
    }

    func id(_ p: UnsafeBufferPointer<UInt8>) -> Int32 { id(Array(p)) }

    func name(_ id: Int32) -> String { String(decoding: names[Int(id)], as: UTF8.self) }

    /// An optional '-' then 1–18 ASCII digits: a label that sorts as a number.
    static func integer(_ b: [UInt8]) -> Int64? {
        let digits = b.first == UInt8(ascii: "-") ? b.dropFirst() : b[...]
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let v = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
        return b.first == UInt8(ascii: "-") ? -v : v
    }

    /// The classes: the labels of the training rows, sorted — numerically when every label of
    /// either split is an integer, otherwise by UTF-8 bytes — and each label id's class index (−1
    /// for a label no training row has). `fixed`: the classes are these, in this order (aclImdb).
    func classes(trainCounts: [Int], used: [Bool], fixed: Bool) -> (names: [String], index: [Int32]) {
        var index = [Int32](repeating: -1, count: names.count)
        if fixed {
            for k in names.indices { index[k] = Int32(k) }
            return (names.map { String(decoding: $0, as: UTF8.self) }, index)
        }
        var train = names.indices.filter { trainCounts[$0] > 0 }
        let numbers = names.indices.filter { used[$0] }.map { Self.integer(names[$0]) }
        if numbers.allSatisfy({ $0 != nil }) {
            train.sort { a, b in
                let x = Self.integer(names[a])!, y = Self.integer(names[b])!
                return x != y ? x < y : names[a].lexicographicallyPrecedes(names[b])
            }
        } else {
            train.sort { names[$0].lexicographicallyPrecedes(names[$1]) }
        }
        for (c, k) in train.enumerated() { index[k] = Int32(c) }
        return (train.map { String(decoding: names[$0], as: UTF8.self) }, index)
    }
}

/// What the readers of user files (folders, CSV, TSV, JSON Lines) share while one `prepare` runs:
/// the labels, the files read (for messages), the running row count that orders the rows, and the
/// checks every row passes.
final class SourceContext {
    let labels: LabelSet
    let textColumn: String
    let labelColumn: String
    /// Every file read, by `RowKey.file`.
    private(set) var files: [String] = []
    private var sequence: Int64 = 0

    init(labels: LabelSet, textColumn: String = "text", labelColumn: String = "label") {
        self.labels = labels
        self.textColumn = textColumn
        self.labelColumn = labelColumn
    }

    func add(file: String) -> Int32 {
        files.append(file)
        return Int32(files.count - 1)
    }

    /// "path line N" (or "path" for a whole-file row), for messages.
    func location(_ key: RowKey) -> (path: String, line: Int) { (files[Int(key.file)], Int(key.line)) }

    /// Checks one row and hands it on: its text and its label must hold more than white space.
    func emit(text: UnsafeBufferPointer<UInt8>, label: UnsafeBufferPointer<UInt8>, split: Split, file: Int32, line: Int,
              _ body: RowSink) throws {
        guard !Self.isBlank(text) else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "the text is empty")
        }
        // A label of only white space named a class no message could show (" " printed as nothing).
        guard !Self.isBlank(label) else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: label.isEmpty ? "the label is empty" : "the label is empty (nothing but white space)")
        }
        guard text.count <= PrepareLimits.maxReviewBytes else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "the text has \(text.count) bytes, over the 16 MiB limit")
        }
        guard label.count <= PrepareLimits.maxLabelBytes else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "the label has \(label.count) bytes, over the \(PrepareLimits.maxLabelBytes)-byte limit")
        }
        // A label names a class in every file after this one: unlike a text's, its bytes are not
        // repaired (two different broken labels would become one class name).
        guard String(decoding: label, as: UTF8.self).utf8.elementsEqual(label) else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "the label is not valid UTF-8")
        }
        if let c = Self.controlCharacter(label) {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "the label holds the control character \(c)")
        }
        try emit(text: text, label: labels.id(label), split: split, file: file, line: line, body)
    }

    func emit(text: UnsafeBufferPointer<UInt8>, label: Int32, split: Split, file: Int32, line: Int, _ body: RowSink) throws {
        guard line <= Int32.max else {
            throw PrepareError.badRecord(path: files[Int(file)], line: line, detail: "more than \(Int32.max) lines")
        }
        try body(RowKey(split: split, label: label, order: sequence, file: file, line: Int32(line)), text)
        sequence += 1
    }

    /// The first character of a label that would break its line (`OneLine.breaks`: a control
    /// character, C0, DEL or C1, or a line or paragraph separator), as "U+000A": a class name is
    /// printed in one line of every summary, table and prediction.
    static func controlCharacter<C: Collection<UInt8>>(_ label: C) -> String? {
        String(decoding: label, as: UTF8.self).unicodeScalars.first(where: OneLine.breaks).map { "U+" + String(format: "%04X", $0.value) }
    }

    /// Nothing but spaces, tabs, CR and LF (an empty text, a blank line).
    static func isBlank(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        !p.contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
    }

    /// A text file holds no NUL byte: one means the file is binary (or UTF-16).
    func refuseNUL(_ chunk: UnsafeBufferPointer<UInt8>, path: String, line: Int) throws {
        guard let base = chunk.baseAddress, let hit = memchr(base, 0, chunk.count) else { return }
        let k = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - base
        let lines = chunk[..<k].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        throw PrepareError.notText(path: path, detail: "a NUL byte on line \(line + lines): not a UTF-8 text file")
    }
}
