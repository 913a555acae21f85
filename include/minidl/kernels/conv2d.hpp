// minidl/kernels/conv2d.hpp - 2-D convolution forward, backward-data, backward-weights.
//
// Layouts are PyTorch's (see conv2d_naive.hpp, which also holds the naive
// references). Each pass picks its kernel from the shape. The square case
// (one group, no dilation, square kernel, one stride and padding for both
// axes: Conv2dShape) has the classic kernels: for stride 1 and 2 the direct
// kernels of conv2d_direct.hpp, or with few input channels the row kernels
// of conv2d_rows.hpp; for 3x3 "same" convolutions of enough channels
// Winograd's (conv2d_winograd.hpp); for 1x1 kernels on narrow output planes
// or with few channels the matrix products of conv2d_pointwise.hpp; the
// im2col kernels of conv2d_im2col.hpp otherwise.
// Any other convolution (Conv2dGeometry) runs the depthwise kernels of
// conv2d_depthwise.hpp when each input channel is its own group, the
// general kernels of conv2d_general.hpp otherwise. All are checked against
// the naive references in the tests.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/kernels/conv2d_depthwise.hpp"
#include "minidl/kernels/conv2d_direct.hpp"
#include "minidl/kernels/conv2d_general.hpp"
#include "minidl/kernels/conv2d_im2col.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/conv2d_pointwise.hpp"
#include "minidl/kernels/conv2d_rows.hpp"
#include "minidl/kernels/conv2d_winograd.hpp"

