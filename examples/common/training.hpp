// examples/common/training.hpp - what every training command shares beyond its model: the
// progress bar, thread count, divergence, metrics.json and the hyper-parameters --resume keeps.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include "args.hpp"
#include "minidl/core/parallel.hpp"
#include "minidl/io/atomic_file.hpp"
#include "report.hpp"

namespace cli {

// Thrown when training goes wrong (non-finite or exploding loss); the command exits with 3.
struct TrainingDiverged : minidl::Error {
  using minidl::Error::Error;
};

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

// Cores this process may run on.
inline int hardware_threads() {
#ifdef _OPENMP
  return omp_get_num_procs();
#else
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#endif
}

// More threads than cores only make every parallel loop wait for the ones not running.
inline void use_threads(int requested) {
  const int cores = hardware_threads();
  if (requested > cores) {
    std::fprintf(stderr,
                 "warning: --threads %d is more than the %d cores of this machine; using %d\n",
                 requested, cores, cores);
    requested = cores;
  }
  if (requested > 0) minidl::set_num_threads(requested);
}

// metrics.json: the best checkpoint's test results and the run's settings. Hyper-parameters
// are written as JSON numbers except those named in `text_keys`; `extra` holds further
// "name": value pairs (values already JSON), written before the seed.
inline void write_metrics_json(const std::string& path,
                               const std::map<std::string, std::string>& hyperparameters,
                               const std::vector<std::string>& text_keys, const Evaluation& test,
                               int best_epoch, int epochs_run, std::uint64_t seed,
                               double wall_seconds,
                               const std::vector<std::pair<std::string, std::string>>& extra = {}) {
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
  for (const auto& [k, v] : hyperparameters) {
    const bool text = std::find(text_keys.begin(), text_keys.end(), k) != text_keys.end();
    j << (first ? "\n" : ",\n") << "    \"" << k << "\": " << (text ? "\"" + v + "\"" : v);
    first = false;
  }
  j << "\n  },";
  for (const auto& [k, v] : extra) j << "\n  \"" << k << "\": " << v << ",";
  j << "\n  \"seed\": " << seed << ",\n  \"threads\": " << minidl::num_threads()
    << ",\n  \"wall_seconds\": " << wall_seconds << "\n}\n";
  minidl::write_file_atomic(path, j.str());
}

// A resumed run continues with its own hyper-parameters: a flag on the command line (`given`)
// asking for another value than the run's is refused rather than ignored. `asked` and `kept`
// map hyper-parameter names (flag names with '_' for '-') to values; --epochs may always change,
// and flags that are not hyper-parameters are not checked.
inline void refuse_changed_hyperparameters(const std::string& command,
                                           const std::map<std::string, std::string>& asked,
                                           const std::map<std::string, std::string>& kept,
                                           const std::vector<std::string>& given,
                                           const std::string& may_change) {
  std::string refused;
  for (std::string flag : given) {
    std::string key = flag;
    std::replace(key.begin(), key.end(), '-', '_');
    if (key == "epochs" || !kept.count(key) || asked.at(key) == kept.at(key)) continue;
    refused += (refused.empty() ? "--" : ", --") + flag + " " + asked.at(key) + " (the run's is " +
               kept.at(key) + ")";
  }
  if (!refused.empty())
    throw UsageError(command + " --resume: " + refused +
                     ": a resumed run keeps its own hyper-parameters (only " + may_change +
                     " may change); start a new run to change them");
}

}  // namespace cli
