// minidl/kernels/conv2d_naive.hpp - the convolution's shape, and its definition loop by loop.
//
// Sizes: N batch, C input channels, H x W input, OC output channels, KH x KW
// kernel, OH x OW output, G groups. Layouts (PyTorch's): x [N,C,H,W],
// w [OC,C/G,KH,KW], b [OC], y [N,OC,OH,OW]. Conv2dShape is the square case
// the classic fast kernels take (conv2d_direct.hpp, conv2d_rows.hpp,
// conv2d_im2col.hpp); Conv2dGeometry is every convolution torch.nn.Conv2d
// computes, taken by conv2d_depthwise.hpp and conv2d_general.hpp. The naive
// kernels here take any Conv2dGeometry (a Conv2dShape converts to one) and
// are the test oracles of all the fast ones.
#pragma once

#include <algorithm>
#include <cstdint>

namespace minidl::kernels {

// One group, no dilation, a square kernel, the same stride and padding on
// both axes.
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

// Every size of a convolution as torch.nn.Conv2d takes them (padding_mode
// "zeros"): a KH x KW kernel whose taps sit DH x DW apart (dilation), moved
// SH x SW at a time (stride) over the input with PH x PW rows and columns
// of zeros on each side (padding). With G groups the C input and OC output
// channels are cut into G equal blocks, and output block g reads input
// block g only: w is [OC, C/G, KH, KW]. Depthwise is G == C.
struct Conv2dGeometry {
  std::int64_t N = 1, C = 1, H = 1, W = 1, OC = 1, KH = 1, KW = 1;
  std::int64_t SH = 1, SW = 1, PH = 0, PW = 0, DH = 1, DW = 1, G = 1;

  Conv2dGeometry() = default;
  // The square case; implicit, so that the naive kernels take a Conv2dShape.
  Conv2dGeometry(const Conv2dShape& s)  // NOLINT(google-explicit-constructor)
      : N(s.N),
        C(s.C),
        H(s.H),
        W(s.W),
        OC(s.OC),
        KH(s.KH),
        KW(s.KW),
        SH(s.stride),
        SW(s.stride),
        PH(s.pad),
        PW(s.pad) {}

  std::int64_t OH() const { return (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1; }
  std::int64_t OW() const { return (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1; }
  std::int64_t group_in() const { return C / G; }                       // input channels per group
  std::int64_t group_out() const { return OC / G; }                     // output channels per group
  std::int64_t group_col_rows() const { return group_in() * KH * KW; }  // GEMM depth per group
  std::int64_t weight_size() const { return OC * group_col_rows(); }

  // Whether the classic kernels take it (as square()).
  bool is_square() const {
    return G == 1 && DH == 1 && DW == 1 && KH == KW && SH == SW && PH == PW;
  }
  Conv2dShape square() const { return {N, C, H, W, OC, KH, KW, SH, PH}; }
  bool is_depthwise() const { return G == C; }  // each input channel its own group
};

// Input row and column of tap (kh, kw) for output (oh, ow); outside [0, H) x
// [0, W) it reads a padding zero.
inline std::int64_t conv_input_row(const Conv2dGeometry& g, std::int64_t oh, std::int64_t kh) {
  return oh * g.SH - g.PH + kh * g.DH;
}
inline std::int64_t conv_input_col(const Conv2dGeometry& g, std::int64_t ow, std::int64_t kw) {
  return ow * g.SW - g.PW + kw * g.DW;
}

// y = conv(x, w) + b (b may be null).
template <typename T>
void conv2d_forward_naive(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y) {
  const std::int64_t OH = g.OH(), OW = g.OW(), CG = g.group_in();
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t o = 0; o < g.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const std::int64_t c0 = o / g.group_out() * CG;  // first input channel of o's group
          T sum = b ? b[o] : T(0);
          for (std::int64_t c = 0; c < CG; ++c)
            for (std::int64_t kh = 0; kh < g.KH; ++kh)
              for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t ih = conv_input_row(g, oh, kh), iw = conv_input_col(g, ow, kw);
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                sum += x[((n * g.C + c0 + c) * g.H + ih) * g.W + iw] *
                       w[((o * CG + c) * g.KH + kh) * g.KW + kw];
              }
          y[((n * g.OC + o) * OH + oh) * OW + ow] = sum;
        }
}

// dx = dL/dx (overwritten).
template <typename T>
void conv2d_backward_data_naive(const Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  const std::int64_t OH = g.OH(), OW = g.OW(), CG = g.group_in();
  std::fill_n(dx, g.N * g.C * g.H * g.W, T(0));
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t o = 0; o < g.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const std::int64_t c0 = o / g.group_out() * CG;
          const T d = dy[((n * g.OC + o) * OH + oh) * OW + ow];
          for (std::int64_t c = 0; c < CG; ++c)
            for (std::int64_t kh = 0; kh < g.KH; ++kh)
              for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t ih = conv_input_row(g, oh, kh), iw = conv_input_col(g, ow, kw);
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                dx[((n * g.C + c0 + c) * g.H + ih) * g.W + iw] +=
                    d * w[((o * CG + c) * g.KH + kh) * g.KW + kw];
              }
        }
}

// dw, db = dL/dw, dL/db (overwritten; db may be null).
template <typename T>
void conv2d_backward_weights_naive(const Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* db) {
  const std::int64_t OH = g.OH(), OW = g.OW(), CG = g.group_in();
  std::fill_n(dw, g.weight_size(), T(0));
  if (db) std::fill_n(db, g.OC, T(0));
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t o = 0; o < g.OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const std::int64_t c0 = o / g.group_out() * CG;
          const T d = dy[((n * g.OC + o) * OH + oh) * OW + ow];
          if (db) db[o] += d;
          for (std::int64_t c = 0; c < CG; ++c)
            for (std::int64_t kh = 0; kh < g.KH; ++kh)
              for (std::int64_t kw = 0; kw < g.KW; ++kw) {
                const std::int64_t ih = conv_input_row(g, oh, kh), iw = conv_input_col(g, ow, kw);
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                dw[((o * CG + c) * g.KH + kh) * g.KW + kw] +=
                    d * x[((n * g.C + c0 + c) * g.H + ih) * g.W + iw];
              }
        }
}

}  // namespace minidl::kernels
