// minidl/kernels/conv2d_winograd.hpp - 3x3 stride-1 convolutions by Winograd's algorithms.
// F(4x4, 3x3).
//
// Each 2x2 block of output pixels (a tile) comes from the 4x4 input patch d
// around it: y = A^T [ U (.) (B^T d B) ] A, with U = G g G^T the transformed
// 3x3 kernel g of each (output, input) channel pair and (.) the product
// element by element (Lavin and Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016). Summed over the input channels, the 16 products
// of a tile are 16 independent matrix products,
//   M[xi][tile][oc] = sum over c of V[xi][c][tile] * U[xi][c][oc],
// of 16 multiply-adds per (tile, c, oc) where the direct kernel does 36 for
// the same four pixels: 2.25 times fewer. The transforms are additions (G's
// halves are exact), vectorised over the tiles of a tile row (input) and
// over the output channels (output).
//
// The products run on direct_tile with one tap (conv2d_direct.hpp): MR tiles
// of a tile row x NV vectors of output channels, as the direct kernel's MR
// pixels of a row. The output transform turns the MR tiles into two output
// rows of 2 MR pixels, stored channel-major by the direct kernel's
// transposing store, bias and ReLU included. Backward-data of such a
// convolution is one too (on dy, with the kernel flipped and its channel
// axes swapped), so both passes run here.
//
// The weight gradient follows from the same identity: the gradient of a
// tile's products U (.) V is A dY A^T (dY the tile's 2x2 block of dy), so
//   dw = G^T [ sum over tiles of (A dY A^T) (.) V ] G,
// 16 matrix products over the tiles of a chunk of samples (gemm), and one
// transform per chunk, summed over the chunks in order as every weight
// gradient here is (ordered_sum.hpp).
//
// F(4x4, 3x3) computes each 4x4 block of outputs from the 6x6 patch
// around it, with 36 products per tile and channel pair where the direct
// kernel does 144 (its transforms and layout are described below). Its
// weight gradient is the same identity with 6x6 transforms (A dY A^T of
// each 4x4 block of dy, G^T [.] G once per chunk), its 36 products summed
// in registers over a chunk's tiles rather than by gemm, whose packing
// took as long as its products at 16 channels.
//
// The sums run in another order than the direct kernel's, so the bits
// differ from it (by a few units in the last place, F(4x4, 3x3) by more);
// they are the same for any number of threads and any batch split, as each
// sample's output (and each output channel of a chunk's weight gradient) is
// computed by one thread in a fixed order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "minidl/core/error.hpp"
#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/kernels/conv2d_bias.hpp"
#include "minidl/kernels/conv2d_direct.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/ordered_sum.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// Whether the Winograd kernels take this convolution: a 3x3 kernel at
// stride 1 with padding 1 (the "same" convolutions of VGG- and ResNet-style
// networks), whose input gradient is one of the same kind.
inline bool conv2d_winograd_applies(const Conv2dShape& s) {
  return s.KH == 3 && s.KW == 3 && s.stride == 1 && s.pad == 1;
}

namespace detail {

// The transformed values of a tile of F(M x M, 3x3): its (M + 2)^2 patch's.
template <int M>
inline constexpr int kWinogradPointsOf = (M + 2) * (M + 2);
inline constexpr int kWinogradPoints = kWinogradPointsOf<2>;  // F(2x2, 3x3)'s 16

// Tiles of a row and rows of tiles of F(M x M, 3x3): ceil(OW / M) x
// ceil(OH / M).
template <int M = 2>
std::int64_t winograd_tile_cols(const Conv2dShape& s) {
  return (s.OW() + M - 1) / M;
}
template <int M = 2>
std::int64_t winograd_tile_rows(const Conv2dShape& s) {
  return (s.OH() + M - 1) / M;
}

// B^T applied to the four values of a patch's column (or row) d0..d3:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
template <typename V>
void winograd_input_1d(V d0, V d1, V d2, V d3, V (&e)[4]) {
  e[0] = d0 - d2;
  e[1] = d1 + d2;
  e[2] = d2 - d1;
  e[3] = d1 - d3;
}

// A^T applied to the four values of a column (or row) of a tile's
// products m0..m3, into its two outputs:
//   A^T = [1 1 1 0; 0 1 -1 -1]
template <typename V>
void winograd_output_1d(V m0, V m1, V m2, V m3, V& y0, V& y1) {
  y0 = m0 + m1 + m2;
  y1 = m1 - m2 - m3;
}

// A applied to the two values of a column (or row) of a tile's dY, y0 and
// y1, into the four of its gradient (A dY A^T, the transpose of A^T):
//   A = [1 0; 1 1; 1 -1; 0 -1]
template <typename V>
void winograd_gradient_1d(V y0, V y1, V (&e)[4]) {
  e[0] = y0;
  e[1] = y0 + y1;
  e[2] = y0 - y1;
  e[3] = -y1;
}

// G^T applied to four summed gradients m0..m3 of a column (or row), into
// the three of the kernel's (G^T M G, the transpose of G g G^T):
//   G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]
// (V a vector or a scalar of T.)
template <typename T, typename V>
void winograd_weight_1d(V m0, V m1, V m2, V m3, V (&g)[3]) {
  const V sum = m1 + m2, difference = m1 - m2;
  g[0] = m0 + T(0.5) * sum;
  g[1] = T(0.5) * difference;
  g[2] = T(0.5) * sum + m3;
}

// V for tile rows [th0, th1) of one sample: V[xi][c][t] = (B^T d B)[xi] of
// tile t = (th - th0) * TW + tw of channel c, d the 4x4 patch of the padded
// input at (2 th, 2 tw). xpad is the
// sample padded by 1 (rows WP apart, planes `plane` apart, the tiles read up
// to two rows and columns past it: the rows and planes after it, or slack,
// which only the outputs past the edge use). Each xi's plane of V is
// `vstride` apart, with room for a vector past its C * T values: a tile row
// is written in whole vectors, and the next row (or channel) overwrites
// what spills.
template <typename T>
void winograd_input_transform(const Conv2dShape& s, const T* xpad, std::int64_t WP,
                              std::int64_t plane, std::int64_t th0, std::int64_t th1, T* v,
                              std::int64_t vstride) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  constexpr auto lanes = std::make_index_sequence<W>{};
  const std::int64_t TW = winograd_tile_cols(s), NT = (th1 - th0) * TW;
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t th = th0; th < th1; ++th)
      for (std::int64_t tw0 = 0; tw0 < TW; tw0 += W) {
        // Row i of the patches, split by column parity: ev[i] at tiles tw,
        // ev1[i] at tw + 1 (columns 2 tw and 2 tw + 2), od, od1 alike.
        V ev[4], od[4], ev1[4], od1[4];
        const T* row = xpad + c * plane + 2 * th * WP + 2 * tw0;
        MINIDL_UNROLL(4)
        for (int i = 0; i < 4; ++i, row += WP) {
          const V a = S::load(row), b = S::load(row + W);
          ev[i] = even_lanes<T>(a, b, lanes);
          od[i] = odd_lanes<T>(a, b, lanes);
          // Two elements on: the next tile's columns.
          const V a2 = S::load(row + 2), b2 = S::load(row + 2 + W);
          ev1[i] = even_lanes<T>(a2, b2, lanes);
          od1[i] = odd_lanes<T>(a2, b2, lanes);
        }
        // Down the columns, then along the rows.
        V qe[4], qo[4], qe1[4], qo1[4];
        winograd_input_1d(ev[0], ev[1], ev[2], ev[3], qe);
        winograd_input_1d(od[0], od[1], od[2], od[3], qo);
        winograd_input_1d(ev1[0], ev1[1], ev1[2], ev1[3], qe1);
        winograd_input_1d(od1[0], od1[1], od1[2], od1[3], qo1);
        T* out = v + c * NT + (th - th0) * TW + tw0;
        MINIDL_UNROLL(4)
        for (int k = 0; k < 4; ++k) {
          V e[4];  // columns 2 tw .. 2 tw + 3 of the patch are qe, qo, qe1, qo1
          winograd_input_1d(qe[k], qo[k], qe1[k], qo1[k], e);
          MINIDL_UNROLL(4)
          for (int j = 0; j < 4; ++j) S::store(out + (4 * k + j) * vstride, e[j]);
        }
      }
}

