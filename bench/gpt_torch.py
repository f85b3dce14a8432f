#!/usr/bin/env python3
"""gpt_torch.py - the GPT of examples/gpt_char.nn in plain torch.nn, the
PyTorch peer of issue 13's targets.

    python3 bench/gpt_torch.py time  [--threads 1] [--batch 12] [--vocab 65]
                                     [--warmup 20] [--steps 50] [--compile]
    python3 bench/gpt_torch.py train --text FILE [--steps 2000] [--eval-every 250]
                                     [--eval-iters 200] [--seed 1337]
                                     [--init NNC.safetensors] [--eval-windows even]

Model (nanoGPT's CPU configuration, as examples/gpt_char.nn): 4 layers, 4
heads, width 128, context 64, learned positions (wpe [64, 128]), tied LM
head (logits = ln_f(x) @ wte.weight^T, no bias), pre-LayerNorm blocks
(eps 1e-5), causal nn.MultiheadAttention(batch_first=True) with biases,
MLP 128 -> 512 GELU (exact erf) -> 128, dropout 0. Loss: cross-entropy of
the logits (batch, T, V) against the next tokens, mean over all positions.
Initialization as nanoGPT: N(0, 0.02) weights, out_proj and the MLP's
second weight N(0, 0.02 / sqrt(2 * layers)), zero biases, LayerNorm 1 / 0.
Optimizer as nanoGPT: AdamW(lr 1e-3, betas (0.9, 0.99), eps 1e-8), weight
decay 0.1 on every parameter tensor of two or more dimensions (wte, wpe,
in_proj_weight, out_proj.weight, the MLP weights), none on biases and
LayerNorm; learning rate from nanoGPT's get_lr (linear warm-up over 100
steps, then cosine from 1e-3 to 1e-4 at step 2000, then 1e-4);
clip_grad_norm_(1.0) before each step.

time: the steady-state train step at batch B x 64 on random tokens
(vocab --vocab, default 65, the characters of a text like fortunes'), after
--warmup untimed steps; every step is timed on its own and waits for its
loss (loss.item()). Prints "key value" lines: step_ms (median), step_min_ms,
peak_rss_kb (getrusage of the whole process), train_step_flops_est (the
model's FLOPs per step counted by hand: 2mnk per matrix product, x3 for
forward + backward; nnc's --flops count is what the report uses).
--compile wraps the step in torch.compile (PyTorch 2 only; with 1.13 it
prints "skipped" and exits 3).

train: nanoGPT's loop on a text file: byte-level characters (the
vocabulary is the sorted set of bytes in the file), the first 90% for
training, the last 10% for validation, batches of windows of 65 tokens at
random offsets from torch.randint (nanoGPT's get_batch) with a seeded
generator, the validation loss (mean of --eval-iters random validation
batches, and the training loss likewise) every --eval-every steps and at
the end. Prints "val_loss_at_STEP L" lines, then final_val_loss,
train_wall_s (the training steps only, evaluations excluded) and
eval_wall_s.

--init NNC.safetensors starts from the weights of an nnc checkpoint of
the same model (examples/gpt_char.nn's, e.g. after one step at lr 1e-12:
`train --text FILE --steps 1 --lr 1e-12 --save init.safetensors`) instead
of nanoGPT's initialization: the tensors in checkpoint order onto
named_parameters() (the same order, shapes checked), and the checkpoint's
vocabulary (its __metadata__ "vocab", the byte of each id, hex) with as
many rows as its embedding has. --eval-windows even evaluates on the
windows nnc's driver uses (--eval-iters batches of windows at offsets
evenly spaced over the validation tail, runtime/text.c's
nnc_text_val_offset) instead of random ones; the training estimate stays
random. With both, the two runs differ only in their random training
windows (and nnc's warm-up, (it+1)/warmup as llm.c's, against nanoGPT's
(it+1)/(warmup+1)).

Threads: --threads (torch.set_num_threads; run.sh pins one-thread runs
with taskset).
"""
import argparse
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import peer

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["time", "train"])
p.add_argument("--threads", type=int, default=1)
peer.gpt_args(p, steps=None)
p.add_argument("--compile", action="store_true")
p.add_argument("--text", default=None)
p.add_argument("--eval-every", type=int, default=250)
p.add_argument("--eval-iters", type=int, default=200)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--min-lr", type=float, default=1e-4)
p.add_argument("--warmup-iters", type=int, default=100)
p.add_argument("--lr-decay-iters", type=int, default=2000)
p.add_argument("--init", default=None)
p.add_argument("--eval-windows", choices=["random", "even"], default="random")
args = p.parse_args()
if args.steps is None:
    args.steps = 50 if args.mode == "time" else 2000

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
print("torch_version %s" % torch.__version__)
print("threads %d" % torch.get_num_threads())


