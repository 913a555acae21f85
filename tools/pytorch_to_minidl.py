#!/usr/bin/python3
"""Converts a PyTorch state_dict (or a whole module saved with torch.save) to a
minidl checkpoint.

Usage: pytorch_to_minidl.py IN.pt CKPT.safetensors
           [--module-file F.py --module-class C | --reference REF]

Every tensor of the state_dict, parameters and buffers (running_mean,
running_var, num_batches_tracked ...), is written under its own name with its
dtype (float32, float64, int64) and shape. The checkpoint holds the model
only: no optimizer state, so it loads for evaluation and prediction, and
training from it starts a fresh optimizer.

With --module-file/--module-class (the class is constructed without
arguments) or --reference (a minidl checkpoint or a PyTorch state_dict), the
names and shapes are checked first: what is missing, unexpected or of another
shape is listed, nothing is written, and the exit status is 1. For the MNIST
CNN: --module-file tools/reference_model.py --module-class MnistCnn.
"""
import argparse
import zlib

import safetensors_np
import state_dict_match as match


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dict")
    parser.add_argument("checkpoint")
    match.add_target_arguments(parser)
    args = parser.parse_args()

    state = match.load_torch_state(args.state_dict)
    bad = [f"{k} ({v.dtype})" for k, v in state.items() if v.dtype not in match.TORCH_TO_NUMPY]
    if bad:
        raise match.ConversionError(f"{args.state_dict}: minidl checkpoints hold float32, float64 and "
                                    "int64 tensors; these are not: " + ", ".join(sorted(bad)))
    clashing = sorted(k for k in state if k.startswith(match.OPTIMIZER_PREFIX))
    if clashing:
        raise match.ConversionError(f"{args.state_dict}: names starting with '{match.OPTIMIZER_PREFIX}' "
                                    "are reserved for optimizer state in minidl: " + ", ".join(clashing))
    found = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in state.items()}
    match.check_against_target(args.state_dict, found, args)

    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in state.items()}
    meta = {"format": "minidl", "format_version": "1", "source": "pytorch"}
    for name, a in arrays.items():  # minidl verifies these checksums on load
        meta["crc32:" + name] = f"{zlib.crc32(a.astype(a.dtype.newbyteorder('<')).tobytes()):08x}"
    safetensors_np.save(args.checkpoint, arrays, meta)
    print(f"wrote {args.checkpoint}: {len(arrays)} tensors")


if __name__ == "__main__":
    match.run(main)
