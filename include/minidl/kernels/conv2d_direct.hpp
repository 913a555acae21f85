// minidl/kernels/conv2d_direct.hpp - stride-1 and stride-2 convolutions computed straight from
// padded copies.
//
// No im2col. The forward register tile holds MR neighbouring output pixels of
// one row times NR output channels. For each tap (c, kh, kw) the MR input
// pixels it needs sit side by side in a zero-padded copy of the input plane,
// so they are broadcast from there and multiplied by NR packed weights. No
// multiply-add is wasted when MR divides the output width (7 divides MNIST's
// 28- and 14-pixel rows) and NR the number of output channels; with at most
// one vector of output channels (ResNet's 16) the tile is 2 x 7 pixels x
// one vector instead. Backward-data is the same kernel run on dy, with the
// kernel flipped and its channel axes swapped; at stride 2, once for each
// parity of the input pixels, with the taps that reach them. The weight
// gradient's tile is MR output channels (broadcast from dy's planes) x NR
// input channels (loaded from a channels-last copy of x) for one tap, or
// with at most one vector of input channels, that vector at three
// neighbouring taps. With
// few input channels these tiles would be mostly padding; conv2d_rows.hpp
// has the kernels for that case.
// Summation orders are fixed, so results do not depend on the number of
// threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/conv2d_pointwise.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/ordered_sum.hpp"
#include "minidl/kernels/simd.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace minidl::kernels {

namespace detail {

// Output pixels per forward tile: 7 x 2 accumulators fit AVX-512's 32
// registers with room for the two weight vectors and a broadcast.
#if defined(__AVX512F__)
inline constexpr int kDirectRows = 7;
#else
inline constexpr int kDirectRows = kGemmRows;
#endif
// Output pixels per tile of one vector of output channels: the same number
// of accumulators, so each weight vector serves as many multiply-adds.
inline constexpr int kDirectRowsNarrow = 2 * kDirectRows;
// Elements past a padded sample that the last tile of a row may read, per
// unit of stride.
inline constexpr int kDirectSlack = kDirectRowsNarrow;

// dst[0, W) = src[0, W): whole vectors, then a masked one for AVX-512
// floats. MNIST's rows are 14 and 28 floats, for which a call to memcpy per
// row costs more than the copy.
template <typename T>
void copy_row(const T* src, std::int64_t W, T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    std::int64_t w = 0;
    for (; w + 16 <= W; w += 16) _mm512_storeu_ps(dst + w, _mm512_loadu_ps(src + w));
    if (w < W) {
      const auto keep = static_cast<__mmask16>((1u << (W - w)) - 1);
      _mm512_mask_storeu_ps(dst + w, keep, _mm512_maskz_loadu_ps(keep, src + w));
    }
    return;
  }
#endif
  std::copy_n(src, W, dst);
}

// Where a sample's planes lie in a padded copy: `pad` zeros above and to
// the left of each plane, and zeros below and to the right of it up to HP
// rows of WP elements. The direct kernels pad each side alike and keep the
// planes apart ([C, HP, WP]); Winograd's 4x4 tiles round the plane up to
// whole tiles and take the channels last ([HP, WP, channels_last], the
// channels past C zero).
struct PaddedPlanes {
  std::int64_t pad, HP, WP;
  std::int64_t channels_last = 0;  // 0: planes apart
  std::int64_t size(std::int64_t C) const {
    return HP * WP * (channels_last > 0 ? channels_last : C);
  }
};
inline PaddedPlanes padded_evenly(std::int64_t H, std::int64_t W, std::int64_t pad) {
  return {pad, H + 2 * pad, W + 2 * pad};
}

// The inside of dst [C, HP, WP] = src [C, H, W]; the border is left as it
// is, so a buffer zeroed once takes sample after sample.
template <typename T>
void copy_into_padded(const T* src, std::int64_t C, std::int64_t H, std::int64_t W,
                      const PaddedPlanes& p, T* dst) {
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t h = 0; h < H; ++h)
      copy_row(src + (c * H + h) * W, W, dst + (c * p.HP + h + p.pad) * p.WP + p.pad);
}

// Rows [r0, r1) of each plane of dst [C, HP, WP] = src [C, H, W] padded: row
// r holds src's row r - pad between its zeros, or zeros if it lies in the
// border. The other rows are left as they are: a unit that makes a share of
// a sample's rows pads only the rows it reads.
template <typename T>
void pad_plane_rows(const T* src, std::int64_t C, std::int64_t H, std::int64_t W,
                    const PaddedPlanes& p, std::int64_t r0, std::int64_t r1, T* dst) {
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t r = r0; r < r1; ++r) {
      T* row = dst + (c * p.HP + r) * p.WP;
      if (r < p.pad || r >= H + p.pad) {
        std::fill_n(row, p.WP, T(0));
        continue;
      }
      std::fill_n(row, p.pad, T(0));
      copy_row(src + (c * H + r - p.pad) * W, W, row + p.pad);
      std::fill(row + p.pad + W, row + p.WP, T(0));
    }
}

// dst [C, H+2*pad, W+2*pad] = src [C, H, W] inside a border of zeros.
template <typename T>
void pad_planes(const T* src, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t pad,
                T* dst) {
  std::fill_n(dst, C * (H + 2 * pad) * (W + 2 * pad), T(0));
  copy_into_padded(src, C, H, W, padded_evenly(H, W, pad), dst);
}

// tile[r][j] = sum over taps (c, kh, kw), in that order, of
// a[c*plane + kh*WP + kw + STRIDE*r] * b[tap][j]: MR output pixels x NV
// vectors of output channels (NR = NV * width columns, the row length of b
// and tile).
// KSIZE > 0 fixes KH = KSIZE and KW = KWIDTH (KSIZE unless given) at
// compile time: the tap loops of a 3 x 3 kernel then unroll, which makes
// conv2 9-11% faster on one thread, and so do those of the 1 x 2 and 2 x 1
// taps of a stride-2 input gradient's phases.
// The pixel and vector loops are unrolled by pragma, so that -O2 (which
// does not unroll them by itself) keeps the accumulators in registers.
template <typename T, int MR, int NV, int KSIZE, int STRIDE, int KWIDTH = KSIZE>
void direct_tile(const T* a, const T* b, std::int64_t C, std::int64_t KH, std::int64_t KW,
                 std::int64_t plane, std::int64_t WP, T* tile) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  if constexpr (KSIZE > 0) {
    KH = KSIZE;
    KW = KWIDTH;
  }
  V acc[NV][MR];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[v][r] = V{};
  // One tap: the input pixels at x times the weights at b.
  auto tap = [&](const T* x, const T* b) {
    V bv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V xr = S::broadcast(x[STRIDE * r]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v][r] += xr * bv[v];
    }
  };
  // The 3 x 3 taps are unrolled by pragma: at -O2 the one-vector tile's ran
  // at half speed without it, and the two-vector tile's kept the shifted
  // input pixels of the next tap in registers and broadcast them from there,
  // which takes the vector pipes the multiply-adds need (forward 5-7% slower
  // than -O3 on Zen 5; the same with the pragma at both levels).
  for (std::int64_t c = 0; c < C; ++c, a += plane) {
    MINIDL_UNROLL(3)
    for (std::int64_t kh = 0; kh < KH; ++kh) {
      MINIDL_UNROLL(3)
      for (std::int64_t kw = 0; kw < KW; ++kw, b += NV * W) tap(a + kh * WP + kw, b);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) S::store(tile + (r * NV + v) * W, acc[v][r]);
}

