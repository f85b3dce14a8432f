#!/bin/sh
# bench/llmc.sh - llm.c's CPU trainer (train_gpt2.c) on issue 13's shape,
# the peer of nnc's "gpt" benchmark part (bench/run.sh runs it).
#
#   LLMC_DIR=/path/to/llm.c sh bench/llmc.sh
#
# LLMC_DIR names an llm.c source tree (git clone
# https://github.com/karpathy/llm.c; tested with the commit named in
# bench/README.md). Without it the script prints "skipped set LLMC_DIR ..."
# and exits 0: nnc does not depend on llm.c. Nothing in LLMC_DIR is
# modified: train_gpt2.c is copied into a temporary directory and built
# there with llm.c's own flags (its Makefile's CFLAGS for gcc on Linux:
# -Ofast -Wno-unused-result -Wno-ignored-pragmas -Wno-unknown-attributes
# -march=native -fopenmp -DOMP, -lm -lgomp), with one edit by sed: the
# number of training steps (its loop runs `step <= 40`; LLMC_STEPS) and, to
# save time, its sampling every 20 steps disabled (outside the timed
# region either way).
#
# train_gpt2.c reads fixed paths in its working directory; bench/llmc_files.py
# writes them: a random initialization in llm.c's checkpoint format for 4
# layers, 4 heads, width 128, maxT 64, vocabulary 256 (bytes; padded
# vocabulary 256), the byte tokens of a text (LLMC_TEXT; default: the
# fortunes package's English fortunes, else this tree's README.md) as its
# train/val token files, and a byte tokenizer. train_gpt2.c hard-codes
# batch 4 x 64 tokens, AdamW lr 1e-4; it times each step (data loader,
# forward, backward, update) with clock_gettime and prints it.
#
# One thread: OMP_NUM_THREADS=1 and taskset -c 0 (when taskset exists).
# Runs LLMC_RUNS times (default 3); prints "key value" lines:
#   llmc_commit        LLMC_COMMIT, else git -C LLMC_DIR rev-parse HEAD, else unknown
#   llmc_src_sha256    sha256 of the train_gpt2.c used
#   step_ms            the fastest run's median ms per step, steps 0-2 left out
#   step_min_ms        the fastest single step over all runs
#   peak_rss_kb        the peak RSS of one run (GNU time, when installed)
# and each run's median as run_N_step_ms.
set -u
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-$here/..}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
CC=${LLMC_CC:-gcc}
steps=${LLMC_STEPS:-40}
runs=${LLMC_RUNS:-3}

if [ -z "${LLMC_DIR:-}" ]; then
    echo "skipped set LLMC_DIR to an llm.c source tree (git clone https://github.com/karpathy/llm.c)"
    exit 0
fi
src=$LLMC_DIR/train_gpt2.c
if [ ! -f "$src" ] || [ ! -f "$LLMC_DIR/llmc/dataloader.h" ]; then
    echo "llmc.sh: $LLMC_DIR is not an llm.c tree (no train_gpt2.c, llmc/dataloader.h)" >&2
    exit 1
fi
commit=${LLMC_COMMIT:-$(git -C "$LLMC_DIR" rev-parse HEAD 2>/dev/null || echo unknown)}
echo "llmc_commit $commit"
echo "llmc_src_sha256 $(sha256sum "$src" | cut -d' ' -f1)"

text=${LLMC_TEXT:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc-llmc.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
if [ -z "$text" ]; then
    text=$tmp/text.txt
    if [ -d /usr/share/games/fortunes ]; then
        for f in /usr/share/games/fortunes/*; do
            case $f in *.dat|*.u8) continue ;; esac
            [ -f "$f" ] && cat "$f"
        done >"$text"
    fi
    [ -s "$text" ] || cat "$srcdir/README.md" >"$text"
fi

# The copy, edited: the step count and no sampling.
sed -e "s/for (int step = 0; step <= 40; step++)/for (int step = 0; step <= $steps; step++)/" \
    -e 's/if (step > 0 \&\& step % 20 == 0) {/if (0) {/' \
    "$src" >"$tmp/train_gpt2.c"
if ! grep -q "step <= $steps;" "$tmp/train_gpt2.c"; then
    echo "llmc.sh: cannot set the step count in $src (its loop is not 'step <= 40' any more)" >&2
    exit 1
fi
grep -q 'if (0) {' "$tmp/train_gpt2.c" || echo "llmc.sh: note: sampling left on (pattern not found)" >&2
flags="-Ofast -Wno-unused-result -Wno-ignored-pragmas -Wno-unknown-attributes -march=native -fopenmp -DOMP"
echo "llmc_cflags $(echo "$flags" | tr ' ' ',')"
$CC $flags -I"$LLMC_DIR" "$tmp/train_gpt2.c" -lm -lgomp -o "$tmp/train_gpt2" ||
    { echo "llmc.sh: cannot build train_gpt2.c" >&2; exit 1; }
"$PYTHON" "$here/llmc_files.py" "$tmp/run" "$text" || exit 1

pin=
command -v taskset >/dev/null 2>&1 && pin="taskset -c 0"
gtime=
[ -x /usr/bin/time ] && gtime="/usr/bin/time -f maxrss_kb=%M"
i=1
while [ $i -le "$runs" ]; do
    (cd "$tmp/run" && OMP_NUM_THREADS=1 $gtime $pin "$tmp/train_gpt2" >"$tmp/out$i" 2>"$tmp/err$i") || {
        echo "llmc.sh: train_gpt2 failed (run $i):" >&2
        tail -n 5 "$tmp/out$i" "$tmp/err$i" >&2
        exit 1
    }
    # "step N: train loss X (took Y ms)", steps 0-2 left out (first touches)
    set -- $(sed -n 's/^step \([0-9]*\): train loss \([0-9.]*\) (took \([0-9.]*\) ms)$/\1 \3/p' "$tmp/out$i" |
             awk '$1 >= 3 { print $2 }' | sort -g | awk '{ v[NR] = $1 } END {
                 if (NR == 0) exit 1
                 m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                 print m, v[1], NR }')
    if [ $# -ne 3 ]; then
        echo "llmc.sh: no step times in train_gpt2's output (run $i)" >&2
        tail -n 5 "$tmp/out$i" >&2
        exit 1
    fi
    echo "run_${i}_step_ms $1"
    echo "$1" >>"$tmp/medians"
    echo "$2" >>"$tmp/mins"
    i=$((i + 1))
done
last=$((i - 1))
echo "timed_steps $3"
echo "first_loss $(sed -n 's/^step 0: train loss \([0-9.]*\) .*/\1/p' "$tmp/out1")"
echo "last_loss $(sed -n "s/^step $steps: train loss \([0-9.]*\) .*/\1/p" "$tmp/out1")"
echo "step_ms $(sort -g "$tmp/medians" | head -n 1)"
echo "step_min_ms $(sort -g "$tmp/mins" | head -n 1)"
rss=$(sed -n 's/^maxrss_kb=//p' "$tmp/err$last" | tail -n 1)
[ -n "$rss" ] && echo "peak_rss_kb $rss"
grep -q '^num_parameters' "$tmp/out1" && echo "llmc_num_parameters $(sed -n 's/^num_parameters: //p' "$tmp/out1")"
exit 0