// U = G g G^T for the 3x3 kernels g of NR output channels at once (lanes
// j), g[tap][j] given tap-major: u[xi][j].
//   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
template <typename T, int NR>
void winograd_kernel_transform(const T (&g)[9][NR], T* u) {
  T gg[4][3][NR];  // G g: 4 rows of 3 taps
  for (int kw = 0; kw < 3; ++kw) MINIDL_VECTORIZE
  for (int j = 0; j < NR; ++j) {
    const T g0 = g[kw][j], g1 = g[3 + kw][j], g2 = g[6 + kw][j];
    gg[0][kw][j] = g0;
    gg[1][kw][j] = T(0.5) * (g0 + g1 + g2);
    gg[2][kw][j] = T(0.5) * (g0 - g1 + g2);
    gg[3][kw][j] = g2;
  }
  for (int r = 0; r < 4; ++r) MINIDL_VECTORIZE
  for (int j = 0; j < NR; ++j) {
    const T g0 = gg[r][0][j], g1 = gg[r][1][j], g2 = gg[r][2][j];
    u[(4 * r + 0) * NR + j] = g0;
    u[(4 * r + 1) * NR + j] = T(0.5) * (g0 + g1 + g2);
    u[(4 * r + 2) * NR + j] = T(0.5) * (g0 - g1 + g2);
    u[(4 * r + 3) * NR + j] = g2;
  }
}

// The transformed kernels of F(M x M, 3x3) in slivers of NR output
// channels: dst[((sliver * P + xi) * C + c) * NR + j] = U[xi] of output
// channel sliver * NR + j and input channel c, zero past OC (P the tile's
// kWinogradPointsOf<M> values). transform(g, u) is the kernel transform of
// M (winograd_kernel_transform, winograd4_kernel_transform). taps(oc0, c,
// NR, g) writes g[t][j], the 3x3 kernel's tap t (kh * 3 + kw) of output
// channel oc0 + j and input channel c, zero past OC. Only the slivers of
// output channels [lo, hi) are written (lo a multiple of NR).
template <typename T, int NR, int M, typename Transform, typename Taps>
void winograd_pack(std::int64_t C, std::int64_t lo, std::int64_t hi, Transform transform,
                   const Taps& taps, T* dst) {
  constexpr int P = kWinogradPointsOf<M>;
  T g[9][NR];
  T u[P * NR];
  dst += lo * P * C;
  for (std::int64_t oc0 = lo; oc0 < hi; oc0 += NR, dst += P * C * NR)
    for (std::int64_t c = 0; c < C; ++c) {
      taps(oc0, c, std::int64_t(NR), &g[0][0]);
      transform(g, u);
      for (int xi = 0; xi < P; ++xi) std::copy_n(u + xi * NR, NR, dst + (xi * C + c) * NR);
    }
}

// The 16 channel products of MR tiles from t (V's planes vstride apart,
// its channels NT apart) and a sliver of U (u: 16 x C x NR) into m
// (16 x MR x NR).
template <typename T, int MR, int NV>
void winograd_products(const T* v, std::int64_t vstride, std::int64_t NT, const T* u,
                       std::int64_t C, T* m) {
  constexpr int NR = NV * Simd<T>::width;
  for (int xi = 0; xi < kWinogradPoints; ++xi)
    direct_tile<T, MR, NV, 1, 1>(v + xi * vstride, u + xi * C * NR, C, 1, 1, NT, 0,
                                 m + xi * MR * NR);
}

// A^T applied to the six products m of a column (or row) of an F(4x4,
// 3x3) tile, into its four outputs y (see the F(4x4, 3x3) section below).
// Inlined by attribute, as winograd4_input_1d.
template <typename T, typename V>
[[gnu::always_inline]] inline void winograd4_output_1d(const V (&m)[6], V (&y)[4]) {
  const V a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  y[0] = m[0] + a + c;
  y[1] = b + T(2) * d;
  y[2] = a + T(4) * c;
  y[3] = b + T(8) * d + m[5];
}

// The output transform of tile r of a block of MR (its products in m, MR x
// NR apart), vector vv of its NR channels, down and along the tile: its M
// rows of M pixels stored at out (row a at out + a * row_stride, each
// pixel NR after the one before).
template <typename T, int MR, int NR, int M>
void winograd_output_tile(const T* m, int r, int vv, T* out, std::int64_t row_stride) {
  using S = Simd<T>;
  using V = typename S::vec;
  const T* mr = m + r * NR + vv * S::width;
  constexpr std::int64_t step = MR * NR;  // from one of the tile's products to the next
  if constexpr (M == 2) {
    V s0[4], s1[4];  // down the columns, then along the two rows
    MINIDL_UNROLL(4)
    for (int j = 0; j < 4; ++j)
      winograd_output_1d(S::load(mr + (0 + j) * step), S::load(mr + (4 + j) * step),
                         S::load(mr + (8 + j) * step), S::load(mr + (12 + j) * step), s0[j], s1[j]);
    V y0, y1;
    winograd_output_1d(s0[0], s0[1], s0[2], s0[3], y0, y1);
    S::store(out, y0);
    S::store(out + NR, y1);
    winograd_output_1d(s1[0], s1[1], s1[2], s1[3], y0, y1);
    S::store(out + row_stride, y0);
    S::store(out + row_stride + NR, y1);
  } else {
    V s[4][6];  // down the columns, then along the four rows
    MINIDL_UNROLL(6)
    for (int b = 0; b < 6; ++b) {
      V column[6], y[4];
      MINIDL_UNROLL(6)
      for (int a = 0; a < 6; ++a) column[a] = S::load(mr + (6 * a + b) * step);
      winograd4_output_1d<T>(column, y);
      MINIDL_UNROLL(4)
      for (int a = 0; a < 4; ++a) s[a][b] = y[a];
    }
    MINIDL_UNROLL(4)
    for (int a = 0; a < 4; ++a) {
      V y[4];
      winograd4_output_1d<T>(s[a], y);
      MINIDL_UNROLL(4)
      for (int q = 0; q < 4; ++q) S::store(out + a * row_stride + q * NR, y[q]);
    }
  }
}

// Tile rows [th0, th1) of one sample's output channels [oc_begin, oc_end)
// from their V: the 16 products of MR tiles of a tile row at a time, then
// the output transform of each tile into two output rows of 2 MR pixels,
// stored channel-major (y_n points at channel oc_begin's plane).
template <typename T, int MR, int NV>
void winograd_tiles(const Conv2dShape& s, std::int64_t th0, std::int64_t th1, const T* v,
                    std::int64_t vstride, const T* packed, const T* b, bool relu,
                    std::int64_t oc_begin, std::int64_t oc_end, T* y_n) {
  constexpr int W = Simd<T>::width, NR = NV * W;
  const std::int64_t TW = winograd_tile_cols(s), NT = (th1 - th0) * TW;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW;
  alignas(64) T m[kWinogradPoints * MR * NR];
  alignas(64) T rows[2][2 * MR * NR];
  for (std::int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += NR) {
    const T* u = packed + oc0 * kWinogradPoints * s.C;
    const std::int64_t cols = std::min<std::int64_t>(NR, oc_end - oc0);
    for (std::int64_t th = th0; th < th1; ++th)
      for (std::int64_t tw0 = 0; tw0 < TW; tw0 += MR) {
        const T* vt = v + (th - th0) * TW + tw0;
        winograd_products<T, MR, NV>(vt, vstride, NT, u, s.C, m);
        const std::int64_t tiles = std::min<std::int64_t>(MR, TW - tw0);
        MINIDL_UNROLL(16)
        for (int r = 0; r < MR; ++r) {
          if (r >= tiles) break;
          MINIDL_UNROLL(4)
          for (int vv = 0; vv < NV; ++vv)
            winograd_output_tile<T, MR, NR, 2>(m, r, vv, rows[0] + 2 * r * NR + vv * W,
                                               2 * MR * NR);
        }
        const std::int64_t pixels = std::min<std::int64_t>(2 * MR, OW - 2 * tw0);
        for (std::int64_t a = 0; a < 2 && 2 * th + a < OH; ++a)
          store_tile_rows<T, 2 * MR, NR>(rows[a], pixels, cols, b ? b + oc0 : nullptr, relu,
                                         y_n + (oc0 - oc_begin) * P + (2 * th + a) * OW + 2 * tw0,
                                         P);
      }
  }
}