namespace minidl::kernels {

// The choosers below follow benchmarks/shape_sweep, which times every kernel
// that applies in each pass over a grid of shapes (docs/benchmarks.md, "The
// shape sweep").
//
// The direct weight gradient pads the input channels to half a vector, a
// whole one or whole tiles, and the output channels to whole tiles. Past
// three times the channels in padding (1 or 2 input channels, or 6 output
// channels in tiles of 8) the rows kernel takes 3x3 and 5x5 kernels and the
// im2col kernel the rest. At stride 2, where the rows kernel does not apply,
// direct beats im2col with 1 to 3 input channels despite its padding
// (1.4-4.9x for 3x3 to 7x7 kernels at 28x28, batch 1 and 64, into 6 or 16
// output channels), except for 1 input channel into more than half a vector
// of output channels, where im2col is as fast or up to 1.6x faster.
template <typename T>
bool conv2d_weights_direct(const Conv2dShape& s) {
  if (!conv2d_direct_strided_applies(s)) return false;
  const bool padding_pays = detail::padded_in_channels<T>(s) <= 3 * s.C &&
                            4 * detail::padded_out_channels<T>(s) <= 5 * s.OC;
  const bool one_into_many = s.C == 1 && 2 * s.OC > Simd<T>::width;
  return padding_pays || (s.stride == 2 && s.C <= 3 && !one_into_many);
}

// The direct forward tile ends with a transposed store of its MR x NR
// results; with fewer than 16 taps to sum (conv1 has 9) that store
// dominates, and the rows kernel is as fast (or, for rows narrower than a
// vector, im2col is faster). From 16 taps (a 1x1 convolution of 16 channels)
// direct is the faster one, and at stride 2, where the rows kernel does not
// apply, it is faster than im2col at any count.
inline bool conv2d_forward_direct_pays(const Conv2dShape& s) {
  return conv2d_direct_strided_applies(s) && (s.stride == 2 || s.col_rows() >= 16);
}

// Winograd's F(4x4, 3x3) does 4 times fewer multiply-adds than the direct
// kernel (1.8 times fewer than F(2x2, 3x3)), with its input transform
// along vectors of channels, so that planes of any size fill the lanes. In
// shape_sweep (2 threads, batch 64, 16 to 256 channels, 7x7 to 56x56) it
// was 1.06-1.94x faster than the faster of direct and F(2x2, 3x3) in both
// passes; at batch 1 1.0-1.4x from 14x14 up, and 0.64-0.81x at 7x7, where
// each thread's share of the transformed kernel costs more than its four
// tiles a sample. With fewer than 16 input channels (or a vector of output
// channels) there is too little to sum for its transforms, as for F(2x2,
// 3x3). It takes the place of F(2x2, 3x3) in both passes, which had been
// chosen on rows of at least 7 tiles with more than a vector of output
// channels (docs/benchmarks.md) and stays for a caller who asks for it.
template <typename T>
bool conv2d_winograd4_pays(const Conv2dShape& s) {
  return conv2d_winograd_applies(s) && s.C >= 16 && s.OC >= Simd<T>::width;
}

// F(4x4, 3x3)'s weight gradient sums 36 products per tile and channel pair
// for 16 pixels (F(2x2, 3x3): 16 for 4), over all of a chunk's tiles in
// registers (winograd4_tile_sums), after transforms of 36 values per tile
// for x and dy each. In shape_sweep (2 threads, 3x3 stride 1, batch 16 to
// 256, 43 timings of the shapes it takes) it was 0.84-2.05x the speed of
// the faster of direct and F(2x2, 3x3), median 1.25x, below 1x in 3 (7x7
// planes at 16 and 32 input channels). 16 into 16 channels on planes of
// fewer than 7 tiles a row stay direct (0.74-1.11x), as does anything
// above 64 channels (0.64-1.16x), where the products m (36 x C x OC) no
// longer stay in cache between the groups. At batch 1 (one chunk of
// samples, whose output channels the threads share) it was 0.72-1.66x,
// median 0.94x; the choice does not depend on the batch, so that any split
// of a batch between processes runs the same kernels.
// Where F(2x2, 3x3)'s weight gradient pays (below), it keeps the shape:
// F(4x4, 3x3) was only 0.99-1.45x faster there, and it rounds 4-11 times
// more (the MNIST CNN's conv2 after three Adam steps in float had 23 of
// 18,432 weights off PyTorch's by more than 1e-4 of their scale, against
// 8, where tests/test_parity.cpp allows 18).
template <typename T>
bool conv2d_winograd4_weights_pays(const Conv2dShape& s) {
  return conv2d_winograd4_pays<T>(s) && std::max(s.C, s.OC) <= 64 &&
         (s.C * s.OC > 16 * 16 || detail::winograd_tile_cols<4>(s) >= 7);
}

// Winograd's weight gradient transforms both x and dy (16 values per tile
// and channel each) for products in which each transformed value meets
// C OC / (C + OC) multiply-adds. Above 16 (from 32 into 64 channels) on
// rows of at least kDirectRows tiles it was 1.22-1.41x faster than direct
// in shape_sweep (batch 1 and 64); at 16 (32 into 32) the sweep had it
// 1.06-1.23x faster but a program timing the two kernels alone had it 5%
// slower at 14x14, so it stays direct there; at 8 (16 channels) it was
// 0.35-0.65x, and with 4 tiles a row (7x7) 0.76-1.22x.
template <typename T>
bool conv2d_winograd_weights_pays(const Conv2dShape& s) {
  return conv2d_winograd_applies(s) && s.C * s.OC > 16 * (s.C + s.OC) &&
         detail::winograd_tile_cols(s) >= detail::kDirectRows;
}

// The pointwise products (conv2d_pointwise.hpp) against the direct kernels
// for a 1x1 kernel, by shape_sweep (2 threads, medians of 5 runs of
// `--filter conv_k1_ --reps 7`, time direct / time pointwise; above 1 the
// products are faster). They give the same bits, so the choice is one of
// speed alone:
// - output rows narrower than a direct tile (a 7x7 input at stride 2 gives
//   rows of 4), 32 to 256 channels: forward 1.39-1.67 and input gradient
//   1.53-1.75 at batch 64, 0.97-2.01 and 1.72-1.91 at batch 1; both passes;
// - stride 1, at most 32 channels in and out and a sample's input of at
//   most 16 x 28 x 28 values (16 -> 16 and 16 -> 32 at 28x28, 16 -> 32 and
//   32 -> 32 at 14x14): 1.17-1.65 in both passes at batch 1 and 64. With
//   larger inputs (32 -> 32 at 28x28, 16 channels at 56x56) 0.48-0.91 at
//   batch 64; 32 -> 64 0.66-1.34; from 64 channels up 0.46-1.08;
// - stride 2 from planes 28 pixels wide or wider, at most 32 input
//   channels: forward 1.10-2.12 (16 -> 32 from 56x56 at batch 64: 0.98),
//   ResNet's first projection (16 -> 32 from 28x28) 1.56 and 1.38; from
//   14x14 0.92-1.13, and from 64 or 128 channels 0.67-0.86;
// - stride 2 from 28x28 planes, at most 32 input channels: the input
//   gradient too, whose values go back between zeros eight a store (3 runs
//   of `--filter conv_k1_s2`, and of the 16 -> 32 and 32 -> 64 cases of
//   `--full` at batch 16 and 256): 1.13-1.44 at batch 1 and 64, ResNet's
//   first projection 1.04-1.29 at batch 16 and 0.87-1.29 at 256. From 14x14
//   0.83-1.92 by shape and batch (ResNet's second projection, 32 -> 64,
//   0.81-0.86 at batch 16), from 56x56 0.81-1.64: those stay direct, as do
//   64 and 128 input channels (0.91-1.24), and every one where those
//   stores are not vectorized (without AVX-512).
// A later sweep on a Zen 4 machine (medians of 4 runs of the default grid,
// then of 3 runs at `--reps 15` of the shapes in question) moved two lines:
// - one image, stride 1, at most 32 channels in and out, whatever the
//   plane: 16 -> 16 and 16 -> 32 at 56x56 and 32 -> 32 at 28x28 1.11-2.11
//   in both passes (one image's rows share out over the threads in full
//   tiles); at batch 64 those stay direct (0.45-0.79 at 56x56);
// - the stride-2 input gradient of one image with at most 32 input
//   channels from planes 14 to 56 pixels wide (1.19-2.10), and of 16 input
//   channels from 14x14 at any batch (16 -> 32: 1.55-1.95 at batch 64). 32
//   channels at batch 64 from 14x14 read 0.96-1.06 and stay direct, as do
//   64 channels (one image 1.00-1.27, batch 64 0.92-1.00) and batch 64
//   from 56x56, whose times varied twofold from run to run.
namespace detail {
// The shapes where both passes take them: narrow rows, or stride 1 with few
// channels on planes small enough, or for one image.
inline bool pointwise_pays_both_passes(const Conv2dShape& s) {
  return s.OW() < kDirectRows || (s.stride == 1 && s.C <= 32 && s.OC <= 32 &&
                                  (s.N == 1 || s.C * s.H * s.W <= 16 * 28 * 28));
}
// The stride-2 input gradients that take them, where their stores of every
// other value are vectorized.
inline bool pointwise_pays_strided_data(const Conv2dShape& s) {
  if (!kStoreEveryOtherVectorized || s.stride != 2) return false;
  if (s.N == 1) return s.C <= 32 && s.W >= 14 && s.W <= 56;
  return (s.C <= 32 && s.W >= 28 && s.H * s.W <= 28 * 28) ||
         (s.C <= 16 && s.W >= 14 && s.H * s.W <= 28 * 28);
}
}  // namespace detail

inline bool conv2d_pointwise_forward_pays(const Conv2dShape& s) {
  return conv2d_pointwise_applies(s) &&
         (detail::pointwise_pays_both_passes(s) || (s.stride == 2 && s.C <= 32 && s.W >= 28));
}

inline bool conv2d_pointwise_data_pays(const Conv2dShape& s) {
  return conv2d_pointwise_applies(s) &&
         (detail::pointwise_pays_both_passes(s) || detail::pointwise_pays_strided_data(s));
}

// Elements of the workspace conv2d_forward and conv2d_backward_data take.
template <typename T>
std::int64_t conv2d_workspace_size(const Conv2dShape& s) {
  return std::max({conv2d_im2col_workspace_size<T>(s), conv2d_direct_workspace_size<T>(s),
                   conv2d_pointwise_workspace_size<T>(s), conv2d_rows_workspace_size<T>(s)});
}

// Elements of the partials conv2d_backward_weights takes.
template <typename T>
std::int64_t conv2d_weight_partials_size(const Conv2dShape& s) {
  return std::max({conv2d_im2col_partials_size<T>(s), conv2d_direct_partials_size<T>(s),
                   conv2d_rows_partials_size<T>(s), conv2d_winograd_partials_size<T>(s)});
}

// The algorithm a convolution pass runs. Each pass has one chooser below,
// used by the passes here and by the plan pass (layers/plan.hpp), so that
// whoever asks gets the same answer and the same bits. Direct, Rows and
// Im2col take the square case only (a Conv2dShape); Depthwise and General
// take the rest (a Conv2dGeometry), and conv2d_kernels_for() below never
// gives them a square one.
enum class ConvKernel { Direct, Rows, Im2col, Winograd, Winograd4, Pointwise, Depthwise, General };

inline const char* conv_kernel_name(ConvKernel k) {
  switch (k) {
    case ConvKernel::Direct:
      return "direct";
    case ConvKernel::Rows:
      return "rows";
    case ConvKernel::Im2col:
      return "im2col";
    case ConvKernel::Winograd:
      return "winograd";
    case ConvKernel::Winograd4:
      return "winograd4";
    case ConvKernel::Pointwise:
      return "pointwise";
    case ConvKernel::Depthwise:
      return "depthwise";
    case ConvKernel::General:
      return "general";
  }
  return "?";
}

// Whether a kernel takes the square case (a Conv2dShape).
inline bool conv_kernel_is_square(ConvKernel k) {
  return k == ConvKernel::Direct || k == ConvKernel::Rows || k == ConvKernel::Im2col ||
         k == ConvKernel::Winograd || k == ConvKernel::Winograd4 || k == ConvKernel::Pointwise;
}

// The passes of a convolution.
enum class ConvPass { Forward, BackwardData, BackwardWeights };

// Whether the classic kernel k can run pass p on s: direct needs stride 1
// or 2 and padding of at most kernel - 1 (conv2d_direct_strided_applies);
// rows needs such padding and, for its forward pass, stride 1
// (conv2d_direct_applies) and output rows at least a vector wide; for its
// weight gradient stride 1 or 2, a 3x3, 5x5 or 7x7 kernel and such output
// rows; for its input gradient
// stride 1 or 2, a 3x3, 5x5 or 7x7 kernel, and input rows at least a vector
// wide, as many as its tile's (conv2d_data_rows_applies); im2col
// takes any square case. The dispatchers below refuse any other
// request, so that a wrong choice fails instead of reading out of bounds.
template <typename T>
bool conv_kernel_applies(ConvKernel k, ConvPass p, const Conv2dShape& s) {
  switch (k) {
    case ConvKernel::Im2col:
      return true;
    case ConvKernel::Direct:
      return conv2d_direct_strided_applies(s);
    case ConvKernel::Winograd:
    case ConvKernel::Winograd4:
      return conv2d_winograd_applies(s);
    case ConvKernel::Pointwise:  // forward and input gradient only
      return p != ConvPass::BackwardWeights && conv2d_pointwise_applies(s);
    case ConvKernel::Rows:
      return p == ConvPass::Forward           ? conv2d_forward_rows_applies<T>(s)
             : p == ConvPass::BackwardWeights ? conv2d_weights_rows_applies<T>(s)
                                              : conv2d_data_rows_applies<T>(s);
    default:
      return false;  // Depthwise, General: a Conv2dGeometry's kernels
  }
}

namespace detail {
template <typename T>
void require_square_kernel(ConvKernel k, ConvPass p, const Conv2dShape& s, const char* pass) {
  if (!conv_kernel_applies<T>(k, p, s))
    fail(pass, ": the ", conv_kernel_name(k), " kernel does not take kernel ", s.KH, "x", s.KW,
         ", stride ", s.stride, ", padding ", s.pad, " on a ", s.H, "x", s.W, " input");
}
}  // namespace detail

// The forward kernel. With output channels for half a vector or less
// (LeNet-5's conv1 has 6 in 16 lanes), most of a direct tile's lanes are
// padding; the rows kernel fills them with pixels instead, when its rows are
// wide enough. Otherwise Winograd's or the pointwise products where they
// pay, else a kernel that sums tap by tap.
template <typename T>
ConvKernel conv2d_forward_kernel(const Conv2dShape& s) {
  if (conv2d_forward_rows_applies<T>(s) && 2 * s.OC <= Simd<T>::width) return ConvKernel::Rows;
  if (conv2d_winograd4_pays<T>(s)) return ConvKernel::Winograd4;
  if (conv2d_pointwise_forward_pays(s)) return ConvKernel::Pointwise;
  if (conv2d_forward_direct_pays(s)) return ConvKernel::Direct;
  if (conv2d_forward_rows_applies<T>(s)) return ConvKernel::Rows;
  return ConvKernel::Im2col;
}

// The direct input gradient is a direct forward pass whose output channels are
// the input's: with fewer than half a vector of them (1, 3 or 6 input
// channels), most of each tile is padding and im2col is faster. With fewer
// than 8 input channels the rows kernel is faster than both (shape_sweep,
// 1 to 6 input channels into 6 or 16 on rows of 28 and 56 pixels, batch 1
// and 64; time of im2col / time of rows): with AVX-512 1.0-3.1 for 5x5 and
// 7x7 kernels at stride 1 and 0.7-7.3 for any at stride 2, but for 3x3
// at stride 1 only with one input channel or at most half a vector of
// output channels (0.7-1.0 otherwise at batch 64: each unaligned load of
// dy spans two cache lines, and with 3 kernel rows feeds too few
// multiply-adds); with AVX2 0.9-2.8 at stride 1 and 0.7-3.2 at stride 2,
// and 1.4-5.5 against the direct kernel that 4 to 7 channels took there
// (the ratios below 1 are single images of a few microseconds). At stride 2
// a 1x1 kernel reaches one input pixel in four, and three of the four
// phases are zeros; stored with the fourth's tiles a vector at a time, they
// still cost less than im2col's scatter (ResNet's projections, 16 -> 32 at
// 28x28 and 32 -> 64 at 14x14, batch 64: 1.2-1.5x faster). No choice
// depends on the batch size: the processes of a data-parallel step each
// take a share of the batch, and must sum as one process does. (With one
// 7x7 image and many channels, im2col would be up to 3x faster: packing the
// kernel costs more than the multiply-adds.) A 1x1 kernel on output rows
// narrower than a tile takes the pointwise products, as in the forward pass.
template <typename T>
ConvKernel conv2d_backward_data_kernel(const Conv2dShape& s) {
  if (s.stride == 1 && conv2d_winograd4_pays<T>(detail::transposed_conv_shape(s)))
    return ConvKernel::Winograd4;
  if (conv2d_pointwise_data_pays(s)) return ConvKernel::Pointwise;
  const bool direct =
      s.stride == 1
          ? conv2d_direct_applies(s) && conv2d_forward_direct_pays(detail::transposed_conv_shape(s))
          : conv2d_direct_strided_applies(s);
  const bool rows_pay = s.C < 8 && (s.stride == 2 || s.KH > 3 || kSimdBytes < 64 || s.C == 1 ||
                                    2 * s.OC <= Simd<T>::width);
  if (rows_pay && conv2d_data_rows_applies<T>(s)) return ConvKernel::Rows;
  return direct && 2 * s.C >= Simd<T>::width ? ConvKernel::Direct : ConvKernel::Im2col;
}

// Winograd's where it pays (above): F(2x2, 3x3) first, then F(4x4, 3x3).
// The rows kernel, whose lanes hold pixels, where the direct tile's lanes of
// input channels would be at most half full, and with up to 7 input
// channels at stride 1 on rows a vector wide (shape_sweep, 1 to 6 input
// channels into 6 or 16, 3x3 to 7x7, stride 1 and 2, rows of 14 to 56
// pixels, batch 1 and 64, AVX-512: up to 6.0x faster than the next
// kernel, 0.87-0.96x for 3x3 at stride 2 from 3 channels at 28x28; with 6
// channels 1.05-1.26x at stride 1 on rows of 28, but 0.45-0.81x at stride
// 2 or on rows of 14, where the direct tile fills 6 of its 8 lanes).
template <typename T>
ConvKernel conv2d_backward_weights_kernel(const Conv2dShape& s) {
  if (conv2d_winograd_weights_pays<T>(s)) return ConvKernel::Winograd;
  if (conv2d_winograd4_weights_pays<T>(s)) return ConvKernel::Winograd4;
  const bool rows_pay = s.C < 8 && (2 * s.C <= detail::padded_in_channels<T>(s) ||
                                    (s.stride == 1 && s.OW() >= Simd<T>::width));
  if (rows_pay && conv2d_weights_rows_applies<T>(s)) return ConvKernel::Rows;
  if (conv2d_weights_direct<T>(s)) return ConvKernel::Direct;
  if (conv2d_weights_rows_applies<T>(s)) return ConvKernel::Rows;
  return ConvKernel::Im2col;
}

// y = conv(x, w) + b (b may be null). With relu, then y = max(y, 0) as
// relu_forward computes it, in the same pass: a ReLU folded into the
// convolution gives the same bits as the two passes.
template <typename T>
void conv2d_forward_with(ConvKernel k, const Conv2dShape& s, const T* x, const T* w, const T* b,
                         T* y, T* workspace, bool relu = false) {
  detail::require_square_kernel<T>(k, ConvPass::Forward, s, "conv2d forward");
  if (k == ConvKernel::Direct)
    conv2d_forward_direct(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Rows)
    conv2d_forward_rows(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Im2col)
    conv2d_forward_im2col(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Winograd)
    conv2d_forward_winograd(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Winograd4)
    conv2d_forward_winograd4(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Pointwise)
    conv2d_forward_pointwise(s, x, w, b, y, workspace, relu);
  else
    fail("conv2d_forward_with: the ", conv_kernel_name(k), " kernel takes a Conv2dGeometry");
}

template <typename T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y, T* workspace,
                    bool relu = false) {
  conv2d_forward_with(conv2d_forward_kernel<T>(s), s, x, w, b, y, workspace, relu);
}

