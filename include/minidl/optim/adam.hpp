// minidl/optim/adam.hpp - Adam, as torch.optim.Adam documents it.
#pragma once

#include <cmath>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // L2 penalty added to the gradient (AdamW decouples it)
};

// At step t (from 1: the updates this parameter received), for each element
// with gradient g (beta1: the group's, which OneCycleLR may cycle):
//   g  += weight_decay * p
//   m   = m + (1 - beta1) * (g - m)          (torch: exp_avg.lerp_(g, 1 - beta1))
//   v   = beta2 * v + (1 - beta2) * g^2
//   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// eps is added after the square root, as in PyTorch. AdamW (adamw.hpp) runs
// the same update with the weight decay decoupled from the gradient.
template <typename T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>> params, AdamOptions options = {})
      : Adam(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}}}, options) {}

  Adam(std::vector<ParamGroup<T>> groups, AdamOptions options = {})
      : Adam(std::move(groups), options, /*decoupled_weight_decay=*/false) {}

  std::string type() const override { return decoupled_ ? "adamw" : "adam"; }
  const AdamOptions& options() const { return opt_; }

  void step() override {
    ++this->step_;
    const T b2 = static_cast<T>(opt_.beta2), eps = static_cast<T>(opt_.eps);
    const T b2_rest = static_cast<T>(1.0 - opt_.beta2);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      if (!this->begin_update(i)) continue;  // frozen
      // The parameter's own update count and its group's beta1 (which
      // OneCycleLR may cycle), as PyTorch's per-parameter state.
      const double t = static_cast<double>(this->update_count(i));
      const double beta1 = this->momentum_of(i);
      // 1 - beta is computed in double and rounded once, as PyTorch does: in
      // float, 1.0f - 0.999f is 0.00099998713, not 0.001.
      const T b1_rest = static_cast<T>(1.0 - beta1);
      const double bc1 = 1.0 - std::pow(beta1, t);
      const T bc2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(opt_.beta2, t)));
      const T step_size = static_cast<T>(this->lr_of(i) / bc1);
      // L2 decay joins the gradient; decoupled decay shrinks the parameter first,
      // by 1 - lr * weight_decay computed in double.
      const T wd = decoupled_ ? T(0) : static_cast<T>(this->weight_decay_of(i));
      const T keep =
          decoupled_ ? static_cast<T>(1.0 - this->lr_of(i) * this->weight_decay_of(i)) : T(1);
      T* const p_data = this->params_[i].value->data();
      const T* const g_data = this->params_[i].grad->data();
      T* const m_data = m_[i].data();
      T* const v_data = v_[i].data();
      // Locals, not captures, so that the loop keeps pointers and constants
      // in registers. The loop vectorises when sqrt need not set errno
      // (-fno-math-errno, which the project's own builds use).
      this->for_each_row_block(i, [=](std::int64_t b, std::int64_t e) {
        T* __restrict p = p_data;
        const T* __restrict grad = g_data;
        T* __restrict m = m_data;
        T* __restrict v = v_data;
        const T one_b1 = b1_rest, beta2 = b2, one_b2 = b2_rest, decay = wd;
        const T lr_t = step_size, denom_scale = bc2_sqrt, epsilon = eps, shrink = keep;
        MINIDL_VECTORIZE
        for (std::int64_t j = b; j < e; ++j) {
          p[j] *= shrink;  // exact when shrink is 1 (Adam)
          const T g = decay != T(0) ? grad[j] + decay * p[j] : grad[j];
          m[j] += one_b1 * (g - m[j]);
          v[j] = beta2 * v[j] + one_b2 * g * g;
          p[j] -= lr_t * m[j] / (std::sqrt(v[j]) / denom_scale + epsilon);
        }
      });
    }
  }

  std::vector<std::pair<std::string, Tensor<T>*>> state() override {
    std::vector<std::pair<std::string, Tensor<T>*>> s;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      s.emplace_back("exp_avg." + this->params_[i].name, &m_[i]);
      s.emplace_back("exp_avg_sq." + this->params_[i].name, &v_[i]);
    }
    return s;
  }

 protected:
  // AdamW passes decoupled_weight_decay: the same update with decoupled decay.
  Adam(std::vector<ParamGroup<T>> groups, AdamOptions options, bool decoupled_weight_decay)
      : Optimizer<T>(std::move(groups)), decoupled_(decoupled_weight_decay), opt_(options) {
    if (!(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1))
      fail(type(), ": betas must be in [0, 1), got ", options.beta1, " and ", options.beta2);
    if (!(options.eps >= 0)) fail(type(), ": eps must be >= 0, got ", options.eps);
    this->set_group_defaults(options.lr, options.weight_decay);
    this->set_group_momentum_defaults(options.beta1);  // what OneCycleLR cycles
    m_ = this->zeros_like_params();
    v_ = this->zeros_like_params();
  }

  void check_momentum(double beta1) const override {
    if (!(beta1 >= 0 && beta1 < 1)) fail(type(), ": beta1 must be in [0, 1), got ", beta1);
  }

 private:
  bool decoupled_;
  AdamOptions opt_;
  std::vector<Tensor<T>> m_, v_;  // first and second moments, one per parameter
};

}  // namespace minidl