// winograd_tiles for rows of fewer tiles than a block (7x7 images have 4):
// the blocks run on through the tile rows, and the output transform puts
// each tile's pixels into the group's output rows (pixel-major, in
// thread scratch), stored channel-major once the sliver is done.
template <typename T, int MR, int NV>
void winograd_tiles_across_rows(const Conv2dShape& s, std::int64_t th0, std::int64_t th1,
                                const T* v, std::int64_t vstride, const T* packed, const T* b,
                                bool relu, std::int64_t oc_begin, std::int64_t oc_end, T* y_n) {
  constexpr int W = Simd<T>::width, NR = NV * W, kMaxRow = 2 * (kDirectRows - 1);
  const std::int64_t TW = winograd_tile_cols(s), NT = (th1 - th0) * TW;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, row = 2 * TW * NR;
  alignas(64) T m[kWinogradPoints * MR * NR];
  // The transposing store reads kMaxRow pixels of a row, whole: that many
  // past the group's last row.
  T* out = thread_scratch<T, 8>(2 * (th1 - th0) * row + kMaxRow * NR);
  for (std::int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += NR) {
    const T* u = packed + oc0 * kWinogradPoints * s.C;
    for (std::int64_t t0 = 0; t0 < NT; t0 += MR) {
      winograd_products<T, MR, NV>(v + t0, vstride, NT, u, s.C, m);
      const std::int64_t tiles = std::min<std::int64_t>(MR, NT - t0);
      for (int r = 0; r < tiles; ++r) {
        const std::int64_t th = (t0 + r) / TW, tw = (t0 + r) % TW;
        T* top = out + 2 * th * row + 2 * tw * NR;
        MINIDL_UNROLL(4)
        for (int vv = 0; vv < NV; ++vv)
          winograd_output_tile<T, MR, NR, 2>(m, r, vv, top + vv * W, row);
      }
    }
    const std::int64_t cols = std::min<std::int64_t>(NR, oc_end - oc0);
    for (std::int64_t oh = 2 * th0; oh < std::min(OH, 2 * th1); ++oh)
      store_tile_rows<T, kMaxRow, NR>(out + (oh - 2 * th0) * row, OW, cols, b ? b + oc0 : nullptr,
                                      relu, y_n + (oc0 - oc_begin) * P + oh * OW, P);
  }
}

// Tiles per block: as many as the direct kernel's pixels per tile (they
// fill the registers the same way), fewer for rows of fewer tiles (14x14
// images have 7); rows shorter than a block (7x7 images have 4 tiles) are
// run through as one sequence of tiles.
template <typename T, int NV>
void winograd_rows(const Conv2dShape& s, std::int64_t th0, std::int64_t th1, const T* v,
                   std::int64_t vstride, const T* packed, const T* b, bool relu,
                   std::int64_t oc_begin, std::int64_t oc_end, T* y_n) {
  constexpr int wide = NV == 1 ? kDirectRowsNarrow : kDirectRows;
  const std::int64_t TW = winograd_tile_cols(s);
  if (TW >= wide)
    winograd_tiles<T, wide, NV>(s, th0, th1, v, vstride, packed, b, relu, oc_begin, oc_end, y_n);
  else if (TW >= kDirectRows)
    winograd_tiles<T, kDirectRows, NV>(s, th0, th1, v, vstride, packed, b, relu, oc_begin, oc_end,
                                       y_n);
  else
    winograd_tiles_across_rows<T, kDirectRows, NV>(s, th0, th1, v, vstride, packed, b, relu,
                                                   oc_begin, oc_end, y_n);
}

// Tile rows per group: V of a group (16 values per tile and input channel)
// is kept to 128 KiB, so that it stays in the core's L2 cache while every
// sliver of output channels reads it (at 56x56 and 16 channels, V of the
// whole sample ran 1.2x slower than the direct kernel).
template <typename T>
std::int64_t winograd_group_rows(const Conv2dShape& s) {
  const std::int64_t per_row = kWinogradPoints * s.C * winograd_tile_cols(s);
  return std::clamp<std::int64_t>((128 << 10) / static_cast<std::int64_t>(sizeof(T)) / per_row, 1,
                                  winograd_tile_rows(s));
}

// Elements past a padded sample that the input transform reads: two rows
// and a few vectors.
template <typename T>
std::int64_t winograd_slack(const Conv2dShape& s) {
  return 3 * (s.W + 2) + 4 * Simd<T>::width;
}

// The direct kernels' frame (direct_units: samples, or shares of a
// sample's output channels, or with y stored whole of its tile rows, over
// the threads; weights packed by each thread) with V made from each padded
// sample. taps(oc0, c, NR, g) gives the 3x3 kernels of output channels
// [oc0, oc0 + NR) and input channel c of s, as winograd_pack takes them.
template <typename T, typename Taps, typename Output>
void winograd_conv(const Conv2dShape& s, const T* x, const Taps& taps, const T* b, bool relu,
                   const Output& output) {
  constexpr int W = Simd<T>::width;
  const int nv = direct_vectors<T>(s.OC);
  const std::int64_t NR = nv * W;
  const std::int64_t TH = winograd_tile_rows(s), group = winograd_group_rows<T>(s);
  // A vector spills past the group's tiles and MR - 1 tiles are read past them.
  const std::int64_t vstride = s.C * group * winograd_tile_cols(s) + 2 * W + 16;
  const std::int64_t WP = s.W + 2, plane = (s.H + 2) * WP;
  const std::int64_t packed_size = kWinogradPoints * s.C * round_up(s.OC, NR);
  // Tile rows are shared as rows are, weighed by the direct multiply-adds.
  direct_units(
      x, s.N, s.C, s.H, s.W, padded_evenly(s.H, s.W, 1), winograd_slack<T>(s), s.OC, NR, TH,
      row_split_flops<T, Output>(s),
      [&](std::int64_t th0, std::int64_t th1) {
        // Tile row th reads padded rows 2 th .. 2 th + 3, and its last
        // vectors up to 2 W + 2 elements past the row.
        return std::pair(2 * th0, 2 * th1 + 2 + (2 * W + 2 + WP - 1) / WP);
      },
      packed_size,
      [&](T* dst, std::int64_t lo, std::int64_t hi) {
        if (nv == 1)
          winograd_pack<T, W, 2>(s.C, lo, hi, winograd_kernel_transform<T, W>, taps, dst);
        else
          winograd_pack<T, 2 * W, 2>(s.C, lo, hi, winograd_kernel_transform<T, 2 * W>, taps, dst);
      },
      [&](const DirectUnit& u, const T* xpad, const T* packed) {
        const std::int64_t n = u.n, oc_begin = u.ch_begin, oc_end = u.ch_end;
        T* v = thread_scratch<T, 3>(kWinogradPoints * vstride);
        T* y_n = output.planes(n, oc_begin, oc_end - oc_begin);
        for (std::int64_t th0 = u.row_begin; th0 < u.row_end; th0 += group) {
          const std::int64_t th1 = std::min(u.row_end, th0 + group);
          winograd_input_transform(s, xpad, WP, plane, th0, th1, v, vstride);
          if (nv == 1)
            winograd_rows<T, 1>(s, th0, th1, v, vstride, packed, b, relu, oc_begin, oc_end, y_n);
          else
            winograd_rows<T, 2>(s, th0, th1, v, vstride, packed, b, relu, oc_begin, oc_end, y_n);
        }
        output.done(n, oc_begin, oc_end - oc_begin, static_cast<const T*>(y_n));
      });
}

// ---- F(4x4, 3x3) --------------------------------------------------------------
//
// Each 4x4 block of output pixels from the 6x6 patch around it, with the
// interpolation points 0, 1, -1, 2, -2 and infinity:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//          0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
//          1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// 36 products per tile and channel pair for 16 output pixels, where the
// direct kernel does 144: four times fewer, 1.8 times fewer than F(2x2,
// 3x3). The sums are larger and cancel more, so they round a few times
// further from the exact value than F(2x2, 3x3)'s (in float, about 1e-5 of
// the largest output at 16-256 channels). The transforms of the input and
// output multiply only by 2, 4 and 8, which is exact, so they round alike
// whether or not the compiler fuses a multiply with the add after it.
//
// A tile row of a 7x7 or 14x14 plane has 2 or 4 tiles, too few for the
// vector lanes the F(2x2, 3x3) transforms fill with tiles. Here the sample
// is padded with its channels last (as direct_units copies it), the input
// transform runs along vectors of channels, and V of a tile is a row of
// channels that the products broadcast from, MR tiles at a time across the
// tile rows.

// B^T applied to the six values of a patch's row (or column) d. Inlined by
// attribute: -O2 called it, and the arrays went through memory (the input
// transform and with it both passes 1.1-1.4x slower than at -O3).
template <typename T, typename V>
[[gnu::always_inline]] inline void winograd4_input_1d(const V (&d)[6], V (&e)[6]) {
  const V a = d[4] - T(4) * d[2], b = d[3] - T(4) * d[1];
  const V c = d[4] - d[2], f = T(2) * (d[3] - d[1]);
  e[0] = T(4) * (d[0] - d[2]) + c;
  e[1] = a + b;
  e[2] = a - b;
  e[3] = c + f;
  e[4] = c - f;
  e[5] = T(4) * (d[1] - d[3]) + (d[5] - d[3]);
}

// A^T: winograd4_output_1d, above.

// G applied to three values of a kernel's column (or row), into six. Each
// multiply by 2 or 4 is exact; each sum is scaled once, at the end.
template <typename T, typename V>
void winograd4_kernel_1d(V g0, V g1, V g2, V (&u)[6]) {
  u[0] = g0 * T(0.25);
  u[1] = (g0 + g1 + g2) * T(-1.0 / 6);
  u[2] = (g0 - g1 + g2) * T(-1.0 / 6);
  u[3] = (g0 + T(2) * g1 + T(4) * g2) * T(1.0 / 24);
  u[4] = (g0 - T(2) * g1 + T(4) * g2) * T(1.0 / 24);
  u[5] = g2;
}

