// Helper for the crash test of checkpoint writing.
//   checkpoint_writer write FILE    saves version 1, 2, 3, ... of the MNIST CNN
//                                   (every parameter = the version) until killed
//   checkpoint_writer verify FILE   exits 0 when FILE loads and is one complete
//                                   version (metadata and every value agree)
#include <cstdio>
#include <cstring>
#include <string>

#include "minidl/io/checkpoint.hpp"
#include "minidl/minidl.hpp"

using namespace minidl;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: checkpoint_writer write|verify FILE\n");
    return 2;
  }
  const std::string mode = argv[1], path = argv[2];
  auto net = make_mnist_cnn<float>(0);
  try {
    if (mode == "write") {
      for (long version = 1;; ++version) {
        for (auto& p : net.parameters()) p.value->fill(static_cast<float>(version));
        save_checkpoint<float>(path, net, nullptr, {{"version", std::to_string(version)}});
      }
    }
    auto meta = load_checkpoint(path, net);
    const float version = std::stof(meta.at("version"));
    for (auto& p : net.parameters())
      for (float v : *p.value)
        if (v != version) {
          std::printf("%s: version %g but %s holds %g\n", path.c_str(),
                      static_cast<double>(version), p.name.c_str(), static_cast<double>(v));
          return 1;
        }
    std::printf("%s: complete version %g\n", path.c_str(), static_cast<double>(version));
    return 0;
  } catch (const std::exception& e) {
    std::printf("%s: %s\n", path.c_str(), e.what());
    return 1;
  }
}
