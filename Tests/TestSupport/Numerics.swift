// Numeric comparison helpers for tests (no XCTest here, so this target builds with `swift build`;
// test files wrap these in XCTAssert calls).

/// Compares elementwise with |actual − expected| ≤ atol + rtol·|expected|.
/// - Returns: nil when every element passes, else a message naming the worst element.
public func closenessFailure(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double = 0,
                             labels: [String]? = nil) -> String? {
    guard actual.count == expected.count else {
        return "sizes differ: actual \(actual.count), expected \(expected.count)"
    }
    var worst = -1
    var worstExcess = 0.0
    var failures = 0
    for i in 0..<actual.count {
        let allowed = atol + rtol * abs(expected[i])
        let error = abs(actual[i] - expected[i])
        if !(error <= allowed) {          // also catches NaN
            failures += 1
            let excess = allowed > 0 ? error / allowed : .infinity
            if worst < 0 || excess > worstExcess || excess.isNaN { worst = i; worstExcess = excess }
        }
    }
    guard worst >= 0 else { return nil }
    let name = labels.map { $0[worst] } ?? "[\(worst)]"
    return "\(failures) of \(actual.count) elements differ; worst \(name): actual \(actual[worst]), "
        + "expected \(expected[worst]), |diff| \(abs(actual[worst] - expected[worst])), "
        + "allowed \(atol + rtol * abs(expected[worst]))"
}

/// max |v_i| (0 for an empty vector).
public func maxAbs(_ v: [Double]) -> Double {
    v.reduce(0) { max($0, abs($1)) }
}

/// max over i of |a_i − b_i| / max(|b_i|, floor): the figure reported beside a tolerance.
public func maxRelativeError(_ a: [Double], _ b: [Double], floor: Double) -> Double {
    precondition(a.count == b.count, "maxRelativeError: sizes differ")
    var worst = 0.0
    for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i]) / max(abs(b[i]), floor)) }
    return worst
}
