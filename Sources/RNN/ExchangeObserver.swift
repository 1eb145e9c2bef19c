// What a data-parallel trainer may do while a batch's forward and backward run: the exchange of
// the embedding rows behind the first layer's BPTT (docs/TRAINING.md §The exchange behind backward).
//
// BPTT walks the steps from last to first, and a token's row of the embedding gradient is final as
// soon as the walk has passed the first step at which the token occurs in the batch. With front
// padding (as `prepare` pads) the texts sit at the end of the rows, so most of a batch's distinct
// tokens first occur late: the rows of those become final early in the walk, and their exchange can
// run while the walk goes on. The model only reports; the trainer (Training) owns MPI.

/// The trainer's side of the exchange behind backward. The model calls it only for a training pass
/// whose first layer after the embedding is a recurrent layer read forward in time, with one
/// direction and no input dropout (`Model.reportsEmbeddingRowsDuringBackward`).
public protocol BackwardObserver: AnyObject {
    /// After the batch's embedding lookup: its N distinct tokens and the first step (0-based) at which
    /// each occurs in any row, over sequences of `steps` steps.
    func didLookUp(tokens: UnsafeBufferPointer<Int32>, firstSteps: UnsafeBufferPointer<Int32>, steps: Int)
    /// During the first layer's BPTT, after step t: every token whose first step is ≥ t has its final
    /// gradient in `rows`.
    func didBackpropagate(step t: Int, rows: EmbeddingRowGradients)
}

/// The embedding rows' gradient of the batch in backward, row by row: dEmb[v] = dTable[slot(v)]·Wᵀ,
/// with dTable the per-token sum of the first layer's projection gradients so far.
public struct EmbeddingRowGradients {
    let table: UnsafePointer<Float>
    /// (V): token → its row of `table`, −1 if the batch does not use it.
    let slotOfToken: UnsafePointer<Int32>
    /// Wᵀ (G × E) of the first layer.
    let kernelTransposed: UnsafePointer<Float>
    /// G and E.
    let gateWidth: Int
    public let width: Int
    /// The lookup's (N × E) row gradients and which of them are formed (`finishBackward` skips those).
    let rows: UnsafeMutablePointer<Float>
    let formed: UnsafeMutablePointer<Int32>

    /// Token v's row (E) into `out`: zeros when this batch does not use it. Formed once: the row
    /// `EmbeddingLookup.finishBackward` adds into the gradient is this one.
    public func gradient(ofToken v: Int, into out: UnsafeMutablePointer<Float>) {
        let slot = Int(slotOfToken[v])
        guard slot >= 0 else {
            out.update(repeating: 0, count: width)
            return
        }
        let row = rows + slot * width
        if formed[slot] == 0 {
            tokenRowGradient(table + slot * gateWidth, kernelTransposed: kernelTransposed, gates: gateWidth, width: width,
                             into: row)
            formed[slot] = 1
        }
        out.update(from: row, count: width)
    }
}

/// out (E) = d (G) · Wᵀ as a fused multiply-add chain over g = 0 ..< G for each output, from 0:
/// one order of operations whatever the BLAS kernel, the build or how many rows are formed together,
/// so a row formed early for the exchange and the same row formed after BPTT are the same bits.
/// `kernelTransposed` is Wᵀ (G × E), row g holding W's column g.
func tokenRowGradient(_ d: UnsafePointer<Float>, kernelTransposed wT: UnsafePointer<Float>, gates G: Int, width E: Int,
                      into out: UnsafeMutablePointer<Float>) {
    var j = 0
    // Four vectors at once: four independent chains keep the FMA units busy.
    let w = Vector.scalarCount
    while j + 4 * w <= E {
        var a0 = Vector(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        for g in 0..<G {
            let s = Vector(repeating: d[g]), row = wT + g * E + j
            a0 = s.fused(Vector.load(row), a0)
            a1 = s.fused(Vector.load(row + w), a1)
            a2 = s.fused(Vector.load(row + 2 * w), a2)
            a3 = s.fused(Vector.load(row + 3 * w), a3)
        }
        a0.store(to: out + j); a1.store(to: out + j + w); a2.store(to: out + j + 2 * w); a3.store(to: out + j + 3 * w)
        j += 4 * w
    }
    while j + w <= E {
        var a = Vector(repeating: 0)
        for g in 0..<G { a = Vector(repeating: d[g]).fused(Vector.load(wT + g * E + j), a) }
        a.store(to: out + j)
        j += w
    }
    while j < E {
        var a: Float = 0
        for g in 0..<G { a = d[g].fused(wT[g * E + j], a) }
        out[j] = a
        j += 1
    }
}
