#!/usr/bin/env bash
# Builds minidl in Release and trains the MNIST CNN with the default recipe,
# leaving checkpoints, history, metrics and three pictures in results/.
# Data: $MNIST_DIR, else data/mnist (downloaded there when missing).
# Extra arguments go to 'mnist train' (e.g. --augment, --seed 2).
#
# A second call never replaces the first one's results: when results/ already
# holds a run, this one goes to results-2/ (then results-3/, ...). With --out,
# --resume or --overwrite among the arguments the folder is exactly the one
# given (results/ by default), and 'mnist train' decides.
#   RESULTS_DIR=path   base name of the results folder instead of results
#   MNIST_BIN=path     run this mnist binary instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."

data=${MNIST_DIR:-data/mnist}
if [[ -z ${MNIST_BIN:-} ]]; then
  scripts/install_deps.sh
  build=${BUILD_DIR:-build}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target mnist -j"$(nproc)"
  MNIST_BIN=$build/examples/mnist/mnist
fi
if ! ls "$data"/train-images*idx3-ubyte* >/dev/null 2>&1; then
  scripts/download_mnist.sh "$data"
fi

# Every file a run writes, as 'mnist train' lists them (run_file_names() in
# examples/common/output_folder.hpp): it refuses a folder holding any of them.
holds_run() {
  local f
  for f in best.safetensors last.safetensors history.csv metrics.json loss_acc_curves.png \
    confusion_matrix.png wrong_predictions.png; do
    [[ -e $1/$f ]] && return 0
  done
  return 1
}
base=${RESULTS_DIR:-results}
out=$base
chosen_by_user=0
for a in "$@"; do
  case $a in --out | --out=* | --resume | --overwrite) chosen_by_user=1 ;; esac
done
if [[ $chosen_by_user == 0 ]]; then
  n=2
  while holds_run "$out"; do
    out=$base-$n
    n=$((n + 1))
  done
  [[ $out == "$base" ]] || echo "$base holds an earlier run; this one writes to $out"
fi
"$MNIST_BIN" train --data "$data" --out "$out" "$@"
