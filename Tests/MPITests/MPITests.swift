import XCTest
@testable import MPI
import TestSupport

/// The MPI layer under a real `mpirun`: collectives give the right numbers at 2 and 4 ranks, and an
/// `MPI_Abort` on one rank ends every rank promptly with that exit code.
final class MPITests: XCTestCase {
    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist): run `swift build` first")
        }
        guard FileManager.default.isExecutableFile(atPath: Subprocess.mpirun) else {
            throw XCTSkip("mpirun not found at \(Subprocess.mpirun): run Launch/setup")
        }
    }

    func testSingleProcessIsRankZeroOfOne() throws {
        let c = try Communicator.world()
        XCTAssertEqual(c.rank, 0)
        XCTAssertEqual(c.size, 1)
        var v: [Float] = [1, 2, 3]
        try c.allReduce(&v)
        XCTAssertEqual(v, [1, 2, 3])
        // The executable alone, without mpirun, is rank 0 of 1 too.
        let r = try Subprocess.rnnDist(["selftest", "collectives"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("size=1 "), r.stdout)
    }

    func collectives(_ n: Int, mpirunArgs: [String] = [], watchdog: Bool = false) throws {
        let r = try Subprocess.mpiRun(n, ["selftest", "collectives"] + (watchdog ? ["--watchdog", "60"] : []),
                                      mpirunArgs: mpirunArgs, timeout: 60)
        XCTAssertFalse(r.timedOut, "mpirun -n \(n) hung")
        XCTAssertEqual(r.status, 0, r.stderr)
        let fields = r.stdout.split(whereSeparator: \.isWhitespace)
        XCTAssertEqual(fields.first, "size=\(n)", r.stdout)
        XCTAssertEqual(fields.count, 10, r.stdout)
        for f in fields.dropFirst() { XCTAssertTrue(f.hasSuffix("=ok"), "\(f) at -n \(n)") }
    }

    func testCollectivesAtTwoRanks() throws { try collectives(2) }
    func testCollectivesAtFourRanks() throws { try collectives(4) }
    /// The same under the watchdog (train's default): every collective started non-blocking and polled.
    func testCollectivesUnderTheWatchdog() throws {
        try collectives(2, watchdog: true)
        try collectives(3, watchdog: true)
        try collectives(4, watchdog: true)
    }
    func testCollectivesOverTCP() throws {
        try collectives(2, mpirunArgs: ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
                                        "--mca", "oob_tcp_if_include", "lo"])
    }

    func testAbortOnOneRankEndsTheWholeJobWithItsCode() throws {
        for (n, rank, code) in [(2, 1, 7), (4, 2, 9), (4, 0, 5)] {
            let r = try Subprocess.mpiRun(n, ["selftest", "abort", "--rank", "\(rank)", "--code", "\(code)"], timeout: 60)
            // The timeout tells a hang from an ending on any CPU (an abort ends the job in ~1 s);
            // it is no performance claim.
            XCTAssertFalse(r.timedOut, "-n \(n): ranks still waiting after 60 s")
            XCTAssertEqual(r.status, Int32(code), "-n \(n) rank \(rank): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("rank \(rank) aborts on purpose"), r.stderr)
        }
    }
}
