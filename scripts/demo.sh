#!/bin/sh
# demo.sh - the demo run by `make demo`: compile the example models with
# nnc, build them against the runtime, train and predict.
#   usage: demo.sh SRCDIR BUILDDIR [CC] [CJSON_LIBS]
set -e
srcdir=$1 builddir=$2 cc=${3:-cc} cjson=${4:--lcjson}
out="$builddir/demo-out"
mkdir -p "$out"
for ex in seed rings; do
    echo "== nnc examples/$ex.nn -o $ex.c"
    "$builddir/nnc" "$srcdir/examples/$ex.nn" -o "$out/$ex.c"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -I"$srcdir/runtime" -I"$out" \
        -o "$out/$ex" "$srcdir/examples/${ex}_main.c" "$out/$ex.c" \
        "$builddir/.libs/libnncrt.a" $cjson -lm
done
echo
echo "== the Keras example: Dense 128 relu, Dense 64 relu, Dense 1 sigmoid, Adam, BCE"
(cd "$out" && ./seed seed.safetensors)
echo
echo "== a learnable task: three rings, residual block, softmax cross-entropy, SGD"
(cd "$out" && ./rings)
echo
echo "Generated code and binaries are in $out"
