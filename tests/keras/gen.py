#!/usr/bin/env python3
"""gen.py - writes the Keras test data of tests/keras (not run by make check).

Run it with Keras 2 and with Keras 3 (each in a virtual environment outside
the repository):

    python3 -m venv /work/venv-keras2
    /work/venv-keras2/bin/pip install 'tensorflow-cpu==2.15.*'
    /work/venv-keras2/bin/python tests/keras/gen.py tests/keras      # k2_*
    python3 -m venv /work/venv-keras3
    /work/venv-keras3/bin/pip install 'keras>=3' 'jax[cpu]'
    KERAS_BACKEND=jax /work/venv-keras3/bin/python tests/keras/gen.py tests/keras

The files here were written with tensorflow-cpu 2.15.1 (Keras 2.15.0) and
with keras 3.15.1 on jax 0.10.2, both on Python 3.11. Keras 2 numbers its
layer names per process (dense_5, ...), so the goldens depend on the order
of the models below.

For each model it writes PREFIX_NAME.json (model.to_json(), what
`nnc import-keras` reads); for the models nnc can import also
PREFIX_NAME.safetensors: the Keras weights (random, batchnorm statistics
too) converted to nnc's checkpoint layout and names (dense kernels
transposed to [out, in], conv kernels [kh, kw, in, out] -> [out, kh, kw,
in], gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/
running_var), and PREFIX_NAME.io.bin: N_ROWS input rows and Keras'
predictions for them (float32, little-endian), so make check compares
nnc's predict with Keras' without Keras.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from nnc_test import write_safetensors  # noqa: E402  (tests/nnc_test.py)

try:
    import keras
    K3 = keras.__version__.startswith("3")
except ImportError:
    K3 = False
if not K3:
    import tensorflow as tf
    keras = tf.keras
layers = keras.layers

N_ROWS = 4


def inp(shape):
    return keras.Input(shape=shape) if K3 else layers.InputLayer(input_shape=shape)


def good_models():
    m = {}
    first = (layers.Dense(16, activation="relu", input_shape=(20,)) if not K3
             else layers.Dense(16, activation="relu"))
    m["mlp"] = keras.Sequential(([] if not K3 else [keras.Input(shape=(20,))]) + [
        first,
        layers.Dropout(0.25),
        layers.Dense(8, activation="tanh"),
        layers.Dense(4, activation="softmax"),
    ], name="mlp")
    m["cnn"] = keras.Sequential([
        inp((12, 12, 3)),
        layers.Conv2D(6, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(8, (3, 3)),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.AveragePooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(16, activation="gelu"),
        layers.Dense(5),
        layers.Activation("softmax"),
    ], name="cnn")
    m["acts"] = keras.Sequential([
        inp((10,)),
        layers.Dense(12),
        layers.LeakyReLU(),
        layers.Dense(12, activation="elu"),
        layers.ELU(alpha=0.5) if not K3 else layers.ELU(alpha=0.5),
        layers.Dense(12),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-4),
        layers.Activation("sigmoid"),
        layers.Dense(12, activation="tanh"),
        layers.ReLU(),
        layers.Dense(1, activation="sigmoid"),
    ], name="acts")
    m["gap"] = keras.Sequential([
        inp((9, 9, 2)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh",
                      use_bias=False),
        layers.MaxPooling2D(pool_size=2, strides=1),
        layers.GlobalAveragePooling2D(),
        layers.Dense(3),
    ], name="gap")
    return m


def bad_models():
    m = {}
    m["bad_lstm"] = keras.Sequential([inp((5, 3)), layers.LSTM(4),
                                      layers.Dense(1)])
    m["bad_channels_first"] = keras.Sequential([
        inp((3, 8, 8)), layers.Conv2D(4, 3, data_format="channels_first"),
        layers.Flatten(), layers.Dense(2)])
    m["bad_dilation"] = keras.Sequential([
        inp((8, 8, 1)), layers.Conv2D(4, 3, dilation_rate=2),
        layers.Flatten(), layers.Dense(2)])
    m["bad_kernel"] = keras.Sequential([
        inp((8, 8, 1)), layers.Conv2D(4, (3, 5)), layers.Flatten(),
        layers.Dense(2)])
    m["bad_activation"] = keras.Sequential([
        inp((4,)), layers.Dense(4, activation="selu"), layers.Dense(1)])
    x = keras.Input(shape=(4,))
    h = layers.Dense(4)(x)
    m["bad_functional"] = keras.Model(x, layers.Dense(1)(layers.Add()([x, h])))
    return m


def nnc_weights(model):
    """{nnc name: ndarray} in nnc's layout."""
    out = {}
    for layer in model.layers:
        w = [np.asarray(v) for v in layer.get_weights()]
        name = layer.name
        kind = type(layer).__name__
        if kind == "Dense":
            out[name + ".weight"] = w[0].T
            if len(w) > 1:
                out[name + ".bias"] = w[1]
        elif kind == "Conv2D":
            out[name + ".weight"] = w[0].transpose(3, 0, 1, 2)
            if len(w) > 1:
                out[name + ".bias"] = w[1]
        elif kind == "BatchNormalization":
            for suffix, v in zip(("weight", "bias", "running_mean",
                                  "running_var"), w):
                out[name + "." + suffix] = v
        elif w:
            raise SystemExit("gen.py: no conversion for " + kind)
    return out


def randomize(model, rng):
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for i, v in enumerate(ws):
            r = rng.standard_normal(v.shape).astype(np.float32) * 0.5
            if type(layer).__name__ == "BatchNormalization" and i == 3:
                r = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
            new.append(r)
        layer.set_weights(new)


def pretty(text):
    """model.to_json() as it is (one line), newline-terminated."""
    return text + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__)
    prefix = "k3" if K3 else "k2"
    rng = np.random.default_rng(7)
    for name, model in good_models().items():
        base = os.path.join(out, "%s_%s" % (prefix, name))
        with open(base + ".json", "w") as f:
            f.write(pretty(model.to_json()))
        randomize(model, rng)
        write_safetensors(base + ".safetensors", nnc_weights(model),
                          {"format": "nnc"})
        shape = (N_ROWS,) + tuple(model.input_shape[1:])
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        y = np.asarray(model(x, training=False), dtype=np.float32)
        with open(base + ".io.bin", "wb") as f:
            f.write(x.astype("<f4").tobytes() + y.astype("<f4").tobytes())
        print(base, model.count_params(), "params")
    for name, model in bad_models().items():
        base = os.path.join(out, "%s_%s" % (prefix, name))
        with open(base + ".json", "w") as f:
            f.write(pretty(model.to_json()))
        print(base)


if __name__ == "__main__":
    main()
