// minidl/models/resnet.hpp - a small ResNet for 28x28 images (Fashion-MNIST), with the module
// names of torchvision's ResNet so that its state_dict matches PyTorch's one to one.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "minidl/core/error.hpp"
#include "minidl/core/rng.hpp"
#include "minidl/layers/adaptive_avgpool2d.hpp"
#include "minidl/layers/add.hpp"
#include "minidl/layers/batchnorm.hpp"
#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/flatten.hpp"
#include "minidl/layers/graph.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/relu.hpp"

namespace minidl {

// depth = 6 * blocks + 2 (ResNet-8, -14, -20, ... as in He et al.'s CIFAR
// networks); width = the channels of the first stage, doubled in each of the
// next two.
struct ResNetOptions {
  int depth = 20;
  std::int64_t width = 16;
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;
  // Start each block's last batch norm at scale 0 instead of 1, so that every block begins as
  // its shortcut (torchvision's zero_init_residual; Goyal et al. 2017).
  bool zero_init_residual = false;
};

inline int resnet_blocks_per_stage(int depth) {
  if (depth < 8 || (depth - 2) % 6 != 0)
    fail("ResNet: depth ", depth, " is not 6n + 2 with n >= 1 (8, 14, 20, 26, 32, ...)");
  return (depth - 2) / 6;
}

namespace detail {

// One basic block named `name` ("layer2.0") reading node `input`, with
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
// where shortcut is x itself, or downsample = 1x1 conv (stride, no bias) +
// BN when the shape changes. Returns the name of the block's output node.
template <typename T>
std::string add_basic_block(Graph<T>& net, const std::string& name, const std::string& input,
                            std::int64_t in, std::int64_t out, std::int64_t stride) {
  net.add(name + ".conv1", Conv2d<T>(in, out, 3, stride, 1, false), input);
  net.add(name + ".bn1", BatchNorm2d<T>(out));
  net.add(name + ".relu1", ReLU<T>(true));
  net.add(name + ".conv2", Conv2d<T>(out, out, 3, 1, 1, false));
  net.add(name + ".bn2", BatchNorm2d<T>(out));
  std::string shortcut = input;
  if (stride != 1 || in != out) {
    net.add(name + ".downsample.0", Conv2d<T>(in, out, 1, stride, 0, false), input);
    net.add(name + ".downsample.1", BatchNorm2d<T>(out));
    shortcut = name + ".downsample.1";
  }
  net.add(name + ".add", Add<T>(), name + ".bn2", shortcut);
  net.add(name + ".relu2", ReLU<T>(true));
  return name + ".relu2";
}

}  // namespace detail

// He initialisation as torchvision's ResNet does it: every convolution weight
// from N(0, 2 / fan_out) (kaiming_normal_, mode "fan_out", ReLU gain); batch
// norms at weight 1, bias 0 (with `zero_init_residual`, each block's bn2 at weight 0); the
// classifier as PyTorch's Linear default. Draws come from one stream seeded by `seed`, in
// parameter order.
template <typename T>
void resnet_he_init(Graph<T>& net, std::uint64_t seed, bool zero_init_residual = false) {
  net.reset_parameters(seed);
  Rng rng(hash64(seed, 0x4E0C, 0));
  for (auto& p : net.parameters()) {
    const Shape& s = p.value->shape();
    if (s.rank() != 4) continue;  // convolution weights [out, in, kh, kw] only
    const double std = std::sqrt(2.0 / static_cast<double>(s[0] * s[2] * s[3]));
    for (T& v : *p.value) v = static_cast<T>(rng.normal() * std);
  }
  if (!zero_init_residual) return;
  const std::string last_norm = ".bn2.weight";  // "layer2.0.bn2.weight"; the stem's is "bn1"
  for (auto& p : net.parameters()) {
    const std::string& n = p.name;
    if (n.size() > last_norm.size() &&
        n.compare(n.size() - last_norm.size(), last_norm.size(), last_norm) == 0)
      p.value->fill(T(0));
  }
}

// Input [N, in_channels, H, W] -> logits [N, num_classes]:
//   conv1 (3x3, no bias) -> bn1 -> relu
//   layer1: blocks at width, stride 1          [N, width, H, W]
//   layer2: blocks at 2 width, the first stride 2  [N, 2 width, H/2, W/2]
//   layer3: blocks at 4 width, the first stride 2  [N, 4 width, H/4, W/4]
//   avgpool (global average) -> flatten -> fc
// Parameter and buffer names are those of the PyTorch twin
// (benchmarks/resnet/train_resnet.py): conv1.weight, bn1.running_mean,
// layer1.0.conv1.weight, layer2.0.downsample.0.weight, fc.bias, ...
template <typename T>
Graph<T> make_resnet(std::uint64_t seed, const ResNetOptions& o = {}) {
  const int blocks = resnet_blocks_per_stage(o.depth);
  if (o.width < 1 || o.in_channels < 1 || o.num_classes < 1)
    fail("ResNet: width, in_channels and num_classes must be >= 1, got ", o.width, ", ",
         o.in_channels, ", ", o.num_classes);
  Graph<T> net;
  net.add("conv1", Conv2d<T>(o.in_channels, o.width, 3, 1, 1, false));
  net.add("bn1", BatchNorm2d<T>(o.width));
  std::string last = net.add("relu", ReLU<T>(true)).name();
  std::int64_t channels = o.width;
  for (int stage = 0; stage < 3; ++stage) {
    const std::int64_t out = o.width << stage;
    for (int b = 0; b < blocks; ++b) {
      const std::int64_t stride = stage > 0 && b == 0 ? 2 : 1;
      const std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      last = detail::add_basic_block(net, name, last, channels, out, stride);
      channels = out;
    }
  }
  net.add("avgpool", AdaptiveAvgPool2d<T>(1, 1));
  net.add("flatten", Flatten<T>());
  net.add("fc", Linear<T>(channels, o.num_classes));
  resnet_he_init(net, seed, o.zero_init_residual);
  return net;
}

}  // namespace minidl