// GCC 12 takes the never-read pass-through operand inside the AVX-512 shuffle
// intrinsics for an uninitialised value.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// out[j * P + r] = tile[r * NR + j] (+ bias[j]) for r < rows, j < cols: the
// pixel-major tile stored into channel-major planes P apart; with relu, each
// value v stored as v > 0 ? v : 0, exactly as relu_forward computes it.
template <typename T, int MR, int NR>
void store_tile_transposed(const T* tile, std::int64_t rows, std::int64_t cols, const T* bias,
                           bool relu, T* out, std::int64_t P) {
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
  if constexpr (std::is_same_v<T, float> && MR <= 8 && NR % 16 == 0) {
    if (cols == NR) {
      // Eight rows (those past MR are never stored) of 16 channels at a time
      // turned into 16 rows of 8 pixels, two per register, and stored masked
      // to the tile's rows: 64 vector instructions instead of 16 x 7 scalar
      // loads, adds and stores. The loops are unrolled by pragma, as -O3
      // does by itself: at -O2 the arrays of registers would live in memory.
      const __mmask8 keep = static_cast<__mmask8>((1u << rows) - 1);
      MINIDL_UNROLL(8)
      for (int j0 = 0; j0 < NR; j0 += 16) {
        __m512 r[8], t[8], u[8];
        const __m512 add = bias ? _mm512_loadu_ps(bias + j0) : _mm512_setzero_ps();
        MINIDL_UNROLL(8)
        for (int i = 0; i < 8; ++i)
          r[i] = i < MR ? _mm512_loadu_ps(tile + i * NR + j0) : _mm512_setzero_ps();
        if (bias) {
          MINIDL_UNROLL(8)
          for (int i = 0; i < MR; ++i) r[i] = _mm512_add_ps(r[i], add);
        }
        if (relu) {  // max_ps returns its second operand, +0, for NaN, -0 and +0
          MINIDL_UNROLL(8)
          for (int i = 0; i < MR; ++i) r[i] = _mm512_max_ps(r[i], _mm512_setzero_ps());
        }
        MINIDL_UNROLL(8)
        for (int i = 0; i < 8; i += 2) {  // pairs of rows: channels 4l, 4l+1 | 4l+2, 4l+3
          t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
          t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        MINIDL_UNROLL(8)
        for (int i = 0; i < 8; i += 4) {  // four rows of channel 4l + k in 128-bit lane l
          u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
          u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
          u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
          u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
        }
        MINIDL_UNROLL(8)
        for (int k = 0; k < 4; ++k) {  // rows 0-3 of u[k] joined to rows 4-7 of u[k + 4]
          const __m512 lo = _mm512_shuffle_f32x4(u[k], u[k + 4], 0x44);  // channels k, 4 + k
          const __m512 hi = _mm512_shuffle_f32x4(u[k], u[k + 4], 0xEE);  // 8 + k, 12 + k
          const __m512 a = _mm512_shuffle_f32x4(lo, lo, 0xD8),
                       b = _mm512_shuffle_f32x4(hi, hi, 0xD8);
          T* o = out + (j0 + k) * P;
          _mm256_mask_storeu_ps(o, keep, _mm512_castps512_ps256(a));
          _mm256_mask_storeu_ps(o + 4 * P, keep, _mm512_extractf32x8_ps(a, 1));
          _mm256_mask_storeu_ps(o + 8 * P, keep, _mm512_castps512_ps256(b));
          _mm256_mask_storeu_ps(o + 12 * P, keep, _mm512_extractf32x8_ps(b, 1));
        }
      }
      return;
    }
  }
#endif
  for (std::int64_t j = 0; j < cols; ++j, out += P)
    for (std::int64_t r = 0; r < rows; ++r) {
      const T v = bias ? tile[r * NR + j] + bias[j] : tile[r * NR + j];
      out[r] = relu ? (v > T(0) ? v : T(0)) : v;
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// store_tile_transposed for any MR: the transposing store takes at most 8
// rows at a time, so a taller tile goes in groups of 8 rows.
template <typename T, int MR, int NR>
void store_tile_rows(const T* tile, std::int64_t rows, std::int64_t cols, const T* bias, bool relu,
                     T* out, std::int64_t P) {
  if constexpr (MR > 8) {
    store_tile_transposed<T, 8, NR>(tile, std::min<std::int64_t>(rows, 8), cols, bias, relu, out,
                                    P);
    if (rows > 8)
      store_tile_rows<T, MR - 8, NR>(tile + 8 * NR, rows - 8, cols, bias, relu, out + 8, P);
  } else {
    store_tile_transposed<T, MR, NR>(tile, rows, cols, bias, relu, out, P);
  }
}

// One sample with MR x NV-vector tiles: y_n [oc_begin, oc_end) x [oh_begin,
// oh_end) x [0, OW) = conv(xpad, w) + b for those output channels (oc_begin
// a multiple of the sliver width) and rows, where xpad is the padded input
// from pad_planes (plus kDirectSlack elements, read by the last tile and
// discarded), packed_w is w^T [C*KH*KW, OC] in slivers of NV vectors of
// columns, and y_n points at channel oc_begin's plane.
template <typename T, int MR, int NV, int STRIDE>
void direct_conv_tiles(const Conv2dShape& s, const T* xpad, const T* packed_w, const T* b,
                       bool relu, std::int64_t oc_begin, std::int64_t oc_end, std::int64_t oh_begin,
                       std::int64_t oh_end, T* y_n) {
  constexpr int NR = NV * Simd<T>::width;
  const std::int64_t WP = s.W + 2 * s.pad, plane = (s.H + 2 * s.pad) * WP;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, K = s.col_rows();
  alignas(64) T tile[MR * NR];
  for (std::int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += NR) {
    const T* w_sliver = packed_w + oc0 * K;
    const std::int64_t cols = std::min<std::int64_t>(NR, oc_end - oc0);
    for (std::int64_t oh = oh_begin; oh < oh_end; ++oh)
      for (std::int64_t ow0 = 0; ow0 < OW; ow0 += MR) {
        const T* a = xpad + (oh * WP + ow0) * STRIDE;
        if (s.KH == 3 && s.KW == 3)
          direct_tile<T, MR, NV, 3, STRIDE>(a, w_sliver, s.C, 3, 3, plane, WP, tile);
        else if (s.KH == 1 && s.KW == 1)
          direct_tile<T, MR, NV, 1, STRIDE>(a, w_sliver, s.C, 1, 1, plane, WP, tile);
        else
          direct_tile<T, MR, NV, 0, STRIDE>(a, w_sliver, s.C, s.KH, s.KW, plane, WP, tile);
        // The tile is pixel-major; y is channel-major: store it transposed.
        store_tile_rows<T, MR, NR>(tile, std::min<std::int64_t>(MR, OW - ow0), cols,
                                   b ? b + oc0 : nullptr, relu,
                                   y_n + (oc0 - oc_begin) * P + oh * OW + ow0, P);
      }
  }
}

// Vectors of output channels per forward tile: one when the channels fit
// one vector (16 floats for AVX-512: the ResNet's first stage, and its
// input gradients), where a tile of two would be half zeros; two otherwise.
template <typename T>
constexpr int direct_vectors(std::int64_t OC) {
  return OC <= Simd<T>::width ? 1 : 2;
}

// Columns of a sliver of packed weights for OC output channels.
template <typename T>
constexpr std::int64_t direct_cols(std::int64_t OC) {
  return direct_vectors<T>(OC) * Simd<T>::width;
}

// One sample's output channels [oc_begin, oc_end) at rows [oh_begin,
// oh_end): y_n = conv(xpad, w) + b with the tile for its channel count. A
// one-vector tile takes twice the pixels (14 with AVX-512, which divides
// rows of 28 and 14), so each weight vector loaded still serves 14
// multiply-adds.
template <typename T>
void direct_conv_sample(const Conv2dShape& s, const T* xpad, const T* packed_w, const T* b,
                        bool relu, std::int64_t oc_begin, std::int64_t oc_end,
                        std::int64_t oh_begin, std::int64_t oh_end, T* y_n) {
  const bool narrow = direct_vectors<T>(s.OC) == 1;
  auto tiles = [&](auto tile_kernel) {
    tile_kernel(s, xpad, packed_w, b, relu, oc_begin, oc_end, oh_begin, oh_end, y_n);
  };
  if (s.stride == 1 && narrow)
    tiles(direct_conv_tiles<T, kDirectRowsNarrow, 1, 1>);
  else if (s.stride == 1)
    tiles(direct_conv_tiles<T, kDirectRows, 2, 1>);
  else if (narrow)
    tiles(direct_conv_tiles<T, kDirectRowsNarrow, 1, 2>);
  else
    tiles(direct_conv_tiles<T, kDirectRows, 2, 2>);
}

// The input gradient of a stride-1 convolution is a stride-1 convolution of
// dy, padded by KH-1-pad, with the kernel flipped and its channel axes
// swapped.
inline Conv2dShape transposed_conv_shape(const Conv2dShape& s) {
  return {s.N, s.OC, s.OH(), s.OW(), s.C, s.KH, s.KW, 1, s.KH - 1 - s.pad};
}

// part[r][v * W + j] (rows `ld` apart) (+)= sum over output pixels q of
// dy[r*P + q] * xcl[stride * q + tap][v * W + j]: MR output channels x NV
// vectors for one tap. dy points at channel o0 of one sample (planes P apart); xcl is
// the padded input with channels last (Cp per pixel, WP pixels per row),
// already offset by the tap. With Cp = 2W the two vectors are the two
// halves of 32 input channels; with Cp = W (16 input channels or fewer) the
// NV vectors are the same channels at NV neighbouring taps (kw, kw+1, ...),
// which sit W apart in xcl and in the partial alike; with Cp = W/2 (8 or
// fewer) each vector holds two neighbouring taps, and the NV vectors 2 NV taps.
// The sum runs over `samples` samples in order, the next one's dy `dy_step`
// and its copy of x `x_step` further on, in the same registers.
template <typename T, int MR, int NV>
void weight_tile(const T* dy, std::int64_t P, const T* xcl, std::int64_t OH, std::int64_t OW,
                 std::int64_t WP, std::int64_t Cp, std::int64_t stride, T* part, std::int64_t ld,
                 bool accumulate, std::int64_t samples, std::int64_t dy_step, std::int64_t x_step) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  V acc[NV][MR];  // row loops unrolled: see micro_kernel in gemm.hpp
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[v][r] = accumulate ? S::load(part + r * ld + v * W) : V{};
  for (std::int64_t n = 0; n < samples; ++n)
    for (std::int64_t oh = 0; oh < OH; ++oh) {
      const T* g = dy + n * dy_step + oh * OW;
      const T* x = xcl + n * x_step + oh * stride * WP * Cp;
      for (std::int64_t ow = 0; ow < OW; ++ow, ++g, x += stride * Cp) {
        V xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) xv[v] = S::load(x + v * W);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const V gr = S::broadcast(g[r * P]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[v][r] += gr * xv[v];
        }
      }
    }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) S::store(part + r * ld + v * W, acc[v][r]);
}

