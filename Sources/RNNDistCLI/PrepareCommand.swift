import ArgumentParser

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Raw IMDB reviews (tarball or aclImdb/ folder) → tokenized HDF5 dataset (not built yet).")
    @Argument(parsing: .allUnrecognized) var rest: [String] = []
    func run() throws { try notBuiltYet("prepare") }
}
