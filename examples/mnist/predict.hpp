// examples/mnist/predict.hpp - classify users' own images, one or many.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "classes.hpp"
#include "minidl/data/batch.hpp"
#include "minidl/data/digit_preprocess.hpp"
#include "minidl/io/checkpoint.hpp"
#include "minidl/io/image.hpp"
#include "minidl/minidl.hpp"

namespace mnist {

struct Prediction {
  int label = -1;
  std::vector<double> probabilities;  // one per class
};

// Classifies one 28x28 MNIST-style image.
inline Prediction classify(minidl::Sequential<float>& net, const std::vector<std::uint8_t>& image) {
  minidl::Tensor<float> x({1, 1, 28, 28});
  const minidl::Normalization norm;
  for (std::size_t i = 0; i < image.size(); ++i) x[static_cast<std::int64_t>(i)] = norm(image[i]);
  const minidl::Tensor<float>& logits = net.forward(x, minidl::Context{});
  Prediction p;
  const float zmax = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float z : logits) sum += std::exp(static_cast<double>(z - zmax));
  for (float z : logits) p.probabilities.push_back(std::exp(static_cast<double>(z - zmax)) / sum);
  p.label = static_cast<int>(std::max_element(p.probabilities.begin(), p.probabilities.end()) -
                             p.probabilities.begin());
  return p;
}

// Loads an image (PNG, JPEG, BMP, PGM/PPM), turns it into a 28x28 MNIST-style
// image and classifies it. Errors name the file.
inline Prediction predict_image(minidl::Sequential<float>& net, const std::string& path) {
  return classify(net, minidl::to_mnist_format(minidl::load_gray_image(path), path));
}

// "path: name (p%)  top-3: name p%, name p%, name p%"
inline std::string prediction_line(const std::string& path, const Prediction& p,
                                   const ClassNames& classes) {
  std::vector<int> order(p.probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return p.probabilities[static_cast<std::size_t>(a)] >
           p.probabilities[static_cast<std::size_t>(b)];
  });
  const auto percent = [&](int k) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f%%", 100 * p.probabilities[static_cast<std::size_t>(k)]);
    return std::string(text);
  };
  const auto name = [&](int k) { return classes.names.at(static_cast<std::size_t>(k)); };
  std::string line = path + ": " + name(p.label) + " (" + percent(p.label) + ")  top-3:";
  for (std::size_t k = 0; k < 3 && k < order.size(); ++k)
    line += std::string(k ? ", " : " ") + name(order[k]) + " " + percent(order[k]);
  return line;
}

// Classifies every image: a line per image on `out`, and for each one that
// cannot be read or shows no digit, a line naming it on `err`. Returns how
// many failed; one bad file never stops the others.
inline std::size_t predict_files(minidl::Sequential<float>& net,
                                 const std::vector<std::string>& paths, const ClassNames& classes,
                                 std::FILE* out, std::FILE* err) {
  std::size_t failed = 0;
  for (const std::string& path : paths) {
    std::string problem;
    try {
      std::fprintf(out, "%s\n", prediction_line(path, predict_image(net, path), classes).c_str());
      continue;
    } catch (const std::bad_alloc&) {
      problem = path + ": not enough memory to read the image";
    } catch (const std::exception& e) {
      problem = e.what();
      // The readers' messages start with the path; anything else gets it here.
      if (problem.compare(0, path.size(), path) != 0) problem = path + ": " + problem;
    }
    ++failed;
    std::fprintf(err, "mnist predict: %s\n", problem.c_str());
  }
  return failed;
}

// `mnist predict`: exit status 0 when every image was classified, else 1
// after a summary line (the images that could be read are still classified).
inline int run_predict(const std::string& model_path, const std::vector<std::string>& images,
                       const ClassNames& classes = digit_classes(), std::FILE* out = stdout,
                       std::FILE* err = stderr) {
  auto net = minidl::make_mnist_cnn<float>(0);
  minidl::load_checkpoint(model_path, net);
  const std::size_t failed = predict_files(net, images, classes, out, err);
  if (failed == 0) return 0;
  std::fprintf(err, "mnist predict: %zu of %zu images could not be classified\n", failed,
               images.size());
  return 1;
}

}  // namespace mnist
