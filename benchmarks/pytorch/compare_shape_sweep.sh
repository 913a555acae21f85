#!/usr/bin/env bash
# minidl's shape sweep against tuned PyTorch, case by case: for every
# convolution of the sweep's grid in each pass (forward, backward-data,
# backward-weights), and for its pool, batch-norm and linear layers, minidl's
# time with the kernel it chooses, its fastest kernel, PyTorch's time (and
# whether oneDNN ran), minidl / PyTorch and minidl's % of the peak measured in
# the same run. The cases are those of `shape_sweep --list` (the grid is
# defined once, in benchmarks/shape_sweep_cases.hpp), which
# benchmarks/pytorch/shape_sweep.py reads. The programs alternate: minidl,
# PyTorch, minidl again, so that a disturbance of the machine shows as a
# difference between minidl's two runs; minidl's times are the median over
# its runs, its peak the best. PyTorch runs tuned
# (OPENBLAS_NUM_THREADS=1, glibc's malloc thresholds raised: side_by_side.sh)
# on the same number of threads. Refuses to compare when a (case, pass) has a
# time on one side only, or when PyTorch ran on netlib's reference BLAS.
#
# Usage: benchmarks/pytorch/compare_shape_sweep.sh [REPS=5] [THREADS=2]
#   env: SHAPE_SWEEP_BIN (a built shape_sweep; when unset, build/benchmarks/shape_sweep is
#        built first, into BUILD_DIR, default build), FILTER (a regex on case names),
#        FULL=1 (the whole product of the grid), QUICK=1 (the quick grid with one
#        repetition: a check of the pipeline, not a measurement).
# Installs what it needs (OpenBLAS, python3-torch). Run it on an otherwise
# idle machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "compare_shape_sweep.sh: error: $*" >&2
  exit 1
}

