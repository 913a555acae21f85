// minidl/layers/batchnorm.hpp - BatchNorm2d and BatchNorm1d: normalisation by batch statistics.
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "minidl/kernels/batchnorm.hpp"
#include "minidl/layers/layer.hpp"

namespace minidl {

// What torch.nn.BatchNorm1d/2d compute, over an input seen as [N, C, P]:
// in training (or always, without running statistics) each channel is
// normalised by the mean and biased variance of its N * P values in this
// batch, then scaled by weight (gamma, init 1) and shifted by bias (beta,
// init 0); running_mean and running_var follow the batch statistics with
// `momentum` (running_var with the unbiased variance, as PyTorch), and
// num_batches_tracked counts the batches. momentum std::nullopt is
// PyTorch's momentum=None: a cumulative average (momentum 1 /
// num_batches_tracked). In evaluation the running statistics are used
// instead and the layer is an affine map per channel.
//
// Cached for backward: a view of the input, and the mean and 1/sqrt(var +
// eps) it was normalised with. The plan pass may fold a BatchNorm2d into the
// Conv2d before it for evaluation (layers/plan.hpp); the layer then makes no
// pass at all. It may also have the layer apply the in-place ReLU after it
// (forward_with): the layer then stores max(y, 0), its backward receives
// the gradient with respect to that and zeroes it where that output is not
// positive (its sign made again from the input, without reading the output),
// and the ReLU makes no pass.
template <typename T>
class BatchNorm : public Layer<T> {
 public:
  std::string describe() const override {
    std::string s = std::to_string(C_) + ", eps " + number(eps_) + ", momentum " +
                    (momentum_ ? number(*momentum_) : std::string("None"));
    if (!affine_) s += ", affine off";
    if (!track_) s += ", no running stats";
    return s;
  }
  bool backward_reads_output() const override { return false; }

  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) override {
    return forward_with(x, ctx, false);
  }

  // forward, storing max(y, 0) when `relu`: then backward takes the gradient
  // with respect to that output, until the next forward.
  const Tensor<T>& forward_with(const Tensor<T>& x, const Context& ctx, bool relu) {
    return forward_impl(x, ctx, relu, nullptr, false);
  }

  // forward, storing y + other instead of y, or max(y + other, 0) with
  // relu_after_sum: the addition after this layer in a residual block (plan
  // step 8), and the ReLU after that, in the same pass. Backward is this
  // layer's own: the addition hands it dy unchanged, and the ReLU's
  // backward is done before, from the stored sum.
  const Tensor<T>& forward_adding(const Tensor<T>& x, const Context& ctx, const Tensor<T>& other,
                                  bool relu_after_sum) {
    if (other.shape() != x.shape())
      fail(this->label(), ": the value to add has shape ", other.shape().str(), ", expected ",
           x.shape().str());
    return forward_impl(x, ctx, false, &other, relu_after_sum);
  }

  // forward_with(x, ctx, true) but for the output, which is not written:
  // its one reader makes it from input() and output_map() (plan step 13).
  // The statistics, the running ones and what backward keeps are the same.
  const Tensor<T>& forward_statistics(const Tensor<T>& x, const Context& ctx) {
    return forward_impl(x, ctx, true, nullptr, false, false);
  }

  // The output of the last forward written again, from its input and
  // statistics: the same kernel over the same numbers, so the same bits. For
  // a network that keeps no copy of it between the passes (plan step 13),
  // before the layers that read it in backward.
  void remake_output() {
    if (added_) fail(this->label(), ": cannot remake an output that holds a sum (forward_adding)");
    const auto batch_positions = batch_and_positions(input_.shape());
    kernels::batchnorm_normalize(batch_positions.first, C_, batch_positions.second, input_.data(),
                                 mean_.data(), invstd_.data(), gamma(), beta(), output_.data(),
                                 relu_);
  }
  // What a convolution reading this output needs to make it again itself
  // (the ReLU inside, no sum): the last forward's input, and a[c], b[c] of
  // its map y = max(x a + b, 0), computed as the normalising pass computes
  // them (plan step 13, kernels::RemadeInput).
  struct OutputMap {
    const T* a;
    const T* b;
  };
  OutputMap output_map() {
    if (added_ || !relu_)
      fail(this->label(), ": only an output with the ReLU inside and no sum is a map of the input");
    map_.resize(static_cast<std::size_t>(2 * C_));
    for (std::int64_t c = 0; c < C_; ++c) {
      const auto f = kernels::detail::affine_of(c, mean_.data(), invstd_.data(), gamma(), beta());
      map_[static_cast<std::size_t>(c)] = f.a;
      map_[static_cast<std::size_t>(C_ + c)] = f.b;
    }
    return {map_.data(), map_.data() + C_};
  }
  const Tensor<T>& input() const { return input_; }

  // Memory for the output (a view of a buffer the network shares out), or
  // an empty tensor for memory of the layer's own.
  void set_output_storage(const Tensor<T>& storage) { output_ = storage; }

