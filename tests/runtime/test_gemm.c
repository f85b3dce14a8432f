/*
 * test_gemm.c - nnc_sgemm and nnc_sgemm_ref against a naive GEMM computed
 * in double.
 *
 * Every case runs nnc_sgemm once per kernel set this CPU supports (switched
 * with nnc_set_isa), and nnc_sgemm_ref, on the same inputs and checks each
 * C element within a bound relative to the magnitude of its terms
 * (|alpha| sum |a||b| + |beta c|), which float summation of k products
 * meets by a factor of about two. The operands are placed one float past
 * an aligned address, and everything outside the logical matrices (row
 * padding when ld > minimal, the float before the data) holds NaN in A and
 * B and a sentinel in C: a kernel that reads or writes outside its matrices
 * shows up as NaN in the result or a changed sentinel. The double
 * reference is computed once per case. Further tests check that 1 and 2
 * threads give bit-identical results and that the caller's floating-point
 * mode survives the call.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
#include <xmmintrin.h>
#endif

#include "nncrt.h"
#include "isa_main.h" /* exits 77 (SKIP) for an ISA this CPU lacks */

typedef void SgemmFn(int, int, int, int, int, float, const float *, int,
                     const float *, int, float, float *, int);

/* nnc_sgemm under each ISA (isa != NULL; skipped where unsupported),
 * then the reference. */
static const struct {
    const char *name;
    const char *isa;
    SgemmFn *fn;
} impls[] = {
    {"nnc_sgemm/avx512", "avx512", nnc_sgemm},
    {"nnc_sgemm/avx2", "avx2", nnc_sgemm},
    {"nnc_sgemm/neon", "neon", nnc_sgemm},
    {"nnc_sgemm/scalar", "scalar", nnc_sgemm},
    {"nnc_sgemm_ref", NULL, nnc_sgemm_ref},
};
#define NIMPLS (sizeof impls / sizeof impls[0])

/* Selects impls[f]'s ISA; 0 if this CPU cannot run it. */
static int use_impl(size_t f)
{
    return impls[f].isa == NULL || nnc_set_isa(impls[f].isa) == NNC_OK;
}

static const int sizes[] = {0, 1, 7, 17, 33, 100, 257};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

/* A rows x cols matrix with row stride ld, one float past an aligned
 * allocation; base is what to free. Padding and the leading float are
 * filled with pad, the matrix with uniform values in [-1, 1) (or pad too
 * when random is NULL). */
typedef struct Mat {
    float *base, *p;
    int rows, cols, ld;
    size_t len;         /* floats in base */
} Mat;

static Mat mat_new(int rows, int cols, int ld, float pad, nnc_rng *random)
{
    Mat m;
    int i, j;

    m.rows = rows, m.cols = cols, m.ld = ld;
    m.len = 1 + (size_t)rows * (size_t)ld;
    m.base = malloc(m.len * sizeof *m.base);
    cr_assert_not_null(m.base);
    m.p = m.base + 1;
    for (i = 0; i < (int)m.len; i++)
        m.base[i] = pad;
    if (random != NULL)
        for (i = 0; i < rows; i++)
            for (j = 0; j < cols; j++)
                m.p[(size_t)i * (size_t)ld + (size_t)j] =
                    2.0f * nnc_rng_uniform(random) - 1.0f;
    return m;
}

static float at(const Mat *m, int i, int j)
{
    return m->p[(size_t)i * (size_t)m->ld + (size_t)j];
}

/* One GEMM case, every implementation. pad is the extra row stride;
 * c_fill is what C starts as (NAN to check beta == 0 never reads it),
 * or 0 for random values. */
