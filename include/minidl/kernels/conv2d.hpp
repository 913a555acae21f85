// minidl/kernels/conv2d.hpp - 2-D convolution forward, backward-data, backward-weights.
//
// Layouts are PyTorch's (see conv2d_naive.hpp, which also holds the naive
// references). Each pass picks its kernel from the shape: for stride 1 the
// direct kernels of conv2d_direct.hpp, or with few input channels the row
// kernels of conv2d_rows.hpp; the im2col kernels of conv2d_im2col.hpp
// otherwise. All are checked against the naive references in the tests.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/kernels/conv2d_direct.hpp"
#include "minidl/kernels/conv2d_im2col.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/conv2d_rows.hpp"

namespace minidl::kernels {

// The direct weight gradient pads the input channels to whole vectors and the
// output channels to whole tiles. Where that would add more than a quarter of
// zeros (conv1 has 1 input channel), the row kernel takes 3x3 kernels and the
// im2col kernel the rest.
template <typename T>
bool conv2d_weights_direct(const Conv2dShape& s) {
  return conv2d_direct_applies(s) && 4 * detail::padded_in_channels<T>(s) <= 5 * s.C &&
         4 * detail::padded_out_channels<T>(s) <= 5 * s.OC;
}

// The direct forward tile ends with a transposed store of its MR x NR
// results; with few taps to sum (conv1 has 9) that store dominates, and the
// rows kernel (or, for rows narrower than a vector, im2col) is faster.
inline bool conv2d_forward_direct_pays(const Conv2dShape& s) {
  return conv2d_direct_applies(s) && s.col_rows() >= 32;
}

// Elements of the workspace conv2d_forward and conv2d_backward_data take.
template <typename T>
std::int64_t conv2d_workspace_size(const Conv2dShape& s) {
  return std::max(conv2d_im2col_workspace_size<T>(s), conv2d_direct_workspace_size<T>(s));
}

// Elements of the partials conv2d_backward_weights takes.
template <typename T>
std::int64_t conv2d_weight_partials_size(const Conv2dShape& s) {
  return std::max({conv2d_im2col_partials_size<T>(s), conv2d_direct_partials_size<T>(s),
                   conv2d_rows_partials_size<T>(s)});
}

// The algorithm a convolution pass runs. Each pass has one chooser below,
// used by the passes here and by the plan pass (layers/plan.hpp), so that
// whoever asks gets the same answer and the same bits.
enum class ConvKernel { Direct, Rows, Im2col };

inline const char* conv_kernel_name(ConvKernel k) {
  return k == ConvKernel::Direct ? "direct" : k == ConvKernel::Rows ? "rows" : "im2col";
}

template <typename T>
ConvKernel conv2d_forward_kernel(const Conv2dShape& s) {
  if (conv2d_forward_direct_pays(s)) return ConvKernel::Direct;
  if (conv2d_forward_rows_applies<T>(s)) return ConvKernel::Rows;
  return ConvKernel::Im2col;
}

inline ConvKernel conv2d_backward_data_kernel(const Conv2dShape& s) {
  return conv2d_direct_applies(s) && conv2d_forward_direct_pays(detail::transposed_conv_shape(s))
             ? ConvKernel::Direct
             : ConvKernel::Im2col;
}

template <typename T>
ConvKernel conv2d_backward_weights_kernel(const Conv2dShape& s) {
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
  if (k == ConvKernel::Direct)
    conv2d_forward_direct(s, x, w, b, y, workspace, relu);
  else if (k == ConvKernel::Rows)
    conv2d_forward_rows(s, x, w, b, y, workspace, relu);
  else
    conv2d_forward_im2col(s, x, w, b, y, workspace, relu);
}

template <typename T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y, T* workspace,
                    bool relu = false) {
  conv2d_forward_with(conv2d_forward_kernel<T>(s), s, x, w, b, y, workspace, relu);
}

// Whether a forward kernel works sample by sample and can hand its output
// to a sink a few channel planes at a time (conv2d_forward_samples).
inline bool conv2d_forward_passes_planes(ConvKernel k) {
  return k != ConvKernel::Im2col;
}

// conv2d_forward handed to an output sink (StoredOutput in
// conv2d_direct.hpp) a few channel planes of one sample at a time, for the
// kernels that work sample by sample (direct, rows).
template <typename T, typename Output>
void conv2d_forward_samples(ConvKernel k, const Conv2dShape& s, const T* x, const T* w, const T* b,
                            T* workspace, bool relu, const Output& output) {
  if (k == ConvKernel::Direct)
    conv2d_forward_direct_samples(s, x, w, b, relu, output);
  else if (k == ConvKernel::Rows)
    conv2d_forward_rows_groups(s, x, w, b, workspace, relu, output);
  else
    fail("conv2d_forward_samples: the im2col kernel works on the whole batch");
}

// dx = dL/dx (overwritten).
template <typename T>
void conv2d_backward_data_with(ConvKernel k, const Conv2dShape& s, const T* dy, const T* w, T* dx,
                               T* workspace) {
  if (k == ConvKernel::Direct)
    conv2d_backward_data_direct(s, dy, w, dx, workspace);
  else
    conv2d_backward_data_im2col(s, dy, w, dx, workspace);
}

template <typename T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx, T* workspace) {
  conv2d_backward_data_with(conv2d_backward_data_kernel(s), s, dy, w, dx, workspace);
}

// dw = dL/dw, db = dL/db (both overwritten; db may be null).
template <typename T>
void conv2d_backward_weights_with(ConvKernel k, const Conv2dShape& s, const T* x, const T* dy,
                                  T* dw, T* db, T* partials) {
  if (k == ConvKernel::Direct)
    conv2d_backward_weights_direct(s, x, dy, dw, db, partials);
  else if (k == ConvKernel::Rows)
    conv2d_backward_weights_rows(s, x, dy, dw, db, partials);
  else
    conv2d_backward_weights_im2col(s, x, dy, dw, db, partials);
}

template <typename T>
void conv2d_backward_weights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db,
                             T* partials) {
  conv2d_backward_weights_with(conv2d_backward_weights_kernel<T>(s), s, x, dy, dw, db, partials);
}

}  // namespace minidl::kernels
