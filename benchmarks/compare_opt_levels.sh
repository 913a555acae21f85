#!/usr/bin/env bash
# The same source built at -O2 and at -O3, side by side: every benchmark of
# the `kernels` executable and the MNIST CNN's training epoch (`epoch`),
# alternating the two builds in each round. Prints, per case, the best time
# of each build over the rounds and the ratio -O2 / -O3, slowest first, and
# the epochs' medians. -O2 is what CMake's RelWithDebInfo and most packaging
# use; the kernels must not need -O3 to reach their speed.
#
# Usage: benchmarks/compare_opt_levels.sh [ROUNDS=2]
#   env: BUILD_O3 (default build-o3), BUILD_O2 (default build-o2): the two
#        build folders, configured here (Release, with CMAKE_CXX_FLAGS_RELEASE
#        "-O3 -DNDEBUG" and "-O2 -DNDEBUG") unless they exist;
#        FILTER (kernels' --benchmark_filter, default every case but the naive
#        twins), MIN_TIME (--benchmark_min_time, default 0.05),
#        THREADS (the epoch's threads, default 2), LIMIT_TRAIN (the epoch's
#        images, default all 60,000), MNIST_DIR (else random images),
#        OUT (folder for the raw JSON and logs, default a temporary one).
# Run it on an otherwise idle machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "compare_opt_levels.sh: error: $*" >&2
  exit 1
}

rounds=${1:-2}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number >= 1, not '$rounds'"
threads=${THREADS:-2} limit_train=${LIMIT_TRAIN:-0}
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a whole number >= 1, not '$threads'"
[[ $limit_train =~ ^[0-9]+$ ]] || die "LIMIT_TRAIN must be a whole number, not '$limit_train'"
filter=${FILTER:--naive} min_time=${MIN_TIME:-0.05}
root=$(cd "$(dirname "$0")/.." && pwd)
declare -A build=([3]="${BUILD_O3:-$root/build-o3}" [2]="${BUILD_O2:-$root/build-o2}")
out=${OUT:-$(mktemp -d)}
mkdir -p "$out" || die "cannot create $out"

for level in 3 2; do
  dir=${build[$level]}
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_CXX_FLAGS_RELEASE=-O$level -DNDEBUG" > "$out/configure-O$level.log" ||
      die "configuring $dir failed (see $out/configure-O$level.log)"
  fi
  grep -q "^CMAKE_CXX_FLAGS_RELEASE:STRING=-O$level " "$dir/CMakeCache.txt" ||
    die "$dir is not a -O$level build (its CMAKE_CXX_FLAGS_RELEASE differs)"
  cmake --build "$dir" -j2 --target kernels epoch > "$out/build-O$level.log" ||
    die "building $dir failed (see $out/build-O$level.log)"
done

epoch_args=(--threads "$threads")
[[ $limit_train -gt 0 ]] && epoch_args+=(--limit-train "$limit_train")
[[ -n ${MNIST_DIR:-} ]] && epoch_args+=(--data "$MNIST_DIR")
for round in $(seq "$rounds"); do
  for level in 3 2; do
    dir=${build[$level]}
    echo "round $round/$rounds: -O$level" >&2
    "$dir/benchmarks/kernels" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
      --benchmark_format=json > "$out/kernels-O$level-$round.json" ||
      die "$dir/benchmarks/kernels failed"
    "$dir/benchmarks/epoch" "${epoch_args[@]}" > "$out/epoch-O$level-$round.txt" ||
      die "$dir/benchmarks/epoch failed"
  done
done

python3 - "$out" "$rounds" << 'EOF'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
best = {}
for level in (3, 2):
    for r in range(1, rounds + 1):
        with open(f"{out}/kernels-O{level}-{r}.json") as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("run_type") == "aggregate":
                    continue
                key = (b["name"], level)
                best[key] = min(best.get(key, float("inf")), b["real_time"])
names = sorted({n for n, _ in best}, key=lambda n: -best[(n, 2)] / best[(n, 3)])
print(f"{'-O2/-O3':>8}  {'-O3':>10}  {'-O2':>10}  case (best of {rounds} rounds, real time)")
for n in names:
    o3, o2 = best[(n, 3)], best[(n, 2)]
    print(f"{o2 / o3:8.2f}  {o3:10.4g}  {o2:10.4g}  {n}")
epochs = {3: [], 2: []}
for level in (3, 2):
    for r in range(1, rounds + 1):
        with open(f"{out}/epoch-O{level}-{r}.txt") as f:
            m = re.search(r"^train_epoch .*seconds=([0-9.]+)", f.read(), re.M)
        if not m:
            sys.exit(f"compare_opt_levels.sh: error: no train_epoch line in {out}/epoch-O{level}-{r}.txt")
        epochs[level].append(float(m.group(1)))
o3, o2 = statistics.median(epochs[3]), statistics.median(epochs[2])
print(f"\nMNIST CNN epoch, median of {rounds}: -O3 {o3:.3f} s, -O2 {o2:.3f} s, -O2/-O3 {o2 / o3:.2f}")
slow = sum(best[(n, 2)] / best[(n, 3)] > 1.10 for n in names)
print(f"cases more than 10% slower at -O2: {slow} of {len(names)}")
EOF
echo "raw results: $out"
