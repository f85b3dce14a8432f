#!/usr/bin/env python3
"""report.py - turns bench/run.sh's raw.tsv into results.md and a gnuplot
script (bench.gp, drawing bench.png). Standard library only.

    python3 bench/report.py OUTDIR

raw.tsv rows: GROUP IMPL THREADS KEY VALUE (tab-separated); KEY "skipped"
or "failed" carries a reason instead of a figure.
"""
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "bench/out"
rows = []
with open(os.path.join(out, "raw.tsv")) as fh:
    for line in fh:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 5:
            rows.append(parts)

fig = {}        # (group, impl, threads) -> {key: value}
why = {}        # (group, impl) -> reason (skipped), (group, impl, t) -> failed
versions = {}
for g, impl, t, k, v in rows:
    if k == "skipped":
        why[(g, impl)] = "skipped: " + v
        continue
    if k == "failed":
        why[(g, impl, t)] = "failed: " + v
        continue
    if k.endswith("_version"):
        versions[impl] = v
    fig.setdefault((g, impl, t), {})[k] = v

IMPLS = ["nnc", "nnc_keep", "torch", "torch2", "tcompile", "tcompile_model", "jax"]
OPTIONAL = {"nnc_keep"}     # rows shown only when they ran


def label(impl):
    v = versions.get(impl, "")
    return {
        "nnc": "nnc",
        "nnc_keep": "nnc, NNC_DENORMALS=keep",
        "nnc_busy": "nnc, busy loop on CPU 1",
        "torch": "PyTorch eager %s (Debian)" % v,
        "torch2": "PyTorch eager %s (venv)" % v,
        "tcompile": "torch.compile, whole step %s" % v,
        "tcompile_model": "torch.compile, model only %s" % v,
        "jax": "JAX jit %s (optax Adam)" % v,
        "llmc": "llm.c train_gpt2.c",
    }[impl].replace("  ", " ").strip()


SHORT = {"nnc": "nnc", "nnc_keep": "nnc (subnormals kept)", "nnc_busy": "nnc under load",
         "torch": "PyTorch eager", "torch2": "PyTorch 2 eager",
         "tcompile": "torch.compile", "tcompile_model": "torch.compile (model)",
         "jax": "JAX jit", "llmc": "llm.c"}
threads = sorted({t for (_, _, t) in fig if t != "-"}, key=int)


def ran(g):
    """Whether this run measured (or tried to measure) group g."""
    return any(k[0] == g for k in list(fig) + list(why))


parts = None    # run.sh's NNC_BENCH_PARTS, from machine.txt
try:
    with open(os.path.join(out, "machine.txt")) as fh:
        for line in fh:
            if line.startswith("parts: "):
                parts = line[len("parts: "):].split()
except OSError:
    pass


def get(g, impl, t, k):
    try:
        return float(fig[(g, impl, t)][k])
    except (KeyError, ValueError):
        return None


def num(v, unit=""):
    if v is None:
        return "—"
    if v >= 1000:
        s = "%.0f" % v
    elif v >= 100:
        s = "%.1f" % v
    elif v >= 1:
        s = "%.2f" % v
    else:
        s = "%.3f" % v
    return s + unit


def ratio(peer, mine):
    if peer is None or mine is None or mine <= 0:
        return None
    return peer / mine


def rtxt(r):
    return "—" if r is None else ("%.2f×" % r if r < 10 else "%.1f×" % r)


def cell(g, impl, t, k, scale=1.0):
    v = get(g, impl, t, k)
    if v is None:
        return "—"
    v *= scale
    if impl == "nnc":
        return num(v)
    n = get(g, "nnc", t, k)
    r = ratio(v, None if n is None else n * scale)
    return num(v) + (" (%s)" % rtxt(r) if r is not None else "")


def flops(g, k):
    """FLOPs of a model's step (nnc --emit=bench --flops), or None."""
    return get(g, "model", "-", k)


