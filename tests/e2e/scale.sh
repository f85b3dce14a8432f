#!/bin/sh
# scale.sh - no input makes nnc slow (issue 15). The work nnc does, counted
# in instructions by valgrind's cachegrind (exact and repeatable, unlike
# timings on a loaded machine), must grow about linearly with the input:
# 5 times the input may take at most 8 times the work (a quadratic
# algorithm takes 25 times). Inputs: deep models (100 and 500 dense
# layers: CSE, the schedule, the memory plan and its check, emission),
# and long tokens that hold NUL bytes (a comment, a line comment, a
# string of 100 KB and 500 KB without newlines: flex rescans a token at
# each NUL, so they took minutes at 5 MB). Then bad inputs must stay
# short: a binary file is rejected (exit 1) after at most about 20
# errors, each showing at most 512 bytes of its line. Exits 77 (SKIP)
# without valgrind or in a sanitized build.
. "$(dirname "$0")/../lib.sh"
cd "$tmp" || exit 1
command -v valgrind > /dev/null 2>&1 ||
    skip_script scale.sh "no valgrind (apt install valgrind)"
case $RT_CFLAGS in *-fsanitize=*)
    skip_script scale.sh "sanitized build (ASan and valgrind do not mix)" ;;
esac

# work FILE: the instructions nnc executes on FILE (--emit=stats)
work() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=cg.out \
        "$NNC" "$1" --emit=stats > /dev/null 2> /dev/null
    awk '/^summary:/ { print $2 }' cg.out
}
# linear WHAT SMALL LARGE: LARGE (5 times SMALL) takes at most 8 times the work
linear() {
    a=$(work "$2") b=$(work "$3")
    if [ -z "$a" ] || [ -z "$b" ]; then
        bad "$1: no instruction count"
        return
    fi
    echo "$1: $a -> $b instructions (x$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", b / a }'))"
    check "$1 grows about linearly" "awk -v a=$a -v b=$b 'BEGIN { exit !(b < 8 * a) }'"
}

# 8 wide: 500 layers hold 36,000 parameters, under the 65,536 from which
# the optimizer's updates are emitted one per parameter (passes/fuse.c), so
# both models take the same path.
deep() {
    awk -v n="$1" 'BEGIN { print "model deep {\n    input x[8]";
        for (i = 0; i < n; i++) print "    dense(8, activation=relu)";
        print "    dense(1)\n    loss mse\n    optimizer adam(lr=0.001)\n    batch 8\n}" }'
}
deep 100 > deep100.nn
deep 500 > deep500.nn
"$NNC" deep500.nn -o deep500.c
check "a 500-layer model compiles" '[ $? -eq 0 ] && [ -s deep500.c ]'
linear "compile, 100 -> 500 layers" deep100.nn deep500.nn

# KB of random bytes with NULs, and no newline, quote, "*" or "/"
bytes() {
    head -c $(($1 * 1024)) /dev/urandom | tr -d '\n"*/' | tr '\001' '\000'
}
# A string ends at a NUL (the lexer's rule excludes it), and what follows
# random bytes lexes for a random length before the 20th error: the work
# would be random. The string's bytes are random but hold no NUL, so the
# token is the whole file.
for k in 100 500; do
    { printf '/*'; bytes $k; } > comment$k.nn
    { printf '#'; bytes $k; } > line$k.nn
    { printf '"'; bytes $k | tr -d '\000'; } > string$k.nn
done
linear "unterminated comment with NULs, 100 -> 500 KB" comment100.nn comment500.nn
linear "line comment with NULs, 100 -> 500 KB" line100.nn line500.nn
linear "unterminated string, 100 -> 500 KB" string100.nn string500.nn

# a binary file: rejected, with a bounded report
head -c 2000000 /dev/urandom > binary.nn
"$NNC" binary.nn -o binary.c > /dev/null 2> binary.err
rc=$?
check "a binary file: exit status 1" '[ $rc -eq 1 ] && [ ! -e binary.c ]'
check "a binary file: at most 20 errors, then 'too many errors'" \
    '[ $(grep -c ": error: " binary.err) -le 20 ] && grep -q "too many errors" binary.err'
check "a binary file: no line of the report is longer than 600 bytes" \
    '[ $(awk "length(\$0) > 600" binary.err | wc -l) -eq 0 ]'
head -c 3000000 /dev/zero | tr '\0' '.' > dots.nn
"$NNC" dots.nn -o dots.c > /dev/null 2> dots.err
check "3 MB of '.' on one line: 20 errors of short lines" \
    '[ $? -eq 1 ] && [ $(grep -c ": error: " dots.err) -eq 20 ] && [ $(wc -c < dots.err) -lt 40000 ]'
finish scale.sh
