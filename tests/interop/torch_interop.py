#!/usr/bin/env python3
"""torch_interop.py - checkpoints between PyTorch and nnc (make check).

For each model (mlp.nn, seq.nn, cnn.nn here, and the PyTorch module that
mirrors it below):

  torch -> nnc: random weights (and batchnorm running statistics) in the
      PyTorch module, its state_dict() written as safetensors the way
      safetensors.torch.save_file does (written by hand here: Debian has no
      safetensors package), loaded by the emitted m_load (which converts
      conv kernels and the (c, h, w) columns after flatten); nnc's predict
      must equal torch's forward in eval mode within 1e-5.
  nnc -> torch: the C side trains a few steps and writes m_export; the
      file goes straight into model.load_state_dict(strict=True) and the
      forward must equal nnc's predict within 1e-5. The C side also loads
      its export back (same bits).
  errors: a state dict with a wrong shape, a missing tensor or an extra
      one is refused (NNC_ERR_MISMATCH) without touching the weights.

Environment: srcdir, builddir, NNC, CC, RT_CFLAGS, RT_LIBS and
HARNESS_CFLAGS, all optional (tests/nnc_test.py says what each means).
Exit status 0 if all pass, 1 otherwise.
"""
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, ".."))
from nnc_test import (CheckFailed, Config, build, read_safetensors,  # noqa: E402
                      run, write_safetensors)

NNC_ERR_MISMATCH = -3
TOL = 1e-5


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


def seq():
    layers = []
    for i in range(5):
        layers += [nn.Linear(5 if i == 0 else 7, 7), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(7, 2))


class Cnn(nn.Module):
    """Input rows are nnc's NHWC images; everything else is plain torch
    (NCHW, flatten in (c, h, w) order)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 5, 3)
        self.bn2 = nn.BatchNorm1d(20)
        self.fc1 = nn.Linear(20, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        x = x.reshape(-1, 8, 8, 3).permute(0, 3, 1, 2)
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.relu(self.conv2(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(self.bn2(x))))


MODELS = [
    # name, module factory, floats per input row, metadata of torch's file
    ("mlp", Mlp, 6, None),
    ("seq", seq, 5, {"format": "pt"}),
    ("cnn", Cnn, 8 * 8 * 3, {"format": "pt"}),
]


# ---- the checks ----------------------------------------------------------------

def randomize(model, gen):
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype != torch.float32:
                v.fill_(3)  # num_batches_tracked
            elif k.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
            else:
                v.copy_(torch.randn(v.shape, generator=gen) * 0.5)


def compare(what, got, want):
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    if not err <= TOL:
        raise RuntimeError("%s: nnc and torch differ by %.3g (tolerance %g)"
                           % (what, err, TOL))
    return err


def check_model(cfg, name, factory, n_in, meta, work):
    gen = torch.Generator().manual_seed(1)
    exe = build(cfg, os.path.join(HERE, name + ".nn"),
                os.path.join(HERE, "torch_main.c"), work)
    n = 9
    x = (torch.rand(n, n_in, generator=gen) * 2 - 1).float()
    xbin = os.path.join(work, "x.bin")
    x.numpy().astype("<f4").tofile(xbin)
    out = os.path.join(work, "y.bin")
    report = []

    # torch -> nnc
    model = factory().eval()
    randomize(model, gen)
    ckpt = os.path.join(work, "torch.safetensors")
    state = model.state_dict()
    write_safetensors(ckpt, state, meta)
    run([exe, "load", ckpt, xbin, str(n), out], name + ": load")
    with torch.no_grad():
        want = model(x).numpy()
    got = np.fromfile(out, dtype="<f4").reshape(want.shape)
    report.append("torch->nnc %.1e" % compare(name + " torch->nnc", got, want))

    # nnc -> torch
    ckpt2 = os.path.join(work, "nnc.safetensors")
    run([exe, "export", ckpt2, xbin, str(n), out], name + ": export")
    tensors, metadata = read_safetensors(ckpt2)
    tensors = {k: torch.from_numpy(v) for k, v in tensors.items()}
    model2 = factory().eval()
    if name == "seq":
        # unnamed nnc layers (dense_0, ...) into nn.Sequential ("0", "2",
        # ...): the file lists the tensors in layer order, as state_dict()
        assert list(tensors)[0] == "dense_0.weight", list(tensors)
        tensors = dict(zip(model2.state_dict(), tensors.values()))
    model2.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        want = model2(x).numpy()
    got = np.fromfile(out, dtype="<f4").reshape(want.shape)
    report.append("nnc->torch %.1e" % compare(name + " nnc->torch", got, want))
    if metadata.get("format") != "pt":
        raise RuntimeError("%s: export metadata %r" % (name, metadata))

    # refused: wrong shape, missing tensor, extra tensor
    key = [k for k, v in state.items() if v.dtype == torch.float32][-1]
    bad = dict(state)
    bad[key] = torch.zeros(tuple(state[key].shape) + (1,))
    cases = {"shape": bad,
             "missing": {k: v for k, v in state.items() if k != key},
             "extra": dict(state, **{"extra.weight": torch.zeros(2)})}
    for what, tensors in cases.items():
        path = os.path.join(work, "bad-%s.safetensors" % what)
        write_safetensors(path, tensors, meta)
        run([exe, "fail", path, str(NNC_ERR_MISMATCH)], name + ": " + what)
    report.append("3 bad files refused")
    return ", ".join(report)


def main():
    torch.set_num_threads(1)
    cfg = Config()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="nnc-interop-") as tmp:
        for name, factory, n_in, meta in MODELS:
            work = os.path.join(tmp, name)
            os.mkdir(work)
            try:
                print("%-4s ok: %s" % (name, check_model(cfg, name, factory,
                                                         n_in, meta, work)))
            except (RuntimeError, CheckFailed) as e:
                print("%-4s FAILED: %s" % (name, e))
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
