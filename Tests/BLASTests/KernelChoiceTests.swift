import XCTest
import Foundation
@testable import BLAS
import TestSupport

/// The BLAS kernel family: a pre-AVX2 fallback is replaced when the CPU can do better, and a
/// user's OPENBLAS_CORETYPE is kept.
final class KernelChoiceTests: XCTestCase {
    func testTheChoiceFollowsTheCPUFlags() {
        let avx512: Set = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        let avx2: Set = ["sse3", "avx", "avx2", "fma"]
        XCTAssertEqual(BLAS.betterCoreType(current: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLAS.betterCoreType(current: "Prescott", cpuFlags: avx2), "Haswell")
        XCTAssertEqual(BLAS.betterCoreType(current: "Nehalem", cpuFlags: avx2.union(["avx512f"])), "Haswell",
                       "AVX-512 F alone is not SkylakeX's set")
        XCTAssertNil(BLAS.betterCoreType(current: "Prescott", cpuFlags: ["sse3", "avx"]), "no AVX2: keep it")
        XCTAssertNil(BLAS.betterCoreType(current: "Prescott", cpuFlags: ["avx2"]), "AVX2 without FMA: keep it")
        for good in ["Haswell", "SkylakeX", "Cooperlake", "Zen", "SapphireRapids"] {
            XCTAssertNil(BLAS.betterCoreType(current: good, cpuFlags: avx512), good)
        }
    }

    /// The built binary runs with AVX2 kernels wherever the CPU has AVX2 and FMA, and keeps a
    /// kernel the user asked for.
    func testTheExecutableUsesAVX2KernelsWhenTheCPUHasThem() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        func kernel(_ env: [String: String]) throws -> String {
            let r = try Subprocess.run(Subprocess.rnnDist, ["selftest", "float-mode"], environment: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            // "… blas_kernel=NAME own_gemm=0|1"
            let after = r.stdout.components(separatedBy: "blas_kernel=").last ?? ""
            return after.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? ""
        }
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = nil
        let chosen = try kernel(env)
        if flags.contains("avx2") && flags.contains("fma") {
            XCTAssertNil(BLAS.betterCoreType(current: chosen, cpuFlags: flags), "the binary runs \(chosen) on an AVX2 CPU")
        }
        env["OPENBLAS_CORETYPE"] = "Prescott"
        XCTAssertEqual(try kernel(env), "Prescott", "OPENBLAS_CORETYPE set by the user is kept")
    }

    /// The executable reports whether the own small-product kernel is on: as this process sees it
    /// (same CPU, same environment), and off when RNN_DIST_OWN_GEMM=0.
    func testTheExecutableReportsTheOwnKernel() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        var env = ProcessInfo.processInfo.environment
        let r = try Subprocess.run(Subprocess.rnnDist, ["selftest", "float-mode"], environment: env)
        XCTAssertTrue(r.stdout.contains("own_gemm=\(BLAS.ownKernel ? 1 : 0)"), r.stdout)
        env["RNN_DIST_OWN_GEMM"] = "0"
        let off = try Subprocess.run(Subprocess.rnnDist, ["selftest", "float-mode"], environment: env)
        XCTAssertTrue(off.stdout.contains("own_gemm=0"), off.stdout)
    }
}
