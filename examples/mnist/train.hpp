// examples/mnist/train.hpp - training with early stopping, checkpoints and --resume.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "minidl/io/checkpoint.hpp"
#include "report.hpp"

namespace mnist {

struct TrainConfig {
  std::string data_dir = "data/mnist";
  std::string out_dir = "results";
  int epochs = 20;
  int patience = 3;
  int batch = 64;
  double lr = 1e-3;
  double lr_decay = 1.0;  // learning rate of epoch e: lr * lr_decay^(e-1)
  std::string optimizer = "adam";
  double momentum = 0.9;
  std::int64_t val = 5000;
  std::uint64_t seed = 1;
  int threads = 0;               // 0: OpenMP's default
  std::int64_t limit_train = 0;  // 0: all training images
  bool augment = false;
  bool resume = false;
  int stop_after = 0;       // > 0: return after this epoch, as if interrupted (tests resume)
  int epochs_override = 0;  // > 0 with resume: extend or shorten the run to this many epochs
};

// One row of history.csv.
struct EpochRecord {
  int epoch = 0;
  double train_loss = 0, train_acc = 0, val_loss = NAN, val_acc = NAN, test_loss = 0, test_acc = 0,
         seconds = 0;
};

inline const char* kHistoryHeader =
    "epoch,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,seconds";

inline std::string history_csv(const std::vector<EpochRecord>& h) {
  std::string s = std::string(kHistoryHeader) + "\n";
  char line[512];
  for (const auto& r : h) {
    // %.17g: the values round-trip exactly through a checkpoint.
    std::snprintf(line, sizeof line, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", r.epoch,
                  r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.test_loss, r.test_acc,
                  r.seconds);
    s += line;
  }
  return s;
}

inline std::vector<EpochRecord> parse_history(const std::string& csv, const std::string& path) {
  std::vector<EpochRecord> h;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  if (line != kHistoryHeader)
    minidl::fail(path, ": metadata \"history\" does not start with the history.csv header");
  while (std::getline(in, line)) {
    EpochRecord r;
    if (std::sscanf(line.c_str(), "%d,%lg,%lg,%lg,%lg,%lg,%lg,%lg", &r.epoch, &r.train_loss,
                    &r.train_acc, &r.val_loss, &r.val_acc, &r.test_loss, &r.test_acc,
                    &r.seconds) != 8)
      minidl::fail(path, ": unreadable history row '", line, "'");
    h.push_back(r);
  }
  return h;
}

// Hyper-parameters that define a run; stored in checkpoints as "hp.<name>".
// The shortest decimal text that reads back as exactly `x`.
inline std::string exact_decimal(double x) {
  char buf[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

inline std::map<std::string, std::string> hyperparameters(const TrainConfig& c) {
  return {{"epochs", std::to_string(c.epochs)},    {"patience", std::to_string(c.patience)},
          {"batch", std::to_string(c.batch)},      {"lr", exact_decimal(c.lr)},
          {"lr_decay", exact_decimal(c.lr_decay)}, {"optimizer", c.optimizer},
          {"momentum", exact_decimal(c.momentum)}, {"val", std::to_string(c.val)},
          {"seed", std::to_string(c.seed)},        {"limit_train", std::to_string(c.limit_train)},
          {"augment", c.augment ? "1" : "0"}};
}

inline void apply_hyperparameters(TrainConfig& c, const std::map<std::string, std::string>& meta,
                                  const std::string& path) {
  auto get = [&](const std::string& key) {
    auto it = meta.find("hp." + key);
    if (it == meta.end())
      minidl::fail(path, ": metadata lacks \"hp.", key, "\" (not a training checkpoint?)");
    return it->second;
  };
  try {
    c.epochs = std::stoi(get("epochs"));
    c.patience = std::stoi(get("patience"));
    c.batch = std::stoi(get("batch"));
    c.lr = std::stod(get("lr"));
    // Checkpoints written before the schedule existed train at a constant rate.
    c.lr_decay = meta.count("hp.lr_decay") ? std::stod(get("lr_decay")) : 1.0;
    c.optimizer = get("optimizer");
    c.momentum = std::stod(get("momentum"));
    c.val = std::stoll(get("val"));
    c.seed = std::stoull(get("seed"));
    c.limit_train = std::stoll(get("limit_train"));
    c.augment = get("augment") == "1";
  } catch (const std::logic_error&) {
    minidl::fail(path, ": a hyper-parameter in the metadata is not a number");
  }
}

// Prints "\r[=====>    ] 12800/55000 loss 0.1234 5300 img/s ETA 8s" on terminals.
class ProgressBar {
 public:
  explicit ProgressBar(std::int64_t total)
      : total_(total), enabled_(::isatty(::fileno(stdout)) != 0) {}
  void update(std::int64_t done, double running_loss, double seconds) {
    if (!enabled_) return;
    const int width = 30,
              filled = static_cast<int>(width * done / std::max<std::int64_t>(total_, 1));
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    std::printf("\r  [%s%s] %6" PRId64 "/%" PRId64 " loss %.4f %6.0f img/s ETA %3.0fs ",
                std::string(static_cast<std::size_t>(filled), '=').c_str(),
                std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total_,
                running_loss, rate, eta);
    std::fflush(stdout);
  }
  void finish() {
    if (enabled_) std::printf("\r%100s\r", "");
  }

 private:
  std::int64_t total_;
  bool enabled_;
};

inline std::unique_ptr<minidl::Optimizer<float>> make_optimizer(const TrainConfig& c,
                                                                Sequential<float>& net) {
  if (c.optimizer == "sgd") {
    minidl::SgdOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    return std::make_unique<minidl::SGD<float>>(net.parameters(), o);
  }
  minidl::AdamOptions o;
  o.lr = c.lr;
  return std::make_unique<minidl::Adam<float>>(net.parameters(), o);
}

inline void save_curves(const std::string& path, const std::vector<EpochRecord>& h, int best_epoch,
                        bool has_val) {
  using minidl::viz::Series;
  Series tl{"train", {}, {31, 119, 180}}, vl{"validation", {}, {255, 127, 14}},
      sl{"test", {}, {44, 160, 44}};
  Series ta = tl, va = vl, sa = sl;
  for (const auto& r : h) {
    tl.values.push_back(r.train_loss);
    vl.values.push_back(r.val_loss);
    sl.values.push_back(r.test_loss);
    ta.values.push_back(r.train_acc);
    va.values.push_back(r.val_acc);
    sa.values.push_back(r.test_acc);
  }
  std::vector<Series> loss{tl}, acc{ta};
  if (has_val) {
    loss.push_back(vl);
    acc.push_back(va);
  }
  loss.push_back(sl);
  acc.push_back(sa);
  minidl::viz::save_training_curves_png(path, loss, acc, best_epoch);
}

inline void write_metrics_json(const std::string& path, const TrainConfig& c,
                               const Evaluation& test, int best_epoch, int epochs_run,
                               double wall_seconds) {
  std::ostringstream j;
  j.precision(10);
  j << "{\n  \"test_accuracy\": " << test.accuracy << ",\n  \"test_loss\": " << test.loss
    << ",\n  \"best_epoch\": " << best_epoch << ",\n  \"epochs_run\": " << epochs_run
    << ",\n  \"per_class_accuracy\": [";
  const auto pca = test.confusion.per_class_accuracy();
  for (std::size_t i = 0; i < pca.size(); ++i) j << (i ? ", " : "") << pca[i];
  j << "],\n  \"confusion_matrix\": [";
  for (int t = 0; t < 10; ++t) {
    j << (t ? ",\n    [" : "\n    [");
    for (int p = 0; p < 10; ++p) j << (p ? ", " : "") << test.confusion.at(t, p);
    j << "]";
  }
  j << "\n  ],\n  \"hyperparameters\": {";
  bool first = true;
  for (const auto& [k, v] : hyperparameters(c)) {
    const bool numeric = k != "optimizer";
    j << (first ? "\n" : ",\n") << "    \"" << k << "\": " << (numeric ? v : "\"" + v + "\"");
    first = false;
  }
  j << "\n  },\n  \"seed\": " << c.seed << ",\n  \"threads\": " << minidl::num_threads()
    << ",\n  \"wall_seconds\": " << wall_seconds << "\n}\n";
  minidl::write_file_atomic(path, j.str());
}

inline int run_training(TrainConfig c) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  if (c.threads > 0) minidl::set_num_threads(c.threads);
  const std::string last_path = c.out_dir + "/last.safetensors",
                    best_path = c.out_dir + "/best.safetensors";

  // Resuming: the run's own hyper-parameters come from its checkpoint.
  std::map<std::string, std::string> resume_meta;
  if (c.resume) {
    if (!std::filesystem::exists(last_path))
      minidl::fail(last_path, ": no checkpoint to resume from (train without --resume first)");
    resume_meta = minidl::read_safetensors(last_path).metadata;
    apply_hyperparameters(c, resume_meta, last_path);
    if (c.epochs_override > 0) c.epochs = c.epochs_override;
  }

  std::printf("loading MNIST from %s\n", c.data_dir.c_str());
  const minidl::Mnist data = minidl::load_mnist(c.data_dir);
  const auto n_train_all = static_cast<std::int64_t>(data.train.size());
  if (c.val >= n_train_all)
    minidl::fail("--val ", c.val, " leaves no training images (the set has ", n_train_all, ")");
  std::vector<std::int64_t> train_idx, val_idx;
  for (std::int64_t i = 0; i < n_train_all - c.val; ++i) train_idx.push_back(i);
  for (std::int64_t i = n_train_all - c.val; i < n_train_all; ++i) val_idx.push_back(i);
  if (c.limit_train > 0 && c.limit_train < static_cast<std::int64_t>(train_idx.size()))
    train_idx.resize(static_cast<std::size_t>(c.limit_train));
  const std::vector<std::int64_t> test_idx = all_indices(data.test);
  const bool has_val = !val_idx.empty();
  std::filesystem::create_directories(c.out_dir);

  auto net = minidl::make_mnist_cnn<float>(c.seed);
  auto optimizer = make_optimizer(c, net);
  minidl::CrossEntropyLoss<float> xent;
  minidl::EarlyStopping stopper(c.patience);
  std::vector<EpochRecord> history;
  int start_epoch = 1;

  if (c.resume) {
    resume_meta = minidl::load_checkpoint(last_path, net, optimizer.get());
    history = parse_history(resume_meta["history"], last_path);
    stopper.restore(std::stod(resume_meta["early_stopping.best"]),
                    std::stoi(resume_meta["early_stopping.best_epoch"]),
                    std::stoi(resume_meta["early_stopping.bad_epochs"]));
    start_epoch = static_cast<int>(history.size()) + 1;
    std::printf("resuming %s after epoch %d (optimizer step %lld)\n", last_path.c_str(),
                start_epoch - 1, static_cast<long long>(optimizer->step_count()));
  }

  std::printf("\n%s\n", net.summary({c.batch, 1, 28, 28}).c_str());
  std::printf("data: %zu training, %zu validation, %zu test images\n", train_idx.size(),
              val_idx.size(), test_idx.size());
  std::printf("hyper-parameters:");
  for (const auto& [k, v] : hyperparameters(c)) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf(" threads=%d\n", minidl::num_threads());
  if (!has_val)
    std::printf(
        "warning: --val 0 selects the checkpoint by test accuracy (the reference recipe); the test "
        "accuracy reported is then optimistic\n");
  std::printf("\n");

  const minidl::Augmentation augmentation;
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> order = train_idx;
  const auto n_train = static_cast<std::int64_t>(train_idx.size());

  for (int epoch = start_epoch; epoch <= c.epochs && !stopper.should_stop(); ++epoch) {
    const auto t_epoch = clock::now();
    // The schedule depends on the epoch only, so a resumed run continues it.
    optimizer->set_learning_rate(c.lr * std::pow(c.lr_decay, epoch - 1));
    // The order of epoch e depends on (seed, e) only: a resumed run replays it.
    order = train_idx;
    minidl::Rng(minidl::hash64(c.seed, 0x5A1F, static_cast<std::uint64_t>(epoch)))
        .shuffle(order.begin(), order.end());
    ProgressBar bar(n_train);
    double loss_sum = 0;
    std::int64_t correct = 0, seen = 0;
    for (std::int64_t b = 0; b < n_train; b += c.batch) {
      const std::int64_t count = std::min<std::int64_t>(c.batch, n_train - b);
      minidl::make_batch(data.train, order.data() + b, count, x, labels, {},
                         c.augment ? &augmentation : nullptr, c.seed,
                         static_cast<std::uint64_t>(epoch));
      const Tensor<float>* logits = nullptr;
      float loss = 0;
      try {
        loss = minidl::train_step(net, xent, *optimizer, x, labels.data(), &logits);
      } catch (const minidl::Error& e) {
        minidl::fail("epoch ", epoch, ", batch ", b / c.batch + 1, ": ", e.what(), " (", last_path,
                     " holds the last completed epoch)");
      }
      const auto pred = minidl::argmax_rows(*logits);
      for (std::int64_t i = 0; i < count; ++i)
        correct += pred[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)];
      loss_sum += static_cast<double>(loss) * static_cast<double>(count);
      seen += count;
      if ((b / c.batch) % 20 == 0)
        bar.update(seen, loss_sum / static_cast<double>(seen),
                   std::chrono::duration<double>(clock::now() - t_epoch).count());
    }
    bar.finish();
    EpochRecord r;
    r.epoch = epoch;
    r.seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    r.train_loss = loss_sum / static_cast<double>(seen);
    r.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    if (has_val) {
      const Evaluation v = evaluate(net, data.train, val_idx, c.batch);
      r.val_loss = v.loss;
      r.val_acc = v.accuracy;
    }
    const Evaluation t = evaluate(net, data.test, test_idx, c.batch);
    r.test_loss = t.loss;
    r.test_acc = t.accuracy;
    history.push_back(r);

    const bool improved = stopper.update(has_val ? r.val_acc : r.test_acc, epoch);
    char val_text[64] = "";
    if (has_val)
      std::snprintf(val_text, sizeof val_text, " | val loss %.4f acc %.4f", r.val_loss, r.val_acc);
    std::printf("epoch %2d/%d  train loss %.4f acc %.4f%s | test loss %.4f acc %.4f | %.1fs%s\n",
                epoch, c.epochs, r.train_loss, r.train_acc, val_text, r.test_loss, r.test_acc,
                r.seconds, improved ? "  * best" : "");
    std::fflush(stdout);

    auto meta = hyperparameters(c);
    std::map<std::string, std::string> ckpt_meta;
    for (auto& [k, v] : meta) ckpt_meta["hp." + k] = v;
    ckpt_meta["epoch"] = std::to_string(epoch);
    ckpt_meta["history"] = history_csv(history);
    ckpt_meta["early_stopping.best"] = exact_decimal(stopper.best());
    ckpt_meta["early_stopping.best_epoch"] = std::to_string(stopper.best_epoch());
    ckpt_meta["early_stopping.bad_epochs"] = std::to_string(stopper.bad_epochs());
    ckpt_meta["early_stopping.monitor"] = has_val ? "val_acc" : "test_acc";
    ckpt_meta["rng.seed"] = std::to_string(c.seed);
    ckpt_meta["rng.scheme"] =
        "counter-based: shuffle keyed by (seed, epoch), dropout by (seed, step, element)";
    if (improved) minidl::save_checkpoint(best_path, net, optimizer.get(), ckpt_meta);
    minidl::save_checkpoint(last_path, net, optimizer.get(), ckpt_meta);
    minidl::write_file_atomic(c.out_dir + "/history.csv", history_csv(history));
    save_curves(c.out_dir + "/loss_acc_curves.png", history, stopper.best_epoch(), has_val);
    if (epoch == c.stop_after) {
      std::printf("stopping after epoch %d as asked (--stop-after); continue with --resume\n",
                  epoch);
      return 0;
    }
  }
  if (stopper.should_stop())
    std::printf("early stopping: no improvement for %d epochs; best epoch %d\n", c.patience,
                stopper.best_epoch());

  // Report on the best checkpoint.
  minidl::load_checkpoint(best_path, net);
  const Evaluation test = evaluate(net, data.test, test_idx, c.batch);
  const double wall = std::chrono::duration<double>(clock::now() - t_start).count();
  std::printf("\nbest checkpoint (epoch %d): test accuracy %.4f (%lld/%lld), test loss %.4f\n",
              stopper.best_epoch(), test.accuracy, static_cast<long long>(test.confusion.correct()),
              static_cast<long long>(test.confusion.total()), test.loss);
  std::printf("most confused pairs:\n%s", most_confused_text(test.confusion, 5).c_str());
  save_confusion_png(c.out_dir + "/confusion_matrix.png", test.confusion);
  save_wrong_predictions_png(c.out_dir + "/wrong_predictions.png", data.test, test);
  write_metrics_json(c.out_dir + "/metrics.json", c, test, stopper.best_epoch(),
                     static_cast<int>(history.size()), wall);
  std::printf(
      "wrote %s/{best,last}.safetensors, history.csv, metrics.json, loss_acc_curves.png, "
      "confusion_matrix.png, wrong_predictions.png (%.0fs)\n",
      c.out_dir.c_str(), wall);
  return 0;
}

}  // namespace mnist
