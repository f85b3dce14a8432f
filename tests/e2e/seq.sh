#!/bin/sh
# seq.sh - a small GPT trains end to end (tests/e2e/seq.nn through
# tests/e2e/seq_main.c): -O0 and -O2 agree step by step, the loss falls,
# the tied head has no tensor of its own; with every compiler, the emitted
# C built -std=c99 -Wall -Wextra -Wpedantic -Werror.
. "$(dirname "$0")/../lib.sh"
nn="$srcdir/tests/e2e/seq.nn"
if ! "$NNC" "$nn" -O0 --prefix a -o "$tmp/a.c"; then bad "nnc -O0 failed"; finish seq; fi
if ! "$NNC" "$nn" -O2 --prefix b -o "$tmp/b.c"; then bad "nnc -O2 failed"; finish seq; fi
for cc in $compilers; do
    # shellcheck disable=SC2086 # RT_CFLAGS and RT_LIBS are lists
    if ! $cc -std=c99 -O2 $WARN $RT_CFLAGS -I"$tmp" -o "$tmp/seq" \
        "$srcdir/tests/e2e/seq_main.c" "$tmp/a.c" "$tmp/b.c" $RT_LIBS > "$tmp/cc.log" 2>&1; then
        bad "$cc: build failed:"; show "$tmp/cc.log"; continue
    fi
    if "$tmp/seq" "$tmp" > "$tmp/run.log" 2>&1; then
        ok; echo "$cc:"; show "$tmp/run.log"
    else
        bad "$cc: seq failed:"; show "$tmp/run.log"
    fi
done
# every activation and primitive on (batch, T, C): -O0 = -O2 (levels_main.c)
nn="$srcdir/tests/e2e/seq_acts.nn"
mkdir -p "$tmp/acts"
if "$NNC" "$nn" -O0 --prefix a -o "$tmp/acts/a.c" && "$NNC" "$nn" -O2 --prefix b -o "$tmp/acts/b.c"
then
    # shellcheck disable=SC2086 # RT_CFLAGS and RT_LIBS are lists
    if $CC -std=c99 -O2 $WARN $RT_CFLAGS -I"$tmp/acts" -o "$tmp/acts/levels" \
        "$srcdir/tests/e2e/levels_main.c" "$tmp/acts/a.c" "$tmp/acts/b.c" $RT_LIBS \
        > "$tmp/acts/cc.log" 2>&1; then
        if "$tmp/acts/levels" "$tmp/acts" > "$tmp/acts/run.log" 2>&1; then
            ok; echo "seq_acts:"; grep 'max rel diff' "$tmp/acts/run.log" | sed 's/^/    /'
        else
            bad "seq_acts: -O0 and -O2 disagree:"; show "$tmp/acts/run.log"
        fi
    else
        bad "seq_acts: build failed:"; show "$tmp/acts/cc.log"
    fi
else
    bad "seq_acts: nnc failed"
fi
finish seq
