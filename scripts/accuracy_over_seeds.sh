#!/usr/bin/env bash
# Trains the MNIST CNN once per seed and summarises the test accuracy of the
# chosen checkpoints (mean, min, max, median).
# Usage: scripts/accuracy_over_seeds.sh OUT_DIR "SEEDS" [mnist train options...]
#   e.g. scripts/accuracy_over_seeds.sh runs/default "1 2 3"
#        scripts/accuracy_over_seeds.sh runs/reference "1 2 3" --val 0
set -euo pipefail
out=$1 seeds=$2
shift 2
mnist=${MNIST_BIN:-build/examples/mnist/mnist}
for s in $seeds; do
  "$mnist" train --seed "$s" --out "$out/seed$s" "$@" > "$out.seed$s.log" 2>&1 || { mkdir -p "$out"; tail -3 "$out.seed$s.log"; exit 1; }
done
python3 - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = [(s, json.load(open(f"{out}/seed{s}/metrics.json"))) for s in seeds]
acc = [m["test_accuracy"] for _, m in rows]
for s, m in rows:
    print(f"seed {s}: test accuracy {m['test_accuracy']:.4f}  best epoch {m['best_epoch']}  epochs run {m['epochs_run']}  {m['wall_seconds']:.0f}s")
print(f"{out}: mean {statistics.mean(acc):.4f}  median {statistics.median(acc):.4f}  min {min(acc):.4f}  max {max(acc):.4f}  (n={len(acc)})")
PY
