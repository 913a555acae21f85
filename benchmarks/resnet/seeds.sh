#!/usr/bin/env bash
# Trains the ResNet once per seed and prints each run's accuracies and their medians, the
# "median of 3 seeds" docs/resnet.md reports. The runs go side by side, JOBS at a time, each
# on THREADS threads: the weights do not depend on the thread count, so three seeds on a
# 2-core machine take about as long as one run of three times the epochs, and a run's wall
# clock says nothing about speed when others run beside it.
#
# Usage: seeds.sh OUT_DIR [SEED ...] [-- RESNET_TRAIN_OPTIONS ...]
#   Seeds 1 2 3 unless given. Each run writes OUT_DIR/seedS (its run folder) and
#   OUT_DIR/seedS.log; a folder that holds a run already is refused by `resnet train`.
#   RESNET=the resnet binary (default build/examples/resnet/resnet)
#   JOBS=runs at once (default: all of them), THREADS=threads a run (default 1)
#   PYTHON=a python3 to read metrics.json (default python3)
# Example, the default recipe at batch 64:
#   benchmarks/resnet/seeds.sh runs/batch64 -- --batch 64
# Re-running with a finished OUT_DIR/seedS prints that run's row without training it again.
set -euo pipefail
die() {
  echo "seeds.sh: $*" >&2
  exit 2
}
[[ $# -ge 1 && $1 != -* ]] || die "usage: seeds.sh OUT_DIR [SEED ...] [-- RESNET_TRAIN_OPTIONS ...]"
out=$1
shift
seeds=()
while [[ $# -gt 0 && $1 != -- ]]; do
  [[ $1 =~ ^[0-9]+$ ]] || die "a seed is a whole number, not '$1'"
  seeds+=("$1")
  shift
done
[[ $# -gt 0 ]] && shift  # the --
options=("$@")
[[ ${#seeds[@]} -gt 0 ]] || seeds=(1 2 3)
resnet=${RESNET:-build/examples/resnet/resnet}
jobs=${JOBS:-${#seeds[@]}} threads=${THREADS:-1} python=${PYTHON:-python3}
[[ -x $resnet ]] || die "no resnet binary at '$resnet' (build it, or set RESNET)"
[[ $jobs =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ ]] ||
  die "JOBS and THREADS must be whole numbers >= 1, not '$jobs' and '$threads'"
mkdir -p "$out"

# Train the seeds not yet finished, JOBS at a time; every run is waited for, and a failed
# one fails the script after the others have ended.
failed=0 running=0
reap_one() {
  wait -n || failed=1
  running=$((running - 1))
}
for s in "${seeds[@]}"; do
  [[ -s $out/seed$s/metrics.json ]] && continue
  "$resnet" train --seed "$s" --threads "$threads" "${options[@]}" --out "$out/seed$s" \
    >"$out/seed$s.log" 2>&1 &
  running=$((running + 1))
  ((running < jobs)) || reap_one
done
while ((running > 0)); do reap_one; done
((failed == 0)) || die "a run failed; see $out/seed*.log"

"$python" - "$out" "${seeds[@]}" <<'PY'
import csv, json, statistics, sys

out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    folder = f"{out}/seed{s}"
    with open(f"{folder}/metrics.json") as f:
        m = json.load(f)
    with open(f"{folder}/history.csv") as f:
        history = {int(r["epoch"]): r for r in csv.DictReader(f)}
    best = m["best_epoch"]
    rows.append((s, m["test_accuracy"], m.get("test_accuracy_mirror_averaged"),
                 float(history[best]["val_acc"]), best, m["epochs_run"], m["wall_seconds"]))

def pct(v):
    return "-" if v is None else f"{100 * v:.2f}%"

print("| seed | test accuracy | averaged with the mirror images | validation (epoch chosen) "
      "| wall clock |")
print("|---|---|---|---|---|")
for s, test, mirror, val, best, epochs, wall in rows:
    print(f"| {s} | {pct(test)} | {pct(mirror)} | {pct(val)} (epoch {best} of {epochs}) "
          f"| {int(wall) // 60}:{int(wall) % 60:02d} |")
mirrors = [r[2] for r in rows if r[2] is not None]
print(f"| median | {pct(statistics.median(r[1] for r in rows))} | "
      f"{pct(statistics.median(mirrors)) if mirrors else '-'} | | |")
PY