def peak():
    """The one-core peak in GFLOP/s measured by nnc's runtime: the highest
    over the nnc runs (other work on the CPU only lowers it), or None."""
    v = [float(d["peak_gflops"]) for (g, i, t), d in fig.items()
         if i.startswith("nnc") and "peak_gflops" in d]
    return max(v) if v else None


def rate(g, impl, t, key, fkey, per=1.0):
    """`GFLOP/s (N%)` of a step: FLOPs per step / its time (key, in
    seconds x per); N = percent of threads x the one-core peak."""
    f, v, pk = flops(g, fkey), get(g, impl, t, key), peak()
    if f is None or v is None or v <= 0:
        return "—"
    gf = f / (v * per) / 1e9
    if pk is None:
        return "%.1f" % gf
    return "%.1f (%.0f%%)" % (gf, 100.0 * gf / (pk * int(t)))


def shown(g, impl):
    return impl not in OPTIONAL or any(k[0] == g and k[1] == impl for k in fig)


def absent(g, impl, t):
    """Reason a row is missing, or None when it has figures."""
    if (g, impl) in why:
        return why[(g, impl)]
    if (g, impl, t) in why:
        return why[(g, impl, t)]
    if (g, impl, t) not in fig:
        return "not run"
    return None


md = []
w = md.append
w("# nnc benchmarks\n")
try:
    with open(os.path.join(out, "machine.txt")) as fh:
        for line in fh:
            w("- " + line.strip())
except OSError:
    pass
w("")
pk = peak()
w("**Steady state**: every time is taken after training (the seed model "
  "after NNC_BENCH_STEPS train steps, default 10,000, on a teacher's labels; "
  "Fashion-MNIST after one untimed epoch); the figure on fresh weights is "
  "shown beside it. GFLOP/s = FLOPs of the model's train step (counted by "
  "`nnc --emit=bench --flops`) / its time; the percentage is of the "
  "measured peak of one core (%s GFLOP/s, runtime/peak.c) times the "
  "thread count. The machine may be shared: see the load notes.\n"
  % ("—" if pk is None else "%.1f" % pk))
w("Times are medians of many repetitions after a warm-up. In the seed "
  "table a peer's cell reads `time (N×)`, N = peer time / nnc time at "
  "the same thread count, i.e. **how many times faster nnc is** (N < 1: "
  "the peer is faster). One-thread runs are pinned to one CPU with "
  "taskset; nnc gets NNC_NUM_THREADS, PyTorch torch.set_num_threads, "
  "JAX/XLA the CPUs taskset allows.\n")

# ---- GEMM -------------------------------------------------------------------
gemm = os.path.join(out, "gemm_table.md")
if os.path.exists(gemm) and os.path.getsize(gemm) > 0:
    w("## GEMM (nnc_sgemm vs OpenBLAS)\n")
    with open(gemm) as fh:      # its headings go one level down
        w("\n".join("##" + l if l.startswith("# ") else l
                     for l in fh.read().rstrip().split("\n")) + "\n")
elif parts is None or "gemm" in parts:
    w("## GEMM (nnc_sgemm vs OpenBLAS)\n")
    w("No GEMM figures in this run (see notes below).\n")

# ---- Seed model ---------------------------------------------------------------


