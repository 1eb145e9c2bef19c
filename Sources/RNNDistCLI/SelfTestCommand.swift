import ArgumentParser
import BLAS
import Foundation
import MPI
import RNN
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Hidden checks of the MPI layer, run by the test suite under `mpirun -n 2` and `-n 4`.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Internal checks of the MPI layer and the process set-up (used by the tests).",
        shouldDisplay: false,
        subcommands: [Collectives.self, Abort.self, FloatModeCheck.self, TimelineCost.self, Products.self, AllReduceTime.self])

    /// What `--timeline` costs: records `--spans` empty spans, then flushes them to a file as a
    /// checkpoint does, and prints the seconds per span of each (JSON, for Launch/bench.py).
    struct TimelineCost: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "timeline-cost")
        @Option(parsing: .unconditional, help: "Spans to record.") var spans = 200_000
        @Option(help: "The trace file to write (removed afterwards).") var output = "/tmp/rnn-dist-timeline-cost.json"
        func run() throws {
            let comm = try Communicator.world()
            let timeline = try Timeline(path: output, comm: comm)
            let t0 = comm.wallTime()
            for _ in 0 ..< spans { timeline.span("step") {} }
            let t1 = comm.wallTime()
            try timeline.flush()
            let t2 = comm.wallTime()
            try? FileManager.default.removeItem(atPath: output)
            if comm.isRoot {
                print(#"{"spans":\#(spans),"record_seconds_per_span":\#((t1 - t0) / Double(spans)),"# +
                      #""flush_seconds_per_span":\#((t2 - t1) / Double(spans))}"#)
            }
            try comm.finalize()
        }
    }

    /// The `floor` benchmark's product time: reads the counts `RNN_DIST_COUNT_PRODUCTS` wrote, times
    /// one call of each shape on this machine (BLAS.secondsPerCall) and prints, as JSON, the calls,
    /// their FLOP and their time (Σ count × seconds per call) in OpenBLAS (`product_seconds`) and as
    /// the code runs them (`as_run_seconds`: the own kernel where it takes them), with the shapes
    /// that cost most.
    struct Products: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "products")
        @Argument(help: "The counts file.") var counts: String
        @Option(parsing: .unconditional, help: "Seconds spent timing each shape.") var budget = 0.05
        @Option(parsing: .unconditional, help: "Divide the counts by this (e.g. the epochs the counts cover).") var per = 1.0

        func run() throws {
            ComputeSetup.configureProcess()
            let entries = try ProductCounting.read(counts)
            var rows: [(ProductCounting.Entry, Double)] = []
            var asRun = 0.0
            for e in entries {
                rows.append((e, BLAS.secondsPerCall(e.shape, budget: budget)))
                asRun += BLAS.secondsPerCall(e.shape, budget: budget, asRun: true) * Double(e.count)
            }
            let calls = Double(entries.reduce(0) { $0 + $1.count }) / per
            let flop = entries.reduce(0.0) { $0 + $1.shape.flop * Double($1.count) } / per
            let seconds = rows.reduce(0.0) { $0 + $1.1 * Double($1.0.count) } / per
            let top = rows.sorted { $0.1 * Double($0.0.count) > $1.1 * Double($1.0.count) }.prefix(8).map { e, t in
                let s = e.shape
                return "{\"shape\":\"\(s.gemv ? "gemv" : "gemm") \(s.transA ? "T" : "N")\(s.transB ? "T" : "N") \(s.m)x\(s.n)x\(s.k)\","
                    + "\"calls\":\(Double(e.count) / per),\"us_per_call\":\(t * 1e6),\"gflops\":\(s.flop / t / 1e9)}"
            }
            print("{\"calls\":\(calls),\"flop\":\(flop),\"product_seconds\":\(seconds),\"as_run_seconds\":\(asRun / per),\"gflops\":\(seconds > 0 ? flop / seconds / 1e9 : 0),"
                  + "\"shapes\":\(entries.count),\"top\":[\(top.joined(separator: ","))]}")
        }
    }

    /// Whether this process flushes subnormals to zero, as every command sets at start-up; prints
    /// `flush_subnormals=1 product=0` when the mode is on and a subnormal product really is 0.
    struct FloatModeCheck: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "float-mode")
        @Argument(help: "A small normal number; its square is subnormal.") var value: Float = 1e-20
        func run() throws {
            let product = value * value   // 1e-40: subnormal, flushed to 0 under FTZ
            print("flush_subnormals=\(ComputeSetup.flushesSubnormals ? 1 : 0) product=\(product) blas_kernel=\(ComputeSetup.blasKernel) own_gemm=\(BLAS.ownKernel ? 1 : 0)")
        }
    }

    /// All-reduce and broadcast of every supported type; rank 0 prints one line per check.
    struct Collectives: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "collectives")
        @Option(help: "Run every collective under the watchdog with this timeout in seconds (train's --collective-timeout); 0: blocking calls.")
        var watchdog = 0.0
        func run() throws {
            let comm = try Communicator.world()
            if watchdog > 0 { try comm.startWatchdog(timeout: watchdog, hostName: "selftest") }
            let n = comm.size, r = comm.rank
            var results: [String] = ["size=\(n)"]
            // Under the watchdog, all-reduces above 2,000 bytes go in place (above 64 MB in training).
            if watchdog > 0 { Communicator.scratchLimit = 2_000 }

            // Sum of (rank + 1) · (i + 1) over ranks = (i + 1) · n(n+1)/2.
            var f = (0 ..< 1000).map { Float((r + 1) * ($0 + 1)) }
            try comm.allReduce(&f)
            let expectF = (0 ..< 1000).map { Float(($0 + 1) * n * (n + 1) / 2) }
            results.append("allreduce_float=\(f == expectF ? "ok" : "BAD")")

            var ok: Bool, okAll: Int32
            // Non-blocking, in place and out of place, large enough (400 kB) that at 4 ranks Open MPI
            // reduce-scatters and all-gathers out of place (a binomial tree in place).
            let count = 100_000
            let original = (0 ..< count).map { Float((r + 1) * ($0 % 1000 + 1)) }
            var inPlace = original
            let send = original
            var received = [Float](repeating: -1, count: count)
            try inPlace.withUnsafeMutableBufferPointer { a in
                try send.withUnsafeBufferPointer { s in
                    try received.withUnsafeMutableBufferPointer { d in
                        var first = try comm.startAllReduce(a)
                        var second = try comm.startAllReduce(s, into: d)
                        try comm.arriveBeforeWaiting()
                        try comm.wait(&first)
                        try comm.wait(&second)
                        try comm.doneWaiting()
                    }
                }
            }
            let expectNB = (0 ..< count).map { Float(($0 % 1000 + 1) * n * (n + 1) / 2) }
            ok = inPlace == expectNB && received == expectNB && send == original
            okAll = try comm.allReduce(Int32(ok ? 0 : 1), op: .max)
            results.append("iallreduce_float=\(okAll == 0 ? "ok" : "BAD")")

            var d = [Double(r) + 0.5, -Double(r)]
            try comm.allReduce(&d, op: .max)
            results.append("allreduce_double_max=\(d == [Double(n - 1) + 0.5, 0] ? "ok" : "BAD")")

            var i = [Int64(r), Int64(1) << 40]
            try comm.allReduce(&i)
            results.append("allreduce_int64=\(i == [Int64(n * (n - 1) / 2), Int64(n) << 40] ? "ok" : "BAD")")

            // The minimum sits on the last rank, and every rank checks what it received.
            let m = try comm.allReduce(Int32(100 - r), op: .min)
            let minBad = try comm.allReduce(Int32(m == Int32(101 - n) ? 0 : 1), op: .max)
            results.append("allreduce_int32_min=\(minBad == 0 ? "ok" : "BAD")")

            var b = r == 0 ? (0 ..< 257).map { Float($0) * 0.25 } : [Float](repeating: -1, count: 257)
            try comm.broadcast(&b, root: 0)
            ok = b == (0 ..< 257).map { Float($0) * 0.25 }
            okAll = try comm.allReduce(Int32(ok ? 0 : 1))
            results.append("broadcast_float=\(okAll == 0 ? "ok" : "BAD")")

            let text = try comm.broadcast(r == n - 1 ? Array("from the last rank".utf8) : [], root: n - 1)
            ok = String(decoding: text, as: UTF8.self) == "from the last rank"
            okAll = try comm.allReduce(Int32(ok ? 0 : 1))
            results.append("broadcast_bytes=\(okAll == 0 ? "ok" : "BAD")")

            let gathered = try comm.allGather([Int64(r), Int64(-r)])
            ok = gathered == (0 ..< n).flatMap { [Int64($0), Int64(-$0)] }
            okAll = try comm.allReduce(Int32(ok ? 0 : 1))
            results.append("allgather_int64=\(okAll == 0 ? "ok" : "BAD")")

            // Bytes of a different length from every rank, gathered on the last one.
            let pieces = try comm.gather(Array(String(repeating: "x", count: r).utf8), root: n - 1)
            ok = r == n - 1 ? pieces == (0 ..< n).map { Array(String(repeating: "x", count: $0).utf8) } : pieces.isEmpty
            okAll = try comm.allReduce(Int32(ok ? 0 : 1))
            results.append("gather_bytes=\(okAll == 0 ? "ok" : "BAD")")

            try comm.barrier()
            if comm.isRoot { print(results.joined(separator: " ")) }
            try comm.finalize()
        }
    }

    /// The exchange behind backward's all-reduce, timed: `--values` Floats started and waited for
    /// `--reps` times in place and as many out of place, and `allReduce` (the blocking API, under
    /// the watchdog with `--watchdog`) as often, alternating, each after a barrier; rank 0
    /// prints the median milliseconds of each (JSON). On `Launch/cluster-sim` it shows what the
    /// algorithm Open MPI picks for each form costs on a shaped link.
    struct AllReduceTime: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "allreduce-time")
        @Option(parsing: .unconditional, help: "Floats per all-reduce.") var values = 140_000
        @Option(parsing: .unconditional, help: "Repetitions of each form.") var reps = 10
        @Option(help: "Under the watchdog with this timeout in seconds (train's --collective-timeout); 0: off.")
        var watchdog = 0.0
        func validate() throws {
            guard values >= 1, reps >= 1 else { throw ValidationError("--values and --reps must be at least 1") }
        }
        func run() throws {
            let comm = try Communicator.world()
            if watchdog > 0 { try comm.startWatchdog(timeout: watchdog, hostName: "selftest") }
            var a = [Float](repeating: 1, count: values)
            let s = [Float](repeating: 1, count: values)
            var d = [Float](repeating: 0, count: values)
            var times: [[Double]] = [[], [], []]
            for _ in 0 ..< reps {
                for form in 0 ..< 3 {
                    try comm.barrier()
                    let t0 = comm.wallTime()
                    if form == 2 {
                        try comm.allReduce(&a)      // the gradient exchange's call
                    } else if form == 0 {
                        try a.withUnsafeMutableBufferPointer { p in
                            var x = try comm.startAllReduce(p)
                            try comm.arriveBeforeWaiting()
                            try comm.wait(&x)
                            try comm.doneWaiting()
                        }
                    } else {
                        try s.withUnsafeBufferPointer { p in
                            try d.withUnsafeMutableBufferPointer { q in
                                var x = try comm.startAllReduce(p, into: q)
                                try comm.arriveBeforeWaiting()
                                try comm.wait(&x)
                                try comm.doneWaiting()
                            }
                        }
                    }
                    times[form].append((comm.wallTime() - t0) * 1e3)
                    a.withUnsafeMutableBufferPointer { $0.update(repeating: 1) }
                }
            }
            let median = { (x: [Double]) in x.sorted()[x.count / 2] }
            if comm.isRoot {
                print(#"{"ranks":\#(comm.size),"values":\#(values),"in_place_ms":\#(median(times[0])),"out_of_place_ms":\#(median(times[1])),"all_reduce_ms":\#(median(times[2])),"watchdog":\#(watchdog)}"#)
            }
            try comm.finalize()
        }
    }

    /// One rank calls `MPI_Abort(code)` while every other rank waits in a barrier: the job must end.
    struct Abort: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "abort")
        @Option(parsing: .unconditional, help: "The rank that aborts.") var rank = 1
        @Option(parsing: .unconditional, help: "The exit code it aborts with.") var code: Int32 = 7
        @Option(parsing: .unconditional, help: "Seconds the aborting rank waits first.") var delay = 0.5

        func run() throws {
            let comm = try Communicator.world()
            if comm.rank == rank {
                usleep(UInt32(delay * 1e6))
                printError("rank \(comm.rank) aborts on purpose with code \(code)")
                comm.abort(code: code)
            }
            try comm.barrier()  // never completes: the aborting rank never arrives
            try comm.finalize()
        }
    }
}
