#!/bin/sh
# run.sh - must-fail inputs: every tests/diag/*.nn ends with a comment
# block of lines starting '#| ' that holds the exact diagnostics nnc must
# print. nnc must exit with status 1 and write no file, except for
# warn_*.nn: warnings only, exit status 0, the .c and .h written.
. "$(dirname "$0")/../lib.sh"
cd "$srcdir/tests/diag" || exit 1
for f in *.nn; do
    sed -n 's/^#| \{0,1\}//p' "$f" > "$tmp/expected"
    mkdir -p "$tmp/out"
    "$NNC" "$f" -o "$tmp/out/model.c" 2> "$tmp/got" >/dev/null
    rc=$?
    want=1
    case $f in warn_*) want=0 ;; esac
    if [ $rc -ne $want ]; then
        echo "FAIL: $f: exit status $rc, expected $want"; fail=$((fail + 1))
    elif [ $want -eq 0 ] && [ ! -f "$tmp/out/model.c" -o ! -f "$tmp/out/model.h" ]; then
        echo "FAIL: $f: no output written"; fail=$((fail + 1))
    elif [ $want -eq 1 ] && [ -n "$(ls -A "$tmp/out")" ]; then
        echo "FAIL: $f: left files behind: $(ls -A "$tmp/out")"; fail=$((fail + 1))
    elif ! cmp -s "$tmp/expected" "$tmp/got"; then
        echo "FAIL: $f: diagnostics differ"; diff "$tmp/expected" "$tmp/got"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
    rm -rf "$tmp/out"
done
finish diag
