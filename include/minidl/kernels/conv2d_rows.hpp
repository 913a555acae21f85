// minidl/kernels/conv2d_rows.hpp - stride-1 convolution for few channels (conv1).
//
// With one input channel the tiles of conv2d_direct.hpp, which put channels
// in the vector lanes, would be mostly zeros. These kernels put output pixels
// of one row in the lanes instead, read from a zero-padded copy of the input
// (of dy for the input gradient, whose few channels are its outputs).
// Rows need at least one full vector of pixels: the last vector of a row
// starts at OW - width, overlapping the one before it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_direct.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/ordered_sum.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// ---- forward ----------------------------------------------------------------
// The register tile is MR output channels x NV vectors of one output row.
// Each tap (c, kh, kw) loads NV shifted vectors of the padded input and
// multiplies them by MR broadcast weights. Every output is summed from zero
// over the taps in (c, kh, kw) order and the bias is added last, as the
// im2col kernel does, so the two give the same bits.

// Whether conv2d_forward_rows handles this shape.
template <typename T>
bool conv2d_forward_rows_applies(const Conv2dShape& s) {
  return conv2d_direct_applies(s) && s.OW() >= Simd<T>::width;
}

namespace detail {
// Pixels start[0..NV) + [0, width) of every output row, for MR output
// channels. `in`: the padded input; `a`: the channels' weights packed as MR
// values per tap (pack_a_whole); `out`: the first channel's output plane, the
// others `P` apart; only the first `rows` channels are stored.
// KSIZE > 0 fixes the kernel size at compile time, so that the tap loops
// unroll, as in direct_tile.
template <typename T, int NV, int KSIZE>
void rows_forward_tile(const Conv2dShape& s, const T* in, const T* a, const T* b, bool relu,
                       int rows, const std::int64_t* start, T* out) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int MR = kGemmRows;
  const std::int64_t WP = s.W + 2 * s.pad, plane = (s.H + 2 * s.pad) * WP;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW;
  const std::int64_t s0 = start[0], s1 = start[NV - 1];
  // A channel past `rows` (a short last group) takes the last real one's bias.
  const T* bias[MR];
  MINIDL_UNROLL(16)
  for (int r = 0; r < MR; ++r) bias[r] = b ? b + std::min(r, rows - 1) : nullptr;
  for (std::int64_t oh = 0; oh < OH; ++oh, in += WP, out += OW) {
    V acc[MR][NV];
    MINIDL_UNROLL(16)
    for (int r = 0; r < MR; ++r) {
      MINIDL_UNROLL(16)
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    }
    const T* w = a;
    const std::int64_t KH = KSIZE > 0 ? KSIZE : s.KH, KW = KSIZE > 0 ? KSIZE : s.KW;
    // Every loop inside the channel loop is unrolled by pragma: at -O2 GCC
    // unrolls none of them by itself, and the accumulators go to memory.
    for (std::int64_t c = 0; c < s.C; ++c) {
      MINIDL_UNROLL(7)
      for (std::int64_t kh = 0; kh < KH; ++kh) {
        const T* row = in + c * plane + kh * WP;
        MINIDL_UNROLL(7)
        for (std::int64_t kw = 0; kw < KW; ++kw, w += MR) {
          // Named vectors, not an array: GCC keeps a small array of vectors
          // in memory and reloads it for every multiply-add.
          const V x0 = S::load(row + s0 + kw);
          const V x1 = NV == 2 ? S::load(row + s1 + kw) : x0;
          MINIDL_UNROLL(16)
          for (int r = 0; r < MR; ++r) {
            const V wv = S::broadcast(w[r]);
            acc[r][0] += wv * x0;
            if (NV == 2) acc[r][NV - 1] += wv * x1;
          }
        }
      }
    }
    // The bias last, as the im2col kernel adds it. Stored from the last
    // channel to the first, and a channel past `rows` to where the last real
    // one goes, which then overwrites it: a loop that stopped at `rows`
    // would force the accumulators out of registers.
    MINIDL_UNROLL(16)
    for (int r = MR - 1; r >= 0; --r) {
      T* dst = out + std::min(r, rows - 1) * P;
      const V bias_r = b ? S::broadcast(*bias[r]) : V{};
      MINIDL_UNROLL(16)
      for (int v = 0; v < NV; ++v) {
        V y = b ? acc[r][v] + bias_r : acc[r][v];
        if (relu) y = y > V{} ? y : V{};  // as relu_forward: NaN and -0 give +0
        S::store(dst + start[v], y);
      }
    }
  }
}

// rows_forward_tile, with the kernel size fixed at compile time for 3 x 3.
template <typename T, int NV>
void rows_forward_tile_for(const Conv2dShape& s, const T* in, const T* a, const T* b, bool relu,
                           int rows, const std::int64_t* start, T* out) {
  if (s.KH == 3 && s.KW == 3)
    rows_forward_tile<T, NV, 3>(s, in, a, b, relu, rows, start, out);
  else
    rows_forward_tile<T, NV, 0>(s, in, a, b, relu, rows, start, out);
}
}  // namespace detail

