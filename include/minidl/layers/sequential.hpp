// minidl/layers/sequential.hpp - Sequential: a chain of named layers.
#pragma once

#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "minidl/layers/layer.hpp"

namespace minidl {

// Runs its layers in order; backward runs them in reverse. Parameters are
// listed as "<layer name>.<parameter>" ("conv1.weight"), so a network whose
// layers carry PyTorch's attribute names has PyTorch's state_dict keys.
// Unnamed layers are named by their index, as in torch.nn.Sequential.
//
// The first layer computes no input gradient (nothing needs it in training);
// call set_input_grad(true) when something does. Layers whose input nothing
// reads after their backward may write their input gradient over it (see
// input_is_dead_after_backward): after backward, intermediate outputs may
// hold gradients. A ReLU followed by a layer that can apply its backward
// (MaxPool2d) has its backward folded into that layer's, which saves a pass
// over memory and the ReLU's mask; if it is in place and follows a layer
// that can apply it to its output (Conv2d), its forward is folded into that
// layer's too. set_fold_relu(false) turns both off; the bits are the same.
//
// A Conv2d followed by a MaxPool2d (2x2 windows), directly or through a
// folded in-place ReLU, hands the pool its output a few planes at a time
// as it computes them (Layer::take_input_planes), so the output is never
// stored; and a Conv2d that needs no input gradient (the first) takes its
// output gradient from the pool a plane at a time
// (Layer::defer_input_grad), so that gradient is never stored either. The
// folded layers in between make no pass. set_pass_planes(false) turns both
// off; the bits are the same.
template <typename T>
class Sequential {
 public:
  Sequential() = default;
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  // Appends a layer and returns it (in place in the network).
  template <typename L>
  L& add(std::string name, L layer) {
    static_assert(std::is_base_of<Layer<T>, L>::value, "add() takes a Layer<T>");
    if (name.empty()) name = std::to_string(layers_.size());
    for (const auto& l : layers_)
      if (l->name() == name) fail("Sequential: a layer named '", name, "' already exists");
    auto owned = std::make_unique<L>(std::move(layer));
    L& ref = *owned;
    ref.set_name(std::move(name));
    layers_.push_back(std::move(owned));
    update_input_grad_flags();
    return ref;
  }
  template <typename L>
  L& add(L layer) {
    return add(std::string(), std::move(layer));
  }

  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }
  Layer<T>& layer(const std::string& name) {
    for (auto& l : layers_)
      if (l->name() == name) return *l;
    fail("Sequential: no layer named '", name, "'");
  }

  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) {
    if (layers_.empty()) fail("Sequential: forward on a network without layers");
    const Tensor<T>* h = &x;
    for (std::size_t i = 0; i < layers_.size(); ++i) h = &forward_layer(i, *h, ctx);
    return *h;
  }

  // One step of forward(): layer i's forward, or x itself for a folded
  // layer between two that pass planes. For callers that time layers.
  const Tensor<T>& forward_layer(std::size_t i, const Tensor<T>& x, const Context& ctx) {
    return skip_forward_.at(i) ? x : layers_[i]->forward(x, ctx);
  }

  // dy: gradient of the loss with respect to the output. Returns the input
  // gradient (empty unless set_input_grad(true)).
  const Tensor<T>& backward(const Tensor<T>& dy) {
    const Tensor<T>* g = &dy;
    for (std::size_t i = layers_.size(); i-- > 0;) g = &backward_layer(i, *g);
    return *g;
  }

  // One step of backward(): layer i's backward, or dy itself for a folded
  // layer between two that pass planes. For callers that time layers.
  const Tensor<T>& backward_layer(std::size_t i, const Tensor<T>& dy) {
    return skip_backward_.at(i) ? dy : layers_[i]->backward(dy);
  }

  void set_input_grad(bool needed) {
    input_grad_ = needed;
    update_input_grad_flags();
  }

  // Whether ReLUs are folded into the layers around them (on by default;
  // the results are the same bits either way).
  void set_fold_relu(bool fold) {
    fold_relu_ = fold;
    update_input_grad_flags();
  }

  // Whether a convolution and the max-pool after it pass planes instead of
  // whole tensors (on by default; the results are the same bits either way).
  void set_pass_planes(bool pass) {
    pass_planes_ = pass;
    update_input_grad_flags();
  }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> all;
    for (auto& l : layers_)
      for (auto& p : l->parameters()) all.push_back({l->name() + "." + p.name, p.value, p.grad});
    return all;
  }

  std::int64_t num_parameters() {
    std::int64_t n = 0;
    for (auto& p : parameters()) n += p.value->size();
    return n;
  }

  // Initialises every layer from one seeded stream, in layer order.
  void reset_parameters(std::uint64_t seed) {
    Rng rng(seed);
    for (auto& l : layers_) l->reset_parameters(rng);
  }

  // A table of layer, type, output shape and parameter count for an input shape.
  std::string summary(const Shape& input) {
    std::ostringstream os;
    os << std::left << std::setw(10) << "layer" << std::setw(44) << "type" << std::setw(20)
       << "output" << std::right << std::setw(10) << "params"
       << "\n";
    Shape s = input;
    std::int64_t total = 0;
    for (auto& l : layers_) {
      s = l->output_shape(s);
      std::int64_t count = 0;
      for (auto& p : l->parameters()) count += p.value->size();
      total += count;
      std::string type = l->type();
      if (!l->describe().empty()) type += "(" + l->describe() + ")";
      os << std::left << std::setw(10) << l->name() << std::setw(44) << type << std::setw(20)
         << s.str() << std::right << std::setw(10) << count << "\n";
    }
    os << "total parameters: " << total << "\n";
    return os.str();
  }

  Shape output_shape(Shape s) const {
    for (const auto& l : layers_) s = l->output_shape(s);
    return s;
  }

 private:
  void update_input_grad_flags() {
    // Folding first: it changes whether a ReLU's backward reads its output.
    std::vector<bool> backward_folded(layers_.size(), false);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const bool relu_before = fold_relu_ && i > 0 && layers_[i - 1]->is_relu();
      const bool folded = layers_[i]->fold_relu_backward(relu_before) && relu_before;
      if (i > 0) {
        layers_[i - 1]->set_backward_folded(folded);
        backward_folded[i - 1] = folded;
      }
    }
    if (!layers_.empty()) layers_.back()->set_backward_folded(false);
    // Then forward: a ReLU with nothing left of its backward is applied by
    // the layer before it, if that layer can.
    for (auto& l : layers_) {
      l->set_forward_folded(false);
      l->fold_relu_forward(false);
    }
    std::vector<bool> forward_folded(layers_.size(), false);
    for (std::size_t i = 1; fold_relu_ && i < layers_.size(); ++i) {
      forward_folded[i] =
          layers_[i]->set_forward_folded(true) && layers_[i - 1]->fold_relu_forward(true);
      if (!forward_folded[i]) layers_[i]->set_forward_folded(false);
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layers_[i]->set_needs_input_grad(i > 0 || input_grad_);
      layers_[i]->set_may_overwrite_input(input_is_dead_after_backward(i));
    }
    // Planes. Forward: layer i feeds layer j, the next layer that is not
    // folded into the one before it. Backward: layer i takes its output
    // gradient from layer j, the next one whose backward is not folded into
    // the one after it. A folded ReLU in between hands its input on either
    // way: it is skipped in both directions (its backward checks dy against
    // the output its skipped forward would have seen).
    skip_forward_.assign(layers_.size(), false);
    skip_backward_.assign(layers_.size(), false);
    for (auto& l : layers_) {
      l->feed_output_to(nullptr);
      l->take_input_planes(false);
      l->take_output_grad_from(nullptr);
      l->defer_input_grad(false);
    }
    if (!pass_planes_) return;
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
      std::size_t j = i + 1;
      while (j + 1 < layers_.size() && forward_folded[j]) ++j;
      if (!layers_[j]->take_input_planes(true)) continue;
      if (!layers_[i]->feed_output_to(layers_[j].get())) {
        layers_[j]->take_input_planes(false);
        continue;
      }
      for (std::size_t k = i + 1; k < j; ++k) skip_forward_[k] = skip_backward_[k] = true;
      i = j - 1;  // layer j has its partner; go on from j
    }
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
      std::size_t j = i + 1;
      while (j + 1 < layers_.size() && backward_folded[j]) ++j;
      if (!layers_[j]->defer_input_grad(true)) continue;
      if (!layers_[i]->take_output_grad_from(layers_[j].get())) {
        layers_[j]->defer_input_grad(false);
        continue;
      }
      for (std::size_t k = i + 1; k < j; ++k) skip_backward_[k] = true;
      i = j - 1;
    }
  }

  // Whether nothing reads layer i's input once layer i's backward has run.
  // The input is the output of the layers before it, through any that pass
  // their input's storage on as their output (in-place ReLU, Flatten): none
  // of those may read its output in backward, and the storage must belong
  // to a layer (the network's input belongs to the caller).
  bool input_is_dead_after_backward(std::size_t i) const {
    for (std::size_t j = i; j-- > 0;) {
      if (layers_[j]->backward_reads_output()) return false;
      if (!layers_[j]->output_aliases_input()) return true;
    }
    return false;
  }

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<bool> skip_forward_, skip_backward_;  // folded layers between two that pass planes
  bool input_grad_ = false;
  bool fold_relu_ = true;
  bool pass_planes_ = true;
};

}  // namespace minidl
