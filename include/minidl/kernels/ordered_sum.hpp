// minidl/kernels/ordered_sum.hpp - partial results of fixed chunks, summed in chunk order.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/memory.hpp"
#include "minidl/core/parallel.hpp"

namespace minidl::kernels {

// A gradient summed over a batch is computed as one partial result per fixed
// chunk of samples, and the partials are then added up element by element
// in chunk order, ((p0 + p1) + p2) + ..., so the bits depend on the chunk
// size alone, never on the number of threads.
//
// sum_partials_in_order runs compute(chunk, part) for every chunk in
// [0, chunks), which fills that chunk's partial (`part_size` elements at
// partials + chunk * part_size), and then hands each of the first `blocks`
// blocks of `block` elements, summed over all chunks, to emit(b, sum).
//
// Each thread takes a contiguous run of chunks, the ones OpenMP's static
// schedule gives it (so it reads the samples it wrote in the passes before),
// and adds up only its own partials: thread t takes the sums of thread t - 1
// block by block and carries them on over its chunks, the threads working as
// a pipeline. One partial's worth of sums crosses from one thread to the
// next, where summing each block over all partials on one thread would read
// half of them from the other: a cache line at a time, and slowly when a
// virtual machine's two CPUs sit far apart.
//
// start(b, sum) continues a sum that another process began (a fold over the
// samples before this batch's share, core/batch_reducer.hpp): it writes the
// running sum of block b into `sum` and returns true, and the chunks are
// then added to it, ((carry + p0) + p1) + ..., or it returns false and the
// sum starts from p0. Called by the first thread only, block by block.
template <typename T, typename Compute, typename Emit, typename Start>
void sum_partials_in_order(std::int64_t chunks, std::int64_t part_size, std::int64_t blocks,
                           std::int64_t block, T* partials, Compute&& compute, Emit&& emit,
                           Start&& start) {
  constexpr int kMaxStages = 64;
  struct alignas(64) Progress {  // blocks a thread has summed, one cache line each
    std::atomic<std::int64_t> blocks{0};
  };
  Progress done[kMaxStages];
  if (chunks <= 0) {  // nothing to sum: zeros, or the carry as it came
    T* const zeros = thread_scratch<T, 4>(block);
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (!start(b, zeros)) std::fill_n(zeros, block, T(0));
      emit(b, static_cast<const T*>(zeros));
    }
    return;
  }
  // At most one thread per chunk, so that every stage has a chunk.
  const int stages = static_cast<int>(std::min<std::int64_t>(chunks, kMaxStages));
  parallel_blocks(chunks, stages, [&](int t, std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) compute(c, partials + c * part_size);
    // Thread t - 1 leaves its sums in the partial of its last chunk, c0 - 1.
    const T* from = partials + (t == 0 ? c0 : c0 - 1) * part_size;
    const std::int64_t first = t == 0 ? c0 + 1 : c0;
    const bool last = c1 == chunks;
    T* const sum = thread_scratch<T, 4>(block);
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (t > 0)
        while (done[t - 1].blocks.load(std::memory_order_acquire) <= b) spin_pause();
      const std::int64_t offset = b * block;
      const bool carried = t == 0 && start(b, sum);
      if (!carried)
        for (std::int64_t j = 0; j < block; ++j) sum[j] = from[offset + j];
      for (std::int64_t c = carried ? c0 : first; c < c1; ++c) {
        const T* part = partials + c * part_size + offset;
        MINIDL_VECTORIZE  // sum is this thread's scratch, never a partial
        for (std::int64_t j = 0; j < block; ++j) sum[j] += part[j];
      }
      if (last) {
        emit(b, static_cast<const T*>(sum));
      } else {
        T* to = partials + (c1 - 1) * part_size + offset;
        for (std::int64_t j = 0; j < block; ++j) to[j] = sum[j];
        done[t].blocks.store(b + 1, std::memory_order_release);
      }
    }
  });
}

// What a kernel that continues a carry calls just before it first reads it:
// nothing in one process; under MPI, the receive of the carry, which can so
// wait until the chunks' partials are computed (core/batch_reducer.hpp).
struct NoWait {
  void operator()() const {}
};

