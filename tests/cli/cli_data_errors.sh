#!/usr/bin/env bash
# Data the model cannot take: one line naming the problem, status 1, no output folder.
# Usage: cli_data_errors.sh MNIST_BINARY WORK_DIR   (the data is generated here)
set -euo pipefail
mnist=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
expect_error() {  # NAME PATTERN
  [[ $status -eq 1 ]] || { cat "$work/err"; fail "$1: status $status, want 1"; }
  [[ $(wc -l <"$work/err") -eq 1 ]] || { cat "$work/err"; fail "$1: stderr is not one line"; }
  grep -q -- "$2" "$work/err" || fail "$1: message: $(cat "$work/err")"
  [[ ! -e $work/$1 ]] || fail "$1: the failed run left its output folder"
  echo "ok: $1: $(cat "$work/err")"
}

# Small data sets in MNIST's IDX format: SIZE x SIZE images in the folder dSIZE.
make_data() {
  python3 - "$work/d$1" "$1" <<'PY'
import os, struct, sys
out, size = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
for stem, n in (("train", 60), ("t10k", 20)):
    with open(os.path.join(out, f"{stem}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, size, size) + bytes((i * 7) % 256 for i in range(n * size * size)))
    with open(os.path.join(out, f"{stem}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
}
make_data 32
status=0
"$mnist" train --data "$work/d32" --val 10 --epochs 1 --out "$work/o32" >/dev/null 2>"$work/err" || status=$?
expect_error o32 "$work/d32: images are 32x32; this model takes 28x28"

# evaluate too, with a model trained on 28x28 images.
make_data 28
"$mnist" train --data "$work/d28" --val 10 --epochs 1 --out "$work/o28" >/dev/null
status=0
"$mnist" evaluate --model "$work/o28/best.safetensors" --data "$work/d32" --out "$work/e32" >/dev/null 2>"$work/err" || status=$?
expect_error e32 "$work/d32: images are 32x32; this model takes 28x28"

echo "1 passed, 0 failed: cli_data_errors"
