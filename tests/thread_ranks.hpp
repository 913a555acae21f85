// tests/thread_ranks.hpp - data-parallel ranks simulated by threads of one process, for tests
// of the reductions without MPI.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "minidl/core/batch_reducer.hpp"
#include "minidl/core/parallel.hpp"

namespace minidl::testing {

// What the ranks share: a mailbox per rank for carries, and numbered exchanges in which every
// rank deposits its bytes and reads everyone's (the in-process stand-in for a broadcast or an
// allreduce).
class ThreadWorld {
 public:
  explicit ThreadWorld(int ranks) : ranks_(ranks), mailbox_(static_cast<std::size_t>(ranks)) {}
  int ranks() const { return ranks_; }

  void send(int to, const void* data, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto* p = static_cast<const char*>(data);
    mailbox_[static_cast<std::size_t>(to)].emplace_back(p, p + bytes);
    changed_.notify_all();
  }
  void receive(int rank, void* data, std::size_t bytes) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto& box = mailbox_[static_cast<std::size_t>(rank)];
    changed_.wait(lock, [&] { return !box.empty(); });
    if (bytes > 0) std::memcpy(data, box.front().data(), bytes);  // an empty state may be null
    box.erase(box.begin());
  }
  // Exchange number `round`: deposits this rank's bytes, waits for all, returns them in rank
  // order.
  std::vector<std::vector<char>> exchange(std::uint64_t round, int rank, const void* data,
                                          std::size_t bytes) {
    std::unique_lock<std::mutex> lock(mutex_);
    Round& r = rounds_[round];
    r.parts.resize(static_cast<std::size_t>(ranks_));
    const auto* p = static_cast<const char*>(data);
    r.parts[static_cast<std::size_t>(rank)].assign(p, p + bytes);
    ++r.deposited;
    changed_.notify_all();
    changed_.wait(lock, [&] { return r.deposited == ranks_; });
    std::vector<std::vector<char>> parts = r.parts;
    if (++r.read == ranks_) rounds_.erase(round);
    return parts;
  }

 private:
  struct Round {
    std::vector<std::vector<char>> parts;
    int deposited = 0, read = 0;
  };
  int ranks_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<std::vector<char>>> mailbox_;
  std::map<std::uint64_t, Round> rounds_;
};

// One rank's BatchReducer: the carry comes from rank - 1 and goes to rank + 1; the last rank's
// state, the whole batch's, is what every rank ends with.
class ThreadRankReducer : public BatchReducer {
 public:
  ThreadRankReducer(ThreadWorld& world, int rank) : world_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int ranks() const override { return world_.ranks(); }
  bool receive_carry(void* state, std::size_t bytes) override {
    if (rank_ == 0) return false;
    world_.receive(rank_, state, bytes);
    return true;
  }
  void pass_on(void* state, std::size_t bytes) override {
    if (rank_ + 1 < ranks()) world_.send(rank_ + 1, state, bytes);
  }
  void take_total(void* state, std::size_t bytes) override {
    const auto parts = world_.exchange(round_++, rank_, state, bytes);
    if (bytes > 0) std::memcpy(state, parts.back().data(), bytes);
  }
  void sum_counts(std::int64_t* values, std::size_t count) override {
    const auto parts = world_.exchange(round_++, rank_, values, count * sizeof(std::int64_t));
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = 0;
      for (const auto& p : parts) {
        std::int64_t v;
        std::memcpy(&v, p.data() + i * sizeof v, sizeof v);
        values[i] += v;
      }
    }
  }
  bool any(bool flag) override {
    const char c = flag ? 1 : 0;
    const auto parts = world_.exchange(round_++, rank_, &c, 1);
    for (const auto& p : parts)
      if (p[0]) return true;
    return false;
  }
  void broadcast(void* data, std::size_t bytes) override {
    const auto parts = world_.exchange(round_++, rank_, data, bytes);
    if (bytes > 0) std::memcpy(data, parts.front().data(), bytes);
  }

 private:
  ThreadWorld& world_;
  int rank_;
  std::uint64_t round_ = 0;
};

// Runs body(reducer) on `ranks` threads, `threads_per_rank` OpenMP threads each, and waits
// for all.
inline void run_thread_ranks(int ranks, const std::function<void(ThreadRankReducer&)>& body,
                             int threads_per_rank = 1) {
  ThreadWorld world(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&world, &body, r, threads_per_rank] {
      set_num_threads(threads_per_rank);
      ThreadRankReducer reducer(world, r);
      body(reducer);
    });
  for (auto& t : threads) t.join();
}

}  // namespace minidl::testing
