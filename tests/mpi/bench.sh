#!/bin/sh
# bench.sh - data-parallel figures, not part of make check (make
# bench-mpi [EPOCHS=N]): the Fashion-MNIST MLP and CNN (examples/) trained
# by their --emit=main programs on 1 process and on 2 ranks (blocking
# allreduce, the default on one machine, then buckets overlapping the
# backward: row 2o), one thread each, side by side: seconds per epoch
# (the log's, median over epochs), rank 0's step, grad_step and wait
# times, a blocking allreduce of the gradients, the part of it hidden and
# the backward left after the first bucket started (the overlap
# available) from NNC_MPI_STATS, and the test accuracy after the epochs.
# Row 1x2B is one process compiled with the 2 ranks' global batch (2 x the
# example's): the training 2 ranks reproduce, so its test accuracy is the
# one theirs must match (row 1, the example's batch, takes twice as many
# steps an epoch, so after few epochs it is ahead of both).
# Needs MPI and Debian's dataset-fashion-mnist.
. "$(dirname "$0")/../lib.sh"
[ -n "${MPIRUN:-}" ] && [ -f "${MPI_RT_LIBS:-}" ] || skip_script bench-mpi "no MPI"
D=/usr/share/datasets/fashion-mnist
[ -r $D/train-images-idx3-ubyte.gz ] || skip_script bench-mpi "no $D"
cd "$tmp" || exit 1
epochs=${EPOCHS:-1}
mpirun="$MPIRUN --oversubscribe"
[ "$(id -u)" = 0 ] && mpirun="$mpirun --allow-run-as-root"
train="train --x $D/train-images-idx3-ubyte.gz --y $D/train-labels-idx1-ubyte.gz --scale 1/255"
train="$train --val-split 0.1 --threads 1 --epochs $epochs -q"
test="evaluate --x $D/t10k-images-idx3-ubyte.gz --y $D/t10k-labels-idx1-ubyte.gz --scale 1/255"
median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }

echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs," \
    "load $(cut -d' ' -f1-3 /proc/loadavg); $epochs epoch(s), one thread a rank"
printf '%-11s %5s %8s %8s %8s %8s %10s %7s %10s %8s\n' model ranks epoch_s step_ms grad_ms \
    wait_ms allred_ms hidden window_ms test_acc
# build NN OUT: the --emit=main program of model NN, with MPI
build() {
    "$NNC" "$1" --emit=main -o "$2.c" &&
        $CC -std=c99 -O3 -DNNC_MPI=1 $MPI_CFLAGS $RT_CFLAGS "$2.c" -o "$2" "$MPI_RT_LIBS" \
            $RT_LIBS $MPI_LIBS
}
# the two CPUs before each model (bench/cpus.c): a cache line's round trip
# between them and an FMA loop alone and on both; the VM's host may move
# them apart (another L3) or onto one core, and 2 ranks' figures follow
$CC -O2 -march=native -pthread -o cpus "$srcdir/bench/cpus.c" 2>/dev/null ||
    $CC -O2 -pthread -o cpus "$srcdir/bench/cpus.c" 2>/dev/null || rm -f cpus
cpus() {
    [ -x ./cpus ] || return 0
    ./cpus | awk '/^cpus/ { a = $2 " and " $3 } /^round_trip_ns/ { r = $2 }
        /^fma_alone/ { f = $2 } /^fma_both/ { b = $2 " and " $3 }
        END { if (r != "") printf "  (CPUs %s before %s: cache line round trip %s ns; FMA %s GFLOP/s alone, %s both at once)\n", a, m, r, f, b }' m="$1"
}
for m in fmnist_mlp fmnist_cnn; do
    build "$srcdir/examples/$m.nn" $m || { echo "$m: build failed"; continue; }
    cpus $m
    # the same model at twice the batch: what 2 ranks of the example train
    b=$(sed -n 's/^ *batch \([0-9][0-9]*\).*/\1/p' "$srcdir/examples/$m.nn" | head -n 1)
    sed "s/^\( *batch \)$b/\1$((2 * b))/" "$srcdir/examples/$m.nn" > ${m}_2b.nn &&
        build ${m}_2b.nn ${m}_2b || echo "$m: 2B build failed"
    for n in 1 1x2B 2 2o; do
        # 2o: buckets overlapping the backward (NNC_MPI_OVERLAP=1), which
        # one machine does not use by default
        ov=0; [ $n = 2o ] && ov=1
        bin=./$m; np=${n%o}
        [ $n = 1x2B ] && bin=./${m}_2b np=1
        [ -x $bin ] || continue
        NNC_MPI_OVERLAP=$ov NNC_MPI_STATS=1 $mpirun -x NNC_MPI_STATS -x NNC_MPI_OVERLAP \
            -np $np $bin $train --log $m$n.csv \
            --save $m$n.st 2> $m$n.err || { cat $m$n.err; continue; }
        e=$(tail -n +2 $m$n.csv | cut -d, -f7 | median)
        acc=$($bin $test --weights $m$n.st | awk '{ print $4 }')
        # rank 0's line: ms a step, grad_step, waiting, allreduce, hidden
        set -- $(grep "rank 0 of" $m$n.err | sed 's/[^0-9. ]//g' | awk '{ print $4, $5, $6, $9, $10, $11 }')
        if [ $np = 1 ]; then
            printf '%-11s %5s %8.2f %8s %8s %8s %10s %7s %10s %8s\n' $m $n $e - - - - - - $acc
        else
            printf '%-11s %5s %8.2f %8s %8s %8s %10s %6s%% %10s %8s\n' $m $n $e $1 $2 $3 $4 $5 $6 \
                $acc
        fi
    done
done