// conv(x, w) + b (b may be null), then max(y, 0) with relu, for shapes where
// conv2d_forward_rows_applies, parallel over samples, handed to the output
// sink (StoredOutput in conv2d_direct.hpp) kGemmRows channels of one sample
// at a time. A consumer that uses them at once (a max-pool) can give a
// small per-thread buffer, so that y never goes to memory. The vectors of a
// row start at 0, W, 2W, ... and the last at OW - W; an overlap is computed
// twice, to the same bits. `workspace`: conv2d_workspace_size elements, for
// the packed weights.
template <typename T, typename Output>
void conv2d_forward_rows_groups(const Conv2dShape& s, const T* x, const T* w, const T* b,
                                T* workspace, bool relu, const Output& output) {
  constexpr int W = Simd<T>::width, MR = kGemmRows;
  const std::int64_t K = s.col_rows(), OW = s.OW();
  const std::int64_t plane = (s.H + 2 * s.pad) * (s.W + 2 * s.pad);
  const std::int64_t vectors = (OW + W - 1) / W;
  pack_a_whole<T>({w, K, false}, s.OC, K, workspace);
  // One block of samples per thread, as the static schedule cuts them: the
  // padded copy's border is zeroed once per block.
  parallel_blocks(s.N, num_threads(), [&](int, std::int64_t n0, std::int64_t n1) {
    T* xpad = thread_scratch<T, 0>(s.C * plane);
    std::fill_n(xpad, s.C * plane, T(0));
    for (std::int64_t n = n0; n < n1; ++n) {
      detail::copy_into_padded(x + n * s.C * s.H * s.W, s.C, s.H, s.W,
                               detail::padded_evenly(s.H, s.W, s.pad), xpad);
      for (std::int64_t oc0 = 0; oc0 < s.OC; oc0 += MR) {
        const int rows = static_cast<int>(std::min<std::int64_t>(MR, s.OC - oc0));
        const T* a = workspace + oc0 * K;
        const T* bias = b ? b + oc0 : nullptr;
        T* out = output.planes(n, oc0, rows);
        std::int64_t v = 0;
        for (; v + 2 <= vectors; v += 2) {
          const std::int64_t pair[2] = {v * W, std::min((v + 1) * W, OW - W)};
          detail::rows_forward_tile_for<T, 2>(s, xpad, a, bias, relu, rows, pair, out);
        }
        if (v < vectors) {
          const std::int64_t one[1] = {OW - W};
          detail::rows_forward_tile_for<T, 1>(s, xpad, a, bias, relu, rows, one, out);
        }
        output.done(n, oc0, rows, static_cast<const T*>(out));
      }
    }
  });
}

// y = conv(x, w) + b, stored whole.
template <typename T>
void conv2d_forward_rows(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                         T* workspace, bool relu = false) {
  conv2d_forward_rows_groups(s, x, w, b, workspace, relu,
                             StoredOutput<T>{y, s.OC, s.OH() * s.OW()});
}

// ---- input gradient ---------------------------------------------------------
// At stride 1 the input gradient is a convolution of dy, padded by
// K - 1 - pad, with the kernel flipped and its channel axes swapped: its
// output channels are the layer's input channels. With few of them (a grey
// or colour image's first layer, LeNet-5's 6) the direct tile, which puts
// them in the lanes, is mostly padding, and so would be the forward tile's
// 8 channel rows. This tile is RB rows x NV vectors of one input channel's
// pixels. Each vector of dy it loads serves every row of the tile that its
// kernel column reaches, up to K of them, with the column's K weights held
// in registers. Each value sums over (output channel, kernel column,
// kernel row) in that order, whichever tile computes it.

namespace detail {
// Rows per input-gradient tile: RB x 2 accumulators, the K weights of a
// kernel column and two vectors of dy within the vector registers (32 with
// AVX-512, 16 otherwise).
template <int K>
inline constexpr int kRowsDataTileRows = kSimdBytes == 64 ? (K == 7 ? 10 : 12) : (K == 7 ? 3 : 4);

// At stride 2 each input row and column takes the kernel's rows and
// columns of one parity: the tile holds RB rows of both column phases
// (even and odd pixels, each NV vectors of them), 2 x RB x NV accumulators.
template <int K, int NV>
inline constexpr int kRowsDataTileRows2 =
    (kSimdBytes == 64 ? (K == 7 ? 8 : 12) : (K == 7 ? 2 : 4)) / NV;

// Vectors of each column phase per stride-2 tile: one when it covers a
// row's pixels of that phase, else two.
template <typename T>
int rows_data_phase_vectors(const Conv2dShape& s) {
  return (s.W + 1) / 2 <= Simd<T>::width ? 1 : 2;
}

template <int K, typename T>
bool rows_data_fits(const Conv2dShape& s) {
  if (s.stride == 1) return s.H >= kRowsDataTileRows<K>;
  return s.H >=
         (rows_data_phase_vectors<T>(s) == 1 ? kRowsDataTileRows2<K, 1> : kRowsDataTileRows2<K, 2>);
}
}  // namespace detail

// Whether conv2d_backward_data_rows handles this shape: stride 1 or 2, a
// 3x3, 5x5 or 7x7 kernel, input rows a vector wide and as many as a
// tile's. (At stride 2, rows of 14 pixels fill 7 of each phase's 16 lanes:
// 0.9x im2col's speed for 3x3, 1.1x for 5x5.)
template <typename T>
bool conv2d_data_rows_applies(const Conv2dShape& s) {
  if (!conv2d_direct_strided_applies(s) || s.W < Simd<T>::width) return false;
  switch (s.KH) {
    case 3:
      return detail::rows_data_fits<3, T>(s);
    case 5:
      return detail::rows_data_fits<5, T>(s);
    case 7:
      return detail::rows_data_fits<7, T>(s);
    default:
      return false;
  }
}