static void check_case(int ta, int tb, int m, int n, int k, float alpha,
                       float beta, int pad, float c_fill, uint64_t seed)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    nnc_rng r;
    size_t f, mn = (size_t)m * (size_t)n;
    double *want = malloc((2 * mn + 1) * sizeof *want), *mag = want + mn;

    cr_assert_not_null(want);
    nnc_rng_seed(&r, seed);
    Mat a = mat_new(ar, ac, (ac > 0 ? ac : 1) + pad, NAN, &r);
    Mat b = mat_new(br, bc, (bc > 0 ? bc : 1) + pad, NAN, &r);
    Mat c0 = mat_new(m, n, (n > 0 ? n : 1) + pad, -777.0f,
                     c_fill == 0.0f ? &r : NULL);
    if (c_fill != 0.0f)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c0.p[(size_t)i * (size_t)c0.ld + (size_t)j] = c_fill;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0, mg = 0.0;
            for (int p = 0; p < k; p++) {
                double x = ta ? at(&a, p, i) : at(&a, i, p);
                double y = tb ? at(&b, j, p) : at(&b, p, j);
                sum += x * y;
                mg += fabs(x * y);
            }
            sum *= alpha;
            mg *= fabs(alpha);
            if (beta != 0.0f) {
                sum += (double)beta * at(&c0, i, j);
                mg += fabs((double)beta * at(&c0, i, j));
            }
            want[(size_t)i * (size_t)n + (size_t)j] = sum;
            mag[(size_t)i * (size_t)n + (size_t)j] = mg;
        }
    }

    for (f = 0; f < NIMPLS; f++) {
        if (!use_impl(f))
            continue;
        Mat c = mat_new(m, n, c0.ld, 0.0f, NULL);
        memcpy(c.base, c0.base, c.len * sizeof *c.base);

        impls[f].fn(ta, tb, m, n, k, alpha, a.p, a.ld, b.p, b.ld, beta, c.p,
                    c.ld);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double got = at(&c, i, j);
                double w = want[(size_t)i * (size_t)n + (size_t)j];
                double mg = mag[(size_t)i * (size_t)n + (size_t)j];
                cr_assert(fabs(got - w) <= (k + 2) * FLT_EPSILON * mg + 1e-30,
                          "%s ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g "
                          "pad=%d: C[%d,%d] = %.9g, want %.9g",
                          impls[f].name, ta, tb, m, n, k, (double)alpha,
                          (double)beta, pad, i, j, got, w);
            }
            /* Row padding and everything past the matrix untouched. */
            for (int j = n; j < c.ld; j++)
                cr_assert_eq(at(&c, i, j), -777.0f, "%s wrote C[%d,%d]",
                             impls[f].name, i, j);
        }
        cr_assert_eq(c.base[0], -777.0f, "%s wrote before C", impls[f].name);
        if (m == 0 || n == 0)
            cr_assert_eq(memcmp(c.base, c0.base, c.len * sizeof *c.base), 0);
        free(c.base);
    }
    free(want);
    free(a.base);
    free(b.base);
    free(c0.base);
}

Test(gemm, hand_computed_2x2)
{
    /* A = [1 2; 3 4], B = [5 6; 7 8]: A B = [19 22; 43 50]. */
    float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
    float want[4][4] = {
        {19, 22, 43, 50},   /* A B     */
        {17, 23, 39, 53},   /* A B^T   */
        {26, 30, 38, 44},   /* A^T B   */
        {23, 31, 34, 46},   /* A^T B^T */
    };

    for (int t = 0; t < 4; t++) {
        for (size_t f = 0; f < NIMPLS; f++) {
            if (!use_impl(f))
                continue;
            float c[4] = {1, 1, 1, 1};
            impls[f].fn(t >> 1, t & 1, 2, 2, 2, 1.0f, a, 2, b, 2, 1.0f, c, 2);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(c[i], want[t][i] + 1, "%s t=%d c[%d]=%g",
                             impls[f].name, t, i, (double)c[i]);
        }
    }
}

Test(gemm, all_transposes_and_sizes)
{
    static const float ab[][2] = {{1, 0}, {0.5f, -1.5f}, {-2, 1}, {1, 1}};
    int count = 0;

    for (int t = 0; t < 4; t++)
        for (int im = 0; im < NSIZES; im++)
            for (int in = 0; in < NSIZES; in++)
                for (int ik = 0; ik < NSIZES; ik++, count++) {
                    int m = sizes[im], n = sizes[in], k = sizes[ik];
                    /* Two dimensions of 257 at most, to stay fast. */
                    if (m == 257 && n == 257 && k == 257)
                        continue;
                    check_case(t >> 1, t & 1, m, n, k, ab[count % 4][0],
                               ab[count % 4][1], count % 3 == 0 ? 0 : 3, 0.0f,
                               (uint64_t)count);
                }
}

