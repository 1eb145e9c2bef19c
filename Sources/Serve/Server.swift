// `rnn-dist serve`: the trained classifier behind HTTP (Hummingbird 2).
//
//   POST /v1/predict  {"texts": ["…", …]} → {"predictions": [{"label": …, "probabilities": {…}}, …]}
//   GET  /healthz     {"status": "ok", …}
//   GET  /metrics     Prometheus text format
//   GET  /            a small page to try the model by hand
//
// Every error is a JSON object {"error": "…"} with its status. SIGHUP, or a new weights file at the
// same path, reloads the model; SIGTERM or SIGINT stops accepting, answers what is in flight, exits 0.

import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Training

public struct ServeOptions: Sendable {
    public var weights: String
    public var host = "127.0.0.1"
    public var port = 8080
    /// Compute threads, each with its own copy of the model.
    public var computeThreads = 1
    /// Texts per forward pass at most, and how long a thread waits for more (seconds).
    public var maxBatch = 256
    public var batchWindow = 0.0
    /// Limits of one request.
    public var maxBodyBytes = 1 << 20
    public var maxTexts = 1000
    /// A connection with nothing to read or write for this long is closed (seconds).
    public var idleTimeout = 30.0
    /// A request whose body has not arrived completely after this long gets 408 (seconds).
    public var requestTimeout = 10.0
    /// How often the weights file is checked for a new version (seconds; 0: never).
    public var watchInterval = 1.0
    /// Connections open at once at most (nil: no limit); more wait in the listen queue.
    public var maxConnections: Int?
    /// A pause before each batch is computed (seconds): a test hook (RNN_DIST_SERVE_BATCH_DELAY_MS)
    /// that holds requests in flight, for the shutdown and reload tests.
    public var batchDelay = 0.0
    /// A check of a replacement file, run before each reload: nil when the file may be loaded, else
    /// why not (the reload then fails and the old model keeps answering). The CLI's reads the file
    /// in another process, so a file that crashes the HDF5 library ends that one, not the server.
    /// It throws `ReloadDeferred` when it cannot check now (the reload is tried again).
    public var reloadCheck: (@Sendable (String) throws -> String?)?

    public init(weights: String) { self.weights = weights }
}

/// A failure to start: one line for the CLI.
public struct ServeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

public enum Server {
    /// Loads the model, serves until SIGTERM or SIGINT, then returns. `ready` gets the bound address
    /// once the server listens (the port is the real one when `port` is 0).
    public static func run(_ options: ServeOptions, ready: @escaping @Sendable (String, Int) -> Void,
                           log: @escaping @Sendable (String) -> Void) async throws {
        let store: ModelStore
        do { store = try ModelStore(path: options.weights, threads: options.computeThreads, check: options.reloadCheck) } catch {
            throw ServeError("\(error)")
        }
        let metrics = ServeMetrics()
        metrics.model(store.current, file: options.weights)
        store.onReload = { result in
            switch result {
            case .success(let m):
                metrics.reload(succeeded: true)
                metrics.model(m, file: options.weights)
                log("reloaded \(options.weights) (model \(m.generation), \(m.summary), \(String(format: "%.3f", m.loadSeconds)) s)")
            case .failure(let e):
                metrics.reload(succeeded: false)
                log("reload of \(options.weights) failed, the previous model keeps answering: \(e)")
            }
        }
        let batcher = PredictionBatcher(store: store, maxBatch: options.maxBatch, window: options.batchWindow,
                                        delay: options.batchDelay, onBatch: { metrics.batch(texts: $0) })
        defer { batcher.stop() }

        let router = Router(options: .autoGenerateHeadEndpoints)   // HEAD wherever GET is
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: RouteGuard())
        let handlers = Handlers(store: store, batcher: batcher, metrics: metrics, options: options)
        router.get("/") { _, _ in handlers.page() }
        router.get("/healthz") { _, _ in handlers.health() }
        router.get("/metrics") { _, _ in handlers.metricsText() }
        router.post("/v1/predict") { request, _ in try await handlers.predict(request) }

        var logger = Logger(label: "rnn-dist-serve")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                ServeHTTP1Channel(inner: HTTP1Channel(responder: responder,
                                                      configuration: .init(idleTimeout: .milliseconds(Int64(options.idleTimeout * 1000)))),
                                  maxBodyBytes: options.maxBodyBytes)
            },
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "rnn-dist",
                                 availableConnectionsDelegate: options.maxConnections.map { MaximumAvailableConnections($0) }),
            services: [ReloadService(store: store, interval: options.watchInterval)],
            onServerRunning: { channel in
                ready(options.host, channel.localAddress?.port ?? options.port)
            },
            logger: logger)
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            // NIO's IOError reads "bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)".
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw ServeError("cannot serve on \(options.host):\(options.port): \(reason)")
        }
    }
}

/// Reloads the model on SIGHUP and when the weights file changes.
struct ReloadService: Service {
    let store: ModelStore
    let interval: Double

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    store.requestReload()
                }
            }
            if interval > 0 {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                        await store.reloadIfChangedInBackground()
                    }
                }
            }
            // Both loops end with the service: graceful shutdown cancels this task.
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
