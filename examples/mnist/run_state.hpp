// examples/mnist/run_state.hpp - everything a checkpoint must hold to continue a run exactly:
// the hyper-parameters, the data folder, the history, early stopping and the random numbers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "history.hpp"
#include "minidl/core/error.hpp"
#include "minidl/train/early_stopping.hpp"

namespace mnist {

struct TrainConfig {
  std::string data_dir = "data/mnist";
  std::string classes = "digits";  // --classes: digits, fashion or a names file (absolute)
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
  std::int64_t limit_test = 0;   // 0: all test images
  bool augment = false;
  bool resume = false;
  bool overwrite = false;   // replace a finished run in out_dir
  int stop_after = 0;       // > 0: return after this epoch, as if interrupted (tests resume)
  int epochs_override = 0;  // > 0 with resume: extend or shorten the run to this many epochs
};

// The hyper-parameters that define a run, by the names checkpoints store them under ("hp.lr")
// and metrics.json lists them.
inline std::map<std::string, std::string> hyperparameters(const TrainConfig& c) {
  return {{"epochs", std::to_string(c.epochs)},
          {"patience", std::to_string(c.patience)},
          {"batch", std::to_string(c.batch)},
          {"lr", exact_decimal(c.lr)},
          {"lr_decay", exact_decimal(c.lr_decay)},
          {"optimizer", c.optimizer},
          {"momentum", exact_decimal(c.momentum)},
          {"val", std::to_string(c.val)},
          {"seed", std::to_string(c.seed)},
          {"limit_train", std::to_string(c.limit_train)},
          {"limit_test", std::to_string(c.limit_test)},
          {"augment", c.augment ? "1" : "0"}};
}

// Version 0: checkpoints without "run.version" (hp.lr_decay optional, no data folder).
// Version 1: adds "run.version" and "run.data_dir".
// Version 2: adds "run.classes", the names the run's reports use.
inline constexpr int kRunStateVersion = 2;

// The state of a training run after a completed epoch, as stored in a checkpoint's metadata.
// The weights and the optimizer's moments and step count are the checkpoint's tensors; every
// random number is keyed by (seed, epoch or step, index), so nothing else is needed.
struct RunState {
  TrainConfig config;
  std::vector<EpochRecord> history;  // one row per completed epoch
  minidl::EarlyStopping stopper;
  std::string monitor;  // "val_acc" or "test_acc": what early stopping watches

  int epochs_done() const { return static_cast<int>(history.size()); }

  std::map<std::string, std::string> to_metadata() const {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : hyperparameters(config)) m["hp." + k] = v;
    m["run.version"] = std::to_string(kRunStateVersion);
    m["run.data_dir"] = config.data_dir;
    m["run.classes"] = config.classes;
    m["epoch"] = std::to_string(epochs_done());
    m["history"] = history_csv(history);
    m["early_stopping.best"] = exact_decimal(stopper.best());
    m["early_stopping.best_epoch"] = std::to_string(stopper.best_epoch());
    m["early_stopping.bad_epochs"] = std::to_string(stopper.bad_epochs());
    m["early_stopping.monitor"] = monitor;
    m["rng.seed"] = std::to_string(config.seed);
    m["rng.scheme"] =
        "counter-based: shuffle keyed by (seed, epoch), dropout by (seed, step, element)";
    return m;
  }

  // Reads the state back; `defaults` supplies what a version-0 checkpoint lacks (the data
  // folder) and the settings that are not part of a run (output folder, threads).
  static RunState from_metadata(const std::map<std::string, std::string>& meta,
                                const std::string& path, const TrainConfig& defaults) {
    auto get = [&](const std::string& key) {
      auto it = meta.find(key);
      if (it == meta.end())
        minidl::fail(path, ": metadata lacks \"", key, "\" (not a training checkpoint?)");
      return it->second;
    };
    RunState s;
    s.config = defaults;
    TrainConfig& c = s.config;
    try {
      const int version = meta.count("run.version") ? std::stoi(get("run.version")) : 0;
      if (version > kRunStateVersion)
        minidl::fail(path, ": run state version ", version, " is newer than this program's (",
                     kRunStateVersion, "); use the minidl that wrote it");
      c.epochs = std::stoi(get("hp.epochs"));
      c.patience = std::stoi(get("hp.patience"));
      c.batch = std::stoi(get("hp.batch"));
      c.lr = std::stod(get("hp.lr"));
      // Version-0 checkpoints written before the schedule existed train at a constant rate.
      c.lr_decay = version == 0 && !meta.count("hp.lr_decay") ? 1.0 : std::stod(get("hp.lr_decay"));
      c.optimizer = get("hp.optimizer");
      c.momentum = std::stod(get("hp.momentum"));
      c.val = std::stoll(get("hp.val"));
      c.seed = std::stoull(get("hp.seed"));
      c.limit_train = std::stoll(get("hp.limit_train"));
      // Checkpoints written before --limit-test existed tested on every image.
      c.limit_test = meta.count("hp.limit_test") ? std::stoll(get("hp.limit_test")) : 0;
      c.augment = get("hp.augment") == "1";
      if (version >= 1) c.data_dir = get("run.data_dir");
      if (version >= 2) c.classes = get("run.classes");
      s.history = parse_history(get("history"), path);
      s.stopper = minidl::EarlyStopping(c.patience);
      s.stopper.restore(std::stod(get("early_stopping.best")),
                        std::stoi(get("early_stopping.best_epoch")),
                        std::stoi(get("early_stopping.bad_epochs")));
      s.monitor = get("early_stopping.monitor");
    } catch (const std::logic_error&) {  // std::stoi and friends on text that is not a number
      minidl::fail(path, ": a number in the run state (metadata) is unreadable");
    }
    return s;
  }
};

}  // namespace mnist
