#!/bin/sh
# frozen.sh - frozen layers end to end (tests/e2e/frozen.nn): `freeze NAME`
# and trainable=false give the frozen parameters no gradient, no optimizer
# state and no update (--emit=stats and the emitted C say so, and the
# memory shrinks); a head fine-tuned with `train --init-from` from the
# whole model's checkpoint keeps the frozen weights bit for bit while the
# head changes; checkpoints of either model load into the other's frozen
# form. (PyTorch agreement: tests/torch/diff.py's cnn_head and cnn_mid.)
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1
nn=$srcdir/tests/e2e/frozen.nn

# ---- stats: parameters trained vs frozen, memory, work ----
stat() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([0-9.e+]*\),*$/\1/p" "$1.json"; }
for m in full head mid; do
    "$NNC" "$nn" --model $m --emit=stats > $m.json || bad "$m: stats"
done
check "full: nothing frozen" '[ "$(stat full frozen_params)" = 0 ]'
check "head: the conv's 40 parameters frozen" '[ "$(stat head frozen_params)" = 40 ] && [ "$(stat head params)" = $(( $(stat full params) - 40 )) ]'
check "mid: dense_0's 136 frozen" '[ "$(stat mid frozen_params)" = 136 ]'
for k in grad_bytes opt_state_bytes mem_bytes flops_train_step; do
    check "head: less $k than full" '[ "$(stat head $k | cut -d. -f1)" -lt "$(stat full $k | cut -d. -f1)" ]'
done
check "head: predict unchanged" '[ "$(stat head flops_predict)" = "$(stat full flops_predict)" ]'

# ---- the emitted C: no gradient or state for frozen parameters ----
"$NNC" "$nn" --model head -o head.c || bad "head: nnc"
check "head: no gradient of conv2d_0" '! grep -q "G_conv2d_0" head.c && grep -q "G_dense_0_weight" head.c'
check "head: no optimizer state of conv2d_0" '! grep -q "S0_conv2d_0" head.c'
check "head: the conv's backward is gone" '! grep -q "im2col_back\|conv2d_0.*(backward)" head.c'
check "head.h: HEAD_FROZEN" 'grep -q "#define HEAD_FROZEN 40" head.h'
"$NNC" "$nn" --model mid -o mid.c || bad "mid: nnc"
check "mid: the first conv still trains" 'grep -q "G_conv2d_0_weight" mid.c && ! grep -q "G_dense_0_weight" mid.c'

# ---- train: full, then the head from its checkpoint ----
for m in full head mid; do
    "$NNC" "$nn" --model $m --emit=main -o $m-main.c || bad "$m: nnc --emit=main"
    $CC -std=c99 -O2 $WARN $RT_CFLAGS -o $m $m-main.c $RT_LIBS 2> cc.log || { bad "$m: cc"; show cc.log; }
done
[ -x full ] && [ -x head ] && [ -x mid ] || { finish frozen.sh; }
awk 'BEGIN { srand(3);
    for (i = 0; i < 64; i++) {
        s = 0; line = "";
        for (j = 0; j < 36; j++) { v = rand(); s += (j < 18) ? v : -v;
            line = line (j ? "," : "") sprintf("%.4f", v) }
        print line > "x.csv"; print (s > 0.5 ? 0 : s < -0.5 ? 1 : 2) > "y.csv" } }'
./full train --x x.csv --y y.csv --epochs 3 --save full.st -q; check "full trains" '[ $? -eq 0 ]'
./head train --x x.csv --y y.csv --epochs 3 --init-from full.st --save head.st -q 2> err.txt
check "head trains from full's checkpoint (optimizer state of frozen tensors skipped)" '[ $? -eq 0 ]'
./mid train --x x.csv --y y.csv --epochs 3 --init-from full.st --save mid.st -q
check "mid trains from full's checkpoint" '[ $? -eq 0 ]'

# tensors: same bits (=) or changed (!=), from the raw safetensors
cmp_tensor() {  # A B NAME: prints "same" or "differ"
    /usr/bin/env python3 - "$@" <<'PY'
import json, struct, sys
def tensors(p):
    d = open(p, "rb").read(); n = struct.unpack("<Q", d[:8])[0]
    h = json.loads(d[8:8 + n])
    return {k: d[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in h.items() if k != "__metadata__"}, h.get("__metadata__", {})
a, b = tensors(sys.argv[1])[0], tensors(sys.argv[2])[0]
k = sys.argv[3]
print("missing" if k not in a or k not in b else "same" if a[k] == b[k] else "differ")
PY
}
if command -v python3 > /dev/null 2>&1; then
    for k in conv2d_0.weight conv2d_0.bias; do
        check "head: $k bit-identical to full's" '[ "$(cmp_tensor full.st head.st $k)" = same ]'
    done
    for k in dense_0.weight dense_1.bias; do
        check "head: $k retrained" '[ "$(cmp_tensor full.st head.st $k)" = differ ]'
    done
    check "mid: dense_0.weight frozen" '[ "$(cmp_tensor full.st mid.st dense_0.weight)" = same ]'
    check "mid: conv2d_0.weight retrained through it" '[ "$(cmp_tensor full.st mid.st conv2d_0.weight)" = differ ]'
    check "head.st: weights of every layer, no state for frozen ones" '[ "$(cmp_tensor head.st head.st conv2d_0.weight)" = same ] && [ "$(cmp_tensor head.st head.st optimizer.conv2d_0.weight.exp_avg)" = missing ] && [ "$(cmp_tensor head.st head.st optimizer.dense_0.weight.exp_avg)" = same ]'
else
    skip "tensor comparisons (no python3)"
fi

# ---- loading across the frozen and the whole forms ----
./head train --x x.csv --y y.csv --epochs 4 --resume full.st --save r.st -q
check "head resumes from full's checkpoint (with its state)" '[ $? -eq 0 ]'
./head evaluate --x x.csv --y y.csv --weights head.st > /dev/null; check "head evaluates its own" '[ $? -eq 0 ]'
./full evaluate --x x.csv --y y.csv --weights head.st > /dev/null; check "full evaluates head's weights" '[ $? -eq 0 ]'
./full train --x x.csv --y y.csv --epochs 1 --resume head.st --save x.st -q 2> err.txt
check "full refuses to resume from head's (no state for its convolutions)" '[ $? -ne 0 ] && grep -q "cannot load" err.txt'
./full train --x x.csv --y y.csv --epochs 1 --init-from head.st --save x.st -q
check "full starts from head's weights with --init-from" '[ $? -eq 0 ]'
./head train --x x.csv --y y.csv --init-from full.st --resume full.st 2> err.txt
check "--init-from with --resume: exit 2" '[ $? -eq 2 ] && grep -q "init-from" err.txt'
./head evaluate --x x.csv --y y.csv --init-from full.st 2> err.txt
check "evaluate --init-from: exit 2" '[ $? -eq 2 ]'

finish frozen.sh
