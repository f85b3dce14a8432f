"""nnc_test.py - what the Python tests (tests/torch/diff.py,
tests/interop/torch_interop.py) share: where nnc and the runtime are,
running commands, building an emitted model with a C test program, and
safetensors files read and written with numpy, struct and json (no
safetensors package).

Environment (all optional; make check sets them, see tests/lib.sh):
  srcdir, builddir  source and build trees (default: two levels above this
                    file; builddir: the current directory if it holds nnc,
                    else srcdir)
  NNC               the compiler (default <builddir>/nnc)
  CC                C compiler, may include flags (default cc)
  RT_CFLAGS         default "-I<srcdir>/runtime"
  RT_LIBS           default "<builddir>/.libs/libnncrt.a -lcjson -fopenmp -lm"
  HARNESS_CFLAGS    extra flags for the test program, e.g. the sanitizers
                    of a sanitized libnncrt (default: none)
"""

import json
import os
import shlex
import struct
import subprocess

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(Exception):
    """A check failed; the message says what and why."""


class Config:
    """The settings above, resolved."""

    def __init__(self):
        self.srcdir = os.path.abspath(os.environ.get("srcdir") or
                                      os.path.join(HERE, ".."))
        builddir = os.environ.get("builddir")
        if not builddir:
            builddir = (os.getcwd() if os.path.exists("nnc")
                        else self.srcdir)
        self.builddir = os.path.abspath(builddir)
        self.nnc = os.path.abspath(os.environ.get("NNC") or
                                   os.path.join(self.builddir, "nnc"))
        self.cc = shlex.split(os.environ.get("CC") or "cc")
        self.rt_cflags = shlex.split(
            os.environ.get("RT_CFLAGS") or
            "-I" + shlex.quote(os.path.join(self.srcdir, "runtime")))
        self.rt_libs = shlex.split(
            os.environ.get("RT_LIBS") or
            shlex.quote(os.path.join(self.builddir, ".libs", "libnncrt.a")) +
            " -lcjson -fopenmp -lm")
        self.harness_cflags = shlex.split(os.environ.get("HARNESS_CFLAGS",
                                                         ""))

    def problems(self):
        if not os.access(self.nnc, os.X_OK):
            return ["no nnc at %s (build it, or set NNC)" % self.nnc]
        return []


def run(cmd, what, timeout=300, cwd=None):
    """Runs cmd, returns its stdout; raises CheckFailed with its output."""
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           universal_newlines=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CheckFailed("%s: %s\n  command: %s"
                          % (what, e, " ".join(map(shlex.quote, cmd))))
    if p.returncode != 0:
        raise CheckFailed("%s failed (exit status %d)\n  command: %s\n%s%s"
                          % (what, p.returncode,
                             " ".join(map(shlex.quote, cmd)),
                             p.stdout, p.stderr))
    return p.stdout


def build(cfg, nn_file, main_c, work, flags=()):
    """nnc NN_FILE --prefix m (plus flags) into WORK/m.c, then MAIN_C
    built with it, warning-free; returns the executable's path."""
    m_c = os.path.join(work, "m.c")
    run([cfg.nnc, nn_file, "--prefix", "m", "-o", m_c] + list(flags),
        "nnc " + nn_file)
    exe = os.path.join(work, os.path.splitext(os.path.basename(main_c))[0])
    run(cfg.cc + ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic",
                  "-Werror", "-I" + work] + cfg.rt_cflags +
        cfg.harness_cflags + ["-o", exe, main_c, m_c] + cfg.rt_libs,
        "building " + os.path.basename(main_c))
    return exe


_DTYPES = {"F32": "<f4", "I64": "<i8"}


def read_safetensors(path, dtypes=("F32", "I64")):
    """({name: ndarray}, the header's __metadata__ or None); every entry is
    checked (dtype among dtypes, offsets inside the file, size = shape)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise CheckFailed("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise CheckFailed("%s: header length %d past end of file" % (path, n))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise CheckFailed("%s: bad JSON header: %s" % (path, e))
    if not isinstance(header, dict):
        raise CheckFailed("%s: header is not a JSON object" % path)
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckFailed("%s: %s: bad entry %r" % (path, name, info))
        if dtype not in dtypes:
            raise CheckFailed("%s: %s has dtype %r, want %s"
                              % (path, name, dtype, " or ".join(dtypes)))
        dt = np.dtype(_DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64))
        if (begin < 0 or end - begin != dt.itemsize * count or
                base + end > len(data)):
            raise CheckFailed("%s: %s: bad data_offsets [%d, %d] for shape %r"
                              % (path, name, begin, end, shape))
        arr = np.frombuffer(data, dtype=dt, count=count, offset=base + begin)
        tensors[name] = arr.reshape(shape).astype(dt.newbyteorder("="))
    return tensors, header.get("__metadata__")


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: ndarray or torch tensor} (float32; int64 as I64, as
    torch's num_batches_tracked) as the safetensors package does: the
    header padded to 8 bytes, the data ordered by dtype, then name."""
    arrays = {k: (v.detach().cpu().numpy() if hasattr(v, "detach")
                  else np.asarray(v)) for k, v in tensors.items()}
    header, blobs, pos = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in sorted(arrays, key=lambda k: (arrays[k].dtype != np.int64,
                                              k)):
        arr = arrays[name]
        i64 = arr.dtype == np.int64
        raw = np.ascontiguousarray(arr, dtype="<i8" if i64 else "<f4").tobytes()
        header[name] = {"dtype": "I64" if i64 else "F32",
                        "shape": list(arr.shape),
                        "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
