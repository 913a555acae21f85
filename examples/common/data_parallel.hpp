// examples/common/data_parallel.hpp - the ranks of a data-parallel run under mpirun, or the one
// process of a plain run; what the training commands ask of them.
//
// Built with minidl::mpi (MINIDL_WITH_MPI) and started by mpirun, a command trains on every
// rank: each takes its share of every global batch, the sums over the batch go round the ranks
// in batch order (minidl/core/batch_reducer.hpp), and all ranks end each step with the same
// weights as one process. Rank 0 evaluates, prints, and writes the checkpoints and pictures;
// the other ranks print nothing but their own errors. Without mpirun nothing changes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "args.hpp"
#include "minidl/core/batch_reducer.hpp"

#ifdef MINIDL_WITH_MPI
#include "minidl/mpi/mpi_reducer.hpp"
#endif

namespace cli {

class DataParallel {
 public:
  // Starts MPI when this process was launched by mpirun; else a single process.
  DataParallel(int* argc, char*** argv) {
#ifdef MINIDL_WITH_MPI
    if (minidl::mpi::launched_by_mpi()) {
      session_ = std::make_unique<minidl::mpi::Session>(argc, argv);
      mpi_ = std::make_unique<minidl::mpi::Reducer>(*session_);
      if (session_->rank() > 0 && !std::freopen("/dev/null", "w", stdout))
        std::fprintf(stderr, "rank %d: cannot silence its output\n", session_->rank());
    }
#else
    (void)argc;
    (void)argv;
#endif
    current() = this;
  }
  ~DataParallel() {
    current() = nullptr;
  }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // The run's ranks; a plain process when none was made (a test calling a command directly).
  static DataParallel* active() {
    return current();
  }

  int rank() const {
    return reducer().rank();
  }
  int ranks() const {
    return reducer().ranks();
  }
  bool leader() const {
    return rank() == 0;
  }
  minidl::BatchReducer& reducer() const {
#ifdef MINIDL_WITH_MPI
    if (mpi_) return *mpi_;
#endif
    return single_;
  }

  // This rank's samples of a global batch of `count`, and the share train_step takes.
  minidl::SampleRange range(std::int64_t count) const {
    return minidl::batch_share_range(count, rank(), ranks());
  }
  minidl::BatchShare share(std::int64_t count) const {
    return minidl::BatchShare{&reducer(), range(count).first, count};
  }

  // After each rank set up on its own: throws on every rank when one of them failed (`error`
  // is this rank's message, "" if none). Rank 0 prints the message, with the failing rank's
  // number; a usage error (`usage`) exits 2 as it would in one process.
  void require_all_started(const std::string& error, bool usage) {
#ifdef MINIDL_WITH_MPI
    if (mpi_) {
      const std::string first =
          mpi_->first_failure(error.empty() ? "" : (usage ? "2" : "1") + error);
      if (first.empty()) return;
      agreed_ = true;  // every rank knows: they can end together
      // "rank R: " then the code digit, then the message.
      const std::size_t colon = first.find(": ");
      const std::string message = first.substr(0, colon + 2) + first.substr(colon + 3);
      quiet_unless_leader();
      if (first[colon + 2] == '2') throw UsageError(message);
      throw minidl::Error(message);
    }
#endif
    (void)error;
    (void)usage;
  }

  // Refuses, on every rank, ranks whose runs differ: `description` lists the run's settings and
  // a fingerprint of its data, one "name=value" line each.
  void require_same_run(const std::string& command, const std::string& description) {
#ifdef MINIDL_WITH_MPI
    if (mpi_) {
      const std::string mismatch = minidl::mpi::configuration_mismatch(*mpi_, description);
      if (mismatch.empty()) return;
      agreed_ = true;
      quiet_unless_leader();
      throw UsageError(command + ": " + mismatch);
    }
#endif
    (void)command;
    (void)description;
  }

  // Whether any rank asks to stop (a signal), so that all stop after the same step.
  bool any(bool flag) {
    return reducer().any(flag);
  }

  // The exit status `code` of this rank. A rank that fails alone must not leave the others
  // waiting in a collective: the whole job is aborted with its status instead.
  int finish(int code) {
#ifdef MINIDL_WITH_MPI
    if (mpi_ && code != 0 && !agreed_) {
      std::fflush(stdout);
      std::fflush(stderr);
      session_->abort(code);
    }
#endif
    return code;
  }
  // Marks a stop that every rank takes at the same point (a signal): rank 0 alone says so.
  void ending_together() {
    agreed_ = true;
    quiet_unless_leader();
  }
  // The same for a refusal every rank reaches on its own: rank 0 alone says why.
  void refusing_together() {
    agreed_ = true;
    quiet_unless_leader();
  }

 private:
  static DataParallel*& current() {
    static DataParallel* instance = nullptr;
    return instance;
  }
  void quiet_unless_leader() {
    if (!leader() && !std::freopen("/dev/null", "w", stderr)) return;
  }

  mutable minidl::BatchReducer single_;
  bool agreed_ = false;
#ifdef MINIDL_WITH_MPI
  std::unique_ptr<minidl::mpi::Session> session_;
  std::unique_ptr<minidl::mpi::Reducer> mpi_;
#endif
};

// The run's ranks, or a single process when no DataParallel was made.
inline DataParallel& data_parallel() {
  static DataParallel* fallback = nullptr;
  if (DataParallel* dp = DataParallel::active()) return *dp;
  if (!fallback) {
    static int argc = 0;
    static char** argv = nullptr;
    static DataParallel single(&argc, &argv);
    fallback = &single;
  }
  return *fallback;
}

// Every batch of an epoch of `images` (the last one too) must give each rank at least one chunk
// of samples; says so before training rather than in the middle of the first epoch.
inline void require_chunk_per_rank(DataParallel& ranks, std::int64_t images, std::int64_t batch,
                                   const std::string& command) {
  if (ranks.ranks() == 1) return;
  const std::int64_t last = images % batch == 0 ? batch : images % batch;
  for (std::int64_t count : {batch, last}) {
    const std::int64_t chunks = (count + minidl::kBatchShareChunk - 1) / minidl::kBatchShareChunk;
    if (chunks < ranks.ranks()) {
      ranks.refusing_together();
      throw UsageError(command + ": " + std::to_string(ranks.ranks()) + " ranks need at least " +
                       std::to_string(ranks.ranks()) + " chunks of " +
                       std::to_string(minidl::kBatchShareChunk) + " images in every batch, but " +
                       (count == batch ? "a batch" : "the last batch of an epoch") + " has " +
                       std::to_string(count) + " images (" + std::to_string(chunks) +
                       " chunks); use fewer ranks, a larger --batch or another --limit-train");
    }
  }
}

// A fingerprint of bytes (FNV-1a, 64 bits), for comparing data between ranks.
inline std::uint64_t fingerprint(const std::uint8_t* data, std::size_t size,
                                 std::uint64_t h = 1469598103934665603ULL) {
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ULL;
  return h;
}

}  // namespace cli
