#!/usr/bin/python3
"""diff.py - differential test of nnc's emitted training code against PyTorch.

For each model below (a .nn file beside this script plus a PyTorch module
written by hand from the same description, never derived from nnc's graph):

  1. make deterministic random batches with numpy (x ~ N(0, 1); targets
     that suit the loss, from a random linear teacher: 0/1 for binary
     cross-entropy, one-hot for softmax cross-entropy, class indices for
     sparse categorical cross-entropy, reals for MSE) and
     write them to DATA.bin;
  2. compile the model with `nnc --prefix m` and build harness.c with it;
  3. run the harness: it saves the initial weights (INIT.safetensors),
     trains STEPS batches printing each loss, saves FINAL.safetensors and
     the predictions for the first batch (FINAL.safetensors.pred);
  4. load INIT into the PyTorch module (safetensors parsed here with
     numpy/struct/json, no safetensors package), train it on the same
     batches with the matching torch.optim optimizer;
  5. compare per-step losses, final weights, optimizer state and
     predictions element by element, as numpy.allclose does:
     |nnc - torch| <= ATOL + RTOL * |torch|, so that small tensors (Adam's
     second moments are about 1e-5) are checked as closely as large
     ones. Also checked: parameter names and shapes,
     the initialization (Glorot uniform bounds, zero biases, embeddings
     uniform in (-0.05, 0.05)) and that a
     second run with the same seed reproduces the first bit for bit; the
     harness itself checks that predicting one row at a time and
     predicting after m_load of FINAL give the same outputs.

Prints one table row per model and exits 1 if any check failed (77, the
automake SKIP status, if torch or numpy is missing).

Environment: srcdir, builddir, NNC, CC, RT_CFLAGS, RT_LIBS and
HARNESS_CFLAGS, all optional (tests/nnc_test.py says what each means).

Run `diff.py --help` for the options (a single model, more steps, keeping
the temporary files, printing every step).
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # automake: 77 means SKIP
    print("diff.py: skipping, cannot import numpy/torch: %s" % e)
    sys.exit(77)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from nnc_test import (CheckFailed, Config, build, read_safetensors,  # noqa: E402
                      run, write_safetensors)

# Every compared number must satisfy |nnc - torch| <= ATOL + RTOL * |torch|
# (numpy.allclose). RTOL is float32 drift over a few dozen steps; ATOL only
# covers values that cross zero, far below any tensor's typical size (Adam's
# second moments are ~1e-5, its first moments ~1e-3).
ATOL = 1e-6
RTOL = 1e-4
DEFAULT_STEPS = 25
HERE = os.path.dirname(os.path.abspath(__file__))


# ---- Reference models, written by hand from the .nn files ------------------
#
# Attribute names are the checkpoint names nnc uses ("LAYER.weight",
# "LAYER.bias"; LAYER is the value's name, or dense_0, dense_1, ... for
# unnamed layers), so a module's state_dict keys are the checkpoint's keys.

class Seed(nn.Module):
    """tests/torch/seed.nn: 10 -> 128 relu -> 64 relu -> 1 sigmoid."""

    def __init__(self):
        super().__init__()
        self.dense_0 = nn.Linear(10, 128)
        self.dense_1 = nn.Linear(128, 64)
        self.dense_2 = nn.Linear(64, 1)

    def forward(self, x):
        x = F.relu(self.dense_0(x))
        x = F.relu(self.dense_1(x))
        return torch.sigmoid(self.dense_2(x))


class Res(nn.Module):
    """tests/torch/res.nn: residual block, logits out."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(20, 32)
        self.r = nn.Linear(32, 32)
        self.logits = nn.Linear(32, 5)

    def forward(self, x):
        h = F.relu(self.h(x))
        r = self.r(h)
        o = F.relu(h + r)
        return self.logits(o)


class Regress(nn.Module):
    """tests/torch/regress.nn: 8 -> 16 tanh -> 3 linear."""

    def __init__(self):
        super().__init__()
        self.dense_0 = nn.Linear(8, 16)
        self.dense_1 = nn.Linear(16, 3)

    def forward(self, x):
        return self.dense_1(torch.tanh(self.dense_0(x)))


