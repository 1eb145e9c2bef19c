import ArgumentParser

// Subcommands whose issues have not landed yet. Each says so and exits 3: nothing pretends to work.
// When a command is built it moves to a file of its own and leaves this list.

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, accuracy, precision, recall and F1 of saved weights on a split (not built yet).")
    @Argument(parsing: .allUnrecognized) var rest: [String] = []
    func run() throws { try notBuiltYet("eval") }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentiment probability for raw review text (not built yet).")
    @Argument(parsing: .allUnrecognized) var rest: [String] = []
    func run() throws { try notBuiltYet("predict") }
}

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training and validation accuracy and loss per epoch as SVG (not built yet).")
    @Argument(parsing: .allUnrecognized) var rest: [String] = []
    func run() throws { try notBuiltYet("plot") }
}
