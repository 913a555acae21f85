// minidl/onnx/import.hpp - an ONNX model (as torch.onnx.export writes them) as a minidl Graph.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/layers/adaptive_avgpool2d.hpp"
#include "minidl/layers/add.hpp"
#include "minidl/layers/avgpool2d.hpp"
#include "minidl/layers/batchnorm.hpp"
#include "minidl/layers/concat.hpp"
#include "minidl/layers/conv2d.hpp"
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

// An imported network and the input it expects: input_shape holds the
// file's dimensions, with 0 for a free one (the batch, "N").
template <typename T>
struct ImportedModel {
  Graph<T> graph;
  std::vector<std::int64_t> input_shape;
  std::string input_name, output_name;
};

namespace detail {

// Reads a GraphProto node by node. Each ONNX value maps to a minidl value
// ("input" or a node's name) and its shape (with the batch taken as 1 for
// checking); constants (initializers, Constant nodes) are kept aside for the
// operators that take weights. Nodes are named after their weights
// ("conv1" for "conv1.weight"), so that parameters keep the initializers'
// names; otherwise after the ONNX node.
template <typename T>
class Importer {
 public:
  Importer(const ::onnx::ModelProto& model, const std::string& source)
      : model_(model), graph_(model.graph()), source_(source) {}

  ImportedModel<T> run() {
    check_opset();
    for (const auto& t : graph_.initializer()) {
      if (t.name().empty()) fail(source_, ": an initializer has no name");
      constants_[t.name()] = &t;
    }
    find_input();
    count_uses();
    for (const auto& n : graph_.node())  // constants first: the patterns below look at them
      if (n.op_type() == "Constant" && (n.domain().empty() || n.domain() == "ai.onnx"))
        import_constant(n);
    find_gelus();
    for (int i = 0; i < graph_.node_size(); ++i) {
      try {
        import_node(i);
      } catch (const Error& e) {  // a layer's own message (its arguments): add file and node
        const std::string m = e.what();
        if (m.compare(0, source_.size() + 2, source_ + ": ") == 0) throw;
        node_error(graph_.node(i), m);
      }
    }
    finish_output();
    return std::move(result_);
  }

 private:
  struct Value {
    std::string node;  // minidl value: "input" or a node name
    Shape shape;
  };

  [[noreturn]] void node_error(const ::onnx::NodeProto& n, const std::string& what) const {
    fail(source_, ": node ", node_label(n), " (", n.op_type(), "): ", what);
  }

  // 'conv1', or #3 (its place in the graph) for a node without a name.
  std::string node_label(const ::onnx::NodeProto& n) const {
    if (!n.name().empty()) return "'" + n.name() + "'";
    for (int i = 0; i < graph_.node_size(); ++i)
      if (&graph_.node(i) == &n) return "#" + std::to_string(i);
    return "''";
  }

  void check_opset() {
    if (!model_.has_graph()) fail(source_, ": the model has no graph");
    bool found = false;
    for (const auto& o : model_.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") {
        opset_ = o.version();
        found = true;
      }
    if (!found) fail(source_, ": the model imports no version of the standard operator set");
    if (opset_ < kMinImportOpset || opset_ > kMaxImportOpset)
      fail(source_, ": operator set ", opset_, " is not supported (", kMinImportOpset, " to ",
           kMaxImportOpset, ")");
  }

  void find_input() {
    const ::onnx::ValueInfoProto* input = nullptr;
    for (const auto& v : graph_.input()) {
      if (constants_.count(v.name())) continue;  // old exporters list initializers as inputs
      if (input)
        fail(source_, ": the graph has several inputs ('", input->name(), "', '", v.name(),
             "'); minidl networks take one");
      input = &v;
    }
    if (!input) fail(source_, ": the graph has no input");
    const auto& type = input->type();
    if (!type.has_tensor_type()) fail(source_, ": input '", input->name(), "' is not a tensor");
    const int elem = type.tensor_type().elem_type();
    if (elem != element_type<T>())
      fail(source_, ": input '", input->name(), "' holds ", element_type_name(elem),
           ", this network ", element_type_name(element_type<T>()));
    std::vector<std::int64_t> dims, check;
    for (const auto& d : type.tensor_type().shape().dim()) {
      const std::int64_t v = d.has_dim_value() ? d.dim_value() : 0;
      if (v < 0) fail(source_, ": input '", input->name(), "' has a negative dimension");
      dims.push_back(v);
      check.push_back(std::max<std::int64_t>(v, 1));
    }
    if (dims.empty() || dims.size() > static_cast<std::size_t>(Shape::kMaxRank))
      fail(source_, ": input '", input->name(), "' has rank ", dims.size(),
           "; minidl networks take rank 1 to ", Shape::kMaxRank);
    if (!check.empty()) check[0] = 1;
    result_.input_shape = dims;
    result_.input_name = input->name();
    values_[input->name()] = {"input", Shape(check)};
  }

