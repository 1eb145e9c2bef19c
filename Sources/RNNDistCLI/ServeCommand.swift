import ArgumentParser
import Foundation
import Serve
#if canImport(Glibc)
import Glibc
#endif

/// `rnn-dist serve --weights W`: the classifier behind HTTP (the work is in the Serve module).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Answer predictions over HTTP: POST /v1/predict, GET /healthz, /metrics, and a page at /.",
        discussion: """
        POST /v1/predict with {"texts": ["…", …]} answers {"predictions": [{"label": "pos", "probabilities": {"neg": 0.08, "pos": 0.92}}, …]}: the tokenizer and the numbers of `rnn-dist predict`. Requests that arrive together are scored in one forward pass (up to --max-batch texts; a free compute thread waits at most --batch-window-ms for more). GET /healthz answers {"status": "ok", …}; GET /metrics the Prometheus text format (requests by path and status, latency, batch sizes, the model file and its load time); GET / a page to type a text and see the answer.
        Errors are JSON {"error": "…"}: 400 for a body that is not valid UTF-8, not JSON or not {"texts": [strings]}; 413 for a body over 1 MiB (a Content-Length over it at once) or more than 1,000 texts; 415 for a Content-Encoding; 404 and 405 for an unknown path or method (HEAD is answered where GET is); 408 when a body does not arrive within --request-timeout.
        SIGHUP, or a new weights file at the same path (as train writes it: atomically), reloads the model; requests in flight finish with the model they started with, and a file that does not load leaves the old model answering (it is first read by `rnn-dist inspect` in a child process, so that one whose metadata crash the HDF5 library ends that process, not the server). SIGTERM or SIGINT stops accepting connections, answers the requests in flight, and exits 0.
        The first line on stdout, once the server listens, is "serving http://HOST:PORT (WEIGHTS)" (with the real port when --port is 0).
        """)

    @Option(help: "Weights file written by `train` (or a checkpoint).")
    var weights: String
    @Option(help: "Address to listen on: a name, an IPv4 address, or an IPv6 one (::1 or [::1]).")
    var host = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Port to listen on, 0 … 65535 (0: any free port; the first stdout line tells which).")
    var port = 8080
    @Option(parsing: .unconditional, help: "Threads that run the model, each with its own copy of it (1 … 64).")
    var computeThreads = 1
    @Option(parsing: .unconditional, help: "Texts scored in one forward pass at most (1 … 4096).")
    var maxBatch = 256
    @Option(parsing: .unconditional, help: "How long a free compute thread waits for more requests to batch, in milliseconds (0 … 100).")
    var batchWindowMs = 0.0
    @Option(parsing: .unconditional, help: "Seconds a connection may stay idle before it is closed, in (0, 86400].")
    var idleTimeout = 30.0
    @Option(parsing: .unconditional, help: "Seconds a request's body may take to arrive (408 after), in (0, 86400].")
    var requestTimeout = 10.0
    @Option(parsing: .unconditional, help: "Seconds between checks of the weights file for a new version, 0.05 … 86400 (0: only SIGHUP reloads).")
    var watchInterval = 1.0
    @Option(parsing: .unconditional, help: "Connections open at once at most, 1 … 1000000; more wait to be accepted (default: the open-file limit less a reserve for reloads, logs and the model's files).")
    var maxConnections: Int?

    func validate() throws {
        try refuseEmptyPaths([("--weights", weights)])
        guard !host.isEmpty else { throw ValidationError("--host needs an address or a name, not an empty string") }
        guard (0 ... 65535).contains(port) else { throw ValidationError("--port must be in 0 … 65535, not \(port)") }
        guard (1 ... 64).contains(computeThreads) else { throw ValidationError("--compute-threads must be in 1 … 64, not \(computeThreads)") }
        guard (1 ... 4096).contains(maxBatch) else { throw ValidationError("--max-batch must be in 1 … 4096, not \(maxBatch)") }
        guard (0 ... 100).contains(batchWindowMs) else { throw ValidationError("--batch-window-ms must be in 0 … 100, not \(batchWindowMs)") }
        guard idleTimeout > 0, idleTimeout <= 86_400 else { throw ValidationError("--idle-timeout must be in (0, 86400] seconds, not \(idleTimeout)") }
        guard requestTimeout > 0, requestTimeout <= 86_400 else { throw ValidationError("--request-timeout must be in (0, 86400] seconds, not \(requestTimeout)") }
        // Below 0.05 s the watch only spins (a change must hold still 0.2 s anyway): 1e-6 took 60% of a core idle.
        guard watchInterval == 0 || (0.05 ... 86_400).contains(watchInterval) else {
            throw ValidationError("--watch-interval must be 0 (off) or in 0.05 … 86400 seconds, not \(watchInterval)")
        }
        if let m = maxConnections, !(1 ... 1_000_000).contains(m) {
            throw ValidationError("--max-connections must be in 1 … 1000000, not \(m)")
        }
    }

    /// `rnn-dist inspect PATH` in a child process, before a reload: a file whose metadata crash the
    /// HDF5 library ends the child (exit 2 from the fault guard, or a signal), not the server. nil
    /// when the child did not crash: the load then reads the file and names any other damage itself.
    @Sendable static func inspectInAnotherProcess(_ path: String) throws -> String? {
        // posix_spawn, not Foundation's Process: once a spawn was tried with no descriptor left (a
        // server at its limit of connections), Process never started a child again (EBADF), and each
        // reload after that failed, for the server's life. A child that cannot start now (EMFILE,
        // EAGAIN) defers the reload: the file is neither loaded unchecked nor held bad.
        func deferred(_ what: String, _ code: Int32) -> ReloadDeferred { ReloadDeferred(path, what, code: code) }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw deferred("no pipe for the checking process", errno) }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var readEnd = pipeEnds[0]
        defer { if readEnd >= 0 { close(readEnd) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        // Only 0, 1 and 2: NIO's sockets are not close-on-exec, and a child holding the listening
        // socket and the connections kept closed connections open and the port taken after exit.
        closeFromThree(&actions)
        // Signals as a new process has them: UnixSignals ignores SIGHUP, SIGTERM and SIGINT here,
        // and this thread may block some.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), these = sigset_t()
        sigemptyset(&none)
        sigemptyset(&these)
        for s in [SIGHUP, SIGTERM, SIGINT, SIGPIPE, SIGUSR1, SIGUSR2] { sigaddset(&these, s) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &these)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // This very binary, as KernelChoice re-runs it; a path may begin with '-'.
        let argv: [UnsafeMutablePointer<CChar>?] = ["rnn-dist", "inspect", "--", path].map { $0.withCString { strdup($0) } } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, environ)
        close(pipeEnds[1])
        guard spawned == 0 else { throw deferred("the checking process could not start", spawned) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            if text.count < 1 << 16 { text += chunk[0 ..< n] }
        }
        close(readEnd)
        readEnd = -1
        var status: Int32 = 0
        var waited: pid_t
        repeat { waited = waitpid(pid, &status, 0) } while waited < 0 && errno == EINTR
        guard waited == pid else { throw deferred("the checking process could not be waited for", errno) }
        let signal = status & 0x7F, exitStatus = (status >> 8) & 0xFF   // WTERMSIG, WEXITSTATUS
        if signal != 0 && signal != 0x7F {
            return "reading it crashed a checking process (signal \(signal)): the file is damaged"
        }
        let stderr = String(decoding: text, as: UTF8.self)
        guard exitStatus == 2, stderr.contains("the HDF5 library crashed") else { return nil }
        let line = stderr.split(separator: "\n").first { $0.contains("the HDF5 library crashed") } ?? ""
        return String(line.dropFirst(line.hasPrefix("rnn-dist: error: ") ? 17 : 0))
    }

    /// The open-file limit (soft) less a reserve: a server that accepted until no descriptor was left
    /// could not open a new weights file, start the reload's check, or write a log line. The reserve
    /// is 64 descriptors, or half the limit when that is small.
    static func defaultMaxConnections() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return 1_000_000 }   // RLIM_INFINITY
        let soft = Int(clamping: limit.rlim_cur)
        return max(1, min(1_000_000, soft - min(64, soft / 2)))
    }

    /// Adds "close every descriptor from 3 up" to `actions`: glibc's
    /// `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; not exported to Swift by its
    /// header's feature macros, so looked up), else one close per descriptor open now.
    static func closeFromThree(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {   // RTLD_DEFAULT
            if unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3) == 0 { return }
        }
        guard let d = opendir("/proc/self/fd") else { return }
        defer { closedir(d) }
        let own = dirfd(d)
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name), fd >= 3, fd != own { posix_spawn_file_actions_addclose(&actions, fd) }
        }
    }

    func run() throws {
        var o = ServeOptions(weights: weights)
        // "[::1]", as the serving line and URLs write an IPv6 address, is the address ::1.
        o.host = host.count > 2 && host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        o.port = port
        o.computeThreads = computeThreads
        o.maxBatch = maxBatch
        o.batchWindow = batchWindowMs / 1000
        o.idleTimeout = idleTimeout
        o.requestTimeout = requestTimeout
        o.watchInterval = watchInterval
        o.maxConnections = maxConnections ?? Self.defaultMaxConnections()
        if let ms = ProcessInfo.processInfo.environment["RNN_DIST_SERVE_BATCH_DELAY_MS"].flatMap(Double.init), ms >= 0, ms <= 60_000 {
            o.batchDelay = ms / 1000
        }
        o.reloadCheck = Self.inspectInAnotherProcess
        let options = o
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await Server.run(options, ready: { host, port in
                    // An IPv6 address is bracketed in a URL (RFC 3986): http://[::1]:8080.
                    printLine("serving http://\(host.contains(":") ? "[\(host)]" : host):\(port) (\(options.weights))")
                }, log: { printLine("serve: " + $0, fd: 2) })
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let e = outcome.error { throw CLIError("\(e)") }
        printLine("serve: stopped")
    }
}

/// The server's result, set by its task.
private final class Outcome: @unchecked Sendable {
    var error: (any Error)?
}

/// One line written at once (and so flushed) to stdout or stderr.
private func printLine(_ s: String, fd: Int32 = 1) {
    let line = s + "\n"
    line.utf8CString.withUnsafeBufferPointer { p in _ = write(fd, p.baseAddress, p.count - 1) }
}
