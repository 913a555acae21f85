// examples/common/history.hpp - one row per epoch of a training run: history.csv, the copy of it a
// checkpoint keeps, and the loss and accuracy curves drawn from it.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "minidl/core/error.hpp"
#include "minidl/viz/plots.hpp"

namespace cli {

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

// The shortest decimal text that reads back as exactly `x`.
inline std::string exact_decimal(double x) {
  char buf[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

// loss_acc_curves.png: training, validation (when there is a split) and test curves, with the
// best epoch marked.
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

}  // namespace cli
