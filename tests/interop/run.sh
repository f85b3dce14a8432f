#!/bin/sh
# run.sh - `make check` entry for the PyTorch checkpoint interop test
# (torch_interop.py) and the Keras importer test (keras.sh).
#
# The torch part runs with the first Python that can import torch and
# numpy (Debian's /usr/bin/python3 first); without one it is a skip, and
# the script exits 77 (SKIP) even when the Keras part passed.
. "$(dirname "$0")/../lib.sh"

if find_python "numpy, torch"; then
    "$py" "$srcdir/tests/interop/torch_interop.py" && ok || bad "torch interop"
else
    skip "torch interop (no python3 that can import torch and numpy: apt install python3-torch)"
fi
sh "$srcdir/tests/interop/keras.sh" && ok || bad "keras import"
finish interop
