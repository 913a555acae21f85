// examples/common/report.hpp - evaluation of a model on a dataset, and the files that report it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "classes.hpp"
#include "minidl/data/batch.hpp"
#include "minidl/data/crop_flip.hpp"
#include "minidl/io/atomic_file.hpp"
#include "minidl/minidl.hpp"
#include "minidl/viz/plots.hpp"

namespace cli {

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
// `batch` (the training batch size, so the layers' buffers are shared), with
// the pixels normalised as in training. With `mirror_average`, each image is
// also run mirrored left to right and the two outputs' logits are averaged
// (for models trained with random flips).
inline Evaluation evaluate(Sequential<float>& net, const ImageDataset& data,
                           const std::vector<std::int64_t>& indices, std::int64_t batch = 64,
                           minidl::Normalization norm = {}, bool mirror_average = false) {
  Evaluation ev;
  ev.indices = indices;
  ev.predictions.reserve(indices.size());
  Tensor<float> x, averaged;
  std::vector<std::int32_t> labels;
  minidl::CrossEntropyLoss<float> xent;
  double loss_sum = 0;
  const minidl::Context eval{minidl::Mode::Eval, 0};
  const auto n = static_cast<std::int64_t>(indices.size());
  for (std::int64_t b = 0; b < n; b += batch) {
    const std::int64_t count = std::min(batch, n - b);
    minidl::make_batch(data, indices.data() + b, count, x, labels, norm);
    const Tensor<float>* output = &net.forward(x, eval);
    if (mirror_average) {
      // The network's output buffer is reused by the next forward: keep a copy.
      averaged.resize(output->shape());
      averaged.copy_from(*output);
      minidl::mirror_images(x);
      const Tensor<float>& mirrored = net.forward(x, eval);
      for (std::int64_t i = 0; i < averaged.size(); ++i)
        averaged[i] = 0.5f * (averaged[i] + mirrored[i]);
      output = &averaged;
    }
    const Tensor<float>& logits = *output;
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
inline std::string most_confused_text(const minidl::ConfusionMatrix& cm, std::size_t k,
                                      const ClassNames& classes = digit_classes()) {
  std::string out;
  for (const auto& c : cm.most_confused(k))
    out += "  true " + classes.names.at(static_cast<std::size_t>(c.truth)) + " predicted as " +
           classes.names.at(static_cast<std::size_t>(c.predicted)) + ": " +
           std::to_string(c.count) + " times\n";
  return out;
}

inline void save_confusion_png(const std::string& path, const minidl::ConfusionMatrix& cm,
                               const ClassNames& classes = digit_classes()) {
  minidl::viz::save_confusion_matrix_png(
      path, cm.counts(), static_cast<int>(classes.names.size()), classes.names,
      classes.dataset.empty() ? "Confusion matrix" : "Confusion matrix, " + classes.dataset);
}

// Up to `max_shown` misclassified images in dataset order, captioned
// "T:<true> P:<predicted>", under a title that says how many there are in all.
struct WrongPredictions {
  std::vector<minidl::viz::Thumbnail> shown;
  std::size_t total = 0;
  std::string title;
};

inline WrongPredictions wrong_predictions(const ImageDataset& data, const Evaluation& ev,
                                          const ClassNames& classes = digit_classes(),
                                          std::size_t max_shown = 16) {
  WrongPredictions w;
  for (std::size_t i = 0; i < ev.indices.size(); ++i) {
    const auto idx = static_cast<std::size_t>(ev.indices[i]);
    const int truth = data.labels[idx], pred = ev.predictions[i];
    if (truth == pred) continue;
    if (++w.total > max_shown) continue;
    minidl::viz::Thumbnail t;
    t.width = static_cast<int>(data.cols);
    t.height = static_cast<int>(data.rows);
    t.pixels.assign(data.image(idx), data.image(idx) + data.rows * data.cols);
    t.caption = "T:" + classes.names.at(static_cast<std::size_t>(truth)) +
                " P:" + classes.names.at(static_cast<std::size_t>(pred));
    w.shown.push_back(std::move(t));
  }
  const std::string of = std::to_string(ev.indices.size());
  w.title = w.total == 0
                ? "No wrong predictions among " + of + " images"
                : "Wrong predictions: showing " + std::to_string(w.shown.size()) + " of " +
                      std::to_string(w.total) + " wrong (of " + of + "; T true, P predicted)";
  return w;
}

inline void save_wrong_predictions_png(const std::string& path, const ImageDataset& data,
                                       const Evaluation& ev,
                                       const ClassNames& classes = digit_classes()) {
  const WrongPredictions w = wrong_predictions(data, ev, classes);
  minidl::viz::save_image_grid_png(path, w.shown, 4, 4, w.title);
}

}  // namespace cli
