// examples/resnet/main.cpp - the `resnet` command: train and evaluate a ResNet on Fashion-MNIST.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <string>

#include "../common/args.hpp"
#include "../common/classes.hpp"
#include "../common/onnx_model.hpp"
#include "../common/report.hpp"
#include "train.hpp"

namespace {

const char* kUsage =
    "usage: resnet <command> [options]\n\n"
    "commands:\n"
    "  train      train a ResNet on Fashion-MNIST (checkpoints, curves, confusion matrix)\n"
    "  evaluate   evaluate a checkpoint on the test set\n"
    "  export     write a checkpoint as an ONNX model, for other engines\n\n"
    "Run 'resnet <command> --help' for the options of each, 'resnet --version' for the version.\n\n"
    "exit status: 0 done, 1 error (a file, folder or memory), 2 usage error or refusal (a bad\n"
    "flag, --out in use or holding a run), 3 training diverged, 130/143 stopped by "
    "SIGINT/SIGTERM\n";

const char* kDataHelp =
    "folder with the Fashion-MNIST files ($FASHION_MNIST_DIR, else "
    "/usr/share/datasets/fashion-mnist)";

int depth_from(const cli::Args& a) {
  const int depth = static_cast<int>(a.integer("depth", 8, 1000));
  if ((depth - 2) % 6 != 0)
    throw cli::UsageError("resnet train: --depth must be 6n + 2 (8, 14, 20, 26, ...), got " +
                          a.str("depth"));
  return depth;
}

int train(int argc, char** argv) {
  const resnet::TrainConfig d;
  cli::Args a("resnet train", "resnet train [options]");
  a.flag("data", resnet::default_data_dir(), kDataHelp)
      .flag("out", d.out_dir, "folder for checkpoints, history, metrics and pictures")
      .flag("depth", std::to_string(d.depth), "layers: 6n + 2 (8, 14, 20, ...), n blocks a stage")
      .flag("width", std::to_string(d.width), "channels of the first stage (then 2x, 4x)")
      .toggle("zero-init-residual", "start each block's last batch norm at scale 0")
      .flag("epochs", std::to_string(d.epochs), "epochs (the schedule spans them all)")
      .flag("patience", std::to_string(d.patience),
            "stop after this many epochs without a better validation accuracy (0: never)")
      .flag("batch", std::to_string(d.batch), "minibatch size")
      .flag("optimizer", d.optimizer, "sgd (Nesterov momentum) or adamw")
      .flag("lr", cli::exact_decimal(d.lr), "peak learning rate of the schedule")
      .flag("momentum", cli::exact_decimal(d.momentum), "momentum of sgd")
      .flag("weight-decay", cli::exact_decimal(d.weight_decay),
            "weight decay of the weights (none on biases and batch-norm parameters)")
      .flag("schedule", d.schedule, "onecycle, or cosine after a linear warm-up; per step")
      .flag("pct-start", cli::exact_decimal(d.pct_start),
            "onecycle: share of the steps spent rising to --lr")
      .flag("warmup-steps", std::to_string(d.warmup_steps),
            "cosine: steps of linear warm-up from lr/10 (0: one epoch)")
      .flag("label-smoothing", cli::exact_decimal(d.label_smoothing), "label smoothing of the loss")
      .flag("crop-padding", std::to_string(d.crop_padding),
            "random crops of the image padded by this many zero pixels")
      .toggle("no-flip", "no random horizontal flips")
      .flag("erase", cli::exact_decimal(d.erase),
            "probability of erasing a random rectangle of a training image (0: never)")
      .toggle("no-augment", "neither crops, flips nor erasing")
      .flag("val", std::to_string(d.val),
            "last N training images held out for validation (0: select on the test set)")
      .flag("seed", std::to_string(d.seed), "seed of initialisation, shuffling and augmentation")
      .flag("threads", "0", "threads (0: all cores); results do not depend on it")
      .flag("limit-train", "0", "train on the first N training images only (0: all)")
      .flag("limit-test", "0", "test on the first N test images only (0: all)")
      .flag("stop-after", "0",
            "stop after this epoch as if interrupted (0: never); continue with --resume")
      .toggle("resume",
              "continue the run whose last.safetensors is in --out (its own settings and data)")
      .toggle("overwrite", "replace the run already in --out (its files are removed first)");
  a.flag("classes", "fashion",
         "class names: fashion (Fashion-MNIST), digits (MNIST) or a file with one name per line");
  if (!a.parse(argc, argv, 2)) return 0;
  if (!a.positional().empty())
    throw cli::UsageError("resnet train: unexpected argument '" + a.positional()[0] + "'");
  resnet::TrainConfig c;
  c.data_dir = a.str("data");
  c.out_dir = a.str("out");
  c.depth = depth_from(a);
  c.width = a.integer("width", 1, 1024);
  c.zero_init_residual = a.on("zero-init-residual");
  c.epochs = static_cast<int>(a.integer("epochs", 1, 10000));
  c.patience = static_cast<int>(a.integer("patience", 0, 10000));
  c.batch = static_cast<int>(a.integer("batch", 2, 65536));
  c.optimizer = a.choice("optimizer", {"sgd", "adamw"});
  c.lr = a.real("lr", 1e-12, 10);
  c.momentum = a.real("momentum", 1e-6, 0.999999);
  c.weight_decay = a.real("weight-decay", 0, 1);
  c.schedule = a.choice("schedule", {"onecycle", "cosine"});
  c.pct_start = a.real("pct-start", 0, 1);
  c.warmup_steps = a.integer("warmup-steps", 0, 1LL << 40);
  c.label_smoothing = a.real("label-smoothing", 0, 1);
  c.crop_padding = static_cast<int>(a.integer("crop-padding", 0, 14));
  c.flip = !a.on("no-flip");
  c.erase = a.real("erase", 0, 1);
  c.augment = !a.on("no-augment");
  c.val = a.integer("val", 0, 59999);
  c.seed = static_cast<std::uint64_t>(a.integer("seed", 0, (1LL << 62)));
  c.threads = static_cast<int>(a.integer("threads", 0, 1024));
  c.limit_train = a.integer("limit-train", 0, 60000);
  c.limit_test = a.integer("limit-test", 0, 10000);
  c.stop_after = static_cast<int>(a.integer("stop-after", 0, 10000));
  c.resume = a.on("resume");
  c.overwrite = a.on("overwrite");
  // A names file is read now, so that a bad one stops the run before it starts, and kept by
  // its absolute path, so that --resume finds it from any working directory.
  cli::classes_from_flag(a);
  c.classes = a.str("classes");
  if (c.classes != "digits" && c.classes != "fashion")
    c.classes = std::filesystem::absolute(c.classes).lexically_normal().string();
  if (c.resume && c.overwrite)
    throw cli::UsageError(
        "resnet train: --resume continues the run in --out, --overwrite replaces it; give one of "
        "them");
  // Toggles given on the command line are hyper-parameters by another name.
  std::vector<std::string> given;
  for (const auto& flag : a.given_flags())
    given.push_back(flag == "no-flip" ? "flip" : flag == "no-augment" ? "augment" : flag);
  return resnet::run_training(c, given);
}

// The network of a checkpoint written by `resnet train`, whose run state holds its shape.
minidl::Graph<float> load_resnet(const std::string& path) {
  const auto meta = minidl::read_safetensors(path).metadata;
  resnet::TrainConfig shape;
  try {
    shape.depth = std::stoi(meta.at("hp.depth"));
    shape.width = std::stoll(meta.at("hp.width"));
  } catch (const std::exception&) {
    minidl::fail(path,
                 ": metadata lacks a readable hp.depth and hp.width (not a checkpoint written by "
                 "resnet train?)");
  }
  auto net = minidl::make_resnet<float>(0, resnet::network_options(shape));
  minidl::load_checkpoint(path, net);
  return net;
}

int evaluate(int argc, char** argv) {
  cli::Args a("resnet evaluate", "resnet evaluate --model FILE [options]");
  a.flag("model", "", "checkpoint to evaluate (a .safetensors file written by resnet train)")
      .flag("data", resnet::default_data_dir(), kDataHelp)
      .flag("out", "evaluation",
            "folder for confusion_matrix.png and wrong_predictions.png (not a training run's)");
  a.flag("classes", "fashion",
         "class names: fashion (Fashion-MNIST), digits (MNIST) or a file with one name per line");
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.str("model").empty()) throw cli::UsageError("resnet evaluate: --model FILE is required");
  const std::string taken = cli::training_files_in(a.str("out"));
  if (!taken.empty())
    throw cli::UsageError("resnet evaluate: " + a.str("out") + " holds a training run (" + taken +
                          "); give evaluate a folder of its own with --out");
  auto net = load_resnet(a.str("model"));
  const cli::ClassNames classes =
      resnet::data_classes(a.str("classes"), a.given("classes"), a.str("data"));
  const minidl::Mnist data = minidl::load_mnist(a.str("data"), classes.dataset);
  const cli::Evaluation ev = cli::evaluate(net, data.test, cli::all_indices(data.test), 128,
                                           resnet::fashion_normalization());
  const cli::Evaluation mirrored =
      cli::evaluate(net, data.test, cli::all_indices(data.test), 128,
                    resnet::fashion_normalization(), /*mirror_average=*/true);
  std::printf(
      "test accuracy %.4f (%lld/%lld), test loss %.4f\naveraged with its mirror image: test "
      "accuracy %.4f (%lld/%lld), test loss %.4f\nmost confused pairs:\n%s",
      ev.accuracy, static_cast<long long>(ev.confusion.correct()),
      static_cast<long long>(ev.confusion.total()), ev.loss, mirrored.accuracy,
      static_cast<long long>(mirrored.confusion.correct()),
      static_cast<long long>(mirrored.confusion.total()), mirrored.loss,
      cli::most_confused_text(ev.confusion, 5, classes).c_str());
  std::filesystem::create_directories(a.str("out"));
  cli::save_confusion_png(a.str("out") + "/confusion_matrix.png", ev.confusion, classes);
  cli::save_wrong_predictions_png(a.str("out") + "/wrong_predictions.png", data.test, ev, classes);
  return 0;
}

