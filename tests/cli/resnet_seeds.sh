#!/usr/bin/env bash
# benchmarks/resnet/seeds.sh on three tiny runs: one row a seed with the accuracies of its
# metrics.json, medians that are the middle values, a finished seed reported without training
# it again, and a failed run failing the script with the log named.
# Usage: resnet_seeds.sh RESNET_BINARY WORK_DIR   (needs Fashion-MNIST, as resnet_short.sh)
set -euo pipefail
resnet=$1 work=$2
here=$(dirname "$0")
source "$here/../require.sh"
require_fashion
rm -rf "$work" && mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
seeds=$here/../../benchmarks/resnet/seeds.sh
tiny=(--data "$FASHION_DIR" --limit-train 200 --limit-test 100 --val 100 --epochs 1 --depth 8
      --width 4 --batch 50)

RESNET=$resnet JOBS=2 "$seeds" "$work/runs" 4 5 6 -- "${tiny[@]}" >"$work/table.txt"
cat "$work/table.txt"
[[ $(grep -c '^| [0-9]' "$work/table.txt") == 3 ]] || fail "the table does not hold 3 seeds"
# Each row's accuracies are its run's, and the medians are the middle ones.
python3 - "$work" <<'PY' || fail "a row or a median does not match the runs' metrics.json"
import json, statistics, sys
work = sys.argv[1]
rows = {}
for line in open(f"{work}/table.txt"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    rows[cells[0]] = cells
test, mirror = [], []
for s in ("4", "5", "6"):
    m = json.load(open(f"{work}/runs/seed{s}/metrics.json"))
    assert m["seed"] == int(s), s
    test.append(m["test_accuracy"])
    mirror.append(m["test_accuracy_mirror_averaged"])
    assert rows[s][1] == f"{100 * test[-1]:.2f}%", (rows[s], test[-1])
    assert rows[s][2] == f"{100 * mirror[-1]:.2f}%", (rows[s], mirror[-1])
assert rows["median"][1] == f"{100 * statistics.median(test):.2f}%", rows["median"]
assert rows["median"][2] == f"{100 * statistics.median(mirror):.2f}%", rows["median"]
PY
echo "ok: one row a seed, and the medians"

# A finished seed is reported again, not trained again.
before=$(stat -c %Y "$work/runs/seed5/metrics.json")
RESNET=$resnet "$seeds" "$work/runs" 5 -- "${tiny[@]}" >"$work/again.txt"
grep -q '^| 5 |' "$work/again.txt" || fail "a finished seed is not reported"
[[ $(stat -c %Y "$work/runs/seed5/metrics.json") == "$before" ]] || fail "a finished seed ran again"
echo "ok: a finished seed is reported without training it again"

# A run that fails fails the script, which names the logs.
if RESNET=$resnet "$seeds" "$work/runs" 7 -- --no-such-flag 2>"$work/err.txt"; then
  fail "a failed run did not fail the script"
fi
grep -q "a run failed; see" "$work/err.txt" || fail "the failure does not name the logs"
grep -q "no-such-flag" "$work/runs/seed7.log" || fail "the run's error is not in its log"
echo "ok: a failed run fails the script"
