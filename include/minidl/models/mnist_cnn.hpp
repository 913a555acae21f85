// minidl/models/mnist_cnn.hpp - the classic MNIST CNN, with PyTorch's parameter names.
#pragma once

#include "minidl/layers/conv2d.hpp"
#include "minidl/layers/dropout.hpp"
#include "minidl/layers/flatten.hpp"
#include "minidl/layers/linear.hpp"
#include "minidl/layers/maxpool2d.hpp"
#include "minidl/layers/relu.hpp"
#include "minidl/layers/sequential.hpp"

namespace minidl {

// Input [N, 1, 28, 28] -> logits [N, 10]:
//   conv1 (1->32, 3x3, pad 1) -> ReLU -> max-pool 2      [N, 32, 14, 14]
//   conv2 (32->64, 3x3, pad 1) -> ReLU -> max-pool 2     [N, 64, 7, 7]
//   flatten -> fc1 (3136->128) -> ReLU -> dropout(p) -> fc2 (128->10)
// Parameters: conv1.weight [32,1,3,3], conv1.bias, conv2.weight [64,32,3,3],
// conv2.bias, fc1.weight [128,3136], fc1.bias, fc2.weight [10,128], fc2.bias:
// the state_dict of the same module written in PyTorch. The ReLUs work in
// place (each follows a layer that does not need its output for backward),
// which saves 19 MB of activations and gradients at batch 64.
template <typename T>
Sequential<T> make_mnist_cnn(std::uint64_t seed, double dropout = 0.5) {
  Sequential<T> net;
  net.add("conv1", Conv2d<T>(1, 32, 3, 1, 1));
  net.add("relu1", ReLU<T>(true));
  net.add("pool1", MaxPool2d<T>(2));
  net.add("conv2", Conv2d<T>(32, 64, 3, 1, 1));
  net.add("relu2", ReLU<T>(true));
  net.add("pool2", MaxPool2d<T>(2));
  net.add("flatten", Flatten<T>());
  net.add("fc1", Linear<T>(64 * 7 * 7, 128));
  net.add("relu3", ReLU<T>(true));
  net.add("dropout", Dropout<T>(dropout));
  net.add("fc2", Linear<T>(128, 10));
  net.reset_parameters(seed);
  return net;
}

}  // namespace minidl