// Elements of the workspace conv2d_backward_data_rows takes: the weights,
// packed by input channel (and flipped at stride 1).
template <typename T>
std::int64_t conv2d_rows_workspace_size(const Conv2dShape& s) {
  return s.C * s.OC * s.KH * s.KW;
}

namespace detail {
// The K weights of a kernel column, broadcast and held in registers.
template <typename T, int K>
[[gnu::always_inline]] inline void column_weights(const T* packed, typename Simd<T>::vec (&wk)[K]) {
  MINIDL_UNROLL(7)
  for (int a = 0; a < K; ++a) {
    wk[a] = Simd<T>::broadcast(packed[a]);
    Simd<T>::keep_in_register(wk[a]);
  }
}

// Each input channel's weights a kernel column at a time, as the tiles read
// them: packed[c][o][column][row] = w[o][c][row][column], or with `flip`
// the kernel turned half round (w[o][c][K - 1 - row][K - 1 - column]), the
// stride-1 gradient's convolution of dy.
template <typename T, int K>
void pack_kernel_columns(const Conv2dShape& s, const T* w, bool flip, T* packed) {
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t o = 0; o < s.OC; ++o)
      for (int column = 0; column < K; ++column)
        for (int row = 0; row < K; ++row) {
          const int kh = flip ? K - 1 - row : row, kw = flip ? K - 1 - column : column;
          packed[((c * s.OC + o) * K + column) * K + row] = w[((o * s.C + c) * K + kh) * K + kw];
        }
}

// body(n, item, dyp) for the work items [0, N * per_sample), item counted
// within sample n, one block of them per thread. dyp holds sample n's dy
// inside `padding`: the border zeroed once per block, the inside copied
// once per sample the block meets.
template <typename T, typename Body>
void for_each_item_on_padded_dy(const Conv2dShape& s, const T* dy, const PaddedPlanes& padding,
                                std::int64_t per_sample, const Body& body) {
  const std::int64_t OH = s.OH(), OW = s.OW(), size = s.OC * padding.HP * padding.WP;
  parallel_blocks(s.N * per_sample, num_threads(), [&](int, std::int64_t i0, std::int64_t i1) {
    T* dyp = thread_scratch<T, 0>(size);
    std::fill_n(dyp, size, T(0));
    std::int64_t padded = -1;
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t n = i / per_sample;
      if (n != padded) {
        copy_into_padded(dy + n * s.OC * OH * OW, s.OC, OH, OW, padding, dyp);
        padded = n;
      }
      body(n, i % per_sample, static_cast<const T*>(dyp));
    }
  });
}

// Input rows [0, RB) of one channel at pixels start[0..NV) + [0, width):
// dyp points at the padded dy's row of the tile's first input row (planes
// `plane` apart, rows WP apart), packed at the channel's flipped weights
// [OC][K columns][K rows], out at the tile's first row of dx (rows W apart).
template <typename T, int K, int RB, int NV>
void rows_data_tile(const T* dyp, std::int64_t WP, std::int64_t plane, std::int64_t OC,
                    const T* packed, const std::int64_t* start, T* out, std::int64_t W) {
  using S = Simd<T>;
  using V = typename S::vec;
  V acc[RB][NV];
  MINIDL_UNROLL(12)
  for (int r = 0; r < RB; ++r) {
    MINIDL_UNROLL(2)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  }
  const std::int64_t s0 = start[0], s1 = start[NV - 1];
  for (std::int64_t o = 0; o < OC; ++o, dyp += plane) {
    MINIDL_UNROLL(7)
    for (int b = 0; b < K; ++b, packed += K) {
      V wk[K];
      column_weights<T, K>(packed, wk);
      // dy row i reaches the tile's rows i - a for the kernel rows a.
      MINIDL_UNROLL(18)
      for (int i = 0; i < RB + K - 1; ++i) {
        const T* row = dyp + i * WP + b;
        const V x0 = S::load(row + s0);
        const V x1 = NV == 2 ? S::load(row + s1) : x0;
        MINIDL_UNROLL(7)
        for (int a = 0; a < K; ++a) {
          const int r = i - a;
          if (r < 0 || r >= RB) continue;
          acc[r][0] += wk[a] * x0;
          if (NV == 2) acc[r][NV - 1] += wk[a] * x1;
        }
      }
    }
  }
  MINIDL_UNROLL(12)
  for (int r = 0; r < RB; ++r) {
    MINIDL_UNROLL(2)
    for (int v = 0; v < NV; ++v) S::store(out + r * W + start[v], acc[r][v]);
  }
}

// One input channel's rows [h0, h0 + RB) of one sample, every vector of
// the row (the last starting at W - width, overlapping the one before).
template <typename T, int K>
void rows_data_rows(const Conv2dShape& s, const T* dyp, std::int64_t WP, std::int64_t plane,
                    const T* packed, std::int64_t h0, T* out) {
  constexpr int W = Simd<T>::width, RB = kRowsDataTileRows<K>;
  const std::int64_t vectors = (s.W + W - 1) / W;
  dyp += h0 * WP;
  out += h0 * s.W;
  std::int64_t v = 0;
  for (; v + 2 <= vectors; v += 2) {
    const std::int64_t pair[2] = {v * W, std::min((v + 1) * W, s.W - W)};
    rows_data_tile<T, K, RB, 2>(dyp, WP, plane, s.OC, packed, pair, out, s.W);
  }
  if (v < vectors) {
    const std::int64_t one[1] = {s.W - W};
    rows_data_tile<T, K, RB, 1>(dyp, WP, plane, s.OC, packed, one, out, s.W);
  }
}

