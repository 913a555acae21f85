// minidl/kernels/conv2d_bias.hpp - the bias gradient of a convolution.
#pragma once

#include <atomic>
#include <cstdint>
#include <new>

#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/kernels/conv2d_naive.hpp"
#include "minidl/kernels/simd.hpp"

namespace minidl::kernels {

// The running sum of one channel's dy: four vector accumulators, since a
// plain loop would be one chain of dependent additions (four cycles each),
// and a scalar for plane sizes that are not whole vectors. Samples are added
// in order; the order of every addition is fixed by the shape alone.
template <typename T>
struct BiasSum {
  using S = Simd<T>;
  using V = typename S::vec;
  static constexpr int W = S::width;
  V acc[4] = {};
  T tail = 0;

  void add_plane(const T* g, std::int64_t P) {
    std::int64_t p = 0;
    for (; p + 4 * W <= P; p += 4 * W)
      for (int a = 0; a < 4; ++a) acc[a] += S::load(g + p + a * W);
    for (; p + W <= P; p += W) acc[0] += S::load(g + p);
    for (; p < P; ++p) tail += g[p];
  }
  T total() const {
    const V v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    T sum = 0;
    for (int l = 0; l < W; ++l) sum += v[l];
    return sum + tail;
  }
};

// dL/db[o]: the sum of dy over the batch and the output plane of channel o.
template <typename T>
T conv2d_bias_grad(const Conv2dShape& s, const T* dy, std::int64_t o) {
  const std::int64_t P = s.OH() * s.OW();
  BiasSum<T> sum;
  for (std::int64_t n = 0; n < s.N; ++n) sum.add_plane(dy + (n * s.OC + o) * P, P);
  return sum.total();
}

// dy of a convolution handed out one [OH, OW] plane at a time, for kernels
// that read it plane by plane: planes(n, o, buffer) returns the plane of
// sample n, channel o. A source that does not store dy whole (a max-pool's
// gradient routed through its recorded winners) makes the plane in
// `buffer`: OH * OW elements of the calling thread's own. StoredPlanes is
// dy stored whole, [N, OC, OH, OW].
template <typename T>
struct StoredPlanes {
  const T* dy;
  std::int64_t OC, P;
  const T* operator()(std::int64_t n, std::int64_t o, T*) const { return dy + (n * OC + o) * P; }
};

// The buffer a kernel hands to a dy plane source: `count` planes of P.
template <typename T>
T* dy_plane_buffer(std::int64_t count, std::int64_t P) {
  return thread_scratch<T, 5>(count * P);
}

// db[o] = conv2d_bias_grad(s, dy, o) for every channel, to the same bits,
// with each thread reading only its own block of samples: the one it wrote
// dy for in the passes before (static schedule over samples). Thread t
// takes every channel's sums where thread t-1 left them and carries them
// on over its samples, channel after channel, so the threads work as a
// pipeline and every sum still runs over the samples in order. Reading
// other threads' samples instead costs about 1 ms per MNIST step when a
// virtual machine's two CPUs sit far apart.
// With dy from a plane source (see StoredPlanes): the same sums, to the same bits.
template <typename T, typename Planes>
void conv2d_bias_grads_planes(const Conv2dShape& s, const Planes& planes, T* db) {
  const std::int64_t P = s.OH() * s.OW();
  T* storage =
      thread_scratch<T, 3>(s.OC * static_cast<std::int64_t>(sizeof(BiasSum<T>) / sizeof(T)));
  BiasSum<T>* sums = reinterpret_cast<BiasSum<T>*>(storage);
  for (std::int64_t o = 0; o < s.OC; ++o) new (sums + o) BiasSum<T>();
  constexpr int kMaxStages = 64;
  struct alignas(64) Progress {  // channels a thread has finished, one cache line each
    std::atomic<std::int64_t> channels{0};
  };
  Progress done[kMaxStages];
  parallel_blocks(s.N, kMaxStages, [&](int t, std::int64_t n0, std::int64_t n1) {
    T* buffer = dy_plane_buffer<T>(1, P);
    for (std::int64_t o = 0; o < s.OC; ++o) {
      if (t > 0)
        while (done[t - 1].channels.load(std::memory_order_acquire) <= o) spin_pause();
      for (std::int64_t n = n0; n < n1; ++n) sums[o].add_plane(planes(n, o, buffer), P);
      done[t].channels.store(o + 1, std::memory_order_release);
    }
  });
  for (std::int64_t o = 0; o < s.OC; ++o) db[o] = sums[o].total();
}

template <typename T>
void conv2d_bias_grads(const Conv2dShape& s, const T* dy, T* db) {
  conv2d_bias_grads_planes(s, StoredPlanes<T>{dy, s.OC, s.OH() * s.OW()}, db);
}

}  // namespace minidl::kernels
