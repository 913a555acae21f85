"""PyTorch's ONNX files read by minidl: torch.onnx.export (opset 13) writes the MNIST CNN and
a small residual network with batch norms, concatenation and several activations; minidl
imports each and must compute PyTorch's outputs to float tolerance, with its parameters
named as PyTorch's state_dict names them.

Usage: import_torch.py ONNX_TOOL WORK_DIR
Exits 77 (skipped) without torch or onnx, 1 under CI=true.
"""
import os
import subprocess
import sys

from test_setup import skip_or_fail


try:
    import numpy as np
    import onnx  # noqa: F401  (torch.onnx.export checks the model with it)
    import torch
    from torch import nn
    import safetensors_np
    from reference_model import MnistCnn
except ImportError as e:
    skip_or_fail(f"{e.name} is missing: apt-get install python3-torch python3-onnx python3-numpy")


class Block(nn.Module):
    """conv-bn-relu twice with a skip connection, as in a ResNet's basic block."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block = Block(8)
        self.side = nn.Conv2d(8, 4, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(12 * 9, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = nn.functional.leaky_relu(self.bn(self.stem(x)), 0.1)
        x = self.block(x)
        x = torch.cat([torch.sigmoid(self.side(x)), nn.functional.silu(self.grouped(x))], 1)
        x = self.avg(self.pool(x))
        x = torch.flatten(x, 1)
        x = nn.functional.gelu(self.fc(x))
        return torch.log_softmax(torch.tanh(self.head(x)), 1)


def export(model, path, batch):
    torch.manual_seed(1)
    for m in model.modules():  # running statistics that are not the initial ones
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.rand(batch, 1, 28, 28) * 2 - 1
    # TrainingMode.PRESERVE keeps each batch norm a node with its state_dict names (in EVAL
    # mode the exporter folds it into the convolution's weights, under new names).
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    with torch.no_grad():
        y = model(x)
    return x.numpy(), y.numpy()


tool, work = sys.argv[1:3]
os.makedirs(work, exist_ok=True)
torch.manual_seed(0)
failures = []
for name, model in [("torch_mnist_cnn", MnistCnn()), ("torch_small_resnet", SmallResNet())]:
    path = os.path.join(work, name + ".onnx")
    x, want = export(model, path, 5)
    safetensors_np.save(os.path.join(work, name + "_in.safetensors"), {"x": x})
    out = os.path.join(work, name + "_out.safetensors")
    run = subprocess.run([tool, "run", path, os.path.join(work, name + "_in.safetensors"), out],
                         capture_output=True, text=True)
    if run.returncode != 0:
        failures.append(f"{name}: minidl could not import it: {run.stderr.strip()}")
        continue
    got = safetensors_np.load(out)[0]["y"]
    scale = max(1.0, float(np.abs(want).max()))
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    line = f"{name}: minidl vs PyTorch, largest difference {diff:.2e} (outputs up to {scale:.2f})"
    if diff > 1e-5 * scale:
        failures.append(line)
    names = subprocess.run([tool, "names", path], capture_output=True, text=True).stdout.split()
    expected = sorted(k for k in model.state_dict() if not k.endswith("num_batches_tracked"))
    if sorted(names) != expected:
        failures.append(f"{name}: parameter names {sorted(names)}, PyTorch's {expected}")
    else:
        line += f"; its {len(names)} parameters and buffers have PyTorch's names"
    print(line)

for f in failures:
    print("FAILED:", f)
print(f"{2 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