Test(gemm, strided_operands)
{
    static const int pads[] = {1, 5, 64};

    for (int t = 0; t < 4; t++)
        for (int ip = 0; ip < 3; ip++)
            for (int is = 1; is < NSIZES; is++)
                check_case(t >> 1, t & 1, sizes[is], 13, 9, 1.0f, 0.5f,
                           pads[ip], 0.0f, (uint64_t)(100 * t + 10 * ip + is));
}

Test(gemm, alpha_beta_variations)
{
    static const float alphas[] = {1, -1, 0.25f, 3, 0};
    static const float betas[] = {0, 1, -1, 0.5f, 2};

    for (int t = 0; t < 4; t++)
        for (int ia = 0; ia < 5; ia++)
            for (int ib = 0; ib < 5; ib++)
                check_case(t >> 1, t & 1, 17, 33, 7, alphas[ia], betas[ib], 2,
                           0.0f, (uint64_t)(25 * t + 5 * ia + ib));
}

Test(gemm, beta_zero_does_not_read_nan_c)
{
    for (int t = 0; t < 4; t++)
        for (int is = 0; is < NSIZES; is++)
            for (int ik = 0; ik < NSIZES; ik++)
                check_case(t >> 1, t & 1, sizes[is], 7, sizes[ik], 1.5f, 0.0f,
                           1, NAN, (uint64_t)(10 * is + ik));
}

Test(gemm, beta_zero_nan_c_is_overwritten)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};

    for (size_t f = 0; f < NIMPLS; f++) {
        if (!use_impl(f))
            continue;
        float c[4] = {NAN, NAN, NAN, NAN};
        impls[f].fn(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2);
        cr_assert(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11,
                  "%s: %g %g %g %g", impls[f].name, (double)c[0],
                  (double)c[1], (double)c[2], (double)c[3]);
    }
}

Test(gemm, k_zero_scales_c_by_beta)
{
    static const float betas[] = {0, 1, 2, -0.5f};

    for (size_t f = 0; f < NIMPLS; f++) {
        if (!use_impl(f))
            continue;
        for (int ib = 0; ib < 4; ib++) {
            float c[6] = {1, -2, 3, -4, 5, -6};
            /* A and B are never read when k == 0. */
            impls[f].fn(0, 1, 2, 3, 0, 1.0f, NULL, 1, NULL, 1, betas[ib], c,
                        3);
            for (int i = 0; i < 6; i++) {
                float orig = (float)((i % 2 ? -1 : 1) * (i + 1));
                cr_assert_eq(c[i], betas[ib] * orig, "%s beta=%g c[%d]=%g",
                             impls[f].name, (double)betas[ib], i,
                             (double)c[i]);
            }
        }
    }
}

Test(gemm, empty_m_or_n_does_nothing)
{
    for (size_t f = 0; f < NIMPLS; f++) {
        if (!use_impl(f))
            continue;
        float c[2] = {NAN, 7};
        impls[f].fn(0, 0, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, c, 5);
        impls[f].fn(1, 1, 5, 0, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, c, 1);
        impls[f].fn(0, 1, 0, 0, 0, 1.0f, NULL, 1, NULL, 1, 2.0f, c, 1);
        cr_assert(isnan(c[0]) && c[1] == 7, "%s wrote C", impls[f].name);
    }
}

Test(gemm, nnc_isa_scalar_is_honoured)
{
    /* Each Criterion test is a fresh process, so the first call below is
     * the one that reads NNC_ISA. */
    setenv("NNC_ISA", "scalar", 1);
    cr_assert_str_eq(nnc_isa(), "scalar");
    for (int t = 0; t < 4; t++)
        check_case(t >> 1, t & 1, 33, 17, 100, 1.0f, 0.5f, 1, 0.0f,
                   (uint64_t)t);
}

Test(gemm, unknown_nnc_isa_falls_back)
{
    setenv("NNC_ISA", "no-such-isa", 1);
    cr_assert_eq(nnc_set_isa(nnc_isa()), NNC_OK, "fell back to %s", nnc_isa());
    for (int t = 0; t < 4; t++)
        check_case(t >> 1, t & 1, 7, 33, 17, -1.0f, 1.0f, 0, 0.0f,
                   (uint64_t)t);
}

