#!/usr/bin/env bash
# Checks benchmarks/pytorch/compare.sh end to end on a tiny setting (one
# round, 256 training images: a check of the pipeline, nothing is measured):
#  1. it reports a comparison, every torch process named OpenBLAS as its BLAS,
#     and the LibTorch twin computed what epoch.py computed (same mean loss and
#     accuracy: the twins draw the same random numbers);
#  2. it refuses, with one line and a non-zero exit, when torch is made to
#     load netlib's reference BLAS (LD_LIBRARY_PATH in front of the
#     alternative OpenBLAS holds).
# Exits 77 (skipped) without python3-torch, libtorch-dev or the reference BLAS
# to load; under CI=true those are failures.
#
# Usage: benchmarks/pytorch/test_compare.sh   (env: EPOCH_BIN, MNIST_DIR as compare.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "test_compare: FAILED: $*" >&2
  exit 1
}
source tests/require.sh
require_torch
require_libtorch
require_reference_blas

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# 1. The pipeline, with whatever libblas.so.3 this machine selects (OpenBLAS).
LIMIT_TRAIN=256 benchmarks/pytorch/compare.sh 1 2 >"$out/report" 2>"$out/err" ||
  fail "compare.sh exited $? on the tiny setting: $(tail -n1 "$out/err")"
for program in "PyTorch as installed" "PyTorch tuned" "PyTorch tuned, mmap_max=0" "LibTorch tuned"; do
  grep -q "^$program loaded: blas=[^ ]*openblas" "$out/report" || fail "$program did not report OpenBLAS as its BLAS"
done
for row in "training epoch (s)" "test evaluation (s)" "1-image latency (ms)" "peak RSS (MB)"; do
  [[ $(grep -c "^| $row | " "$out/report") == 2 ]] || fail "the report lacks its median or ratio row '$row'"
done
python_result=$(sed -n 's/^PyTorch tuned \(mean_loss=.*\)/\1/p' "$out/report")
libtorch_result=$(sed -n 's/^LibTorch tuned \(mean_loss=.*\)/\1/p' "$out/report")
[[ -n $python_result && $python_result == "$libtorch_result" ]] ||
  fail "the LibTorch twin computed '$libtorch_result', epoch.py '$python_result'"

# 2. The reference BLAS loaded in front of OpenBLAS: the comparison is refused.
status=0
LD_LIBRARY_PATH=$REFERENCE_BLAS_DIR LIMIT_TRAIN=64 benchmarks/pytorch/compare.sh 1 2 >"$out/report" 2>"$out/err" || status=$?
((status != 0)) || fail "compare.sh reported a comparison on the reference BLAS"
if [[ $(grep -c '^compare.sh: error: ' "$out/err") != 1 ]] ||
  ! grep -q "refusing to compare: .* reference BLAS" "$out/err"; then
  fail "compare.sh did not refuse in one clear line: $(tail -n1 "$out/err")"
fi
[[ ! -s $out/report ]] || fail "compare.sh printed a report before refusing"
echo "test_compare: passed ($python_result for both twins; the reference BLAS refused)"
