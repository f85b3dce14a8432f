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

IMPLS = ["nnc", "torch", "torch2", "tcompile", "tcompile_model", "jax"]


def label(impl):
    v = versions.get(impl, "")
    return {
        "nnc": "nnc",
        "torch": "PyTorch eager %s (Debian)" % v,
        "torch2": "PyTorch eager %s (venv)" % v,
        "tcompile": "torch.compile, whole step %s" % v,
        "tcompile_model": "torch.compile, model only %s" % v,
        "jax": "JAX jit %s (optax Adam)" % v,
    }[impl].replace("  ", " ").strip()


SHORT = {"nnc": "nnc", "torch": "PyTorch eager", "torch2": "PyTorch 2 eager",
         "tcompile": "torch.compile", "tcompile_model": "torch.compile (model)",
         "jax": "JAX jit"}
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
            ("train b256 (µs)", "train_b256_us", 1.0),
            ("predict b1 (µs)", "predict_b1_us", 1.0),
            ("predict b100 (µs)", "predict_b100_us", 1.0),
            ("fit 10 epochs (ms)", "fit_us", 1e-3),
            ("first step b32 (ms)", "first_step_b32_us", 1e-3)]
    w("| implementation | threads | " + " | ".join(c[0] for c in cols) + " |")
    w("|---|---:|" + "---:|" * len(cols))
    for impl in IMPLS:
        for t in threads:
            r = absent("seed", impl, t)
            if r is not None:
                if impl != "nnc" and (("seed", impl) in why) and t != threads[0]:
                    continue        # one "skipped" row is enough
                w("| %s | %s | %s |" % (label(impl), t if (("seed", impl) not in why) else "—", r)
                  + " |" * (len(cols) - 1))
                continue
            cells = []
            for _, k, sc in cols:
                if k == "first_step_b32_us":
                    v = get("seed", impl, t, k)
                    cells.append("—" if v is None else num(v * sc))
                else:
                    cells.append(cell("seed", impl, t, k, sc))
            w("| %s | %s | %s |" % (label(impl), t, " | ".join(cells)))
    w("")
    w("First step: the first train step of a fresh model, which includes "
      "jit/torch.compile compilation for the compiled peers (nnc compiles "
      "ahead of time).\n")


if ran("seed"):
    seed_table()

# ---- Fashion-MNIST ------------------------------------------------------------


def fmnist_table(g, title, what):
    w("## %s\n" % title)
    w("Epoch = 937 train steps on shuffled batches of 64 (uint8 pixels scaled "
      "per batch; 10 warm-up steps first, which compile the jit peers); test "
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
    w("| implementation | threads | epoch (s) | nnc speedup | samples/s | "
      "train loss | test acc | peak RSS (MB) | RSS / nnc | warm-up (s) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for impl in IMPLS:
        for t in threads:
            r = why.get((g, "all")) or absent(g, impl, t)
            if r is not None:
                if ((g, impl) in why or (g, "all") in why) and t != threads[0]:
                    continue
                w("| %s | %s | %s |" % (label(impl), t, r) + " |" * 7)
                continue
            e = get(g, impl, t, "epoch_s")
            en = get(g, "nnc", t, "epoch_s")
            m = get(g, impl, t, "peak_rss_kb")
            mn = get(g, "nnc", t, "peak_rss_kb")
            acc = get(g, impl, t, "test_acc")
            loss = get(g, impl, t, "train_loss")
            sps = get(g, impl, t, "samples_per_s")
            wu = get(g, impl, t, "warmup_s")
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(impl), t, num(e),
                "—" if impl == "nnc" else rtxt(ratio(e, en)),
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
