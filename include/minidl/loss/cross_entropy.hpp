// minidl/loss/cross_entropy.hpp - softmax cross-entropy over class logits.
#pragma once

#include <cstdint>

#include "minidl/core/batch_reducer.hpp"
#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/kernels/losses.hpp"
#include "minidl/kernels/softmax_xent.hpp"
#include "minidl/loss/reduction.hpp"

namespace minidl {

// torch.nn.CrossEntropyLoss(reduction, label_smoothing) on logits [N, K] and
// integer labels in [0, K). With label_smoothing s the target is 1 - s + s/K
// on the label and s/K elsewhere. forward() returns the loss and keeps the
// gradient with respect to the logits for backward().
template <typename T>
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::mean, double label_smoothing = 0)
      : reduction_(reduction), label_smoothing_(label_smoothing) {
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
      fail("CrossEntropyLoss: label_smoothing must be in [0, 1], got ", label_smoothing);
  }

  // With `share`, logits are one process's rows of a batch split between
  // processes: the loss and the gradient are the whole batch's, on every
  // process (the sum goes round them in row order).
  T forward(const Tensor<T>& logits, const std::int32_t* labels, const BatchShare& share = {}) {
    if (logits.rank() != 2 || logits.dim(0) == 0)
      fail("CrossEntropyLoss: expected logits [N, K] with N > 0, got ", logits.shape().str());
    const std::int64_t n = logits.dim(0), k = logits.dim(1);
    for (std::int64_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= k)
        fail("CrossEntropyLoss: label ", labels[i], " of sample ", i, " is outside [0, ", k, ")");
    dlogits_.resize(logits.shape());
    const std::int64_t count = share.global_count(n);
    const double scale = reduction_scale(reduction_, count);
    // The plain mean keeps the kernel the training step has always used.
    const bool plain = reduction_ == Reduction::mean && label_smoothing_ == 0;
    double total = 0;
    fold_over_batch(share, {fold_state(&total, 1)}, [&](bool carried) {
      const double start = carried ? total : 0.0;
      total =
          plain ? kernels::softmax_xent_sum(n, k, logits.data(), labels, count, dlogits_.data(),
                                            start)
                : kernels::softmax_xent_smoothed_sum(n, k, logits.data(), labels, label_smoothing_,
                                                     scale, dlogits_.data(), start);
    });
    if (plain) return static_cast<T>(total / static_cast<double>(count));
    return static_cast<T>(total * scale);
  }

  // dL/dlogits of the last forward.
  const Tensor<T>& backward() const { return dlogits_; }

 private:
  Reduction reduction_;
  double label_smoothing_;
  Tensor<T> dlogits_;
};

}  // namespace minidl
