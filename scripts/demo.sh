#!/bin/sh
# demo.sh - the demo run by `make demo`: compile the example models with
# nnc, build them against the runtime, train and predict.
#   usage: demo.sh SRCDIR BUILDDIR [CC] [CJSON_LIBS]
set -e
srcdir=$1 builddir=$2 cc=${3:-cc} cjson=${4:--lcjson -lz -pthread}
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
data=/usr/share/datasets/fashion-mnist
models="fmnist_mlp fmnist_cnn"
[ "${NNC_DEMO_CNN:-1}" = 0 ] && models="fmnist_mlp"
if [ -d "$data" ]; then
    for m in $models; do
        case $m in
        *mlp) echo "== Fashion-MNIST: examples/$m.nn (784-256-128-10), 5 epochs" ;;
        *) echo "== Fashion-MNIST: examples/$m.nn (two conv + max pool blocks, dense), 5 epochs (NNC_DEMO_CNN=0 skips it)" ;;
        esac
        mkdir -p "$out/$m"
        "$builddir/nnc" "$srcdir/examples/$m.nn" --prefix m -o "$out/$m/m.c"
        $cc -std=c99 -O3 -march=native -Wall -Wextra -Werror -I"$srcdir/runtime" -I"$out/$m" \
            -o "$out/$m/train" "$srcdir/examples/fmnist_main.c" "$out/$m/m.c" \
            "$builddir/.libs/libnncrt.a" $cjson -lz -lm
        "$out/$m/train" --epochs 5 --data "$data"
    done
    echo "== the same MLP with the emitted training program: nnc --emit=main"
    d="$out/fmnist_mlp"
    "$builddir/nnc" "$srcdir/examples/fmnist_mlp.nn" --emit=main -o "$d/train_main.c"
    $cc -std=c99 -O3 -march=native -I"$srcdir/runtime" -o "$d/fit" "$d/train_main.c" \
        "$builddir/.libs/libnncrt.a" $cjson -lm
    (cd "$d" && ./fit train --x "$data/train-images-idx3-ubyte.gz" --scale 1/255 \
        --y "$data/train-labels-idx1-ubyte.gz" --epochs 5 --val-split 0.1 --log log.csv --threads 1 &&
     ./fit evaluate --x "$data/t10k-images-idx3-ubyte.gz" --scale 1/255 \
        --y "$data/t10k-labels-idx1-ubyte.gz")
    if command -v gnuplot > /dev/null 2>&1; then
        gnuplot -e "log='$d/log.csv'; out='$d/curve.svg'" "$srcdir/examples/plot.gp" 2> /dev/null &&
            echo "training curve: $d/curve.svg"
    fi
    if command -v dot > /dev/null 2>&1; then
        "$builddir/nnc" "$srcdir/examples/fmnist_mlp.nn" --emit=dot | dot -Tsvg -o "$d/graph.svg" &&
            echo "model graph: $d/graph.svg"
    fi
else
    echo "(Fashion-MNIST demo skipped: install dataset-fashion-mnist)"
fi
echo
# A GPT (issue 13): examples/gpt_char.nn trained on the fortunes package's
# text with the emitted training program, then a sample.
fortunes=/usr/share/games/fortunes
gsteps=${NNC_DEMO_GPT_STEPS:-300}
if [ "${NNC_DEMO_GPT:-1}" = 0 ]; then
    echo "(GPT demo skipped: NNC_DEMO_GPT=0)"
elif [ ! -d "$fortunes" ]; then
    echo "(GPT demo skipped: install fortunes for its training text)"
else
    echo "== A GPT: examples/gpt_char.nn (4 layers, 4 heads, 128 wide, context 64), $gsteps steps on the fortunes (NNC_DEMO_GPT=0 skips it)"
    d="$out/gpt"
    mkdir -p "$d"
    "$builddir/nnc" "$srcdir/examples/gpt_char.nn" --emit=main -o "$d/gpt.c"
    $cc -std=c99 -O3 -march=native -I"$srcdir/runtime" -o "$d/gpt" "$d/gpt.c" \
        "$builddir/.libs/libnncrt.a" $cjson -lm
    # The text: every fortune, shuffled deterministically (so that the
    # held-out tail samples every file), ~2.5 MB, 114 distinct bytes
    sh "$srcdir/scripts/fortunes.sh" "$fortunes" >"$d/fortunes.txt"
    (cd "$d" && ./gpt train --text fortunes.txt --steps "$gsteps" --eval-every 100 \
        --log log.csv --save gpt.safetensors &&
     echo "== 300 characters sampled from it (temperature 0.8, top-k 20)" &&
     ./gpt generate --weights gpt.safetensors --prompt "The " --tokens 300 \
        --temperature 0.8 --top-k 20 --seed 1 2>gen.err && cat gen.err)
fi
echo
echo "Generated code and binaries are in $out"
