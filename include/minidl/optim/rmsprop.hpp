// minidl/optim/rmsprop.hpp - RMSprop, as torch.optim.RMSprop documents it.
#pragma once

#include <cmath>

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

struct RmspropOptions {
  double lr = 1e-2;
  double alpha = 0.99;  // smoothing of the squared-gradient average
  double eps = 1e-8;
  double weight_decay = 0;  // L2 penalty added to the gradient
  double momentum = 0;
  bool centered = false;  // divide by an estimate of the variance, not the second moment
};

// For each element with gradient g:
//   g  += weight_decay * p
//   s   = alpha * s + (1 - alpha) * g^2
//   a   = alpha * a + (1 - alpha) * g            (centered only)
//   d   = sqrt(s - a^2) if centered, else sqrt(s); then d += eps
//   b   = momentum * b + g / d, p -= lr * b      (momentum > 0)
//   p  -= lr * g / d                             (otherwise)
// eps is added after the square root, as in PyTorch.
template <typename T>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Parameter<T>> params, RmspropOptions options = {})
      : RMSprop(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}}}, options) {}

  RMSprop(std::vector<ParamGroup<T>> groups, RmspropOptions options = {})
      : Optimizer<T>(std::move(groups)), opt_(options) {
    if (!(options.alpha >= 0 && options.alpha <= 1))
      fail("RMSprop: alpha must be in [0, 1], got ", options.alpha);
    if (!(options.momentum >= 0)) fail("RMSprop: momentum must be >= 0, got ", options.momentum);
    if (!(options.eps >= 0)) fail("RMSprop: eps must be >= 0, got ", options.eps);
    this->set_group_defaults(options.lr, options.weight_decay);
    if (opt_.momentum > 0) this->set_group_momentum_defaults(opt_.momentum);
    square_avg_ = this->zeros_like_params();
    if (opt_.momentum > 0) momentum_buf_ = this->zeros_like_params();
    if (opt_.centered) grad_avg_ = this->zeros_like_params();
  }

  std::string type() const override { return "rmsprop"; }
  const RmspropOptions& options() const { return opt_; }

  void step() override {
    ++this->step_;
    // 1 - alpha in double, rounded once, as PyTorch does.
    const T alpha = static_cast<T>(opt_.alpha), rest = static_cast<T>(1.0 - opt_.alpha);
    const T eps = static_cast<T>(opt_.eps);
    const bool centered = opt_.centered;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      if (!this->begin_update(i)) continue;  // frozen
      // The group's momentum, which OneCycleLR may cycle; a step with
      // momentum 0 leaves the buffer alone, as PyTorch's.
      const T mu = static_cast<T>(this->momentum_of(i));
      const bool with_momentum = opt_.momentum > 0 && mu > T(0);
      const T lr = static_cast<T>(this->lr_of(i)), wd = static_cast<T>(this->weight_decay_of(i));
      T* const p_data = this->params_[i].value->data();
      const T* const g_data = this->params_[i].grad->data();
      T* const s_data = square_avg_[i].data();
      T* const a_data = centered ? grad_avg_[i].data() : nullptr;
      T* const b_data = with_momentum ? momentum_buf_[i].data() : nullptr;
      this->for_each_row_block(i, [=](std::int64_t lo, std::int64_t hi) {
        T* __restrict p = p_data;
        const T* __restrict grad = g_data;
        T* __restrict s = s_data;
        MINIDL_VECTORIZE
        for (std::int64_t j = lo; j < hi; ++j) {
          const T g = wd != T(0) ? grad[j] + wd * p[j] : grad[j];
          s[j] = alpha * s[j] + rest * g * g;
          T d;
          if (centered) {
            a_data[j] = alpha * a_data[j] + rest * g;
            d = std::sqrt(s[j] - a_data[j] * a_data[j]);
          } else {
            d = std::sqrt(s[j]);
          }
          d += eps;
          if (with_momentum) {
            b_data[j] = mu * b_data[j] + g / d;
            p[j] -= lr * b_data[j];
          } else {
            p[j] -= lr * g / d;
          }
        }
      });
    }
  }

  // PyTorch's names: square_avg, momentum_buffer (momentum > 0), grad_avg (centered).
  std::vector<std::pair<std::string, Tensor<T>*>> state() override {
    std::vector<std::pair<std::string, Tensor<T>*>> s;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      s.emplace_back("square_avg." + this->params_[i].name, &square_avg_[i]);
      if (opt_.momentum > 0)
        s.emplace_back("momentum_buffer." + this->params_[i].name, &momentum_buf_[i]);
      if (opt_.centered) s.emplace_back("grad_avg." + this->params_[i].name, &grad_avg_[i]);
    }
    return s;
  }

 private:
  RmspropOptions opt_;
  std::vector<Tensor<T>> square_avg_, momentum_buf_, grad_avg_;  // one per parameter
};

}  // namespace minidl
