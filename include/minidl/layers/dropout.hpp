// minidl/layers/dropout.hpp - Dropout: inverted dropout with reproducible masks.
#pragma once

#include <string>

#include "minidl/kernels/dropout.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Any shape. Training: each element is zeroed with probability p and the
// survivors scaled by 1/(1-p), so evaluation is the identity. The mask of
// element i at step s is drawn from hash(seed, s, i): the same step always
// gives the same mask (which is how tests freeze it), whatever the threads.
// Cached for backward: the mask, already scaled.
template <typename T>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), seed_(seed) {
    if (!(p >= 0.0 && p < 1.0)) fail("Dropout: probability must be in [0, 1), got ", p);
  }

  std::string type() const override { return "Dropout"; }
  std::string describe() const override { return "p " + std::to_string(p_).substr(0, 4); }
  Shape output_shape(const Shape& in) const override { return in; }
  bool output_aliases_input() const override { return true; }  // in evaluation
  bool backward_reads_output() const override { return false; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) override {
    training_ = ctx.training() && p_ > 0;
    if (!training_) return x;
    output_.resize(x.shape());
    mask_.resize(x.shape());
    // Keyed by the element's index in the whole batch, which may span processes.
    const std::int64_t per_sample = x.rank() > 0 && x.dim(0) > 0 ? x.size() / x.dim(0) : 0;
    kernels::dropout_forward(x.size(), static_cast<T>(p_), seed_, ctx.step, x.data(),
                             output_.data(), mask_.data(),
                             static_cast<std::uint64_t>(ctx.share.first * per_sample));
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (!training_) return dy;
    if (dy.shape() != mask_.shape())
      fail(this->label(), ": backward expected dy ", mask_.shape().str(), ", got ",
           dy.shape().str());
    this->dinput_.resize(dy.shape());
    kernels::dropout_backward(dy.size(), mask_.data(), dy.data(), this->dinput_.data());
    return this->dinput_;
  }

  void reset_parameters(Rng& rng) override { seed_ = rng.next_u64(); }

  double p() const { return p_; }
  std::uint64_t seed() const { return seed_; }
  void set_seed(std::uint64_t seed) { seed_ = seed; }
  const Tensor<T>& mask() const { return mask_; }

 private:
  double p_;
  std::uint64_t seed_;
  bool training_ = false;
  Tensor<T> output_, mask_;
};

}  // namespace minidl
