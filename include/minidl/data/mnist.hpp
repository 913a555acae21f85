// minidl/data/mnist.hpp - in-memory uint8 image datasets and the MNIST loader.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/data/idx.hpp"

namespace minidl {

// Images and their class labels, kept as the bytes the files hold; conversion
// to float happens per batch.
struct ImageDataset {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> images;  // size() images of rows*cols bytes, one after another
  std::vector<std::uint8_t> labels;  // one class per image

  std::size_t size() const { return labels.size(); }
  const std::uint8_t* image(std::size_t i) const {
    if (i >= size()) fail("ImageDataset::image: index ", i, " out of range (", size(), " images)");
    return images.data() + i * static_cast<std::size_t>(rows * cols);
  }
};

struct Mnist {
  ImageDataset train, test;
};

// Path of the MNIST file `stem` (e.g. "train-images-idx3-ubyte") in `dir`. The
// files circulate as "train-images-idx3-ubyte" and "train-images.idx3-ubyte",
// gzipped or not; all four spellings are accepted. Messages call the data
// `dataset` (Fashion-MNIST uses the same file names; empty: "data").
inline std::string find_mnist_file(const std::string& dir, const std::string& stem,
                                   const std::string& dataset = "MNIST") {
  namespace fs = std::filesystem;
  std::string dotted = stem;
  const std::size_t dash = dotted.find("-idx");
  if (dash != std::string::npos) dotted[dash] = '.';
  std::vector<std::string> names = {stem + ".gz", stem};
  if (dotted != stem) names.insert(names.end(), {dotted + ".gz", dotted});

  std::error_code ec;
  for (const std::string& name : names)
    if (fs::is_regular_file(fs::path(dir) / name, ec)) return (fs::path(dir) / name).string();

  const std::string what = dataset.empty() ? "data" : dataset;
  const std::string fix =
      dataset == "MNIST" ? "; set MNIST_DIR or --data to the folder that holds the MNIST files, "
                           "or run scripts/download_mnist.sh " +
                               dir
                         : "; set --data to the folder that holds the " + what + " files";
  if (!fs::is_directory(dir, ec))
    fail(what, " folder '", dir, "' ", fs::exists(dir, ec) ? "is not a folder" : "does not exist",
         fix);
  std::string tried;
  for (const std::string& name : names) tried += (tried.empty() ? "" : ", ") + name;
  fail(what, " file ", stem, " not found in folder '", dir, "' (tried ", tried, ")", fix);
}

// Loads an image file and its label file (IDX, raw or gzip), checking that
// they pair up and that every label is below `num_classes`.
inline ImageDataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                                     int num_classes = 10) {
  IdxImages img = read_idx_images(images_path);
  ImageDataset ds;
  ds.labels = read_idx_labels(labels_path);
  if (static_cast<std::int64_t>(ds.labels.size()) != img.count)
    fail(images_path, " holds ", img.count, " images but ", labels_path, " holds ",
         ds.labels.size(), " labels; they must pair up one to one");
  for (std::size_t i = 0; i < ds.labels.size(); ++i)
    if (ds.labels[i] >= num_classes)
      fail(labels_path, ": label ", int{ds.labels[i]}, " at index ", i, " is outside 0..",
           num_classes - 1);
  ds.rows = img.rows;
  ds.cols = img.cols;
  ds.images = std::move(img.pixels);
  return ds;
}

// Loads the MNIST training and test sets from `dir` (or those of another
// data set in MNIST's files, called `dataset` in messages).
inline Mnist load_mnist(const std::string& dir, const std::string& dataset = "MNIST") {
  Mnist m;
  m.train = load_idx_dataset(find_mnist_file(dir, "train-images-idx3-ubyte", dataset),
                             find_mnist_file(dir, "train-labels-idx1-ubyte", dataset));
  m.test = load_idx_dataset(find_mnist_file(dir, "t10k-images-idx3-ubyte", dataset),
                            find_mnist_file(dir, "t10k-labels-idx1-ubyte", dataset));
  if (m.train.rows != m.test.rows || m.train.cols != m.test.cols)
    fail(dataset.empty() ? "data" : dataset, " folder '", dir, "': training images are ",
         m.train.rows, "x", m.train.cols, " but test images are ", m.test.rows, "x", m.test.cols);
  return m;
}

}  // namespace minidl
