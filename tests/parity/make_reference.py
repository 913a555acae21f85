"""Writes PyTorch's answers for minidl's parity test.

For the MNIST CNN (dropout disabled) with seeded random weights and a random
batch of 64: the weights, inputs, labels, logits, loss, every parameter
gradient, and the weights after 3 Adam steps and after 3 SGD-momentum steps
on that batch; for a residual network (a block of two 3x3 convolutions with a
skip connection, named layer1.0.*, then flatten and a linear layer): the
weights, input, labels, logits, loss, every gradient and the input gradient;
per layer: Conv2d (stride 2, no padding), MaxPool2d (odd
sizes), Linear and cross-entropy, each with an upstream gradient and the
resulting input and parameter gradients. Everything once in float32 (prefix
"f32.") and once in float64 ("f64.").

Usage: make_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_parity skips too); under CI=true that is a failure (exit 1).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_setup  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(f"usage: {sys.argv[0]} OUT.safetensors")
torch = reference_setup.start(sys.argv[1])
import numpy as np  # noqa: E402

import safetensors_np  # noqa: E402
from reference_model import MnistCnn  # noqa: E402


def grads_of(module):
    return {name: p.grad.detach().clone() for name, p in module.named_parameters()}


def main(out_path):
    torch.manual_seed(1234)
    out = {}
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        torch.manual_seed(1234)
        model = MnistCnn(dropout=0.0).to(dtype)
        x = torch.randn(64, 1, 28, 28, dtype=dtype)
        labels = torch.randint(0, 10, (64,))
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for k, v in initial.items():
            out[prefix + k] = v
        out[prefix + "x"] = x
        out[prefix + "labels"] = labels
        logits = model(x)
        loss = nn_loss(logits, labels)
        loss.backward()
        out[prefix + "logits"] = logits.detach()
        out[prefix + "loss"] = loss.detach().reshape(1)
        for k, g in grads_of(model).items():
            out[prefix + "grad." + k] = g

        for opt_name, make_opt in (("adam", lambda p: torch.optim.Adam(p, lr=1e-3)),
                                   ("sgd", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))):
            model.load_state_dict(initial)
            opt = make_opt(model.parameters())
            for _ in range(3):
                opt.zero_grad()
                nn_loss(model(x), labels).backward()
                opt.step()
            for k, v in model.state_dict().items():
                out[f"{prefix}{opt_name}3.{k}"] = v.detach().clone()

        residual_case(out, prefix + "res.", dtype)

        # Single layers with shapes the model does not exercise.
        torch.manual_seed(99)
        conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=0).to(dtype)
        layer_case(out, prefix + "conv_s2.", conv, torch.randn(2, 3, 9, 8, dtype=dtype))
        pool = torch.nn.MaxPool2d(2)
        layer_case(out, prefix + "pool_odd.", pool, torch.randn(2, 3, 7, 9, dtype=dtype))
        lin = torch.nn.Linear(37, 11).to(dtype)
        layer_case(out, prefix + "linear.", lin, torch.randn(5, 37, dtype=dtype))
        z = (3 * torch.randn(7, 10, dtype=dtype)).requires_grad_()
        y = torch.randint(0, 10, (7,))
        ce = nn_loss(z, y)
        ce.backward()
        out[prefix + "xent.logits"] = z.detach()
        out[prefix + "xent.labels"] = y
        out[prefix + "xent.loss"] = ce.detach().reshape(1)
        out[prefix + "xent.dlogits"] = z.grad

    arrays = {k: v.numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


def nn_loss(logits, labels):
    return torch.nn.functional.cross_entropy(logits, labels)


class Block(torch.nn.Module):
    """Two 3x3 convolutions and a skip connection, as in a ResNet's basic block (no batch norm)."""

    def __init__(self, channels, hidden):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x):
        out = torch.relu(self.conv1(x))
        return torch.relu(self.conv2(out) + x)


class ResidualNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = torch.nn.Sequential(Block(3, 8))
        self.fc = torch.nn.Linear(3 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.layer1(x), 1))


def residual_case(out, prefix, dtype):
    torch.manual_seed(77)
    model = ResidualNet().to(dtype)
    x = torch.randn(16, 3, 8, 8, dtype=dtype).requires_grad_()
    labels = torch.randint(0, 10, (16,))
    for k, v in model.state_dict().items():
        out[prefix + k] = v.detach().clone()
    out[prefix + "x"] = x.detach().clone()
    out[prefix + "labels"] = labels
    logits = model(x)
    loss = nn_loss(logits, labels)
    loss.backward()
    out[prefix + "logits"] = logits.detach()
    out[prefix + "loss"] = loss.detach().reshape(1)
    out[prefix + "dx"] = x.grad
    for k, g in grads_of(model).items():
        out[prefix + "grad." + k] = g


def layer_case(out, prefix, layer, x):
    x = x.clone().requires_grad_()
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    out[prefix + "x"] = x.detach()
    out[prefix + "y"] = y.detach()
    out[prefix + "dy"] = dy
    out[prefix + "dx"] = x.grad
    for name, p in layer.named_parameters():
        out[prefix + name] = p.detach()
        out[prefix + "grad." + name] = p.grad


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
