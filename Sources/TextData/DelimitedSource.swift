import Foundation

/// CSV and TSV with a header row (RFC 4180): fields separated by `,` (or tab), optionally quoted
/// with `"`; inside quotes a doubled quote is one quote and separators and line breaks are text.
/// Records end at LF, CRLF or a lone CR; a UTF-8 byte order mark before the header is skipped; blank
/// lines are skipped. Like Python's `csv` module it accepts a quote inside an unquoted field and text
/// after a closing quote as literal text. Only the text and label columns are copied.
///
/// Hand-written rather than yaslab/CSV.swift or SwiftCSV: see docs/DATASET.md §Speed (both read
/// IMDB's CSV at about 13 MB/s; this parser moves whole runs between quotes and separators at once).
enum DelimitedSource {
    /// Reads every record of `path` as a row of `split`, in file order.
    static func read(_ path: String, separator: UInt8, split: Split, context: SourceContext, _ body: RowSink) throws {
        let file = context.add(file: path)
        var parser = DelimitedParser(separator: separator, textColumn: context.textColumn, labelColumn: context.labelColumn)
        func record(_ r: DelimitedParser.Record) throws {
            try context.emit(text: r.text, label: r.label, split: split, file: file, line: r.line, body)
        }
        do {
            try ByteStream.read(path, what: separator == 9 ? "TSV" : "CSV") { chunk in
                if let k = chunk.index(of: 0, from: 0) {
                    // A chunk with a NUL is refused whole, as not text (a binary file's first
                    // "line" is no header). Its line: a copy of the parser counts the lines before
                    // it as records end (LF, CRLF or a lone CR), records and their errors ignored.
                    var counter = parser
                    counter.countingLinesOnly = true
                    try? counter.feed(UnsafeBufferPointer(rebasing: chunk[..<k])) { _ in }
                    try context.refuseNUL(UnsafeBufferPointer(rebasing: chunk[k...]), path: path, line: counter.line)
                }
                try parser.feed(chunk, record)
            }
            try parser.finish(record)
        } catch let e as DelimitedParser.Failure {
            throw PrepareError.badRecord(path: path, line: e.line, detail: e.detail)
        }
    }
}