// Whether a forward kernel works sample by sample and can hand its output
// to a sink a few channel planes at a time (conv2d_forward_samples).
inline bool conv2d_forward_passes_planes(ConvKernel k) {
  return k == ConvKernel::Direct || k == ConvKernel::Rows || k == ConvKernel::Winograd ||
         k == ConvKernel::Winograd4;
}

// conv2d_forward handed to an output sink (StoredOutput in
// conv2d_direct.hpp) a few channel planes of one sample at a time, for the
// kernels that work sample by sample (direct, rows, Winograd).
template <typename T, typename Output>
void conv2d_forward_samples(ConvKernel k, const Conv2dShape& s, const T* x, const T* w, const T* b,
                            T* workspace, bool relu, const Output& output) {
  if (conv2d_forward_passes_planes(k))
    detail::require_square_kernel<T>(k, ConvPass::Forward, s, "conv2d forward");
  if (k == ConvKernel::Direct)
    conv2d_forward_direct_samples(s, x, w, b, relu, output);
  else if (k == ConvKernel::Rows)
    conv2d_forward_rows_groups(s, x, w, b, workspace, relu, output);
  else if (k == ConvKernel::Winograd)
    conv2d_forward_winograd_tiles<2>(s, x, w, b, relu, output);
  else if (k == ConvKernel::Winograd4)
    conv2d_forward_winograd_tiles<4>(s, x, w, b, relu, output);
  else
    fail("conv2d_forward_samples: the ", conv_kernel_name(k), " kernel works on the whole batch");
}

