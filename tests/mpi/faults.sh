#!/bin/sh
# faults.sh - data-parallel training (issue 14) refuses bad set-ups up
# front and never hangs: a rank that cannot read its data, ranks running
# different models or reading different data, a global batch larger than
# the training rows: every rank stops with a message, nothing saved. A
# rank killed in the middle of training ends the job (mpirun stops the
# others; how long that took goes to the log, it is not checked). Every
# run is under `timeout`, so a hang fails instead of blocking make check.
# SKIP without MPI.
. "$(dirname "$0")/../lib.sh"
[ -n "${MPIRUN:-}" ] && [ -f "${MPI_RT_LIBS:-}" ] ||
    skip_script faults "no MPI (install openmpi-bin and libopenmpi-dev, rerun configure)"
command -v timeout > /dev/null 2>&1 || skip_script faults "no timeout(1)"
cd "$tmp" || exit 1
mpirun="$MPIRUN -np 2 --oversubscribe"
[ "$(id -u)" = 0 ] && mpirun="$mpirun --allow-run-as-root"
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"; export ASAN_OPTIONS
run() { timeout 120 $mpirun "$@"; }

build() {
    "$NNC" "$2" --emit=main -o "$1.c" &&
        $CC -std=c99 -O2 $WARN -DNNC_MPI=1 $MPI_CFLAGS $RT_CFLAGS "$1.c" -o "$1" \
            "$MPI_RT_LIBS" $RT_LIBS $MPI_LIBS 2> cc.log || { show cc.log; return 1; }
}
build m "$srcdir/tests/e2e/driver_cls.nn" || { bad "build"; finish faults; }
sed 's/lr=0.01/lr=0.02/' "$srcdir/tests/e2e/driver_cls.nn" > other.nn
build other other.nn || { bad "build"; finish faults; }
awk 'BEGIN { srand(7); for (i = 0; i < 4000; i++) { a = rand() * 2 - 1; b = rand() * 2 - 1;
    c = rand(); printf "%.5f,%.5f,%.5f,%.5f\n", a, b, c, rand() > "x.csv";
    print (a > b) + (c > 0.5) > "y.csv" } }'
head -n 12 x.csv > x12.csv; head -n 12 y.csv > y12.csv
sed '1s/.*/0.5,0.5,0.5,0.5/' x.csv > x2.csv
# each rank's own arguments: rank.sh RANK1_X PROGRAM ARGS... (rank 1 reads RANK1_X)
cat > rank.sh <<'EOS'
#!/bin/sh
r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
x=$1; shift
[ "$r" = 1 ] && set -- "$@" --x "$x" || set -- "$@" --x x.csv
exec "$@"
EOS
args="train --y y.csv --epochs 2 --threads 1 --save w.st"

run sh rank.sh missing.csv ./m $args > e1.txt 2>&1
check "a rank without its data: all stop (1)" '[ $? -eq 1 ]' || show e1.txt
check "  rank 1 says why" 'grep -q "rank 1.*missing.csv" e1.txt' || show e1.txt
check "  rank 0 stops too" 'grep -q "rank 0.*another rank failed to start" e1.txt' || show e1.txt
check "  nothing saved" '[ ! -e w.st ]'

rm -f w.st
run sh rank.sh x2.csv ./m $args > e2.txt 2>&1
check "different data refused" '[ $? -eq 1 ] && grep -q "read different data" e2.txt &&
    [ ! -e w.st ]' || show e2.txt

rm -f w.st
timeout 120 $mpirun -np 1 ./m $args --x x.csv : -np 1 ./other $args --x x.csv > e3.txt 2>&1
check "different models refused" '[ $? -eq 1 ] && grep -q "different models" e3.txt &&
    [ ! -e w.st ]' || show e3.txt

rm -f w.st
run ./m train --x x12.csv --y y12.csv --val-split 0.5 --save w.st > e4.txt 2>&1
check "a global batch beyond the rows refused" \
    '[ $? -eq 1 ] && grep -q "fewer than the global batch" e4.txt && [ ! -e w.st ]' || show e4.txt

# rank 1 killed a second into a long run
cat > kill.sh <<'EOS'
#!/bin/sh
r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
[ "$r" = 1 ] && (sleep 1; kill -9 $$) &
exec "$@"
EOS
rm -f w.st
t0=$(date +%s.%N)
run sh kill.sh ./m train --x x.csv --y y.csv --epochs 100000 --threads 1 -q --save w.st \
    > e5.txt 2>&1
st=$?
t1=$(date +%s.%N)
check "a rank killed: the job ends with an error, not a hang" \
    '[ $st -ne 0 ] && [ $st -ne 124 ] && [ ! -e w.st ]' || show e5.txt
check "  mpirun names the lost rank" 'grep -qi "signal 9\|killed" e5.txt' || show e5.txt
echo "killed rank: the job ended $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 - 1 }') s after the kill"
finish faults
