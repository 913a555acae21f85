"""The batch-norm cases of the side-by-side layer timing against PyTorch.

CASES lists (case name, make_module, input shape); the case names are those of
benchmarks/layers_batchnorm.cpp without "BM_layer_", where the same layer is timed
forward + backward in training mode. The driver (benchmarks/pytorch/layers.py)
imports every layer_cases_*.py and times each module the same way.
"""
import torch


def batchnorm2d_32():
    return torch.nn.BatchNorm2d(32).train()


CASES = [
    ("batchnorm2d_64x32x28x28", batchnorm2d_32, (64, 32, 28, 28)),
]
