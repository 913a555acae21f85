// minidl/train/divergence.hpp - tell a run that has blown up from one that learns slowly.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace minidl {

// A training run can go wrong while every number stays finite: with a learning rate far too
// large the loss reaches 1e9 and the model falls to guessing. Checked once per epoch:
// - the epoch's mean training loss is far above ln(classes), the loss of a model that gives
//   every class the same probability (where every run starts);
// - or the monitored accuracy fell to chance level after it had been well above it.
struct DivergenceCheck {
  int classes = 10;
  double loss_factor = 4;     // diverged: mean loss > loss_factor * ln(classes)
  double chance_factor = 2;   // "at chance": accuracy < chance_factor / classes
  double learned_factor = 5;  // "was better": best accuracy >= learned_factor / classes

  // Why the epoch counts as diverged, or "" when it does not.
  std::string reason(double train_loss, double accuracy, double best_accuracy) const {
    const double guess_loss = std::log(static_cast<double>(classes));
    char text[200] = "";
    if (!std::isfinite(train_loss) || train_loss > loss_factor * guess_loss)
      std::snprintf(text, sizeof text,
                    "the mean training loss %.4g is far above %.2f, the loss of a model that "
                    "guesses (ln %d)",
                    train_loss, guess_loss, classes);
    else if (accuracy < chance_factor / classes && best_accuracy >= learned_factor / classes)
      std::snprintf(text, sizeof text,
                    "the accuracy fell to %.4f, chance level, after it had reached %.4f", accuracy,
                    best_accuracy);
    return text;
  }
};

}  // namespace minidl
