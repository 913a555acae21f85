#!/usr/bin/env bash
# Ctrl-C and `kill` during training: SIGINT in the second epoch must stop the run with status
# 130, say how to continue, leave a checkpoint that loads and no temporary file; --resume then
# ends with the weights of a run never interrupted. SIGTERM in the first epoch: status 143 and
# no claim of a checkpoint that does not exist. SIGINT after the last epoch, while the final
# report evaluates the best checkpoint: status 130, no report file, a message that names no epoch
# beyond the last and says how to write the report (--resume, which then writes it). Each signal
# is sent as soon as the run reaches the point it is meant for (no sleep): an epoch of 2000
# images is a fraction of a second on a fast machine, so a pause could let the epoch end before
# the signal arrives.
# Usage: interrupt_resume.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
args=(--limit-train 2000 --val 500 --epochs 2 --seed 7)
fail() { echo "FAIL: $*"; exit 1; }
rows() { if [[ -f $1/history.csv ]]; then wc -l <"$1/history.csv"; else echo 0; fi; }
has_rows() { [[ $(rows "$1") -ge $2 ]]; }
# signal_when SIGNAL PID ERR_FILE WHAT CONDITION...: sends SIGNAL to the run PID as soon as the
# command CONDITION succeeds (looked at every 0.05 s); fails if the run ends before WHAT.
signal_when() {
  local signal=$1 pid=$2 err=$3 what=$4
  shift 4
  for _ in $(seq 12000); do
    "$@" && break
    kill -0 "$pid" 2>/dev/null || fail "the run ended before $what: $(cat "$err")"
    sleep 0.05
  done
  kill -"$signal" "$pid"
}

"$mnist" train "${args[@]}" --out "$work/straight" >/dev/null

# SIGINT during epoch 2.
"$mnist" train "${args[@]}" --out "$work/int" >"$work/int.out" 2>"$work/int.err" &
pid=$!
signal_when INT "$pid" "$work/int.err" "its first epoch" has_rows "$work/int" 2
status=0
wait "$pid" || status=$?
[[ $status -eq 130 ]] || { cat "$work/int.err"; fail "SIGINT: status $status, want 130 ($(($(rows "$work/int") - 1)) epochs in the history)"; }
[[ $(rows "$work/int") -eq 2 ]] || fail "the run finished epoch 2 before SIGINT arrived; nothing to test"
grep -q "stopped by SIGINT during epoch 2" "$work/int.err" || fail "message: $(cat "$work/int.err")"
grep -q "holds epoch 1" "$work/int.err" || fail "the message does not say what the checkpoint holds"
grep -q "continue with: mnist train --resume --out $work/int" "$work/int.err" || fail "no --resume hint"
leftover=$(find "$work/int" -name '*.tmp*')
[[ -z $leftover ]] || fail "temporary files left: $leftover"
"$mnist" evaluate --model "$work/int/last.safetensors" --limit-test 500 --out "$work/int_eval" >/dev/null ||
  fail "the checkpoint left by SIGINT does not load"
echo "ok: SIGINT stops with 130, a checkpoint that loads, no temporary file"

# Temporary files killed writers left behind (a checkpoint's, a picture's) are removed by the
# next run in the folder.
echo partial >"$work/int/last.safetensors.tmp.99999.0"
echo partial >"$work/int/confusion_matrix.png.tmp.99999.1"
"$mnist" train --resume --out "$work/int" >/dev/null
for stale in last.safetensors.tmp.99999.0 confusion_matrix.png.tmp.99999.1; do
  [[ ! -e $work/int/$stale ]] || fail "a stale temporary file survived --resume: $stale"
done
python3 - "$work/straight/last.safetensors" "$work/int/last.safetensors" <<'PY'
import struct, sys
def tensors(path):
    b = open(path, "rb").read()
    return b[8 + struct.unpack("<Q", b[:8])[0]:]
a, b = (tensors(p) for p in sys.argv[1:3])
assert a == b, "the resumed run's weights differ from the uninterrupted run's"
PY
echo "ok: resumed after SIGINT, identical to the uninterrupted run"

# SIGTERM during epoch 1: nothing to resume, and the message says so.
"$mnist" train --limit-train 20000 --val 500 --limit-test 500 --epochs 1 --seed 7 --out "$work/term" >"$work/term.out" 2>"$work/term.err" &
pid=$!
signal_when TERM "$pid" "$work/term.err" "its first epoch began" grep -qs "hyper-parameters:" "$work/term.out"
status=0
wait "$pid" || status=$?
[[ $status -eq 143 ]] || { cat "$work/term.err"; fail "SIGTERM: status $status, want 143"; }
[[ $(rows "$work/term") -eq 0 ]] || fail "epoch 1 finished before SIGTERM arrived; nothing to test"
grep -q "stopped by SIGTERM during epoch 1; no checkpoint was written" "$work/term.err" ||
  fail "message: $(cat "$work/term.err")"
! grep -q -- "--resume" "$work/term.err" || fail "suggests --resume with nothing to resume"
[[ -z $(find "$work/term" -name '*.safetensors*' 2>/dev/null) ]] || fail "a checkpoint appeared"
echo "ok: SIGTERM in epoch 1 stops with 143 and claims no checkpoint"

# SIGINT once the last epoch is in the history: the final report is then evaluating the best
# checkpoint on the 10000 test images, which takes far longer than the 0.05 s between looks.
"$mnist" train --limit-train 500 --val 500 --epochs 1 --seed 7 --out "$work/report" >"$work/report.out" 2>"$work/report.err" &
pid=$!
signal_when INT "$pid" "$work/report.err" "its epoch was saved" has_rows "$work/report" 2
status=0
wait "$pid" || status=$?
[[ $status -eq 130 ]] ||
  { cat "$work/report.err"; fail "SIGINT before the report: status $status, want 130 (metrics.json written: $([[ -e $work/report/metrics.json ]] && echo yes || echo no))"; }
grep -q "stopped by SIGINT after the last epoch (1), before the final report; $work/report/last.safetensors holds epoch 1" "$work/report.err" ||
  fail "message: $(cat "$work/report.err")"
! grep -q "during epoch" "$work/report.err" || fail "the message names an epoch that does not exist"
grep -q "write the report with: mnist train --resume --out $work/report" "$work/report.err" ||
  fail "no word of how to write the report: $(cat "$work/report.err")"
for f in metrics.json confusion_matrix.png wrong_predictions.png; do
  [[ ! -e $work/report/$f ]] || fail "$f was written although the run stopped before its report"
done
"$mnist" train --resume --out "$work/report" >"$work/report.out" || fail "--resume did not write the report"
grep -q "best checkpoint (epoch 1): test accuracy" "$work/report.out" || fail "--resume printed no report"
[[ -s $work/report/metrics.json && -s $work/report/confusion_matrix.png ]] || fail "--resume wrote no report files"
echo "ok: SIGINT after the last epoch stops before the report, and --resume writes it"
echo "1 passed, 0 failed: interrupt_resume"
