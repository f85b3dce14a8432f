#!/bin/sh
# faults.sh - numerical faults in the training program of --emit=main
# (issue 15): a NaN or an infinity in the data (CSV, .npy) is rejected
# with exit status 1 and a message naming the file and the row; a loss
# that becomes infinite or NaN stops training with exit status 1 and a
# message naming the epoch and step, writes nothing after that step (no
# checkpoint, no --save file), and leaves the last checkpoint as it was.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

"$NNC" "$srcdir/tests/e2e/faults.nn" --emit=main -o reg.c &&
    $CC -std=c99 -O2 $RT_CFLAGS -o reg reg.c $RT_LIBS $HARNESS_CFLAGS ||
    { echo "FAIL: the training program does not build"; exit 1; }
printf '0.1,0.2\n0.3,0.4\n0.5,0.6\n0.7,0.8\n' > x.csv
printf '1\n2\n3\n4\n' > y.csv

# ---- the data ----
for bad in nan inf -inf 1e39; do
    printf 'a,b\n0.1,0.2\n0.3,%s\n0.5,0.6\n0.7,0.8\n' $bad > xbad.csv
    ./reg train --x xbad.csv --y y.csv --epochs 1 --save w.st 2> err.txt
    check "CSV value $bad: exit 1, file and line named" \
        '[ $? -eq 1 ] && grep -q "xbad.csv:3: .$bad. in column 2 is not a finite float" err.txt && [ ! -e w.st ]'
done
printf '1\n2\nNaN\n4\n' > ybad.csv
./reg train --x x.csv --y ybad.csv --epochs 1 --save w.st 2> err.txt
check "CSV target NaN: exit 1, file and line named" \
    '[ $? -eq 1 ] && grep -q "ybad.csv:3: " err.txt && [ ! -e w.st ]'
# .npy float32 (4, 2), written byte by byte: a NaN at row 2, column 1,
# then +inf at row 4, column 2
if command -v python3 > /dev/null 2>&1; then
    python3 - << 'EOF'
import struct
def npy(path, vals):
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }"
    h += " " * (63 - len(h)) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
        f.write(struct.pack("<8f", *vals))
npy("nan.npy", [0.1, 0.2, float("nan"), 0.4, 0.5, 0.6, 0.7, 0.8])
npy("inf.npy", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, float("inf")])
EOF
    ./reg train --x nan.npy --y y.csv --epochs 1 --save w.st 2> err.txt
    check ".npy NaN: exit 1, row and column named" \
        '[ $? -eq 1 ] && grep -q "nan.npy: row 2, column 1 .* is not a finite float: NaN" err.txt'
    ./reg train --x inf.npy --y y.csv --epochs 1 --save w.st 2> err.txt
    check ".npy infinity: exit 1, row and column named" \
        '[ $? -eq 1 ] && grep -q "inf.npy: row 4, column 2 .* is not a finite float: infinity" err.txt'
else
    skip ".npy files (no python3 to write them)"
fi

# ---- a diverging loss: --lr 1e6 on inputs of 1e10 makes the second
# step's loss infinite ----
printf '1e10,1e10\n2e10,1e10\n1e10,3e10\n2e10,2e10\n' > xbig.csv
./reg train --x xbig.csv --y y.csv --epochs 1 --lr 1e6 --no-shuffle --save one.st 2> /dev/null
check "one epoch at --lr 1e6 has a finite loss" '[ $? -eq 0 ] && [ -s one.st ]'
./reg train --x xbig.csv --y y.csv --epochs 5 --lr 1e6 --no-shuffle --save w.st \
    --checkpoint ck.st --checkpoint-every 1 2> err.txt
rc=$?
check "diverging loss: exit status 1" '[ $rc -eq 1 ]'
check "diverging loss: the message names the epoch and the step" \
    'grep -Eq "error: the loss is (inf|nan|-nan) at epoch 2, step 1 \(diverged" err.txt'
check "diverging loss: no --save file" '[ ! -e w.st ]'
check "diverging loss: the checkpoint is the last good one (after epoch 1)" 'cmp -s ck.st one.st'
check "diverging loss: no temporary file left" '[ -z "$(ls | grep "\.tmp\.")" ]'
finish faults.sh
