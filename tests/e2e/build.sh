#!/bin/sh
# build.sh - what build systems rely on:
#  - make dependency files (-MD, -MF): targets, prerequisites, escaping,
#    and make itself seeing a touched .nn (or checkpoint) as out of date;
#  - --prefix: two copies of one model and a second model in one program,
#    training independently (tests/e2e/prefix_main.c);
#  - embedded weights (--weights=embedded, --weights-from=CKPT) equal to the
#    normal build's, bit for bit (tests/e2e/weights_main.c), for models with
#    dense, conv, batchnorm, Adagrad state and dropout; checkpoints that do
#    not match the model are rejected with a clear error, nothing written.
. "$(dirname "$0")/../lib.sh"
CFLAGS="-std=c99 -O1 $WARN"
py=/usr/bin/python3; [ -x $py ] || py=python3
seed=$srcdir/examples/seed.nn

# ---- dependency files ------------------------------------------------------
d=$tmp/dep; mkdir -p "$d/out"
"$NNC" "$seed" -MD -o "$d/out/m.c" &&
    printf '%s\n' "$d/out/m.c $d/out/m.h: $seed" "" "$seed:" > "$d/want" &&
    cmp -s "$d/want" "$d/out/m.d" && ok || { bad "-MD -o: wrong m.d"; cat "$d/out/m.d"; }
"$NNC" "$seed" --emit=c -o "$d/c.c" -MF "$d/c.dep" &&
    printf '%s\n' "$d/c.c: $seed" "" "$seed:" > "$d/want" &&
    cmp -s "$d/want" "$d/c.dep" && [ ! -e "$d/c.h" ] && ok || bad "--emit=c -MF: wrong depfile"
"$NNC" "$seed" --emit=stats -MD 2>/dev/null > /dev/null
[ $? -eq 2 ] && ok || bad "-MD with --emit to stdout must be a usage error"
# default names beside the input's base name, in the current directory
(cd "$d" && "$NNC" "$seed" -MD) && [ -e "$d/seed.c" ] && [ -e "$d/seed.h" ] &&
    grep -q "^seed.c seed.h: $seed\$" "$d/seed.d" && ok || bad "-MD without -o"
# blanks, '#' and '$' escaped as make reads them; a failed compile writes no depfile
mkdir -p "$d/a b"
cp "$seed" "$d/a b/s#1\$.nn"
if (cd "$d/a b" && "$NNC" 's#1$.nn' -o 'm 1.c' -MD); then
    grep -q '^m\\ 1.c m\\ 1.h: s\\#1\$\$.nn$' "$d/a b/m 1.d" && ok || { bad "escaping"; cat "$d/a b/m 1.d"; }
    cat > "$d/a b/Makefile" <<'EOF'
m\ 1.c:
	@touch '$@'
include m\ 1.d
EOF
    (cd "$d/a b" && make -q 'm 1.c') && ok || bad "make sees an up-to-date m 1.c as out of date"
    sleep 1; touch "$d/a b/s#1\$.nn"
    (cd "$d/a b" && make -q 'm 1.c'); [ $? -eq 1 ] && ok || bad "make misses the touched .nn"
else
    bad "nnc with an odd file name"
fi
# outputs get the mode a plain file would (0666 less the umask), not 0600
(umask 022 && "$NNC" "$seed" -MD -o "$d/mode.c") &&
    [ "$(stat -c %a "$d/mode.c" "$d/mode.h" "$d/mode.d" | sort -u)" = 644 ] && ok ||
    bad "outputs are not 0644 under umask 022"
printf 'model x {\n  input a[2]\n  dens(1)\n}\n' > "$d/bad.nn"
"$NNC" "$d/bad.nn" -MD -o "$d/bad.c" 2>/dev/null
[ $? -eq 1 ] && [ ! -e "$d/bad.d" ] && [ ! -e "$d/bad.c" ] && ok || bad "failed compile left files"

# ---- --prefix: several models in one program --------------------------------
d=$tmp/prefix; mkdir -p "$d"
if "$NNC" "$seed" --prefix p1 -o "$d/p1.c" && "$NNC" "$seed" --prefix p2 -o "$d/p2.c" &&
    "$NNC" "$srcdir/examples/rings.nn" -o "$d/rings.c"; then
    # shellcheck disable=SC2086 # lists
    if $CC $CFLAGS $RT_CFLAGS -I"$d" -o "$d/prefix" "$srcdir/tests/e2e/prefix_main.c" \
        "$d/p1.c" "$d/p2.c" "$d/rings.c" $RT_LIBS > "$d/cc.log" 2>&1; then
        "$d/prefix" && ok || bad "prefix: models share state"
        if ! command -v nm > /dev/null 2>&1; then skip "prefix: symbol names (no nm: apt install binutils)"
        elif nm "$d/prefix" | grep -q ' T seed_'; then bad "prefix: symbols named after the model"
        else ok; fi
    else
        bad "prefix: build failed"; cat "$d/cc.log"
    fi
else
    bad "prefix: nnc failed"
fi

