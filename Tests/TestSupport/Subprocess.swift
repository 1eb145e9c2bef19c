import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a child process did.
public struct ProcessResult: Sendable {
    public let status: Int32
    /// True when the child ended by a signal (crash) rather than an exit.
    public let signaled: Bool
    public let timedOut: Bool
    public let stdout: String
    public let stderr: String
    public let seconds: Double
}

/// Runs the built products and other commands in child processes, so that a crash or a hang is
/// detected by the test, not suffered by it.
public enum Subprocess {
    /// The folder holding the built products (`rnn-dist` beside the test bundle).
    public static var productsDirectory: URL {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }
        if let b = bundle { return b.bundleURL.deletingLastPathComponent() }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// The `rnn-dist` executable under test (`RNN_DIST_BIN` overrides).
    public static var rnnDist: String {
        if let p = ProcessInfo.processInfo.environment["RNN_DIST_BIN"] { return p }
        return productsDirectory.appendingPathComponent("rnn-dist").path
    }

    /// The package's root folder.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Environment for `mpirun` as the Launch/ scripts set it (oversubscription, root).
    public static var mpiEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        env["OMPI_MCA_odls_base_sigkill_timeout"] = "2"
        return env
    }

    /// Runs `executable args…` with a timeout; on timeout the child gets SIGTERM, then SIGKILL.
    public static func run(_ executable: String, _ args: [String], environment: [String: String]? = nil,
                           stdin: String? = nil, timeout: Double = 60, cwd: String? = nil) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let environment { p.environment = environment }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rd-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        if let stdin {
            let inURL = dir.appendingPathComponent("in")
            try stdin.write(to: inURL, atomically: true, encoding: .utf8)
            p.standardInput = try FileHandle(forReadingFrom: inURL)
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        let start = Date()
        try p.run()
        var timedOut = false
        while p.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                p.terminate()
                let t = Date()
                while p.isRunning && Date().timeIntervalSince(t) < 3 { usleep(20_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            usleep(10_000)
        }
        p.waitUntilExit()
        try out.close(); try err.close()
        let o = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let e = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return ProcessResult(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                             timedOut: timedOut, stdout: o, stderr: e, seconds: Date().timeIntervalSince(start))
    }

    /// Runs the built `rnn-dist` alone.
    public static func rnnDist(_ args: [String], stdin: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        try run(rnnDist, args, stdin: stdin, timeout: timeout)
    }

    /// The `mpirun` launcher (`MPIRUN` overrides).
    public static var mpirun: String {
        ProcessInfo.processInfo.environment["MPIRUN"] ?? "/usr/bin/mpirun"
    }

    /// Runs `mpirun -n N [extra…] rnn-dist args…`.
    public static func mpiRun(_ n: Int, _ args: [String], mpirunArgs: [String] = [], timeout: Double = 120) throws -> ProcessResult {
        try run(mpirun, ["-n", String(n)] + mpirunArgs + [rnnDist] + args, environment: mpiEnvironment, timeout: timeout)
    }
}

/// A fresh temporary folder, removed by `remove()`.
public struct TempDir {
    public let url: URL
    public var path: String { url.path }
    public init(_ label: String = "rnn-dist-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }
    public func remove() { try? FileManager.default.removeItem(at: url) }
}
