"""Writes PyTorch's answers for minidl's activation parity test (test_activations_parity).

For Sigmoid, Tanh, LeakyReLU (slopes 0.01 and -0.3), GELU (approximate 'none'
and 'tanh'), SiLU, Softmax and LogSoftmax (dim 1, and dim -1 / 0): an input x,
an upstream gradient dy, the output y = module(x) and the input gradient dx,
on three inputs: "nchw" [3, 5, 4, 6] (normal, scale 3), "nc" [4, 7] (the
same) and "big" [2, 8] (magnitudes 0 to 100, both signs, where a naive exp
overflows). Once in float32 (prefix "f32.") and once in float64 ("f64.").
Names: f"{prefix}{input}.x", f"{prefix}{input}.dy",
f"{prefix}{input}.{case}.y", f"{prefix}{input}.{case}.dx".

Usage: make_activation_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_activations_parity skips too); under CI=true that is a failure.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_setup  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(f"usage: {sys.argv[0]} OUT.safetensors")
torch = reference_setup.start(sys.argv[1])

import safetensors_np  # noqa: E402

nn = torch.nn

# The cases the C++ test builds by the same names.
CASES = {
    "sigmoid": lambda: nn.Sigmoid(),
    "tanh": lambda: nn.Tanh(),
    "leaky_relu": lambda: nn.LeakyReLU(),
    "leaky_relu_neg": lambda: nn.LeakyReLU(negative_slope=-0.3),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": lambda: nn.SiLU(),
    "softmax": lambda: nn.Softmax(dim=1),
    "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "softmax_last": lambda: nn.Softmax(dim=-1),
    "log_softmax_first": lambda: nn.LogSoftmax(dim=0),
}


def inputs(dtype):
    g = torch.Generator().manual_seed(16)
    big = torch.tensor([[0, 1, 5, 20, 30, 50, 88, 100], [-0.5, -1, -5, -20, -30, -50, -88, -100]],
                       dtype=dtype)
    return {
        "nchw": 3 * torch.randn(3, 5, 4, 6, dtype=dtype, generator=g),
        "nc": 3 * torch.randn(4, 7, dtype=dtype, generator=g),
        "big": big,
    }


def main(out_path):
    out = {}
    g = torch.Generator().manual_seed(17)
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        for name, x in inputs(dtype).items():
            dy = torch.randn(x.shape, dtype=dtype, generator=g)
            out[f"{prefix}{name}.x"] = x
            out[f"{prefix}{name}.dy"] = dy
            for case, make in CASES.items():
                xg = x.clone().requires_grad_()
                y = make().train()(xg)
                y.backward(dy)
                out[f"{prefix}{name}.{case}.y"] = y.detach()
                out[f"{prefix}{name}.{case}.dx"] = xg.grad
    arrays = {k: v.detach().numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
