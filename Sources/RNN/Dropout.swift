// Dropout masks (Keras 3 `DropoutRNNCell`): inverted dropout — a kept unit is scaled by 1/(1−R), a
// dropped one is 0 — with masks of shape (batch, features) drawn once per sequence and reused at every
// time step. With recurrent dropout on, LSTM and GRU draw one input mask and one h_{t−1} mask per
// gate (Keras's implementation 1); with input dropout only, one input mask serves all gates.
//
// Where a mask comes from (docs/TRAINING.md §Dropout): each sample's masks are a pure function of
// (seed, epoch, the sample's position in the epoch's permutation, layer, direction, input or
// recurrent, gate), computed by a counter-based hash. They depend neither on the number of ranks
// nor on where a run was resumed, so a run's masks are the same at -n 1, 2 or 4 and after --resume.

/// The key of one training batch's masks: the run's seed, the epoch, and for each row of the batch
/// its position in the epoch's permutation.
public struct DropoutKey: Sendable, Equatable {
    var seed: UInt64
    var epoch: Int
    var positions: [Int]

    public init(seed: UInt64, epoch: Int, positions: [Int]) {
        self.seed = seed
        self.epoch = epoch
        self.positions = positions
    }
}

/// Which of a layer direction's masks.
public enum MaskSite: UInt64, Sendable {
    /// On the layer's input x_t (Keras `dropout`).
    case input = 1
    /// On h_{t−1} (Keras `recurrent_dropout`).
    case recurrent = 2
    /// A `Dropout` layer's output.
    case layer = 3
}

public enum DropoutMask {
    /// One SplitMix64 step from state x: a bijection of 64-bit words with full avalanche.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var generator = SplitMix64(state: x)
        return generator.next()
    }

    /// The hash of one mask's key; feature j of the mask then hashes `stream + j`.
    static func stream(seed: UInt64, epoch: Int, position: Int, layer: Int, direction: Int, site: MaskSite,
                       gate: Int) -> UInt64 {
        var h = mix(seed ^ 0x6472_6F70_6F75_7421)         // "dropout!": apart from the weight streams
        h = mix(h ^ UInt64(truncatingIfNeeded: epoch))
        h = mix(h ^ UInt64(truncatingIfNeeded: position))
        h = mix(h ^ (UInt64(truncatingIfNeeded: layer) << 16 | UInt64(direction) << 8 | site.rawValue << 4
                     | UInt64(truncatingIfNeeded: gate)))
        return h
    }

    /// Writes one sample's mask for `count` features: 1/(1−rate) where kept (probability 1−rate), else 0.
    static func fill(_ out: UnsafeMutablePointer<Float>, count: Int, rate: Double, seed: UInt64, epoch: Int,
                            position: Int, layer: Int, direction: Int, site: MaskSite, gate: Int) {
        let s = stream(seed: seed, epoch: epoch, position: position, layer: layer, direction: direction, site: site,
                       gate: gate)
        let keep = Float(1 / (1 - rate))
        // Kept when the 53-bit uniform u = v·2⁻⁵³ satisfies u ≥ rate.
        let threshold = UInt64((rate * 0x1p53).rounded(.up))
        for j in 0..<count {
            let v = mix(s &+ UInt64(j) &* 0xD1B5_4A32_D192_ED03) >> 11
            out[j] = v >= threshold ? keep : 0
        }
    }

    /// One sample's mask as an array (tests, tools).
    static func mask(count: Int, rate: Double, seed: UInt64, epoch: Int, position: Int, layer: Int,
                            direction: Int, site: MaskSite, gate: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer {
            fill($0.baseAddress!, count: count, rate: rate, seed: seed, epoch: epoch, position: position, layer: layer,
                 direction: direction, site: site, gate: gate)
        }
        return out
    }
}

/// One layer direction's masks for the current batch, laid out (B, masks, width): row b holds
/// sample b's masks one after the other.
final class MaskSet {
    /// Masks per sample (1, or one per gate).
    let count: Int
    /// Features per mask (I for input masks, H for recurrent ones).
    let width: Int
    private var buffer = FloatBuffer(count: 0)
    private(set) var batch = 0

    init(count: Int, width: Int) {
        self.count = count
        self.width = width
    }

    /// (B, count, width).
    var pointer: UnsafeMutablePointer<Float> { buffer.pointer }

    /// Draws the masks of `key`'s rows.
    func draw(key: DropoutKey, rate: Double, layer: Int, direction: Int, site: MaskSite) {
        batch = key.positions.count
        buffer = buffer.ensuring(batch * count * width)
        for (b, position) in key.positions.enumerated() {
            for g in 0..<count {
                DropoutMask.fill(buffer.pointer + (b * count + g) * width, count: width, rate: rate, seed: key.seed,
                                 epoch: key.epoch, position: position, layer: layer, direction: direction, site: site,
                                 gate: g)
            }
        }
    }

    /// Copies of the current masks, (B, count, width).
    var values: [Float] { Array(UnsafeBufferPointer(start: buffer.pointer, count: batch * count * width)) }
}

/// A recurrent layer's h_{t−1} masks in use, and the masked copies h_{t−1} ⊙ m_g that BPTT reuses.
final class RecurrentDropout {
    let masks: MaskSet
    /// (T, B, count, H): step t ≥ 1 holds h_{t−1} ⊙ m_g for each gate g (step 0 is unused: h_{−1} = 0).
    private(set) var masked = FloatBuffer(count: 0)
    /// (B, H) scratch of BPTT.
    private(set) var scratch = FloatBuffer(count: 0)

    init(masks: MaskSet) { self.masks = masks }

    func reserve(batch: Int, steps: Int) {
        masked = masked.ensuring(steps * batch * masks.count * masks.width)
        scratch = scratch.ensuring(batch * masks.width)
    }
}
