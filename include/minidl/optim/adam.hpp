// minidl/optim/adam.hpp - Adam, as torch.optim.Adam documents it.
#pragma once

#include <cmath>

#include "minidl/core/parallel.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // L2 penalty added to the gradient (not AdamW)
};

// At step t (from 1), for each element with gradient g:
//   g  += weight_decay * p
//   m   = m + (1 - beta1) * (g - m)          (torch: exp_avg.lerp_(g, 1 - beta1))
//   v   = beta2 * v + (1 - beta2) * g^2
//   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// eps is added after the square root, as in PyTorch.
template <typename T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>> params, AdamOptions options = {})
      : Optimizer<T>(std::move(params)), opt_(options) {
    this->lr_ = options.lr;
    m_ = this->zeros_like_params();
    v_ = this->zeros_like_params();
  }

  std::string type() const override { return "adam"; }
  const AdamOptions& options() const { return opt_; }

  void step() override {
    const std::int64_t t = ++this->step_;
    const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2);
    const T wd = static_cast<T>(opt_.weight_decay), eps = static_cast<T>(opt_.eps);
    const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t));
    const T step_size = static_cast<T>(this->lr_ / bc1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
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
        const T one_b1 = T(1) - b1, beta2 = b2, one_b2 = T(1) - b2, decay = wd;
        const T lr_t = step_size, denom_scale = bc2_sqrt, epsilon = eps;
        for (std::int64_t j = b; j < e; ++j) {
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

 private:
  AdamOptions opt_;
  std::vector<Tensor<T>> m_, v_;  // first and second moments, one per parameter
};

}  // namespace minidl
