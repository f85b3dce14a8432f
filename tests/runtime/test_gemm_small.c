/*
 * test_gemm_small.c - the small-problem paths of nnc_sgemm (gemm_small.c:
 * dot products against a transposed B for C of one or two rows or
 * columns), nnc_sgemm_bias and nnc_sgemm_relu_back (their epilogues in
 * registers or in a vector pass), against a GEMM computed in double, on
 * every shape with m, n in a set of edge sizes up to 40 and k from 1 to
 * 40 (and a few longer), all four transposes, several alpha and beta, and
 * row strides above the minimum. Operands sit one float past an
 * allocation, and all padding holds NaN (A, B, the bias, ReLU's mask y)
 * or a sentinel (C), so a read or write outside the matrices shows. Each
 * case runs under every kernel set this CPU supports; the ones it lacks
 * are named and left out (the AVX-512 instantiation is the same template
 * as the AVX2 one).
 *
 * nnc_sgemm_relu_back's column sums must equal the rows of its C added
 * in order, exactly. nnc_sgemm_bias gives exactly nnc_sgemm followed by
 * c + bias[j] and c > 0 ? c : 0, and the dot-product path (AVX2,
 * AVX-512) computes each element the same in a call of one row or two.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"

static const char *const isas[] = {"avx512", "avx2", "neon", "scalar"};
#define NISAS (sizeof isas / sizeof isas[0])

static const int mns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 32, 33, 40};
#define NMNS (int)(sizeof mns / sizeof mns[0])

/* len floats at base + 1 (returned), all of base[0..len] set to pad. */
static float *padded(size_t len, float pad, float **base)
{
    *base = malloc((len + 1) * sizeof **base);
    cr_assert_not_null(*base);
    for (size_t i = 0; i <= len; i++)
        (*base)[i] = pad;
    return *base + 1;
}

static float uniform(nnc_rng *r)
{
    return 2.0f * nnc_rng_uniform(r) - 1.0f;
}

/* One shape under the current ISA: nnc_sgemm with alpha, beta, and
 * nnc_sgemm_bias with relu on and off, each against double. */
static void check_shape(int ta, int tb, int m, int n, int k, float alpha,
                        float beta, int pad, nnc_rng *r)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    float *ab, *bb, *cb, *c0b, *biasb;
    float *a = padded((size_t)ar * (size_t)lda, NAN, &ab);
    float *b = padded((size_t)br * (size_t)ldb, NAN, &bb);
    float *bias = padded((size_t)n + 4, NAN, &biasb);
    size_t clen = (size_t)m * (size_t)ldc;
    float *c = padded(clen, -777.0f, &cb);
    float *c0 = padded(clen, -777.0f, &c0b);
    float *sumb, *yb;
    float *sum = padded((size_t)n + 4, NAN, &sumb);
    float *y = padded(clen, NAN, &yb);

    for (int i = 0; i < ar; i++)
        for (int j = 0; j < ac; j++)
            a[i * lda + j] = uniform(r);
    for (int i = 0; i < br; i++)
        for (int j = 0; j < bc; j++)
            b[i * ldb + j] = uniform(r);
    for (int j = 0; j < n; j++)
        bias[j] = uniform(r);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            c0[i * ldc + j] = uniform(r);
            y[i * ldc + j] = (i + j) % 5 == 0 ? 0.0f : uniform(r);
        }

    for (int mode = 0; mode < 4; mode++) {  /* sgemm, bias, +relu, relu_back */
        memcpy(cb, c0b, (clen + 1) * sizeof *cb);
        for (int j = 0; j < n; j++)
            sum[j] = 0.0f;
        if (mode == 0)
            nnc_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (mode < 3)
            nnc_sgemm_bias(ta, tb, m, n, k, a, lda, b, ldb, bias, mode == 2, c, ldc);
        else
            nnc_sgemm_relu_back(ta, tb, m, n, k, a, lda, b, ldb, y, ldc, sum, c, ldc);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double want = 0.0, mag = 0.0;
                for (int p = 0; p < k; p++) {
                    double x = ta ? a[p * lda + i] : a[i * lda + p];
                    double z = tb ? b[j * ldb + p] : b[p * ldb + j];
                    want += x * z;
                    mag += fabs(x * z);
                }
                if (mode == 0) {
                    want *= alpha, mag *= fabs(alpha);
                    if (beta != 0.0f) {
                        want += (double)beta * c0[i * ldc + j];
                        mag += fabs((double)beta * c0[i * ldc + j]);
                    }
                } else if (mode < 3) {
                    want += bias[j], mag += fabs(bias[j]);
                    if (mode == 2 && !(want > 0.0))
                        want = 0.0;
                } else if (!(y[i * ldc + j] > 0.0f)) {
                    want = 0.0;
                }
                double got = c[i * ldc + j];
                cr_assert(fabs(got - want) <= (k + 3) * FLT_EPSILON * mag + 1e-30,
                          "%s mode %d ta=%d tb=%d m=%d n=%d k=%d alpha=%g "
                          "beta=%g pad=%d: C[%d,%d] = %.9g, want %.9g",
                          nnc_isa(), mode, ta, tb, m, n, k, (double)alpha,
                          (double)beta, pad, i, j, got, want);
            }
            for (int j = n; j < ldc; j++)
                cr_assert_eq(c[i * ldc + j], -777.0f, "%s wrote C[%d,%d]", nnc_isa(), i, j);
        }
        cr_assert_eq(cb[0], -777.0f, "%s wrote before C", nnc_isa());
        for (int j = 0; mode == 3 && j < n; j++) {  /* the rows' sums, in order */
            float total = 0.0f;
            for (int i = 0; i < m; i++)
                total += c[i * ldc + j];
            cr_assert_eq(sum[j], total, "%s m=%d n=%d k=%d: sum[%d] = %.9g, want %.9g",
                         nnc_isa(), m, n, k, j, (double)sum[j], (double)total);
        }
        cr_assert(isnan(sumb[0]) && isnan(sum[n]), "%s wrote outside sum", nnc_isa());
    }
    free(ab), free(bb), free(cb), free(c0b), free(biasb), free(sumb), free(yb);
}