// Row h of one sample's x [C, H, W] into the channels-last copy: out[w * Cp
// + c] = x[(c * H + h) * W + w]. Floats go in 8 x 8 transposed blocks (the
// last block of a row overlaps the one before), eight times fewer stores
// than one per element.
template <typename T>
void channels_last_row(const T* x, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t h,
                       std::int64_t Cp, T* out) {
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    if (C % 8 == 0 && W >= 8) {
      for (std::int64_t c0 = 0; c0 < C; c0 += 8)
        for (std::int64_t w0 = 0; w0 < W; w0 += 8) {
          const std::int64_t w = std::min(w0, W - 8);
          transpose_8x8(x + (c0 * H + h) * W + w, H * W, out + w * Cp + c0, Cp);
        }
      return;
    }
  }
#endif
  for (std::int64_t c = 0; c < C; ++c) {
    const T* src = x + (c * H + h) * W;
    for (std::int64_t w = 0; w < W; ++w) out[w * Cp + c] = src[w];
  }
}

// One sample's x [C, H, W] into the channels-last copy xcl [HP][WP][Cp],
// inside its border of `pad`. Rows shorter than a transposed block (the
// 7 x 7 planes of ResNet's last stage) would go one element at a time, a
// tenth of that weight gradient's time: there the 8 x 8 blocks run along
// the flattened plane instead (the last one overlapping the one before),
// and each of a block's 8 pixels is put in its place among the padded rows.
template <typename T>
void channels_last_sample(const T* x, std::int64_t C, std::int64_t H, std::int64_t W,
                          std::int64_t pad, std::int64_t WP, std::int64_t Cp, T* xcl) {
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    const std::int64_t plane = H * W;
    if (W < 8 && C % 8 == 0 && plane >= 8) {
      alignas(32) float block[8 * 8];
      for (std::int64_t c0 = 0; c0 < C; c0 += 8)
        for (std::int64_t q0 = 0; q0 < plane; q0 += 8) {
          const std::int64_t q = std::min(q0, plane - 8);
          transpose_8x8(x + c0 * plane + q, plane, block, 8);
          std::int64_t h = q / W, w = q % W;
          for (int i = 0; i < 8; ++i) {
            _mm256_storeu_ps(xcl + ((h + pad) * WP + w + pad) * Cp + c0,
                             _mm256_load_ps(block + 8 * i));
            if (++w == W) w = 0, ++h;
          }
        }
      return;
    }
  }
#endif
  for (std::int64_t h = 0; h < H; ++h)
    channels_last_row(x, C, H, W, h, Cp, xcl + ((h + pad) * WP + pad) * Cp);
}

// Samples of a chunk whose channels-last copies of x the weight gradient
// holds at once. Each tile then sums over all of them in its registers, and
// the chunk's partial is loaded and stored once, not once a sample: with
// small planes a sample's work is small beside the partial (ResNet's last
// stage, 64 channels at 7x7: a 150 KB partial for 49 pixels; 256 channels:
// 2.4 MB, more than L2). In shape_sweep (2 threads, batch 64) that was
// 1.13-1.33x faster at 7x7, 1.4x at stride 2 from 7x7, 1.05-1.15x from
// 14x14; from 28x28, where the partial is small beside the work, level or up
// to 8% slower (32 -> 64 at stride 2), and so at 14x14 with 256 channels,
// whose four copies (1 MB) no longer stay in L2.
inline constexpr std::int64_t kWeightGroupMaxPixels = 16 * 16;
inline constexpr std::int64_t kWeightGroupMaxBytes = 640 << 10;
template <typename T>
std::int64_t weight_sample_group(const Conv2dShape& s, std::int64_t xcl_size) {
  const auto bytes = static_cast<std::int64_t>(kConvWeightChunk * xcl_size * sizeof(T));
  return s.H * s.W <= kWeightGroupMaxPixels && bytes <= kWeightGroupMaxBytes ? kConvWeightChunk : 1;
}