// dx = dL/dx (overwritten).
template <typename T>
void conv2d_backward_data_with(ConvKernel k, const Conv2dShape& s, const T* dy, const T* w, T* dx,
                               T* workspace) {
  detail::require_square_kernel<T>(k, ConvPass::BackwardData, s, "conv2d backward-data");
  if (k == ConvKernel::Direct)
    conv2d_backward_data_direct(s, dy, w, dx, workspace);
  else if (k == ConvKernel::Im2col)
    conv2d_backward_data_im2col(s, dy, w, dx, workspace);
  else if (k == ConvKernel::Winograd)
    conv2d_backward_data_winograd(s, dy, w, dx, workspace);
  else if (k == ConvKernel::Winograd4)
    conv2d_backward_data_winograd4(s, dy, w, dx, workspace);
  else if (k == ConvKernel::Pointwise)
    conv2d_backward_data_pointwise(s, dy, w, dx, workspace);
  else if (k == ConvKernel::Rows)
    conv2d_backward_data_rows(s, dy, w, dx, workspace);
  else
    fail("conv2d_backward_data_with: no ", conv_kernel_name(k), " kernel for a Conv2dShape");
}

template <typename T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  conv2d_backward_data_with(conv2d_backward_data_kernel<T>(s), s, dy, w, dx, workspace);
}

