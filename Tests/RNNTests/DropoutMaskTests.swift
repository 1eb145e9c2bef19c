// The dropout masks: their statistics, their independence, their key, and that only training uses them.

@testable import RNN
import TestSupport
import XCTest

final class DropoutMaskTests: XCTestCase {
    private func mask(_ rate: Double, position: Int, gate: Int = 0, epoch: Int = 0, layer: Int = 0, direction: Int = 0,
                      site: MaskSite = .input, width: Int = 64) -> [Float] {
        DropoutMask.mask(count: width, rate: rate, seed: 11, epoch: epoch, position: position, layer: layer,
                         direction: direction, site: site, gate: gate)
    }

    /// Over many draws the kept fraction is 1 − R within 3σ, kept units are 1/(1 − R), dropped ones 0.
    func testKeptFractionAndScale() {
        for rate in [0.1, 0.2, 0.5, 0.8] {
            var kept = 0, n = 0
            for position in 0..<2_000 {
                for v in mask(rate, position: position) {
                    XCTAssertTrue(v == 0 || v == Float(1 / (1 - rate)), "mask value \(v) at rate \(rate)")
                    if v != 0 { kept += 1 }
                    n += 1
                }
            }
            let p = 1 - rate, sigma = (rate * p / Double(n)).squareRoot()
            let observed = Double(kept) / Double(n)
            print("rate \(rate): kept \(observed) of \(n), expected \(p) ± 3·\(sigma)")
            XCTAssertLessThanOrEqual(abs(observed - p), 3 * sigma, "kept fraction at rate \(rate)")
        }
        XCTAssertEqual(mask(0, position: 3), [Float](repeating: 1, count: 64), "rate 0 keeps everything")
    }

    /// Masks of different samples, gates, sites, layers, directions and epochs are independent: the
    /// fraction of units kept in both is (1 − R)² within 3σ; the same key gives the same mask.
    func testIndependence() {
        let rate = 0.5, p = 0.25
        func jointKeep(_ a: (Int) -> [Float], _ b: (Int) -> [Float]) -> Double {
            var both = 0, n = 0
            for k in 0..<1_000 {
                for (x, y) in zip(a(k), b(k)) {
                    if x != 0 && y != 0 { both += 1 }
                    n += 1
                }
            }
            let observed = Double(both) / Double(n), sigma = (p * (1 - p) / Double(n)).squareRoot()
            XCTAssertLessThanOrEqual(abs(observed - p), 3 * sigma, "joint keep \(observed)")
            return observed
        }
        _ = jointKeep({ self.mask(rate, position: 2 * $0) }, { self.mask(rate, position: 2 * $0 + 1) })   // samples
        _ = jointKeep({ self.mask(rate, position: $0, gate: 0) }, { self.mask(rate, position: $0, gate: 1) })   // gates
        _ = jointKeep({ self.mask(rate, position: $0, gate: 2) }, { self.mask(rate, position: $0, gate: 3) })
        _ = jointKeep({ self.mask(rate, position: $0, site: .input) }, { self.mask(rate, position: $0, site: .recurrent) })
        _ = jointKeep({ self.mask(rate, position: $0, layer: 0) }, { self.mask(rate, position: $0, layer: 1) })
        _ = jointKeep({ self.mask(rate, position: $0, direction: 0) }, { self.mask(rate, position: $0, direction: 1) })
        _ = jointKeep({ self.mask(rate, position: $0, epoch: 0) }, { self.mask(rate, position: $0, epoch: 1) })
        // Features within one mask are independent too (neighbouring units).
        _ = jointKeep({ Array(self.mask(rate, position: $0).prefix(63)) }, { Array(self.mask(rate, position: $0).dropFirst()) })
        XCTAssertEqual(mask(rate, position: 42, gate: 1), mask(rate, position: 42, gate: 1))
    }

    /// A batch's masks depend only on each row's position, not on the batch it sits in (so ranks agree).
    func testMasksDependOnPositionOnly() {
        let set = MaskSet(count: 4, width: 16)
        set.draw(key: DropoutKey(seed: 11, epoch: 3, positions: [7, 300, 12]), rate: 0.3, layer: 1, direction: 1,
                 site: .recurrent)
        let whole = set.values
        for (b, position) in [7, 300, 12].enumerated() {
            for g in 0..<4 {
                let alone = DropoutMask.mask(count: 16, rate: 0.3, seed: 11, epoch: 3, position: position, layer: 1,
                                             direction: 1, site: .recurrent, gate: g)
                XCTAssertEqual(Array(whole[((b * 4 + g) * 16)..<((b * 4 + g + 1) * 16)]), alone)
            }
        }
    }

