"""peer.py - what the Python peers of the benchmarks (seed_torch.py,
fmnist_torch.py, jax_bench.py) share, so that they time and report
exactly as seed_bench.c and fmnist_bench.c do:

  per_call_us(f, samples)  a call's time in microseconds: the median of
                           `samples` blocks of back-to-back calls lasting
                           about 1 ms each, after a 0.5 s warm-up
  seed_data(batch)         the seed model's synthetic data, as seed_bench.c
                           makes it: 64 batches, a linear teacher's labels
  steady(step, xs, ys, n)  trains n steps cycling through the batches (the
                           steady state before timing); returns the next-
                           batch step function to time, prints the warm-up
  warmup_steps(batch)      $NNC_BENCH_STEPS or 10000, x 32 / batch
  load_fmnist(dir)         the four gzipped IDX files as uint8 arrays
                           (images flattened to 784 columns); prints load_s
  fit(...)                 warm-up steps, the timed epochs (a line each) and
                           the "key value" summary that report.py reads
  torch_glorot(model)      nnc's (Keras') initialization of a torch model
  torch_step(model, crit, compile)
                           the train step with Adam as nnc's, eager or
                           under torch.compile; returns the loss as a float

Imported from the directory of the script that runs (Python puts it
first on sys.path).
"""
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def per_call_us(f, samples):
    t0, calls = time.perf_counter(), 0
    while calls < 10 or time.perf_counter() - t0 < 0.5:
        f()
        calls += 1
    k = max(1, int(1e-3 / ((time.perf_counter() - t0) / calls)))
    s = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(k):
            f()
        s.append((time.perf_counter() - t0) / k * 1e6)
    return median(s)


def splitmix64(seed):
    """seed_bench.c's rng_next stream."""
    m = (1 << 64) - 1
    state = seed
    while True:
        state = (state + 0x9e3779b97f4a7c15) & m
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
        yield z ^ (z >> 31)


def seed_data(batch, pool=64, n_in=10):
    """(xs, ys): pool batches of inputs uniform in [0, 1) and labels
    [w . (x - 0.5) > 0] of a random teacher w, as seed_bench.c makes them
    (the same numbers: splitmix64 from 42, w drawn first)."""
    g = splitmix64(42)
    w = np.array([2.0 * ((next(g) >> 40) / 16777216.0) - 1.0 for _ in range(n_in)])
    x = np.array([(next(g) >> 40) / 16777216.0 for _ in range(pool * batch * n_in)],
                 dtype=np.float32).reshape(pool * batch, n_in)
    y = ((x.astype(np.float64) - 0.5) @ w > 0).astype(np.float32)
    return x.reshape(pool, batch, n_in), y.reshape(pool, batch, 1)


def warmup_steps(batch=32):
    """$NNC_BENCH_STEPS (default 10000) steps at batch 32, scaled to the
    same number of samples at another batch (1250 at 256)."""
    return int(os.environ.get("NNC_BENCH_STEPS") or 10000) * 32 // batch


def steady(step, xs, ys, n):
    """Trains n steps of step(x, y) -> float cycling through the batches,
    prints warmup_steps, warmup_s and the mean loss of the first and last
    64 steps; returns a function doing the next step (to time)."""
    k = [0]

    def nxt():
        i = k[0] % len(xs)
        k[0] += 1
        return step(xs[i], ys[i])

    t0 = time.perf_counter()
    losses = [nxt() for _ in range(n)]
    print("warmup_steps %d" % n)
    print("warmup_s %.3f" % (time.perf_counter() - t0))
    a = min(n, len(xs))
    if a:
        print("warmup_loss_first %.4f" % (sum(losses[:a]) / a))
        print("warmup_loss_last %.4f" % (sum(losses[-a:]) / a))
    sys.stdout.flush()
    return nxt


def idx(path, magic):
    """One IDX file (magic 2051: images, 2049: labels) as a uint8 array."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    m, n = struct.unpack(">II", data[:8])
    assert m == magic, path
    if magic == 2051:
        r, c = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, r * c)
    return np.frombuffer(data, np.uint8, offset=8)


def load_fmnist(data):
    """(train images, train labels, test images, test labels)."""
    t0 = time.perf_counter()
    files = (("train-images-idx3", 2051), ("train-labels-idx1", 2049),
             ("t10k-images-idx3", 2051), ("t10k-labels-idx1", 2049))
    sets = [idx(os.path.join(data, f + "-ubyte.gz"), magic) for f, magic in files]
    print("load_s %.3f" % (time.perf_counter() - t0))
    return sets


def fit_args(p):
    """fit's options, shared by the Fashion-MNIST peers."""
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--warmup-batches", type=int, default=0)
    p.add_argument("--batches", type=int, default=0)


