#!/bin/sh
# vnni_emu.sh - the AVX-512 VNNI int8 kernel (runtime/kern_avx512_i8.c)
# on any CPU: built with -DNNC_AVX512_EMULATE on the plain-C intrinsics of
# tests/runtime/avx512_emu.h and run through tests/runtime/qgemm_check.c,
# which compares it with the scalar reference bit for bit. The real
# instructions run in test_qgemm on CPUs with VNNI (the acceptance
# machine); this checks the kernel's own logic everywhere else.
. "$(dirname "$0")/../lib.sh"
set -u
rt=$srcdir/runtime
$CC -std=c99 -O1 -Wall -Wextra -Wpedantic -Wconversion -Werror -DNNC_AVX512_EMULATE \
    -I"$rt" -I"$srcdir/tests/runtime" "$rt/qgemm.c" "$rt/qpack.c" "$rt/kern_avx2_i8.c" \
    "$rt/kern_avx512_i8.c" "$rt/kern_neon_i8.c" "$srcdir/tests/runtime/qgemm_check.c" -lm \
    -o "$tmp/qgemm_emu" ${HARNESS_CFLAGS:-} || exit 1
"$tmp/qgemm_emu" > "$tmp/out"
rc=$?
cat "$tmp/out"
if ! grep -q '^qgemm_check: isas: avx512' "$tmp/out"; then
    echo "vnni_emu.sh: FAIL: the emulated VNNI kernel did not run"
    exit 1
fi
exit $rc
