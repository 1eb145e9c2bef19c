import Foundation
import JSONSyntax

/// JSON Lines: one JSON object per line (LF or CRLF; blank lines skipped), the text and label under
/// the keys `--text-column` and `--label-column`. The text is a JSON string; the label a string or
/// an integer (its digits; a number of another form is refused). Other keys are parsed (the line must be valid JSON) and ignored. An object that has
/// the text's or the label's key twice is refused, as a CSV header with that column twice: JSON
/// leaves open which one counts (Foundation keeps the first, Python's `json` the last).
enum JSONLinesSource {
    static func read(_ path: String, split: Split, context: SourceContext, _ body: RowSink) throws {
        let file = context.add(file: path)
        let decoder = JSONDecoder()
        decoder.userInfo[LabelledText.keys] = (context.textColumn, context.labelColumn)
        var line = 0
        func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws {
            line += 1
            var n = bytes.count
            if n > 0 && bytes[n - 1] == 13 { n -= 1 }
            let content = UnsafeBufferPointer(rebasing: bytes[..<n])
            guard !SourceContext.isBlank(content) else { return }
            let (problem, members) = JSONSyntax.check(content, memberDepth: 1)
            if let problem {
                throw PrepareError.badRecord(path: path, line: line, detail: JSONSyntax.refusal(problem))
            }
            let keys = members.map { JSONSyntax.string($0.key, in: content) }
            let row: LabelledText
            do {
                row = try decoder.decode(LabelledText.self, from: Data(buffer: content))
            } catch let e as LabelledText.Problem {
                throw PrepareError.badRecord(path: path, line: line, detail: e.detail)
            } catch {
                throw PrepareError.badRecord(path: path, line: line, detail: "not valid JSON (\(DecodingProblem.describe(error)))")
            }
            for (key, flag) in [(context.textColumn, "--text-column"), (context.labelColumn, "--label-column")] {
                let times = keys.count(where: { $0 == key })
                if times > 1 {
                    throw PrepareError.badRecord(path: path, line: line, detail: "the object has the key '\(key)' (\(flag)) \(times) times")
                }
            }
            /// A top-level member's value as JSON text (empty when the key is absent).
            func raw(_ key: String) -> UnsafeBufferPointer<UInt8> {
                UnsafeBufferPointer(rebasing: content[keys.firstIndex(of: key).map { members[$0].value } ?? 0 ..< 0])
            }
            guard let text = row.text else {
                let isString = raw(context.textColumn).first == UInt8(ascii: "\"")
                throw PrepareError.badRecord(path: path, line: line, detail: "'\(context.textColumn)' is " +
                    (isString ? "not a string of well-formed UTF-8" : "not a string but \(String(decoding: raw(context.textColumn).prefix(20), as: UTF8.self))"))
            }
            // A label that is not a string: a JSON integer as its digits, never a number of another
            // form (Foundation reads 1.0 or 1e2 as an integer).
            guard let label = row.label ?? integerLabel(raw(context.labelColumn)) else {
                throw PrepareError.badRecord(path: path, line: line, detail: "the label '\(context.labelColumn)' is neither a string nor an integer")
            }
            try Array(text.utf8).withUnsafeBufferPointer { t in
                try Array(label.utf8).withUnsafeBufferPointer { l in
                    try context.emit(text: t, label: l, split: split, file: file, line: line, body)
                }
            }
        }
        do {
            try ByteStream.readLines(path, what: "JSON Lines", maxLineBytes: maxLineBytes,
                                     chunk: { try context.refuseNUL($0, path: path, line: line + 1) }, line: parse)
        } catch let e as ByteStream.LineTooLong {
            throw PrepareError.badRecord(path: path, line: line + 1, detail: "the line is longer than \(e.limit >> 20) MiB, the limit " +
                                         "of a JSON line (room for a 16 MiB text written as \\u escapes throughout)")
        }
    }

    /// The longest line read: a text at the 16 MiB limit (`PrepareLimits.maxReviewBytes`) takes at
    /// most 6 bytes of JSON a byte (`\u0001`), plus room for the label and other keys. Longer
    /// lines are refused as they pass it (a 400 MiB text took 1.27 GB before it was refused).
    static let maxLineBytes = 6 * PrepareLimits.maxReviewBytes + (4 << 20)

    /// A JSON integer's text (`-?(0|[1-9][0-9]*)`) as a label: its decimal digits, `-0` as `0`.
    static func integerLabel(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        let digits = raw.first == UInt8(ascii: "-") ? UnsafeBufferPointer(rebasing: raw.dropFirst()) : raw
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.count == 1 || digits.first != 0x30 else { return nil }
        let text = String(decoding: raw, as: UTF8.self)
        return Int64(text).map { String($0) } ?? text
    }
}

/// One JSON line's text and label (the keys come through `userInfo[LabelledText.keys]`).
private struct LabelledText: Decodable {
    static let keys = CodingUserInfoKey(rawValue: "rnn-dist.keys")!

    struct Problem: Error { var detail: String }
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The text and the label when they are JSON strings of well-formed UTF-8.
    var text: String?
    var label: String?

    init(from decoder: Decoder) throws {
        let (textKey, labelKey) = decoder.userInfo[Self.keys] as! (String, String)
        let c: KeyedDecodingContainer<Key>
        do { c = try decoder.container(keyedBy: Key.self) } catch {
            throw Problem(detail: "not a JSON object")
        }
        for k in [textKey, labelKey] where !c.contains(Key(stringValue: k)) {
            let found = c.allKeys.map { "'\($0.stringValue)'" }.joined(separator: ", ")
            let flag = k == textKey ? "--text-column" : "--label-column"
            throw Problem(detail: "no key '\(k)' (\(flag)); keys: \(found.isEmpty ? "none" : found)")
        }
        // Strings; what else they are is told from the line's text (`JSONLinesSource.read`).
        text = try? c.decode(String.self, forKey: Key(stringValue: textKey))
        label = try? c.decode(String.self, forKey: Key(stringValue: labelKey))
    }
}
