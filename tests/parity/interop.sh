#!/usr/bin/env bash
# Weights both ways: a minidl model evaluated in PyTorch and a PyTorch model
# evaluated by `mnist evaluate` count the same correct test images (within 2,
# which float rounding on borderline images can explain).
# Usage: interop.sh MNIST_BINARY MINIDL_CHECKPOINT WORK_DIR  (needs MNIST_DIR and python3-torch)
set -euo pipefail
mnist=$1 ckpt=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/../../tools
py=/usr/bin/python3
source "$here/../require.sh"
require_mnist
require_torch
rm -rf "$work" && mkdir -p "$work"

count_minidl() { "$mnist" evaluate --model "$1" --out "$work/eval" | sed -n 's/.*(\([0-9]*\)\/10000).*/\1/p'; }
count_torch() { $py "$tools/evaluate_pytorch.py" "$1" "$MNIST_DIR" | sed -n 's/correct \([0-9]*\) of.*/\1/p'; }
check() {
  local what=$1 a=$2 b=$3
  local d=$((a > b ? a - b : b - a))
  echo "$what: minidl $a, PyTorch $b correct of 10000"
  [[ $d -le 2 ]] || { echo "FAIL: $what differs by $d images"; exit 1; }
}

# minidl -> PyTorch
$py "$tools/minidl_to_pytorch.py" "$ckpt" "$work/from_minidl.pt"
check "minidl-trained model" "$(count_minidl "$ckpt")" "$(count_torch "$work/from_minidl.pt")"

# PyTorch -> minidl
$py "$here/train_pytorch_short.py" "$MNIST_DIR" "$work/torch.pt"
$py "$tools/pytorch_to_minidl.py" "$work/torch.pt" "$work/from_torch.safetensors"
check "PyTorch-trained model" "$(count_minidl "$work/from_torch.safetensors")" "$(count_torch "$work/torch.pt")"
echo "1 passed, 0 failed: interop"
