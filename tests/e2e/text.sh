#!/bin/sh
# text.sh - the --emit=main program of a sequence language model on text:
# train --text (the loss falls, the validation loss is printed and
# logged), checkpoints that keep the vocabulary and the window sampler's
# state (resuming gives the uninterrupted run's weights bit for bit; the
# metadata are strings, as safetensors readers require), gzipped text,
# generate (deterministic for a seed, only the vocabulary's characters),
# and bad inputs, each with a clear message and exit status 1 (files) or 2
# (usage). The model is small (embedding, layernorm, dense gelu, dense
# softmax over 32 classes at each of 16 positions) so that it all takes
# a few seconds.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

cat > lm.nn <<'EOF'
model lm {
    input ids[16]
    e = embedding(ids, vocab=32, dim=16)
    n = layernorm(e)
    h = dense(n, 32, activation=gelu)
    p = dense(h, 32, activation=softmax)
    loss sparse_categorical_crossentropy
    optimizer adam(lr=0.01)
    batch 8
}
EOF
# a classifier: not a sequence model
cat > cls.nn <<'EOF'
model cls {
    input x[4]
    h = dense(x, 3, activation=softmax)
    loss sparse_categorical_crossentropy
    optimizer sgd(lr=0.1)
    batch 4
}
EOF

# ---- build, warning-free ----
for m in lm cls; do
    "$NNC" $m.nn --emit=main -o $m.c || { bad "$m: nnc"; continue; }
    for cc in $compilers; do
        if $cc -std=c99 -O2 $WARN $RT_CFLAGS -o "${m}_$cc" $m.c $RT_LIBS $HARNESS_CFLAGS \
            2> cc.log; then ok; else bad "$m: $cc:"; cat cc.log; fi
    done
    cp "${m}_$(echo $compilers | cut -d' ' -f1)" $m
done
[ -x lm ] && [ -x cls ] || { echo "programs not built"; exit 1; }
check "lm is a sequence model (T 16, 32 rows)" 'grep -q "16, 32, fit_save_meta," lm.c'
check "cls is not" 'grep -q "0, 0, fit_save_meta," cls.c'

# ---- text: random words of 16 distinct characters, 11 KB ----
awk 'BEGIN { srand(3); n = split("the cat sat on a mat and dog ran to sun hat", w, " ");
    for (i = 0; i < 3000; i++) printf "%s%s", w[int(rand() * n) + 1], i % 9 == 8 ? ".\n" : " " }' \
    > t.txt

# ---- usage ----
./lm --help > help.txt
check "--help shows the text commands" 'grep -q -- "--text FILE" help.txt && grep -q -- "--top-k" help.txt'
./cls --help > chelp.txt
check "a classifier's --help does not" '! grep -q -- "--text" chelp.txt'
./cls train --text t.txt 2> err.txt
check "--text on a classifier: exit 2" '[ $? -eq 2 ] && grep -q "sequence language model" err.txt'
./cls generate 2> err.txt
check "generate on a classifier: exit 2" '[ $? -eq 2 ] && grep -q "sequence language model" err.txt'
./lm train --text t.txt --epochs 3 2> err.txt
check "--text with --epochs: exit 2" '[ $? -eq 2 ] && grep -q -- "--steps" err.txt'
./lm train --text t.txt --x x.csv 2> err.txt
check "--text with --x: exit 2" '[ $? -eq 2 ]'
./lm train --text t.txt --prompt hi 2> err.txt
check "train with --prompt: exit 2" '[ $? -eq 2 ] && grep -q "generate" err.txt'
./lm evaluate --text t.txt 2> err.txt
check "evaluate --text: exit 2" '[ $? -eq 2 ] && grep -q "train.s" err.txt'
./lm generate --text t.txt 2> err.txt
check "generate with --text: exit 2" '[ $? -eq 2 ]'
./lm train --x a --y b --steps 5 2> err.txt
check "--steps without --text: exit 2" '[ $? -eq 2 ] && grep -q "train --text" err.txt'
./lm train --text t.txt --val-fraction 1.5 2> err.txt
check "bad --val-fraction: exit 2" '[ $? -eq 2 ] && grep -q -- "--val-fraction" err.txt'
./lm generate --temperature -1 2> err.txt
check "bad --temperature: exit 2" '[ $? -eq 2 ] && grep -q -- "--temperature" err.txt'

