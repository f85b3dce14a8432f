# lib.sh - sourced by the test scripts (". "$(dirname "$0")/../lib.sh""):
# where the trees and tools are, a scratch directory, and the tally of
# checks behind each script's last line and exit status.
#
# Settings come from make check's environment (Makefile.am) or default to
# an in-tree build: srcdir, builddir, NNC, CC, RT_CFLAGS, RT_LIBS. Sets
# tmp (removed at exit unless KEEP is set), compilers (gcc and clang where
# installed; only CC in a sanitized build, whose runtime links with the
# compiler that instrumented it) and WARN (the emitted C's warning flags).
#
# A check that cannot run here (a missing tool or module) is a skip, never
# a pass: `finish NAME` prints "NAME: P passed, F failed, S skipped" and
# exits 1 after any failure, else 77 (automake's SKIP) after any skip,
# else 0.
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
NNC=${NNC:-$builddir/nnc}
case $NNC in /*) ;; */*) NNC=$(pwd)/$NNC ;; esac
CC=${CC:-cc}
RT_CFLAGS=${RT_CFLAGS:--I$srcdir/runtime}
RT_LIBS=${RT_LIBS:-$builddir/.libs/libnncrt.a -lcjson -lz -pthread -lm}
export srcdir builddir NNC CC RT_CFLAGS RT_LIBS
WARN="-Wall -Wextra -Wpedantic -Werror"

tmp=$(mktemp -d) || exit 1
if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
skip() { echo "SKIP: $*"; skip=$((skip + 1)); }
# check WHAT CONDITION: a pass if the shell condition holds
check() { if eval "$2"; then ok; else bad "$1"; fi; }
show() { sed 's/^/    /' "$1"; }

compilers=""
for c in gcc clang; do command -v $c >/dev/null 2>&1 && compilers="$compilers $c"; done
[ -n "$compilers" ] || compilers=$CC
case $RT_CFLAGS in *-fsanitize=*) compilers=$CC ;; esac

# find_python "numpy, torch": sets py to the first python3 that imports
# them (Debian's /usr/bin/python3 first, then python3 on PATH), else fails
find_python() {
    for py in /usr/bin/python3 python3; do
        command -v $py >/dev/null 2>&1 && $py -c "import $1" >/dev/null 2>&1 && return 0
    done
    py=
    return 1
}

# skip_script NAME WHY: nothing of this script can run here
skip_script() {
    echo "$1: SKIP: $2"
    exit 77
}

finish() {
    echo "$1: $pass passed, $fail failed, $skip skipped"
    [ $fail -eq 0 ] || exit 1
    [ $skip -eq 0 ] || exit 77
    exit 0
}
