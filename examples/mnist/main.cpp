// examples/mnist/main.cpp - the `mnist` command: train, evaluate, predict.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <string>

#include "../common/onnx_model.hpp"
#include "args.hpp"
#include "data_folder.hpp"
#include "predict.hpp"
#include "report.hpp"
#include "train.hpp"

namespace {

const char* kUsage =
    "usage: mnist <command> [options]\n\n"
    "commands:\n"
    "  train      train the CNN with early stopping (checkpoints, curves, confusion matrix)\n"
    "  evaluate   evaluate a checkpoint on the test set\n"
    "  predict    classify your own images (of digits, or of the classes --classes names)\n"
    "  export     write a checkpoint as an ONNX model, for other engines\n\n"
    "Run 'mnist <command> --help' for the options of each, 'mnist --version' for the version.\n\n"
    "exit status: 0 done, 1 error (a file, folder or memory), 2 usage error or refusal (a bad\n"
    "flag, --out in use or holding a run), 3 training diverged, 130/143 stopped by "
    "SIGINT/SIGTERM\n";

int train(int argc, char** argv) {
  mnist::Args a("mnist train", "mnist train [options]");
  a.flag("data", mnist::default_data_dir(),
         "folder with the MNIST files ($MNIST_DIR, else data/mnist)")
      .flag("out", "results", "folder for checkpoints, history, metrics and pictures")
      .flag("epochs", "20", "maximum number of epochs")
      .flag("patience", "3",
            "stop after this many epochs without a better validation accuracy (0: never)")
      .flag("batch", "64", "minibatch size")
      .flag("lr", "0.001", "learning rate")
      .flag("lr-decay", "1", "multiply the learning rate by this after every epoch (1: constant)")
      .flag("optimizer", "adam", "adam or sgd")
      .flag("momentum", "0.9", "momentum of sgd")
      .flag("val", "5000",
            "last N training images held out for validation (0: select on the test set)")
      .flag("seed", "1", "seed of initialisation, shuffling, dropout and augmentation")
      .flag("threads", "0", "threads (0: all cores); results do not depend on it")
      .flag("limit-train", "0", "train on the first N training images only (0: all)")
      .flag("limit-test", "0", "test on the first N test images only (0: all)")
      .toggle("augment", "random shifts of up to 2 pixels and rotations of up to 10 degrees")
      .flag("stop-after", "0",
            "stop after this epoch as if interrupted (0: never); continue with --resume")
      .toggle("resume",
              "continue the run whose last.safetensors is in --out (its own settings and data; "
              "--epochs may extend it)")
      .toggle("overwrite", "replace the run already in --out (its files are removed first)");
  mnist::add_classes_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  if (!a.positional().empty())
    throw mnist::UsageError("mnist train: unexpected argument '" + a.positional()[0] + "'");
  mnist::TrainConfig c;
  c.data_dir = a.str("data");
  c.out_dir = a.str("out");
  c.epochs = static_cast<int>(a.integer("epochs", 1, 10000));
  c.patience = static_cast<int>(a.integer("patience", 0, 10000));
  c.batch = static_cast<int>(a.integer("batch", 1, 65536));
  c.lr = a.real("lr", 1e-12, 10);
  c.lr_decay = a.real("lr-decay", 1e-3, 1);
  c.optimizer = a.choice("optimizer", {"adam", "sgd"});
  c.momentum = a.real("momentum", 0, 0.999999);
  c.val = a.integer("val", 0, 59999);
  c.seed = static_cast<std::uint64_t>(a.integer("seed", 0, (1LL << 62)));
  c.threads = static_cast<int>(a.integer("threads", 0, 1024));
  c.limit_train = a.integer("limit-train", 0, 60000);
  c.limit_test = a.integer("limit-test", 0, 10000);
  c.augment = a.on("augment");
  c.resume = a.on("resume");
  c.overwrite = a.on("overwrite");
  c.stop_after = static_cast<int>(a.integer("stop-after", 0, 10000));
  // A names file is read now, so that a bad one stops the run before it starts, and kept by
  // its absolute path, so that --resume finds it from any working directory.
  mnist::classes_from_flag(a);
  c.classes = a.str("classes");
  if (c.classes != "digits" && c.classes != "fashion")
    c.classes = std::filesystem::absolute(c.classes).lexically_normal().string();
  if (c.resume && c.overwrite)
    throw mnist::UsageError(
        "mnist train: --resume continues the run in --out, --overwrite "
        "replaces it; give one of them");
  if (c.resume && a.given("epochs")) c.epochs_override = c.epochs;
  return mnist::run_training(c, a.given_flags());
}

// A checkpoint of the CNN, or an ONNX model that maps 28x28 images to one score per class.
minidl::Sequential<float> load_model(const std::string& path, const mnist::ClassNames& classes) {
  if (cli::is_onnx_file(path))
    return cli::import_onnx(path, 28, 28, static_cast<std::int64_t>(classes.names.size()));
  auto net = minidl::make_mnist_cnn<float>(0);
  minidl::load_checkpoint(path, net);
  return net;
}

int evaluate(int argc, char** argv) {
  mnist::Args a("mnist evaluate", "mnist evaluate --model FILE [options]");
  a.flag("model", "",
         "model to evaluate: a .safetensors checkpoint written by train, or an .onnx model")
      .flag("data", mnist::default_data_dir(),
            "folder with the MNIST files ($MNIST_DIR, else data/mnist)")
      .flag("out", "evaluation",
            "folder for confusion_matrix.png and wrong_predictions.png (not a training run's)")
      .flag("limit-test", "0", "evaluate the first N test images only (0: all)");
  mnist::add_classes_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.str("model").empty()) throw mnist::UsageError("mnist evaluate: --model FILE is required");
  const std::string taken = mnist::training_files_in(a.str("out"));
  if (!taken.empty())
    throw mnist::UsageError("mnist evaluate: " + a.str("out") + " holds a training run (" + taken +
                            "); give evaluate a folder of its own with --out");
  const mnist::ClassNames classes =
      mnist::data_classes(a.str("classes"), a.given("classes"), a.str("data"));
  auto net = load_model(a.str("model"), classes);
  const minidl::Mnist data = minidl::load_mnist(a.str("data"), classes.dataset);
  mnist::require_28x28(data, a.str("data"));
  std::vector<std::int64_t> test_idx = mnist::all_indices(data.test);
  const std::int64_t limit_test = a.integer("limit-test", 0, 10000);
  if (limit_test > 0 && limit_test < static_cast<std::int64_t>(test_idx.size()))
    test_idx.resize(static_cast<std::size_t>(limit_test));
  const mnist::Evaluation ev = mnist::evaluate(net, data.test, test_idx);
  std::printf("test accuracy %.4f (%lld/%lld), test loss %.4f\nmost confused pairs:\n%s",
              ev.accuracy, static_cast<long long>(ev.confusion.correct()),
              static_cast<long long>(ev.confusion.total()), ev.loss,
              mnist::most_confused_text(ev.confusion, 5, classes).c_str());
  std::filesystem::create_directories(a.str("out"));
  mnist::save_confusion_png(a.str("out") + "/confusion_matrix.png", ev.confusion, classes);
  mnist::save_wrong_predictions_png(a.str("out") + "/wrong_predictions.png", data.test, ev,
                                    classes);
  return 0;
}

