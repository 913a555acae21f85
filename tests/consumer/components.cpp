// Uses one component besides the core, the one named by the macro it is
// built with, through that component's target alone: a checkpoint
// (nlohmann/json, zlib's CRC-32), a gzip IDX file (zlib), a PNG read back
// (stb), a PNG chart canvas (stb), an Eigen view of a tensor or an ONNX file
// written and read back (libonnx, protobuf).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <minidl/minidl.hpp>
#include <string>

#if defined(MINIDL_CONSUMER_CHECKPOINT)
#include <minidl/io/checkpoint.hpp>
#elif defined(MINIDL_CONSUMER_DATA)
#include <zlib.h>

#include <minidl/data/idx.hpp>
#elif defined(MINIDL_CONSUMER_IMAGE)
#include <minidl/io/image.hpp>
#elif defined(MINIDL_CONSUMER_VIZ)
#include <minidl/viz/canvas.hpp>
#elif defined(MINIDL_CONSUMER_EIGEN)
#include <minidl/eigen.hpp>
#elif defined(MINIDL_CONSUMER_ONNX)
#include <minidl/onnx/export.hpp>
#include <minidl/onnx/import.hpp>
#endif

using namespace minidl;

// Returns whether the component did what it should; `dir` is a scratch folder.
bool use_component(const std::filesystem::path& dir) {
#if defined(MINIDL_CONSUMER_CHECKPOINT)
  Sequential<float> net, again;
  net.add("fc", Linear<float>(3, 2));
  again.add("fc", Linear<float>(3, 2));
  net.reset_parameters(7);
  save_checkpoint((dir / "net.safetensors").string(), net);
  load_checkpoint((dir / "net.safetensors").string(), again);
  return again.parameters()[0].value->data()[5] == net.parameters()[0].value->data()[5];
#elif defined(MINIDL_CONSUMER_DATA)
  const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9};  // IDX labels 7 2 9
  const std::string path = (dir / "labels.gz").string();
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, labels, sizeof labels);
  gzclose(f);
  return read_idx_labels(path) == std::vector<std::uint8_t>{7, 2, 9};
#elif defined(MINIDL_CONSUMER_IMAGE)
  GrayImage image{3, 2, {0, 10, 20, 30, 40, 250}};
  write_gray_png((dir / "image.png").string(), image);
  return load_gray_image((dir / "image.png").string()).pixels == image.pixels;
#elif defined(MINIDL_CONSUMER_VIZ)
  viz::Canvas canvas(4, 3, viz::black);
  canvas.set(1, 2, viz::white);
  canvas.save_png((dir / "canvas.png").string());
  return std::filesystem::file_size(dir / "canvas.png") > 8;
#elif defined(MINIDL_CONSUMER_EIGEN)
  (void)dir;
  Tensor<float> t({2, 3});
  as_eigen_matrix(t)(1, 2) = 5.0f;
  return t(1, 2) == 5.0f && as_eigen_matrix(t).sum() == 5.0f;
#elif defined(MINIDL_CONSUMER_ONNX)
  // minidl::onnx in full: `onnx` alone is also the ONNX library's own namespace.
  Sequential<float> net;
  net.add("fc", Linear<float>(3, 2));
  net.reset_parameters(7);
  minidl::onnx::export_model(net, Shape{1, 3}, (dir / "net.onnx").string());
  auto again = minidl::onnx::import_model<float>((dir / "net.onnx").string());
  return again.graph.parameters()[0].name == "fc.weight" &&
         again.graph.parameters()[0].value->data()[5] == net.parameters()[0].value->data()[5];
#else
#error "build with one of MINIDL_CONSUMER_{CHECKPOINT,DATA,IMAGE,VIZ,EIGEN,ONNX}"
#endif
}

int main(int, char** argv) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("minidl_consumer_" + std::to_string(static_cast<long>(::getpid())));
  std::filesystem::create_directories(dir);
  const bool ok = use_component(dir);
  std::filesystem::remove_all(dir);
  std::printf("%s: %s\n", argv[0], ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
