#!/bin/sh
# driver.sh - the training program of --emit=main, end to end: small models
# (tests/e2e/driver_*.nn) trained from tiny data files made here (CSV with
# awk, .npy with python3-numpy, IDX gzipped with gzip), evaluate, predict,
# the CSV log, --lr, checkpoints and --resume (the resumed run must equal
# the uninterrupted one bit for bit), early stopping, and bad data files
# (each must fail with exit status 1 and name the file and line or offset).
# Without python3-numpy, gzip, script or graphviz's dot, their checks are
# skipped and the script exits 77 (SKIP) if nothing failed.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

# ---- build: one self-contained file per model, warning-free ----
for m in cls sparse reg; do
    "$NNC" "$srcdir/tests/e2e/driver_$m.nn" --emit=main -o "$m.c" || { bad "$m: nnc"; continue; }
    for cc in $compilers; do
        if $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror $RT_CFLAGS -o "${m}_$cc" "$m.c" \
            $RT_LIBS $HARNESS_CFLAGS 2> cc.log; then ok; else bad "$m: $cc:"; cat cc.log; fi
    done
    cp "${m}_$(echo $compilers | cut -d' ' -f1)" "$m"
done
[ -x cls ] && [ -x sparse ] && [ -x reg ] || { echo "driver programs not built"; exit 1; }

# ---- usage ----
./cls --help > help.txt; check "--help exits 0" '[ $? -eq 0 ] && grep -q "cls" help.txt && grep -q -- "--val-split" help.txt'
./cls > /dev/null 2>&1; check "no arguments: exit 2" '[ $? -eq 2 ]'
./cls train --x a --bogus 2> err.txt; check "unknown option: exit 2" '[ $? -eq 2 ] && grep -q "unknown option .--bogus." err.txt'
./cls train --x a 2> err.txt; check "train without --y: exit 2" '[ $? -eq 2 ] && grep -q -- "--y" err.txt'
./cls train --x a --y b --val-split 2 2> err.txt; check "bad --val-split: exit 2" '[ $? -eq 2 ]'
./cls train --x a --y b --checkpoint c 2> err.txt; check "--checkpoint without -every" '[ $? -eq 2 ]'

# ---- data: class = the largest of the first three features (+ noise column) ----
awk 'BEGIN { srand(7); print "f0,f1,f2,f3" > "x.csv";
    for (i = 0; i < 240; i++) {
        a = rand(); b = rand(); c = rand(); d = rand() - 0.5;
        k = (a > b && a > c) ? 0 : (b > c ? 1 : 2);
        printf "%.5f,%.5f,%.5f,%.5f\n", a, b, c, d > "x.csv"; print k > "y.csv";
        printf "%.5f,%.5f\n", a, b > "xr.csv"; printf "%.6f\n", a - 2 * b > "yr.csv";
    } }'

# ---- train, log, evaluate, predict (softmax_cross_entropy: one-hot from indices) ----
./cls train --x x.csv --y y.csv --epochs 40 --val-split 0.25 --log log.csv --save w.st \
    2> train.err
check "cls trains" '[ $? -eq 0 ] && [ -s w.st ]'
check "log header" '[ "$(head -n 1 log.csv)" = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds" ]'
check "log: one line per epoch" '[ $(wc -l < log.csv) -eq 41 ]'
check "log: every column filled" '[ $(awk -F, "NR > 1 && NF == 7 && \$2 != \"\" && \$3 != \"\" && \$4 != \"\" && \$5 != \"\"" log.csv | wc -l) -eq 40 ]'
check "loss goes down" 'awk -F, "NR == 2 { a = \$2 } END { exit !(\$2 < a / 2) }" log.csv'
check "val_accuracy > 0.8" 'awk -F, "END { exit !(\$5 > 0.8) }" log.csv'
check "plain epoch lines when stderr is not a terminal" 'grep -q "^epoch 40/40: loss" train.err && ! grep -q "ETA" train.err'
if command -v script > /dev/null 2>&1; then   # a terminal: the progress bar
    script -qec "./cls train --x x.csv --y y.csv --epochs 2 --save t.st" /dev/null > tty.txt 2>&1
    check "progress bar on a terminal" 'grep -q "samples/s ETA" tty.txt && grep -q "epoch 2/2: loss" tty.txt'
else
    skip "the progress bar on a terminal (no script(1): apt install bsdutils)"
fi
./cls evaluate --x x.csv --y y.csv --weights w.st > eval.txt
check "evaluate" '[ $? -eq 0 ] && awk "{ exit !(\$1 == \"loss\" && \$4 > 0.8) }" eval.txt'
./cls predict --x x.csv --weights w.st -o out.csv
check "predict: 3 values per row" '[ $? -eq 0 ] && [ $(wc -l < out.csv) -eq 240 ] && [ $(awk -F, "NF != 3" out.csv | wc -l) -eq 0 ]'
./cls predict --x x.csv --weights w.st --argmax > cls.txt
check "predict --argmax matches labels" '[ $(paste -d" " cls.txt y.csv | awk "\$1 == \$2" | wc -l) -gt 200 ]'
./cls predict --x x.csv --weights missing.st > /dev/null 2> err.txt
check "predict with missing weights" '[ $? -eq 1 ] && grep -q "missing.st" err.txt'