int export_model(int argc, char** argv) {
  cli::Args a("resnet export", "resnet export --model CHECKPOINT --onnx FILE");
  a.flag("model", "", "checkpoint to export (a .safetensors file written by resnet train)")
      .flag("onnx", "",
            "ONNX file to write (opset 13, batch size free; replaced only once complete)");
  if (!a.parse(argc, argv, 2)) return 0;
  if (a.str("model").empty() || a.str("onnx").empty())
    throw cli::UsageError("resnet export: --model CHECKPOINT and --onnx FILE are required");
  if (!a.positional().empty())
    throw cli::UsageError("resnet export: unexpected argument '" + a.positional()[0] + "'");
  auto net = load_resnet(a.str("model"));
  cli::export_onnx(net, 28, 28, a.str("onnx"));
  std::printf("wrote %s\n", a.str("onnx").c_str());
  return 0;
}

}  // namespace

static int run_command(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return cli::kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "--version") {
    std::printf("resnet (minidl %s)\n", MINIDL_VERSION);
    return cli::kExitOk;
  }
  try {
    if (command == "train") return train(argc, argv);
    if (command == "evaluate") return evaluate(argc, argv);
    if (command == "export") return export_model(argc, argv);
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "resnet: unknown command '%s' (train, evaluate or export)\n",
                 command.c_str());
    return cli::kExitUsage;
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return cli::kExitUsage;
  } catch (const cli::TrainingDiverged& e) {
    std::fprintf(stderr, "resnet: %s\n", e.what());
    return cli::kExitDiverged;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "resnet: error: out of memory\n");
    return cli::kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return cli::kExitError;
  }
}

int main(int argc, char** argv) {
  cli::DataParallel ranks(&argc, &argv);  // under mpirun: this rank of a data-parallel run
  return ranks.finish(run_command(argc, argv));
}