// U = G g G^T for the 3x3 kernels g of NR output channels (lanes j, NR a
// multiple of the vector width), g[tap][j] given tap-major: u[xi][j], xi =
// 6 a + b. G's fractions round; the values of G g are kept from being
// fused into the sums of the second step (and the function from being
// inlined), so that U has the same bits wherever it is packed.
template <typename T, int NR>
[[gnu::noinline]] void winograd4_kernel_transform(const T (&g)[9][NR], T* u) {
  using S = Simd<T>;
  using V = typename S::vec;
  for (int j = 0; j < NR; j += S::width) {
    V gg[6][3];  // G g: 6 rows of 3 taps
    MINIDL_UNROLL(3)
    for (int kw = 0; kw < 3; ++kw) {
      V e[6];
      winograd4_kernel_1d<T>(S::load(g[kw] + j), S::load(g[3 + kw] + j), S::load(g[6 + kw] + j), e);
      MINIDL_UNROLL(6)
      for (int r = 0; r < 6; ++r) {
        hide_from_optimizer(e[r]);
        gg[r][kw] = e[r];
      }
    }
    MINIDL_UNROLL(6)
    for (int r = 0; r < 6; ++r) {
      V e[6];
      winograd4_kernel_1d<T>(gg[r][0], gg[r][1], gg[r][2], e);
      MINIDL_UNROLL(6)
      for (int b = 0; b < 6; ++b) S::store(u + (6 * r + b) * NR + j, e[b]);
    }
  }
}

// B^T applied to a row of six pixels' vectors of channels, `Cp` apart.
template <typename T, typename V>
[[gnu::always_inline]] inline void winograd4_input_row(const T* row, std::int64_t Cp, V (&e)[6]) {
  V d[6];
  MINIDL_UNROLL(6)
  for (int j = 0; j < 6; ++j) d[j] = Simd<T>::load(row + j * Cp);
  winograd4_input_1d<T>(d, e);
}

// V for tile rows [th0, th1) of one sample padded with its channels last
// (xcl [HP][WP][Cp], whole tiles, winograd4_padding): V[xi][t][c] = (B^T d
// B)[xi], xi = 6 a + k, of channel c's 6x6 patch d at (4 th, 4 tw), t =
// (th - th0) TW + tw. Each xi's plane of V is vstride apart, its tiles Cp
// apart. The patches of a column of tiles overlap by two rows, so the
// tiles go down each column, and the last two rows of one patch, already
// multiplied by B, serve as the first two of the next: close to a third
// fewer loads and row transforms when a group holds several tile rows,
// and the same operations on the same values.
template <typename T>
void winograd4_input_transform(const Conv2dShape& s, const T* xcl, std::int64_t WP, std::int64_t Cp,
                               std::int64_t th0, std::int64_t th1, T* v, std::int64_t vstride) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  const std::int64_t TW = winograd_tile_cols<4>(s);
  for (std::int64_t tw = 0; tw < TW; ++tw)
    for (std::int64_t c0 = 0; c0 < Cp; c0 += W) {
      V r[6][6];  // along each row of the patch (d B), then down the columns
      const T* top = xcl + (4 * th0 * WP + 4 * tw) * Cp + c0;
      winograd4_input_row<T>(top, Cp, r[0]);
      winograd4_input_row<T>(top + WP * Cp, Cp, r[1]);
      for (std::int64_t th = th0; th < th1; ++th) {
        const T* patch = xcl + (4 * th * WP + 4 * tw) * Cp + c0;
        MINIDL_UNROLL(4)
        for (int i = 2; i < 6; ++i) winograd4_input_row<T>(patch + i * WP * Cp, Cp, r[i]);
        T* out = v + ((th - th0) * TW + tw) * Cp + c0;
        MINIDL_UNROLL(6)
        for (int k = 0; k < 6; ++k) {
          const V column[6] = {r[0][k], r[1][k], r[2][k], r[3][k], r[4][k], r[5][k]};
          V e[6];
          winograd4_input_1d<T>(column, e);
          MINIDL_UNROLL(6)
          for (int a = 0; a < 6; ++a) S::store(out + (6 * a + k) * vstride, e[a]);
        }
        MINIDL_UNROLL(6)
        for (int k = 0; k < 6; ++k) {
          r[0][k] = r[4][k];
          r[1][k] = r[5][k];
        }
      }
    }
}

// tile[r][j] = sum over c < C, in order, of a[r * lda + c] * b[c * NR + j]:
// MR rows of a (tiles, lda apart) by NV vectors of b's columns (output
// channels), as direct_tile sums.
template <typename T, int MR, int NV>
void channel_rows_tile(const T* a, std::int64_t lda, const T* b, std::int64_t C, T* tile) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, NR = NV * W;
  V acc[NV][MR];
  MINIDL_UNROLL(16)
  for (int v = 0; v < NV; ++v) {
    MINIDL_UNROLL(16)
    for (int r = 0; r < MR; ++r) acc[v][r] = V{};
  }
  for (std::int64_t c = 0; c < C; ++c, b += NR) {
    V bv[NV];
    MINIDL_UNROLL(16)
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * W);
    MINIDL_UNROLL(16)
    for (int r = 0; r < MR; ++r) {
      const V ar = S::broadcast(a[r * lda + c]);
      MINIDL_UNROLL(16)
      for (int v = 0; v < NV; ++v) acc[v][r] += ar * bv[v];
    }
  }
  MINIDL_UNROLL(16)
  for (int r = 0; r < MR; ++r) {
    MINIDL_UNROLL(16)
    for (int v = 0; v < NV; ++v) S::store(tile + r * NR + v * W, acc[v][r]);
  }
}

// Tile rows [th0, th1) of one sample's output channels [oc_begin, oc_end)
// from their V: the 36 products of MR tiles at a time, running on through
// the tile rows, each tile's output transform put into the group's output
// rows (pixel-major, in thread scratch), which are stored channel-major
// once the sliver is done.
template <typename T, int MR, int NV>
void winograd4_tiles(const Conv2dShape& s, std::int64_t th0, std::int64_t th1, const T* v,
                     std::int64_t vstride, std::int64_t Cp, const T* packed, const T* b, bool relu,
                     std::int64_t oc_begin, std::int64_t oc_end, T* y_n) {
  constexpr int W = Simd<T>::width, NR = NV * W, P = kWinogradPointsOf<4>;
  const std::int64_t TW = winograd_tile_cols<4>(s), NT = (th1 - th0) * TW;
  const std::int64_t OH = s.OH(), OW = s.OW(), plane = OH * OW, row = 4 * TW * NR;
  alignas(64) T m[P * MR * NR];
  // The transposing store reads 8 pixels of a row's last chunk, whole: 8
  // pixels past the group's last row.
  T* out = thread_scratch<T, 8>(4 * (th1 - th0) * row + 8 * NR);
  for (std::int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += NR) {
    const T* u = packed + oc0 * P * s.C;
    for (std::int64_t t0 = 0; t0 < NT; t0 += MR) {
      for (int xi = 0; xi < P; ++xi)
        channel_rows_tile<T, MR, NV>(v + xi * vstride + t0 * Cp, Cp, u + xi * s.C * NR, s.C,
                                     m + xi * MR * NR);
      const std::int64_t tiles = std::min<std::int64_t>(MR, NT - t0);
      for (int r = 0; r < tiles; ++r) {
        const std::int64_t th = (t0 + r) / TW, tw = (t0 + r) % TW;
        T* top = out + 4 * th * row + 4 * tw * NR;
        MINIDL_UNROLL(4)
        for (int vv = 0; vv < NV; ++vv)
          winograd_output_tile<T, MR, NR, 4>(m, r, vv, top + vv * W, row);
      }
    }
    const std::int64_t cols = std::min<std::int64_t>(NR, oc_end - oc0);
    for (std::int64_t oh = 4 * th0; oh < std::min(OH, 4 * th1); ++oh)
      for (std::int64_t q = 0; q < OW; q += 8)
        store_tile_rows<T, 8, NR>(out + (oh - 4 * th0) * row + q * NR,
                                  std::min<std::int64_t>(8, OW - q), cols, b ? b + oc0 : nullptr,
                                  relu, y_n + (oc0 - oc_begin) * plane + oh * OW + q, plane);
  }
}

