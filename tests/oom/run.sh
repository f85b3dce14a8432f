#!/bin/sh
# run.sh - out of memory (issue 15): every allocation fails in turn, and
# each case ends cleanly: the documented error, no crash, no leak.
#
#   nnc            compiling examples/seed.nn to C, and import-keras on a
#                  Keras model: exit status 1 and "out of memory" (or the
#                  C library's "Cannot allocate memory" for a file it could
#                  not open or write), or 0 with the very output of a
#                  normal run (an allocation that was only an optimization,
#                  as a stdio buffer); never a signal, 2 or an internal
#                  error;
#   the API        oom_api.c: seed_create, save, load, export, load of the
#                  export, the data, IDX and text readers (in-process: no
#                  leaked block after a failed call);
#   the driver     the seed model's --emit=main program training for one
#                  epoch and saving: exit status 1 and "out of memory", or
#                  0 with the same checkpoint.
#
# failmalloc.c (LD_PRELOAD, or included by oom_api.c) fails the k-th call
# of malloc, calloc, realloc or an aligned allocation, for each k up to
# the count of a normal run. Needs glibc (__libc_malloc); skipped in a
# sanitized build (ASan replaces malloc) or where the library cannot be
# built.
. "$(dirname "$0")/../lib.sh"
case $RT_CFLAGS in *-fsanitize=*)
    skip_script oom/run.sh "sanitized build (ASan replaces malloc)" ;;
esac
# checkpoints are fsync'ed: on tmpfs thousands of saves take no time
if [ -d /dev/shm ] && work=$(mktemp -d /dev/shm/nnc_oom_XXXXXX 2>/dev/null); then
    trap 'rm -rf "$tmp" "$work"' EXIT
else
    work=$tmp
fi
cd "$work" || exit 1
$CC -O1 -shared -fPIC -o failmalloc.so "$srcdir/tests/oom/failmalloc.c" 2> cc.log ||
    skip_script oom/run.sh "cannot build failmalloc.so (glibc's __libc_malloc?)"
preload=$work/failmalloc.so

# count CMD...: the number of allocation calls of a normal run, in n
count() {
    NNC_FAIL_COUNT=$work/count LD_PRELOAD=$preload "$@" > /dev/null 2>&1
    n=$(cat "$work/count")
}

# each NAME OUT CMD...: runs CMD with each allocation failing in turn;
# OUT is the file a normal run writes, which a run that succeeds despite
# the failure must write the same (saved first as OUT.ref)
each() {
    name=$1 out=$2; shift 2
    "$@" > /dev/null 2>&1 || { bad "$name: fails without a failing allocation"; return; }
    cp "$out" "$out.ref"
    count "$@"
    bad_before=$fail
    k=1
    while [ "$k" -le "$n" ]; do
        rm -f "$out"
        NNC_FAIL_AT=$k LD_PRELOAD=$preload "$@" > out.txt 2> err.txt
        rc=$?
        if [ $rc -eq 0 ]; then
            cmp -s "$out" "$out.ref" || bad "$name: allocation $k: exit 0 but different output"
        elif [ $rc -ne 1 ]; then
            bad "$name: allocation $k: exit status $rc"; head -n 3 err.txt
        elif grep -q -E 'internal error|Sanitizer|runtime error' err.txt ||
             ! grep -q -E 'out of memory|Cannot allocate memory' err.txt; then
            bad "$name: allocation $k: wrong message: $(head -n 2 err.txt)"
        fi
        [ $((fail - bad_before)) -lt 5 ] || { echo "$name: stopping after 5 failures"; break; }
        k=$((k + 1))
    done
    [ $fail -eq "$bad_before" ] && ok
    echo "$name: $n allocation sites"
}

# ---- nnc ----
each "nnc seed.nn" seed.c "$NNC" "$srcdir/examples/seed.nn" -o seed.c
each "nnc import-keras" m.nn "$NNC" import-keras "$srcdir/tests/fuzz/corpus/keras/cnn" -o m.nn

# ---- the API, in-process ----
"$NNC" "$srcdir/examples/seed.nn" -o seed.c || bad "nnc seed.nn"
if $CC -O1 -std=c99 $RT_CFLAGS -I. -I"$srcdir/tests/oom" -o oom_api \
    "$srcdir/tests/oom/oom_api.c" seed.c $RT_LIBS 2> cc.log; then
    if ./oom_api > api.txt 2>&1; then ok; else bad "oom_api:"; head -n 20 api.txt; fi
    cat api.txt | tail -n 1
else
    bad "oom_api does not build:"; cat cc.log
fi

# ---- the --emit=main driver ----
"$NNC" "$srcdir/examples/seed.nn" --emit=main -o main.c &&
    $CC -O1 -std=c99 $RT_CFLAGS -o train main.c $RT_LIBS 2> cc.log ||
    { bad "the driver does not build:"; cat cc.log; }
awk 'BEGIN { srand(3); for (i = 0; i < 64; i++) {
    s = 0; for (j = 0; j < 10; j++) { v = rand(); s += v; printf "%s%.4f", j ? "," : "", v > "x.csv" }
    print "" > "x.csv"; print (s > 5) > "y.csv" } }'
[ -x train ] && each "driver train" w.st ./train train --x x.csv --y y.csv --epochs 1 --save w.st
finish "out of memory"
