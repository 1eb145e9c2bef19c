/// The IMDB tokenizer of docs/DATASET.md, on UTF-8 bytes:
/// 1. every `<br />` becomes a space, then the text is lowercased (Unicode, per scalar);
/// 2. tokens are maximal runs of *word scalars* — General_Category L* (letters) or N* (numbers) —
///    where an ASCII apostrophe `'` between two word scalars stays inside (`don't`, `rock'n'roll`);
///    every other scalar separates tokens (so do apostrophes at a token's edge or doubled).
///
/// Lowercasing uses each scalar's full lowercase mapping (`Unicode.Scalar.Properties.lowercaseMapping`,
/// e.g. `İ` → `i̇`) without context rules (`Σ` → `σ` everywhere). The mapped scalars are then
/// classified, so a mapping that yields a combining mark (U+0307, category Mn) splits the token there,
/// as Python's `re` `[^\W_]` does. Bytes that are not part of a well-formed UTF-8 sequence are
/// replaced (they act as separators) and counted.
///
/// ASCII takes a table-driven fast path; other scalars are decoded and looked up once per scanner.
public struct Tokenizer: Sendable {
    /// Stored in the dataset (`/@tokenizer`); changes whenever any rule above changes.
    public static let version = "rnn-dist-tokenizer/1 (br-space, lower, L*N* runs with inner apostrophes)"

    init() {}

    /// Whether a scalar is a letter or digit: General_Category L* or N*.
    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    /// The tokens of `text`, in order.
    func tokens(_ text: String) -> [String] {
        tokenize(Array(text.utf8)).tokens
    }

    /// The tokens of UTF-8 `bytes`, and how many bytes were not well-formed UTF-8.
    func tokenize(_ bytes: [UInt8]) -> (tokens: [String], invalidBytes: Int) {
        struct Collect: TokenSink {
            var tokens: [String] = []
            mutating func token(_ p: UnsafePointer<UInt8>, _ n: Int) {
                tokens.append(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
            }
        }
        var sink = Collect()
        let scanner = TokenScanner()
        let invalid = bytes.withUnsafeBufferPointer { scanner.scan($0, into: &sink) }
        return (sink.tokens, invalid)
    }
}

/// Receives each token's lowercased UTF-8 bytes (valid only during the call).
protocol TokenSink {
    mutating func token(_ p: UnsafePointer<UInt8>, _ n: Int)
}

/// The scanning state machine behind `Tokenizer`. Not thread-safe: one per thread.
final class TokenScanner {
    // ASCII byte classes.
    private static let separator: UInt8 = 0, word: UInt8 = 1, apostrophe: UInt8 = 2, lessThan: UInt8 = 3
    /// For bytes < 0x80: class in the high bits (× 128), lowercase byte in the low 7 bits.
    private let ascii: UnsafeMutablePointer<UInt16>
    /// Token bytes being assembled (lowercased).
    private var scratch: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Non-ASCII scalar → its lowercase mapping, each scalar with bit 31 set when it is a word scalar.
    private var cache: [UInt32: [UInt32]] = [:]

    init() {
        ascii = .allocate(capacity: 128)
        for b in 0 ..< 128 {
            let u = UInt8(b)
            var cls = Self.separator
            var lower = u
            switch u {
            case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "0") ... UInt8(ascii: "9"): cls = Self.word
            case UInt8(ascii: "A") ... UInt8(ascii: "Z"): cls = Self.word; lower = u + 32
            case UInt8(ascii: "'"): cls = Self.apostrophe
            case UInt8(ascii: "<"): cls = Self.lessThan
            default: break
            }
            ascii[b] = UInt16(cls) << 7 | UInt16(lower)
        }
        capacity = 1 << 12
        scratch = .allocate(capacity: capacity)
    }

    deinit {
        ascii.deallocate()
        scratch.deallocate()
    }

    /// Token room for any output of `n` input bytes: a scalar of k bytes lowercases to at most 3k
    /// bytes (`İ`, 2 → 3), plus one kept apostrophe per byte.
    private func reserve(_ n: Int) {
        let need = 4 * n + 16
        if need > capacity {
            scratch.deallocate()
            capacity = need
            scratch = .allocate(capacity: need)
        }
    }

