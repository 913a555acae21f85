#!/usr/bin/env bash
# Builds everything (Release, warnings as errors) and runs the whole test suite.
# Usage: scripts/test.sh   (MNIST_DIR, if set, enables the tests on real MNIST; CI=true makes
#        every test that cannot run a failure instead of a skip)
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-torch is the judge of the PyTorch parity tests; clang (with its OpenMP runtime, libomp)
# builds the sanitizer pass and the fuzzers.
# libtorch-dev, OpenBLAS and netlib's BLAS serve the check of the PyTorch/LibTorch comparison.
# libonnx-dev and libprotobuf-dev build minidl::onnx; python3-onnx and python3-opencv judge its
# files, libonnx-testdata holds ONNX's conformance tests. Open MPI builds minidl::mpi and runs
# the data-parallel tests under mpirun.
scripts/install_deps.sh python3-torch python3-numpy clang libclang-rt-14-dev libomp-14-dev \
  libopenblas0-pthread libblas3 libtorch-dev time binutils curl dataset-fashion-mnist \
  libonnx-dev libprotobuf-dev python3-onnx python3-opencv libonnx-testdata libopenmpi-dev openmpi-bin

# The tests on real MNIST use $MNIST_DIR, else data/mnist when scripts/run_mnist.sh has
# downloaded it there; without data they are reported as skipped (failed under CI=true).
if [[ -z ${MNIST_DIR:-} && -d data/mnist ]]; then MNIST_DIR=data/mnist; fi
# Tests run from inside the build tree: make a relative MNIST_DIR absolute.
if [[ -n ${MNIST_DIR:-} ]]; then
  if [[ -d $MNIST_DIR ]]; then
    MNIST_DIR=$(cd "$MNIST_DIR" && pwd)
    export MNIST_DIR
  else
    echo "warning: MNIST_DIR=$MNIST_DIR is not a folder; the tests on real MNIST will be skipped" >&2
    unset MNIST_DIR
  fi
fi

build=${BUILD_DIR:-build}
# MINIDL_SLOW_CHECKS adds the AddressSanitizer/UBSan build of the suite and the fuzzers.
# MINIDL_UNITY_TESTS compiles the doctest files fifteen to a unit into one program, so that the
# templates they share are compiled once per unit instead of once per file; a plain CMake build
# keeps one program per file.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMINIDL_WERROR=ON -DMINIDL_SLOW_CHECKS=ON \
  -DMINIDL_UNITY_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
# Two tests at a time, one per core; the two that keep every core busy themselves (the sanitizer
# pass and the fuzzers) run alone (RUN_SERIAL).
ctest --output-on-failure -j"$(nproc)"
