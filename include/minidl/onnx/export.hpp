// minidl/onnx/export.hpp - a network as an ONNX model (opset 13), for inference in other engines.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/layers/adaptive_avgpool2d.hpp"
#include "minidl/layers/add.hpp"
#include "minidl/layers/avgpool2d.hpp"
#include "minidl/layers/batchnorm.hpp"
#include "minidl/layers/concat.hpp"
#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/dropout.hpp"
#include "minidl/layers/flatten.hpp"
#include "minidl/layers/gelu.hpp"
#include "minidl/layers/graph.hpp"
#include "minidl/layers/identity.hpp"
#include "minidl/layers/leaky_relu.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/maxpool2d.hpp"
#include "minidl/layers/relu.hpp"
#include "minidl/layers/sigmoid.hpp"
#include "minidl/layers/silu.hpp"
#include "minidl/layers/softmax.hpp"
#include "minidl/layers/tanh.hpp"
#include "minidl/onnx/proto.hpp"

namespace minidl::onnx {

struct ExportOptions {
  // The first axis of the input and output is named "N" and left free, so
  // that the file runs at any batch size; false fixes it to the given one.
  bool dynamic_batch = true;
  std::string producer_version = "0.1.0";
};

namespace detail {

// Builds the ONNX graph node by node. Value names: "input" (the network's
// input), each node's name for its output, "output" for the last one.
// Initializers keep minidl's parameter and buffer names ("conv1.weight",
// "bn1.running_mean"), which are PyTorch's state_dict names.
template <typename T>
class Exporter {
 public:
  Exporter(Graph<T>& net, const Shape& input, const std::string& where)
      : net_(net), input_(input), where_(where) {}

  ::onnx::ModelProto run(const ExportOptions& options) {
    const Plan& plan = net_.plan(input_);
    ::onnx::ModelProto model;
    model.set_ir_version(7);  // what opset 13 came with (ONNX 1.8)
    model.set_producer_name("minidl");
    model.set_producer_version(options.producer_version);
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kExportOpset);
    graph_ = model.mutable_graph();
    graph_->set_name("minidl");
    describe_value(graph_->add_input(), "input", input_, options.dynamic_batch);
    for (std::size_t i = 0; i < net_.size(); ++i) {
      const Node<T>& node = net_.node(i);
      std::vector<std::string> inputs;
      for (int v : node.inputs)
        inputs.push_back(v == kNetworkInput ? std::string("input")
                                            : value_name(static_cast<std::size_t>(v)));
      const std::string out = value_name(i);
      const Shape& in_shape = node.inputs[0] == kNetworkInput
                                  ? input_
                                  : plan.nodes[static_cast<std::size_t>(node.inputs[0])].output;
      if (node.merge)
        add_merge(node, inputs, out);
      else
        add_layer(node, inputs[0], in_shape, out);
    }
    describe_value(graph_->add_output(), "output", plan.nodes.back().output, options.dynamic_batch);
    return model;
  }

 private:
  std::string value_name(std::size_t i) const {
    return i + 1 == net_.size() ? std::string("output") : net_.node_name(i);
  }

  void describe_value(::onnx::ValueInfoProto* v, const std::string& name, const Shape& shape,
                      bool dynamic_batch) {
    v->set_name(name);
    auto* type = v->mutable_type()->mutable_tensor_type();
    type->set_elem_type(element_type<T>());
    auto* dims = type->mutable_shape();
    for (int d = 0; d < shape.rank(); ++d) {
      auto* dim = dims->add_dim();
      if (d == 0 && dynamic_batch)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(shape[d]);
    }
  }

  ::onnx::NodeProto* add_node(const std::string& op, const std::string& name,
                              std::initializer_list<std::string> inputs, const std::string& out) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(out);
    return n;
  }

