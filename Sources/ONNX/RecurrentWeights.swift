// Keras's recurrent weights in the layouts of ONNX's RNN, LSTM and GRU operators.
//
// Keras keeps a cell's kernel as (I, G) and its recurrent kernel as (H, G), G = gates × H, the gates
// side by side in column blocks (LSTM i, f, c, o; GRU z, r, h; SimpleRNN one), and computes x·W.
// ONNX keeps W (dirs, G, I) and R (dirs, G, H), the gates stacked in row blocks (LSTM i, o, f, c;
// GRU z, r, h), and computes x·Wᵀ: each ONNX gate's H rows are the columns of Keras's block for the
// same gate. The bias B (dirs, 2G) is [Wb | Rb]: Keras's bias on the input side and zeros on the
// recurrent side, except for Keras 3's reset-after GRU, whose bias (2, 3H) holds both (row 0 input,
// row 1 recurrent; ONNX's linear_before_reset = 1).

import RNN

enum RecurrentWeights {
    /// ONNX's gates in order, as indices of Keras's column blocks.
    static func kerasBlocks(_ kind: ModelConfig.Kind) -> [Int] {
        switch kind {
        case .simpleRNN: return [0]
        case .lstm: return [0, 3, 1, 2]                     // ONNX i, o, f, c ← Keras i, f, c, o
        case .gru: return [0, 1, 2]                         // z, r, h in both
        }
    }

    /// A Keras kernel (rows × G, row-major) as ONNX's (G × rows): ONNX row g·H + j is Keras's
    /// column blocks[g]·H + j.
    static func gateRows(_ kernel: ArraySlice<Float>, rows: Int, units: Int, blocks: [Int]) -> [Float] {
        let G = blocks.count * units
        precondition(kernel.count == rows * G, "kernel of \(kernel.count) values for \(rows) × \(G)")
        let base = kernel.startIndex
        var out = [Float]()
        out.reserveCapacity(rows * G)
        for block in blocks {
            for j in 0..<units {
                let column = block * units + j
                for r in 0..<rows { out.append(kernel[base + r * G + column]) }
            }
        }
        return out
    }

    /// A Keras bias vector (G) in ONNX's gate order.
    static func gateVector(_ bias: ArraySlice<Float>, units: Int, blocks: [Int]) -> [Float] {
        precondition(bias.count == blocks.count * units, "bias of \(bias.count) values for \(blocks.count) × \(units)")
        return blocks.flatMap { block in bias[(bias.startIndex + block * units)..<(bias.startIndex + (block + 1) * units)] }
    }

    /// One direction's ONNX bias row [Wb | Rb] (2G) from Keras's bias (nil without one: zeros).
    static func biasRow(_ bias: ArraySlice<Float>?, kind: ModelConfig.Kind, resetAfter: Bool, units: Int) -> [Float] {
        let blocks = kerasBlocks(kind), G = blocks.count * units
        guard let bias else { return [Float](repeating: 0, count: 2 * G) }
        if kind == .gru && resetAfter {
            precondition(bias.count == 2 * G, "reset-after GRU bias of \(bias.count) values for 2 × \(G)")
            let input = bias.prefix(G), recurrent = bias.dropFirst(G)
            return gateVector(input, units: units, blocks: blocks) + gateVector(recurrent, units: units, blocks: blocks)
        }
        return gateVector(bias, units: units, blocks: blocks) + [Float](repeating: 0, count: G)
    }
}
