// The small networks the ONNX tests export and import: together they use every
// layer that has an ONNX operator, with the options that change the attributes.
#pragma once

#include <string>
#include <vector>

#include "minidl/core/rng.hpp"
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
#include "minidl/models/resnet.hpp"

namespace onnx_test {

template <typename T>
minidl::Tensor<T> clone(const minidl::Tensor<T>& t) {
  minidl::Tensor<T> c{t.shape()};
  c.copy_from(t);
  return c;
}

template <typename T = float>
minidl::Tensor<T> random_input(const minidl::Shape& shape, std::uint64_t seed) {
  minidl::Tensor<T> x{shape};
  minidl::Rng rng(seed);
  for (T& v : x) v = static_cast<T>(rng.uniform<double>(-2, 2));
  return x;
}

// Running statistics far from 0 and 1, so that an exporter that ignored them would show.
template <typename T>
void randomize_batchnorms(minidl::Graph<T>& net, std::uint64_t seed) {
  minidl::Rng rng(seed);
  for (auto& b : net.buffers()) {
    if (!b.value) continue;
    const bool var = b.name.size() > 3 && b.name.compare(b.name.size() - 3, 3, "var") == 0;
    for (T& v : *b.value)
      v = static_cast<T>(var ? rng.uniform<double>(0.5, 2) : rng.uniform<double>(-1, 1));
  }
  for (auto& p : net.parameters())
    if (p.name.find("bn") != std::string::npos || p.name.find("downsample.1") != std::string::npos)
      for (T& v : *p.value) v = static_cast<T>(rng.uniform<double>(0.5, 1.5));
}

template <typename T>
struct Case {
  std::string name;
  minidl::Graph<T> net;
  minidl::Shape input;
};

// A ResNet-8 of width 4 with running statistics that are not the initial ones.
template <typename T = float>
minidl::Graph<T> small_resnet() {
  minidl::ResNetOptions o;
  o.depth = 8;
  o.width = 4;
  auto net = minidl::make_resnet<T>(5, o);
  randomize_batchnorms(net, 11);
  return net;
}

template <typename T = float>
std::vector<Case<T>> small_cases() {
  using namespace minidl;
  std::vector<Case<T>> cases;
  {  // grouped, dilated, strided convolutions; leaky ReLU; every pooling
    Graph<T> g;
    g.add("conv1", Conv2d<T>(Conv2dOptions(4, 8, 3).groups(2).dilation(2).padding(2).stride(1, 2)));
    g.add("leaky", LeakyReLU<T>(0.2));
    g.add("pool", MaxPool2d<T>(3, 2, 1));
    g.add("conv2", Conv2d<T>(Conv2dOptions(8, 8, 3, 1).groups(8).padding(1, 0).bias(false)));
    g.add("avg", AvgPool2d<T>(2, 1, 1, false, false));
    g.add("avg2", AvgPool2d<T>(2));
    g.add("gap", AdaptiveAvgPool2d<T>(1));
    g.add("flatten", Flatten<T>());
    g.add("fc", Linear<T>(8, 5));
    g.reset_parameters(21);
    cases.push_back({"conv_pool", std::move(g), Shape{2, 4, 13, 16}});
  }
  // Each activation alone after a convolution, so that any error in its operators shows.
  const auto activation = [&](const std::string& name, auto layer) {
    Graph<T> g;
    g.add("conv", Conv2d<T>(3, 4, 3, 1, 1));
    g.add(name, std::move(layer));
    g.reset_parameters(22);
    cases.push_back({name, std::move(g), Shape{2, 3, 5, 6}});
  };
  activation("gelu", GELU<T>());
  activation("gelu_tanh", GELU<T>(GeluApproximate::tanh));
  activation("silu", SiLU<T>());
  activation("tanh", Tanh<T>());
  activation("sigmoid", Sigmoid<T>());
  activation("relu", ReLU<T>());
  activation("softmax", Softmax<T>(1));
  {  // a classifier's head: linear without bias, dropout, log-softmax
    Graph<T> g;
    g.add("conv", Conv2d<T>(3, 6, 3, 1, 1));
    g.add("pool", AdaptiveAvgPool2d<T>(2));
    g.add("flatten", Flatten<T>());
    g.add("fc", Linear<T>(24, 7, false));
    g.add("dropout", Dropout<T>(0.3));
    g.add("logsoftmax", LogSoftmax<T>(1));
    g.reset_parameters(23);
    cases.push_back({"head", std::move(g), Shape{3, 3, 8, 8}});
  }
  {  // branches: concat, add, batch norms (2-D and 1-D, without affine)
    Graph<T> g;
    g.add("a", Conv2d<T>(2, 3, 3, 1, 1), "input");
    g.add("b", Conv2d<T>(2, 5, 1), "input");
    g.add("cat", Concat<T>(), "a", "b");
    g.add("bn", BatchNorm2d<T>(8));
    g.add("relu", ReLU<T>());
    g.add("c", Conv2d<T>(8, 8, 3, 1, 1, false));
    g.add("sum", Add<T>(), "relu", "c");
    g.add("id", Identity<T>());
    g.add("gap", AdaptiveAvgPool2d<T>(1));
    g.add("flatten", Flatten<T>());
    g.add("fc", Linear<T>(8, 6));
    g.add("bn1d", BatchNorm1d<T>(6, 1e-3, 0.1, false));
    g.add("out", Softmax<T>(-1));
    g.reset_parameters(23);
    randomize_batchnorms(g, 24);
    cases.push_back({"branches", std::move(g), Shape{2, 2, 6, 6}});
  }
  return cases;
}

}  // namespace onnx_test
