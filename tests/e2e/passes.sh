#!/bin/sh
# passes.sh - the pass table of src/pipeline.c is the one list of stages:
# `nnc --help` prints it (name and lowest -O level), the man page
# (doc/nnc.1, under --dump-after) must list the same stages in the same
# order with the same levels, --dump-after accepts exactly those names
# (and all), and at a lower -O level it warns that the stage does not run.
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
NNC=${NNC:-$builddir/nnc}
tmp=$(mktemp -d) || exit 1
[ -n "$KEEP" ] && echo "kept $tmp" || trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

"$NNC" --help > "$tmp/help" || bad "nnc --help"
sed -n 's/^  *\([a-z]*\)  *(-O\([0-9]\)) .*/\1 \2/p' "$tmp/help" > "$tmp/table"
sed -n 's/^\.BR \([a-z]*\) " (\\-O\([0-9]\))"$/\1 \2/p' "$srcdir/doc/nnc.1" > "$tmp/man"
[ "$(wc -l < "$tmp/table")" -ge 5 ] && ok || bad "no pass list in nnc --help"
if cmp -s "$tmp/table" "$tmp/man"; then ok
else bad "doc/nnc.1 lists other stages than nnc --help (< help, > man):"; diff "$tmp/table" "$tmp/man"; fi

seed=$srcdir/examples/seed.nn
while read -r name level; do
    "$NNC" "$seed" --dump-after="$name" -o "$tmp/o.c" 2> "$tmp/err"
    if [ $? -eq 0 ] && grep -q "^# after $name\$" "$tmp/err"; then ok
    else bad "--dump-after=$name prints nothing at -O2"; fi
    if [ "$level" -gt 0 ]; then
        "$NNC" "$seed" -O$((level - 1)) --dump-after="$name" -o "$tmp/o.c" 2> "$tmp/err"
        grep -q "warning: --dump-after=$name prints nothing: the pass runs at -O$level and above" \
            "$tmp/err" && ok || bad "--dump-after=$name at -O$((level - 1)): no warning"
    fi
done < "$tmp/table"
"$NNC" "$seed" --dump-after=nope -o "$tmp/o.c" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "expected $(awk '{ printf "%s, ", $1 }' "$tmp/table" | sed 's/, $//') or all" \
    "$tmp/err" && ok || { bad "--dump-after=nope:"; cat "$tmp/err"; }

echo "passes: $pass passed, $fail failed"
[ $fail -eq 0 ]
