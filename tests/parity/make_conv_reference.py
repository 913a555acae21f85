"""Writes PyTorch's answers for minidl's general convolution parity test (test_conv_general).

For each case below, a torch.nn.Conv2d with groups, dilation, a non-square
kernel or stride and padding per axis: the input x, the weight and bias, a
gradient dy of the output, and PyTorch's output y and gradients dx, dweight
and dbias (the loss is sum(y * dy)). Once in float32 (prefix "f32.") and
once in float64 ("f64."), from the same float64 draws; tensor names are
"<prefix><case>.<what>", and "<case>.config" holds the case's arguments
(in, out, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias, N, H, W) as int64.

Usage: make_conv_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_conv_general's parity cases skip too); under CI=true that
is a failure.
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

# name: (in, out, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, bias, (N, H, W))
CASES = {
    "groups2": (4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, True, (3, 9, 7)),
    "depthwise": (5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 5, True, (2, 11, 21)),
    "depthwise_x2_3x5": (3, 6, (3, 5), (2, 1), (1, 2), (2, 2), 3, True, (2, 13, 37)),
    "depthwise_stride2": (4, 4, (3, 3), (2, 2), (1, 1), (1, 1), 4, True, (3, 15, 17)),
    "dilation2": (3, 4, (3, 3), (1, 1), (2, 2), (2, 2), 1, True, (2, 10, 20)),
    "k3x5_s21_p12": (3, 5, (3, 5), (2, 1), (1, 2), (1, 1), 1, True, (1, 9, 11)),
    "groups2_mixed": (4, 4, (5, 3), (1, 2), (2, 1), (2, 1), 2, False, (5, 12, 9)),
    # 1x1 kernels on output rows narrower than a direct tile: the pointwise products.
    "pointwise_s2": (16, 24, (1, 1), (2, 2), (0, 0), (1, 1), 1, True, (3, 7, 7)),
    "pointwise_s1": (8, 12, (1, 1), (1, 1), (0, 0), (1, 1), 1, True, (2, 5, 6)),
    # Few channels on rows as wide as a direct tile or wider: the pointwise products too.
    "pointwise_s1_wide": (6, 10, (1, 1), (1, 1), (0, 0), (1, 1), 1, True, (2, 20, 21)),
    "pointwise_s2_wide": (5, 9, (1, 1), (2, 2), (0, 0), (1, 1), 1, False, (2, 28, 28)),
    # Few input channels, 5x5 and 7x7, rows a vector wide: the rows kernel's input and weight
    # gradients (stride 1 and 2).
    "rows_data_5x5": (3, 8, (5, 5), (1, 1), (2, 2), (1, 1), 1, True, (2, 14, 20)),
    "rows_data_7x7": (1, 6, (7, 7), (1, 1), (3, 3), (1, 1), 1, False, (2, 12, 17)),
    "rows_data_s2": (2, 8, (5, 5), (2, 2), (2, 2), (1, 1), 1, True, (2, 15, 34)),
}


def case(out, name, args):
    cin, cout, k, s, p, d, groups, bias, (n, h, w) = args
    out[f"{name}.config"] = torch.tensor([cin, cout, *k, *s, *p, *d, groups, int(bias), n, h, w],
                                         dtype=torch.int64)
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=groups,
                           bias=bias, dtype=torch.float64)
    x = torch.randn(n, cin, h, w, generator=gen, dtype=torch.float64)
    weight = 0.5 * torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64)
    b = 0.5 * torch.randn(cout, generator=gen, dtype=torch.float64)
    dy_shape = conv(x).shape
    dy = torch.randn(dy_shape, generator=gen, dtype=torch.float64)
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        m = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=groups,
                            bias=bias, padding_mode="zeros", dtype=dtype)
        with torch.no_grad():
            m.weight.copy_(weight.to(dtype))
            if bias:
                m.bias.copy_(b.to(dtype))
        xt = x.to(dtype).clone().requires_grad_()
        y = m(xt)
        y.backward(dy.to(dtype))
        key = f"{prefix}{name}."
        out[key + "x"] = xt.detach()
        out[key + "weight"] = m.weight.detach()
        out[key + "dy"] = dy.to(dtype)
        out[key + "y"] = y.detach()
        out[key + "dx"] = xt.grad
        out[key + "dweight"] = m.weight.grad
        if bias:
            out[key + "bias"] = m.bias.detach()
            out[key + "dbias"] = m.bias.grad


def main(out_path):
    torch.set_num_threads(1)
    out = {}
    for name, args in CASES.items():
        case(out, name, args)
    arrays = {k: v.detach().contiguous().numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
