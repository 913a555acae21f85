// minidl/kernels/avgpool2d.hpp - average pooling forward and backward, and their naive twins.
//
// Sizes (kernels/pool2d_window.hpp): x [P,H,W], y [P,OH,OW], windows of
// KH x KW, no dilation. Each average is PyTorch's: the window's elements
// inside the input summed from 0 in row-major order, divided by the number
// of taps inside the padded input (count_include_pad) or inside the input.
// The backward pass adds dy / divisor to every element of each window,
// windows in row-major order, as PyTorch's does.
//
// The fast kernels sum in the same order as the naive ones (tap by tap,
// each over the whole output row, so that the adds vectorise), so both give
// the same bits; each plane is one thread's, whatever the number of threads.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/pool2d_window.hpp"

namespace minidl::kernels {

// The divisor of window (oh, ow).
inline std::int64_t avgpool2d_divisor(const Pool2dShape& s, bool count_include_pad, std::int64_t oh,
                                      std::int64_t ow) {
  return count_include_pad ? s.h.inside_padded(oh) * s.w.inside_padded(ow)
                           : s.h.inside(oh) * s.w.inside(ow);
}

template <typename T>
void avgpool2d_forward_naive(const Pool2dShape& s, bool count_include_pad, const T* x, T* y) {
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t oh = 0; oh < s.OH(); ++oh)
      for (std::int64_t ow = 0; ow < s.OW(); ++ow) {
        T sum = 0;
        for (std::int64_t i = s.h.first_tap(oh); i < s.h.end_tap(oh); ++i)
          for (std::int64_t j = s.w.first_tap(ow); j < s.w.end_tap(ow); ++j)
            sum += x[(p * s.H() + s.h.at(oh, i)) * s.W() + s.w.at(ow, j)];
        y[(p * s.OH() + oh) * s.OW() + ow] =
            sum / static_cast<T>(avgpool2d_divisor(s, count_include_pad, oh, ow));
      }
}

// dx (overwritten) = 0, then dy / divisor added to each window's elements.
template <typename T>
void avgpool2d_backward_naive(const Pool2dShape& s, bool count_include_pad, const T* dy, T* dx) {
  std::fill_n(dx, s.planes * s.H() * s.W(), T(0));
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t oh = 0; oh < s.OH(); ++oh)
      for (std::int64_t ow = 0; ow < s.OW(); ++ow) {
        const T g = dy[(p * s.OH() + oh) * s.OW() + ow] /
                    static_cast<T>(avgpool2d_divisor(s, count_include_pad, oh, ow));
        for (std::int64_t i = s.h.first_tap(oh); i < s.h.end_tap(oh); ++i)
          for (std::int64_t j = s.w.first_tap(ow); j < s.w.end_tap(ow); ++j)
            dx[(p * s.H() + s.h.at(oh, i)) * s.W() + s.w.at(ow, j)] += g;
      }
}

// out[0, n) += in[0, n*step) taken every `step` elements. Unit steps get a
// loop of their own, which the compiler vectorises without gathers.
template <typename T>
void add_strided(std::int64_t n, const T* in, std::int64_t step, T* out) {
  if (step == 1) {
    MINIDL_VECTORIZE  // out (the output row) and in (the input plane) never overlap
    for (std::int64_t i = 0; i < n; ++i) out[i] += in[i];
  } else {
    MINIDL_VECTORIZE
    for (std::int64_t i = 0; i < n; ++i) out[i] += in[i * step];
  }
}

// out[0, n*step) taken every `step` elements += g[0, n): add_strided's transpose.
template <typename T>
void scatter_add_strided(std::int64_t n, const T* g, std::int64_t step, T* out) {
  if (step == 1) {
    MINIDL_VECTORIZE
    for (std::int64_t i = 0; i < n; ++i) out[i] += g[i];
  } else {
    MINIDL_VECTORIZE
    for (std::int64_t i = 0; i < n; ++i) out[i * step] += g[i];
  }
}

// sums[0, OW) = the sums of the windows of output row oh of plane xp, each
// over its taps inside the input in row-major order from 0: one tap at a
// time over all the windows that reach the input with it.
template <typename T>
void pool_window_sums_row(const Pool2dShape& s, const Pool2dSpans& spans, const T* xp,
                          std::int64_t oh, T* sums) {
  const PoolAxis& w = s.w;
  std::fill_n(sums, w.out, T(0));
  for (std::int64_t i = spans.h.first_tap(oh); i < spans.h.end_tap(oh); ++i) {
    const T* row = xp + s.h.at(oh, i) * w.in;
    for (std::int64_t j = 0; j < w.k; ++j) {
      const std::int64_t o0 = spans.w.first_out(j), o1 = spans.w.end_out(j);
      if (o0 < o1) add_strided(o1 - o0, row + w.at(o0, j), w.s, sums + o0);
    }
  }
}