    /// Scans `bytes`, calling `sink` once per token; returns the number of invalid UTF-8 bytes.
    func scan<S: TokenSink>(_ bytes: UnsafeBufferPointer<UInt8>, into sink: inout S) -> Int {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return 0 }
        let n = bytes.count
        reserve(n)
        let out = scratch, table = ascii
        var len = 0                // bytes of the current token in `out`
        var pending = false        // an apostrophe followed the current token's last word scalar
        var invalid = 0
        var i = 0
        while i < n {
            let b = p[i]
            if b < 0x80 {
                let e = table[Int(b)]
                switch UInt8(truncatingIfNeeded: e >> 7) {
                case Self.word:
                    if pending { out[len] = 0x27; len += 1; pending = false }
                    out[len] = UInt8(truncatingIfNeeded: e & 0x7F)
                    len += 1
                case Self.apostrophe:
                    if len > 0 && !pending {
                        pending = true
                    } else {
                        if len > 0 { sink.token(out, len); len = 0 }
                        pending = false
                    }
                case Self.lessThan:
                    if len > 0 { sink.token(out, len); len = 0 }
                    pending = false
                    // `<br />` → space: the six bytes all separate, and none starts a token.
                    if i + 5 < n && p[i + 1] == 0x62 && p[i + 2] == 0x72 && p[i + 3] == 0x20
                        && p[i + 4] == 0x2F && p[i + 5] == 0x3E {
                        i += 5
                    }
                default:
                    if len > 0 { sink.token(out, len); len = 0 }
                    pending = false
                }
                i += 1
                continue
            }
            // Non-ASCII: decode one well-formed scalar, or count one invalid byte.
            let (scalar, width) = Self.decode(p, i, n)
            if width == 0 {
                invalid += 1
                if len > 0 { sink.token(out, len); len = 0 }
                pending = false
                i += 1
                continue
            }
            i += width
            for m in lowered(scalar) {
                let s = m & 0x7FFF_FFFF
                if m & 0x8000_0000 != 0 {
                    if pending { out[len] = 0x27; len += 1; pending = false }
                    len += Self.encode(s, into: out + len)
                } else if s == 0x27 {
                    if len > 0 && !pending { pending = true } else {
                        if len > 0 { sink.token(out, len); len = 0 }
                        pending = false
                    }
                } else {
                    if len > 0 { sink.token(out, len); len = 0 }
                    pending = false
                }
            }
        }
        if len > 0 { sink.token(out, len) }
        return invalid
    }

    /// The lowercase mapping of a non-ASCII scalar, classified (cached).
    private func lowered(_ s: UInt32) -> [UInt32] {
        if let hit = cache[s] { return hit }
        let scalar = Unicode.Scalar(s)!
        let mapped = scalar.properties.lowercaseMapping.unicodeScalars.map { m -> UInt32 in
            m.value | (Tokenizer.isWordScalar(m) ? 0x8000_0000 : 0)
        }
        cache[s] = mapped
        return mapped
    }

    /// Decodes the scalar starting at `p[i]` (a byte ≥ 0x80). Width 0: the byte starts no
    /// well-formed sequence (Unicode Table 3-7), so it alone is replaced.
    @inline(__always)
    private static func decode(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        @inline(__always) func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> UInt32? {
            guard i + k < n else { return nil }
            let c = p[i + k]
            return c >= lo && c <= hi ? UInt32(c & 0x3F) : nil
        }
        switch b0 {
        case 0xC2 ... 0xDF:
            guard let c1 = cont(1) else { return (0, 0) }
            return ((b0 & 0x1F) << 6 | c1, 2)
        case 0xE0 ... 0xEF:
            let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80, hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
            guard let c1 = cont(1, lo, hi), let c2 = cont(2) else { return (0, 0) }
            return ((b0 & 0x0F) << 12 | c1 << 6 | c2, 3)
        case 0xF0 ... 0xF4:
            let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80, hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
            guard let c1 = cont(1, lo, hi), let c2 = cont(2), let c3 = cont(3) else { return (0, 0) }
            return ((b0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3, 4)
        default:
            return (0, 0)
        }
    }

    /// Writes the UTF-8 of scalar `s` at `out`; returns the byte count.
    @inline(__always)
    private static func encode(_ s: UInt32, into out: UnsafeMutablePointer<UInt8>) -> Int {
        switch s {
        case 0 ..< 0x80:
            out[0] = UInt8(s); return 1
        case 0x80 ..< 0x800:
            out[0] = UInt8(0xC0 | s >> 6); out[1] = UInt8(0x80 | s & 0x3F); return 2
        case 0x800 ..< 0x10000:
            out[0] = UInt8(0xE0 | s >> 12); out[1] = UInt8(0x80 | (s >> 6) & 0x3F)
            out[2] = UInt8(0x80 | s & 0x3F); return 3
        default:
            out[0] = UInt8(0xF0 | s >> 18); out[1] = UInt8(0x80 | (s >> 12) & 0x3F)
            out[2] = UInt8(0x80 | (s >> 6) & 0x3F); out[3] = UInt8(0x80 | s & 0x3F); return 4
        }
    }
}