// conv2d_backward_data_rows for a K x K kernel.
template <typename T, int K>
void rows_data(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  constexpr int RB = kRowsDataTileRows<K>;
  const PaddedPlanes padding = padded_evenly(s.OH(), s.OW(), K - 1 - s.pad);
  const std::int64_t WP = padding.WP, plane = padding.HP * WP;
  pack_kernel_columns<T, K>(s, w, true, workspace);
  // Work items (sample, tile of rows, channel), the last tile starting at
  // H - RB. A tile's channels one after the other read the same rows of
  // dy, still in the core's L1 cache.
  const std::int64_t tiles = (s.H + RB - 1) / RB;
  for_each_item_on_padded_dy(
      s, dy, padding, tiles * s.C, [&](std::int64_t n, std::int64_t item, const T* dyp) {
        const std::int64_t t = item / s.C, c = item % s.C;
        rows_data_rows<T, K>(s, dyp, WP, plane, workspace + c * s.OC * K * K,
                             std::min(t * RB, s.H - RB), dx + (n * s.C + c) * s.H * s.W);
      });
}

// The even and odd pixels a, b of a row interleaved: the first W of the
// 2W pixels, or with Second the last W.
template <typename T, bool Second, std::size_t... I>
typename Simd<T>::vec interleave_lanes(typename Simd<T>::vec a, typename Simd<T>::vec b,
                                       std::index_sequence<I...>) {
  constexpr int W = Simd<T>::width, base = Second ? W / 2 : 0;
  return __builtin_shufflevector(a, b,
                                 static_cast<int>(I % 2 ? W + base + I / 2 : base + I / 2)...);
}

// Stride 2: input rows ih0 + [0, RB) of one channel, pixels 2 j0 + [0, 2
// NV width). Input row ih takes the kernel rows kh of the parity of ih +
// pad, from dy row (ih + pad - kh) / 2; input column 2 j + q the kernel
// columns kw of the parity of q + pad, from dy column j + (q + pad - kw) /
// 2. E = (ih0 + pad) % 2 and PP = pad % 2 fix at compile time which
// kernel row and column each accumulator takes. dyp points at the padded
// dy's plane (origin K rows and columns in), packed at the channel's
// weights [OC][K columns][K rows]; the tile's rows go to out (rows W apart,
// `cols` pixels of each).
template <typename T, int K, int RB, int NV, int E, int PP>
void rows_data_tile2(const Conv2dShape& s, const T* dyp, std::int64_t WP, std::int64_t plane,
                     const T* packed, std::int64_t ih0, std::int64_t j0, std::int64_t cols,
                     T* out) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, M = (K - 1) / 2, NI = M + RB / 2 + 1;
  V acc[2][RB][NV];
  MINIDL_UNROLL(2)
  for (int q = 0; q < 2; ++q) {
    MINIDL_UNROLL(12)
    for (int r = 0; r < RB; ++r) {
      MINIDL_UNROLL(2)
      for (int v = 0; v < NV; ++v) acc[q][r][v] = V{};
    }
  }
  // dy row m - M + i, m = (ih0 + pad - E) / 2, serves tile row r =
  // kh + 2 (i - M) - E with kernel row kh.
  const std::int64_t m = (ih0 + s.pad - E) / 2;
  const T* top = dyp + (m - M + K) * WP + j0 + K;
  for (std::int64_t o = 0; o < s.OC; ++o, top += plane) {
    MINIDL_UNROLL(7)
    for (int kw = 0; kw < K; ++kw, packed += K) {
      const int q = (kw + PP) % 2;
      const T* col = top + (q + s.pad - kw) / 2;
      V wk[K];
      column_weights<T, K>(packed, wk);
      MINIDL_UNROLL(8)
      for (int i = 0; i < NI; ++i) {
        const T* row = col + i * WP;
        const V x0 = S::load(row);
        const V x1 = NV == 2 ? S::load(row + W) : x0;
        MINIDL_UNROLL(7)
        for (int kh = 0; kh < K; ++kh) {
          const int r = kh + 2 * (i - M) - E;
          if (r < 0 || r >= RB) continue;
          // Written out per phase, so that acc is indexed by constants alone
          // and stays in registers.
          if (q == 0) {
            acc[0][r][0] += wk[kh] * x0;
            if (NV == 2) acc[0][r][NV - 1] += wk[kh] * x1;
          } else {
            acc[1][r][0] += wk[kh] * x0;
            if (NV == 2) acc[1][r][NV - 1] += wk[kh] * x1;
          }
        }
      }
    }
  }
  // Interleaved into rows of 2 NV vectors, of which `cols` pixels are the
  // input's (the others read dy past its end).
  alignas(64) T rows[RB][2 * NV * W];
  const auto lanes = std::make_index_sequence<W>{};
  MINIDL_UNROLL(12)
  for (int r = 0; r < RB; ++r) {
    MINIDL_UNROLL(2)
    for (int v = 0; v < NV; ++v) {
      S::store(rows[r] + 2 * v * W, interleave_lanes<T, false>(acc[0][r][v], acc[1][r][v], lanes));
      S::store(rows[r] + (2 * v + 1) * W,
               interleave_lanes<T, true>(acc[0][r][v], acc[1][r][v], lanes));
    }
  }
  for (int r = 0; r < RB; ++r) std::copy_n(rows[r], cols, out + r * s.W);
}

