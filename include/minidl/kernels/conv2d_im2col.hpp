// minidl/kernels/conv2d_im2col.hpp - convolution lowered to one matrix multiply per sample.
//
// The general path: any stride and padding. Each sample is lowered through
// im2col, col [C*KH*KW, OH*OW], so that y_n = w * col. conv2d.hpp uses the
// direct kernels of conv2d_direct.hpp instead where they apply (stride 1).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/ordered_sum.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// Elements col2im may read on each side of dcol (margins the caller
// allocates; their contents never reach dx): the stride-1 path loads whole
// vectors around each row of dcol and masks off what lies outside it.
template <typename T>
constexpr std::int64_t col2im_margin(const Conv2dShape& s) {
  return Simd<T>::width + s.KW;
}

namespace detail {

// The general adjoint of im2col, any stride: dcol's rows added into dx_n
// one output row at a time, over the in-range ow interval of im2col_row.
template <typename T>
void col2im_scatter(const Conv2dShape& s, const T* dcol, T* dx_n) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  std::fill_n(dx_n, s.C * s.H * s.W, T(0));
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh)
      for (std::int64_t kw = 0; kw < s.KW; ++kw) {
        const T* row = dcol + ((c * s.KH + kh) * s.KW + kw) * OH * OW;
        const std::int64_t first = s.pad - kw, last = s.W - 1 + s.pad - kw;
        const std::int64_t ow_lo = std::min(OW, first <= 0 ? 0 : (first + s.stride - 1) / s.stride);
        const std::int64_t ow_hi =
            std::max(ow_lo, last < 0 ? 0 : std::min(OW, last / s.stride + 1));
        for (std::int64_t oh = 0; oh < OH; ++oh) {
          const std::int64_t ih = oh * s.stride - s.pad + kh;
          if (ih < 0 || ih >= s.H) continue;
          T* out = dx_n + (c * s.H + ih) * s.W;
          const T* in = row + oh * OW;
          const std::int64_t shift = kw - s.pad;  // input column of ow is ow*stride + shift
          for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow) out[ow * s.stride + shift] += in[ow];
        }
      }
}

// The stride-1 adjoint by rows of dx_n: each vector of a row is summed in a
// register over the taps that reach it, in the (kh, kw) order of
// col2im_scatter, from +0, so it has the same bits. A tap's vector is the
// dcol row loaded at the shift that lines its ow up with iw, its lanes
// outside [0, OW) cleared by a lane mask: no scalar tail and no
// read-modify-write of dx, where OW is a few lanes (LeNet-5's conv2, OW 10,
// spent a fifth of its step in the scatter's short loops).
template <typename T>
void col2im_stride1(const Conv2dShape& s, const T* dcol, T* dx_n) {
  using V = Simd<T>;
  using vec = typename V::vec;
  using lanes = decltype(vec{} > vec{});  // the integer vector of vec's width
  using lane_int = std::remove_reference_t<decltype(std::declval<lanes&>()[0])>;
  constexpr int L = V::width;
  const std::int64_t OH = s.OH(), OW = s.OW(), plane = OH * OW;
  lanes lane{};
  for (int i = 0; i < L; ++i) lane[i] = i;
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t ih = 0; ih < s.H; ++ih) {
      // oh = ih + pad - kh must be an output row.
      const std::int64_t kh_lo = std::max<std::int64_t>(0, ih + s.pad - OH + 1);
      const std::int64_t kh_hi = std::min(s.KH, ih + s.pad + 1);
      T* out = dx_n + (c * s.H + ih) * s.W;
      for (std::int64_t iw0 = 0; iw0 < s.W; iw0 += L) {
        vec acc{};
        for (std::int64_t kh = kh_lo; kh < kh_hi; ++kh) {
          const T* row = dcol + (c * s.KH + kh) * s.KW * plane + (ih + s.pad - kh) * OW;
          for (std::int64_t kw = 0; kw < s.KW; ++kw) {
            const std::int64_t first = iw0 + s.pad - kw;  // the ow of lane 0
            const lanes ow = lane + static_cast<lane_int>(first);
            const lanes keep = (ow >= 0) & (ow < static_cast<lane_int>(OW));
            acc += keep ? V::load(row + kw * plane + first) : vec{};
          }
        }
        if (iw0 + L <= s.W)
          V::store(out + iw0, acc);
        else
          std::memcpy(out + iw0, &acc, static_cast<std::size_t>(s.W - iw0) * sizeof(T));
      }
    }
}

}  // namespace detail

