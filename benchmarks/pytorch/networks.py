#!/usr/bin/python3
"""The PyTorch twin of benchmarks/networks: the same five networks (1x28x28 in,
10 classes) and the same measurements, printed in the same lines. After
warm-up, the training step (zero_grad, forward, cross-entropy, backward, Adam
lr 1e-3) at a batch, and the latency of one image in evaluation mode.

Usage: networks.py --network NAME [--batch N] [--threads N] [--steps N]
           [--runs N] [--warmup N]
NAME: mnist_cnn, lenet5, vgg_strided, wide, resnet. Defaults as
benchmarks/networks: batch 64 (128 for resnet), 2 threads, 20 steps, 200
runs, 5 warm-up steps and runs. benchmarks/libtorch/networks.cpp is its twin
in C++: it draws the same random numbers and prints the same lines.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "resnet"))
import torch  # noqa: E402
from torch import nn  # noqa: E402

from reference_model import MnistCnn  # noqa: E402
from torch_libraries import loaded_libraries  # noqa: E402
from train_resnet import ResNet  # noqa: E402


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def vgg_strided():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 10))


def wide():
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(128 * 7 * 7, 10))


# name: (builder, default batch). The ResNet is examples/resnet's at its defaults (ResNet-20,
# width 16, batch 128), from its PyTorch twin benchmarks/resnet/train_resnet.py.
NETWORKS = {"mnist_cnn": (MnistCnn, 64), "lenet5": (lenet5, 64), "vgg_strided": (vgg_strided, 64),
            "wide": (wide, 64), "resnet": (ResNet, 128)}


def work_per_image(model, x):
    """(forward, training) multiply-adds per image of the convolutions and linear layers, as
    benchmarks/networks counts them: output elements x fan-in for the forward, as many for the
    weight gradient, and again for the input gradient when the layer's input needs one."""
    work = [0, 0]

    def count(module, inputs, output):
        macs = output[0].numel() * (module.weight.numel() // module.weight.shape[0])  # image 0
        work[0] += macs
        work[1] += macs * (3 if inputs[0].requires_grad else 2)

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    model(x)
    for h in hooks:
        h.remove()
    return work


def print_measure(what, args, batch, ms, parameters, work):
    print(f"{what} network={args.network} engine=pytorch threads={args.threads} batch={batch} "
          f"reps={len(ms)} median_ms={statistics.median(ms):.4f} best_ms={min(ms):.4f} "
          f"parameters={parameters} forward_macs_per_image={work[0]} "
          f"train_macs_per_image={work[1]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", required=True, choices=sorted(NETWORKS))
    ap.add_argument("--batch", type=int, default=0, help="batch of the training step (0: default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--runs", type=int, default=200, help="timed 1-image forwards")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps and forwards before each")
    args = ap.parse_args()
    if min(args.threads, args.steps, args.runs) < 1 or args.batch < 0 or args.warmup < 0:
        ap.error("--threads, --steps and --runs must be at least 1, --batch and --warmup at least 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    build, default_batch = NETWORKS[args.network]
    batch = args.batch or default_batch
    model = build()
    parameters = sum(p.numel() for p in model.parameters())

    g = torch.Generator().manual_seed(1)  # drawn as the LibTorch twin draws them
    x = torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1
    y = torch.randint(0, 10, (batch,), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    work = work_per_image(model, x[:2])  # two images: batch norm needs two values per channel
    ms = []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if s >= args.warmup:
            ms.append((time.perf_counter() - t0) * 1e3)
    print_measure("train_step", args, batch, ms, parameters, work)

    model.eval()
    image = x[:1].clone()
    ms = []
    with torch.no_grad():
        for r in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            int(model(image).argmax(1)[0])
            if r >= args.warmup:
                ms.append((time.perf_counter() - t0) * 1e3)
    print_measure("latency_1_image", args, 1, ms, parameters, work)
    print(loaded_libraries())


if __name__ == "__main__":
    main()
