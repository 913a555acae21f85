// minidl/optim/sgd.hpp - SGD with momentum, as torch.optim.SGD documents it.
#pragma once

#include "minidl/core/loop_hints.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/optim/optimizer.hpp"

namespace minidl {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// For each element with gradient g:
//   g += weight_decay * p
//   b  = g at the parameter's first update, else momentum * b + (1 - dampening) * g
//   g  = g + momentum * b if nesterov, else b        (when momentum != 0)
//   p -= lr * g
// momentum is the group's: OneCycleLR may cycle it (only when SGD was made with momentum).
template <typename T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>> params, SgdOptions options = {})
      : SGD(std::vector<ParamGroup<T>>{ParamGroup<T>{std::move(params), {}, {}}}, options) {}

  SGD(std::vector<ParamGroup<T>> groups, SgdOptions options = {})
      : Optimizer<T>(std::move(groups)), opt_(options) {
    if (!(opt_.momentum >= 0)) fail("SGD: momentum must be >= 0, got ", opt_.momentum);
    if (opt_.nesterov && (opt_.momentum <= 0 || opt_.dampening != 0))
      fail("SGD: Nesterov momentum needs momentum > 0 and zero dampening");
    this->set_group_defaults(options.lr, options.weight_decay);
    if (opt_.momentum != 0) this->set_group_momentum_defaults(opt_.momentum);
    buf_ = this->zeros_like_params();
  }

  std::string type() const override { return "sgd"; }
  const SgdOptions& options() const { return opt_; }

  void step() override {
    ++this->step_;
    const T damp = static_cast<T>(1.0 - opt_.dampening);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      const bool first = this->update_count(i) == 0;
      if (!this->begin_update(i)) continue;  // frozen
      const T lr = static_cast<T>(this->lr_of(i)), wd = static_cast<T>(this->weight_decay_of(i));
      const T mu = static_cast<T>(this->momentum_of(i));
      T* const p_data = this->params_[i].value->data();
      const T* const g_data = this->params_[i].grad->data();
      T* const b_data = buf_[i].data();
      const bool nesterov = opt_.nesterov;
      this->for_each_row_block(i, [=](std::int64_t lo, std::int64_t hi) {
        T* __restrict p = p_data;
        const T* __restrict grad = g_data;
        T* __restrict b = b_data;
        MINIDL_VECTORIZE
        for (std::int64_t j = lo; j < hi; ++j) {
          T g = wd != T(0) ? grad[j] + wd * p[j] : grad[j];
          if (mu != T(0)) {
            b[j] = first ? g : mu * b[j] + damp * g;
            g = nesterov ? g + mu * b[j] : b[j];
          }
          p[j] -= lr * g;
        }
      });
    }
  }

  void check_momentum(double momentum) const override {
    Optimizer<T>::check_momentum(momentum);
    if (opt_.nesterov && momentum <= 0) fail("SGD: Nesterov momentum needs momentum > 0");
  }

  std::vector<std::pair<std::string, Tensor<T>*>> state() override {
    std::vector<std::pair<std::string, Tensor<T>*>> s;
    if (opt_.momentum != 0)
      for (std::size_t i = 0; i < this->params_.size(); ++i)
        s.emplace_back("momentum_buffer." + this->params_[i].name, &buf_[i]);
    return s;
  }

 private:
  SgdOptions opt_;
  std::vector<Tensor<T>> buf_;  // momentum buffers, one per parameter
};

}  // namespace minidl
