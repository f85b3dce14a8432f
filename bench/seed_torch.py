#!/usr/bin/env python3
"""seed_torch.py - the seed model (examples/seed.nn) in PyTorch, timed like
bench/seed_bench.c times the nnc build.

    python3 bench/seed_torch.py --threads T [--compile step|model]
                                [train] [predict] [fit]

Model: Linear(10,128) relu, Linear(128,64) relu, Linear(64,1) sigmoid,
BCELoss, torch.optim.Adam(lr=1e-3, eps=1e-7), float32. One train step is
zero_grad, forward, loss, backward, step and loss.item() (nnc's train_step
returns the loss as a float too). --compile step wraps the whole train step
in torch.compile (PyTorch 2); --compile model compiles only the model (its
forward and, through AOTAutograd, backward) and keeps the eager optimizer. Prints "key value" lines, times in microseconds,
each the median of R samples after a warm-up, a sample being a block of K
back-to-back calls lasting about 1 ms, divided by K (as seed_bench.c).
"""
import argparse
import os
import sys
import time

import torch

import peer

p = argparse.ArgumentParser()
p.add_argument("what", nargs="*", default=[])
p.add_argument("--threads", type=int, default=1)
p.add_argument("--compile", default=None, choices=["step", "model"])
p.add_argument("--batches", default="32,256")
p.add_argument("--samples", type=int, default=301)
p.add_argument("--fit-runs", type=int, default=11)
args = p.parse_args()
what = set(args.what) or {"train", "predict", "fit"}

torch.set_num_threads(args.threads)
torch.manual_seed(1234)
print("torch_version %s" % torch.__version__)


def make_model():
    return peer.torch_glorot(torch.nn.Sequential(
        torch.nn.Linear(10, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 1), torch.nn.Sigmoid()))


def make_step(model):
    return peer.torch_step(model, torch.nn.BCELoss(), args.compile)


if "train" in what:
    for b in [int(v) for v in args.batches.split(",") if v]:
        model = make_model()
        step = make_step(model)
        x = torch.rand(b, 10)
        y = torch.randint(0, 2, (b, 1)).float()
        t0 = time.perf_counter()
        step(x, y)          # first call: compiles under --compile
        print("first_step_b%d_us %.1f" % (b, (time.perf_counter() - t0) * 1e6))
        print("train_b%d_us %.4f" % (b, peer.per_call_us(lambda: step(x, y), args.samples)))
        sys.stdout.flush()

if "predict" in what:
    model = make_model().eval()
    for n in (1, 100):
        x = torch.rand(n, 10)

        def pred():
            with torch.inference_mode():
                return model(x)
        print("predict_b%d_us %.4f" % (n, peer.per_call_us(pred, args.samples)))
    sys.stdout.flush()

if "fit" in what:
    N, B, E = 1000, 32, 10
    g = torch.Generator().manual_seed(42)
    X = torch.rand(N, 10, generator=g)
    Y = torch.randint(0, 2, (N, 1), generator=g).float()
    times = []
    step = None
    for r in range(args.fit_runs + 1):      # run 0 is a warm-up
        model = make_model()
        step = make_step(model)
        t0 = time.perf_counter()
        for e in range(E):
            order = torch.randperm(N, generator=g)
            for b in range(N // B):
                idx = order[b * B:(b + 1) * B]
                loss = step(X[idx], Y[idx])
        times.append((time.perf_counter() - t0) * 1e6)
    times = sorted(times[1:])
    print("fit_us %.1f" % times[len(times) // 2])
    print("fit_final_loss %.4f" % loss)
