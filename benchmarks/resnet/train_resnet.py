#!/usr/bin/python3
"""The PyTorch twin of `resnet train` (examples/resnet): the same network, the
same module names (so state_dicts match minidl's checkpoints one to one), the
same recipe, for accuracy side by side and for timing an epoch.

Usage: train_resnet.py [--data DIR] [--depth 20] [--width 16] [--epochs 25]
           [--batch 128] [--optimizer sgd|adamw] [--lr 0.1] [--schedule onecycle|cosine]
           [--metrics FILE] [--time-epoch] [--init-from CKPT.safetensors] ...
(data: --data, $FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist)

What is the same as minidl: the architecture and names; He initialisation of
the convolutions (kaiming_normal_, fan_out, ReLU), batch norms at 1/0 (each
block's bn2 scale at 0 with --zero-init-residual), the
classifier as nn.Linear's default; pixels normalised by Fashion-MNIST's mean
and deviation; random crops of the image padded with zeros, horizontal flips
and (--erase) random erasing; SGD with Nesterov momentum or AdamW, weight
decay off for biases and batch-norm parameters (every tensor of rank 1);
OneCycleLR (momentum not cycled, as minidl's) or a linear warm-up then cosine
annealing, stepped per batch; label smoothing; the last --val training images
for validation and early stopping; a last batch of a single image is left out
(batch norm needs two). What differs: the random numbers (shuffle, crops,
flips, erasing, init) are torch's, not minidl's counter-based ones;
--init-from loads minidl's initial weights (a checkpoint written by `resnet
train --stop-after`, or any minidl checkpoint of this network) to start from
the same point.

--time-epoch prints "epoch N seconds S" for every epoch (training only, the
evaluations excluded) and the median at the end; --metrics writes the test
accuracy of the model chosen on the validation split, the history and the
seconds per epoch as JSON. Like minidl, the final report adds the accuracy of
the logits averaged over each test image and its mirror image when the
training images were flipped.
"""
import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

# Fashion-MNIST's pixel mean and standard deviation (of x / 255 over the
# training set): the normalisation `resnet train` uses too.
MEAN, STD = 0.2860, 0.3530


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + identity)


class ResNet(nn.Module):
    """include/minidl/models/resnet.hpp's make_resnet, module for module."""

    def __init__(self, depth=20, width=16, in_channels=1, num_classes=10,
                 zero_init_residual=False):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth {depth} is not 6n + 2 with n >= 1")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        channels = width
        for stage in range(3):
            out = width << stage
            layer = []
            for b in range(blocks):
                layer.append(BasicBlock(channels, out, 2 if stage > 0 and b == 0 else 1))
                channels = out
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if zero_init_residual and isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def load_split(folder, split):
    from reference_model import load_mnist_split
    return load_mnist_split(folder, split)


