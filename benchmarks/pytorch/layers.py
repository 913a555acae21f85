#!/usr/bin/python3
"""PyTorch's time for the forward and backward pass of single layers, the twin
of minidl's BM_layer_<case> benchmarks (benchmarks/layers_*.cpp).

Imports every benchmarks/pytorch/layer_cases_*.py beside this file; each
defines CASES = [(case_name, make_module, input_shape), ...]. For each case,
in float32 and train mode: a random input with requires_grad and a random
upstream gradient of the output's shape; WARMUP untimed passes, then REPS
timed ones of module(x) followed by y.backward(dy) (gradients cleared before
each, untimed); prints the median.

Usage: layers.py [--threads N (2)] [--reps N (20)] [--warmup N (3)] [--filter REGEX]
                 [--cases-dir DIR]
(--filter: the cases whose name matches REGEX from its start)
Output: '#' lines (torch version, threads, the libraries line of
torch_libraries.py), then one line per case: case<TAB>median_ms.
Refuses to run (exit 1, one line) when torch has mapped netlib's reference
BLAS (benchmarks/pytorch/blas.sh, as compare.sh does): such a time says
nothing about PyTorch. Run it on an otherwise idle machine.
"""
import argparse
import glob
import importlib.util
import os
import re
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_libraries import blas_refusal, loaded_libraries  # noqa: E402


def die(message):
    sys.exit(f"layers.py: error: {message}")


def load_cases(folder):
    """Every layer_cases_*.py of the folder, in file-name order; names must be unique."""
    cases, seen = [], {}
    for path in sorted(glob.glob(os.path.join(folder, "layer_cases_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not isinstance(getattr(module, "CASES", None), list):
            die(f"{path} defines no list CASES")
        for case in module.CASES:
            if not (isinstance(case, tuple) and len(case) == 3 and isinstance(case[0], str)
                    and callable(case[1])):
                die(f"{path}: a case must be (name, make_module, input_shape), got {case!r}")
            if case[0] in seen:
                die(f"case {case[0]} is defined twice: in {seen[case[0]]} and {path}")
            seen[case[0]] = path
            cases.append(case)
    if not cases:
        die(f"no layer_cases_*.py with any case in {folder}")
    return cases


def median_ms(make_module, shape, warmup, reps):
    module = make_module().float().train()
    x = torch.randn(*shape, requires_grad=True)
    dy = torch.randn_like(module(x))
    times = []
    for i in range(warmup + reps):
        x.grad = None
        module.zero_grad(set_to_none=True)
        start = time.perf_counter()
        module(x).backward(dy)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--filter", default="", help="only the cases whose name matches this regex from its start")
    ap.add_argument("--cases-dir", default=HERE, help="where the layer_cases_*.py are")
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--threads and --reps must be at least 1, --warmup at least 0")
    torch.set_num_threads(args.threads)
    libraries = loaded_libraries()
    if refusal := blas_refusal("PyTorch", libraries):
        die(refusal)
    cases = [c for c in load_cases(args.cases_dir) if re.match(args.filter, c[0])]
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, float32, train mode, "
          f"median of {args.reps} after {args.warmup} warm-up")
    print(f"# {libraries}")
    for name, make_module, shape in cases:
        print(f"{name}\t{median_ms(make_module, shape, args.warmup, args.reps):.4f}", flush=True)


if __name__ == "__main__":
    main()
