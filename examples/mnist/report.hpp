// examples/mnist/report.hpp - evaluation of a model on a dataset, and the files that report it.
#pragma once

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "minidl/data/batch.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/minidl.hpp"
#include "minidl/viz/plots.hpp"

namespace mnist {

using minidl::ImageDataset;
using minidl::Sequential;
using minidl::Tensor;

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  minidl::ConfusionMatrix confusion{10};
  std::vector<std::int64_t> indices;      // dataset index of each evaluated image
  std::vector<std::int32_t> predictions;  // predicted class of each, in the same order
};

// Runs the model in evaluation mode over `indices` of `data` in batches of
// `batch` (the training batch size, so the layers' buffers are shared).
inline Evaluation evaluate(Sequential<float>& net, const ImageDataset& data,
                           const std::vector<std::int64_t>& indices, std::int64_t batch = 64) {
  Evaluation ev;
  ev.indices = indices;
  ev.predictions.reserve(indices.size());
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  minidl::CrossEntropyLoss<float> xent;
  double loss_sum = 0;
  const auto n = static_cast<std::int64_t>(indices.size());
  for (std::int64_t b = 0; b < n; b += batch) {
    const std::int64_t count = std::min(batch, n - b);
    minidl::make_batch(data, indices.data() + b, count, x, labels);
    const Tensor<float>& logits = net.forward(x, minidl::Context{minidl::Mode::Eval, 0});
    loss_sum +=
        static_cast<double>(xent.forward(logits, labels.data())) * static_cast<double>(count);
    const auto pred = minidl::argmax_rows(logits);
    for (std::int64_t i = 0; i < count; ++i) {
      ev.confusion.add(labels[static_cast<std::size_t>(i)], pred[static_cast<std::size_t>(i)]);
      ev.predictions.push_back(pred[static_cast<std::size_t>(i)]);
    }
  }
  ev.loss = n ? loss_sum / static_cast<double>(n) : 0.0;
  ev.accuracy = ev.confusion.accuracy();
  return ev;
}

inline std::vector<std::int64_t> all_indices(const ImageDataset& data) {
  std::vector<std::int64_t> idx(data.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
  return idx;
}

// The k most-confused (true -> predicted) pairs, one per line.
inline std::string most_confused_text(const minidl::ConfusionMatrix& cm, std::size_t k) {
  std::string out;
  for (const auto& c : cm.most_confused(k)) {
    char line[96];
    std::snprintf(line, sizeof line, "  true %d predicted as %d: %lld times\n", c.truth,
                  c.predicted, static_cast<long long>(c.count));
    out += line;
  }
  return out;
}

inline void save_confusion_png(const std::string& path, const minidl::ConfusionMatrix& cm) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back(std::to_string(i));
  minidl::viz::save_confusion_matrix_png(path, cm.counts(), 10, names);
}

// A grid of up to 16 misclassified images, captioned "T:<true> P:<predicted>".
inline void save_wrong_predictions_png(const std::string& path, const ImageDataset& data,
                                       const Evaluation& ev) {
  std::vector<minidl::viz::Thumbnail> thumbs;
  for (std::size_t i = 0; i < ev.indices.size() && thumbs.size() < 16; ++i) {
    const auto idx = static_cast<std::size_t>(ev.indices[i]);
    const int truth = data.labels[idx], pred = ev.predictions[i];
    if (truth == pred) continue;
    minidl::viz::Thumbnail t;
    t.width = static_cast<int>(data.cols);
    t.height = static_cast<int>(data.rows);
    t.pixels.assign(data.image(idx), data.image(idx) + data.rows * data.cols);
    t.caption = "T:" + std::to_string(truth) + " P:" + std::to_string(pred);
    thumbs.push_back(std::move(t));
  }
  minidl::viz::save_image_grid_png(path, thumbs, 4, 4, "Wrong predictions (T true, P predicted)");
}

}  // namespace mnist
