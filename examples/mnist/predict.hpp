// examples/mnist/predict.hpp - classify a user's own image of a digit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "minidl/data/batch.hpp"
#include "minidl/data/digit_preprocess.hpp"
#include "minidl/io/checkpoint.hpp"
#include "minidl/io/image.hpp"
#include "minidl/minidl.hpp"

namespace mnist {

struct Prediction {
  int digit = -1;
  std::vector<double> probabilities;  // 10 classes
};

// Loads an image (PNG, JPEG, BMP, PGM), turns it into a 28x28 MNIST-style
// digit and classifies it.
inline Prediction predict_image(minidl::Sequential<float>& net, const std::string& path) {
  const minidl::GrayImage img = minidl::load_gray_image(path);
  const std::vector<std::uint8_t> digit = minidl::to_mnist_format(img);
  minidl::Tensor<float> x({1, 1, 28, 28});
  const minidl::Normalization norm;
  for (std::size_t i = 0; i < digit.size(); ++i) x[static_cast<std::int64_t>(i)] = norm(digit[i]);
  const minidl::Tensor<float>& logits = net.forward(x, minidl::Context{});
  Prediction p;
  const float zmax = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float z : logits) sum += std::exp(static_cast<double>(z - zmax));
  for (float z : logits) p.probabilities.push_back(std::exp(static_cast<double>(z - zmax)) / sum);
  p.digit = static_cast<int>(std::max_element(p.probabilities.begin(), p.probabilities.end()) -
                             p.probabilities.begin());
  return p;
}

inline int run_predict(const std::string& model_path, const std::vector<std::string>& images) {
  auto net = minidl::make_mnist_cnn<float>(0);
  minidl::load_checkpoint(model_path, net);
  for (const auto& path : images) {
    const Prediction p = predict_image(net, path);
    std::vector<int> order(10);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      return p.probabilities[static_cast<std::size_t>(a)] >
             p.probabilities[static_cast<std::size_t>(b)];
    });
    std::printf("%s: %d (%.1f%%)  top-3:", path.c_str(), p.digit,
                100 * p.probabilities[static_cast<std::size_t>(p.digit)]);
    for (int k = 0; k < 3; ++k)
      std::printf(
          " %d %.1f%%", order[static_cast<std::size_t>(k)],
          100 * p.probabilities[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace mnist