// The stride-2 tile for the parities of ih0 + pad and of pad.
template <typename T, int K, int NV>
void rows_data_tile2_for(const Conv2dShape& s, const T* dyp, std::int64_t WP, std::int64_t plane,
                         const T* packed, std::int64_t ih0, std::int64_t j0, std::int64_t cols,
                         T* out) {
  constexpr int RB = kRowsDataTileRows2<K, NV>;
  const int e = static_cast<int>((ih0 + s.pad) % 2), pp = static_cast<int>(s.pad % 2);
  if (e == 0 && pp == 0)
    rows_data_tile2<T, K, RB, NV, 0, 0>(s, dyp, WP, plane, packed, ih0, j0, cols, out);
  else if (e == 0)
    rows_data_tile2<T, K, RB, NV, 0, 1>(s, dyp, WP, plane, packed, ih0, j0, cols, out);
  else if (pp == 0)
    rows_data_tile2<T, K, RB, NV, 1, 0>(s, dyp, WP, plane, packed, ih0, j0, cols, out);
  else
    rows_data_tile2<T, K, RB, NV, 1, 1>(s, dyp, WP, plane, packed, ih0, j0, cols, out);
}

// conv2d_backward_data_rows at stride 2 for a K x K kernel, NV vectors of
// each column phase per tile.
template <typename T, int K, int NV>
void rows_data_stride2(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  constexpr int W = Simd<T>::width, RB = kRowsDataTileRows2<K, NV>;
  const std::int64_t OH = s.OH(), OW = s.OW();
  // dy with K zero rows and columns before it, and after it enough that
  // every vector a tile loads, past the last input pixel too, is inside.
  const PaddedPlanes padding{K, std::max(OH, (s.H + s.pad) / 2 + 1) + 2 * K + 2,
                             std::max(OW, (s.W + 1) / 2) + 2 * NV * W + 2 * K + 2};
  const std::int64_t WP = padding.WP, plane = padding.HP * WP;
  pack_kernel_columns<T, K>(s, w, false, workspace);
  // Work items (sample, tile of rows, group of columns, channel).
  const std::int64_t span = 2 * NV * W, groups = (s.W + span - 1) / span;
  const std::int64_t tiles = (s.H + RB - 1) / RB;
  for_each_item_on_padded_dy(
      s, dy, padding, tiles * groups * s.C, [&](std::int64_t n, std::int64_t item, const T* dyp) {
        const std::int64_t t = item / (groups * s.C), g = item / s.C % groups, c = item % s.C;
        const std::int64_t ih0 = std::min(t * RB, s.H - RB), iw0 = g * span;
        rows_data_tile2_for<T, K, NV>(s, dyp, WP, plane, workspace + c * s.OC * K * K, ih0, iw0 / 2,
                                      std::min(span, s.W - iw0),
                                      dx + ((n * s.C + c) * s.H + ih0) * s.W + iw0);
      });
}

template <typename T, int K>
void rows_data_any_stride(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  if (s.stride == 1)
    rows_data<T, K>(s, dy, w, dx, workspace);
  else if (rows_data_phase_vectors<T>(s) == 1)
    rows_data_stride2<T, K, 1>(s, dy, w, dx, workspace);
  else
    rows_data_stride2<T, K, 2>(s, dy, w, dx, workspace);
}
}  // namespace detail

// dx = dL/dx (overwritten) for shapes where conv2d_data_rows_applies.
// `workspace`: conv2d_workspace_size elements, for the packed weights.
template <typename T>
void conv2d_backward_data_rows(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  if (!conv2d_data_rows_applies<T>(s))
    fail("conv2d backward-data: the rows kernel does not take kernel ", s.KH, "x", s.KW,
         ", stride ", s.stride, ", padding ", s.pad, " on a ", s.H, "x", s.W, " input");
  if (s.KH == 3)
    detail::rows_data_any_stride<T, 3>(s, dy, w, dx, workspace);
  else if (s.KH == 5)
    detail::rows_data_any_stride<T, 5>(s, dy, w, dx, workspace);
  else
    detail::rows_data_any_stride<T, 7>(s, dy, w, dx, workspace);
}

// ---- weight gradient --------------------------------------------------------
// dw[o][c][kh][kw] sums dy[o] times the input shifted by (kh, kw) over the
// pixels, which sit in the vector lanes and are summed across them once per
// chunk of samples. A block holds RB rows of dy of MR output channels in
// registers; each vector of the input it loads, shifted by a kernel column,
// serves every dy row of the block that a kernel row links it to (up to K
// at stride 1, about K / 2 at stride 2). The accumulators of KC kernel
// columns (all three of a 3x3, else one) stay in registers over all the
// rows of a vector of pixels. At stride 2 the input is kept as its even
// and odd columns, so that a shifted vector of every other pixel is one
// load. The overlapping last vector of a row masks the lanes the previous
// vector already covered. Every lane sums over (sample, vector of the row,
// output row) in that order.

// dy of a convolution handed out one [OH, OW] plane at a time, for kernels
// that read it plane by plane: planes(n, o, buffer) returns the plane of
// sample n, channel o. A source that does not store dy whole (a max-pool's
// gradient routed through its recorded winners) makes the plane in
// `buffer`: OH * OW elements of the calling thread's own. StoredPlanes is
// dy stored whole, [N, OC, OH, OW].
template <typename T>
struct StoredPlanes {
  const T* dy;
  std::int64_t OC, P;
  const T* operator()(std::int64_t n, std::int64_t o, T*) const { return dy + (n * OC + o) * P; }
};

// The buffer a kernel hands to a dy plane source: `count` planes of P.
template <typename T>
T* dy_plane_buffer(std::int64_t count, std::int64_t P) {
  return thread_scratch<T, 5>(count * P);
}

