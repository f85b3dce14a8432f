#!/bin/sh
# gemm.sh - nnc_sgemm against OpenBLAS cblas_sgemm, 1 and 2 threads, on the
# shapes in bench/gemm_bench.c; writes a markdown table to bench/out/gemm.md
# (bench/out/ is build output, not committed).
#
# OpenBLAS is measured at its best: once with the environment's core type
# and once with OPENBLAS_CORETYPE=SkylakeX (OPENBLAS_L2_SIZE unset; only
# on CPUs with AVX-512), and each row takes the faster. Debian's OpenBLAS does not recognise newer
# AVX-512 CPUs and otherwise falls back to slow kernels. OpenBLAS is only
# ever linked here.
#
# Usage: bench/gemm.sh [FILTER]   (FILTER: substring of shape names)
# Overrides: CC, CFLAGS (default -O2), BLAS_LIBS (default -lopenblas),
# RT_LIB (the built runtime, default $builddir/.libs/libnncrt.a, builddir
# defaulting to the source tree).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/bench/out
cc=${CC:-cc}
cflags=${CFLAGS:--O2}
blas_libs=${BLAS_LIBS:--lopenblas}
filter=${1:-}
mkdir -p "$out"

rt=$top/runtime
# the runtime as built (make), so that the GEMM measured is the one the
# generated code links; only the benchmark's own file is compiled here
rtlib=${RT_LIB:-${builddir:-$top}/.libs/libnncrt.a}
if [ ! -f "$rtlib" ]; then
    echo "gemm.sh: $rtlib not found: run make first (or set RT_LIB)" >&2
    exit 1
fi
$cc -std=c99 $cflags -fopenmp -DWITH_OPENBLAS -I"$rt" "$top/bench/gemm_bench.c" \
    "$rtlib" $blas_libs -lcjson -lz -lm -pthread -o "$out/gemm_bench"

load=$(cut -d' ' -f1-3 /proc/loadavg)
orig_core=${OPENBLAS_CORETYPE-<unset>}
orig_l2=${OPENBLAS_L2_SIZE-<unset>}
for t in 1 2; do
    echo "gemm.sh: nnc, $t thread(s)" >&2
    NNC_NUM_THREADS=$t "$out/gemm_bench" nnc $t "$filter" > "$out/nnc.$t.tsv"
    echo "gemm.sh: OpenBLAS (core type $orig_core), $t thread(s)" >&2
    OPENBLAS_NUM_THREADS=$t "$out/gemm_bench" blas $t "$filter" \
        > "$out/blas.$t.tsv"
    if grep -q '^flags.* avx512f' /proc/cpuinfo; then
        echo "gemm.sh: OpenBLAS (SkylakeX), $t thread(s)" >&2
        env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX \
            OPENBLAS_NUM_THREADS=$t "$out/gemm_bench" blas $t "$filter" \
            > "$out/skx.$t.tsv"
    else    # no AVX-512: SkylakeX kernels would be illegal instructions
        cp "$out/blas.$t.tsv" "$out/skx.$t.tsv"
    fi
done

{
    echo "# nnc_sgemm vs OpenBLAS cblas_sgemm (GFLOP/s, fp32, row-major)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo \
        | sed 's/.*: //'), $(nproc) cores; nnc ISA $(cut -f5 "$out/nnc.1.tsv" \
        | head -n1)."
    echo "OpenBLAS $(dpkg-query -W -f '${Version}' libopenblas0-pthread \
        2>/dev/null || echo '?'): best of default core type (OPENBLAS_CORETYPE" \
        "was $orig_core, OPENBLAS_L2_SIZE was $orig_l2; ran as" \
        "$(cut -f5 "$out/blas.1.tsv" | head -n1)) and SkylakeX per row."
    echo "alpha = 1, beta = 0; median of 7 samples of >= 20 ms after warm-up."
    echo "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>}; load average at start:" \
        "$load (other jobs running make 2-thread numbers unreliable)."
    echo "Shapes are M x N x K (A^T / B^T marks a transposed operand)."
    echo
    echo "| shape | M x N x K | threads | nnc GFLOP/s | OpenBLAS GFLOP/s | ratio |"
    echo "|---|---|---|---|---|---|"
    for t in 1 2; do
        paste "$out/nnc.$t.tsv" "$out/blas.$t.tsv" "$out/skx.$t.tsv"
    done | awk -F '\t' '{
        best = $9 > $14 ? $9 : $14; core = $9 > $14 ? $10 : $15;
        printf "| %s | %s | %s | %.1f | %.1f (%s) | %.2f |\n",
               $1, $2, $3, $4, best, core, $4 / best }'
} > "$out/gemm.md"
cat "$out/gemm.md"
