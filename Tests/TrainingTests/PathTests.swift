import Glibc
import POSIX
import XCTest

/// The one place a path is split into its folder and name (the HDF5 writer, the text writer, the run
/// folder, prepare's and plot's output checks and train's same-place check all ask it).
final class PathTests: XCTestCase {
    func testSplitFolderAsDirnameAndBasename() {
        let cases: [(String, String, String)] = [
            ("x.h5", ".", "x.h5"), ("-", ".", "-"), ("a", ".", "a"), ("./x.h5", ".", "x.h5"),
            ("/x.h5", "/", "x.h5"), ("/a/b.h5", "/a", "b.h5"), ("a/b/", "a", "b"), ("a//b", "a", "b"),
            ("runs/", ".", "runs"), ("//x", "/", "x"), ("../x.svg", "..", "x.svg"),
        ]
        for (path, folder, name) in cases {
            let s = splitFolder(path)
            XCTAssertEqual(s.folder, folder, path)
            XCTAssertEqual(s.name, name, path)
        }
    }

    /// A path ending in '/' names a folder: refused before any work (prepare -o new.h5/ ran to the
    /// rename, which failed).
    func testAFolderPathIsNoWriteTarget() {
        XCTAssertThrowsError(try atomicWriteTarget("new.h5/")) { XCTAssertTrue("\($0)".contains("new.h5/: is a folder's path (it ends in '/')"), "\($0)") }
        XCTAssertEqual(try atomicWriteTarget("/nonexistent-folder/new.h5"), "/nonexistent-folder/new.h5")
    }

    /// The temporary sits in the target's folder, hidden, named so that `removeStaleTemporaries`
    /// knows its writer; a bare name stays relative, as written.
    func testAtomicTemporaryIsBesideTheTarget() {
        let pid = getpid()
        for (path, prefix) in [("x.h5", ".x.h5.tmp-\(pid)-"), ("./x.h5", "./.x.h5.tmp-\(pid)-"),
                               ("/x.h5", "/.x.h5.tmp-\(pid)-"), ("runs/a/model.weights.h5", "runs/a/.model.weights.h5.tmp-\(pid)-")] {
            let t = atomicTemporary(for: path)
            XCTAssertTrue(t.temporary.hasPrefix(prefix), "\(path) → \(t.temporary)")
            XCTAssertNotNil(UInt32(t.temporary.dropFirst(prefix.count)), "\(path) → \(t.temporary)")
            XCTAssertEqual(t.folder, splitFolder(path).folder)
            XCTAssertEqual(t.name, splitFolder(path).name)
        }
    }
}
