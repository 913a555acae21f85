"""The pooling layers of benchmarks/layers_pooling.cpp, as PyTorch modules.

CASES lists (case name, make_module, input shape); the names are those of the
BM_layer_<case> benchmarks of the `kernels` executable, so that the
side-by-side driver (benchmarks/pytorch/layers.py) can time each module's
forward and backward against minidl's layer.
"""
import torch

nn = torch.nn

CASES = [
    ("avgpool2d_k2_64x32x28x28", lambda: nn.AvgPool2d(2), (64, 32, 28, 28)),
    ("avgpool2d_k3s2p1_64x32x28x28", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     (64, 32, 28, 28)),
    ("adaptiveavgpool2d_1x1_64x64x7x7", lambda: nn.AdaptiveAvgPool2d(1), (64, 64, 7, 7)),
    ("maxpool2d_k3s2p1_64x32x28x28", lambda: nn.MaxPool2d(3, 2, 1), (64, 32, 28, 28)),
    ("maxpool2d_k2_64x32x28x28", lambda: nn.MaxPool2d(2), (64, 32, 28, 28)),
]