  // How many nodes (and graph outputs) read each value: a MatMul read only
  // by an Add of a bias becomes one Linear.
  void count_uses() {
    for (const auto& n : graph_.node())  // every pattern and import below reads output 0
      if (n.output_size() < 1 || n.output(0).empty()) node_error(n, "has no output");
    for (const auto& n : graph_.node())
      for (const auto& i : n.input()) ++uses_[i];
    for (const auto& o : graph_.output()) ++uses_[o.name()];
    for (const auto& n : graph_.node()) {
      if (n.op_type() != "Mul" || n.input_size() != 2) continue;
      for (int k = 0; k < 2; ++k) {
        const int j = producer_of(n.input(k));
        if (j >= 0 && is_sigmoid_of(graph_.node(j), n.input(1 - k)) && uses_[n.input(k)] == 1)
          sigmoid_of_silu_.insert(j);
      }
    }
  }
  // GELU as torch.onnx.export writes it before opset 20:
  //   Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)
  // each value read by the next node only. Recorded as first node -> last node.
  void find_gelus() {
    for (int i = 0; i < graph_.node_size(); ++i) {
      const auto& div = graph_.node(i);
      if (div.op_type() != "Div" || div.input_size() != 2 ||
          !is_scalar(div.input(1), std::sqrt(2.0)))
        continue;
      const std::string& x = div.input(0);
      const int erf = only_reader(div.output(0));
      if (erf < 0 || graph_.node(erf).op_type() != "Erf") continue;
      const int plus = only_reader(graph_.node(erf).output(0));
      if (plus < 0 || !is_op_with_scalar(graph_.node(plus), "Add", 1.0)) continue;
      const int times = only_reader(graph_.node(plus).output(0));
      if (times < 0 || graph_.node(times).op_type() != "Mul" ||
          graph_.node(times).input_size() != 2 ||
          (graph_.node(times).input(0) != x && graph_.node(times).input(1) != x))
        continue;
      const int half = only_reader(graph_.node(times).output(0));
      if (half < 0 || !is_op_with_scalar(graph_.node(half), "Mul", 0.5)) continue;
      gelu_end_[i] = half;
      for (int j : {erf, plus, times, half}) gelu_inner_.insert(j);
    }
  }
  // The one node that reads `value`, when exactly one does (and no graph output).
  int only_reader(const std::string& value) {
    if (uses_[value] != 1) return -1;
    for (int j = 0; j < graph_.node_size(); ++j)
      for (const auto& in : graph_.node(j).input())
        if (in == value) return j;
    return -1;
  }
  bool is_scalar(const std::string& value, double want) const {
    const auto it = constants_.find(value);
    if (it == constants_.end() || it->second->data_location() == ::onnx::TensorProto::EXTERNAL)
      return false;
    try {
      const auto v = tensor_values<double>(*it->second, source_);
      return v.size() == 1 && std::abs(v[0] - want) <= 1e-6 * want;
    } catch (const Error&) {
      return false;
    }
  }
  bool is_op_with_scalar(const ::onnx::NodeProto& n, const std::string& op, double want) const {
    return n.op_type() == op && n.input_size() == 2 &&
           (is_scalar(n.input(0), want) || is_scalar(n.input(1), want));
  }

  static bool is_sigmoid_of(const ::onnx::NodeProto& s, const std::string& x) {
    return s.op_type() == "Sigmoid" && s.input_size() == 1 && s.input(0) == x;
  }

  const Value& value(const ::onnx::NodeProto& n, int k) const {
    if (k >= n.input_size()) node_error(n, "missing input " + std::to_string(k));
    const auto it = values_.find(n.input(k));
    if (it == values_.end()) {
      if (constants_.count(n.input(k)))
        node_error(n, "input '" + n.input(k) +
                          "' is a constant where minidl expects the output of a layer");
      node_error(n, "input '" + n.input(k) + "' is not computed before this node");
    }
    return it->second;
  }

  const ::onnx::TensorProto& constant(const ::onnx::NodeProto& n, int k) const {
    if (k >= n.input_size() || n.input(k).empty())
      node_error(n, "missing input " + std::to_string(k));
    const auto it = constants_.find(n.input(k));
    if (it == constants_.end())
      node_error(n,
                 "input '" + n.input(k) +
                     "' must be a constant (an initializer); minidl takes weights as parameters");
    return *it->second;
  }
  bool has_input(const ::onnx::NodeProto& n, int k) const {
    return k < n.input_size() && !n.input(k).empty();
  }
  std::string where(const ::onnx::TensorProto& t) const {
    return source_ + ": initializer '" + t.name() + "'";
  }