// The same without a carry: the sum starts from the first chunk's partial.
template <typename T, typename Compute, typename Emit>
void sum_partials_in_order(std::int64_t chunks, std::int64_t part_size, std::int64_t blocks,
                           std::int64_t block, T* partials, Compute&& compute, Emit&& emit) {
  sum_partials_in_order(chunks, part_size, blocks, block, partials, compute, emit,
                        [](std::int64_t, T*) { return false; });
}

// sum_partials_in_order for a compute that can fill part of a partial:
// compute(chunk, part, b0, b1) fills blocks [b0, b1) of that chunk's
// partial, for b0 and b1 multiples of `grain` (or b1 = blocks). With at least
// as many chunks as threads it is the pipeline above, each chunk computed
// whole. With fewer (a batch of one to four images is one chunk of a
// convolution's weight gradient), the threads share each chunk's blocks
// instead, so that every thread has work; then each thread sums its share
// of the blocks over the chunks in order as above (with a single chunk,
// the blocks it computed), calling start for each of them (block 0's
// first, on the calling thread, so that a carry received there is in
// place before any other block reads it; start must take the other
// blocks on any thread).
// Every partial value is computed as the whole chunk computes it and the
// sums run in the same order, so the bits do not depend on the cut.
template <typename T, typename Compute, typename Emit, typename Start>
void sum_partials_in_order_shared(std::int64_t chunks, std::int64_t part_size, std::int64_t blocks,
                                  std::int64_t block, std::int64_t grain, T* partials,
                                  Compute&& compute, Emit&& emit, Start&& start) {
  const int threads = num_threads();
  const std::int64_t grains = (blocks + grain - 1) / grain;
  if (chunks <= 0 || chunks >= threads || grains < 2) {
    sum_partials_in_order(
        chunks, part_size, blocks, block, partials,
        [&](std::int64_t c, T* part) { compute(c, part, std::int64_t(0), blocks); }, emit, start);
    return;
  }
  const std::int64_t shares = std::min<std::int64_t>(grains, threads / chunks);
  auto share_blocks = [&](std::int64_t share, std::int64_t& b0, std::int64_t& b1) {
    b0 = std::min(blocks, grains * share / shares * grain);
    b1 = std::min(blocks, grains * (share + 1) / shares * grain);
  };
  parallel_blocks(chunks * shares, threads, [&](int, std::int64_t u0, std::int64_t u1) {
    for (std::int64_t u = u0; u < u1; ++u) {
      std::int64_t b0, b1;
      share_blocks(u % shares, b0, b1);
      if (b0 < b1) compute(u / shares, partials + (u / shares) * part_size, b0, b1);
    }
  });
  T* const first = thread_scratch<T, 4>(block);
  const bool carried = start(0, first);
  parallel_blocks(shares, threads, [&](int, std::int64_t s0, std::int64_t s1) {
    T* const sum = thread_scratch<T, 4>(block);
    for (std::int64_t share = s0; share < s1; ++share) {
      std::int64_t b0, b1;
      share_blocks(share, b0, b1);
      for (std::int64_t b = b0; b < b1; ++b) {
        // Block 0's carry is already in `first`, this thread's scratch or
        // the calling thread's.
        const bool from_carry = b == 0 ? carried : start(b, sum);
        if (b == 0 && sum != first && carried) std::copy_n(first, block, sum);
        if (!from_carry) std::copy_n(partials + b * block, block, sum);
        for (std::int64_t c = from_carry ? 0 : 1; c < chunks; ++c) {
          const T* part = partials + c * part_size + b * block;
          MINIDL_VECTORIZE  // sum is this thread's scratch, never a partial
          for (std::int64_t j = 0; j < block; ++j) sum[j] += part[j];
        }
        emit(b, static_cast<const T*>(sum));
      }
    }
  });
}

// The same without a carry.
template <typename T, typename Compute, typename Emit>
void sum_partials_in_order_shared(std::int64_t chunks, std::int64_t part_size, std::int64_t blocks,
                                  std::int64_t block, std::int64_t grain, T* partials,
                                  Compute&& compute, Emit&& emit) {
  sum_partials_in_order_shared(chunks, part_size, blocks, block, grain, partials, compute, emit,
                               [](std::int64_t, T*) { return false; });
}

}  // namespace minidl::kernels
