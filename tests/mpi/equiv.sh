#!/bin/sh
# equiv.sh - data-parallel training under mpirun (issue 14): 2 ranks of
# batch B train like one process compiled with batch 2B, the same losses
# and weights within atol 1e-6 + rtol 1e-5 after 50 steps, for a dense
# model, a CNN and the GPT example (text: its random windows drawn for
# the global batch); the same run twice gives the same bits; rank 0 alone
# logs and saves; evaluate and predict on 2 ranks print what one process
# does; a checkpoint of 2 ranks resumes on 1 process and one of 1 process
# on 2 ranks. SKIP without MPI (configure found none).
. "$(dirname "$0")/../lib.sh"
[ -n "${MPIRUN:-}" ] && [ -f "${MPI_RT_LIBS:-}" ] ||
    skip_script equiv "no MPI (install openmpi-bin and libopenmpi-dev, rerun configure)"
cd "$tmp" || exit 1
mpirun="$MPIRUN -np 2 --oversubscribe"
[ "$(id -u)" = 0 ] && mpirun="$mpirun --allow-run-as-root"
# Open MPI's own allocations are not ours to report in a sanitized build
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"; export ASAN_OPTIONS
py=/usr/bin/python3; [ -x $py ] || py=python3
same() { $py "$srcdir/tests/mpi/compare.py" 1e-6 1e-5 "$@" > cmp.txt || { show cmp.txt; false; }; }

# build NAME FILE.nn BATCH [mpi]: NAME from FILE.nn with its batch set to BATCH
build() {
    sed "s/^\( *\)batch [0-9]*/\1batch $3/" "$2" > "$1.nn" &&
        "$NNC" "$1.nn" --emit=main -o "$1.c" || return 1
    if [ "${4:-}" = mpi ]; then
        $CC -std=c99 -O2 $WARN -DNNC_MPI=1 $MPI_CFLAGS $RT_CFLAGS "$1.c" -o "$1" \
            "$MPI_RT_LIBS" $RT_LIBS $MPI_LIBS 2> cc.log
    else
        $CC -std=c99 -O2 $WARN $RT_CFLAGS "$1.c" -o "$1" $RT_LIBS 2> cc.log
    fi || { show cc.log; return 1; }
}

# data: 200 rows of 4 features and 3 classes; 100 images of 8 x 8
awk 'BEGIN { srand(7); for (i = 0; i < 200; i++) { a = rand() * 2 - 1; b = rand() * 2 - 1;
    c = rand(); printf "%.5f,%.5f,%.5f,%.5f\n", a, b, c, rand() > "x.csv";
    print (a > b) + (c > 0.5) > "y.csv" } }'
awk 'BEGIN { srand(3); for (i = 0; i < 100; i++) { k = int(rand() * 3);
    for (j = 0; j < 64; j++) printf "%s%.4f", j ? "," : "", rand() + (j % 3 == k) > "img.csv";
    printf "\n" > "img.csv"; print k > "lab.csv" } }'
awk 'BEGIN { srand(5); n = split("the quick brown fox jumps over a lazy dog while cats sleep", w, " ");
    for (i = 0; i < 6000; i++) printf "%s%s", w[int(rand() * n) + 1], i % 11 == 10 ? ".\n" : " " }' \
    > t.txt

