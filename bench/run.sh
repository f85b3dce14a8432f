#!/bin/sh
# bench/run.sh - nnc against its peers, side by side, in one run.
#
#   sh bench/run.sh            # or: make bench
#
# What it measures (see bench/README.md for the method):
#   - GEMM: bench/gemm.sh, when it exists (nnc_sgemm vs OpenBLAS);
#   - the seed model (examples/seed.nn): train step at batch 32 and 256,
#     predict at batch 1 and 100, a 10-epoch fit on 1000 random samples;
#   - the Fashion-MNIST MLP (bench/fmnist_mlp.nn) and CNN
#     (bench/fmnist_cnn.nn, the network of examples/fmnist_cnn.nn): epoch
#     time, test accuracy, peak RSS;
#   - the GPT of examples/gpt_char.nn (part "gpt", issue 13): train step at
#     batch 12 x 64 (nnc --emit=bench, PyTorch eager bench/gpt_torch.py, JAX
#     jit bench/gpt_jax.py, torch.compile when the venv has PyTorch 2), the
#     same model at llm.c's shape against llm.c's train_gpt2.c
#     (bench/llmc.sh, when LLMC_DIR names an llm.c tree), and the 2,000-step
#     training run's validation loss and wall time against PyTorch;
#   - data parallelism (part "mpi", issue 14): the MLP and CNN epochs on 1
#     process and on 2 MPI ranks side by side (tests/mpi/bench.sh; skipped
#     without MPI)
# for nnc, PyTorch eager (Debian's python3-torch), and the compiled peers
# JAX jit and PyTorch 2 torch.compile from a virtual environment (created
# on first use by bench/venv.sh from PyPI; PyTorch 2 eager is shown too,
# as the baseline of torch.compile), at 1 and 2 threads. One-thread runs
# are pinned to CPU 0 with taskset. Every timed figure is in the steady
# state: the seed model after 10,000 training steps (NNC_BENCH_STEPS),
# Fashion-MNIST after one untimed epoch; the fresh-weights figure beside.
# Each model's train step is also reported in GFLOP/s and % of the
# measured one-core peak (FLOPs counted by nnc --emit=bench --flops, the
# peak by the runtime's nnc_peak_gflops), and nnc runs once more at 1 and
# 2 threads with a competing busy loop pinned to CPU 1 (the "under load"
# rows; see bench/README.md).
#
# Writes bench/out/results.md (the tables, also printed), raw.tsv (every
# figure), logs/ (every program's output) and bench.png (gnuplot).
#
# Environment (make bench sets the first six; defaults are derived from
# this script's location, for an in-tree build):
#   NNC, srcdir, builddir, CC, RT_CFLAGS, RT_LIBS
#   PYTHON               python with torch 1.x/2.x eager (/usr/bin/python3)
#   NNC_BENCH_OUT        output directory (builddir/bench/out)
#   NNC_BENCH_VENV       the peers' venv (bench/.venv next to this script)
#   NNC_BENCH_NO_VENV=1  skip the compiled peers (no PyPI access)
#   NNC_BENCH_THREADS    thread counts ("1 2")
#   NNC_BENCH_PARTS      what to run, any of "gemm seed mlp cnn gpt" (all five)
#   NNC_BENCH_EPOCHS     Fashion-MNIST epochs per run (1)
#   NNC_BENCH_BATCHES    train only the first N batches of each Fashion-MNIST
#                        epoch and extrapolate the epoch time (all 937)
#   NNC_BENCH_CNN_BATCHES  the same for the CNN only (NNC_BENCH_BATCHES;
#                        with NNC_BENCH_QUICK=1, 50)
#   NNC_BENCH_STEPS      seed training steps before timing (10000; 1000 with
#                        NNC_BENCH_QUICK=1), at batch 32 (x 32/B at batch B)
#   NNC_BENCH_WARMUP_BATCHES  batches of the untimed Fashion-MNIST epoch
#                        before the timed one (all 937; 50 with NNC_BENCH_QUICK=1)
#   NNC_BENCH_LOAD=0     no rows under load (busy loop on CPU 1)
#   NNC_BENCH_DENORMALS=1  also nnc with NNC_DENORMALS=keep (subnormals kept:
#                        shows the stall that flushing avoids), 1 thread
#   NNC_BENCH_QUICK=1    fewer repetitions (a smoke test, not a benchmark)
#   NNC_BENCH_TIMEOUT    seconds allowed to each program (900)
#   FMNIST_DIR           the gzipped IDX files (/usr/share/datasets/fashion-mnist)
#   LLMC_DIR             an llm.c source tree (git clone of karpathy/llm.c) for
#                        the gpt part's llm.c rows; unset: skipped, with a note
#   NNC_BENCH_GPT_NN     the GPT model (examples/gpt_char.nn)
#   NNC_BENCH_GPT_TEXT   its training text (the fortunes package's English
#                        fortunes, shuffled by scripts/fortunes.sh)
#   NNC_BENCH_GPT_STEPS  train steps before timing a GPT step (200: --emit=bench's
#                        own default warm-up, 5000 steps, is far longer)
#   NNC_BENCH_GPT_TRAIN  steps of the training comparison (2000; 200 with
#                        NNC_BENCH_QUICK=1; 0 skips it)
set -u