    /// One sequence's masks are the same at every time step: over 20 steps the model's loss is the
    /// reference's with each sample's masks applied at every step (and not the unmasked one), and the
    /// first layer's masked rows are each token's embedding times its sample's mask.
    func testMaskConstantAcrossTimeSteps() {
        let config = ModelConfig(kind: .lstm, numWords: 50, embedDim: 16, units: 8, dropout: 0.5, recurrentDropout: 0.3)
        let model = Model(config: config, seed: 3)
        let B = 4, T = 20, E = 16
        let x = Fixtures.tokens(batch: B, steps: T, numWords: 50, seed: 5)
        let y: [Float] = [1, 0, 1, 0]
        model.zeroGradients()
        let stats = model.accumulateGradients(x: x, y: y, batch: B, dropout: DropoutKey(seed: 1, epoch: 0, positions: [0, 1, 2, 3]))
        let d = model.recurrentLayers[0].directions[0]
        let masks = ReferenceMasks.drawn(by: model, batch: B)
        let w = model.weights.map(Double.init)
        assertClose(stats.lossSum, Reference.lossSum(config: config, weights: w, x: x, y: y, batch: B, masks: masks), rtol: 1e-5)
        XCTAssertGreaterThan(abs(stats.lossSum - Reference.lossSum(config: config, weights: w, x: x, y: y, batch: B)), 1e-3)
        // The masked rows: (sample, token) pairs, one per distinct token of each sample.
        let embedding = model.embedding, masked = d.masked.pointer, c = d.inputMasks.count
        let m = d.inputMasks.values
        XCTAssertEqual(embedding.pairCount, (0..<B).map { b in Set(x[(b * T)..<((b + 1) * T)]).count }.reduce(0, +))
        for u in 0..<embedding.pairCount {
            let b = Int(embedding.pairSamples[u])
            for g in 0..<c {
                for i in 0..<E {
                    let row = embedding.pairRows[u * E + i]
                    XCTAssertEqual(masked[(g * embedding.pairCount + u) * E + i], row * m[(b * c + g) * E + i])
                }
            }
        }
    }

    /// Validation, eval and predict never drop: a model with dropout rates scores exactly like the
    /// same weights without them, and training without a key is plain training.
    func testOnlyTrainingWithAKeyDrops() {
        for kind in ModelConfig.Kind.allCases {
            let plain = ModelConfig(kind: kind, numWords: 30, embedDim: 5, units: 6, layers: 2, bidirectional: true)
            let dropped = ModelConfig(kind: kind, numWords: 30, embedDim: 5, units: 6, layers: 2, bidirectional: true,
                                      dropout: 0.4, recurrentDropout: 0.3)
            let a = Model(config: plain, seed: 9), b = Model(config: dropped, seed: 9)
            XCTAssertEqual(a.weights, b.weights)
            let x = Fixtures.tokens(batch: 3, steps: 7, numWords: 30, seed: 2)
            let y: [Float] = [1, 0, 1]
            XCTAssertEqual(a.logits(x: x, batch: 3), b.logits(x: x, batch: 3), "\(kind) eval")
            a.zeroGradients(); b.zeroGradients()
            let sa = a.accumulateGradients(x: x, y: y, batch: 3)
            let sb = b.accumulateGradients(x: x, y: y, batch: 3)
            XCTAssertEqual(sa, sb)
            XCTAssertEqual(a.gradients, b.gradients, "\(kind) no key")
            b.zeroGradients()
            let sd = b.accumulateGradients(x: x, y: y, batch: 3, dropout: DropoutKey(seed: 1, epoch: 0, positions: [0, 1, 2]))
            XCTAssertNotEqual(sd.lossSum, sa.lossSum, "\(kind): the key turns dropout on")
            // And the next evaluation is unmasked again.
            XCTAssertEqual(a.logits(x: x, batch: 3), b.logits(x: x, batch: 3), "\(kind) eval after a dropout batch")
        }
    }
}