class Misc(nn.Module):
    """tests/torch/misc.nn: sigmoid -> tanh -> softmax probabilities."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 12)
        self.b = nn.Linear(12, 7)
        self.probs = nn.Linear(7, 4)

    def forward(self, x):
        a = torch.sigmoid(self.a(x))
        b = torch.tanh(self.b(a))
        return F.softmax(self.probs(b), dim=1)


class Norm(nn.Module):
    """tests/torch/norm.nn: dense -> layernorm -> relu -> dense."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(6, 12)
        self.n = nn.LayerNorm(12, eps=1e-3)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.relu(self.n(self.h(x))))


class Drop0(nn.Module):
    """tests/torch/dropout0.nn: dropout(0) is the identity."""

    def __init__(self):
        super().__init__()
        self.dense_0 = nn.Linear(7, 10)
        self.dense_1 = nn.Linear(10, 2)

    def forward(self, x):
        return torch.sigmoid(self.dense_1(torch.relu(self.dense_0(x))))


class Acts(nn.Module):
    """tests/torch/acts.nn: leaky_relu, elu, gelu, silu, multiply."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 10)
        self.b = nn.Linear(10, 10)
        self.g = nn.Linear(10, 10)
        self.c = nn.Linear(10, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        a = F.leaky_relu(self.a(x), negative_slope=0.3)
        b = F.elu(self.b(a), alpha=1.0)
        g = F.gelu(self.g(a))                 # exact (erf) form
        m = F.leaky_relu(b * g, negative_slope=0.1)
        h = F.gelu(F.elu(F.silu(self.c(m)), alpha=0.5))
        return self.out(F.silu(h))


class Huber(nn.Module):
    """tests/torch/huber.nn: 5 -> 16 gelu (tanh form) -> 2 linear."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(5, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        return self.out(F.gelu(self.h(x), approximate="tanh"))


class Cce(nn.Module):
    """tests/torch/cce.nn: 7 -> 12 elu -> 4 softmax."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(7, 12)
        self.probs = nn.Linear(12, 4)

    def forward(self, x):
        return F.softmax(self.probs(F.elu(self.h(x))), dim=1)


class CceSig(nn.Module):
    """tests/torch/ccesig.nn: 7 -> 12 tanh -> 4 sigmoid."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(7, 12)
        self.probs = nn.Linear(12, 4)

    def forward(self, x):
        return torch.sigmoid(self.probs(torch.tanh(self.h(x))))


class Sparse(nn.Module):
    """tests/torch/sparse.nn: 9 -> 16 gelu -> 5 softmax."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(9, 16)
        self.probs = nn.Linear(16, 5)

    def forward(self, x):
        return F.softmax(self.probs(F.gelu(self.h(x))), dim=1)


def keras_cce(probs, onehot):
    """Keras' categorical_crossentropy (from_logits=False), batch mean:
    rows renormalized to sum 1, clipped to [1e-7, 1 - 1e-7]."""
    q = probs / probs.sum(dim=1, keepdim=True)
    q = q.clamp(1e-7, 1 - 1e-7)
    return -(onehot * torch.log(q)).sum(dim=1).mean()


def keras_sparse_cce(probs, index):
    """Keras' sparse_categorical_crossentropy: index is (batch, 1) floats."""
    onehot = F.one_hot(index[:, 0].long(), probs.shape[1]).to(probs.dtype)
    return keras_cce(probs, onehot)
# Images: nnc's are NHWC (batch, height, width, channels) and arrive here
# flattened per sample; PyTorch's are NCHW. The references reshape x to
# NHWC and permute it to NCHW; before flattening they permute back to
# NHWC so that the features come in nnc's (h, w, c) order (PyTorch's own
# flatten of NCHW gives (c, h, w)). Conv kernels: nnc saves [out, kh, kw,
# in], nn.Conv2d holds [out, in, kh, kw]: nnc_to_torch and torch_to_nnc
# permute every rank-4 tensor between the two.

def nhwc_in(x, h, w, c):
    return x.reshape(-1, h, w, c).permute(0, 3, 1, 2)


def nhwc_flatten(x):
    return x.permute(0, 2, 3, 1).flatten(1)


