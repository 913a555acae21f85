#!/usr/bin/python3
"""Evaluates a PyTorch state_dict of the MNIST CNN on the MNIST test set.

Usage: evaluate_pytorch.py MODEL.pt MNIST_DIR
Prints "correct N of 10000 (accuracy A)".
"""
import sys

import torch

from reference_model import MnistCnn, load_mnist_split, normalise


def main(model_path, data_dir):
    torch.set_num_threads(2)
    model = MnistCnn()
    model.load_state_dict(torch.load(model_path, map_location="cpu"))
    model.eval()
    images, labels = load_mnist_split(data_dir, "t10k")
    correct = 0
    with torch.no_grad():
        for b in range(0, len(labels), 500):
            pred = model(normalise(images[b:b + 500])).argmax(1).numpy()
            correct += int((pred == labels[b:b + 500]).sum())
    print(f"correct {correct} of {len(labels)} (accuracy {correct / len(labels):.4f})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
