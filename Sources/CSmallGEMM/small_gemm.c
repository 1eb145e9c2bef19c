// See include/small_gemm.h. Tiles of up to 6 rows × 16 columns, the accumulators in registers:
// for each p, one or two vectors of B's row p and one broadcast of op(A)[i][p] per row. B is read
// in place (no packing): the loops go over 16-column panels of B, and within a panel over the
// rows of C, so a panel (k × 16 floats) stays in the L1 cache while every row tile reads it.
#include "small_gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

int rd_small_gemm_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define RD_KERNEL static inline __attribute__((always_inline, target("avx2,fma")))

/// One tile: R rows (1…6) × V vectors (1 or 2) of 8 columns; `masked`: one vector whose lanes
/// beyond the matrix are off (`mask`), never read or written.
RD_KERNEL void rd_tile(const int R, const int V, const int masked, __m256i mask, long k, const float *a, long ars,
                       long aks, const float *b, long ldb, int accumulate, float *c, long ldc) {
    __m256 acc[6][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = _mm256_setzero_ps();
    for (long p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        __m256 bv[2];
        for (int v = 0; v < V; v++) bv[v] = masked ? _mm256_maskload_ps(bp, mask) : _mm256_loadu_ps(bp + 8 * v);
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * ars + p * aks);
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < R; r++) {
        float *cr = c + r * ldc;
        for (int v = 0; v < V; v++) {
            __m256 old = !accumulate ? zero : masked ? _mm256_maskload_ps(cr, mask) : _mm256_loadu_ps(cr + 8 * v);
            __m256 out = _mm256_add_ps(acc[r][v], old);
            if (masked) _mm256_maskstore_ps(cr, mask, out);
            else _mm256_storeu_ps(cr + 8 * v, out);
        }
    }
}

/// Every row of C for one panel of columns.
RD_KERNEL void rd_panel(const int V, const int masked, __m256i mask, long m, long k, const float *a, long ars,
                        long aks, const float *b, long ldb, int accumulate, float *c, long ldc) {
    long i = 0;
    for (; i + 6 <= m; i += 6) rd_tile(6, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc);
    switch (m - i) {
    case 5: rd_tile(5, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc); break;
    case 4: rd_tile(4, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc); break;
    case 3: rd_tile(3, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc); break;
    case 2: rd_tile(2, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc); break;
    case 1: rd_tile(1, V, masked, mask, k, a + i * ars, ars, aks, b, ldb, accumulate, c + i * ldc, ldc); break;
    default: break;
    }
}

__attribute__((target("avx2,fma")))
void rd_sgemm_small(int trans_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                    int accumulate, float *c, long ldc) {
    // op(A)[i][p] = a[i * ars + p * aks]
    const long ars = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
    const __m256i all = _mm256_set1_epi32(-1);
    long j = 0;
    for (; j + 16 <= n; j += 16) rd_panel(2, 0, all, m, k, a, ars, aks, b + j, ldb, accumulate, c + j, ldc);
    for (; j + 8 <= n; j += 8) rd_panel(1, 0, all, m, k, a, ars, aks, b + j, ldb, accumulate, c + j, ldc);
    if (j < n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - j)), lane);
        rd_panel(1, 1, mask, m, k, a, ars, aks, b + j, ldb, accumulate, c + j, ldc);
    }
}

#else
int rd_small_gemm_supported(void) { return 0; }
void rd_sgemm_small(int trans_a, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                    int accumulate, float *c, long ldc) {
    (void)trans_a; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)accumulate; (void)c; (void)ldc;
}
#endif
