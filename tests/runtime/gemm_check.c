/*
 * gemm_check.c - nnc_sgemm with every kernel set this CPU (or emulator)
 * runs, against a GEMM computed in double. Plain C99 with no test
 * framework, so that tests/runtime/neon.sh can cross-compile it for
 * aarch64 and run it under qemu; it runs natively on x86 as well.
 *
 * Each case draws A, B and C, computes the double reference once, then
 * checks every ISA on copies: each element within (k + 2) * FLT_EPSILON
 * of the magnitude of its terms, padding and the float before C untouched
 * (operands sit one float past an aligned address, rows padded with NaN in
 * A and B so a stray read shows). Prints "gemm_check: N passed, M failed"
 * and exits 1 if any failed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"

static const char *const isas[] = {"avx512", "avx2", "neon", "scalar"};
#define NISAS (int)(sizeof isas / sizeof isas[0])

static const int sizes[] = {0, 1, 7, 17, 33, 100, 257};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

static int passed, failed;

static float *alloc_mat(int rows, int ld, float pad, size_t *len)
{
    size_t i, n = 1 + (size_t)rows * (size_t)ld;
    float *base = malloc(n * sizeof *base);

    if (base == NULL) {
        fprintf(stderr, "gemm_check: out of memory\n");
        exit(2);
    }
    for (i = 0; i < n; i++)
        base[i] = pad;
    *len = n;
    return base;
}

static void fill(float *p, int rows, int cols, int ld, nnc_rng *r)
{
    int i, j;

    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            p[(size_t)i * (size_t)ld + (size_t)j] =
                2.0f * nnc_rng_uniform(r) - 1.0f;
}

/* One case: every supported ISA against the double reference. */
static void check_case(int ta, int tb, int m, int n, int k, float alpha,
                       float beta, int pad, int nan_c, unsigned seed)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = (ac > 0 ? ac : 1) + pad, ldb = (bc > 0 ? bc : 1) + pad;
    int ldc = (n > 0 ? n : 1) + pad;
    size_t la, lb, lc, t;
    float *a = alloc_mat(ar, lda, NAN, &la), *b = alloc_mat(br, ldb, NAN, &lb);
    float *c0 = alloc_mat(m, ldc, -777.0f, &lc), *c;
    double *want = malloc(((size_t)m * (size_t)n + 1) * 2 * sizeof *want);
    double *mag;
    nnc_rng r;
    int i, j, p, s;

    if (want == NULL)
        exit(2);
    mag = want + (size_t)m * (size_t)n + 1;
    c = malloc(lc * sizeof *c);
    nnc_rng_seed(&r, seed);
    fill(a + 1, ar, ac, lda, &r);
    fill(b + 1, br, bc, ldb, &r);
    fill(c0 + 1, m, n, ldc, &r);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double sum = 0.0, mg = 0.0, cij = c0[1 + (size_t)i * (size_t)ldc
                                                 + (size_t)j];
            for (p = 0; p < k; p++) {
                double x = ta ? a[1 + (size_t)p * (size_t)lda + (size_t)i]
                              : a[1 + (size_t)i * (size_t)lda + (size_t)p];
                double y = tb ? b[1 + (size_t)j * (size_t)ldb + (size_t)p]
                              : b[1 + (size_t)p * (size_t)ldb + (size_t)j];
                sum += x * y;
                mg += fabs(x * y);
            }
            want[(size_t)i * (size_t)n + (size_t)j] = alpha * sum
                + (beta != 0.0f ? beta * cij : 0.0);
            mag[(size_t)i * (size_t)n + (size_t)j] = fabs(alpha) * mg
                + (beta != 0.0f ? fabs(beta * cij) : 0.0);
        }
    if (nan_c && beta == 0.0f)    /* beta == 0 must not read C */
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++)
                c0[1 + (size_t)i * (size_t)ldc + (size_t)j] = NAN;

    for (s = 0; s < NISAS; s++) {
        int bad = 0;
        if (nnc_set_isa(isas[s]) != 0)
            continue;
        memcpy(c, c0, lc * sizeof *c);
        nnc_sgemm(ta, tb, m, n, k, alpha, a + 1, lda, b + 1, ldb, beta,
                  c + 1, ldc);
        for (i = 0; i < m && !bad; i++)
            for (j = 0; j < ldc && !bad; j++) {
                size_t at = (size_t)i * (size_t)ldc + (size_t)j;
                double got = c[1 + at], w, tol;
                if (j >= n) {
                    bad = got != -777.0;
                    continue;
                }
                w = want[(size_t)i * (size_t)n + (size_t)j];
                tol = (double)(k + 2) * FLT_EPSILON
                      * mag[(size_t)i * (size_t)n + (size_t)j] + 1e-30;
                bad = !(fabs(got - w) <= tol);
                if (bad)
                    printf("FAIL %s ta=%d tb=%d m=%d n=%d k=%d alpha=%g "
                           "beta=%g pad=%d: C[%d,%d] = %.9g, want %.9g\n",
                           isas[s], ta, tb, m, n, k, (double)alpha,
                           (double)beta, pad, i, j, got, w);
            }
        if (!bad && c[0] != -777.0f) {
            printf("FAIL %s wrote before C\n", isas[s]);
            bad = 1;
        }
        for (t = 1 + (size_t)m * (size_t)ldc; !bad && t < lc; t++)
            bad = c[t] != c0[t];
        if (bad)
            failed++;
        else
            passed++;
    }
    free(a);
    free(b);
    free(c0);
    free(c);
    free(want);
}

int main(int argc, char **argv)
{
    static const float ab[][2] = {{1, 0}, {0.5f, -1.5f}, {-2, 1}, {1, 1}};
    int t, im, in, ik, count = 0;
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;

    printf("gemm_check: isas:");
    for (t = 0; t < NISAS; t++)
        if (nnc_set_isa(isas[t]) == 0)
            printf(" %s", isas[t]);
    printf("\n");

    for (t = 0; t < 4; t++)
        for (im = 0; im < NSIZES; im++)
            for (in = 0; in < NSIZES; in++)
                for (ik = 0; ik < NSIZES; ik++, count++) {
                    int m = sizes[im], n = sizes[in], k = sizes[ik];
                    /* Keep the run short: one dimension of 257 at most. */
                    if ((m == 257) + (n == 257) + (k == 257) > 1)
                        continue;
                    check_case(t >> 1, t & 1, m, n, k, ab[count % 4][0],
                               ab[count % 4][1], count % 3 == 0 ? 0 : 3,
                               count % 8 < 4, (unsigned)count);
                }
    /* Past one cache block in every dimension (but nc under --quick, for
     * emulators): m > 336, k > 384, n > 2048. */
    for (t = 0; t < 4; t++)
        check_case(t >> 1, t & 1, 350, quick ? 300 : 2100, 390, 0.5f, 0.25f,
                   1, 0, (unsigned)t);
    printf("gemm_check: %d passed, %d failed\n", passed, failed);
    return failed > 0;
}
