#!/usr/bin/env bash
# Checks benchmarks/pytorch/compare_networks.sh end to end in its quick mode
# (QUICK=1, one round: a check of the pipeline, nothing is measured):
#  1. for every network, the report has a table with the training step, the
#     1-image latency and their GFLOP/s of all three programs, positive, and
#     minidl's ratios to both torches; the three printed the same parameter
#     count and multiply-adds per image (they built the same network); both
#     torches named OpenBLAS as their BLAS;
#  2. it refuses, with one line, a non-zero exit and no table, when a program
#     printed no line for a measurement, when one program's network differs
#     from its twins' (a parameter count changed on the way), when torch is
#     made to load netlib's reference BLAS, and on bad arguments.
# Exits 77 (skipped) without python3-torch, libtorch-dev or the reference BLAS
# to load; under CI=true those are failures.
#
# Usage: benchmarks/pytorch/test_compare_networks.sh   (env: NETWORKS_BIN, LIBTORCH_BUILD)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "test_compare_networks: FAILED: $*" >&2
  exit 1
}
source tests/require.sh
require_torch
require_libtorch
require_reference_blas

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
driver=benchmarks/pytorch/compare_networks.sh
networks=(mnist_cnn lenet5 vgg_strided wide resnet)

# 1. The whole pipeline, with whatever libblas.so.3 this machine selects (OpenBLAS).
QUICK=1 $driver 1 2 >"$out/report" 2>"$out/err" || fail "$driver exited $? in its quick mode: $(tail -n1 "$out/err")"
for program in "PyTorch tuned" "LibTorch tuned"; do
  grep -q "^$program loaded: blas=[^ ]*openblas" "$out/report" || fail "$program did not report OpenBLAS as its BLAS"
done
/usr/bin/python3 - "$out/report" "${networks[@]}" <<'PY' || exit 1
import sys
report, networks = open(sys.argv[1]).read(), sys.argv[2:]


def fail(message):
    sys.exit(f"test_compare_networks: FAILED: {message}")


sections = {s.split(":", 1)[0].strip(): s for s in report.split("\n## ")[1:]}
for net in networks:
    if net not in sections:
        fail(f"the report has no table for {net}")
    rows = {}
    for line in sections[net].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 1:
            rows.setdefault(cells[0], cells[1:])
    for row, width in [("training step (ms)", 3), ("training GFLOP/s", 3), ("1-image latency (ms)", 3),
                       ("1-image GFLOP/s", 3), ("training step", 2), ("1-image latency", 2)]:
        values = rows.get(row, [])
        try:
            positive = len(values) == width and all(float(v) > 0 for v in values)
        except ValueError:
            positive = False
        if not positive:
            fail(f"{net}: the row '{row}' does not hold {width} positive numbers: {values}")
    for row in ["parameters", "forward multiply-adds per image"]:  # the twins are one network
        values = rows.get(row, [])
        if len(values) != 3 or len(set(values)) != 1 or not values[0].isdigit() or int(values[0]) < 1:
            fail(f"{net}: minidl, PyTorch and LibTorch did not report one {row}: {values}")
PY

# refused NAME PATTERN ARGS [ENV...]: the driver, run with ARGS on LeNet-5 alone with ENV, must
# fail in one clear line matching PATTERN and print no table.
refused() {
  local name=$1 pattern=$2 args status=0
  read -ra args <<<"$3"
  shift 3
  env QUICK=1 NETWORKS=lenet5 "$@" $driver "${args[@]}" >"$out/refused" 2>"$out/err" || status=$?
  ((status != 0)) || fail "$driver reported a comparison $name"
  if [[ $(grep -c '^compare_networks.sh: error: ' "$out/err") != 1 ]] || ! grep -q "$pattern" "$out/err"; then
    fail "$driver did not refuse $name in one clear line: $(tail -n1 "$out/err")"
  fi
  [[ ! -s $out/refused ]] || fail "$driver printed a report before refusing $name"
}

# 2. minidl's program behind a filter: one measurement's line dropped, then another parameter count.
real_bin=$(realpath "${NETWORKS_BIN:-build/benchmarks/networks}")
printf '#!/bin/sh\n"%s" "$@" | grep -v "^latency_1_image"\n' "$real_bin" >"$out/no_latency"
printf '#!/bin/sh\n"%s" "$@" | sed "s/parameters=/parameters=1/"\n' "$real_bin" >"$out/other_network"
chmod +x "$out/no_latency" "$out/other_network"
refused "with a program's latency line missing" "minidl printed 0 latency_1_image lines for lenet5" \
  "1 2" NETWORKS_BIN="$out/no_latency"
refused "of two different networks" "lenet5: the three programs did not build the same network: parameters" \
  "1 2" NETWORKS_BIN="$out/other_network"
refused "on the reference BLAS" "refusing to compare: .* reference BLAS" "1 2" LD_LIBRARY_PATH="$REFERENCE_BLAS_DIR"
refused "of ROUNDS=0" "ROUNDS, THREADS and BATCH must be whole numbers >= 1, not '0'" "0 2"
refused "of a third argument" "usage: compare_networks.sh \\[ROUNDS=3\\] \\[THREADS=2\\]" "1 2 3"
refused "of an unknown network" "unknown network 'alexnet'" "1 2" NETWORKS="lenet5 alexnet"
echo "test_compare_networks: passed (five networks, three programs, one network each; missing lines, different twins, the reference BLAS and bad arguments refused)"