namespace detail {
// Output channels, kernel columns and dy rows per weight-gradient block:
// MR x RB vectors of dy, MR x K x KC accumulators and the input vector
// within the vector registers (32 with AVX-512, 16 otherwise).
inline constexpr int kRowsWeightChannels = kSimdBytes == 64 ? 2 : 1;
template <int K>
inline constexpr int kRowsWeightColumns = K == 3 ? 3 : 1;
template <int K>
inline constexpr int kRowsWeightRows = K == 3   ? 4
                                       : K == 7 ? 6
                                                : 8;

// The padded input of C planes as the weight gradient reads it: rows of
// the padded width at stride 1; at stride 2 rows of the even columns then
// the odd ones, half the padded width each. Output rows narrower than a
// vector read a whole vector from each shifted column, so such rows are
// widened with zeros to be read within.
struct WeightInputRows {
  std::int64_t HP, row, phase;  // row: distance between rows; phase: to the odd columns
  std::int64_t plane() const { return HP * row; }
};
template <typename T>
WeightInputRows weight_input_rows(const Conv2dShape& s) {
  const std::int64_t HP = s.H + 2 * s.pad, WP = s.W + 2 * s.pad;
  const std::int64_t reach = Simd<T>::width + (s.KW - 1) / s.stride;  // a vector's last column
  if (s.stride == 1) return {HP, std::max(WP, reach), 0};
  const std::int64_t half = std::max((WP + 1) / 2, reach);
  return {HP, 2 * half, half};
}

// dst (C planes laid out as `r` says) = src [C, H, W] inside a border of
// zeros. At stride 2 each row is padded in `row`, 2 r.phase + 2 width
// elements of scratch, then split into its even and odd columns a vector
// of each at a time.
template <typename T>
void pad_weight_input(const T* src, std::int64_t C, std::int64_t H, std::int64_t W,
                      std::int64_t pad, const WeightInputRows& r, T* dst, T* row) {
  using S = Simd<T>;
  constexpr int VW = S::width;
  constexpr auto lanes = std::make_index_sequence<VW>{};
  std::fill_n(dst, C * r.plane(), T(0));
  if (r.phase == 0) {
    copy_into_padded(src, C, H, W, PaddedPlanes{pad, r.HP, r.row}, dst);
    return;
  }
  std::fill_n(row, 2 * r.phase + 2 * VW, T(0));
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t h = 0; h < H; ++h) {
      const T* in = src + (c * H + h) * W;
      T* out = dst + c * r.plane() + (h + pad) * r.row;
      copy_row(in, W, row + pad);  // the zeros around it stay from the fill above
      std::int64_t q = 0;
      for (; q + VW <= r.phase; q += VW) {
        const typename S::vec a = S::load(row + 2 * q), b = S::load(row + 2 * q + VW);
        S::store(out + q, even_lanes<T>(a, b, lanes));
        S::store(out + r.phase + q, odd_lanes<T>(a, b, lanes));
      }
      for (; q < r.phase; ++q) {
        out[q] = row[2 * q];
        out[r.phase + q] = row[2 * q + 1];
      }
    }
}

// a[o][kh][c] (kernel column kw0 + c) += the products of RB rows of dy (of
// MR output channels, rows `OW` apart, from dy[o]) with the input they
// reach: column[c] is the input row STRIDE x the block's first row, at the
// vector's first pixel, shifted by that kernel column.
template <int K, int STRIDE, int MR, int KC, int RB, typename T, typename Mask>
[[gnu::always_inline]] inline void rows_weight_block(const T* const (&dy)[MR], std::int64_t OW,
                                                     bool tail, Mask fresh,
                                                     const T* const (&column)[KC],
                                                     std::int64_t row_step,
                                                     typename Simd<T>::vec (&a)[MR][K][KC]) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int reach = STRIDE * (RB - 1) + K;  // input rows the block reads
  V g[MR][RB];
  MINIDL_UNROLL(2)
  for (int o = 0; o < MR; ++o) {
    MINIDL_UNROLL(8)
    for (int j = 0; j < RB; ++j) {
      g[o][j] = S::load(dy[o] + j * OW);
      if (tail) g[o][j] = fresh ? g[o][j] : V{};
    }
  }
  MINIDL_UNROLL(19)
  for (int row = 0; row < reach; ++row) {
    MINIDL_UNROLL(3)
    for (int c = 0; c < KC; ++c) {
      V xv = S::load(column[c] + row * row_step);
      S::keep_in_register(xv);
      MINIDL_UNROLL(8)
      for (int j = 0; j < RB; ++j) {
        const int kh = row - STRIDE * j;
        if (kh < 0 || kh >= K) continue;
        MINIDL_UNROLL(2)
        for (int o = 0; o < MR; ++o) a[o][kh][c] += g[o][j] * xv;
      }
    }
  }
}

// rows_weight_block over `rows` rows of dy: blocks of RB rows, then of
// fewer for the rest.
template <int K, int STRIDE, int MR, int KC, int RB, typename T, typename Mask>
[[gnu::always_inline]] inline void rows_weight_blocks(const T* const (&dy)[MR], std::int64_t OW,
                                                      std::int64_t rows, bool tail, Mask fresh,
                                                      const T* const (&column)[KC],
                                                      std::int64_t row_step,
                                                      typename Simd<T>::vec (&a)[MR][K][KC]) {
  const T* d[MR];
  const T* col[KC];
  for (int o = 0; o < MR; ++o) d[o] = dy[o];
  for (int c = 0; c < KC; ++c) col[c] = column[c];
  for (; rows >= RB; rows -= RB) {
    rows_weight_block<K, STRIDE, MR, KC, RB>(d, OW, tail, fresh, col, row_step, a);
    for (int o = 0; o < MR; ++o) d[o] += RB * OW;
    for (int c = 0; c < KC; ++c) col[c] += STRIDE * RB * row_step;
  }
  if constexpr (RB > 1)
    if (rows > 0)
      rows_weight_blocks<K, STRIDE, MR, KC, RB / 2>(d, OW, rows, tail, fresh, col, row_step, a);
}