  static void set_ints(::onnx::NodeProto* n, const std::string& name,
                       std::initializer_list<std::int64_t> values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INTS);
    for (std::int64_t v : values) a->add_ints(v);
  }
  static void set_int(::onnx::NodeProto* n, const std::string& name, std::int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void set_float(::onnx::NodeProto* n, const std::string& name, double value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(value));
  }

  // The node's parameters and buffers as initializers; returns their names
  // by their names in the layer ("weight" -> "conv1.weight").
  std::map<std::string, std::string> add_initializers(const Node<T>& node) {
    std::map<std::string, std::string> names;
    for (auto& p : node.layer->parameters()) {
      const std::string full = node.name + "." + p.name;
      *graph_->add_initializer() = to_tensor_proto(full, *p.value);
      names[p.name] = full;
    }
    for (auto& b : node.layer->buffers()) {
      if (!b.value) continue;  // num_batches_tracked: a training counter, not needed here
      const std::string full = node.name + "." + b.name;
      *graph_->add_initializer() = to_tensor_proto(full, *b.value);
      names[b.name] = full;
    }
    return names;
  }

  std::string add_scalar(const std::string& name, double value) {
    *graph_->add_initializer() = scalar_proto<T>(name, static_cast<T>(value));
    return name;
  }

  void add_merge(const Node<T>& node, const std::vector<std::string>& inputs,
                 const std::string& out) {
    ::onnx::NodeProto* n = graph_->add_node();
    n->set_name(node.name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(out);
    if (dynamic_cast<const Add<T>*>(node.merge.get())) {
      n->set_op_type(inputs.size() == 2 ? "Add" : "Sum");
    } else if (dynamic_cast<const Concat<T>*>(node.merge.get())) {
      n->set_op_type("Concat");
      set_int(n, "axis", 1);
    } else {
      fail(where_, ": cannot export node '", node.name, "' (", node.type(),
           "): no ONNX operator for it");
    }
  }

  void add_layer(const Node<T>& node, const std::string& in, const Shape& in_shape,
                 const std::string& out) {
    Layer<T>* layer = node.layer.get();
    const std::string& name = node.name;
    if (auto* conv = dynamic_cast<Conv2d<T>*>(layer)) {
      const Conv2dOptions& o = conv->options();
      auto init = add_initializers(node);
      auto* n = o.bias() ? add_node("Conv", name, {in, init["weight"], init["bias"]}, out)
                         : add_node("Conv", name, {in, init["weight"]}, out);
      set_ints(n, "kernel_shape", {o.kernel_h(), o.kernel_w()});
      set_ints(n, "strides", {o.stride_h(), o.stride_w()});
      set_ints(n, "pads", {o.padding_h(), o.padding_w(), o.padding_h(), o.padding_w()});
      set_ints(n, "dilations", {o.dilation_h(), o.dilation_w()});
      set_int(n, "group", o.groups());
    } else if (dynamic_cast<Linear<T>*>(layer)) {
      auto init = add_initializers(node);
      auto* n = init.count("bias") ? add_node("Gemm", name, {in, init["weight"], init["bias"]}, out)
                                   : add_node("Gemm", name, {in, init["weight"]}, out);
      set_int(n, "transB", 1);  // weight [out, in], as PyTorch stores it
    } else if (dynamic_cast<ReLU<T>*>(layer)) {
      add_node("Relu", name, {in}, out);
    } else if (auto* leaky = dynamic_cast<LeakyReLU<T>*>(layer)) {
      set_float(add_node("LeakyRelu", name, {in}, out), "alpha", leaky->negative_slope());
    } else if (dynamic_cast<Sigmoid<T>*>(layer)) {
      add_node("Sigmoid", name, {in}, out);
    } else if (dynamic_cast<Tanh<T>*>(layer)) {
      add_node("Tanh", name, {in}, out);
    } else if (dynamic_cast<SiLU<T>*>(layer)) {
      add_node("Sigmoid", name + "/sigmoid", {in}, name + "/sigmoid");
      add_node("Mul", name, {in, name + "/sigmoid"}, out);
    } else if (auto* gelu = dynamic_cast<GELU<T>*>(layer)) {
      add_gelu(name, in, out, gelu->approximate());
    } else if (auto* soft = dynamic_cast<SoftmaxAlong<T>*>(layer)) {
      set_int(add_node(soft->type(), name, {in}, out), "axis", soft->dim());
    } else if (auto* pool = dynamic_cast<MaxPool2d<T>*>(layer)) {
      auto* n = add_node("MaxPool", name, {in}, out);
      add_window(n, pool->kernel(), pool->stride(), pool->padding(), pool->ceil_mode());
      set_ints(n, "dilations", {pool->dilation().h, pool->dilation().w});
    } else if (auto* avg = dynamic_cast<AvgPool2d<T>*>(layer)) {
      auto* n = add_node("AveragePool", name, {in}, out);
      add_window(n, avg->kernel(), avg->stride(), avg->padding(), avg->ceil_mode());
      set_int(n, "count_include_pad", avg->count_include_pad() ? 1 : 0);
    } else if (auto* adaptive = dynamic_cast<AdaptiveAvgPool2d<T>*>(layer)) {
      add_adaptive_pool(name, in, in_shape, out, *adaptive);
    } else if (auto* bn = dynamic_cast<BatchNorm<T>*>(layer)) {
      add_batchnorm(node, in, out, *bn);
    } else if (dynamic_cast<Flatten<T>*>(layer)) {
      set_int(add_node("Flatten", name, {in}, out), "axis", 1);
    } else if (dynamic_cast<Dropout<T>*>(layer) || dynamic_cast<Identity<T>*>(layer)) {
      add_node("Identity", name, {in}, out);  // dropout does nothing in inference
    } else {
      fail(where_, ": cannot export node '", name, "' (", layer->type(),
           "): no ONNX operator for it");
    }
  }

  void add_window(::onnx::NodeProto* n, Pool2dArg kernel, Pool2dArg stride, Pool2dArg padding,
                  bool ceil_mode) {
    set_ints(n, "kernel_shape", {kernel.h, kernel.w});
    set_ints(n, "strides", {stride.h, stride.w});
    set_ints(n, "pads", {padding.h, padding.w, padding.h, padding.w});
    set_int(n, "ceil_mode", ceil_mode ? 1 : 0);
  }

  // Global average pooling, or an AveragePool when the input's size is a
  // multiple of the output's (then every bin is one window).
  void add_adaptive_pool(const std::string& name, const std::string& in, const Shape& in_shape,
                         const std::string& out, const AdaptiveAvgPool2d<T>& pool) {
    const std::int64_t oh = pool.output_h(), ow = pool.output_w();
    if (oh == 1 && ow == 1) {
      add_node("GlobalAveragePool", name, {in}, out);
      return;
    }
    const std::int64_t h = in_shape[2], w = in_shape[3];
    if (h % oh != 0 || w % ow != 0)
      fail(where_, ": cannot export node '", name, "' (AdaptiveAvgPool2d): output ", oh, "x", ow,
           " from input ", in_shape.str(),
           " has bins of unequal sizes, which no ONNX operator computes");
    auto* n = add_node("AveragePool", name, {in}, out);
    add_window(n, Pool2dArg(h / oh, w / ow), Pool2dArg(h / oh, w / ow), Pool2dArg(0), false);
  }

  void add_batchnorm(const Node<T>& node, const std::string& in, const std::string& out,
                     BatchNorm<T>& bn) {
    if (!bn.track_running_stats())
      fail(where_, ": cannot export node '", node.name, "' (", node.type(),
           "): it normalises by batch statistics even in evaluation (track_running_stats off), "
           "which ONNX's BatchNormalization does not do");
    auto init = add_initializers(node);
    if (!bn.affine()) {  // ONNX needs a scale and a bias: 1 and 0
      Tensor<T> ones{Shape{bn.num_features()}}, zeros{Shape{bn.num_features()}};
      ones.fill(T(1));
      zeros.fill(T(0));
      init["weight"] = node.name + ".onnx_scale";
      init["bias"] = node.name + ".onnx_bias";
      *graph_->add_initializer() = to_tensor_proto(init["weight"], ones);
      *graph_->add_initializer() = to_tensor_proto(init["bias"], zeros);
    }
    auto* n = add_node(
        "BatchNormalization", node.name,
        {in, init["weight"], init["bias"], init["running_mean"], init["running_var"]}, out);
    set_float(n, "epsilon", bn.eps());
  }

  // GELU has no operator before opset 20: x (1 + erf(x / sqrt 2)) 0.5,
  // or with approximate "tanh" 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  void add_gelu(const std::string& name, const std::string& in, const std::string& out,
                GeluApproximate approximate) {
    const std::string p = name + "/";
    const std::string half = add_scalar(p + "half", 0.5), one = add_scalar(p + "one", 1.0);
    std::string inner;
    if (approximate == GeluApproximate::none) {  // as torch.onnx.export writes it
      const std::string sqrt2 = add_scalar(p + "sqrt2", std::sqrt(2.0));
      add_node("Div", p + "scaled", {in, sqrt2}, p + "scaled");
      add_node("Erf", p + "erf", {p + "scaled"}, p + "erf");
      add_node("Add", p + "plus1", {p + "erf", one}, p + "plus1");
      add_node("Mul", p + "times_x", {in, p + "plus1"}, p + "times_x");
      add_node("Mul", name, {p + "times_x", half}, out);
      return;
    } else {
      const std::string c = add_scalar(p + "c", 0.044715);
      const std::string k = add_scalar(p + "k", std::sqrt(2.0 / 3.14159265358979323846));
      add_node("Mul", p + "x2", {in, in}, p + "x2");
      add_node("Mul", p + "x3", {p + "x2", in}, p + "x3");
      add_node("Mul", p + "cx3", {p + "x3", c}, p + "cx3");
      add_node("Add", p + "sum", {in, p + "cx3"}, p + "sum");
      add_node("Mul", p + "scaled", {p + "sum", k}, p + "scaled");
      add_node("Tanh", p + "tanh", {p + "scaled"}, p + "tanh");
      inner = p + "tanh";
    }
    add_node("Add", p + "plus1", {inner, one}, p + "plus1");
    add_node("Mul", p + "halfx", {in, half}, p + "halfx");
    add_node("Mul", name, {p + "halfx", p + "plus1"}, out);
  }

  Graph<T>& net_;
  Shape input_;
  std::string where_;
  ::onnx::GraphProto* graph_ = nullptr;
};

}  // namespace detail

// The network as an ONNX ModelProto for inputs of `input` shape ([N, C, H, W]
// for the CNNs): each node one operator (GELU and SiLU a few), parameters and
// running statistics as initializers named as minidl names them, which are
// PyTorch's state_dict names. Inference only: Dropout becomes Identity and
// BatchNorm uses its running statistics. A layer with no ONNX operator is an
// Error naming the node.
template <typename T>
::onnx::ModelProto to_onnx(Graph<T>& net, const Shape& input, const ExportOptions& options = {}) {
  return detail::Exporter<T>(net, input, "ONNX export").run(options);
}

// Writes to_onnx(net, input) to `path` atomically (a temporary file renamed
// over it): a failure leaves any earlier file as it was.
template <typename T>
void export_model(Graph<T>& net, const Shape& input, const std::string& path,
                  const ExportOptions& options = {}) {
  const ::onnx::ModelProto model = detail::Exporter<T>(net, input, path).run(options);
  std::string bytes;
  if (!model.SerializeToString(&bytes)) fail(path, ": the model could not be serialized");
  write_file_atomic(path, bytes);
}

}  // namespace minidl::onnx