// Tiles per block: at most as many as fill a block's registers (14 with
// one vector of output channels, 8 with two), as many as make the group's
// tiles in the fewest rows of blocks, each block counted two rows more for
// loading its sliver of U (a 7x7 image has 4 tiles, a 14x14 one 16, a
// 28x28 one 49: blocks of 4, 8 and 7 tiles).
template <typename T, int NV>
void winograd4_rows(const Conv2dShape& s, std::int64_t th0, std::int64_t th1, const T* v,
                    std::int64_t vstride, std::int64_t Cp, const T* packed, const T* b, bool relu,
                    std::int64_t oc_begin, std::int64_t oc_end, T* y_n) {
  const std::int64_t NT = (th1 - th0) * winograd_tile_cols<4>(s);
  const auto cost = [NT](std::int64_t mr) { return (NT + mr - 1) / mr * (mr + 2); };
  std::int64_t best = NV == 1 ? 14 : 8;
  for (const std::int64_t mr : {8, 7, 4})
    if (mr < best && cost(mr) < cost(best)) best = mr;
  const auto run = [&](auto mr) {
    winograd4_tiles<T, decltype(mr)::value, NV>(s, th0, th1, v, vstride, Cp, packed, b, relu,
                                                oc_begin, oc_end, y_n);
  };
  if (best == 14)
    run(std::integral_constant<int, 14>{});
  else if (best == 8)
    run(std::integral_constant<int, 8>{});
  else if (best == 7)
    run(std::integral_constant<int, 7>{});
  else
    run(std::integral_constant<int, 4>{});
}

// The padded sample of F(4x4, 3x3): up to whole tiles, channels last, in
// vectors of channels.
template <typename T>
PaddedPlanes winograd4_padding(const Conv2dShape& s) {
  return {1, 4 * winograd_tile_rows<4>(s) + 2, 4 * winograd_tile_cols<4>(s) + 2,
          round_up(s.C, std::int64_t(Simd<T>::width))};
}

// Tile rows per group: V of a group (36 values per tile and input channel)
// kept to 256 KiB, within the core's L2 cache while every sliver of output
// channels reads it. (128 KiB, as winograd_group_rows, left 128 channels
// at 14x14 one tile row of 4 tiles a group, too few for the blocks.)
template <typename T>
std::int64_t winograd4_group_rows(const Conv2dShape& s) {
  const std::int64_t per_row =
      kWinogradPointsOf<4> * winograd4_padding<T>(s).channels_last * winograd_tile_cols<4>(s);
  return std::clamp<std::int64_t>((256 << 10) / static_cast<std::int64_t>(sizeof(T)) / per_row, 1,
                                  winograd_tile_rows<4>(s));
}

// Vectors of output channels per block: one or two, as the direct tiles
// take; four when a sample has at most 4 tiles (7x7), whose blocks are 4
// tiles tall.
template <typename T>
int winograd4_vectors(const Conv2dShape& s) {
  if (winograd_tile_cols<4>(s) * winograd_tile_rows<4>(s) <= 4 && s.OC >= 8 * Simd<T>::width)
    return 4;
  return direct_vectors<T>(s.OC);
}

// winograd_conv for F(4x4, 3x3), on x or the input made from it (RemadeInput).
template <typename T, typename Taps, typename Output>
void winograd4_conv(const Conv2dShape& s, const T* x, const Taps& taps, const T* b, bool relu,
                    const Output& output, const RemadeInput<T>& remade = {}) {
  constexpr int W = Simd<T>::width, P = kWinogradPointsOf<4>;
  const int nv = winograd4_vectors<T>(s);
  const std::int64_t NR = nv * W;
  const std::int64_t TH = winograd_tile_rows<4>(s), group = winograd4_group_rows<T>(s);
  const PaddedPlanes padding = winograd4_padding<T>(s);
  const std::int64_t WP = padding.WP, Cp = padding.channels_last;
  // The last block reads up to 13 tiles past the group's.
  const std::int64_t vstride = (group * winograd_tile_cols<4>(s) + 16) * Cp;
  const std::int64_t packed_size = P * s.C * round_up(s.OC, NR);
  direct_units(
      x, s.N, s.C, s.H, s.W, padding, 0, s.OC, NR, TH, row_split_flops<T, Output>(s),
      [&](std::int64_t th0, std::int64_t th1) {  // tile row th reads rows 4 th .. 4 th + 5
        return std::pair(4 * th0, 4 * th1 + 2);
      },
      packed_size,
      [&](T* dst, std::int64_t lo, std::int64_t hi) {
        if (nv == 1)
          winograd_pack<T, W, 4>(s.C, lo, hi, winograd4_kernel_transform<T, W>, taps, dst);
        else if (nv == 2)
          winograd_pack<T, 2 * W, 4>(s.C, lo, hi, winograd4_kernel_transform<T, 2 * W>, taps, dst);
        else
          winograd_pack<T, 4 * W, 4>(s.C, lo, hi, winograd4_kernel_transform<T, 4 * W>, taps, dst);
      },
      [&](const DirectUnit& u, const T* xcl, const T* packed) {
        const std::int64_t n = u.n, oc_begin = u.ch_begin, oc_end = u.ch_end;
        T* v = thread_scratch<T, 3>(P * vstride);
        T* y_n = output.planes(n, oc_begin, oc_end - oc_begin);
        for (std::int64_t th0 = u.row_begin; th0 < u.row_end; th0 += group) {
          const std::int64_t th1 = std::min(u.row_end, th0 + group);
          winograd4_input_transform(s, xcl, WP, Cp, th0, th1, v, vstride);
          if (nv == 1)
            winograd4_rows<T, 1>(s, th0, th1, v, vstride, Cp, packed, b, relu, oc_begin, oc_end,
                                 y_n);
          else if (nv == 2)
            winograd4_rows<T, 2>(s, th0, th1, v, vstride, Cp, packed, b, relu, oc_begin, oc_end,
                                 y_n);
          else
            winograd4_tiles<T, 4, 4>(s, th0, th1, v, vstride, Cp, packed, b, relu, oc_begin, oc_end,
                                     y_n);
        }
        output.done(n, oc_begin, oc_end - oc_begin, static_cast<const T*>(y_n));
      },
      remade);
}

// Z for tile rows [th0, th1) of one sample: Z[xi][oc][t] = (A dY A^T)[xi]
// of tile t = (th - th0) * TW + tw, dY the 2x2 block of output channel oc
// at (2 th, 2 tw) of dyp (rows 2 TW apart, planes `plane` apart, zero past
// the output's last row and column, two vectors of slack after the last
// plane). Laid out and spilled as V is (winograd_input_transform), its
// planes zstride apart.
template <typename T>
void winograd_gradient_transform(std::int64_t OC, std::int64_t TW, const T* dyp, std::int64_t plane,
                                 std::int64_t th0, std::int64_t th1, T* z, std::int64_t zstride) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  constexpr auto lanes = std::make_index_sequence<W>{};
  const std::int64_t DP = 2 * TW, NT = (th1 - th0) * TW;
  for (std::int64_t o = 0; o < OC; ++o)
    for (std::int64_t th = th0; th < th1; ++th)
      for (std::int64_t tw0 = 0; tw0 < TW; tw0 += W) {
        const T* top = dyp + o * plane + 2 * th * DP + 2 * tw0;
        const T* bottom = top + DP;
        const V a0 = S::load(top), b0 = S::load(top + W);
        const V a1 = S::load(bottom), b1 = S::load(bottom + W);
        // Down the columns (even and odd), then along the rows.
        V ev[4], od[4];
        winograd_gradient_1d(even_lanes<T>(a0, b0, lanes), even_lanes<T>(a1, b1, lanes), ev);
        winograd_gradient_1d(odd_lanes<T>(a0, b0, lanes), odd_lanes<T>(a1, b1, lanes), od);
        T* out = z + o * NT + (th - th0) * TW + tw0;
        MINIDL_UNROLL(4)
        for (int i = 0; i < 4; ++i) {
          V e[4];
          winograd_gradient_1d(ev[i], od[i], e);
          MINIDL_UNROLL(4)
          for (int j = 0; j < 4; ++j) S::store(out + (4 * i + j) * zstride, e[j]);
        }
      }
}

// A applied to the four values of a column (or row) of a 4x4 block of dY,
// into the six of its gradient (A dY A^T, A the transpose of the A^T of
// winograd4_output_1d). The multiplies by 2, 4 and 8 are exact, so the
// sums round the same wherever the compiler forms FMAs.
template <typename T, typename V>
[[gnu::always_inline]] inline void winograd4_gradient_1d(const V (&y)[4], V (&e)[6]) {
  const V even = y[0] + y[2], odd = y[1] + y[3];
  const V even4 = y[0] + T(4) * y[2], odd4 = T(2) * y[1] + T(8) * y[3];
  e[0] = y[0];
  e[1] = even + odd;
  e[2] = even - odd;
  e[3] = even4 + odd4;
  e[4] = even4 - odd4;
  e[5] = y[3];
}

