"""Trains the MNIST CNN in PyTorch for a short while and saves its state_dict.

Usage: train_pytorch_short.py MNIST_DIR OUT.pt  (2000 images, 2 epochs, Adam 1e-3)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from reference_model import MnistCnn, load_mnist_split, normalise  # noqa: E402

torch.manual_seed(3)
torch.set_num_threads(2)
images, labels = load_mnist_split(sys.argv[1], "train")
x, y = normalise(images[:2000]), torch.from_numpy(labels[:2000])
model = MnistCnn()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    order = torch.from_numpy(np.random.default_rng(epoch).permutation(2000))
    for b in range(0, 2000, 64):
        idx = order[b:b + 64]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
torch.save(model.state_dict(), sys.argv[2])
print(f"saved {sys.argv[2]}")
