import BLAS
import Foundation

/// `RNN_DIST_COUNT_PRODUCTS=PATH` (a benchmark hook: Launch/bench's `floor` section): `train` counts
/// the matrix products of its training loop and `eval` those of its evaluation, by shape, and rank 0
/// writes the counts to PATH as JSON for `selftest products` to time.
enum ProductCounting {
    struct Entry: Codable {
        var shape: ProductShape
        var count: Int
    }

    static var path: String? { ProcessInfo.processInfo.environment["RNN_DIST_COUNT_PRODUCTS"] }

    static func begin() {
        if path != nil { BLAS.startCounting() }
    }

    static func finish(isRoot: Bool) throws {
        guard let path else { return }
        let counts = BLAS.stopCounting()
        guard isRoot else { return }
        let entries = counts.map { Entry(shape: $0.key, count: $0.value) }.sorted { ($0.shape.flop, $0.count) > ($1.shape.flop, $1.count) }
        do {
            try JSONEncoder().encode(entries).write(to: URL(fileURLWithPath: path))
        } catch {
            throw CLIError("\(path): cannot write the product counts (\(error.localizedDescription))")
        }
    }

    static func read(_ path: String) throws -> [Entry] {
        do {
            return try JSONDecoder().decode([Entry].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CLIError("\(path): not a product-count file of RNN_DIST_COUNT_PRODUCTS (\(error.localizedDescription))")
        }
    }
}
