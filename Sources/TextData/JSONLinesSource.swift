import Foundation

/// JSON Lines: one JSON object per line (LF or CRLF; blank lines skipped), the text and label under
/// the keys `--text-column` and `--label-column`. The text is a JSON string; the label a string or
/// an integer. Other keys are parsed (the line must be valid JSON) and ignored. An object that has
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
            let row: LabelledText
            do {
                row = try decoder.decode(LabelledText.self, from: Data(buffer: content))
            } catch let e as LabelledText.Problem {
                throw PrepareError.badRecord(path: path, line: line, detail: e.detail)
            } catch {
                throw PrepareError.badRecord(path: path, line: line, detail: "not valid JSON (\(Self.describe(error)))")
            }
            let keys = topLevelKeys(content)
            for (key, flag) in [(context.textColumn, "--text-column"), (context.labelColumn, "--label-column")] {
                let times = keys.count(where: { $0 == key })
                if times > 1 {
                    throw PrepareError.badRecord(path: path, line: line, detail: "the object has the key '\(key)' (\(flag)) \(times) times")
                }
            }
            try Array(row.text.utf8).withUnsafeBufferPointer { t in
                try Array(row.label.utf8).withUnsafeBufferPointer { l in
                    try context.emit(text: t, label: l, split: split, file: file, line: line, body)
                }
            }
        }
        try ByteStream.readLines(path, what: "JSON Lines", chunk: { try context.refuseNUL($0, path: path, line: line + 1) },
                                 line: parse)
    }

    /// The keys of the object that `line` (valid JSON, an object) holds at its top level, in order,
    /// duplicates included (a decoded object keeps one of them). Strings are skipped whole, escapes
    /// included; a key with an escape is decoded, so `"\u0074ext"` is `text`.
    static func topLevelKeys(_ line: UnsafeBufferPointer<UInt8>) -> [String] {
        var keys: [String] = [], depth = 0, expectKey = false, i = 0
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        while i < line.count {
            let b = line[i]
            if b == quote {
                var end = i + 1, escaped = false
                while end < line.count && line[end] != quote {
                    if line[end] == backslash { escaped = true; end += 1 }
                    end += 1
                }
                if depth == 1 && expectKey {
                    let raw = UnsafeBufferPointer(rebasing: line[i ... min(end, line.count - 1)])
                    let key = escaped ? (try? JSONDecoder().decode(String.self, from: Data(buffer: raw))) ?? ""
                                      : String(decoding: UnsafeBufferPointer(rebasing: raw.dropFirst().dropLast()), as: UTF8.self)
                    keys.append(key)
                    expectKey = false
                }
                i = end + 1
                continue
            }
            switch b {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 { expectKey = true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectKey = true }
            default:
                break
            }
            i += 1
        }
        return keys
    }

    /// A short reason from a `DecodingError` (its debug description without the coding path noise).
    static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error {
            let under = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return under ?? c.debugDescription
        }
        return "\(error)"
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

    var text: String
    var label: String

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
        guard let t = try? c.decode(String.self, forKey: Key(stringValue: textKey)) else {
            throw Problem(detail: "'\(textKey)' is not a string of well-formed UTF-8")
        }
        text = t
        let l = Key(stringValue: labelKey)
        if let s = try? c.decode(String.self, forKey: l) {
            label = s
        } else if (try? c.decode(Bool.self, forKey: l)) == nil, let i = try? c.decode(Int64.self, forKey: l) {
            label = String(i)
        } else {
            throw Problem(detail: "the label '\(labelKey)' is neither a string nor an integer")
        }
    }
}
