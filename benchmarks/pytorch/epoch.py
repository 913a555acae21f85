#!/usr/bin/python3
"""The same measurements as benchmarks/epoch, in PyTorch: one training epoch of
the MNIST CNN (60,000 images, batch 64, Adam 1e-3), the evaluation of the
10,000 test images, and the latency of one image.

Usage: epoch.py [--threads N] [--data DIR] [--limit-train N] [--eval-batch N]
(data: --data, $MNIST_DIR, else random)
Prints lines in the format of benchmarks/epoch, then the BLAS, LAPACK and
oneDNN libraries this process has mapped. benchmarks/libtorch/epoch.cpp is its
twin in C++: it draws the same random numbers and prints the same lines.
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from reference_model import MnistCnn, load_mnist_split, normalise  # noqa: E402
from torch_libraries import loaded_libraries  # noqa: E402


def random_mnist():
    """Random images and labels of MNIST's sizes, drawn as the LibTorch twin draws them."""
    g = torch.Generator().manual_seed(1)
    draw = [torch.randint(0, 256, (60000, 28, 28), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (60000,), generator=g),
            torch.randint(0, 256, (10000, 28, 28), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (10000,), generator=g)]
    return [t.numpy() for t in draw]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("MNIST_DIR", ""))
    ap.add_argument("--limit-train", type=int, default=0, help="train on the first N shuffled images (0: all)")
    ap.add_argument("--eval-batch", type=int, default=64, help="batch size of the test evaluation")
    args = ap.parse_args()
    if args.threads < 1 or args.eval_batch < 1 or args.limit_train < 0:
        ap.error("--threads and --eval-batch must be at least 1, --limit-train at least 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.data:
        try:
            train_x, train_y = load_mnist_split(args.data, "train")
            test_x, test_y = load_mnist_split(args.data, "t10k")
        except (OSError, ValueError) as e:
            sys.exit(f"epoch.py: error: {e}")
    else:
        train_x, train_y, test_x, test_y = random_mnist()
    model = MnistCnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ty = torch.from_numpy(train_y.astype(np.int64))

    model.train()
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(1)).numpy()
    if args.limit_train > 0:
        order = order[:args.limit_train]
    t0 = time.perf_counter()
    total = 0.0
    for b in range(0, len(order), 64):
        idx = order[b:b + 64]
        x = normalise(train_x[idx])  # per-batch conversion, as minidl does
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), ty[idx])
        loss.backward()
        opt.step()
        total += loss.item()
    s = time.perf_counter() - t0
    batches = (len(order) + 63) // 64
    print(f"train_epoch threads={args.threads} seconds={s:.3f} images_per_s={len(order) / s:.0f} "
          f"mean_loss={total / batches:.4f}")

    model.eval()
    t0 = time.perf_counter()
    correct = 0
    step = args.eval_batch
    with torch.no_grad():
        for b in range(0, len(test_y), step):
            pred = model(normalise(test_x[b:b + step])).argmax(1).numpy()
            correct += int((pred == test_y[b:b + step]).sum())
    s = time.perf_counter() - t0
    print(f"evaluate_test threads={args.threads} batch={step} seconds={s:.3f} "
          f"images_per_s={len(test_y) / s:.0f} accuracy={correct / len(test_y):.4f}")

    lat = []
    with torch.no_grad():
        for r in range(220):
            x = normalise(test_x[r % 1000:r % 1000 + 1])
            t0 = time.perf_counter()
            int(model(x).argmax(1)[0])
            if r >= 20:
                lat.append(time.perf_counter() - t0)
    print(f"latency_1_image threads={args.threads} median_ms={np.median(lat) * 1e3:.3f}")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    print(loaded_libraries())


if __name__ == "__main__":
    main()