here=$(cd "$(dirname "$0")" && pwd)
abspath() { (cd "$1" 2>/dev/null && pwd) || echo "$1"; }
srcdir=$(abspath "${srcdir:-$here/..}")
builddir=$(abspath "${builddir:-$srcdir}")
NNC=${NNC:-$builddir/nnc}
case $NNC in /*) ;; */*) NNC=$(pwd)/$NNC ;; esac
CC=${CC:-cc}
RT_CFLAGS=${RT_CFLAGS:--I$srcdir/runtime}
RT_LIBS=${RT_LIBS:-$builddir/.libs/libnncrt.a -lcjson -lm}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
out=${NNC_BENCH_OUT:-$builddir/bench/out}
venv=${NNC_BENCH_VENV:-$here/.venv}
threads=${NNC_BENCH_THREADS:-1 2}
epochs=${NNC_BENCH_EPOCHS:-1}
parts=" ${NNC_BENCH_PARTS:-gemm seed mlp cnn gpt mpi} "
want() { case $parts in *" $1 "*) return 0 ;; esac; return 1; }
for p in $parts; do
    case $p in gemm|seed|mlp|cnn|gpt|mpi) ;;
    *) echo "bench: NNC_BENCH_PARTS: unknown part '$p' (gemm seed mlp cnn gpt mpi)" >&2; exit 2 ;;
    esac
done
limit=${NNC_BENCH_TIMEOUT:-900}
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
export FMNIST_DIR JAX_PLATFORMS=cpu
if [ "${NNC_BENCH_QUICK:-0}" = 1 ]; then
    samples=31 fitruns=3 cnn_default=50 steps_default=1000 wb_default=50
else
    samples=301 fitruns=21 cnn_default=0 steps_default=10000 wb_default=0
fi
NNC_BENCH_STEPS=${NNC_BENCH_STEPS:-$steps_default}
export NNC_BENCH_STEPS
warm_batches=${NNC_BENCH_WARMUP_BATCHES:-$wb_default}
mlp_batches=${NNC_BENCH_BATCHES:-0}
cnn_batches=${NNC_BENCH_CNN_BATCHES:-${NNC_BENCH_BATCHES:-$cnn_default}}
for v in "$mlp_batches" "$cnn_batches" "$epochs" "$NNC_BENCH_STEPS" "$warm_batches"; do
    case $v in ''|*[!0-9]*) echo "bench: NNC_BENCH_EPOCHS, NNC_BENCH_STEPS and NNC_BENCH_*BATCHES take a number, not '$v'" >&2; exit 2 ;; esac
done

