// minidl/kernels/maxpool2d.hpp - max pooling forward and backward, and their naive twins.
//
// Sizes: P = N*C independent planes of H x W, window K x K moved by `stride`,
// no padding, output OH x OW with OH = (H - K) / stride + 1 (floor, as PyTorch).
// x [P,H,W], y [P,OH,OW]. The naive forward also records argmax [P,OH,OW],
// the index (ih*W + iw) within its plane of the element that won; ties go to
// the first element in row-major order, as in PyTorch. The fast backward
// finds the winners again from x instead of storing them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace minidl::kernels {

struct MaxPool2dShape {
  std::int64_t planes, H, W, K, stride;
  std::int64_t OH() const { return (H - K) / stride + 1; }
  std::int64_t OW() const { return (W - K) / stride + 1; }
};

template <typename T>
void maxpool2d_forward_naive(const MaxPool2dShape& s, const T* x, T* y, std::int32_t* argmax) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        std::int64_t best = (oh * s.stride) * s.W + ow * s.stride;
        for (std::int64_t kh = 0; kh < s.K; ++kh)
          for (std::int64_t kw = 0; kw < s.K; ++kw) {
            const std::int64_t i = (oh * s.stride + kh) * s.W + ow * s.stride + kw;
            if (x[p * s.H * s.W + i] > x[p * s.H * s.W + best]) best = i;
          }
        y[(p * OH + oh) * OW + ow] = x[p * s.H * s.W + best];
        argmax[(p * OH + oh) * OW + ow] = static_cast<std::int32_t>(best);
      }
}

// One 2x2 window (a b / c d), decided as the naive loop decides: the first
// element, replaced only by a strictly greater one. Only selects, no
// branches, so that loops over windows vectorise.
template <typename T>
T max2x2(T a, T b, T c, T d) {
  const T m1 = b > a ? b : a;
  const T m2 = c > m1 ? c : m1;
  return d > m2 ? d : m2;
}

// v where cond holds, else +0: a bit mask, not a select, so that the
// compiler cannot turn it back into a branch in the loop's scalar remainder
// (rows of 14 windows leave 6 after a vector of 8).
template <typename T>
T keep_if(bool cond, T v) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits bits;
  std::memcpy(&bits, &v, sizeof v);
  bits &= Bits(0) - Bits(cond);
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// The gradient g routed to the winner of the window, 0 to the others.
template <typename T>
void max2x2_backward(T a, T b, T c, T d, T g, T& ga, T& gb, T& gc, T& gd) {
  const bool b_won = b > a;
  const T m1 = b_won ? b : a;
  const bool c_won = c > m1;
  const T m2 = c_won ? c : m1;
  const bool d_won = d > m2;
  gd = keep_if(d_won, g);
  gc = keep_if(c_won & !d_won, g);
  gb = keep_if(b_won & !c_won & !d_won, g);
  ga = keep_if(!b_won & !c_won & !d_won, g);
}

// One row of `windows` 2x2 windows, stride 2: r0 and r1 are the two input
// rows, g the row of output gradients, d0 and d1 the input-gradient rows
// (which must not overlap r0 or r1). Same decisions as max2x2_backward.
template <typename T>
void max2x2_backward_row(const T* r0, const T* r1, const T* g, T* d0, T* d1, std::int64_t windows) {
#pragma GCC ivdep  // the gradient rows do not overlap the input rows
  for (std::int64_t ow = 0; ow < windows; ++ow)
    max2x2_backward(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], g[ow], d0[2 * ow],
                    d0[2 * ow + 1], d1[2 * ow], d1[2 * ow + 1]);
}

#if defined(__AVX512F__)
// The float row with AVX-512, 16 windows at a time. Masked loads and stores
// take the short last group, so that short rows (MNIST's second pool has 7
// windows per row) do not fall back to scalar code. The compiler does not
// find this itself: it needs the even and odd elements of each row pair
// split into separate vectors and merged back.
inline __mmask16 first_lanes(std::int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

template <>
inline void max2x2_backward_row<float>(const float* r0, const float* r1, const float* g, float* d0,
                                       float* d1, std::int64_t windows) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (std::int64_t ow = 0; ow < windows; ow += 16) {
    const std::int64_t n = std::min<std::int64_t>(16, windows - ow);
    const __mmask16 m_out = first_lanes(n), m_lo = first_lanes(2 * n),
                    m_hi = first_lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
    const std::int64_t i = 2 * ow;
    const __m512 x0lo = _mm512_maskz_loadu_ps(m_lo, r0 + i);
    const __m512 x0hi = _mm512_maskz_loadu_ps(m_hi, r0 + i + 16);
    const __m512 x1lo = _mm512_maskz_loadu_ps(m_lo, r1 + i);
    const __m512 x1hi = _mm512_maskz_loadu_ps(m_hi, r1 + i + 16);
    const __m512 a = _mm512_permutex2var_ps(x0lo, even, x0hi);
    const __m512 b = _mm512_permutex2var_ps(x0lo, odd, x0hi);
    const __m512 c = _mm512_permutex2var_ps(x1lo, even, x1hi);
    const __m512 d = _mm512_permutex2var_ps(x1lo, odd, x1hi);
    const __m512 grad = _mm512_maskz_loadu_ps(m_out, g + ow);
    // Ordered comparisons: false when either side is NaN, like the scalar >.
    const __mmask16 b_won = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
    const __m512 m1 = _mm512_mask_blend_ps(b_won, a, b);
    const __mmask16 c_won = _mm512_cmp_ps_mask(c, m1, _CMP_GT_OQ);
    const __m512 m2 = _mm512_mask_blend_ps(c_won, m1, c);
    const __mmask16 d_won = _mm512_cmp_ps_mask(d, m2, _CMP_GT_OQ);
    const __mmask16 c_kept = static_cast<__mmask16>(c_won & ~d_won);
    const __mmask16 b_kept = static_cast<__mmask16>(b_won & ~c_won & ~d_won);
    const __mmask16 a_kept = static_cast<__mmask16>(~(b_won | c_won | d_won));
    const __m512 ga = _mm512_maskz_mov_ps(a_kept, grad), gb = _mm512_maskz_mov_ps(b_kept, grad);
    const __m512 gc = _mm512_maskz_mov_ps(c_kept, grad), gd = _mm512_maskz_mov_ps(d_won, grad);
    _mm512_mask_storeu_ps(d0 + i, m_lo, _mm512_permutex2var_ps(ga, low, gb));
    _mm512_mask_storeu_ps(d0 + i + 16, m_hi, _mm512_permutex2var_ps(ga, high, gb));
    _mm512_mask_storeu_ps(d1 + i, m_lo, _mm512_permutex2var_ps(gc, low, gd));
    _mm512_mask_storeu_ps(d1 + i + 16, m_hi, _mm512_permutex2var_ps(gc, high, gd));
  }
}
#endif

