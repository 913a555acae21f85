// minidl/kernels/maxpool2d.hpp - max pooling forward and backward, and their naive twins.
//
// Two descriptions of the windows. MaxPool2dShape: P = N*C independent
// planes of H x W, window K x K moved by `stride`, no padding, output
// OH x OW with OH = (H - K) / stride + 1 (floor, as PyTorch); 2x2 windows
// with stride 2 take kernels of their own. Pool2dShape
// (kernels/pool2d_window.hpp): any window, stride, padding (taps in it are
// left out, as if it held -inf), dilation and ceil mode, per axis.
// x [P,H,W], y [P,OH,OW]. The naive forward also records argmax [P,OH,OW],
// the index (ih*W + iw) within its plane of the element that won; ties go to
// the first element in row-major order, as in PyTorch. The fast backward
// finds the winners again from x instead of storing them; for 2x2 windows
// with stride 2 the forward can instead record each winner in a byte
// (winners [P,OH,OW]), from which maxpool2x2_input_grad_plane makes one
// plane of dx without reading x.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/pool2d_window.hpp"

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

// The decisions of max2x2 for one window: which of b, c, d replaced the
// running maximum, and the maximum.
template <typename T>
struct Decisions2x2 {
  bool b_won, c_won, d_won;
  T max;
  Decisions2x2(T a, T b, T c, T d) {
    b_won = b > a;
    const T m1 = b_won ? b : a;
    c_won = c > m1;
    const T m2 = c_won ? c : m1;
    d_won = d > m2;
    max = d_won ? d : m2;
  }
};

// The gradient g routed to the winner of the window, 0 to the others. With
// relu_before, a window whose maximum is not positive routes nothing.
template <typename T>
void max2x2_backward(T a, T b, T c, T d, T g, bool relu_before, T& ga, T& gb, T& gc, T& gd) {
  const Decisions2x2<T> w(a, b, c, d);
  g = keep_if(!relu_before | (w.max > T(0)), g);
  gd = keep_if(w.d_won, g);
  gc = keep_if(w.c_won & !w.d_won, g);
  gb = keep_if(w.b_won & !w.c_won & !w.d_won, g);
  ga = keep_if(!w.b_won & !w.c_won & !w.d_won, g);
}

// A 2x2 window's winner as a byte: 0-3 for a, b, c, d (the element
// max2x2_backward routes to), kNoWinner where it routes no gradient (with
// relu_before, a maximum that is not positive).
inline constexpr std::uint8_t kNoWinner = 4;

template <typename T>
std::uint8_t max2x2_winner(T a, T b, T c, T d, bool relu_before) {
  const Decisions2x2<T> w(a, b, c, d);
  if (relu_before && !(w.max > T(0))) return kNoWinner;
  return w.d_won ? 3 : w.c_won ? 2 : w.b_won ? 1 : 0;
}

// The 2x2 windows, stride 2, of one plane: x has rows of W elements, y
// OH x OW. The last row or column of an odd size is not read. winners,
// unless null, gets each window's max2x2_winner.
template <typename T>
void max2x2_forward_plane(const T* x, std::int64_t W, std::int64_t OH, std::int64_t OW, T* y,
                          std::uint8_t* winners, bool relu_before) {
  for (std::int64_t oh = 0; oh < OH; ++oh, x += 2 * W, y += OW) {
    const T* r1 = x + W;
    for (std::int64_t ow = 0; ow < OW; ++ow)
      y[ow] = max2x2(x[2 * ow], x[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]);
    if (winners)
      for (std::int64_t ow = 0; ow < OW; ++ow, ++winners)
        *winners = max2x2_winner(x[2 * ow], x[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], relu_before);
  }
}

// Zeros in the last column and row of an H x W gradient plane where 2x2
// windows with stride 2 do not reach them (odd W, odd H): the plane
// functions above neither read nor write those.
template <typename T>
void zero_unreached_edges_2x2(std::int64_t H, std::int64_t W, T* dx) {
  if (W % 2)
    for (std::int64_t h = 0; h < H - H % 2; ++h) dx[h * W + W - 1] = T(0);
  if (H % 2) std::fill_n(dx + (H - 1) * W, W, T(0));
}