// Channel counts of the weight gradient rounded up to whole tiles: input
// channels to vectors (the extra channels of the copy of x are zeros),
// output channels to tile rows (the extra rows of the partials are unused).
// A single vector when the input channels fit one, half a vector when they
// fit half: the tile then spans neighbouring taps instead, one tap a vector
// or two (see weight_tile), so that 6 channels fill 12 lanes of 16, not 6.
template <typename T>
std::int64_t padded_in_channels(const Conv2dShape& s) {
  constexpr int W = Simd<T>::width;
  if (2 * s.C <= W) return W / 2;
  return s.C <= W ? W : round_up(s.C, gemm_cols<T>());
}
// Taps of a kernel row in the weight gradient's partials: with half-vector
// channels a vector holds two taps, and an odd row gets one more, unused.
template <typename T>
std::int64_t padded_row_taps(const Conv2dShape& s) {
  return 2 * padded_in_channels<T>(s) == Simd<T>::width ? round_up(s.KW, 2) : s.KW;
}
// Vectors of taps one half-vector tile holds: its MR x NV accumulators and
// NV inputs must fit the registers (32 with AVX-512, 16 otherwise).
inline constexpr int kMaxTapPairVectors = kSimdBytes == 64 ? 3 : 2;
template <typename T>
std::int64_t padded_out_channels(const Conv2dShape& s) {
  return round_up(s.OC, gemm_rows<T>());
}

}  // namespace detail

// Whether the direct kernels handle this shape: stride 1, a square kernel,
// and padding of at most kernel - 1 (backward-data pads dy by kernel-1-pad).
inline bool conv2d_direct_applies(const Conv2dShape& s) {
  return s.stride == 1 && s.KH == s.KW && s.pad <= s.KH - 1;
}

// Whether the direct kernels handle this shape in every pass: as above, but
// stride 2 too (ResNet's downsampling convolutions), where the forward
// tile's pixels are two input pixels apart and the input gradient is made
// phase by phase (conv2d_backward_data_direct_stride2).
inline bool conv2d_direct_strided_applies(const Conv2dShape& s) {
  return (s.stride == 1 || s.stride == 2) && s.KH == s.KW && s.pad <= s.KH - 1;
}

// Elements of the workspace the direct forward and backward-data passes
// take: none, since each thread packs the weights into its own scratch.
template <typename T>
std::int64_t conv2d_direct_workspace_size(const Conv2dShape&) {
  return 0;
}

// Where a forward kernel that works sample by sample puts its output: y
// stored whole, [N, OC, OH, OW]. A sink has the same two calls:
// planes(n, oc0, count) returns where the planes of sample n, channels
// [oc0, oc0 + count), are to be written, and done(n, oc0, count, planes) is
// called on the same thread once they hold their values.
template <typename T>
struct StoredOutput {
  T* y;
  std::int64_t OC, P;
  T* planes(std::int64_t n, std::int64_t oc0, std::int64_t) const { return y + (n * OC + oc0) * P; }
  void done(std::int64_t, std::int64_t, std::int64_t, const T*) const {}
};

// A convolution's input given as a batch norm's input x and the numbers of
// its per-channel affine map, with the ReLU after it: the convolution reads
// max(x a[c] + b[c], 0), the batch norm's output, made as each sample is
// copied into the kernel's scratch (pad_sample) rather than stored in
// memory and read back. The same expression on the same a and b as the
// normalising pass (kernels/batchnorm.hpp, detail::affine_of), so the same
// bits. With a null, x is the input itself. Only the channels-last copies
// (Winograd's F(4x4, 3x3)) take one.
template <typename T>
struct RemadeInput {
  const T* a = nullptr;
  const T* b = nullptr;
};

namespace detail {
// One unit of work of the direct passes: sample n's channels [ch_begin,
// ch_end) at its rows [row_begin, row_end).
struct DirectUnit {
  std::int64_t n, ch_begin, ch_end, row_begin, row_end;
};

// max(x a[c] + b[c], 0) over the C channels of each of `pixels`
// channels-last pixels, Cp apart (RemadeInput).
template <typename T>
void remake_pixels(const RemadeInput<T>& remade, std::int64_t C, std::int64_t pixels,
                   std::int64_t Cp, T* xcl) {
  const T* a = remade.a;
  const T* b = remade.b;
  for (std::int64_t q = 0; q < pixels; ++q) {
    T* pixel = xcl + q * Cp;
    MINIDL_VECTORIZE
    for (std::int64_t c = 0; c < C; ++c) {
      const T v = pixel[c] * a[c] + b[c];
      pixel[c] = v > T(0) ? v : T(0);
    }
  }
}

// A sample's padded copy (PaddedPlanes), whole into a buffer whose border
// is zero (pad_sample), or rows [r0, r1) of it, border included
// (pad_sample_rows); with `remade`, of the input made from x (RemadeInput),
// the border still zero.
template <typename T>
void pad_sample(const T* x_n, std::int64_t C, std::int64_t H, std::int64_t W, const PaddedPlanes& p,
                T* xpad, const RemadeInput<T>& remade = {}) {
  if (remade.a && p.channels_last == 0)
    fail("pad_sample: an input made again needs a channels-last copy");
  if (p.channels_last > 0)
    channels_last_sample(x_n, C, H, W, p.pad, p.WP, p.channels_last, xpad);
  else
    copy_into_padded(x_n, C, H, W, p, xpad);
  if (remade.a)
    for (std::int64_t h = 0; h < H; ++h)
      remake_pixels(remade, C, W, p.channels_last,
                    xpad + ((h + p.pad) * p.WP + p.pad) * p.channels_last);
}
template <typename T>
void pad_sample_rows(const T* x_n, std::int64_t C, std::int64_t H, std::int64_t W,
                     const PaddedPlanes& p, std::int64_t r0, std::int64_t r1, T* xpad,
                     const RemadeInput<T>& remade = {}) {
  if (p.channels_last == 0) {
    if (remade.a) fail("pad_sample_rows: an input made again needs a channels-last copy");
    pad_plane_rows(x_n, C, H, W, p, r0, r1, xpad);
    return;
  }
  const std::int64_t Cp = p.channels_last;
  for (std::int64_t r = r0; r < r1; ++r) {
    T* row = xpad + r * p.WP * Cp;
    std::fill_n(row, p.WP * Cp, T(0));
    if (r >= p.pad && r < H + p.pad) {
      channels_last_row(x_n, C, H, W, r - p.pad, Cp, row + p.pad * Cp);
      if (remade.a) remake_pixels(remade, C, W, Cp, row + p.pad * Cp);
    }
  }
}

// The parallel frame of the direct passes, in blocks of work units (the
// blocks of the static schedule). A unit is a sample; with fewer samples
// than threads (one image to classify), a share of a sample's `channels`
// output channels in whole slivers of NR; and with fewer slivers than
// threads (one image with 16 output channels), also a share of the `rows`
// rows the body makes, if each share keeps kGemmFlopsPerThread of the
// sample's sample_flops (0 where the rows may not be split). Each output
// value is computed the same way in any unit.
// Each thread packs its own copy of the weights with pack(dst, lo, hi)
// (packed_size elements, of which it writes the slivers of channels [lo,
// hi) that its units make: all of them, or its share of one image's): one
// thread packing for all would keep the others waiting, and they would
// then read the packed weights out of its cache.
// Each unit reads its sample padded in the thread's scratch (laid out as
// `geometry` says, then `slack` elements that the last tile reads): a
// whole sample is copied in once, inside a border zeroed once per call; a
// share of the rows pads only the rows [r0, r1) = rows_read(row_begin,
// row_end) it reads, border included (with the rows that the last tile of
// a row reaches into, whose values it discards). Then body(unit, xpad,
// packed) runs for the unit.
template <typename T, typename RowsRead, typename Pack, typename Body>
void direct_units(const T* x, std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                  const PaddedPlanes& geometry, std::int64_t slack, std::int64_t channels,
                  std::int64_t NR, std::int64_t rows, std::int64_t sample_flops,
                  RowsRead&& rows_read, std::int64_t packed_size, Pack&& pack, Body&& body,
                  const RemadeInput<T>& remade = {}) {
  const std::int64_t HP = geometry.HP, padded = geometry.size(C) + slack;
  const int threads = num_threads();
  const std::int64_t slivers = (channels + NR - 1) / NR;
  const std::int64_t shares = N >= threads ? 1 : std::min<std::int64_t>(slivers, threads / N);
  const std::int64_t row_shares =
      N * shares < threads
          ? std::clamp<std::int64_t>(
                std::min<std::int64_t>(threads / (N * shares),
                                       sample_flops / shares / kGemmFlopsPerThread),
                1, rows)
          : 1;
  const auto unit_channels = [&](std::int64_t u) {
    const std::int64_t share = u / row_shares % shares;
    return std::pair(slivers * share / shares * NR,
                     std::min(channels, slivers * (share + 1) / shares * NR));
  };
  parallel_blocks(N * shares * row_shares, threads, [&](int, std::int64_t u0, std::int64_t u1) {
    if (u0 >= u1) return;
    T* packed = thread_scratch<T, 2>(packed_size);
    std::int64_t lo = channels, hi = 0;
    for (std::int64_t u = u0; u < u1 && hi - lo < channels; ++u) {
      const auto [begin, end] = unit_channels(u);
      lo = std::min(lo, begin);
      hi = std::max(hi, end);
    }
    pack(packed, lo, hi);
    T* xpad = thread_scratch<T, 0>(padded);
    if (row_shares == 1)
      std::fill_n(xpad, padded, T(0));
    else
      std::fill_n(xpad + padded - slack, slack, T(0));
    std::int64_t padded_sample = -1;
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t n = u / (shares * row_shares), row_share = u % row_shares;
      const auto [ch_begin, ch_end] = unit_channels(u);
      const DirectUnit unit{n, ch_begin, ch_end, rows * row_share / row_shares,
                            rows * (row_share + 1) / row_shares};
      if (row_shares > 1) {
        const auto [r0, r1] = rows_read(unit.row_begin, unit.row_end);
        pad_sample_rows(x + n * C * H * W, C, H, W, geometry, std::max<std::int64_t>(0, r0),
                        std::min(HP, r1), xpad, remade);
      } else if (n != padded_sample) {
        pad_sample(x + n * C * H * W, C, H, W, geometry, xpad, remade);
      }
      padded_sample = n;
      body(unit, static_cast<const T*>(xpad), static_cast<const T*>(packed));
    }
  });
}

