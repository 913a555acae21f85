// minidl/kernels/conv2d_pointwise.hpp - 1x1 convolutions as one matrix product per sample.
//
// A 1x1 convolution multiplies the channels of every pixel it reads by the
// same OC x C matrix W. With a sample's channel planes as the rows of a
// C x P matrix X (the layout the network keeps), its output planes are the
// rows of Y = W X, its input gradient the rows of W^T dY, and its weight
// gradient the sum over the samples of dY X^T (left to the direct kernels,
// which sum it faster). At stride s the kernel reads one pixel in s x s:
// those pixels, gathered first, are X, and the input gradient goes back to
// them, with zeros between. The direct weight gradient gathers them with
// pointwise_gather too.
//
// The direct kernels (conv2d_direct.hpp) tile kDirectRows pixels of one
// output row by vectors of output channels: on an output plane narrower than
// that (a 7x7 input at stride 2 gives 4x4) most of each tile is padding.
// Here a tile is kGemmRows output channels by one or two vectors of pixels,
// taken across the rows of the plane and stored as rows: full tiles on any
// plane. Both products sum over the channels in order, each output by one
// thread: the same bits for any number of threads and any split of the
// batch. conv2d.hpp chooses them for such narrow planes, and for small
// channel counts on wider ones (conv2d_pointwise_forward_pays); elsewhere
// the shape sweep had the direct kernels level or faster.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/gemm.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// A 1x1 kernel without padding, at any stride.
inline bool conv2d_pointwise_applies(const Conv2dShape& s) {
  return s.KH == 1 && s.KW == 1 && s.pad == 0 && s.stride >= 1;
}

namespace detail {

// Output channels (rows of W, or of W^T in the input gradient) of a tile.
inline constexpr int kPointwiseRows = kGemmRows;  // the rows of pack_a_whole's slivers
// Pixels a unit of the forward and input-gradient passes takes, about: the
// gathered pixels of its rows stay in L2 while every sliver of W meets them.
inline constexpr std::int64_t kPointwiseBlock = 512;
// Elements a gather may write past its rows (pointwise_gather).
template <typename T>
inline constexpr std::int64_t kPointwiseGatherSlack = Simd<T>::width;

// Output rows per unit of work: whole rows of the output plane, so that the
// units of one sample read, and at stride > 1 write the input gradient of,
// disjoint rows of the input.
inline std::int64_t pointwise_unit_rows(const Conv2dShape& s) {
  return std::max<std::int64_t>(1, kPointwiseBlock / s.OW());
}

// Runs unit(n, oh0, oh1) for every sample n and group of output rows
// [oh0, oh1), the units spread over the threads (a sample's units next to
// each other).
template <typename Unit>
void for_each_pointwise_unit(const Conv2dShape& s, const Unit& unit) {
  const std::int64_t rows = pointwise_unit_rows(s), groups = (s.OH() + rows - 1) / rows;
  parallel_for(s.N * groups, [&](std::int64_t u) {
    const std::int64_t n = u / groups, oh0 = u % groups * rows;
    unit(n, oh0, std::min(s.OH(), oh0 + rows));
  });
}

// Elements of W packed for either product by pack_a_whole (gemm.hpp), in
// slivers of kPointwiseRows rows, k-major (forward: W, OC x C; input
// gradient: W^T, C x OC).
template <typename T>
std::int64_t pointwise_packed_size(const Conv2dShape& s) {
  return std::max(packed_a_size<T>(s.OC, s.C), packed_a_size<T>(s.C, s.OC));
}

// y[r][j] = sum over k of a[k * R + r] b[k * ldb + j] (+ bias[r]), for r <
// rows and j < cols of one tile: a is one packed sliver, b is read in whole
// vectors, NV of them per row (the caller pads a ragged end). With relu,
// max(y, 0) as relu_forward computes it.
template <typename T, int NV>
void pointwise_tile(std::int64_t K, const T* a, const T* b, std::int64_t ldb, const T* bias,
                    bool relu, T* y, std::int64_t ldy, int rows, int cols) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width, R = kPointwiseRows;
  V acc[R][NV];
  MINIDL_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    MINIDL_UNROLL(4)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  }
  for (std::int64_t k = 0; k < K; ++k) {
    V bv[NV];
    MINIDL_UNROLL(4)
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + k * ldb + v * W);
    MINIDL_UNROLL(16)
    for (int r = 0; r < R; ++r) {
      const V ar = S::broadcast(a[k * R + r]);
      MINIDL_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc[r][v] += ar * bv[v];
    }
  }
  MINIDL_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    const V add = bias && r < rows ? S::broadcast(bias[r]) : V{};
    MINIDL_UNROLL(4)
    for (int v = 0; v < NV; ++v) {
      if (bias) acc[r][v] += add;
      if (relu) acc[r][v] = S::positive_or_zero(acc[r][v], acc[r][v]);
    }
  }
  if (rows == R && cols == NV * W) {
    MINIDL_UNROLL(16)
    for (int r = 0; r < R; ++r) {
      MINIDL_UNROLL(4)
      for (int v = 0; v < NV; ++v) S::store(y + r * ldy + v * W, acc[r][v]);
    }
    return;
  }
  alignas(64) T tile[R][NV * W];
  MINIDL_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    MINIDL_UNROLL(4)
    for (int v = 0; v < NV; ++v) S::store(tile[r] + v * W, acc[r][v]);
  }
  for (int r = 0; r < rows; ++r) std::copy_n(tile[r], cols, y + r * ldy);
}