// acc[o][kh][kw] += the products of `rows` rows of dy with the input, one
// vector of pixels: `in` is the input's first row at the vector's first
// pixel. The accumulators of KC kernel columns stay in registers over all
// the rows, KC columns at a time.
template <int K, int STRIDE, int MR, typename T, typename Mask>
void rows_weight_vector(const T* const (&dy)[MR], std::int64_t OW, std::int64_t rows, bool tail,
                        Mask fresh, const T* in, const WeightInputRows& r,
                        typename Simd<T>::vec* acc) {
  using V = typename Simd<T>::vec;
  constexpr int KC = kRowsWeightColumns<K>;
  for (int kw0 = 0; kw0 < K; kw0 += KC) {
    const T* column[KC];
    for (int c = 0; c < KC; ++c) {
      const int kw = kw0 + c;
      column[c] = in + (STRIDE == 1 ? kw : (kw % 2) * r.phase + kw / 2);
    }
    V a[MR][K][KC];
    MINIDL_UNROLL(2)
    for (int o = 0; o < MR; ++o) {
      MINIDL_UNROLL(7)
      for (int kh = 0; kh < K; ++kh) {
        MINIDL_UNROLL(3)
        for (int c = 0; c < KC; ++c) a[o][kh][c] = acc[(o * K + kh) * K + kw0 + c];
      }
    }
    rows_weight_blocks<K, STRIDE, MR, KC, kRowsWeightRows<K>>(dy, OW, rows, tail, fresh, column,
                                                              r.row, a);
    MINIDL_UNROLL(2)
    for (int o = 0; o < MR; ++o) {
      MINIDL_UNROLL(7)
      for (int kh = 0; kh < K; ++kh) {
        MINIDL_UNROLL(3)
        for (int c = 0; c < KC; ++c) acc[(o * K + kh) * K + kw0 + c] = a[o][kh][c];
      }
    }
  }
}
}  // namespace detail

// Whether conv2d_backward_weights_rows handles this shape: stride 1 or 2, a
// 3x3, 5x5 or 7x7 kernel and output rows at least half a vector wide.
template <typename T>
bool conv2d_weights_rows_applies(const Conv2dShape& s) {
  return conv2d_direct_strided_applies(s) && (s.KH == 3 || s.KH == 5 || s.KH == 7) &&
         2 * s.OW() >= Simd<T>::width;
}

// Elements of the partials conv2d_backward_weights_rows takes.
template <typename T>
std::int64_t conv2d_rows_partials_size(const Conv2dShape& s) {
  return (s.N + kConvWeightChunk - 1) / kConvWeightChunk *
         round_up(s.OC, detail::kRowsWeightChannels) * (s.C * s.KH * s.KW + kBiasSlot<T>);
}

