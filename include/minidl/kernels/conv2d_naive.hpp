// minidl/kernels/conv2d_naive.hpp - the convolution's shape, and its definition loop by loop.
//
// Sizes: N batch, C input channels, H x W input, OC output channels, KH x KW
// kernel, OH x OW output. Layouts (PyTorch's): x [N,C,H,W], w [OC,C,KH,KW],
// b [OC], y [N,OC,OH,OW]. The naive kernels here are the test oracles of the
// fast ones in conv2d_im2col.hpp and conv2d_direct.hpp.
#pragma once

#include <algorithm>
#include <cstdint>

namespace minidl::kernels {

struct Conv2dShape {
  std::int64_t N, C, H, W, OC, KH, KW, stride, pad;

  std::int64_t OH() const { return (H + 2 * pad - KH) / stride + 1; }
  std::int64_t OW() const { return (W + 2 * pad - KW) / stride + 1; }
  std::int64_t col_rows() const { return C * KH * KW; }              // GEMM depth
  std::int64_t col_cols() const { return OH() * OW(); }              // output pixels
  std::int64_t col_size() const { return col_rows() * col_cols(); }  // per sample
};

// Samples per partial weight gradient in the fast kernels. Fixed, so that the
// partial sums and their reduction order never depend on the number of threads.
inline constexpr std::int64_t kConvWeightChunk = 4;

template <typename T>
void conv2d_forward_naive(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  for (std::int64_t n = 0; n < s.N; ++n)
    for (std::int64_t o = 0; o < s.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          T sum = b ? b[o] : T(0);
          for (std::int64_t c = 0; c < s.C; ++c)
            for (std::int64_t kh = 0; kh < s.KH; ++kh)
              for (std::int64_t kw = 0; kw < s.KW; ++kw) {
                const std::int64_t ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                sum += x[((n * s.C + c) * s.H + ih) * s.W + iw] *
                       w[((o * s.C + c) * s.KH + kh) * s.KW + kw];
              }
          y[((n * s.OC + o) * OH + oh) * OW + ow] = sum;
        }
}

// dx = dL/dx (overwritten).
template <typename T>
void conv2d_backward_data_naive(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  std::fill_n(dx, s.N * s.C * s.H * s.W, T(0));
  for (std::int64_t n = 0; n < s.N; ++n)
    for (std::int64_t o = 0; o < s.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const T g = dy[((n * s.OC + o) * OH + oh) * OW + ow];
          for (std::int64_t c = 0; c < s.C; ++c)
            for (std::int64_t kh = 0; kh < s.KH; ++kh)
              for (std::int64_t kw = 0; kw < s.KW; ++kw) {
                const std::int64_t ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                dx[((n * s.C + c) * s.H + ih) * s.W + iw] +=
                    g * w[((o * s.C + c) * s.KH + kh) * s.KW + kw];
              }
        }
}

// dw, db = dL/dw, dL/db (overwritten; db may be null).
template <typename T>
void conv2d_backward_weights_naive(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  std::fill_n(dw, s.OC * s.col_rows(), T(0));
  if (db) std::fill_n(db, s.OC, T(0));
  for (std::int64_t n = 0; n < s.N; ++n)
    for (std::int64_t o = 0; o < s.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const T g = dy[((n * s.OC + o) * OH + oh) * OW + ow];
          if (db) db[o] += g;
          for (std::int64_t c = 0; c < s.C; ++c)
            for (std::int64_t kh = 0; kh < s.KH; ++kh)
              for (std::int64_t kw = 0; kw < s.KW; ++kw) {
                const std::int64_t ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                dw[((o * s.C + c) * s.KH + kh) * s.KW + kw] +=
                    g * x[((n * s.C + c) * s.H + ih) * s.W + iw];
              }
        }
}

}  // namespace minidl::kernels
