#!/usr/bin/python3
"""Tests one remedy for a trained ResNet's accuracy: batch-norm statistics
recomputed after training ("precise BN"). Each minidl checkpoint of `resnet
train` is loaded into the PyTorch twin's network (train_resnet.py), scored on
the test and validation images, then its running means and variances are
replaced by plain averages over the batch statistics of the first N training
images (unaugmented, batches of 128) and it is scored again.

Usage: recompute_bn.py [--data DIR] [--images N] [--depth 20] [--width 16] CKPT.safetensors ...
(data: --data, $FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist;
validation: the last --val training images, 5000 as `resnet train`'s default)
Prints one line a checkpoint: the test and validation accuracy before and after.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import train_resnet as twin  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", metavar="CKPT.safetensors")
    p.add_argument("--data", default=os.environ.get("FASHION_MNIST_DIR",
                                                    "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--images", type=int, default=20000,
                   help="training images whose batch statistics are averaged")
    p.add_argument("--val", type=int, default=5000)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train_images, train_labels = twin.load_split(args.data, "train")
    test_images, test_labels = twin.load_split(args.data, "t10k")
    held = len(train_labels) - args.val
    if args.val < 1 or held < args.images:
        sys.exit(f"recompute_bn.py: --val {args.val} and --images {args.images} do not fit in "
                 f"{len(train_labels)} training images")
    val_images, val_labels = train_images[held:], train_labels[held:]

    for path in args.checkpoints:
        model = twin.ResNet(depth=args.depth, width=args.width)
        twin.load_minidl_weights(model, path)
        _, test_before = twin.evaluate(model, test_images, test_labels, 500)
        _, val_before = twin.evaluate(model, val_images, val_labels, 500)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # a cumulative average of the batches' statistics
        model.train()
        with torch.no_grad():
            for b in range(0, args.images, 128):
                model(twin.normalise(train_images[b:min(b + 128, args.images)]))
        _, test_after = twin.evaluate(model, test_images, test_labels, 500)
        _, val_after = twin.evaluate(model, val_images, val_labels, 500)
        print(f"{path}: test {test_before:.4f} -> {test_after:.4f} "
              f"({100 * (test_after - test_before):+.2f} points); "
              f"validation {val_before:.4f} -> {val_after:.4f}", flush=True)


if __name__ == "__main__":
    main()