  // Through the batch statistics when forward used them, else as the affine
  // map it was.
  const Tensor<T>& backward(const Tensor<T>& dy) override {
    if (dy.shape() != input_.shape())
      fail(this->label(), ": backward expected dy ", input_.shape().str(), ", got ",
           dy.shape().str());
    // Plain variables, not a structured binding: C++17 lambdas cannot capture one (Clang
    // refuses; C++20 allows it).
    const auto batch_positions = batch_and_positions(dy.shape());
    const std::int64_t N = batch_positions.first, P = batch_positions.second;
    T* dx = nullptr;
    if (this->needs_input_grad_) {
      this->dinput_.resize(dy.shape());
      dx = this->dinput_.data();
    } else {
      this->dinput_ = Tensor<T>();
    }
    T* dgamma = affine_ ? dweight_.data() : nullptr;
    T* dbeta = affine_ ? dbias_.data() : nullptr;
    // The ReLU done inside: its mask is made again from the input, not read from the output.
    const kernels::ReluInside<T> relu_inside{invstd_.data(), gamma(), beta()};
    const kernels::ReluInside<T>* relu = relu_ ? &relu_inside : nullptr;
    // dx needs the sums over the whole batch, which may go round the processes first.
    grad_sums_.resize(static_cast<std::size_t>(2 * C_));
    fold_over_batch(this->batch_share_, {fold_state(grad_sums_.data(), 2 * C_)}, [&](bool carried) {
      kernels::batchnorm_grad_sums(N, C_, P, input_.data(), dy.data(), mean_.data(),
                                   grad_sums_.data(), carried, relu);
    });
    kernels::batchnorm_backward_from_sums(
        N, C_, P, this->batch_share_.global_count(N) * P, batch_stats_, input_.data(), dy.data(),
        mean_.data(), invstd_.data(), gamma(), grad_sums_.data(), dx, dgamma, dbeta, relu);
    return this->dinput_;
  }

  std::vector<Parameter<T>> parameters() override {
    if (!affine_) return {};
    return {{"weight", &weight_, &dweight_}, {"bias", &bias_, &dbias_}};
  }
  std::vector<Buffer<T>> buffers() override {
    if (!track_) return {};
    return {{"running_mean", &running_mean_, nullptr},
            {"running_var", &running_var_, nullptr},
            {"num_batches_tracked", nullptr, &num_batches_tracked_}};
  }

  // PyTorch's reset_parameters(): weight 1, bias 0, running mean 0 and
  // variance 1, no batches counted. Draws nothing from rng.
  void reset_parameters(Rng&) override {
    if (affine_) {
      weight_.fill(T(1));
      bias_.fill(T(0));
    }
    if (track_) {
      running_mean_.fill(T(0));
      running_var_.fill(T(1));
      num_batches_tracked_ = 0;
    }
  }

  std::int64_t num_features() const { return C_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_; }
  Tensor<T>& weight() { return weight_; }
  Tensor<T>& bias() { return bias_; }
  Tensor<T>& weight_grad() { return dweight_; }
  Tensor<T>& bias_grad() { return dbias_; }
  Tensor<T>& running_mean() { return running_mean_; }
  Tensor<T>& running_var() { return running_var_; }
  std::int64_t num_batches_tracked() const { return num_batches_tracked_; }

  // The running statistics as the (mean, 1/sqrt(var + eps)) an evaluation
  // pass normalises with: what the plan folds into a convolution.
  void eval_statistics(Tensor<T>& mean, Tensor<T>& invstd) const {
    mean.resize(Shape{C_});
    invstd.resize(Shape{C_});
    mean.copy_from(running_mean_);
    kernels::batchnorm_invstd(C_, eps_, running_var_.data(), invstd.data());
  }
  const T* gamma() const { return affine_ ? weight_.data() : nullptr; }
  const T* beta() const { return affine_ ? bias_.data() : nullptr; }

 protected:
  BatchNorm(std::int64_t num_features, double eps, std::optional<double> momentum, bool affine,
            bool track_running_stats, const char* type)
      : C_(num_features),
        eps_(eps),
        momentum_(momentum),
        affine_(affine),
        track_(track_running_stats) {
    if (C_ <= 0 || !(eps_ > 0) || (momentum_ && !(*momentum_ >= 0 && *momentum_ <= 1)))
      fail(type, ": invalid arguments (num_features ", C_, ", eps ", eps_, ", momentum ",
           momentum_ ? number(*momentum_) : std::string("None"), "): need num_features > 0, ",
           "eps > 0 and momentum in [0, 1]");
    if (affine_) {
      weight_ = Tensor<T>::full({C_}, T(1));
      bias_ = Tensor<T>({C_});
      dweight_ = Tensor<T>({C_});
      dbias_ = Tensor<T>({C_});
    }
    if (track_) {
      running_mean_ = Tensor<T>({C_});
      running_var_ = Tensor<T>::full({C_}, T(1));
    }
  }

