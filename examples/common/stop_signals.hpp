// examples/common/stop_signals.hpp - SIGINT and SIGTERM ask training to stop at a safe point.
#pragma once

#include <csignal>

namespace cli {

// While an instance lives, the first SIGINT or SIGTERM is only recorded: the training loop
// looks at received() between steps, so no checkpoint is cut short. The handler then gives the
// signal back its default action, so a second Ctrl-C ends the process at once.
class StopSignals {
 public:
  StopSignals() {
    received_ = 0;
    struct sigaction sa {};
    sa.sa_handler = &StopSignals::record;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received (SIGINT or SIGTERM), or 0.
  static int received() { return received_; }

 private:
  static void record(int signal) { received_ = signal; }

  static inline volatile std::sig_atomic_t received_ = 0;
  struct sigaction old_int_ {
  }, old_term_{};
};

inline const char* signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace cli
