#!/bin/sh
# run.sh - `make check` entry for the PyTorch differential test (diff.py).
#
# Runs diff.py with the first Python that can import torch and numpy:
# Debian's /usr/bin/python3 (python3-torch, python3-numpy) first, then
# python3 on PATH. Without either, exits 77 so automake reports SKIP.
# The settings of tests/lib.sh (srcdir, builddir, NNC, CC, RT_CFLAGS,
# RT_LIBS) pass through to diff.py, as do the arguments.
. "$(dirname "$0")/../lib.sh"

find_python "numpy, torch" ||
    skip_script run.sh "no python3 that can import torch and numpy (apt install python3-torch)"
"$py" "$srcdir/tests/torch/diff.py" "$@"
