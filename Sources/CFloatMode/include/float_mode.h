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
/// operations in the same order as `fastTanh` in Sources/RNN/Kernels.swift (Horner with FMA), so the
/// same bits. One call per four lanes where the Swift code is not built for FMA.
static inline __attribute__((target("fma"))) __m128 rd_tanh_rational4(__m128 x) {
    __m128 x2 = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(-2.76076847742355e-16f);
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(2.00018790482477e-13f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(-8.60467152213735e-11f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(5.12229709037114e-08f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(1.48572235717979e-05f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(6.37261928875436e-04f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(4.89352455891786e-03f));
    __m128 q = _mm_set1_ps(1.19825839466702e-06f);
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(1.18534705686654e-04f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(2.26843463243900e-03f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(4.89352518554385e-03f));
    return _mm_div_ps(_mm_mul_ps(x, p), q);
}

/// rnn-dist's σ for four arguments already clamped at twice the tanh clamp: the same operations in
/// the same order as `sigmoidRationalHorner` in Sources/RNN/Kernels.swift (tanh's coefficients
/// scaled by powers of two, exactly), so the same bits.
static inline __attribute__((target("fma"))) __m128 rd_sigmoid_rational4(__m128 x) {
    __m128 x2 = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(-2.76076847742355e-16f * 0x1p-14f);
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(2.00018790482477e-13f * 0x1p-12f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(-8.60467152213735e-11f * 0x1p-10f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(5.12229709037114e-08f * 0x1p-8f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(1.48572235717979e-05f * 0x1p-6f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(6.37261928875436e-04f * 0x1p-4f));
    p = _mm_fmadd_ps(p, x2, _mm_set1_ps(4.89352455891786e-03f * 0x1p-2f));
    __m128 q = _mm_set1_ps(1.19825839466702e-06f * 0x1p-6f);
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(1.18534705686654e-04f * 0x1p-4f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(2.26843463243900e-03f * 0x1p-2f));
    q = _mm_fmadd_ps(q, x2, _mm_set1_ps(4.89352518554385e-03f));
    return _mm_add_ps(_mm_div_ps(_mm_mul_ps(x, p), q), _mm_set1_ps(0.5f));
}
#endif

#endif
