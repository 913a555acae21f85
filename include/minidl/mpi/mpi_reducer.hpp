// minidl/mpi/mpi_reducer.hpp - data-parallel training over MPI: the BatchReducer whose carries
// go from rank to rank and whose totals come back from the last rank.
//
// Part of minidl::mpi (CMake target built when find_package(MPI) finds MPI); the core needs none
// of it. Each rank holds a contiguous run of whole chunks of every global batch
// (batch_share_range); a sum over the batch is a fold that rank r continues from the carry of
// rank r - 1 and passes to rank r + 1; the last rank's result, the whole batch's, is broadcast.
// Every rank therefore ends each step with the same bits as one process on the whole batch.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "minidl/core/batch_reducer.hpp"
#include "minidl/core/error.hpp"

namespace minidl::mpi {

// Whether this process was started by an MPI launcher (mpirun, srun): without one the commands
// do not initialise MPI at all and run exactly as a plain process.
inline bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(name)) return true;
  return false;
}

// MPI for the life of the object. Only the thread that made it calls MPI (the OpenMP master
// thread), so MPI_THREAD_FUNNELED is enough. Errors abort the whole job (MPI's default
// handler): a collective never waits for a rank that is gone.
class Session {
 public:
  Session(int* argc, char*** argv) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
  }
  ~Session() { MPI_Finalize(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  // Ends every rank of the job with `code`, for an error that only this rank may have hit.
  [[noreturn]] void abort(int code) const {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();
  }

 private:
  int rank_ = 0, ranks_ = 1;
};

class Reducer : public BatchReducer {
 public:
  explicit Reducer(const Session& session) : rank_(session.rank()), ranks_(session.ranks()) {}

  int rank() const override { return rank_; }
  int ranks() const override { return ranks_; }

  bool receive_carry(void* state, std::size_t bytes) override {
    if (rank_ == 0) return false;
    for_pieces(state, bytes, [&](char* p, int n) {
      MPI_Recv(p, n, MPI_BYTE, rank_ - 1, kCarryTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    });
    return true;
  }
  void pass_on(void* state, std::size_t bytes) override {
    if (rank_ + 1 == ranks_) return;
    for_pieces(state, bytes, [&](char* p, int n) {
      MPI_Send(p, n, MPI_BYTE, rank_ + 1, kCarryTag, MPI_COMM_WORLD);
    });
  }
  void take_total(void* state, std::size_t bytes) override {
    for_pieces(state, bytes,
               [&](char* p, int n) { MPI_Bcast(p, n, MPI_BYTE, ranks_ - 1, MPI_COMM_WORLD); });
  }
  void sum_counts(std::int64_t* values, std::size_t count) override {
    MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_INT64_T, MPI_SUM,
                  MPI_COMM_WORLD);
  }
  bool any(bool flag) override {
    int v = flag ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return v != 0;
  }
  void broadcast(void* data, std::size_t bytes) override {
    for_pieces(data, bytes, [&](char* p, int n) { MPI_Bcast(p, n, MPI_BYTE, 0, MPI_COMM_WORLD); });
  }

  // Rank 0's text on every rank.
  std::string broadcast_text(const std::string& text) {
    std::int64_t size = static_cast<std::int64_t>(text.size());
    broadcast(&size, sizeof size);
    std::string out = rank_ == 0 ? text : std::string(static_cast<std::size_t>(size), '\0');
    broadcast(out.data(), out.size());
    return out;
  }

  // Whether any rank failed, and the first failing rank's message on every rank ("" if none).
  std::string first_failure(const std::string& my_error) {
    int first = my_error.empty() ? INT_MAX : rank_;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX) return "";
    std::int64_t size = static_cast<std::int64_t>(my_error.size());
    MPI_Bcast(&size, 1, MPI_INT64_T, first, MPI_COMM_WORLD);
    std::string text =
        rank_ == first ? my_error : std::string(static_cast<std::size_t>(size), '\0');
    for_pieces(text.data(), text.size(),
               [&](char* p, int n) { MPI_Bcast(p, n, MPI_BYTE, first, MPI_COMM_WORLD); });
    return "rank " + std::to_string(first) + ": " + text;
  }

 private:
  static constexpr int kCarryTag = 19;

  // MPI counts are ints: larger states go in pieces of 1 GiB.
  template <typename Op>
  static void for_pieces(void* data, std::size_t bytes, Op&& op) {
    constexpr std::size_t kPiece = std::size_t(1) << 30;
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes; done += kPiece)
      op(p + done, static_cast<int>(std::min(kPiece, bytes - done)));
  }

  int rank_, ranks_;
};

// Refuses to start ranks that were given different settings or data: every rank describes its
// run in `description` (one "name=value" line each: flags, data files' sizes and checksums),
// and a rank whose description differs from rank 0's names the first line that differs.
// Returns "" when all agree, else the message every rank prints.
inline std::string configuration_mismatch(Reducer& reducer, const std::string& description) {
  const std::string reference = reducer.broadcast_text(description);
  std::string mine;
  if (description != reference) {
    auto lines = [](const std::string& text) {
      std::vector<std::string> out;
      std::size_t start = 0;
      while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        out.push_back(text.substr(start, end - start));
        start = end + 1;
      }
      return out;
    };
    const auto a = lines(reference), b = lines(description);
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    mine = "its run differs from rank 0's: " + (i < b.size() ? b[i] : std::string("(nothing)")) +
           " where rank 0 has " + (i < a.size() ? a[i] : std::string("(nothing)")) +
           "; start every rank with the same flags and data";
  }
  return reducer.first_failure(mine);
}

}  // namespace minidl::mpi
