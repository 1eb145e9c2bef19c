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

    func testCoresAreTheOnlineCPUsCappedByTheCgroupQuota() {
        XCTAssertEqual(HostLoad.cores(online: 8, cpuMax: nil), 8)
        XCTAssertEqual(HostLoad.cores(online: 8, cpuMax: "max 100000\n"), 8)
        XCTAssertEqual(HostLoad.cores(online: 8, cpuMax: "200000 100000\n"), 2)
        XCTAssertEqual(HostLoad.cores(online: 8, cpuMax: "150000 100000"), 2)       // rounded up
        XCTAssertEqual(HostLoad.cores(online: 8, cpuMax: "50000 100000"), 1)
        XCTAssertEqual(HostLoad.cores(online: 2, cpuMax: "400000 100000"), 2)       // the quota never adds cores
        XCTAssertEqual(HostLoad.cores(online: 0, cpuMax: "garbage"), 1)
        // This machine: its online CPUs and its own cgroup file.
        let cpuMax = try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8)
        XCTAssertEqual(HostLoad.cores(), HostLoad.cores(online: ProcessInfo.processInfo.activeProcessorCount, cpuMax: cpuMax))
    }
}