mkdir -p "$out/logs" || exit 1
rm -f "$out"/logs/* "$out/raw.tsv" "$out/results.md" "$out/gemm_table.md" \
    "$out"/bench.*
raw=$out/raw.tsv
: > "$raw"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc-bench.XXXXXX") || exit 1
busy_pid=
trap 'stop_load; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
start=$(date +%s)

say() { echo "bench: $*" >&2; }
note() { printf '%s\n' "$*" >>"$out/notes.txt"; say "$*"; }
: > "$out/notes.txt"

# record GROUP IMPL THREADS KEY VALUE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$raw"; }

# run GROUP IMPL THREADS CMD...: run under the thread settings, keep the
# output, record its "key value" lines, or record why it failed.
run() {
    g=$1 impl=$2 t=$3
    shift 3
    log=$out/logs/$g-$impl-t$t
    n=2
    while [ -e "$log.out" ]; do log=$out/logs/$g-$impl-t$t-$n; n=$((n + 1)); done
    pin=
    if [ "$t" = 1 ] && command -v taskset >/dev/null 2>&1; then
        pin="taskset -c 0"
    fi
    say "$g / $impl / $t thread(s): $*"
    NNC_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
        MKL_NUM_THREADS=$t timeout "$limit" $pin "$@" >"$log.out" 2>"$log.err"
    rc=$?
    grep -E '^[a-z][a-z0-9_]* [^ ]+$' "$log.out" | while read -r k v; do
        record "$g" "$impl" "$t" "$k" "$v"
    done
    if [ $rc -ne 0 ]; then
        if [ $rc -eq 124 ]; then why="timed out after ${limit}s"
        else why="exit status $rc: $(grep -v '^W[0-9]' "$log.err" | tail -n 1 | cut -c1-120)"
        fi
        record "$g" "$impl" "$t" failed "$why"
        say "  failed ($why); see $log.err"
    fi
}

# skip GROUP IMPL REASON
skip() { record "$1" "$2" - skipped "$3"; say "$1 / $2 skipped: $3"; }

# busy WHAT: how busy the CPUs are with other work just before WHAT (one
# second of /proc/stat; none of ours runs then). The machine may be shared;
# a busy CPU spoils the figures, the two-thread ones most.
busy() {
    [ -r /proc/stat ] || return 0
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    pct=$(echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d + 0.5) : 0)}')
    echo "other load before $1: ${pct}% of all CPUs busy (load average $(cut -d' ' -f1-3 /proc/loadavg))" >>"$out/machine.txt"
    [ "$pct" -lt 15 ] || note "the CPUs were ${pct}% busy with other work before $1: its figures are disturbed (2-thread ones most)"
    cpus "$1"
}

# cpus WHAT: how the first two CPUs relate just before WHAT (bench/cpus.c:
# a cache line's round trip between them, an FMA loop on one alone and on
# both at once). A VM's host may move its CPUs between cores sharing an
# L3, cores that do not, and one core's hyperthreads, from minute to
# minute; 2-thread and 2-rank figures follow.
cpus() {
    [ -x "$tmp/cpus" ] || return 0
    "$tmp/cpus" >"$tmp/cpus.out" 2>/dev/null || return 0
    rt=$(sed -n 's/^round_trip_ns //p' "$tmp/cpus.out")
    [ -n "$rt" ] || return 0
    echo "CPUs $(sed -n 's/^cpus //p' "$tmp/cpus.out") before $1: a cache line's round trip $rt ns;" \
        "FMA loop $(sed -n 's/^fma_alone //p' "$tmp/cpus.out") GFLOP/s alone," \
        "$(sed -n 's/^fma_both //p' "$tmp/cpus.out" | sed 's/ / and /') both at once" >>"$out/machine.txt"
    # the GPT part runs on one thread only
    case "$1" in *GPT*) return 0 ;; esac
    [ "$rt" -lt 200 ] || note "before $1 a cache line took $rt ns to go between the two CPUs and back (no nearby shared cache, e.g. another CCX or socket on the VM's host): its 2-thread figures are held back"
}

# ---- Under load ----------------------------------------------------------------
# A competing process: a shell busy loop pinned to CPU 1, started before
# and killed after the runs under load (the one-thread run stays on CPU 0).
load_cmd="taskset -c 1 sh -c 'while :; do :; done'"
start_load() {
    taskset -c 1 sh -c 'while :; do :; done' &
    busy_pid=$!
}
stop_load() {
    if [ -n "$busy_pid" ]; then
        kill "$busy_pid" 2>/dev/null
        wait "$busy_pid" 2>/dev/null
        busy_pid=
    fi
}
# loaded GROUP CMD...: nnc at every thread count with the busy loop running
loaded() {
    lg=$1
    shift
    if [ "${NNC_BENCH_LOAD:-1}" = 0 ]; then
        return 0
    elif ! command -v taskset >/dev/null 2>&1 || [ "$(nproc 2>/dev/null || echo 1)" -lt 2 ]; then
        skip "$lg" nnc_busy "needs taskset and 2 CPUs"
        return 0
    fi
    start_load
    for t in $threads; do
        run "$lg" nnc_busy "$t" "$@"
    done
    stop_load
}
# keep GROUP CMD...: nnc at 1 thread with NNC_DENORMALS=keep (optional)
keep() {
    [ "${NNC_BENCH_DENORMALS:-0}" = 1 ] || return 0
    old_dn=${NNC_DENORMALS-}
    NNC_DENORMALS=keep
    export NNC_DENORMALS
    run "$@"
    if [ -n "$old_dn" ]; then NNC_DENORMALS=$old_dn; else unset NNC_DENORMALS; fi
}

# ---- Machine ---------------------------------------------------------------
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc 2>/dev/null || echo '?') cores"
    echo "cc: $($CC --version 2>/dev/null | head -n 1)"
    echo "nnc: $("$NNC" --version 2>/dev/null | head -n 1) (git $(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "parts:$parts"
    echo "steady state: seed after $NNC_BENCH_STEPS train steps (x 32/B at batch B), Fashion-MNIST after an untimed epoch of $( [ "$warm_batches" = 0 ] && echo all || echo "$warm_batches") batches"
    echo "under load: $load_cmd (competitor on CPU 1; one-thread runs on CPU 0)"
    echo "denormals: NNC_DENORMALS=${NNC_DENORMALS:-(unset)}$( [ "${NNC_BENCH_DENORMALS:-0}" = 1 ] && echo '; rows with NNC_DENORMALS=keep too')"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

# ---- Build the nnc programs -------------------------------------------------
# Link with OpenMP when the runtime was built with it.
extra=
for w in $RT_LIBS; do
    case $w in
    *.a) if [ -f "$w" ] && nm "$w" 2>/dev/null | grep -q 'GOMP_\|omp_get'; then
             extra=-fopenmp
         fi ;;
    esac
done
case " $RT_LIBS " in *" -fopenmp "*) extra= ;; esac
echo "runtime: $RT_LIBS $extra" >>"$out/machine.txt"

# Generated code is built as the README recommends: -O3 (gcc 12's -O2
# vectorizes almost no loops) for this machine (-march=native).
NNC_BENCH_CFLAGS=${NNC_BENCH_CFLAGS:--O3 -march=native}
echo "generated code built with: $NNC_BENCH_CFLAGS" >>"$out/machine.txt"
$CC -O2 -march=native -pthread -o "$tmp/cpus" "$here/cpus.c" 2>/dev/null ||
    $CC -O2 -pthread -o "$tmp/cpus" "$here/cpus.c" 2>/dev/null || rm -f "$tmp/cpus"

build() {  # build NAME NN-FILE PREFIX MAIN.c [LIBS]
    mkdir -p "$tmp/$1" &&
    "$NNC" "$2" --prefix "$3" -o "$tmp/$1/$3.c" &&
    $CC -std=c99 $NNC_BENCH_CFLAGS -I"$tmp/$1" $RT_CFLAGS $extra -o "$tmp/$1/bin" \
        "$4" "$tmp/$1/$3.c" $RT_LIBS ${5:-} -lm
}
sed 's/^\( *batch \)32/\1256/' "$srcdir/examples/seed.nn" >"$tmp/seed256.nn"
if ! grep -q 'batch 256' "$tmp/seed256.nn"; then
    say "cannot make the batch-256 copy of examples/seed.nn"; exit 1
fi
if want seed; then
    build seed32 "$srcdir/examples/seed.nn" seed "$here/seed_bench.c" || {
        say "cannot build the seed benchmark"; exit 1; }
    build seed256 "$tmp/seed256.nn" seed "$here/seed_bench.c" || {
        say "cannot build the seed benchmark (batch 256)"; exit 1; }
fi
# The Fashion-MNIST models share one driver, fmnist_bench.c (prefix m).
have_fmnist=1
if ! want mlp && ! want cnn; then
    have_fmnist=0
elif ! { build fmnist "$here/fmnist_mlp.nn" m "$here/fmnist_bench.c" -lz &&
         build cnn "$here/fmnist_cnn.nn" m "$here/fmnist_bench.c" -lz; }; then
    have_fmnist=0
    note "Fashion-MNIST: cannot build bench/fmnist_bench.c (zlib missing? apt-get install zlib1g-dev)"
elif [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ]; then
    have_fmnist=0
    note "Fashion-MNIST: no data in $FMNIST_DIR (apt-get install dataset-fashion-mnist)"
fi

# ---- FLOPs per step and per-kernel tables (nnc --emit=bench) -------------------
# kernels NAME NN-FILE GROUP STEP-KEY [--steps N]: the model's FLOPs per train
# step (recorded as GROUP model - STEP-KEY) and per predicted sample, and its
# per-kernel table after the warm-up at one thread (logs/kernels-NAME.txt).
kernels() {
    kd=$tmp/kernels-$1
    mkdir -p "$kd" &&
    "$NNC" "$2" --emit=bench --prefix m -o "$kd/bench.c" &&
    $CC -std=c99 $NNC_BENCH_CFLAGS $RT_CFLAGS $extra -o "$kd/bin" "$kd/bench.c" $RT_LIBS -lm || {
        note "$1: cannot build nnc --emit=bench (no FLOP counts: no GFLOP/s)"; return 0; }
    kg=$3 kk=$4
    shift 4
    "$kd/bin" --flops | while read -r k v; do
        case $k in
        train_step_flops) record "$kg" model - "$kk" "$v" ;;
        predict_flops_per_sample) record "$kg" model - predict_flops_per_sample "$v" ;;
        esac
    done
    NNC_NUM_THREADS=1 timeout "$limit" taskset -c 0 "$kd/bin" 0.2 "$@" \
        >"$out/logs/kernels-$(basename "$kd" | sed 's/^kernels-//').txt" 2>&1 ||
        say "kernel table of $kg failed; see logs/"
}
qsteps=
[ "${NNC_BENCH_QUICK:-0}" = 1 ] && qsteps="--steps 50"
want seed && kernels seed32 "$srcdir/examples/seed.nn" seed train_b32_flops --steps "$NNC_BENCH_STEPS"
want seed && kernels seed256 "$tmp/seed256.nn" seed train_b256_flops --steps $((NNC_BENCH_STEPS / 8))
want mlp && kernels mlp "$here/fmnist_mlp.nn" fmnist step_flops $qsteps
want cnn && kernels cnn "$here/fmnist_cnn.nn" cnn step_flops $qsteps

# ---- GEMM ------------------------------------------------------------------
# gemm.sh keeps its own files in bench/out; its table (stdout) is copied
# into results.md.
if ! want gemm; then
    :
elif [ -f "$here/gemm.sh" ]; then
    say "GEMM: sh bench/gemm.sh"
    busy gemm
    NNC=$NNC srcdir=$srcdir builddir=$builddir CC=$CC RT_CFLAGS=$RT_CFLAGS \
        RT_LIBS=$RT_LIBS NNC_BENCH_OUT=$out timeout "$limit" \
        sh "$here/gemm.sh" >"$out/gemm_table.md" 2>"$out/logs/gemm.err" ||
        note "GEMM: bench/gemm.sh failed (exit $?); see logs/gemm.err"
else
    note "GEMM: bench/gemm.sh does not exist yet; no GEMM figures in this run"
fi

# ---- The peers' environment ---------------------------------------------------
have_torch=0
if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    have_torch=1
fi
peers_status=
if [ "${NNC_BENCH_NO_VENV:-0}" = 1 ]; then
    peers_status="NNC_BENCH_NO_VENV=1"
elif [ ! -f "$venv/status" ] || grep -q failed "$venv/status"; then
    say "setting up the compiled peers in $venv (one-time; PyPI)"
    t0=$(date +%s)
    sh "$here/venv.sh" "$venv" >&2 || peers_status="cannot create the virtual environment"
    say "peer setup took $(( $(date +%s) - t0 )) s"
fi
peer_ok() {  # peer_ok jax|torch -> 0 if usable; sets why
    if [ -n "$peers_status" ]; then why=$peers_status; return 1; fi
    if grep -q "^$1 ok" "$venv/status" 2>/dev/null; then return 0; fi
    why=$(grep "^$1 " "$venv/status" 2>/dev/null | sed "s/^$1 //")
    [ -n "$why" ] || why="not installed"
    return 1
}
vpy=$venv/bin/python

# ---- Seed model -------------------------------------------------------------
want seed && busy "the seed model"
want seed && for t in $threads; do
    run seed nnc "$t" "$tmp/seed32/bin" --samples $samples --fit-runs $fitruns
    run seed nnc "$t" "$tmp/seed256/bin" train --samples $samples
    if [ $have_torch = 1 ]; then
        run seed torch "$t" "$PYTHON" "$here/seed_torch.py" --threads "$t" \
            --samples $samples --fit-runs $(( (fitruns + 1) / 2 ))
    fi
    if peer_ok torch; then
        run seed torch2 "$t" "$vpy" "$here/seed_torch.py" --threads "$t" \
            --samples $samples --fit-runs $(( (fitruns + 1) / 2 ))
        run seed tcompile "$t" "$vpy" "$here/seed_torch.py" --threads "$t" \
            --compile step --batches 32 --samples $samples train
        run seed tcompile_model "$t" "$vpy" "$here/seed_torch.py" --threads "$t" \
            --compile model --batches 32 --samples $samples train
    fi
    if peer_ok jax; then
        run seed jax "$t" "$vpy" "$here/jax_bench.py" seed --samples $samples
    fi
done
if want seed; then
    loaded seed "$tmp/seed32/bin" train --samples $samples
    keep seed nnc_keep 1 "$tmp/seed32/bin" train predict --samples $samples
    [ $have_torch = 1 ] || skip seed torch "no torch for $PYTHON (apt-get install python3-torch)"
    peer_ok torch || { skip seed torch2 "$why"; skip seed tcompile "$why"; skip seed tcompile_model "$why"; }
    peer_ok jax || skip seed jax "$why"
fi

# ---- Fashion-MNIST MLP and CNN ---------------------------------------------------
# fmnist GROUP MODEL BATCHES: every implementation at every thread count.
fmnist() {
    g=$1 m=$2 nb=$3
    busy "Fashion-MNIST $m"
    for t in $threads; do
        run "$g" nnc "$t" "$tmp/$g/bin" --epochs "$epochs" --batches "$nb" \
            --warmup-batches "$warm_batches"
        if [ $have_torch = 1 ]; then
            run "$g" torch "$t" "$PYTHON" "$here/fmnist_torch.py" --model "$m" \
                --threads "$t" --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches"
        fi
        if peer_ok torch; then
            run "$g" torch2 "$t" "$vpy" "$here/fmnist_torch.py" --model "$m" \
                --threads "$t" --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches"
            run "$g" tcompile "$t" "$vpy" "$here/fmnist_torch.py" --model "$m" \
                --threads "$t" --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches" \
                --compile step
            run "$g" tcompile_model "$t" "$vpy" "$here/fmnist_torch.py" --model "$m" \
                --threads "$t" --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches" \
                --compile model
        fi
        if peer_ok jax; then
            run "$g" jax "$t" "$vpy" "$here/jax_bench.py" fmnist --model "$m" \
                --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches"
        fi
    done
    loaded "$g" "$tmp/$g/bin" --epochs "$epochs" --batches "$nb" --warmup-batches "$warm_batches"
    keep "$g" nnc_keep 1 "$tmp/$g/bin" --epochs "$epochs" --batches "$nb" \
        --warmup-batches "$warm_batches"
    [ $have_torch = 1 ] || skip "$g" torch "no torch for $PYTHON (apt-get install python3-torch)"
    peer_ok torch || { skip "$g" torch2 "$why"; skip "$g" tcompile "$why"; skip "$g" tcompile_model "$why"; }
    peer_ok jax || skip "$g" jax "$why"
}
for part in mlp cnn; do
    want $part || continue
    g=fmnist nb=$mlp_batches
    [ $part = cnn ] && g=cnn nb=$cnn_batches
    if [ $have_fmnist = 1 ]; then
        fmnist $g $part "$nb"
    else
        skip $g all "Fashion-MNIST unavailable (see notes)"
    fi
done

# ---- GPT (issue 13) -------------------------------------------------------------
# Groups: gpt (the example at batch 12 x 64, one thread), gptllmc (the same
# model at llm.c's shape: batch 4, vocabulary 256; nnc and llm.c), gpttrain
# (the training run: validation loss and wall time, nnc and PyTorch).
gpt_part() {
    gpt_nn=${NNC_BENCH_GPT_NN:-$srcdir/examples/gpt_char.nn}
    gsteps=${NNC_BENCH_GPT_STEPS:-200}
    gtrain=${NNC_BENCH_GPT_TRAIN:-2000}
    gsecs=0.5
    if [ "${NNC_BENCH_QUICK:-0}" = 1 ]; then
        gsecs=0.2
        gtrain=${NNC_BENCH_GPT_TRAIN:-200}
    fi
    # PyTorch's matrix products go to the BLAS that libblas.so.3 is; Debian's
    # reference BLAS makes it ~10x slower. Use OpenBLAS when installed.
    gpt_env=
    ma=$($CC -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    ob=/usr/lib/$ma/openblas-pthread
    case $(readlink -f "/usr/lib/$ma/libblas.so.3" 2>/dev/null) in
    */openblas*) echo "PyTorch's BLAS: OpenBLAS (libblas.so.3)" >>"$out/machine.txt" ;;
    *) if [ -f "$ob/libblas.so.3" ]; then
           gpt_env="LD_LIBRARY_PATH=$ob${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
           echo "PyTorch's BLAS: OpenBLAS from $ob (LD_LIBRARY_PATH; libblas.so.3 is the reference BLAS)" >>"$out/machine.txt"
       else
           note "gpt: PyTorch uses the reference BLAS (libblas.so.3): its GPT figures are ~10x too slow; apt-get install libopenblas0-pthread"
       fi ;;
    esac
    # The text (training comparison, llm.c's token files).
    gtext=${NNC_BENCH_GPT_TEXT:-}
    if [ -z "$gtext" ]; then
        gtext=$tmp/gpt_text.txt
        # the fortunes, shuffled deterministically (the demo's and README's text)
        sh "$srcdir/scripts/fortunes.sh" >"$gtext" 2>/dev/null
        if [ ! -s "$gtext" ]; then
            cat "$srcdir/README.md" >"$gtext"
            note "gpt: no fortunes (apt-get install fortunes): training text is README.md"
        fi
    fi
    echo "gpt text: $gtext ($(wc -c <"$gtext") bytes)" >>"$out/machine.txt"
    gvocab=$(sed -n 's/.*vocab *= *\([0-9][0-9]*\).*/\1/p' "$gpt_nn" 2>/dev/null | head -n 1)
    gvocab=${gvocab:-65}
    # nnc: --emit=bench of the example, and of its llm.c-shaped copy
    # (batch 4, vocabulary 256)
    # (batch, the embedding's vocab=, the tied head's units; not its width)
    sed -e 's/^\( *batch \)[0-9][0-9]*/\14/' -e "s/vocab *= *$gvocab\([^0-9]\)/vocab=256\1/" \
        -e "/tied *=/s/\([(,] *\)$gvocab\( *[,)]\)/\1256\2/" \
        "$gpt_nn" >"$tmp/gpt_llmc.nn" 2>/dev/null
    have_gpt=0 have_gpt4=0
    if [ ! -f "$gpt_nn" ]; then
        skip gpt nnc "no $gpt_nn"
    elif gbench gpt "$gpt_nn" gpt b12_flops; then
        have_gpt=1
    fi
    if [ $have_gpt = 1 ] && gbench gpt4 "$tmp/gpt_llmc.nn" gptllmc b4_flops; then
        have_gpt4=1
    fi
    busy "the GPT"
    # the train step at batch 12 x 64, one thread
    if [ $have_gpt = 1 ]; then
        run gpt nnc 1 sh "$here/gpt_nnc.sh" "$tmp/gbench-gpt/bin" "$gsteps" "$gsecs"
    fi
    if [ $have_torch = 1 ]; then
        run gpt torch 1 env $gpt_env "$PYTHON" "$here/gpt_torch.py" time --threads 1 \
            --vocab "$gvocab" --warmup 20 --steps 50
        # the hand count of FLOPs when nnc has none
        if [ -z "$(get_raw gpt model b12_flops)" ]; then
            f=$(get_raw gpt torch train_step_flops_est)
            [ -n "$f" ] && record gpt model - b12_flops "$f" &&
                note "gpt: FLOPs per step from gpt_torch.py's hand count (nnc --emit=bench --flops unavailable)"
        fi
    else
        skip gpt torch "no torch for $PYTHON (apt-get install python3-torch)"
    fi
    if peer_ok torch; then
        run gpt tcompile 1 "$vpy" "$here/gpt_torch.py" time --compile --threads 1 \
            --vocab "$gvocab" --warmup 20 --steps 50
    else
        skip gpt tcompile "$why"
    fi
    if peer_ok jax; then
        run gpt jax 1 "$vpy" "$here/gpt_jax.py" --vocab "$gvocab" --warmup 20 --steps 50
    else
        skip gpt jax "$why"
    fi
    # llm.c's shape: batch 4 x 64, vocabulary 256
    if [ $have_gpt4 = 1 ]; then
        run gptllmc nnc 1 sh "$here/gpt_nnc.sh" "$tmp/gbench-gpt4/bin" "$gsteps" "$gsecs"
    fi
    if [ -n "${LLMC_DIR:-}" ]; then
        run gptllmc llmc 1 env LLMC_TEXT="$gtext" PYTHON="$PYTHON" sh "$here/llmc.sh"
    else
        skip gptllmc llmc "set LLMC_DIR to an llm.c source tree (bench/README.md names the tested commit)"
    fi
    # the training comparison
    if [ "$gtrain" -gt 0 ]; then
        if [ $have_torch = 1 ]; then
            run gpttrain torch 1 env $gpt_env "$PYTHON" "$here/gpt_torch.py" train \
                --threads 1 --text "$gtext" --steps "$gtrain" \
                --eval-every "${NNC_BENCH_GPT_EVAL_EVERY:-250}" --eval-iters "${NNC_BENCH_GPT_EVAL_BATCHES:-200}"
        fi
        mkdir -p "$tmp/gmain"
        if "$NNC" "$gpt_nn" --emit=main --prefix m -o "$tmp/gmain/main.c" 2>"$out/logs/gpt-main-nnc.err" &&
           $CC -std=c99 $NNC_BENCH_CFLAGS $RT_CFLAGS $extra -o "$tmp/gmain/bin" "$tmp/gmain/main.c" \
               $RT_LIBS -lz -lm 2>>"$out/logs/gpt-main-nnc.err"; then
            run gpttrain nnc 1 sh "$here/gpt_nnc.sh" train "$tmp/gmain/bin" "$gtext" "$gtrain"
        else
            skip gpttrain nnc "nnc cannot build $(basename "$gpt_nn") with --emit=main yet: $(head -n 1 "$out/logs/gpt-main-nnc.err" | cut -c1-120)"
        fi
    fi
}
# get_raw GROUP IMPL KEY: a recorded value (any thread count), or nothing
get_raw() { awk -F '\t' -v g="$1" -v i="$2" -v k="$3" '$1 == g && $2 == i && $4 == k { v = $5 } END { if (v != "") print v }' "$raw"; }
# gbench NAME NN-FILE GROUP FLOPS-KEY: nnc --emit=bench of NN-FILE into
# $tmp/gbench-NAME/bin, its FLOPs per train step recorded as GROUP model -
# FLOPS-KEY; on failure, the group's nnc row says why.
gbench() {
    gd=$tmp/gbench-$1
    mkdir -p "$gd"
    if ! "$NNC" "$2" --emit=bench --prefix m -o "$gd/bench.c" 2>"$gd/nnc.err"; then
        cp "$gd/nnc.err" "$out/logs/gbench-$1-nnc.err"
        skip "$3" nnc "nnc cannot compile $(basename "$2") yet: $(grep -m1 error "$gd/nnc.err" | cut -c1-140)"
        return 1
    fi
    if ! $CC -std=c99 $NNC_BENCH_CFLAGS $RT_CFLAGS $extra -o "$gd/bin" "$gd/bench.c" $RT_LIBS -lm \
            2>"$out/logs/gbench-$1-cc.err"; then
        skip "$3" nnc "cannot build its --emit=bench program (logs/gbench-$1-cc.err)"
        return 1
    fi
    "$gd/bin" --flops | while read -r k v; do
        [ "$k" = train_step_flops ] && record "$3" model - "$4" "$v"
    done
    return 0
}
want gpt && gpt_part

