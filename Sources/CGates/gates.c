// See include/gates.h.
#include "gates.h"

#if defined(__x86_64__)
#include <immintrin.h>

int rd_gates_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define RD_GATES static inline __attribute__((always_inline, target("avx2,fma")))

// `TanhCoefficients` and `tanhClamp` (bits 0x4100839F) of Sources/RNN/Kernels.swift.
#define A3 1.344732195e-01f
#define A5 3.574976465e-03f
#define A7 2.195200796e-05f
#define A9 1.531535609e-08f
#define B2 4.678065181e-01f
#define B4 2.617722377e-02f
#define B6 3.416881664e-04f
#define B8 8.555908835e-07f
#define TANH_CLAMP 0x1.01073ep+3f

/// `Lane.clamped(to:)`: c where r > c, then −c where r < −c (ordered comparisons: NaN stays NaN).
RD_GATES __m256 rd_clamp(__m256 r, float c) {
    const __m256 hi = _mm256_set1_ps(c), lo = _mm256_set1_ps(-c);
    r = _mm256_blendv_ps(r, hi, _mm256_cmp_ps(r, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(r, lo, _mm256_cmp_ps(r, lo, _CMP_LT_OQ));
}

/// `fastTanh` of N vectors, each step of the N in lockstep (their chains overlap; one activation
/// after the other, the CPU waited on each one's latency).
RD_GATES void rd_tanh_n(const int N, __m256 *x) {
    __m256 xc[4], x2[4], p[4], q[4];
    for (int v = 0; v < N; v++) { xc[v] = rd_clamp(x[v], TANH_CLAMP); x2[v] = _mm256_mul_ps(xc[v], xc[v]); }
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(_mm256_set1_ps(A9), x2[v], _mm256_set1_ps(A7));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(_mm256_set1_ps(B8), x2[v], _mm256_set1_ps(B6));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(A5));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(B4));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(A3));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(B2));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(1.0f));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(1.0f));
    for (int v = 0; v < N; v++) x[v] = _mm256_div_ps(_mm256_mul_ps(xc[v], p[v]), q[v]);
}

/// `fastSigmoid` of N vectors in lockstep.
RD_GATES void rd_sigmoid_n(const int N, __m256 *x) {
    __m256 xc[4], x2[4], p[4], q[4];
    for (int v = 0; v < N; v++) { xc[v] = rd_clamp(x[v], 2.0f * TANH_CLAMP); x2[v] = _mm256_mul_ps(xc[v], xc[v]); }
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(_mm256_set1_ps(A9 * 0x1p-10f), x2[v], _mm256_set1_ps(A7 * 0x1p-8f));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(_mm256_set1_ps(B8 * 0x1p-8f), x2[v], _mm256_set1_ps(B6 * 0x1p-6f));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(A5 * 0x1p-6f));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(B4 * 0x1p-4f));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(A3 * 0x1p-4f));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(B2 * 0x1p-2f));
    for (int v = 0; v < N; v++) p[v] = _mm256_fmadd_ps(p[v], x2[v], _mm256_set1_ps(0x1p-2f));
    for (int v = 0; v < N; v++) q[v] = _mm256_fmadd_ps(q[v], x2[v], _mm256_set1_ps(1.0f));
    for (int v = 0; v < N; v++) x[v] = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(xc[v], p[v]), q[v]), _mm256_set1_ps(0.5f));
}

/// Row r's row of the projection table (`width` floats, read in place), the next step's row
/// prefetched when `next` is given; NULL without a table.
RD_GATES const float *rd_table_row(const float *table, const int32_t *index, const int32_t *next, long stride,
                                   long r, long width) {
    if (!table) return 0;
    if (next) {
        const char *p = (const char *)(table + (long)next[r * stride] * width);
        for (long off = 0; off < width * 4; off += 64) __builtin_prefetch(p + off, 0, 3);
    }
    return table + (long)index[r * stride] * width;
}

