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
forward and, through AOTAutograd, backward) and keeps the eager optimizer.
Steady state: train and predict are timed after N training steps
(--steps, default $NNC_BENCH_STEPS or 10000, at batch 32; at another batch
B, N x 32 / B steps: the same samples) on seed_bench.c's synthetic
data (peer.seed_data), the timed steps cycling through it too. Prints
"key value" lines, times in microseconds, each the median of R samples
after a warm-up, a sample being a block of K back-to-back calls lasting
about 1 ms, divided by K (as seed_bench.c).
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
p.add_argument("--steps", type=int, default=None)
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




def trained(b, timed):
    """A model after `steps` training steps at batch b; times the step
    after them when timed."""
    model = make_model()
    step = make_step(model)
    xs, ys = peer.seed_data(b)
    xs, ys = [torch.from_numpy(x) for x in xs], [torch.from_numpy(y) for y in ys]
    t0 = time.perf_counter()
    step(xs[0], ys[0])      # first call: compiles under --compile
    if timed:
        print("first_step_b%d_us %.1f" % (b, (time.perf_counter() - t0) * 1e6))
    nxt = peer.steady(step, xs, ys, peer.warmup_steps(b) if args.steps is None
                      else args.steps * 32 // b)
    if timed:
        print("train_b%d_us %.4f" % (b, peer.per_call_us(nxt, args.samples)))
    sys.stdout.flush()
    return model


model32 = None
if "train" in what:
    for b in [int(v) for v in args.batches.split(",") if v]:
        m = trained(b, True)
        if b == 32:
            model32 = m

if "predict" in what:
    model = (model32 or trained(32, False)).eval()
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