// dy OH x OW routed into dx (rows of W) by the recorded winners: the values
// max2x2_backward_plane writes, to the bit (+0 where nothing is routed).
template <typename T>
void max2x2_grad_plane(const std::uint8_t* winners, const T* dy, std::int64_t W, std::int64_t OH,
                       std::int64_t OW, T* dx) {
  for (std::int64_t oh = 0; oh < OH; ++oh, dx += 2 * W, dy += OW, winners += OW) {
    T* d1 = dx + W;
    for (std::int64_t ow = 0; ow < OW; ++ow) {
      const std::uint8_t k = winners[ow];
      dx[2 * ow] = keep_if(k == 0, dy[ow]);
      dx[2 * ow + 1] = keep_if(k == 1, dy[ow]);
      d1[2 * ow] = keep_if(k == 2, dy[ow]);
      d1[2 * ow + 1] = keep_if(k == 3, dy[ow]);
    }
  }
}

// The gradients of the same windows: dy OH x OW routed into dx (rows of W,
// which must not overlap x). Same decisions as max2x2_backward; the last
// row or column of an odd size is not written.
template <typename T>
void max2x2_backward_plane(const T* x, const T* dy, std::int64_t W, std::int64_t OH,
                           std::int64_t OW, bool relu_before, T* dx) {
  for (std::int64_t oh = 0; oh < OH; ++oh, x += 2 * W, dx += 2 * W, dy += OW) {
    const T* r1 = x + W;
    T* d1 = dx + W;
    MINIDL_VECTORIZE  // the gradient rows do not overlap the input rows
    for (std::int64_t ow = 0; ow < OW; ++ow)
      max2x2_backward(x[2 * ow], x[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], dy[ow], relu_before,
                      dx[2 * ow], dx[2 * ow + 1], d1[2 * ow], d1[2 * ow + 1]);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// The float planes with AVX-512, up to 16 windows per vector. The compiler
// does not vectorise this itself: it needs the even and odd elements of each
// row pair split into separate vectors (and, backward, merged back). Masked
// loads and stores take short groups, and rows of at most 8 windows (MNIST's
// second pool has 7) go two per vector, so that neither runs scalar code nor
// wastes half a vector.
inline __mmask16 first_lanes(std::int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// Where the windows of a vector come from: lanes [0, np) from the row pair
// at p (2 np floats per row), lanes [np, np + nq) from the one at q. One long
// row is p = r and q = r + 16 with np = 8; two short rows are p = row k and
// q = row k + 1 with np = nq = OW.
struct Layout2x2 {
  __m512i even, odd;       // x -> windows: elements a (or c), b (or d) of each window
  __m512i back_p, back_q;  // windows -> the 2 np floats of p and the 2 nq of q
  __mmask16 m_p, m_q, m_windows;

  Layout2x2(std::int64_t np, std::int64_t nq)
      : m_p(first_lanes(2 * np)), m_q(first_lanes(2 * nq)), m_windows(first_lanes(np + nq)) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 from_q = _mm512_cmpge_epi32_mask(lane, _mm512_set1_epi32(static_cast<int>(np)));
    const __m512i twice = _mm512_slli_epi32(lane, 1);
    // Lane l < np takes element 2l of p's vector, lane l >= np element
    // 2 (l - np) of q's, which permutex2var numbers from 16.
    even = _mm512_mask_add_epi32(twice, from_q, twice,
                                 _mm512_set1_epi32(16 - 2 * static_cast<int>(np)));
    odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    // Float j of a row pair's row is window j / 2 of the a (even j) or b
    // vector (odd j, numbered from 16); q's windows start at lane np.
    back_p = _mm512_add_epi32(_mm512_srli_epi32(lane, 1),
                              _mm512_slli_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(1)), 4));
    back_q = _mm512_add_epi32(back_p, _mm512_set1_epi32(static_cast<int>(np)));
  }
};

// The windows of one vector, and the decisions of max2x2: which of b, c, d
// replaced the running maximum.
struct Windows2x2 {
  __m512 max;
  __mmask16 b_won, c_won, d_won;

  // p0, p1: the two rows at p; q0, q1: at q.
  Windows2x2(const Layout2x2& l, const float* p0, const float* p1, const float* q0,
             const float* q1) {
    const __m512 top_p = _mm512_maskz_loadu_ps(l.m_p, p0), top_q = _mm512_maskz_loadu_ps(l.m_q, q0);
    const __m512 bot_p = _mm512_maskz_loadu_ps(l.m_p, p1), bot_q = _mm512_maskz_loadu_ps(l.m_q, q1);
    const __m512 a = _mm512_permutex2var_ps(top_p, l.even, top_q);
    const __m512 b = _mm512_permutex2var_ps(top_p, l.odd, top_q);
    const __m512 c = _mm512_permutex2var_ps(bot_p, l.even, bot_q);
    const __m512 d = _mm512_permutex2var_ps(bot_p, l.odd, bot_q);
    // Ordered comparisons: false when either side is NaN, like the scalar >.
    b_won = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
    const __m512 m1 = _mm512_mask_blend_ps(b_won, a, b);
    c_won = _mm512_cmp_ps_mask(c, m1, _CMP_GT_OQ);
    const __m512 m2 = _mm512_mask_blend_ps(c_won, m1, c);
    d_won = _mm512_cmp_ps_mask(d, m2, _CMP_GT_OQ);
    max = _mm512_mask_blend_ps(d_won, m2, d);
  }