(($# <= 2)) || die "usage: compare_shape_sweep.sh [REPS=5] [THREADS=2], not '$*'"
reps=${1:-5} threads=${2:-2} quick=${QUICK:-0} full=${FULL:-0}
for n in "$reps" "$threads"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "REPS and THREADS must be whole numbers >= 1, not '$n'"
done
[[ $quick == 0 || $quick == 1 ]] || die "QUICK must be 0 or 1, not '$quick'"
[[ $full == 0 || $full == 1 ]] || die "FULL must be 0 or 1, not '$full'"
((!(quick && full))) || die "QUICK=1 and FULL=1 exclude each other"
cd "$(dirname "$0")/../.."

scripts/install_deps.sh libopenblas0-pthread python3-torch binutils time >&2
source benchmarks/pytorch/side_by_side.sh # tuned_env, run

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

if [[ -n ${SHAPE_SWEEP_BIN:-} ]]; then
  sweep_bin=$SHAPE_SWEEP_BIN
  [[ -x $sweep_bin ]] || die "SHAPE_SWEEP_BIN=$sweep_bin is not an executable"
else
  build_dir=${BUILD_DIR:-build}
  if ! { { [[ -f $build_dir/CMakeCache.txt ]] || cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release; } &&
    cmake --build "$build_dir" -j"$(nproc)" --target shape_sweep; } >"$log/build" 2>&1; then
    die "shape_sweep did not build: $(grep -m1 -i 'error' "$log/build" || tail -n1 "$log/build")"
  fi
  sweep_bin=$build_dir/benchmarks/shape_sweep
fi

grid=()
((quick)) && grid=(--quick) && reps=1
((full)) && grid=(--full)
[[ -z ${FILTER:-} ]] || grid+=(--filter "$FILTER")
"$sweep_bin" "${grid[@]}" --list >"$log/cases" 2>"$log/err" || die "shape_sweep --list failed: $(tail -n1 "$log/err")"

minidl_cmd=("$sweep_bin" "${grid[@]}" --threads "$threads" --reps "$reps")
torch_cmd=(env "${tuned_env[@]}" /usr/bin/python3 benchmarks/pytorch/shape_sweep.py "$log/cases"
  --threads "$threads" --reps "$reps")
for round in minidl.1 pytorch minidl.2; do
  echo "running $round" >&2
  if [[ $round == pytorch ]]; then
    # shape_sweep.py's own one-line refusal (the reference BLAS, a case it cannot read) is the
    # message, not /usr/bin/time's account of it.
    status=0
    "${torch_cmd[@]}" >"$log/pytorch" 2>"$log/err" || status=$?
    ((status == 0)) || die "$(grep -m1 '^shape_sweep.py: error: ' "$log/err" || tail -n1 "$log/err")"
  else
    run "$round" "${minidl_cmd[@]}"
  fi
done

/usr/bin/python3 - "$log" "$reps" "$threads" "$quick" "${minidl_cmd[*]}" "${torch_cmd[*]}" <<'PY'
import re, statistics, sys
log, reps, threads, quick, minidl_cmd, torch_cmd = sys.argv[1:7]


def die(message):
    sys.exit(f"compare_shape_sweep.sh: error: {message}")


def rows(path, width):
    """The tab-separated result lines of a program's output (not '#', '##' or the header)."""
    out = []
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        if line.startswith("#") or fields[0] == "case" or len(fields) != width:
            continue
        out.append(fields)
    return out


# minidl: (case, pass) -> kernel -> [ms per run], the chosen kernel, the peak of each run.
minidl, chosen, peaks = {}, {}, []
for run in ["minidl.1", "minidl.2"]:
    text = open(f"{log}/{run}").read()
    peak = re.search(r"^# peak ([0-9.]+) GFLOP/s", text, re.M)
    if not peak:
        die(f"{run} printed no '# peak' line")
    peaks.append(float(peak.group(1)))
    for case, pass_, kernel, ms, rate, unit, pct, is_chosen, fastest, _, _ in rows(f"{log}/{run}", 11):
        minidl.setdefault((case, pass_), {}).setdefault(kernel, []).append(float(ms))
        if is_chosen == "yes":
            chosen[(case, pass_)] = (kernel, unit, float(rate) * float(ms))  # the work, scaled as rate x ms
torch, header = {}, []
for line in open(f"{log}/pytorch"):
    if line.startswith("# "):
        header.append(line[2:].strip())
for case, pass_, ms, backend in rows(f"{log}/pytorch", 4):
    torch[(case, pass_)] = (float(ms), backend)

missing = [f"{c} {p} (no {'PyTorch' if (c, p) in minidl else 'minidl'} time)"
           for c, p in sorted(set(minidl) ^ set(torch))]
missing += [f"{c} {p} (minidl ran {len(runs)} of 2 times for {k})" for (c, p), ks in minidl.items()
            for k, runs in ks.items() if len(runs) != 2]
missing += [f"{c} {p} (no chosen kernel)" for c, p in minidl if (c, p) not in chosen]
if missing:
    die("cases without a twin: " + ", ".join(missing))
if not minidl:
    die("no case on either side")

peak = max(peaks)
if quick == "1" or int(reps) < 3:
    print(f"PIPELINE CHECK ONLY (QUICK={quick}, REPS={reps}): not a measurement")
print(f"minidl: {minidl_cmd} (run twice, around PyTorch)")
print(f"PyTorch: {torch_cmd}")
for h in header:
    print(f"PyTorch {h}")
print(f"threads={threads}; peak {peak:.1f} GFLOP/s (best of minidl's runs: "
      + ", ".join(f"{p:.1f}" for p in peaks) + "); minidl's times are the median over its runs")
print("| case | pass | minidl kernel | minidl ms | fastest kernel | fastest ms | PyTorch ms "
      "| PyTorch backend | minidl / PyTorch | minidl rate | % of peak |")
print("|---" * 11 + "|")
for key in minidl:  # the order of the sweep
    kernels = {k: statistics.median(ms) for k, ms in minidl[key].items()}
    kernel, unit, work = chosen[key]
    fastest = min(kernels, key=kernels.get)
    ms, (torch_ms, backend) = kernels[kernel], torch[key]
    rate = work / ms
    pct = f"{100 * rate / peak:.1f}" if unit == "GFLOP/s" else "-"
    print(f"| {key[0]} | {key[1]} | {kernel} | {ms:.4f} | {fastest} | {kernels[fastest]:.4f} "
          f"| {torch_ms:.4f} | {backend} | {ms / torch_ms:.2f} | {rate:.4g} {unit} | {pct} |")
PY
