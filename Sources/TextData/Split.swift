/// The two splits of the dataset.
public enum Split: String, CaseIterable, Sendable {
    case train, test
}
