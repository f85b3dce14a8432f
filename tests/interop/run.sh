#!/bin/sh
# run.sh - `make check` entry for the PyTorch checkpoint interop test
# (torch_interop.py) and the Keras importer test (keras.sh).
#
# The torch part runs with the first Python that can import torch and
# numpy (Debian's /usr/bin/python3 first); without one it is skipped, and
# if the Keras part has nothing to run either, the script exits 77 (SKIP).

if [ -z "$srcdir" ]; then
    srcdir=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
fi
export srcdir

has_torch() {
    "$1" -c 'import numpy, torch' >/dev/null 2>&1
}

status=0
if [ -x /usr/bin/python3 ] && has_torch /usr/bin/python3; then
    py=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1 && has_torch python3; then
    py=python3
else
    py=
    echo "run.sh: no python3 that can import torch and numpy: torch part skipped" >&2
fi
if [ -n "$py" ]; then
    "$py" "$srcdir/tests/interop/torch_interop.py" || status=1
fi
sh "$srcdir/tests/interop/keras.sh" || status=1
exit $status
