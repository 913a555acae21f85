"""Writes PyTorch's answers for minidl's ResNet tests (tests/test_resnet.cpp), from the twin
benchmarks/resnet/train_resnet.py.

- "arch.d<depth>w<width>.<name>": the state_dict of the twin's ResNet for depth/width 8/4,
  14/8 and 20/16 (names, shapes and dtypes; the values are the twin's own initialisation);
- for a ResNet-8 of width 4 on a batch of 3 images of 10x10 (stages of 10, 5 and 3 pixels),
  with random batch-norm parameters and running statistics: the weights and buffers, the
  input and labels, in training mode the logits, the loss with label smoothing 0.1, every
  parameter gradient, the input gradient and the running statistics after the step; the
  logits in evaluation mode after it; and the weights after 3 steps of SGD with Nesterov
  momentum (weight decay on weights only) under OneCycleLR. Once in float32 ("f32.") and once
  in float64 ("f64.").

Usage: make_resnet_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable (CTest: skipped); 1 under CI=true.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
import reference_setup  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(f"usage: {sys.argv[0]} OUT.safetensors")
torch = reference_setup.start(sys.argv[1])
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks", "resnet"))
import safetensors_np  # noqa: E402
import train_resnet  # noqa: E402


def randomise_batchnorms(model):
    """Batch norms far from their 1/0 start, so that a wrong formula cannot hide."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(3)


def main(out_path):
    out = {}
    for depth, width in ((8, 4), (14, 8), (20, 16)):
        torch.manual_seed(depth)
        for k, v in train_resnet.ResNet(depth, width).state_dict().items():
            out[f"arch.d{depth}w{width}.{k}"] = v

    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        torch.manual_seed(1717)
        model = train_resnet.ResNet(8, 4).to(dtype)
        randomise_batchnorms(model)
        for k, v in model.state_dict().items():
            out[prefix + k] = v.detach().clone()
        x = torch.randn(3, 1, 10, 10, dtype=dtype, requires_grad=True)
        labels = torch.randint(0, 10, (3,))
        out[prefix + "x"] = x.detach().clone()
        out[prefix + "labels"] = labels

        model.train()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
        loss.backward()
        out[prefix + "train.logits"] = logits.detach()
        out[prefix + "train.loss"] = loss.detach().reshape(1)
        out[prefix + "train.dx"] = x.grad.detach()
        for k, p in model.named_parameters():
            out[prefix + "train.grad." + k] = p.grad.detach().clone()
        for k, b in model.named_buffers():
            out[prefix + "train.after." + k] = b.detach().clone()
        model.eval()
        with torch.no_grad():
            out[prefix + "eval.logits"] = model(x.detach())

        # Three steps from the initial weights and buffers, on the same batch.
        model.load_state_dict({k[len(prefix):]: v for k, v in out.items()
                               if k.startswith(prefix) and k[len(prefix):] in model.state_dict()})
        model.train()
        groups = train_resnet.parameter_groups(model, 5e-4)
        sgd = torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True)
        schedule = torch.optim.lr_scheduler.OneCycleLR(sgd, max_lr=0.1, total_steps=10,
                                                       pct_start=0.3, cycle_momentum=False)
        for _ in range(3):
            sgd.zero_grad()
            step_loss = torch.nn.functional.cross_entropy(model(x.detach()), labels,
                                                          label_smoothing=0.1)
            step_loss.backward()
            sgd.step()
            schedule.step()
        for k, v in model.state_dict().items():
            out[prefix + "sgd3." + k] = v.detach().clone()

    arrays = {k: v.numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


main(sys.argv[1])