  // Routes g (one gradient per window) to the winners: rows dp0, dp1 at p
  // and dq0, dq1 at q get their 2 np and 2 nq floats. With relu_before,
  // windows whose maximum is not positive route nothing.
  void backward(const Layout2x2& l, __m512 g, bool relu_before, float* dp0, float* dp1, float* dq0,
                float* dq1) const {
    if (relu_before) g = _mm512_maskz_mov_ps(positive(), g);
    const __mmask16 c_kept = static_cast<__mmask16>(c_won & ~d_won);
    const __mmask16 b_kept = static_cast<__mmask16>(b_won & ~c_won & ~d_won);
    const __mmask16 a_kept = static_cast<__mmask16>(~(b_won | c_won | d_won));
    route_2x2(l, g, a_kept, b_kept, c_kept, d_won, dp0, dp1, dq0, dq1);
  }

  // Each window's max2x2_winner, one byte per window.
  __m128i winners(bool relu_before) const {
    __m128i k = _mm_maskz_mov_epi8(b_won, _mm_set1_epi8(1));
    k = _mm_mask_mov_epi8(k, c_won, _mm_set1_epi8(2));
    k = _mm_mask_mov_epi8(k, d_won, _mm_set1_epi8(3));
    if (relu_before)
      k = _mm_mask_mov_epi8(k, static_cast<__mmask16>(~positive()), _mm_set1_epi8(kNoWinner));
    return k;
  }

  __mmask16 positive() const { return _mm512_cmp_ps_mask(max, _mm512_setzero_ps(), _CMP_GT_OQ); }

  // g (one gradient per window) to the elements the masks pick, +0 to the
  // others: rows dp0, dp1 at p and dq0, dq1 at q get their 2 np and 2 nq floats.
  static void route_2x2(const Layout2x2& l, __m512 g, __mmask16 a, __mmask16 b, __mmask16 c,
                        __mmask16 d, float* dp0, float* dp1, float* dq0, float* dq1) {
    const __m512 ga = _mm512_maskz_mov_ps(a, g), gb = _mm512_maskz_mov_ps(b, g);
    const __m512 gc = _mm512_maskz_mov_ps(c, g), gd = _mm512_maskz_mov_ps(d, g);
    _mm512_mask_storeu_ps(dp0, l.m_p, _mm512_permutex2var_ps(ga, l.back_p, gb));
    _mm512_mask_storeu_ps(dp1, l.m_p, _mm512_permutex2var_ps(gc, l.back_p, gd));
    _mm512_mask_storeu_ps(dq0, l.m_q, _mm512_permutex2var_ps(ga, l.back_q, gb));
    _mm512_mask_storeu_ps(dq1, l.m_q, _mm512_permutex2var_ps(gc, l.back_q, gd));
  }
};

// Calls group(layout, p, q, first window) for every vector of windows of a
// plane, in order: p and q are offsets of row pairs (or of halves of one)
// in the plane, the first window an offset in the output.
// Flattened, so that group is inlined at -O2 too: called from three places,
// it would otherwise be a function that reloads the layout on every call.
template <typename Group>
[[gnu::flatten]] void for_each_window_vector(std::int64_t W, std::int64_t OH, std::int64_t OW,
                                             Group&& group) {
  if (OW <= 8) {
    const Layout2x2 two(OW, OW), one(OW, 0);
    std::int64_t oh = 0;
    for (; oh + 2 <= OH; oh += 2) group(two, 2 * oh * W, 2 * (oh + 1) * W, oh * OW);
    if (oh < OH) group(one, 2 * oh * W, 2 * oh * W, oh * OW);
    return;
  }
  const std::int64_t tail = OW % 16;
  const Layout2x2 full(8, 8),
      last(std::min<std::int64_t>(tail, 8), std::max<std::int64_t>(tail - 8, 0));
  for (std::int64_t oh = 0; oh < OH; ++oh)
    for (std::int64_t ow = 0; ow < OW; ow += 16) {
      const std::int64_t p = 2 * oh * W + 2 * ow;
      group(ow + 16 <= OW ? full : last, p, p + 16, oh * OW + ow);
    }
}