// y (M x cols, rows ldy apart) = A B (+ bias, then max(., 0) with relu):
// A packed by pack_a_whole (M x K), B's K rows ldb apart. Two vectors of
// columns at a time, each block meeting every sliver of A while it is in
// L1; a last vector, whole or padded with zeros, after them.
template <typename T>
void pointwise_product(std::int64_t M, std::int64_t K, const T* packed, const T* b,
                       std::int64_t ldb, std::int64_t cols, const T* bias, bool relu, T* y,
                       std::int64_t ldy) {
  constexpr int W = Simd<T>::width, R = kPointwiseRows;
  auto slivers = [&](auto nv, const T* bj, std::int64_t ld, std::int64_t j0, int width) {
    for (std::int64_t i0 = 0; i0 < M; i0 += R)
      pointwise_tile<T, decltype(nv)::value>(
          K, packed + i0 * K, bj, ld, bias ? bias + i0 : nullptr, relu, y + i0 * ldy + j0, ldy,
          static_cast<int>(std::min<std::int64_t>(R, M - i0)), width);
  };
  std::int64_t j0 = 0;
  for (; j0 + 2 * W <= cols; j0 += 2 * W)
    slivers(std::integral_constant<int, 2>{}, b + j0, ldb, j0, 2 * W);
  if (j0 + W <= cols) {
    slivers(std::integral_constant<int, 1>{}, b + j0, ldb, j0, W);
    j0 += W;
  }
  if (j0 < cols) {  // the ragged end, copied into whole vectors
    const std::int64_t rest = cols - j0;
    T* pad = thread_scratch<T, 2>(K * W);
    for (std::int64_t k = 0; k < K; ++k) {
      std::copy_n(b + k * ldb + j0, rest, pad + k * W);
      std::fill(pad + k * W + rest, pad + (k + 1) * W, T(0));
    }
    slivers(std::integral_constant<int, 1>{}, pad, W, j0, static_cast<int>(rest));
  }
}

// The even elements of the 2W elements at p, as one vector.
template <typename T, std::size_t... L>
typename Simd<T>::vec even_elements(const T* p, std::index_sequence<L...>) {
  using S = Simd<T>;
  return __builtin_shufflevector(S::load(p), S::load(p + S::width), static_cast<int>(2 * L)...);
}

// The pixels of output rows [oh0, oh1) a stride-s 1x1 kernel reads from one
// sample x_n, into xs: C rows of (oh1 - oh0) x OW, contiguous, and up to a
// vector of slack after them (kPointwiseGatherSlack). At stride 2 each row
// goes a vector at a time, the last one whole: what it writes past the row
// the next row overwrites, or the slack takes, and what it reads past the
// row is the sample's next row, never past the sample's end.
template <typename T>
void pointwise_gather(const Conv2dShape& s, const T* x_n, std::int64_t oh0, std::int64_t oh1,
                      T* xs) {
  using S = Simd<T>;
  constexpr int W = S::width;
  const std::int64_t OW = s.OW(), st = s.stride;
  const std::int64_t sample = s.C * s.H * s.W;
  for (std::int64_t c = 0; c < s.C; ++c)
    for (std::int64_t oh = oh0; oh < oh1; ++oh, xs += OW) {
      const std::int64_t start = (c * s.H + oh * st) * s.W;  // the row, from x_n
      const T* row = x_n + start;
      std::int64_t ow = 0;
      if (st == 2)
        for (; ow < OW && start + 2 * (ow + W) <= sample; ow += W)
          S::store(xs + ow, even_elements<T>(row + 2 * ow, std::make_index_sequence<W>{}));
      for (; ow < OW; ++ow) xs[ow] = row[ow * st];
    }
}

