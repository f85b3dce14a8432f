#!/bin/sh
# int8.sh - the int8 Fashion-MNIST CNN against the float one (issue 16),
# side by side in one run: examples/fmnist_cnn.nn trained for EPOCHS
# (default 1) by its --emit=main program (pixels / 255, seed 42), or
# the checkpoint CKPT; compiled as float (--weights-from) and as int8
# (--quantize=int8, calibrated on the first 512 training images, max-abs);
# then tests/e2e/int8_main.c on the 10,000 test images: both accuracies,
# argmax agreement, the largest logit difference, the weights' bytes, and
# predict at batch 64 pinned to CPU 0 (taskset -c 0), REPS calls per
# round (default 300), ROUNDS rounds (default 5) alternating float and
# int8, the fastest of each. Not part of make check (a minute or more).
#
# Usage: bench/int8.sh    Overrides: EPOCHS, CKPT, REPS, ROUNDS, CC,
# NNC (default ./nnc), DATA (default /usr/share/datasets/fashion-mnist).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
nnc=${NNC:-$top/nnc}
cc=${CC:-cc}
data=${DATA:-/usr/share/datasets/fashion-mnist}
epochs=${EPOCHS:-1}
reps=${REPS:-300}
rounds=${ROUNDS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs="$top/.libs/libnncrt.a -lcjson -lz -lm -lpthread"
m=$top/examples/fmnist_cnn.nn
x=$data/train-images-idx3-ubyte.gz y=$data/train-labels-idx1-ubyte.gz
xt=$data/t10k-images-idx3-ubyte.gz yt=$data/t10k-labels-idx1-ubyte.gz
s=0.00392156862745098
cd "$tmp"
if [ -n "${CKPT:-}" ]; then
    cp "$CKPT" w.st
else
    "$nnc" "$m" --emit=main -o train.c
    $cc -std=c99 -O2 -march=native -I"$top/runtime" -o train train.c $libs
    ./train train --x "$x" --y "$y" --scale $s --epochs "$epochs" --save w.st -q
fi
"$nnc" "$m" --weights-from=w.st --prefix f -o f.c
"$nnc" "$m" --weights-from=w.st --quantize=int8 --calibrate="$x" --calibrate-scale=$s \
    --prefix q -o q.c
"$nnc" "$m" --weights-from=w.st --quantize=int8 --calibrate="$x" --calibrate-scale=$s \
    --emit=stats > stats.json
$cc -std=c99 -O2 -march=native -I. -I"$top/runtime" -o cmp "$top/tests/e2e/int8_main.c" f.c q.c \
    $libs
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
./cmp "$xt" "$yt" $s
i=0
while [ $i -lt "$rounds" ]; do
    taskset -c 0 ./cmp "$xt" "$yt" $s --bench "$reps"
    i=$((i + 1))
done | tee rounds.txt
awk '{ for (i = 1; i <= NF; i++) { if ($i == "float") f = $(i + 1); if ($i == "int8") q = $(i + 1) }
       if (!bf || f < bf) bf = f; if (!bq || q < bq) bq = q }
     END { printf "fastest of all rounds: float %.1f us, int8 %.1f us: %.2fx\n", bf, bq, bf / bq }' \
    rounds.txt
grep -E '"(weight_bytes|float_weight_bytes)"' stats.json
