#!/usr/bin/env bash
# Builds minidl in Release and trains the MNIST CNN with the default recipe,
# leaving checkpoints, history, metrics and three pictures in results/.
# Data: $MNIST_DIR, else data/mnist (downloaded there when missing).
# Extra arguments go to 'mnist train' (e.g. --augment, --seed 2).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
data=${MNIST_DIR:-data/mnist}
if ! ls "$data"/train-images*idx3-ubyte* >/dev/null 2>&1; then
  scripts/download_mnist.sh "$data"
fi
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target mnist -j"$(nproc)"
"$build"/examples/mnist/mnist train --data "$data" --out results "$@"