def fit(args, n, B, train, mean, evaluate, permutation):
    """args.warmup steps on the first batches in file order (they compile
    jit peers), then args.warmup_epochs untimed epochs of the first
    args.warmup_batches batches (0: all; the steady state: time is shown
    as first_epoch_s, the fresh-weights figure) and args.epochs timed
    epochs of the first args.batches batches (0: all), each of a fresh
    permutation(n): train(indices) returns a batch's loss as a float (the
    step has finished), mean(list) reduces an epoch's (the time includes
    both), evaluate() gives the test accuracy after the timed epochs.
    Prints a line an epoch, then the summary."""
    t0 = time.perf_counter()
    if args.warmup > 0:
        mean([train(np.arange(b * B, (b + 1) * B)) for b in range(args.warmup)])
    print("warmup_s %.3f" % (time.perf_counter() - t0))
    nb = n // B
    run = min(args.batches, nb) if args.batches > 0 else nb
    wrun = min(args.warmup_batches, nb) if args.warmup_batches > 0 else nb
    for e in range(args.warmup_epochs):
        order = permutation(n)
        t0 = time.perf_counter()
        loss = mean([train(order[b * B:(b + 1) * B]) for b in range(wrun)])
        dt = time.perf_counter() - t0
        print("warm-up epoch %d/%d  %d batches  time %.3f s  loss %.4f (untimed)"
              % (e + 1, args.warmup_epochs, wrun, dt, loss))
        if e == 0:
            print("first_epoch_s %.4f" % (dt * nb / wrun))
        sys.stdout.flush()
    print("warmup_epoch_steps %d" % (args.warmup_epochs * wrun))
    times = []
    for e in range(args.epochs):
        order = permutation(n)
        t0 = time.perf_counter()
        loss = mean([train(order[b * B:(b + 1) * B]) for b in range(run)])
        dt = time.perf_counter() - t0
        times.append(dt)
        print("epoch %d/%d  %d batches  time %.3f s  %.0f samples/s  loss %.4f"
              % (e + 1, args.epochs, run, dt, run * B / dt, loss))
        sys.stdout.flush()
    acc = evaluate()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("batches %d" % run)
    print("epoch_batches %d" % nb)
    print("epoch_s %.4f" % (sum(times) / len(times) * nb / run))
    print("samples_per_s %.1f" % (run * B * len(times) / sum(times)))
    print("train_loss %.4f" % loss)
    print("test_acc %.4f" % acc)
    print("peak_rss_kb %d" % rss)


def torch_glorot(model):
    """Glorot-uniform weights (a conv's fans count its window, as nnc's)
    and zero biases, for each Linear and Conv2d of a Sequential."""
    import torch
    for layer in model:
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def torch_step(model, crit, compile):
    """step(x, y) -> loss (a float, so the step has finished, as nnc's
    train_step returns it): zero_grad, forward, crit, backward, Adam (lr
    1e-3, eps 1e-7). compile "step": the whole step under torch.compile
    (PyTorch 2); "model": the model only (forward and, through AOTAutograd,
    backward), the optimizer eager; None: eager."""
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    fwd = torch.compile(model) if compile == "model" else model

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = crit(fwd(x), y)
        loss.backward()
        opt.step()
        return loss

    if compile == "step":
        step = torch.compile(step)
    return lambda x, y: step(x, y).item()


def gpt_args(p, steps=50):
    """The GPT peers' shape and timing options (bench/gpt_torch.py,
    bench/gpt_jax.py): examples/gpt_char.nn's shape by default."""
    for name, v in (("batch", 12), ("block", 64), ("layers", 4), ("heads", 4),
                    ("width", 128), ("vocab", 65), ("warmup", 20),
                    ("steps", steps), ("seed", 1337)):
        p.add_argument("--" + name, type=int, default=v)


def gpt_timing(times, last_loss):
    """The GPT peers' summary of their timed steps (seconds each)."""
    times = sorted(times)
    print("timed_steps %d" % len(times))
    print("step_ms %.3f" % (1e3 * times[len(times) // 2]))
    print("step_min_ms %.3f" % (1e3 * times[0]))
    print("last_loss %.4f" % last_loss)
    print("peak_rss_kb %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
