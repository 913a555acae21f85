// minidl/layers/conv2d.hpp - Conv2d: 2-D convolution with bias.
#pragma once

#include <cmath>
#include <string>

#include "minidl/kernels/conv2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// Input [N, C, H, W] -> output [N, OC, OH, OW]; weight [OC, C, KH, KW] and
// bias [OC] as in torch.nn.Conv2d (square kernel, same stride and padding on
// both axes). Cached for backward: a view of the input (the previous layer's
// output buffer, untouched until the next forward). In a Sequential, before
// a 2x2 max-pool, forward hands its output to the pool a few planes at a
// time and returns an empty tensor, and the first convolution's backward
// takes dy from the pool the same way (feed_output_to, take_output_grad_from).
template <typename T>
class Conv2d : public Layer<T> {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         std::int64_t stride = 1, std::int64_t padding = 0, bool bias = true)
      : in_(in_channels),
        out_(out_channels),
        k_(kernel_size),
        stride_(stride),
        pad_(padding),
        has_bias_(bias) {
    if (in_ <= 0 || out_ <= 0 || k_ <= 0 || stride_ <= 0 || pad_ < 0)
      fail("Conv2d: invalid arguments (in ", in_, ", out ", out_, ", kernel ", k_, ", stride ",
           stride_, ", padding ", pad_, ")");
    weight_ = Tensor<T>({out_, in_, k_, k_});
    dweight_ = Tensor<T>({out_, in_, k_, k_});
    if (has_bias_) {
      bias_ = Tensor<T>({out_});
      dbias_ = Tensor<T>({out_});
    }
  }

  std::string type() const override { return "Conv2d"; }
  std::string describe() const override {
    return std::to_string(in_) + " -> " + std::to_string(out_) + ", kernel " + std::to_string(k_) +
           ", stride " + std::to_string(stride_) + ", pad " + std::to_string(pad_);
  }

  // A folded in-place ReLU after this layer (see Sequential): the output is
  // stored as max(y, 0). Backward does not read the output, so it is unchanged.
  bool fold_relu_forward(bool fold) override {
    relu_after_ = fold;
    return true;
  }

  // The output gradient from a later layer, plane by plane (see Sequential):
  // only when this layer computes no input gradient.
  bool take_output_grad_from(const Layer<T>* source) override {
    if (source && this->needs_input_grad_) return false;
    grad_source_ = source;
    return true;
  }

  // The output handed to a later layer plane by plane (see Sequential).
  bool feed_output_to(Layer<T>* consumer) override {
    consumer_ = consumer;
    return true;
  }

  Shape output_shape(const Shape& in) const override {
    const std::string expected = "[N, " + std::to_string(in_) + ", H, W]";
    if (in.rank() != 4 || in[1] != in_) this->shape_error(expected, in);
    if (in[2] + 2 * pad_ < k_ || in[3] + 2 * pad_ < k_)
      fail(this->label(), ": input ", in.str(), " is smaller than the kernel ", k_, "x", k_,
           " with padding ", pad_);
    const auto s = conv_shape(in);
    return Shape{in[0], out_, s.OH(), s.OW()};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    const Shape out = output_shape(x.shape());
    out_shape_ = out;
    shape_ = conv_shape(x.shape());
    workspace_.resize(Shape{kernels::conv2d_workspace_size<T>(shape_)});
    input_ = x;
    if (consumer_) {
      forward_into_consumer(x, out);
      output_ = Tensor<T>();
      return output_;
    }
    output_.resize(out);
    kernels::conv2d_forward(shape_, x.data(), weight_.data(), has_bias_ ? bias_.data() : nullptr,
                            output_.data(), workspace_.data(), relu_after_);
    return output_;
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    partials_.resize(Shape{kernels::conv2d_weight_partials_size<T>(shape_)});
    if (grad_source_) {
      backward_weights_from_source();
      dinput_ = Tensor<T>();
      return dinput_;
    }
    if (dy.shape() != out_shape_)
      fail(this->label(), ": backward expected dy ", out_shape_.str(), ", got ", dy.shape().str());
    kernels::conv2d_backward_weights(shape_, input_.data(), dy.data(), dweight_.data(),
                                     has_bias_ ? dbias_.data() : nullptr, partials_.data());
    if (!this->needs_input_grad_) {
      dinput_ = Tensor<T>();
      return dinput_;
    }
    dinput_.resize(input_.shape());
    kernels::conv2d_backward_data(shape_, dy.data(), weight_.data(), dinput_.data(),
                                  workspace_.data());
    return dinput_;
  }

  std::vector<Parameter<T>> parameters() override {
    std::vector<Parameter<T>> p{{"weight", &weight_, &dweight_}};
    if (has_bias_) p.push_back({"bias", &bias_, &dbias_});
    return p;
  }

  void reset_parameters(Rng& rng) override {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * k_ * k_));
    fill_uniform(weight_, bound, rng);
    if (has_bias_) fill_uniform(bias_, bound, rng);
  }

  Tensor<T>& weight() { return weight_; }
  Tensor<T>& bias() { return bias_; }
  Tensor<T>& weight_grad() { return dweight_; }
  Tensor<T>& bias_grad() { return dbias_; }

 private:
  // The output handed to consumer_ a few channel planes of one sample at a
  // time, from a per-thread buffer that stays in cache, where the kernel
  // works sample by sample; otherwise made whole first.
  void forward_into_consumer(const Tensor<T>& x, const Shape& out) {
    const T* b = has_bias_ ? bias_.data() : nullptr;
    Layer<T>* consumer = consumer_;
    consumer->begin_input_planes(out);
    const std::int64_t OC = out_, P = shape_.OH() * shape_.OW();
    struct ToConsumer {
      Layer<T>* consumer;
      std::int64_t OC, P;
      T* planes(std::int64_t, std::int64_t, std::int64_t count) const {
        return thread_scratch<T, 1>(count * P);
      }
      void done(std::int64_t n, std::int64_t oc0, std::int64_t count, const T* planes) const {
        consumer->input_planes(n * OC + oc0, count, planes);
      }
    };
    if (kernels::conv2d_forward_samples(shape_, x.data(), weight_.data(), b, workspace_.data(),
                                        relu_after_, ToConsumer{consumer, OC, P}))
      return;
    whole_.resize(out);
    kernels::conv2d_forward(shape_, x.data(), weight_.data(), b, whole_.data(), workspace_.data(),
                            relu_after_);
    const T* y = whole_.data();
    parallel_for(shape_.N,
                 [=](std::int64_t n) { consumer->input_planes(n * OC, OC, y + n * OC * P); });
  }

  // The weight gradients with dy from grad_source_. The rows kernel reads it
  // a plane at a time; other kernels read dy whole, so it is made in full.
  void backward_weights_from_source() {
    T* db = has_bias_ ? dbias_.data() : nullptr;
    const std::int64_t P = shape_.OH() * shape_.OW();
    const Layer<T>* source = grad_source_;
    if (kernels::conv2d_weights_rows_applies<T>(shape_)) {
      const std::int64_t OC = out_;
      const auto planes = [source, OC](std::int64_t n, std::int64_t o, T* buffer) {
        source->input_grad_plane(n * OC + o, buffer);
        return static_cast<const T*>(buffer);
      };
      kernels::conv2d_backward_weights_rows_planes(shape_, input_.data(), planes, dweight_.data(),
                                                   db, partials_.data());
      return;
    }
    whole_.resize(out_shape_);
    T* dy = whole_.data();
    parallel_for(shape_.N * out_, [=](std::int64_t p) { source->input_grad_plane(p, dy + p * P); });
    kernels::conv2d_backward_weights(shape_, input_.data(), dy, dweight_.data(), db,
                                     partials_.data());
  }

  kernels::Conv2dShape conv_shape(const Shape& in) const {
    return {in[0], in_, in[2], in[3], out_, k_, k_, stride_, pad_};
  }

  std::int64_t in_, out_, k_, stride_, pad_;
  bool has_bias_;
  bool relu_after_ = false;  // a folded ReLU applied to the output
  Tensor<T> weight_, bias_, dweight_, dbias_;
  Tensor<T> input_, output_, dinput_;
  Tensor<T> workspace_;                    // the weights packed for the GEMM, once per pass
  Tensor<T> partials_;                     // per-chunk weight gradients, reduced in a fixed order
  const Layer<T>* grad_source_ = nullptr;  // hands out dy plane by plane (take_output_grad_from)
  Layer<T>* consumer_ = nullptr;           // takes the output plane by plane (feed_output_to)
  Tensor<T> whole_;  // y or dy whole, for kernels that cannot pass planes to or from a neighbour
  kernels::Conv2dShape shape_{};
  Shape out_shape_;  // of the last forward, kept or not
};

}  // namespace minidl