  // The forward of forward_with (relu) and of forward_adding (other,
  // relu_after_sum).
  const Tensor<T>& forward_impl(const Tensor<T>& x, const Context& ctx, bool relu,
                                const Tensor<T>* other, bool relu_after_sum, bool store = true) {
    const Shape out = this->output_shape(x.shape());
    const auto batch_positions = batch_and_positions(out);
    const std::int64_t N = batch_positions.first, P = batch_positions.second;
    batch_stats_ = ctx.training() || !track_;
    this->set_batch_share(ctx.share);
    // Values per channel in the whole batch, which may span processes.
    const std::int64_t M = this->batch_share_.global_count(N) * P;
    mean_.resize(Shape{C_});
    invstd_.resize(Shape{C_});
    if (batch_stats_) {
      if (M == 1)
        fail(this->label(), ": expected more than 1 value per channel when training, got input ",
             out.str());
      var_.resize(Shape{C_});
      output_.resize(out);
      batch_stats(N, P, M, x.data());
      if (ctx.training() && track_) {
        ++num_batches_tracked_;
        const double m = momentum_ ? *momentum_ : 1.0 / static_cast<double>(num_batches_tracked_);
        kernels::batchnorm_update_running(C_, M, m, mean_.data(), var_.data(), running_mean_.data(),
                                          running_var_.data());
      }
    } else {
      mean_.copy_from(running_mean_);
      kernels::batchnorm_invstd(C_, eps_, running_var_.data(), invstd_.data());
    }
    input_ = x;
    output_.resize(out);
    relu_ = relu;
    added_ = other != nullptr;
    if (!store) return output_;
    kernels::batchnorm_normalize(N, C_, P, x.data(), mean_.data(), invstd_.data(), gamma(), beta(),
                                 output_.data(), other ? relu_after_sum : relu_,
                                 other ? other->data() : nullptr);
    return output_;
  }

  // N and P of an input seen as [N, C, P].
  static std::pair<std::int64_t, std::int64_t> batch_and_positions(const Shape& s) {
    std::int64_t P = 1;
    for (int d = 2; d < s.rank(); ++d) P *= s[d];
    return {s[0], P};
  }

  // The batch's mean and variance: the sums of x, then of (x - mean)^2, each
  // going round the processes when others hold part of the batch.
  void batch_stats(std::int64_t N, std::int64_t P, std::int64_t M, const T* x) {
    stat_sums_.resize(static_cast<std::size_t>(C_));
    const BatchShare& share = this->batch_share_;
    fold_over_batch(share, {fold_state(stat_sums_.data(), C_)}, [&](bool carried) {
      kernels::batchnorm_mean_sums(N, C_, P, x, stat_sums_.data(), carried);
    });
    kernels::batchnorm_mean_from_sums(C_, M, stat_sums_.data(), mean_.data());
    fold_over_batch(share, {fold_state(stat_sums_.data(), C_)}, [&](bool carried) {
      kernels::batchnorm_var_sums(N, C_, P, x, mean_.data(), stat_sums_.data(), carried);
    });
    kernels::batchnorm_var_from_sums(C_, M, eps_, stat_sums_.data(), var_.data(), invstd_.data());
  }

  static std::string number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }

  std::int64_t C_;
  double eps_;
  std::optional<double> momentum_;
  bool affine_, track_;
  Tensor<T> weight_, bias_, dweight_, dbias_;
  Tensor<T> running_mean_, running_var_;
  std::int64_t num_batches_tracked_ = 0;
  bool batch_stats_ = true;        // the last forward normalised with this batch's statistics
  bool relu_ = false;              // the last forward stored max(y, 0) (forward_with)
  bool added_ = false;             // the last forward stored a sum (forward_adding)
  Tensor<T> mean_, var_, invstd_;  // of the last forward, for its backward
  Tensor<T> input_, output_;
  // Running sums over the batch, per channel (passed between processes in
  // data-parallel training).
  std::vector<T> stat_sums_;  // sum(x), then sum((x - mean)^2)
  std::vector<T> grad_sums_;  // sum(dy), sum(dy * (x - mean))
  std::vector<T> map_;        // a and b of output_map()
};

// torch.nn.BatchNorm2d: input [N, C, H, W].
template <typename T>
class BatchNorm2d : public BatchNorm<T> {
 public:
  explicit BatchNorm2d(std::int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm<T>(num_features, eps, momentum, affine, track_running_stats, "BatchNorm2d") {}
  std::string type() const override { return "BatchNorm2d"; }
  Shape output_shape(const Shape& in) const override {
    if (in.rank() != 4 || in[1] != this->C_)
      this->shape_error("[N, " + std::to_string(this->C_) + ", H, W]", in);
    return in;
  }
};

// torch.nn.BatchNorm1d: input [N, C] or [N, C, L].
template <typename T>
class BatchNorm1d : public BatchNorm<T> {
 public:
  explicit BatchNorm1d(std::int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm<T>(num_features, eps, momentum, affine, track_running_stats, "BatchNorm1d") {}
  std::string type() const override { return "BatchNorm1d"; }
  Shape output_shape(const Shape& in) const override {
    if ((in.rank() != 2 && in.rank() != 3) || in[1] != this->C_)
      this->shape_error(
          "[N, " + std::to_string(this->C_) + "] or [N, " + std::to_string(this->C_) + ", L]", in);
    return in;
  }
};

}  // namespace minidl
