"""PyTorch modules the converter test converts: nested names, BatchNorm buffers, float64."""
import torch
from torch import nn


class Block(nn.Module):
    """A residual block as in ResNet: conv-bn-relu-conv-bn plus a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResidualNet(nn.Module):
    """Names such as layer1.1.downsample.1.running_var and layer1.0.bn1.num_batches_tracked."""

    def __init__(self, width=4, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(Block(width, width, 1), Block(width, 2 * width, 2))
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


class ResidualNetDouble(ResidualNet):
    """The same network in float64."""

    def __init__(self):
        super().__init__()
        self.double()


class ResidualNetRenamed(ResidualNet):
    """A network that does not match ResidualNet: fc is called head, and conv1 is wider."""

    def __init__(self):
        super().__init__()
        del self.fc
        self.head = nn.Linear(8, 5)
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2, bias=False)

    def forward(self, x):
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return self.head(x.mean((2, 3)))


def trained(net, steps=3, seed=0):
    """net after `steps` forward passes in training mode, so that its running statistics and
    num_batches_tracked differ from their initial values; returned in evaluation mode."""
    g = torch.Generator().manual_seed(seed)
    dtype = next(net.parameters()).dtype
    net.train()
    with torch.no_grad():
        for _ in range(steps):
            net(torch.randn(4, 1, 9, 9, generator=g, dtype=dtype))
    return net.eval()
