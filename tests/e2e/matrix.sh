#!/bin/sh
# matrix.sh - the emitted C under every compiler setting: for each
# examples/*.nn, the C that nnc emits is built with gcc and clang, at -O0
# and -O3, as -std=c99 and -std=c11 (always -Wall -Wextra -Wpedantic
# -Werror), linked with tests/e2e/matrix_main.c, which trains a few steps
# and prints the losses and predictions; every build's output must match
# the first one's within a relative tolerance of 1e-5 (on x86-64 they
# agree bit for bit: the kernels are the runtime's, built once, and no
# setting contracts or reorders float arithmetic; elsewhere a compiler
# may contract multiply-adds into FMAs, hence the tolerance). The
# tests/torch models' C is also compiled at -O3 -std=c11 with both
# compilers (e2e/run.sh covers -O2 -std=c99), where the optimizers' flow
# analysis warns about what -O2 may not see.
. "$(dirname "$0")/../lib.sh"

# same numbers (one a line) within a relative tolerance
same() {
    awk 'NR == FNR { a[FNR] = $1; n = FNR; next }
         { m = FNR; d = $1 - a[FNR]; if (d < 0) d = -d;
           s = a[FNR] < 0 ? -a[FNR] : a[FNR]; if (s < 1e-2) s = 1e-2;
           if (d / s > 1e-5 || $1 == "nan" || a[FNR] == "nan") { bad = 1;
               printf "    line %d: %s vs %s\n", FNR, a[FNR], $1 } }
         END { if (m != n) { print "    line counts differ"; exit 1 } exit bad }' "$1" "$2"
}

for nn in "$srcdir"/examples/*.nn; do
    name=$(basename "$nn" .nn)
    d="$tmp/$name"
    mkdir -p "$d"
    if ! "$NNC" "$nn" --prefix m -o "$d/m.c"; then bad "$name: nnc failed"; continue; fi
    ref=""
    for cc in $compilers; do
        for o in -O0 -O3; do
            for std in c99 c11; do
                cfg="$cc $o -std=$std"
                exe="$d/run_${cc}${o}_$std"
                # shellcheck disable=SC2086 # flag lists
                if ! $cc -std=$std $o $WARN $RT_CFLAGS -I"$d" -o "$exe" \
                    "$srcdir/tests/e2e/matrix_main.c" "$d/m.c" $RT_LIBS > "$exe.cc" 2>&1; then
                    bad "$name: $cfg: warnings or errors:"; cat "$exe.cc"; continue
                fi
                if ! "$exe" > "$exe.out" 2>&1; then
                    bad "$name: $cfg: the run failed:"; cat "$exe.out"; continue
                fi
                if [ -z "$ref" ]; then
                    ref="$exe.out" refcfg=$cfg
                    pass=$((pass + 1))
                elif same "$ref" "$exe.out" > "$exe.diff"; then
                    pass=$((pass + 1))
                else
                    bad "$name: $cfg disagrees with $refcfg:"; head -n 5 "$exe.diff"
                fi
            done
        done
    done
    [ -n "$ref" ] && echo "$name: $(wc -l < "$ref") numbers agree across the builds"
done

for nn in "$srcdir"/tests/torch/*.nn; do
    name=torch/$(basename "$nn" .nn)
    d="$tmp/$(echo "$name" | tr / _)"
    mkdir -p "$d"
    if ! "$NNC" "$nn" --prefix m -o "$d/m.c"; then bad "$name: nnc failed"; continue; fi
    for cc in $compilers; do
        # shellcheck disable=SC2086
        if $cc -std=c11 -O3 $WARN $RT_CFLAGS -I"$d" -c -o "$d/m_$cc.o" "$d/m.c" \
            > "$d/cc.log" 2>&1; then
            pass=$((pass + 1))
        else
            bad "$name: $cc -O3 -std=c11: warnings or errors:"; cat "$d/cc.log"
        fi
    done
done
finish matrix
