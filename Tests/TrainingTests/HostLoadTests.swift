import XCTest
@testable import Training

/// The oversubscription note: worded for one host or many, and absent when ranks fit the cores.
final class HostLoadTests: XCTestCase {
    func testTheNoteAppearsOnlyWhenRanksExceedCores() {
        XCTAssertNil(HostLoad.note(ranksOnHost: 2, cores: 2, singleHost: true))
        XCTAssertNil(HostLoad.note(ranksOnHost: 1, cores: 64, singleHost: false))
        XCTAssertEqual(HostLoad.note(ranksOnHost: 4, cores: 2, singleHost: true),
                       "note: 4 ranks on 2 cores; -n 2 is likely faster")
        XCTAssertEqual(HostLoad.note(ranksOnHost: 2, cores: 1, singleHost: true),
                       "note: 2 ranks on 1 core; -n 1 is likely faster")
        XCTAssertEqual(HostLoad.note(ranksOnHost: 3, cores: 2, singleHost: false),
                       "note: 3 ranks on a host with 2 cores; at most 2 per host is likely faster")
    }

    func testCoresIsTheMachinesOnlineCount() {
        let n = HostLoad.cores()
        XCTAssertGreaterThanOrEqual(n, 1)
        XCTAssertLessThanOrEqual(n, ProcessInfo.processInfo.processorCount)
    }
}
