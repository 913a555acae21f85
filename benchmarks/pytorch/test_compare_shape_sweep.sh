#!/usr/bin/env bash
# Checks benchmarks/pytorch/compare_shape_sweep.sh end to end in its quick
# mode (QUICK=1: the quick grid, one repetition; a check of the pipeline,
# nothing is measured):
#  1. its table has one full row per (case, pass) of `shape_sweep --quick
#     --list` (three passes per convolution, one per layer): minidl's kernel
#     and time, the fastest kernel, PyTorch's time and backend, the ratio, the
#     rate; the header names OpenBLAS as PyTorch's BLAS and says whether
#     oneDNN is on;
#  2. it refuses, with one line, a non-zero exit and no table, when minidl
#     printed no line for a pass, when torch is made to load netlib's
#     reference BLAS, and on bad arguments.
# Exits 77 (skipped) without python3-torch or the reference BLAS to load;
# under CI=true those are failures.
#
# Usage: benchmarks/pytorch/test_compare_shape_sweep.sh   (env: SHAPE_SWEEP_BIN)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "test_compare_shape_sweep: FAILED: $*" >&2
  exit 1
}
source tests/require.sh
require_torch
require_reference_blas
sweep_bin=$(realpath "${SHAPE_SWEEP_BIN:-build/benchmarks/shape_sweep}")
[[ -x $sweep_bin ]] || fail "$sweep_bin does not exist: build the shape_sweep target first"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
driver=benchmarks/pytorch/compare_shape_sweep.sh

# 1. Every (case, pass) of the quick grid, in a full row.
QUICK=1 SHAPE_SWEEP_BIN=$sweep_bin $driver >"$out/report" 2>"$out/err" ||
  fail "$driver exited $? in its quick mode: $(tail -n1 "$out/err")"
grep -q "^PyTorch libraries blas=[^ ]*openblas" "$out/report" || fail "the header does not name OpenBLAS as PyTorch's BLAS"
grep -q "^PyTorch onednn available=" "$out/report" || fail "the header does not say whether oneDNN is on"
grep -q "^PIPELINE CHECK ONLY" "$out/report" || fail "the quick mode is not marked as a pipeline check"
"$sweep_bin" --quick --list >"$out/cases"
[[ $(grep -c . "$out/cases") -gt 0 ]] || fail "shape_sweep --quick --list printed no case"
number='[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?'
rows=0
while read -r case; do
  if [[ $case == conv_* ]]; then
    passes=(forward backward_data backward_weights)
    kernel='(direct|rows|im2col|winograd|winograd4|pointwise)'
  else
    passes=(forward_backward)
    kernel=layer
  fi
  for pass in "${passes[@]}"; do
    grep -qE "^\| $case \| $pass \| $kernel \| $number \| $kernel \| $number \| $number \| [a-z,_:]+ \| $number \| $number (GFLOP/s|GB/s) \| ($number|-) \|$" "$out/report" ||
      fail "the table lacks a full row for $case $pass"
    rows=$((rows + 1))
  done
done <"$out/cases"
[[ $(grep -c '^| [a-z]' "$out/report") == $((rows + 1)) ]] || fail "the table has other rows than the $rows (case, pass) pairs"

# refused NAME PATTERN ARGS [ENV...]: the driver, run with ARGS and ENV on the quick grid, must
# fail in one clear line matching PATTERN and print no table.
refused() {
  local name=$1 pattern=$2 args status=0
  read -ra args <<<"$3"
  shift 3
  env QUICK=1 SHAPE_SWEEP_BIN="$sweep_bin" "$@" $driver "${args[@]}" >"$out/refused" 2>"$out/err" || status=$?
  ((status != 0)) || fail "$driver reported a comparison $name"
  if [[ $(grep -c '^compare_shape_sweep.sh: error: ' "$out/err") != 1 ]] || ! grep -q "$pattern" "$out/err"; then
    fail "$driver did not refuse $name in one clear line: $(tail -n1 "$out/err")"
  fi
  [[ ! -s $out/refused ]] || fail "$driver printed a report before refusing $name"
}

# 2. minidl's program behind a filter that drops its backward-data lines; the reference BLAS;
# bad arguments.
printf '#!/bin/sh\n"%s" "$@" | grep -v "	backward_data	"\n' "$sweep_bin" >"$out/no_backward_data"
chmod +x "$out/no_backward_data"
refused "with minidl's backward-data lines missing" \
  "cases without a twin: .*conv_k3_s1_c16x32_h14_n2 backward_data (no minidl time)" "" \
  SHAPE_SWEEP_BIN="$out/no_backward_data"
refused "on the reference BLAS" "refusing to compare: .* reference BLAS" "" LD_LIBRARY_PATH="$REFERENCE_BLAS_DIR"
refused "of REPS=0" "REPS and THREADS must be whole numbers >= 1, not '0'" "0 2"
refused "of a third argument" "usage: compare_shape_sweep.sh \\[REPS=5\\] \\[THREADS=2\\]" "1 2 3"
echo "test_compare_shape_sweep: passed ($rows (case, pass) rows; a missing pass, the reference BLAS and bad arguments refused)"
