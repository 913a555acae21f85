// minidl/train/early_stopping.hpp - stop when a monitored metric stops improving.
#pragma once

#include <cstdint>
#include <limits>

namespace minidl {

// Tracks the best value of a metric where higher is better (accuracy).
// update() returns true when the value is a new best (save the checkpoint);
// should_stop() turns true after `patience` epochs in a row without one.
// The whole state is four numbers, saved in checkpoints for --resume.
class EarlyStopping {
 public:
  explicit EarlyStopping(int patience = 3, double min_delta = 0)
      : patience_(patience), min_delta_(min_delta) {}

  bool update(double value, int epoch) {
    if (value > best_ + min_delta_) {
      best_ = value;
      best_epoch_ = epoch;
      bad_epochs_ = 0;
      return true;
    }
    ++bad_epochs_;
    return false;
  }

  bool should_stop() const { return patience_ > 0 && bad_epochs_ >= patience_; }

  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }
  int bad_epochs() const { return bad_epochs_; }
  int patience() const { return patience_; }

  void restore(double best, int best_epoch, int bad_epochs) {
    best_ = best;
    best_epoch_ = best_epoch;
    bad_epochs_ = bad_epochs;
  }

 private:
  int patience_;
  double min_delta_;
  double best_ = -std::numeric_limits<double>::infinity();
  int best_epoch_ = 0;
  int bad_epochs_ = 0;
};

}  // namespace minidl
