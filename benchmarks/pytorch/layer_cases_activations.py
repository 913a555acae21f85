"""The activation layers' cases for the side-by-side driver (layers.py): the
PyTorch twins of the BM_layer_<case> benchmarks in benchmarks/layers_activations.cpp,
same names without the BM_layer_ prefix, same modules and input shapes."""
import torch.nn as nn

SHAPE = (64, 32, 28, 28)

CASES = [
    ("sigmoid_64x32x28x28", lambda: nn.Sigmoid(), SHAPE),
    ("tanh_64x32x28x28", lambda: nn.Tanh(), SHAPE),
    ("leaky_relu_64x32x28x28", lambda: nn.LeakyReLU(0.01), SHAPE),
    ("gelu_64x32x28x28", lambda: nn.GELU(), SHAPE),
    ("gelu_tanh_64x32x28x28", lambda: nn.GELU(approximate="tanh"), SHAPE),
    ("silu_64x32x28x28", lambda: nn.SiLU(), SHAPE),
    ("softmax_64x32x28x28", lambda: nn.Softmax(dim=1), SHAPE),
    ("log_softmax_64x32x28x28", lambda: nn.LogSoftmax(dim=1), SHAPE),
]
