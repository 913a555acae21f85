#!/usr/bin/env bash
# minidl's layers against PyTorch's, one layer at a time, side by side: the
# forward + backward time of every BM_layer_<case> benchmark of the C++
# `kernels` executable (benchmarks/layers_*.cpp; the median of REPS
# repetitions) beside PyTorch's for the case of the same name
# (layers.py over benchmarks/pytorch/layer_cases_*.py), and the ratio
# minidl / PyTorch. Both run on THREADS threads (minidl through
# OMP_NUM_THREADS, PyTorch through torch.set_num_threads). PyTorch on
# netlib's reference BLAS is refused (layers.py). A case that only one side
# has is listed as missing and fails the comparison.
#
# Usage: benchmarks/pytorch/compare_layers.sh [REPS=5]
#   env: THREADS (default 2), KERNELS_BIN (default build/benchmarks/kernels),
#        TORCH_REPS (timed passes per PyTorch case, default 20), TORCH_WARMUP (3),
#        FILTER (a regex that case names must match from their start, default
#        all), CASES_DIR (where the layer_cases_*.py are, default beside this
#        script), BENCHMARK_ARGS (more flags for kernels, e.g.
#        --benchmark_min_time=0.001 for a quick check of the pipeline: not a
#        measurement).
# Installs what it needs (OpenBLAS, python3-torch); build minidl's first
# (cmake --build build --target kernels). Run it on an otherwise idle
# machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "compare_layers.sh: error: $*" >&2
  exit 1
}

reps=${1:-5} threads=${THREADS:-2}
torch_reps=${TORCH_REPS:-20} torch_warmup=${TORCH_WARMUP:-3}
for n in "$reps" "$threads" "$torch_reps"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "REPS, THREADS and TORCH_REPS must be whole numbers >= 1, not '$n'"
done
[[ $torch_warmup =~ ^[0-9]+$ ]] || die "TORCH_WARMUP must be a whole number, not '$torch_warmup'"
filter=${FILTER:-.}
here=$(cd "$(dirname "$0")" && pwd)
cases_dir=${CASES_DIR:-$here}
[[ -d $cases_dir ]] || die "CASES_DIR=$cases_dir is not a folder"
cases_dir=$(cd "$cases_dir" && pwd)
cd "$here/../.."

# libopenblas0-pthread makes OpenBLAS the libblas.so.3 that torch loads (as
# compare.sh says); readelf (binutils) tells it from the reference BLAS.
scripts/install_deps.sh libopenblas0-pthread python3-torch binutils >&2

kernels_bin=${KERNELS_BIN:-build/benchmarks/kernels}
[[ -x $kernels_bin ]] || die "$kernels_bin does not exist: build it first (cmake --build build --target kernels)"
read -ra bench_args <<<"${BENCHMARK_ARGS:-}"

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

minidl_cmd=(env "OMP_NUM_THREADS=$threads" "$kernels_bin" "--benchmark_filter=^BM_layer_($filter)"
  --benchmark_format=json "--benchmark_repetitions=$reps" "${bench_args[@]}")
torch_cmd=(/usr/bin/python3 benchmarks/pytorch/layers.py --threads "$threads" --reps "$torch_reps"
  --warmup "$torch_warmup" --filter "$filter" --cases-dir "$cases_dir")
"${minidl_cmd[@]}" >"$log/minidl.json" 2>"$log/minidl.err" ||
  die "kernels failed (exit $?): $(tail -n1 "$log/minidl.err")"
"${torch_cmd[@]}" >"$log/torch.tsv" 2>"$log/torch.err" ||
  die "$(tail -n1 "$log/torch.err")"

/usr/bin/python3 - "$log" "$reps" "$threads" "$0 $*" "${minidl_cmd[*]}" "${torch_cmd[*]}" <<'PY'
import json, statistics, sys
log, reps, threads, command, minidl_cmd, torch_cmd = sys.argv[1:7]
reps = int(reps)
to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}

runs, medians = {}, {}  # case -> real times in ms
text = open(f"{log}/minidl.json").read()  # empty when no benchmark matched the filter
for b in json.loads(text)["benchmarks"] if text.strip() else []:
    if b.get("error_occurred"):
        sys.exit(f"compare_layers.sh: error: {b['name']}: {b.get('error_message', 'failed')}")
    case = b["name"].split("/")[0][len("BM_layer_"):]
    ms = b["real_time"] * to_ms[b["time_unit"]]
    if b.get("run_type") == "aggregate":
        if b.get("aggregate_name") == "median":
            medians[case] = ms
    else:
        runs.setdefault(case, []).append(ms)
# With one repetition Google Benchmark writes no aggregates: the median of the runs.
minidl = {case: medians.get(case, statistics.median(times) if times else None)
          for case, times in runs.items()}

torch, header = {}, []
for line in open(f"{log}/torch.tsv"):
    if line.startswith("#"):
        header.append(line[1:].strip())
    elif line.strip():
        case, ms = line.rstrip("\n").split("\t")
        torch[case] = float(ms)

if reps < 3:
    print(f"PIPELINE CHECK ONLY (REPS={reps}): not a measurement")
print(f"command: {command}")
print(f"minidl: {minidl_cmd}")
print(f"PyTorch: {torch_cmd}")
for h in header:
    print(f"PyTorch {h}")
print(f"threads={threads}; minidl: median of {reps} repetitions; forward + backward, float32")
print("| case | minidl ms | PyTorch ms | minidl / PyTorch |")
print("|---|---|---|---|")
missing = []
for case in sorted(set(minidl) | set(torch)):
    m, t = minidl.get(case), torch.get(case)
    if m is None or t is None:
        missing.append(f"{case} (no {'minidl BM_layer_' + case if m is None else 'PyTorch'} case)")
    cells = [f"{m:.3f}" if m is not None else "missing", f"{t:.3f}" if t is not None else "missing",
             f"{m / t:.2f}" if m is not None and t is not None else "-"]
    print(f"| {case} | " + " | ".join(cells) + " |")
if not minidl and not torch:
    sys.exit("compare_layers.sh: error: no case matched on either side")
if missing:
    sys.exit("compare_layers.sh: error: cases without a twin: " + ", ".join(missing))
PY
