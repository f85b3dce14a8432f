#!/bin/sh
# int8.sh - nnc --quantize=int8 end to end (issue 16): a small CNN
# (tests/e2e/int8.nn) trained for a few seconds' fraction on images made
# here with awk, then compiled from its checkpoint twice, as float
# (--weights-from) and as int8 (--quantize=int8 --calibrate on the
# training rows), both warning-free under every compiler, and run side by
# side on held-out rows by tests/e2e/int8_main.c.
#
# Tolerance (stated, and checked): the argmax of the int8 logits agrees
# with the float model's on >= 98% of the 300 held-out rows, and no logit
# differs by more than 5% of the largest |float logit|. (The Fashion-MNIST
# CNN, 10,000 test images: 99.7% agreement, 2% of the largest logit.)
# Also: the int8 outputs are the same bits under every kernel set
# (NNC_ISA=scalar and the default), the C is the same on a second run,
# --emit=stats tells what stays float, and bad uses fail with a message.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1
m=$srcdir/tests/e2e/int8.nn

# ---- data: a bright row (0), column (1) or diagonal (2) on noise ----
awk 'BEGIN { srand(11);
    for (i = 0; i < 1200; i++) {
        k = i % 3; p = int(rand() * 8); line = "";
        for (y = 0; y < 8; y++) for (x = 0; x < 8; x++) {
            v = rand();
            if ((k == 0 && y == p) || (k == 1 && x == p) || (k == 2 && (x + p) % 8 == y)) v += 0.5;
            line = line (line == "" ? "" : ",") sprintf("%.3f", v - 0.5);
        }
        f = i < 900 ? "x.csv" : "xt.csv"; g = i < 900 ? "y.csv" : "yt.csv";
        print line > f; print k > g;
    } }'

# ---- train (the --emit=main program), then the two models ----
"$NNC" "$m" --emit=main -o train.c && $CC -std=c99 -O2 $RT_CFLAGS -o train train.c $RT_LIBS \
    $HARNESS_CFLAGS || { echo "int8.sh: the training program did not build"; exit 1; }
./train train --x x.csv --y y.csv --epochs 6 --save w.st -q
check "the CNN trains" '[ $? -eq 0 ] && [ -s w.st ]'
"$NNC" "$m" --weights-from=w.st --prefix f -o f.c
check "float model" '[ $? -eq 0 ]'
"$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=x.csv --prefix q -o q.c
check "int8 model" '[ $? -eq 0 ] && [ -s q.c ] && [ -s q.h ]'
check "int8: patches (same padding), in-place windows, float logits" \
    'grep -q "nnc_im2col_i8" q.c && grep -q "nnc_qconv" q.c && grep -q "NULL, y, 3);" q.c'
mkdir again && "$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=x.csv --prefix q \
    -o again/q.c
check "the same C on a second run" 'cmp -s q.c again/q.c && cmp -s q.h again/q.h'

built=""
for cc in $compilers; do
    if $cc -std=c99 -O2 $WARN $RT_CFLAGS -I. -o "cmp_$cc" "$srcdir/tests/e2e/int8_main.c" f.c q.c \
        $RT_LIBS $HARNESS_CFLAGS 2> cc.log; then ok; built=$cc; else bad "$cc:"; cat cc.log; fi
done
[ -n "$built" ] || { echo "int8.sh: no harness built"; exit 1; }

# ---- int8 against float on the held-out rows ----
./cmp_$built xt.csv yt.csv 1 0.98 0.05 > cmp.txt
check "int8 within tolerance of float" '[ $? -eq 0 ]'
show cmp.txt
NNC_ISA=scalar ./cmp_$built xt.csv yt.csv 1 --dump scalar.bin &&
    ./cmp_$built xt.csv yt.csv 1 --dump best.bin
check "the same int8 outputs under scalar and $(./cmp_$built xt.csv yt.csv 1 --bench 1 |
    sed 's/.*isa \([a-z0-9]*\).*/\1/')" '[ $? -eq 0 ] && cmp -s scalar.bin best.bin'

