// minidl/loss/nll.hpp - negative log-likelihood of log-probabilities, as torch.nn.NLLLoss.
#pragma once

#include <cstdint>

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/kernels/losses.hpp"
#include "minidl/loss/reduction.hpp"

namespace minidl {

// torch.nn.NLLLoss(reduction) on log-probabilities [N, K] (a LogSoftmax's
// output) and integer labels in [0, K): -logp[n, label_n], mean over the
// batch or sum. No class weights, no ignore_index. forward() returns the
// loss and keeps d loss/d logp for backward().
template <typename T>
class NLLLoss {
 public:
  explicit NLLLoss(Reduction reduction = Reduction::mean) : reduction_(reduction) {}

  T forward(const Tensor<T>& logp, const std::int32_t* labels) {
    if (logp.rank() != 2 || logp.dim(0) == 0)
      fail("NLLLoss: expected log-probabilities [N, K] with N > 0, got ", logp.shape().str());
    const std::int64_t n = logp.dim(0), k = logp.dim(1);
    for (std::int64_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= k)
        fail("NLLLoss: label ", labels[i], " of sample ", i, " is outside [0, ", k, ")");
    dlogp_.resize(logp.shape());
    return static_cast<T>(
        kernels::nll(n, k, logp.data(), labels, reduction_scale(reduction_, n), dlogp_.data()));
  }

  // d loss/d logp of the last forward.
  const Tensor<T>& backward() const { return dlogp_; }

 private:
  Reduction reduction_;
  Tensor<T> dlogp_;
};

}  // namespace minidl
