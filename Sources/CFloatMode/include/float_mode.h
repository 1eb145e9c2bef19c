// The CPU's floating-point features: its treatment of subnormal numbers (for the calling thread),
// and its fused multiply-add instruction, chosen at run time.
#ifndef RNN_DIST_FLOAT_MODE_H
#define RNN_DIST_FLOAT_MODE_H

/// Flush subnormal results to zero and treat subnormal inputs as zero on the calling thread
/// (x86-64: MXCSR FTZ|DAZ; arm64: FPCR.FZ). Returns 1 where the CPU has such a mode, else 0.
int rd_flush_subnormals_to_zero(void);

/// 1 when the calling thread flushes subnormals (both bits on x86-64, FZ on arm64), else 0.
int rd_flushes_subnormals(void);

/// 1 when the CPU executes fused multiply-add instructions (x86-64: FMA3; always on arm64), else 0.
int rd_cpu_has_fma(void);

/// `rd_cpu_has_fma()`, set before `main` runs: a plain load for the hot loops.
extern int rd_fma_available;
static inline int rd_fma_ready(void) { return rd_fma_available; }

/// A hint to bring the cache line holding `p` closer (no effect on any result): for rows the hot
/// loops will read next from tables too large for the caches.
static inline void rd_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#if defined(__x86_64__)
#include <immintrin.h>
/// a·b + c with one rounding, four lanes: the FMA3 instruction, compiled for it whatever the build
/// targets. Call only where `rd_cpu_has_fma()` is 1. A caller built for a CPU with FMA inlines it
/// (one vfmadd); a baseline x86-64 caller calls it (a call instead of a per-lane `fmaf`).
static inline __attribute__((target("fma"))) __m128 rd_fma4(__m128 a, __m128 b, __m128 c) {
    return _mm_fmadd_ps(a, b, c);
}

/// The rational part of rnn-dist's tanh for four already clamped arguments, x·p(x²)/q(x²): the same
/// operations in the same order, with the same coefficients (`TanhCoefficients`), as `fastTanh` in
/// Sources/RNN/Kernels.swift (Horner with FMA), so the same bits. One call per four lanes where the
/// Swift code is not built for FMA.
#define RD_TANH_A3 1.344732195e-01f
#define RD_TANH_A5 3.574976465e-03f
#define RD_TANH_A7 2.195200796e-05f
#define RD_TANH_A9 1.531535609e-08f
#define RD_TANH_B2 4.678065181e-01f
#define RD_TANH_B4 2.617722377e-02f
#define RD_TANH_B6 3.416881664e-04f
#define RD_TANH_B8 8.555908835e-07f
static inline __attribute__((target("fma"))) __m128 rd_tanh_rational4(__m128 x) {
    __m128 x2 = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(RD_TANH_A9);
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A7));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A5));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A3));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(1.0f));
    __m128 q = _mm_set1_ps(RD_TANH_B8);
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B6));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B4));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B2));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(1.0f));
    return _mm_div_ps(_mm_mul_ps(x, p), q);
}

/// rnn-dist's σ for four arguments already clamped at twice the tanh clamp: the same operations in
/// the same order as `sigmoidRationalHorner` in Sources/RNN/Kernels.swift (tanh's coefficients
/// scaled by powers of two, exactly), so the same bits.
static inline __attribute__((target("fma"))) __m128 rd_sigmoid_rational4(__m128 x) {
    __m128 x2 = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(RD_TANH_A9 * 0x1p-10f);
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A7 * 0x1p-8f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A5 * 0x1p-6f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(RD_TANH_A3 * 0x1p-4f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(0x1p-2f));
    __m128 q = _mm_set1_ps(RD_TANH_B8 * 0x1p-8f);
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B6 * 0x1p-6f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B4 * 0x1p-4f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(RD_TANH_B2 * 0x1p-2f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(1.0f));
    return _mm_add_ps(_mm_div_ps(_mm_mul_ps(x, p), q), _mm_set1_ps(0.5f));
}
#endif

#endif
