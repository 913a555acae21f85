// Early stopping: a new best resets the count, `patience` epochs in a row
// without one stop the run, 0 never does, min_delta asks for a real gain, and
// a state restored from a checkpoint goes on as the run it came from.
#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "minidl/train/early_stopping.hpp"

// Every test file keeps its names in a namespace of its own, so that the suite can also be
// compiled as one program (MINIDL_UNITY_TESTS).
namespace test_early_stopping {

using minidl::EarlyStopping;

namespace {

// Feeds the accuracies of epochs 1, 2, ... and returns the epoch after
// which the stopper says stop (0: it never does).
int stop_epoch(EarlyStopping& stopper, const std::vector<double>& accuracies) {
  for (std::size_t i = 0; i < accuracies.size(); ++i) {
    stopper.update(accuracies[i], static_cast<int>(i) + 1);
    if (stopper.should_stop()) return static_cast<int>(i) + 1;
  }
  return 0;
}

}  // namespace

TEST_CASE("early stopping counts the epochs since the best, and a new best resets them") {
  EarlyStopping stopper(3);
  CHECK(stopper.update(0.80, 1));
  CHECK_FALSE(stopper.update(0.79, 2));
  CHECK_FALSE(stopper.update(0.80, 3));  // equal is not better
  CHECK(stopper.bad_epochs() == 2);
  CHECK_FALSE(stopper.should_stop());
  CHECK(stopper.update(0.81, 4));
  CHECK(stopper.bad_epochs() == 0);
  CHECK(stopper.best_epoch() == 4);
  CHECK(stopper.best() == doctest::Approx(0.81));

  EarlyStopping again(3);
  CHECK(stop_epoch(again, {0.5, 0.6, 0.55, 0.58, 0.59, 0.7}) == 5);
  CHECK(again.best_epoch() == 2);
}

TEST_CASE("early stopping with patience 0 never stops") {
  EarlyStopping stopper(0);
  CHECK(stop_epoch(stopper, std::vector<double>(50, 0.5)) == 0);
  CHECK(stopper.best_epoch() == 1);
  CHECK(stopper.bad_epochs() == 49);
}

TEST_CASE("early stopping with min_delta counts a gain below it as no gain") {
  EarlyStopping stopper(2, 0.01);
  CHECK(stopper.update(0.90, 1));
  CHECK_FALSE(stopper.update(0.905, 2));
  CHECK(stopper.best() == doctest::Approx(0.90));
  CHECK(stopper.update(0.92, 3));
  CHECK_FALSE(stopper.update(0.925, 4));
  CHECK_FALSE(stopper.update(0.929, 5));
  CHECK(stopper.should_stop());
  CHECK(stopper.best_epoch() == 3);
}

TEST_CASE("an early-stopping state restored from a checkpoint goes on as the run it came from") {
  const std::vector<double> accuracies = {0.6, 0.7, 0.65, 0.68, 0.71, 0.7, 0.7, 0.69, 0.72};
  EarlyStopping whole(3);
  const int whole_stop = stop_epoch(whole, accuracies);
  REQUIRE(whole_stop == 8);

  for (int cut = 1; cut < whole_stop; ++cut) {
    CAPTURE(cut);
    EarlyStopping first(3);
    for (int i = 0; i < cut; ++i) first.update(accuracies[static_cast<std::size_t>(i)], i + 1);
    EarlyStopping resumed(3);
    resumed.restore(first.best(), first.best_epoch(), first.bad_epochs());
    int stop = 0;
    for (int i = cut; i < static_cast<int>(accuracies.size()) && stop == 0; ++i) {
      resumed.update(accuracies[static_cast<std::size_t>(i)], i + 1);
      if (resumed.should_stop()) stop = i + 1;
    }
    CHECK(stop == whole_stop);
    CHECK(resumed.best_epoch() == whole.best_epoch());
    CHECK(resumed.best() == whole.best());
  }
}

}  // namespace test_early_stopping
