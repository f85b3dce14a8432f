#!/bin/sh
# static.sh - linking libnncrt statically with what pkg-config says:
# `pkg-config --static --libs nncrt` must name everything libnncrt.a needs
# (cJSON and zlib through Requires.private, the OpenMP flag and libm
# through Libs.private). The built nncrt.pc, pointed at the build tree
# and at a directory that holds only libnncrt.a (so -lnncrt cannot pick
# the shared library), links the --emit=main training program of a small
# model, which uses every part of the runtime (GEMM and its threads,
# checkpoints, gzip data); it must train, save and evaluate.
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
NNC=${NNC:-$builddir/nnc}
CC=${CC:-cc}
tmp=$(mktemp -d) || exit 1
[ -n "$KEEP" ] && echo "kept $tmp" || trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

if ! command -v pkg-config > /dev/null 2>&1; then
    echo "SKIP: pkg-config is not installed"; exit 77
fi
if [ ! -f "$builddir/.libs/libnncrt.a" ]; then
    echo "SKIP: no static libnncrt.a (configured with --disable-static?)"; exit 77
fi
mkdir -p "$tmp/lib/pkgconfig" && cp "$builddir/.libs/libnncrt.a" "$tmp/lib/" || exit 1
sed -e "s|^libdir=.*|libdir=$tmp/lib|" -e "s|^includedir=.*|includedir=$srcdir/runtime|" \
    "$builddir/runtime/nncrt.pc" > "$tmp/lib/pkgconfig/nncrt.pc" || exit 1
export PKG_CONFIG_PATH="$tmp/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
libs=$(pkg-config --static --libs nncrt) && cflags=$(pkg-config --cflags nncrt) ||
    { bad "pkg-config --static --libs nncrt"; libs=; }
echo "pkg-config --static --libs nncrt: $libs"
for want in -lnncrt -lcjson -lz -lm; do
    case " $libs " in *" $want "*) ok ;; *) bad "the static link line lacks $want" ;; esac
done

cd "$tmp" || exit 1
"$NNC" "$srcdir/tests/e2e/driver_cls.nn" --emit=main -o train.c || bad "nnc --emit=main"
# shellcheck disable=SC2086 # the flags are lists
if $CC -std=c99 -O2 $HARNESS_CFLAGS $cflags -o train train.c $libs 2> cc.log; then ok
else bad "static link with pkg-config's line:"; cat cc.log; fi
if command -v ldd > /dev/null 2>&1 && [ -x train ]; then
    if ldd ./train | grep -q libnncrt; then bad "the program links libnncrt.so"; else ok; fi
fi
# three classes of four features, gzipped
awk 'BEGIN { for (i = 0; i < 96; i++) { c = i % 3; printf "%d,%.1f,%d,%.1f\n", c, (i % 7) / 10, 0 - c, (i % 5) / 10 } }' \
    > x.csv
awk 'BEGIN { for (i = 0; i < 96; i++) print i % 3 }' > y.csv
gzip -f x.csv 2> /dev/null && x=x.csv.gz || x=x.csv
if [ -x train ] && ./train train --x "$x" --y y.csv --epochs 3 -q --save w.st &&
    ./train evaluate --x "$x" --y y.csv --weights w.st > eval.txt; then ok
else bad "the statically linked program does not train, save and evaluate"; fi

echo "static: $pass passed, $fail failed"
[ $fail -eq 0 ]