class Block(nn.Module):
    def __init__(self, C, H, T):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = nn.MultiheadAttention(C, H, dropout=0.0, bias=True,
                                          batch_first=True)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.fc = nn.Linear(C, 4 * C)
        self.proj = nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.triu(
            torch.full((T, T), float("-inf")), diagonal=1), persistent=False)

    def forward(self, x):
        T = x.shape[1]
        a = self.ln_1(x)
        x = x + self.attn(a, a, a, need_weights=False,
                          attn_mask=self.mask[:T, :T])[0]
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, V, T, L, H, C):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, H, T) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        for name, prm in self.named_parameters():      # nanoGPT's init
            if name.endswith("bias"):
                nn.init.zeros_(prm)
            elif "ln_" in name:
                nn.init.ones_(prm)
            elif name.endswith("out_proj.weight") or name.endswith("proj.weight"):
                nn.init.normal_(prm, 0.0, 0.02 / math.sqrt(2 * L))
            else:
                nn.init.normal_(prm, 0.0, 0.02)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()     # tied head, no bias
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               targets.reshape(-1))


def flops_per_step(B, T, L, C, V):
    """2mnk per matrix product of the forward (q/k/v, scores, weights x v,
    out_proj, the MLP, the head), x3 for forward + backward."""
    per_tok = L * (2 * C * 3 * C + 2 * T * C + 2 * T * C + 2 * C * C
                   + 2 * 2 * C * 4 * C) + 2 * C * V
    return 3 * B * T * per_tok


