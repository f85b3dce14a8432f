#!/bin/sh
# keras.sh - `nnc import-keras` on the Keras files of tests/keras (written
# by Keras 2 and 3 through tests/keras/gen.py, which make check does not
# run):
#   - each NAME.json with a golden NAME.nn imports to exactly that, compiles
#     with nnc, builds warning-free, and, where gen.py saved the Keras
#     weights (NAME.safetensors) and predictions (NAME.io.bin), predicts
#     what Keras predicted (tests/keras/keras_main.c);
#   - each NAME.json with a golden NAME.err fails with exactly that message,
#     exit status 1 and no output file;
#   - the option cases at the end likewise.
# edit_*.json are Keras files edited by hand: k2_mlp.json and k3_mlp.json
# without their InputLayer, for the input shape taken from the first
# layer's batch_input_shape (Keras 2) or the model's build_input_shape
# (Keras 3); edit_k2_swish.json and edit_k3_silu.json are those models with
# one activation renamed to Keras' swish and silu (nnc's silu).
# KERAS_UPDATE=1 rewrites the goldens from the current output instead.
. "$(dirname "$0")/../lib.sh"
kdir=$srcdir/tests/keras

# check NAME GOLDEN ARGS...: import with ARGS (in tests/keras, so messages
# name the file as given), compare with GOLDEN.nn or GOLDEN.err; NAME's
# weights and predictions, if any, check the numerics
check() {
    name=$1 golden=$2
    shift 2
    out=$tmp/$golden.nn
    (cd "$kdir" && "$NNC" import-keras "$@" -o "$out") > "$tmp/$golden.log" 2>&1
    rc=$?
    if [ -n "$KERAS_UPDATE" ]; then
        rm -f "$kdir/$golden.nn" "$kdir/$golden.err"
        if [ $rc -eq 0 ]; then cp "$out" "$kdir/$golden.nn"; else cp "$tmp/$golden.log" "$kdir/$golden.err"; fi
        return
    fi
    if [ -f "$kdir/$golden.nn" ]; then
        if [ $rc -ne 0 ]; then bad "$golden: import failed:"; cat "$tmp/$golden.log"; return; fi
        if ! diff -u "$kdir/$golden.nn" "$out"; then bad "$golden: output differs from $golden.nn"; return; fi
        d=$tmp/$golden
        mkdir -p "$d"
        if ! "$NNC" "$out" --prefix m -o "$d/m.c" 2> "$d/nnc.log"; then
            bad "$golden: nnc cannot compile the import:"; cat "$d/nnc.log"; return
        fi
        if ! $CC -std=c99 -O2 $WARN $RT_CFLAGS -I"$d" -o "$d/keras_main" \
            "$kdir/keras_main.c" "$d/m.c" $RT_LIBS -lm 2> "$d/cc.log"; then
            bad "$golden: build failed:"; cat "$d/cc.log"; return
        fi
        if [ -f "$kdir/$name.safetensors" ]; then
            if r=$("$d/keras_main" "$kdir/$name.safetensors" "$kdir/$name.io.bin" 2>&1); then
                echo "$golden: imported, built, predicts as Keras: $r"
            else
                bad "$golden: predictions differ from Keras': $r"; return
            fi
        else
            echo "$golden: imported and built"
        fi
        pass=$((pass + 1))
    elif [ -f "$kdir/$golden.err" ]; then
        if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then bad "$golden: exit status $rc, want 1 or 2"; cat "$tmp/$golden.log"; return; fi
        if [ -e "$out" ]; then bad "$golden: failed but wrote $out"; return; fi
        if ! diff -u "$kdir/$golden.err" "$tmp/$golden.log"; then bad "$golden: message differs from $golden.err"; return; fi
        echo "$golden: refused as expected: $(head -n 1 "$tmp/$golden.log")"
        pass=$((pass + 1))
    else
        bad "$golden: no $golden.nn or $golden.err in tests/keras"
    fi
}

for json in "$kdir"/*.json; do
    name=$(basename "$json" .json)
    case $name in
    edit_k2_no_input_layer) weights=k2_mlp ;;   # the same model's weights
    edit_k3_no_input_layer) weights=k3_mlp ;;
    *) weights=$name ;;
    esac
    check "$weights" "$name" "$name.json"
done
# option cases: golden name, then the arguments
check k2_mlp opt_k2_mlp k2_mlp.json --loss sparse_categorical_crossentropy \
    --optimizer 'sgd(lr=0.01, momentum=0.9)' --batch 64
check k3_cnn opt_logits_after_softmax k3_cnn.json --loss softmax_cross_entropy
check k3_gap opt_bad_batch k3_gap.json --batch 0
check k3_gap opt_bad_optimizer k3_gap.json --optimizer adamax
check k3_gap opt_bad_loss k3_gap.json --loss cross_entropy
check none opt_missing_file no_such_model.json

finish keras