namespace detail {
// conv2d_backward_weights_rows_planes (below) for a K x K kernel.
template <int K, int STRIDE, typename T, typename Planes, typename Wait>
void weights_rows_planes(const Conv2dShape& s, const T* x, const Planes& planes, T* dw, T* db,
                         T* partials, bool carried, const Wait& wait_for_carry) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, MR = kRowsWeightChannels, taps = K * K;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW;
  const WeightInputRows rows = weight_input_rows<T>(s);
  const std::int64_t chunks = (s.N + kConvWeightChunk - 1) / kConvWeightChunk;
  // A partial is [oc][c][tap] and the bias slot after each channel's taps.
  const std::int64_t weights = s.C * taps, block = weights + kBiasSlot<T>;
  const std::int64_t OCp = round_up(s.OC, MR), part_size = OCp * block;
  // Lane l of the last vector of a row is pixel OW - W + l; it is new only if
  // at or past the end of the previous vector. A row narrower than a vector
  // is one vector from pixel 0, its dy copied into rows a vector apart.
  const bool narrow = OW < W;
  const std::int64_t last = narrow ? 0 : OW - W, covered = narrow ? 0 : (OW - 1) / W * W;
  const std::int64_t dy_row = narrow ? W : OW;
  typedef decltype(V{} < V{}) Mask;
  Mask fresh;
  for (int l = 0; l < W; ++l) fresh[l] = (narrow ? l < OW : last + l >= covered) ? -1 : 0;
  // Output channels [o_begin, o_end) of a chunk's partial.
  auto chunk_gradient = [&](std::int64_t chunk, T* part, std::int64_t o_begin, std::int64_t o_end) {
    const std::int64_t n0 = chunk * kConvWeightChunk, count = std::min(kConvWeightChunk, s.N - n0);
    T* xpad = thread_scratch<T, 0>(count * s.C * rows.plane());
    T* row = rows.phase != 0 ? thread_scratch<T, 2>(2 * rows.phase + 2 * W) : nullptr;
    T* buffer = dy_plane_buffer<T>(MR, P);
    T* widened = narrow ? thread_scratch<T, 1>(MR * OH * W) : nullptr;
    BiasSum<T>* bias = chunk_bias_sums<T>(s.OC);
    for (std::int64_t i = 0; i < count; ++i)
      pad_weight_input(x + (n0 + i) * s.C * s.H * s.W, s.C, s.H, s.W, s.pad, rows,
                       xpad + i * s.C * rows.plane(), row);
    for (std::int64_t c = 0; c < s.C; ++c)
      for (std::int64_t o0 = o_begin; o0 < o_end; o0 += MR) {
        alignas(64) V acc[MR * taps];
        std::fill_n(acc, MR * taps, V{});
        for (std::int64_t i = 0; i < count; ++i) {
          const T* x_c = xpad + (i * s.C + c) * rows.plane();
          const T* dy_o[MR];
          for (int r = 0; r < MR; ++r)  // a short last group repeats a valid plane
            dy_o[r] = planes(n0 + i, std::min<std::int64_t>(o0 + r, s.OC - 1), buffer + r * P);
          if (c == 0)
            for (int r = 0; r < MR && o0 + r < s.OC; ++r) bias[o0 + r].add_plane(dy_o[r], P);
          if (narrow)
            for (int r = 0; r < MR; ++r) {
              T* to = widened + r * OH * W;
              for (std::int64_t oh = 0; oh < OH; ++oh) {
                copy_row(dy_o[r] + oh * OW, OW, to + oh * W);
                std::fill(to + oh * W + OW, to + (oh + 1) * W, T(0));
              }
              dy_o[r] = to;
            }
          for (std::int64_t ow0 = 0; ow0 < OW; ow0 += W) {
            const bool tail = ow0 + W > OW;
            const std::int64_t start = tail ? last : ow0;
            const T* dy_v[MR];
            for (int r = 0; r < MR; ++r) dy_v[r] = dy_o[r] + start;
            rows_weight_vector<K, STRIDE, MR>(dy_v, dy_row, OH, tail, fresh, x_c + start, rows,
                                              acc);
          }
        }
        for (int r = 0; r < MR; ++r)
          for (int t = 0; t < taps; ++t) {
            T sum = 0;
            for (int l = 0; l < W; ++l) sum += acc[r * taps + t][l];
            part[(o0 + r) * block + c * taps + t] = sum;
          }
      }
    for (std::int64_t o = o_begin; o < o_end; ++o)
      store_bias_slot(bias[o], part + o * block + weights);
  };
  // Summed over the chunks one output channel at a time: [c][tap] is PyTorch's row.
  // A batch of fewer chunks than threads shares out each chunk's channels.
  sum_partials_in_order_shared(
      chunks, part_size, s.OC, block, MR, partials, chunk_gradient,
      [&](std::int64_t o, const T* sum) {
        std::copy_n(sum, weights, dw + o * s.col_rows());
        if (db) db[o] = sum[weights];
      },
      [&](std::int64_t o, T* sum) {
        if (!carried) return false;
        if (o == 0) wait_for_carry();
        std::copy_n(dw + o * s.col_rows(), weights, sum);
        load_bias_slot(db, o, sum + weights);
        return true;
      });
}

template <int K, typename T, typename Planes, typename Wait>
void weights_rows_any_stride(const Conv2dShape& s, const T* x, const Planes& planes, T* dw, T* db,
                             T* partials, bool carried, const Wait& wait_for_carry) {
  if (s.stride == 1)
    weights_rows_planes<K, 1>(s, x, planes, dw, db, partials, carried, wait_for_carry);
  else
    weights_rows_planes<K, 2>(s, x, planes, dw, db, partials, carried, wait_for_carry);
}
}  // namespace detail

// dw = dL/dw, db = dL/db (both overwritten; db may be null) for shapes where
// conv2d_weights_rows_applies, with dy from a plane source (StoredPlanes
// above): each plane is made and read once per input channel, in
// one pass that also sums it for the bias. `partials`:
// conv2d_rows_partials_size<T>(s).
template <typename T, typename Planes, typename Wait = NoWait>
void conv2d_backward_weights_rows_planes(const Conv2dShape& s, const T* x, const Planes& planes,
                                         T* dw, T* db, T* partials, bool carried = false,
                                         const Wait& wait_for_carry = Wait{}) {
  if (!conv2d_weights_rows_applies<T>(s))
    fail("conv2d backward-weights: the rows kernel does not take kernel ", s.KH, "x", s.KW,
         ", stride ", s.stride, ", padding ", s.pad, " on a ", s.H, "x", s.W, " input");
  if (s.KH == 3)
    detail::weights_rows_any_stride<3>(s, x, planes, dw, db, partials, carried, wait_for_carry);
  else if (s.KH == 5)
    detail::weights_rows_any_stride<5>(s, x, planes, dw, db, partials, carried, wait_for_carry);
  else
    detail::weights_rows_any_stride<7>(s, x, planes, dw, db, partials, carried, wait_for_carry);
}

// The same with dy stored whole, [N, OC, OH, OW].
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_rows_continue(const Conv2dShape& s, const T* x, const T* dy, T* dw,
                                           T* db, T* partials, bool carried,
                                           const Wait& wait_for_carry = Wait{}) {
  conv2d_backward_weights_rows_planes(s, x, StoredPlanes<T>{dy, s.OC, s.OH() * s.OW()}, dw, db,
                                      partials, carried, wait_for_carry);
}

// The same without a carry (one process, or the first of several).
template <typename T>
void conv2d_backward_weights_rows(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                                  T* partials) {
  conv2d_backward_weights_rows_continue(s, x, dy, dw, db, partials, false);
}

}  // namespace minidl::kernels
