// minidl/layers/linear.hpp - Linear: y = x * weight^T + bias.
#pragma once

#include <cmath>
#include <string>

#include "minidl/kernels/linear.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Input [N, in] -> output [N, out]; weight [out, in] and bias [out] as in
// torch.nn.Linear. Cached for backward: a view of the input (the previous
// layer's output buffer, which stays untouched until the next forward).
template <typename T>
class Linear : public Layer<T> {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true)
      : in_(in_features), out_(out_features), has_bias_(bias) {
    if (in_ <= 0 || out_ <= 0) fail("Linear: invalid sizes ", in_, " -> ", out_);
    weight_ = Tensor<T>({out_, in_});
    dweight_ = Tensor<T>({out_, in_});
    if (has_bias_) {
      bias_ = Tensor<T>({out_});
      dbias_ = Tensor<T>({out_});
    }
  }

  std::string type() const override { return "Linear"; }
  std::string describe() const override {
    return std::to_string(in_) + " -> " + std::to_string(out_);
  }

  bool backward_reads_output() const override { return false; }

  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 2 || in[1] != in_) this->shape_error("[N, " + std::to_string(in_) + "]", in);
    return Shape{in[0], out_};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) override {
    output_.resize(output_shape(x.shape()));
    input_ = x;
    this->set_batch_share(ctx.share);
    kernels::linear_forward(x.dim(0), in_, out_, x.data(), weight_.data(),
                            has_bias_ ? bias_.data() : nullptr, output_.data());
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != output_.shape())
      fail(this->label(), ": backward expected dy ", output_.shape().str(), ", got ",
           dy.shape().str());
    const std::int64_t n = dy.dim(0);
    if (this->needs_param_grad()) {  // not when all are frozen
      T* db = has_bias_ ? dbias_.data() : nullptr;
      fold_over_batch(this->batch_share_,
                      {fold_state(dweight_.data(), dweight_.size()), fold_state(db, db ? out_ : 0)},
                      [&](bool carried) {
                        kernels::linear_backward_weights(n, in_, out_, input_.data(), dy.data(),
                                                         dweight_.data(), db, carried);
                      });
    }
    if (!this->needs_input_grad_) {
      this->dinput_ = Tensor<T>();
      return this->dinput_;
    }
    this->dinput_.resize(input_.shape());
    kernels::linear_backward_data(n, in_, out_, dy.data(), weight_.data(), this->dinput_.data());
    return this->dinput_;
  }

  std::vector<Parameter<T>> parameters() override {
    std::vector<Parameter<T>> p{{"weight", &weight_, &dweight_}};
    if (has_bias_) p.push_back({"bias", &bias_, &dbias_});
    return p;
  }

  void reset_parameters(Rng& rng) override {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    fill_uniform(weight_, bound, rng);
    if (has_bias_) fill_uniform(bias_, bound, rng);
  }

  Tensor<T>& weight() { return weight_; }
  Tensor<T>& bias() { return bias_; }
  Tensor<T>& weight_grad() { return dweight_; }
  Tensor<T>& bias_grad() { return dbias_; }

 private:
  std::int64_t in_, out_;
  bool has_bias_;
  Tensor<T> weight_, bias_, dweight_, dbias_;
  Tensor<T> input_, output_;
};

}  // namespace minidl