// The adjoint of im2col: dx_n = sum of dcol entries over every place each
// input pixel was copied to (dx_n overwritten). dcol must have
// col2im_margin<T>(s) readable elements on each side.
template <typename T>
void col2im(const Conv2dShape& s, const T* dcol, T* dx_n) {
  if (s.stride == 1)
    detail::col2im_stride1(s, dcol, dx_n);
  else
    detail::col2im_scatter(s, dcol, dx_n);
}

// Row k = (c, kh, kw) of im2col for one sample: out[oh*OW + ow] =
// x_n[c][oh*stride - pad + kh][ow*stride - pad + kw], 0 outside. The range of
// ow that lands inside the image is the same for every oh, so each output
// row is zeros, a copy (a gather for stride > 1), zeros: no test per element.
template <typename T>
void im2col_row(const Conv2dShape& s, const T* x_n, std::int64_t c, std::int64_t kh,
                std::int64_t kw, T* out) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  const std::int64_t first = s.pad - kw;  // ow*stride must reach this for iw >= 0
  std::int64_t ow_lo = first <= 0 ? 0 : (first + s.stride - 1) / s.stride;
  const std::int64_t last = s.W - 1 + s.pad - kw;
  std::int64_t ow_hi = last < 0 ? 0 : std::min(OW, last / s.stride + 1);
  ow_lo = std::min(ow_lo, OW);
  ow_hi = std::max(ow_hi, ow_lo);
  for (std::int64_t oh = 0; oh < OH; ++oh, out += OW) {
    const std::int64_t ih = oh * s.stride - s.pad + kh;
    if (ih < 0 || ih >= s.H) {
      std::fill_n(out, OW, T(0));
      continue;
    }
    const T* in = x_n + (c * s.H + ih) * s.W;
    const std::int64_t shift = kw - s.pad;  // input column of ow is ow*stride + shift
    std::fill(out, out + ow_lo, T(0));
    if (s.stride == 1) {
      std::copy(in + ow_lo + shift, in + ow_hi + shift, out + ow_lo);
    } else {
      for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow) out[ow] = in[ow * s.stride + shift];
    }
    std::fill(out + ow_hi, out + OW, T(0));
  }
}

// im2col written straight into the GEMM's packed-B layout: col [K, P] in
// slivers of NR columns (output pixels), each K deep, zero-padded.
template <typename T>
void im2col_packed(const Conv2dShape& s, const T* x_n, T* dst) {
  constexpr std::int64_t NR = gemm_cols<T>();
  const std::int64_t K = s.col_rows(), P = s.col_cols();
  T* row = thread_scratch<T, 2>(P);
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t kh = 0; kh < s.KH; ++kh)
      for (std::int64_t kw = 0; kw < s.KW; ++kw) {
        const std::int64_t k = (c * s.KH + kh) * s.KW + kw;
        im2col_row(s, x_n, c, kh, kw, row);
        for (std::int64_t p0 = 0; p0 < P; p0 += NR) {
          T* out = dst + (p0 / NR) * K * NR + k * NR;
          const std::int64_t n = std::min(NR, P - p0);
          std::copy_n(row + p0, n, out);
          std::fill(out + n, out + NR, T(0));
        }
      }
}

// The transpose, col^T [P, K], in the packed-B layout: slivers of NR columns
// (kernel taps), each P deep. The B operand of the weight gradient. Each
// sliver's NR im2col rows are built in an L1-sized block first and then
// transposed into place, so that the stores are sequential.
template <typename T>
void im2col_packed_transposed(const Conv2dShape& s, const T* x_n, T* dst) {
  constexpr std::int64_t NR = gemm_cols<T>();
  const std::int64_t K = s.col_rows(), P = s.col_cols();
  T* block = thread_scratch<T, 2>(NR * P);
  for (std::int64_t k0 = 0; k0 < K; k0 += NR) {
    for (std::int64_t j = 0; j < NR; ++j) {
      const std::int64_t k = k0 + j;
      if (k >= K) {
        std::fill_n(block + j * P, P, T(0));
        continue;
      }
      im2col_row(s, x_n, k / (s.KH * s.KW), (k / s.KW) % s.KH, k % s.KW, block + j * P);
    }
    T* out = dst + (k0 / NR) * P * NR;
    for (std::int64_t p = 0; p < P; ++p, out += NR) {
      MINIDL_UNROLL(32)  // as -O3 does by itself
      for (std::int64_t j = 0; j < NR; ++j) out[j] = block[j * P + p];
    }
  }
}

// Elements of the workspace conv2d_forward_im2col and conv2d_backward_data_im2col
// take: the weights packed once per pass (as w for the forward pass, as w^T
// for backward-data).
template <typename T>
std::int64_t conv2d_im2col_workspace_size(const Conv2dShape& s) {
  return std::max(packed_a_size<T>(s.OC, s.col_rows()), packed_a_size<T>(s.col_rows(), s.OC));
}