// dw = dL/dw, db = dL/db (both overwritten; db may be null).
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_with(ConvKernel k, const Conv2dShape& s, const T* x, const T* dy,
                                  T* dw, T* db, T* partials, bool carried = false,
                                  const Wait& wait_for_carry = Wait{}) {
  detail::require_square_kernel<T>(k, ConvPass::BackwardWeights, s, "conv2d backward-weights");
  if (k == ConvKernel::Direct)
    conv2d_backward_weights_direct_continue(s, x, dy, dw, db, partials, carried, wait_for_carry);
  else if (k == ConvKernel::Rows)
    conv2d_backward_weights_rows_continue(s, x, dy, dw, db, partials, carried, wait_for_carry);
  else if (k == ConvKernel::Im2col)
    conv2d_backward_weights_im2col_continue(s, x, dy, dw, db, partials, carried, wait_for_carry);
  else if (k == ConvKernel::Winograd)
    conv2d_backward_weights_winograd_continue(s, x, dy, dw, db, partials, carried, wait_for_carry);
  else if (k == ConvKernel::Winograd4)
    conv2d_backward_weights_winograd4_continue(s, x, dy, dw, db, partials, carried, wait_for_carry);
  else
    fail("conv2d_backward_weights_with: the ", conv_kernel_name(k),
         " kernel takes a Conv2dGeometry");
}