/// LANES(N, j) over a row's H units: four vectors (32 units) at a time, then the 3, 2 or 1 left.
#define RD_FOR_LANES(H, LANES) do {                                   \
        long j_ = 0;                                                  \
        for (; j_ + 32 <= (H); j_ += 32) LANES(4, j_);                \
        switch (((H) - j_) / 8) {                                     \
        case 3: LANES(3, j_); break;                                  \
        case 2: LANES(2, j_); break;                                  \
        case 1: LANES(1, j_); break;                                  \
        default: break;                                               \
        }                                                             \
    } while (0)

/// N (1…4) vectors of lanes from unit j on: as `activate` then the state update of LSTM.swift.
RD_GATES void rd_lstm_lanes(const int N, long H, long j, const float *g, const float *x, const float *b,
                            const float *cp, float *c, float *h) {
    __m256 a[4][4];
    for (int k = 0; k < 4; k++)
        for (int v = 0; v < N; v++) {
            const long o = k * H + j + 8 * v;
            __m256 s = g ? _mm256_loadu_ps(g + o) : _mm256_loadu_ps(x + o);
            if (g && x) s = _mm256_add_ps(s, _mm256_loadu_ps(x + o));
            a[k][v] = _mm256_add_ps(s, _mm256_loadu_ps(b + o));
        }
    rd_sigmoid_n(N, a[0]);
    rd_sigmoid_n(N, a[1]);
    rd_tanh_n(N, a[2]);
    rd_sigmoid_n(N, a[3]);
    __m256 cNew[4];
    for (int v = 0; v < N; v++) {
        const long u = j + 8 * v;
        cNew[v] = _mm256_add_ps(_mm256_mul_ps(a[1][v], _mm256_loadu_ps(cp + u)), _mm256_mul_ps(a[0][v], a[2][v]));
        _mm256_storeu_ps(c + u, cNew[v]);
    }
    rd_tanh_n(N, cNew);
    for (int v = 0; v < N; v++) _mm256_storeu_ps(h + j + 8 * v, _mm256_mul_ps(a[3][v], cNew[v]));
}

__attribute__((target("avx2,fma")))
void rd_lstm_forward_rows(long rows, long units, const float *g, long g_stride, const float *x_table,
                          const int32_t *x_index, const int32_t *x_next, long x_stride, const float *bias,
                          const float *c_prev, float *c, float *h) {
    const long H = units, G = 4 * units;
    for (long r = 0; r < rows; r++) {
        const float *gr = g ? g + r * g_stride : 0;
        const float *xr = rd_table_row(x_table, x_index, x_next, x_stride, r, G);
        const float *cp = c_prev + r * H;
        float *cr = c + r * H, *hr = h + r * H;
#define LANES(N, j) rd_lstm_lanes(N, H, j, gr, xr, bias, cp, cr, hr)
        RD_FOR_LANES(H, LANES);
#undef LANES
    }
}

/// N (1…4) vectors of lanes from unit j on: as the two lane passes of `GRULayer.forward` (reset after).
RD_GATES void rd_gru_lanes(const int N, long H, long j, const float *x, const float *rec, const float *b,
                           const float *hp, float *h) {
    const float *inZ = b, *recZ = b + 3 * H;
    __m256 z[4], r[4], a[4];
    for (int v = 0; v < N; v++) {
        const long u = j + 8 * v;
        z[v] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + u), _mm256_loadu_ps(inZ + u)),
                                           _mm256_loadu_ps(rec + u)), _mm256_loadu_ps(recZ + u));
        r[v] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + H + u), _mm256_loadu_ps(inZ + H + u)),
                                           _mm256_loadu_ps(rec + H + u)), _mm256_loadu_ps(recZ + H + u));
    }
    rd_sigmoid_n(N, z);
    rd_sigmoid_n(N, r);
    for (int v = 0; v < N; v++) {
        const long u = j + 8 * v;
        const __m256 rh = _mm256_add_ps(_mm256_loadu_ps(rec + 2 * H + u), _mm256_loadu_ps(recZ + 2 * H + u));
        a[v] = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + 2 * H + u), _mm256_loadu_ps(inZ + 2 * H + u)),
                             _mm256_mul_ps(r[v], rh));
    }
    rd_tanh_n(N, a);
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int v = 0; v < N; v++) {
        const long u = j + 8 * v;
        _mm256_storeu_ps(h + u, _mm256_add_ps(_mm256_mul_ps(z[v], _mm256_loadu_ps(hp + u)),
                                              _mm256_mul_ps(_mm256_sub_ps(one, z[v]), a[v])));
    }
}