# ---- sparse labels; --lr shows in the log ----
./sparse train --x x.csv --y y.csv --epochs 30 --lr 0.05 --log slog.csv -q --save s.st
check "sparse trains" '[ $? -eq 0 ]'
check "--lr in the log" 'awk -F, "END { exit !(\$6 == 0.05 && \$3 > 0.8) }" slog.csv'

# ---- regression: accuracy columns empty; a schedule shows in lr ----
./reg train --x xr.csv --y yr.csv --epochs 20 --val-split 0.2 --log rlog.csv -q --save r.st
check "reg trains" '[ $? -eq 0 ]'
check "reg log: no accuracy" '[ $(awk -F, "NR > 1 && (\$3 != \"\" || \$5 != \"\" || \$4 == \"\")" rlog.csv | wc -l) -eq 0 ]'
check "reg log: lr decays" 'awk -F, "NR == 2 { a = \$6 } END { exit !(\$6 < a) }" rlog.csv'
check "reg learns" 'awk -F, "END { exit !(\$4 < 0.05) }" rlog.csv'
./reg evaluate --x xr.csv --y yr.csv --weights r.st > reval.txt
check "reg evaluate: no accuracy" '! grep -q accuracy reval.txt && grep -q "^loss" reval.txt'

# ---- checkpoints and resume: 6 epochs straight = 3 + resumed 3 ----
./cls train --x x.csv --y y.csv --epochs 6 --val-split 0.2 --log full.csv -q --save full.st
./cls train --x x.csv --y y.csv --epochs 3 --val-split 0.2 -q --checkpoint-every 3 \
    --checkpoint ck.st --save half.st
./cls train --x x.csv --y y.csv --epochs 6 --val-split 0.2 --log res.csv --resume ck.st \
    --save res.st 2> res.err
check "resume runs" '[ $? -eq 0 ] && grep -q "resuming after epoch 3" res.err'
check "resumed weights equal the uninterrupted run" 'cmp -s full.st res.st'
check "resumed log lines 4-6" '[ "$(cut -d, -f1-6 res.csv | tail -n 3)" = "$(cut -d, -f1-6 full.csv | tail -n 3)" ]'
check "checkpoint every epoch" './cls train --x x.csv --y y.csv --epochs 2 -q --checkpoint-every 1 --checkpoint ck1.st --save x.st && [ -s ck1.st ]'

# ---- early stop: weights that cannot move give the same loss every epoch ----
./cls train --x x.csv --y y.csv --epochs 50 --no-shuffle --lr 1e-12 --early-stop 2 \
    --log elog.csv --save e.st 2> e.err
check "early stop after 3 epochs" '[ $? -eq 0 ] && [ $(wc -l < elog.csv) -eq 4 ] && grep -q "early stop" e.err'

# ---- evaluate's loss (from predict's outputs) = the training step's loss,
#      when the weights cannot move (240 rows: whole batches for all three) ----
for m in cls sparse reg; do
    case $m in reg) xs=xr.csv ys=yr.csv ;; *) xs=x.csv ys=y.csv ;; esac
    ./$m train --x $xs --y $ys --epochs 1 --no-shuffle --lr 1e-12 --log l0.csv -q --save l0.st
    ./$m evaluate --x $xs --y $ys --weights l0.st > l0.txt
    check "$m: evaluate's loss = train_step's" 'awk -F, "NR == 2 { print \$2 }" l0.csv | paste - l0.txt | awk "{ d = \$1 - \$3; exit !(d < 1e-5 * \$1 && d > -1e-5 * \$1) }"'
done

# ---- .npy (python3-numpy) ----
if find_python numpy; then
    $py - <<'EOF'
import numpy as np
x = np.loadtxt("x.csv", delimiter=",", skiprows=1)
y = np.loadtxt("y.csv")
np.save("x64.npy", x)
np.save("x32.npy", x.astype(np.float32))
np.save("y64.npy", y.astype(np.int64))
np.save("yu8.npy", y.astype(np.uint8))
np.save("xb.npy", (x * 255).astype(np.uint8))
np.save("y2.npy", y[:100].astype(np.int32))
EOF
    ./cls train --x x64.npy --y y64.npy --epochs 6 --val-split 0.2 --log n.csv -q --save n.st
    check "npy float64/int64 = csv" '[ $? -eq 0 ] && cmp -s n.st full.st'
    ./cls train --x x32.npy --y yu8.npy --epochs 6 --val-split 0.2 -q --save n32.st
    check "npy float32/uint8 = csv" '[ $? -eq 0 ] && cmp -s n32.st full.st'
    ./cls train --x xb.npy --y yu8.npy --epochs 2 --scale 1/255 -q --save nb.st
    check "npy uint8 with --scale 1/255" '[ $? -eq 0 ]'
    ./cls train --x x64.npy --y y2.npy --epochs 1 -q 2> err.txt
    check "npy: mismatched sample counts" '[ $? -eq 1 ] && grep -q "x64.npy has 240 samples but y2.npy has 100" err.txt'
    $py -c "import numpy as np; np.save('big.npy', np.zeros((3, 4), dtype='>f4'))"
    ./cls predict --x big.npy --weights w.st 2> err.txt > /dev/null
    check "npy: big-endian refused" '[ $? -eq 1 ] && grep -q "big.npy.*>f4.*not supported" err.txt'

    # ---- IDX, gzipped by gzip ----
    if command -v gzip > /dev/null 2>&1; then
        $py - <<'EOF'