# ---- train: the loss falls, the validation loss every --eval-every steps ----
./lm train --text t.txt --steps 300 --eval-every 10 --log log.csv --save w.st 2> train.err
check "lm trains on text" '[ $? -eq 0 ] && [ -s w.st ]'
check "the run's summary line: a 10% tail" 'grep -q "11352 tokens (10217 training, 1135 validation), a vocabulary of 16" train.err'
check "log header" '[ "$(head -n 1 log.csv)" = "step,loss,val_loss,lr,seconds" ]'
check "log: a line per 10 steps, every column filled" \
    '[ $(awk -F, "NR > 1 && NF == 5 && \$2 != \"\" && \$3 != \"\"" log.csv | wc -l) -eq 30 ]'
check "the loss falls (by 40%)" 'awk -F, "NR == 2 { a = \$2 } END { exit !(\$2 < 0.6 * a) }" log.csv'
check "the validation loss falls (below 1.5)" 'awk -F, "END { exit !(\$3 < 1.5) }" log.csv'
check "val_loss on stderr" 'grep -q "^step 300/300: loss [0-9.]* val_loss [0-9.]*" train.err'
if command -v script > /dev/null 2>&1; then   # a terminal: the progress bar
    script -qec "./lm train --text t.txt --steps 20 --save tty.st" /dev/null > tty.txt 2>&1
    check "progress bar on a terminal" 'grep -q "tokens/s ETA" tty.txt && grep -q "step 20/20: loss" tty.txt'
else
    skip "the progress bar on a terminal (no script(1): apt install bsdutils)"
fi

# ---- the checkpoint's metadata: the vocabulary and the sampler state ----
head -c 600 w.st | tr -c '[:print:]' '\n' > meta.txt
check "metadata: vocab, 2 hex digits per byte" 'grep -q "\"vocab\":\"0a202e6163646567686d6e6f72737475\"" meta.txt'
check "metadata: text_rng, 4 x 16 hex digits" 'grep -q "\"text_rng\":\"[0-9a-f]\{64\}\"" meta.txt'
if find_python numpy; then
    $py - w.st <<'EOF' > py.txt 2>&1
import sys
sys.path.insert(0, __import__("os").environ["srcdir"] + "/tests")
import json, struct
import nnc_test
t, _ = nnc_test.read_safetensors(sys.argv[1])
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n))["__metadata__"]
assert all(isinstance(v, str) for v in meta.values()), meta
assert t["e.weight"].shape == (32, 16)
print("ok", sorted(meta))
EOF
    check "a Python safetensors reader takes it (metadata all strings)" 'grep -q "^ok" py.txt || { cat py.txt; false; }'
else
    skip "the checkpoint in Python (no python3-numpy)"
fi

# ---- resume: 120 steps + 180 resumed = 300 straight, bit for bit; and
# from the uninterrupted run's last checkpoint (step 240) ----
./lm train --text t.txt --steps 300 --eval-every 60 --log a.csv --save a.st \
    --checkpoint ck.st --checkpoint-every 120 -q
check "a run with checkpoints" '[ $? -eq 0 ] && [ -s ck.st ]'
./lm train --text t.txt --steps 120 --eval-every 60 --log b.csv --save b1.st -q &&
./lm train --text t.txt --steps 300 --eval-every 60 --log b.csv --save b.st --resume b1.st \
    2> resume.err
check "resumed run" '[ $? -eq 0 ] && grep -q "resuming at step 120" resume.err'
check "resumed weights = uninterrupted weights (bit for bit)" 'cmp -s a.st b.st'
check "resumed log = uninterrupted log" '[ "$(cut -d, -f1-4 a.csv)" = "$(cut -d, -f1-4 b.csv)" ]'
./lm train --text t.txt --steps 300 --eval-every 60 --save c.st --resume ck.st -q
check "resumed from the checkpoint at 240: the same weights" '[ $? -eq 0 ] && cmp -s a.st c.st'

# ---- gzipped text: the same run ----
if command -v gzip > /dev/null 2>&1; then
    gzip -c t.txt > t.txt.gz
    ./lm train --text t.txt.gz --steps 120 --eval-every 60 --save gz.st -q
    check "gzipped text trains the same" '[ $? -eq 0 ] && cmp -s gz.st b1.st'
else
    skip "gzipped text (no gzip)"
fi

