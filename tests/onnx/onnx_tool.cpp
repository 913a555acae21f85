// onnx_tool: the C++ side of the ONNX tests that a second engine judges.
//   onnx_tool cases DIR [MNIST_CHECKPOINT]
//       exports the test networks to DIR/<case>.onnx, with DIR/<case>.safetensors
//       holding the input "x" and minidl's output "y" (and "labels" for MNIST)
//   onnx_tool run MODEL.onnx IN.safetensors OUT.safetensors
//       imports MODEL.onnx and writes its output "y" for the input "x"
//   onnx_tool names MODEL.onnx
//       imports MODEL.onnx and prints the names of its parameters and buffers
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "minidl/data/batch.hpp"
#include "minidl/data/mnist.hpp"
#include "minidl/io/checkpoint.hpp"
#include "minidl/layers/sigmoid.hpp"
#include "minidl/models/mnist_cnn.hpp"
#include "minidl/models/resnet.hpp"
#include "minidl/onnx/export.hpp"
#include "minidl/onnx/import.hpp"
#include "onnx_cases.hpp"

namespace {

using minidl::Tensor;

void save(const std::string& path, const Tensor<float>& x, const Tensor<float>& y,
          const std::vector<std::int32_t>* labels = nullptr) {
  minidl::SafetensorsFile f;
  f.tensors.push_back(minidl::detail::to_named("x", x));
  f.tensors.push_back(minidl::detail::to_named("y", y));
  if (labels) {
    std::vector<std::int64_t> l(labels->begin(), labels->end());
    f.tensors.push_back(
        minidl::make_tensor("labels", l.data(), l.size(), {static_cast<std::int64_t>(l.size())}));
  }
  minidl::write_safetensors(path, f);
}

void write_case(const std::string& dir, const std::string& name, minidl::Graph<float>& net,
                const Tensor<float>& x, const std::vector<std::int32_t>* labels = nullptr) {
  minidl::onnx::export_model(net, x.shape(), dir + "/" + name + ".onnx");
  const Tensor<float> y = onnx_test::clone(net.forward(x, minidl::Context{}));
  save(dir + "/" + name + ".safetensors", x, y, labels);
}

int cases(const std::string& dir, const std::string& checkpoint) {
  for (auto& c : onnx_test::small_cases()) {
    Tensor<float> x = onnx_test::random_input(c.input, 7);
    write_case(dir, c.name, c.net, x);
  }
  const char* mnist_dir = std::getenv("MNIST_DIR");
  if (!mnist_dir || !*mnist_dir) return 0;
  const minidl::Mnist data = minidl::load_mnist(mnist_dir);
  std::vector<std::int64_t> indices(300);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int64_t>(i);
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  minidl::make_batch(data.test, indices.data(), static_cast<std::int64_t>(indices.size()), x,
                     labels);
  auto cnn = minidl::make_mnist_cnn<float>(3);
  if (!checkpoint.empty()) minidl::load_checkpoint(checkpoint, cnn);
  write_case(dir, "mnist_cnn", cnn, x, &labels);
  auto resnet = onnx_test::small_resnet();
  write_case(dir, "resnet", resnet, x, &labels);
  return 0;
}

int run(const std::string& model, const std::string& in, const std::string& out) {
  auto imported = minidl::onnx::import_model<float>(model);
  const minidl::SafetensorsFile f = minidl::read_safetensors(in);
  const minidl::NamedTensor& xt = f.at("x");
  Tensor<float> x{minidl::Shape(xt.shape)};
  minidl::detail::from_named(f, in, "x", x);
  const Tensor<float> y = onnx_test::clone(imported.graph.forward(x, minidl::Context{}));
  save(out, x, y);
  return 0;
}

int names(const std::string& model) {
  auto imported = minidl::onnx::import_model<float>(model);
  for (auto& p : imported.graph.parameters()) std::printf("%s\n", p.name.c_str());
  for (auto& b : imported.graph.buffers())
    if (b.value) std::printf("%s\n", b.name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "cases" && (argc == 3 || argc == 4)) return cases(argv[2], argc == 4 ? argv[3] : "");
    if (cmd == "run" && argc == 5) return run(argv[2], argv[3], argv[4]);
    if (cmd == "names" && argc == 3) return names(argv[2]);
    std::fprintf(stderr,
                 "usage: onnx_tool cases DIR [CHECKPOINT] | run MODEL.onnx IN.safetensors "
                 "OUT.safetensors | names MODEL.onnx\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onnx_tool: error: %s\n", e.what());
    return 1;
  }
}
