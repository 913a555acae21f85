#!/usr/bin/env bash
# tools/minidl_to_pytorch.py and tools/pytorch_to_minidl.py on any network: round trips of the
# MNIST CNN and of a residual network with BatchNorm buffers, a mismatch report, damaged files.
# Usage: converters.sh WORK_DIR   (needs python3-torch; skipped without it, a failure under CI=true)
set -euo pipefail
work=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../require.sh"
require_torch
exec /usr/bin/python3 "$here/test_converters.py" "$work"
