// Two parts of HTTP/1 that Hummingbird's conversion to HTTP types loses (they do not carry the
// request's version, and nothing answers `Expect`), settled on NIO's HTTP/1 parts before it.

import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// - An HTTP/1.0 request without `Connection: keep-alive` closes its connection after the response,
///   as HTTP/1.0 means (it waited for the idle timeout, 30 s, so `printf 'GET /healthz HTTP/1.0…' | nc`
///   hung): the request is given `Connection: close`, which Hummingbird honours.
/// - `Expect: 100-continue` gets its interim `100 Continue` when the body may come (a declared length
///   within the limit, or chunked), so such a client sends it at once (curl waited 1 s, a strict one
///   until the 408); a body over the limit gets no 100 and its 413 at once, as before. Only when no
///   earlier response is still being written (pipelined requests): a 100 then would land inside it.
final class HTTP1Semantics: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests read whose response has not ended (this handler's event loop only).
    private var unanswered = 0

    let maxBodyBytes: Int
    init(maxBodyBytes: Int) { self.maxBodyBytes = maxBodyBytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        unanswered += 1
        if head.version == .http1_0 && !head.isKeepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        if head.version != .http1_0, head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            let declared = head.headers["content-length"].first.map { Int($0) ?? Int.max }
            if unanswered == 1, declared.map({ $0 <= maxBodyBytes }) ?? true {
                let interim = HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .continue))
                context.writeAndFlush(NIOAny(interim), promise: nil)
            }
            head.headers.remove(name: "expect")
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }
}

/// Hummingbird's HTTP/1 channel with `HTTP1Semantics` in front of its conversion to HTTP types.
struct ServeHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let maxBodyBytes: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let codec = try channel.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self)
            try channel.pipeline.syncOperations.addHandler(HTTP1Semantics(maxBodyBytes: maxBodyBytes), position: .before(codec))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
