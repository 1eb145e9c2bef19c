// A fault inside the HDF5 library, which a damaged or crafted file can cause (HDF5 1.10 trusts the
// addresses in metadata whose checksums match), as one line naming the files opened for reading and
// exit status 2 instead of a crash. Any other fault (no library frame on the faulting thread's stack,
// or no file open for reading), and a SIGSEGV or SIGBUS sent by another process, goes on to the
// handler that was there before (Swift's backtracer, Open MPI's, or the default action).
#ifndef RNN_DIST_FAULT_GUARD_H
#define RNN_DIST_FAULT_GUARD_H

/// Installs the SIGSEGV and SIGBUS handlers once (later calls do nothing). `library` is a part of
/// the guarded library's file name ("libhdf5"); the line starts with the program's name
/// ("rnn-dist: error: PATH: …"). Returns 0, or -1 when no such library is loaded (nothing installed).
int rd_fault_guard_install(const char *library);

/// Records a file as open for reading (its path goes into the line); returns its slot, or -1 when
/// all 32 slots are taken.
int rd_fault_guard_file_opened(const char *path);

/// Forgets slot `slot` (from `rd_fault_guard_file_opened`; -1 is ignored).
void rd_fault_guard_file_closed(int slot);

#endif
