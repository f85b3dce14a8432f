#!/bin/sh
# levels.sh - -O0 and -O2 give the same losses and weights (within 1e-5
# relative) after 20 training steps, for every example and for the
# differential models. Each examples/*.nn and tests/torch/*.nn is compiled
# twice, `-O0 --prefix a` and `-O2 --prefix b`; tests/e2e/levels_main.c
# links both (-std=c99 -Wall -Wextra -Wpedantic -Werror), trains them side
# by side from one seed on the same batches and compares per-step losses,
# the checkpoints float by float and predict on 3*BATCH+1 rows. One test
# per model; its largest relative differences are printed.
. "$(dirname "$0")/../lib.sh"
for nn in "$srcdir"/examples/*.nn "$srcdir"/tests/torch/*.nn; do
    name=$(basename "$(dirname "$nn")")/$(basename "$nn" .nn)
    d="$tmp/$(echo "$name" | tr / _)"
    mkdir -p "$d"
    if ! "$NNC" "$nn" -O0 --prefix a -o "$d/a.c"; then bad "$name: nnc -O0 failed"; continue; fi
    if ! "$NNC" "$nn" -O2 --prefix b -o "$d/b.c"; then bad "$name: nnc -O2 failed"; continue; fi
    # shellcheck disable=SC2086 # RT_CFLAGS and RT_LIBS are lists
    if ! $CC -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" -o "$d/levels" \
        "$srcdir/tests/e2e/levels_main.c" "$d/a.c" "$d/b.c" $RT_LIBS > "$d/cc.log" 2>&1; then
        bad "$name: build failed:"; cat "$d/cc.log"; continue
    fi
    if "$d/levels" "$d" > "$d/run.log" 2>&1; then
        pass=$((pass + 1))
        echo "$name:"; grep 'max rel diff' "$d/run.log" | sed 's/^/    /'
    else
        bad "$name: -O0 and -O2 disagree:"; sed 's/^/    /' "$d/run.log"
    fi
done
finish levels
