// examples/resnet/run_state.hpp - the settings of a ResNet training run, and everything its
// checkpoints hold besides tensors to continue it exactly.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/history.hpp"
#include "minidl/core/error.hpp"
#include "minidl/train/early_stopping.hpp"

namespace resnet {

using namespace cli;

struct TrainConfig {
  std::string data_dir;
  std::string classes = "fashion";  // --classes: digits, fashion or a names file (absolute)
  std::string out_dir = "results-resnet";
  // The network.
  int depth = 20;
  std::int64_t width = 16;
  bool zero_init_residual = false;  // each block's last batch norm starts at scale 0
  // The recipe.
  int epochs = 25;
  // On the one-cycle schedule's high-rate plateau the validation accuracy swings by points from
  // one epoch to the next; a patience of 5 ended runs there (at batch 64).
  int patience = 10;
  int batch = 128;
  std::string optimizer = "sgd";  // sgd (Nesterov momentum) or adamw
  double lr = 0.1;                // the peak of the schedule
  double momentum = 0.9;
  double weight_decay = 5e-4;         // on weights; never on biases and batch-norm parameters
  std::string schedule = "onecycle";  // onecycle or cosine (after a linear warm-up)
  double pct_start = 0.3;             // onecycle: the share of the steps spent rising
  std::int64_t warmup_steps = 0;      // cosine: steps of warm-up (0: one epoch)
  double label_smoothing = 0.1;
  bool augment = true;   // random crops, flips and erasing
  int crop_padding = 1;  // 2 tested lower over 25 epochs (docs/resnet.md)
  bool flip = true;
  double erase = 0;  // probability of erasing a random rectangle of a training image
  std::int64_t val = 5000;
  std::uint64_t seed = 1;
  std::int64_t limit_train = 0;  // 0: all training images
  std::int64_t limit_test = 0;   // 0: all test images
  // How this process runs, not part of the run.
  int threads = 0;
  bool resume = false;
  bool overwrite = false;
  int stop_after = 0;
};

// The hyper-parameters that define a run, by the names checkpoints store them under ("hp.lr")
// and metrics.json lists them.
inline std::map<std::string, std::string> hyperparameters(const TrainConfig& c) {
  return {{"depth", std::to_string(c.depth)},
          {"width", std::to_string(c.width)},
          {"zero_init_residual", c.zero_init_residual ? "1" : "0"},
          {"epochs", std::to_string(c.epochs)},
          {"patience", std::to_string(c.patience)},
          {"batch", std::to_string(c.batch)},
          {"optimizer", c.optimizer},
          {"lr", exact_decimal(c.lr)},
          {"momentum", exact_decimal(c.momentum)},
          {"weight_decay", exact_decimal(c.weight_decay)},
          {"schedule", c.schedule},
          {"pct_start", exact_decimal(c.pct_start)},
          {"warmup_steps", std::to_string(c.warmup_steps)},
          {"label_smoothing", exact_decimal(c.label_smoothing)},
          {"augment", c.augment ? "1" : "0"},
          {"crop_padding", std::to_string(c.crop_padding)},
          {"flip", c.flip ? "1" : "0"},
          {"erase", exact_decimal(c.erase)},
          {"val", std::to_string(c.val)},
          {"seed", std::to_string(c.seed)},
          {"limit_train", std::to_string(c.limit_train)},
          {"limit_test", std::to_string(c.limit_test)}};
}

// The hyper-parameters metrics.json writes as text rather than numbers.
inline const std::vector<std::string>& text_hyperparameters() {
  static const std::vector<std::string> keys = {"optimizer", "schedule"};
  return keys;
}

inline constexpr int kRunStateVersion = 1;

// The state of a training run after a completed epoch, as stored in a checkpoint's metadata.
// The weights, batch-norm buffers and the optimizer's buffers and step count are the
// checkpoint's tensors; the schedule's position is the optimizer's step (checked on load), and
// every random number is keyed by (seed, epoch, image), so nothing else is needed.
struct RunState {
  TrainConfig config;
  std::vector<EpochRecord> history;   // one row per completed epoch
  std::vector<double> train_seconds;  // of each epoch, training steps only
  minidl::EarlyStopping stopper;
  std::string monitor;  // "val_acc" or "test_acc": what early stopping watches
  std::int64_t scheduler_step = 0;

  int epochs_done() const { return static_cast<int>(history.size()); }