template <>
inline void max2x2_forward_plane<float>(const float* x, std::int64_t W, std::int64_t OH,
                                        std::int64_t OW, float* y, std::uint8_t* winners,
                                        bool relu_before) {
  for_each_window_vector(
      W, OH, OW, [&](const Layout2x2& l, std::int64_t p, std::int64_t q, std::int64_t out) {
        const Windows2x2 w(l, x + p, x + p + W, x + q, x + q + W);
        _mm512_mask_storeu_ps(y + out, l.m_windows, w.max);
        if (winners) _mm_mask_storeu_epi8(winners + out, l.m_windows, w.winners(relu_before));
      });
}

template <>
inline void max2x2_grad_plane<float>(const std::uint8_t* winners, const float* dy, std::int64_t W,
                                     std::int64_t OH, std::int64_t OW, float* dx) {
  for_each_window_vector(
      W, OH, OW, [&](const Layout2x2& l, std::int64_t p, std::int64_t q, std::int64_t out) {
        const __m128i k = _mm_maskz_loadu_epi8(l.m_windows, winners + out);
        const auto is = [&](char v) {
          return _mm_mask_cmpeq_epi8_mask(l.m_windows, k, _mm_set1_epi8(v));
        };
        Windows2x2::route_2x2(l, _mm512_maskz_loadu_ps(l.m_windows, dy + out), is(0), is(1), is(2),
                              is(3), dx + p, dx + p + W, dx + q, dx + q + W);
      });
}

template <>
inline void max2x2_backward_plane<float>(const float* x, const float* dy, std::int64_t W,
                                         std::int64_t OH, std::int64_t OW, bool relu_before,
                                         float* dx) {
  for_each_window_vector(W, OH, OW,
                         [&](const Layout2x2& l, std::int64_t p, std::int64_t q, std::int64_t out) {
                           const Windows2x2 w(l, x + p, x + p + W, x + q, x + q + W);
                           w.backward(l, _mm512_maskz_loadu_ps(l.m_windows, dy + out), relu_before,
                                      dx + p, dx + p + W, dx + q, dx + q + W);
                         });
}
#endif

// ---- Any window (Pool2dShape): padding, dilation, sizes per axis, ceil mode.

inline Pool2dShape as_pool2d_shape(const MaxPool2dShape& s) {
  return {s.planes, pool_axis(s.H, s.K, s.stride, 0), pool_axis(s.W, s.K, s.stride, 0)};
}

// Each window's maximum over its taps inside the input, in row-major order:
// the first tap, replaced only by a strictly greater one, so the first
// maximum wins ties (as PyTorch's backward routes it). argmax [P,OH,OW]
// gets the winner's index (ih*W + iw) within its plane.
template <typename T>
void maxpool2d_forward_naive(const Pool2dShape& s, const T* x, T* y, std::int32_t* argmax) {
  for (std::int64_t p = 0; p < s.planes; ++p) {
    const T* xp = x + p * s.H() * s.W();
    for (std::int64_t oh = 0; oh < s.OH(); ++oh)
      for (std::int64_t ow = 0; ow < s.OW(); ++ow) {
        std::int64_t best = -1;
        for (std::int64_t i = s.h.first_tap(oh); i < s.h.end_tap(oh); ++i)
          for (std::int64_t j = s.w.first_tap(ow); j < s.w.end_tap(ow); ++j) {
            const std::int64_t at = s.h.at(oh, i) * s.W() + s.w.at(ow, j);
            if (best < 0 || xp[at] > xp[best]) best = at;
          }
        y[(p * s.OH() + oh) * s.OW() + ow] = xp[best];
        argmax[(p * s.OH() + oh) * s.OW() + ow] = static_cast<std::int32_t>(best);
      }
  }
}

// dx = 0 except dx[argmax] += dy (overwritten), windows in row-major order.
template <typename T>
void maxpool2d_backward_naive(const Pool2dShape& s, const T* dy, const std::int32_t* argmax,
                              T* dx) {
  const std::int64_t out = s.OH() * s.OW(), in = s.H() * s.W();
  std::fill_n(dx, s.planes * in, T(0));
  for (std::int64_t p = 0; p < s.planes; ++p)
    for (std::int64_t i = 0; i < out; ++i) dx[p * in + argmax[p * out + i]] += dy[p * out + i];
}

