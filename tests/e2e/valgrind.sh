#!/bin/sh
# valgrind.sh - valgrind's memcheck finds no error and no leak in nnc on
# every examples/*.nn (every --emit kind for one of them), on failing
# inputs (tests/diag, tests/fuzz/cases) and on bad command lines, nor in
# one emitted training program (seed.nn with matrix_main.c: train, predict,
# destroy). Exits 77 (SKIP) without valgrind or in a sanitized build
# (ASan and valgrind do not mix). Valgrind does not emulate AVX-512, so the
# runtime runs its AVX2 kernels (NNC_ISA=avx2), on one thread.
. "$(dirname "$0")/../lib.sh"
command -v valgrind >/dev/null 2>&1 ||
    skip_script valgrind.sh "no valgrind (apt install valgrind)"
case $RT_CFLAGS in *-fsanitize=*)
    skip_script valgrind.sh "sanitized build (ASan and valgrind do not mix)" ;;
esac
vg="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible"
# run NAME WANT CMD...: memcheck is clean and the exit status is WANT
# ("0|1": either)
run() {
    name=$1 want=$2; shift 2
    # shellcheck disable=SC2086 # vg is a command line
    $vg --log-file="$tmp/vg.log" "$@" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    if [ -s "$tmp/vg.log" ] || [ $rc -eq 99 ]; then
        echo "FAIL: $name: valgrind reports:"; head -n 40 "$tmp/vg.log"; fail=$((fail + 1))
    elif [ $rc -ne "${want%|*}" ] && [ $rc -ne "${want#*|}" ]; then
        echo "FAIL: $name: exit status $rc, expected $want"; head -n 5 "$tmp/err"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}

for nn in "$srcdir"/examples/*.nn; do
    run "nnc $(basename "$nn")" 0 "$NNC" "$nn" -o "$tmp/m.c"
done
for kind in c h graph-json ir stats dot bench; do
    run "nnc --emit=$kind" 0 "$NNC" "$srcdir/examples/rings.nn" --emit=$kind -o "$tmp/e.out"
done
run "nnc -O0 --verify --dump-after=all" 0 "$NNC" "$srcdir/examples/seed.nn" -O0 --verify \
    --dump-after=all -o "$tmp/m.c"
run "nnc -MD multi-model" 0 "$NNC" "$srcdir/tests/e2e/multi.nn" -MD -o "$tmp/multi.c"
for nn in "$srcdir"/tests/diag/*.nn; do
    want=1
    case $(basename "$nn") in warn_*) want=0 ;; esac
    run "nnc $(basename "$nn")" $want "$NNC" "$nn" -o "$tmp/d.c"
done
for nn in "$srcdir"/tests/fuzz/cases/*; do
    run "nnc fuzz/cases/$(basename "$nn")" "0|1" "$NNC" "$nn" -o "$tmp/d.c"
done
run "nnc (no input)" 2 "$NNC"
run "nnc --emit=nope" 2 "$NNC" "$srcdir/examples/seed.nn" --emit=nope
run "nnc missing.nn" 1 "$NNC" "$tmp/missing.nn"
run "nnc --model nope" 1 "$NNC" "$srcdir/tests/e2e/multi.nn" --model nope -o "$tmp/x.c"
run "nnc -o unwritable" 1 "$NNC" "$srcdir/examples/seed.nn" -o "$tmp/no/such/dir/x.c"

# one emitted training program
d="$tmp/seed"; mkdir -p "$d"
"$NNC" "$srcdir/examples/seed.nn" --prefix m -o "$d/m.c" &&
    # shellcheck disable=SC2086 # flag lists
    $CC -std=c99 -O1 -g $RT_CFLAGS -I"$d" -o "$d/run" "$srcdir/tests/e2e/matrix_main.c" \
        "$d/m.c" $RT_LIBS
NNC_ISA=avx2 OMP_NUM_THREADS=1
export NNC_ISA OMP_NUM_THREADS
run "emitted seed training program" 0 "$d/run"
finish valgrind
