/// Sizes `prepare` refuses to exceed, so that no input makes it allocate without bound.
public enum PrepareLimits {
    /// The largest single review (the largest IMDB review has ≈ 14 KB).
    static let maxReviewBytes = 16 << 20
    /// The most reviews in one split (Int32 row and review ids).
    static let maxReviewsPerSplit = 1 << 26
    /// The longest label (a class name, printed and stored in every weights file).
    static let maxLabelBytes = 1024
    /// The most classes (labels stored as int32 above 127; the output layer has one unit each).
    static let maxClasses = 1 << 16
}