// G^T applied to six summed gradients m of a column (or row), into the
// three of the kernel's (the transpose of winograd4_kernel_1d's G):
//   G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0;
//          0 -1/6 -1/6 1/6 1/6 1]
// The two products by 1/6 that are then added to are kept from being
// fused into that addition, so that the bits do not depend on the
// optimisation level.
template <typename T, typename V>
[[gnu::always_inline]] inline void winograd4_weight_1d(const V (&m)[6], V (&g)[3]) {
  const V s12 = m[1] + m[2], d12 = m[2] - m[1], s34 = m[3] + m[4], d34 = m[3] - m[4];
  V p0 = (T(0.25) * s34 - s12) * T(1.0 / 6), p2 = (s34 - s12) * T(1.0 / 6);
  hide_from_optimizer(p0);
  hide_from_optimizer(p2);
  g[0] = T(0.25) * m[0] + p0;
  g[1] = (d12 + T(0.5) * d34) * T(1.0 / 6);
  g[2] = p2 + m[5];
}

// G^T M G of one (output, input) channel pair, or of a vector of input
// channels: the P summed products m[xi] (xi = row * (M + 2) + column) into
// the 9 taps g[kh * 3 + kw], along each row and then down the columns.
template <int M, typename T, typename V>
void winograd_weight_tile(const V (&m)[kWinogradPointsOf<M>], V (&g)[9]) {
  constexpr int A = M + 2;
  V rows[A][3];
  MINIDL_UNROLL(6)
  for (int i = 0; i < A; ++i) {
    if constexpr (M == 2) {
      winograd_weight_1d<T>(m[4 * i], m[4 * i + 1], m[4 * i + 2], m[4 * i + 3], rows[i]);
    } else {
      const V row[6] = {m[6 * i],     m[6 * i + 1], m[6 * i + 2],
                        m[6 * i + 3], m[6 * i + 4], m[6 * i + 5]};
      winograd4_weight_1d<T>(row, rows[i]);
    }
  }
  MINIDL_UNROLL(3)
  for (int kw = 0; kw < 3; ++kw) {
    V column[3];
    if constexpr (M == 2) {
      winograd_weight_1d<T>(rows[0][kw], rows[1][kw], rows[2][kw], rows[3][kw], column);
    } else {
      const V in[6] = {rows[0][kw], rows[1][kw], rows[2][kw],
                       rows[3][kw], rows[4][kw], rows[5][kw]};
      winograd4_weight_1d<T>(in, column);
    }
    MINIDL_UNROLL(3)
    for (int kh = 0; kh < 3; ++kh) g[kh * 3 + kw] = column[kh];
  }
}

// A chunk's summed products m (P planes of OC rows, ldm apart, of C) turned into its weight
// gradient, G^T M G for each (output, input) channel pair of output
// channels [o_begin, o_end): part[o * block + tap * C + c], taps kh * 3 +
// kw. Vectors of input channels, then the rest one by one (the same
// operations, so the same bits); written out, as -O2 does not vectorise the
// loop.
template <int M, typename T>
void winograd_weight_transform(std::int64_t o_begin, std::int64_t o_end, std::int64_t OC,
                               std::int64_t C, const T* m, std::int64_t ldm, T* part,
                               std::int64_t block) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, P = kWinogradPointsOf<M>;
  const std::int64_t mplane = OC * ldm;
  for (std::int64_t o = o_begin; o < o_end; ++o) {
    const T* mo = m + o * ldm;
    T* po = part + o * block;
    std::int64_t c = 0;
    for (; c + W <= C; c += W) {
      V in[P], g[9];
      MINIDL_UNROLL(36)
      for (int xi = 0; xi < P; ++xi) in[xi] = S::load(mo + xi * mplane + c);
      winograd_weight_tile<M, T>(in, g);
      MINIDL_UNROLL(9)
      for (int t = 0; t < 9; ++t) S::store(po + t * C + c, g[t]);
    }
    for (; c < C; ++c) {
      T in[P], g[9];
      for (int xi = 0; xi < P; ++xi) in[xi] = mo[xi * mplane + c];
      winograd_weight_tile<M, T>(in, g);
      for (int t = 0; t < 9; ++t) po[t * C + c] = g[t];
    }
  }
}

// Tile rows per group of the weight gradient: V and Z of a group (16
// values per tile and channel, input and output) kept to 384 KiB, within
// the core's L2 cache, in groups of equal size (the depth of each product).
template <typename T>
std::int64_t winograd_weight_group_rows(const Conv2dShape& s) {
  const std::int64_t per_row = kWinogradPoints * (s.C + s.OC) * winograd_tile_cols(s);
  const std::int64_t TH = winograd_tile_rows(s);
  const std::int64_t most =
      std::clamp<std::int64_t>((384 << 10) / static_cast<std::int64_t>(sizeof(T)) / per_row, 1, TH);
  const std::int64_t groups = (TH + most - 1) / most;
  return (TH + groups - 1) / groups;
}

// F(2x2, 3x3)'s products of the samples [n0, n1) of a chunk, output
// channels [o_begin, o_end): m[xi][o][c] = sum over the samples' tiles of
// Z[xi][o][t] V[xi][c][t], sample by sample and group by group of tile
// rows, into m (P planes of OC x C).
template <typename T>
void winograd_weight_products(const Conv2dShape& s, const T* x, const T* dy, std::int64_t n0,
                              std::int64_t n1, std::int64_t o_begin, std::int64_t o_end, T* m) {
  constexpr int W = Simd<T>::width;
  const std::int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, outs = o_end - o_begin;
  const std::int64_t TW = winograd_tile_cols(s), TH = winograd_tile_rows(s);
  const std::int64_t group = winograd_weight_group_rows<T>(s);
  // x padded by 1 and zero past it (the tiles past the output's edge read
  // zeros, which meet zeros of dy); dy in rows of 2 TW, zero past OW and OH.
  const std::int64_t WP = s.W + 2, xplane = (s.H + 2) * WP;
  const std::int64_t xpad_size = s.C * xplane + winograd_slack<T>(s);
  const std::int64_t dplane = 2 * TH * 2 * TW, dyp_size = s.OC * dplane + 2 * W;
  // Each plane of V and Z with room for the vector the last tile row spills.
  const std::int64_t vstride = s.C * group * TW + 2 * W, zstride = s.OC * group * TW + 2 * W;
  T* xpad = thread_scratch<T, 0>(xpad_size);
  T* dyp = thread_scratch<T, 1>(dyp_size);
  std::fill_n(xpad, xpad_size, T(0));
  std::fill_n(dyp, dyp_size, T(0));
  T* v = thread_scratch<T, 2>(kWinogradPoints * vstride);
  T* z = thread_scratch<T, 5>(kWinogradPoints * zstride);
  for (std::int64_t n = n0; n < n1; ++n) {
    const T* dy_n = dy + n * s.OC * P;
    copy_into_padded(x + n * s.C * s.H * s.W, s.C, s.H, s.W, padded_evenly(s.H, s.W, 1), xpad);
    // dyp holds output channels [o_begin, o_end), from its first plane.
    if (dplane == P)  // even sizes: dy's own layout
      std::copy_n(dy_n + o_begin * P, outs * P, dyp);
    else
      for (std::int64_t o = 0; o < outs; ++o)
        for (std::int64_t oh = 0; oh < OH; ++oh)
          copy_row(dy_n + ((o_begin + o) * OH + oh) * OW, OW, dyp + o * dplane + oh * 2 * TW);
    for (std::int64_t th0 = 0; th0 < TH; th0 += group) {
      const std::int64_t th1 = std::min(TH, th0 + group), NT = (th1 - th0) * TW;
      winograd_input_transform(s, xpad, WP, xplane, th0, th1, v, vstride);
      winograd_gradient_transform(outs, TW, dyp, dplane, th0, th1, z, zstride);
      const bool accumulate = n > n0 || th0 > 0;
      for (int xi = 0; xi < kWinogradPoints; ++xi)  // m[xi][o][c] (+)= Z[xi][o][t] V[xi][c][t]
        gemm<T>(outs, s.C, NT, {z + xi * zstride, NT, false}, {v + xi * vstride, NT, true},
                m + (xi * s.OC + o_begin) * s.C, s.C, accumulate);
    }
  }
}

// Z for tile rows [th0, th1) of one sample's dy with its channels last
// (dycl [4 TH][4 TW][OCq], zero past the output's edge): Z[xi][t][o] = (A
// dY A^T)[xi], xi = 6 a + k, of output channel o's 4x4 block at (4 th, 4
// tw), t = (th - th0) TW + tw; planes zstride apart, tiles OCq apart.
template <typename T>
void winograd4_gradient_transform(std::int64_t TW, const T* dycl, std::int64_t OCq,
                                  std::int64_t th0, std::int64_t th1, T* z, std::int64_t zstride) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  const std::int64_t DW = 4 * TW;
  for (std::int64_t th = th0; th < th1; ++th)
    for (std::int64_t tw = 0; tw < TW; ++tw) {
      const T* block = dycl + (4 * th * DW + 4 * tw) * OCq;
      T* out = z + ((th - th0) * TW + tw) * OCq;
      for (std::int64_t o0 = 0; o0 < OCq; o0 += W) {
        V r[4][6];  // along each row of the block, then down the columns
        MINIDL_UNROLL(4)
        for (int i = 0; i < 4; ++i) {
          V y[4];
          MINIDL_UNROLL(4)
          for (int j = 0; j < 4; ++j) y[j] = S::load(block + (i * DW + j) * OCq + o0);
          winograd4_gradient_1d<T>(y, r[i]);
        }
        MINIDL_UNROLL(6)
        for (int k = 0; k < 6; ++k) {
          const V column[4] = {r[0][k], r[1][k], r[2][k], r[3][k]};
          V e[6];
          winograd4_gradient_1d<T>(column, e);
          MINIDL_UNROLL(6)
          for (int a = 0; a < 6; ++a) S::store(out + (6 * a + k) * zstride + o0, e[a]);
        }
      }
    }
}

