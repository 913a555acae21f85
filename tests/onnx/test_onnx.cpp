// ONNX export and import in C++: round trips, names, training after import, and bad files.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "minidl/io/atomic_file.hpp"
#include "minidl/loss/cross_entropy.hpp"
#include "minidl/models/mnist_cnn.hpp"
#include "minidl/onnx/export.hpp"
#include "minidl/onnx/import.hpp"
#include "minidl/optim/sgd.hpp"
#include "onnx_cases.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_onnx {

namespace {

using minidl::Shape;
using minidl::Tensor;

std::string temp_path(const std::string& name) {
  return "/tmp/minidl_test_onnx_" + std::to_string(::getpid()) + "_" + name;
}

minidl::onnx::ImportedModel<float> round_trip(minidl::Graph<float>& net, const Shape& input) {
  const ::onnx::ModelProto model = minidl::onnx::to_onnx(net, input);
  std::string bytes;
  REQUIRE(model.SerializeToString(&bytes));
  ::onnx::ModelProto parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  return minidl::onnx::import_model<float>(parsed, "round trip");
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  if (a.shape() != b.shape()) return false;
  return std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(float)) == 0;
}

std::set<std::string> parameter_names(minidl::Graph<float>& net) {
  std::set<std::string> names;
  for (auto& p : net.parameters()) names.insert(p.name);
  for (auto& b : net.buffers())
    if (b.value) names.insert(b.name);
  return names;
}

// The message of the Error that f throws ("" when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const minidl::Error& e) {
    return e.what();
  }
  return "";
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A model file written from `model`, imported: the Error's message.
std::string import_error(const ::onnx::ModelProto& model, const std::string& name) {
  std::string bytes;
  model.SerializeToString(&bytes);
  const std::string path = temp_path(name);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { minidl::onnx::import_model<float>(path); });
  std::remove(path.c_str());
  return message;
}

::onnx::NodeProto* node_of(::onnx::ModelProto& m, const std::string& op) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == op) return &n;
  FAIL("no node ", op);
  return nullptr;
}
::onnx::TensorProto* initializer_of(::onnx::ModelProto& m, const std::string& name) {
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.name() == name) return &t;
  FAIL("no initializer ", name);
  return nullptr;
}

}  // namespace

TEST_CASE("export then import gives the same network: same outputs to the bit, same names") {
  for (auto& c : onnx_test::small_cases<float>()) {
    CAPTURE(c.name);
    if (c.name == "gelu_tanh") continue;  // its decomposition is not read back (docs/interop.md)
    auto imported = round_trip(c.net, c.input);
    const Tensor<float> x = onnx_test::random_input(c.input, 3);
    const Tensor<float> want = onnx_test::clone(c.net.forward(x, minidl::Context{}));
    CHECK(same_bits(imported.graph.forward(x, minidl::Context{}), want));
    if (c.name != "branches")  // its 1-D batch norm without affine gains ONNX's scale and bias
      CHECK(parameter_names(imported.graph) == parameter_names(c.net));
  }
  auto cnn = minidl::make_mnist_cnn<float>(4);
  auto resnet = onnx_test::small_resnet<float>();
  for (auto* net : {&cnn, &resnet}) {
    const Shape in{5, 1, 28, 28};
    auto imported = round_trip(*net, in);
    CHECK(imported.input_shape == std::vector<std::int64_t>{0, 1, 28, 28});
    CHECK(parameter_names(imported.graph) == parameter_names(*net));
    const Tensor<float> x = onnx_test::random_input(in, 9);
    const Tensor<float> want = onnx_test::clone(net->forward(x, minidl::Context{}));
    CHECK(same_bits(imported.graph.forward(x, minidl::Context{}), want));
  }
}

TEST_CASE("an imported network trains: gradients reach every parameter") {
  auto cnn = minidl::make_mnist_cnn<float>(4);
  auto imported = round_trip(cnn, Shape{4, 1, 28, 28});
  minidl::Graph<float>& net = imported.graph;
  const Tensor<float> x = onnx_test::random_input(Shape{4, 1, 28, 28}, 5);
  const std::vector<std::int32_t> labels{1, 2, 3, 4};
  minidl::CrossEntropyLoss<float> loss;
  minidl::SgdOptions options;
  options.lr = 0.1;
  minidl::SGD<float> sgd(net.parameters(), options);
  const minidl::Context train{minidl::Mode::Train, 0};
  const float before = loss.forward(net.forward(x, train), labels.data());
  net.backward(loss.backward());
  sgd.step();
  const float after = loss.forward(net.forward(x, train), labels.data());
  CHECK(after < before);
  for (auto& p : net.parameters()) {
    CAPTURE(p.name);
    bool any = false;
    for (float g : *p.grad) any |= g != 0;
    CHECK(any);
  }
}