  // Attributes, checked against the names each operator allows.
  class Attributes {
   public:
    Attributes(const Importer& im, const ::onnx::NodeProto& n, std::set<std::string> allowed)
        : im_(im), n_(n) {
      for (const auto& a : n.attribute()) {
        if (!allowed.count(a.name())) im.node_error(n, "unsupported attribute '" + a.name() + "'");
        map_[a.name()] = &a;
      }
    }
    bool has(const std::string& name) const { return map_.count(name) > 0; }
    std::int64_t integer(const std::string& name, std::int64_t fallback) const {
      const auto* a = get(name, ::onnx::AttributeProto::INT);
      return a ? a->i() : fallback;
    }
    double real(const std::string& name, double fallback) const {
      const auto* a = get(name, ::onnx::AttributeProto::FLOAT);
      return a ? static_cast<double>(a->f()) : fallback;
    }
    std::string text(const std::string& name, const std::string& fallback) const {
      const auto* a = get(name, ::onnx::AttributeProto::STRING);
      return a ? a->s() : fallback;
    }
    std::vector<std::int64_t> ints(const std::string& name,
                                   std::vector<std::int64_t> fallback) const {
      const auto* a = get(name, ::onnx::AttributeProto::INTS);
      return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
    }
    const ::onnx::TensorProto* tensor(const std::string& name) const {
      const auto* a = get(name, ::onnx::AttributeProto::TENSOR);
      return a ? &a->t() : nullptr;
    }

   private:
    const ::onnx::AttributeProto* get(const std::string& name, int type) const {
      const auto it = map_.find(name);
      if (it == map_.end()) return nullptr;
      // Some writers leave the type unset on a well-formed value.
      if (it->second->type() != type && it->second->type() != ::onnx::AttributeProto::UNDEFINED)
        im_.node_error(n_, "attribute '" + name + "' has the wrong type");
      return it->second;
    }
    const Importer& im_;
    const ::onnx::NodeProto& n_;
    std::map<std::string, const ::onnx::AttributeProto*> map_;
  };

  // A node name for the layer: the prefix of its weight's name when that
  // ends in ".weight" (so that the parameters keep the initializers'
  // names), else the ONNX node's name, else op and index.
  std::string node_name(const ::onnx::NodeProto& n, int index, const std::string& weight) {
    std::string name;
    const std::string suffix = ".weight";
    if (weight.size() > suffix.size() &&
        weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0)
      name = weight.substr(0, weight.size() - suffix.size());
    if (name.empty() || taken_.count(name)) name = n.name();
    if (name.empty() || name == "input" || taken_.count(name))
      name = n.op_type() + "_" + std::to_string(index);
    while (taken_.count(name)) name += "_";
    taken_.insert(name);
    return name;
  }

  // Adds the layer, checks its output shape, and maps the node's output to it.
  template <typename L>
  L& add(const ::onnx::NodeProto& n, int index, L layer, const std::vector<std::string>& inputs,
         const std::vector<Shape>& shapes, const std::string& weight = "") {
    const std::string name = node_name(n, index, weight);
    L& added = result_.graph.add(name, std::move(layer), inputs);
    Shape out;
    try {
      if constexpr (std::is_base_of<Merge<T>, L>::value)
        out = added.output_shape(shapes);
      else
        out = added.output_shape(shapes[0]);
    } catch (const Error& e) {
      node_error(n, e.what());
    }
    if (n.output_size() < 1) node_error(n, "has no output");
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && uses_[n.output(k)] > 0)
        node_error(n, "output " + std::to_string(k) + " ('" + n.output(k) +
                          "') is used; minidl computes the first output only");
    values_[n.output(0)] = {name, out};
    return added;
  }

  // Copies `t` into the parameter or buffer `which` of the layer just added.
  void set_tensor(const ::onnx::NodeProto& n, const std::string& which,
                  const std::vector<T>& values, const std::vector<std::int64_t>& dims) {
    Layer<T>& layer = result_.graph[result_.graph.size() - 1];
    Tensor<T>* target = nullptr;
    for (auto& p : layer.parameters())
      if (p.name == which) target = p.value;
    for (auto& b : layer.buffers())
      if (b.name == which) target = b.value;
    if (!target) node_error(n, "no tensor '" + which + "' in " + layer.type());
    if (static_cast<std::int64_t>(values.size()) != target->size())
      node_error(
          n, which + " has shape " + shape_to_string(dims) + ", expected " + target->shape().str());
    std::copy(values.begin(), values.end(), target->data());
  }
  void set_tensor(const ::onnx::NodeProto& n, const std::string& which,
                  const ::onnx::TensorProto& t) {
    set_tensor(n, which, tensor_values<T>(t, where(t)), checked_dims(t, where(t)));
  }

