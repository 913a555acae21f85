// minidl/kernels/conv2d_depthwise.hpp - depthwise convolution: each input channel its own group.
//
// G == C: output channel o = c * M + m (M = OC / C, the channel multiplier)
// reads input channel c alone, through its own KH x KW kernel w[o]. No GEMM
// pays here (each output sums only KH * KW products), so the kernels work
// plane by plane on a zero-padded copy of the input plane, with vectors
// along the output row when the column stride is 1, and run in parallel
// over the N x C planes (over the C channels for the weight gradient, which
// sums over the batch). Every sum has a fixed order, so results do not
// depend on the number of threads. Forward and backward-data add their
// products in the naive loops' order and match them to the bit.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

namespace detail {

// dst [H + 2*PH, W + 2*PW] = src [H, W] inside a border of zeros (every
// element written: the scratch it lives in holds whatever it held before).
template <typename T>
void pad_plane(const T* src, std::int64_t H, std::int64_t W, std::int64_t PH, std::int64_t PW,
               T* dst) {
  const std::int64_t WP = W + 2 * PW;
  std::fill_n(dst, PH * WP, T(0));
  T* row = dst + PH * WP;
  for (std::int64_t h = 0; h < H; ++h, row += WP) {
    std::fill_n(row, PW, T(0));
    std::copy_n(src + h * W, W, row + PW);
    std::fill_n(row + PW + W, PW, T(0));
  }
  std::fill_n(row, PH * WP, T(0));
}

}  // namespace detail

// Whether the depthwise kernels take this convolution.
inline bool conv2d_depthwise_applies(const Conv2dGeometry& g) {
  return g.G == g.C;
}

// y = conv(x, w) + b (b may be null; then max(y, 0) with relu). Each output
// starts from its bias and adds the taps in (kh, kw) order, as the naive
// loop does.
template <typename T>
void conv2d_forward_depthwise(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y,
                              bool relu = false) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr std::int64_t L = S::width;
  const std::int64_t OH = g.OH(), OW = g.OW(), M = g.group_out();
  const std::int64_t HP = g.H + 2 * g.PH, WP = g.W + 2 * g.PW, taps = g.KH * g.KW;
  // Whole vectors along a row only where the row's columns are adjacent.
  const std::int64_t vector_end = g.SW == 1 ? OW / L * L : 0;
  parallel_for(g.N * g.C, [&](std::int64_t plane) {
    const std::int64_t n = plane / g.C, c = plane % g.C;
    T* xpad = thread_scratch<T, 6>(HP * WP);
    detail::pad_plane(x + plane * g.H * g.W, g.H, g.W, g.PH, g.PW, xpad);
    for (std::int64_t o = c * M; o < (c + 1) * M; ++o) {
      const T* wo = w + o * taps;
      const T bias = b ? b[o] : T(0);
      T* yo = y + (n * g.OC + o) * OH * OW;
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const T* in = xpad + oh * g.SH * WP;
        T* out = yo + oh * OW;
        std::int64_t ow = 0;
        for (; ow < vector_end; ow += L) {
          V acc = S::broadcast(bias);
          for (std::int64_t kh = 0; kh < g.KH; ++kh)
            for (std::int64_t kw = 0; kw < g.KW; ++kw)
              acc +=
                  S::broadcast(wo[kh * g.KW + kw]) * S::load(in + kh * g.DH * WP + ow + kw * g.DW);
          if (relu) acc = acc > V{} ? acc : V{};
          S::store(out + ow, acc);
        }
        for (; ow < OW; ++ow) {
          T sum = bias;
          for (std::int64_t kh = 0; kh < g.KH; ++kh)
            for (std::int64_t kw = 0; kw < g.KW; ++kw)
              sum += in[kh * g.DH * WP + ow * g.SW + kw * g.DW] * wo[kh * g.KW + kw];
          out[ow] = relu && !(sum > T(0)) ? T(0) : sum;
        }
      }
    }
  });
}

