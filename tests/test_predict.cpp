// Tests of the mnist command's prediction and report side: several images
// with bad ones among them, class names (Fashion-MNIST's or a file's), the
// gallery of wrong predictions saying how many there are, and messages that
// name the data set.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../examples/mnist/classes.hpp"
#include "../examples/mnist/predict.hpp"
#include "../examples/mnist/report.hpp"
#include "minidl/io/checkpoint.hpp"
#include "photo_digits.hpp"
#include "test_support.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_predict {

using Bytes = std::vector<std::uint8_t>;
using minidl::testing::read_all;
using minidl::testing::write_all;

namespace {

struct TempDir : minidl::testing::TempDir {
  TempDir() : minidl::testing::TempDir("minidl_test_predict_") {}
};

// What a function writes to a C stream, read back.
struct Captured {
  std::FILE* file = std::tmpfile();
  ~Captured() { std::fclose(file); }
  std::string text() const {
    std::fflush(file);
    std::rewind(file);
    std::string s;
    for (int c; (c = std::fgetc(file)) != EOF;) s += static_cast<char>(c);
    return s;
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  return lines;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void write_digit_png(const std::string& path, int digit) {
  const minidl::testing::Coverage c =
      minidl::testing::draw_pen_digit(digit, 120, 100, 30, 10, 80, 0.1);
  minidl::write_gray_png(path, minidl::testing::photograph(c, minidl::testing::Shot{}));
}

}  // namespace

TEST_CASE("predict: every readable image is classified, every bad one named, the run fails") {
  TempDir dir;
  write_digit_png(dir.file("a.png"), 3);
  minidl::write_gray_png(dir.file("blank.png"), minidl::GrayImage{64, 48, Bytes(64 * 48, 200)});
  write_all(dir.file("notes.png"), "not a picture\n");
  write_digit_png(dir.file("c.png"), 7);
  const std::vector<std::string> paths = {dir.file("a.png"), dir.file("blank.png"),
                                          dir.file("notes.png"), dir.file("missing.png"),
                                          dir.file("c.png")};
  auto net = minidl::make_mnist_cnn<float>(1);
  minidl::save_checkpoint(dir.file("model.safetensors"), net);

  Captured out, err;
  CHECK(mnist::run_predict(dir.file("model.safetensors"), paths, mnist::digit_classes(), out.file,
                           err.file) == 1);
  const auto printed = lines_of(out.text()), problems = lines_of(err.text());
  REQUIRE(printed.size() == 2);
  CHECK(starts_with(printed[0], dir.file("a.png") + ": "));
  CHECK(starts_with(printed[1], dir.file("c.png") + ": "));
  REQUIRE(problems.size() == 4);
  CHECK(starts_with(problems[0], "mnist predict: " + dir.file("blank.png") + ": no digit found"));
  CHECK(starts_with(problems[1], "mnist predict: " + dir.file("notes.png") + ": not an image"));
  CHECK(starts_with(problems[2], "mnist predict: " + dir.file("missing.png") + ": file does not"));
  CHECK(problems[3] == "mnist predict: 3 of 5 images could not be classified");

  Captured out2, err2;
  CHECK(mnist::run_predict(dir.file("model.safetensors"), {paths[0], paths[4]},
                           mnist::digit_classes(), out2.file, err2.file) == 0);
  CHECK(lines_of(out2.text()).size() == 2);
  CHECK(err2.text().empty());
}

TEST_CASE("predict: the classes' names are printed") {
  mnist::Prediction p;
  p.label = 7;
  p.probabilities = {0.01, 0.02, 0.0, 0.0, 0.0, 0.1, 0.0, 0.8, 0.07, 0.0};
  CHECK(mnist::prediction_line("shoe.png", p, mnist::fashion_classes()) ==
        "shoe.png: Sneaker (80.0%)  top-3: Sneaker 80.0%, Sandal 10.0%, Bag 7.0%");
  CHECK(mnist::prediction_line("d.png", p, mnist::digit_classes()) ==
        "d.png: 7 (80.0%)  top-3: 7 80.0%, 5 10.0%, 8 7.0%");
}

TEST_CASE("class names: a file with one name per line, checked") {
  TempDir dir;
  const std::string ten = "zero\r\none\ntwo\nthree\n four \nfive\nsix\nseven\neight\nnine\n";
  write_all(dir.file("names.txt"), ten);
  const mnist::ClassNames c = mnist::read_class_names(dir.file("names.txt"), 10);
  CHECK(c.names.size() == 10);
  CHECK(c.names[0] == "zero");
  CHECK(c.names[4] == "four");
  CHECK(c.dataset.empty());

  write_all(dir.file("nine.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\n");
  CHECK_ERROR(mnist::read_class_names(dir.file("nine.txt"), 10), dir.file("nine.txt"),
              "9 class names, but the model has 10 classes");
  write_all(dir.file("eleven.txt"), ten + "ten\n");
  CHECK_ERROR(mnist::read_class_names(dir.file("eleven.txt"), 10), "11 class names");
  write_all(dir.file("gap.txt"), "a\nb\n\nd\n");
  CHECK_ERROR(mnist::read_class_names(dir.file("gap.txt"), 10), dir.file("gap.txt"),
              "line 3 is empty");
  write_all(dir.file("utf8.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nna\xc3\xafve\n");
  CHECK_ERROR(mnist::read_class_names(dir.file("utf8.txt"), 10), "line 10", "not printable ASCII");
  write_all(dir.file("long.txt"), std::string(30, 'x') + "\n");
  CHECK_ERROR(mnist::read_class_names(dir.file("long.txt"), 10), "line 1: class name of 30");
  CHECK_ERROR(mnist::read_class_names(dir.file("none.txt"), 10), dir.file("none.txt"),
              "cannot open", "digits, fashion or a file");
}

TEST_CASE("report: the gallery says how many predictions are wrong in all, with class names") {
  minidl::ImageDataset data;
  data.rows = data.cols = 28;
  const int n = 60;
  mnist::Evaluation ev;
  for (int i = 0; i < n; ++i) {
    data.labels.push_back(static_cast<std::uint8_t>(i % 10));
    ev.indices.push_back(i);
    ev.predictions.push_back(i < 25 ? (i + 1) % 10 : i % 10);  // the first 25 are wrong
  }
  data.images.assign(static_cast<std::size_t>(n) * 784, 0);
  const mnist::WrongPredictions w = mnist::wrong_predictions(data, ev, mnist::fashion_classes());
  CHECK(w.total == 25);
  CHECK(w.shown.size() == 16);
  CHECK(w.title.find("showing 16 of 25 wrong") != std::string::npos);
  CHECK(w.title.find("of 60") != std::string::npos);
  CHECK(w.shown[0].caption == "T:T-shirt/top P:Trouser");
  CHECK(w.shown[9].caption == "T:Ankle boot P:T-shirt/top");

  ev.predictions.assign(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < n; ++i) ev.predictions[static_cast<std::size_t>(i)] = i % 10;
  const mnist::WrongPredictions none = mnist::wrong_predictions(data, ev);
  CHECK(none.total == 0);
  CHECK(none.title == "No wrong predictions among 60 images");

  TempDir dir;
  mnist::save_wrong_predictions_png(dir.file("wrong.png"), data, ev, mnist::fashion_classes());
  CHECK(!read_all(dir.file("wrong.png")).empty());
}

TEST_CASE("report: most confused pairs and the confusion matrix use the class names") {
  minidl::ConfusionMatrix cm(10);
  for (int i = 0; i < 5; ++i) cm.add(9, 7);
  cm.add(0, 6);
  CHECK(mnist::most_confused_text(cm, 2, mnist::fashion_classes()) ==
        "  true Ankle boot predicted as Sneaker: 5 times\n"
        "  true T-shirt/top predicted as Shirt: 1 times\n");
  TempDir dir;
  mnist::save_confusion_png(dir.file("cm.png"), cm, mnist::fashion_classes());
  CHECK(!read_all(dir.file("cm.png")).empty());
}

TEST_CASE("evaluate: averaging with the mirror images averages each image's two logits") {
  // Five 6x5 images with labels, a network that is not mirror-symmetric.
  minidl::ImageDataset data;
  data.rows = 6;
  data.cols = 5;
  minidl::Rng rng(3);
  for (int i = 0; i < 5 * 30; ++i) data.images.push_back(static_cast<std::uint8_t>(rng.below(256)));
  for (int i = 0; i < 5; ++i) data.labels.push_back(static_cast<std::uint8_t>(i % 3));
  minidl::Sequential<float> net;
  net.add("conv", minidl::Conv2d<float>(1, 2, 3, 1, 1));
  net.add("flatten", minidl::Flatten<float>());
  net.add("fc", minidl::Linear<float>(2 * 30, 10));
  net.reset_parameters(4);
  const std::vector<std::int64_t> idx = {4, 0, 2, 1, 3};
  const minidl::Normalization norm{0.3f, 0.4f};
  // The oracle: each image and its mirror built by hand, one at a time.
  double loss = 0;
  std::vector<std::int32_t> expected;
  int differs = 0;
  for (std::int64_t i : idx) {
    minidl::Tensor<float> x({1, 1, 6, 5}), m({1, 1, 6, 5});
    for (int r = 0; r < 6; ++r)
      for (int q = 0; q < 5; ++q) {
        const float v =
            norm(static_cast<float>(data.image(static_cast<std::size_t>(i))[r * 5 + q]));
        x[r * 5 + q] = v;
        m[r * 5 + (4 - q)] = v;
      }
    const minidl::Context eval{minidl::Mode::Eval, 0};
    const minidl::Tensor<float> a = net.forward(x, eval).clone();
    const minidl::Tensor<float> b = net.forward(m, eval).clone();
    minidl::Tensor<float> avg({1, 10});
    for (int k = 0; k < 10; ++k) avg[k] = 0.5f * (a[k] + b[k]);
    differs += minidl::argmax_rows(a)[0] != minidl::argmax_rows(avg)[0] || a[0] != avg[0];
    const std::int32_t label = data.labels[static_cast<std::size_t>(i)];
    minidl::CrossEntropyLoss<float> xent;
    loss += static_cast<double>(xent.forward(avg, &label));
    expected.push_back(minidl::argmax_rows(avg)[0]);
  }
  CHECK(differs > 0);  // the mirror images change the logits
  for (std::int64_t batch : {2, 5}) {
    const cli::Evaluation ev = cli::evaluate(net, data, idx, batch, norm, true);
    CHECK(ev.predictions == expected);
    CHECK(ev.loss == doctest::Approx(loss / 5).epsilon(1e-5));
    const cli::Evaluation plain = cli::evaluate(net, data, idx, batch, norm);
    CHECK(plain.loss != doctest::Approx(ev.loss).epsilon(1e-5));
  }
}

TEST_CASE("data: messages about another data set in MNIST's files do not say MNIST") {
  TempDir dir;
  const std::string msg = minidl::testing::error_message(
      [&] { minidl::load_mnist(dir.file("nope"), "Fashion-MNIST"); });
  CHECK(msg.find("Fashion-MNIST folder '" + dir.file("nope") + "' does not exist") !=
        std::string::npos);
  CHECK(msg.find("MNIST_DIR") == std::string::npos);
  CHECK(msg.find("download_mnist") == std::string::npos);
  const std::string files =
      minidl::testing::error_message([&] { minidl::load_mnist(dir.path.string(), ""); });
  CHECK(files.find("data file train-") != std::string::npos);
  CHECK(files.find("not found in folder") != std::string::npos);
  CHECK(files.find("MNIST") == std::string::npos);
  CHECK_ERROR(minidl::load_mnist(dir.path.string()), "MNIST file train-", "MNIST_DIR");
}

}  // namespace test_predict