# ---- Data parallelism (part "mpi", issue 14) -----------------------------------
# The Fashion-MNIST MLP and CNN on 1 process and on 2 ranks of one thread
# each, side by side (tests/mpi/bench.sh, also `make bench-mpi`): seconds
# per epoch, rank 0's step, its wait for the sums, a blocking allreduce
# of the gradients and the part of it hidden behind the backward pass.
if want mpi; then
    echo "== mpi: 1 and 2 ranks, $epochs epoch(s)"
    EPOCHS=$epochs $SHELL "$srcdir/tests/mpi/bench.sh" > "$out/mpi.txt" 2>&1
    case $? in
    0) cat "$out/mpi.txt" ;;
    77) echo "mpi: skipped: $(tail -n 1 "$out/mpi.txt")" | tee -a "$out/mpi.txt" ;;
    *) echo "mpi: failed:"; cat "$out/mpi.txt" ;;
    esac
fi

# ---- Report ------------------------------------------------------------------
echo "elapsed: $(( $(date +%s) - start )) s" >>"$out/machine.txt"
"$PYTHON" "$here/report.py" "$out" || python3 "$here/report.py" "$out" || {
    say "cannot write the report (python3 needed); raw figures in $raw"; exit 1; }
if command -v gnuplot >/dev/null 2>&1; then
    (cd "$out" && gnuplot bench.gp 2>"$out/logs/gnuplot.err") ||
        say "gnuplot failed; see $out/logs/gnuplot.err"
else
    say "no gnuplot (apt-get install gnuplot-nox): no chart"
fi
cat "$out/results.md"
say "results in $out/results.md, chart in $out/bench.png"
