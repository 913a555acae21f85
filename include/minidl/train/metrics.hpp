// minidl/train/metrics.hpp - argmax predictions, accuracy and the confusion matrix.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl {

// Index of the largest logit of each row of [N, K] (the first on ties).
template <typename T>
std::vector<std::int32_t> argmax_rows(const Tensor<T>& logits) {
  if (logits.rank() != 2) fail("argmax_rows: expected [N, K], got ", logits.shape().str());
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = logits.data() + i * k;
    out[static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(std::max_element(row, row + k) - row);
  }
  return out;
}

// counts[t * K + p] = how many samples of true class t were predicted as p.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes)
      : k_(classes), counts_(static_cast<std::size_t>(classes * classes), 0) {}

  void add(int truth, int predicted) {
    if (truth < 0 || truth >= k_ || predicted < 0 || predicted >= k_)
      fail("ConfusionMatrix: class pair (", truth, ", ", predicted, ") outside [0, ", k_, ")");
    ++counts_[static_cast<std::size_t>(truth * k_ + predicted)];
  }

  int classes() const { return k_; }
  std::int64_t at(int truth, int predicted) const {
    return counts_[static_cast<std::size_t>(truth * k_ + predicted)];
  }
  const std::vector<std::int64_t>& counts() const { return counts_; }

  std::int64_t total() const {
    std::int64_t s = 0;
    for (auto c : counts_) s += c;
    return s;
  }
  std::int64_t correct() const {
    std::int64_t s = 0;
    for (int i = 0; i < k_; ++i) s += at(i, i);
    return s;
  }
  double accuracy() const {
    return total() ? static_cast<double>(correct()) / static_cast<double>(total()) : 0.0;
  }

  // Fraction of each true class predicted correctly.
  std::vector<double> per_class_accuracy() const {
    std::vector<double> acc(static_cast<std::size_t>(k_), 0.0);
    for (int t = 0; t < k_; ++t) {
      std::int64_t row = 0;
      for (int p = 0; p < k_; ++p) row += at(t, p);
      acc[static_cast<std::size_t>(t)] =
          row ? static_cast<double>(at(t, t)) / static_cast<double>(row) : 0.0;
    }
    return acc;
  }

  struct Confusion {
    int truth, predicted;
    std::int64_t count;
  };
  // The off-diagonal cells with the most samples, largest first.
  std::vector<Confusion> most_confused(std::size_t how_many) const {
    std::vector<Confusion> cells;
    for (int t = 0; t < k_; ++t)
      for (int p = 0; p < k_; ++p)
        if (t != p && at(t, p) > 0) cells.push_back({t, p, at(t, p)});
    std::stable_sort(cells.begin(), cells.end(),
                     [](const Confusion& a, const Confusion& b) { return a.count > b.count; });
    if (cells.size() > how_many) cells.resize(how_many);
    return cells;
  }

 private:
  int k_;
  std::vector<std::int64_t> counts_;
};

}  // namespace minidl