// A sample's arithmetic in a forward-shaped pass, as direct_units weighs
// row shares: 0 (rows never split) when the output goes to a sink, which
// takes whole planes; y stored whole may be made a share of the rows at a
// time.
template <typename T, typename Output>
std::int64_t row_split_flops(const Conv2dShape& s) {
  return std::is_same_v<Output, StoredOutput<T>> ? 2 * s.OC * s.OH() * s.OW() * s.col_rows() : 0;
}

// Rows past its last tap's that a row's last tile (at most kDirectSlack
// pixels `stride` apart, and KW taps) reaches into, in a padded plane of
// rows WP apart.
inline std::int64_t spill_rows(std::int64_t WP, std::int64_t stride, std::int64_t KW) {
  return (kDirectSlack * stride + KW + WP - 1) / WP;
}

// y = conv(x, packed_w) + b (then the ReLU, with relu) for every sample, by
// the units of direct_units: direct_conv_sample on each padded sample,
// which writes where the output sink says (see StoredOutput).
template <typename T, typename Pack, typename Output>
void direct_conv(const Conv2dShape& s, const T* x, std::int64_t packed_size, Pack&& pack,
                 const T* b, bool relu, const Output& output) {
  direct_units(
      x, s.N, s.C, s.H, s.W, padded_evenly(s.H, s.W, s.pad), kDirectSlack * s.stride, s.OC,
      direct_cols<T>(s.OC), s.OH(), row_split_flops<T, Output>(s),
      [&](std::int64_t oh0, std::int64_t oh1) {
        return std::pair(oh0 * s.stride,
                         (oh1 - 1) * s.stride + s.KH + spill_rows(s.W + 2 * s.pad, s.stride, s.KW));
      },
      packed_size, pack,
      [&](const DirectUnit& u, const T* xpad, const T* packed_w) {
        const std::int64_t count = u.ch_end - u.ch_begin;
        T* y_n = output.planes(u.n, u.ch_begin, count);
        direct_conv_sample(s, xpad, packed_w, b, relu, u.ch_begin, u.ch_end, u.row_begin, u.row_end,
                           y_n);
        output.done(u.n, u.ch_begin, count, static_cast<const T*>(y_n));
      });
}
}  // namespace detail

// conv(x, w) + b (b may be null), parallel over samples; with relu,
// max(y, 0) as relu_forward computes it, stored in the same pass; handed
// to the output sink (StoredOutput) one sample at a time. The workspace is
// not used: each thread packs the weights into its scratch.
template <typename T, typename Output>
void conv2d_forward_direct_samples(const Conv2dShape& s, const T* x, const T* w, const T* b,
                                   bool relu, const Output& output) {
  const std::int64_t K = s.col_rows(), NR = detail::direct_cols<T>(s.OC);
  const std::int64_t packed_size = K * round_up(s.OC, NR);
  detail::direct_conv(
      s, x, packed_size,
      [&](T* dst, std::int64_t lo, std::int64_t hi) {
        dst += lo * K;
        if (NR == gemm_cols<T>()) {
          detail::pack_b<T>({w, K, true}, 0, K, lo, hi - lo, dst);
          return;
        }
        // w^T in slivers of NR columns: dst[oc0 * K + k * NR + j] = w[oc0 + j][k].
        for (std::int64_t oc0 = lo; oc0 < hi; oc0 += NR)
          for (std::int64_t k = 0; k < K; ++k, dst += NR)
            for (std::int64_t j = 0; j < NR; ++j)
              dst[j] = oc0 + j < s.OC ? w[(oc0 + j) * K + k] : T(0);
      },
      b, relu, output);
}

// y = conv(x, w) + b, stored whole.
template <typename T>
void conv2d_forward_direct(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                           T* workspace, bool relu = false) {
  (void)workspace;
  conv2d_forward_direct_samples(s, x, w, b, relu, StoredOutput<T>{y, s.OC, s.OH() * s.OW()});
}

