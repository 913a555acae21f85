#!/usr/bin/env bash
# minidl against tuned PyTorch and tuned LibTorch on five networks of several
# shapes, side by side: the MNIST CNN, a LeNet-5, a strided VGG-style net, a
# wide net and examples/resnet's ResNet-20 (benchmarks/networks.cpp describes
# them). In each round, for each network, one process after the other:
#   minidl          build/benchmarks/networks
#   PyTorch tuned   benchmarks/pytorch/networks.py
#   LibTorch tuned  benchmarks/libtorch/networks.cpp (build/libtorch/libtorch_networks)
# both torch programs with OPENBLAS_NUM_THREADS=1 and glibc's malloc
# thresholds raised, as compare.sh tunes them. Each program times, after
# warm-up, the training step (forward, cross-entropy, backward, Adam lr 1e-3)
# at the network's batch and the latency of one image in evaluation mode.
# Prints, per network, a table of the medians over the rounds (training step,
# 1-image latency, the GFLOP/s of each, peak RSS of the process from
# /usr/bin/time -v) and minidl's ratio to each torch (ours / theirs: < 1 means
# minidl is faster). Refuses to compare when the three did not build the same
# network (parameters and multiply-adds per image differ), when a program
# printed no line for a measurement, or when torch ran on netlib's reference
# BLAS instead of OpenBLAS.
#
# Usage: benchmarks/pytorch/compare_networks.sh [ROUNDS=3] [THREADS=2]
#   env: NETWORKS="mnist_cnn lenet5 ..." (a subset; default all five),
#        BATCH=N (every network's training batch; default each network's own:
#        64, 128 for resnet), NETWORKS_BIN (default build/benchmarks/networks),
#        LIBTORCH_BUILD (default build/libtorch),
#        QUICK=1: 2 steps and 3 runs after 1 warm-up, batch 8 unless BATCH is
#        given; a check of the pipeline, not a measurement.
# Installs what it needs (OpenBLAS, python3-torch, libtorch-dev) and builds the
# LibTorch twin; build minidl's first (cmake --build build --target networks).
# Run it on an otherwise idle machine: nothing else may build or run meanwhile.
set -euo pipefail

die() {
  echo "compare_networks.sh: error: $*" >&2
  exit 1
}