/// The incremental RFC 4180 state machine behind `DelimitedSource` (chunks may cut a record, a
/// field or a CRLF anywhere).
struct DelimitedParser {
    struct Record {
        var text: UnsafeBufferPointer<UInt8>
        var label: UnsafeBufferPointer<UInt8>
        var line: Int
    }
    struct Failure: Error { var line: Int; var detail: String }

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted, afterCR }
    private enum Target { case drop, text, label, header }

    let separator: UInt8
    let textName: String, labelName: String
    private var header: [String]?
    private var headerField: [UInt8] = []
    private var headerFields: [[UInt8]] = []
    private var textColumn = -1, labelColumn = -1
    private var text: [UInt8] = [], label: [UInt8] = []
    /// Records are neither checked nor emitted, only their lines counted (where a NUL byte is).
    var countingLinesOnly = false { didSet { if countingLinesOnly { target = .drop } } }
    /// The bytes held of the current record's text and label and of the header (tests: they stay
    /// within the limits whatever the input).
    var heldBytes: Int { text.count + label.count + headerFields.reduce(headerField.count) { $0 + $1.count } }
    /// The header's column names' storage (tests: each name's own size, not the longest one's).
    var headerCapacity: Int { headerFields.reduce(0) { $0 + $1.capacity } }
    /// Bytes of the current text, label and header field beyond their limits (not held).
    private var textExcess = 0, labelExcess = 0, headerExcess = 0
    private var state = State.fieldStart
    private var target = Target.header
    private var field = 0
    /// Bytes or quotes seen in the current record (a record of one empty unquoted field is a blank line).
    private var recordHasContent = false
    private var started = false
    /// The line being read (1-based), the line the current record started on, the line of an open quote.
    private(set) var line = 1
    /// Inside quotes, the last byte read was a CR (an LF right after it ends the same line).
    private var quotedCR = false
    private var recordLine = 1
    private var quoteLine = 0

    init(separator: UInt8, textColumn: String, labelColumn: String) {
        self.separator = separator
        textName = textColumn
        labelName = labelColumn
    }

    private mutating func append(_ p: UnsafeBufferPointer<UInt8>) {
        guard !p.isEmpty else { return }
        markContent()
        switch target {
        case .drop: break
        case .text: Self.append(p, to: &text, beyond: &textExcess, limit: PrepareLimits.maxReviewBytes)
        case .label: Self.append(p, to: &label, beyond: &labelExcess, limit: PrepareLimits.maxLabelBytes)
        case .header: Self.append(p, to: &headerField, beyond: &headerExcess, limit: Self.maxColumnNameBytes)
        }
    }

    /// The longest column name of a header, and the most columns (a header is held whole).
    static let maxColumnNameBytes = 1024
    static let maxColumns = 65_536

    /// Appends `p` to `field` while the field holds at most `limit` bytes and counts the rest in
    /// `excess`: a field over its limit is refused at its record's end, with its size, and what is
    /// held stays bounded (a 1 GiB text in a 1 MB `.csv.gz` was held whole before being refused).
    private static func append(_ p: UnsafeBufferPointer<UInt8>, to field: inout [UInt8], beyond excess: inout Int, limit: Int) {
        let room = max(0, limit - field.count), kept = min(room, p.count)
        if kept > 0 { field.append(contentsOf: UnsafeBufferPointer(rebasing: p[0 ..< kept])) }
        excess += p.count - kept
    }

    /// The current record is not a blank line; it starts on this line.
    private mutating func markContent() {
        if !recordHasContent { recordLine = line; recordHasContent = true }
    }

    private mutating func appendByte(_ b: UInt8) {
        withUnsafePointer(to: b) { append(UnsafeBufferPointer(start: $0, count: 1)) }
    }

    private mutating func startField() {
        if countingLinesOnly { target = .drop; return }
        switch header {
        case nil: target = .header
        case .some: target = field == textColumn ? .text : field == labelColumn ? .label : .drop
        }
    }

    private mutating func endField() throws {
        if header == nil && !countingLinesOnly { try storeHeaderField() }
        field += 1
        startField()
    }

    /// Moves the header field just read into `headerFields`, within the limits of a header.
    private mutating func storeHeaderField() throws {
        guard headerExcess == 0 else {
            throw Failure(line: recordLine, detail: "column \(headerFields.count + 1) of the header has a name of \(headerField.count + headerExcess) bytes, over the \(Self.maxColumnNameBytes)-byte limit")
        }
        guard headerFields.count < Self.maxColumns else {
            throw Failure(line: recordLine, detail: "the header has more than \(Self.maxColumns) columns")
        }
        headerFields.append(headerField.withUnsafeBufferPointer { Array($0) })   // its own size: a shared buffer kept the largest name's capacity
        headerField.removeAll(keepingCapacity: true)
    }

    private mutating func endRecord(_ emit: (Record) throws -> Void) throws {
        defer {
            field = 0
            recordHasContent = false
            text.removeAll(keepingCapacity: true)
            label.removeAll(keepingCapacity: true)
            textExcess = 0
            labelExcess = 0
            startField()
        }
        let fields = field + 1
        if fields == 1 && !recordHasContent { return }    // a blank line
        if countingLinesOnly { return }
        if header == nil {
            try storeHeaderField()
            let names = headerFields.map { String(decoding: $0, as: UTF8.self) }
            header = names
            let shown = names.prefix(20).map { "'\($0)'" }.joined(separator: ", ")
            let found = names.count > 20 ? shown + " and \(names.count - 20) more" : shown
            guard let t = names.firstIndex(of: textName) else {
                throw Failure(line: recordLine, detail: "no column '\(textName)' (--text-column) in the header; columns: \(found)")
            }
            guard let l = names.firstIndex(of: labelName) else {
                throw Failure(line: recordLine, detail: "no column '\(labelName)' (--label-column) in the header; columns: \(found)")
            }
            for (name, flag) in [(textName, "--text-column"), (labelName, "--label-column")] where names.filter({ $0 == name }).count > 1 {
                throw Failure(line: recordLine, detail: "the header has the column '\(name)' (\(flag)) twice: which one to read is ambiguous")
            }
            textColumn = t
            labelColumn = l
            return
        }
        guard fields == header!.count else {
            throw Failure(line: recordLine, detail: "\(fields) field\(fields == 1 ? "" : "s"), the header has \(header!.count)")
        }
        // `SourceContext.emit`'s limits, for the fields whose bytes beyond them were not kept.
        if textExcess > 0 {
            throw Failure(line: recordLine, detail: "the text has \(text.count + textExcess) bytes, over the 16 MiB limit")
        }
        if labelExcess > 0 {
            throw Failure(line: recordLine, detail: "the label has \(label.count + labelExcess) bytes, over the \(PrepareLimits.maxLabelBytes)-byte limit")
        }
        try text.withUnsafeBufferPointer { t in
            try label.withUnsafeBufferPointer { l in try emit(Record(text: t, label: l, line: recordLine)) }
        }
    }

    /// The bytes of a UTF-8 byte order mark read so far at the start of the input (a chunk may end
    /// inside it: a pipe delivers bytes as they come); nil once the mark is skipped or ruled out.
    private var bomSoFar: [UInt8]? = []
    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Parses one chunk, calling `emit` for each complete record after the header.
    mutating func feed(_ chunk: UnsafeBufferPointer<UInt8>, _ emit: (Record) throws -> Void) throws {
        var i = 0
        if var seen = bomSoFar {
            while seen.count < 3 && i < chunk.count && chunk[i] == Self.bom[seen.count] {
                seen.append(chunk[i])
                i += 1
            }
            if seen.count == 3 {
                bomSoFar = nil                                  // skipped
            } else if i < chunk.count {
                bomSoFar = nil                                  // not a mark: its bytes are text
                try seen.withUnsafeBufferPointer { try parse($0, emit) }
            } else {
                bomSoFar = seen                                 // the chunk ended inside it
                return
            }
        }
        try parse(UnsafeBufferPointer(rebasing: chunk[i...]), emit)
    }

    private mutating func parse(_ chunk: UnsafeBufferPointer<UInt8>, _ emit: (Record) throws -> Void) throws {
        guard let base = chunk.baseAddress else { return }
        let n = chunk.count
        let sep = separator, quote = UInt8(ascii: "\""), cr: UInt8 = 13, lf: UInt8 = 10
        var i = 0
        if !started {
            started = true
            startField()
        }
        while i < n {
            switch state {
            case .afterCR:
                state = .fieldStart
                if base[i] == lf { i += 1 }
            case .fieldStart, .unquoted:
                if state == .fieldStart && base[i] == quote {
                    state = .quoted
                    quoteLine = line
                    markContent()
                    i += 1
                    continue
                }
                var j = i
                while j < n {
                    let b = base[j]
                    if b == sep || b == cr || b == lf { break }
                    j += 1
                }
                append(UnsafeBufferPointer(start: base + i, count: j - i))
                if j == n { state = .unquoted; i = n; break }
                let b = base[j]
                i = j + 1
                state = .fieldStart
                if b == sep {
                    markContent()
                    try endField()
                } else {
                    try endRecord(emit)
                    line += 1
                    if b == cr { state = .afterCR }
                }
            case .quoted:
                // Line breaks inside the quotes count as lines too: LF, CRLF (once) and a lone CR,
                // a CR's LF possibly in the next chunk.
                var j = i
                var lines = 0
                while j < n {
                    let b = base[j]
                    if b == quote { quotedCR = false; break }
                    if b == lf { if !quotedCR { lines += 1 }; quotedCR = false }
                    else if b == cr { lines += 1; quotedCR = true }
                    else { quotedCR = false }
                    j += 1
                }
                append(UnsafeBufferPointer(start: base + i, count: j - i))
                line += lines
                if j < n { state = .quoteInQuoted; i = j + 1 } else { i = n }
            case .quoteInQuoted:
                let b = base[i]
                i += 1
                switch b {
                case quote:
                    appendByte(quote)
                    state = .quoted
                case sep:
                    state = .fieldStart
                    try endField()
                case cr, lf:
                    state = b == cr ? .afterCR : .fieldStart
                    try endRecord(emit)
                    line += 1
                default:
                    appendByte(b)
                    state = .unquoted
                }
            }
        }
    }

    /// Ends the input: completes a last record without a line break; refuses an open quote.
    mutating func finish(_ emit: (Record) throws -> Void) throws {
        if let seen = bomSoFar {                                // the input ended inside a possible mark
            bomSoFar = nil
            try seen.withUnsafeBufferPointer { try parse($0, emit) }
        }
        if state == .quoted {
            throw Failure(line: quoteLine, detail: "unterminated quote: the field opened here runs to the end of the file")
        }
        if field > 0 || recordHasContent { try endRecord(emit) }
        if header == nil { throw Failure(line: line, detail: "empty: no header row") }
    }
}
