#!/bin/sh
# split.sh - the split training step (grad_step + apply_update, the
# halves data parallelism runs with the gradients averaged in between)
# gives train_step's bits on models of every kind: dense, conv,
# batchnorm, attention, embeddings, dropout, clipping, every optimizer.
# Needs no MPI. A model whose step cannot be split (its gradients shared,
# or not in the gradient region) has no SPLIT_STEP.
. "$(dirname "$0")/../lib.sh"
models="examples/fmnist_mlp.nn examples/fmnist_cnn.nn examples/gpt_char.nn
tests/torch/cnn_bn.nn tests/torch/mha.nn tests/torch/opt_adagrad.nn tests/torch/opt_rmsprop.nn
tests/torch/opt_sgd.nn tests/torch/opt_adamw.nn tests/e2e/dropout.nn tests/e2e/seq.nn"
for f in $models; do
    d=$tmp/$(basename "$f" .nn); mkdir -p "$d"
    if ! "$NNC" "$srcdir/$f" --prefix m -o "$d/m.c"; then bad "$f: nnc"; continue; fi
    if ! grep -q M_SPLIT_STEP "$d/m.h"; then bad "$f: no split step"; continue; fi
    if $CC -std=c99 -O1 $WARN -I"$d" $RT_CFLAGS "$srcdir/tests/mpi/split_main.c" "$d/m.c" \
           $RT_LIBS -o "$d/split" 2> "$d/cc.log"; then
        "$d/split" && ok || bad "$f: the split step differs from train_step"
    else
        bad "$f: the emitted split step does not compile"; show "$d/cc.log"
    fi
done
"$NNC" "$srcdir/tests/torch/opt_shared.nn" --prefix m -o "$tmp/m.c" &&
    ! grep -q SPLIT_STEP "$tmp/m.h" && ok || bad "opt_shared.nn: a split step"
finish split
