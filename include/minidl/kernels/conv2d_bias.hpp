// minidl/kernels/conv2d_bias.hpp - the bias gradient of a convolution.
#pragma once

#include <cstdint>

#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// dL/db[o]: the sum of dy over the batch and the output plane of channel o.
// A plain loop would be one chain of dependent additions (four cycles each);
// four vector accumulators keep 4 x width sums in flight. The order of the
// additions is fixed by the shape alone, so the result is reproducible.
template <typename T>
T conv2d_bias_grad(const Conv2dShape& s, const T* dy, std::int64_t o) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int W = S::width;
  const std::int64_t P = s.OH() * s.OW();
  V acc[4] = {};
  T tail = 0;
  for (std::int64_t n = 0; n < s.N; ++n) {
    const T* g = dy + (n * s.OC + o) * P;
    std::int64_t p = 0;
    for (; p + 4 * W <= P; p += 4 * W)
      for (int a = 0; a < 4; ++a) acc[a] += S::load(g + p + a * W);
    for (; p + W <= P; p += W) acc[0] += S::load(g + p);
    for (; p < P; ++p) tail += g[p];
  }
  const V v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  T sum = 0;
  for (int l = 0; l < W; ++l) sum += v[l];
  return sum + tail;
}

}  // namespace minidl::kernels