namespace detail {
// A slot of thread_scratch for one (sliver, output channel) block of a
// kernel with its taps before its channels (the stride-2 input gradient's).
inline constexpr int kTapBlockSlot = 12;

// block[tap * NR + j] = w[o][c0 + j][tap] for the KH x KW taps of output
// channel o and input channels [c0, c0 + NR), zero past C: the kernel of
// the input gradient's products, whose columns are input channels. An
// element-by-element gather read w with a stride of the taps and cost more
// than the multiply-adds of a batch of one (256 -> 256 at 7x7: 13% of
// peak); the rows are transposed in blocks instead (pack_rows_k_major).
template <typename T>
void taps_by_channel(const T* w, const Conv2dShape& s, std::int64_t o, std::int64_t c0,
                     std::int64_t NR, T* block) {
  const std::int64_t taps = s.KH * s.KW;
  pack_rows_k_major(w + (o * s.C + c0) * taps, taps, std::min(NR, s.C - c0), NR, taps, block);
}

// taps_by_channel with the kernel flipped: block[tap * NR + j] =
// w[o][c0 + j][KH * KW - 1 - tap], the kernel of a stride-1 input gradient.
template <typename T>
void flipped_taps_by_channel(const T* w, const Conv2dShape& s, std::int64_t o, std::int64_t c0,
                             std::int64_t NR, T* block) {
  using S = Simd<T>;
  const std::int64_t taps = s.KH * s.KW;
  taps_by_channel(w, s, o, c0, NR, block);
  // Rows swapped a vector at a time (NR is whole vectors): -O2 left
  // std::swap_ranges element by element, a fifth of a batch-1 pass.
  for (std::int64_t tap = 0; tap < taps / 2; ++tap) {
    T *a = block + tap * NR, *b = block + (taps - 1 - tap) * NR;
    for (std::int64_t j = 0; j < NR; j += S::width) {
      const typename S::vec va = S::load(a + j), vb = S::load(b + j);
      S::store(a + j, vb);
      S::store(b + j, va);
    }
  }
}

// The input gradient of a stride-2 convolution, split by the parity of the
// input pixel (its phase): the pixels (2a + rh, 2b + rw) are reached only
// by the kernel rows kh = rh + pad (mod 2) and the columns kw = rw + pad
// (mod 2), each from one output pixel. A phase is then a stride-1
// convolution of dy with those taps (th x tw of them: 1 x 1, 1 x 2, 2 x 1
// and 2 x 2 for a 3x3 kernel), and the four phases together do exactly the
// multiply-adds of the pass, where a transposed convolution of stride 1/2
// would multiply three zeros out of four.
struct DataPhase {
  std::int64_t rh, rw;      // parity of the input rows and columns it makes
  std::int64_t rows, cols;  // how many: ceil((H - rh) / 2) x ceil((W - rw) / 2)
  std::int64_t th, tw;      // taps: kernel rows ph, ph + 2, ... (th of them), columns alike
  std::int64_t ph, pw;
  std::int64_t oh, ow;  // dy pixel of tap (0, 0) for phase pixel (a, b): (a + oh, b + ow)
};

inline DataPhase data_phase(const Conv2dShape& s, std::int64_t rh, std::int64_t rw) {
  DataPhase p{rh, rw, (s.H - rh + 1) / 2, (s.W - rw + 1) / 2, 0, 0, 0, 0, 0, 0};
  p.ph = (rh + s.pad) % 2;
  p.pw = (rw + s.pad) % 2;
  p.th = (s.KH - p.ph + 1) / 2;
  p.tw = (s.KW - p.pw + 1) / 2;
  // Input row 2a + rh meets kernel row kh = ph + 2t at output row
  // (2a + rh + pad - kh) / 2 = a + (rh + pad) / 2 - t; the phase's taps run
  // t = th - 1 down to 0, so that dy is read forward.
  p.oh = (rh + s.pad) / 2 - (p.th - 1);
  p.ow = (rw + s.pad) / 2 - (p.tw - 1);
  return p;
}

// The zero border dy needs on every side so that every phase reads inside
// it: before row 0 (oh < 0) and past the last row (a + oh + th - 1 >= OH).
inline std::int64_t data_phase_border(const Conv2dShape& s) {
  std::int64_t border = 0;
  for (std::int64_t rh = 0; rh < 2; ++rh)
    for (std::int64_t rw = 0; rw < 2; ++rw) {
      const DataPhase p = data_phase(s, rh, rw);
      if (p.th == 0 || p.tw == 0 || p.rows == 0 || p.cols == 0) continue;
      border = std::max({border, -p.oh, -p.ow, p.rows - 1 + p.oh + p.th - 1 - (s.OH() - 1),
                         p.cols - 1 + p.ow + p.tw - 1 - (s.OW() - 1)});
    }
  return border;
}

// One row parity rh of one sample, input channels [c_begin, c_end) at its
// rows 2a + rh for a in [a_begin, a_end) (a_end <= p[0].rows): dx_n
// at the pixels of phases (rh, 0) and (rh, 1) = the taps' products, summed
// over (o, t, u) in that order by direct_tile. dypad is dy_n inside
// `border` zeros (rows WP apart, planes `plane` apart); packed[rw] holds
// phase (rh, rw)'s weights, B[(o, t, u), c] in slivers of NR columns. A
// tile's pixels are every other input pixel of a row; the two phases'
// tiles for the same pixels b0, b0 + 1, ... are interleaved into one tile
// of 2 MR neighbouring pixels, which the transposing store writes a
// vector at a time (stored one element at a time, a phase with few taps
// took as long to store as to compute).
template <typename T, int MR, int NV>
void data_phase_row_tiles(const Conv2dShape& s, const DataPhase* p, const T* dypad, std::int64_t WP,
                          std::int64_t plane, std::int64_t border, const T* const (&packed)[2],
                          std::int64_t c_begin, std::int64_t c_end, std::int64_t a_begin,
                          std::int64_t a_end, T* dx_n) {
  constexpr int NR = NV * Simd<T>::width;
  const std::int64_t HW = s.H * s.W, K[2] = {s.OC * p[0].th * p[0].tw, s.OC * p[1].th * p[1].tw};
  alignas(64) T phase_tile[MR * NR];
  alignas(64) T tile[2 * MR * NR];
  // Phase rw's products for its pixels b0, b0 + 1, ..., into the tile's
  // pixels 2 (b - b0) + rw: zeros where no tap reaches them (a 1x1 kernel's
  // odd pixels) or past the phase's last pixel.
  using S = Simd<T>;
  auto phase_products = [&](int rw, const T* w_sliver, std::int64_t a, std::int64_t b0) {
    const DataPhase& q = p[rw];
    if (q.th == 0 || q.tw == 0 || b0 >= q.cols) {
      MINIDL_UNROLL(16)
      for (int r = 0; r < MR; ++r) {
        MINIDL_UNROLL(2)
        for (int v = 0; v < NV; ++v)
          S::store(tile + (2 * r + rw) * NR + v * S::width, typename S::vec{});
      }
      return;
    }
    const T* x = dypad + (a + q.oh + border) * WP + b0 + q.ow + border;
    if (q.th == 2 && q.tw == 2)  // the four phases of a 3x3 kernel
      direct_tile<T, MR, NV, 2, 1>(x, w_sliver, s.OC, 2, 2, plane, WP, phase_tile);
    else if (q.th == 2 && q.tw == 1)
      direct_tile<T, MR, NV, 2, 1, 1>(x, w_sliver, s.OC, 2, 1, plane, WP, phase_tile);
    else if (q.th == 1 && q.tw == 2)
      direct_tile<T, MR, NV, 1, 1, 2>(x, w_sliver, s.OC, 1, 2, plane, WP, phase_tile);
    else if (q.th == 1 && q.tw == 1)
      direct_tile<T, MR, NV, 1, 1>(x, w_sliver, s.OC, 1, 1, plane, WP, phase_tile);
    else
      direct_tile<T, MR, NV, 0, 1>(x, w_sliver, s.OC, q.th, q.tw, plane, WP, phase_tile);
    MINIDL_UNROLL(16)
    for (int r = 0; r < MR; ++r) {
      MINIDL_UNROLL(2)
      for (int v = 0; v < NV; ++v)
        S::store(tile + (2 * r + rw) * NR + v * S::width,
                 S::load(phase_tile + r * NR + v * S::width));
    }
  };
  for (std::int64_t c0 = c_begin; c0 < c_end; c0 += NR) {
    const std::int64_t cols = std::min<std::int64_t>(NR, c_end - c0);
    for (std::int64_t a = a_begin; a < a_end; ++a)
      for (std::int64_t b0 = 0; b0 < p[0].cols; b0 += MR) {  // phase (rh, 0) has the most pixels
        phase_products(0, packed[0] + c0 * K[0], a, b0);
        phase_products(1, packed[1] + c0 * K[1], a, b0);
        const std::int64_t pixels = std::min<std::int64_t>(2 * MR, s.W - 2 * b0);
        store_tile_rows<T, 2 * MR, NR>(tile, pixels, cols, nullptr, false,
                                       dx_n + c0 * HW + (2 * a + p[0].rh) * s.W + 2 * b0, HW);
      }
  }
}
}  // namespace detail

