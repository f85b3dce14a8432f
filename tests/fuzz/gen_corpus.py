#!/usr/bin/env python3
"""gen_corpus.py - writes the seed corpora of the reader fuzz targets into
tests/fuzz/corpus/NAME/ (small, hand-made valid and near-valid files).
Run from the source tree: python3 tests/fuzz/gen_corpus.py. Regression
cases (crash-*, case-*) live beside the seeds and are not touched."""
import gzip, json, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None, dtype="F32"):
    """tensors: list of (name, shape); data 0, 1, 2, ... as dtype."""
    head, blob = {}, b""
    if meta is not None:
        head["__metadata__"] = meta
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        data = struct.pack("<%df" % n, *range(n)) if dtype == "F32" else bytes(2 * n)
        head[name] = {"dtype": dtype, "shape": shape,
                      "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


# ---- fuzz_ckpt: the model of fuzz_ckpt.c ----
P = [("conv.weight", [2, 2, 2, 3]), ("conv.bias", [2]), ("fc.weight", [2, 8]), ("fc.bias", [2])]
S = [("optimizer.%s.exp_avg" % n, s) for n, s in P]
TORCH = [("conv.weight", [2, 3, 2, 2]), ("conv.bias", [2]), ("fc.weight", [2, 8]), ("fc.bias", [2])]
put("ckpt", "nnc_with_state", safetensors(P + S, {"format": "nnc", "model": "m", "step": "12"}))
put("ckpt", "nnc_weights_only", safetensors(P, {"format": "nnc", "model": "m", "step": "0"}))
put("ckpt", "nnc_no_step", safetensors(P + S, {"format": "nnc"}))
put("ckpt", "torch_names", safetensors(TORCH, {"format": "pt"}))
put("ckpt", "torch_no_metadata", safetensors(TORCH))
put("ckpt", "torch_sequential",
    safetensors([("0.weight", [2, 3, 2, 2]), ("0.bias", [2]), ("3.weight", [2, 8]),
                 ("3.bias", [2]), ("3.num_batches_tracked", [])]))
put("ckpt", "wrong_dtype", safetensors(P, {"format": "nnc"}, dtype="F16"))
put("ckpt", "empty_header", struct.pack("<Q", 2) + b"{}")
put("ckpt", "short", b"\x08\x00\x00")

# ---- fuzz_weights: nnc --weights-from, the model of fuzz_weights.c ----
W = [("conv2d_0.weight", [4, 3, 3, 1]), ("conv2d_0.bias", [4]), ("layernorm_0.weight", [64]),
     ("layernorm_0.bias", [64]), ("dense_0.weight", [5, 64]), ("dense_0.bias", [5]),
     ("dense_1.weight", [3, 5]), ("dense_1.bias", [3])]
WS = [("optimizer.%s.%s" % (n, m), s) for m in ("exp_avg", "exp_avg_sq") for n, s in W]
put("weights", "nnc_with_state", safetensors(W + WS, {"format": "nnc", "model": "fw", "step": "3"}))
put("weights", "nnc_weights_only", safetensors(W, {"format": "nnc", "model": "fw", "step": "0"}))
put("weights", "no_metadata", safetensors(W))
put("weights", "torch_conv_layout", safetensors([("conv2d_0.weight", [4, 1, 3, 3])] + W[1:], {"format": "pt"}))
put("weights", "missing_tensor", safetensors(W[:-1], {"format": "nnc"}))
put("weights", "extra_tensor", safetensors(W + [("extra.weight", [2])], {"format": "nnc"}))
put("weights", "wrong_dtype", safetensors(W, {"format": "nnc"}, dtype="F16"))
put("weights", "truncated", safetensors(W, {"format": "nnc"})[:-7])

# ---- fuzz_data: CSV, IDX, .npy ----
put("data", "csv_header", "a,b,label\n1,2.5,0\n-3e2,4,1\n\n5;6;1\n")
put("data", "csv_tabs", "0.5\t1\t2\n3\t4\t5\n")
put("data", "csv_blanks", "  1 2 3\n4 5 6  \n")
put("data", "csv_bad", "1,2\n3,x\n")
idx = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", 2, 2, 2) + bytes(range(8))
put("data", "idx_u8", idx)
put("data", "idx_f32", struct.pack(">BBBB", 0, 0, 0x0D, 2) + struct.pack(">II", 2, 1)
    + struct.pack(">2f", 1.5, -2))
put("data", "idx_i16", struct.pack(">BBBB", 0, 0, 0x0B, 1) + struct.pack(">I", 3)
    + struct.pack(">3h", 1, -2, 3))
put("data", "idx_f64", struct.pack(">BBBB", 0, 0, 0x0E, 1) + struct.pack(">I", 1)
    + struct.pack(">d", 0.25))


def npy(descr, shape, data, version=1, fortran=False):
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", repr(tuple(shape)))
    lenfmt = "<H" if version == 1 else "<I"
    pre = 6 + 2 + struct.calcsize(lenfmt)
    h += " " * (-(pre + len(h) + 1) % 64) + "\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(h)) + h.encode() + data


put("data", "npy_f4", npy("<f4", [2, 3], struct.pack("<6f", *range(6))))
put("data", "npy_f8", npy("<f8", [3], struct.pack("<3d", 1, 2, 3)))
put("data", "npy_u1_v2", npy("|u1", [2, 2], bytes([1, 2, 3, 4]), version=2))
put("data", "npy_i8", npy("<i8", [1, 1], struct.pack("<q", -5)))
put("data", "npy_bool", npy("|b1", [2], bytes([0, 1])))
put("data", "npy_fortran", npy("<f4", [1, 1], struct.pack("<f", 1), fortran=True))
put("data", "npy_scalar", npy("<f4", [], struct.pack("<f", 1)))

# ---- fuzz_gzip: the first byte picks the mode (fuzz_gzip.c) ----
for name in ("csv_header", "idx_u8", "npy_f4"):
    with open(os.path.join(root, "data", name), "rb") as f:
        raw = f.read()
    put("gzip", "one_" + name, b"\x00" + raw)
    put("gzip", "two_" + name, b"\x01" + raw)
    put("gzip", "raw_" + name, b"\x02" + gzip.compress(raw, mtime=0)[2:])
put("gzip", "raw_truncated", b"\x02" + gzip.compress(b"1,2\n3,4\n", mtime=0)[2:-5])
put("gzip", "raw_trailing", b"\x02" + gzip.compress(b"1\n", mtime=0)[2:] + b"junk")
put("gzip", "text", b"\x03" + b"hello world, hello text\n" * 3)

# ---- fuzz_text: first byte T-1 | fraction << 4 | all_bytes << 6 ----
put("text", "plain", b"\x03" + b"To be, or not to be: that is the question.\n")
put("text", "split", b"\x13" + b"abcabcabcabcabcabcabcabcabcabcabc")
put("text", "all_bytes", b"\x41" + bytes(range(256)))
put("text", "too_short", b"\x0f" + b"abc")
put("text", "hex_vocab", b"\x00" + b"0a2061626364")
put("text", "utf8", b"\x21" + "héllo wörld, ça va? ".encode() * 2)

# ---- fuzz_keras: Keras 2 and 3 to_json() ----
def seq(layers, k3=True):
    if k3:
        return json.dumps({"module": "keras", "class_name": "Sequential",
                           "config": {"name": "sequential", "layers": layers}})
    return json.dumps({"class_name": "Sequential", "keras_version": "2.15.0",
                       "config": {"name": "sequential", "layers": layers}})


def L(cls, **cfg):
    return {"module": "keras.layers", "class_name": cls, "config": cfg}


put("keras", "mlp", seq([L("InputLayer", batch_shape=[None, 10], name="input"),
                         L("Dense", units=8, activation="relu", name="d1"),
                         L("Dropout", rate=0.5, name="do"),
                         L("Dense", units=1, activation="sigmoid", name="d2")]))
put("keras", "cnn", seq([L("InputLayer", batch_shape=[None, 8, 8, 1], name="in"),
                         L("Conv2D", filters=4, kernel_size=[3, 3], strides=[1, 1],
                           padding="same", activation="relu", data_format="channels_last",
                           name="c1"),
                         L("MaxPooling2D", pool_size=[2, 2], strides=[2, 2], padding="valid",
                           name="p1"),
                         L("BatchNormalization", axis=-1, epsilon=0.001, momentum=0.99,
                           name="bn"),
                         L("Flatten", name="f"),
                         L("Dense", units=3, activation="softmax", name="out")]))
put("keras", "keras2", seq([{"class_name": "Dense",
                             "config": {"name": "dense", "units": 4, "activation": "tanh",
                                        "batch_input_shape": [None, 3]}},
                            {"class_name": "LeakyReLU", "config": {"name": "lr", "alpha": 0.2}},
                            {"class_name": "Dense",
                             "config": {"name": "dense_1", "units": 2,
                                        "activation": "linear"}}], k3=False))
put("keras", "gap", seq([L("InputLayer", batch_shape=[None, 6, 6, 2], name="in"),
                         L("AveragePooling2D", pool_size=[2, 2], strides=[2, 2],
                           padding="valid", name="ap"),
                         L("GlobalAveragePooling2D", name="g"),
                         L("LayerNormalization", axis=-1, epsilon=0.001, name="ln"),
                         L("Activation", activation="elu", name="act"),
                         L("ReLU", name="r"), L("ELU", alpha=1.0, name="e"),
                         L("Softmax", axis=-1, name="sm")]))
put("keras", "functional", json.dumps({"class_name": "Functional", "config": {}}))
put("keras", "not_json", "{\"class_name\": ")