// y = the window maxima, parallel over planes; no arg-max is stored (the
// backward pass finds it again). 2x2 windows with stride 2, the usual case,
// take a loop over output rows that vectorises; other shapes go row by row
// and one window offset at a time, a select over the output row each.
template <typename T>
void maxpool2d_forward(const MaxPool2dShape& s, const T* x, T* y) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const MaxPool2dShape sh = s;  // a local copy: stores through yp cannot change it
    const T* xp = x + p * sh.H * sh.W;
    T* yp = y + p * OH * OW;
    for (std::int64_t oh = 0; oh < OH; ++oh) {
      T* out = yp + oh * OW;
      const T* first = xp + oh * sh.stride * sh.W;
      if (sh.K == 2 && sh.stride == 2) {
        const T* second = first + sh.W;
        for (std::int64_t ow = 0; ow < OW; ++ow)
          out[ow] = max2x2(first[2 * ow], first[2 * ow + 1], second[2 * ow], second[2 * ow + 1]);
        continue;
      }
      for (std::int64_t ow = 0; ow < OW; ++ow) out[ow] = first[ow * sh.stride];
      for (std::int64_t kh = 0; kh < sh.K; ++kh)
        for (std::int64_t kw = kh == 0 ? 1 : 0; kw < sh.K; ++kw) {
          const T* in = first + kh * sh.W + kw;
          for (std::int64_t ow = 0; ow < OW; ++ow) {
            const T v = in[ow * sh.stride];
            out[ow] = v > out[ow] ? v : out[ow];  // strictly greater: the first maximum wins
          }
        }
    }
  });
}

// dx = 0 except dx[argmax] += dy (overwritten).
template <typename T>
void maxpool2d_backward_naive(const MaxPool2dShape& s, const T* dy, const std::int32_t* argmax,
                              T* dx) {
  const std::int64_t out = s.OH() * s.OW(), in = s.H * s.W;
  std::fill_n(dx, s.planes * in, T(0));
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t i = 0; i < out; ++i) dx[p * in + argmax[p * out + i]] += dy[p * out + i];
}

// dx from x and dy (overwritten), parallel over planes; dx may be x
// (the same buffer), but must not overlap it otherwise.
// Each window's winner is found again from x exactly as the forward pass
// chose it.
template <typename T>
void maxpool2d_backward(const MaxPool2dShape& s, const T* x, const T* dy, T* dx) {
  const std::int64_t OH = s.OH(), OW = s.OW(), in = s.H * s.W;
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const MaxPool2dShape sh = s;
    const T* xp = x + p * in;
    const T* dyp = dy + p * OH * OW;
    T* dxp = dx + p * in;
    if (sh.K == 2 && sh.stride == 2) {
      // Disjoint windows: each reads its four inputs and writes their
      // gradients; zeros where no window reached (the last row or column of
      // an odd size). In place, the gradients go to a scratch plane that is
      // then copied over x: written straight over x, the next row's loads
      // wait on the (masked) stores just made next to them, and the pass
      // runs at half the speed.
      T* grad = dxp == xp ? thread_scratch<T, 1>(in) : dxp;
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const T* r0 = xp + 2 * oh * sh.W;
        T* d0 = grad + 2 * oh * sh.W;
        max2x2_backward_row(r0, r0 + sh.W, dyp + oh * OW, d0, d0 + sh.W, OW);
        if (sh.W % 2) d0[sh.W - 1] = d0[2 * sh.W - 1] = T(0);
      }
      if (sh.H % 2) std::fill_n(grad + (sh.H - 1) * sh.W, sh.W, T(0));
      if (grad != dxp) std::copy_n(grad, in, dxp);
      return;
    }
    // Any window: find all the winners of the plane before writing, so that
    // dx may alias x and overlapping windows (stride < K) sum in a fixed order.
    std::int32_t* winner = thread_scratch<std::int32_t, 0>(OH * OW);
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        const std::int64_t corner = oh * sh.stride * sh.W + ow * sh.stride;
        std::int64_t found = corner;
        T best = xp[corner];
        for (std::int64_t kh = 0; kh < sh.K; ++kh)
          for (std::int64_t kw = 0; kw < sh.K; ++kw) {
            const std::int64_t i = corner + kh * sh.W + kw;
            const bool greater = xp[i] > best;
            best = greater ? xp[i] : best;
            found = greater ? i : found;
          }
        winner[oh * OW + ow] = static_cast<std::int32_t>(found);
      }
    std::fill_n(dxp, in, T(0));
    for (std::int64_t i = 0; i < OH * OW; ++i) dxp[winner[i]] += dyp[i];
  });
}

}  // namespace minidl::kernels
