#!/usr/bin/env bash
# A machine without the memory to load MNIST, or to hold the tensors of a training step: one line
# naming what was being allocated and its size, status 1 (not 3: running out of memory is not
# divergence), no output folder. Not run under AddressSanitizer, which needs more address space
# than the caps.
# Usage: out_of_memory.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
expect_error() {  # NAME PATTERN
  [[ $status -eq 1 ]] || { cat "$work/err"; fail "$1: status $status, want 1"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "$1: stderr is not one line"; }
  grep -q -- "$2" "$work/err" || fail "$1: message: $(cat "$work/err")"
  [[ ! -e $work/$1 ]] || fail "$1: the failed run left its output folder"
  echo "ok: $1: $(cat "$work/err")"
}

# Too little address space to hold the 47 MB of training images.
status=0
(ulimit -v 60000 && exec "$mnist" train --limit-train 100 --epochs 1 --out "$work/oom") >/dev/null 2>"$work/err" || status=$?
expect_error oom "train-images-idx3-ubyte.*: out of memory: cannot allocate 47.* MB"

# Room for the data, not for the first step's activations: a batch of 10000 needs far more than
# 300 MB.
status=0
(ulimit -v 300000 && exec "$mnist" train --limit-train 10000 --batch 10000 --val 0 --limit-test 100 \
  --epochs 1 --threads 1 --out "$work/step") >/dev/null 2>"$work/err" || status=$?
expect_error step "out of memory: cannot allocate a tensor of shape \[10000, "
! grep -q "diverged\|smaller --lr" "$work/err" || fail "step: out of memory is reported as divergence"
echo "1 passed, 0 failed: out_of_memory"