# ---- stats ----
"$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=x.csv --emit=stats > stats.json
check "stats: the int8 block, dense_1's output stays float" \
    'grep -q "\"int8\":" stats.json && grep -A1 "\"float_outputs\":" stats.json | grep -q "dense_1" &&
     grep -q "max-abs calibration" stats.json && grep -q "\"calibration_rows\":.*512" stats.json'

# ---- a softmax output stays float, dropout is the identity ----
cat > sm.nn <<'NN'
model sm {
    input x[64]
    dense(16, activation=relu)
    dropout(0.2)
    dense(3, activation=softmax)
    loss categorical_crossentropy
    optimizer adam(lr=0.01)
    batch 16
}
NN
"$NNC" sm.nn --emit=main -o smt.c && $CC -std=c99 -O2 $RT_CFLAGS -o smt smt.c $RT_LIBS \
    $HARNESS_CFLAGS && ./smt train --x x.csv --y y.csv --epochs 4 --save sm.st -q &&
    "$NNC" sm.nn --weights-from=sm.st --prefix f -o f.c &&
    "$NNC" sm.nn --weights-from=sm.st --quantize=int8 --calibrate=x.csv --prefix q -o q.c &&
    $CC -std=c99 -O2 $WARN $RT_CFLAGS -I. -o smc "$srcdir/tests/e2e/int8_main.c" f.c q.c \
        $RT_LIBS $HARNESS_CFLAGS && ./smc xt.csv yt.csv 1 0.98 0.05 > sm.txt
check "softmax model: int8 within tolerance" '[ $? -eq 0 ] && grep -q "nnc_softmax(ctx->logits" q.c'
show sm.txt

# ---- bad uses ----
"$NNC" "$m" --quantize=int8 --calibrate=x.csv 2> err.txt
check "--quantize without --weights-from: exit 2" '[ $? -eq 2 ] && grep -q "weights-from" err.txt'
"$NNC" "$m" --weights-from=w.st --quantize=int4 --calibrate=x.csv 2> err.txt
check "--quantize=int4: exit 2" '[ $? -eq 2 ] && grep -q "int4" err.txt'
"$NNC" "$m" --weights-from=w.st --calibrate=x.csv 2> err.txt
check "--calibrate alone: exit 2" '[ $? -eq 2 ]'
"$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=x.csv --emit=main 2> err.txt
check "--emit=main with --quantize: exit 2" '[ $? -eq 2 ]'
"$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=y.csv -o e.c 2> err.txt
check "calibration rows of the wrong width: exit 1" \
    '[ $? -eq 1 ] && grep -q "y.csv has 900 rows of 1 values" err.txt && [ ! -e e.c ]'
"$NNC" "$m" --weights-from=w.st --quantize=int8 --calibrate=none.csv -o e.c 2> err.txt
check "no calibration file: exit 1" '[ $? -eq 1 ] && grep -q "none.csv" err.txt'
cat > tanh.nn <<'NN'
model t {
    input x[4]
    dense(8, activation=tanh)
    dense(2)
    loss mse
    optimizer sgd(lr=0.1)
    batch 4
}
NN
"$NNC" tanh.nn --weights=embedded --emit=main -o t.c && $CC -std=c99 $RT_CFLAGS -o t t.c $RT_LIBS \
    $HARNESS_CFLAGS && printf '1,2,3,4\n' > tx.csv && printf '1,2\n' > ty.csv &&
    ./t train --x tx.csv --y ty.csv --epochs 1 --save t.st -q
"$NNC" tanh.nn --weights-from=t.st --quantize=int8 --calibrate=tx.csv -o e.c 2> err.txt
check "tanh has no int8 kernel: a located error" \
    '[ $? -eq 1 ] && grep -q "tanh.nn:3:.*error: --quantize=int8: tanh has no int8 kernel" err.txt'
finish int8.sh
