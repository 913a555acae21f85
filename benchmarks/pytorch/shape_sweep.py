#!/usr/bin/python3
"""PyTorch's time for the cases of minidl's shape sweep (benchmarks/shape_sweep.cpp), the same
passes at the same shapes in float32 on the same number of threads.

The cases come from `shape_sweep --list` (a file, or stdin when CASES is - or left out), so the
grid is defined once, in benchmarks/shape_sweep_cases.hpp; this script parses the names.

Convolutions (conv_k3_s2_c16x32_h28_n64: kernel, stride, padding k/2, channels in x out, input
size, batch), three passes:
  forward           F.conv2d(x, w, b) under torch.no_grad();
  backward_data     torch.ops.aten.convolution_backward with output mask (x, -, -);
  backward_weights  the same with mask (-, w, b): the weight and bias gradients, as minidl's
                    pass computes both.
convolution_backward is the op autograd itself calls for a convolution's backward, so each mask
runs exactly the kernel training runs for that gradient and nothing else; autograd with only x or
only w requiring grad would also time a forward and the graph's bookkeeping.
The backend column says which implementation PyTorch ran: 'onednn' (aten::mkldnn_convolution),
'thnn' (aten::_slow_conv2d_*, its im2col fallback, chosen e.g. for batch-1 convolutions with
small kernels) or the ops seen, from the profiler's record of one forward call. The backward
passes go through the same backend choice (select_conv_backend) as the forward.

Layers (maxpool_k2_c32_h28_n64, maxpool_k3s2p1_..., avgpool_..., gap_c64_h7_n64,
batchnorm_c32_h28_n64, linear_n64_i3136_o128), one pass, forward_backward: the module in train
mode, module(x).backward(dy) with x requiring grad, gradients cleared (set to None) before each.

Each time is the median of REPS repetitions after WARMUP untimed calls; a repetition repeats the
call to fill about a millisecond and counts the time per call, as shape_sweep does.

Usage: shape_sweep.py [CASES] [--threads N (2)] [--reps N (5)] [--warmup N (1)]
Output: '#' lines (torch version, threads, oneDNN, the libraries line of torch_libraries.py), a
header, then one line per (case, pass): case<TAB>pass<TAB>ms<TAB>backend.
Refuses to run (exit 1, one line) when torch has mapped netlib's reference BLAS
(benchmarks/pytorch/blas.sh), and names any case it cannot parse. Run it on an idle machine.
"""
import argparse
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_libraries import blas_refusal, loaded_libraries  # noqa: E402

CONV = re.compile(r"conv_k(\d+)_s(\d+)_c(\d+)x(\d+)_h(\d+)_n(\d+)")
POOL = re.compile(r"(maxpool|avgpool)_k(\d+)(?:s(\d+)p(\d+))?_c(\d+)_h(\d+)_n(\d+)")
GAP = re.compile(r"gap_c(\d+)_h(\d+)_n(\d+)")
BATCHNORM = re.compile(r"batchnorm_c(\d+)_h(\d+)_n(\d+)")
LINEAR = re.compile(r"linear_n(\d+)_i(\d+)_o(\d+)")


def die(message):
    sys.exit(f"shape_sweep.py: error: {message}")


def median_ms(run, warmup, reps):
    """Milliseconds per call of run: the median of reps repetitions of enough calls to fill
    about a millisecond (as many as the last warm-up call says)."""
    once = 0.0
    for _ in range(max(warmup, 1)):
        start = time.perf_counter()
        run()
        once = (time.perf_counter() - start) * 1e3
    calls = int(min(max(1.0 / max(once, 1e-6), 1), 1000))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) * 1e3 / calls)
    return statistics.median(times)


