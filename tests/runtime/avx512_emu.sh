#!/bin/sh
# avx512_emu.sh - the AVX-512 float kernels on any x86 CPU with AVX2 and
# FMA: runtime/kern_avx512.c (the GEMM's tiles, matrix-vector product and
# 16x16 transpose), the small-GEMM tiles and epilogues that gemm_small.c
# instantiates for it, and the optimizers' AVX-512 loops (optim_vec.h),
# built with -DNNC_AVX512_EMULATE on the plain-C intrinsics of
# tests/runtime/avx512_emu.h, then run through gemm_check.c (every ISA
# against a GEMM in double, padding and NaN guards, past every cache
# block), optim_check.c (every ISA against the scalar loops, bit for bit)
# and test_gemm_small.c (the dense layers' fused epilogues, small tiles
# and bias sums, every ISA against the reference GEMM; with Criterion).
# This CPU has no AVX-512 (where it has, test_gemm and friends run the real
# instructions); this checks the kernels' own logic (tiles, masks, tails,
# shuffles) before they meet an AVX-512 machine.
. "$(dirname "$0")/../lib.sh"
set -u
rt=$srcdir/runtime
case $(uname -m) in x86_64|i?86) ;; *) skip_script avx512_emu.sh "not an x86 CPU" ;; esac
grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null ||
    skip_script avx512_emu.sh "this CPU lacks AVX2 or FMA (the kernels' 256-bit parts run real)"
# -ffp-contract=off: with -mfma, clang would fuse the scalar loops' a * b + c
flags="-std=c99 -O1 -mavx2 -mfma -ffp-contract=off -Wall -Wextra -Wpedantic -Wconversion -Werror \
    -DNNC_AVX512_EMULATE -I$rt -I$srcdir/tests/runtime ${HARNESS_CFLAGS:-}"
objs=
for f in gemm kern_scalar kern_neon kern_avx2 kern_avx512 rng thread optim; do
    # shellcheck disable=SC2086
    $CC $flags -c "$rt/$f.c" -o "$tmp/$f.o" || exit 1
    [ $f = optim ] || objs="$objs $tmp/$f.o"
done
# shellcheck disable=SC2086
$CC $flags "$srcdir/tests/runtime/gemm_check.c" $objs -pthread -lm -o "$tmp/gemm_emu" &&
$CC $flags "$srcdir/tests/runtime/optim_check.c" "$tmp/optim.o" $objs -pthread -lm \
    -o "$tmp/optim_emu" || exit 1
# under sanitizers (3x slower still) the block-crossing case stays narrower
quick=
case ${HARNESS_CFLAGS:-} in *-fsanitize=*) quick=--quick ;; esac
status=0
for prog in gemm optim; do
    # shellcheck disable=SC2086
    "$tmp/${prog}_emu" $quick > "$tmp/out"
    rc=$?
    cat "$tmp/out"
    if ! grep -q "^${prog}_check: isas:.* avx512" "$tmp/out"; then
        echo "avx512_emu.sh: FAIL: the emulated AVX-512 $prog kernels did not run"
        exit 1
    fi
    [ $rc -eq 0 ] || status=$rc
done
if crit=$(pkg-config --cflags --libs criterion 2>/dev/null); then
    # shellcheck disable=SC2086
    $CC $flags -Wno-conversion "$srcdir/tests/runtime/test_gemm_small.c" $objs $crit \
        -pthread -lm -o "$tmp/small_emu" || exit 1
    "$tmp/small_emu" --verbose=0 > "$tmp/out" 2>&1
    rc=$?
    cat "$tmp/out"
    if grep -q "avx512 not supported" "$tmp/out"; then
        echo "avx512_emu.sh: FAIL: the emulated AVX-512 small-GEMM kernels did not run"
        exit 1
    fi
    [ $rc -eq 0 ] || status=$rc
else
    echo "avx512_emu.sh: no Criterion (pkg-config criterion): test_gemm_small.c not run emulated"
fi
exit $status