Test(gemm, set_isa_accepts_supported_rejects_unknown)
{
    cr_assert_eq(nnc_set_isa("scalar"), NNC_OK);
    cr_assert_str_eq(nnc_isa(), "scalar");
    cr_assert_eq(nnc_set_isa("no-such-isa"), NNC_ERR_ARG);
    cr_assert_eq(nnc_set_isa(NULL), NNC_ERR_ARG);
    cr_assert_str_eq(nnc_isa(), "scalar", "a failed set changed the ISA");
#if !defined(__aarch64__)
    cr_assert_eq(nnc_set_isa("neon"), NNC_ERR_ARG);
#endif
#if !defined(__x86_64__) && !defined(__i386__)
    cr_assert_eq(nnc_set_isa("avx2"), NNC_ERR_ARG);
    cr_assert_eq(nnc_set_isa("avx512"), NNC_ERR_ARG);
#endif
}

Test(gemm, blocked_sizes_past_one_cache_block)
{
    /* m, k past every kernel's mc and kc, n past one nr panel many times. */
    for (int t = 0; t < 4; t++)
        check_case(t >> 1, t & 1, 350, 70, 400, 0.5f, 0.25f, 1, 0.0f,
                   (uint64_t)t);
    check_case(0, 0, 20, 2100, 30, 1.0f, 0.0f, 0, NAN, 9);
}

Test(gemm, small_c_over_long_k)
{
    /* a few tiles of C over k past the direct path's limit: read in
     * place, as is or transposed (a first convolution's weight gradient) */
    static const int shapes[][3] = {
        {32, 9, 3000}, {9, 32, 3000}, {5, 40, 700}, {40, 5, 700}, {1, 17, 300}, {30, 70, 500},
    };

    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            check_case(t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], 0.5f,
                       t == 1 ? 0.0f : -0.75f, (int)s % 2, 0.0f, (uint64_t)(10 * t + s));
}

/* nnc_sgemm's result for 1 and 2 threads must be the same bits, and so
 * must C^T = op(B)^T op(A)^T computed as a problem of its own (which may
 * take another path: packed or read in place, flipped or not), since
 * every path computes each element the same way. Not for the
 * matrix-vector path (few rows or columns), which sums differently. */
static void check_threads(int ta, int tb, int m, int n, int k, float beta)
{
    int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 1, ldc = n + 3;
    size_t la = (size_t)(ta ? k : m) * (size_t)lda;
    size_t lb = (size_t)(tb ? n : k) * (size_t)ldb, lc = (size_t)m * (size_t)ldc;
    float *a = malloc(la * sizeof *a), *b = malloc(lb * sizeof *b);
    float *c1 = malloc(lc * sizeof *c1), *c2 = malloc(lc * sizeof *c2);
    float *ct = malloc((size_t)n * (size_t)m * sizeof *ct);
    nnc_rng r;

    cr_assert(a && b && c1 && c2 && ct);
    nnc_rng_seed(&r, (uint64_t)(m + n + k));
    nnc_fill_uniform(a, la, -1, 1, &r);
    nnc_fill_uniform(b, lb, -1, 1, &r);
    nnc_fill_uniform(c1, lc, -1, 1, &r);
    memcpy(c2, c1, lc * sizeof *c1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            ct[(size_t)j * (size_t)m + (size_t)i] = c1[(size_t)i * (size_t)ldc + (size_t)j];
    nnc_set_num_threads(1);
    nnc_sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, c1, ldc);
    nnc_set_num_threads(2);
    nnc_sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, c2, ldc);
    cr_assert_eq(memcmp(c1, c2, lc * sizeof *c1), 0,
                 "%s: 1 and 2 threads differ, ta=%d tb=%d %dx%dx%d",
                 nnc_isa(), ta, tb, m, n, k);
    if (m > 8 && n > 8) {
        nnc_sgemm(!tb, !ta, n, m, k, 0.75f, b, ldb, a, lda, beta, ct, m);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float x = c1[(size_t)i * (size_t)ldc + (size_t)j];
                float y = ct[(size_t)j * (size_t)m + (size_t)i];
                cr_assert(memcmp(&x, &y, sizeof x) == 0,
                          "%s: C and (C^T)^T differ at [%d,%d] (%.9g, %.9g), "
                          "ta=%d tb=%d %dx%dx%d", nnc_isa(), i, j, (double)x,
                          (double)y, ta, tb, m, n, k);
            }
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
    free(ct);
}

