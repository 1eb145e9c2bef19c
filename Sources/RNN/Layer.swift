// What the model needs from each of its layers: llm.c's forward/backward pair. A layer takes the
// previous layer's output, keeps what its backward needs, and in backward turns ∂loss/∂(its output)
// into ∂loss/∂(its input) while adding into its own slice of the flat gradient buffer.
//
// Shape letters: B batch, T time steps, D a layer's width. Sequences are time-major (T, B, D).

/// A layer's input or output during one pass.
enum Activation {
    /// (B, T) batch-major token ids: the model's input.
    case tokens(UnsafeBufferPointer<Int32>)
    /// The embedding's rows of this batch: the layer after the embedding projects them itself
    /// (the fused first-layer projection, see Embedding.swift).
    case embedded(EmbeddingLookup)
    /// (T, B, D).
    case sequence(UnsafePointer<Float>)
    /// (B, D).
    case vector(UnsafePointer<Float>)
}

/// One forward (and backward) pass over a batch, or over one block of steps of an evaluation.
struct Pass {
    let batch: Int
    /// T of this pass: the block's steps in blocked evaluation.
    var steps: Int
    let weights: UnsafePointer<Float>
    /// Blocked evaluation: this block's first step, and the steps of the whole sequence.
    var start = 0
    var totalSteps: Int
    /// Blocked evaluation with the whole vocabulary's projection table (`Layer.prepareInference`).
    var inference = false
    /// Evaluation's recurrences keep only their states (`RecurrentLayer.forwardOnly`); the same
    /// bits either way (`Model.fusedInference`).
    var fusedInference = true
    /// The cells' gate loops in C where the CPU allows (`RecurrentLayer.gatesInC`); the same bits
    /// either way (`Model.gateLoopsInC`).
    var gateLoopsInC = true
    /// A training pass with this batch's dropout masks.
    var masks = false
    /// The trainer's exchange behind backward: set on the embedding's and the first layer's passes
    /// when `Model.reportsEmbeddingRowsDuringBackward` (nil otherwise).
    var observer: BackwardObserver?
    /// Blocked evaluation that skipped the chunk's shared padding (`start` > 0), on its first block:
    /// the steps a direction reading from the sequence's end runs first, in blocks of at most
    /// `prefixBlock` steps, from a zero state. It reads the padding last, so it cannot skip it; this
    /// catches it up with the skipped steps before it runs the block (`Recurrent.forward`).
    var reversedPrefix = 0
    var prefixBlock = 0

    init(batch: Int, steps: Int, weights: UnsafePointer<Float>) {
        self.batch = batch
        self.steps = steps
        self.weights = weights
        totalSteps = steps
    }

    /// Whether the recurrence continues from the state the previous block left.
    var carry: Bool { start > 0 }
    /// Whether a later block follows this one.
    var continues: Bool { start + steps < totalSteps }
}

protocol Layer: AnyObject {
    /// Grows the layer's buffers for the pass (allocates only when they grow).
    func reserve(_ pass: Pass)
    /// Runs the layer on `input`, keeping what `backward` needs; the output stays valid until the
    /// layer's next forward.
    func forward(_ input: Activation, _ pass: Pass) -> Activation
    /// Adds this layer's weight gradients into `gradients` and returns ∂loss/∂(its input) (the
    /// input's shape, in a buffer of its own), or nil when the input takes no gradient (token ids)
    /// or its gradient was added where it is owned (the fused embedding rows).
    /// - Parameter dOutput: ∂loss/∂(the output of the last `forward`).
    func backward(_ dOutput: UnsafePointer<Float>, input: Activation, _ pass: Pass,
                  gradients: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>?
    /// Whether evaluation can run the layer over blocks of steps, carrying its state.
    var runsInBlocks: Bool { get }
    /// Whether, in evaluation, the layer's output at step t and its state after it depend only on
    /// its input's steps 0…t, the same way for every row: rows whose inputs agree on their first
    /// steps agree there too (`Model.logits` skips the padding rows share).
    var causal: Bool { get }
    /// The length of the output sequence for an input of `steps` steps (convolutions and pooling
    /// shorten it; most layers keep it).
    func outputSteps(_ steps: Int) -> Int
    /// Before the forward passes of an evaluation with fixed weights (e.g. a projection table).
    func prepareInference(weights: UnsafePointer<Float>)
    /// Draws this training batch's dropout masks; `setMasks` turns them on or off.
    func drawMasks(key: DropoutKey)
    func setMasks(active: Bool)
}

extension Layer {
    var runsInBlocks: Bool { true }
    var causal: Bool { false }
    func outputSteps(_ steps: Int) -> Int { steps }
    func prepareInference(weights: UnsafePointer<Float>) {}
    func drawMasks(key: DropoutKey) {}
    func setMasks(active: Bool) {}
}
