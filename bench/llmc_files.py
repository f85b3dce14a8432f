#!/usr/bin/env python3
"""llmc_files.py - the input files llm.c's train_gpt2.c reads, for
bench/llmc.sh, written with the standard library only:

    python3 bench/llmc_files.py DIR TEXT [--layers 4] [--heads 4]
                                [--width 128] [--max-t 64] [--seed 42]

DIR/gpt2_124M.bin: a random initialization in llm.c's checkpoint format
    (version 3: fp32, padded vocabulary): a header of 256 int32 (magic
    20240326, version 3, maxT, V, L, NH, C, Vp), then the 16 parameter
    tensors in the order of train_gpt2.c's fill_in_parameter_sizes: wte
    [Vp, C], wpe [maxT, C], ln1w [L, C], ln1b [L, C], qkvw [L, 3C, C],
    qkvb [L, 3C], attprojw [L, C, C], attprojb [L, C], ln2w, ln2b [L, C],
    fcw [L, 4C, C], fcb [L, 4C], fcprojw [L, C, 4C], fcprojb [L, C], lnfw,
    lnfb [C]. V is 256 (bytes), Vp = V rounded up to a multiple of 128
    (train_gpt2.py's pad_vocab; 256). GPT-2's initialization: weights
    N(0, 0.02), attprojw and fcprojw N(0, 0.02 / sqrt(2 L)), biases 0,
    LayerNorm weights 1; padded wte rows 0.
DIR/dev/data/tinyshakespeare/tiny_shakespeare_{train,val}.bin: the bytes of
    TEXT as tokens 0..255 in llm.c's token file format (256 int32 header:
    magic 20240520, version 1, token count; then uint16 tokens), the first
    90% and the last 10%.
DIR/gpt2_tokenizer.bin: a byte tokenizer (version 2: magic 20240328, 2,
    vocabulary 256, end-of-text token 10 '\\n'; each token one byte), so
    that train_gpt2.c's sampling has a valid start token.
These are the paths train_gpt2.c opens (relative to its working directory).
"""
import argparse
import array
import math
import os
import random
import struct
import sys

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("text")
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--width", type=int, default=128)
p.add_argument("--max-t", type=int, default=64)
p.add_argument("--seed", type=int, default=42)
a = p.parse_args()

L, NH, C, maxT, V = a.layers, a.heads, a.width, a.max_t, 256
Vp = (V + 127) // 128 * 128
rng = random.Random(a.seed)


def normal(n, std):
    return array.array("f", (rng.gauss(0.0, std) for _ in range(n)))


def const(n, v):
    return array.array("f", [v]) * n


sp = 0.02 / math.sqrt(2 * L)
wte = normal(V * C, 0.02) + const((Vp - V) * C, 0.0)
tensors = [wte, normal(maxT * C, 0.02),
           const(L * C, 1.0), const(L * C, 0.0),
           normal(L * 3 * C * C, 0.02), const(L * 3 * C, 0.0),
           normal(L * C * C, sp), const(L * C, 0.0),
           const(L * C, 1.0), const(L * C, 0.0),
           normal(L * 4 * C * C, 0.02), const(L * 4 * C, 0.0),
           normal(L * C * 4 * C, sp), const(L * C, 0.0),
           const(C, 1.0), const(C, 0.0)]
if sys.byteorder != "little":
    for t in tensors:
        t.byteswap()
os.makedirs(a.dir, exist_ok=True)
with open(os.path.join(a.dir, "gpt2_124M.bin"), "wb") as f:
    f.write(struct.pack("<256i", *([20240326, 3, maxT, V, L, NH, C, Vp] + [0] * 248)))
    for t in tensors:
        t.tofile(f)
print("llmc_params %d" % sum(len(t) for t in tensors))


def tokens(path, data):
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *([20240520, 1, len(data)] + [0] * 253)))
        f.write(struct.pack("<%dH" % len(data), *data))


with open(a.text, "rb") as f:
    raw = f.read()
if len(raw) < 10 * (4 * 64 + 1) * 2:
    sys.exit("llmc_files.py: %s is too short (%d bytes)" % (a.text, len(raw)))
n = int(0.9 * len(raw))
d = os.path.join(a.dir, "dev", "data", "tinyshakespeare")
os.makedirs(d, exist_ok=True)
tokens(os.path.join(d, "tiny_shakespeare_train.bin"), raw[:n])
tokens(os.path.join(d, "tiny_shakespeare_val.bin"), raw[n:])
with open(os.path.join(a.dir, "gpt2_tokenizer.bin"), "wb") as f:
    f.write(struct.pack("<256I", *([20240328, 2, V, 10] + [0] * 252)))
    for i in range(V):
        f.write(bytes([1, i]))
print("llmc_text_bytes %d" % len(raw))
