#!/usr/bin/python3
"""The same measurements as benchmarks/epoch, in PyTorch: one training epoch of
the MNIST CNN (60,000 images, batch 64, Adam 1e-3), the evaluation of the
10,000 test images, and the latency of one image.

Usage: epoch.py [--threads N] [--data DIR]   (data: --data, $MNIST_DIR, else random)
Prints lines in the format of benchmarks/epoch.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("MNIST_DIR", ""))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.data:
        train_x, train_y = load_mnist_split(args.data, "train")
        test_x, test_y = load_mnist_split(args.data, "t10k")
    else:
        rng = np.random.default_rng(1)
        train_x, train_y = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)
        test_x, test_y = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 10000)
    model = MnistCnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ty = torch.from_numpy(train_y.astype(np.int64))

    model.train()
    order = np.random.default_rng(1).permutation(len(train_y))
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
    with torch.no_grad():
        for b in range(0, len(test_y), 64):
            pred = model(normalise(test_x[b:b + 64])).argmax(1).numpy()
            correct += int((pred == test_y[b:b + 64]).sum())
    s = time.perf_counter() - t0
    print(f"evaluate_test threads={args.threads} seconds={s:.3f} images_per_s={len(test_y) / s:.0f} "
          f"accuracy={correct / len(test_y):.4f}")

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


if __name__ == "__main__":
    main()
