import XCTest
import Foundation
import TestSupport

/// The base of the test classes that run the built `rnn-dist` on a synthetic IMDB: each subclass
/// prepares one dataset for its tests (with the real `prepare`), and each test gets a fresh
/// temporary folder `tmp` and the small training flags `common`.
class ToyIMDBTestCase: XCTestCase {
    nonisolated(unsafe) private static var prepared: [ObjectIdentifier: PreparedToyIMDB] = [:]
    /// The subclass's dataset file ("" when it could not be prepared: every test then fails so).
    var dataset: String { Self.prepared[ObjectIdentifier(Self.self)]?.dataset ?? "" }
    var tmp: TempDir!
    let common = PreparedToyIMDB.trainFlags

    override class func setUp() {
        super.setUp()
        prepared[ObjectIdentifier(self)] = PreparedToyIMDB("\(self)-data")
    }

    override class func tearDown() {
        prepared.removeValue(forKey: ObjectIdentifier(self))?.remove()
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        XCTAssertFalse(dataset.isEmpty, "the synthetic dataset could not be prepared")
        tmp = try TempDir("\(type(of: self))")
    }

    override func tearDown() { tmp?.remove() }
}
