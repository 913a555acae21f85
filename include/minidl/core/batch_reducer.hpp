// minidl/core/batch_reducer.hpp - sums over a batch split across processes, in one fixed order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "minidl/core/error.hpp"

namespace minidl {

// Samples are split between processes in whole chunks of this many, the
// chunk the convolutions' weight gradients are summed over
// (kernels::kConvWeightChunk), so that no chunk straddles two processes.
inline constexpr std::int64_t kBatchShareChunk = 4;

// Every sum over the batch in minidl is a left fold over the samples in
// batch order, ((s0 + s1) + s2) + ... (over whole chunks of 4 for the
// convolutions, over samples for the rest), with a state that may be wider
// than the result (a vector of partial lanes). Such a fold can be cut
// anywhere between chunks and continued: a process that holds samples
// [a, b) of the batch takes the state after sample a - 1 (the carry), folds
// its own samples into it and passes it on. The result is the same bits as
// one process folding the whole batch, for any number of processes.
//
// A BatchReducer moves those carries between processes. This one is the
// single process: there is never a carry, and nothing to pass on. The MPI
// one is minidl/mpi/mpi_reducer.hpp; tests simulate ranks with threads.
class BatchReducer {
 public:
  virtual ~BatchReducer() = default;
  virtual int rank() const { return 0; }
  virtual int ranks() const { return 1; }

  // Before this process folds its samples: fills `state` with the state of
  // the fold over the samples of the processes before it and returns true,
  // or returns false for the process holding the batch's first samples.
  virtual bool receive_carry(void* state, std::size_t bytes) {
    (void)state;
    (void)bytes;
    return false;
  }
  // After: passes `state` on to the process holding the next samples.
  virtual void pass_on(void* state, std::size_t bytes) {
    (void)state;
    (void)bytes;
  }
  // Then, on every process, `state` becomes the fold over the whole batch
  // (the last process's state).
  virtual void take_total(void* state, std::size_t bytes) {
    (void)state;
    (void)bytes;
  }
  // Integer counts (correct predictions) summed over the processes.
  virtual void sum_counts(std::int64_t* values, std::size_t count) {
    (void)values;
    (void)count;
  }
  // Whether any process says `flag` (a stop request), so that all stop at
  // the same step.
  virtual bool any(bool flag) { return flag; }
  // Copies `bytes` at `data` from rank 0 to every process.
  virtual void broadcast(void* data, std::size_t bytes) {
    (void)data;
    (void)bytes;
  }
};

// Which samples of a global batch this process holds, and how its sums over
// the batch continue across processes. The default is a process that holds
// the whole batch.
struct BatchShare {
  BatchReducer* reducer = nullptr;  // null: no other process
  std::int64_t first = 0;           // global index of this process's first sample
  std::int64_t total = 0;           // samples in the global batch; 0: the local batch is all

  std::int64_t global_count(std::int64_t local) const { return total > 0 ? total : local; }
  bool distributed() const { return reducer != nullptr && reducer->ranks() > 1; }
};

// Samples [first, first + count) of a batch of `total` for process `rank`
// of `ranks`: the chunks of kBatchShareChunk samples cut into `ranks`
// contiguous runs, the earlier runs one chunk longer when they do not
// divide evenly. Every process needs at least one chunk.
struct SampleRange {
  std::int64_t first, count;
};
inline SampleRange batch_share_range(std::int64_t total, int rank, int ranks) {
  const std::int64_t chunks = (total + kBatchShareChunk - 1) / kBatchShareChunk;
  if (ranks < 1 || rank < 0 || rank >= ranks) fail("batch share: rank ", rank, " of ", ranks);
  if (chunks < ranks)
    fail("a batch of ", total, " samples has ", chunks, " chunks of ", kBatchShareChunk,
         ", fewer than the ", ranks, " processes; use fewer processes or a larger batch");
  const std::int64_t base = chunks / ranks, extra = chunks % ranks;
  const std::int64_t c0 = rank * base + std::min<std::int64_t>(rank, extra);
  const std::int64_t c1 = c0 + base + (rank < extra ? 1 : 0);
  const std::int64_t first = c0 * kBatchShareChunk;
  return {first, std::min(total, c1 * kBatchShareChunk) - first};
}

// A fold's running state in memory: what a carry copies.
struct FoldState {
  void* data;
  std::size_t bytes;
};
template <typename State>
FoldState fold_state(State* data, std::int64_t count) {
  return {data, static_cast<std::size_t>(count) * sizeof(State)};
}

// Runs fold(carried) on this process's samples between receiving the carries
// into `states` and passing them on (all carries in, all out, then the
// totals, so that no process waits for a message another has not sent yet);
// `carried` says whether the states hold
// carries to continue (else fold starts its sums afresh). Without other
// processes it is fold(false).
template <typename Fold>
void fold_over_batch(const BatchShare& share, std::initializer_list<FoldState> states,
                     Fold&& fold) {
  if (!share.distributed()) {
    fold(false);
    return;
  }
  bool carried = false;
  for (const FoldState& s : states) carried = share.reducer->receive_carry(s.data, s.bytes);
  fold(carried);
  for (const FoldState& s : states) share.reducer->pass_on(s.data, s.bytes);
  for (const FoldState& s : states) share.reducer->take_total(s.data, s.bytes);
}

// fold_over_batch for a fold that can do most of its work before it needs
// the carry (a convolution computes its chunks' partials first):
// fold(carried, receive) calls receive() just before it first reads the
// states (on the thread that called this function), so that the processes
// compute at the same time and wait only for the short sums. Every process
// but the first gets a carry, so `carried` is known before it arrives.
template <typename Fold>
void fold_over_batch_late(const BatchShare& share, std::initializer_list<FoldState> states,
                          Fold&& fold) {
  if (!share.distributed()) {
    fold(false, [] {});
    return;
  }
  bool received = false;
  const auto receive = [&] {
    if (received) return;
    received = true;
    for (const FoldState& s : states) share.reducer->receive_carry(s.data, s.bytes);
  };
  fold(share.reducer->rank() > 0, receive);
  receive();  // a fold that never read the states still takes the carries in turn
  for (const FoldState& s : states) share.reducer->pass_on(s.data, s.bytes);
  for (const FoldState& s : states) share.reducer->take_total(s.data, s.bytes);
}

}  // namespace minidl
