#!/bin/sh
# threads.sh - threads and denormals in emitted models: the Fashion-MNIST
# MLP (bench/fmnist_mlp.nn) and CNN (examples/fmnist_cnn.nn) give the same
# losses, checkpoints and predictions on 1 to 4 threads, their entry
# points restore the caller's floating-point mode, and train_step and
# predict flush denormals unless nnc_set_flush_denormals(0) keeps them
# (tests/e2e/threads_main.c, with tests/e2e/ftz.nn).
. "$(dirname "$0")/../lib.sh"
for nn in "$srcdir/bench/fmnist_mlp.nn" "$srcdir/examples/fmnist_cnn.nn"; do
    name=$(basename "$nn" .nn)
    d="$tmp/$name"
    mkdir -p "$d"
    if ! "$NNC" "$nn" --prefix m -o "$d/m.c" || ! "$NNC" "$srcdir/tests/e2e/ftz.nn" --prefix f -o "$d/f.c"; then
        bad "$name: nnc failed"; continue
    fi
    # shellcheck disable=SC2086 # RT_CFLAGS and RT_LIBS are lists
    if ! $CC -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" -o "$d/threads" \
        "$srcdir/tests/e2e/threads_main.c" "$d/m.c" "$d/f.c" $RT_LIBS > "$d/cc.log" 2>&1; then
        bad "$name: build failed:"; show "$d/cc.log"; continue
    fi
    if "$d/threads" "$d" > "$d/run.log" 2>&1; then
        ok; echo "$name: $(tail -n 1 "$d/run.log")"
    else
        bad "$name:"; show "$d/run.log"
    fi
done
finish threads
