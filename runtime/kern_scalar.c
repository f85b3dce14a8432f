/*
 * kern_scalar.c - the portable GEMM micro-kernel, plain C99: the fallback
 * on every CPU and the only kernel of a scalar-only build.
 *
 * A 4 x 16 tile of C is accumulated in a local array. Full tiles use
 * loops with constant bounds, which compilers unroll and vectorize for
 * whatever the baseline ISA offers (SSE2 on x86-64); partial tiles use the
 * same operations under variable bounds, so each element of C is computed
 * identically in either (see gemm_kern.h). It reads only the columns it
 * is asked for, so B panels need no padding (masked_b).
 */
#include "gemm_kern.h"

#define MR 4
#define NR 16

static int supported(void)
{
    return 1;
}

static void finish(size_t rows, size_t cols, float acc[MR][NR], float *c,
                   size_t ldc, float alpha, float beta)
{
    size_t i, j;

    for (i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (j = 0; j < cols; j++)
                ci[j] = alpha * acc[i][j];
        else
            for (j = 0; j < cols; j++)
                ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
}

static void tile(size_t rows, size_t cols, size_t k, const float *a,
                 size_t rsa, size_t csa, const float *b, size_t ldb,
                 float *c, size_t ldc, float alpha, float beta)
{
    float acc[MR][NR] = {{0}};
    size_t i, j, p;

    if (rows == MR && cols == NR) {
        for (p = 0; p < k; p++, a += csa, b += ldb)
            for (i = 0; i < MR; i++) {
                float ai = a[i * rsa];
                for (j = 0; j < NR; j++)
                    acc[i][j] += ai * b[j];
            }
    } else {
        for (p = 0; p < k; p++, a += csa, b += ldb)
            for (i = 0; i < rows; i++) {
                float ai = a[i * rsa];
                for (j = 0; j < cols; j++)
                    acc[i][j] += ai * b[j];
            }
    }
    finish(rows, cols, acc, c, ldc, alpha, beta);
}

const GemmKern nnc_kern_scalar = {
    "scalar", supported, MR, NR, 64, 256, 1024, 1, tile, tile, NULL, 0, NULL,
};
