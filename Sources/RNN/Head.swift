// The head: what turns the last layer's output z (B, K) into probabilities, a loss, a decision and
// the gradient ∂loss/∂z that starts backward. A new kind of output is one new type conforming to
// `Head` and one case of `HeadSpec`.

import Foundation

/// Which head a model has (stored in its config).
public enum HeadSpec: String, Codable, Hashable, Sendable {
    /// One logit per sample, σ(z) the probability of class 1, binary cross-entropy (Keras
    /// `Dense(1, activation="sigmoid")` with `loss="binary_crossentropy"`).
    case sigmoid = "sigmoid_binary_crossentropy"
    /// K ≥ 2 logits per sample, softmax, sparse categorical cross-entropy on the class index (Keras
    /// `Dense(K, activation="softmax")` with `loss="sparse_categorical_crossentropy"`).
    case softmax = "softmax_sparse_categorical_crossentropy"
    /// One logit per sample, trained as `sigmoid` is (binary cross-entropy on the logit, Keras
    /// `from_logits=True`): Keras's `Dense(1)` without an activation, as the book's 6.4 convnet ends.
    /// Keras's `predict` gives the logit z; rnn-dist's `predict` gives σ(z).
    case logit = "linear_binary_crossentropy_from_logits"

    /// Whether the head reads `width` values per sample: 1 (sigmoid) or at least 2 (softmax).
    func accepts(width: Int) -> Bool {
        switch self {
        case .sigmoid, .logit: return width == 1
        case .softmax: return width >= 2
        }
    }

    /// What the head needs, for messages.
    var needs: String {
        switch self {
        case .sigmoid, .logit: return "a vector of 1"
        case .softmax: return "a vector of at least 2"
        }
    }

    /// The head for a last layer of `width` values per sample (`accepts(width:)`).
    func head(width: Int) -> any Head {
        switch self {
        case .sigmoid, .logit: return SigmoidHead()
        case .softmax: return SoftmaxHead(classes: width)
        }
    }

    /// The head of a classifier of `classes` classes: sigmoid for 2, softmax above; and the last
    /// layer's width it reads.
    public static func forClasses(_ classes: Int) -> (spec: HeadSpec, width: Int) {
        classes <= 2 ? (.sigmoid, 1) : (.softmax, classes)
    }
}

/// Output activation, loss, decision rule: the one definition that training, validation, `eval`
/// and `predict` share. Labels are class indices stored as Float (0 or 1 for a binary head).
public protocol Head: Sendable {
    /// K: values per sample (logits).
    var outputs: Int { get }
    /// The number of classes (2 for one sigmoid logit).
    var classes: Int { get }
    /// Every class's probability for one sample's logits, in class order.
    func probabilities(logits z: UnsafePointer<Float>) -> [Double]
    /// The loss of one sample with logits z (K values) and its label.
    func loss(logits z: UnsafePointer<Float>, label: Float) -> Double
    /// The predicted class of one sample.
    func predictedClass(logits z: UnsafePointer<Float>) -> Int
    /// dZ (B, K) = ∂(Σ loss)/∂z for the batch's logits z (B, K).
    func backward(logits z: UnsafePointer<Float>, labels y: UnsafeBufferPointer<Float>, into dZ: UnsafeMutablePointer<Float>)
}

extension Head {
    /// Loss sum and correct count of a batch's logits z (B, K).
    func statistics(logits z: UnsafePointer<Float>, labels y: UnsafeBufferPointer<Float>) -> BatchStats {
        var stats = BatchStats(count: y.count)
        for b in 0..<y.count {
            let zb = z + b * outputs
            stats.lossSum += loss(logits: zb, label: y[b])
            if predictedClass(logits: zb) == Int(y[b]) { stats.correct += 1 }
        }
        return stats
    }
}

/// Sigmoid + binary cross-entropy, decided on the logit.
public struct SigmoidHead: Head {
    init() {}

    public var outputs: Int { 1 }
    public var classes: Int { 2 }

    /// [1 − σ(z), σ(z)].
    public func probabilities(logits z: UnsafePointer<Float>) -> [Double] {
        let p = Double(Self.probability(logit: z.pointee))
        return [1 - p, p]
    }

