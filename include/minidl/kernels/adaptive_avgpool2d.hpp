// minidl/kernels/adaptive_avgpool2d.hpp - adaptive average pooling, and its naive twins.
//
// Sizes: x [P,H,W], y [P,OH,OW]. Output row i averages input rows
// [floor(i H / OH), ceil((i + 1) H / OH)), columns likewise: PyTorch's bins,
// which overlap when OH does not divide H (7 -> 3: rows 0-2, 2-4, 4-6).
// As PyTorch computes it: each bin summed from 0 in row-major order, then
// divided by its height and then by its width; the backward pass adds
// dy / height / width to the bin's elements, bins in row-major order.
//
// The fast kernels are parallel over planes. Bins that tile the input
// (OH divides H, OW divides W) are average-pooling windows, summed with the
// vectorised rows of kernels/avgpool2d.hpp in the same order: the naive
// twin's bits. Output 1x1 (global average pooling) sums each plane with
// vector accumulators and divides by H*W, which is what PyTorch does there
// (it takes the mean); its sum runs in another order than the naive one.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/avgpool2d.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

struct AdaptivePool2dShape {
  std::int64_t planes, H, W, OH, OW;
};

// Bin i of n over `in` elements: [adaptive_begin, adaptive_end).
inline std::int64_t adaptive_begin(std::int64_t i, std::int64_t in, std::int64_t n) {
  return i * in / n;
}
inline std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t n) {
  return ((i + 1) * in + n - 1) / n;
}

template <typename T>
void adaptive_avgpool2d_forward_naive(const AdaptivePool2dShape& s, const T* x, T* y) {
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      const std::int64_t h0 = adaptive_begin(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
      for (std::int64_t ow = 0; ow < s.OW; ++ow) {
        const std::int64_t w0 = adaptive_begin(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
        T sum = 0;
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) sum += x[(p * s.H + h) * s.W + w];
        y[(p * s.OH + oh) * s.OW + ow] = sum / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
      }
    }
}

// dx (overwritten) = 0, then dy / height / width added to each bin.
template <typename T>
void adaptive_avgpool2d_backward_naive(const AdaptivePool2dShape& s, const T* dy, T* dx) {
  std::fill_n(dx, s.planes * s.H * s.W, T(0));
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t oh = 0; oh < s.OH; ++oh) {
      const std::int64_t h0 = adaptive_begin(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
      for (std::int64_t ow = 0; ow < s.OW; ++ow) {
        const std::int64_t w0 = adaptive_begin(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
        const T g =
            dy[(p * s.OH + oh) * s.OW + ow] / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) dx[(p * s.H + h) * s.W + w] += g;
      }
    }
}

// The sum of n elements in a fixed order whatever the thread: four vector
// accumulators over blocks of 4 vectors, added pairwise, then across lanes,
// then the tail one by one.
template <typename T>
T sum_elements(std::int64_t n, const T* x) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr std::int64_t w = S::width;
  V a0{}, a1{}, a2{}, a3{};
  std::int64_t i = 0;
  for (; i + 4 * w <= n; i += 4 * w) {
    a0 += S::load(x + i);
    a1 += S::load(x + i + w);
    a2 += S::load(x + i + 2 * w);
    a3 += S::load(x + i + 3 * w);
  }
  for (; i + w <= n; i += w) a0 += S::load(x + i);
  const V a = (a0 + a1) + (a2 + a3);
  T sum = 0;
  MINIDL_UNROLL(16)
  for (std::int64_t l = 0; l < w; ++l) sum += a[l];
  for (; i < n; ++i) sum += x[i];
  return sum;
}

// The windows that bins which tile the input are.
inline Pool2dShape adaptive_as_windows(const AdaptivePool2dShape& s) {
  const std::int64_t kh = s.H / s.OH, kw = s.W / s.OW;
  return {s.planes, pool_axis(s.H, kh, kh, 0), pool_axis(s.W, kw, kw, 0)};
}

inline bool adaptive_bins_tile(const AdaptivePool2dShape& s) {
  return s.H % s.OH == 0 && s.W % s.OW == 0;
}

template <typename T>
void adaptive_avgpool2d_forward(const AdaptivePool2dShape& s, const T* x, T* y) {
  const std::int64_t area = s.H * s.W;
  if (s.OH == 1 && s.OW == 1) {  // global average pooling
    parallel_for(s.planes, [=](std::int64_t p) {
      y[p] = sum_elements(area, x + p * area) / static_cast<T>(area);
    });
    return;
  }
  if (adaptive_bins_tile(s)) {
    const Pool2dShape windows = adaptive_as_windows(s);
    const Pool2dSpans spans = pool_spans(windows);
    const T kh = static_cast<T>(windows.h.k), kw = static_cast<T>(windows.w.k);
    parallel_for(s.planes, [=, &windows](std::int64_t p) {
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        T* out = y + (p * s.OH + oh) * s.OW;
        pool_window_sums_row(windows, spans, x + p * area, oh, out);
        MINIDL_VECTORIZE
        for (std::int64_t ow = 0; ow < s.OW; ++ow) out[ow] = out[ow] / kh / kw;
      }
    });
    return;
  }
  parallel_for(s.planes, [=](std::int64_t p) {  // overlapping bins: the plain loops, per plane
    adaptive_avgpool2d_forward_naive(AdaptivePool2dShape{1, s.H, s.W, s.OH, s.OW}, x + p * area,
                                     y + p * s.OH * s.OW);
  });
}

// dx (overwritten, must not overlap dy) from dy.
template <typename T>
void adaptive_avgpool2d_backward(const AdaptivePool2dShape& s, const T* dy, T* dx) {
  const std::int64_t area = s.H * s.W;
  if (s.OH == 1 && s.OW == 1) {  // every element gets dy / (H*W), as PyTorch's mean
    parallel_for(s.planes, [=](std::int64_t p) {
      const T g = dy[p] / static_cast<T>(area);
      T* dxp = dx + p * area;
      MINIDL_VECTORIZE  // std::fill_n is a scalar loop at -O2
      for (std::int64_t i = 0; i < area; ++i) dxp[i] = g;
    });
    return;
  }
  if (adaptive_bins_tile(s)) {
    const Pool2dShape windows = adaptive_as_windows(s);
    const Pool2dSpans spans = pool_spans(windows);
    const T kh = static_cast<T>(windows.h.k), kw = static_cast<T>(windows.w.k);
    parallel_for(s.planes, [=, &windows](std::int64_t p) {
      T* dxp = dx + p * area;
      std::fill_n(dxp, area, T(0));
      T* g = thread_scratch<T, 0>(s.OW);
      for (std::int64_t oh = 0; oh < s.OH; ++oh) {
        const T* d = dy + (p * s.OH + oh) * s.OW;
        MINIDL_VECTORIZE
        for (std::int64_t ow = 0; ow < s.OW; ++ow) g[ow] = d[ow] / kh / kw;
        pool_scatter_row(windows, spans, g, oh, dxp);
      }
    });
    return;
  }
  parallel_for(s.planes, [=](std::int64_t p) {
    adaptive_avgpool2d_backward_naive(AdaptivePool2dShape{1, s.H, s.W, s.OH, s.OW},
                                      dy + p * s.OH * s.OW, dx + p * area);
  });
}

}  // namespace minidl::kernels
