#!/usr/bin/env bash
# A machine without the memory to load MNIST: one line naming the file and the size, status 1,
# no output folder. Not run under AddressSanitizer, which needs more address space than the cap.
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
echo "1 passed, 0 failed: out_of_memory"
