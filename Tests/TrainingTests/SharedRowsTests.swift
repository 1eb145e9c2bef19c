import XCTest
import Foundation
import MPI
import TestSupport
@testable import Training

/// The rows a run uses sit once per host in an MPI-3 shared window (`PreloadedRows.load`): written by
/// the host's first rank, read by all; alone, a process keeps them in its own memory. Results are
/// those of any rank count (DistributedTrainingTests compare -n 1 with -n 2 and 4 through this path).
final class SharedRowsTests: ToyIMDBTestCase {
    func testRanksShareTheRowsAndTrainAsOneProcess() throws {
        let alone = try Subprocess.mpiRun(1, ["train", "--data", dataset, "--run-dir", tmp.file("n1")] + common + ["--epochs", "1"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        XCTAssertFalse(alone.stdout.contains("rows shared per host"), alone.stdout)
        let two = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("n2")] + common + ["--epochs", "1"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stdout.contains("PSS summed over the ranks: "), two.stdout)
        XCTAssertTrue(two.stdout.contains("(rows shared per host)"), two.stdout)
        let a = try WeightsFile.read(from: tmp.file("n1/model.weights.h5")).weights, b = try WeightsFile.read(from: tmp.file("n2/model.weights.h5")).weights
        XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// Where Open MPI cannot back the window (a full or small /dev/shm, as Docker's 64 MB; here a
    /// folder that does not exist), the ranks read their batches from the file: the same weights as
    /// the shared rows'. `MPI_Win_allocate_shared` failed instead (exit 1).
    func testNoRoomForTheSharedRowsFallsBackToTheFile() throws {
        let shared = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("shm")] + common + ["--epochs", "1"])
        XCTAssertEqual(shared.status, 0, shared.stderr)
        XCTAssertTrue(shared.stdout.contains("(rows shared per host)"), shared.stdout)
        let file = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("file")] + common + ["--epochs", "1"],
                                         mpirunArgs: ["--mca", "osc_sm_backing_directory", tmp.file("no-such-folder")])
        XCTAssertEqual(file.status, 0, file.stderr)
        XCTAssertFalse(file.stdout.contains("(rows shared per host)"), file.stdout)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("shm/model.weights.h5")).weights,
                       try WeightsFile.read(from: tmp.file("file/model.weights.h5")).weights)
    }

    /// Without MPI the rows are this process's own, and equal to the source's.
    func testAloneTheRowsAreReadIntoPrivateMemory() throws {
        let source = try TrainingDataset.open(dataset).train
        let rows = try PreloadedRows.load(source, rows: 50, numWords: try TrainingDataset.open(dataset).numWords, comm: .single())
        let preloaded = try XCTUnwrap(rows as? PreloadedRows)
        XCTAssertFalse(preloaded.isShared)
        let picks = [3, 0, 49, 17]
        let (x, y) = try preloaded.read(rows: picks), (fx, fy) = try source.read(rows: picks)
        XCTAssertEqual(x, fx)
        XCTAssertEqual(y, fy)
    }
}
