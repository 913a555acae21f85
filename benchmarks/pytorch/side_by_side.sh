#!/usr/bin/env bash
# Sourced by compare.sh and compare_networks.sh: what both need to set minidl
# beside PyTorch and LibTorch. The caller defines die() and $log (a scratch
# folder) and runs from the repository's root.
# shellcheck disable=SC2154  # $log is the caller's

# libopenblas0-pthread makes OpenBLAS the libblas.so.3 that torch loads (it
# takes over the alternative unless an administrator pinned another one).
install_comparison_packages() {
  scripts/install_deps.sh libopenblas0-pthread python3-torch python3-numpy libtorch-dev time binutils
}

# build_libtorch_twin BUILD TARGET: builds TARGET of benchmarks/libtorch into
# BUILD. A CMake project of its own: minidl's build never needs libtorch.
build_libtorch_twin() {
  if ! { cmake -S benchmarks/libtorch -B "$1" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$1" -j"$(nproc)" --target "$2"; } >"$log/build" 2>&1; then
    die "benchmarks/libtorch did not build: $(grep -m1 -i 'error' "$log/build" || tail -n1 "$log/build")"
  fi
}

# torch as a careful user runs it (docs/benchmarks.md): OpenBLAS's own threads
# off, and glibc's malloc keeping large buffers instead of returning them.
# shellcheck disable=SC2034  # used by the scripts that source this one
tuned_env=(OPENBLAS_NUM_THREADS=1 "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296")

# run FILE COMMAND...: runs COMMAND under /usr/bin/time -v and appends its
# lines and max_rss_kb=... to $log/FILE; dies naming FILE when it fails.
run() {
  local file=$1 status=0
  shift
  /usr/bin/time -v "$@" >"$log/out" 2>"$log/time" || status=$?
  ((status == 0)) || die "$file failed (exit $status): $(grep -v -e '^\s' -e '^Command exited' "$log/time" | tail -n1)"
  cat "$log/out" >>"$log/$file"
  awk -F': ' '/Maximum resident set size/ {printf "max_rss_kb=%s\n", $2}' "$log/time" >>"$log/$file"
}
