#!/bin/sh
# kill.sh - checkpoints survive a kill at any moment (issue 15). The
# training program of --emit=main checkpoints every step (one batch per
# epoch, --checkpoint-every 1) and is killed with SIGKILL at random
# moments, KILLS times (default 100). After each kill the checkpoint, if
# one was written yet, must load, and training resumed from it must end
# with the weights of the uninterrupted run bit for bit: a torn or mixed
# file would fail to load or resume elsewhere. Saving goes through a
# temporary file renamed over the checkpoint, so a kill may leave that
# temporary file behind: the next run that checkpoints to the same path
# removes it, and a clean run leaves none.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1
KILLS=${KILLS:-100}
EPOCHS=12

"$NNC" "$srcdir/tests/e2e/kill.nn" --emit=main -o reg.c &&
    $CC -std=c99 -O2 $RT_CFLAGS -o reg reg.c $RT_LIBS $HARNESS_CFLAGS ||
    { echo "FAIL: the training program does not build"; exit 1; }
awk 'BEGIN { srand(3); for (i = 0; i < 4; i++) { a = rand(); b = rand();
    printf "%.5f,%.5f\n", a, b > "x.csv"; printf "%.6f\n", a - 2 * b > "y.csv" } }'
train() { ./reg train --x x.csv --y y.csv --epochs $EPOCHS "$@"; }

# the uninterrupted run, and how long it takes when checkpointing
train --save ref.st --quiet
check "the reference run" '[ $? -eq 0 ] && [ -s ref.st ]'
start=$(date +%s%N)
train --save full.st --checkpoint full_ck.st --checkpoint-every 1 --quiet
ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
check "checkpointing does not change the result" 'cmp -s ref.st full.st'
check "a clean run leaves no temporary file" '[ -z "$(ls | grep "\.tmp\.")" ]'

# kills at moments drawn uniformly over the run
none=0 resumed=0 unreadable=0 mixed=0 stale=0
i=0
while [ $i -lt "$KILLS" ]; do
    i=$((i + 1))
    rm -f ck.st res.st
    # the program itself in the background (a function would run in a
    # subshell, which the kill would hit instead)
    ./reg train --x x.csv --y y.csv --epochs $EPOCHS --save out.st --checkpoint ck.st \
        --checkpoint-every 1 --quiet 2> /dev/null &
    pid=$!
    sleep "$(awk -v s=$i -v ms=$ms 'BEGIN { srand(s); printf "%.3f", rand() * ms / 1000 }')"
    kill -KILL $pid 2> /dev/null
    wait $pid 2> /dev/null
    if [ ! -e ck.st ]; then
        none=$((none + 1))
        rm -f ck.st.tmp.*
        continue
    fi
    ls ck.st.tmp.* > /dev/null 2>&1 && stale=$((stale + 1))
    # resume; --checkpoint too, with an interval past the run: no write,
    # but the stale temporary files of the killed run go
    if ! train --resume ck.st --save res.st --checkpoint ck.st --checkpoint-every 1000000 \
        --quiet 2> resume.err; then
        unreadable=$((unreadable + 1))
        echo "kill $i: the checkpoint does not resume:"; show resume.err
    elif ! cmp -s res.st ref.st; then
        mixed=$((mixed + 1))
        echo "kill $i: resuming from the checkpoint does not end as the uninterrupted run"
    else
        resumed=$((resumed + 1))
    fi
    if ls ck.st.tmp.* > /dev/null 2>&1; then
        bad "kill $i: stale temporary files left after the next run"
        rm -f ck.st.tmp.*
    fi
done
echo "kill.sh: $KILLS kills over ${ms} ms runs: $resumed resumed bit-identically, $none before" \
     "the first checkpoint, $stale left a temporary file, $unreadable unreadable, $mixed mixed"
check "no unreadable checkpoint" '[ $unreadable -eq 0 ]'
check "no mixed checkpoint" '[ $mixed -eq 0 ]'
check "most kills after the first checkpoint" '[ $resumed -ge $((KILLS / 2)) ]'
finish kill.sh
