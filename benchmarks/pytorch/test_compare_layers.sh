#!/usr/bin/env bash
# Checks benchmarks/pytorch/compare_layers.sh end to end on a tiny setting
# (one repetition, --benchmark_min_time=0.001, one PyTorch pass: a check of
# the pipeline, nothing is measured):
#  1. its table has a row with both times and the ratio for every case of
#     both sides: every BM_layer_ benchmark of `kernels` and every case of
#     the layer_cases_*.py files;
#  2. a case that only PyTorch has, and one that only minidl has, each fail
#     the comparison with their names;
#  3. it refuses, with one line and a non-zero exit, when torch is made to
#     load netlib's reference BLAS.
# Exits 77 (skipped) without python3-torch or the reference BLAS to load;
# under CI=true those are failures.
#
# Usage: benchmarks/pytorch/test_compare_layers.sh   (env: KERNELS_BIN as compare_layers.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "test_compare_layers: FAILED: $*" >&2
  exit 1
}
source tests/require.sh
require_torch
require_reference_blas
kernels_bin=${KERNELS_BIN:-build/benchmarks/kernels}
[[ -x $kernels_bin ]] || fail "$kernels_bin does not exist: build the kernels target first"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export KERNELS_BIN=$kernels_bin TORCH_REPS=1 TORCH_WARMUP=0 BENCHMARK_ARGS=--benchmark_min_time=0.001

# 1. Every case of both sides, with two times and a ratio.
benchmarks/pytorch/compare_layers.sh 1 >"$out/report" 2>"$out/err" ||
  fail "compare_layers.sh exited $? on the tiny setting: $(tail -n1 "$out/err")"
"$kernels_bin" --benchmark_list_tests --benchmark_filter=BM_layer_ | sed -e 's/^BM_layer_//' -e 's|/.*||' >"$out/cases"
/usr/bin/python3 - >>"$out/cases" <<'PY'
import sys
sys.path.insert(0, "benchmarks/pytorch")
import layers
for name, _, _ in layers.load_cases("benchmarks/pytorch"):
    print(name)
PY
[[ $(grep -c . "$out/cases") -gt 0 ]] || fail "found no case on either side"
number='[0-9]+\.[0-9]+'
while read -r case; do
  grep -qE "^\| $case \| $number \| $number \| $number \|$" "$out/report" ||
    fail "the table lacks a full row for case '$case'"
done < <(sort -u "$out/cases")
grep -q "^PyTorch libraries blas=[^ ]*openblas" "$out/report" || fail "the header does not name OpenBLAS as PyTorch's BLAS"
grep -q "^threads=2;" "$out/report" || fail "the header does not give the threads"

# 2. A case on one side only fails the comparison, named.
mkdir "$out/extra" "$out/fewer"
cp benchmarks/pytorch/layer_cases_*.py "$out/extra/"
cat >"$out/extra/layer_cases_zz_smoke.py" <<'PY'
import torch.nn as nn
CASES = [("smoke_only_in_pytorch_1x1", lambda: nn.Identity(), (1, 1))]
PY
cat >"$out/fewer/layer_cases_activations.py" <<'PY'
import torch.nn as nn
CASES = [("sigmoid_64x32x28x28", lambda: nn.Sigmoid(), (64, 32, 28, 28))]
PY
status=0
CASES_DIR=$out/extra FILTER='sigmoid_|smoke_only' benchmarks/pytorch/compare_layers.sh 1 >"$out/report" 2>"$out/err" || status=$?
((status != 0)) || fail "a case only PyTorch has did not fail the comparison"
grep -q "cases without a twin: smoke_only_in_pytorch_1x1 (no minidl BM_layer_smoke_only_in_pytorch_1x1 case)" "$out/err" ||
  fail "the error does not name the case only PyTorch has: $(tail -n1 "$out/err")"
grep -qE "^\| smoke_only_in_pytorch_1x1 \| missing \| $number \| - \|$" "$out/report" || fail "the table does not mark minidl's time as missing"
status=0
CASES_DIR=$out/fewer FILTER='(sigmoid|tanh)_' benchmarks/pytorch/compare_layers.sh 1 >"$out/report" 2>"$out/err" || status=$?
((status != 0)) || fail "a case only minidl has did not fail the comparison"
grep -q "cases without a twin: tanh_64x32x28x28 (no PyTorch case)" "$out/err" ||
  fail "the error does not name the case only minidl has: $(tail -n1 "$out/err")"

# 3. The reference BLAS loaded in front of OpenBLAS: refused in one line, no table.
status=0
LD_LIBRARY_PATH=$REFERENCE_BLAS_DIR FILTER='sigmoid_' benchmarks/pytorch/compare_layers.sh 1 >"$out/report" 2>"$out/err" || status=$?
((status != 0)) || fail "compare_layers.sh reported a comparison on the reference BLAS"
if [[ $(grep -c . "$out/err") != 1 ]] || ! grep -q "^compare_layers.sh: error: .*refusing to compare: .* reference BLAS" "$out/err"; then
  fail "compare_layers.sh did not refuse in one clear line: $(cat "$out/err")"
fi
[[ ! -s $out/report ]] || fail "compare_layers.sh printed a table before refusing"
echo "test_compare_layers: passed ($(sort -u "$out/cases" | grep -c .) cases on both sides; a missing twin and the reference BLAS refused)"