Test(gemm_small, edge_shapes_every_transpose)
{
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-1.5f, 0.25f}};
    static const int ks[] = {41, 64, 100, 128, 257};
    nnc_rng r;
    int count = 0;

    nnc_rng_seed(&r, 12);
    for (size_t f = 0; f < NISAS; f++) {
        if (nnc_set_isa(isas[f]) != NNC_OK) {
            printf("gemm_small: %s not supported here, left out\n", isas[f]);
            continue;
        }
        for (int t = 0; t < 4; t++)
            for (int mi = 0; mi < NMNS; mi++)
                for (int ni = 0; ni < NMNS; ni++)
                    for (int k = 1; k <= 40 + (int)(sizeof ks / sizeof ks[0]); k++) {
                        int kk = k <= 40 ? k : ks[k - 41];
                        int v = count++;
                        if (kk > 40 && (mi + ni) % 3 != 0)
                            continue;   /* long k: a third of the shapes */
                        check_shape(t >> 1, t & 1, mns[mi], mns[ni], kk, ab[v % 3][0],
                                    ab[v % 3][1], v % 5 == 0 ? 3 : 0, &r);
                    }
    }
}

/* nnc_sgemm_bias is nnc_sgemm then the emitted loop's operations, bit for
 * bit, and a row of A gives the same row of C in a call of one or two
 * rows (the dot products), with or without the bias and ReLU. */
