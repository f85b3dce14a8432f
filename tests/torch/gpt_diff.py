#!/usr/bin/python3
"""gpt_diff.py - the PyTorch differential test of a GPT (issue 13, item 8).

tests/torch/gpt/gpt2.nn is a two-block GPT: token embedding, learned
positions (a table of 10 rows for a context of 8), pre-LayerNorm blocks
of causal multi-head self-attention (torch.nn.MultiheadAttention
semantics and tensor names) and a GELU MLP, a final LayerNorm and an LM
head tied to the token embedding, sparse softmax cross-entropy over every
position; AdamW with weight decay on the tensors of two or more dimensions
only (decay=matrices: the two embeddings, in_proj_weight, out_proj.weight,
the dense weights; not the biases and LayerNorm parameters), a linear
warm-up then cosine decay to a floor, and global-norm clipping. Class Gpt2
below is the same model written by hand in plain torch.nn; the optimizer
is torch.optim.AdamW with two parameter groups, LambdaLR and
torch.nn.utils.clip_grad_norm_.

The test is diff.py's (tests/torch/diff.py: the harness trains nnc's
build, the same initial weights go through safetensors into the torch
module, 20 steps, then losses, final weights, AdamW's moments, the
predictions (the logits of the first batch) and a restart from PyTorch's
weights are compared within |nnc - torch| <= 1e-6 + 1e-4 |torch|, and a
second run must reproduce the first bit for bit), with two differences:
the batches are token sequences (ids in [0, 11) from a fixed random
Markov chain, so the loss falls; x = 8 tokens, y = the 8 next tokens, as
floats), and the initialization check is looser (names and shapes as the
torch module's state_dict, zero biases, LayerNorm scales one, finite
weights that are not all zero): the distributions of nnc's attention and
position initializers are not part of this test.

Exits 0 if every check passed, 1 if not (nnc that cannot compile the model
fails the test), 77 (automake's SKIP) only if numpy or torch cannot be
imported. Environment as diff.py (srcdir, builddir, NNC, CC, RT_CFLAGS,
RT_LIBS, HARNESS_CFLAGS). Options: --steps N (20), --keep, -v (every
step's losses), --torch-only (run only the PyTorch side on its own
initialization: checks the reference, not nnc).
"""
import argparse
import math
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diff  # noqa: E402  (exits 77 when numpy or torch is missing)
from diff import np, torch, nn, F  # noqa: E402

V, T, C, H, MAXLEN, B = 11, 8, 16, 2, 10, 4
WARMUP, DECAY_STEPS, ALPHA, LR, CLIP = 4, 12, 0.1, 0.01, 0.5
STEPS = 20


class Gpt2(nn.Module):
    """tests/torch/gpt/gpt2.nn. Attribute names are the .nn's value names,
    so state_dict keys are nnc's checkpoint names (wte.weight, x0.weight,
    a0.weight, m0.in_proj_weight, m0.out_proj.weight, f0.weight, ...)."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.x0 = nn.Embedding(MAXLEN, C)         # the position table
        for i in range(2):
            setattr(self, "a%d" % i, nn.LayerNorm(C, eps=1e-5))
            setattr(self, "m%d" % i, nn.MultiheadAttention(
                C, H, dropout=0.0, bias=False, batch_first=True))
            setattr(self, "b%d" % i, nn.LayerNorm(C, eps=1e-5))
            setattr(self, "f%d" % i, nn.Linear(C, 4 * C))
            setattr(self, "p%d" % i, nn.Linear(4 * C, C))
        self.lnf = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer("mask", torch.triu(
            torch.ones(T, T, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, idx):
        """idx: (batch, T) ids as floats; returns the logits flattened to
        (batch, T * V), as the harness writes nnc's predictions."""
        x = self.wte(idx.long()) + self.x0.weight[:T]
        for i in range(2):
            g = lambda n: getattr(self, "%s%d" % (n, i))  # noqa: E731
            a = g("a")(x)
            r = x + g("m")(a, a, a, need_weights=False, attn_mask=self.mask)[0]
            x = r + g("p")(F.gelu(g("f")(g("b")(r))))
        logits = self.lnf(x) @ self.wte.weight.t()        # tied, no bias
        return logits.reshape(idx.shape[0], T * V)


def lm_loss(out, y):
    """Mean cross-entropy over every position; y: (batch, T) ids as floats."""
    return F.cross_entropy(out.reshape(-1, V), y.long().reshape(-1))


