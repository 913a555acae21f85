#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and runs
# each for SECONDS on seed corpora of small valid files. Fails on any crash,
# leak, sanitizer report or timeout; prints the executions reached.
# Usage: tests/fuzz/run.sh [SECONDS=60] [WORK_DIR=build-fuzz]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
seconds=${1:-60} work=${2:-$root/build-fuzz}
mkdir -p "$work"
if ! command -v clang++ >/dev/null; then
  echo "clang++ not found: cannot build the fuzz targets"
  exit 1
fi
/usr/bin/python3 "$here/make_seeds.py" "$work/seeds" >/dev/null
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root/include")
# One target per core at a time: each still runs for SECONDS, and the whole takes half as long
# on two cores. Each writes its verdict to result_<target>, printed in order at the end.
fuzz_one() {
  local target=$1 libs=(-lz -lstb)
  # The ONNX import links the ONNX project's protobuf classes (libonnx-dev, libprotobuf-dev).
  if [[ $target == onnx ]]; then libs=(-DONNX_NAMESPACE=onnx -DONNX_ML=1 -lonnx_proto -lprotobuf); fi
  clang++ "${flags[@]}" "$here/fuzz_$target.cpp" -o "$work/fuzz_$target" "${libs[@]}"
  mkdir -p "$work/corpus_$target"
  if "$work/fuzz_$target" "$work/corpus_$target" "$work/seeds/$target" -max_total_time="$seconds" \
       -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$work/crash_${target}_" >"$work/fuzz_$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz_$target.log")
    echo "fuzz_$target: ${runs:-?} executions in ${seconds}s, no crash"
  else
    echo "fuzz_$target: FAILED"
    grep -E "ERROR|SUMMARY|Test unit written" "$work/fuzz_$target.log" | head -5
    return 1
  fi
}
# The slowest to build first (onnx), so that the others fill the second core meanwhile.
targets=(onnx idx safetensors image json)
slots=$(nproc) running=0
for target in "${targets[@]}"; do
  rm -f "$work/result_$target"
  (fuzz_one "$target" >"$work/result_$target" 2>&1 || echo FAILED >>"$work/result_$target") &
  running=$((running + 1))
  if ((running >= slots)); then
    wait -n
    running=$((running - 1))
  fi
done
wait
status=0
for target in "${targets[@]}"; do
  cat "$work/result_$target"
  if grep -q FAILED "$work/result_$target"; then status=1; fi
done
exit $status
