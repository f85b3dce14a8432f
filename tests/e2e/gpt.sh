#!/bin/sh
# gpt.sh - the language-model example, examples/gpt_char.nn (nanoGPT's CPU
# GPT): its --emit=main program builds warning-free with gcc and clang,
# trains on text (a few steps: the loss is finite and falls), saves a
# checkpoint with the vocabulary, and generates text from it.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1

"$NNC" "$srcdir/examples/gpt_char.nn" --emit=main -o gpt.c || { bad "nnc"; finish gpt; }
for cc in $compilers; do
    if $cc -std=c99 -O2 $WARN $RT_CFLAGS -o "gpt_$cc" gpt.c $RT_LIBS 2> cc.log; then ok
    else bad "$cc:"; cat cc.log; fi
done
cp "gpt_$(echo $compilers | cut -d' ' -f1)" gpt || finish gpt

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
finish gpt