// y = conv(x, w) + b (then max(y, 0) with relu), parallel over samples:
// y_n = w * im2col(x_n).
template <typename T>
void conv2d_forward_im2col(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                           T* workspace, bool relu = false) {
  const std::int64_t K = s.col_rows(), P = s.col_cols();
  pack_a_whole<T>({w, K, false}, s.OC, K, workspace);
  parallel_for(s.N, [&](std::int64_t n) {
    T* packed_col = thread_scratch<T, 0>(packed_b_size<T>(K, P));
    im2col_packed(s, x + n * s.C * s.H * s.W, packed_col);
    T* y_n = y + n * s.OC * P;
    gemm_packed<T>(s.OC, P, K, workspace, packed_col, y_n, P, false);
    add_bias_then_relu(s.OC, P, b, relu, y_n);
  });
}

// dx = conv_transpose(dy, w) (overwritten), parallel over samples:
// dx_n = col2im(w^T * dy_n).
template <typename T>
void conv2d_backward_data_im2col(const Conv2dShape& s, const T* dy, const T* w, T* dx,
                                 T* workspace) {
  const std::int64_t K = s.col_rows(), P = s.col_cols();
  pack_a_whole<T>({w, K, true}, K, s.OC, workspace);
  parallel_for(s.N, [&](std::int64_t n) {
    T* packed_dy = thread_scratch<T, 0>(packed_b_size<T>(s.OC, P));
    const std::int64_t margin = col2im_margin<T>(s);
    T* dcol = thread_scratch<T, 1>(K * P + 2 * margin) + margin;
    std::fill_n(dcol - margin, margin, T(0));
    std::fill_n(dcol + K * P, margin, T(0));
    pack_b_whole<T>({dy + n * s.OC * P, P, false}, s.OC, P, packed_dy);
    gemm_packed<T>(K, P, s.OC, workspace, packed_dy, dcol, P, false);
    col2im(s, dcol, dx + n * s.C * s.H * s.W);
  });
}

// Elements of the partials conv2d_backward_weights_im2col takes: one weight
// gradient per chunk of kConvWeightChunk samples, with the bias slots.
template <typename T>
std::int64_t conv2d_im2col_partials_size(const Conv2dShape& s) {
  return (s.N + kConvWeightChunk - 1) / kConvWeightChunk * s.OC * (s.col_rows() + kBiasSlot<T>);
}

// dw = sum_n dy_n * im2col(x_n)^T, db = sum of dy (both overwritten; db may
// be null). `partials` is scratch of conv2d_im2col_partials_size<T>(s) elements.
//
// With `carried`, dw and db hold on entry the sums over the samples of the
// processes before this one (core/batch_reducer.hpp), which this batch's
// chunks continue.
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_im2col_continue(const Conv2dShape& s, const T* x, const T* dy, T* dw,
                                             T* db, T* partials, bool carried,
                                             const Wait& wait_for_carry = Wait{}) {
  const std::int64_t K = s.col_rows(), P = s.col_cols();
  const std::int64_t chunks = (s.N + kConvWeightChunk - 1) / kConvWeightChunk;
  const std::int64_t block = K + kBiasSlot<T>;  // a channel's weights, then its bias slot
  auto chunk_gradient = [&](std::int64_t c, T* part) {
    T* packed_dy = thread_scratch<T, 0>(packed_a_size<T>(s.OC, P));
    T* packed_colt = thread_scratch<T, 1>(packed_b_size<T>(P, K));
    BiasSum<T>* bias = chunk_bias_sums<T>(s.OC);
    const std::int64_t n_end = std::min(s.N, (c + 1) * kConvWeightChunk);
    for (std::int64_t n = c * kConvWeightChunk; n < n_end; ++n) {
      const T* dy_n = dy + n * s.OC * P;
      pack_a_whole<T>({dy_n, P, false}, s.OC, P, packed_dy);
      im2col_packed_transposed(s, x + n * s.C * s.H * s.W, packed_colt);
      gemm_packed<T>(s.OC, K, P, packed_dy, packed_colt, part, block, n > c * kConvWeightChunk);
      for (std::int64_t o = 0; o < s.OC; ++o) bias[o].add_plane(dy_n + o * P, P);
    }
    for (std::int64_t o = 0; o < s.OC; ++o) store_bias_slot(bias[o], part + o * block + K);
  };
  sum_partials_in_order(
      chunks, s.OC * block, s.OC, block, partials, chunk_gradient,
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
void conv2d_backward_weights_im2col(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                                    T* partials) {
  conv2d_backward_weights_im2col_continue(s, x, dy, dw, db, partials, false);
}

}  // namespace minidl::kernels