def adamw(params):
    """torch.optim.AdamW, weight decay on tensors of >= 2 dimensions only."""
    params = list(params)
    return torch.optim.AdamW(
        [{"params": [q for q in params if q.dim() >= 2], "weight_decay": 0.1},
         {"params": [q for q in params if q.dim() < 2], "weight_decay": 0.0}],
        lr=LR, betas=(0.9, 0.99), eps=1e-8)


def schedule(e):
    """nnc's warmup=N then Keras' CosineDecay(decay_steps, alpha), as a
    factor of lr at (0-based) step e."""
    if e < WARMUP:
        return (e + 1) / WARMUP
    s = min(e - WARMUP, DECAY_STEPS)
    return (1 - ALPHA) * (1 + math.cos(math.pi * s / DECAY_STEPS)) / 2 + ALPHA


SPEC = dict(name="gpt2", file=os.path.join("gpt", "gpt2"), module=Gpt2,
            batch=B, n_in=T, n_out=T * V, loss=lm_loss, optim=adamw,
            sched=lambda o: torch.optim.lr_scheduler.LambdaLR(o, schedule),
            clip=CLIP, seed=31)


def make_batches(spec, steps):
    """Token windows from a fixed random Markov chain over V tokens (each
    row of its transition matrix peaked on a few successors): x = tokens
    0..T-1 of a window, y = tokens 1..T, both float32 (batch, T)."""
    rng = np.random.default_rng(1000 + spec["seed"])
    trans = rng.dirichlet(np.full(V, 0.3), size=V)
    batches = []
    for _ in range(steps):
        seq = np.empty((spec["batch"], T + 1), np.int64)
        seq[:, 0] = rng.integers(0, V, spec["batch"])
        for t in range(T):
            for b in range(spec["batch"]):
                seq[b, t + 1] = rng.choice(V, p=trans[seq[b, t]])
        batches.append((seq[:, :T].astype(np.float32),
                        seq[:, 1:].astype(np.float32)))
    return batches


def check_init(model, init):
    """Names and shapes as model's state_dict, zero biases, LayerNorm
    scales one, finite weights, no all-zero matrix; [] if fine."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in init.items()}
    problems = ["parameter %s: nnc has shape %s, reference %s"
                % (k, got.get(k, "(missing)"), want.get(k, "(missing)"))
                for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
    if problems:
        return problems
    for k, v in sorted(init.items()):
        if not np.all(np.isfinite(v)):
            problems.append("%s: initial values not finite" % k)
        elif k.endswith("bias") and np.any(v != 0):
            problems.append("%s: initial bias not zero" % k)
        elif k.endswith(".weight") and v.ndim == 1 and np.any(v != 1):
            problems.append("%s: initial LayerNorm scale not one" % k)
        elif v.ndim == 2 and not np.any(v != 0):
            problems.append("%s: initial weights all zero" % k)
    return problems


def torch_only(steps):
    """The reference alone on its own initialization (no nnc)."""
    torch.manual_seed(0)
    model = Gpt2()
    init = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    losses, state, preds, ostate = diff.torch_train(SPEC, init, make_batches(SPEC, steps))
    print("gpt_diff.py --torch-only: %d parameters, %d optimizer tensors, "
          "loss %.4f -> %.4f, logits %s"
          % (sum(v.size for v in init.values()), len(ostate), losses[0],
             losses[-1], preds.shape))
    return 0 if losses[-1] < losses[0] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--torch-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.torch_only:
        return torch_only(args.steps)
    # diff.test_model with this test's batches and initialization check
    diff.make_batches = make_batches
    diff.check_init = check_init
    cfg = diff.Config()
    cfg.verbose = args.verbose
    for p in cfg.problems():
        print("gpt_diff.py: " + p)
        return 1
    cfg.tmp = tempfile.mkdtemp(prefix="nnc-gpt-")
    try:
        row = diff.test_model(cfg, SPEC, args.steps)
    finally:
        if args.keep:
            print("gpt_diff.py: temporary files kept in " + cfg.tmp)
        else:
            shutil.rmtree(cfg.tmp, ignore_errors=True)
    print("nnc vs PyTorch %s: a two-block GPT (float32, |d| <= %g + %g * |torch|)"
          % (torch.__version__, diff.ATOL, diff.RTOL))
    diff.print_table([row])
    if row["problems"]:
        print("FAIL: gpt2")
        return 1
    print("PASS: gpt2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
