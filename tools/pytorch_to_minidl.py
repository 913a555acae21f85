#!/usr/bin/python3
"""Converts a PyTorch state_dict of the MNIST CNN to a minidl checkpoint.

Usage: pytorch_to_minidl.py IN.pt CKPT.safetensors

IN.pt holds a state_dict (or a whole module) with the names conv1.weight ...
fc2.bias of tools/reference_model.py. The checkpoint can be used with
`mnist evaluate --model` and `mnist predict --model`.
"""
import sys

import numpy as np
import torch

import safetensors_np
from minidl_to_pytorch import PARAMETERS


def main(src, dst):
    state = torch.load(src, map_location="cpu")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    arrays = {}
    for name, shape in PARAMETERS.items():
        if name not in state:
            sys.exit(f"{src}: no tensor {name} in the state_dict (found: {', '.join(sorted(state))})")
        a = state[name].detach().cpu().numpy().astype(np.float32)
        if a.shape != shape:
            sys.exit(f"{src}: tensor {name} has shape {list(a.shape)}, expected {list(shape)}")
        arrays[name] = a
    safetensors_np.save(dst, arrays, {"format": "minidl", "format_version": "1", "source": "pytorch"})
    print(f"wrote {dst}: {len(arrays)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
