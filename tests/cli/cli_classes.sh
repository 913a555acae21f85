#!/usr/bin/env bash
# --classes on another IDX data set: a short run on Fashion-MNIST reports with its class names
# and never calls the data MNIST, and --resume keeps the names the run started with. Without
# --classes, a folder given with --data is called only "data", with no MNIST hints.
# Usage: cli_classes.sh MNIST_BINARY WORK_DIR   (needs Debian's dataset-fashion-mnist)
set -euo pipefail
mnist=$1 work=$2
source "$(dirname "$0")/../require.sh"
source "$(dirname "$0")/unnamed_data.sh"
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[[ -f $data/train-images-idx3-ubyte.gz ]] ||
  skip_or_fail "no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)"
rm -rf "$work" && mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

common=(--data "$data" --limit-train 1000 --val 200 --limit-test 500 --batch 50 --seed 3)
"$mnist" train "${common[@]}" --epochs 1 --classes fashion --out "$work/run" >"$work/first.txt"
grep -q "loading Fashion-MNIST from" "$work/first.txt" || fail "the run does not name its data set"
grep -Eq "(^|[^-])MNIST" "$work/first.txt" && fail "the run calls Fashion-MNIST 'MNIST'"
grep -Eq "true (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) predicted as" \
  "$work/first.txt" || fail "the most confused pairs are not named by class"
echo "ok: a Fashion-MNIST run reports with its class names"

# Resumed without --classes (or --data), the run keeps both.
(cd "$work" && "$mnist" train --resume --epochs 2 --out run >"$work/resumed.txt")
grep -q "loading Fashion-MNIST from $data" "$work/resumed.txt" ||
  fail "the resumed run forgot its data set or its class names"
grep -Eq "true (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) predicted as" \
  "$work/resumed.txt" || fail "the resumed run lost its class names"
echo "ok: --resume keeps the class names and the data folder"

# --data without --classes: train and evaluate neither call the folder MNIST nor point at
# MNIST_DIR or the download script when a file is missing (here the test labels).
check_unnamed_data "$mnist" "$work/run/best.safetensors" "$data" "MNIST|download_mnist" "$work"
echo "ok: a folder given with --data alone is called data, without MNIST hints"

# A names file with the wrong count stops the run before it starts, touching nothing.
printf 'a\nb\n' >"$work/two.txt"
if "$mnist" train "${common[@]}" --classes "$work/two.txt" --out "$work/bad" 2>"$work/err"; then
  fail "a names file with 2 names was accepted"
fi
grep -q "two.txt: 2 class names" "$work/err" || fail "the error does not name the file: $(cat "$work/err")"
[[ ! -e $work/bad ]] || fail "the refused run created its folder"
echo "ok: a bad names file is refused before the run starts"
