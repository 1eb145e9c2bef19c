// The routes' work, and the middleware that keeps every answer well-formed: JSON errors, 404 and 405,
// the metrics of every request.

import Foundation
import Hummingbird
import JSONSyntax
import NIOCore

struct Handlers: Sendable {
    let store: ModelStore
    let batcher: PredictionBatcher
    let metrics: ServeMetrics
    let options: ServeOptions

    func predict(_ request: Request) async throws -> Response {
        let limit = options.maxBodyBytes
        // A body declared too large or encoded is refused at once, before it is read.
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw HTTPError(.contentTooLarge, message: "the body is over the limit of \(limit) bytes (Content-Length \(declared))")
        }
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw HTTPError(.unsupportedMediaType, message: "Content-Encoding \(encoding.prefix(40)) is not supported: send the body uncompressed")
        }
        let body = try await withDeadline(seconds: options.requestTimeout) {
            var r = request
            do { return try await r.collectBody(upTo: limit) } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
                throw HTTPError(.contentTooLarge, message: "the body is over the limit of \(limit) bytes")
            } catch let e as any HTTPResponseError {
                throw e
            } catch {
                // The client sent what HTTP cannot decode (e.g. a broken chunked encoding): its fault, not ours.
                throw HTTPError(.badRequest, message: "the body could not be read as HTTP (\(String(describing: error).prefix(200)))")
            }
        }
        let texts = try Self.texts(fromBody: Data(body.readableBytesView), maxTexts: options.maxTexts)
        let answer = await batcher.predict(texts)
        let names = answer.model.classNames
        let predictions: [[String: Any]] = answer.predictions.map { p in
            ["label": names[p.predictedClass],
             "probabilities": Dictionary(uniqueKeysWithValues: zip(names, p.probabilities))]
        }
        return try Self.json(["predictions": predictions])
    }

    /// The request's texts, or an error that names what is wrong with the body.
    static func texts(fromBody bytes: Data, maxTexts: Int) throws -> [String] {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw HTTPError(.badRequest, message: "the body is not valid UTF-8")
        }
        // Foundation's parser accepts a trailing comma (`{"texts": ["a",]}`); Python's json and the
        // RFC refuse it, and so does serve (JSONSyntax), naming the byte.
        let (problem, textsKeys) = bytes.withUnsafeBytes { raw in
            let json = raw.bindMemory(to: UInt8.self)
            let (problem, members) = JSONSyntax.check(json, memberDepth: 1)
            return (problem, members.count { JSONSyntax.string($0.key, in: json) == "texts" })
        }
        if let problem {
            throw HTTPError(.badRequest, message: "the body \(JSONSyntax.isTooDeep(problem) ? "nests arrays and objects deeper than the \(JSONSyntax.maxDepth) levels serve reads" : "is not JSON") (\(problem)): expected {\"texts\": [\"…\", …]}")
        }
        // JSON leaves open which of a repeated key's values counts (Python's json keeps the last).
        if textsKeys > 1 {
            throw HTTPError(.badRequest, message: "the body has the key \"texts\" \(textsKeys) times: expected {\"texts\": [\"…\", …]}")
        }
        // Read from the checked text (JSONSerialization refused some JSON the RFC and Python accept,
        // a number such as 1e400 or an escaped lone surrogate, without naming anything).
        let object = bytes.withUnsafeBytes { JSONValue.parse(checked: $0.bindMemory(to: UInt8.self)) }
        guard case .object(let dict) = object else {
            throw HTTPError(.badRequest, message: "the body must be a JSON object: {\"texts\": [\"…\", …]}")
        }
        guard let value = dict["texts"] else {
            throw HTTPError(.badRequest, message: "the body has no \"texts\": expected {\"texts\": [\"…\", …]}")
        }
        guard case .array(let list) = value else {
            throw HTTPError(.badRequest, message: "\"texts\" must be an array of strings")
        }
        guard list.count <= maxTexts else {
            throw HTTPError(.contentTooLarge, message: "\(list.count) texts in one request; at most \(maxTexts)")
        }
        var texts: [String] = []
        texts.reserveCapacity(list.count)
        for (i, t) in list.enumerated() {
            guard case .string(let s) = t else {
                throw HTTPError(.badRequest, message: "\"texts\"[\(i)] is not a string")
            }
            texts.append(s)
        }
        return texts
    }

    func health() -> Response {
        let m = store.current
        return (try? Self.json(["status": "ok", "model": m.summary, "weights": options.weights,
                                "generation": m.generation, "classes": m.classNames]))
            ?? Response(status: .internalServerError)
    }

    func metricsText() -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: metrics.text())))
    }

    func page() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: Page.html)))
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Runs `work`, or throws 408 when it has not finished after `seconds`.
func withDeadline<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw HTTPError(.requestTimeout, message: "the request's body did not arrive within \(seconds) s")
        }
        return value
    }
}

/// Turns every error into `{"error": "…"}` with the error's status (500 for an unexpected one).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError {
            var r = try Handlers.json(["error": e.body ?? e.status.reasonPhrase], status: e.status)
            r.headers.append(contentsOf: e.headers)
            return r
        } catch let e as any HTTPResponseError {
            let message = e.status == .contentTooLarge ? "the body is over the limit" : e.status.reasonPhrase
            return try Handlers.json(["error": message], status: e.status)
        } catch {
            return try Handlers.json(["error": "internal error"], status: .internalServerError)
        }
    }
}

/// 404 for a path the server does not have, 405 (with Allow) for a method it does not take there.
/// HEAD is answered wherever GET is (the router answers it with GET's headers and no body).
struct RouteGuard<Context: RequestContext>: RouterMiddleware {
    static var methods: [String: [HTTPRequest.Method]] {
        ["/": [.get, .head], "/healthz": [.get, .head], "/metrics": [.get, .head], "/v1/predict": [.post]]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let allowed = Self.methods[request.uri.path] else {
            throw HTTPError(.notFound, message: "no such path: \(request.uri.path.prefix(200))")
        }
        guard allowed.contains(request.method) else {
            throw HTTPError(.methodNotAllowed, headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")],
                            message: "\(request.method.rawValue.prefix(20)) is not allowed on \(request.uri.path); use \(allowed[0].rawValue)")
        }
        return try await next(request, context)
    }
}

/// Counts every answer by path and status and times it.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.request(path: request.uri.path, status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }
}
