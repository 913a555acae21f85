"""Writes PyTorch's answers for minidl's training parity test (test_parity_training).

Losses: MSELoss, BCEWithLogitsLoss (with logits of +-60), NLLLoss and
CrossEntropyLoss (label_smoothing 0.1), reductions mean and sum: inputs,
targets, loss and the gradient with respect to the input.
Optimizers: two parameters ("w" [6, 5], "b" [5]) and four steps of given
gradients through Adam, Adam with L2 decay, AdamW, AdamW with two parameter
groups, RMSprop (plain and with every option), and SGD with Nesterov: the
initial values, the gradients and the values after the last step; and the
same four steps through clipping, AdamW with groups and a one-cycle schedule.
Clipping: clip_grad_norm_ (norm 2 clipping, norm 2 not clipping, norm inf)
and clip_grad_value_: the norm returned and the gradients after.
All of these once in float32 (prefix "f32.") and once in float64 ("f64.").
One-cycle momentum: the same four steps through SGD with momentum and
through Adam under OneCycleLR with cycle_momentum on ("opt.sgd_onecycle.",
"opt.adam_onecycle.").
Freezing ("freeze."): a Linear-ReLU-Linear-ReLU-Linear network, its initial
weights, a batch and the weights after six steps of cross-entropy training
in which some parameters are frozen (requires_grad_(False)) throughout or
for the first three steps (Adam, SGD with dampening, AdamW, RMSprop).
Schedules ("sched."): the learning rate of each group after each
scheduler.step() for StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
CosineAnnealingWarmRestarts, OneCycleLR and a linear warm-up chained with
cosine annealing; and OneCycleLR's learning rates and momenta with
cycle_momentum on, for SGD's momentum and Adam's beta1
("sched.onecycle_momentum.").

Usage: make_training_reference.py OUT.safetensors
Exits 77 without writing when torch is not importable, which CTest reports as
skipped (and test_parity_training skips too); under CI=true that is a failure.
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

STEPS = 4
F = torch.nn.functional


def loss_case(out, prefix, fn, x, target, **kwargs):
    out[prefix + "x"] = x
    out[prefix + "target"] = target
    for reduction in ("mean", "sum"):
        xg = x.clone().requires_grad_()
        loss = fn(xg, target, reduction=reduction, **kwargs)
        loss.backward()
        out[f"{prefix}{reduction}.loss"] = loss.detach().reshape(1)
        out[f"{prefix}{reduction}.dx"] = xg.grad


def losses(out, prefix, dtype):
    torch.manual_seed(11)
    loss_case(out, prefix + "mse.", F.mse_loss, torch.randn(3, 7, dtype=dtype),
              torch.randn(3, 7, dtype=dtype))
    x = 4 * torch.randn(4, 6, dtype=dtype)
    x[0, 0], x[0, 1], x[1, 0], x[1, 1] = 60, -60, 60, -60  # the naive formula overflows here
    y = torch.rand(4, 6, dtype=dtype)
    y[0, 0], y[0, 1], y[1, 0], y[1, 1] = 0, 1, 1, 0
    loss_case(out, prefix + "bce.", F.binary_cross_entropy_with_logits, x, y)
    logp = F.log_softmax(2 * torch.randn(7, 10, dtype=dtype), dim=1)
    loss_case(out, prefix + "nll.", F.nll_loss, logp, torch.randint(0, 10, (7,)))
    z, labels = 3 * torch.randn(7, 10, dtype=dtype), torch.randint(0, 10, (7,))
    loss_case(out, prefix + "xent_ls.", F.cross_entropy, z, labels, label_smoothing=0.1)
    loss_case(out, prefix + "xent.", F.cross_entropy, z, labels)


def optimizer_cases():
    def groups(w, b):
        return [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0, "lr": 5e-3}]

    return {
        "adam": lambda w, b: torch.optim.Adam([w, b], lr=1e-2),
        "adam_l2": lambda w, b: torch.optim.Adam([w, b], lr=1e-2, weight_decay=0.1),
        "adamw": lambda w, b: torch.optim.AdamW([w, b], lr=1e-2, weight_decay=0.1),
        "adamw_groups": lambda w, b: torch.optim.AdamW(groups(w, b), lr=1e-2),
        "rmsprop": lambda w, b: torch.optim.RMSprop([w, b], lr=1e-2),
        "rmsprop_all": lambda w, b: torch.optim.RMSprop([w, b], lr=1e-2, alpha=0.9, eps=1e-6,
                                                        weight_decay=0.05, momentum=0.8,
                                                        centered=True),
        "sgd_nesterov": lambda w, b: torch.optim.SGD([w, b], lr=0.05, momentum=0.9, nesterov=True,
                                                     weight_decay=0.01),
    }


def optimizers(out, prefix, dtype):
    torch.manual_seed(12)
    # Small initial values, so that the parameters' rounding stays small beside
    # what four steps move them (about 0.04): the test compares the moves.
    init = {"w": 0.01 * torch.randn(6, 5, dtype=dtype), "b": 0.01 * torch.randn(5, dtype=dtype)}
    grads = [{k: torch.randn_like(v) for k, v in init.items()} for _ in range(STEPS)]
    for k, v in init.items():
        out[f"{prefix}opt.init.{k}"] = v
        for t, g in enumerate(grads):
            out[f"{prefix}opt.grad{t}.{k}"] = g[k]
    for case, make in optimizer_cases().items():
        w = init["w"].clone().requires_grad_()
        b = init["b"].clone().requires_grad_()
        opt = make(w, b)
        for g in grads:
            w.grad, b.grad = g["w"].clone(), g["b"].clone()
            opt.step()
        out[f"{prefix}opt.{case}.w"] = w.detach()
        out[f"{prefix}opt.{case}.b"] = b.detach()

    # The pieces together: clipping, AdamW with two groups and a one-cycle
    # schedule (each group's peak is its own rate).
    w = init["w"].clone().requires_grad_()
    b = init["b"].clone().requires_grad_()
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1},
                             {"params": [b], "weight_decay": 0.0, "lr": 5e-3}], lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[1e-2, 5e-3], total_steps=STEPS,
                                                pct_start=0.5, cycle_momentum=False)
    for g in grads:
        w.grad, b.grad = g["w"].clone(), g["b"].clone()
        torch.nn.utils.clip_grad_norm_([w, b], 2.0)
        opt.step()
        sched.step()
    out[f"{prefix}opt.recipe.w"] = w.detach()
    out[f"{prefix}opt.recipe.b"] = b.detach()

    # OneCycleLR with cycle_momentum on: SGD's momentum and Adam's beta1 follow it.
    S = torch.optim.lr_scheduler
    onecycle_cases = {
        "sgd_onecycle": (lambda w, b: torch.optim.SGD([w, b], lr=0.05, momentum=0.9),
                         lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=STEPS, pct_start=0.5,
                                                base_momentum=0.8, max_momentum=0.9)),
        "adam_onecycle": (lambda w, b: torch.optim.Adam([w, b], lr=1e-2),
                          lambda o: S.OneCycleLR(o, max_lr=1e-2, total_steps=STEPS,
                                                 pct_start=0.5)),
    }
    for case, (make, make_sched) in onecycle_cases.items():
        w = init["w"].clone().requires_grad_()
        b = init["b"].clone().requires_grad_()
        opt = make(w, b)
        sched = make_sched(opt)
        for g in grads:
            w.grad, b.grad = g["w"].clone(), g["b"].clone()
            opt.step()
            sched.step()
        out[f"{prefix}opt.{case}.w"] = w.detach()
        out[f"{prefix}opt.{case}.b"] = b.detach()


FREEZE_STEPS = 6


def freeze_cases():
    """Per case: the optimizer, the parameters frozen throughout and those
    frozen for the first three steps only (by state_dict name). The rates are
    large enough that six steps move the weights (about 0.4 in magnitude) far
    beyond their rounding: the test compares the moves."""
    return {
        "adam": (lambda ps: torch.optim.Adam(ps, lr=5e-2, weight_decay=0.1), ["4.bias"], ["2"]),
        "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.5,
                                           weight_decay=0.01), [], ["0"]),
        "adamw": (lambda ps: torch.optim.AdamW(ps, lr=5e-2, weight_decay=0.1), ["2"], []),
        "rmsprop": (lambda ps: torch.optim.RMSprop(ps, lr=1e-2, momentum=0.5, weight_decay=0.01),
                    ["0.weight"], ["2"]),
    }


def freezing(out, prefix, dtype):
    torch.manual_seed(14)
    make = lambda: torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(),  # noqa: E731
                                       torch.nn.Linear(7, 6), torch.nn.ReLU(),
                                       torch.nn.Linear(6, 3)).to(dtype)
    init = make().state_dict()
    x = torch.randn(4, 5, dtype=dtype)
    labels = torch.randint(0, 3, (4,))
    out[f"{prefix}freeze.x"] = x
    out[f"{prefix}freeze.labels"] = labels
    for name, v in init.items():
        out[f"{prefix}freeze.init.{name}"] = v
    for case, (make_opt, always, first_three) in freeze_cases().items():
        net = make()
        net.load_state_dict(init)
        params = dict(net.named_parameters())
        opt = make_opt(list(params.values()))

        def set_frozen(prefixes, frozen):
            for name, p in params.items():
                if any(name == q or name.startswith(q + ".") for q in prefixes):
                    p.requires_grad_(not frozen)

        set_frozen(always + first_three, True)
        for step in range(FREEZE_STEPS):
            if step == 3:
                set_frozen(first_three, False)
            opt.zero_grad(set_to_none=True)  # a frozen parameter's grad stays None
            F.cross_entropy(net(x), labels).backward()
            opt.step()
        for name, p in params.items():
            out[f"{prefix}freeze.{case}.{name}"] = p.detach()


def clipping(out, prefix, dtype):
    torch.manual_seed(13)
    grads = {"w": 0.7 * torch.randn(6, 5, dtype=dtype), "b": 0.7 * torch.randn(5, dtype=dtype)}
    for k, g in grads.items():
        out[f"{prefix}clip.grad.{k}"] = g
    cases = {"norm2": (1.0, 2.0), "norm2_loose": (100.0, 2.0), "norm_inf": (0.5, float("inf"))}
    for case, (max_norm, norm_type) in cases.items():
        params = {k: torch.zeros_like(g, requires_grad=True) for k, g in grads.items()}
        for k, p in params.items():
            p.grad = grads[k].clone()
        total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, norm_type)
        out[f"{prefix}clip.{case}.norm"] = total.detach().reshape(1)
        for k, p in params.items():
            out[f"{prefix}clip.{case}.{k}"] = p.grad
    params = {k: torch.zeros_like(g, requires_grad=True) for k, g in grads.items()}
    for k, p in params.items():
        p.grad = grads[k].clone()
    torch.nn.utils.clip_grad_value_(list(params.values()), 0.5)
    for k, p in params.items():
        out[f"{prefix}clip.value.{k}"] = p.grad


def schedules(out):
    S = torch.optim.lr_scheduler
    cases = {
        "step": (20, lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
        "multistep": (12, lambda o: S.MultiStepLR(o, milestones=[2, 5, 6], gamma=0.3)),
        "exponential": (12, lambda o: S.ExponentialLR(o, gamma=0.9)),
        "cosine": (16, lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.001)),
        "warm_restarts": (24, lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                      eta_min=0.01)),
        "onecycle": (20, lambda o: S.OneCycleLR(o, max_lr=[0.1, 0.02], total_steps=20,
                                                cycle_momentum=False)),
        "warmup_cosine": (16, lambda o: S.ChainedScheduler([
            S.LinearLR(o, start_factor=0.1, total_iters=4), S.CosineAnnealingLR(o, T_max=12)])),
    }
    for case, (steps, make) in cases.items():
        p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.02}], lr=0.1)
        sched = make(opt)
        lrs = [[g["lr"] for g in opt.param_groups]]
        for _ in range(steps - 1):
            opt.step()
            sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
        out[f"sched.{case}"] = torch.tensor(lrs, dtype=torch.float64)  # [steps, groups]

    # One-cycle with cycle_momentum on: each step's learning rates and momenta
    # ([steps, 2 groups, lr and momentum]) for SGD's momentum and Adam's beta1.
    for case, make_opt in {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.1),
    }.items():
        p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        opt = make_opt([{"params": [p]}, {"params": [q], "lr": 0.02}])
        sched = S.OneCycleLR(opt, max_lr=[0.1, 0.02], total_steps=20, pct_start=0.25,
                             base_momentum=0.8, max_momentum=0.92)

        def momenta():
            return [[g["lr"], g["betas"][0] if "betas" in g else g["momentum"]]
                    for g in opt.param_groups]

        rows = [momenta()]
        for _ in range(19):
            opt.step()
            sched.step()
            rows.append(momenta())
        out[f"sched.onecycle_momentum.{case}"] = torch.tensor(rows, dtype=torch.float64)


def main(out_path):
    out = {}
    for prefix, dtype in (("f32.", torch.float32), ("f64.", torch.float64)):
        losses(out, prefix, dtype)
        optimizers(out, prefix, dtype)
        clipping(out, prefix, dtype)
        freezing(out, prefix, dtype)
    schedules(out)
    arrays = {k: v.detach().numpy() for k, v in out.items()}
    safetensors_np.save(out_path, arrays, {"torch_version": torch.__version__})
    print(f"wrote {len(arrays)} tensors to {out_path} (torch {torch.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
