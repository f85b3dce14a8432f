#!/bin/sh
# neon.sh - the runtime GEMM's and optimizers' NEON and scalar kernels on
# aarch64, under emulation: cross-compiles runtime/gemm.c, the kernels and
# tests/runtime/gemm_check.c, and runtime/optim.c with
# tests/runtime/optim_check.c, with aarch64-linux-gnu-gcc and runs the
# results with qemu-aarch64. Exits 77 (automake's SKIP) when the cross compiler,
# its C library or qemu is missing.
#
# Overrides: AARCH64_CC, QEMU_AARCH64, AARCH64_SYSROOT.
. "$(dirname "$0")/../lib.sh"
set -u
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}

case $RT_CFLAGS in *-fsanitize=*)
    # the cross-compiled kernels are not instrumented: the plain build's
    # run covers them, and qemu is slow
    skip_script neon.sh "sanitized build" ;;
esac
command -v "$cc" >/dev/null 2>&1 ||
    skip_script neon.sh "no cross compiler $cc (apt install gcc-aarch64-linux-gnu)"
command -v "$qemu" >/dev/null 2>&1 || skip_script neon.sh "no $qemu (apt install qemu-user)"
[ -d "$sysroot/lib" ] ||
    skip_script neon.sh "no aarch64 C library in $sysroot (apt install libc6-dev-arm64-cross)"

rt=$srcdir/runtime
"$cc" -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wconversion -Werror -I"$rt" \
    "$rt/gemm.c" "$rt/kern_scalar.c" "$rt/kern_neon.c" "$rt/kern_avx2.c" \
    "$rt/kern_avx512.c" "$rt/rng.c" "$rt/thread.c" "$srcdir/tests/runtime/gemm_check.c" \
    -pthread -lm -o "$tmp/gemm_check" || exit 1
"$cc" -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wconversion -Werror -I"$rt" \
    "$rt/optim.c" "$rt/gemm.c" "$rt/kern_scalar.c" "$rt/kern_neon.c" "$rt/kern_avx2.c" \
    "$rt/kern_avx512.c" "$rt/rng.c" "$rt/thread.c" "$srcdir/tests/runtime/optim_check.c" \
    -pthread -lm -o "$tmp/optim_check" || exit 1

# --quick: the emulator is slow, so the block-crossing case stays narrower.
"$qemu" -L "$sysroot" "$tmp/gemm_check" --quick > "$tmp/out"
rc=$?
cat "$tmp/out"
if ! grep -q '^gemm_check: isas:.* neon' "$tmp/out"; then
    echo "neon.sh: FAIL: the neon kernels did not run"
    exit 1
fi
[ $rc -eq 0 ] || exit $rc
"$qemu" -L "$sysroot" "$tmp/optim_check" > "$tmp/out"
rc=$?
cat "$tmp/out"
if ! grep -q '^optim_check: isas:.* neon' "$tmp/out"; then
    echo "neon.sh: FAIL: the neon optimizer kernels did not run"
    exit 1
fi
[ $rc -eq 0 ] || exit $rc

# the int8 GEMM (issue 16): the sdot kernels; qemu's default CPU has DotProd
"$cc" -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wconversion -Werror -I"$rt" \
    "$rt/qgemm.c" "$rt/qpack.c" "$rt/kern_avx2_i8.c" "$rt/kern_avx512_i8.c" "$rt/kern_neon_i8.c" \
    "$srcdir/tests/runtime/qgemm_check.c" -lm -o "$tmp/qgemm_check" || exit 1
"$qemu" -L "$sysroot" "$tmp/qgemm_check" > "$tmp/out"
rc=$?
cat "$tmp/out"
if ! grep -q '^qgemm_check: isas:.* neon' "$tmp/out"; then
    echo "neon.sh: FAIL: the neon int8 kernels did not run"
    exit 1
fi
exit $rc
