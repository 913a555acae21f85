// examples/common/classes.hpp - what the ten classes are called, and what the data set is.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "args.hpp"
#include "minidl/core/error.hpp"

namespace cli {

// The names shown in messages, the confusion matrix, the gallery of wrong
// predictions and predict's output. `dataset` is what messages and titles
// call the data ("MNIST", "Fashion-MNIST"; empty when only the names are known).
struct ClassNames {
  std::string dataset;
  std::vector<std::string> names;
};

inline ClassNames digit_classes() {
  return {"MNIST", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}};
}

// Fashion-MNIST's labels 0..9, as its authors list them.
inline ClassNames fashion_classes() {
  return {"Fashion-MNIST",
          {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"}};
}

// Names from a text file, one per line in label order (a final newline, CR
// line ends and spaces around a name are allowed). Names are drawn with the
// pictures' ASCII bitmap font, so they must be printable ASCII.
inline ClassNames read_class_names(const std::string& path, std::size_t count) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    minidl::fail(path,
                 ": cannot open the class names file (--classes takes digits, fashion or a "
                 "file with one name per line)");
  ClassNames c{"", {}};
  std::string line;
  for (int number = 1; std::getline(f, line); ++number) {
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    const std::string name = first == std::string::npos ? "" : line.substr(first, last - first + 1);
    if (name.empty())
      minidl::fail(path, ": line ", number, " is empty; give one class name per line");
    for (char ch : name)
      if (ch < ' ' || ch > '~')
        minidl::fail(path, ": line ", number, " holds a character that is not printable ASCII");
    if (name.size() > 24)
      minidl::fail(path, ": line ", number, ": class name of ", name.size(),
                   " characters, at most 24 fit the pictures");
    c.names.push_back(name);
    if (c.names.size() > count) break;  // too many: reported below, without reading on
  }
  if (c.names.size() != count)
    minidl::fail(path, ": ", c.names.size(), " class names, but the model has ", count,
                 " classes (one name per line)");
  return c;
}

// The --classes flag: digits, fashion, or a file of names.
inline void add_classes_flag(Args& a) {
  a.flag("classes", "digits",
         "class names: digits (MNIST), fashion (Fashion-MNIST) or a file with one name per line");
}

// The names that a --classes value stands for.
inline ClassNames classes_from_spec(const std::string& spec, std::size_t count = 10) {
  if (spec == "digits") return digit_classes();
  if (spec == "fashion") return fashion_classes();
  return read_class_names(spec, count);
}

inline ClassNames classes_from_flag(const Args& a, std::size_t count = 10) {
  return classes_from_spec(a.str("classes"), count);
}

// True when `a` and `b` name the same folder, through links or spelled differently.
inline bool same_folder(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;
  const auto normal = [](const std::string& p) {
    std::error_code absolute_ec;
    const fs::path n = fs::absolute(p, absolute_ec).lexically_normal();
    return n.has_filename() ? n : n.parent_path();  // "x/" as "x"
  };
  return normal(a) == normal(b);
}

// The names of --classes `spec` for the data in `dir`. A folder given with --data may hold any
// IDX data set: unless the names were asked for (`named`) or `dir` is the command's default
// folder, the data set stays unnamed, so that messages call it "data" and give no hint meant
// for one data set (MNIST_DIR, the download script).
inline ClassNames classes_for_data(const std::string& spec, bool named, const std::string& dir,
                                   const std::string& default_dir) {
  ClassNames classes = classes_from_spec(spec);
  if (!named && !same_folder(dir, default_dir)) classes.dataset.clear();
  return classes;
}

}  // namespace cli
