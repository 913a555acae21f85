// minidl/loss/cross_entropy.hpp - softmax cross-entropy over class logits.
#pragma once

#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/kernels/softmax_xent.hpp"

namespace minidl {

// torch.nn.CrossEntropyLoss() (mean over the batch) on logits [N, K] and
// integer labels in [0, K). forward() returns the loss and keeps the
// gradient with respect to the logits for backward().
template <typename T>
class CrossEntropyLoss {
 public:
  T forward(const Tensor<T>& logits, const std::int32_t* labels) {
    if (logits.rank() != 2 || logits.dim(0) == 0)
      fail("CrossEntropyLoss: expected logits [N, K] with N > 0, got ", logits.shape().str());
    const std::int64_t n = logits.dim(0), k = logits.dim(1);
    for (std::int64_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= k)
        fail("CrossEntropyLoss: label ", labels[i], " of sample ", i, " is outside [0, ", k, ")");
    dlogits_.resize(logits.shape());
    return kernels::softmax_xent(n, k, logits.data(), labels, dlogits_.data());
  }

  // dL/dlogits of the last forward.
  const Tensor<T>& backward() const { return dlogits_; }

 private:
  Tensor<T> dlogits_;
};

}  // namespace minidl
