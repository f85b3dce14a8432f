#!/bin/sh
# bench/venv.sh - create bench/.venv with the compiled peers (JAX + optax,
# PyTorch 2 for torch.compile), from PyPI. One-time; run.sh calls it.
#
#   sh bench/venv.sh [VENV_DIR]
#
# Each peer is installed on its own, so one failure does not stop the
# other; the outcome is written to VENV_DIR/status (one line per peer:
# "jax ok" or "jax failed: <reason>"). Set NNC_BENCH_PIP_TIMEOUT (seconds,
# default 1800) to bound each pip run. Requires python3 with venv.
set -u
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/.venv}
py=${PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3
limit=${NNC_BENCH_PIP_TIMEOUT:-1800}

if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -m venv "$venv" >&2; then
        rm -rf "$venv"
        echo "venv: cannot create $venv (python3 -m venv failed; apt-get install python3-venv)" >&2
        exit 1
    fi
fi
log=$venv/install.log
: > "$venv/status.new"
pip() { timeout "$limit" "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip >>"$log" 2>&1

try() {  # try NAME IMPORT-CHECK PACKAGES...
    name=$1 check=$2
    shift 2
    if "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "$name ok" >>"$venv/status.new"; return
    fi
    echo "venv: pip install $* (log: $log)" >&2
    pip install -q "$@" >>"$log" 2>&1
    rc=$?
    if "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "$name ok" >>"$venv/status.new"
    elif [ $rc -eq 124 ]; then
        echo "$name failed: pip install timed out after ${limit}s" >>"$venv/status.new"
    else
        echo "$name failed: pip install $* exited $rc (see $log)" >>"$venv/status.new"
    fi
}

try jax "import jax, optax" jax jaxlib optax
try torch "import torch; assert int(torch.__version__.split('.')[0]) >= 2" torch numpy
mv "$venv/status.new" "$venv/status"
cat "$venv/status"