    /// Binary cross-entropy of logit z against label y, stable for any z:
    /// max(z, 0) − z·y + log(1 + e^{−|z|}) (TensorFlow's `sigmoid_cross_entropy_with_logits`, which
    /// Keras 3 uses when the output layer is a sigmoid).
    @inline(__always)
    static func crossEntropy(logit z: Float, label y: Float) -> Double {
        let zd = Double(z), yd = Double(y)
        return max(zd, 0) - zd * yd + Foundation.log1p(Foundation.exp(-abs(zd)))
    }

    /// Positive when σ(z) ≥ ½, i.e. z ≥ 0 (decided on the logit, so no rounding of σ near ½ can flip it).
    @inline(__always)
    public static func predictsPositive(logit z: Float) -> Bool { z >= 0 }

    /// σ(z), the probability of class 1.
    public static func probability(logit z: Float) -> Float { exactSigmoid(z) }

    public func loss(logits z: UnsafePointer<Float>, label: Float) -> Double {
        Self.crossEntropy(logit: z.pointee, label: label)
    }

    public func predictedClass(logits z: UnsafePointer<Float>) -> Int { Self.predictsPositive(logit: z.pointee) ? 1 : 0 }

    /// dz = σ(z) − y per sample (summed over the batch later, not averaged).
    public func backward(logits z: UnsafePointer<Float>, labels y: UnsafeBufferPointer<Float>, into dZ: UnsafeMutablePointer<Float>) {
        for b in 0..<y.count { dZ[b] = exactSigmoid(z[b]) - y[b] }
    }
}

/// Softmax + sparse categorical cross-entropy over K classes, decided by the largest logit (the
/// first one on a tie).
public struct SoftmaxHead: Head {
    public let classes: Int
    public var outputs: Int { classes }

    init(classes: Int) {
        precondition(classes >= 2)
        self.classes = classes
    }

    /// log Σ_k e^{z_k} − z_y, in Double with the largest logit subtracted first (so no exp overflows).
    public func loss(logits z: UnsafePointer<Float>, label: Float) -> Double {
        let m = Double(z[predictedClass(logits: z)])
        var sum = 0.0
        for k in 0..<classes { sum += Foundation.exp(Double(z[k]) - m) }
        return m + Foundation.log(sum) - Double(z[Int(label)])
    }

    public func predictedClass(logits z: UnsafePointer<Float>) -> Int {
        var best = 0
        for k in 1..<classes where z[k] > z[best] { best = k }
        return best
    }

    /// softmax(z) in Double: e^{z_k − max} / Σ.
    public func probabilities(logits z: UnsafePointer<Float>) -> [Double] {
        let m = Double(z[predictedClass(logits: z)])
        let e = (0..<classes).map { Foundation.exp(Double(z[$0]) - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// dz_k = softmax(z)_k − [k = y] per sample (summed over the batch later, not averaged).
    public func backward(logits z: UnsafePointer<Float>, labels y: UnsafeBufferPointer<Float>, into dZ: UnsafeMutablePointer<Float>) {
        for b in 0..<y.count {
            let zb = z + b * classes, db = dZ + b * classes
            let p = probabilities(logits: zb)
            for k in 0..<classes { db[k] = Float(p[k]) }
            db[Int(y[b])] -= 1
        }
    }
}

/// Loss and accuracy counts of some samples; sums, so that ranks and batches combine exactly.
public struct BatchStats: Sendable, Equatable {
    /// Σ per-sample loss.
    public var lossSum: Double
    /// Number of samples whose predicted class is their label.
    public var correct: Int
    /// Number of samples.
    public var count: Int

    public init(lossSum: Double = 0, correct: Int = 0, count: Int = 0) {
        self.lossSum = lossSum
        self.correct = correct
        self.count = count
    }

    public static let zero = BatchStats()

    /// Mean loss (NaN for no samples).
    public var loss: Double { count > 0 ? lossSum / Double(count) : .nan }
    /// Fraction correct (NaN for no samples).
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : .nan }

    public static func + (a: BatchStats, b: BatchStats) -> BatchStats {
        BatchStats(lossSum: a.lossSum + b.lossSum, correct: a.correct + b.correct, count: a.count + b.count)
    }

    public static func += (a: inout BatchStats, b: BatchStats) { a = a + b }
}
