#!/usr/bin/env bash
# scripts/run_mnist.sh called twice keeps both runs: the second writes to results-2/ and the
# first run's files are unchanged.
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
echo "1 passed, 0 failed: run_mnist_twice"