def conv_backend(call):
    """Which convolution implementation one call of call() ran, from the profiler's ops."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    ops = {e.key for e in prof.key_averages()}
    if any("mkldnn" in op for op in ops):
        return "onednn"
    if any("slow_conv2d" in op or "thnn" in op for op in ops):
        return "thnn"
    return ",".join(sorted(op for op in ops if "conv" in op)) or "unknown"


def conv_passes(k, stride, c_in, c_out, h, n, warmup, reps):
    pad = k // 2
    x, w, b = torch.randn(n, c_in, h, h), torch.randn(c_out, c_in, k, k), torch.randn(c_out)
    with torch.no_grad():
        dy = torch.randn_like(F.conv2d(x, w, b, stride, pad))

    def forward():
        with torch.no_grad():
            F.conv2d(x, w, b, stride, pad)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, w, [c_out], [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, mask)

    backend = conv_backend(forward)
    runs = [("forward", forward), ("backward_data", backward([True, False, False])),
            ("backward_weights", backward([False, True, True]))]
    return [(name, median_ms(run, warmup, reps), backend) for name, run in runs]


def layer_module(name):
    """(module, input shape) of a layer case, or None when the name is not one."""
    if m := POOL.fullmatch(name):
        kind, k = m[1], int(m[2])
        s, p = (int(m[3]), int(m[4])) if m[3] else (k, 0)
        c, h, n = int(m[5]), int(m[6]), int(m[7])
        pool = torch.nn.MaxPool2d if kind == "maxpool" else torch.nn.AvgPool2d
        return pool(k, s, p), (n, c, h, h)
    if m := GAP.fullmatch(name):
        return torch.nn.AdaptiveAvgPool2d(1), (int(m[3]), int(m[1]), int(m[2]), int(m[2]))
    if m := BATCHNORM.fullmatch(name):
        return torch.nn.BatchNorm2d(int(m[1])), (int(m[3]), int(m[1]), int(m[2]), int(m[2]))
    if m := LINEAR.fullmatch(name):
        return torch.nn.Linear(int(m[2]), int(m[3])), (int(m[1]), int(m[2]))
    return None


def layer_pass(module, shape, warmup, reps):
    module = module.float().train()
    x = torch.randn(*shape, requires_grad=True)
    dy = torch.randn_like(module(x))

    def run():
        x.grad = None
        module.zero_grad(set_to_none=True)
        module(x).backward(dy)

    return [("forward_backward", median_ms(run, warmup, reps), "module")]


def read_cases(path):
    text = sys.stdin.read() if path == "-" else open(path).read()
    cases = [line.strip() for line in text.splitlines() if line.strip()]
    if not cases:
        die(f"no case in {'stdin' if path == '-' else path}")
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="?", default="-", help="shape_sweep --list output (- = stdin)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--threads and --reps must be at least 1, --warmup at least 0")
    try:
        cases = read_cases(args.cases)
    except OSError as e:
        die(f"cannot read the cases: {e}")
    plans = []
    for name in cases:  # every name parsed before anything is timed
        if m := CONV.fullmatch(name):
            plans.append((name, lambda m=m: conv_passes(*map(int, m.groups()), args.warmup, args.reps)))
        elif layer := layer_module(name):
            plans.append((name, lambda layer=layer: layer_pass(*layer, args.warmup, args.reps)))
        else:
            die(f"unknown case '{name}' (not a name shape_sweep --list prints)")
    torch.set_num_threads(args.threads)
    libraries = loaded_libraries()
    if refusal := blas_refusal("PyTorch", libraries):
        die(refusal)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, float32, median of "
          f"{args.reps} after {args.warmup} warm-up")
    print(f"# onednn available={torch.backends.mkldnn.is_available()} "
          f"enabled={torch.backends.mkldnn.enabled}")
    print(f"# {libraries}")
    print("case\tpass\tms\tbackend")
    for name, plan in plans:
        for pass_name, ms, backend in plan():
            print(f"{name}\t{pass_name}\t{ms:.4f}\t{backend}", flush=True)


if __name__ == "__main__":
    main()