Test(gemm, threads_give_identical_bits)
{
    static const int shapes[][3] = {
        {257, 100, 257}, {100, 257, 100}, {1000, 33, 700}, {33, 1000, 500},
        {64, 256, 784}, {7, 3000, 60}, {401, 401, 401}, {32, 9, 5000}, {30, 20, 700},
    };

    for (size_t f = 0; f < NIMPLS; f++) {
        if (impls[f].isa == NULL || !use_impl(f))
            continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++)
                check_threads(t >> 1, t & 1, shapes[s][0], shapes[s][1],
                              shapes[s][2], t == 2 ? 0.0f : 0.5f);
    }
    nnc_set_num_threads(0);
    cr_assert_geq(nnc_num_threads(), 1);
}

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__)) \
    || defined(__aarch64__)
Test(gemm, denormals_flushed_inside_caller_mode_kept)
{
    /* 1e-20 * 1e-20 = 1e-40 is subnormal in float: flushed inside the
     * GEMM, still representable after it returns. */
    float a[17 * 17], b[17 * 17], c[17 * 17];
    volatile float tiny = 1e-20f, prod;

#if defined(__x86_64__) || defined(__i386__)
    unsigned int csr = _mm_getcsr();
#endif
    for (int i = 0; i < 17 * 17; i++)
        a[i] = b[i] = (i % 18 == 0) ? 1e-20f : 0.0f;     /* diagonal */
    for (size_t f = 0; f < NIMPLS; f++) {
        if (impls[f].isa == NULL || !use_impl(f))
            continue;
        nnc_sgemm(0, 0, 17, 17, 17, 1.0f, a, 17, b, 17, 0.0f, c, 17);
        cr_assert_eq(c[0], 0.0f, "%s: %g not flushed", impls[f].name,
                     (double)c[0]);
        prod = tiny * tiny;
        cr_assert(prod > 0.0f, "%s left flush-to-zero on", impls[f].name);
#if defined(__x86_64__) || defined(__i386__)
        /* Control bits; the status flags are sticky and may gain bits. */
        cr_assert_eq(_mm_getcsr() & ~0x3fu, csr & ~0x3fu, "%s changed MXCSR",
                     impls[f].name);
#endif
    }
}
#endif

/* The training GEMMs of examples/fmnist_mlp.nn and fmnist_cnn.nn (batch
 * 64; forward, input and weight gradients), and edges around them. */
static const int train_shapes[][5] = {    /* m, n, k, ta, tb */
    {64, 256, 784, 0, 1}, {64, 128, 256, 0, 1}, {64, 10, 128, 0, 1},
    {64, 128, 10, 0, 0}, {64, 256, 128, 0, 0}, {10, 128, 64, 1, 0},
    {128, 256, 64, 1, 0}, {256, 784, 64, 1, 0},
    {2048, 32, 9, 0, 1}, {1024, 64, 288, 0, 1}, {64, 128, 1600, 0, 1},
    {64, 1600, 128, 0, 0}, {128, 1600, 64, 1, 0}, {6400, 288, 64, 0, 0},
    {64, 288, 6400, 1, 0}, {32, 9, 43264, 1, 0},
    {63, 257, 785, 0, 1}, {65, 255, 783, 0, 1}, {17, 300, 1000, 0, 1},
    {50, 70, 300, 1, 1}, {100, 20, 700, 0, 1}, {9, 513, 257, 0, 1},
};

Test(gemm, training_shapes)
{
    for (size_t s = 0; s < sizeof train_shapes / sizeof train_shapes[0]; s++) {
        const int *t = train_shapes[s];
        check_case(t[3], t[4], t[0], t[1], t[2], 1.0f, 0.0f, 0, NAN,
                   (uint64_t)s);
        check_case(t[3], t[4], t[0], t[1], t[2], 0.5f, 0.75f, 3, 0.0f,
                   (uint64_t)(100 + s));
    }
}

Test(gemm, training_shapes_threads_and_flips_give_identical_bits)
{
    for (size_t f = 0; f < NIMPLS; f++) {
        if (impls[f].isa == NULL || !use_impl(f))
            continue;
        for (size_t s = 0; s < sizeof train_shapes / sizeof train_shapes[0]; s++) {
            const int *t = train_shapes[s];
            check_threads(t[3], t[4], t[0], t[1], t[2], s % 2 ? 0.0f : 0.5f);
        }
    }
    nnc_set_num_threads(0);
}