template <typename T>
void conv2d_backward_weights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                             T* partials) {
  conv2d_backward_weights_with(conv2d_backward_weights_kernel<T>(s), s, x, dy, dw, db, partials);
}

// ---- any convolution (Conv2dGeometry) ---------------------------------------

// The kernels of the three passes of a convolution, one choice per pass.
struct Conv2dKernels {
  ConvKernel forward, backward_data, backward_weights;
};

// The square case gets exactly the classic choosers' answers (the same
// kernels, bits and speed as before geometries existed); any other
// convolution the depthwise kernels when each input channel is its own
// group, and the general ones otherwise, in all three passes.
template <typename T>
Conv2dKernels conv2d_kernels_for(const Conv2dGeometry& g) {
  if (g.is_square()) {
    const Conv2dShape s = g.square();
    return {conv2d_forward_kernel<T>(s), conv2d_backward_data_kernel<T>(s),
            conv2d_backward_weights_kernel<T>(s)};
  }
  const ConvKernel k = conv2d_depthwise_applies(g) ? ConvKernel::Depthwise : ConvKernel::General;
  return {k, k, k};
}

// Elements of the workspace the forward and backward-data passes of any
// kernel of conv2d_kernels_for(g) take.
template <typename T>
std::int64_t conv2d_workspace_size(const Conv2dGeometry& g) {
  return g.is_square() ? conv2d_workspace_size<T>(g.square()) : conv2d_general_workspace_size<T>(g);
}