// dx = dL/dx (overwritten) of a stride-2 convolution, by phases (see
// DataPhase), parallel over samples, or over shares of a sample's input
// channels when there are fewer samples than threads, as the forward pass
// is (direct_units). Each thread packs the weights of all four phases into
// its scratch.
template <typename T>
void conv2d_backward_data_direct_stride2(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const std::int64_t NR = detail::direct_cols<T>(s.C), Cr = round_up(s.C, NR);
  const std::int64_t taps = s.KH * s.KW, HW = s.H * s.W, OH = s.OH(), OW = s.OW();
  const std::int64_t border = detail::data_phase_border(s);
  const std::int64_t WP = OW + 2 * border, plane = (OH + 2 * border) * WP;
  detail::DataPhase phases[4];
  std::int64_t offsets[5] = {0};
  for (int i = 0; i < 4; ++i) {
    phases[i] = detail::data_phase(s, i / 2, i % 2);
    offsets[i + 1] = offsets[i] + s.OC * phases[i].th * phases[i].tw * Cr;
  }
  // Phase i's B[(o, t, u), c] = w[o][c][kh][kw] with kh = ph + 2 (th - 1 - t)
  // and kw = pw + 2 (tw - 1 - u), in slivers of NR columns: the rows of each
  // (sliver, o) block of detail::taps_by_channel, picked for each phase.
  auto pack = [&](T* dst, std::int64_t, std::int64_t) {  // all slivers: its phases interleave them
    T* block = thread_scratch<T, detail::kTapBlockSlot>(taps * NR);
    for (std::int64_t c0 = 0; c0 < s.C; c0 += NR)
      for (std::int64_t o = 0; o < s.OC; ++o) {
        detail::taps_by_channel(w, s, o, c0, NR, block);
        for (int i = 0; i < 4; ++i) {
          const detail::DataPhase& p = phases[i];
          T* out = dst + offsets[i] + ((c0 / NR) * s.OC + o) * p.th * p.tw * NR;
          for (std::int64_t t = 0; t < p.th; ++t)
            for (std::int64_t u = 0; u < p.tw; ++u, out += NR) {
              const std::int64_t tap =
                  (p.ph + 2 * (p.th - 1 - t)) * s.KW + p.pw + 2 * (p.tw - 1 - u);
              std::copy_n(block + tap * NR, NR, out);
            }
        }
      }
  };
  // Units of input rows: rows [h0, h1) hold phase rows a of parity rh with
  // h0 <= 2a + rh < h1.
  detail::direct_units(
      dy, s.N, s.OC, OH, OW, detail::padded_evenly(OH, OW, border), detail::kDirectSlack, s.C, NR,
      s.H, 2 * s.OC * OH * OW * s.col_rows(),
      [&](std::int64_t h0, std::int64_t h1) {
        // Input row h = 2a + rh reads dy's padded rows a + oh + border + t,
        // t < th, of its phases (even rows' phases[0], odd rows' phases[2]).
        const detail::DataPhase &even = phases[0], &odd = phases[2];
        return std::pair(h0 / 2 + border + std::min(even.oh, odd.oh),
                         (h1 - 1) / 2 + border + std::max(even.oh + even.th, odd.oh + odd.th) +
                             detail::spill_rows(WP, 1, s.KW));
      },
      offsets[4], pack,
      [&](const detail::DirectUnit& u, const T* dypad, const T* packed) {
        T* dx_n = dx + u.n * s.C * HW;
        for (int rh = 0; rh < 2; ++rh) {
          const detail::DataPhase* pair = phases + 2 * rh;  // phases (rh, 0) and (rh, 1)
          const std::int64_t a_begin = std::max<std::int64_t>(0, u.row_begin - rh + 1) / 2,
                             a_end = std::max<std::int64_t>(0, u.row_end - rh + 1) / 2;
          if (a_begin >= a_end) continue;  // a single input row: no odd rows
          const T* const pair_packed[2] = {packed + offsets[2 * rh], packed + offsets[2 * rh + 1]};
          if (NR == Simd<T>::width)
            detail::data_phase_row_tiles<T, detail::kDirectRowsNarrow, 1>(
                s, pair, dypad, WP, plane, border, pair_packed, u.ch_begin, u.ch_end, a_begin,
                a_end, dx_n);
          else
            detail::data_phase_row_tiles<T, detail::kDirectRows, 2>(s, pair, dypad, WP, plane,
                                                                    border, pair_packed, u.ch_begin,
                                                                    u.ch_end, a_begin, a_end, dx_n);
        }
      });
}

// dx = dL/dx (overwritten), parallel over samples: at stride 1 the forward
// kernel run on dy with the transposed shape and the flipped, transposed
// kernel; at stride 2 by phases, as above. The workspace is not used, as in
// conv2d_forward_direct.
template <typename T>
void conv2d_backward_data_direct(const Conv2dShape& s, const T* dy, const T* w, T* dx,
                                 T* workspace) {
  (void)workspace;
  if (s.stride == 2) {
    conv2d_backward_data_direct_stride2(s, dy, w, dx);
    return;
  }
  const std::int64_t NR = detail::direct_cols<T>(s.C);  // dx's channels are the tile's columns
  const std::int64_t taps = s.KH * s.KW;
  // B [(o, kh, kw), c] = w[o][c][KH-1-kh][KW-1-kw] in NR-column slivers.
  auto pack = [&](T* dst, std::int64_t lo, std::int64_t hi) {
    dst += lo * s.OC * taps;
    for (std::int64_t c0 = lo; c0 < hi; c0 += NR)
      for (std::int64_t o = 0; o < s.OC; ++o, dst += taps * NR)
        detail::flipped_taps_by_channel(w, s, o, c0, NR, dst);
  };
  detail::direct_conv(detail::transposed_conv_shape(s), dy, s.OC * taps * round_up(s.C, NR), pack,
                      static_cast<const T*>(nullptr), false, StoredOutput<T>{dx, s.C, s.H * s.W});
}

// Elements of the partials conv2d_backward_weights_direct takes: one weight
// gradient per chunk of kConvWeightChunk samples, in its padded layout, and
// the bias slots.
template <typename T>
std::int64_t conv2d_direct_partials_size(const Conv2dShape& s) {
  return (s.N + kConvWeightChunk - 1) / kConvWeightChunk * detail::padded_out_channels<T>(s) *
         (s.KH * detail::padded_row_taps<T>(s) * detail::padded_in_channels<T>(s) + kBiasSlot<T>);
}

