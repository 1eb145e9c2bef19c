// The LSTM's gate loop without backward (evaluation), in C with AVX2 and FMA, chosen at run time:
// the same operations in the same order as `LSTMLayer.forward` in Sources/RNN/LSTM.swift (and its
// activations, `fastSigmoid` and `fastTanh` in Sources/RNN/Kernels.swift), so the same bits; each
// activation over four vectors of lanes in lockstep, so that their dependency chains (a division
// at the end of each) overlap instead of waiting on each other.
#ifndef RNN_DIST_GATES_H
#define RNN_DIST_GATES_H

#include <stdint.h>

/// 1 when the CPU runs `rd_lstm_forward_rows` (x86-64 with AVX2 and FMA), else 0.
int rd_gates_supported(void);

/// One time step of `rows` rows of an LSTM of `units` H units (a multiple of 8), forward only.
/// Row r's pre-activations [a_i a_f a_c a_o] (4H) are (g_r + x_r) + b, or g_r + b without x, or
/// x_r + b without g: g_r = g + r·g_stride (h·U, or h·U + x·W), x_r = x_table + x_index[r·x_stride]·4H
/// (the projection table's row, read in place). Then i, f, o = σ, ĉ = tanh, c_t = f·c_{t−1} + i·ĉ,
/// h_t = o·tanh(c_t), written to c and h (rows × H each; c_prev likewise). `x_next`, when not NULL,
/// is the next step's index list (same stride): those rows are prefetched.
void rd_lstm_forward_rows(long rows, long units, const float *g, long g_stride, const float *x_table,
                          const int32_t *x_index, const int32_t *x_next, long x_stride, const float *bias,
                          const float *c_prev, float *c, float *h);

#endif
