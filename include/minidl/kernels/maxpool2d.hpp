// minidl/kernels/maxpool2d.hpp - max pooling forward and backward, and their naive twins.
//
// Sizes: P = N*C independent planes of H x W, window K x K moved by `stride`,
// no padding, output OH x OW with OH = (H - K) / stride + 1 (floor, as PyTorch).
// x [P,H,W], y [P,OH,OW]. The naive forward also records argmax [P,OH,OW],
// the index (ih*W + iw) within its plane of the element that won; ties go to
// the first element in row-major order, as in PyTorch. The fast backward
// finds the winners again from x and y instead of storing them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "minidl/core/memory.hpp"
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

// y = the window maxima, parallel over planes; no arg-max is stored (the
// backward pass finds it again). Row by row and one window offset at a
// time, so the inner loop is a vectorisable select over the output row.
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

// dx from x, y and dy (overwritten), parallel over planes; dx may alias x.
// The winner of a window is its first element equal to the maximum y, as in
// the forward pass; when y is NaN it is the first element (the forward pass
// only moves past the first element for a strictly greater value). All the
// winners of a plane are found before its dx is written, and summed in a
// fixed order, so overlapping windows (stride < K) work too.
template <typename T>
void maxpool2d_backward(const MaxPool2dShape& s, const T* x, const T* y, const T* dy, T* dx) {
  const std::int64_t OH = s.OH(), OW = s.OW(), in = s.H * s.W;
  parallel_for(s.planes, [=, &s](std::int64_t p) {
    const MaxPool2dShape sh = s;
    const T* xp = x + p * in;
    const T* yp = y + p * OH * OW;
    std::int32_t* winner = thread_scratch<std::int32_t, 0>(OH * OW);
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        const T best = yp[oh * OW + ow];
        const std::int64_t corner = oh * sh.stride * sh.W + ow * sh.stride;
        std::int64_t found = corner;  // also the answer when best is NaN
        if (best == best) {
          for (std::int64_t k = sh.K * sh.K; k-- > 0;) {  // backwards: the first match stays
            const std::int64_t i = corner + (k / sh.K) * sh.W + k % sh.K;
            found = xp[i] == best ? i : found;
          }
        }
        winner[oh * OW + ow] = static_cast<std::int32_t>(found);
      }
    T* dxp = dx + p * in;
    const T* dyp = dy + p * OH * OW;
    std::fill_n(dxp, in, T(0));
    for (std::int64_t i = 0; i < OH * OW; ++i) dxp[winner[i]] += dyp[i];
  });
}

}  // namespace minidl::kernels
