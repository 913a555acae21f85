// examples/common/run_end.hpp - how `mnist train` and `resnet train` end once their epoch loop
// is over: the early-stopping note, the test evaluation of the best checkpoint and the report,
// or the message and exit status of a run that a signal stopped.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>

#include "report.hpp"
#include "stop_signals.hpp"

namespace cli {

// Exit status of a run stopped by `signal`: the shell's 128 + signal number. `in_epoch`: the
// signal cut an epoch short (it is dropped); else the epochs were all done, the report not yet.
template <typename Session>
int stopped_by_signal(const char* program, const Session& s, int signal, bool in_epoch) {
  if (in_epoch)
    std::fprintf(stderr, "%s train: stopped by %s during epoch %d; %s\n", program,
                 signal_name(signal), s.state.epochs_done() + 1, s.checkpoint_note().c_str());
  else
    std::fprintf(stderr,
                 "%s train: stopped by %s after the last epoch (%d), before the final report; "
                 "%s\n",
                 program, signal_name(signal), s.state.epochs_done(), s.checkpoint_note().c_str());
  if (s.state.epochs_done() > 0)
    std::fprintf(stderr, "%s with: %s train --resume --out %s\n",
                 in_epoch ? "continue" : "write the report", program, s.config().out_dir.c_str());
  return 128 + signal;
}

// The end of a run whose epoch loop is over (`interrupted`: a signal cut it short). Only the
// leader of a data-parallel run evaluates and writes. evaluate_best(s) and report(s, test,
// seconds) are the program's own, declared beside its Session.
template <typename Session, typename Ranks>
int end_run(const char* program, Session& s, Ranks& ranks, bool interrupted,
            std::chrono::steady_clock::time_point start) {
  if (!interrupted && s.state.stopper.should_stop())
    std::printf("early stopping: no improvement for %d epochs; best epoch %d\n",
                s.config().patience, s.state.stopper.best_epoch());
  Evaluation test;
  if (ranks.leader() && !interrupted && !StopSignals::received()) test = evaluate_best(s);
  if (StopSignals::received() || interrupted) {
    ranks.ending_together();  // every rank stopped after the same step
    // A rank that did not receive the signal itself reports the one that did.
    return stopped_by_signal(
        program, s, StopSignals::received() ? StopSignals::received() : SIGTERM, interrupted);
  }
  if (ranks.leader()) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report(s, test, seconds);
  }
  return 0;
}

}  // namespace cli
