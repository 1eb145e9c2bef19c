// swift-tools-version:6.0
// rnn-dist: data-parallel training of the book's recurrent text classifiers, MPI + HDF5 + BLAS.
//
// Layers of the package, bottom to top (each only imports what is below it):
//   CMPI, CHDF5, CBLAS, CArchive  C libraries: a module map + shim header each (found via pkg-config)
//   CFloatMode                    the CPU's subnormal mode (MXCSR / FPCR) and its FMA instruction: one small C file
//   CSmallGEMM                    the recurrence's small matrix products (AVX2 + FMA, chosen at run time): one C file
//   CGates                        gate loops (AVX2 + FMA, chosen at run time): one C file
//   CGunzip                       gzip input for libarchive inflated by zlib, which checks each member's CRC: one C file
//   CFaultGuard                   a fault inside HDF5 (a crafted file) as one line and exit 2, not a crash: one C file
//   CTemporaries                  temporaries of atomic writes removed by a stop signal: one C file
//   POSIX                         errno as a message, the host name (Linux only, like the package)
//   MPI, HDF5, BLAS, Archive      thin Swift wrappers; the only files that call C
//   RNN                           model math: layers, loss, optimizers (no MPI, no files)
//   TextData                      tokenizer, vocabulary, the dataset file, `prepare` (aclImdb, folders, CSV, JSONL)
//   Training                      distributed loop, checkpoint, weights and history files
//   ONNX                          a classifier as an ONNX graph, protobuf-encoded (bytes only, no files)
//   Serve                         `serve`: the HTTP endpoint (Hummingbird), micro-batching, Prometheus metrics
//   RNNDistCLI, rnn-dist          the command tree (thin) and its executable
import PackageDescription

let package = Package(
    name: "rnn-dist",
    products: [
        .executable(name: "rnn-dist", targets: ["rnn-dist"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // Hummingbird's own; serve's HTTP/1 handler (HTTP1Semantics) names their types.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),

        .target(name: "CTemporaries"),
        .target(name: "POSIX", dependencies: ["CTemporaries"]),
        .target(name: "JSONSyntax"),
        .target(name: "MPI", dependencies: ["CMPI"]),
        .target(name: "CFaultGuard"),
        .target(name: "HDF5", dependencies: ["CHDF5", "CFaultGuard", "POSIX"]),
        .target(name: "CFloatMode"),
        .target(name: "CSmallGEMM"),
        .target(name: "CGates"),
        .target(name: "BLAS", dependencies: ["CBLAS", "CFloatMode", "CSmallGEMM"]),

        .target(name: "RNN", dependencies: ["BLAS", "CFloatMode", "CGates", "JSONSyntax"]),
        .target(name: "CGunzip", dependencies: ["CArchive"], linkerSettings: [.linkedLibrary("z")]),
        .target(name: "Archive", dependencies: ["CArchive", "CGunzip"]),
        .target(name: "TextData", dependencies: ["HDF5", "Archive", "POSIX", "JSONSyntax"]),
        .target(name: "Training", dependencies: ["RNN", "TextData", "MPI", "HDF5", "POSIX"]),
        .target(name: "ONNX", dependencies: ["RNN"]),
        .target(name: "Serve", dependencies: [
            "Training", "TextData", "RNN", "JSONSyntax",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
        ]),
        .target(name: "RNNDistCLI", dependencies: [
            "Training", "TextData", "RNN", "ONNX", "MPI", "HDF5", "BLAS", "POSIX", "Serve",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "rnn-dist", dependencies: ["RNNDistCLI"]),

        .target(name: "TestSupport", dependencies: ["HDF5", "CHDF5"], path: "Tests/TestSupport"),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "CHDF5", "TestSupport"]),
        .testTarget(name: "MPITests", dependencies: ["MPI", "TestSupport"]),
        .testTarget(name: "BLASTests", dependencies: ["BLAS", "TestSupport"]),
        .testTarget(name: "RNNTests", dependencies: ["RNN", "BLAS", "JSONSyntax", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TextDataTests", dependencies: ["TextData", "HDF5", "JSONSyntax", "TestSupport"]),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "RNN", "TextData", "HDF5", "POSIX", "TestSupport"]),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "RNN", "Training", "TestSupport"]),
    ]
)