// Output channels per block of winograd4_tile_sums with NV vectors of
// input channels: 16, 8 or 6 of them (16 to 24 accumulators of AVX-512's
// 32 registers; 6 x 4 was 1.1x faster than 4 x 4 at 64 channels, 8 x 2
// 1.1x faster than 12 x 2 at 32), half as many with AVX's 16 registers.
template <int NV>
inline constexpr int kWinograd4SumRows = (NV == 4   ? 6
                                          : NV == 2 ? 8
                                                    : 16) /
                                         (kSimdBytes == 64 ? 1 : 2);

// m[r][j] (+)= sum over t < K, in order, of z[t * ldz + r] * v[t * ldv +
// j]: MR rows (output channels, z's columns) by NV vectors of v's columns
// (input channels), in registers over the whole depth. Rows past `rows`
// are summed too (from up to MR - 1 values past a row of z) but not stored.
template <typename T, int MR, int NV>
void winograd4_tile_sums(const T* z, std::int64_t ldz, const T* v, std::int64_t ldv, std::int64_t K,
                         T* m, std::int64_t ldm, std::int64_t rows, bool accumulate) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  V acc[MR][NV];
  MINIDL_UNROLL(16)
  for (int r = 0; r < MR; ++r) {
    MINIDL_UNROLL(4)
    for (int j = 0; j < NV; ++j)
      acc[r][j] = accumulate && r < rows ? S::load(m + r * ldm + j * W) : V{};
  }
  for (std::int64_t t = 0; t < K; ++t, z += ldz, v += ldv) {
    V b[NV];
    MINIDL_UNROLL(4)
    for (int j = 0; j < NV; ++j) b[j] = S::load(v + j * W);
    MINIDL_UNROLL(16)
    for (int r = 0; r < MR; ++r) {
      const V a = S::broadcast(z[r]);
      MINIDL_UNROLL(4)
      for (int j = 0; j < NV; ++j) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < rows; ++r) {
    MINIDL_UNROLL(4)
    for (int j = 0; j < NV; ++j) S::store(m + r * ldm + j * W, acc[r][j]);
  }
}

// m[o][c] (+)= sum over t < K of z[t][o] v[t][c] for o < outs and c < Cp
// (z's rows OCq apart, v's Cp apart, m's Cp), in blocks of NV = 4, 2 or 1
// vectors of channels by kWinograd4SumRows<NV> output channels.
template <typename T>
void winograd4_sums(const T* z, std::int64_t OCq, const T* v, std::int64_t Cp, std::int64_t K,
                    std::int64_t outs, T* m, bool accumulate) {
  constexpr int W = Simd<T>::width;
  const auto run = [&](std::int64_t c0, auto nv) {
    constexpr int NV = decltype(nv)::value, MR = kWinograd4SumRows<NV>;
    for (std::int64_t o0 = 0; o0 < outs; o0 += MR)
      winograd4_tile_sums<T, MR, NV>(z + o0, OCq, v + c0, Cp, K, m + o0 * Cp + c0, Cp,
                                     std::min<std::int64_t>(MR, outs - o0), accumulate);
  };
  std::int64_t c0 = 0;
  for (; c0 + 4 * W <= Cp; c0 += 4 * W) run(c0, std::integral_constant<int, 4>{});
  for (; c0 + 2 * W <= Cp; c0 += 2 * W) run(c0, std::integral_constant<int, 2>{});
  for (; c0 < Cp; c0 += W) run(c0, std::integral_constant<int, 1>{});
}

// Groups of the F(4x4, 3x3) weight gradient: the tile rows of a chunk's
// samples, one after the other, in groups of equal size whose V and Z
// (36 values per tile and channel, input and output) are kept to 384 KiB,
// within the core's L2 cache. A group may span samples, so that the small
// planes (2 tile rows at 7x7) still give each product the depth of
// several. From the shape alone, so that every thread sums in the same
// groups.
template <typename T>
std::int64_t winograd4_weight_group_rows(const Conv2dShape& s) {
  constexpr std::int64_t W = Simd<T>::width;
  const std::int64_t per_row =
      kWinogradPointsOf<4> * (round_up(s.C, W) + round_up(s.OC, W)) * winograd_tile_cols<4>(s);
  const std::int64_t rows = kConvWeightChunk * winograd_tile_rows<4>(s);
  const std::int64_t most = std::clamp<std::int64_t>(
      (384 << 10) / static_cast<std::int64_t>(sizeof(T)) / per_row, 1, rows);
  const std::int64_t groups = (rows + most - 1) / most;
  return (rows + groups - 1) / groups;
}

// winograd_weight_products for F(4x4, 3x3), into m [36][OC][Cp] (Cp the
// input channels rounded up to vectors): x (or the input remade from it)
// and dy with their channels last, up to whole tiles, transformed group by
// group of the chunk's tile rows, and m[xi][o][c] = sum over the tiles of
// Z[xi][t][o] V[xi][t][c].
template <typename T>
void winograd4_weight_products(const Conv2dShape& s, const T* x, const RemadeInput<T>& remade,
                               const T* dy, std::int64_t n0, std::int64_t n1, std::int64_t o_begin,
                               std::int64_t o_end, T* m) {
  constexpr int W = Simd<T>::width, P = kWinogradPointsOf<4>;
  const std::int64_t OH = s.OH(), OW = s.OW(), outs = o_end - o_begin;
  const std::int64_t TW = winograd_tile_cols<4>(s), TH = winograd_tile_rows<4>(s);
  const std::int64_t group = winograd4_weight_group_rows<T>(s), rows = (n1 - n0) * TH;
  const PaddedPlanes padding = winograd4_padding<T>(s);
  const std::int64_t Cp = padding.channels_last, OCq = round_up(outs, std::int64_t(W));
  const std::int64_t xcl_size = padding.size(s.C), dycl_size = 4 * TH * 4 * TW * OCq;
  // Z's planes with room for the values past the last tile that the sums'
  // unstored rows read.
  constexpr std::int64_t slack = kWinograd4SumRows<1>;
  const std::int64_t vstride = group * TW * Cp, zstride = group * TW * OCq + slack;
  T* xcl = thread_scratch<T, 0>(xcl_size);
  T* dycl = thread_scratch<T, 1>(dycl_size);
  std::fill_n(xcl, xcl_size, T(0));
  std::fill_n(dycl, dycl_size, T(0));
  T* v = thread_scratch<T, 2>(P * vstride);
  T* z = thread_scratch<T, 5>(P * zstride);
  std::int64_t padded = -1;  // the sample in xcl and dycl
  for (std::int64_t q0 = 0; q0 < rows; q0 += group) {
    const std::int64_t q1 = std::min(rows, q0 + group);
    for (std::int64_t q = q0; q < q1;) {  // the group's rows, sample by sample
      const std::int64_t n = n0 + q / TH, th0 = q % TH, th1 = std::min(TH, th0 + (q1 - q));
      if (n != padded) {
        pad_sample(x + n * s.C * s.H * s.W, s.C, s.H, s.W, padding, xcl, remade);
        channels_last_sample(dy + (n * s.OC + o_begin) * OH * OW, outs, OH, OW, 0, 4 * TW, OCq,
                             dycl);
        padded = n;
      }
      const std::int64_t tile = (q - q0) * TW;
      winograd4_input_transform(s, xcl, padding.WP, Cp, th0, th1, v + tile * Cp, vstride);
      winograd4_gradient_transform(TW, dycl, OCq, th0, th1, z + tile * OCq, zstride);
      q += th1 - th0;
    }
    // The transforms wrote the group's tiles; the values just past them
    // are read, not used, by the sums' unstored rows: zeros, not whatever
    // the scratch held.
    const std::int64_t tiles = (q1 - q0) * TW;
    for (int xi = 0; xi < P; ++xi) {
      std::fill_n(z + xi * zstride + tiles * OCq, slack, T(0));
      winograd4_sums(z + xi * zstride, OCq, v + xi * vstride, Cp, tiles, outs,
                     m + (xi * s.OC + o_begin) * Cp, q0 > 0);
    }
  }
}

}  // namespace detail