// Elements of the partials any weight-gradient kernel of conv2d_kernels_for(g) takes.
template <typename T>
std::int64_t conv2d_weight_partials_size(const Conv2dGeometry& g) {
  return g.is_square() ? conv2d_weight_partials_size<T>(g.square())
                       : conv2d_general_partials_size<T>(g);
}

namespace detail {
inline void require_kernel_fits(ConvKernel k, const Conv2dGeometry& g, const char* pass) {
  const bool fits = conv_kernel_is_square(k)     ? g.is_square()
                    : k == ConvKernel::Depthwise ? conv2d_depthwise_applies(g)
                                                 : true;
  if (!fits)
    fail(pass, ": the ", conv_kernel_name(k), " kernel does not take groups ", g.G, ", kernel ",
         g.KH, "x", g.KW, ", stride (", g.SH, ", ", g.SW, "), padding (", g.PH, ", ", g.PW,
         "), dilation (", g.DH, ", ", g.DW, ")");
}
}  // namespace detail

// y = conv(x, w) + b (b may be null; then max(y, 0) with relu) with kernel k.
template <typename T>
void conv2d_forward_run(ConvKernel k, const Conv2dGeometry& g, const T* x, const T* w, const T* b,
                        T* y, T* workspace, bool relu = false) {
  detail::require_kernel_fits(k, g, "conv2d forward");
  if (k == ConvKernel::Depthwise)
    conv2d_forward_depthwise(g, x, w, b, y, relu);
  else if (k == ConvKernel::General)
    conv2d_forward_general(g, x, w, b, y, workspace, relu);
  else
    conv2d_forward_with(k, g.square(), x, w, b, y, workspace, relu);
}

