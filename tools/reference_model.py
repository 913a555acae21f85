"""The MNIST CNN of minidl written in PyTorch, with the same parameter names."""
import gzip
import os

import numpy as np
import torch
from torch import nn


class MnistCnn(nn.Module):
    def __init__(self, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = self.dropout(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def load_mnist_split(folder, split):
    """(images uint8 [N,28,28], labels int64 [N]) of 'train' or 't10k' from IDX files, gzipped or not."""
    def find(stem):
        for name in (stem, stem.replace("-idx", ".idx")):
            for ext in ("", ".gz"):
                p = os.path.join(folder, name + ext)
                if os.path.exists(p):
                    return p
        raise FileNotFoundError(f"{folder}: no {stem}[.gz]")

    def read(path):
        opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            return f.read()

    img = read(find(f"{split}-images-idx3-ubyte"))
    lab = read(find(f"{split}-labels-idx1-ubyte"))
    n = int.from_bytes(img[4:8], "big")
    images = np.frombuffer(img, dtype=np.uint8, offset=16).reshape(n, 28, 28)
    labels = np.frombuffer(lab, dtype=np.uint8, offset=8).astype(np.int64)
    return images, labels


def normalise(images):
    """uint8 [N,28,28] -> float32 [N,1,28,28] in [-1, 1], as minidl does."""
    return torch.from_numpy((images.astype(np.float32) / 255.0 - 0.5) / 0.5).unsqueeze(1)