// The maxima of the windows of output row oh of plane xp, and, unless
// winner is null, each one's argmax as the naive loop finds it. Each window
// starts from its first tap inside the input; then one tap at a time, in
// row-major order, a select over all the windows that reach the input with
// it (a strided load when the stride is not 1), so that it vectorises. Each
// window sees its taps in the naive loop's order (its first one twice,
// which changes nothing): the same winners and bits.
template <typename T>
void max_window_row(const Pool2dShape& s, const Pool2dSpans& spans, const T* xp, std::int64_t oh,
                    T* best, std::int32_t* winner) {
  const PoolAxis& w = s.w;
  const std::int64_t i0 = spans.h.first_tap(oh), row0 = s.h.at(oh, i0) * w.in;
  for (std::int64_t ow = 0; ow < w.out; ++ow) {
    const std::int64_t at = row0 + w.at(ow, spans.w.first_tap(ow));
    best[ow] = xp[at];
    if (winner) winner[ow] = static_cast<std::int32_t>(at);
  }
  for (std::int64_t i = i0; i < spans.h.end_tap(oh); ++i) {
    const std::int64_t row = s.h.at(oh, i) * w.in;
    for (std::int64_t j = 0; j < w.k; ++j) {
      const std::int64_t o0 = spans.w.first_out(j), o1 = spans.w.end_out(j), step = w.s;
      const T* in = xp + row + w.at(o0, j);
      T* out = best + o0;
      if (!winner) {
        MINIDL_VECTORIZE  // the output row never overlaps the input plane
        for (std::int64_t n = 0; n < o1 - o0; ++n) {
          const T v = in[n * step];
          out[n] = v > out[n] ? v : out[n];
        }
        continue;
      }
      std::int32_t* won = winner + o0;
      const auto first = static_cast<std::int32_t>(row + w.at(o0, j));
      const auto gap = static_cast<std::int32_t>(step);
      MINIDL_VECTORIZE
      for (std::int64_t n = 0; n < o1 - o0; ++n) {
        const T v = in[n * step];
        const bool greater = v > out[n];
        out[n] = greater ? v : out[n];
        won[n] = greater ? first + static_cast<std::int32_t>(n) * gap : won[n];
      }
    }
  }
}

// One plane's dx (overwritten) from x and dy: every winner found first, so
// that dx may be x, then dy added at the winners in row-major order of the
// windows, as the naive loop adds it. relu_before: as maxpool2d_backward.
template <typename T>
void max_window_plane_backward(const Pool2dShape& s, const Pool2dSpans& spans, const T* xp,
                               const T* dyp, T* dxp, bool relu_before) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  std::int32_t* winner = thread_scratch<std::int32_t, 0>(OH * OW);
  T* best = thread_scratch<T, 2>(OW);
  for (std::int64_t oh = 0; oh < OH; ++oh) {
    std::int32_t* won = winner + oh * OW;
    max_window_row(s, spans, xp, oh, best, won);
    if (relu_before)  // -1: routes nothing (the ReLU's output was 0 at the maximum)
      for (std::int64_t ow = 0; ow < OW; ++ow) won[ow] = best[ow] > T(0) ? won[ow] : -1;
  }
  std::fill_n(dxp, s.H() * s.W(), T(0));
  for (std::int64_t i = 0; i < OH * OW; ++i)
    if (winner[i] >= 0) dxp[winner[i]] += dyp[i];
}

// y = the window maxima, parallel over planes: the naive twin's bits.
template <typename T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y) {
  const Pool2dSpans spans = pool_spans(s);
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const Pool2dShape sh = s;  // a local copy: stores through y cannot change it
    for (std::int64_t oh = 0; oh < sh.OH(); ++oh)
      max_window_row(sh, spans, x + p * sh.H() * sh.W(), oh, y + (p * sh.OH() + oh) * sh.OW(),
                     static_cast<std::int32_t*>(nullptr));
  });
}

// dx (overwritten) from x and dy, parallel over planes: the naive twin's
// bits. dx may be x (the same buffer), but must not overlap it otherwise.
template <typename T>
void maxpool2d_backward(const Pool2dShape& s, const T* x, const T* dy, T* dx,
                        bool relu_before = false) {
  const std::int64_t in = s.H() * s.W(), out = s.OH() * s.OW();
  const Pool2dSpans spans = pool_spans(s);
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    max_window_plane_backward(s, spans, x + p * in, dy + p * out, dx + p * in, relu_before);
  });
}

