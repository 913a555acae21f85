#!/usr/bin/env bash
# Training that goes wrong stops with status 3 and a message that points only at checkpoints
# that exist: --lr 10 (the loss explodes to about 1e9 but stays finite) and an SGD run whose
# loss turns NaN within the first epoch.
# Usage: divergence.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
small=(--limit-train 1000 --val 500 --limit-test 500 --epochs 2)
fail() { echo "FAIL: $*"; exit 1; }
check_stopped() {  # NAME PATTERN: status 3, one line on stderr matching PATTERN, no checkpoint
  [[ $status -eq 3 ]] || { cat "$work/err"; fail "$1: status $status, want 3"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "$1: stderr is not one line"; }
  grep -q -- "$2" "$work/err" || fail "$1: message: $(cat "$work/err")"
  grep -q "no checkpoint was written" "$work/err" || fail "$1: message does not say no checkpoint exists"
  ! grep -q "safetensors" "$work/err" || fail "$1: the message names a checkpoint that does not exist"
  [[ -z $(find "$work/$1" -name '*.safetensors' 2>/dev/null) ]] || fail "$1: a diverged epoch was saved"
}

status=0
"$mnist" train "${small[@]}" --lr 10 --out "$work/lr10" >/dev/null 2>"$work/err" || status=$?
check_stopped lr10 "training diverged in epoch 1: the mean training loss .* is far above 2.30"
echo "ok: --lr 10: $(cat "$work/err")"

status=0
"$mnist" train "${small[@]}" --optimizer sgd --lr 10 --momentum 0.999999 --batch 1 \
  --out "$work/nan" >/dev/null 2>"$work/err" || status=$?
check_stopped nan "epoch 1, batch [0-9]*: training diverged: the .* is -\?nan"
echo "ok: NaN in epoch 1: $(cat "$work/err")"
echo "1 passed, 0 failed: divergence"