// conv(x, w) + b (b may be null; then max(y, 0) with relu) by F(M x M,
// 3x3), M = 2 or 4, handed to the output sink one sample (or share of its
// channels) at a time, as conv2d_forward_direct_samples does. F(4x4, 3x3)
// may read its input made from x (RemadeInput).
template <int M, typename T, typename Output>
void conv2d_forward_winograd_tiles(const Conv2dShape& s, const T* x, const T* w, const T* b,
                                   bool relu, const Output& output,
                                   const RemadeInput<T>& remade = {}) {
  static_assert(M == 2 || M == 4, "Winograd's F(2x2, 3x3) or F(4x4, 3x3)");
  if (M == 2 && remade.a) fail("conv2d forward: F(2x2, 3x3) cannot make its input again");
  // Output channel oc0 + j's nine taps of channel c are a row of w; the
  // rows of a sliver are transposed in blocks, not gathered one by one.
  const auto taps = [&](std::int64_t oc0, std::int64_t c, std::int64_t NR, T* g) {
    detail::pack_rows_k_major(w + (oc0 * s.C + c) * 9, s.C * 9, std::min(NR, s.OC - oc0), NR, 9, g);
  };
  if constexpr (M == 2)
    detail::winograd_conv(s, x, taps, b, relu, output);
  else
    detail::winograd4_conv(s, x, taps, b, relu, output, remade);
}

// dx = dL/dx (overwritten) by F(M x M, 3x3): the convolution of dy
// (padding 1) with the kernel flipped and its channel axes swapped.
template <int M, typename T>
void conv2d_backward_data_winograd_tiles(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  static_assert(M == 2 || M == 4, "Winograd's F(2x2, 3x3) or F(4x4, 3x3)");
  const auto taps = [&](std::int64_t c0, std::int64_t o, std::int64_t NR, T* g) {
    detail::flipped_taps_by_channel(w, s, o, c0, NR, g);
  };
  const StoredOutput<T> output{dx, s.C, s.H * s.W};
  const Conv2dShape t = detail::transposed_conv_shape(s);
  if constexpr (M == 2)
    detail::winograd_conv(t, dy, taps, static_cast<const T*>(nullptr), false, output);
  else
    detail::winograd4_conv(t, dy, taps, static_cast<const T*>(nullptr), false, output);
}

// The forward pass stored whole and the input gradient, F(2x2, 3x3), with
// the signature of the other kernels' (conv2d.hpp dispatches to them).
template <typename T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                             T* workspace, bool relu = false) {
  (void)workspace;
  conv2d_forward_winograd_tiles<2>(s, x, w, b, relu, StoredOutput<T>{y, s.OC, s.OH() * s.OW()});
}
template <typename T>
void conv2d_backward_data_winograd(const Conv2dShape& s, const T* dy, const T* w, T* dx,
                                   T* workspace) {
  (void)workspace;
  conv2d_backward_data_winograd_tiles<2>(s, dy, w, dx);
}

// The same two for F(4x4, 3x3).
template <typename T>
void conv2d_forward_winograd4(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                              T* workspace, bool relu = false) {
  (void)workspace;
  conv2d_forward_winograd_tiles<4>(s, x, w, b, relu, StoredOutput<T>{y, s.OC, s.OH() * s.OW()});
}
template <typename T>
void conv2d_backward_data_winograd4(const Conv2dShape& s, const T* dy, const T* w, T* dx,
                                    T* workspace) {
  (void)workspace;
  conv2d_backward_data_winograd_tiles<4>(s, dy, w, dx);
}

// Elements of the partials conv2d_backward_weights_winograd takes: one
// weight gradient per chunk of kConvWeightChunk samples, taps before
// channels, and the bias slots.
template <typename T>
std::int64_t conv2d_winograd_partials_size(const Conv2dShape& s) {
  return (s.N + kConvWeightChunk - 1) / kConvWeightChunk * s.OC * (9 * s.C + kBiasSlot<T>);
}

// dw = dL/dw, db = dL/db (both overwritten; db may be null) by F(M x M,
// 3x3). `partials` is scratch of conv2d_winograd_partials_size<T>(s)
// elements. With `carried`, dw and db hold on entry the sums over the
// samples of the processes before this one, which this batch's chunks
// continue (as the direct kernel's do). F(4x4, 3x3) may read its input
// remade from x (RemadeInput).
template <int M, typename T, typename Wait = NoWait>
void conv2d_backward_weights_winograd_tiles_continue(const Conv2dShape& s, const T* x, const T* dy,
                                                     T* dw, T* db, T* partials, bool carried,
                                                     const Wait& wait_for_carry = Wait{},
                                                     const RemadeInput<T>& remade = {}) {
  static_assert(M == 2 || M == 4, "Winograd's F(2x2, 3x3) or F(4x4, 3x3)");
  if (M == 2 && remade.a) fail("conv2d backward-weights: F(2x2, 3x3) cannot remake its input");
  const std::int64_t P = s.OH() * s.OW();
  const std::int64_t weights = 9 * s.C, block = weights + kBiasSlot<T>, part_size = s.OC * block;
  const std::int64_t chunks = (s.N + kConvWeightChunk - 1) / kConvWeightChunk;
  // Output channels [o_begin, o_end) of a chunk's partial: all of them, or a
  // thread's share of a batch too small to give every thread a chunk.
  auto chunk_gradient = [&](std::int64_t chunk, T* part, std::int64_t o_begin, std::int64_t o_end) {
    // Slots 3 (the bias sums), 4 (sum_partials_in_order's) and 9 (the
    // partials of layers/conv2d.hpp) are in use here; the others are free.
    BiasSum<T>* bias = chunk_bias_sums<T>(s.OC);
    // m's rows: C products for F(2x2, 3x3), C rounded up to vectors for F(4x4, 3x3).
    const std::int64_t ldm = M == 2 ? s.C : round_up(s.C, std::int64_t(Simd<T>::width));
    T* m = thread_scratch<T, 6>(detail::kWinogradPointsOf<M> * s.OC * ldm);
    const std::int64_t n0 = chunk * kConvWeightChunk, n1 = std::min(s.N, n0 + kConvWeightChunk);
    if constexpr (M == 2)
      detail::winograd_weight_products(s, x, dy, n0, n1, o_begin, o_end, m);
    else
      detail::winograd4_weight_products(s, x, remade, dy, n0, n1, o_begin, o_end, m);
    for (std::int64_t n = n0; n < n1; ++n)
      for (std::int64_t o = o_begin; o < o_end; ++o) bias[o].add_plane(dy + (n * s.OC + o) * P, P);
    detail::winograd_weight_transform<M>(o_begin, o_end, s.OC, s.C, m, ldm, part, block);
    for (std::int64_t o = o_begin; o < o_end; ++o)
      store_bias_slot(bias[o], part + o * block + weights);
  };
  // Summed over the chunks one output channel at a time, into PyTorch's layout.
  sum_partials_in_order_shared(
      chunks, part_size, s.OC, block, gemm_rows<T>(), partials, chunk_gradient,
      [&](std::int64_t o, const T* sum) {
        T* row = dw + o * weights;
        for (std::int64_t c = 0; c < s.C; ++c)
          for (int t = 0; t < 9; ++t) row[c * 9 + t] = sum[t * s.C + c];
        if (db) db[o] = sum[weights];
      },
      [&](std::int64_t o, T* sum) {  // the carry, taps before channels
        if (!carried) return false;
        if (o == 0) wait_for_carry();
        const T* row = dw + o * weights;
        for (std::int64_t c = 0; c < s.C; ++c)
          for (int t = 0; t < 9; ++t) sum[t * s.C + c] = row[c * 9 + t];
        load_bias_slot(db, o, sum + weights);
        return true;
      });
}

// The same for F(2x2, 3x3) and F(4x4, 3x3), with a carry and without one
// (one process, or the first of several).
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_winograd_continue(const Conv2dShape& s, const T* x, const T* dy, T* dw,
                                               T* db, T* partials, bool carried,
                                               const Wait& wait_for_carry = Wait{}) {
  conv2d_backward_weights_winograd_tiles_continue<2>(s, x, dy, dw, db, partials, carried,
                                                     wait_for_carry);
}
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_winograd4_continue(const Conv2dShape& s, const T* x, const T* dy,
                                                T* dw, T* db, T* partials, bool carried,
                                                const Wait& wait_for_carry = Wait{},
                                                const RemadeInput<T>& remade = {}) {
  conv2d_backward_weights_winograd_tiles_continue<4>(s, x, dy, dw, db, partials, carried,
                                                     wait_for_carry, remade);
}
template <typename T>
void conv2d_backward_weights_winograd(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                                      T* partials) {
  conv2d_backward_weights_winograd_tiles_continue<2>(s, x, dy, dw, db, partials, false);
}
template <typename T>
void conv2d_backward_weights_winograd4(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                                       T* partials) {
  conv2d_backward_weights_winograd_tiles_continue<4>(s, x, dy, dw, db, partials, false);
}

}  // namespace minidl::kernels