// Adds g[ow] (the gradient of window (oh, ow)) to the elements of each
// window of output row oh, in plane dxp. Each element gets its windows'
// shares in row-major order of the windows, as the naive loop adds them:
// for one row of windows, a later tap j of a window reaches the element
// from an earlier window, so taps go from last to first.
template <typename T>
void pool_scatter_row(const Pool2dShape& s, const Pool2dSpans& spans, const T* g, std::int64_t oh,
                      T* dxp) {
  const PoolAxis& w = s.w;
  for (std::int64_t i = spans.h.first_tap(oh); i < spans.h.end_tap(oh); ++i) {
    T* row = dxp + s.h.at(oh, i) * w.in;
    for (std::int64_t j = w.k - 1; j >= 0; --j) {
      const std::int64_t o0 = spans.w.first_out(j), o1 = spans.w.end_out(j);
      if (o0 < o1) scatter_add_strided(o1 - o0, g + o0, w.s, row + w.at(o0, j));
    }
  }
}

// The divisors of the windows of output row oh, as avgpool2d_divisor gives
// them (products of small integers: exact in T).
template <typename T>
void avgpool2d_divisor_row(const Pool2dShape& s, const Pool2dSpans& spans, bool count_include_pad,
                           std::int64_t oh, T* div) {
  const auto count = [&](const PoolAxis& a, const AxisSpans& sp, std::int64_t o) {
    return count_include_pad ? a.inside_padded(o) : sp.end_tap(o) - sp.first_tap(o);
  };
  const std::int64_t dh = count(s.h, spans.h, oh);
  for (std::int64_t ow = 0; ow < s.OW(); ++ow)
    div[ow] = static_cast<T>(dh * count(s.w, spans.w, ow));
}

// y = the window averages, parallel over planes: the naive twin's bits.
template <typename T>
void avgpool2d_forward(const Pool2dShape& s, bool count_include_pad, const T* x, T* y) {
  if (s.h.d != 1 || s.w.d != 1) fail("avgpool2d_forward: average pooling has no dilation");
  const Pool2dSpans spans = pool_spans(s);
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const Pool2dShape sh = s;  // a local copy: stores through y cannot change it
    T* div = thread_scratch<T, 0>(sh.OW());
    for (std::int64_t oh = 0; oh < sh.OH(); ++oh) {
      T* out = y + (p * sh.OH() + oh) * sh.OW();
      pool_window_sums_row(sh, spans, x + p * sh.H() * sh.W(), oh, out);
      avgpool2d_divisor_row(sh, spans, count_include_pad, oh, div);
      MINIDL_VECTORIZE
      for (std::int64_t ow = 0; ow < sh.OW(); ++ow) out[ow] /= div[ow];
    }
  });
}

// dx (overwritten, must not overlap dy) from dy, parallel over planes: the
// naive twin's bits.
template <typename T>
void avgpool2d_backward(const Pool2dShape& s, bool count_include_pad, const T* dy, T* dx) {
  if (s.h.d != 1 || s.w.d != 1) fail("avgpool2d_backward: average pooling has no dilation");
  const Pool2dSpans spans = pool_spans(s);
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const Pool2dShape sh = s;
    T* dxp = dx + p * sh.H() * sh.W();
    std::fill_n(dxp, sh.H() * sh.W(), T(0));
    T* g = thread_scratch<T, 0>(2 * sh.OW());  // one row of dy / divisor, and the divisors
    T* div = g + sh.OW();
    for (std::int64_t oh = 0; oh < sh.OH(); ++oh) {
      const T* d = dy + (p * sh.OH() + oh) * sh.OW();
      avgpool2d_divisor_row(sh, spans, count_include_pad, oh, div);
      MINIDL_VECTORIZE
      for (std::int64_t ow = 0; ow < sh.OW(); ++ow) g[ow] = d[ow] / div[ow];
      pool_scatter_row(sh, spans, g, oh, dxp);
    }
  });
}

}  // namespace minidl::kernels
