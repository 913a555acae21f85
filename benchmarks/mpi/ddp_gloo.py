"""PyTorch DistributedDataParallel on the gloo backend: the MNIST CNN's training step time with
the global batch split over `--world` processes, for comparison with minidl's data-parallel
training (benchmarks/mpi/measure.sh, docs/distributed.md). Random data, Adam, batch 64.

    python3 ddp_gloo.py --world 2 --threads 1 --steps 50
"""
import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def run(rank, args):
    torch.set_num_threads(args.threads)
    model = MnistCnn()
    if args.world > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("gloo", rank=rank, world_size=args.world)
        model = nn.parallel.DistributedDataParallel(model)
    share = args.batch // args.world
    x = torch.rand(share, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (share,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(args.warmup + args.steps):
        if args.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    if rank == 0:
        print(f"pytorch world {args.world} threads {args.threads} batch {args.batch} "
              f"step_ms {statistics.median(times):.3f}")
    if args.world > 1:
        dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    if args.world == 1:
        run(0, args)
    else:
        mp.spawn(run, args=(args,), nprocs=args.world)


if __name__ == "__main__":
    main()
