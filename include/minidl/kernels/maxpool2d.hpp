// minidl/kernels/maxpool2d.hpp - max pooling forward (recording the arg-max) and backward.
//
// Sizes: P = N*C independent planes of H x W, window K x K moved by `stride`,
// no padding, output OH x OW with OH = (H - K) / stride + 1 (floor, as PyTorch).
// x [P,H,W], y [P,OH,OW], argmax [P,OH,OW] holds the index (ih*W + iw) within
// its plane of the element that won. Ties go to the first element in row-major
// order, as in PyTorch.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/parallel.hpp"

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

// The same result, parallel over planes.
template <typename T>
void maxpool2d_forward(const MaxPool2dShape& s, const T* x, T* y, std::int32_t* argmax) {
  const std::int64_t OH = s.OH(), OW = s.OW();
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const MaxPool2dShape sh = s;  // a local copy: stores through yp cannot change it
    const T* xp = x + p * sh.H * sh.W;
    T* yp = y + p * OH * OW;
    std::int32_t* ap = argmax + p * OH * OW;
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        std::int64_t best = oh * sh.stride * sh.W + ow * sh.stride;
        T best_value = xp[best];
        for (std::int64_t kh = 0; kh < sh.K; ++kh) {
          const std::int64_t row = (oh * sh.stride + kh) * sh.W + ow * sh.stride;
          for (std::int64_t kw = 0; kw < sh.K; ++kw)
            if (xp[row + kw] > best_value) {
              best_value = xp[row + kw];
              best = row + kw;
            }
        }
        yp[oh * OW + ow] = best_value;
        ap[oh * OW + ow] = static_cast<std::int32_t>(best);
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

// The same result, parallel over planes (windows may overlap when stride < K:
// each plane is summed by one thread in a fixed order).
template <typename T>
void maxpool2d_backward(const MaxPool2dShape& s, const T* dy, const std::int32_t* argmax, T* dx) {
  const std::int64_t out = s.OH() * s.OW(), in = s.H * s.W;
  parallel_for(s.planes, [=](std::int64_t p) {
    T* dxp = dx + p * in;
    std::fill_n(dxp, in, T(0));
    const T* dyp = dy + p * out;
    const std::int32_t* ap = argmax + p * out;
    for (std::int64_t i = 0; i < out; ++i) dxp[ap[i]] += dyp[i];
  });
}

}  // namespace minidl::kernels
