#!/usr/bin/env bash
# minidl against PyTorch and LibTorch on this machine, side by side. Each
# round runs one after the other:
#   minidl                     build/benchmarks/epoch
#   PyTorch as installed       benchmarks/pytorch/epoch.py
#   PyTorch tuned              the same with OPENBLAS_NUM_THREADS=1 and glibc's
#                              malloc thresholds raised ($tuned_env, side_by_side.sh)
#   PyTorch tuned, mmap_max=0  the same with glibc's malloc never using mmap
#   LibTorch tuned             benchmarks/libtorch/epoch.cpp, tuned as PyTorch
# for ROUNDS rounds, and prints the medians and minidl's ratio to each: the
# training epoch, the evaluation of the test set (at batch EVAL_BATCH), the
# latency of one image and the peak RSS (/usr/bin/time -v of each process).
# Every torch process prints the BLAS, LAPACK and oneDNN libraries it has
# mapped; the comparison is refused when one of them ran on netlib's
# reference BLAS instead of an optimised one (OpenBLAS).
#
# Usage: benchmarks/pytorch/compare.sh [ROUNDS=3] [THREADS=2]
#   env: MNIST_DIR (else random data), EPOCH_BIN (default build/benchmarks/epoch),
#        EVAL_BATCH (default 1000), LIBTORCH_BUILD (default build/libtorch),
#        LIMIT_TRAIN=N trains on N images only: a quick check of the pipeline,
#        not a measurement.
# Installs what it needs (OpenBLAS, python3-torch, libtorch-dev) and builds the
# LibTorch twin; build minidl's first (cmake --build build --target epoch).
# Run it on an otherwise idle machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "compare.sh: error: $*" >&2
  exit 1
}

rounds=${1:-3} threads=${2:-2}
eval_batch=${EVAL_BATCH:-1000} limit_train=${LIMIT_TRAIN:-0}
for n in "$rounds" "$threads" "$eval_batch"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "ROUNDS, THREADS and EVAL_BATCH must be whole numbers >= 1, not '$n'"
done
[[ $limit_train =~ ^[0-9]+$ ]] || die "LIMIT_TRAIN must be a whole number, not '$limit_train'"
if [[ -n ${MNIST_DIR:-} ]]; then  # made absolute before the cd below
  [[ -d $MNIST_DIR ]] || die "MNIST_DIR=$MNIST_DIR is not a folder"
  MNIST_DIR=$(cd "$MNIST_DIR" && pwd)
  export MNIST_DIR
fi
cd "$(dirname "$0")/../.."

epoch_bin=${EPOCH_BIN:-build/benchmarks/epoch}
libtorch_build=${LIBTORCH_BUILD:-build/libtorch}
[[ -x $epoch_bin ]] || die "$epoch_bin does not exist: build it first (cmake --build build --target epoch)"

source benchmarks/pytorch/side_by_side.sh  # install_comparison_packages, build_libtorch_twin, tuned_env, run
install_comparison_packages

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

build_libtorch_twin "$libtorch_build" libtorch_epoch
libtorch_bin=$libtorch_build/libtorch_epoch

mmap_env=(OPENBLAS_NUM_THREADS=1 "GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296")
flags=(--threads "$threads" --eval-batch "$eval_batch" --limit-train "$limit_train")

source benchmarks/pytorch/blas.sh  # is_reference_blas, blas_refusal

check_blas() {  # check_blas NAME: refuses the comparison if run NAME mapped the reference BLAS
  local line reason
  line=$(grep '^libraries ' "$log/out") || die "$1 printed no 'libraries' line: cannot tell which BLAS it ran on"
  reason=$(blas_refusal "$1" "$line") || die "$reason"
}

for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  run minidl "$epoch_bin" "${flags[@]}"
  run torch_installed /usr/bin/python3 benchmarks/pytorch/epoch.py "${flags[@]}"
  check_blas "PyTorch as installed"
  run torch_tuned env "${tuned_env[@]}" /usr/bin/python3 benchmarks/pytorch/epoch.py "${flags[@]}"
  check_blas "PyTorch tuned"
  run torch_tuned_mmap env "${mmap_env[@]}" /usr/bin/python3 benchmarks/pytorch/epoch.py "${flags[@]}"
  check_blas "PyTorch tuned, mmap_max=0"
  run libtorch_tuned env "${tuned_env[@]}" "$libtorch_bin" "${flags[@]}"
  check_blas "LibTorch tuned"
