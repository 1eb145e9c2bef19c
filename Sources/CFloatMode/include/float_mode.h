// The CPU's treatment of subnormal floating-point numbers, for the calling thread.
#ifndef RNN_DIST_FLOAT_MODE_H
#define RNN_DIST_FLOAT_MODE_H

/// Flush subnormal results to zero and treat subnormal inputs as zero on the calling thread
/// (x86-64: MXCSR FTZ|DAZ; arm64: FPCR.FZ). Returns 1 where the CPU has such a mode, else 0.
int rd_flush_subnormals_to_zero(void);

/// 1 when the calling thread flushes subnormals (both bits on x86-64, FZ on arm64), else 0.
int rd_flushes_subnormals(void);

#endif