# dense: 160 training rows, global batch 16: 10 steps an epoch, 5 epochs
if build d8 "$srcdir/tests/e2e/driver_cls.nn" 8 mpi && build d16 "$srcdir/tests/e2e/driver_cls.nn" 16
then
    args="train --x x.csv --y y.csv --val-split 0.2 --threads 1"
    ./d16 $args --epochs 5 --log d1.csv --save d1.st -q
    $mpirun ./d8 $args --epochs 5 --log d2.csv --save d2.st > d2.out 2>&1
    check "dense: 2 ranks train" '[ $? -eq 0 ]' || show d2.out
    check "dense: same losses as one process of batch 16" 'same d1.csv d2.csv'
    check "dense: same weights" 'same d1.st d2.st'
    check "dense: rank 0 alone logs and prints" \
        '[ $(wc -l < d2.csv) -eq 6 ] && [ $(grep -c "^saved" d2.out) -eq 1 ]' || show d2.out
    check "dense: the global batch is reported" 'grep -q "batch 16, 10 steps per epoch" d2.out'
    $mpirun ./d8 evaluate --x x.csv --y y.csv --weights d2.st > ev2.txt 2>&1
    ./d16 evaluate --x x.csv --y y.csv --weights d2.st > ev1.txt
    check "dense: evaluate on 2 ranks prints what one process does" 'cmp -s ev1.txt ev2.txt' ||
        show ev2.txt
    $mpirun ./d8 predict --x x.csv --weights d2.st -o p2.csv &&
        ./d16 predict --x x.csv --weights d2.st -o p1.csv
    check "dense: predict on 2 ranks writes once" 'cmp -s p1.csv p2.csv'
    $mpirun ./d8 $args --epochs 5 --save d3.st -q
    check "dense: the same run twice gives the same bits" 'cmp -s d2.st d3.st'
    # buckets of 1 KB started during the backward, against the blocking
    # allreduce one machine uses by default: 2 ranks' sums are one addition
    NNC_MPI_OVERLAP=1 NNC_MPI_BUCKET_KB=1 $mpirun -x NNC_MPI_OVERLAP -x NNC_MPI_BUCKET_KB \
        ./d8 $args --epochs 5 --save d4.st -q
    check "dense: overlapped buckets give the blocking allreduce's bits" 'cmp -s d2.st d4.st'
    # 2 ranks for 2 epochs, then 1 process (batch 16) for the other 3, and back
    $mpirun ./d8 $args --epochs 2 --checkpoint c2.st --checkpoint-every 1 --save c2.st -q &&
        ./d16 $args --epochs 5 --resume c2.st --save r1.st -q
    check "dense: a checkpoint of 2 ranks resumes on 1 process" 'same d1.st r1.st'
    ./d16 $args --epochs 2 --save c1.st -q
    ./d8 $args --epochs 2 --save c8.st -q
    $mpirun ./d8 $args --epochs 5 --resume c8.st --log r8.csv --save r8.st -q
    check "dense: a checkpoint of 1 process resumes on 2 ranks at its epoch" \
        '[ "$(cut -d, -f1 r8.csv | tr "\n" " ")" = "epoch 3 4 5 " ]'
else
    bad "dense: build"
fi

# CNN: 80 training rows, global batch 8: 10 steps an epoch, 5 epochs
if build c4 "$srcdir/tests/torch/cnn.nn" 4 mpi && build c8 "$srcdir/tests/torch/cnn.nn" 8; then
    args="train --x img.csv --y lab.csv --val-split 0.2 --threads 1 --epochs 5 -q"
    ./c8 $args --log c1.csv --save c1.st
    $mpirun ./c4 $args --log c2.csv --save c2.st
    check "cnn: 2 ranks train" '[ $? -eq 0 ]'
    check "cnn: same losses as one process of batch 8" 'same c1.csv c2.csv'
    check "cnn: same weights" 'same c1.st c2.st'
else
    bad "cnn: build"
fi

# the GPT example at batch 2 a rank, windows of the whole text: 50 steps
if build g2 "$srcdir/examples/gpt_char.nn" 2 mpi && build g4 "$srcdir/examples/gpt_char.nn" 4
then
    args="train --text t.txt --steps 50 --eval-every 10 --eval-batches 1 --threads 1 -q"
    ./g4 $args --log g1.csv --save g1.st
    $mpirun ./g2 $args --log g2.csv --save g2.st
    check "gpt: 2 ranks train" '[ $? -eq 0 ]'
    check "gpt: same losses as one process of batch 4" 'same g1.csv g2.csv'
    # but the attention's key biases (in_proj_bias[128:256]): their gradient
    # is 0 in exact arithmetic (a bias added to every key shifts a query's
    # scores by one constant, which softmax ignores), so they hold rounding
    # noise, which Adam scales up to steps of the learning rate's size
    check "gpt: same weights (but the key biases)" 'same g1.st g2.st in_proj_bias:128:256'
else
    bad "gpt: build"
fi
finish equiv
