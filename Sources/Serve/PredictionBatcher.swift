// Micro-batching: requests' texts wait in one queue; a fixed number of compute threads take them
// out in batches and score each batch in one forward pass. The HTTP side only enqueues and awaits,
// so its event loops never run the model.
//
// A compute thread that finds work waits at most `window` for more, or until `maxBatch` texts are
// queued, then takes every waiting request up to `maxBatch` texts (a request is never split; one
// larger than `maxBatch` goes alone and is scored in chunks). While a batch is computed the next
// requests queue up, so under load batches fill without waiting.

import Foundation
import RNN
import Training

/// The texts' predictions, in order, and the model that made them.
struct BatchAnswer: Sendable {
    let predictions: [Prediction]
    let model: LoadedModel
}

final class PredictionBatcher: @unchecked Sendable {
    private struct Job {
        let texts: [String]
        let arrived: DispatchTime
        let done: @Sendable (BatchAnswer) -> Void
    }

    let maxBatch: Int
    let window: Double
    /// Seconds slept before each batch (a test hook; 0 in use).
    let delay: Double
    private let store: ModelStore
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var head = 0
    private var queuedTexts = 0
    private var stopping = false
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    /// Called with each batch's number of texts (metrics).
    let onBatch: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - window: seconds a thread waits for more texts once the first has arrived.
    init(store: ModelStore, maxBatch: Int, window: Double, delay: Double = 0, onBatch: @escaping @Sendable (Int) -> Void) {
        self.delay = delay
        self.store = store
        self.maxBatch = maxBatch
        self.window = window
        self.onBatch = onBatch
        for i in 0 ..< store.threads {
            finished.enter()
            let t = Thread { [self] in
                ComputeSetup.configureProcess()
                run(thread: i)
                finished.leave()
            }
            t.name = "rnn-dist-compute-\(i)"
            t.stackSize = 8 << 20
            threads.append(t)
        }
        for t in threads { t.start() }
    }

    /// Scores `texts` in the next batch.
    func predict(_ texts: [String]) async -> BatchAnswer {
        await withCheckedContinuation { (c: CheckedContinuation<BatchAnswer, Never>) in
            condition.lock()
            queue.append(Job(texts: texts, arrived: .now(), done: { c.resume(returning: $0) }))
            queuedTexts += texts.count
            condition.signal()
            condition.unlock()
        }
    }

    /// Lets the threads finish the queued requests, then stops them.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
    }

    private func run(thread: Int) {
        while let jobs = nextBatch() {
            // The batch's model, taken with the batch: a reload from here on serves the next ones
            // (it was taken after the test hook's pause, so a request held there got the new model).
            let model = store.current
            let texts = jobs.flatMap(\.texts)
            if delay > 0 {
                FileHandle.standardError.write(Data("serve: test hook: holding a batch of \(texts.count) texts for model \(model.generation)\n".utf8))
                usleep(UInt32(delay * 1e6))
            }
            // One forward pass at a time, each of at most maxBatch texts (a request of more came
            // alone) and of at most Classifier.chunk (the classifier's own pass), counted as such.
            var predictions: [Prediction] = []
            predictions.reserveCapacity(texts.count)
            let pass = min(maxBatch, Classifier.chunk)
            for start in stride(from: 0, to: texts.count, by: pass) {
                let part = Array(texts[start ..< min(texts.count, start + pass)])
                onBatch(part.count)
                predictions += model.replicas[thread].classify(part)
            }
            var start = 0
            for job in jobs {
                let n = job.texts.count
                job.done(BatchAnswer(predictions: Array(predictions[start ..< start + n]), model: model))
                start += n
            }
        }
    }

    /// Waits for work, then for the window to close or the batch to fill; nil once stopped and empty.
    private func nextBatch() -> [Job]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            while head == queue.count {
                if stopping { return nil }
                condition.wait()
            }
            let deadline = queue[head].arrived.uptimeNanoseconds + UInt64(window * 1e9)
            let now = DispatchTime.now().uptimeNanoseconds
            if queuedTexts >= maxBatch || now >= deadline || stopping { break }
            // Another thread may take the queue meanwhile: look again after waking.
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
        }
        var jobs = [queue[head]]
        var count = queue[head].texts.count
        head += 1
        while head < queue.count, count + queue[head].texts.count <= maxBatch {
            count += queue[head].texts.count
            jobs.append(queue[head])
            head += 1
        }
        queuedTexts -= count
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        // Another thread may find work left over.
        if head < queue.count { condition.signal() }
        return jobs
    }
}
