// minidl/layers/conv2d.hpp - Conv2d: 2-D convolution with bias.
#pragma once

#include <cmath>
#include <string>

#include "minidl/core/memory.hpp"
#include "minidl/kernels/conv2d.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// The kernel each pass of a convolution runs (see kernels/conv2d.hpp).
using ConvKernels = kernels::Conv2dKernels;

// The arguments of a Conv2d, named as torch.nn.Conv2d names them. Each
// setter returns the options, so that they read as one expression:
//   Conv2d<float>(Conv2dOptions(32, 32, 3).padding(1).groups(32))   // depthwise
//   Conv2d<float>(Conv2dOptions(16, 8, 3, 5).stride(2, 1).padding(1, 2).dilation(2))
// A setter with one number sets both axes (height, width); with two, each.
// Padding is zeros, PyTorch's padding_mode "zeros" (there is no other mode).
class Conv2dOptions {
 public:
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : Conv2dOptions(in_channels, out_channels, kernel_size, kernel_size) {}
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_h,
                std::int64_t kernel_w)
      : in_(in_channels), out_(out_channels), kh_(kernel_h), kw_(kernel_w) {}

  Conv2dOptions& stride(std::int64_t s) { return stride(s, s); }
  Conv2dOptions& stride(std::int64_t h, std::int64_t w) {
    sh_ = h;
    sw_ = w;
    return *this;
  }
  Conv2dOptions& padding(std::int64_t p) { return padding(p, p); }
  Conv2dOptions& padding(std::int64_t h, std::int64_t w) {
    ph_ = h;
    pw_ = w;
    return *this;
  }
  Conv2dOptions& dilation(std::int64_t d) { return dilation(d, d); }
  Conv2dOptions& dilation(std::int64_t h, std::int64_t w) {
    dh_ = h;
    dw_ = w;
    return *this;
  }
  Conv2dOptions& groups(std::int64_t g) {
    groups_ = g;
    return *this;
  }
  Conv2dOptions& bias(bool b) {
    bias_ = b;
    return *this;
  }

  std::int64_t in_channels() const { return in_; }
  std::int64_t out_channels() const { return out_; }
  std::int64_t kernel_h() const { return kh_; }
  std::int64_t kernel_w() const { return kw_; }
  std::int64_t stride_h() const { return sh_; }
  std::int64_t stride_w() const { return sw_; }
  std::int64_t padding_h() const { return ph_; }
  std::int64_t padding_w() const { return pw_; }
  std::int64_t dilation_h() const { return dh_; }
  std::int64_t dilation_w() const { return dw_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

 private:
  std::int64_t in_, out_, kh_, kw_;
  std::int64_t sh_ = 1, sw_ = 1, ph_ = 0, pw_ = 0, dh_ = 1, dw_ = 1, groups_ = 1;
  bool bias_ = true;
};