__attribute__((target("avx2,fma")))
void rd_gru_forward_rows(long rows, long units, const float *xg, long xg_stride, const float *x_table,
                         const int32_t *x_index, const int32_t *x_next, long x_stride, const float *rec,
                         const float *bias, const float *h_prev, float *h) {
    const long H = units, G = 3 * units;
    for (long r = 0; r < rows; r++) {
        const float *row = rd_table_row(x_table, x_index, x_next, x_stride, r, G);
        const float *xr = row ? row : xg + r * xg_stride;
        const float *rr = rec + r * G, *hp = h_prev + r * H;
        float *hr = h + r * H;
#define LANES(N, j) rd_gru_lanes(N, H, j, xr, rr, bias, hp, hr)
        RD_FOR_LANES(H, LANES);
#undef LANES
    }
}

/// N (1…4) vectors of `activate(TanhGate.self, …)` from unit j on.
RD_GATES void rd_tanh_lanes(const int N, long j, const float *a, const float *x, const float *b, float *out) {
    __m256 s[4];
    for (int v = 0; v < N; v++) {
        const long u = j + 8 * v;
        __m256 t = a ? _mm256_loadu_ps(a + u) : _mm256_loadu_ps(x + u);
        if (a && x) t = _mm256_add_ps(t, _mm256_loadu_ps(x + u));
        s[v] = _mm256_add_ps(t, _mm256_loadu_ps(b + u));
    }
    rd_tanh_n(N, s);
    for (int v = 0; v < N; v++) _mm256_storeu_ps(out + j + 8 * v, s[v]);
}

__attribute__((target("avx2,fma")))
void rd_tanh_rows(long rows, long units, const float *a, const float *x_table, const int32_t *x_index,
                  const int32_t *x_next, long x_stride, const float *bias, float *out) {
    const long H = units;
    for (long r = 0; r < rows; r++) {
        const float *ar = a ? a + r * H : 0;
        const float *xr = rd_table_row(x_table, x_index, x_next, x_stride, r, H);
        float *o = out + r * H;
#define LANES(N, j) rd_tanh_lanes(N, j, ar, xr, bias, o)
        RD_FOR_LANES(H, LANES);
#undef LANES
    }
}

#else

int rd_gates_supported(void) { return 0; }

void rd_gru_forward_rows(long rows, long units, const float *xg, long xg_stride, const float *x_table,
                         const int32_t *x_index, const int32_t *x_next, long x_stride, const float *rec,
                         const float *bias, const float *h_prev, float *h) {
    (void)rows; (void)units; (void)xg; (void)xg_stride; (void)x_table; (void)x_index; (void)x_next; (void)x_stride;
    (void)rec; (void)bias; (void)h_prev; (void)h;
    __builtin_trap();   // never called: rd_gates_supported() is 0
}

void rd_tanh_rows(long rows, long units, const float *a, const float *x_table, const int32_t *x_index,
                  const int32_t *x_next, long x_stride, const float *bias, float *out) {
    (void)rows; (void)units; (void)a; (void)x_table; (void)x_index; (void)x_next; (void)x_stride; (void)bias; (void)out;
    __builtin_trap();   // never called: rd_gates_supported() is 0
}

void rd_lstm_forward_rows(long rows, long units, const float *g, long g_stride, const float *x_table,
                          const int32_t *x_index, const int32_t *x_next, long x_stride, const float *bias,
                          const float *c_prev, float *c, float *h) {
    (void)rows; (void)units; (void)g; (void)g_stride; (void)x_table; (void)x_index; (void)x_next; (void)x_stride;
    (void)bias; (void)c_prev; (void)c; (void)h;
    __builtin_trap();   // never called: rd_gates_supported() is 0
}

#endif
