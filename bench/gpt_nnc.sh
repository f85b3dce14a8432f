#!/bin/sh
# bench/gpt_nnc.sh - nnc's side of the "gpt" part of bench/run.sh: runs a
# program built from `nnc MODEL --emit=bench` and turns its report into
# the "key value" lines run.sh records.
#
#   sh bench/gpt_nnc.sh BENCH-PROGRAM [STEPS] [SECONDS]
#   sh bench/gpt_nnc.sh train MAIN-PROGRAM TEXT STEPS
#
# The program trains STEPS steps (default 50) before timing (--steps), times
# each kernel and the whole step for at least SECONDS (default 0.5), and
# prints "train_step: X us per step (wall) after N training steps; Y us on
# fresh weights" and "... peak P GFLOP/s (measured, one core)". Prints:
#   step_ms        X / 1000 (the steady-state train step)
#   fresh_step_ms  Y / 1000
#   peak_gflops    P
#   peak_rss_kb    the program's peak RSS (GNU time), when /usr/bin/time exists
# The program's whole report goes to stderr (run.sh's logs/).
#
# train: the 2,000-step run of the example on a text, for the comparison
# of validation losses with bench/gpt_torch.py train. MAIN-PROGRAM is the
# example built with `nnc --emit=main`; the command is
#   MAIN-PROGRAM train --text TEXT --steps STEPS --eval-every EVERY
#                --eval-batches K --threads 1
# (EVERY: NNC_BENCH_GPT_EVAL_EVERY, default 250, gpt_torch.py's; K:
# NNC_BENCH_GPT_EVAL_BATCHES, default 200, gpt_torch.py's --eval-iters)
# (its weights to a temporary file) unless NNC_BENCH_GPT_TRAIN_CMD gives
# another (a shell command; $1 is the program, $2 the text, $3 the steps,
# $4 a temporary path). Prints train_wall_s (the whole run
# including its evaluations, timed here), tokens_per_s (STEPS x the batch's
# tokens / train_wall_s, when the program names its "batch B x T"),
# final_val_loss (the last number after "val loss", "val_loss" or
# "val_loss=" in its output), val_loss_at_N for lines that also name the
# step ("step N ... val loss L").
set -u
if [ "${1:-}" = train ]; then
    bin=$2 text=$3 steps=$4
    out=$(mktemp "${TMPDIR:-/tmp}/nnc-gpt.XXXXXX") || exit 1
    trap 'rm -f "$out" "$out.safetensors"' EXIT
    every=${NNC_BENCH_GPT_EVAL_EVERY:-250} evalb=${NNC_BENCH_GPT_EVAL_BATCHES:-200}
    cmd=${NNC_BENCH_GPT_TRAIN_CMD:-'"$1" train --text "$2" --steps "$3" --eval-every '$every' --eval-batches '$evalb' --threads 1 --save "$4.safetensors"'}
    t0=$(date +%s.%N)
    sh -c "$cmd" sh "$bin" "$text" "$steps" "$out" >"$out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    cat "$out" >&2
    [ $rc -eq 0 ] || { echo "gpt_nnc.sh: the training run failed (exit $rc): $cmd" >&2; exit $rc; }
    echo "$t0 $t1" | awk '{ printf "train_wall_s %.2f\n", $2 - $1 }'
    bt=$(sed -n 's/.*, batch \([0-9][0-9]*\) x \([0-9][0-9]*\).*/\1 \2/p' "$out" | head -n 1)
    [ -n "$bt" ] && echo "$bt $steps $t0 $t1" |
        awk '{ printf "tokens_per_s %.0f\n", $1 * $2 * $3 / ($5 - $4) }'
    tr '\r' '\n' <"$out" | sed -n 's/^.*[Ss]tep \([0-9][0-9]*\).*val[ _]loss[ =:]*\([0-9][0-9.]*\).*/val_loss_at_\1 \2/p'
    v=$(tr '\r' '\n' <"$out" | sed -n 's/^.*val[ _]loss[ =:]*\([0-9][0-9.]*\).*/\1/p' | tail -n 1)
    [ -n "$v" ] || { echo "gpt_nnc.sh: no validation loss in the output" >&2; exit 1; }
    echo "final_val_loss $v"
    exit 0
fi
bin=$1
steps=${2:-50}
secs=${3:-0.5}
out=$(mktemp "${TMPDIR:-/tmp}/nnc-gpt.XXXXXX") || exit 1
trap 'rm -f "$out" "$out.time"' EXIT
if [ -x /usr/bin/time ]; then
    /usr/bin/time -o "$out.time" -f 'maxrss_kb=%M' "$bin" "$secs" --steps "$steps" >"$out"
else
    "$bin" "$secs" --steps "$steps" >"$out"
fi
rc=$?
cat "$out" >&2
[ $rc -eq 0 ] || exit $rc
sed -n 's/^train_step: \([0-9.]*\) us per step (wall).*; \([0-9.]*\) us on fresh weights.*/\1 \2/p' "$out" |
    awk '{ printf "step_ms %.4f\nfresh_step_ms %.4f\n", $1 / 1000, $2 / 1000 }'
grep -q '^train_step: [0-9.]* us per step' "$out" || {
    echo "gpt_nnc.sh: no 'train_step: ... us per step' line in the program's report" >&2; exit 1; }
sed -n 's/.*, peak \([0-9.]*\) GFLOP\/s (measured.*/peak_gflops \1/p' "$out" | head -n 1
[ -f "$out.time" ] && sed -n 's/^maxrss_kb=/peak_rss_kb /p' "$out.time"
exit 0