// row[2 i] = src[i] for i < count; the elements between are left as they
// are. With AVX-512, eight values a store: an expanding load puts them in
// the even lanes, and a store masked to those lanes writes them.
#if defined(__AVX512F__)
inline constexpr bool kStoreEveryOtherVectorized = true;  // for float
#else
inline constexpr bool kStoreEveryOtherVectorized = false;
#endif
template <typename T>
void store_every_other(const T* src, std::int64_t count, T* row) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (std::int64_t i = 0; i < count; i += 8) {
      const auto n = static_cast<unsigned>(std::min<std::int64_t>(8, count - i));
      const auto even = static_cast<__mmask16>(0x5555u & ((1u << (2 * n)) - 1));
      _mm512_mask_storeu_ps(row + 2 * i, even, _mm512_maskz_expandloadu_ps(even, src + i));
    }
    return;
  }
#endif
  for (std::int64_t i = 0; i < count; ++i) row[2 * i] = src[i];
}

// The input gradient of output rows [oh0, oh1) of one sample, z (C rows of
// (oh1 - oh0) x OW), written to the pixels a stride-s kernel reads, and
// zeros to every other pixel of input rows [s oh0, s oh1) (to the last
// input row for the last group).
template <typename T>
void pointwise_scatter(const Conv2dShape& s, const T* z, std::int64_t oh0, std::int64_t oh1,
                       T* dx_n) {
  const std::int64_t OW = s.OW(), st = s.stride, rows = oh1 - oh0;
  const std::int64_t ih0 = oh0 * st, ih_end = oh1 == s.OH() ? s.H : oh1 * st;
  for (std::int64_t c = 0; c < s.C; ++c) {
    T* plane = dx_n + c * s.H * s.W;
    std::fill(plane + ih0 * s.W, plane + ih_end * s.W, T(0));  // the rows are contiguous
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
      const T* src = z + (c * rows + oh - oh0) * OW;
      T* row = plane + oh * st * s.W;
      if (st == 2)
        store_every_other(src, OW, row);
      else
        for (std::int64_t ow = 0; ow < OW; ++ow) row[ow * st] = src[ow];
    }
  }
}

}  // namespace detail

// Elements of the workspace the forward and input-gradient passes take: W packed.
template <typename T>
std::int64_t conv2d_pointwise_workspace_size(const Conv2dShape& s) {
  return detail::pointwise_packed_size<T>(s);
}

// y = conv(x, w) + b (b may be null; then max(y, 0) with relu) for a 1x1
// kernel (conv2d_pointwise_applies). workspace: conv2d_pointwise_workspace_size.
template <typename T>
void conv2d_forward_pointwise(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y,
                              T* workspace, bool relu = false) {
  const std::int64_t C = s.C, OW = s.OW(), P = s.OH() * OW;
  pack_a_whole<T>({w, C, false}, s.OC, C, workspace);
  detail::for_each_pointwise_unit(s, [&](std::int64_t n, std::int64_t oh0, std::int64_t oh1) {
    const T* x_n = x + n * C * s.H * s.W;
    const std::int64_t cols = (oh1 - oh0) * OW;
    const T* pixels = x_n + oh0 * OW;  // stride 1: the rows in place, H x W = P apart
    std::int64_t ld = P;
    if (s.stride > 1) {
      T* xs = thread_scratch<T, 0>(C * cols + detail::kPointwiseGatherSlack<T>);
      detail::pointwise_gather(s, x_n, oh0, oh1, xs);
      pixels = xs;
      ld = cols;
    }
    detail::pointwise_product(s.OC, C, workspace, pixels, ld, cols, b, relu,
                              y + n * s.OC * P + oh0 * OW, P);
  });
}

// dx = dL/dx (overwritten) for a 1x1 kernel: W^T dy at the pixels it reads,
// zeros elsewhere. workspace: conv2d_pointwise_workspace_size.
template <typename T>
void conv2d_backward_data_pointwise(const Conv2dShape& s, const T* dy, const T* w, T* dx,
                                    T* workspace) {
  const std::int64_t C = s.C, OW = s.OW(), P = s.OH() * OW, HW = s.H * s.W;
  pack_a_whole<T>({w, C, true}, C, s.OC, workspace);  // W^T
  detail::for_each_pointwise_unit(s, [&](std::int64_t n, std::int64_t oh0, std::int64_t oh1) {
    const T* dy_n = dy + n * s.OC * P + oh0 * OW;
    const std::int64_t cols = (oh1 - oh0) * OW;
    if (s.stride == 1) {
      detail::pointwise_product(C, s.OC, workspace, dy_n, P, cols, static_cast<const T*>(nullptr),
                                false, dx + n * C * HW + oh0 * OW, HW);
      return;
    }
    T* z = thread_scratch<T, 1>(C * cols);
    detail::pointwise_product(C, s.OC, workspace, dy_n, P, cols, static_cast<const T*>(nullptr),
                              false, z, cols);
    detail::pointwise_scatter(s, z, oh0, oh1, dx + n * C * HW);
  });
}

}  // namespace minidl::kernels
