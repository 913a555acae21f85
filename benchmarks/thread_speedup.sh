#!/usr/bin/env bash
# The speed-up of each network's training step from one thread to two: `networks --threads 1`
# and `--threads 2` alternated in each round (which goes first alternates too), then per
# network the ratio of each round, its median, and the round trip between the two CPUs that
# the two-thread run measured before and after its steps. A round whose round trips are both
# under NEAR_NS ran with the CPUs near each other, both over it far apart, else mixed: on a
# virtual machine whose CPUs move, the speed-up of a step that hands data between the threads
# depends on it, so the medians are given by placement as well.
#
# Usage: benchmarks/thread_speedup.sh [ROUNDS=3]
#   env: NETWORKS_BIN (default build/benchmarks/networks), NETWORKS (default all five:
#        "mnist_cnn lenet5 vgg_strided wide resnet"), STEPS (timed steps a run, default 20),
#        WARMUP (default 5), NEAR_NS (default 200), OUT (folder for the logs, default a
#        temporary one).
# Run it on an otherwise idle machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "thread_speedup.sh: error: $*" >&2
  exit 1
}

rounds=${1:-3}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number >= 1, not '$rounds'"
steps=${STEPS:-20} warmup=${WARMUP:-5} near_ns=${NEAR_NS:-200}
[[ $steps =~ ^[1-9][0-9]*$ ]] || die "STEPS must be a whole number >= 1, not '$steps'"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number, not '$warmup'"
[[ $near_ns =~ ^[1-9][0-9]*$ ]] || die "NEAR_NS must be a whole number >= 1, not '$near_ns'"
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NETWORKS_BIN:-$root/build/benchmarks/networks}
[[ -x $bin ]] || die "no networks program at $bin (build the 'networks' target, or set NETWORKS_BIN)"
read -r -a networks <<< "${NETWORKS:-mnist_cnn lenet5 vgg_strided wide resnet}"
[[ ${#networks[@]} -gt 0 ]] || die "NETWORKS is empty"
out=${OUT:-$(mktemp -d)}
mkdir -p "$out" || die "cannot create $out"

for round in $(seq "$rounds"); do
  order=(1 2)
  ((round % 2 == 0)) && order=(2 1)
  for net in "${networks[@]}"; do
    for threads in "${order[@]}"; do
      echo "round $round/$rounds: $net on $threads thread(s)" >&2
      "$bin" --network "$net" --threads "$threads" --steps "$steps" --warmup "$warmup" --runs 1 \
        > "$out/$net-t$threads-$round.txt" ||
        die "$bin --network $net --threads $threads failed (see $out/$net-t$threads-$round.txt)"
    done
  done
done

python3 - "$out" "$rounds" "$near_ns" "${networks[@]}" << 'EOF'
import statistics, sys
out, rounds, near_ns, networks = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]


def step_fields(path):
    for line in open(path):
        if line.startswith("train_step "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    sys.exit(f"thread_speedup.sh: error: no train_step line in {path}")


def placement(before, after):
    if before < near_ns and after < near_ns:
        return "near"
    if before >= near_ns and after >= near_ns:
        return "far"
    return "mixed"


print(f"step speed-up from 1 to 2 threads, {rounds} rounds; round trips of the 2-thread run "
      f"(ns, before/after; near < {near_ns:.0f})")
summary = []
for net in networks:
    ratios = {"near": [], "far": [], "mixed": []}
    cells = []
    for r in range(1, rounds + 1):
        one = step_fields(f"{out}/{net}-t1-{r}.txt")
        two = step_fields(f"{out}/{net}-t2-{r}.txt")
        if one.get("threads") != "1" or two.get("threads") != "2":
            sys.exit(f"thread_speedup.sh: error: {net} round {r} ran on other thread counts")
        t1, t2 = float(one["median_ms"]), float(two["median_ms"])
        before = float(two.get("thread_round_trip_ns", "nan"))
        after = float(two.get("thread_round_trip_after_ns", "nan"))
        where = placement(before, after)
        ratios[where].append(t1 / t2)
        cells.append(f"{t1:.3f}/{t2:.3f} ms {t1 / t2:.2f} ({before:.0f}/{after:.0f} {where})")
    every = [x for v in ratios.values() for x in v]
    by_place = ", ".join(f"{k} {statistics.median(v):.2f} ({len(v)})" for k, v in ratios.items() if v)
    print(f"{net:12s} median {statistics.median(every):.2f}; by placement: {by_place}")
    for c in cells:
        print(f"{'':12s}   {c}")
    summary.append(min(every))
print(f"lowest speed-up of any round: {min(summary):.2f}")
EOF
echo "raw results: $out"