  // kernel_shape, strides, pads and dilations of a 2-D window; ONNX allows
  // pads that differ at the two ends, minidl does not.
  struct Window {
    Pool2dArg kernel{1}, stride{1}, pad{0}, dilation{1};
  };
  Window window(const ::onnx::NodeProto& n, const Attributes& a, std::vector<std::int64_t> kernel) {
    const std::string auto_pad = a.text("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      node_error(n, "auto_pad " + auto_pad + " is not supported (give explicit pads)");
    kernel = a.ints("kernel_shape", kernel);
    if (kernel.size() != 2)
      node_error(n, "a " + std::to_string(kernel.size()) + "-D window; minidl has 2-D ones");
    const auto strides = a.ints("strides", {1, 1}), dil = a.ints("dilations", {1, 1}),
               pads = a.ints("pads", {0, 0, 0, 0});
    if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4)
      node_error(n, "strides, dilations or pads do not fit a 2-D window");
    if (pads[0] != pads[2] || pads[1] != pads[3])
      node_error(n, "pads " + shape_to_string(pads) +
                        " differ at the two ends of an axis, which minidl does not support");
    for (std::int64_t v : {kernel[0], kernel[1], strides[0], strides[1], dil[0], dil[1]})
      if (v <= 0) node_error(n, "kernel_shape, strides and dilations must be positive");
    return {Pool2dArg(kernel[0], kernel[1]), Pool2dArg(strides[0], strides[1]),
            Pool2dArg(pads[0], pads[1]), Pool2dArg(dil[0], dil[1])};
  }

  void import_node(int index) {
    const ::onnx::NodeProto& n = graph_.node(index);
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      node_error(n, "operator of domain '" + n.domain() + "' is not supported");
    const std::string& op = n.op_type();
    if (op == "Constant") return;          // read before the other nodes
    if (gelu_inner_.count(index)) return;  // imported with the Div that starts it
    if (gelu_end_.count(index)) return import_gelu(n, index);
    if (op == "Identity" || op == "Dropout") return import_passthrough(n);
    if (op == "Conv") return import_conv(n, index);
    if (op == "Gemm") return import_gemm(n, index);
    if (op == "MatMul") return import_matmul(n, index);
    if (op == "BatchNormalization") return import_batchnorm(n, index);
    if (op == "MaxPool" || op == "AveragePool") return import_pool(n, index);
    if (op == "Pad") return import_pad(n, index);
    if (op == "Flatten" || op == "Reshape") return import_flatten(n, index);
    if (op == "Add" || op == "Sum") return import_add(n, index);
    if (op == "Mul") return import_mul(n, index);
    if (op == "Concat") {
      const Attributes a(*this, n, {"axis"});
      const std::int64_t rank = value(n, 0).shape.rank();
      std::int64_t axis = a.integer("axis", 1);
      if (axis < 0) axis += rank;
      if (axis != 1)
        node_error(n, "axis " + std::to_string(axis) + "; minidl concatenates along 1");
      return add_merge(n, index, Concat<T>());
    }
    if (op == "Softmax" || op == "LogSoftmax") return import_softmax(n, index);
    const Attributes a(
        *this, n, op == "LeakyRelu" ? std::set<std::string>{"alpha"} : std::set<std::string>{});
    const Value& x = value(n, 0);
    if (op == "Relu") {
      add(n, index, ReLU<T>(), {x.node}, {x.shape});
    } else if (op == "LeakyRelu") {
      add(n, index, LeakyReLU<T>(a.real("alpha", 0.01)), {x.node}, {x.shape});
    } else if (op == "Sigmoid") {
      if (sigmoid_of_silu_.count(index)) return;  // part of x * sigmoid(x): the Mul adds SiLU
      add(n, index, Sigmoid<T>(), {x.node}, {x.shape});
    } else if (op == "Tanh") {
      add(n, index, Tanh<T>(), {x.node}, {x.shape});
    } else if (op == "GlobalAveragePool") {
      if (x.shape.rank() != 4) node_error(n, "minidl pools [N, C, H, W] inputs");
      add(n, index, AdaptiveAvgPool2d<T>(1), {x.node}, {x.shape});
    } else {
      node_error(n, "operator not supported");
    }
  }

  void import_gelu(const ::onnx::NodeProto& div, int index) {
    const Value x = value(div, 0);
    const ::onnx::NodeProto& last = graph_.node(gelu_end_.at(index));
    add(last, index, GELU<T>(), {x.node}, {x.shape});
  }

  void import_constant(const ::onnx::NodeProto& n) {
    const Attributes a(*this, n, {"value"});
    const ::onnx::TensorProto* t = a.tensor("value");
    if (!t || n.output_size() != 1) node_error(n, "only a Constant with a tensor 'value'");
    owned_.push_back(*t);
    owned_.back().set_name(n.output(0));
    constants_[n.output(0)] = &owned_.back();
  }

