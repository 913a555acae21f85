#!/usr/bin/env bash
# scripts/run_mnist.sh called twice keeps both runs: the second writes to results-2/ and the
# first run's files are unchanged. A results/ folder holding only evaluate's pictures is not
# reused either, because the script knows every file 'mnist train' refuses to replace.
# Usage: run_mnist_twice.sh REPO_DIR MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77 without)
set -euo pipefail
repo=$1 mnist=$2 work=$3
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
run() { MNIST_BIN=$mnist RESULTS_DIR=$work/results "$repo/scripts/run_mnist.sh" \
          --limit-train 500 --val 100 --limit-test 500 --epochs 1 "$@" >"$work/log" 2>&1 || { cat "$work/log"; fail "run_mnist.sh $*"; }; }
run
first=$(md5sum <"$work/results/best.safetensors")
run --seed 2
grep -q "this one writes to $work/results-2" "$work/log" || fail "no word of the new folder"
[[ -s $work/results-2/metrics.json ]] || fail "the second run's results are not in results-2"
[[ $(md5sum <"$work/results/best.safetensors") == "$first" ]] || fail "the first run's model was replaced"
grep -q '"seed": 1,' "$work/results/metrics.json" || fail "results/ no longer holds the first run"
echo "ok: a second call writes to results-2/"

# A folder holding only evaluate's pictures: 'mnist train' refuses it, so the script moves on.
"$mnist" evaluate --model "$work/results/best.safetensors" --limit-test 100 --out "$work/pictures" >/dev/null
pictures=$(md5sum "$work/pictures"/*)
MNIST_BIN=$mnist RESULTS_DIR=$work/pictures "$repo/scripts/run_mnist.sh" --limit-train 500 --val 100 \
  --limit-test 500 --epochs 1 >"$work/log" 2>&1 || { cat "$work/log"; fail "run_mnist.sh beside evaluate's pictures"; }
grep -q "this one writes to $work/pictures-2" "$work/log" || fail "no word of the new folder: $(cat "$work/log")"
[[ -s $work/pictures-2/metrics.json ]] || fail "the run's results are not in pictures-2"
[[ $(md5sum "$work/pictures"/*) == "$pictures" ]] || fail "evaluate's pictures were changed"
echo "ok: a folder of evaluate's pictures is not reused"
# It looks for the same files as 'mnist train' (run_file_names() in output_folder.hpp).
names=$(sed -n '/^inline .*\(training\|run\)_file_names() {/,/^}/p' "$repo/examples/common/output_folder.hpp" |
  grep -o '"[a-z_]*\.[a-z]*"' | tr -d '"' | sort -u)
[[ $(wc -w <<<"$names") -ge 7 ]] || fail "could not read the file names from output_folder.hpp: $names"
holds=$(sed -n '/^holds_run()/,/^}/p' "$repo/scripts/run_mnist.sh")
for f in $names; do
  grep -qF "$f" <<<"$holds" || fail "run_mnist.sh does not count $f as part of a run"
done
echo "1 passed, 0 failed: run_mnist_twice"