done

/usr/bin/python3 - "$log" "$threads" "$eval_batch" "$limit_train" "$rounds" <<'PY'
import re, statistics, sys
log, threads, eval_batch, limit_train, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
programs = {"minidl": "minidl", "torch_installed": "PyTorch as installed", "torch_tuned": "PyTorch tuned",
            "torch_tuned_mmap": "PyTorch tuned, mmap_max=0", "libtorch_tuned": "LibTorch tuned"}
torches = [n for n in programs if n != "minidl"]


def lines(name, key):
    return [line for line in open(f"{log}/{name}") if line.startswith(key)]


def values(name, key, field):
    return [float(re.search(field + r"=([0-9.]+)", line).group(1)) for line in lines(name, key)]


for n in programs:  # a program that ran another setting would make the ratios meaningless
    for line in lines(n, "evaluate_test"):
        if f"threads={threads} batch={eval_batch} " not in line:
            sys.exit(f"compare.sh: error: {programs[n]} did not evaluate with threads={threads} "
                     f"batch={eval_batch}: {line.strip()}")
if limit_train or rounds < 3:
    print(f"PIPELINE CHECK ONLY (LIMIT_TRAIN={limit_train}, rounds={rounds}): not a measurement")
print(f"threads={threads} eval_batch={eval_batch}; medians of {rounds} alternating rounds")
for n in programs:  # every round, so that one disturbed round can be told from a slow program
    per_round = zip(values(n, "train_epoch", "seconds"), values(n, "evaluate_test", "seconds"),
                    values(n, "latency_1_image", "median_ms"), values(n, "max_rss_kb", "max_rss_kb"))
    print(f"{programs[n]} per round (epoch s, evaluation s, latency ms, peak RSS MB): "
          + " | ".join(f"{e:.2f} {t:.3f} {l:.3f} {m / 1024:.1f}" for e, t, l, m in per_round))
before = values("minidl", "flop_bound", "thread_round_trip_ns")
after = values("minidl", "train_epoch", "thread_round_trip_after_ns")
print("minidl threads' cache-line round trip per round, before / after the epoch (ns): "
      + ", ".join(f"{b:.0f} / {a:.0f}" for b, a in zip(before, after)))
bound = values("minidl", "train_epoch", "over_flop_bound")
print("minidl epoch / its FLOP bound (at the larger peak measured before and after it) per round: "
      + ", ".join(f"{v:.2f}" for v in bound) + f"; median {statistics.median(bound):.2f}")
for n in programs:  # the twins draw the same random numbers: equal results say they did the same work
    loss = re.search(r"mean_loss=(\S+)", lines(n, "train_epoch")[-1]).group(1)
    acc = re.search(r"accuracy=(\S+)", lines(n, "evaluate_test")[-1]).group(1)
    print(f"{programs[n]} mean_loss={loss} accuracy={acc}")
for n in torches:
    libraries = sorted(set(line.split(" ", 1)[1].strip() for line in lines(n, "libraries")))
    print(f"{programs[n]} loaded: " + " | ".join(libraries))

rows = [("training epoch (s)", "train_epoch", "seconds", 1), ("test evaluation (s)", "evaluate_test", "seconds", 1),
        ("1-image latency (ms)", "latency_1_image", "median_ms", 1), ("peak RSS (MB)", "max_rss_kb", "max_rss_kb", 1024)]
med = {(n, key): statistics.median(values(n, key, field)) / scale for n in programs for _, key, field, scale in rows}
print("| median | " + " | ".join(programs.values()) + " |")
print("|---" * (len(programs) + 1) + "|")
for label, key, _, _ in rows:
    print(f"| {label} | " + " | ".join(f"{med[(n, key)]:.3f}" for n in programs) + " |")
print("| minidl / it | " + " | ".join(programs[n] for n in torches) + " |")
print("|---" * (len(torches) + 1) + "|")
for label, key, _, _ in rows:
    print(f"| {label} | " + " | ".join(f"{med[('minidl', key)] / med[(n, key)]:.2f}" for n in torches) + " |")
PY