TEST_CASE("export: a layer without an ONNX operator is an Error naming it; no file is left") {
  struct Square : minidl::Layer<float> {
    std::string type() const override { return "Square"; }
    Shape output_shape(const Shape& in) const override { return in; }
    const Tensor<float>& forward(const Tensor<float>& x, const minidl::Context&) override {
      return x;
    }
    const Tensor<float>& backward(const Tensor<float>& dy) override { return dy; }
  };
  minidl::Graph<float> net;
  net.add("conv", minidl::Conv2d<float>(1, 2, 3));
  net.add("square", Square());
  const std::string path = temp_path("unsupported.onnx");
  minidl::write_file_atomic(path, "earlier file");
  const std::string message = error_of([&] {
    minidl::onnx::export_model(net, Shape{1, 1, 5, 5}, path);
  });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("'square' (Square)") != std::string::npos);
  std::ifstream in(path);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(kept == "earlier file");
  std::remove(path.c_str());
}

TEST_CASE("import: bad files are one-line Errors naming the file and the problem") {
  auto cnn = minidl::make_mnist_cnn<float>(4);
  const ::onnx::ModelProto good = minidl::onnx::to_onnx(cnn, Shape{1, 1, 28, 28});
  std::string bytes;
  good.SerializeToString(&bytes);
  const auto one_line = [](const std::string& m) { return m.find('\n') == std::string::npos; };

  SUBCASE("missing, empty, truncated and garbage files") {
    const std::string path = temp_path("bad.onnx");
    CHECK(error_of([&] { minidl::onnx::import_model<float>(path); }).find("cannot open") !=
          std::string::npos);
    for (const std::string& content :
         {std::string(), bytes.substr(0, bytes.size() / 2), bytes.substr(0, 100),
          std::string("\x0a\xff\xff\xff\xff\x0f", 6), std::string(1000, '\x07')}) {
      write_bytes(path, content);
      const std::string m = error_of([&] { minidl::onnx::import_model<float>(path); });
      CAPTURE(m);
      CHECK(m.rfind(path + ": ", 0) == 0);
      CHECK(one_line(m));
    }
    std::remove(path.c_str());
  }
  SUBCASE("an unknown operator, named with its node") {
    auto m = good;
    node_of(m, "Relu")->set_op_type("Swish");
    const std::string e = import_error(m, "op.onnx");
    CHECK(e.find("op.onnx: node 'relu1' (Swish): operator not supported") != std::string::npos);
  }
  SUBCASE("a node without an output") {
    auto m = good;
    ::onnx::NodeProto* identity = m.mutable_graph()->add_node();
    identity->set_name("dangling");
    identity->set_op_type("Identity");
    identity->add_input(node_of(m, "Relu")->output(0));
    const std::string e = import_error(m, "no_output.onnx");
    CHECK(e.find("no_output.onnx: node 'dangling' (Identity): has no output") != std::string::npos);
    node_of(m, "Relu")->mutable_output(0)->clear();
    CHECK(import_error(m, "empty_output.onnx").find("(Relu): has no output") != std::string::npos);
  }
  SUBCASE("an unsupported attribute") {
    auto m = good;
    auto* a = node_of(m, "Conv")->add_attribute();
    a->set_name("fancy");
    a->set_type(::onnx::AttributeProto::INT);
    const std::string e = import_error(m, "attr.onnx");
    CHECK(e.find("node 'conv1' (Conv): unsupported attribute 'fancy'") != std::string::npos);
  }
  SUBCASE("unequal pads") {
    auto m = good;
    for (auto& a : *node_of(m, "Conv")->mutable_attribute())
      if (a.name() == "pads") a.set_ints(2, 0);
    CHECK(import_error(m, "pads.onnx").find("differ at the two ends") != std::string::npos);
  }
  SUBCASE("external data") {
    auto m = good;
    initializer_of(m, "conv1.weight")->set_data_location(::onnx::TensorProto::EXTERNAL);
    const std::string e = import_error(m, "external.onnx");
    CHECK(e.find("initializer 'conv1.weight': data in an external file") != std::string::npos);
  }
  SUBCASE("a tensor that claims more data than it holds") {
    auto m = good;
    initializer_of(m, "conv1.bias")->mutable_raw_data()->resize(64);
    const std::string e = import_error(m, "short.onnx");
    CHECK(e.find(
              "short.onnx: initializer 'conv1.bias': shape [32] needs 128 bytes of data, has 64") !=
          std::string::npos);
  }
  SUBCASE("a weight whose shape does not fit the layer's input") {
    auto m = good;
    auto* w = initializer_of(m, "fc1.weight");
    w->set_dims(1, 3000);
    w->mutable_raw_data()->resize(128 * 3000 * 4);
    const std::string e = import_error(m, "fit.onnx");
    CHECK(e.find("node 'fc1' (Gemm): weight [128, 3000] does not fit input [1, 3136]") !=
          std::string::npos);
  }
  SUBCASE("negative dimensions, an unknown element type, a second input") {
    auto m = good;
    initializer_of(m, "conv1.bias")->set_dims(0, -32);
    CHECK(import_error(m, "neg.onnx").find("negative dimension") != std::string::npos);
    m = good;
    initializer_of(m, "conv1.bias")->set_data_type(::onnx::TensorProto::STRING);
    CHECK(import_error(m, "type.onnx").find("element type STRING") != std::string::npos);
    m = good;
    *m.mutable_graph()->add_input() = m.graph().input(0);
    m.mutable_graph()->mutable_input(1)->set_name("second");
    CHECK(import_error(m, "inputs.onnx").find("several inputs") != std::string::npos);
  }
}

}  // namespace test_onnx