def get_lr(it):
    """nanoGPT's train.py get_lr."""
    if it < args.warmup_iters:
        return args.lr * (it + 1) / (args.warmup_iters + 1)
    if it > args.lr_decay_iters:
        return args.min_lr
    ratio = (it - args.warmup_iters) / (args.lr_decay_iters - args.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return args.min_lr + coeff * (args.lr - args.min_lr)


def make_opt(model):
    decay = [q for q in model.parameters() if q.dim() >= 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=args.lr, betas=(0.9, 0.99), eps=1e-8)


def make_step(model, opt):
    def step(x, y):
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss
    if args.compile:
        step = torch.compile(step)
    return step


if args.compile and int(torch.__version__.split(".")[0]) < 2:
    print("skipped torch.compile needs PyTorch 2 (this is %s)" % torch.__version__)
    sys.exit(3)


def time_mode():
    B, T, V = args.batch, args.block, args.vocab
    model = GPT(V, T, args.layers, args.heads, args.width)
    opt = make_opt(model)
    step = make_step(model, opt)
    g = torch.Generator().manual_seed(args.seed)
    data = [torch.randint(V, (B, T + 1), generator=g) for _ in range(16)]
    print("params %d" % sum(q.numel() for q in model.parameters()))
    print("train_step_flops_est %d" % flops_per_step(B, T, args.layers, args.width, V))
    t0 = time.perf_counter()
    for i in range(args.warmup):
        for grp in opt.param_groups:
            grp["lr"] = get_lr(i)
        d = data[i % len(data)]
        loss = step(d[:, :-1], d[:, 1:]).item()
    print("warmup_steps %d" % args.warmup)
    print("warmup_s %.3f" % (time.perf_counter() - t0))
    times = []
    for i in range(args.warmup, args.warmup + args.steps):
        for grp in opt.param_groups:
            grp["lr"] = get_lr(i)
        d = data[i % len(data)]
        t0 = time.perf_counter()
        loss = step(d[:, :-1], d[:, 1:]).item()
        times.append(time.perf_counter() - t0)
    peer.gpt_timing(times, loss)


def read_nnc(path):
    """An nnc checkpoint: (the float32 tensors in file order, metadata)."""
    import json
    import struct
    with open(path, "rb") as fh:
        raw = fh.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    body = raw[8 + n:]
    tensors = []
    for name, t in sorted(head.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if name.startswith("optimizer."):
            continue
        if t["dtype"] != "F32":
            sys.exit("gpt_torch.py: %s: %s is %s, not F32" % (path, name, t["dtype"]))
        a, b = t["data_offsets"]
        v = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32)
        tensors.append((name, v.reshape(t["shape"])))
    return tensors, meta


def load_nnc(model, tensors, path):
    params = list(model.named_parameters())
    if len(params) != len(tensors):
        sys.exit("gpt_torch.py: %s has %d tensors, the model %d parameters"
                 % (path, len(tensors), len(params)))
    with torch.no_grad():
        for (pname, prm), (tname, t) in zip(params, tensors):
            if tuple(prm.shape) != tuple(t.shape):
                sys.exit("gpt_torch.py: %s: %s %s does not fit %s %s"
                         % (path, tname, tuple(t.shape), pname, tuple(prm.shape)))
            prm.copy_(t)


def train_mode():
    if not args.text:
        sys.exit("gpt_torch.py train: --text FILE is required")
    with open(args.text, "rb") as fh:
        raw = fh.read()
    init = None
    if args.init:
        init, meta = read_nnc(args.init)
        chars = list(bytes.fromhex(meta.get("vocab", "")))
        rows = init[0][1].shape[0]     # the token embedding's rows
        if not chars or rows < len(chars):
            sys.exit("gpt_torch.py: %s: no vocabulary that fits its embedding" % args.init)
    else:
        chars = sorted(set(raw))
        rows = len(chars)
    stoi = {c: i for i, c in enumerate(chars)}
    if any(c not in stoi for c in set(raw)):
        sys.exit("gpt_torch.py: %s has bytes outside the vocabulary" % args.text)
    data = torch.tensor([stoi[c] for c in raw], dtype=torch.long)
    n = int(0.9 * len(data))
    if args.eval_windows == "even":     # nnc's split: the tail is floor(n / 10) tokens
        n = len(data) - int(math.floor(len(data) * 0.1))
    train_data, val_data = data[:n], data[n:]
    V, B, T = rows, args.batch, args.block
    print("text_bytes %d" % len(raw))
    print("vocab %d" % V)
    print("train_tokens %d" % len(train_data))
    print("val_tokens %d" % len(val_data))
    model = GPT(V, T, args.layers, args.heads, args.width)
    if init is not None:
        load_nnc(model, init, args.init)
        print("init %s" % args.init)
    opt = make_opt(model)
    step = make_step(model, opt)
    gen = torch.Generator().manual_seed(args.seed)
    egen = torch.Generator()
    even = iter(())

    def even_windows():
        """nnc_text_val_offset: window k of nwin at floor(span k / (nwin-1))."""
        nwin, span = args.eval_iters * B, len(val_data) - T - 1
        for k in range(0, nwin, B):
            yield [int(span * (k + j) / (nwin - 1)) if nwin > 1 else 0 for j in range(B)]

    def get_batch(split, g):
        d = train_data if split == "train" else val_data
        if split == "val" and args.eval_windows == "even":
            ix = next(even)
        else:
            ix = torch.randint(len(d) - T, (B,), generator=g)
        x = torch.stack([d[i:i + T] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + T] for i in ix])
        return x, y

    @torch.no_grad()
    def estimate(split):
        nonlocal even
        egen.manual_seed(args.seed + 1)     # the same batches at every evaluation
        even = even_windows()
        model.eval()
        s = sum(model(*get_batch(split, egen)).item() for _ in range(args.eval_iters))
        model.train()
        return s / args.eval_iters

    train_s = eval_s = 0.0
    for it in range(args.steps + 1):
        if it % args.eval_every == 0 or it == args.steps:
            t0 = time.perf_counter()
            vl, tl = estimate("val"), estimate("train")
            eval_s += time.perf_counter() - t0
            print("step %d: train loss %.4f, val loss %.4f, %.1f s training"
                  % (it, tl, vl, train_s))
            print("val_loss_at_%d %.4f" % (it, vl))
            sys.stdout.flush()
        if it == args.steps:
            break
        t0 = time.perf_counter()
        for grp in opt.param_groups:
            grp["lr"] = get_lr(it)
        loss = step(*get_batch("train", gen)).item()
        train_s += time.perf_counter() - t0
    print("train_steps %d" % args.steps)
    print("final_val_loss %.4f" % vl)
    print("final_train_loss %.4f" % tl)
    print("train_wall_s %.2f" % train_s)
    print("eval_wall_s %.2f" % eval_s)
    print("train_step_ms %.3f" % (1e3 * train_s / max(1, args.steps)))
    print("peak_rss_kb %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


time_mode() if args.mode == "time" else train_mode()
