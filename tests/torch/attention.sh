#!/bin/sh
# attention.sh - `make check` entry for the attention layers' PyTorch
# differential test (attention.py, on diff.py's harness): as run.sh, the
# first Python that imports torch and numpy, else SKIP (77).
. "$(dirname "$0")/../lib.sh"

find_python "numpy, torch" ||
    skip_script attention.sh "no python3 that can import torch and numpy (apt install python3-torch)"
"$py" "$srcdir/tests/torch/attention.py" "$@"