// y = the window maxima, parallel over planes; no arg-max is stored (the
// backward pass finds it again). 2x2 windows with stride 2, the usual case,
// take a loop over output rows that vectorises; other shapes go row by row
// and one window offset at a time, a select over the output row each
// (max_window_row).
// winners (2x2 windows with stride 2 only; null: not recorded) gets each
// window's max2x2_winner, for maxpool2x2_input_grad_plane.
template <typename T>
void maxpool2d_forward(const MaxPool2dShape& s, const T* x, T* y, std::uint8_t* winners = nullptr,
                       bool relu_before = false) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  if (winners && !(s.K == 2 && s.stride == 2))
    fail("maxpool2d_forward: winners are recorded for 2x2 windows with stride 2 only");
  // Other windows: the general kernels, their spans worked out once.
  const Pool2dShape windows = as_pool2d_shape(s);
  const Pool2dSpans spans = s.K == 2 && s.stride == 2 ? Pool2dSpans{} : pool_spans(windows);
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const MaxPool2dShape sh = s;  // a local copy: stores through yp cannot change it
    const T* xp = x + p * sh.H * sh.W;
    T* yp = y + p * OH * OW;
    if (sh.K == 2 && sh.stride == 2) {
      max2x2_forward_plane(xp, sh.W, OH, OW, yp, winners ? winners + p * OH * OW : nullptr,
                           relu_before);
      return;
    }
    for (std::int64_t oh = 0; oh < OH; ++oh)
      max_window_row(windows, spans, xp, oh, yp + oh * OW, static_cast<std::int32_t*>(nullptr));
  });
}

// The forward pass of planes [p0, p0 + count) for 2x2 windows with stride
// 2, their inputs given apart from the others (`planes`: count planes of
// H x W): y and winners as maxpool2d_forward writes them, single-threaded,
// for a caller that makes the input a few planes at a time.
template <typename T>
void maxpool2x2_forward_planes(const MaxPool2dShape& s, std::int64_t p0, std::int64_t count,
                               const T* planes, T* y, std::uint8_t* winners, bool relu_before) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t out = (p0 + i) * OH * OW;
    max2x2_forward_plane(planes + i * s.H * s.W, s.W, OH, OW, y + out, winners + out, relu_before);
  }
}

// Plane p of dx (H x W, overwritten) for 2x2 windows with stride 2, from
// that plane's dy and the winners maxpool2d_forward recorded: the plane
// maxpool2d_backward writes, to the bit, without reading x. Single-threaded,
// for a caller that needs the gradient one plane at a time.
template <typename T>
void maxpool2x2_input_grad_plane(const MaxPool2dShape& s, std::int64_t p,
                                 const std::uint8_t* winners, const T* dy, T* dx) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  max2x2_grad_plane(winners + p * OH * OW, dy + p * OH * OW, s.W, OH, OW, dx);
  zero_unreached_edges_2x2(s.H, s.W, dx);
}

// dx (overwritten) from dy and the recorded winners, parallel over planes:
// what maxpool2d_backward writes, to the bit, without reading x.
template <typename T>
void maxpool2x2_backward_from_winners(const MaxPool2dShape& s, const std::uint8_t* winners,
                                      const T* dy, T* dx) {
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    maxpool2x2_input_grad_plane(s, p, winners, dy, dx + p * s.H * s.W);
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
// chose it. relu_before: x is the output of a ReLU whose backward is folded
// into this one, so a window whose maximum is not positive (the ReLU's
// output was 0 there) routes no gradient. The result is that of the ReLU's
// backward applied after this pass, without its pass over memory.
template <typename T>
void maxpool2d_backward(const MaxPool2dShape& s, const T* x, const T* dy, T* dx,
                        bool relu_before = false) {
  const std::int64_t OH = s.OH(), OW = s.OW(), in = s.H * s.W;
  // Other windows: the general kernels, their spans worked out once.
  const Pool2dShape windows = as_pool2d_shape(s);
  const Pool2dSpans spans = s.K == 2 && s.stride == 2 ? Pool2dSpans{} : pool_spans(windows);
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
      max2x2_backward_plane(xp, dyp, sh.W, OH, OW, relu_before, grad);
      zero_unreached_edges_2x2(sh.H, sh.W, grad);
      if (grad != dxp) std::copy_n(grad, in, dxp);
      return;
    }
    max_window_plane_backward(windows, spans, xp, dyp, dxp, relu_before);
  });
}

}  // namespace minidl::kernels
