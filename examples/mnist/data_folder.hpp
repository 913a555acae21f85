// examples/mnist/data_folder.hpp - where the mnist command looks for its data, and what its
// messages call the data it finds there.
#pragma once

#include <cstdlib>
#include <string>

#include "classes.hpp"

namespace mnist {

// --data's default: $MNIST_DIR, else data/mnist.
inline std::string default_data_dir() {
  const char* env = std::getenv("MNIST_DIR");
  return env && *env ? env : "data/mnist";
}

// The class names of --classes `spec` for the data in `dir`: MNIST when the folder is the
// default one or the digits were asked for (`spec_given`); any other spec names its own data.
inline ClassNames data_classes(const std::string& spec, bool spec_given, const std::string& dir) {
  return classes_for_data(spec, spec_given || spec != "digits", dir, default_data_dir());
}

}  // namespace mnist