import numpy as np, struct
x = np.loadtxt("x.csv", delimiter=",", skiprows=1)
y = np.loadtxt("y.csv").astype(np.uint8)
with open("x.idx", "wb") as f:
    f.write(struct.pack(">BBBBII", 0, 0, 0x0D, 2, x.shape[0], 4))
    f.write(x.astype(">f4").tobytes())
with open("y.idx", "wb") as f:
    f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, y.shape[0]))
    f.write(y.tobytes())
with open("ybad.idx", "wb") as f:
    f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, y.shape[0]))
    y2 = y.copy(); y2[17] = 3
    f.write(y2.tobytes())
EOF
        gzip -k x.idx && gzip -k y.idx && gzip -k ybad.idx
        ./cls train --x x.idx.gz --y y.idx.gz --epochs 6 --val-split 0.2 -q --save i.st
        check "IDX gz = csv" '[ $? -eq 0 ] && cmp -s i.st full.st'
        ./cls train --x x.idx.gz --y ybad.idx.gz --epochs 1 -q 2> err.txt
        check "IDX: label out of range with its offset" '[ $? -eq 1 ] && grep -q "ybad.idx.gz: byte offset 25 (decompressed): label 3 is not a class index in \[0, 3)" err.txt'
        head -c 300 x.idx.gz > cut.idx.gz
        ./cls predict --x cut.idx.gz --weights w.st 2> err.txt > /dev/null
        check "truncated gzip" '[ $? -eq 1 ] && grep -q "cut.idx.gz: byte offset" err.txt'
    else
        skip "IDX gz checks (gzip not installed)"
    fi
else
    skip ".npy and IDX checks (no python3 with numpy: apt install python3-numpy)"
fi

# ---- bad CSV files ----
sed '3s/.*/0.1,0.2,zz,0.4/' x.csv > xbad.csv
./cls train --x xbad.csv --y y.csv -q 2> err.txt
check "bad number: file and line" '[ $? -eq 1 ] && grep -q "xbad.csv:3: bad number .zz. in column 3" err.txt'
sed '5s/.*/0.1,0.2/' x.csv > xshort.csv
./cls train --x xshort.csv --y y.csv -q 2> err.txt
check "short line" '[ $? -eq 1 ] && grep -q "xshort.csv:5: 2 values, but line 2 has 4" err.txt'
sed '4s/.*/5/' y.csv > ybad.csv
./cls train --x x.csv --y ybad.csv -q 2> err.txt
check "label out of range: file and line" '[ $? -eq 1 ] && grep -q "ybad.csv:4: label 5 is not a class index in \[0, 3)" err.txt'
sed '6s/.*/1.5/' y.csv > yfrac.csv
./sparse evaluate --x x.csv --y yfrac.csv --weights s.st 2> err.txt
check "fractional class index" '[ $? -eq 1 ] && grep -q "yfrac.csv:6: label 1.5" err.txt'
head -n 100 y.csv > yfew.csv
./cls train --x x.csv --y yfew.csv -q 2> err.txt
check "mismatched counts" '[ $? -eq 1 ] && grep -q "x.csv has 240 samples but yfew.csv has 100" err.txt'
./cls train --x xr.csv --y y.csv -q 2> err.txt
check "wrong width" '[ $? -eq 1 ] && grep -q "xr.csv: 2 values per sample, the model takes 4" err.txt'
./cls train --x nothere.csv --y y.csv -q 2> err.txt
check "missing file" '[ $? -eq 1 ] && grep -q "nothere.csv: cannot open" err.txt'
printf '1,2\n0,x\n' > yr2.csv
./reg train --x xr.csv --y yr2.csv -q 2> err.txt
check "bad target number" '[ $? -eq 1 ] && grep -q "yr2.csv:2: bad number" err.txt'

# ---- --emit=dot: sections, fused kernels, valid for graphviz ----
"$NNC" "$srcdir/tests/e2e/driver_cls.nn" --emit=dot > g.dot
check "dot: forward, backward and update clusters, fused kernels" 'grep -q cluster_forward g.dot && grep -q cluster_backward g.dot && grep -q cluster_update g.dot && grep -q "ops fused" g.dot'
if command -v dot > /dev/null 2>&1; then
    check "dot renders" 'dot -Tsvg g.dot > g.svg && grep -q "<svg" g.svg'
else
    skip "rendering the dot output (no dot: apt install graphviz)"
fi

finish driver