class Cnn(nn.Module):
    """tests/torch/cnn.nn: conv same relu, maxpool, conv same tanh,
    avgpool, flatten, dense."""

    def __init__(self):
        super().__init__()
        self.conv2d_0 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2d_1 = nn.Conv2d(4, 6, 3, padding=1)
        self.dense_0 = nn.Linear(24, 3)

    def forward(self, x):
        x = nhwc_in(x, 8, 8, 1)
        x = F.max_pool2d(F.relu(self.conv2d_0(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2d_1(x)), 2)
        return self.dense_0(nhwc_flatten(x))


class CnnGap(nn.Module):
    """tests/torch/cnn_gap.nn: strided 'same' conv without bias (Keras
    pads 7x9 with stride 2 and kernel 2 by one row below and one column
    to the right), conv sigmoid, global average pooling, dense."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 5, 2, stride=2, bias=False)
        self.conv2d_0 = nn.Conv2d(5, 4, 2)
        self.dense_0 = nn.Linear(4, 2)

    def forward(self, x):
        x = F.pad(nhwc_in(x, 7, 9, 2), (0, 1, 0, 1))  # left, right, top, bottom
        x = torch.sigmoid(self.conv2d_0(self.c(x)))
        return self.dense_0(x.mean(dim=(2, 3)))


class CnnCrop(nn.Module):
    """tests/torch/cnn_crop.nn: valid conv relu to 11x11, 2x2 maxpool
    (row and column 10 unread), conv tanh to 4x4, 3x3 avgpool (the last
    row and column unread), flatten, dense: nnc crops both convs."""

    def __init__(self):
        super().__init__()
        self.conv2d_0 = nn.Conv2d(2, 4, 3)
        self.conv2d_1 = nn.Conv2d(4, 3, 2)
        self.dense_0 = nn.Linear(3, 3)

    def forward(self, x):
        x = nhwc_in(x, 13, 13, 2)
        x = F.max_pool2d(F.relu(self.conv2d_0(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2d_1(x)), 3)
        return self.dense_0(nhwc_flatten(x))


def nnc_to_torch(state):
    return {k: (v.transpose(0, 3, 1, 2).copy() if v.ndim == 4 else v)
            for k, v in state.items()}


def torch_to_nnc(state):
    return {k: (v.transpose(0, 2, 3, 1).copy() if v.ndim == 4 else v)
            for k, v in state.items()}


class BN(nn.Module):
    """tests/torch/bn.nn: 6 -> 10 -> batchnorm -> relu -> 4 softmax.
    Keras' momentum 0.99 is torch's 0.01."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(6, 10)
        self.n = nn.BatchNorm1d(10, momentum=0.01, eps=1e-3)
        self.probs = nn.Linear(10, 4)

    def forward(self, x):
        return F.softmax(self.probs(F.relu(self.n(self.h(x)))), dim=1)


class CnnBN(nn.Module):
    """tests/torch/cnn_bn.nn: conv same -> batchnorm (per channel) -> relu
    -> maxpool -> flatten -> dense."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3, padding=1)
        self.n = nn.BatchNorm2d(4, momentum=0.01, eps=1e-3)
        self.out = nn.Linear(36, 3)

    def forward(self, x):
        x = nhwc_in(x, 6, 6, 2)
        x = F.max_pool2d(F.relu(self.n(self.c(x))), 2)
        return self.out(nhwc_flatten(x))


def drop_counters(state):
    """torch's BatchNorm keeps num_batches_tracked, which nnc does not:
    nnc neither writes it nor needs it."""
    return {k: v for k, v in state.items()
            if not k.endswith(".num_batches_tracked")}


class Shared(nn.Module):
    """tests/torch/opt_shared.nn: two linear layers on x, summed."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(3, 4)

    def forward(self, x):
        return self.a(x) + self.b(x)


class Embed(nn.Module):
    """tests/torch/embed.nn: ids (8, 6) -> embedding 12 x 4 -> flatten ->
    3 logits."""

    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(12, 4)
        self.logits = nn.Linear(24, 3)

    def forward(self, x):
        return self.logits(self.e(x.long()).flatten(1))


class Concat(nn.Module):
    """tests/torch/concat.nn: concat of a tanh and a relu branch, and x."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(7, 5)
        self.b = nn.Linear(7, 3)
        self.o = nn.Linear(15, 2)

    def forward(self, x):
        c = torch.cat([torch.tanh(self.a(x)), F.relu(self.b(x))], dim=-1)
        return self.o(torch.cat([c, x], dim=-1))


def softmax_ce(logits, target_probs):
    return F.cross_entropy(logits, target_probs)  # mean over the batch


# name: .nn file stem (or file: the stem, when one file is tested twice,
# and flags: extra nnc options); batch/n_in/n_out: as the .nn says (checked against
# m.h); targets: how to draw y; loss: torch loss on (output, y); optim:
# torch.optim with nnc's hyperparameters (Keras defaults where unspecified,
# e.g. Adam eps 1e-7); seed: for nnc's init and numpy's batches.
MODELS = [
    dict(name="seed", module=Seed, batch=32, n_in=10, n_out=1,
         targets="binary", loss=nn.BCELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.001, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=1),
    dict(name="res", module=Res, batch=16, n_in=20, n_out=5,
         targets="onehot", loss=softmax_ce,
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=2),
    dict(name="regress", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99),
                                          eps=0.05),
         seed=3),
    dict(name="misc", module=Misc, batch=5, n_in=6, n_out=4,
         targets="onehot", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.5),
         seed=4),
    dict(name="norm", module=Norm, batch=8, n_in=6, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=12),
    dict(name="dropout0", module=Drop0, batch=6, n_in=7, n_out=2,
         targets="binary", loss=nn.BCELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=13),
    dict(name="acts", module=Acts, batch=8, n_in=6, n_out=3,
         targets="real", loss=nn.L1Loss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=5),
    dict(name="huber", module=Huber, batch=12, n_in=5, n_out=2,
         targets="real", loss=nn.HuberLoss(delta=0.5),
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=6),
    dict(name="cce", module=Cce, batch=10, n_in=7, n_out=4,
         targets="onehot", loss=keras_cce,
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=7),
    dict(name="bn", module=BN, batch=8, n_in=6, n_out=4,
         targets="onehot", loss=keras_cce,
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=21),
    dict(name="cce-O0", file="cce", flags=["-O0"], module=Cce, batch=10,
         n_in=7, n_out=4, targets="onehot", loss=keras_cce,
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=7),
    dict(name="ccesig", module=CceSig, batch=6, n_in=7, n_out=4,
         targets="onehot", loss=keras_cce,
         optim=lambda p: torch.optim.SGD(p, lr=0.3),
         seed=8),
    dict(name="sparse", module=Sparse, batch=11, n_in=9, n_out=5,
         targets="index", loss=keras_sparse_cce,
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=9),
    dict(name="sparse-O0", file="sparse", flags=["-O0"], module=Sparse,
         batch=11, n_in=9, n_out=5, targets="index", loss=keras_sparse_cce,
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=9),
    # one per optimizer, on the regress network; sched: a torch lr
    # scheduler stepped after every optimizer step; clip: max norm for
    # torch.nn.utils.clip_grad_norm_ before it
    dict(name="opt_sgd", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                         nesterov=True, weight_decay=0.01),
         sched=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
             o, T_max=30, eta_min=0.1 * 0.05),
         seed=5),
    dict(name="opt_adam", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7,
                                          weight_decay=0.05),
         clip=0.5, seed=6),
    dict(name="opt_adamw", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.AdamW(p, lr=0.01, eps=1e-7,
                                           weight_decay=0.1),
         sched=lambda o: torch.optim.lr_scheduler.LambdaLR(
             o, lambda e: (e + 1) / 5 if e < 5 else 0.5 ** ((e - 5) // 4)),
         seed=7),
    dict(name="opt_rmsprop", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.RMSprop(p, lr=0.003, alpha=0.8,
                                             momentum=0.5, centered=True,
                                             eps=1e-3),
         seed=8),
    dict(name="opt_rmsprop_plain", module=Regress, batch=8, n_in=8,
         n_out=3, targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9,
                                             eps=1e-7),
         seed=9),
    dict(name="opt_adagrad", module=Regress, batch=8, n_in=8, n_out=3,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adagrad(p, lr=0.1,
                                             initial_accumulator_value=0.2,
                                             eps=1e-5),
         clip=1.0, seed=10),
    dict(name="cnn", module=Cnn, batch=4, n_in=64, n_out=3,
         targets="onehot", loss=softmax_ce,
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=5),
    # frozen parameters (freeze, trainable=false): requires_grad=False in
    # torch, and an optimizer over the others
    dict(name="cnn_head", module=Cnn, batch=4, n_in=64, n_out=3,
         targets="onehot", loss=softmax_ce,
         frozen=["conv2d_0.weight", "conv2d_0.bias", "conv2d_1.weight",
                 "conv2d_1.bias"],
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=5),
    dict(name="cnn_mid", module=Cnn, batch=4, n_in=64, n_out=3,
         targets="onehot", loss=softmax_ce,
         frozen=["conv2d_1.weight", "conv2d_1.bias"],
         optim=lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7),
         seed=24),
    dict(name="cnn_bn", module=CnnBN, batch=4, n_in=72, n_out=3,
         targets="onehot", loss=softmax_ce,
         optim=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         seed=22),
    dict(name="cnn_gap", module=CnnGap, batch=3, n_in=126, n_out=2,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=6),
    dict(name="cnn_crop", module=CnnCrop, batch=4, n_in=338, n_out=3,
         targets="onehot", loss=softmax_ce,
         optim=lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999),
                                          eps=1e-7),
         seed=23),
    # ids: x holds token ids in [0, vocab) as floats
    dict(name="embed", module=Embed, batch=8, n_in=6, n_out=3,
         targets="onehot", loss=softmax_ce, ids=12,
         optim=lambda p: torch.optim.Adam(p, lr=0.05, eps=1e-7),
         seed=12),
    dict(name="concat", module=Concat, batch=6, n_in=7, n_out=2,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9),
         seed=13),
    dict(name="opt_shared", module=Shared, batch=4, n_in=3, n_out=4,
         targets="real", loss=nn.MSELoss(),
         optim=lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7),
         clip=0.1, seed=11),
]


# ---- Data and checkpoints ---------------------------------------------------

def make_batches(spec, steps):
    """Deterministic (x, y) float32 batches for spec.

    The targets come from a fixed random linear "teacher" (thresholded,
    argmaxed or plus noise, as the loss needs), so there is something to
    learn and the loss falls over the steps.
    """
    rng = np.random.default_rng(1000 + spec["seed"])
    b, n_in, n_out = spec["batch"], spec["n_in"], spec["n_out"]
    teacher = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
    batches = []
    for _ in range(steps):
        if "ids" in spec:
            x = rng.integers(0, spec["ids"], (b, n_in)).astype(np.float32)
            t = (x.astype(np.float64) - spec["ids"] / 2) @ teacher
        else:
            x = rng.standard_normal((b, n_in)).astype(np.float32)
            t = x.astype(np.float64) @ teacher
        kind = spec["targets"]
        if kind == "binary":            # 0/1 labels
            y = (t > 0).astype(np.float32)
        elif kind == "onehot":          # one-hot classes
            y = np.eye(n_out, dtype=np.float32)[np.argmax(t, axis=1)]
        elif kind == "index":           # class indices, one float per row
            y = np.argmax(t, axis=1).astype(np.float32).reshape(b, 1)
        else:                           # real values
            y = (t + 0.1 * rng.standard_normal((b, n_out))).astype(np.float32)
        batches.append((x, y))
    return batches


def write_batches(path, batches):
    with open(path, "wb") as f:
        for x, y in batches:
            f.write(x.astype("<f4").tobytes())
            f.write(y.astype("<f4").tobytes())


def read_nnc(path):
    """{name: float32 ndarray} of a checkpoint nnc wrote (F32 only)."""
    return read_safetensors(path, dtypes=("F32",))[0]


def split_state(tensors):
    """(weights, optimizer state): "optimizer.PARAM.SLOT" names go to the
    second."""
    w = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    s = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    return w, s


def read_floats(path, count):
    arr = np.fromfile(path, dtype="<f4")
    if arr.size != count:
        raise CheckFailed("%s: %d floats, want %d" % (path, arr.size, count))
    return arr.astype(np.float32)


# ---- Running nnc and the harness --------------------------------------------

def header_dims(path):
    """M_BATCH, M_IN, M_OUT from the emitted header."""
    with open(path) as f:
        text = f.read()
    dims = {}
    for key in ("BATCH", "IN", "OUT"):
        m = re.search(r"#\s*define\s+M_%s\s+\(?\s*(\d+)" % key, text)
        if not m:
            raise CheckFailed("%s: no #define M_%s" % (path, key))
        dims[key] = int(m.group(1))
    return dims


def build_harness(cfg, spec, work):
    """nnc + cc; returns the harness executable's path."""
    nn_file = os.path.join(HERE, spec.get("file", spec["name"]) + ".nn")
    exe = build(cfg, nn_file, os.path.join(HERE, "harness.c"), work,
                spec.get("flags", []))
    dims = header_dims(os.path.join(work, "m.h"))
    want = {"BATCH": spec["batch"], "IN": spec["n_in"], "OUT": spec["n_out"]}
    if dims != want:
        raise CheckFailed("m.h says %r but the reference model expects %r"
                          % (dims, want))
    return exe


def run_harness(exe, spec, work, data, steps, tag, weights=None):
    """Runs the harness; returns (losses, init, final, preds)."""
    init = os.path.join(work, tag + "init.safetensors")
    final = os.path.join(work, tag + "final.safetensors")
    out = run([exe, str(spec["seed"]), init, final, data, str(steps)] +
              ([weights] if weights else []), "harness")
    try:
        losses = [float(s) for s in out.split()]
    except ValueError:
        raise CheckFailed("harness printed a non-number:\n" + out)
    if len(losses) != steps:
        raise CheckFailed("harness printed %d losses, want %d"
                          % (len(losses), steps))
    preds = read_floats(final + ".pred", spec["batch"] * spec["n_out"])
    return (losses, nnc_to_torch(read_nnc(init)),
            nnc_to_torch(read_nnc(final)),
            preds.reshape(spec["batch"], spec["n_out"]))


# ---- The PyTorch side --------------------------------------------------------

def check_init(model, init):
    """Names, shapes, Glorot uniform weights (embeddings: uniform in
    (-0.05, 0.05)) and zero biases; [] if fine."""
    problems = []
    want = {k: tuple(v.shape)
            for k, v in drop_counters(model.state_dict()).items()}
    got = {k: tuple(v.shape) for k, v in init.items()}
    if want != got:
        for k in sorted(set(want) | set(got)):
            if want.get(k) != got.get(k):
                problems.append("parameter %s: nnc has shape %s, reference %s"
                                % (k, got.get(k, "(missing)"),
                                   want.get(k, "(missing)")))
        return problems
    for k, v in sorted(init.items()):
        if k.endswith(".bias") and np.any(v != 0):
            problems.append("%s: initial bias not zero" % k)
        # batchnorm: running var ones, running mean zeros
        if k.endswith(".running_mean") and np.any(v != 0):
            problems.append("%s: initial running mean not zero" % k)
        if k.endswith(".running_var") and np.any(v != 1):
            problems.append("%s: initial running var not one" % k)
        if k.endswith(".weight") and isinstance(
                model.get_submodule(k[:-len(".weight")]), nn.Embedding):
            # Keras' Embedding: uniform(-0.05, 0.05)
            big = float(np.max(np.abs(v)))
            if not 0.025 < big <= 0.05:
                problems.append("%s: |w| up to %.6g, want uniform in "
                                "(-0.05, 0.05)" % (k, big))
        elif k.endswith(".weight") and v.ndim == 1:   # layernorm gamma
            if np.any(v != 1):
                problems.append("%s: initial scale not one" % k)
        elif k.endswith(".weight"):
            # conv [out, in, kh, kw]: fans count the window, as Keras
            fan_out = v.shape[0] * int(np.prod(v.shape[2:]))
            fan_in = int(np.prod(v.shape[1:]))
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            big = float(np.max(np.abs(v)))
            if not np.all(np.isfinite(v)) or big > bound * (1 + 1e-6):
                problems.append("%s: |w| up to %.6g, Glorot bound %.6g"
                                % (k, big, bound))
            elif v.size >= 16 and big < 0.5 * bound:
                problems.append("%s: |w| only up to %.6g, Glorot bound %.6g "
                                "(not uniform over the range?)"
                                % (k, big, bound))
    return problems


def torch_train(spec, init, batches):
    """Returns (losses, final state as ndarrays, preds on batch 0, the
    optimizer's state as "optimizer.PARAM.SLOT" ndarrays)."""
    model = spec["module"]()
    full = {k: torch.from_numpy(v.copy()) for k, v in init.items()}
    for k, v in model.state_dict().items():  # num_batches_tracked
        full.setdefault(k, v)
    model.load_state_dict(full, strict=True)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in spec.get("frozen", ()))
    opt = spec["optim"]([p for p in model.parameters() if p.requires_grad])
    sched = spec["sched"](opt) if "sched" in spec else None
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = spec["loss"](model(torch.from_numpy(x)), torch.from_numpy(y))
        losses.append(loss.item())
        loss.backward()
        if "clip" in spec:
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], spec["clip"])
        opt.step()
        if sched:
            sched.step()
    model.eval()  # batchnorm: predict uses the running statistics
    with torch.no_grad():
        preds = model(torch.from_numpy(batches[0][0])).numpy()
    state = {k: v.detach().numpy().copy()
             for k, v in drop_counters(model.state_dict()).items()}
    ostate = {}
    for name, p in model.named_parameters():
        for slot, v in opt.state[p].items() if p in opt.state else ():
            if slot != "step" and isinstance(v, torch.Tensor):
                ostate["optimizer.%s.%s" % (name, slot)] = v.numpy().copy()
    return losses, state, preds, ostate


