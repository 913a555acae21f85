// minidl/layers/layer.hpp - the interface every layer implements.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "minidl/core/batch_reducer.hpp"
#include "minidl/core/error.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/core/tensor.hpp"

namespace minidl {

enum class Mode { Train, Eval };

// What a forward pass needs to know besides its input: training or
// evaluation, the global step that keys dropout masks, and which share of
// the batch this process holds when training is data-parallel (layers that
// sum over the batch keep it for their backward).
struct Context {
  Mode mode = Mode::Eval;
  std::uint64_t step = 0;
  BatchShare share{};
  bool training() const { return mode == Mode::Train; }
};

// A trainable tensor and its gradient, named like PyTorch's state_dict.
// `frozen` points at the flag Graph::freeze sets (requires_grad = False in
// PyTorch): optimizers and clipping skip a parameter that is not trainable().
// The flag lives in the layer, so freezing after an optimizer was made still
// counts; null (a parameter made by hand) means always trainable.
template <typename T>
struct Parameter {
  std::string name;
  Tensor<T>* value;
  Tensor<T>* grad;
  const bool* frozen = nullptr;
  bool trainable() const { return frozen == nullptr || !*frozen; }
};

// State that is saved with the parameters but not trained (BatchNorm's
// running statistics), named like PyTorch's state_dict buffers: a tensor of
// the layer's type, or an integer counter (`count`; an int64 tensor of shape
// [] in PyTorch, "num_batches_tracked"). Exactly one of the two is set.
template <typename T>
struct Buffer {
  std::string name;
  Tensor<T>* value;
  std::int64_t* count;
};

// A layer is math: its shapes, its parameters, and forward and backward side
// by side. forward() returns a reference to a buffer the layer owns and
// reuses from call to call; backward() must follow the forward it
// differentiates, and *writes* (does not accumulate) the parameter gradients
// and the input gradient. Which layers are fused and which buffers are shared
// is decided outside, by the plan pass (layers/plan.hpp), from the two traits
// below; their defaults are the safe answers.
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
  // Buffers with names relative to the layer ("running_mean").
  virtual std::vector<Buffer<T>> buffers() { return {}; }
  // Draws fresh initial values (and seeds) from rng.
  virtual void reset_parameters(Rng& rng) { (void)rng; }

  // Whether backward reads the output forward returned. Say false only when
  // it does not: the plan then lets a later layer write over that output.
  virtual bool backward_reads_output() const { return true; }
  // Whether the output shares the input's storage (a view, or in place).
  virtual bool output_aliases_input() const { return false; }

  // Off for a layer whose input gradient nothing uses (the first of a
  // network): backward then skips that work and returns an empty tensor.
  void set_needs_input_grad(bool needed) { needs_input_grad_ = needed; }
  bool needs_input_grad() const { return needs_input_grad_; }

  // The memory backward writes the input gradient into: a buffer the
  // network's plan shares between layers whose input gradients are never
  // needed at the same time, or (an empty tensor) memory of the layer's own.
  // The gradient a backward returns is then valid until a later node's
  // backward writes into the same buffer.
  void set_input_grad_storage(const Tensor<T>& storage) { dinput_ = storage; }

  // Freezing of the parameter `param` ("weight"); networks freeze by name
  // (Graph::freeze). frozen_flag() is what Parameter::frozen points at.
  void set_frozen(const std::string& param, bool frozen) {
    const auto params = parameters();
    if (std::none_of(params.begin(), params.end(), [&](const auto& p) { return p.name == param; }))
      fail(label(), ": no parameter named '", param, "'");
    frozen_[param] = frozen;
    needs_param_grad_ = false;
    for (const auto& p : params) needs_param_grad_ |= !frozen_[p.name];
  }
  const bool* frozen_flag(const std::string& param) { return &frozen_[param]; }
  // False once every parameter is frozen: backward may then skip the
  // parameter gradients (their tensors keep what they held).
  bool needs_param_grad() const { return needs_param_grad_; }

  // Which share of the batch the next forward and backward see (a network
  // sets it on all its layers from the forward's Context): layers that sum
  // over the batch continue the sums of the processes before this one.
  void set_batch_share(const BatchShare& share) { batch_share_ = share; }
  const BatchShare& batch_share() const { return batch_share_; }

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // "conv1 (Conv2d)" or "Conv2d" when unnamed: the start of every error message.
  std::string label() const { return name_.empty() ? type() : name_ + " (" + type() + ")"; }

 protected:
  [[noreturn]] void shape_error(const std::string& expected, const Shape& got) const {
    fail(label(), ": expected input ", expected, ", got ", got.str());
  }

  bool needs_input_grad_ = true;
  bool needs_param_grad_ = true;
  Tensor<T> dinput_;  // the input gradient backward returns (resize() keeps a shared buffer)
  BatchShare batch_share_{};
  std::string name_;

 private:
  std::map<std::string, bool> frozen_;  // node-based: the flags' addresses stay put
};

// U(-bound, bound) for every element: PyTorch's kaiming_uniform_(a=sqrt(5))
// works out to bound = 1/sqrt(fan_in) for weights, and its bias default uses
// the same bound.
template <typename T>
void fill_uniform(Tensor<T>& t, double bound, Rng& rng) {
  for (T& v : t) v = static_cast<T>(rng.uniform<double>(-bound, bound));
}

}  // namespace minidl
