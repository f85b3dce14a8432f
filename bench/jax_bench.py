#!/usr/bin/env python3
"""jax_bench.py - the JAX peer: the whole train step under jax.jit.

    python bench/jax_bench.py seed  [--samples R] [--steps N]
    python bench/jax_bench.py fmnist [--model mlp|cnn] [--epochs E]
                                     [--batches N] [--data DIR] [--warmup W]
                                     [--warmup-epochs E] [--warmup-batches N]

seed: examples/seed.nn (10 -> 128 relu -> 64 relu -> 1 sigmoid, binary
cross-entropy computed from the logits, softplus(z) - y z, as nnc fuses
it; Adam lr 1e-3 eps 1e-7 from optax), train step at batch 32 timed like seed_bench.c
(median of R blocks of ~1 ms, per call, microseconds) after N training
steps (--steps, default $NNC_BENCH_STEPS or 10000) on seed_bench.c's data
(peer.seed_data). One step is the jitted update plus waiting for the
loss (block_until_ready) and fetching it as a Python float.

fmnist: --model mlp (default) is bench/fmnist_mlp.nn (784 -> 256 relu ->
128 relu -> 10), --model cnn is bench/fmnist_cnn.nn (the network of
examples/fmnist_cnn.nn, NHWC as in nnc: conv 3x3 32 relu, maxpool 2,
conv 3x3 64 relu, maxpool 2, flatten in (h, w, c) order, dense 128 relu,
dense 10); softmax cross-entropy on logits, Adam lr 1e-3, batch 64, same
data handling as fmnist_torch.py: uint8 pixels kept in memory and scaled
to [0, 1] per batch, one-hot labels, fixed-seed shuffle each epoch, last
partial batch dropped, W warm-up steps (default 10, these compile) on the
first batches, then one untimed epoch (the steady state) before the
timed epochs; --batches N trains only the first N batches of each epoch
and extrapolates the epoch time. Every step waits for its loss
(block_until_ready) and fetches it as a float. Prints the same
"key value" summary as fmnist_bench.c.

Threads: XLA's CPU backend sizes its pools from the CPUs it may run on;
run.sh restricts it with taskset for the one-thread rows.
"""
import argparse
import os
import sys
import time

import numpy as np
import jax
import jax.numpy as jnp
import optax

import peer

p = argparse.ArgumentParser()
p.add_argument("what", choices=["seed", "fmnist"])
p.add_argument("--samples", type=int, default=301)
p.add_argument("--steps", type=int, default=None)
peer.fit_args(p)
p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
p.add_argument("--data", default=os.environ.get(
    "FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
args = p.parse_args()
print("jax_version %s" % jax.__version__)
print("jax_devices %s" % ",".join(str(d) for d in jax.devices()))


def glorot(key, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -lim, lim)


def init(sizes, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    return [(glorot(k, a, b), jnp.zeros((b,), jnp.float32))
            for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def make_step(loss_fn, opt):
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss
    return jax.jit(step, donate_argnums=(0, 1))


if args.what == "seed":
    def bce(params, x, y):
        # from the logits, as nnc fuses bce(sigmoid(z)) (src/passes/
        # losshead.c): the probability form's gradient turns to NaN once
        # sigmoid saturates at 1.0, which training to the steady state does
        z = mlp(params, x)
        return jnp.mean(jax.nn.softplus(z) - y * z)

    opt = optax.adam(1e-3, eps=1e-7)
    st = {"params": init([10, 128, 64, 1], 1234)}
    st["state"] = opt.init(st["params"])
    step = make_step(bce, opt)
    xs, ys = peer.seed_data(32)
    xs, ys = [jnp.asarray(x) for x in xs], [jnp.asarray(y) for y in ys]

    def f(x, y):
        st["params"], st["state"], loss = step(st["params"], st["state"], x, y)
        return float(jax.block_until_ready(loss))

    t0 = time.perf_counter()
    f(xs[0], ys[0])
    print("first_step_b32_us %.1f" % ((time.perf_counter() - t0) * 1e6))
    nxt = peer.steady(f, xs, ys, peer.warmup_steps() if args.steps is None else args.steps)
    print("train_b32_us %.4f" % peer.per_call_us(nxt, args.samples))
    sys.exit(0)

# ---- Fashion-MNIST MLP ------------------------------------------------------


Xtr, Ytr, Xte, Yte = peer.load_fmnist(args.data)
B = 64
eye = np.eye(10, dtype=np.float32)


def glorot_conv(key, k, cin, cout):
    lim = np.sqrt(6.0 / (k * k * cin + k * k * cout))
    return jax.random.uniform(key, (k, k, cin, cout), jnp.float32, -lim, lim)


def cnn_init(seed):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    return [(glorot_conv(k[0], 3, 1, 32), jnp.zeros((32,), jnp.float32)),
            (glorot_conv(k[1], 3, 32, 64), jnp.zeros((64,), jnp.float32)),
            (glorot(k[2], 1600, 128), jnp.zeros((128,), jnp.float32)),
            (glorot(k[3], 128, 10), jnp.zeros((10,), jnp.float32))]


def cnn(params, x):
    x = x.reshape(x.shape[0], 28, 28, 1)
    for w, b in params[:2]:
        x = jax.lax.conv_general_dilated(
            x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = jax.nn.relu(x + b)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max,
                                  (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return mlp(params[2:], x.reshape(x.shape[0], -1))


net = cnn if args.model == "cnn" else mlp


def softmax_ce(params, x, y):
    z = net(params, x)
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(y * z, axis=1))


opt = optax.adam(1e-3, eps=1e-7)
params = cnn_init(1234) if args.model == "cnn" else init([784, 256, 128, 10], 1234)
state = opt.init(params)
step = make_step(softmax_ce, opt)
predict = jax.jit(net)


def train(ix):
    global params, state
    x, y = Xtr[ix].astype(np.float32) * (1.0 / 255.0), eye[Ytr[ix]]
    params, state, loss = step(params, state, x, y)
    return float(jax.block_until_ready(loss))


def evaluate():
    correct = 0
    for i in range(0, Xte.shape[0], 1000):
        z = predict(params, Xte[i:i + 1000].astype(np.float32) * (1.0 / 255.0))
        correct += int(np.sum(np.argmax(np.asarray(z), axis=1) == Yte[i:i + 1000]))
    return correct / Xte.shape[0]


rng = np.random.default_rng(42)
peer.fit(args, Xtr.shape[0], B, train,
         lambda losses: sum(losses) / len(losses), evaluate,
         rng.permutation)
