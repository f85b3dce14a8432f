#!/bin/sh
# attention.sh - a model with multihead_attention (tests/e2e/attention.nn)
# compiles warning-free (-std=c99 -Wall -Wextra -Wpedantic -Werror) with
# every compiler here, at -O0 and -O2, trains (the loss falls, attention
# dropout on), gives the same bits on one and two threads, and predicts a
# row as in a batch (tests/e2e/attention_main.c).
. "$(dirname "$0")/../lib.sh"
for opt in -O2 -O0; do
    d="$tmp/nnc$opt"
    mkdir -p "$d"
    if ! "$NNC" $opt "$srcdir/tests/e2e/attention.nn" --prefix m -o "$d/m.c"; then
        bad "nnc $opt failed"; continue
    fi
    for cc in $compilers; do
        # shellcheck disable=SC2086 # RT_CFLAGS and RT_LIBS are lists
        if ! $cc -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" -o "$d/run_$cc" \
            "$srcdir/tests/e2e/attention_main.c" "$d/m.c" $RT_LIBS > "$d/cc.log" 2>&1; then
            bad "nnc $opt, $cc: build failed:"; show "$d/cc.log"; continue
        fi
        if "$d/run_$cc" > "$d/run.log" 2>&1; then
            ok; echo "nnc $opt, $cc: $(head -n 1 "$d/run.log")"
        else
            bad "nnc $opt, $cc:"; show "$d/run.log"
        fi
    done
done
finish attention
