"""The general convolution's cases for the side-by-side layer timing (benchmarks/pytorch/layers.py).

Each entry is (case name, make_module, input shape); minidl times the same
case as BM_layer_<case name> in benchmarks/layers_conv.cpp (forward, then
backward with the input gradient).
"""
import torch

CASES = [
    ("conv2d_dw3x3_64x32x28x28",
     lambda: torch.nn.Conv2d(32, 32, 3, padding=1, groups=32), (64, 32, 28, 28)),
    ("conv2d_g2_64x32x14x14",
     lambda: torch.nn.Conv2d(32, 32, 3, padding=1, groups=2), (64, 32, 14, 14)),
    ("conv2d_dil2_64x32x14x14",
     lambda: torch.nn.Conv2d(32, 32, 3, padding=2, dilation=2), (64, 32, 14, 14)),
]
