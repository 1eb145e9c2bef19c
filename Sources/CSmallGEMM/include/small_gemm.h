// rnn-dist's own kernel for the small matrix products of the recurrence (AVX2 and FMA, chosen at
// run time): every element of C is one fused multiply-add chain over k, in order, so its bits
// depend only on its own row of op(A) and column of B — not on the shapes, the tile it falls in,
// the build, or the OpenBLAS kernel family.
#ifndef RNN_DIST_SMALL_GEMM_H
#define RNN_DIST_SMALL_GEMM_H

/// 1 when the CPU runs `rd_sgemm_small` (x86-64 with AVX2 and FMA), else 0.
int rd_small_gemm_supported(void);

/// C (m×n, row stride ldc) = op(A)·B, or C + op(A)·B when `accumulate`, on row-major buffers:
/// op(A) is A (m×k, row stride lda) or, with `trans_a`, Aᵀ for A (k×m); B is (k×n, row stride ldb).
/// Element (i, j) is s = 0; s = fma(op(A)[i][p], B[p][j], s) for p = 0, 1, …, k−1; then C = s + 0 or
/// C = s + C (one rounding each). Requires k ≥ 1 and `rd_small_gemm_supported()`.
void rd_sgemm_small(int trans_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                    int accumulate, float *c, long ldc);

#endif