def normalise(images):
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28]."""
    return ((torch.from_numpy(images.astype(np.float32)) / 255.0 - MEAN) / STD).unsqueeze(1)


def crop_flip(images, padding, flip, generator):
    """RandomCrop(28, padding) with zeros, then RandomHorizontalFlip, image by image,
    on uint8 [N, 28, 28]."""
    n, rows, cols = images.shape
    padded = np.zeros((n, rows + 2 * padding, cols + 2 * padding), dtype=np.uint8)
    padded[:, padding:padding + rows, padding:padding + cols] = images
    tops = torch.randint(0, 2 * padding + 1, (n,), generator=generator).numpy()
    lefts = torch.randint(0, 2 * padding + 1, (n,), generator=generator).numpy()
    mirrors = torch.randint(0, 2, (n,), generator=generator).numpy() if flip else np.zeros(n)
    out = np.empty_like(images)
    for i in range(n):
        crop = padded[i, tops[i]:tops[i] + rows, lefts[i]:lefts[i] + cols]
        out[i] = crop[:, ::-1] if mirrors[i] else crop
    return out


def random_erasing(x, probability, generator, area=(0.02, 0.33), min_aspect=0.3):
    """torchvision's RandomErasing with value 0 (the normalised mean), image by
    image, in place on the normalised batch x [N, 1, H, W]: with `probability`,
    up to ten draws of an area share and a log-uniform aspect ratio until the
    rectangle fits, placed uniformly."""
    n, _, rows, cols = x.shape
    log_aspect = (math.log(min_aspect), -math.log(min_aspect))
    for i in range(n):
        if torch.rand(1, generator=generator).item() >= probability:
            continue
        for _ in range(10):
            target = rows * cols * torch.empty(1).uniform_(*area, generator=generator).item()
            aspect = math.exp(torch.empty(1).uniform_(*log_aspect, generator=generator).item())
            h = int(round(math.sqrt(target * aspect)))
            w = int(round(math.sqrt(target / aspect)))
            if 1 <= h < rows and 1 <= w < cols:
                top = torch.randint(0, rows - h + 1, (1,), generator=generator).item()
                left = torch.randint(0, cols - w + 1, (1,), generator=generator).item()
                x[i, :, top:top + h, left:left + w] = 0
                break
    return x


def parameter_groups(model, weight_decay):
    """Weight decay on weights, none on biases and batch-norm parameters (rank 1)."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(args, model):
    groups = parameter_groups(model, args.weight_decay)
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=args.lr)


def make_scheduler(args, optimizer, total_steps):
    if args.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=total_steps, pct_start=args.pct_start,
            anneal_strategy="cos", cycle_momentum=False, div_factor=25.0, final_div_factor=1e4)
    warmup = max(1, args.warmup_steps)

    # minidl's LinearWarmup(0.1, warmup) over CosineAnnealingLR(total_steps).
    def factor(t):
        ramp = 0.1 + 0.9 * min(t, warmup) / warmup
        return ramp * (1 + math.cos(math.pi * t / total_steps)) / 2
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def evaluate(model, images, labels, batch, mirror_average=False):
    """Loss and accuracy; with mirror_average, of the logits averaged over each
    image and its left-right mirror image, as `resnet train` reports them."""
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for b in range(0, len(labels), batch):
            x = normalise(images[b:b + batch])
            y = torch.from_numpy(labels[b:b + batch])
            logits = model(x)
            if mirror_average:
                logits = (logits + model(torch.flip(x, dims=[3]))) / 2
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    n = max(len(labels), 1)
    return loss_sum / n, correct / n