  void import_passthrough(const ::onnx::NodeProto& n) {
    if (n.op_type() == "Dropout") {
      const Attributes a(*this, n, {"ratio", "seed", "is_test"});
      if (has_input(n, 2)) {  // training_mode: inference only
        const auto mode = int64_values(constant(n, 2), source_ + ": training_mode");
        if (!mode.empty() && mode[0] != 0) node_error(n, "training_mode on is not supported");
      }
    } else {
      const Attributes a(*this, n, {});
    }
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && uses_[n.output(k)] > 0)
        node_error(n, "the mask output is used; minidl imports inference graphs");
    const auto c = constants_.find(n.input_size() ? n.input(0) : "");
    if (c != constants_.end()) {
      constants_[n.output(0)] = c->second;
      return;
    }
    values_[n.output(0)] = value(n, 0);
  }

  void import_conv(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n,
                       {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    const Value& x = value(n, 0);
    const ::onnx::TensorProto& w = constant(n, 1);
    const auto wd = checked_dims(w, where(w));
    if (wd.size() != 4)
      node_error(n, "weight of rank " + std::to_string(wd.size()) +
                        "; minidl has 2-D convolutions ([OC, C/groups, KH, KW])");
    if (x.shape.rank() != 4) node_error(n, "input " + x.shape.str() + " is not [N, C, H, W]");
    const Window win = window(n, a, {wd[2], wd[3]});
    if (win.kernel.h != wd[2] || win.kernel.w != wd[3])
      node_error(n, "kernel_shape does not match the weight " + shape_to_string(wd));
    const std::int64_t groups = a.integer("group", 1);
    if (groups <= 0 || wd[1] * groups != x.shape[1])
      node_error(n, "weight " + shape_to_string(wd) + " with group " + std::to_string(groups) +
                        " does not fit input " + x.shape.str());
    const bool bias = has_input(n, 2);
    Conv2dOptions o(x.shape[1], wd[0], wd[2], wd[3]);
    o.stride(win.stride.h, win.stride.w)
        .padding(win.pad.h, win.pad.w)
        .dilation(win.dilation.h, win.dilation.w)
        .groups(groups)
        .bias(bias);
    // The data is read (and checked against the dims) before the layer allocates for it.
    const std::vector<T> weight = tensor_values<T>(w, where(w));
    std::vector<T> bias_values;
    if (bias) bias_values = tensor_values<T>(constant(n, 2), where(constant(n, 2)));
    add(n, index, Conv2d<T>(o), {x.node}, {x.shape}, w.name());
    set_tensor(n, "weight", weight, wd);
    if (bias)
      set_tensor(n, "bias", bias_values, checked_dims(constant(n, 2), where(constant(n, 2))));
  }

  // Gemm(x, W, C) = alpha x W^T + beta C (transB = 1, torch's Linear), or
  // alpha x W + beta C (transB = 0): a Linear with W laid out [out, in].
  void import_gemm(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {"alpha", "beta", "transA", "transB"});
    if (a.integer("transA", 0) != 0) node_error(n, "transA is not supported");
    const Value& x = value(n, 0);
    const ::onnx::TensorProto& w = constant(n, 1);
    const bool trans_b = a.integer("transB", 0) != 0;
    add_linear(n, index, x, w, trans_b, has_input(n, 2) ? &constant(n, 2) : nullptr,
               a.real("alpha", 1.0), a.real("beta", 1.0));
  }

  // MatMul(x, W) with W [in, out] constant, and the Add of a bias after it
  // when nothing else reads the product (torch's Linear on 3-D inputs, and
  // some exporters' Linear).
  void import_matmul(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {});
    const Value& x = value(n, 0);
    const ::onnx::TensorProto& w = constant(n, 1);
    const ::onnx::TensorProto* bias = nullptr;
    const ::onnx::NodeProto* add_node = bias_add_after(index);
    if (add_node) bias = &constant(*add_node, add_node->input(0) == n.output(0) ? 1 : 0);
    add_linear(n, index, x, w, false, bias, 1.0, 1.0);
    if (add_node) {
      values_[add_node->output(0)] = values_[n.output(0)];
      folded_adds_.insert(add_node);
    }
  }
  const ::onnx::NodeProto* bias_add_after(int index) {
    const ::onnx::NodeProto& n = graph_.node(index);
    if (uses_[n.output(0)] != 1) return nullptr;
    for (int j = index + 1; j < graph_.node_size(); ++j) {
      const auto& m = graph_.node(j);
      if (m.op_type() != "Add" || m.input_size() != 2) continue;
      for (int k = 0; k < 2; ++k)
        if (m.input(k) == n.output(0) && constants_.count(m.input(1 - k))) return &m;
    }
    return nullptr;
  }

  void add_linear(const ::onnx::NodeProto& n, int index, const Value& x,
                  const ::onnx::TensorProto& w, bool trans_b, const ::onnx::TensorProto* bias,
                  double alpha, double beta) {
    const auto wd = checked_dims(w, where(w));
    if (wd.size() != 2) node_error(n, "weight " + shape_to_string(wd) + " is not a matrix");
    if (x.shape.rank() != 2) node_error(n, "input " + x.shape.str() + " is not [N, features]");
    const std::int64_t in = trans_b ? wd[1] : wd[0], out = trans_b ? wd[0] : wd[1];
    if (in != x.shape[1])
      node_error(n, "weight " + shape_to_string(wd) + " does not fit input " + x.shape.str());
    const std::vector<T> values = tensor_values<T>(w, where(w));  // checked before allocating
    add(n, index, Linear<T>(in, out, bias != nullptr), {x.node}, {x.shape}, w.name());
    std::vector<T> layout(values.size());
    for (std::int64_t o = 0; o < out; ++o)  // [out, in], scaled by alpha
      for (std::int64_t i = 0; i < in; ++i)
        layout[static_cast<std::size_t>(o * in + i)] =
            static_cast<T>(alpha * (trans_b ? values[static_cast<std::size_t>(o * in + i)]
                                            : values[static_cast<std::size_t>(i * out + o)]));
    set_tensor(n, "weight", layout, {out, in});
    if (!bias) return;
    const auto bd = checked_dims(*bias, where(*bias));
    std::vector<T> b = tensor_values<T>(*bias, where(*bias));
    if (b.size() == 1 && out > 1) b.assign(static_cast<std::size_t>(out), b[0]);  // broadcast
    if (static_cast<std::int64_t>(b.size()) != out || (bd.size() == 2 && bd[0] != 1 && out != 1) ||
        bd.size() > 2)
      node_error(n, "bias " + shape_to_string(bd) + " is not [" + std::to_string(out) + "]");
    if (beta != 1.0)
      for (T& v : b) v = static_cast<T>(beta * v);
    set_tensor(n, "bias", b, bd);
  }

  void import_batchnorm(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {"epsilon", "momentum", "training_mode", "spatial"});
    if (a.integer("training_mode", 0) != 0) node_error(n, "training_mode on is not supported");
    if (a.integer("spatial", 1) != 1) node_error(n, "spatial 0 is not supported");
    const Value& x = value(n, 0);
    const ::onnx::TensorProto &scale = constant(n, 1), &b = constant(n, 2), &mean = constant(n, 3),
                              &var = constant(n, 4);
    const double eps = a.real("epsilon", 1e-5);
    if (!(eps > 0)) node_error(n, "epsilon must be positive");
    const std::int64_t rank = x.shape.rank();
    if (rank < 2) node_error(n, "input " + x.shape.str() + " has no channel axis");
    const std::int64_t C = x.shape[1];
    for (const auto* t : {&scale, &b, &mean, &var})
      if (element_count(checked_dims(*t, where(*t))) != C)
        node_error(n, "'" + t->name() + "' has " + shape_to_string(checked_dims(*t, where(*t))) +
                          " elements, the input " + x.shape.str() + " has " + std::to_string(C) +
                          " channels");
    if (rank == 4)
      add(n, index, BatchNorm2d<T>(C, eps), {x.node}, {x.shape}, scale.name());
    else if (rank <= 3)
      add(n, index, BatchNorm1d<T>(C, eps), {x.node}, {x.shape}, scale.name());
    set_tensor(n, "weight", scale);
    set_tensor(n, "bias", b);
    set_tensor(n, "running_mean", mean);
    set_tensor(n, "running_var", var);
  }

  // Zero padding: nothing when the pads are all 0, else the padding of the
  // AveragePool that alone reads it (torch's AvgPool2d with count_include_pad).
  void import_pad(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {"mode", "pads", "value"});
    if (a.text("mode", "constant") != "constant")
      node_error(n, "mode " + a.text("mode", "") + " is not supported (zero padding only)");
    std::vector<std::int64_t> pads = a.ints("pads", {});
    if (has_input(n, 1))
      pads = int64_values(constant(n, 1), source_ + ": pads of '" + n.name() + "'");
    double fill = a.real("value", 0.0);
    if (has_input(n, 2)) {
      const auto v =
          tensor_values<double>(constant(n, 2), source_ + ": value of '" + n.name() + "'");
      fill = v.empty() ? 0.0 : v[0];
    }
    const Value& x = value(n, 0);
    if (static_cast<int>(pads.size()) != 2 * x.shape.rank() || fill != 0.0)
      node_error(n, "only zero padding of every axis is supported");
    if (std::all_of(pads.begin(), pads.end(), [](std::int64_t p) { return p == 0; })) {
      values_[n.output(0)] = x;
      return;
    }
    const int reader = only_reader(n.output(0));
    const bool spatial_only = x.shape.rank() == 4 && pads[0] == 0 && pads[1] == 0 && pads[4] == 0 &&
                              pads[5] == 0 && pads[2] == pads[6] && pads[3] == pads[7];
    if (reader < 0 || graph_.node(reader).op_type() != "AveragePool" || !spatial_only)
      node_error(n,
                 "padding is supported only as the padding of an AveragePool that alone reads it");
    pad_before_pool_.insert_or_assign(reader, Pool2dArg(pads[2], pads[3]));
    values_[n.output(0)] = x;
    (void)index;
  }

  void import_pool(const ::onnx::NodeProto& n, int index) {
    const bool max = n.op_type() == "MaxPool";
    const Attributes a(
        *this, n,
        max ? std::set<std::string>{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                    "storage_order", "strides"}
            : std::set<std::string>{"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape",
                                    "pads", "strides"});
    if (!a.has("kernel_shape")) node_error(n, "kernel_shape is missing");
    if (a.integer("storage_order", 0) != 0) node_error(n, "storage_order 1 is not supported");
    const Value& x = value(n, 0);
    if (x.shape.rank() != 4)
      node_error(n, "minidl pools [N, C, H, W] inputs, got " + x.shape.str());
    Window w = window(n, a, {});
    const bool ceil = a.integer("ceil_mode", 0) != 0;
    bool count_pad = a.integer("count_include_pad", 0) != 0;
    const auto pad = pad_before_pool_.find(index);
    if (pad != pad_before_pool_.end()) {  // the zeros of a Pad before it count
      if (!(w.pad == Pool2dArg(0)) || ceil)
        node_error(n, "padded twice (a Pad before it), or in ceil mode, which is not supported");
      w.pad = pad->second;
      count_pad = true;
    }
    if (max)
      add(n, index, MaxPool2d<T>(w.kernel, w.stride, w.pad, w.dilation, ceil), {x.node}, {x.shape});
    else
      add(n, index, AvgPool2d<T>(w.kernel, w.stride, w.pad, ceil, count_pad), {x.node}, {x.shape});
  }

  // Flatten(axis 1), and a Reshape to [N, rest] (torch's x.view(x.size(0), -1)
  // with the shape folded to a constant).
  void import_flatten(const ::onnx::NodeProto& n, int index) {
    const Value& x = value(n, 0);
    if (n.op_type() == "Flatten") {
      const Attributes a(*this, n, {"axis"});
      std::int64_t axis = a.integer("axis", 1);
      if (axis < 0) axis += x.shape.rank();
      if (axis != 1) node_error(n, "axis " + std::to_string(axis) + "; minidl flattens from 1");
    } else {
      const Attributes a(*this, n, {"allowzero"});
      const ::onnx::TensorProto& s = constant(n, 1);
      const auto shape = int64_values(s, where(s));
      if (x.shape[0] <= 0) node_error(n, "input " + x.shape.str() + " is empty");
      const std::int64_t rest = x.shape.numel() / x.shape[0], batch = result_.input_shape[0];
      const bool same_batch = shape.size() == 2 && (shape[0] == 0 || shape[0] == batch);
      const bool to_rows =
          shape.size() == 2 &&
          ((shape[1] == rest && (same_batch || shape[0] == -1)) || (shape[1] == -1 && same_batch));
      if (!to_rows)
        node_error(n, "Reshape to " + shape_to_string(shape) + " of input " + x.shape.str() +
                          "; minidl imports only a flatten to [N, " + std::to_string(rest) + "]");
    }
    add(n, index, Flatten<T>(), {x.node}, {x.shape});
  }

  void import_add(const ::onnx::NodeProto& n, int index) {
    if (folded_adds_.count(&n)) return;  // the bias of the MatMul before
    const Attributes a(*this, n, {});
    if (n.input_size() == 1) return import_passthrough(n);
    std::vector<std::string> inputs;
    std::vector<Shape> shapes;
    for (int k = 0; k < n.input_size(); ++k) {
      if (constants_.count(n.input(k)))
        node_error(n, "adding a constant ('" + n.input(k) + "') is not supported");
      inputs.push_back(value(n, k).node);
      shapes.push_back(value(n, k).shape);
    }
    for (const auto& s : shapes)
      if (s != shapes[0])
        node_error(n, "inputs of shapes " + shapes[0].str() + " and " + s.str() +
                          "; minidl adds equal shapes (no broadcasting)");
    add(n, index, Add<T>(), inputs, shapes);
  }

  // x * sigmoid(x), torch's SiLU in opset < 14: one SiLU layer.
  void import_mul(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {});
    if (n.input_size() == 2)
      for (int k = 0; k < 2; ++k) {
        const int j = producer_of(n.input(k));
        if (j >= 0 && sigmoid_of_silu_.count(j) && is_sigmoid_of(graph_.node(j), n.input(1 - k))) {
          const Value& x = value(n, 1 - k);
          add(n, index, SiLU<T>(), {x.node}, {x.shape});
          return;
        }
      }
    node_error(n, "only x * Sigmoid(x) (SiLU) is supported");
  }
  int producer_of(const std::string& value_name) const {
    for (int j = 0; j < graph_.node_size(); ++j)
      for (const auto& o : graph_.node(j).output())
        if (o == value_name) return j;
    return -1;
  }

  void import_softmax(const ::onnx::NodeProto& n, int index) {
    const Attributes a(*this, n, {"axis"});
    const Value& x = value(n, 0);
    const int rank = x.shape.rank();
    std::int64_t axis = a.integer("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) node_error(n, "axis out of range for input " + x.shape.str());
    // Before opset 13 the input was flattened to 2-D at `axis`: the same as
    // along one axis only when that axis is the last.
    if (opset_ < 13 && axis != rank - 1)
      node_error(n, "axis " + std::to_string(axis) + " of a rank-" + std::to_string(rank) +
                        " input in opset " + std::to_string(opset_) +
                        " normalises over several axes, which minidl does not do");
    if (n.op_type() == "Softmax")
      add(n, index, Softmax<T>(static_cast<int>(axis)), {x.node}, {x.shape});
    else
      add(n, index, LogSoftmax<T>(static_cast<int>(axis)), {x.node}, {x.shape});
  }

  template <typename M>
  void add_merge(const ::onnx::NodeProto& n, int index, M merge) {
    std::vector<std::string> inputs;
    std::vector<Shape> shapes;
    for (int k = 0; k < n.input_size(); ++k) {
      inputs.push_back(value(n, k).node);
      shapes.push_back(value(n, k).shape);
    }
    if (inputs.size() < 2) node_error(n, "needs two inputs or more");
    add(n, index, std::move(merge), inputs, shapes);
  }

  // The graph's output must be the last node's; otherwise an Identity
  // makes it so.
  void finish_output() {
    if (graph_.output_size() != 1)
      fail(source_, ": the graph has ", graph_.output_size(), " outputs; minidl networks have one");
    const std::string& name = graph_.output(0).name();
    result_.output_name = name;
    const auto it = values_.find(name);
    if (it == values_.end())
      fail(source_, ": the output '", name, "' is not computed by the graph");
    Graph<T>& g = result_.graph;
    if (g.size() == 0 || it->second.node != g.node_name(g.size() - 1)) {
      std::string id = "output";
      while (taken_.count(id)) id += "_";
      g.add(id, Identity<T>(), it->second.node);
    }
  }

  const ::onnx::ModelProto& model_;
  const ::onnx::GraphProto& graph_;
  std::string source_;
  std::int64_t opset_ = 0;
  std::map<std::string, const ::onnx::TensorProto*> constants_;
  std::list<::onnx::TensorProto> owned_;  // Constant nodes' values (stable addresses)
  std::map<std::string, Value> values_;
  std::map<std::string, int> uses_;
  std::set<std::string> taken_;
  std::set<const ::onnx::NodeProto*> folded_adds_;
  std::map<int, int> gelu_end_;               // GELU chains: the Div's index -> the last Mul's
  std::set<int> gelu_inner_;                  // the chains' other nodes
  std::map<int, Pool2dArg> pad_before_pool_;  // AveragePool index -> the Pad before it
  std::set<int> sigmoid_of_silu_;  // Sigmoids read only by x * sigmoid(x): SiLU, with the Mul
  ImportedModel<T> result_;
};

}  // namespace detail

// Builds a network from an ONNX model: one input, one output, and the
// operators Conv (2-D, any group, dilation, stride, symmetric pads), Gemm and
// MatMul (+ Add of a bias), Relu, LeakyRelu, Sigmoid, Tanh, x * Sigmoid(x)
// (SiLU), GELU's decomposition x (1 + erf(x / sqrt 2)) 0.5, MaxPool, AveragePool,
// GlobalAveragePool, BatchNormalization (inference), Flatten, a Reshape to [N, features], Add/Sum
// of equal shapes, Concat along the channels, Softmax, LogSoftmax, Identity, Dropout and Constant.
// Weights become parameters: a node whose weight is named "conv1.weight" is named "conv1", so
// torch.onnx.export's files keep PyTorch's state_dict names. Anything else is an Error naming
// `source` and, for an operator or attribute, the node.
template <typename T>
ImportedModel<T> import_model(const ::onnx::ModelProto& model, const std::string& source) {
  return detail::Importer<T>(model, source).run();
}

template <typename T>
ImportedModel<T> import_model(const std::string& path) {
  const ::onnx::ModelProto model = read_model_proto(path);
  return import_model<T>(model, path);
}

}  // namespace minidl::onnx