// dx = dL/dx (overwritten). Each output's gradient is scattered over the
// padded input plane it read. For one element of dx the additions come in
// the naive loop's order: by output channel, output row, then output column
// ascending, which is kernel column descending.
template <typename T>
void conv2d_backward_data_depthwise(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  using S = Simd<T>;
  constexpr std::int64_t L = S::width;
  const std::int64_t OH = g.OH(), OW = g.OW(), M = g.group_out();
  const std::int64_t HP = g.H + 2 * g.PH, WP = g.W + 2 * g.PW, taps = g.KH * g.KW;
  const std::int64_t vector_end = g.SW == 1 ? OW / L * L : 0;
  parallel_for(g.N * g.C, [&](std::int64_t plane) {
    const std::int64_t n = plane / g.C, c = plane % g.C;
    T* dxpad = thread_scratch<T, 6>(HP * WP);
    std::fill_n(dxpad, HP * WP, T(0));
    for (std::int64_t o = c * M; o < (c + 1) * M; ++o) {
      const T* wo = w + o * taps;
      const T* dyo = dy + (n * g.OC + o) * OH * OW;
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const T* d = dyo + oh * OW;
        for (std::int64_t kh = 0; kh < g.KH; ++kh) {
          T* row = dxpad + (oh * g.SH + kh * g.DH) * WP;
          for (std::int64_t kw = g.KW - 1; kw >= 0; --kw) {
            const T wk = wo[kh * g.KW + kw];
            T* to = row + kw * g.DW;
            std::int64_t ow = 0;
            for (; ow < vector_end; ow += L)
              S::store(to + ow, S::load(to + ow) + S::broadcast(wk) * S::load(d + ow));
            for (; ow < OW; ++ow) to[ow * g.SW] += d[ow] * wk;
          }
        }
      }
    }
    T* out = dx + plane * g.H * g.W;
    for (std::int64_t h = 0; h < g.H; ++h)
      std::copy_n(dxpad + (h + g.PH) * WP + g.PW, g.W, out + h * g.W);
  });
}

// dw = dL/dw, db = dL/db (overwritten; db may be null), in parallel over
// input channels: each thread sums its channels' kernels over the whole
// batch, samples in order, so no partial results need combining. Each tap
// keeps a vector of running sums (and a scalar for the end of the rows),
// added across lanes once at the end.
template <typename T>
void conv2d_backward_weights_depthwise(const Conv2dGeometry& g, const T* x, const T* dy, T* dw,
                                       T* db) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr std::int64_t L = S::width;
  const std::int64_t OH = g.OH(), OW = g.OW(), M = g.group_out(), P = OH * OW;
  const std::int64_t HP = g.H + 2 * g.PH, WP = g.W + 2 * g.PW, taps = g.KH * g.KW;
  const std::int64_t vector_end = g.SW == 1 ? OW / L * L : 0;
  parallel_for(g.C, [&](std::int64_t c) {
    T* xpad = thread_scratch<T, 6>(HP * WP);
    // Per output channel of c: taps vector sums, then taps scalar sums.
    constexpr std::int64_t per_vec = static_cast<std::int64_t>(sizeof(V) / sizeof(T));
    T* sums = thread_scratch<T, 7>(M * taps * (per_vec + 1));
    V* vsum = reinterpret_cast<V*>(sums);
    T* tail = sums + M * taps * per_vec;
    std::fill_n(vsum, M * taps, V{});
    std::fill_n(tail, M * taps, T(0));
    BiasSum<T>* bias = chunk_bias_sums<T>(M);
    for (std::int64_t n = 0; n < g.N; ++n) {
      detail::pad_plane(x + (n * g.C + c) * g.H * g.W, g.H, g.W, g.PH, g.PW, xpad);
      for (std::int64_t m = 0; m < M; ++m) {
        const std::int64_t o = c * M + m;
        const T* dyo = dy + (n * g.OC + o) * P;
        if (db) bias[m].add_plane(dyo, P);
        for (std::int64_t kh = 0; kh < g.KH; ++kh)
          for (std::int64_t kw = 0; kw < g.KW; ++kw) {
            const std::int64_t t = m * taps + kh * g.KW + kw;
            V acc = vsum[t];
            T rest = tail[t];
            for (std::int64_t oh = 0; oh < OH; ++oh) {
              const T* in = xpad + (oh * g.SH + kh * g.DH) * WP + kw * g.DW;
              const T* d = dyo + oh * OW;
              std::int64_t ow = 0;
              for (; ow < vector_end; ow += L) acc += S::load(d + ow) * S::load(in + ow);
              for (; ow < OW; ++ow) rest += d[ow] * in[ow * g.SW];
            }
            vsum[t] = acc;
            tail[t] = rest;
          }
      }
    }
    for (std::int64_t m = 0; m < M; ++m) {
      const std::int64_t o = c * M + m;
      for (std::int64_t t = 0; t < taps; ++t) {
        T total = 0;
        for (std::int64_t l = 0; l < L; ++l) total += vsum[m * taps + t][l];
        dw[o * taps + t] = total + tail[m * taps + t];
      }
      if (db) db[o] = bias[m].total();
    }
  });
}

}  // namespace minidl::kernels
