import Foundation
import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP answer as read off the socket.
struct HTTPAnswer: Sendable {
    let status: Int
    /// Header names in lower case.
    let headers: [String: String]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
    var object: [String: Any]? { json as? [String: Any] }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
}

/// A raw HTTP/1.1 client on one TCP connection: it sends exactly the bytes a test gives it, so tests
/// can send what no well-behaved client would.
final class RawHTTPConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int, timeout: Double = 30) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError(description: "connect to port \(port): errno \(e)")
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError(description: "send: errno \(errno)") }
            sent += n
        }
    }

    /// A request with a Content-Length body (when given) on this keep-alive connection.
    func request(_ method: String, _ path: String, body: [UInt8]? = nil,
                 contentType: String = "application/json") throws -> HTTPAnswer {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8) + (body ?? []))
        return try readAnswer()
    }

    private var buffer: [UInt8] = []

    /// Reads one answer (a HEAD request's: the head only); throws when the server closed the
    /// connection first.
    func readAnswer(head: Bool = false) throws -> HTTPAnswer {
        func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            guard n > 0 else { throw ClientError(description: n == 0 ? "connection closed" : "recv: errno \(errno)") }
            buffer += chunk[0 ..< n]
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            if buffer.count >= 4 {
                end = (0 ... buffer.count - 4).first { buffer[$0 ..< $0 + 4].elementsEqual(separator) }
            }
            if end == nil { try fill() }
        }
        let headText = String(decoding: buffer[0 ..< end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw ClientError(description: "bad status line: \(headText.prefix(80))")
        }
        var headers: [String: String] = [:]
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body: [UInt8] = []
        if head {
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            while buffer.count < length { try fill() }
            body = Array(buffer[0 ..< length])
            buffer.removeFirst(length)
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    lineEnd = buffer.count >= 2 ? (0 ..< buffer.count - 1).first { buffer[$0] == 13 && buffer[$0 + 1] == 10 } : nil
                    if lineEnd == nil { try fill() }
                }
                let size = Int(String(decoding: buffer[0 ..< lineEnd!], as: UTF8.self), radix: 16) ?? 0
                buffer.removeFirst(lineEnd! + 2)
                while buffer.count < size + 2 { try fill() }
                body += buffer[0 ..< size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }

    /// True when the server closes the connection within `seconds` (reading nothing else).
    func closesWithin(_ seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
                if n <= 0 { return true }
                buffer += chunk[0 ..< n]
            }
        }
        return false
    }
}

/// `rnn-dist serve` in a child process on a free loopback port.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let stdoutPath: String
    let stderrPath: String

    /// - Parameters:
    ///   - batchDelay: milliseconds each batch waits before it is computed (RNN_DIST_SERVE_BATCH_DELAY_MS).
    ///   - openFiles: the limit of open files (`ulimit -n`, set by a shell that then execs serve).
    init(weights: String, extra: [String] = [], folder: TempDir, batchDelay: Int = 0, openFiles: Int? = nil,
         timeout: Double = 30) throws {
        stdoutPath = folder.file("serve-\(UUID().uuidString).out")
        stderrPath = folder.file("serve-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Subprocess.rnnDist)
        process.arguments = ["serve", "--weights", weights, "--port", "0"] + extra
        if let openFiles {
            // One event loop, whatever the cores: each takes descriptors of the few the limit allows.
            var env = process.environment ?? ProcessInfo.processInfo.environment
            env["NIO_SINGLETON_GROUP_LOOP_COUNT"] = "1"
            process.environment = env
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", "ulimit -n \(openFiles) && exec \"$0\" \"$@\"", Subprocess.rnnDist] + process.arguments!
        }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        if batchDelay > 0 {
            var env = process.environment ?? ProcessInfo.processInfo.environment
            env["RNN_DIST_SERVE_BATCH_DELAY_MS"] = String(batchDelay)
            process.environment = env
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var found: Int?
        while found == nil {
            let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            if let r = out.range(of: #"serving http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(out[r].split(separator: ":").last!)
            } else if !process.isRunning || Date() > deadline {
                if process.isRunning { process.terminate() }
                let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                throw ClientError(description: "serve did not start: \(err)")
            } else {
                usleep(20_000)
            }
        }
        port = found!
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func connect() throws -> RawHTTPConnection { try RawHTTPConnection(port: port) }

    /// POST /v1/predict on a new connection.
    func predict(_ texts: [String]) throws -> HTTPAnswer {
        let body = try JSONSerialization.data(withJSONObject: ["texts": texts])
        return try connect().request("POST", "/v1/predict", body: Array(body))
    }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// Waits for the exit; nil after `seconds` (the child is then killed).
    func waitForExit(_ seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }
}

/// `predict --json`'s answers: (label, class → probability) per text (texts one per line on stdin:
/// none may hold a line break or be blank).
func commandLinePredictions(weights: String, _ texts: [String]) throws -> [(String, [String: Double])] {
    let r = try Subprocess.rnnDist(["predict", "--json", "--weights", weights], stdin: texts.joined(separator: "\n") + "\n")
    guard r.status == 0 else { throw ClientError(description: "predict failed: \(r.stderr)") }
    return try r.stdout.split(separator: "\n").map { line in
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return (try XCTUnwrap(o["label"] as? String), try XCTUnwrap(o["probabilities"] as? [String: Double]))
    }
}

/// The server's answers in the same form.
func serverPredictions(_ answer: HTTPAnswer) throws -> [(String, [String: Double])] {
    let o = try XCTUnwrap(answer.object, answer.text)
    let list = try XCTUnwrap(o["predictions"] as? [[String: Any]], answer.text)
    return try list.map { (try XCTUnwrap($0["label"] as? String), try XCTUnwrap($0["probabilities"] as? [String: Double])) }
}
