// The recurrent cells' gate loops without backward, in C with AVX2 and FMA, chosen at run time: the
// LSTM's and the GRU's in evaluation, the SimpleRNN's (which keeps nothing else for BPTT) in training
// too. The same operations in the same order as `forward` in Sources/RNN/LSTM.swift, GRU.swift and
// SimpleRNN.swift (and their activations, `fastSigmoid` and `fastTanh` in Sources/RNN/Kernels.swift),
// so the same bits; each activation over four vectors of lanes in lockstep, so that their dependency
// chains (a division at the end of each) overlap instead of waiting on each other.
#ifndef RNN_DIST_GATES_H
#define RNN_DIST_GATES_H

#include <stdint.h>

/// 1 when the CPU runs the functions below (x86-64 with AVX2 and FMA), else 0.
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

/// One time step of `rows` rows of a GRU (reset after, Keras 3's) of `units` H units (a multiple of
/// 8), forward only. Row r's input side [x_z x_r x_h] (3H) is xg + r·xg_stride, or, with `x_table`,
/// x_table + x_index[r·x_stride]·3H (`x_next` as for the LSTM); its recurrent side rec + r·3H (h·U,
/// or zeros); bias holds [b_in; b_rec] (2 × 3H). z = σ((x_z + b_in,z) + r_z + b_rec,z), r likewise,
/// ĥ = tanh((x_h + b_in,h) + r·(r_h + b_rec,h)), h_t = z·h_{t−1} + (1 − z)·ĥ written to h (rows × H;
/// h_prev likewise).
void rd_gru_forward_rows(long rows, long units, const float *xg, long xg_stride, const float *x_table,
                         const int32_t *x_index, const int32_t *x_next, long x_stride, const float *rec,
                         const float *bias, const float *h_prev, float *h);

/// One time step of `rows` rows of a SimpleRNN of `units` H units (a multiple of 8): out_r =
/// tanh((a_r + x_r) + b), or tanh(a_r + b) without x, or tanh(x_r + b) without a, where a_r =
/// a + r·H (h·U), x_r = x_table + x_index[r·x_stride]·H (`x_next` as for the LSTM); out (rows × H)
/// may be a.
void rd_tanh_rows(long rows, long units, const float *a, const float *x_table, const int32_t *x_index,
                  const int32_t *x_next, long x_stride, const float *bias, float *out);

#endif
