// minidl/layers/conv2d.hpp - Conv2d: 2-D convolution with bias.
#pragma once

#include <cmath>
#include <string>

#include "minidl/kernels/conv2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// The kernel each pass of a convolution runs (see kernels/conv2d.hpp).
struct ConvKernels {
  kernels::ConvKernel forward, backward_data, backward_weights;
};

// Input [N, C, H, W] -> output [N, OC, OH, OW]; weight [OC, C, KH, KW] and
// bias [OC] as in torch.nn.Conv2d (square kernel, same stride and padding on
// both axes). Cached for backward: a view of the input (the previous layer's
// output buffer, untouched until the next forward).
//
// forward() and backward() run the kernels kernels_for() picks. The plan
// pass (layers/plan.hpp) may instead call forward_with() to apply a ReLU as
// the output is stored, forward_planes() to hand the output to a 2x2
// max-pool a few planes at a time (it is then never stored), and
// backward_from_planes() to read dy from that pool plane by plane.
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
  bool backward_reads_output() const override { return false; }

  Shape output_shape(const Shape& in) const override {
    const std::string expected = "[N, " + std::to_string(in_) + ", H, W]";
    if (in.rank() != 4 || in[1] != in_) this->shape_error(expected, in);
    if (in[2] + 2 * pad_ < k_ || in[3] + 2 * pad_ < k_)
      fail(this->label(), ": input ", in.str(), " is smaller than the kernel ", k_, "x", k_,
           " with padding ", pad_);
    const auto s = conv_shape(in);
    return Shape{in[0], out_, s.OH(), s.OW()};
  }

  // The kernels of each pass for an input shape: one choice per pass.
  ConvKernels kernels_for(const Shape& in) const {
    const auto s = conv_shape(in);
    return {kernels::conv2d_forward_kernel<T>(s), kernels::conv2d_backward_data_kernel(s),
            kernels::conv2d_backward_weights_kernel<T>(s)};
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context&) override {
    output_shape(x.shape());  // throws on a bad shape before a kernel is chosen
    return forward_with(x, kernels_for(x.shape()), false);
  }

  // forward() with the given kernels; with relu the output is stored as
  // max(y, 0), the same bits as a ReLU after it.
  const Tensor<T>& forward_with(const Tensor<T>& x, const ConvKernels& k, bool relu) {
    begin_forward(x, k);
    output_.resize(out_shape_);
    kernels::conv2d_forward_with(k.forward, shape_, x.data(), weight_.data(), bias_data(),
                                 output_.data(), workspace_.data(), relu);
    return output_;
  }

  // forward_with() with other weights and bias of the layer's shapes (bias
  // given even when the layer has none): the plan's BatchNorm folding. The
  // layer's parameters are not touched.
  const Tensor<T>& forward_with_weights(const Tensor<T>& x, const ConvKernels& k, const T* weight,
                                        const T* bias) {
    begin_forward(x, k);
    output_.resize(out_shape_);
    kernels::conv2d_forward_with(k.forward, shape_, x.data(), weight, bias, output_.data(),
                                 workspace_.data(), false);
    return output_;
  }

  // forward_with() handing the output to `sink` instead of storing it:
  // sink.begin(output shape), then sink.planes(p0, count, planes) from any
  // thread with planes p0.. in [N, OC] order, until every plane has come.
  // Needs a forward kernel that works sample by sample (not im2col).
  template <typename Sink>
  void forward_planes(const Tensor<T>& x, const ConvKernels& k, bool relu, Sink& sink) {
    begin_forward(x, k);
    output_ = Tensor<T>();
    sink.begin(out_shape_);
    const std::int64_t OC = out_, P = shape_.OH() * shape_.OW();
    struct ToSink {
      Sink* sink;
      std::int64_t OC, P;
      T* planes(std::int64_t, std::int64_t, std::int64_t count) const {
        return thread_scratch<T, 1>(count * P);
      }
      void done(std::int64_t n, std::int64_t oc0, std::int64_t count, const T* planes) const {
        sink->planes(n * OC + oc0, count, planes);
      }
    };
    kernels::conv2d_forward_samples(k.forward, shape_, x.data(), weight_.data(), bias_data(),
                                    workspace_.data(), relu, ToSink{&sink, OC, P});
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != out_shape_)
      fail(this->label(), ": backward expected dy ", out_shape_.str(), ", got ", dy.shape().str());
    partials_.resize(Shape{kernels::conv2d_weight_partials_size<T>(shape_)});
    kernels::conv2d_backward_weights_with(kernels_.backward_weights, shape_, input_.data(),
                                          dy.data(), dweight_.data(), bias_grad_data(),
                                          partials_.data());
    if (!this->needs_input_grad_) {
      dinput_ = Tensor<T>();
      return dinput_;
    }
    dinput_.resize(input_.shape());
    kernels::conv2d_backward_data_with(kernels_.backward_data, shape_, dy.data(), weight_.data(),
                                       dinput_.data(), workspace_.data());
    return dinput_;
  }

  // The weight gradients with dy read plane by plane from `planes` (a
  // kernels::StoredPlanes-like source), for a convolution whose input
  // gradient nothing needs and whose weight kernel is the rows kernel.
  template <typename Planes>
  void backward_from_planes(const Planes& planes) {
    if (this->needs_input_grad_ || kernels_.backward_weights != kernels::ConvKernel::Rows)
      fail(this->label(), ": dy plane by plane needs the rows kernel and no input gradient");
    partials_.resize(Shape{kernels::conv2d_weight_partials_size<T>(shape_)});
    kernels::conv2d_backward_weights_rows_planes(shape_, input_.data(), planes, dweight_.data(),
                                                 bias_grad_data(), partials_.data());
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
  void begin_forward(const Tensor<T>& x, const ConvKernels& k) {
    out_shape_ = output_shape(x.shape());
    shape_ = conv_shape(x.shape());
    kernels_ = k;
    workspace_.resize(Shape{kernels::conv2d_workspace_size<T>(shape_)});
    input_ = x;
  }

  const T* bias_data() const { return has_bias_ ? bias_.data() : nullptr; }
  T* bias_grad_data() { return has_bias_ ? dbias_.data() : nullptr; }

  kernels::Conv2dShape conv_shape(const Shape& in) const {
    return {in[0], in_, in[2], in[3], out_, k_, k_, stride_, pad_};
  }

  std::int64_t in_, out_, k_, stride_, pad_;
  bool has_bias_;
  Tensor<T> weight_, bias_, dweight_, dbias_;
  Tensor<T> input_, output_, dinput_;
  Tensor<T> workspace_;    // the weights packed for the GEMM, once per pass
  Tensor<T> partials_;     // per-chunk weight gradients, reduced in a fixed order
  ConvKernels kernels_{};  // of the last forward, for its backward
  kernels::Conv2dShape shape_{};
  Shape out_shape_;  // of the last forward, stored or not
};

}  // namespace minidl