// dw = dL/dw, db = dL/db (both overwritten; db may be null). `partials` is
// scratch of conv2d_direct_partials_size<T>(s) elements.
//
// With `carried`, dw and db hold on entry the sums over the samples of the
// processes before this one (core/batch_reducer.hpp), which this batch's
// chunks continue.
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_direct_continue(const Conv2dShape& s, const T* x, const T* dy, T* dw,
                                             T* db, T* partials, bool carried,
                                             const Wait& wait_for_carry = Wait{}) {
  constexpr int MR = gemm_rows<T>(), NR = gemm_cols<T>(), W = Simd<T>::width;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, taps = s.KH * s.KW;
  // A strided 1x1 kernel without padding reads one input pixel in stride x
  // stride: the copy then holds only those, gathered as conv2d_pointwise.hpp
  // gathers them, and the tiles read it as at stride 1. At stride 2 that is
  // a quarter of the pixels to transpose, the copy's main cost there (1.05-
  // 1.4x faster in shape_sweep from 14x14 to 56x56). On rows narrower than a
  // transposed block (7x7) the whole plane goes in blocks along it, and the
  // gather's own pass made it 6-14% slower.
  const bool gathered = conv2d_pointwise_applies(s) && s.stride > 1 && s.W >= 8;
  const Conv2dShape xs = gathered ? Conv2dShape{s.N, s.C, OH, OW, s.OC, 1, 1, 1, 0} : s;
  const std::int64_t HP = xs.H + 2 * xs.pad, WP = xs.W + 2 * xs.pad;
  const std::int64_t Cp = detail::padded_in_channels<T>(s), OCp = detail::padded_out_channels<T>(s);
  const std::int64_t KWp = detail::padded_row_taps<T>(s);
  const bool tap_pairs = 2 * Cp == W;  // a vector holds two taps' channels
  const std::int64_t chunks = (s.N + kConvWeightChunk - 1) / kConvWeightChunk;
  // A partial is [oc][kh][kw < KWp][c] and the bias slot after each channel's taps.
  const std::int64_t weights = s.KH * KWp * Cp, block = weights + kBiasSlot<T>,
                     part_size = OCp * block;
  // x with channels last, xcl [HP][WP][Cp]: the border and the channels past
  // C stay zero, each sample overwrites the rest. One pixel more at the end,
  // which the unused tap of an odd row reads last.
  const std::int64_t xcl_size = (HP * WP + 1) * Cp;
  const std::int64_t group = detail::weight_sample_group<T>(xs, xcl_size);
  // Output channels [o_begin, o_end) of a chunk's partial: all of them, or a
  // thread's share of a batch too small to give every thread a chunk.
  auto chunk_gradient = [&](std::int64_t chunk, T* part, std::int64_t o_begin, std::int64_t o_end) {
    BiasSum<T>* bias = chunk_bias_sums<T>(s.OC);
    T* xcl = thread_scratch<T, 0>(group * xcl_size);
    std::fill_n(xcl, group * xcl_size, T(0));
    const std::int64_t n0 = chunk * kConvWeightChunk, n1 = std::min(s.N, n0 + kConvWeightChunk);
    for (std::int64_t g0 = n0; g0 < n1; g0 += group) {
      const std::int64_t samples = std::min(group, n1 - g0);
      for (std::int64_t n = 0; n < samples; ++n) {
        const T* x_n = x + (g0 + n) * s.C * s.H * s.W;
        if (gathered) {
          T* pixels = thread_scratch<T, 2>(s.C * P + detail::kPointwiseGatherSlack<T>);
          detail::pointwise_gather(s, x_n, 0, OH, pixels);
          x_n = pixels;
        }
        detail::channels_last_sample(x_n, s.C, xs.H, xs.W, xs.pad, WP, Cp, xcl + n * xcl_size);
      }
      for (std::int64_t o0 = o_begin; o0 < o_end; o0 += MR) {
        const T* g = dy + (g0 * s.OC + o0) * P;
        std::int64_t g_step = s.OC * P;
        if (o0 + MR > s.OC) {  // a short last sliver: its planes, then zeros
          T* tail = thread_scratch<T, 1>(samples * MR * P);
          for (std::int64_t n = 0; n < samples; ++n) {
            std::copy_n(g + n * g_step, (s.OC - o0) * P, tail + n * MR * P);
            std::fill(tail + n * MR * P + (s.OC - o0) * P, tail + (n + 1) * MR * P, T(0));
          }
          g = tail;
          g_step = MR * P;
        }
        // One tile of NV vectors over the group's samples, continuing the
        // chunk's sums after its first group.
        auto tile = [&](auto vectors, const T* xt, T* pt) {
          detail::weight_tile<T, MR, decltype(vectors)::value>(
              g, P, xt, OH, OW, WP, Cp, xs.stride, pt, block, g0 > n0, samples, g_step, xcl_size);
        };
        using One = std::integral_constant<int, 1>;
        using Two = std::integral_constant<int, 2>;
        using Three = std::integral_constant<int, 3>;
        T* part_o = part + o0 * block;
        if (tap_pairs) {  // up to kMaxTapPairVectors vectors of two taps each per tile
          for (std::int64_t kh = 0; kh < s.KH; ++kh)
            for (std::int64_t kw = 0; kw < KWp; kw += 2 * detail::kMaxTapPairVectors) {
              const T* xt = xcl + (kh * WP + kw) * Cp;
              T* pt = part_o + (kh * KWp + kw) * Cp;
              const std::int64_t nv =
                  std::min<std::int64_t>(detail::kMaxTapPairVectors, (KWp - kw) / 2);
              if (nv == 3)
                tile(Three{}, xt, pt);
              else if (nv == 2)
                tile(Two{}, xt, pt);
              else
                tile(One{}, xt, pt);
            }
        } else if (Cp == W && s.KW == 3) {  // one vector of channels at three taps per tile
          for (std::int64_t kh = 0; kh < s.KH; ++kh)
            tile(Three{}, xcl + kh * WP * Cp, part_o + kh * 3 * Cp);
        } else {
          const int nv = Cp == W ? 1 : NR / W;
          for (std::int64_t c0 = 0; c0 < Cp; c0 += nv * W)
            for (std::int64_t kh = 0; kh < s.KH; ++kh)
              for (std::int64_t kw = 0; kw < s.KW; ++kw) {
                const T* xt = xcl + (kh * WP + kw) * Cp + c0;
                T* pt = part_o + (kh * s.KW + kw) * Cp + c0;
                if (nv == 1)
                  tile(One{}, xt, pt);
                else
                  tile(std::integral_constant<int, NR / W>{}, xt, pt);
              }
        }
        for (std::int64_t o = o0; o < std::min(o0 + MR, s.OC); ++o)  // while still in cache
          for (std::int64_t n = g0; n < g0 + samples; ++n)
            bias[o].add_plane(dy + (n * s.OC + o) * P, P);
      }
    }
    for (std::int64_t o = o_begin; o < o_end; ++o)
      store_bias_slot(bias[o], part + o * block + weights);
  };
  // Summed over the chunks one output channel at a time, into PyTorch's layout.
  sum_partials_in_order_shared(
      chunks, part_size, s.OC, block, MR, partials, chunk_gradient,
      [&](std::int64_t o, const T* sum) {
        T* row = dw + o * s.col_rows();
        for (std::int64_t kh = 0; kh < s.KH; ++kh)
          for (std::int64_t kw = 0; kw < s.KW; ++kw)
            for (std::int64_t c = 0; c < s.C; ++c)
              row[c * taps + kh * s.KW + kw] = sum[(kh * KWp + kw) * Cp + c];
        if (db) db[o] = sum[weights];
      },
      [&](std::int64_t o, T* sum) {  // the carry into the padded layout, padding zero
        if (!carried) return false;
        if (o == 0) wait_for_carry();
        const T* row = dw + o * s.col_rows();
        std::fill_n(sum, weights, T(0));
        for (std::int64_t kh = 0; kh < s.KH; ++kh)
          for (std::int64_t kw = 0; kw < s.KW; ++kw)
            for (std::int64_t c = 0; c < s.C; ++c)
              sum[(kh * KWp + kw) * Cp + c] = row[c * taps + kh * s.KW + kw];
        load_bias_slot(db, o, sum + weights);
        return true;
      });
}

// The same without a carry (one process, or the first of several).
template <typename T>
void conv2d_backward_weights_direct(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                                    T* partials) {
  conv2d_backward_weights_direct_continue(s, x, dy, dw, db, partials, false);
}

}  // namespace minidl::kernels
