"""Writes PyTorch's answers for minidl's batch-norm parity test (test_parity_batchnorm).

For each case of CASES (torch.nn.BatchNorm2d or BatchNorm1d with its arguments and an
input shape), once in float32 (prefix "f32.") and once in float64 ("f64."), under
"<prefix><case>.":
  weight, bias          the values the module starts from (affine cases; not 1 and 0)
  x0..x2, dy0..dy2      three training steps: input and the gradient of the output
  y0..y2, dx0..dx2      the output and input gradient of each step, and
  dweight0.., dbias0..  the parameter gradients of each step (affine cases)
  running_mean, running_var, num_batches_tracked   after the three steps (tracking cases)
  x_eval, dy_eval, y_eval, dx_eval, dweight_eval, dbias_eval   one evaluation step after
and under "<prefix>net.": a small network, Conv2d(2, 4, 3, padding 1, no bias) ->
BatchNorm2d(4) -> ReLU -> Conv2d(4, 3, 3, stride 2, padding 1) -> BatchNorm2d(3), after
three training forward passes: its state_dict ("net.state.<name>", buffers included,
num_batches_tracked as int64 of shape []), an input "net.x" and its evaluation output
"net.y" (which minidl computes with each batch norm folded into its convolution).

Usage: make_batchnorm_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_parity_batchnorm skips too); under CI=true that is a failure.
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

STEPS = 3

# name: (module class, num_features, keyword arguments, input shape). test_parity_batchnorm.cpp
# builds the same modules from the same table.
CASES = {
    "bn2d": ("BatchNorm2d", 4, {}, (3, 4, 5, 6)),
    "bn2d_no_affine": ("BatchNorm2d", 4, {"affine": False}, (2, 4, 7, 3)),
    "bn2d_no_stats": ("BatchNorm2d", 3, {"track_running_stats": False}, (2, 3, 4, 5)),
    "bn2d_cumulative": ("BatchNorm2d", 3, {"momentum": None, "eps": 1e-3}, (1, 3, 9, 9)),
    "bn2d_wide": ("BatchNorm2d", 16, {"momentum": 0.3}, (8, 16, 14, 14)),
    "bn1d": ("BatchNorm1d", 5, {}, (6, 5)),
    "bn1d_length": ("BatchNorm1d", 3, {"affine": False, "momentum": 0.5}, (4, 3, 7)),
    "bn1d_no_stats": ("BatchNorm1d", 6, {"track_running_stats": False}, (1, 6, 10)),
}


def case(out, prefix, name, dtype):
    cls, features, kwargs, shape = CASES[name]
    torch.manual_seed(sum(map(ord, name)))
    module = getattr(torch.nn, cls)(features, **kwargs).to(dtype)
    p = f"{prefix}{name}."
    if module.affine:
        with torch.no_grad():
            module.weight.copy_(1 + 0.5 * torch.randn(features, dtype=dtype))
            module.bias.copy_(torch.randn(features, dtype=dtype))
        out[p + "weight"] = module.weight.detach().clone()
        out[p + "bias"] = module.bias.detach().clone()

    def step(suffix, x):
        dy = torch.randn(shape, dtype=dtype)
        xg = x.clone().requires_grad_()
        module.zero_grad()
        y = module(xg)
        y.backward(dy)
        out[p + "x" + suffix], out[p + "dy" + suffix] = x, dy
        out[p + "y" + suffix], out[p + "dx" + suffix] = y.detach(), xg.grad
        if module.affine:
            out[p + "dweight" + suffix] = module.weight.grad.clone()
            out[p + "dbias" + suffix] = module.bias.grad.clone()

    module.train()
    for k in range(STEPS):  # inputs off centre and not of unit scale, each step another
        step(str(k), (k + 1) * torch.randn(shape, dtype=dtype) + k - 1)
    if module.track_running_stats:
        out[p + "running_mean"] = module.running_mean.clone()
        out[p + "running_var"] = module.running_var.clone()
        out[p + "num_batches_tracked"] = module.num_batches_tracked.clone()
    module.eval()
    step("_eval", 2 * torch.randn(shape, dtype=dtype) + 0.5)


def network(out, prefix, dtype):
    torch.manual_seed(5)
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(2, 4, 3, padding=1, bias=False))
    net.add_module("bn1", torch.nn.BatchNorm2d(4))
    net.add_module("relu1", torch.nn.ReLU())
    net.add_module("conv2", torch.nn.Conv2d(4, 3, 3, stride=2, padding=1))
    net.add_module("bn2", torch.nn.BatchNorm2d(3))
    net = net.to(dtype)
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.weight.copy_(1 + 0.5 * torch.randn(bn.num_features, dtype=dtype))
            bn.bias.copy_(torch.randn(bn.num_features, dtype=dtype))
        net.train()
        for k in range(STEPS):
            net(2 * torch.randn(5, 2, 7, 7, dtype=dtype) + k)
        net.eval()
        x = torch.randn(3, 2, 7, 7, dtype=dtype)
        out[prefix + "net.x"], out[prefix + "net.y"] = x, net(x)
    for name, value in net.state_dict().items():
        out[prefix + "net.state." + name] = value.clone()


def main(out_path):
    out = {}
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        for name in CASES:
            case(out, prefix, name, dtype)
        network(out, prefix, dtype)
    arrays = {k: v.detach().numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
