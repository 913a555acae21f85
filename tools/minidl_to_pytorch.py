#!/usr/bin/python3
"""Converts a minidl checkpoint to a PyTorch state_dict file (torch.save).

Usage: minidl_to_pytorch.py CKPT.safetensors OUT.pt
           [--module-file F.py --module-class C | --reference REF]

Every model tensor is carried over under its own name (PyTorch's state_dict
names, such as layer1.0.bn1.running_mean), with its dtype (float32, float64,
int64) and shape. Optimizer state ("optimizer.*") and metadata stay behind.
Load the result with  model.load_state_dict(torch.load("OUT.pt")).

With --module-file/--module-class (the class is constructed without
arguments) or --reference (a minidl checkpoint or a PyTorch state_dict), the
names and shapes are checked first: what is missing, unexpected or of another
shape is listed, nothing is written, and the exit status is 1.
"""
import argparse
import os

import torch

import state_dict_match as match


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output")
    match.add_target_arguments(parser)
    args = parser.parse_args()

    model, optimizer, _ = match.load_minidl_checkpoint(args.checkpoint)
    written = match.TORCH_TO_NUMPY.values()
    unsupported = [f"{k} ({v.dtype})" for k, v in model.items() if v.dtype.type not in written]
    if unsupported:
        raise match.ConversionError(f"{args.checkpoint}: tensors of a dtype minidl does not write: "
                                    + ", ".join(sorted(unsupported)))
    found = {k: (tuple(v.shape), str(v.dtype)) for k, v in model.items()}
    match.check_against_target(args.checkpoint, found, args)

    state = {name: torch.from_numpy(model[name]) for name in sorted(model)}
    tmp = args.output + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, args.output)
    left = f"; {len(optimizer)} optimizer tensors left behind" if optimizer else ""
    print(f"wrote {args.output}: {len(state)} tensors{left}")


if __name__ == "__main__":
    match.run(main)