# ---- generate ----
./lm generate --weights w.st --prompt "the cat" --tokens 200 --seed 7 > g1.txt 2> gen.err
check "generate" '[ $? -eq 0 ] && [ $(wc -c < g1.txt) -eq 208 ] && [ "$(head -c 7 g1.txt)" = "the cat" ]'
check "generate: the speed on stderr" 'grep -q "^lm: 200 tokens in [0-9.]*s, [0-9]* tokens/s" gen.err'
./lm generate --weights w.st --prompt "the cat" --tokens 200 --seed 7 -q > g2.txt
check "generate: the same seed, the same text" 'cmp -s g1.txt g2.txt'
./lm generate --weights w.st --prompt "the cat" --tokens 200 --seed 8 -q > g3.txt
check "generate: another seed, another text" '! cmp -s g1.txt g3.txt'
check "generate: only the vocabulary's characters" '[ -z "$(tr -d "\n .acdeghmnorstu" < g1.txt)" ]'
./lm generate --weights w.st --prompt "the cat" --tokens 50 --temperature 0 --seed 1 -q > t1.txt &&
./lm generate --weights w.st --prompt "the cat" --tokens 50 --temperature 0 --seed 2 -q > t2.txt
check "temperature 0: the likeliest, whatever the seed" 'cmp -s t1.txt t2.txt'
./lm generate --weights w.st --tokens 40 --top-k 1 --seed 3 -q > k1.txt
check "top-k 1 = temperature 0; no prompt starts at a newline" \
    '[ "$(./lm generate --weights w.st --tokens 40 --temperature 0 -q)" = "$(cat k1.txt)" ] && [ $(wc -c < k1.txt) -eq 41 ]'
./lm generate --weights w.st --prompt "the dog ran to the sun and the cat sat on a mat" \
    --tokens 30 --top-k 5 -q > long.txt
check "a prompt longer than the context" '[ $? -eq 0 ] && [ $(wc -c < long.txt) -eq 78 ]'

# ---- bad inputs: clear messages, exit 1 ----
: > empty.txt
./lm train --text empty.txt 2> err.txt
check "empty text" '[ $? -eq 1 ] && grep -q "empty.txt: the text is empty" err.txt'
printf 'the cat sat' > short.txt
./lm train --text short.txt --val-fraction 0 2> err.txt
check "text shorter than a window" '[ $? -eq 1 ] && grep -q "short.txt: 11 training tokens, fewer than a window of the model.s 16 + 1" err.txt'
head -c 150 t.txt > small.txt
./lm train --text small.txt 2> err.txt
check "validation tail shorter than a window" '[ $? -eq 1 ] && grep -q "small.txt: the validation tail" err.txt'
./lm train --text small.txt --val-fraction 0 --steps 5 -q --save small.st
check "... --val-fraction 0: no validation" '[ $? -eq 0 ]'
./lm train --text missing.txt 2> err.txt
check "missing text file" '[ $? -eq 1 ] && grep -q "missing.txt" err.txt'
./lm train --text t.txt --byte-vocab 2> err.txt
check "vocabulary larger than the embedding" '[ $? -eq 1 ] && grep -q "a vocabulary of 256 bytes, more than the model.s 32 embedding rows" err.txt'
awk 'BEGIN { for (i = 0; i < 400; i++) printf "%c", 48 + i % 40 }' > wide.txt
./lm train --text wide.txt 2> err.txt
check "40 distinct bytes, 32 rows" '[ $? -eq 1 ] && grep -q "wide.txt has a vocabulary of 40 bytes" err.txt'
./lm generate --weights w.st --prompt "the cat!" 2> err.txt
check "a prompt character outside the vocabulary" '[ $? -eq 1 ] && grep -q "character .!. (byte 33, offset 7) is not in the model.s vocabulary" err.txt'
./lm generate --weights missing.st 2> err.txt
check "generate: missing weights" '[ $? -eq 1 ] && grep -q "missing.st" err.txt'
# weights from the CSV driver: no vocabulary
awk 'BEGIN { for (r = 0; r < 8; r++) for (j = 0; j < 16; j++)
    printf "%d%s", (r + j) % 16, j < 15 ? "," : "\n" }' > x.csv
./lm train --x x.csv --y x.csv --epochs 1 --save novocab.st -q
./lm generate --weights novocab.st 2> err.txt
check "generate from weights without a vocabulary" '[ $? -eq 1 ] && grep -q "novocab.st has no vocabulary" err.txt'
./lm train --text t.txt --resume novocab.st 2> err.txt
check "resume from weights without text state" '[ $? -eq 1 ] && grep -q "novocab.st has no" err.txt'
awk 'BEGIN { srand(5); for (i = 0; i < 2000; i++) printf "%c", 97 + int(rand() * 16) }' > other.txt
./lm train --text other.txt --steps 200 --resume b1.st 2> err.txt
check "resume on a text of another vocabulary" '[ $? -eq 1 ] && grep -q "is not the one b1.st was trained with" err.txt'

finish text.sh