def seed_table():
    w("## Seed model (examples/seed.nn: 10-128-64-1, Adam, BCE)\n")
    w("µs per call, median. train = one optimizer step (forward, backward, "
      "Adam, loss returned as a float); predict = inference on 1 or 100 "
      "samples; fit = 10 epochs over 1000 random samples at batch 32 "
      "(shuffle and batch gathering included), in ms.\n")
    cols = [("train b32 (µs)", "train_b32_us", 1.0),
            ("GFLOP/s (% peak) b32", "rate:train_b32_us:train_b32_flops", 1.0),
            ("fresh b32 (µs)", "train_b32_fresh_us", 1.0),
            ("train b256 (µs)", "train_b256_us", 1.0),
            ("GFLOP/s (% peak) b256", "rate:train_b256_us:train_b256_flops", 1.0),
            ("predict b1 (µs)", "predict_b1_us", 1.0),
            ("predict b100 (µs)", "predict_b100_us", 1.0),
            ("fit 10 epochs (ms)", "fit_us", 1e-3),
            ("first step b32 (ms)", "first_step_b32_us", 1e-3)]
    w("| implementation | threads | " + " | ".join(c[0] for c in cols) + " |")
    w("|---|---:|" + "---:|" * len(cols))
    for impl in IMPLS:
        if not shown("seed", impl):
            continue
        for t in threads:
            if impl in OPTIONAL and ("seed", impl, t) not in fig:
                continue
            r = absent("seed", impl, t)
            if r is not None:
                if impl != "nnc" and (("seed", impl) in why) and t != threads[0]:
                    continue        # one "skipped" row is enough
                w("| %s | %s | %s |" % (label(impl), t if (("seed", impl) not in why) else "—", r)
                  + " |" * (len(cols) - 1))
                continue
            cells = []
            for _, k, sc in cols:
                if k.startswith("rate:"):
                    _, key, fk = k.split(":")
                    cells.append(rate("seed", impl, t, key, fk, 1e-6))
                elif k in ("first_step_b32_us", "train_b32_fresh_us"):
                    v = get("seed", impl, t, k)
                    cells.append("—" if v is None else num(v * sc))
                else:
                    cells.append(cell("seed", impl, t, k, sc))
            w("| %s | %s | %s |" % (label(impl), t, " | ".join(cells)))
    w("")
    w("train: after the warm-up training (NNC_BENCH_STEPS steps at batch 32, "
      "the same samples at batch 256); fresh: nnc's step on the initial "
      "weights (the context put back every 10 steps). First step: the "
      "first train step of a fresh model, which includes jit/torch.compile "
      "compilation for the compiled peers (nnc compiles ahead of time). "
      "predict uses the trained weights; fit trains fresh models.\n")


if ran("seed"):
    seed_table()

# ---- Fashion-MNIST ------------------------------------------------------------


def fmnist_table(g, title, what):
    w("## %s\n" % title)
    w("Epoch = 937 train steps on shuffled batches of 64 (uint8 pixels scaled "
      "per batch; 10 warm-up steps first, which compile the jit peers, then "
      "one untimed epoch: the timed epoch is the second; `first epoch, fresh` "
      "is the untimed one, from the initial weights); every step waits for "
      "its loss as a float; test "
      "accuracy on the 10000 test images after the epoch(s); peak RSS of the "
      "whole process (getrusage). %s `nnc speedup` = peer epoch time / nnc "
      "epoch time; `RSS / nnc` = peer peak RSS / nnc peak RSS.\n" % what)
    short = sorted({int(get(g, i, t, "batches")) for i in IMPLS for t in threads
                    if get(g, i, t, "batches") is not None
                    and get(g, i, t, "batches") < (get(g, i, t, "epoch_batches") or 0)})
    if short:
        w("**Shortened run**: each epoch trained only its first %s batches "
          "(NNC_BENCH_BATCHES / NNC_BENCH_CNN_BATCHES); the epoch time is "
          "extrapolated to 937 batches and the test accuracy is the one "
          "reached after those batches.\n" % "/".join(str(n) for n in short))
    w("| implementation | threads | epoch (s) | nnc speedup | GFLOP/s (% peak) | "
      "first epoch, fresh (s) | samples/s | "
      "train loss | test acc | peak RSS (MB) | RSS / nnc | warm-up (s) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for impl in IMPLS:
        if not shown(g, impl):
            continue
        for t in threads:
            if impl in OPTIONAL and (g, impl, t) not in fig:
                continue
            r = why.get((g, "all")) or absent(g, impl, t)
            if r is not None:
                if ((g, impl) in why or (g, "all") in why) and t != threads[0]:
                    continue
                w("| %s | %s | %s |" % (label(impl), t, r) + " |" * 9)
                continue
            e = get(g, impl, t, "epoch_s")
            en = get(g, "nnc", t, "epoch_s")
            m = get(g, impl, t, "peak_rss_kb")
            mn = get(g, "nnc", t, "peak_rss_kb")
            acc = get(g, impl, t, "test_acc")
            loss = get(g, impl, t, "train_loss")
            sps = get(g, impl, t, "samples_per_s")
            wu = get(g, impl, t, "warmup_s")
            nb = get(g, impl, t, "epoch_batches")
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(impl), t, num(e),
                "—" if impl == "nnc" else rtxt(ratio(e, en)),
                rate(g, impl, t, "epoch_s", "step_flops", 1.0 / nb) if nb else "—",
                num(get(g, impl, t, "first_epoch_s")),
                "—" if sps is None else "%.0f" % sps,
                "—" if loss is None else "%.4f" % loss,
                "—" if acc is None else "%.2f%%" % (100 * acc),
                "—" if m is None else "%.0f" % (m / 1024),
                "—" if impl == "nnc" else rtxt(ratio(m, mn)),
                num(wu)))
    w("")


