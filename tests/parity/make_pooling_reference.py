"""Writes PyTorch's answers for minidl's pooling parity test (test_parity_pooling).

For each case of CASES, a module of torch.nn (AvgPool2d, AdaptiveAvgPool2d,
MaxPool2d, Identity), an input x, its output y, an upstream gradient dy and
the input gradient dx: under "<prefix><case>.x", ".y", ".dy", ".dx", once in
float32 (prefix "f32.") and once in float64 ("f64."). The ties cases hold
small integers, so that many windows have several maxima: PyTorch routes the
gradient to the first one in row-major order.

Usage: make_pooling_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_parity_pooling skips too); under CI=true that is a failure.
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

# (case, module, input shape, integer inputs with ties); test_parity_pooling.cpp builds the
# same layers under the same names.
CASES = [
    ("avg_k2", lambda: nn.AvgPool2d(2), (2, 3, 7, 9), False),
    ("avg_k3s2p1", lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 7, 8), False),
    ("avg_k3s2p1_nopad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 8),
     False),
    ("avg_ceil", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 8), False),
    ("avg_ceil_nopad", lambda: nn.AvgPool2d(2, 2, 1, ceil_mode=True, count_include_pad=False),
     (2, 2, 6, 7), False),
    ("avg_axes", lambda: nn.AvgPool2d((3, 2), (2, 1), (1, 0)), (2, 2, 9, 8), False),
    ("adaptive_7to3", lambda: nn.AdaptiveAvgPool2d(3), (2, 3, 7, 7), False),
    ("adaptive_5to2x3", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 5), False),
    ("adaptive_8to4", lambda: nn.AdaptiveAvgPool2d(4), (2, 3, 8, 8), False),
    ("adaptive_global", lambda: nn.AdaptiveAvgPool2d(1), (4, 8, 7, 7), False),
    ("adaptive_3to5x4", lambda: nn.AdaptiveAvgPool2d((5, 4)), (1, 2, 3, 3), False),
    ("max_k3s2p1", lambda: nn.MaxPool2d(3, 2, 1), (2, 3, 7, 8), False),
    ("max_axes_dilated", lambda: nn.MaxPool2d((3, 2), (2, 1), (1, 0), dilation=(1, 2)),
     (2, 2, 9, 8), False),
    ("max_ceil", lambda: nn.MaxPool2d(3, 2, 0, ceil_mode=True), (2, 2, 8, 8), False),
    ("max_k3s1p1_ties", lambda: nn.MaxPool2d(3, 1, 1), (2, 2, 6, 6), True),
    ("max_k2_ties", lambda: nn.MaxPool2d(2), (2, 3, 8, 9), True),
    ("identity", lambda: nn.Identity(), (2, 3, 4, 5), False),
]


def main(out_path):
    out = {}
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        torch.manual_seed(2024)
        for name, make, shape, ties in CASES:
            if ties:
                x = torch.randint(-2, 3, shape).to(dtype)
            else:
                x = torch.randn(*shape, dtype=dtype)
            x.requires_grad_()
            y = make()(x)
            dy = torch.randn_like(y)
            y.backward(dy)
            at = f"{prefix}{name}."
            out[at + "x"] = x.detach()
            out[at + "y"] = y.detach()
            out[at + "dy"] = dy
            out[at + "dx"] = x.grad
    arrays = {k: v.numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
