#!/usr/bin/env bash
# Data-parallel training of a small ResNet (batch normalisation, label smoothing, crops and
# flips) under mpirun: 2 and 3 ranks (one thread each) end with the bits of one process with 1
# and 2 threads; --stop-after on 2 ranks then --resume on 3 ends with them too.
# Usage: mpi_resnet.sh RESNET_BINARY WORK_DIR MPIEXEC   (MPIEXEC empty: minidl::mpi was not
# built; skipped then, and without Fashion-MNIST; a failure under CI=true)
set -euo pipefail
resnet=$1 work=$2 mpiexec=${3:-}
source "$(dirname "$0")/../require.sh"
[[ -n $mpiexec ]] || skip_or_fail "minidl::mpi was not built (CMake did not find MPI)"
require_fashion
rm -rf "$work" && mkdir -p "$work"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
same_run() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
def tensors(path):
    data = open(path, "rb").read()
    return data[8 + struct.unpack("<Q", data[:8])[0]:]
def history(folder):
    return [line.rsplit(",", 1)[0] for line in open(folder + "/history.csv")]
a, b = sys.argv[1:3]
same = tensors(a + "/last.safetensors") == tensors(b + "/last.safetensors") and \
       history(a) == history(b) and len(history(a)) > 1
sys.exit(0 if same else 1)
PY
}
mpirun_k() {
  local k=$1
  shift
  OMP_NUM_THREADS=1 timeout 300 "$mpiexec" --oversubscribe --allow-run-as-root -np "$k" "$@"
}

# 240 images in batches of 24 (6 chunks), 2 epochs: 20 steps of a ResNet-8 of width 4, with
# its default crops and flips.
common=(--data "$FASHION_DIR" --limit-train 240 --limit-test 200 --val 100 --epochs 2 --depth 8
        --width 4 --batch 24 --seed 3)

"$resnet" train "${common[@]}" --threads 1 --out "$work/one" >"$work/one.txt"
"$resnet" train "${common[@]}" --threads 2 --out "$work/two" >"$work/two.txt"
same_run "$work/one" "$work/two" || fail "1 and 2 threads end with different weights"
for k in 2 3; do
  mpirun_k "$k" "$resnet" train "${common[@]}" --threads 1 --out "$work/k$k" >"$work/k$k.txt" 2>&1 ||
    { cat "$work/k$k.txt" >&2; fail "mpirun -np $k failed"; }
  same_run "$work/one" "$work/k$k" || fail "$k ranks end with other weights than one process"
done
mpirun_k 2 "$resnet" train "${common[@]}" --threads 1 --stop-after 1 --out "$work/resumed" \
  >"$work/first.txt" 2>&1 || { cat "$work/first.txt" >&2; fail "the first epoch on 2 ranks failed"; }
mpirun_k 3 "$resnet" train --resume --out "$work/resumed" >"$work/second.txt" 2>&1 ||
  { cat "$work/second.txt" >&2; fail "resuming on 3 ranks failed"; }
same_run "$work/one" "$work/resumed" || fail "2 ranks, then resumed on 3: other weights"
echo "mpi_resnet: all checks passed"