if ran("fmnist"):
    fmnist_table("fmnist", "Fashion-MNIST MLP (bench/fmnist_mlp.nn: 784-256-128-10, "
                 "Adam, batch 64)", "")
if ran("cnn"):
    fmnist_table("cnn", "Fashion-MNIST CNN (bench/fmnist_cnn.nn: 28x28x1, conv 3x3 32 relu, maxpool 2, conv 3x3 64 relu, maxpool 2, dense 128 relu, dense 10, Adam, batch 64)",
                 "The network of examples/fmnist_cnn.nn, same layers in every "
                 "framework (PyTorch in NCHW, nnc and JAX in NHWC).")

# ---- GPT (issue 13) ---------------------------------------------------------------


def gpt_why(g, impl):
    return why.get((g, impl)) or why.get((g, impl, "1")) or "not run"


def gpt_table(g, title, text, impls, fkey):
    w("## %s\n" % title)
    w(text + "\n")
    w("| implementation | step (ms) | fastest step (ms) | nnc speedup | "
      "GFLOP/s (% peak) | peak RSS (MB) | RSS / nnc |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    en, mn = get(g, "nnc", "1", "step_ms"), get(g, "nnc", "1", "peak_rss_kb")
    for impl in impls:
        e = get(g, impl, "1", "step_ms")
        if e is None:
            w("| %s | %s | | | | | |" % (label(impl), gpt_why(g, impl)))
            continue
        m = get(g, impl, "1", "peak_rss_kb")
        w("| %s | %s | %s | %s | %s | %s | %s |" % (
            label(impl), num(e), num(get(g, impl, "1", "step_min_ms")),
            "—" if impl == "nnc" else rtxt(ratio(e, en)),
            rate(g, impl, "1", "step_ms", fkey, 1e-3),
            "—" if m is None else "%.0f" % (m / 1024),
            "—" if impl == "nnc" else rtxt(ratio(m, mn))))
    f = flops(g, fkey)
    w("")
    w("FLOPs per step: %s (%s); the same count for every implementation. "
      "One thread, pinned to CPU 0; `nnc speedup` = peer step / nnc step."
      "\n" % ("—" if f is None else "%.3g" % f,
               "nnc --emit=bench --flops" if f is not None else "no count"))


if ran("gpt"):
    gpt_table("gpt", "GPT (examples/gpt_char.nn: 4 layers, 4 heads, width 128, "
              "context 64, batch 12, AdamW, clipping)",
              "One train step (forward, backward, clipping, AdamW, the loss as "
              "a float) in the steady state: nnc's --emit=bench program after "
              "NNC_BENCH_GPT_STEPS training steps (its per-kernel table is in "
              "logs/), the peers (bench/gpt_torch.py, bench/gpt_jax.py) after "
              "20 warm-up steps; step = median of the timed steps.",
              ["nnc", "torch", "tcompile", "jax"], "b12_flops")
if ran("gptllmc"):
    c = fig.get(("gptllmc", "llmc", "1"), {}).get("llmc_commit")
    gpt_table("gptllmc", "GPT at llm.c's shape (batch 4 x 64 tokens, vocabulary "
              "256): nnc vs llm.c's CPU trainer",
              "llm.c: train_gpt2.c%s built with its own flags (-Ofast "
              "-march=native -fopenmp), OMP_NUM_THREADS=1, from a random "
              "initialization in its checkpoint format (bench/llmc.sh); its "
              "step is its own per-step timer (data loader, forward, backward, "
              "AdamW), the median of steps 3-40 of the fastest of 3 runs. nnc: "
              "the example with batch 4 and vocabulary 256."
              % (" at commit %s" % c if c else ""),
              ["nnc", "llmc"], "b4_flops")
if ran("gpttrain"):
    w("## GPT training run (validation loss and wall time)\n")
    w("The example's configuration trained on the same text (the fortunes, "
      "shuffled by scripts/fortunes.sh, unless NNC_BENCH_GPT_TEXT): nnc's "
      "--emit=main program (`train --text`) and bench/gpt_torch.py train "
      "(nanoGPT's loop); both byte characters, the last 10% held out, windows "
      "at random offsets. Validation loss: nnc the mean over 200 batches of "
      "windows evenly spaced over the held-out tail (the same every time), "
      "PyTorch the mean of 200 random batches of it.\n")
    w("Wall time: the whole run (nnc: the program, timed by bench/gpt_nnc.sh; "
      "PyTorch: its training steps plus its evaluations).\n")
    w("| implementation | steps | final validation loss | wall time (s) | tokens/s |")
    w("|---|---:|---:|---:|---:|")
    for impl in ("nnc", "torch"):
        v = get("gpttrain", impl, "1", "final_val_loss")
        if v is None:
            w("| %s | %s | | | |" % (label(impl), gpt_why("gpttrain", impl)))
            continue
        wall = get("gpttrain", impl, "1", "train_wall_s")
        if impl == "torch":
            ev = get("gpttrain", impl, "1", "eval_wall_s")
            wall = None if wall is None else wall + (ev or 0.0)
        st = get("gpttrain", impl, "1", "train_steps")
        if st is None and impl == "nnc":
            st = get("gpttrain", "torch", "1", "train_steps")
        tps = get("gpttrain", impl, "1", "tokens_per_s")
        if tps is None and wall and st:
            tps = st * 12 * 64 / wall
        w("| %s | %s | %.4f | %s | %s |" % (label(impl), "—" if st is None else "%d" % st,
                                            v, num(wall), "—" if tps is None else "%.0f" % tps))
    w("")

# ---- Threads under load ------------------------------------------------------


def load_table():
    rows = [(g, name, key) for g, name, key in
            (("seed", "seed train step b32 (µs)", "train_b32_us"),
             ("fmnist", "MLP epoch (s)", "epoch_s"),
             ("cnn", "CNN epoch (s)", "epoch_s")) if ran(g)]
    if not rows or len(threads) < 2:
        return
    a, b = threads[0], threads[-1]
    w("## Threads, quiet and under load (nnc)\n")
    comp = "a busy loop on CPU 1"
    try:
        with open(os.path.join(out, "machine.txt")) as fh:
            for line in fh:
                if line.startswith("under load: "):
                    comp = "`%s`" % line[len("under load: "):].split(" (")[0]
    except OSError:
        pass
    w("Quiet: the rows above. Under load: the same nnc program with %s "
      "running, started before and killed after; the %s-thread run is "
      "pinned to CPU 0 as always, the %s-thread run may use both CPUs. "
      "ratio = %s-thread time / %s-thread time (< 1: the threads pay).\n"
      % (comp, a, b, b, a))
    w("| model | load | %s thread (%s) | %s threads | ratio %s/%s |" % (a, "time", b, b, a))
    w("|---|---|---:|---:|---:|")
    for g, name, key in rows:
        for impl, what in (("nnc", "quiet"), ("nnc_busy", "busy loop on CPU 1")):
            x, y = get(g, impl, a, key), get(g, impl, b, key)
            if x is None and y is None:
                r = why.get((g, impl)) or "not run"
                w("| %s | %s | %s | | |" % (name, what, r))
                continue
            w("| %s | %s | %s | %s | %s |" % (
                name, what, num(x), num(y),
                "—" if x is None or y is None or x <= 0 else "%.2f" % (y / x)))
    w("")


load_table()

# ---- Targets -------------------------------------------------------------------
w("## Targets (docs: DESIGN.md, Targets)\n")
w("| target | measured | met |")
w("|---|---|---|")


busy = {}
try:
    with open(os.path.join(out, "machine.txt")) as fh:
        for line in fh:
            if line.startswith("other load before "):
                part, pct = line[len("other load before "):].split(":", 1)
                busy[part.strip()] = int(pct.split("%")[0])
except (OSError, ValueError):
    pass


def mb(kb):
    return "—" if kb is None else "%.0f" % (kb / 1024)


def target(name, measured, ok, part=None):
    verdict = "n/a" if ok is None else ("yes" if ok else "**no**")
    if part is not None and busy.get(part, 0) >= 15:
        verdict += " (disturbed: CPUs %d%% busy with other work)" % busy[part]
    w("| %s | %s | %s |" % (name, measured, verdict))


t1 = threads[0] if threads else "1"
for t in threads if ran("seed") else []:
    r = ratio(get("seed", "torch", t, "train_b32_us"), get("seed", "nnc", t, "train_b32_us"))
    target("seed train step b32 ≥ 20× faster than PyTorch eager, %s thread(s)" % t,
           "%s (nnc %s µs, PyTorch %s µs)" % (rtxt(r), num(get("seed", "nnc", t, "train_b32_us")),
                                             num(get("seed", "torch", t, "train_b32_us"))),
           None if r is None else r >= 20, "the seed model")
for impl in ("jax", "tcompile", "tcompile_model") if ran("seed") else []:
    r = ratio(get("seed", impl, t1, "train_b32_us"), get("seed", "nnc", t1, "train_b32_us"))
    target("seed train step b32 faster than %s, %s thread" % (SHORT[impl], t1),
           rtxt(r) if r is not None else (why.get(("seed", impl)) or why.get(("seed", impl, t1)) or "—"),
           None if r is None else r > 1, "the seed model")
p1 = get("seed", "nnc", t1, "predict_b1_us")
if ran("seed"):
    target("seed predict at batch 1 under 1 µs", num(p1, " µs"),
           None if p1 is None else p1 < 1, "the seed model")
    target("seed predict at batch 1 under 0.5 µs (issue 12)", num(p1, " µs"),
           None if p1 is None else p1 < 0.5, "the seed model")
    r = ratio(get("seed", "jax", t1, "train_b32_us"), get("seed", "nnc", t1, "train_b32_us"))
    target("seed train step b32 ≥ 5× faster than JAX jit, 1 thread (issue 12)", rtxt(r),
           None if r is None else r >= 5, "the seed model")
t2 = threads[-1] if threads else "2"
for g, name, part, quiet in (("fmnist", "MLP", "Fashion-MNIST mlp", 1.4),
                             ("cnn", "CNN", "Fashion-MNIST cnn", 1.6)):
    if not ran(g) or t2 == t1:
        continue
    x, y = get(g, "nnc", t1, "epoch_s"), get(g, "nnc", t2, "epoch_s")
    r = ratio(x, y)
    target("%s epoch: %s threads ≥ %.1f× faster than %s, quiet (issue 12)" % (name, t2, quiet, t1),
           rtxt(r), None if r is None else r >= quiet, part)
    x, y = get(g, "nnc_busy", t1, "epoch_s"), get(g, "nnc_busy", t2, "epoch_s")
    r = None if x is None or y is None or x <= 0 else y / x
    target("%s epoch under load: %s threads ≤ 1.1× the %s-thread time (issue 12)" % (name, t2, t1),
           "—" if r is None else "%.2f×" % r, None if r is None else r <= 1.1)
    f, e, pk = flops(g, "step_flops"), get(g, "nnc", t1, "epoch_s"), peak()
    nb = get(g, "nnc", t1, "epoch_batches")
    pct = None if None in (f, e, pk, nb) or e <= 0 else 100.0 * f * nb / e / 1e9 / pk
    target("%s epoch, 1 thread, ≥ 75%% of the measured peak (issue 12)" % name,
           "—" if pct is None else "%.0f%%" % pct, None if pct is None else pct >= 75, part)
for g, name, part in (("fmnist", "MLP", "Fashion-MNIST mlp"),
                      ("cnn", "CNN", "Fashion-MNIST cnn")):
    if not ran(g):
        continue
    r = ratio(get(g, "torch", t1, "epoch_s"), get(g, "nnc", t1, "epoch_s"))
    target("Fashion-MNIST %s epoch ≥ 3× faster than PyTorch, 1 thread" % name,
           "%s (nnc %s s, PyTorch %s s)" % (rtxt(r), num(get(g, "nnc", t1, "epoch_s")),
                                           num(get(g, "torch", t1, "epoch_s"))),
           None if r is None else r >= 3, part)
    a, b = get(g, "nnc", t1, "test_acc"), get(g, "torch", t1, "test_acc")
    target("... to the same test accuracy (within 1 point)",
           "—" if a is None or b is None else "nnc %.2f%%, PyTorch %.2f%%" % (100 * a, 100 * b),
           None if a is None or b is None else a >= b - 0.01)
    r = ratio(get(g, "torch", t1, "peak_rss_kb"), get(g, "nnc", t1, "peak_rss_kb"))
    target("... with at most a third of PyTorch's peak memory",
           "PyTorch/nnc = %s (nnc %s MB, PyTorch %s MB)" % (
               rtxt(r), mb(get(g, "nnc", t1, "peak_rss_kb")),
               mb(get(g, "torch", t1, "peak_rss_kb"))),
           None if r is None else r >= 3, part)
if ran("gpt"):
    en = get("gpt", "nnc", "1", "step_ms")
    r = ratio(get("gpt", "torch", "1", "step_ms"), en)
    target("GPT step b12x64 ≥ 2× faster than PyTorch eager, 1 thread (issue 13)",
           "%s (nnc %s ms, PyTorch %s ms)" % (rtxt(r), num(en), num(get("gpt", "torch", "1", "step_ms"))),
           None if r is None else r >= 2, "the GPT")
    for impl in ("tcompile", "jax"):
        r = ratio(get("gpt", impl, "1", "step_ms"), en)
        target("GPT step faster than %s, 1 thread (issue 13)" % SHORT[impl],
               rtxt(r) if r is not None else gpt_why("gpt", impl),
               None if r is None else r > 1, "the GPT")
    f, pk = flops("gpt", "b12_flops"), peak()
    pct = None if None in (f, en, pk) or en <= 0 else 100.0 * f / (en * 1e-3) / 1e9 / pk
    target("GPT step ≥ 70% of the measured peak, 1 thread (issue 13)",
           "—" if pct is None else "%.0f%%" % pct, None if pct is None else pct >= 70, "the GPT")
    r = ratio(get("gpt", "torch", "1", "peak_rss_kb"), get("gpt", "nnc", "1", "peak_rss_kb"))
    target("GPT: at most a third of PyTorch's peak memory (issue 13)",
           "PyTorch/nnc = %s" % rtxt(r), None if r is None else r >= 3)
if ran("gptllmc"):
    r = ratio(get("gptllmc", "llmc", "1", "step_ms"), get("gptllmc", "nnc", "1", "step_ms"))
    target("GPT at batch 4, vocabulary 256: ≥ 5× faster than llm.c, 1 thread (issue 13)",
           "%s (nnc %s ms, llm.c %s ms)" % (rtxt(r), num(get("gptllmc", "nnc", "1", "step_ms")),
                                           num(get("gptllmc", "llmc", "1", "step_ms"))),
           None if r is None else r >= 5, "the GPT")
if ran("gpttrain"):
    a, b = get("gpttrain", "nnc", "1", "final_val_loss"), get("gpttrain", "torch", "1", "final_val_loss")
    ta = get("gpttrain", "nnc", "1", "train_wall_s")
    tb = get("gpttrain", "torch", "1", "train_wall_s")
    if tb is not None:
        tb += get("gpttrain", "torch", "1", "eval_wall_s") or 0.0
    ok = None if None in (a, b, ta, tb) else (a <= b + 0.03 and ta < tb)
    target("GPT training: validation loss within 0.03 of PyTorch's, in less wall time (issue 13)",
           "—" if a is None or b is None else "nnc %.4f in %s s, PyTorch %.4f in %s s"
           % (a, num(ta), b, num(tb)), ok)
w("")

try:
    with open(os.path.join(out, "notes.txt")) as fh:
        notes = [line.strip() for line in fh if line.strip()]
except OSError:
    notes = []
fails = ["%s / %s / %s thread(s): %s" % (k[0], SHORT.get(k[1], k[1]), k[2], v)
         for k, v in why.items() if len(k) == 3]
if notes or fails:
    w("## Notes\n")
    for n in notes + fails:
        w("- " + n)
    w("")
w("Raw figures: raw.tsv; each program's output: logs/.")

with open(os.path.join(out, "results.md"), "w") as fh:
    fh.write("\n".join(md) + "\n")

# ---- Chart --------------------------------------------------------------------
panels = [("seed", "train_b32_us", 1.0, "Seed model: train step, batch 32 (µs)"),
          ("seed", "fit_us", 1e-3, "Seed model: 10-epoch fit (ms)"),
          ("fmnist", "epoch_s", 1.0, "Fashion-MNIST MLP: epoch (s)"),
          ("cnn", "epoch_s", 1.0, "Fashion-MNIST CNN: epoch (s)")]
panels = [p for p in panels if ran(p[0])] or panels
gp = ["set terminal pngcairo size %d,520 font ',10'" % (100 + 350 * len(panels)),
      "set output 'bench.png'",
      "set style data histograms",
      "set style histogram clustered gap 1",
      "set style fill solid 0.85 border -1",
      "set boxwidth 0.9",
      "set grid ytics",
      "set logscale y",
      "set key top left",
      "set xtics rotate by 25 right scale 0",
      "set datafile missing 'NaN'",
      "set multiplot layout 1,%d title 'nnc vs peers, median times (log scale, lower is better)'" % len(panels)]
for i, (g, k, sc, title) in enumerate(panels):
    impls = [m for m in IMPLS if any(get(g, m, t, k) is not None for t in threads)]
    name = "bench%d.dat" % i
    with open(os.path.join(out, name), "w") as fh:
        for m in impls:
            vals = [get(g, m, t, k) for t in threads]
            fh.write('"%s" %s\n' % (SHORT[m], " ".join(
                "NaN" if v is None else "%g" % (v * sc) for v in vals)))
    gp.append("set title '%s'" % title)
    if not impls:
        gp.append("set label 1 'no data' at graph 0.5,0.5 center")
        gp.append("plot [0:1] NaN notitle")
        gp.append("unset label 1")
        continue
    plots = ["'%s' using %d:xtic(1) title '%s thread%s'" % (
        name, j + 2, t, "" if t == "1" else "s") for j, t in enumerate(threads)]
    gp.append("plot " + ", ".join(plots))
gp.append("unset multiplot")
with open(os.path.join(out, "bench.gp"), "w") as fh:
    fh.write("\n".join(gp) + "\n")
