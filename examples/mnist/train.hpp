// examples/mnist/train.hpp - training with early stopping, checkpoints, --resume and a clean stop
// on Ctrl-C; run_training at the bottom reads top to bottom.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "../common/data_parallel.hpp"
#include "../common/run_end.hpp"
#include "args.hpp"
#include "data_folder.hpp"
#include "minidl/io/checkpoint.hpp"
#include "minidl/train/divergence.hpp"
#include "output_folder.hpp"
#include "report.hpp"
#include "run_state.hpp"
#include "stop_signals.hpp"
#include "training.hpp"

namespace mnist {

using Clock = std::chrono::steady_clock;

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

inline void write_metrics_json(const std::string& path, const TrainConfig& c,
                               const Evaluation& test, int best_epoch, int epochs_run,
                               double wall_seconds) {
  cli::write_metrics_json(path, hyperparameters(c), {"optimizer"}, test, best_epoch, epochs_run,
                          c.seed, wall_seconds);
}

// The CNN's layer sizes are fixed for 28x28 inputs; say so before a layer does, less clearly.
inline void require_28x28(const minidl::Mnist& data, const std::string& dir) {
  if (data.train.rows != 28 || data.train.cols != 28)
    minidl::fail(dir, ": images are ", data.train.rows, "x", data.train.cols,
                 "; this model takes 28x28");
}

// A resumed run continues with its own hyper-parameters; a flag asking for another value is
// refused rather than ignored. `given` lists the flags on the command line.
inline TrainConfig resumed_config(const TrainConfig& flags, const std::vector<std::string>& given,
                                  TrainConfig saved) {
  refuse_changed_hyperparameters("mnist train", hyperparameters(flags), hyperparameters(saved),
                                 given, "--epochs, --data, --classes, --threads and --stop-after");
  if (flags.epochs_override > 0) saved.epochs = flags.epochs_override;
  // Where the data lives now, when the user says so; else where the run found it.
  for (const auto& flag : given) {
    if (flag == "data") saved.data_dir = flags.data_dir;
    if (flag == "classes") saved.classes = flags.classes;
  }
  return saved;
}

// What run_training works on: the run's state, the data and the model.
struct Session {
  RunState state;
  std::string last_path, best_path;
  minidl::Mnist data;
  ClassNames classes;
  std::vector<std::int64_t> train_idx, val_idx, test_idx;
  Sequential<float> net;
  std::unique_ptr<minidl::Optimizer<float>> optimizer;

  bool has_val() const { return !val_idx.empty(); }
  const TrainConfig& config() const { return state.config; }

  // `out` is the output folder (on rank 0 of a data-parallel run, which alone writes to it).
  Session(const TrainConfig& flags, const std::vector<std::string>& given, const std::string& out)
      : last_path((std::filesystem::path(out) / "last.safetensors").string()),
        best_path((std::filesystem::path(out) / "best.safetensors").string()) {
    if (flags.resume) {
      // The run's own settings, and the data folder it trained on, come from its checkpoint.
      state =
          RunState::from_metadata(minidl::read_safetensors(last_path).metadata, last_path, flags);
      state.config = resumed_config(flags, given, state.config);
    } else {
      state.config = flags;
      // Stored absolute, so that --resume finds the data from any working directory.
      state.config.data_dir = std::filesystem::absolute(flags.data_dir).lexically_normal().string();
      state.stopper = minidl::EarlyStopping(flags.patience);
    }
    classes = data_classes(config().classes,
                           std::find(given.begin(), given.end(), "classes") != given.end(),
                           config().data_dir);
    std::printf("loading %s from %s\n", classes.dataset.empty() ? "data" : classes.dataset.c_str(),
                config().data_dir.c_str());
    data = minidl::load_mnist(config().data_dir, classes.dataset);
    require_28x28(data, config().data_dir);
    split();
    state.monitor = has_val() ? "val_acc" : "test_acc";
    net = minidl::make_mnist_cnn<float>(config().seed);
    optimizer = make_optimizer(config(), net);
    if (flags.resume) {
      minidl::load_checkpoint(last_path, net, optimizer.get());
      std::printf("resuming %s after epoch %d (optimizer step %lld)\n", last_path.c_str(),
                  state.epochs_done(), static_cast<long long>(optimizer->step_count()));
    }
  }

