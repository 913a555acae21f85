// minidl/layers/layer.hpp - the interface every layer implements.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl {

enum class Mode { Train, Eval };

// What a forward pass needs to know besides its input: training or
// evaluation, and the global step that keys dropout masks.
struct Context {
  Mode mode = Mode::Eval;
  std::uint64_t step = 0;
  bool training() const { return mode == Mode::Train; }
};

// A trainable tensor and its gradient, named like PyTorch's state_dict.
template <typename T>
struct Parameter {
  std::string name;
  Tensor<T>* value;
  Tensor<T>* grad;
};

// A layer keeps its parameters, their gradients and what its backward needs
// from the forward (documented per layer). forward() returns a reference to a
// buffer the layer owns and reuses from call to call; backward() must follow
// the forward it differentiates, and *writes* (does not accumulate) the
// parameter gradients and the input gradient.
template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string type() const = 0;
  // Constructor arguments as text, e.g. "1 -> 32, kernel 3, stride 1, pad 1".
  virtual std::string describe() const { return ""; }
  // The output shape for an input shape; throws an Error naming the layer and
  // both shapes when the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;

  virtual const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) = 0;
  virtual const Tensor<T>& backward(const Tensor<T>& dy) = 0;

  // Parameters with names relative to the layer ("weight", "bias").
  virtual std::vector<Parameter<T>> parameters() { return {}; }
  // Draws fresh initial values (and seeds) from rng.
  virtual void reset_parameters(Rng& rng) { (void)rng; }

  // The first layer of a network has no use for its input gradient; turning
  // it off skips that work (backward then returns an empty tensor).
  void set_needs_input_grad(bool needed) { needs_input_grad_ = needed; }
  bool needs_input_grad() const { return needs_input_grad_; }

  // Memory planning (see Sequential): whether backward reads this layer's
  // own output, and whether the output shares the input's storage.
  virtual bool backward_reads_output() const { return false; }
  virtual bool output_aliases_input() const { return false; }
  // Set by Sequential when nothing reads this layer's input once its own
  // backward has run: the layer may then write its input gradient over it.
  void set_may_overwrite_input(bool allowed) { may_overwrite_input_ = allowed; }
  bool may_overwrite_input() const { return may_overwrite_input_; }

  // Folding a ReLU's backward into the next layer's (see Sequential). A
  // layer that can do it (MaxPool2d) accepts fold_relu_backward(true) when
  // its input is a ReLU's output; the ReLU then gets
  // set_backward_folded(true), and neither keeps a mask nor makes a pass of
  // its own in backward. Results are bit for bit those of the separate passes.
  virtual bool is_relu() const { return false; }
  virtual bool fold_relu_backward(bool fold) {
    (void)fold;
    return false;
  }
  virtual void set_backward_folded(bool folded) { (void)folded; }
  // Folding a ReLU's forward into the layer before it: an in-place ReLU
  // whose backward is folded accepts set_forward_folded(true), and a layer
  // that can apply the ReLU as it stores its output (Conv2d) accepts
  // fold_relu_forward(true). The ReLU's forward then hands its input on.
  virtual bool set_forward_folded(bool folded) {
    (void)folded;
    return false;
  }
  virtual bool fold_relu_forward(bool fold) {
    (void)fold;
    return false;
  }

  // Passing [H, W] planes between two layers instead of whole tensors (see
  // Sequential); planes are numbered in [N, C] order. Results are bit for
  // bit those of the whole tensors.
  //
  // Backward: a layer that can make its input gradient a plane at a time
  // (MaxPool2d with 2x2 windows) accepts defer_input_grad(true); its
  // backward then only keeps dy and returns an empty tensor, and
  // input_grad_plane(p, out) writes plane p of the gradient. A layer that
  // needs no input gradient of its own (the first Conv2d) accepts
  // take_output_grad_from(source) and ignores the dy its backward gets.
  virtual bool defer_input_grad(bool defer) { return !defer; }
  virtual void input_grad_plane(std::int64_t p, T* out) const {
    (void)p;
    (void)out;
    fail(label(), ": its input gradient cannot be made plane by plane");
  }
  virtual bool take_output_grad_from(const Layer<T>* source) { return source == nullptr; }
  // Forward: a layer that can work without its input stored (a MaxPool2d
  // with 2x2 windows, which records its winners instead) accepts
  // take_input_planes(true); the layer before it, if it accepts
  // feed_output_to(consumer), calls consumer->begin_input_planes(shape) and
  // then, from any thread, consumer->input_planes(p0, count, planes) until
  // every plane has come, and returns an empty tensor. The consumer's
  // forward then returns the output those calls made. nullptr and false
  // end it.
  virtual bool take_input_planes(bool take) { return !take; }
  virtual void begin_input_planes(const Shape& input) {
    (void)input;
    fail(label(), ": it cannot take its input plane by plane");
  }
  virtual void input_planes(std::int64_t p0, std::int64_t count, const T* planes) {
    (void)p0;
    (void)count;
    (void)planes;
    fail(label(), ": it cannot take its input plane by plane");
  }
  virtual bool feed_output_to(Layer<T>* consumer) { return consumer == nullptr; }

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 protected:
  // "conv1 (Conv2d)" or "Conv2d" when unnamed: the start of every error message.
  std::string label() const { return name_.empty() ? type() : name_ + " (" + type() + ")"; }

  [[noreturn]] void shape_error(const std::string& expected, const Shape& got) const {
    fail(label(), ": expected input ", expected, ", got ", got.str());
  }

  bool needs_input_grad_ = true;
  bool may_overwrite_input_ = false;
  std::string name_;
};

// U(-bound, bound) for every element: PyTorch's kaiming_uniform_(a=sqrt(5))
// works out to bound = 1/sqrt(fan_in) for weights, and its bias default uses
// the same bound.
template <typename T>
void fill_uniform(Tensor<T>& t, double bound, Rng& rng) {
  for (T& v : t) v = static_cast<T>(rng.uniform<double>(-bound, bound));
}

}  // namespace minidl
