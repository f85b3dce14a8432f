#!/bin/sh
# gpt.sh - the language-model example, examples/gpt_char.nn (nanoGPT's CPU
# GPT): its --emit=main program builds warning-free with gcc and clang,
# trains on text, saves a checkpoint with the vocabulary, and generates
# text from it, with the cache of keys and values and without (the same
# text while the window lasts). Generation with a cache (PREFIX_decode):
# decode_main.c checks it against predict on tests/e2e/decode.nn; models
# whose attention cannot decode one position have none.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

"$NNC" "$srcdir/examples/gpt_char.nn" --emit=main -o gpt.c || { bad "nnc"; finish gpt; }
for cc in $compilers; do
    if $cc -std=c99 -O2 $WARN $RT_CFLAGS -o "gpt_$cc" gpt.c $RT_LIBS 2> cc.log; then ok
    else bad "$cc:"; cat cc.log; fi
done
cp "gpt_$(echo $compilers | cut -d' ' -f1)" gpt || finish gpt

# the elementwise loops keep the vector math inline at -O2, so that they
# vectorize: no out-of-line nnc_expf, nnc_erff, ... (gcc once kept a
# copy of nnc_erff for the eight GELU loops: one call per element)
for cc in $compilers; do
    $cc -std=c99 -O2 -march=x86-64-v3 $RT_CFLAGS -S -o "gpt_$cc.s" gpt.c 2> /dev/null ||
        $cc -std=c99 -O2 $RT_CFLAGS -S -o "gpt_$cc.s" gpt.c 2> /dev/null || continue
    check "$cc -O2: the vector math is inlined in the generated loops" \
        '! grep -qE "(call|bl)[[:space:]]+_?nnc_(exp|log|tanh|sigmoid|log1p|softplus|erf)f" "gpt_$cc.s"' ||
        grep -E "(call|bl)[[:space:]]+_?nnc_[a-z0-9]+f" "gpt_$cc.s" | sort | uniq -c
done

# English-like text: random words, 40 KB
awk 'BEGIN { srand(5); n = split("the quick brown fox jumps over a lazy dog while cats sleep", w, " ");
    for (i = 0; i < 8000; i++) printf "%s%s", w[int(rand() * n) + 1], i % 11 == 10 ? ".\n" : " " }' \
    > t.txt
./gpt train --text t.txt --steps 30 --eval-every 30 --eval-batches 2 --save g.safetensors \
    --threads 1 > train.txt 2>&1
check "train --text: exit 0" '[ $? -eq 0 ]' || show train.txt
check "a validation loss is printed" 'grep -q "val_loss [0-9]" train.txt' || show train.txt
./gpt generate --weights g.safetensors --prompt "the " --tokens 40 --seed 3 > gen.txt 2> gen.err
check "generate: exit 0, the prompt and 40 more characters" \
    '[ $? -eq 0 ] && [ "$(head -c 4 gen.txt)" = "the " ] && [ "$(wc -c < gen.txt)" -ge 45 ]' ||
    { show gen.txt; show gen.err; }
./gpt generate --weights g.safetensors --prompt "the " --tokens 40 --seed 3 --temperature 0 \
    > cached.txt 2> cached.err
./gpt generate --weights g.safetensors --prompt "the " --tokens 40 --seed 3 --temperature 0 \
    --no-cache > full.txt 2> full.err
check "generate with the cache and with --no-cache: the same text within the window" \
    'cmp -s cached.txt full.txt' || { show cached.txt; show full.txt; }
check "generate says which way it ran" \
    'grep -q "keys and values of the others cached" cached.err && grep -q "full forward" full.err'
./gpt train --text t.txt --no-cache 2> err.txt
check "train --no-cache: exit 2" '[ $? -eq 2 ] && grep -q -- "--no-cache" err.txt'

# ---- decode against predict ----
"$NNC" "$srcdir/tests/e2e/decode.nn" --prefix m -o m.c || bad "decode.nn: nnc"
check "decode.nn has generation with a cache" 'grep -q "^#define M_DECODE 1" m.h'
for cc in $compilers; do
    if $cc -std=c99 -O2 $WARN $RT_CFLAGS -I. -o "dec_$cc" "$srcdir/tests/e2e/decode_main.c" m.c \
        $RT_LIBS 2> cc.log && "./dec_$cc" > dec.log; then ok
    else bad "decode vs predict ($cc):"; cat cc.log dec.log 2>/dev/null; fi
done
# full (not causal) attention, and attention written with batched products
# and a causal mask, have no one-position form
sed 's/causal=true/causal=false/' "$srcdir/tests/e2e/decode.nn" > full.nn
"$NNC" full.nn -o full.c && "$NNC" "$srcdir/tests/e2e/seq.nn" -o seq.c
check "no decode for full attention or the functional form" \
    '! grep -q "_DECODE" full.h && ! grep -q "_DECODE" seq.h'
finish gpt