  // Training images first, the last `val` for validation, the test images (or the first
  // `limit_test` of them) for testing.
  void split() {
    const auto n = static_cast<std::int64_t>(data.train.size());
    if (config().val >= n)
      minidl::fail("--val ", config().val, " leaves no training images (the set has ", n, ")");
    for (std::int64_t i = 0; i < n - config().val; ++i) train_idx.push_back(i);
    for (std::int64_t i = n - config().val; i < n; ++i) val_idx.push_back(i);
    if (config().limit_train > 0 &&
        config().limit_train < static_cast<std::int64_t>(train_idx.size()))
      train_idx.resize(static_cast<std::size_t>(config().limit_train));
    test_idx = all_indices(data.test);
    if (config().limit_test > 0 && config().limit_test < static_cast<std::int64_t>(test_idx.size()))
      test_idx.resize(static_cast<std::size_t>(config().limit_test));
  }

  // Where the last good state is, for messages of a run that stops early.
  std::string checkpoint_note() const {
    if (state.epochs_done() == 0) return "no checkpoint was written (no epoch completed)";
    return last_path + " holds epoch " + std::to_string(state.epochs_done()) + ", " + best_path +
           " epoch " + std::to_string(state.stopper.best_epoch());
  }
};

inline void print_banner(Session& s) {
  const TrainConfig& c = s.config();
  std::printf("\n%s\n", s.net.summary({c.batch, 1, 28, 28}).c_str());
  std::printf("data: %zu training, %zu validation, %zu test images\n", s.train_idx.size(),
              s.val_idx.size(), s.test_idx.size());
  std::printf("hyper-parameters:");
  for (const auto& [k, v] : hyperparameters(c)) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf(" threads=%d\n", minidl::num_threads());
  if (!s.has_val())
    std::printf(
        "warning: --val 0 selects the checkpoint by test accuracy (the reference recipe); the test "
        "accuracy reported is then optimistic\n");
  std::printf("\n");
  std::fflush(stdout);  // a log file shows the run has started, not only after epoch 1
}

// One pass over the shuffled training images. Returns false, with the epoch unfinished, when
// SIGINT or SIGTERM arrived: the parameters are then part-way through it and are not saved.
inline bool train_epoch(Session& s, int epoch, EpochRecord& r) {
  const TrainConfig& c = s.config();
  const auto t_epoch = Clock::now();
  // The schedule depends on the epoch only, so a resumed run continues it.
  s.optimizer->set_learning_rate(c.lr * std::pow(c.lr_decay, epoch - 1));
  // The order of epoch e depends on (seed, e) only: a resumed run replays it.
  std::vector<std::int64_t> order = s.train_idx;
  minidl::Rng(minidl::hash64(c.seed, 0x5A1F, static_cast<std::uint64_t>(epoch)))
      .shuffle(order.begin(), order.end());
  const minidl::Augmentation augmentation;
  minidl::CrossEntropyLoss<float> xent;
  Tensor<float> x;
  std::vector<std::int32_t> labels;
  const auto n = static_cast<std::int64_t>(order.size());
  ProgressBar bar(n);
  double loss_sum = 0;
  std::int64_t correct = 0, seen = 0;
  DataParallel& ranks = data_parallel();
  for (std::int64_t b = 0; b < n; b += c.batch) {
    // Every rank stops after the same step, whichever received the signal.
    if (ranks.ranks() > 1 ? ranks.any(StopSignals::received() != 0) : StopSignals::received())
      return false;
    const std::int64_t count = std::min<std::int64_t>(c.batch, n - b);
    // This rank's samples of the batch (all of them in a single process).
    const minidl::SampleRange mine = ranks.range(count);
    minidl::make_batch(s.data.train, order.data() + b + mine.first, mine.count, x, labels, {},
                       c.augment ? &augmentation : nullptr, c.seed,
                       static_cast<std::uint64_t>(epoch));
    const Tensor<float>* logits = nullptr;
    float loss = 0;
    try {
      loss = minidl::train_step(s.net, xent, *s.optimizer, x, labels.data(), &logits,
                                ranks.share(count));
    } catch (const minidl::NonFiniteError& e) {  // divergence; out of memory is not (exit 1)
      throw TrainingDiverged("epoch " + std::to_string(epoch) + ", batch " +
                             std::to_string(b / c.batch + 1) + ": " + e.what() + "; " +
                             s.checkpoint_note() + "; try a smaller --lr (now " +
                             exact_decimal(c.lr) + ")");
    }
    const auto pred = minidl::argmax_rows(*logits);
    for (std::int64_t i = 0; i < mine.count; ++i)
      correct += pred[static_cast<std::size_t>(i)] == labels[static_cast<std::size_t>(i)];
    loss_sum += static_cast<double>(loss) * static_cast<double>(count);
    seen += count;
    if ((b / c.batch) % 20 == 0)
      bar.update(seen, loss_sum / static_cast<double>(seen),
                 std::chrono::duration<double>(Clock::now() - t_epoch).count());
  }
  bar.finish();
  ranks.reducer().sum_counts(&correct, 1);
  r.epoch = epoch;
  r.train_loss = loss_sum / static_cast<double>(seen);
  r.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
  // Rank 0 evaluates (every rank holds the same weights) and tells the others.
  if (ranks.leader()) {
    if (s.has_val()) {
      const Evaluation v = evaluate(s.net, s.data.train, s.val_idx, c.batch);
      r.val_loss = v.loss;
      r.val_acc = v.accuracy;
    }
    const Evaluation t = evaluate(s.net, s.data.test, s.test_idx, c.batch);
    r.test_loss = t.loss;
    r.test_acc = t.accuracy;
  }
  double results[4] = {r.val_loss, r.val_acc, r.test_loss, r.test_acc};
  ranks.reducer().broadcast(results, sizeof results);
  r.val_loss = results[0];
  r.val_acc = results[1];
  r.test_loss = results[2];
  r.test_acc = results[3];
  r.seconds = std::chrono::duration<double>(Clock::now() - t_epoch).count();
  return true;
}

// Adds a finished epoch to the run: refuses a diverged one (the checkpoints keep the last good
// epoch), updates early stopping, prints the line and saves checkpoints, history and curves.
inline void record_epoch(Session& s, const EpochRecord& r) {
  const double accuracy = s.has_val() ? r.val_acc : r.test_acc;
  const std::string diverged =
      minidl::DivergenceCheck{}.reason(r.train_loss, accuracy, s.state.stopper.best());
  if (!diverged.empty())
    throw TrainingDiverged("training diverged in epoch " + std::to_string(r.epoch) + ": " +
                           diverged + "; " + s.checkpoint_note() + "; try a smaller --lr (now " +
                           exact_decimal(s.config().lr) + ")");
  s.state.history.push_back(r);
  const bool improved = s.state.stopper.update(accuracy, r.epoch);
  char val_text[64] = "";
  if (s.has_val())
    std::snprintf(val_text, sizeof val_text, " | val loss %.4f acc %.4f", r.val_loss, r.val_acc);
  std::printf("epoch %2d/%d  train loss %.4f acc %.4f%s | test loss %.4f acc %.4f | %.1fs%s\n",
              r.epoch, s.config().epochs, r.train_loss, r.train_acc, val_text, r.test_loss,
              r.test_acc, r.seconds, improved ? "  * best" : "");
  std::fflush(stdout);
  if (!data_parallel().leader()) return;  // rank 0 writes the run's files
  const auto meta = s.state.to_metadata();
  if (improved) minidl::save_checkpoint(s.best_path, s.net, s.optimizer.get(), meta);
  minidl::save_checkpoint(s.last_path, s.net, s.optimizer.get(), meta);
  const std::string dir = s.config().out_dir;
  minidl::write_file_atomic(dir + "/history.csv", history_csv(s.state.history));
  save_curves(dir + "/loss_acc_curves.png", s.state.history, s.state.stopper.best_epoch(),
              s.has_val());
}

// The best checkpoint on the test set, for the final report.
inline Evaluation evaluate_best(Session& s) {
  minidl::load_checkpoint(s.best_path, s.net);
  return evaluate(s.net, s.data.test, s.test_idx, s.config().batch);
}

// The final report of the best checkpoint: accuracy, confusion matrix, wrong predictions, metrics.
inline void report(Session& s, const Evaluation& test, double wall_seconds) {
  const std::string dir = s.config().out_dir;
  std::printf("\nbest checkpoint (epoch %d): test accuracy %.4f (%lld/%lld), test loss %.4f\n",
              s.state.stopper.best_epoch(), test.accuracy,
              static_cast<long long>(test.confusion.correct()),
              static_cast<long long>(test.confusion.total()), test.loss);
  std::printf("most confused pairs:\n%s", most_confused_text(test.confusion, 5, s.classes).c_str());
  save_confusion_png(dir + "/confusion_matrix.png", test.confusion, s.classes);
  save_wrong_predictions_png(dir + "/wrong_predictions.png", s.data.test, test, s.classes);
  write_metrics_json(dir + "/metrics.json", s.config(), test, s.state.stopper.best_epoch(),
                     s.state.epochs_done(), wall_seconds);
  std::printf(
      "wrote %s/{best,last}.safetensors, history.csv, metrics.json, loss_acc_curves.png, "
      "confusion_matrix.png, wrong_predictions.png (%.0fs)\n",
      dir.c_str(), wall_seconds);
}

// Disk space a run needs: best and last checkpoints (weights and two optimizer moments), a
// temporary copy while one is replaced, and the pictures.
inline std::uint64_t bytes_needed() {
  auto net = minidl::make_mnist_cnn<float>(0);
  const auto checkpoint = static_cast<std::uint64_t>(net.num_parameters()) * sizeof(float) * 3;
  return 3 * checkpoint + (2u << 20);
}

// What ranks of a data-parallel run must agree on: the run's settings and its data.
inline std::string run_description(const Session& s) {
  std::string d;
  for (const auto& [k, v] : hyperparameters(s.config())) d += k + "=" + v + "\n";
  d += "resume=" + std::to_string(s.config().resume) + "\n";
  d += "classes=" + s.config().classes + "\n";
  for (const auto* set : {&s.data.train, &s.data.test})
    d += "data=" + std::to_string(set->size()) + " images, fingerprint " +
         std::to_string(fingerprint(set->labels.data(), set->labels.size(),
                                    fingerprint(set->images.data(), set->images.size()))) +
         "\n";
  if (s.config().resume) d += "optimizer_step=" + std::to_string(s.optimizer->step_count()) + "\n";
  return d;
}

inline int run_training(const TrainConfig& flags, const std::vector<std::string>& given) {
  const auto t_start = Clock::now();
  use_threads(flags.threads);
  const auto use = flags.resume      ? OutputFolder::Use::Resume
                   : flags.overwrite ? OutputFolder::Use::Overwrite
                                     : OutputFolder::Use::NewRun;
  // Each rank sets up on its own (rank 0 alone takes the output folder); then all check that
  // every one of them did, with the same settings and data.
  DataParallel& ranks = data_parallel();
  std::unique_ptr<OutputFolder> out;
  std::unique_ptr<Session> session;
  std::string error;
  bool usage = false;
  try {
    if (ranks.leader()) out = std::make_unique<OutputFolder>(flags.out_dir, use, bytes_needed());
    session = std::make_unique<Session>(flags, given, flags.out_dir);
  } catch (const UsageError& e) {
    if (ranks.ranks() == 1) throw;
    error = e.what();
    usage = true;
  } catch (const std::exception& e) {
    if (ranks.ranks() == 1) throw;
    error = e.what();
  }
  ranks.require_all_started(error, usage);
  Session& s = *session;
  ranks.require_same_run("mnist train", run_description(s));
  require_chunk_per_rank(ranks, static_cast<std::int64_t>(s.train_idx.size()), s.config().batch,
                         "mnist train");
  print_banner(s);
  if (ranks.ranks() > 1)
    std::printf("data-parallel: %d ranks, each a share of every batch of %d\n\n", ranks.ranks(),
                s.config().batch);
  RunState& state = s.state;
  // From here to the end, the first SIGINT or SIGTERM is only recorded: it stops the run between
  // two steps, or after the last epoch before the final report writes anything. Once the report's
  // files are being written (a moment), the run completes them.
  const StopSignals signals;
  bool interrupted = false;  // in an epoch, by a signal on this rank or another
  while (state.epochs_done() < s.config().epochs && !state.stopper.should_stop()) {
    EpochRecord r;
    interrupted = !train_epoch(s, state.epochs_done() + 1, r);
    if (interrupted) break;
    if (out) out->require_held("epoch " + std::to_string(r.epoch) + "'s files");
    record_epoch(s, r);
    if (r.epoch == s.config().stop_after) {
      std::printf("stopping after epoch %d as asked (--stop-after); continue with --resume\n",
                  r.epoch);
      return 0;
    }
  }
  if (out && !interrupted) out->require_held("the final report");
  return cli::end_run("mnist", s, ranks, interrupted, t_start);
}

}  // namespace mnist
