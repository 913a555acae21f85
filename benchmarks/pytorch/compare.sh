#!/usr/bin/env bash
# minidl against PyTorch on this machine, side by side: runs benchmarks/epoch
# and benchmarks/pytorch/epoch.py alternately (minidl, PyTorch as installed,
# PyTorch tuned, minidl, ...) for ROUNDS rounds and prints medians and ratios.
# Peak memory comes from /usr/bin/time -v of each whole process.
#
# Usage: benchmarks/pytorch/compare.sh [ROUNDS=3] [THREADS=2]
#   env: EPOCH_BIN (default build/benchmarks/epoch), MNIST_DIR (else random data)
# Run it on an otherwise idle machine: nothing else may build or run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} threads=${2:-2}
epoch_bin=${EPOCH_BIN:-build/benchmarks/epoch}
log=$(mktemp -d)
tuned_env=(OPENBLAS_NUM_THREADS=1 "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296")

run() {  # run NAME COMMAND...: appends the program's lines plus max_rss to $log/NAME
  local name=$1
  shift
  /usr/bin/time -v "$@" >"$log/out" 2>"$log/time"
  cat "$log/out" >>"$log/$name"
  awk -F': ' '/Maximum resident set size/ {printf "max_rss_kb=%s\n", $2}' "$log/time" >>"$log/$name"
}

for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  run minidl "$epoch_bin" --threads "$threads"
  run torch_installed /usr/bin/python3 benchmarks/pytorch/epoch.py --threads "$threads"
  run torch_tuned env "${tuned_env[@]}" /usr/bin/python3 benchmarks/pytorch/epoch.py --threads "$threads"
done

python3 - "$log" "$threads" <<'PY'
import re, statistics, sys
log, threads = sys.argv[1], sys.argv[2]
def values(name, key, field):
    out = []
    for line in open(f"{log}/{name}"):
        if line.startswith(key):
            out.append(float(re.search(field + r"=([0-9.]+)", line).group(1)))
    return out
names = ["minidl", "torch_installed", "torch_tuned"]
rows = [("training epoch (s)", "train_epoch", "seconds"), ("test evaluation (s)", "evaluate_test", "seconds"),
        ("1-image latency (ms)", "latency_1_image", "median_ms"), ("peak RSS (MB)", "max_rss_kb", "max_rss_kb")]
print(f"threads={threads}; medians of {len(values('minidl', 'train_epoch', 'seconds'))} alternating rounds")
for n in names:
    print(f"{n} epoch seconds per round: " + ", ".join(f"{v:.2f}" for v in values(n, "train_epoch", "seconds")))
before = values("minidl", "flop_bound", "thread_round_trip_ns")
after = values("minidl", "train_epoch", "thread_round_trip_after_ns")
print("minidl threads' cache-line round trip per round, before / after the epoch (ns): "
      + ", ".join(f"{b:.0f} / {a:.0f}" for b, a in zip(before, after)))
bound = values("minidl", "train_epoch", "over_flop_bound")
print("minidl epoch / its FLOP bound (at the larger peak measured before and after it) per round: "
      + ", ".join(f"{v:.2f}" for v in bound) + f"; median {statistics.median(bound):.2f}")
print(f"| measure | minidl | PyTorch as installed | PyTorch tuned | minidl / installed | minidl / tuned |")
print(f"|---|---|---|---|---|---|")
for label, key, field in rows:
    med = {}
    for n in names:
        v = values(n, key, field)
        med[n] = statistics.median(v) / (1024 if key == "max_rss_kb" else 1)
    print(f"| {label} | {med['minidl']:.3f} | {med['torch_installed']:.3f} | {med['torch_tuned']:.3f} | "
          f"{med['minidl'] / med['torch_installed']:.2f} | {med['minidl'] / med['torch_tuned']:.2f} |")
PY
rm -rf "$log"
