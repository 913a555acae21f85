// minidl/kernels/conv2d_bias.hpp - the bias of a convolution: added after a GEMM, and its gradient.
//
// dL/db[o] is the sum of dy over the batch and the output plane of channel
// o. The weight-gradient kernels compute it in the same pass as the weights,
// while dy is in cache, in the weights' order: each chunk of
// kConvWeightChunk samples is summed on its own (BiasSum, samples in order)
// into a slot after the channel's weights in the chunk's partial, and
// sum_partials_in_order adds the chunks up in order with the weights. The
// order depends on the shape alone, not on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// After a GEMM wrote a sample's output planes y[OC][P]: adds each channel's bias (when b is
// given), then stores max(y, 0) when relu (the same bits as a ReLU after it).
template <typename T>
void add_bias_then_relu(std::int64_t OC, std::int64_t P, const T* b, bool relu, T* y) {
  if (b)
    for (std::int64_t o = 0; o < OC; ++o) {
      const T bias = b[o];
      T* row = y + o * P;
      MINIDL_VECTORIZE
      for (std::int64_t p = 0; p < P; ++p) row[p] += bias;
    }
  if (relu) {
    MINIDL_VECTORIZE
    for (std::int64_t i = 0; i < OC * P; ++i) y[i] = y[i] > T(0) ? y[i] : T(0);
  }
}

// The running sum of one channel's dy: four vector accumulators, since a
// plain loop would be one chain of dependent additions (four cycles each),
// and a scalar for plane sizes that are not whole vectors.
template <typename T>
struct BiasSum {
  using S = Simd<T>;
  using V = typename S::vec;
  static constexpr int W = S::width;
  V acc[4] = {};
  T tail = 0;

  void add_plane(const T* g, std::int64_t P) {
    std::int64_t p = 0;
    for (; p + 4 * W <= P; p += 4 * W) {
      MINIDL_UNROLL(4)  // -O2 would keep acc in memory
      for (int a = 0; a < 4; ++a) acc[a] += S::load(g + p + a * W);
    }
    for (; p + W <= P; p += W) acc[0] += S::load(g + p);
    for (; p < P; ++p) tail += g[p];
  }
  T total() const {
    const V v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    T sum = 0;
    MINIDL_UNROLL(16)
    for (int l = 0; l < W; ++l) sum += v[l];
    return sum + tail;
  }
};

// Elements of the slot a weight partial keeps for one channel's bias sum
// (only the first is used): a cache line, so that the next channel's
// weights stay as aligned as the partial.
template <typename T>
inline constexpr std::int64_t kBiasSlot = 64 / static_cast<std::int64_t>(sizeof(T));

// One zeroed BiasSum per output channel, in the calling thread's scratch,
// for the chunk it is about to compute.
template <typename T>
BiasSum<T>* chunk_bias_sums(std::int64_t OC) {
  constexpr auto per_sum = static_cast<std::int64_t>(sizeof(BiasSum<T>) / sizeof(T));
  BiasSum<T>* sums = reinterpret_cast<BiasSum<T>*>(thread_scratch<T, 3>(OC * per_sum));
  for (std::int64_t o = 0; o < OC; ++o) new (sums + o) BiasSum<T>();
  return sums;
}

// Writes a chunk's sum into its slot, the unused rest zeroed (it is summed
// with the weights, and must not be left uninitialised).
template <typename T>
void store_bias_slot(const BiasSum<T>& sum, T* slot) {
  slot[0] = sum.total();
  std::fill(slot + 1, slot + kBiasSlot<T>, T(0));
}

// The slot of a running sum carried in from another process: db[o] (0
// without a bias), the rest zero as store_bias_slot leaves it.
template <typename T>
void load_bias_slot(const T* db, std::int64_t o, T* slot) {
  slot[0] = db ? db[o] : T(0);
  std::fill(slot + 1, slot + kBiasSlot<T>, T(0));
}

// dL/db[o] computed alone, serially, to the bits the weight-gradient
// kernels give: the reference the tests hold them to.
template <typename T>
T conv2d_bias_grad(const Conv2dShape& s, const T* dy, std::int64_t o) {
  const std::int64_t P = s.OH() * s.OW();
  T total = 0;
  for (std::int64_t n0 = 0; n0 < s.N; n0 += kConvWeightChunk) {
    BiasSum<T> chunk;
    for (std::int64_t n = n0; n < std::min(s.N, n0 + kConvWeightChunk); ++n)
      chunk.add_plane(dy + (n * s.OC + o) * P, P);
    total = n0 == 0 ? chunk.total() : total + chunk.total();  // as sum_partials_in_order adds
  }
  return total;
}

}  // namespace minidl::kernels