// Input [N, C, H, W] -> output [N, OC, OH, OW]; weight [OC, C/groups, KH,
// KW] and bias [OC] as in torch.nn.Conv2d, with its groups, dilation and
// stride and padding per axis (Conv2dOptions). Cached for backward: a view
// of the input (the previous layer's output buffer, untouched until the
// next forward).
//
// forward() and backward() run the kernels kernels_for() picks: the classic
// ones (direct, rows, im2col) for one group, no dilation, a square kernel
// and the same stride and padding on both axes; depthwise or general
// otherwise (kernels/conv2d.hpp). The plan pass (layers/plan.hpp) may
// instead call forward_with() to apply a ReLU as the output is stored,
// forward_planes() to hand the output to a 2x2 max-pool a few planes at a
// time (it is then never stored), and backward_from_planes() to read dy
// from that pool plane by plane.
template <typename T>
class Conv2d : public Layer<T> {
 public:
  // The classic constructor: a square kernel, one stride and padding for both axes.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         std::int64_t stride = 1, std::int64_t padding = 0, bool bias = true)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)
                   .stride(stride)
                   .padding(padding)
                   .bias(bias)) {}

  explicit Conv2d(const Conv2dOptions& options) : opt_(options) {
    const Conv2dOptions& o = opt_;
    if (o.in_channels() <= 0 || o.out_channels() <= 0 || o.kernel_h() <= 0 || o.kernel_w() <= 0 ||
        o.stride_h() <= 0 || o.stride_w() <= 0 || o.padding_h() < 0 || o.padding_w() < 0 ||
        o.dilation_h() <= 0 || o.dilation_w() <= 0 || o.groups() <= 0)
      fail("Conv2d: invalid arguments (in ", o.in_channels(), ", out ", o.out_channels(),
           ", kernel ", pair(o.kernel_h(), o.kernel_w(), "x"), ", stride ",
           pair(o.stride_h(), o.stride_w(), ", "), ", padding ",
           pair(o.padding_h(), o.padding_w(), ", "), ", dilation ",
           pair(o.dilation_h(), o.dilation_w(), ", "), ", groups ", o.groups(), ")");
    if (o.in_channels() % o.groups() != 0 || o.out_channels() % o.groups() != 0)
      fail("Conv2d: groups ", o.groups(), " must divide both in_channels ", o.in_channels(),
           " and out_channels ", o.out_channels());
    const Shape w{o.out_channels(), o.in_channels() / o.groups(), o.kernel_h(), o.kernel_w()};
    weight_ = Tensor<T>(w);
    dweight_ = Tensor<T>(w);
    if (o.bias()) {
      bias_ = Tensor<T>({o.out_channels()});
      dbias_ = Tensor<T>({o.out_channels()});
    }
  }

  std::string type() const override { return "Conv2d"; }
  // "1 -> 32, kernel 3, stride 1, pad 1", and what differs from that form.
  std::string describe() const override {
    const Conv2dOptions& o = opt_;
    std::string d = std::to_string(o.in_channels()) + " -> " + std::to_string(o.out_channels()) +
                    ", kernel " + pair(o.kernel_h(), o.kernel_w(), "x") + ", stride " +
                    pair(o.stride_h(), o.stride_w(), ", ") + ", pad " +
                    pair(o.padding_h(), o.padding_w(), ", ");
    if (o.dilation_h() != 1 || o.dilation_w() != 1)
      d += ", dilation " + pair(o.dilation_h(), o.dilation_w(), ", ");
    if (o.groups() != 1) d += ", groups " + std::to_string(o.groups());
    return d;
  }
  bool backward_reads_output() const override { return false; }
  const Conv2dOptions& options() const { return opt_; }

  Shape output_shape(const Shape& in) const override {
    const Conv2dOptions& o = opt_;
    const std::string expected = "[N, " + std::to_string(o.in_channels()) + ", H, W]";
    if (in.rank() != 4 || in[1] != o.in_channels()) this->shape_error(expected, in);
    const auto g = geometry(in);
    const std::int64_t reach_h = g.DH * (g.KH - 1) + 1, reach_w = g.DW * (g.KW - 1) + 1;
    if (in[2] + 2 * g.PH < reach_h || in[3] + 2 * g.PW < reach_w)
      fail(this->label(), ": input ", in.str(), " is smaller than the kernel ", g.KH, "x", g.KW,
           (g.DH != 1 || g.DW != 1
                ? " (" + std::to_string(reach_h) + "x" + std::to_string(reach_w) + " dilated)"
                : ""),
           " with padding ", pair(g.PH, g.PW, ", "));
    return Shape{in[0], o.out_channels(), g.OH(), g.OW()};
  }

  // The kernels of each pass for an input shape: one choice per pass.
  ConvKernels kernels_for(const Shape& in) const {
    return kernels::conv2d_kernels_for<T>(geometry(in));
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) override {
    output_shape(x.shape());  // throws on a bad shape before a kernel is chosen
    this->set_batch_share(ctx.share);
    return forward_with(x, kernels_for(x.shape()), false);
  }

  // forward() with the given kernels; with relu the output is stored as
  // max(y, 0), the same bits as a ReLU after it.
  const Tensor<T>& forward_with(const Tensor<T>& x, const ConvKernels& k, bool relu) {
    begin_forward(x, k);
    output_.resize(out_shape_);
    kernels::conv2d_forward_run(k.forward, geometry_, x.data(), weight_.data(), bias_data(),
                                output_.data(), workspace_.data(), relu);
    return output_;
  }

  // forward_with() for an input that is a batch norm's output with the
  // ReLU after it, not stored: `x` stands for it (its shape; its values are
  // not read), and the kernel makes it from the batch norm's input as it
  // copies each sample (kernels::RemadeInput), with the bits of the stored
  // one. Its backward then makes it again too (backward_remaking_input).
  // Needs the F(4x4, 3x3) forward kernel (can_remake_input_in_forward).
  const Tensor<T>& forward_remaking_input(const Tensor<T>& x, const Tensor<T>& batchnorm_input,
                                          const kernels::RemadeInput<T>& remade,
                                          const ConvKernels& k, bool relu) {
    if (!can_remake_input_in_forward(k))
      fail(this->label(), ": the ", kernels::conv_kernel_name(k.forward),
           " forward kernel cannot make its input");
    if (batchnorm_input.shape() != x.shape())
      fail(this->label(), ": forward_remaking_input expected the batch norm's input ",
           x.shape().str(), ", got ", batchnorm_input.shape().str());
    begin_forward(x, k);
    output_.resize(out_shape_);
    kernels::conv2d_forward_winograd_tiles<4>(
        geometry_.square(), batchnorm_input.data(), weight_.data(), bias_data(), relu,
        kernels::StoredOutput<T>{output_.data(), geometry_.OC, geometry_.OH() * geometry_.OW()},
        remade);
    return output_;
  }
  static bool can_remake_input_in_forward(const ConvKernels& k) {
    return k.forward == kernels::ConvKernel::Winograd4;
  }

  // forward_with() with other weights and bias of the layer's shapes (bias
  // given even when the layer has none): the plan's BatchNorm folding. The
  // layer's parameters are not touched.
  const Tensor<T>& forward_with_weights(const Tensor<T>& x, const ConvKernels& k, const T* weight,
                                        const T* bias, bool relu) {
    begin_forward(x, k);
    output_.resize(out_shape_);
    kernels::conv2d_forward_run(k.forward, geometry_, x.data(), weight, bias, output_.data(),
                                workspace_.data(), relu);
    return output_;
  }

  // forward_with() handing the output to `sink` instead of storing it:
  // sink.begin(output shape), then sink.planes(p0, count, planes) from any
  // thread with planes p0.. in [N, OC] order, until every plane has come.
  // Needs a forward kernel that works sample by sample (direct, rows, Winograd).
  template <typename Sink>
  void forward_planes(const Tensor<T>& x, const ConvKernels& k, bool relu, Sink& sink) {
    begin_forward(x, k);
    if (!kernels::conv2d_forward_passes_planes(k.forward))
      fail(this->label(), ": the ", kernels::conv_kernel_name(k.forward),
           " kernel cannot hand its output over by planes");
    output_ = Tensor<T>();
    sink.begin(out_shape_);
    const std::int64_t OC = geometry_.OC, P = geometry_.OH() * geometry_.OW();
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
    kernels::conv2d_forward_samples(k.forward, geometry_.square(), x.data(), weight_.data(),
                                    bias_data(), workspace_.data(), relu, ToSink{&sink, OC, P});
  }

  const Tensor<T>& backward(const Tensor<T>& dy) override {
    weight_gradient(dy, input_, {});
    return input_gradient(dy);
  }

  // backward() for a convolution whose input was a batch norm's output
  // with the ReLU after it, max(x a[c] + b[c], 0), no longer in memory:
  // the weight gradient makes it again from the batch norm's input x as it
  // copies each sample (kernels::RemadeInput), with the bits of the stored
  // one. Needs the F(4x4, 3x3) weight kernel (can_remake_input).
  const Tensor<T>& backward_remaking_input(const Tensor<T>& dy, const Tensor<T>& x,
                                           const kernels::RemadeInput<T>& remade) {
    if (!can_remake_input(kernels_))
      fail(this->label(), ": the ", kernels::conv_kernel_name(kernels_.backward_weights),
           " weight kernel cannot make its input again");
    if (x.shape() != input_.shape())
      fail(this->label(), ": backward_remaking_input expected x ", input_.shape().str(), ", got ",
           x.shape().str());
    weight_gradient(dy, x, remade);
    return input_gradient(dy);
  }
  // Whether backward_remaking_input() can run with these kernels.
  static bool can_remake_input(const ConvKernels& k) {
    return k.backward_weights == kernels::ConvKernel::Winograd4;
  }

  // The weight gradients with dy read plane by plane from `planes` (a
  // kernels::StoredPlanes-like source), for a convolution whose input
  // gradient nothing needs and whose weight kernel is the rows kernel.
  template <typename Planes>
  void backward_from_planes(const Planes& planes) {
    if (this->needs_input_grad_ || kernels_.backward_weights != kernels::ConvKernel::Rows)
      fail(this->label(), ": dy plane by plane needs the rows kernel and no input gradient");
    T* partials = weight_partials();
    fold_weight_sums([&](bool carried, const auto& wait_for_carry) {
      kernels::conv2d_backward_weights_rows_planes(geometry_.square(), input_.data(), planes,
                                                   dweight_.data(), bias_grad_data(), partials,
                                                   carried, wait_for_carry);
    });
  }

  // The weight-gradient kernels' per-chunk sums, reduced in a fixed order
  // within one backward call: scratch of the calling thread, one buffer for
  // every convolution it runs (a network's convolutions would otherwise
  // hold tens of MB between them).
  T* weight_partials() const {
    return thread_scratch<T, kWeightPartialsSlot>(
        kernels::conv2d_weight_partials_size<T>(geometry_));
  }
  static constexpr int kWeightPartialsSlot = 9;  // a slot of thread_scratch no kernel uses

  // Runs the weight-gradient kernel as part of the sums over the whole
  // batch, which may have begun on other processes (core/batch_reducer.hpp);
  // the kernel computes its chunks' partials before it waits for the carry.
  template <typename Kernel>
  void fold_weight_sums(Kernel&& kernel) {
    T* db = bias_grad_data();
    fold_over_batch_late(
        this->batch_share_,
        {fold_state(dweight_.data(), dweight_.size()), fold_state(db, db ? geometry_.OC : 0)},
        kernel);
  }

  std::vector<Parameter<T>> parameters() override {
    std::vector<Parameter<T>> p{{"weight", &weight_, &dweight_}};
    if (opt_.bias()) p.push_back({"bias", &bias_, &dbias_});
    return p;
  }

  // PyTorch's default: U(+-1/sqrt(fan_in)), fan_in = in_channels/groups * KH * KW.
  void reset_parameters(Rng& rng) override {
    const double fan_in =
        static_cast<double>(opt_.in_channels() / opt_.groups() * opt_.kernel_h() * opt_.kernel_w());
    const double bound = 1.0 / std::sqrt(fan_in);
    fill_uniform(weight_, bound, rng);
    if (opt_.bias()) fill_uniform(bias_, bound, rng);
  }

  Tensor<T>& weight() { return weight_; }
  Tensor<T>& bias() { return bias_; }
  Tensor<T>& weight_grad() { return dweight_; }
  Tensor<T>& bias_grad() { return dbias_; }

 private:
  // dw and db from dy and the input x (or the input made from it: then on
  // F(4x4, 3x3), the one weight kernel that makes it).
  void weight_gradient(const Tensor<T>& dy, const Tensor<T>& x,
                       const kernels::RemadeInput<T>& remade) {
    if (dy.shape() != out_shape_)
      fail(this->label(), ": backward expected dy ", out_shape_.str(), ", got ", dy.shape().str());
    T* partials = weight_partials();
    fold_weight_sums([&](bool carried, const auto& wait_for_carry) {
      if (remade.a)
        kernels::conv2d_backward_weights_winograd4_continue(
            geometry_.square(), x.data(), dy.data(), dweight_.data(), bias_grad_data(), partials,
            carried, wait_for_carry, remade);
      else
        kernels::conv2d_backward_weights_run(kernels_.backward_weights, geometry_, x.data(),
                                             dy.data(), dweight_.data(), bias_grad_data(), partials,
                                             carried, wait_for_carry);
    });
  }

  // dx from dy, or nothing when no input gradient is needed.
  const Tensor<T>& input_gradient(const Tensor<T>& dy) {
    if (!this->needs_input_grad_) {
      this->dinput_ = Tensor<T>();
      return this->dinput_;
    }
    this->dinput_.resize(input_.shape());
    kernels::conv2d_backward_data_run(kernels_.backward_data, geometry_, dy.data(), weight_.data(),
                                      this->dinput_.data(), workspace_.data());
    return this->dinput_;
  }

  void begin_forward(const Tensor<T>& x, const ConvKernels& k) {
    out_shape_ = output_shape(x.shape());
    geometry_ = geometry(x.shape());
    kernels_ = k;
    workspace_.resize(Shape{kernels::conv2d_workspace_size<T>(geometry_)});
    input_ = x;
  }

  const T* bias_data() const { return opt_.bias() ? bias_.data() : nullptr; }
  T* bias_grad_data() { return opt_.bias() ? dbias_.data() : nullptr; }

  kernels::Conv2dGeometry geometry(const Shape& in) const {
    kernels::Conv2dGeometry g;
    g.N = in[0];
    g.C = opt_.in_channels();
    g.H = in[2];
    g.W = in[3];
    g.OC = opt_.out_channels();
    g.KH = opt_.kernel_h();
    g.KW = opt_.kernel_w();
    g.SH = opt_.stride_h();
    g.SW = opt_.stride_w();
    g.PH = opt_.padding_h();
    g.PW = opt_.padding_w();
    g.DH = opt_.dilation_h();
    g.DW = opt_.dilation_w();
    g.G = opt_.groups();
    return g;
  }

  // "3" when both axes agree, else "3x5" or "(2, 1)".
  static std::string pair(std::int64_t h, std::int64_t w, const char* sep) {
    if (h == w) return std::to_string(h);
    const bool x = std::string(sep) == "x";
    return (x ? "" : "(") + std::to_string(h) + sep + std::to_string(w) + (x ? "" : ")");
  }

  Conv2dOptions opt_;
  Tensor<T> weight_, bias_, dweight_, dbias_;
  Tensor<T> input_, output_;
  Tensor<T> workspace_;    // the weights packed for the GEMM, once per pass
  ConvKernels kernels_{};  // of the last forward, for its backward
  kernels::Conv2dGeometry geometry_{};
  Shape out_shape_;  // of the last forward, stored or not
};

}  // namespace minidl