# ---- embedded weights --------------------------------------------------------
for nn in "$seed" "$srcdir/tests/torch/cnn_bn.nn" "$srcdir/tests/torch/opt_adagrad.nn" \
    "$srcdir/tests/e2e/dropout.nn"; do
    name=$(basename "$nn" .nn)
    d=$tmp/w_$name; mkdir -p "$d"
    # shellcheck disable=SC2086 # lists
    if ! { "$NNC" "$nn" --prefix n -o "$d/n.c" &&
           "$NNC" "$nn" --weights=embedded --seed 7 --prefix e -o "$d/e.c" &&
           $CC $CFLAGS $RT_CFLAGS -I"$d" -o "$d/stage1" "$srcdir/tests/e2e/weights_main.c" \
               "$d/n.c" $RT_LIBS && "$d/stage1" "$d" &&
           "$NNC" "$nn" --weights-from="$d/trained.safetensors" --prefix f -o "$d/f.c" -MD &&
           $CC $CFLAGS -DSTAGE2 $RT_CFLAGS -I"$d" -o "$d/stage2" \
               "$srcdir/tests/e2e/weights_main.c" "$d/n.c" "$d/e.c" "$d/f.c" $RT_LIBS; }; then
        bad "$name: embedded weights: build failed"; continue
    fi
    "$d/stage2" "$d" && ok || bad "$name: embedded weights differ from the normal build's"
    cmp -s "$d/n0.safetensors" "$d/e0.safetensors" && ok ||
        bad "$name: e_create and n_create(7) save different checkpoints"
    grep -q "^$d/f.c $d/f.h: $nn $d/trained.safetensors\$" "$d/f.d" && ok ||
        bad "$name: the checkpoint is not a prerequisite in f.d"
    grep -q 'F_WEIGHTS_EMBEDDED 1' "$d/f.h" && ! grep -q nnc_fill_uniform "$d/f.c" && ok ||
        bad "$name: f.c still draws its weights"
    for c in $compilers; do
        $c $CFLAGS $RT_CFLAGS -I"$d" -c "$d/f.c" -o "$d/f_$c.o" && ok ||
            bad "$name: $c: embedded weights not warning-free"
    done
done

# ---- checkpoints that do not fit --------------------------------------------
d=$tmp/wbad; mkdir -p "$d"
ck=$tmp/w_seed/trained.safetensors
expect_error() { # what, pattern, nnc args...
    what=$1 pat=$2; shift 2
    rm -f "$d/o.c" "$d/o.h"
    if "$NNC" "$@" -o "$d/o.c" 2> "$d/err"; then bad "$what: accepted"; return; fi
    if grep -q -- "$pat" "$d/err" && [ ! -e "$d/o.c" ] && [ ! -e "$d/o.h" ]; then ok
    else bad "$what: wanted '$pat', got:"; cat "$d/err"; fi
}
# rewrite.py IN OUT ACTION: edits the checkpoint's header or data
cat > "$d/rewrite.py" <<'EOF'
import json, struct, sys
src, dst, action = sys.argv[1:4]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h, data = json.loads(b[8:8 + n]), bytearray(b[8 + n:])
if action == 'drop':          # a parameter missing
    del h['dense_1.bias']
elif action == 'extra':       # a tensor the model does not have
    h['dense_9.weight'] = dict(h['dense_2.bias'])
elif action == 'f64':
    h['dense_0.bias']['dtype'] = 'F64'
elif action == 'shape':       # the same size, another shape
    h['dense_0.weight']['shape'] = [10, 128]
elif action == 'nan':
    o = h['dense_2.weight']['data_offsets'][0]
    data[o:o + 4] = struct.pack('<f', float('nan'))
hb = json.dumps(h).encode()
open(dst, 'wb').write(struct.pack('<Q', len(hb)) + hb + bytes(data))
EOF
if [ -e "$ck" ]; then
    for a in drop extra f64 shape nan; do $py "$d/rewrite.py" "$ck" "$d/$a.st" $a; done
    expect_error "missing tensor" "no tensor 'dense_1.bias'" "$seed" --weights-from "$d/drop.st"
    expect_error "extra tensor" "tensor 'dense_9.weight' is not a parameter of model 'seed'" \
        "$seed" --weights-from "$d/extra.st"
    expect_error "dtype" "tensor 'dense_0.bias' has dtype F64; nnc needs F32" \
        "$seed" --weights-from "$d/f64.st"
    expect_error "NaN" "tensor 'dense_2.weight' holds NaN at element 0" \
        "$seed" --weights-from "$d/nan.st"
    expect_error "shape" "tensor 'dense_0.weight' has shape \[10, 128\]; model 'seed' needs \[128, 10\]" \
        "$seed" --weights-from "$d/shape.st"
    expect_error "another model" "no tensor 'h.weight' (model 'rings' has 6 parameter tensors)" \
        "$srcdir/examples/rings.nn" --weights-from "$ck"
    head -c $(($(wc -c < "$ck") - 100)) "$ck" > "$d/short.st"
    expect_error "truncated" "the data is shorter than the header says (truncated file?)" \
        "$seed" --weights-from "$d/short.st"
    head -c 5 "$ck" > "$d/tiny.st"
    expect_error "tiny" "not a safetensors file" "$seed" --weights-from "$d/tiny.st"
    expect_error "missing file" "cannot read '$d/none.st'" "$seed" --weights-from "$d/none.st"
else
    bad "no checkpoint from the seed model to corrupt"
fi
"$NNC" "$seed" --seed 3 -o "$d/o.c" 2>/dev/null; [ $? -eq 2 ] && ok || bad "--seed alone"
"$NNC" "$seed" --weights=some -o "$d/o.c" 2>/dev/null; [ $? -eq 2 ] && ok || bad "--weights=some"
"$NNC" "$seed" --weights=embedded --seed x1 -o "$d/o.c" 2>/dev/null; [ $? -eq 2 ] && ok ||
    bad "--seed x1"
"$NNC" "$srcdir/tests/e2e/multi.nn" --weights-from "$ck" -o "$d/o.c" 2>/dev/null
[ $? -eq 2 ] && ok || bad "--weights-from with two models"

finish build
