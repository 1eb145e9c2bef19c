/// A test hook (`train --inject-fault`, not shown in `--help`): rank `rank` writes `value` (NaN or
/// ±∞) into its gradient sum of optimizer step `step` (1-based, counted over the whole run), before
/// the all-reduce. Lets tests provoke a non-finite gradient deterministically, on any CPU and BLAS.
@_spi(Testing) public struct GradientFault: Equatable, Sendable {
    var value: Float
    var rank: Int
    var step: Int

    init(value: Float, rank: Int, step: Int) {
        self.value = value; self.rank = rank; self.step = step
    }

    /// Parses `VALUE@RANK:STEP`, VALUE one of nan, inf, -inf (e.g. `nan@1:3`); nil when malformed.
    public init?(_ text: String) {
        let at = text.split(separator: "@", omittingEmptySubsequences: false)
        guard at.count == 2 else { return nil }
        let where_ = at[1].split(separator: ":", omittingEmptySubsequences: false)
        guard where_.count == 2, let rank = Int(where_[0]), let step = Int(where_[1]), rank >= 0, step >= 1 else {
            return nil
        }
        switch at[0] {
        case "nan": value = .nan
        case "inf", "+inf": value = .infinity
        case "-inf": value = -.infinity
        default: return nil
        }
        self.rank = rank
        self.step = step
    }
}
