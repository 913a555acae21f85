// minidl/layers/graph.hpp - Graph: a network of named layers and merges; Sequential is its chain.
#pragma once

#include <algorithm>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "minidl/kernels/add.hpp"
#include "minidl/layers/layer.hpp"
#include "minidl/layers/merge.hpp"
#include "minidl/layers/plan.hpp"

namespace minidl {

// A network: nodes added in order, each reading the values of nodes added
// before it (by name; "input" is the network's input). A node that names no
// input reads the node added just before it, so a Graph built with add(name,
// layer) alone is a chain: Sequential. The last node's value is the output.
//
//   Graph<float> net;
//   net.add("conv1", Conv2d<float>(8, 8, 3, 1, 1));        // reads the input
//   net.add("relu1", ReLU<float>(true));
//   net.add("conv2", Conv2d<float>(8, 8, 3, 1, 1));
//   net.add("add", Add<float>(), "conv2", "input");        // the skip connection
//
// Parameters are listed as "<node name>.<parameter>" ("conv1.weight"): name
// nodes as PyTorch names the modules ("layer1.0.conv1") and the list is
// PyTorch's state_dict. Unnamed nodes are named by their index, as in
// torch.nn.Sequential.
//
// forward() and backward() follow the plan the plan pass (layers/plan.hpp)
// makes for the input shape: fusions, shared buffers and kernels are decided
// there, and plan_summary() prints them. The nodes reading only the
// network's input compute no input gradient unless set_input_grad(true).
// After backward, intermediate outputs may hold gradients, and layers that
// made their input gradients early may find them overwritten by later ones
// (see the plan).
// A value read by several nodes gets the sum of their gradients, added in
// node order.
template <typename T>
class Graph {
 public:
  Graph() = default;
  Graph(Graph&&) noexcept = default;
  Graph& operator=(Graph&&) noexcept = default;

  // Adds a layer or a merge reading the named nodes ("input": the network's
  // input; none: the node added before) and returns it, in place in the
  // network.
  template <typename L, typename... Names>
  L& add(std::string name, L layer, const Names&... inputs) {
    return add(std::move(name), std::move(layer), std::vector<std::string>{std::string(inputs)...});
  }
  // The same with the input names in a list, for code that builds networks
  // from a description (an ONNX file).
  template <typename L>
  L& add(std::string name, L layer, const std::vector<std::string>& inputs) {
    constexpr bool is_layer = std::is_base_of<Layer<T>, L>::value;
    static_assert(is_layer || std::is_base_of<Merge<T>, L>::value, "add() takes a Layer or Merge");
    if (name.empty()) name = std::to_string(nodes_.size());
    if (name == "input") fail("network: 'input' names the network's input, not a node");
    for (const auto& n : nodes_)
      if (n.name == name) fail("network: a node named '", name, "' already exists");
    Node<T> node;
    node.name = name;
    for (const auto& input : inputs) node.inputs.push_back(index_of(input));
    if (node.inputs.empty()) node.inputs.push_back(static_cast<int>(nodes_.size()) - 1);
    auto owned = std::make_unique<L>(std::move(layer));
    L& ref = *owned;
    ref.set_name(std::move(name));
    if constexpr (is_layer) {
      if (node.inputs.size() != 1) fail(ref.label(), ": a layer reads one input");
      node.layer = std::move(owned);
    } else {
      if (node.inputs.size() < 2) fail(ref.label(), ": name the two inputs or more it merges");
      node.merge = std::move(owned);
    }
    nodes_.push_back(std::move(node));
    invalidate();
    return ref;
  }
  template <typename L>
  L& add(L layer) {
    return add(std::string(), std::move(layer));
  }

  std::size_t size() const { return nodes_.size(); }
  // Node i as it stands: its layer or merge and the nodes it reads, for code
  // that walks the network (the ONNX export).
  const Node<T>& node(std::size_t i) const { return nodes_.at(i); }
  const std::string& node_name(std::size_t i) const { return nodes_.at(i).name; }
  // The layer at node i or with a name (an Error for a merge).
  Layer<T>& operator[](std::size_t i) { return layer_at(i); }
  Layer<T>& layer(const std::string& name) {
    return layer_at(static_cast<std::size_t>(index_of(name)));
  }

