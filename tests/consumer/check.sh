#!/usr/bin/env bash
# Builds and runs tests/consumer against minidl.
# Usage: check.sh SOURCE_DIR WORK_DIR find_package|add_subdirectory|core_only
#   find_package      installs minidl, then builds every consumer program
#   add_subdirectory  builds every consumer program with minidl as a subproject
#   core_only         builds the minidl::core program twice, through
#                     find_package(minidl COMPONENTS core) and through
#                     add_subdirectory, while CMake cannot find zlib, stb,
#                     nlohmann/json or Eigen
set -euo pipefail
src=$1 work=$2 mode=$3
rm -rf "$work" && mkdir -p "$work"
out_of_reach=(--no-warn-unused-cli -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON -DCMAKE_DISABLE_FIND_PACKAGE_stb=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON)
if [[ $mode != add_subdirectory ]]; then
  cmake -S "$src" -B "$work/minidl-build" -DMINIDL_BUILD_TESTS=OFF -DMINIDL_BUILD_EXAMPLES=OFF \
    -DMINIDL_BUILD_BENCHMARKS=OFF -DMINIDL_INSTALL=ON -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
  cmake --install "$work/minidl-build" >/dev/null
fi
case $mode in
  find_package)
    cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null ;;
  add_subdirectory)
    cmake -S "$src/tests/consumer" -B "$work/consumer" -DMINIDL_SOURCE_DIR="$src" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null ;;
  core_only)
    cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release -DMINIDL_CONSUMER_CORE_ONLY=ON "${out_of_reach[@]}" >/dev/null
    cmake -S "$src/tests/consumer" -B "$work/subproject" -DMINIDL_SOURCE_DIR="$src" \
      -DCMAKE_BUILD_TYPE=Release -DMINIDL_CONSUMER_CORE_ONLY=ON "${out_of_reach[@]}" >/dev/null
    cmake --build "$work/subproject" >/dev/null
    "$work/subproject/consumer_core" ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2 ;;
esac
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_core"
if [[ $mode != core_only ]]; then
  "$work/consumer/consumer"
  for component in checkpoint data image viz eigen; do "$work/consumer/consumer_$component"; done
  # minidl::onnx is optional: built where libonnx-dev and libprotobuf-dev are installed.
  if [[ -x $work/consumer/consumer_onnx ]]; then "$work/consumer/consumer_onnx"; fi
fi
