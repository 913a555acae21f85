#!/usr/bin/env bash
# An --out that cannot hold the run is found before the first epoch: a file, a read-only folder
# and a full disk each give one line naming the folder, status 1, and no epoch trained.
# Read-only and full folders are made as a read-only and a 1 MB tmpfs mount (as root) or with
# chmod (otherwise); where neither can be made the test exits 77 (skipped).
# Usage: out_unwritable.sh MNIST_BINARY WORK_DIR   (needs MNIST_DIR; exits 77, skipped, without it)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
mounted=()
trap 'for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done' EXIT

can_fill=0
if [[ $(id -u) -eq 0 ]]; then
  can_fill=1
  mkdir -p "$work/ro" "$work/full"
  if ! mount -t tmpfs -o ro,size=1m minidl-ro "$work/ro" 2>/dev/null; then
    skip_or_fail "cannot mount a tmpfs here"
  fi
  mounted+=("$work/ro")
  mount -t tmpfs -o size=1m minidl-full "$work/full"
  mounted+=("$work/full")
else
  mkdir -p "$work/ro" && chmod 555 "$work/ro"
  # without root there is no small disk to fill: that case is left out
fi
echo "a file" >"$work/file"

check() {  # OUT PATTERN
  local status=0
  "$mnist" train --limit-train 500 --val 100 --limit-test 500 --epochs 1 --out "$1" >"$work/out" 2>"$work/err" || status=$?
  [[ $status -eq 1 ]] || { cat "$work/err"; fail "--out $1: status $status, want 1"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "--out $1: stderr is not one line"; }
  grep -q -- "$2" "$work/err" || fail "--out $1: message: $(cat "$work/err")"
  ! grep -q "^epoch" "$work/out" || fail "--out $1: an epoch was trained before the problem was found"
  echo "ok: $(cat "$work/err")"
}
check "$work/file" "$work/file: --out must be a folder"
check "$work/ro" "$work/ro: cannot write into the output folder"
if [[ $can_fill == 1 ]]; then
  check "$work/full" "$work/full: only 1.0 MB free on its disk; a training run needs about"
  [[ -z $(ls -A "$work/full") ]] || fail "the refused run left files on the full disk: $(ls -A "$work/full")"
fi
echo "1 passed, 0 failed: out_unwritable"