  // forward and backward call observer(i) after node i, if given: for
  // callers that time nodes.
  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx) {
    return forward(x, ctx, [](std::size_t) {});
  }
  template <typename Observer>
  const Tensor<T>& forward(const Tensor<T>& x, const Context& ctx, Observer&& observer) {
    const Plan& p = plan(x.shape());
    input_ = &x;
    folded_ = false;
    for (auto& n : nodes_)
      if (n.layer) n.layer->set_batch_share(ctx.share);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      values_[i] = &forward_node(i, p.nodes[i], ctx);
      observer(i);
    }
    forward_done_ = true;
    return *values_.back();
  }

  // dy: gradient of the loss with respect to the output. Returns the input
  // gradient (empty unless set_input_grad(true)).
  const Tensor<T>& backward(const Tensor<T>& dy) {
    return backward(dy, [](std::size_t) {});
  }
  template <typename Observer>
  const Tensor<T>& backward(const Tensor<T>& dy, Observer&& observer) {
    if (!planned_ || !forward_done_)
      fail("network: backward without a forward under the current plan");
    if (folded_)
      fail(
          "network: backward after an evaluation forward that folded BatchNorm2d into a "
          "convolution; turn PlanOptions::fold_batchnorm off to differentiate in evaluation");
    if (!grad_buffers_bound_) bind_grad_buffers();
    for (std::size_t i = nodes_.size(); i-- > 0;) {
      const NodePlan& p = plan_.nodes[i];
      // A ReLU whose backward the sum does reads the value it stored (plan step 5).
      const Tensor<T>& g =
          i + 1 == nodes_.size()
              ? dy
              : gradient(p.uses, sums_[i],
                         p.backward_in_sum ? &value(nodes_[i].inputs[0]) : nullptr);
      if (const int b = p.remakes_input_of; b >= 0 && !p.remakes_in_copy)
        static_cast<BatchNorm<T>&>(*nodes_[static_cast<std::size_t>(b)].layer).remake_output();
      backward_node(i, p, g);
      observer(i);
    }
    return input_grad_ ? gradient(plan_.input_uses, input_sum_) : empty_;
  }

  void set_input_grad(bool needed) {
    input_grad_ = needed;
    invalidate();
  }

  // Fusions and shared buffers (all on by default; the bits are the same either way).
  void set_plan_options(PlanOptions options) {
    options_ = options;
    invalidate();
  }
  const PlanOptions& plan_options() const { return options_; }

  // The plan for an input shape (made if the last one was for another).
  const Plan& plan(const Shape& input) {
    if (planned_ && plan_.input == input) return plan_;
    planned_ = forward_done_ = false;
    plan_ = minidl::plan(nodes_, input, options_, input_grad_);
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (Layer<T>* layer = nodes_[i].layer.get())
        layer->set_needs_input_grad(plan_.nodes[i].needs_input_grad);
    grad_buffers_bound_ = false;  // at the first backward under this plan
    bind_remade_buffer();
    values_.assign(nodes_.size(), nullptr);
    grads_.resize(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      grads_[i].assign(nodes_[i].inputs.size(), nullptr);
      merge_inputs_.reserve(nodes_[i].inputs.size());
    }
    planned_ = true;
    return plan_;
  }
  std::string plan_summary(const Shape& input) { return plan(input).summary(nodes_); }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> all;
    for (auto& n : nodes_)
      if (n.layer)
        for (auto& p : n.layer->parameters())
          all.push_back({n.name + "." + p.name, p.value, p.grad, n.layer->frozen_flag(p.name)});
    return all;
  }

  // Freezes parameters, as requires_grad_(False) does in PyTorch: optimizers
  // and clipping skip them (even an optimizer made before), checkpoints still
  // save them, and gradients still flow through their layers to the layers
  // before. `name` is a parameter ("fc1.weight"), a node ("fc1": all its
  // parameters) or a prefix of node names ending at a dot ("layer1" for
  // "layer1.0.conv1", not "layer10"); "" names every parameter. A name that
  // matches no parameter is an error.
  void freeze(const std::string& name) { set_frozen(name, true); }
  void unfreeze(const std::string& name) { set_frozen(name, false); }

  // Every layer's buffers, named "<node name>.<buffer>" ("bn1.running_mean")
  // as in PyTorch's state_dict.
  std::vector<Buffer<T>> buffers() {
    std::vector<Buffer<T>> all;
    for (auto& n : nodes_)
      if (n.layer)
        for (auto& b : n.layer->buffers()) all.push_back({n.name + "." + b.name, b.value, b.count});
    return all;
  }

  std::int64_t num_parameters() {
    std::int64_t n = 0;
    for (auto& p : parameters()) n += p.value->size();
    return n;
  }

  // Initialises every layer from one seeded stream, in node order.
  void reset_parameters(std::uint64_t seed) {
    Rng rng(seed);
    for (auto& n : nodes_)
      if (n.layer) n.layer->reset_parameters(rng);
  }

  // A table of node, type, output shape and parameter count for an input
  // shape, then the plan.
  std::string summary(const Shape& input) {
    const Plan& p = plan(input);
    std::vector<std::string> types;
    std::size_t width = 12, type_width = 44;  // columns fit the longest name and type
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      types.push_back(type_text(i));
      width = std::max(width, nodes_[i].name.size() + 2);
      type_width = std::max(type_width, types.back().size() + 2);
    }
    const int w = static_cast<int>(width), tw = static_cast<int>(type_width);
    std::ostringstream os;
    os << std::left << std::setw(w) << "node" << std::setw(tw) << "type" << std::setw(20)
       << "output" << std::right << std::setw(10) << "params"
       << "\n";
    std::int64_t total = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      std::int64_t count = 0;
      if (nodes_[i].layer)
        for (auto& q : nodes_[i].layer->parameters()) count += q.value->size();
      total += count;
      os << std::left << std::setw(w) << nodes_[i].name << std::setw(tw) << types[i]
         << std::setw(20) << p.nodes[i].output.str() << std::right << std::setw(10) << count
         << "\n";
    }
    os << "total parameters: " << total << "\n\n" << p.summary(nodes_);
    return os.str();
  }

  Shape output_shape(const Shape& input) { return plan(input).nodes.back().output; }

 private:
  int index_of(const std::string& name) const {
    if (name == "input") return kNetworkInput;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].name == name) return static_cast<int>(i);
    fail("network: no node named '", name, "'");
  }

  // "Conv2d(1 -> 32, ...)", and "<- a, b" when the node reads other than the node before.
  std::string type_text(std::size_t i) const {
    const Node<T>& n = nodes_[i];
    std::string type = n.type();
    if (n.layer && !n.layer->describe().empty()) type += "(" + n.layer->describe() + ")";
    if (n.inputs.size() > 1 || n.inputs[0] != static_cast<int>(i) - 1) {
      type += " <- ";
      for (std::size_t k = 0; k < n.inputs.size(); ++k)
        type += (k ? ", " : "") + (n.inputs[k] == kNetworkInput
                                       ? std::string("input")
                                       : nodes_[static_cast<std::size_t>(n.inputs[k])].name);
    }
    return type;
  }

  Layer<T>& layer_at(std::size_t i) {
    const Node<T>& n = nodes_.at(i);
    if (!n.layer) fail("network: node '", n.name, "' is a ", n.type(), ", not a layer");
    return *n.layer;
  }

  void invalidate() { planned_ = forward_done_ = false; }

  void set_frozen(const std::string& name, bool frozen) {
    auto matches = [&](const std::string& full) {
      return name.empty() || full == name ||
             (full.size() > name.size() && full.compare(0, name.size(), name) == 0 &&
              full[name.size()] == '.');
    };
    int count = 0;
    for (auto& n : nodes_)
      if (n.layer)
        for (auto& p : n.layer->parameters())
          if (matches(n.name + "." + p.name)) {
            n.layer->set_frozen(p.name, frozen);
            ++count;
          }
    if (count > 0) return;
    const char* verb = frozen ? "freeze" : "unfreeze";
    for (auto& n : nodes_)
      if (n.name == name)
        fail("network: cannot ", verb, " '", name, "': the node has no parameters");
    fail("network: cannot ", verb, " '", name,
         "': no parameter is named so or lies under a node of that name");
  }

  const Tensor<T>& value(int v) const {
    return v == kNetworkInput ? *input_ : *values_[static_cast<std::size_t>(v)];
  }

  // Whether a batch norm makes no pass in this forward: folded into its
  // convolution, in evaluation (plan step 10).
  static bool skipped_in(const Context& ctx, const NodePlan& p) {
    return p.folded_in_eval && !ctx.training();
  }

  // Whether batch norm b's output is made by the convolution reading it in
  // this forward, not written (plan step 13): not when b is folded into the
  // convolution before it, nor when that reader runs with its own batch
  // norm folded in, in evaluation.
  bool made_by_reader(int b, const Context& ctx) const {
    const NodePlan& p = plan_.nodes[static_cast<std::size_t>(b)];
    if (p.output_made_by < 0 || skipped_in(ctx, p)) return false;
    const NodePlan& c = plan_.nodes[static_cast<std::size_t>(p.output_made_by)];
    return !(c.batchnorm_folded >= 0 && !ctx.training());
  }

  // One node's forward, as the plan says.
  const Tensor<T>& forward_node(std::size_t i, const NodePlan& p, const Context& ctx) {
    Node<T>& n = nodes_[i];
    if (n.merge) {
      merge_inputs_.resize(n.inputs.size());  // within the capacity plan() reserved
      for (std::size_t k = 0; k < n.inputs.size(); ++k) merge_inputs_[k] = &value(n.inputs[k]);
      if (p.sum_made_by >= 0 &&
          !skipped_in(ctx, plan_.nodes[static_cast<std::size_t>(p.sum_made_by)]))
        return static_cast<Add<T>&>(*n.merge).forward_made(
            merge_inputs_, static_cast<std::size_t>(p.sum_over_input));
      if (p.sum_over_input >= 0)
        return static_cast<Add<T>&>(*n.merge).forward_over(
            merge_inputs_, static_cast<std::size_t>(p.sum_over_input), p.relu_in_store);
      if (p.relu_in_store) return static_cast<Add<T>&>(*n.merge).forward_with(merge_inputs_, true);
      return n.merge->forward(merge_inputs_);
    }
    const Tensor<T>& x = value(n.inputs[0]);
    if (p.skip_forward) return x;  // the layer before has applied this ReLU
    // The convolution has applied this batch norm.
    if (skipped_in(ctx, p)) return x;
    if (p.relu_after) {
      auto& bn = static_cast<BatchNorm<T>&>(*n.layer);
      if (made_by_reader(static_cast<int>(i), ctx)) return bn.forward_statistics(x, ctx);
      return bn.forward_with(x, ctx, true);
    }
    if (p.adds_for >= 0) {  // and the addition after it
      const auto a = static_cast<std::size_t>(p.adds_for);
      const int other =
          nodes_[a].inputs[static_cast<std::size_t>(1 - plan_.nodes[a].sum_over_input)];
      return static_cast<BatchNorm<T>&>(*n.layer).forward_adding(x, ctx, value(other),
                                                                 plan_.nodes[a].relu_in_store);
    }
    if (p.is_conv) {
      auto& conv = static_cast<Conv2d<T>&>(*n.layer);
      if (p.batchnorm_folded >= 0 && !ctx.training()) return forward_folded(conv, x, p);
      if (const int b = p.remakes_input_of; b >= 0 && made_by_reader(b, ctx)) {
        auto& bn = static_cast<BatchNorm<T>&>(*nodes_[static_cast<std::size_t>(b)].layer);
        const auto map = bn.output_map();
        return conv.forward_remaking_input(x, bn.input(), {map.a, map.b}, p.kernels,
                                           p.relu_in_store);
      }
      if (p.planes_to < 0) return conv.forward_with(x, p.kernels, p.relu_in_store);
      const auto j = static_cast<std::size_t>(p.planes_to);
      PoolSink sink{&pool_at(j), plan_.nodes[j].relu_in_backward};
      conv.forward_planes(x, p.kernels, p.relu_in_store, sink);
      return empty_;
    }
    if (auto* pool = dynamic_cast<MaxPool2d<T>*>(n.layer.get())) {
      if (p.fed_planes) return pool->output();  // made by the convolution's planes
      return pool->forward_with(x, p.relu_in_backward, p.defer_input_grad);
    }
    if (p.skip_backward) return static_cast<ReLU<T>&>(*n.layer).forward_unmasked(x);
    return n.layer->forward(x, ctx);
  }

  // A convolution with the batch norm after it folded in (plan step 10),
  // from the current weights and running statistics; it also applies the
  // ReLU that batch norm applies (step 5).
  const Tensor<T>& forward_folded(Conv2d<T>& conv, const Tensor<T>& x, const NodePlan& p) {
    const auto& bn = static_cast<const BatchNorm2d<T>&>(
        *nodes_[static_cast<std::size_t>(p.batchnorm_folded)].layer);
    bn.eval_statistics(fold_mean_, fold_invstd_);
    const Tensor<T>& w = conv.weight();
    const std::int64_t OC = w.dim(0), K = w.size() / OC;
    folded_weight_.resize(w.shape());
    folded_bias_.resize(Shape{OC});
    kernels::batchnorm_fold_into_conv(
        OC, K, w.data(), conv.bias().empty() ? nullptr : conv.bias().data(), fold_mean_.data(),
        fold_invstd_.data(), bn.gamma(), bn.beta(), folded_weight_.data(), folded_bias_.data());
    folded_ = true;
    const bool relu = plan_.nodes[static_cast<std::size_t>(p.batchnorm_folded)].relu_after;
    return conv.forward_with_weights(x, p.kernels, folded_weight_.data(), folded_bias_.data(),
                                     relu);
  }

  // One node's backward, as the plan says; records its input gradients.
  void backward_node(std::size_t i, const NodePlan& p, const Tensor<T>& dy) {
    Node<T>& n = nodes_[i];
    auto& grads = grads_[i];
    if (p.passes_gradient) {
      for (auto& g : grads) g = &dy;  // an Add whose inputs share dy
    } else if (n.merge) {
      const auto& d = n.merge->backward(dy);
      for (std::size_t k = 0; k < grads.size(); ++k) grads[k] = &d[k];
    } else if (p.skip_backward || p.backward_in_sum) {
      // The pool after, the batch norm before or the sum of dy has done this ReLU's backward.
      grads[0] = &dy;
    } else if (p.backward_from_output) {
      grads[0] = &static_cast<ReLU<T>&>(*n.layer).backward_from_output(dy, value(n.inputs[0]));
    } else if (p.grad_planes_from >= 0) {
      const MaxPool2d<T>* pool = &pool_at(static_cast<std::size_t>(p.grad_planes_from));
      const auto planes = [pool, oc = p.output[1]](std::int64_t s, std::int64_t o, T* buffer) {
        pool->input_grad_plane(s * oc + o, buffer);
        return static_cast<const T*>(buffer);
      };
      static_cast<Conv2d<T>&>(*n.layer).backward_from_planes(planes);
      grads[0] = &empty_;
    } else if (p.defer_input_grad) {
      pool_at(i).keep_output_grad(dy);  // the convolution before reads it by planes
      grads[0] = &empty_;
    } else if (p.remakes_in_copy) {
      // The batch norm's output, gone from memory, made again by the weight gradient (plan 13).
      auto& bn =
          static_cast<BatchNorm<T>&>(*nodes_[static_cast<std::size_t>(p.remakes_input_of)].layer);
      const auto map = bn.output_map();
      grads[0] = &static_cast<Conv2d<T>&>(*n.layer).backward_remaking_input(dy, bn.input(),
                                                                            {map.a, map.b});
    } else if (auto* pool = dynamic_cast<MaxPool2d<T>*>(n.layer.get())) {
      grads[0] = &pool->backward_with(dy, p.overwrite_input);
    } else {
      grads[0] = &n.layer->backward(dy);
    }
  }

  // The gradient of a value: its one reader's, or the sum of all readers'
  // in node order (into `sum`); with relu_output (two readers or more), the
  // backward of the in-place ReLU that stored it done by the last addition.
  const Tensor<T>& gradient(const std::vector<Use>& uses, Tensor<T>& sum,
                            const Tensor<T>* relu_output = nullptr) {
    auto grad = [&](const Use& u) -> const Tensor<T>& {
      return *grads_[static_cast<std::size_t>(u.node)][static_cast<std::size_t>(u.slot)];
    };
    if (uses.size() == 1) return grad(uses[0]);
    const Tensor<T>& first = grad(uses[0]);
    sum.resize(first.shape());
    if (relu_output && relu_output->shape() != sum.shape())
      fail("network: a ReLU's stored output is ", relu_output->shape().str(), ", its gradient ",
           sum.shape().str());
    for (std::size_t k = 1; k < uses.size(); ++k) {
      const Tensor<T>& g = grad(uses[k]);
      if (g.shape() != sum.shape())
        fail("network: gradients of one value differ in shape: ", g.shape().str(), " and ",
             sum.shape().str());
      // The first two straight into the sum: the same bits as a copy and an addition.
      const T* so_far = k == 1 ? first.data() : sum.data();
      if (relu_output && k + 1 == uses.size())
        kernels::add_relu_backward(sum.size(), so_far, g.data(), relu_output->data(), sum.data());
      else
        kernels::add(sum.size(), so_far, g.data(), sum.data());
    }
    return sum;
  }

  // Hands the shared gradient buffers of plan step 12 to the layers and the
  // sums. Only a backward needs them, so a network that only evaluates
  // never allocates them. They keep their memory from plan to plan and grow
  // when a gradient needs more, so that switching between a training batch,
  // a smaller last batch and evaluation allocates nothing once warm.
  void bind_grad_buffers() {
    const std::size_t count = nodes_.size();
    sums_.resize(count);
    shared_sum_.resize(count, false);
    // Every view lets go first, so that a buffer that grows is not held
    // twice, and no layer keeps a view it had under another plan (of a
    // buffer, of dy, of its input).
    for (std::size_t i = 0; i < count; ++i) {
      if (Layer<T>* layer = nodes_[i].layer.get()) layer->set_input_grad_storage(Tensor<T>());
      if (shared_sum_[i]) sums_[i] = Tensor<T>();
    }
    if (shared_input_sum_) input_sum_ = Tensor<T>();
    grad_buffers_.resize(plan_.grad_buffers.size());
    for (std::size_t k = 0; k < grad_buffers_.size(); ++k)
      grad_buffers_[k].resize(plan_.grad_buffers[k]);
    auto buffer = [&](int k) -> const Tensor<T>& {
      return grad_buffers_[static_cast<std::size_t>(k)];
    };
    for (std::size_t i = 0; i < count; ++i) {
      const NodePlan& p = plan_.nodes[i];
      if (p.grad_buffer >= 0) nodes_[i].layer->set_input_grad_storage(buffer(p.grad_buffer));
      shared_sum_[i] = p.sum_buffer >= 0;
      if (shared_sum_[i]) sums_[i] = buffer(p.sum_buffer);
    }
    shared_input_sum_ = plan_.input_sum_buffer >= 0;
    if (shared_input_sum_) input_sum_ = buffer(plan_.input_sum_buffer);
    grad_buffers_bound_ = true;
  }

  // Hands the buffer of plan step 13 to the batch norms whose output is
  // remade in backward; the others get memory of their own back. The buffer
  // keeps its memory from plan to plan, growing when an output needs more.
  void bind_remade_buffer() {
    remade_.resize(nodes_.size(), false);
    if (plan_.remade_buffer.numel() > 0) remade_buffer_.resize(plan_.remade_buffer);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const bool remade = plan_.nodes[i].output_remade;
      if (remade || remade_[i])
        static_cast<BatchNorm<T>&>(*nodes_[i].layer)
            .set_output_storage(remade ? remade_buffer_ : Tensor<T>());
      remade_[i] = remade;
    }
  }

  MaxPool2d<T>& pool_at(std::size_t j) { return static_cast<MaxPool2d<T>&>(*nodes_[j].layer); }

  // A convolution's output planes, handed to the max-pool after it.
  struct PoolSink {
    MaxPool2d<T>* pool;
    bool relu_before;
    void begin(const Shape& s) { pool->begin_planes(s, relu_before); }
    void planes(std::int64_t p0, std::int64_t count, const T* planes) const {
      pool->take_planes(p0, count, planes);
    }
  };

  std::vector<Node<T>> nodes_;
  PlanOptions options_;
  bool input_grad_ = false;
  bool planned_ = false;
  bool forward_done_ = false;  // under the current plan: what backward differentiates
  Plan plan_;
  // Per run, sized by plan() so that warm steps allocate nothing.
  const Tensor<T>* input_ = nullptr;
  std::vector<const Tensor<T>*> values_;              // each node's output
  std::vector<std::vector<const Tensor<T>*>> grads_;  // each node's input gradients
  std::vector<Tensor<T>> sums_;                       // gradients of values read twice or more
  std::vector<Tensor<T>> grad_buffers_;  // gradients shared by layers and sums (plan step 12)
  Tensor<T> input_sum_;
  // Which sums are views of grad_buffers_ (the others are memory of their own).
  std::vector<bool> shared_sum_;
  bool shared_input_sum_ = false;
  bool grad_buffers_bound_ = false;  // to the current plan
  // The batch norms' outputs of plan step 13, and which batch norms write there.
  Tensor<T> remade_buffer_;
  std::vector<bool> remade_;
  // Plan step 10: the folded weights and bias of the convolution being run,
  // and whether the last forward folded (then it cannot be differentiated).
  Tensor<T> folded_weight_, folded_bias_, fold_mean_, fold_invstd_;
  bool folded_ = false;
  std::vector<const Tensor<T>*> merge_inputs_;
  Tensor<T> empty_;
};

}  // namespace minidl
