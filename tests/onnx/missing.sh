#!/usr/bin/env bash
# Stands in for the ONNX tests when CMake found no libonnx-dev/libprotobuf-dev: skipped,
# or a failure under CI=true (scripts/test.sh installs both).
source "$(dirname "$0")/../require.sh"
skip_or_fail "minidl::onnx was not built: install libonnx-dev and libprotobuf-dev"
