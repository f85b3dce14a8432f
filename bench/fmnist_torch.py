#!/usr/bin/env python3
"""fmnist_torch.py - the PyTorch reference for bench/fmnist_bench.c.

    python3 bench/fmnist_torch.py [--model mlp|cnn] [--threads T] [--epochs E]
                                  [--batches N] [--warmup W]
                                  [--warmup-epochs E] [--warmup-batches N]
                                  [--compile step|model] [--data DIR]

Same models as nnc's: mlp is bench/fmnist_mlp.nn (784 -> 256 relu -> 128
relu -> 10), cnn is bench/fmnist_cnn.nn (the network of
examples/fmnist_cnn.nn: conv 3x3 32 relu, maxpool 2, conv 3x3 64 relu,
maxpool 2, dense 128 relu, dense 10; NCHW here, NHWC in nnc, which only
permutes the inputs of the first dense layer). Glorot-uniform weights
and zero biases as nnc initializes them; same loss (cross-entropy on the
logits: torch.nn.CrossEntropyLoss on one-hot targets), same optimizer
(Adam lr 1e-3, eps 1e-7), same batch (64), same data handling: uint8
pixels kept in memory and scaled to [0, 1] per batch, one-hot labels, a
fixed-seed shuffle each epoch, last partial batch dropped, W warm-up steps
(default 10) on the first batches in file order, then one untimed epoch
(--warmup-epochs, --warmup-batches: the steady state; its time is printed
as first_epoch_s) before the timed epochs. --batches N trains only the
first N batches of each timed epoch and extrapolates the epoch time from
them. Every step ends with loss.item().
--compile step wraps the whole train step in torch.compile (PyTorch 2),
--compile model only the model (forward and backward; eager Adam); the
warm-up then includes the compilation. Prints the same lines as
fmnist_bench.c.
"""
import argparse
import os

import torch

import peer

p = argparse.ArgumentParser()
p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
p.add_argument("--threads", type=int, default=1)
peer.fit_args(p)
p.add_argument("--compile", default=None, choices=["step", "model"])
p.add_argument("--data", default=os.environ.get(
    "FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1234)
print("torch_version %s" % torch.__version__)


Xtr, Ytr, Xte, Yte = (torch.from_numpy(a.copy())
                      for a in peer.load_fmnist(args.data))
Ytr, Yte = Ytr.long(), Yte.long()
B = 64

nn = torch.nn
if args.model == "mlp":
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10))
else:
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 128), nn.ReLU(),
        nn.Linear(128, 10))
peer.torch_glorot(model)
step = peer.torch_step(model, torch.nn.CrossEntropyLoss(), args.compile)


def train(ix):
    x = Xtr[ix].float().mul_(1.0 / 255.0)
    y = torch.nn.functional.one_hot(Ytr[ix], 10).float()
    return step(x, y)


def evaluate():
    correct = 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, Xte.shape[0], 1000):
            z = model(Xte[i:i + 1000].float().mul_(1.0 / 255.0))
            correct += int((z.argmax(1) == Yte[i:i + 1000]).sum())
    model.train()
    return correct / Xte.shape[0]


g = torch.Generator().manual_seed(42)
peer.fit(args, Xtr.shape[0], B, lambda ix: train(torch.as_tensor(ix)),
         lambda losses: sum(losses) / len(losses), evaluate,
         lambda n: torch.randperm(n, generator=g))
