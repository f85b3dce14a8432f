#!/bin/sh
# run.sh - IR golden tests, in the style of QBE's test files. Every
# tests/ir/X.nn is a model followed by a trailing comment block:
#
#     # pass: PASS            which --dump-after=PASS to take
#     # flags: -O1            optional extra nnc options
#     #| # after PASS         the expected dump, one '#| ' line per line
#     #| model ...
#
# The runner cd's into tests/ir and runs `nnc X.nn FLAGS --dump-after=PASS`,
# so locations read `X.nn:line:col`; stderr must equal the '#| ' block
# exactly and nnc must exit 0.
#
#     tests/ir/run.sh                   run every test
#     tests/ir/run.sh X.nn ...          run only these
#     tests/ir/run.sh --update X.nn ... rewrite their '#| ' blocks from the
#                                       current compiler (review the diff!)
. "$(dirname "$0")/../lib.sh"
update=0
if [ "$1" = "--update" ]; then update=1; shift; fi
cd "$srcdir/tests/ir" || exit 1
[ $# -gt 0 ] || set -- *.nn
for f in "$@"; do
    f=$(basename "$f")
    if [ ! -f "$f" ]; then echo "FAIL: $f: no such test"; fail=$((fail + 1)); continue; fi
    p=$(sed -n 's/^# pass: *//p' "$f" | head -n 1)
    flags=$(sed -n 's/^# flags: *//p' "$f" | head -n 1)
    if [ -z "$p" ]; then echo "FAIL: $f: no '# pass:' line"; fail=$((fail + 1)); continue; fi
    # shellcheck disable=SC2086 # flags are meant to split
    "$NNC" "$f" $flags --dump-after="$p" -o "$tmp/out.c" 2> "$tmp/got" >/dev/null
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: $f: nnc exited with status $rc:"; cat "$tmp/got"
        fail=$((fail + 1)); continue
    fi
    if [ $update -eq 1 ]; then
        { sed '/^#|/d' "$f"; sed 's/^/#| /' "$tmp/got"; } > "$tmp/new" &&
            cat "$tmp/new" > "$f" && echo "updated $f" && pass=$((pass + 1)) || fail=$((fail + 1))
        continue
    fi
    sed -n 's/^#| \{0,1\}//p' "$f" > "$tmp/expected"
    if [ ! -s "$tmp/expected" ]; then
        echo "FAIL: $f: no expected '#| ' block (run: $0 --update $f)"; fail=$((fail + 1))
    elif cmp -s "$tmp/expected" "$tmp/got"; then
        pass=$((pass + 1))
    else
        echo "FAIL: $f: dump after $p differs (- expected, + got):"
        diff -u "$tmp/expected" "$tmp/got" | sed '1,2d'
        fail=$((fail + 1))
    fi
done
finish ir
