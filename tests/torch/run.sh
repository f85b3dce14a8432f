#!/bin/sh
# run.sh - `make check` entry for the PyTorch differential test (diff.py).
#
# Runs diff.py with the first Python that can import torch and numpy:
# Debian's /usr/bin/python3 (python3-torch, python3-numpy) first, then
# python3 on PATH. Without either, exits 77 so automake reports SKIP.
# srcdir comes from the environment (automake's test driver sets it) or
# from this script's location; other settings (builddir, NNC, CC,
# RT_CFLAGS, RT_LIBS) pass through to diff.py, as do the arguments.

if [ -z "$srcdir" ]; then
    srcdir=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
fi
export srcdir

has_torch() {
    "$1" -c 'import numpy, torch' >/dev/null 2>&1
}

if [ -x /usr/bin/python3 ] && has_torch /usr/bin/python3; then
    py=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1 && has_torch python3; then
    py=python3
else
    echo "run.sh: SKIP: no python3 that can import torch and numpy" >&2
    exit 77
fi

exec "$py" "$srcdir/tests/torch/diff.py" "$@"