// dx = dL/dx (overwritten) with kernel k.
template <typename T>
void conv2d_backward_data_run(ConvKernel k, const Conv2dGeometry& g, const T* dy, const T* w, T* dx,
                              T* workspace) {
  detail::require_kernel_fits(k, g, "conv2d backward-data");
  if (k == ConvKernel::Depthwise)
    conv2d_backward_data_depthwise(g, dy, w, dx);
  else if (k == ConvKernel::General)
    conv2d_backward_data_general(g, dy, w, dx, workspace);
  else
    conv2d_backward_data_with(k, g.square(), dy, w, dx, workspace);
}

// dw, db = dL/dw, dL/db (overwritten; db may be null) with kernel k. With
// `carried`, dw and db hold the sums over earlier processes' samples, which
// this batch continues (all kernels but the depthwise one, whose sums run
// over the whole batch in vector lanes).
template <typename T, typename Wait = NoWait>
void conv2d_backward_weights_run(ConvKernel k, const Conv2dGeometry& g, const T* x, const T* dy,
                                 T* dw, T* db, T* partials, bool carried = false,
                                 const Wait& wait_for_carry = Wait{}) {
  detail::require_kernel_fits(k, g, "conv2d backward-weights");
  if (carried && k == ConvKernel::Depthwise)
    fail(
        "conv2d backward-weights: the depthwise kernel cannot continue a sum from another "
        "process; data-parallel training does not support depthwise convolutions yet");
  if (k == ConvKernel::Depthwise)
    conv2d_backward_weights_depthwise(g, x, dy, dw, db);
  else if (k == ConvKernel::General)
    conv2d_backward_weights_general_continue(g, x, dy, dw, db, partials, carried, wait_for_carry);
  else
    conv2d_backward_weights_with(k, g.square(), x, dy, dw, db, partials, carried, wait_for_carry);
}

}  // namespace minidl::kernels
