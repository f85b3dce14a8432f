#!/usr/bin/env python3
"""gpt_jax.py - the GPT of bench/gpt_torch.py (examples/gpt_char.nn) in JAX,
the whole train step under jax.jit: the JAX jit peer of issue 13's step
target.

    python bench/gpt_jax.py [--batch 12] [--vocab 65] [--warmup 20] [--steps 50]

Same model, initialization, loss and optimizer as gpt_torch.py: 4 layers,
4 heads, width 128, context 64, learned positions, tied head, pre-LayerNorm
(eps 1e-5), causal multi-head self-attention with a packed q/k/v projection
and biases, MLP 4C with exact GELU; optax chain of clip_by_global_norm(1.0)
and adamw(b1 0.9, b2 0.99, eps 1e-8, weight decay 0.1 masked to tensors of
two or more dimensions) with nanoGPT's warm-up + cosine schedule (the step
count lives in the optimizer state, so the schedule does not recompile).
Timing as gpt_torch.py's time mode: random tokens, --warmup untimed steps
(the first compiles), then each step timed on its own, waiting for its
loss (block_until_ready, float). Prints step_ms (median), step_min_ms,
first_step_s (compilation included) and peak_rss_kb.

Threads: XLA's CPU backend uses the CPUs it may run on; run.sh restricts
it with taskset for one-thread rows.
"""
import argparse
import math
import time

import numpy as np
import jax
import jax.numpy as jnp
import optax

import peer

p = argparse.ArgumentParser()
peer.gpt_args(p)
args = p.parse_args()
print("jax_version %s" % jax.__version__)
print("jax_devices %s" % ",".join(str(d) for d in jax.devices()))

B, T, L, H, C, V = args.batch, args.block, args.layers, args.heads, args.width, args.vocab
D = C // H


def init(key):
    ks = iter(jax.random.split(key, 2 + 4 * L))
    n = lambda shape, std: std * jax.random.normal(next(ks), shape, jnp.float32)
    z = lambda *s: jnp.zeros(s, jnp.float32)
    o = lambda *s: jnp.ones(s, jnp.float32)
    sp = 0.02 / math.sqrt(2 * L)
    return {
        "wte": n((V, C), 0.02), "wpe": n((T, C), 0.02),
        "blocks": [{"ln1_w": o(C), "ln1_b": z(C),
                    "in_proj_weight": n((3 * C, C), 0.02), "in_proj_bias": z(3 * C),
                    "out_proj_weight": n((C, C), sp), "out_proj_bias": z(C),
                    "ln2_w": o(C), "ln2_b": z(C),
                    "fc_w": n((4 * C, C), 0.02), "fc_b": z(4 * C),
                    "proj_w": n((C, 4 * C), sp), "proj_b": z(C)} for _ in range(L)],
        "lnf_w": o(C), "lnf_b": z(C)}


def layernorm(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) * jax.lax.rsqrt(v + 1e-5) * w + b


MASK = jnp.tril(jnp.ones((T, T), bool))


def attention(x, p):
    qkv = x @ p["in_proj_weight"].T + p["in_proj_bias"]           # (B, T, 3C)
    q, k, v = jnp.split(qkv, 3, axis=-1)
    heads = lambda t: t.reshape(B, T, H, D).transpose(0, 2, 1, 3)  # (B, H, T, D)
    q, k, v = heads(q), heads(k), heads(v)
    s = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(D)
    s = jnp.where(MASK, s, -jnp.inf)
    o = jax.nn.softmax(s, axis=-1) @ v
    o = o.transpose(0, 2, 1, 3).reshape(B, T, C)
    return o @ p["out_proj_weight"].T + p["out_proj_bias"]


def loss_fn(params, x, y):
    h = params["wte"][x] + params["wpe"][:T]
    for p in params["blocks"]:
        h = h + attention(layernorm(h, p["ln1_w"], p["ln1_b"]), p)
        f = jax.nn.gelu(layernorm(h, p["ln2_w"], p["ln2_b"]) @ p["fc_w"].T + p["fc_b"],
                        approximate=False)
        h = h + f @ p["proj_w"].T + p["proj_b"]
    logits = layernorm(h, params["lnf_w"], params["lnf_b"]) @ params["wte"].T
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def lr(it):
    """nanoGPT's get_lr (warm-up 100, cosine 1e-3 -> 1e-4 at 2000)."""
    warm = 1e-3 * (it + 1) / 101
    ratio = jnp.clip((it - 100) / 1900, 0.0, 1.0)
    cos = 1e-4 + 0.5 * (1.0 + jnp.cos(jnp.pi * ratio)) * (1e-3 - 1e-4)
    return jnp.where(it < 100, warm, cos)


params = init(jax.random.PRNGKey(args.seed))
opt = optax.chain(
    optax.clip_by_global_norm(1.0),
    optax.adamw(lr, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.1,
                mask=jax.tree_util.tree_map(lambda a: a.ndim >= 2, params)))
state = opt.init(params)


@jax.jit
def step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss


rng = np.random.default_rng(args.seed)
data = [rng.integers(0, V, (B, T + 1), dtype=np.int32) for _ in range(16)]
data = [(jnp.asarray(d[:, :-1]), jnp.asarray(d[:, 1:])) for d in data]
print("params %d" % sum(a.size for a in jax.tree_util.tree_leaves(params)))
t0 = time.perf_counter()
params, state, loss = step(params, state, *data[0])
float(jax.block_until_ready(loss))
print("first_step_s %.3f" % (time.perf_counter() - t0))
for i in range(1, args.warmup):
    params, state, loss = step(params, state, *data[i % 16])
    float(jax.block_until_ready(loss))
times = []
for i in range(args.warmup, args.warmup + args.steps):
    t0 = time.perf_counter()
    params, state, loss = step(params, state, *data[i % 16])
    last = float(jax.block_until_ready(loss))
    times.append(time.perf_counter() - t0)
print("warmup_steps %d" % args.warmup)
peer.gpt_timing(times, last)
