// minidl/loss/bce_with_logits.hpp - binary cross-entropy on logits, as torch.nn.BCEWithLogitsLoss.
#pragma once

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/kernels/losses.hpp"
#include "minidl/loss/reduction.hpp"

namespace minidl {

// torch.nn.BCEWithLogitsLoss(reduction) without weight or pos_weight: the
// sigmoid and the cross-entropy in one numerically stable formula, so a logit
// of any size gives a finite loss and gradient. Targets are probabilities in
// [0, 1] (usually 0 or 1). forward() returns the loss and keeps
// d loss/d logits for backward().
template <typename T>
class BCEWithLogitsLoss {
 public:
  explicit BCEWithLogitsLoss(Reduction reduction = Reduction::mean) : reduction_(reduction) {}

  T forward(const Tensor<T>& logits, const Tensor<T>& target) {
    if (logits.empty() || logits.shape() != target.shape())
      fail("BCEWithLogitsLoss: logits ", logits.shape().str(), " and target ", target.shape().str(),
           " must have the same non-empty shape");
    for (std::int64_t i = 0; i < target.size(); ++i)
      if (!(target[i] >= T(0) && target[i] <= T(1)))
        fail("BCEWithLogitsLoss: target ", target[i], " of element ", i, " is outside [0, 1]");
    dlogits_.resize(logits.shape());
    return static_cast<T>(kernels::bce_with_logits(logits.size(), logits.data(), target.data(),
                                                   reduction_scale(reduction_, logits.size()),
                                                   dlogits_.data()));
  }

  // d loss/d logits of the last forward.
  const Tensor<T>& backward() const { return dlogits_; }

 private:
  Reduction reduction_;
  Tensor<T> dlogits_;
};

}  // namespace minidl
