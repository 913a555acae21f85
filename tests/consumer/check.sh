#!/usr/bin/env bash
# Builds and runs tests/consumer against minidl. Usage: check.sh SOURCE_DIR WORK_DIR find_package|add_subdirectory
set -euo pipefail
src=$1 work=$2 mode=$3
rm -rf "$work" && mkdir -p "$work"
if [[ $mode == find_package ]]; then
  cmake -S "$src" -B "$work/minidl-build" -DMINIDL_BUILD_TESTS=OFF -DMINIDL_BUILD_EXAMPLES=OFF \
    -DMINIDL_BUILD_BENCHMARKS=OFF -DMINIDL_INSTALL=ON -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
  cmake --install "$work/minidl-build" >/dev/null
  cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
else
  cmake -S "$src/tests/consumer" -B "$work/consumer" -DMINIDL_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"