def load_minidl_weights(model, path):
    import state_dict_match as match
    tensors, _, _ = match.load_minidl_checkpoint(path)
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        sys.exit(f"{path}: not a checkpoint of this ResNet (--depth/--width): "
                 f"{len(missing)} tensors missing (first: {missing[:1]}), "
                 f"{len(unexpected)} unexpected (first: {unexpected[:1]}), "
                 f"{len(reshaped)} of another shape (first: {reshaped[:1]})")
    model.load_state_dict(state, strict=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"
    p.add_argument("--data", default=default_data)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--zero-init-residual", action="store_true",
                   help="start each block's last batch norm at scale 0")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default="onecycle")
    p.add_argument("--pct-start", type=float, default=0.3)
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="cosine: steps of linear warm-up (0: one epoch)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--crop-padding", type=int, default=1)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--erase", type=float, default=0.0,
                   help="probability of erasing a random rectangle of a training image")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--val", type=int, default=5000)
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--init-from", help="a minidl checkpoint of this network to start from")
    p.add_argument("--metrics", help="write metrics.json here")
    p.add_argument("--time-epoch", action="store_true", help="print the seconds of every epoch")
    args = p.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, train_labels = load_split(args.data, "train")
    test_images, test_labels = load_split(args.data, "t10k")
    n = len(train_labels)
    if not 0 <= args.val < n:
        sys.exit(f"--val {args.val} leaves no training images (the set has {n})")
    train_idx = np.arange(n - args.val)
    val_idx = np.arange(n - args.val, n)
    if 0 < args.limit_train < len(train_idx):
        train_idx = train_idx[:args.limit_train]

    model = ResNet(args.depth, args.width, zero_init_residual=args.zero_init_residual)
    if args.init_from:
        load_minidl_weights(model, args.init_from)
    optimizer = make_optimizer(args, model)
    steps_per_epoch = (len(train_idx) + args.batch - 1) // args.batch
    if len(train_idx) % args.batch == 1:
        steps_per_epoch -= 1  # a last batch of one image is left out, as minidl does
    if args.schedule == "cosine" and args.warmup_steps == 0:
        args.warmup_steps = steps_per_epoch
    scheduler = make_scheduler(args, optimizer, args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    generator = torch.Generator().manual_seed(args.seed)

    history, seconds, best = [], [], (-1.0, 0, None)
    bad_epochs = 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch:(step + 1) * args.batch]
            images = train_images[idx]
            if not args.no_augment:
                images = crop_flip(images, args.crop_padding, not args.no_flip, generator)
            x = normalise(images)
            if not args.no_augment and args.erase > 0:
                x = random_erasing(x, args.erase, generator)
            y = torch.from_numpy(train_labels[idx])
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        seconds.append(time.perf_counter() - start)
        if args.time_epoch:
            print(f"epoch {epoch} seconds {seconds[-1]:.3f}", flush=True)
        val_loss, val_acc = evaluate(model, train_images[val_idx], train_labels[val_idx], args.batch)
        test_loss, test_acc = evaluate(model, test_images, test_labels, args.batch)
        monitored = val_acc if args.val > 0 else test_acc
        history.append({"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                        "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
                        "test_acc": test_acc, "seconds": seconds[-1]})
        improved = monitored > best[0]
        if improved:
            best = (monitored, epoch, {k: v.clone() for k, v in model.state_dict().items()})
            bad_epochs = 0
        else:
            bad_epochs += 1
        print(f"epoch {epoch:2d}/{args.epochs}  train loss {loss_sum / seen:.4f} acc "
              f"{correct / seen:.4f} | val acc {val_acc:.4f} | test loss {test_loss:.4f} acc "
              f"{test_acc:.4f} | {seconds[-1]:.1f}s{'  * best' if improved else ''}", flush=True)
        if args.patience > 0 and bad_epochs >= args.patience:
            print(f"early stopping: no improvement for {args.patience} epochs")
            break

    model.load_state_dict(best[2])
    test_loss, test_acc = evaluate(model, test_images, test_labels, args.batch)
    print(f"best checkpoint (epoch {best[1]}): test accuracy {test_acc:.4f}, test loss {test_loss:.4f}")
    mirrored = None
    if not args.no_augment and not args.no_flip:
        mirrored = evaluate(model, test_images, test_labels, args.batch, mirror_average=True)
        print(f"averaged with its mirror image: test accuracy {mirrored[1]:.4f}, "
              f"test loss {mirrored[0]:.4f}")
    if args.time_epoch:
        print(f"median seconds per epoch {float(np.median(seconds)):.3f} "
              f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")
    if args.metrics:
        metrics = {"test_accuracy": test_acc, "test_loss": test_loss, "best_epoch": best[1],
                   "test_accuracy_mirror_averaged": mirrored[1] if mirrored else None,
                   "test_loss_mirror_averaged": mirrored[0] if mirrored else None,
                   "epochs_run": len(history), "seconds_per_epoch": seconds, "history": history,
                   "hyperparameters": {k: v for k, v in vars(args).items()
                                       if k not in ("metrics", "data", "init_from")},
                   "torch": torch.__version__, "threads": torch.get_num_threads()}
        tmp = args.metrics + ".tmp"
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=2)
        os.replace(tmp, args.metrics)


if __name__ == "__main__":
    main()