Test(gemm_small, bias_exact_and_rows_independent)
{
    enum { M = 32, N = 64, K = 128 };
    static float a[M * K], b[N * K], bias[N], c1[M * N], c2[M * N], c3[N];
    nnc_rng r;

    nnc_rng_seed(&r, 7);
    for (int i = 0; i < M * K; i++)
        a[i] = uniform(&r);
    for (int i = 0; i < N * K; i++)
        b[i] = uniform(&r);
    for (int i = 0; i < N; i++)
        bias[i] = uniform(&r);
    for (size_t f = 0; f < NISAS; f++) {
        if (nnc_set_isa(isas[f]) != NNC_OK)
            continue;
        for (int relu = 0; relu < 2; relu++) {
            nnc_sgemm_bias(0, 1, M, N, K, a, K, b, K, bias, relu, c1, N);
            nnc_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c2, N);
            for (int i = 0; i < M * N; i++) {
                float v = c2[i] + bias[i % N];
                c2[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
            }
            cr_assert_eq(memcmp(c1, c2, sizeof c1), 0, "%s relu=%d", nnc_isa(), relu);
        }
        if (strcmp(isas[f], "avx2") != 0 && strcmp(isas[f], "avx512") != 0)
            continue;   /* the tiled kernels differ from one-row dots */
        /* (n, k): whole steps of k, then a masked tail of k with columns
         * in eights and fours (one row) or fours (two rows) */
        static const int nk[][2] = {{N, K}, {13, 10}, {21, 37}, {1, 37}};
        for (size_t t = 0; t < sizeof nk / sizeof nk[0]; t++) {
            int n = nk[t][0], k = nk[t][1];
            for (int i = 0; i < M; i += 2)     /* two rows at a time */
                nnc_sgemm(0, 1, 2, n, k, 1.0f, a + i * k, k, b, k, 0.0f, c1 + i * n, n);
            for (int i = 0; i < M; i++) {
                nnc_sgemm(0, 1, 1, n, k, 1.0f, a + i * k, k, b, k, 0.0f, c3, n);
                cr_assert_eq(memcmp(c3, c1 + i * n, (size_t)n * sizeof(float)), 0,
                             "%s row %d, n=%d k=%d", nnc_isa(), i, n, k);
            }
            /* a dense layer's forward: one row (predict at batch 1: the
             * bias and ReLU chosen once per call) gives the bits of two */
            for (int relu = 0; relu < 2; relu++) {
                for (int i = 0; i < M; i += 2)
                    nnc_sgemm_bias(0, 1, 2, n, k, a + i * k, k, b, k, bias, relu, c1 + i * n, n);
                for (int i = 0; i < M; i++) {
                    nnc_sgemm_bias(0, 1, 1, n, k, a + i * k, k, b, k, bias, relu, c3, n);
                    cr_assert_eq(memcmp(c3, c1 + i * n, (size_t)n * sizeof(float)), 0,
                                 "%s bias relu=%d row %d, n=%d k=%d", nnc_isa(), relu, i, n, k);
                }
            }
        }
    }
}

/* Large enough for threads and rectangles: the epilogue applied to each
 * rectangle after its product (nnc_sgemm_bias) gives nnc_sgemm then the
 * emitted loop's operations, bit for bit, on 1 and 3 threads, for
 * shapes whose rectangles end inside tiles and both layouts of B. */
Test(gemm_small, bias_by_rectangles_on_threads)
{
    static const int shapes[][4] = {  /* m, n, k, trans_b */
        {1000, 37, 9, 1}, {301, 200, 150, 1}, {64, 256, 784, 1}, {517, 96, 64, 0},
    };
    nnc_rng r;

    nnc_rng_seed(&r, 11);
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], tb = shapes[t][3];
        float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)n * k);
        float *bias = malloc(sizeof(float) * (size_t)n), *c1 = malloc(sizeof(float) * (size_t)m * n);
        float *c2 = malloc(sizeof(float) * (size_t)m * n);
        for (int i = 0; i < m * k; i++)
            a[i] = uniform(&r);
        for (int i = 0; i < n * k; i++)
            b[i] = uniform(&r);
        for (int i = 0; i < n; i++)
            bias[i] = uniform(&r);
        for (size_t f = 0; f < NISAS; f++) {
            if (nnc_set_isa(isas[f]) != NNC_OK)
                continue;
            for (int threads = 1; threads <= 3; threads += 2) {
                nnc_set_num_threads(threads);
                for (int relu = 0; relu < 2; relu++) {
                    nnc_sgemm(0, tb, m, n, k, 1.0f, a, k, b, tb ? k : n, 0.0f, c2, n);
                    for (int i = 0; i < m * n; i++) {
                        float v = c2[i] + bias[i % n];
                        c2[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
                    }
                    for (int rep = 0; rep < 3; rep++) {   /* the pool's choices settle */
                        memset(c1, 0xff, sizeof(float) * (size_t)m * n);
                        nnc_sgemm_bias(0, tb, m, n, k, a, k, b, tb ? k : n, bias, relu, c1, n);
                        cr_assert_eq(memcmp(c1, c2, sizeof(float) * (size_t)m * n), 0,
                                     "%s %dx%dx%d tb=%d relu=%d, %d threads", nnc_isa(), m, n,
                                     k, tb, relu, threads);
                    }
                }
            }
        }
        free(a), free(b), free(bias), free(c1), free(c2);
    }
    nnc_set_num_threads(0);
}