  std::map<std::string, std::string> to_metadata() const {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : hyperparameters(config)) m["hp." + k] = v;
    m["run.program"] = "resnet";
    m["run.version"] = std::to_string(kRunStateVersion);
    m["run.data_dir"] = config.data_dir;
    m["run.classes"] = config.classes;
    std::string seconds;
    for (double s : train_seconds) seconds += (seconds.empty() ? "" : ",") + exact_decimal(s);
    m["run.train_seconds"] = seconds;
    m["epoch"] = std::to_string(epochs_done());
    m["history"] = history_csv(history);
    m["early_stopping.best"] = exact_decimal(stopper.best());
    m["early_stopping.best_epoch"] = std::to_string(stopper.best_epoch());
    m["early_stopping.bad_epochs"] = std::to_string(stopper.bad_epochs());
    m["early_stopping.monitor"] = monitor;
    m["scheduler.last_epoch"] = std::to_string(scheduler_step);
    m["rng.seed"] = std::to_string(config.seed);
    m["rng.scheme"] =
        "counter-based: shuffle keyed by (seed, epoch), crops, flips and erasing by (seed, epoch, "
        "image)";
    return m;
  }

  // Reads the state back; `defaults` supplies the settings that are not part of a run (output
  // folder, threads).
  static RunState from_metadata(const std::map<std::string, std::string>& meta,
                                const std::string& path, const TrainConfig& defaults) {
    auto get = [&](const std::string& key) {
      auto it = meta.find(key);
      if (it == meta.end())
        minidl::fail(path, ": metadata lacks \"", key,
                     "\" (not a checkpoint of a resnet training run?)");
      return it->second;
    };
    if (get("run.program") != "resnet")
      minidl::fail(path, ": a checkpoint of a '", get("run.program"),
                   "' run, not of a resnet training run");
    RunState s;
    s.config = defaults;
    TrainConfig& c = s.config;
    try {
      const int version = std::stoi(get("run.version"));
      if (version > kRunStateVersion)
        minidl::fail(path, ": run state version ", version, " is newer than this program's (",
                     kRunStateVersion, "); use the minidl that wrote it");
      c.depth = std::stoi(get("hp.depth"));
      c.width = std::stoll(get("hp.width"));
      // Runs written before the option existed started every batch norm at scale 1.
      c.zero_init_residual =
          meta.count("hp.zero_init_residual") && get("hp.zero_init_residual") == "1";
      c.epochs = std::stoi(get("hp.epochs"));
      c.patience = std::stoi(get("hp.patience"));
      c.batch = std::stoi(get("hp.batch"));
      c.optimizer = get("hp.optimizer");
      c.lr = std::stod(get("hp.lr"));
      c.momentum = std::stod(get("hp.momentum"));
      c.weight_decay = std::stod(get("hp.weight_decay"));
      c.schedule = get("hp.schedule");
      c.pct_start = std::stod(get("hp.pct_start"));
      c.warmup_steps = std::stoll(get("hp.warmup_steps"));
      c.label_smoothing = std::stod(get("hp.label_smoothing"));
      c.augment = get("hp.augment") == "1";
      c.crop_padding = std::stoi(get("hp.crop_padding"));
      c.flip = get("hp.flip") == "1";
      // Runs written before random erasing existed had none.
      c.erase = meta.count("hp.erase") ? std::stod(get("hp.erase")) : 0.0;
      c.val = std::stoll(get("hp.val"));
      c.seed = std::stoull(get("hp.seed"));
      c.limit_train = std::stoll(get("hp.limit_train"));
      c.limit_test = std::stoll(get("hp.limit_test"));
      c.data_dir = get("run.data_dir");
      c.classes = get("run.classes");
      const std::string seconds = get("run.train_seconds");
      for (std::size_t at = 0; at < seconds.size();) {
        std::size_t used = 0;
        s.train_seconds.push_back(std::stod(seconds.substr(at), &used));
        at += used + 1;  // past the comma
      }
      s.history = parse_history(get("history"), path);
      s.stopper = minidl::EarlyStopping(c.patience);
      s.stopper.restore(std::stod(get("early_stopping.best")),
                        std::stoi(get("early_stopping.best_epoch")),
                        std::stoi(get("early_stopping.bad_epochs")));
      s.monitor = get("early_stopping.monitor");
      s.scheduler_step = std::stoll(get("scheduler.last_epoch"));
    } catch (const std::logic_error&) {  // std::stoi and friends on text that is not a number
      minidl::fail(path, ": a number in the run state (metadata) is unreadable");
    }
    if (s.train_seconds.size() != s.history.size())
      minidl::fail(path, ": the run state lists ", s.train_seconds.size(), " epoch times for ",
                   s.history.size(), " epochs");
    return s;
  }
};

}  // namespace resnet
