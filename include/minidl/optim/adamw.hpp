// minidl/optim/adamw.hpp - AdamW: Adam with decoupled weight decay, as torch.optim.AdamW.
#pragma once

#include "minidl/optim/adam.hpp"

namespace minidl {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // PyTorch's default for AdamW
};

// Each step first shrinks every parameter, p *= 1 - lr * weight_decay (the
// group's lr and weight decay), then takes Adam's step on the plain gradient:
// the decay no longer passes through the moments (Loshchilov and Hutter).
template <typename T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Parameter<T>> params, AdamWOptions options = {})
      : AdamW(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}}}, options) {}

  AdamW(std::vector<ParamGroup<T>> groups, AdamWOptions options = {})
      : Adam<T>(std::move(groups),
                AdamOptions{options.lr, options.beta1, options.beta2, options.eps,
                            options.weight_decay},
                /*decoupled_weight_decay=*/true) {}
};

}  // namespace minidl