def max_abs(a, b):
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(np.max(d)) if np.all(np.isfinite(d)) else float("inf")


def excess(a, b):
    """max over elements of |a - b| / (ATOL + RTOL * |b|), b the reference:
    <= 1 where numpy.allclose(a, b, RTOL, ATOL) holds, inf if not finite."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    r = np.abs(a - b) / (ATOL + RTOL * np.abs(b))
    return float(np.max(r)) if np.all(np.isfinite(r)) else float("inf")


def compare(row, what, got, want):
    """Appends a problem per tensor of got/want (dicts, or one sequence
    under the name `what`) that is not close; returns the largest excess."""
    if not isinstance(want, dict):
        got, want = {"": got}, {"": want}
    worst = 0.0
    for k in sorted(want):
        name = "%s %s" % (what, k) if k else what
        e = excess(got[k], want[k])
        worst = max(worst, e)
        if not e <= 1:
            g = np.asarray(got[k], np.float64).ravel()
            w = np.asarray(want[k], np.float64).ravel()
            i = int(np.argmax(np.abs(g - w) / (ATOL + RTOL * np.abs(w))))
            row["problems"].append(
                "%s not close: at [%d] nnc %.9g, torch %.9g (|d| %.3g > "
                "%g + %g * |torch|)" % (name, i, g[i], w[i], abs(g[i] - w[i]),
                                        ATOL, RTOL))
    return worst


# ---- One model, end to end ---------------------------------------------------

def test_model(cfg, spec, steps):
    """Returns a result row: dict with the numbers and a list of problems."""
    row = dict(name=spec["name"], steps=steps, params=None, dloss=None,
               dw=None, dpred=None, excess=None, first=None, last=None,
               problems=[])
    work = os.path.join(cfg.tmp, spec["name"])
    os.mkdir(work)
    try:
        batches = make_batches(spec, steps)
        data = os.path.join(work, "data.bin")
        write_batches(data, batches)
        exe = build_harness(cfg, spec, work)
        losses, init, final, preds = run_harness(exe, spec, work, data,
                                                 steps, "")
        init, _ = split_state(init)
        final, nnc_ostate = split_state(final)
        row["params"] = sum(v.size for v in init.values())
        row["first"], row["last"] = losses[0], losses[-1]
        model = spec["module"]()
        row["problems"] += check_init(model, init)
        if row["problems"]:
            return row

        t_losses, t_state, t_preds, t_ostate = torch_train(spec, init,
                                                           batches)
        # the second run also loads PyTorch's weights (no optimizer state)
        # and takes one step: as a fresh torch optimizer would
        weights = os.path.join(work, "torch.safetensors")
        # with torch's BatchNorm counters, which nnc ignores
        counters = {k: v.numpy().copy()
                    for k, v in model.state_dict().items()
                    if k.endswith(".num_batches_tracked")}
        # (in nnc's layout: the reference models here flatten in NHWC order)
        write_safetensors(weights, dict(torch_to_nnc(t_state), **counters),
                          {"format": "nnc"})
        again = run_harness(exe, spec, work, data, steps, "again-", weights)
        again = (again[0], split_state(again[1])[0],
                 split_state(again[2])[0], again[3])
        if (again[0] != losses or
                any(not np.array_equal(again[1][k], init[k]) for k in init) or
                any(not np.array_equal(again[2][k], final[k]) for k in final)
                or not np.array_equal(again[3], preds)):
            row["problems"].append("a second run with the same seed gave "
                                   "different results")
        restart = nnc_to_torch(
            split_state(read_nnc(weights + ".restart"))[0])
        t_restart = torch_train(spec, t_state, batches[:1])[1]
        if not compare(row, "after restart:", restart, t_restart) <= 1:
            row["problems"].append("after loading PyTorch's weights, a step "
                                   "differs (optimizer not reset?)")
        if set(nnc_ostate) != set(t_ostate):
            row["problems"].append("optimizer state %s, want %s"
                                   % (sorted(nnc_ostate), sorted(t_ostate)))
            return row
        ex = compare(row, "optimizer state", nnc_ostate, t_ostate)
        if set(final) != set(t_state):
            row["problems"].append("FINAL has parameters %s, want %s"
                                   % (sorted(final), sorted(t_state)))
            return row
        row["dloss"] = max_abs(losses, t_losses)
        row["dw"] = max(max_abs(final[k], t_state[k]) for k in final)
        row["dpred"] = max_abs(preds, t_preds)
        if cfg.verbose:
            print("%s: step  nnc loss        torch loss      diff"
                  % spec["name"])
            for i, (a, b) in enumerate(zip(losses, t_losses)):
                print("%s: %4d  %-14.9g  %-14.9g  %.3g"
                      % (spec["name"], i + 1, a, b, abs(a - b)))
        row["excess"] = max(ex, compare(row, "losses", losses, t_losses),
                            compare(row, "final weights", final, t_state),
                            compare(row, "predictions", preds, t_preds))
    except CheckFailed as e:
        row["problems"].append(str(e))
    return row


def fmt(v, spec="%.2e"):
    return "-" if v is None else spec % v


def print_table(rows):
    head = ("model", "params", "steps", "loss first->last", "max|dloss|",
            "max|dW|", "max|dpred|", "max d/tol", "result")
    lines = []
    for r in rows:
        trend = ("-" if r["first"] is None
                 else "%.4f->%.4f" % (r["first"], r["last"]))
        lines.append((r["name"], fmt(r["params"], "%d"), str(r["steps"]),
                      trend, fmt(r["dloss"]), fmt(r["dw"]), fmt(r["dpred"]),
                      fmt(r["excess"], "%.2f"),
                      "FAIL" if r["problems"] else "ok"))
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    for line in [head] + lines:
        print("  ".join(s.ljust(w) for s, w in zip(line, widths)).rstrip())
    for r in rows:
        for p in r["problems"]:
            print("%s: %s" % (r["name"], p.rstrip()))


def main():
    ap = argparse.ArgumentParser(
        description="Train nnc-emitted models and PyTorch references on the "
                    "same data and compare losses, weights and predictions.")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                    help="training steps per model (default %d)"
                    % DEFAULT_STEPS)
    ap.add_argument("--model", action="append",
                    choices=[m["name"] for m in MODELS],
                    help="test only this model (repeatable)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory and print its path")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print every step's losses")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    cfg = Config()
    cfg.verbose = args.verbose
    problems = cfg.problems()
    if problems:
        for p in problems:
            print("diff.py: " + p)
        return 1

    cfg.tmp = tempfile.mkdtemp(prefix="nnc-torch-")
    try:
        rows = [test_model(cfg, spec, args.steps) for spec in MODELS
                if not args.model or spec["name"] in args.model]
    finally:
        if args.keep:
            print("diff.py: temporary files kept in " + cfg.tmp)
        else:
            shutil.rmtree(cfg.tmp, ignore_errors=True)

    print("nnc vs PyTorch %s (float32, |d| <= %g + %g * |torch|, nnc %s)"
          % (torch.__version__, ATOL, RTOL, cfg.nnc))
    print_table(rows)
    failed = [r["name"] for r in rows if r["problems"]]
    if failed:
        print("FAIL: %s" % ", ".join(failed))
        return 1
    print("PASS: %d models" % len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
