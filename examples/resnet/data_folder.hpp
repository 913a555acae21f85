// examples/resnet/data_folder.hpp - where the resnet command looks for its data, and what its
// messages call the data it finds there.
#pragma once

#include <cstdlib>
#include <string>

#include "../common/classes.hpp"

namespace resnet {

// --data's default: $FASHION_MNIST_DIR, else where Debian's dataset-fashion-mnist puts the files.
inline std::string default_data_dir() {
  const char* env = std::getenv("FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

// The class names of --classes `spec` for the data in `dir`: Fashion-MNIST when the folder is
// the default one or its names were asked for (`spec_given`); any other spec names its own data.
inline cli::ClassNames data_classes(const std::string& spec, bool spec_given,
                                    const std::string& dir) {
  return cli::classes_for_data(spec, spec_given || spec != "fashion", dir, default_data_dir());
}

}  // namespace resnet
