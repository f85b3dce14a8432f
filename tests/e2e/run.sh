#!/bin/sh
# run.sh - end-to-end: every examples/*.nn and tests/torch/*.nn is compiled
# by nnc, the C is built warning-free with gcc and clang (-std=c99 -Wall
# -Wextra -Wpedantic -Werror), compiling twice gives identical files, and
# tests/e2e/e2e_main.c exercises the API of each model.
. "$(dirname "$0")/../lib.sh"
for nn in "$srcdir"/examples/*.nn "$srcdir"/tests/torch/*.nn; do
    case $nn in
    */tests/torch/seed.nn) continue ;;  # same as examples/seed.nn
    */examples/gpt_char.nn) continue ;; # a language model: tests/e2e/gpt.sh
    esac
    name=$(basename "$nn" .nn)
    d="$tmp/$name"
    mkdir -p "$d"
    if ! "$NNC" "$nn" --prefix m -o "$d/m.c"; then bad "$name: nnc failed"; continue; fi
    mkdir -p "$d/again"
    "$NNC" "$nn" --prefix m -o "$d/again/m.c"
    if cmp -s "$d/m.c" "$d/again/m.c" && cmp -s "$d/m.h" "$d/again/m.h"; then ok; else bad "$name: output not deterministic"; fi
    grep -q "$(basename "$nn"):[0-9]*:[0-9]*" "$d/m.c" && ok || bad "$name: no source locations in comments"
    for cc in $compilers; do
        if $cc -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" \
            -o "$d/e2e_$cc" "$srcdir/tests/e2e/e2e_main.c" "$d/m.c" $RT_LIBS 2> "$d/cc.log"; then
            ok
        else
            bad "$name: $cc warnings or errors:"; cat "$d/cc.log"; continue
        fi
        if "$d/e2e_$cc" "$d" > "$d/run.log" 2>&1; then
            ok
            echo "$name ($cc): $(grep '^loss' "$d/run.log")"
        else
            bad "$name ($cc):"; cat "$d/run.log"
        fi
    done
done
# program NAME NN C MAIN [LIBS]: nnc tests/e2e/NN -o $tmp/NAME/C, built with
# tests/e2e/MAIN by each compiler, run with its directory as argument
program() {
    name=$1 nn=$2 c=$3 main=$4; shift 4
    d="$tmp/$name"; mkdir -p "$d"
    if ! "$NNC" "$srcdir/tests/e2e/$nn" -o "$d/$c"; then bad "$name: nnc failed"; return; fi
    for cc in $compilers; do
        # shellcheck disable=SC2086 # flag lists
        if $cc -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" -o "$d/${name}_$cc" \
            "$srcdir/tests/e2e/$main" "$d/$c" $RT_LIBS "$@" && "$d/${name}_$cc" "$d"; then ok
        else bad "$name ($cc)"; fi
    done
}
# several models in one file, in one .c/.h pair
program multi multi.nn multi.c multi_main.c
# dropout: masks, scaling, predict as identity, reproducibility
program dropout dropout.nn drop.c dropout_main.c
# failures: refused checkpoints, failed saves, non-finite losses (errors_main.c)
program errors errors.nn err.c errors_main.c -pthread
d="$tmp/errors"
# --model picks one, --prefix renames it, unknown models are errors
"$NNC" "$srcdir/tests/e2e/multi.nn" --model cls --prefix z -o "$d/z.c" &&
    grep -q 'z_train_step' "$d/z.h" && ! grep -q 'enc_' "$d/z.h" && ok || bad "--model/--prefix"
"$NNC" "$srcdir/tests/e2e/multi.nn" --model nope -o "$d/n.c" 2>/dev/null
[ $? -eq 1 ] && [ ! -e "$d/n.c" ] && ok || bad "--model nope"
"$NNC" "$srcdir/tests/e2e/multi.nn" --prefix z -o "$d/n.c" 2>/dev/null
[ $? -eq 2 ] && ok || bad "--prefix with two models is a usage error"
"$NNC" 2>/dev/null; [ $? -eq 2 ] && ok || bad "no input: usage error"
"$NNC" "$d/missing.nn" 2>/dev/null; [ $? -eq 1 ] && ok || bad "missing file"
"$NNC" --version | grep -q '^nnc ' && ok || bad "--version"
# the graph dump is valid JSON with shapes; -O0 output builds too
py=/usr/bin/python3; [ -x $py ] || py=python3
"$NNC" "$srcdir/examples/seed.nn" --emit=graph-json > "$d/g.json" &&
    $py -c "import json,sys; g=json.load(open(sys.argv[1])); assert g['nodes'][0]['shape']==[32,10]" "$d/g.json" &&
    ok || bad "--emit=graph-json"
"$NNC" "$srcdir/examples/seed.nn" -O0 -o "$d/o0.c" && ${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror \
    $RT_CFLAGS -c "$d/o0.c" -o "$d/o0.o" && ok || bad "-O0"
"$NNC" "$srcdir/examples/seed.nn" -MD -o "$d/dep.c" && grep -q "dep.c $d/dep.h: " "$d/dep.d" &&
    ok || bad "-MD"
# --emit=bench: a program that times every kernel of the model
if "$NNC" "$srcdir/examples/seed.nn" --emit=bench -o "$d/bench.c" &&
    ${CC:-cc} -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror $RT_CFLAGS -o "$d/bench" "$d/bench.c" \
        $RT_LIBS && "$d/bench" 0.01 > "$d/bench.log" &&
    grep -q "^train_step: 11 kernels, [0-9]* runs after 10000 training steps" "$d/bench.log" &&
    grep -q "examples/seed.nn:4:27" "$d/bench.log" &&
    grep -q "^warm-up: 10000 train steps before timing" "$d/bench.log" &&
    [ "$(grep -c '^     total' "$d/bench.log")" -eq 2 ] &&
    NNC_BENCH_STEPS=7 "$d/bench" 0.001 | grep -q "^warm-up: 7 train steps" &&
    "$d/bench" --steps 3 0 | grep -q "^predict: .* after 3 training steps" &&
    "$d/bench" --flops | grep -q "^train_step_flops [1-9][0-9]*$"; then ok
else bad "--emit=bench"; cat "$d/bench.log" 2>/dev/null; fi
# ... on a language model: token ids in, one class per position as target,
# so the warm-up's losses are finite
if "$NNC" "$srcdir/tests/e2e/seq.nn" --emit=bench -o "$d/seqbench.c" &&
    ${CC:-cc} -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror $RT_CFLAGS -o "$d/seqbench" \
        "$d/seqbench.c" $RT_LIBS && "$d/seqbench" --steps 20 0 > "$d/seqbench.log" &&
    grep -q "^data: .* random token ids" "$d/seqbench.log" &&
    grep "^warm-up: 20 train steps" "$d/seqbench.log" | grep -q "of the last [0-9]* [0-9]" &&
    ! grep -qi "nan" "$d/seqbench.log"; then ok
else bad "--emit=bench on a sequence model"; cat "$d/seqbench.log" 2>/dev/null; fi
finish e2e
