// minidl/loss/mse.hpp - mean squared error, as torch.nn.MSELoss.
#pragma once

#include "minidl/core/error.hpp"
#include "minidl/core/tensor.hpp"
#include "minidl/kernels/losses.hpp"
#include "minidl/loss/reduction.hpp"

namespace minidl {

// torch.nn.MSELoss(reduction): (input - target)^2 over every element, mean
// or sum. forward() returns the loss and keeps d loss/d input for backward().
template <typename T>
class MSELoss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::mean) : reduction_(reduction) {}

  T forward(const Tensor<T>& input, const Tensor<T>& target) {
    if (input.empty() || input.shape() != target.shape())
      fail("MSELoss: input ", input.shape().str(), " and target ", target.shape().str(),
           " must have the same non-empty shape");
    dinput_.resize(input.shape());
    return static_cast<T>(kernels::mse(input.size(), input.data(), target.data(),
                                       reduction_scale(reduction_, input.size()), dinput_.data()));
  }

  // d loss/d input of the last forward.
  const Tensor<T>& backward() const { return dinput_; }

 private:
  Reduction reduction_;
  Tensor<T> dinput_;
};

}  // namespace minidl
