#!/usr/bin/env bash
# scripts/download_mnist.sh against local mirrors (file:// URLs): a mirror that is missing or
# serves a wrong file gives one line on stderr (after at most a line per file fetched), status 1
# and leaves nothing behind; a good one
# gives the four verified files.
# Usage: download.sh REPO_DIR WORK_DIR   (needs MNIST_DIR and curl; exits 77, skipped, without them)
set -euo pipefail
repo=$1 work=$2
source "$(dirname "$0")/../require.sh"
require_mnist
command -v curl >/dev/null || skip_or_fail "curl is missing (apt-get install curl)"
rm -rf "$work" && mkdir -p "$work"
download="$repo/scripts/download_mnist.sh"
fail() { echo "FAIL: $*"; exit 1; }
expect_failure() {  # NAME TARGET PATTERN
  [[ $status -eq 1 ]] || { cat "$work/log"; fail "$1: status $status, want 1"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "$1: stderr is not one line"; }
  grep -q -- "^error: .*$3" "$work/err" || fail "$1: message: $(cat "$work/err")"
  [[ $(wc -l <"$work/log") -le 4 ]] || { cat "$work/log"; fail "$1: noise on stdout"; }
  echo "ok: $1: $(head -c 200 "$work/err")"
}

# No mirror at all: no folder is left behind.
status=0
MNIST_MIRROR=file://$work/no-mirror "$download" "$work/data" >"$work/log" 2>"$work/err" || status=$?
expect_failure "missing mirror" "$work/data" "no-mirror/train-images-idx3-ubyte.gz"
[[ ! -e $work/data ]] || fail "an empty data folder was left behind"

# A mirror whose third file is damaged: the two files fetched before it are removed again,
# and a file the user had in the folder stays.
mkdir -p "$work/bad-mirror" "$work/mine"
ln -s "$MNIST_DIR"/train-*.gz "$work/bad-mirror/"
head -c 3000 "$MNIST_DIR/t10k-images-idx3-ubyte.gz" >"$work/bad-mirror/t10k-images-idx3-ubyte.gz"
echo notes >"$work/mine/notes.txt"
status=0
MNIST_MIRROR=file://$work/bad-mirror "$download" "$work/mine" >"$work/log" 2>"$work/err" || status=$?
expect_failure "damaged file" "$work/mine" "t10k-images-idx3-ubyte.gz: wrong content"
[[ $(ls -A "$work/mine") == notes.txt ]] || fail "left behind: $(ls -A "$work/mine")"

# A good mirror.
MNIST_MIRROR=file://$MNIST_DIR "$download" "$work/good" >/dev/null
[[ $(ls "$work/good" | wc -l) -eq 4 ]] || fail "the good mirror did not give four files: $(ls "$work/good")"
echo "1 passed, 0 failed: download"
