// minidl/kernels/conv2d_general.hpp - any convolution, group by group through im2col and the GEMM.
//
// The fast path for what the classic kernels do not take (conv2d.hpp picks):
// groups, dilation, a KH x KW kernel, stride and padding per axis. Each
// sample's group g is lowered through im2col, col_g [C/G*KH*KW, OH*OW],
// and multiplied by its block of weights, y_ng = w_g * col_g, as
// conv2d_im2col.hpp does for one group. Samples run in parallel; the weight
// gradient is summed over fixed chunks of samples added up in chunk order,
// so results do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/ordered_sum.hpp"

namespace minidl::kernels {

namespace detail {

// The output columns [lo, hi) whose tap kw lands inside the image's W
// columns: the same for every output row, so rows need no test per element.
struct ColumnRange {
  std::int64_t lo, hi;
};
inline ColumnRange inside_columns(const Conv2dGeometry& g, std::int64_t kw) {
  const std::int64_t OW = g.OW();
  const std::int64_t first = g.PW - kw * g.DW;  // ow*SW must reach this for iw >= 0
  const std::int64_t last = g.W - 1 + g.PW - kw * g.DW;
  const std::int64_t lo = std::min(OW, first <= 0 ? 0 : (first + g.SW - 1) / g.SW);
  const std::int64_t hi = std::max(lo, last < 0 ? 0 : std::min(OW, last / g.SW + 1));
  return {lo, hi};
}

// Row (c, kh, kw) of one group's im2col: out[oh*OW + ow] = the input pixel
// tap (kh, kw) of output (oh, ow) reads in channel c of x_g, 0 in the padding.
template <typename T>
void general_im2col_row(const Conv2dGeometry& g, const T* x_g, std::int64_t c, std::int64_t kh,
                        std::int64_t kw, T* out) {
  const std::int64_t OH = g.OH(), OW = g.OW();
  const ColumnRange r = inside_columns(g, kw);
  const std::int64_t shift = kw * g.DW - g.PW;  // input column of ow is ow*SW + shift
  for (std::int64_t oh = 0; oh < OH; ++oh, out += OW) {
    const std::int64_t ih = conv_input_row(g, oh, kh);
    if (ih < 0 || ih >= g.H) {
      std::fill_n(out, OW, T(0));
      continue;
    }
    const T* in = x_g + (c * g.H + ih) * g.W;
    std::fill(out, out + r.lo, T(0));
    if (g.SW == 1)
      std::copy(in + r.lo + shift, in + r.hi + shift, out + r.lo);
    else
      for (std::int64_t ow = r.lo; ow < r.hi; ++ow) out[ow] = in[ow * g.SW + shift];
    std::fill(out + r.hi, out + OW, T(0));
  }
}

// The adjoint, added to a group's channels: dx_g += every dcol entry at the
// input pixel it was copied from.
template <typename T>
void general_col2im_add(const Conv2dGeometry& g, const T* dcol, T* dx_g) {
  const std::int64_t OH = g.OH(), OW = g.OW();
  for (std::int64_t c = 0; c < g.group_in(); ++c)
    for (std::int64_t kh = 0; kh < g.KH; ++kh)
      for (std::int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = dcol + ((c * g.KH + kh) * g.KW + kw) * OH * OW;
        const ColumnRange r = inside_columns(g, kw);
        const std::int64_t shift = kw * g.DW - g.PW;
        for (std::int64_t oh = 0; oh < OH; ++oh) {
          const std::int64_t ih = conv_input_row(g, oh, kh);
          if (ih < 0 || ih >= g.H) continue;
          T* out = dx_g + (c * g.H + ih) * g.W;
          const T* in = row + oh * OW;
          for (std::int64_t ow = r.lo; ow < r.hi; ++ow) out[ow * g.SW + shift] += in[ow];
        }
      }
}

// One group's im2col straight into the GEMM's packed-B layout: slivers of
// NR output pixels, each K deep, zero-padded.
template <typename T>
void general_im2col_packed(const Conv2dGeometry& g, const T* x_g, T* dst) {
  constexpr std::int64_t NR = gemm_cols<T>();
  const std::int64_t K = g.group_col_rows(), P = g.OH() * g.OW();
  T* row = thread_scratch<T, 2>(P);
  for (std::int64_t k = 0; k < K; ++k) {
    general_im2col_row(g, x_g, k / (g.KH * g.KW), (k / g.KW) % g.KH, k % g.KW, row);
    for (std::int64_t p0 = 0; p0 < P; p0 += NR) {
      T* out = dst + (p0 / NR) * K * NR + k * NR;
      const std::int64_t n = std::min(NR, P - p0);
      std::copy_n(row + p0, n, out);
      std::fill(out + n, out + NR, T(0));
    }
  }
}

// Its transpose, col_g^T [P, K], packed as B: slivers of NR taps, each P
// deep; NR rows are built in a block first, then transposed into place.
template <typename T>
void general_im2col_packed_transposed(const Conv2dGeometry& g, const T* x_g, T* dst) {
  constexpr std::int64_t NR = gemm_cols<T>();
  const std::int64_t K = g.group_col_rows(), P = g.OH() * g.OW();
  T* block = thread_scratch<T, 2>(NR * P);
  for (std::int64_t k0 = 0; k0 < K; k0 += NR) {
    for (std::int64_t j = 0; j < NR; ++j) {
      const std::int64_t k = k0 + j;
      if (k >= K)
        std::fill_n(block + j * P, P, T(0));
      else
        general_im2col_row(g, x_g, k / (g.KH * g.KW), (k / g.KW) % g.KH, k % g.KW, block + j * P);
    }
    T* out = dst + (k0 / NR) * P * NR;
    for (std::int64_t p = 0; p < P; ++p, out += NR) {
      MINIDL_UNROLL(32)  // as -O3 does by itself
      for (std::int64_t j = 0; j < NR; ++j) out[j] = block[j * P + p];
    }
  }
}

// Elements of one group's weights packed as A (forward: w_g [OCG, K];
// backward-data: w_g^T [K, OCG]).
template <typename T>
std::int64_t general_packed_group_size(const Conv2dGeometry& g) {
  const std::int64_t K = g.group_col_rows(), OCG = g.group_out();
  return std::max(packed_a_size<T>(OCG, K), packed_a_size<T>(K, OCG));
}

}  // namespace detail

// Elements of the workspace the general forward and backward-data passes
// take: every group's weights packed once per pass.
template <typename T>
std::int64_t conv2d_general_workspace_size(const Conv2dGeometry& g) {
  return g.G * detail::general_packed_group_size<T>(g);
}

// Elements of the partials the general weight gradient takes: one gradient
// (with bias slots) per chunk of kConvWeightChunk samples.
template <typename T>
std::int64_t conv2d_general_partials_size(const Conv2dGeometry& g) {
  return (g.N + kConvWeightChunk - 1) / kConvWeightChunk * g.OC *
         (g.group_col_rows() + kBiasSlot<T>);
}

// y = conv(x, w) + b (b may be null; then max(y, 0) with relu), in parallel
// over samples: y_ng = w_g * im2col(x_ng) for each group g.
template <typename T>
void conv2d_forward_general(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y,
                            T* workspace, bool relu = false) {
  const std::int64_t K = g.group_col_rows(), P = g.OH() * g.OW(), OCG = g.group_out();
  const std::int64_t packed = detail::general_packed_group_size<T>(g);
  for (std::int64_t gi = 0; gi < g.G; ++gi)
    pack_a_whole<T>({w + gi * OCG * K, K, false}, OCG, K, workspace + gi * packed);
  parallel_for(g.N, [&](std::int64_t n) {
    T* packed_col = thread_scratch<T, 0>(packed_b_size<T>(K, P));
    for (std::int64_t gi = 0; gi < g.G; ++gi) {
      detail::general_im2col_packed(g, x + (n * g.C + gi * g.group_in()) * g.H * g.W, packed_col);
      gemm_packed<T>(OCG, P, K, workspace + gi * packed, packed_col, y + (n * g.OC + gi * OCG) * P,
                     P, false);
    }
    add_bias_then_relu(g.OC, P, b, relu, y + n * g.OC * P);
  });
}

// dx = dL/dx (overwritten), in parallel over samples: dx_ng = col2im(w_g^T * dy_ng).
template <typename T>
void conv2d_backward_data_general(const Conv2dGeometry& g, const T* dy, const T* w, T* dx,
                                  T* workspace) {
  const std::int64_t K = g.group_col_rows(), P = g.OH() * g.OW(), OCG = g.group_out();
  const std::int64_t packed = detail::general_packed_group_size<T>(g);
  for (std::int64_t gi = 0; gi < g.G; ++gi)
    pack_a_whole<T>({w + gi * OCG * K, K, true}, K, OCG, workspace + gi * packed);
  parallel_for(g.N, [&](std::int64_t n) {
    T* packed_dy = thread_scratch<T, 0>(packed_b_size<T>(OCG, P));
    T* dcol = thread_scratch<T, 1>(K * P);
    T* dx_n = dx + n * g.C * g.H * g.W;
    std::fill_n(dx_n, g.C * g.H * g.W, T(0));
    for (std::int64_t gi = 0; gi < g.G; ++gi) {
      pack_b_whole<T>({dy + (n * g.OC + gi * OCG) * P, P, false}, OCG, P, packed_dy);
      gemm_packed<T>(K, P, OCG, workspace + gi * packed, packed_dy, dcol, P, false);
      detail::general_col2im_add(g, dcol, dx_n + gi * g.group_in() * g.H * g.W);
    }
  });
}

// dw = sum_n dy_ng * im2col(x_ng)^T per group, db = sum of dy (both
// overwritten; db may be null). `partials` holds
// conv2d_general_partials_size<T>(g) elements.
//
// With `carried`, dw and db hold on entry the sums over the samples of the
// processes before this one (core/batch_reducer.hpp), which this batch's
// chunks continue.
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_general_continue(const Conv2dGeometry& g, const T* x, const T* dy,
                                              T* dw, T* db, T* partials, bool carried,
                                              const Wait& wait_for_carry = Wait{}) {
  const std::int64_t K = g.group_col_rows(), P = g.OH() * g.OW(), OCG = g.group_out();
  const std::int64_t chunks = (g.N + kConvWeightChunk - 1) / kConvWeightChunk;
  const std::int64_t block = K + kBiasSlot<T>;  // a channel's weights, then its bias slot
  auto chunk_gradient = [&](std::int64_t c, T* part) {
    T* packed_dy = thread_scratch<T, 0>(packed_a_size<T>(OCG, P));
    T* packed_colt = thread_scratch<T, 1>(packed_b_size<T>(P, K));
    BiasSum<T>* bias = chunk_bias_sums<T>(g.OC);
    const std::int64_t n0 = c * kConvWeightChunk, n_end = std::min(g.N, n0 + kConvWeightChunk);
    for (std::int64_t n = n0; n < n_end; ++n)
      for (std::int64_t gi = 0; gi < g.G; ++gi) {
        const T* dy_ng = dy + (n * g.OC + gi * OCG) * P;
        pack_a_whole<T>({dy_ng, P, false}, OCG, P, packed_dy);
        detail::general_im2col_packed_transposed(g, x + (n * g.C + gi * g.group_in()) * g.H * g.W,
                                                 packed_colt);
        gemm_packed<T>(OCG, K, P, packed_dy, packed_colt, part + gi * OCG * block, block, n > n0);
        for (std::int64_t o = 0; o < OCG; ++o) bias[gi * OCG + o].add_plane(dy_ng + o * P, P);
      }
    for (std::int64_t o = 0; o < g.OC; ++o) store_bias_slot(bias[o], part + o * block + K);
  };
  sum_partials_in_order(
      chunks, g.OC * block, g.OC, block, partials, chunk_gradient,
      [&](std::int64_t o, const T* sum) {
        std::copy_n(sum, K, dw + o * K);
        if (db) db[o] = sum[K];
      },
      [&](std::int64_t o, T* sum) {
        if (!carried) return false;
        if (o == 0) wait_for_carry();
        std::copy_n(dw + o * K, K, sum);
        load_bias_slot(db, o, sum + K);
        return true;
      });
}

// The same without a carry (one process, or the first of several).
template <typename T>
void conv2d_backward_weights_general(const Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* db,
                                     T* partials) {
  conv2d_backward_weights_general_continue(g, x, dy, dw, db, partials, false);
}

}  // namespace minidl::kernels
