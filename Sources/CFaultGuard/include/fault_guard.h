// A fault inside the HDF5 library, which a damaged or crafted file can cause (HDF5 1.10 trusts the
// addresses in metadata whose checksums match), as one line naming the file(s) open for reading and
// exit status 2 instead of a crash. Declined — handed to the handler that was there before (Swift's
// backtracer, or the default action) — are a fault without a libhdf5 frame on the faulting thread's
// stack, one while no file is open for reading or while a file is being written, a SIGSEGV or
// SIGBUS sent by another process, and a fault inside the handler. RNN_DIST_FAULT_GUARD=0 turns it off.
#ifndef RNN_DIST_FAULT_GUARD_H
#define RNN_DIST_FAULT_GUARD_H

/// Installs the SIGSEGV and SIGBUS handlers once (later calls do nothing). `library` is a part of
/// the guarded library's file name ("libhdf5"). Returns 0, or -1 when no such library is loaded or
/// RNN_DIST_FAULT_GUARD=0 (nothing installed).
int rd_fault_guard_install(const char *library);

/// Records a file as open for reading (its path goes into the line), or as being written (`writing`
/// non-zero: faults are declined meanwhile); returns its slot, or -1 when all 32 slots are taken.
int rd_fault_guard_file_opened(const char *path, int writing);

/// Forgets slot `slot` (from `rd_fault_guard_file_opened`; -1 is ignored).
void rd_fault_guard_file_closed(int slot);

#endif
