import XCTest
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The page at `/` as a person uses it, in headless Chromium (Debian's `chromium`, installed by
/// Launch/test): type a review, press the button, read the label and probabilities. Chromium is
/// driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: fds 3 and 4, messages
/// separated by NUL). The screenshot is kept as a test artifact outside the repository.
final class BrowserTests: XCTestCase {
    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    func testThePageClassifiesATypedReview() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        guard let chromium = Self.chromium else {
            throw XCTSkip("chromium is not installed (Launch/test installs it)")
        }
        let tmp = try TempDir("BrowserTests")
        defer { tmp.remove() }
        // A small model of its own (the page does not care which).
        let toy = try ToyIMDB.write(at: tmp.file("raw"), perLabel: 60)
        XCTAssertEqual(try Subprocess.rnnDist(["prepare", "--source", toy, "-o", tmp.file("d.h5"), "--num-words", "60", "--maxlen", "30"]).status, 0)
        let train = try Subprocess.rnnDist(["train", "--data", tmp.file("d.h5"), "--run-dir", tmp.file("run"), "--epochs", "1",
                                            "--limit", "96", "--batch-size", "32", "--units", "4", "--embed-dim", "4", "--model", "gru"], timeout: 120)
        XCTAssertEqual(train.status, 0, train.stderr)
        let weights = tmp.file("run/model.weights.h5")
        let server = try ServerProcess(weights: weights, folder: tmp)
        defer { server.signal(SIGTERM); _ = server.waitForExit(10) }

        let review = "a wonderful film, the acting was great but the story was boring"
        let browser = try DevTools(chromium: chromium, profile: tmp.file("profile"))
        defer { browser.close() }
        let session = try browser.open("http://127.0.0.1:\(server.port)/")
        try browser.waitFor(session, "document.readyState === 'complete' && document.getElementById('model').textContent.includes('gru')")
        _ = try browser.evaluate(session, "document.getElementById('text').focus()")
        _ = try browser.call("Input.insertText", ["text": review], session: session)
        XCTAssertEqual(try browser.evaluate(session, "document.getElementById('text').value") as? String, review)
        // Click the button where it is on the page.
        let rect = try XCTUnwrap(browser.evaluate(session, """
            JSON.stringify((r => [r.x + r.width / 2, r.y + r.height / 2])(document.getElementById('submit').getBoundingClientRect()))
            """) as? String)
        let xy = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(rect.utf8)) as? [Double])
        for type in ["mousePressed", "mouseReleased"] {
            _ = try browser.call("Input.dispatchMouseEvent", ["type": type, "x": xy[0], "y": xy[1], "button": "left", "clickCount": 1], session: session)
        }
        try browser.waitFor(session, "document.getElementById('label') !== null")
        let label = try XCTUnwrap(browser.evaluate(session, "document.getElementById('label').textContent") as? String)
        let rows = try XCTUnwrap(browser.evaluate(session, """
            JSON.stringify([...document.querySelectorAll('#result .row')].map(r => [r.querySelector('.name').textContent, r.querySelector('.value').textContent]))
            """) as? String)
        let shown = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(rows.utf8)) as? [[String]])

        let expected = try XCTUnwrap(commandLinePredictions(weights: weights, [review]).first)
        XCTAssertEqual(label, expected.0)
        XCTAssertEqual(Set(shown.map { $0[0] }), Set(expected.1.keys))
        for row in shown {
            XCTAssertEqual(row[1], String(format: "%.4f", expected.1[row[0]] ?? -1), "the page shows \(row)")
        }
        // The screenshot, for a person to look at.
        let shot = try browser.call("Page.captureScreenshot", ["format": "png"], session: session)
        let png = try XCTUnwrap((shot["data"] as? String).flatMap { Data(base64Encoded: $0) })
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        let artifacts = ProcessInfo.processInfo.environment["RNN_DIST_TEST_ARTIFACTS"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("rnn-dist-test-artifacts").path
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let path = artifacts + "/serve-page.png"
        try png.write(to: URL(fileURLWithPath: path))
        print("BrowserTests: screenshot of the page at \(path)")
    }
}

/// Chromium's DevTools protocol over `--remote-debugging-pipe`.
final class DevTools {
    private var pid: pid_t = 0
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private var nextID = 1
    private var pending: [UInt8] = []

    init(chromium: String, profile: String) throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else { throw ClientError(description: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The browser reads commands on fd 3 and writes answers on fd 4.
        posix_spawn_file_actions_adddup2(&actions, input[0], 3)
        posix_spawn_file_actions_adddup2(&actions, output[1], 4)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                    "--remote-debugging-pipe", "--user-data-dir=\(profile)", "--window-size=900,700", "about:blank"]
        var argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let rc = posix_spawn(&pid, chromium, &actions, nil, &argv, environ)
        Glibc.close(input[0]); Glibc.close(output[1])
        toBrowser = input[1]; fromBrowser = output[0]
        guard rc == 0 else { throw ClientError(description: "cannot start \(chromium): \(rc)") }
    }

    func close() {
        _ = try? call("Browser.close", [:], timeout: 5)
        Glibc.close(toBrowser); Glibc.close(fromBrowser)
        var status: Int32 = 0
        for _ in 0 ..< 100 where waitpid(pid, &status, WNOHANG) == 0 { usleep(50_000) }
        if waitpid(pid, &status, WNOHANG) == 0 { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
    }

    /// Sends one command and returns its result (events in between are skipped).
    @discardableResult
    func call(_ method: String, _ params: [String: Any], session: String? = nil, timeout: Double = 30) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        let bytes = Array(try JSONSerialization.data(withJSONObject: message)) + [0]
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { write(toBrowser, $0.baseAddress! + sent, bytes.count - sent) }
            guard n > 0 else { throw ClientError(description: "DevTools pipe closed") }
            sent += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let end = pending.firstIndex(of: 0) {
                let text = Array(pending[..<end])
                pending.removeFirst(end + 1)
                guard let m = try? JSONSerialization.jsonObject(with: Data(text)) as? [String: Any], m["id"] as? Int == id else { continue }
                if let error = m["error"] { throw ClientError(description: "\(method): \(error)") }
                return m["result"] as? [String: Any] ?? [:]
            }
            var p = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ClientError(description: "\(method): no answer from the browser") }
            if poll(&p, 1, Int32(min(left, 1) * 1000)) > 0 {
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                let n = chunk.withUnsafeMutableBytes { read(fromBrowser, $0.baseAddress, 1 << 16) }
                guard n > 0 else { throw ClientError(description: "the browser closed the DevTools pipe") }
                pending += chunk[0 ..< n]
            }
        }
    }

    /// A new tab at `url`; returns its session.
    func open(_ url: String) throws -> String {
        let target = try call("Target.createTarget", ["url": "about:blank"])
        let attached = try call("Target.attachToTarget", ["targetId": target["targetId"] as? String ?? "", "flatten": true])
        let session = attached["sessionId"] as? String ?? ""
        try call("Page.enable", [:], session: session)
        try call("Page.navigate", ["url": url], session: session)
        return session
    }

    /// The value of a JavaScript expression in the page.
    func evaluate(_ session: String, _ expression: String) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
        if let e = r["exceptionDetails"] { throw ClientError(description: "\(expression.prefix(60)): \(e)") }
        return (r["result"] as? [String: Any])?["value"]
    }

    /// Waits until `condition` is true in the page.
    func waitFor(_ session: String, _ condition: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? evaluate(session, condition)) as? Bool == true { return }
            usleep(100_000)
        }
        throw ClientError(description: "the page never satisfied: \(condition)")
    }
}