all_networks="mnist_cnn lenet5 vgg_strided wide resnet"
(($# <= 2)) || die "usage: compare_networks.sh [ROUNDS=3] [THREADS=2], not '$*'"
rounds=${1:-3} threads=${2:-2} quick=${QUICK:-0} batch=${BATCH:-}
for n in "$rounds" "$threads" ${batch:+"$batch"}; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "ROUNDS, THREADS and BATCH must be whole numbers >= 1, not '$n'"
done
[[ $quick == 0 || $quick == 1 ]] || die "QUICK must be 0 or 1, not '$quick'"
read -ra networks <<<"${NETWORKS:-$all_networks}"
((${#networks[@]})) || die "NETWORKS names no network; choose among: $all_networks"
for n in "${networks[@]}"; do
  [[ " $all_networks " == *" $n "* ]] || die "unknown network '$n' in NETWORKS; choose among: $all_networks"
done
cd "$(dirname "$0")/../.."

networks_bin=${NETWORKS_BIN:-build/benchmarks/networks}
libtorch_build=${LIBTORCH_BUILD:-build/libtorch}
[[ -x $networks_bin ]] || die "$networks_bin does not exist: build it first (cmake --build build --target networks)"

source benchmarks/pytorch/side_by_side.sh  # install_comparison_packages, build_libtorch_twin, tuned_env, run
install_comparison_packages

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

build_libtorch_twin "$libtorch_build" libtorch_networks
libtorch_bin=$libtorch_build/libtorch_networks

flags=(--threads "$threads")
[[ -z $batch ]] || flags+=(--batch "$batch")
if ((quick)); then
  flags+=(--steps 2 --runs 3 --warmup 1)
  [[ -n $batch ]] || flags+=(--batch 8)
fi

source benchmarks/pytorch/blas.sh  # blas_refusal

check_blas() {  # check_blas NAME: refuses the comparison if the last run mapped the reference BLAS
  local line reason
  line=$(grep '^libraries ' "$log/out") || die "$1 printed no 'libraries' line: cannot tell which BLAS it ran on"
  reason=$(blas_refusal "$1" "$line") || die "$reason"
}

for r in $(seq "$rounds"); do
  for net in "${networks[@]}"; do
    echo "round $r/$rounds: $net" >&2
    run "minidl.$net" "$networks_bin" --network "$net" "${flags[@]}"
    run "pytorch.$net" env "${tuned_env[@]}" /usr/bin/python3 benchmarks/pytorch/networks.py --network "$net" "${flags[@]}"
    check_blas "PyTorch tuned ($net)"
    run "libtorch.$net" env "${tuned_env[@]}" "$libtorch_bin" --network "$net" "${flags[@]}"
    check_blas "LibTorch tuned ($net)"
  done
done

/usr/bin/python3 - "$log" "$rounds" "$threads" "$quick" "${networks[@]}" <<'PY'
import re, statistics, sys
log, rounds, threads, quick, networks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5:]
engines = {"minidl": "minidl", "pytorch": "PyTorch tuned", "libtorch": "LibTorch tuned"}
torches = ["pytorch", "libtorch"]
measures = ["train_step", "latency_1_image"]


def die(message):
    sys.exit(f"compare_networks.sh: error: {message}")


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def read(engine, net):
    """Every round's fields of each measure, and the peak RSS of each run, of one program."""
    text = open(f"{log}/{engine}.{net}").read().splitlines()
    runs = {m: [fields(l) for l in text if l.startswith(m + " ")] for m in measures}
    runs["rss_mb"] = [int(l.split("=")[1]) / 1024 for l in text if l.startswith("max_rss_kb=")]
    for m in measures:
        if len(runs[m]) != rounds:
            die(f"{engines[engine]} printed {len(runs[m])} {m} lines for {net} in {rounds} rounds")
        for f in runs[m]:
            if f.get("network") != net or f.get("threads") != threads:
                die(f"{engines[engine]} measured {m} of network={f.get('network')} "
                    f"threads={f.get('threads')}, not network={net} threads={threads}")
            try:
                if not (float(f["median_ms"]) > 0 and float(f["best_ms"]) > 0):
                    die(f"{engines[engine]} printed a time that is not positive for {net} {m}")
            except (KeyError, ValueError):
                die(f"{engines[engine]} printed an unreadable {m} line for {net}: {f}")
    return runs


# Everything is read and checked before anything is printed: a refused comparison prints no table.
runs = {net: {e: read(e, net) for e in engines} for net in networks}
# The twins must be the same network doing the same work, else the ratios compare different
# things: the same parameter count, multiply-adds per image and training batch in every line.
for net in networks:
    for key in ["parameters", "forward_macs_per_image", "train_macs_per_image", "batch"]:
        kinds = ["train_step"] if key == "batch" else measures
        seen = {e: sorted(set(f.get(key) or "none" for m in kinds for f in runs[net][e][m]))
                for e in engines}
        if len(set(v for values in seen.values() for v in values)) != 1:
            die(f"{net}: the three programs did not build the same network: {key} "
                + ", ".join(f"{engines[e]} {'/'.join(v)}" for e, v in seen.items()))

if quick or rounds < 3:
    print(f"PIPELINE CHECK ONLY (QUICK={int(quick)}, rounds={rounds}): not a measurement")
print(f"threads={threads}; medians of {rounds} alternating rounds; ratios are minidl / it "
      "(< 1: minidl is faster)")
for n in torches:
    libraries = sorted(set(l.split(" ", 1)[1].strip() for net in networks
                           for l in open(f"{log}/{n}.{net}") if l.startswith("libraries ")))
    print(f"{engines[n]} loaded: " + " | ".join(libraries))
for net in networks:
    runs_of_net = runs[net]
    first = runs_of_net["minidl"]["train_step"][0]
    batch, train_macs, forward_macs = int(first["batch"]), int(first["train_macs_per_image"]), \
        int(first["forward_macs_per_image"])

    def median(e, m):
        return statistics.median(float(f["median_ms"]) for f in runs_of_net[e][m])

    step = {e: median(e, "train_step") for e in engines}
    latency = {e: median(e, "latency_1_image") for e in engines}
    rss = {e: statistics.median(runs_of_net[e]["rss_mb"]) for e in engines}
    print(f"\n## {net}: batch {batch}, threads {threads}; {first['parameters']} parameters, "
          f"{forward_macs / 1e6:.3f} M multiply-adds per image forward, "
          f"{train_macs / 1e6:.3f} M per image in a training step")
    for e in engines:  # every round, so that one disturbed round can be told from a slow program
        pairs = zip(runs_of_net[e]["train_step"], runs_of_net[e]["latency_1_image"])
        print(f"{engines[e]} per round (step ms, latency ms): "
              + " | ".join(f"{float(s['median_ms']):.3f} {float(l['median_ms']):.4f}" for s, l in pairs))
    print("| median | " + " | ".join(engines.values()) + " |")
    print("|---" * (len(engines) + 1) + "|")
    rows = [("parameters", {e: runs_of_net[e]["train_step"][0]["parameters"] for e in engines}),
            ("forward multiply-adds per image",
             {e: runs_of_net[e]["train_step"][0]["forward_macs_per_image"] for e in engines}),
            ("training step (ms)", {e: f"{step[e]:.3f}" for e in engines}),
            ("training GFLOP/s", {e: f"{2 * train_macs * batch / step[e] * 1e-6:.4g}" for e in engines}),
            ("1-image latency (ms)", {e: f"{latency[e]:.4f}" for e in engines}),
            ("1-image GFLOP/s", {e: f"{2 * forward_macs / latency[e] * 1e-6:.4g}" for e in engines}),
            ("peak RSS (MB)", {e: f"{rss[e]:.1f}" for e in engines})]
    for label, values in rows:
        print(f"| {label} | " + " | ".join(str(values[e]) for e in engines) + " |")
    print("| minidl / it | " + " | ".join(engines[n] for n in torches) + " |")
    print("|---" * (len(torches) + 1) + "|")
    for label, value in [("training step", step), ("1-image latency", latency), ("peak RSS", rss)]:
        print(f"| {label} | " + " | ".join(f"{value['minidl'] / value[n]:.3g}" for n in torches) + " |")
PY
