import CMPI

/// One block of memory shared by the ranks of a host (MPI-3 `MPI_Win_allocate_shared` on the
/// communicator of the host's ranks): the host's first rank allocates and fills it, the others map
/// the same pages. Freed (collectively) by `Communicator.finalize`.
public final class HostSharedMemory {
    /// The whole block, the same bytes on every rank of the host.
    public let bytes: UnsafeMutableRawBufferPointer
    /// Whether this rank is the host's first: the one that writes the block before `publish`.
    public let isWriter: Bool
    private var window: MPI_Win?
    private var local: MPI_Comm?

    fileprivate init(bytes: UnsafeMutableRawBufferPointer, isWriter: Bool, window: MPI_Win?, local: MPI_Comm?) {
        self.bytes = bytes
        self.isWriter = isWriter
        self.window = window
        self.local = local
    }

    /// Collective over the host's ranks, after the writer filled the block: makes its stores
    /// visible to the others (`MPI_Win_fence`); the block is read-only from here on.
    public func publish() throws {
        try check(MPI_Win_fence(0, window), "MPI_Win_fence")
    }

    func free() {
        if window != nil { _ = MPI_Win_free(&window) }
        if local != nil { _ = MPI_Comm_free(&local) }
    }
}

extension Communicator {
    /// Collective: `count` bytes shared by the ranks of this host; nil without MPI. (One rank on a
    /// host gets an ordinary shared window of its own: the code path is the same.)
    public func hostSharedMemory(count: Int) throws -> HostSharedMemory? {
        guard usesMPI, size > 1, count > 0 else { return nil }
        try arrive()
        var local = MPI_Comm(bitPattern: 0)
        try check(MPI_Comm_split_type(rd_mpi_comm_world(), rd_mpi_comm_type_shared(), Int32(rank), rd_mpi_info_null(), &local),
                  "MPI_Comm_split_type(SHARED)")
        var localRank: Int32 = 0
        try check(MPI_Comm_rank(local, &localRank), "MPI_Comm_rank(host)")
        var base: UnsafeMutableRawPointer?
        var window = rd_mpi_win_null()
        let mine = localRank == 0 ? count : 0
        try check(MPI_Win_allocate_shared(MPI_Aint(mine), 1, rd_mpi_info_null(), local, &base, &window),
                  "MPI_Win_allocate_shared(\(mine) bytes)")
        var size: MPI_Aint = 0, unit: Int32 = 0
        var first: UnsafeMutableRawPointer?
        try check(MPI_Win_shared_query(window, 0, &size, &unit, &first), "MPI_Win_shared_query")
        guard let start = first, Int(size) == count else {
            throw MPIError(call: "MPI_Win_shared_query", code: 0, message: "the host's block holds \(size) bytes, not \(count)")
        }
        try check(MPI_Win_fence(0, window), "MPI_Win_fence")
        let block = HostSharedMemory(bytes: UnsafeMutableRawBufferPointer(start: start, count: count), isWriter: localRank == 0,
                                     window: window, local: local)
        sharedBlocks.append(block)
        return block
    }
}
