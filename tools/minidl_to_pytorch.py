#!/usr/bin/python3
"""Converts a minidl checkpoint to a PyTorch state_dict of the MNIST CNN.

Usage: minidl_to_pytorch.py CKPT.safetensors OUT.pt

Only the model's parameters are converted (conv1.weight ... fc2.bias);
optimizer state and metadata stay behind. Load the result with
    model = MnistCnn(); model.load_state_dict(torch.load("OUT.pt"))
(MnistCnn is in tools/reference_model.py).
"""
import os
import sys

import torch

import safetensors_np

PARAMETERS = {"conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3),
              "conv2.bias": (64,), "fc1.weight": (128, 3136), "fc1.bias": (128,),
              "fc2.weight": (10, 128), "fc2.bias": (10,)}


def main(src, dst):
    tensors, meta = safetensors_np.load(src)
    if meta.get("format") != "minidl":
        sys.exit(f"{src}: not a minidl checkpoint (metadata 'format' is {meta.get('format')!r})")
    state = {}
    for name, shape in PARAMETERS.items():
        if name not in tensors:
            sys.exit(f"{src}: tensor {name} {list(shape)} is missing")
        if tuple(tensors[name].shape) != shape:
            sys.exit(f"{src}: tensor {name} has shape {list(tensors[name].shape)}, expected {list(shape)}")
        state[name] = torch.from_numpy(tensors[name].astype("float32"))
    tmp = dst + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, dst)
    print(f"wrote {dst}: {len(state)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
