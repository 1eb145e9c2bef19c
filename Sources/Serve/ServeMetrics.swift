// What `GET /metrics` reports, in Prometheus's text format (swift-prometheus).

import Foundation
import Prometheus

final class ServeMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    /// The paths the server answers; any other is counted as "other" (the label set stays bounded).
    static let paths: Set<String> = ["/", "/healthz", "/metrics", "/v1/predict"]

    private let latency: [String: DurationHistogram]
    private let batchTexts: ValueHistogram
    private let predictions: Counter
    private let loadSeconds: Gauge
    private let loadedAt: Gauge
    private let generation: Gauge
    private let lock = NSLock()
    private var info: Gauge?

    init() {
        let buckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                   .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                   .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5)]
        var latency: [String: DurationHistogram] = [:]
        for p in Self.paths.union(["other"]) {
            latency[p] = registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "http_request_duration",
                                                 unitName: "seconds", helpText: "Time from the request's head to its response, by path."),
                labels: [("path", p)], buckets: buckets)
        }
        self.latency = latency
        batchTexts = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "batch_texts", unitName: "",
                                             helpText: "Texts per forward pass (requests batched together)."),
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000])
        predictions = registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "predictions",
                                             unitName: "total", helpText: "Texts classified."))
        loadSeconds = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "model_load_duration",
                                             unitName: "seconds", helpText: "How long loading the current model took."))
        loadedAt = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "model_loaded_timestamp",
                                             unitName: "seconds", helpText: "When the current model was loaded (Unix time)."))
        generation = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "model_generation", unitName: "",
                                             helpText: "1 for the model loaded at start, +1 per successful reload."))
        // Both results from the start, at 0: an alert on rate(…{result="failed"}) has a series to read.
        for result in ["ok", "failed"] { _ = reloads(result) }
    }

    func request(path: String, status: Int, duration: Duration) {
        let p = Self.paths.contains(path) ? path : "other"
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "http_requests",
                                             unitName: "total", helpText: "Requests answered, by path and status."),
            labels: [("path", p), ("status", String(status))]).increment()
        latency[p]?.record(duration)
    }

    func batch(texts: Int) {
        batchTexts.record(Double(texts))
        predictions.increment(by: Int64(texts))
    }

    func reload(succeeded: Bool) { reloads(succeeded ? "ok" : "failed").increment() }

    /// The reload counter of one result (the same counter each time: the registry keeps it).
    private func reloads(_ result: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "model_reloads",
                                             unitName: "total", helpText: "Reloads of the weights file, by result."),
            labels: [("result", result)])
    }

    /// The model now answering: its file, architecture and load figures.
    func model(_ m: LoadedModel, file: String) {
        lock.lock(); defer { lock.unlock() }
        if let old = info { registry.unregisterGauge(old) }
        let g = registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "rnn_dist", metricName: "model_info", unitName: "",
                                             helpText: "The model answering (value 1): its weights file and layers."),
            labels: [("file", file), ("model", m.summary), ("classes", Self.jsonList(m.classNames))])
        g.set(to: 1.0)
        info = g
        loadSeconds.set(to: m.loadSeconds)
        loadedAt.set(to: m.loadedAt)
        generation.set(to: Double(m.generation))
    }

    func text() -> [UInt8] { registry.emitToBuffer() }

    /// Class names as a JSON array (`["neg","pos"]`): unambiguous whatever a name holds (a comma
    /// joined "a, b" and "a" "b" alike).
    static func jsonList(_ names: [String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: names, options: [.withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
