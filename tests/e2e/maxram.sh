#!/bin/sh
# maxram.sh - nnc --max-ram (tests/e2e/maxram.nn): a budget below what the
# model can reach is refused (exit 1) with the smallest budget found,
# which then compiles and fits; --emit=stats reports the budget, the
# recomputed nodes and their FLOPs; and training with recomputation gives
# the checkpoint (weights, optimizer state) of training without it, bit
# for bit, for a CNN and a small transformer.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1
nn=$srcdir/tests/e2e/maxram.nn
stat() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([0-9.e+]*\),*$/\1/p" "$1"; }

"$NNC" "$nn" --model cnn --max-ram=12x -o x.c 2> err.txt
check "--max-ram=12x: exit 2" '[ $? -eq 2 ] && grep -q "not a number of bytes" err.txt'
"$NNC" "$nn" --model cnn --max-ram=1G --emit=stats > big.json
check "a budget that fits already: no recomputation" '[ $? -eq 0 ] && [ "$(stat big.json recomputed_nodes)" = 0 ] && [ "$(stat big.json max_ram)" = 1073741824 ]'

for m in cnn lm; do
    "$NNC" "$nn" --model $m --emit=stats > $m-0.json || bad "$m: stats"
    "$NNC" "$nn" --model $m --max-ram=1000 -o x.c 2> err.txt
    check "$m: --max-ram=1000 refused, no output" '[ $? -eq 1 ] && [ ! -e x.c ] && grep -q "error: --max-ram=1000 is below what model .$m. can train in: the smallest budget found is --max-ram=[0-9]" err.txt'
    least=$(sed -n 's/.*smallest budget found is --max-ram=\([0-9]*\).*/\1/p' err.txt)
    full=$(stat $m-0.json mem_bytes)
    check "$m: the smallest budget is below the plan without recomputation" '[ -n "$least" ] && [ "$least" -lt "$full" ]'
    [ -n "$least" ] || continue
    "$NNC" "$nn" --model $m --max-ram=$least --emit=stats > $m-r.json
    check "$m: the smallest budget found compiles and fits" '[ $? -eq 0 ] && [ "$(stat $m-r.json mem_bytes)" -le "$least" ]'
    check "$m: stats report the recomputation" '[ "$(stat $m-r.json recomputed_nodes)" -gt 0 ] && [ "$(stat $m-r.json max_ram)" = "$least" ] && awk "BEGIN { exit !($(stat $m-r.json recompute_flops) > 0) }"'
    check "$m: the extra FLOPs are the step's difference" 'awk "BEGIN { exit !($(stat $m-r.json flops_train_step) - $(stat $m-0.json flops_train_step) == $(stat $m-r.json recompute_flops)) }"'
    for v in 0 r; do
        flag=; [ $v = r ] && flag=--max-ram=$least
        "$NNC" "$nn" --model $m $flag --emit=main -o $m-$v.c || bad "$m-$v: nnc"
        $CC -std=c99 -O2 $WARN $RT_CFLAGS -o $m-$v $m-$v.c $RT_LIBS 2> cc.log || { bad "$m-$v: cc"; show cc.log; }
    done
done

# ---- the same bits: a few epochs (cnn) and steps (lm) ----
awk 'BEGIN { srand(11);
    for (i = 0; i < 48; i++) { line = "";
        for (j = 0; j < 144; j++) line = line (j ? "," : "") sprintf("%.4f", rand())
        print line > "x.csv"; print int(rand() * 4) > "y.csv" }
    for (i = 0; i < 400; i++) printf "%c", 97 + int(rand() * 6) > "t.txt" }'
if [ -x cnn-0 ] && [ -x cnn-r ]; then
    ./cnn-0 train --x x.csv --y y.csv --epochs 3 --save cnn-0.st -q &&
        ./cnn-r train --x x.csv --y y.csv --epochs 3 --save cnn-r.st -q
    check "cnn: trained with recomputation, same checkpoint bits" '[ $? -eq 0 ] && cmp -s cnn-0.st cnn-r.st'
    ./cnn-r train --x x.csv --y y.csv --epochs 3 --threads 2 --save cnn-r2.st -q
    check "cnn: same bits on 2 threads" 'cmp -s cnn-0.st cnn-r2.st'
fi
if [ -x lm-0 ] && [ -x lm-r ]; then
    ./lm-0 train --text t.txt --steps 12 --eval-every 12 --save lm-0.st -q &&
        ./lm-r train --text t.txt --steps 12 --eval-every 12 --save lm-r.st -q
    check "lm: trained with recomputation, same checkpoint bits" '[ $? -eq 0 ] && cmp -s lm-0.st lm-r.st'
fi
finish maxram.sh