int predict(int argc, char** argv) {
  mnist::Args a("mnist predict", "mnist predict --model FILE IMAGE...");
  a.flag("model", "",
         "model to use: a .safetensors checkpoint written by train, or an .onnx model");
  mnist::add_classes_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.str("model").empty()) throw mnist::UsageError("mnist predict: --model FILE is required");
  if (a.positional().empty())
    throw mnist::UsageError("mnist predict: give at least one image file");
  const mnist::ClassNames classes = mnist::classes_from_flag(a);
  if (!cli::is_onnx_file(a.str("model")))
    return mnist::run_predict(a.str("model"), a.positional(), classes);
  auto net = load_model(a.str("model"), classes);
  const std::size_t failed = mnist::predict_files(net, a.positional(), classes, stdout, stderr);
  if (failed == 0) return 0;
  std::fprintf(stderr, "mnist predict: %zu of %zu images could not be classified\n", failed,
               a.positional().size());
  return 1;
}

int export_model(int argc, char** argv) {
  mnist::Args a("mnist export", "mnist export --model CHECKPOINT --onnx FILE");
  a.flag("model", "", "checkpoint to export (a .safetensors file written by train)")
      .flag("onnx", "",
            "ONNX file to write (opset 13, batch size free; replaced only once complete)");
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.str("model").empty() || a.str("onnx").empty())
    throw mnist::UsageError("mnist export: --model CHECKPOINT and --onnx FILE are required");
  if (!a.positional().empty())
    throw mnist::UsageError("mnist export: unexpected argument '" + a.positional()[0] + "'");
  auto net = minidl::make_mnist_cnn<float>(0);
  minidl::load_checkpoint(a.str("model"), net);
  cli::export_onnx(net, 28, 28, a.str("onnx"));
  std::printf("wrote %s\n", a.str("onnx").c_str());
  return 0;
}

}  // namespace

static int run_command(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return mnist::kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "--version") {
    std::printf("mnist (minidl %s)\n", MINIDL_VERSION);
    return mnist::kExitOk;
  }
  try {
    if (command == "train") return train(argc, argv);
    if (command == "evaluate") return evaluate(argc, argv);
    if (command == "predict") return predict(argc, argv);
    if (command == "export") return export_model(argc, argv);
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "mnist: unknown command '%s' (train, evaluate, predict or export)\n",
                 command.c_str());
    return mnist::kExitUsage;
  } catch (const mnist::UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return mnist::kExitUsage;
  } catch (const mnist::TrainingDiverged& e) {
    std::fprintf(stderr, "mnist: %s\n", e.what());
    return mnist::kExitDiverged;
  } catch (const std::bad_alloc&) {  // from an allocation that does not say what it was for
    std::fprintf(stderr, "mnist: error: out of memory\n");
    return mnist::kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist: error: %s\n", e.what());
    return mnist::kExitError;
  }
}

int main(int argc, char** argv) {
  cli::DataParallel ranks(&argc, &argv);  // under mpirun: this rank of a data-parallel run
  return ranks.finish(run_command(argc, argv));
}
