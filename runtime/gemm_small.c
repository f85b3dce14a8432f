/*
 * gemm_small.c - matrix-vector-like products kept in registers, with a
 * dense layer's epilogue applied to the results while they are there.
 * Written once over the vector width: kern_avx2.c (8 floats) and
 * kern_avx512.c (16 floats) include this file at their end with
 * SMALL_AVX2 or SMALL_AVX512 defined, which instantiates it and defines
 * their GemmSmall table (gemm_kern.h); it is never compiled on its own.
 * gemm.c's gemm_small() decides when it applies; no operand is packed.
 *
 * dots_nt: C = A B^T with both operands' rows along k (a dense layer's
 * forward X W^T: weights are stored [out, in], PyTorch's layout), used
 * where C has one or two rows or columns (predict at batch 1, a layer
 * with one output), where the tiled kernels would waste most of a tile
 * and need a transposed copy of W. Each element of C is the dot product
 * of a row of A and a row of B, read in place: a tile of R rows of A by
 * 4 rows of B keeps R x 4 vector sums in registers (R = 3 on AVX2, 6 on
 * AVX-512), one load of each row per step of k and R x 4 fused
 * multiply-adds; a last partial step of k loads under a mask. Each vector
 * sum is then reduced, four at a time, by a fixed tree. Every element is
 * computed the same way wherever it sits, so results do not depend on the
 * tile grid or the number of rows; they differ in rounding from a single
 * chain over k, as any two summation orders do. (With 32 rows the tiled
 * kernels were measured as fast: seed model, AVX2.)
 *
 * epilogue: the same epilogue as one vector pass over a C that the tiled
 * kernels computed (nnc_sgemm_bias and nnc_sgemm_relu_back elsewhere).
 *
 * Epilogues (SmallArgs): alpha and beta as in BLAS, then + bias, ReLU,
 * ReLU's gradient (zero where the layer's output is not positive) and
 * the per-column sum of the result (the bias gradient, rows added in
 * order): the operations of the loops nnc would otherwise emit, in their
 * order, so fusing them changes no result.
 */
#ifndef SMALL_BODY

#include <immintrin.h>

#include "gemm_kern.h"

#define SMALL_BODY 1
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#undef TARGET

#if defined(SMALL_AVX2)

/* ---- AVX2+FMA: 8 floats, dot tiles of 3 rows ---------------------------- */

#define TARGET __attribute__((target("avx2,fma")))
#define SFX _avx2
#define VW 8
#define RI 3
#define VT __m256
#define VMASK __m256i
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADM(p, m) _mm256_maskload_ps(p, m)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSET1(x) _mm256_set1_ps(x)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VSTOREM(p, m, x) _mm256_maskstore_ps(p, m, x)
#define VPOSITIVE(x, y) _mm256_and_ps(x, _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ))

static inline __attribute__((always_inline)) TARGET __m256i mask_avx2(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define VMASKN(n) mask_avx2(n)

/* lanes 0-3: the sums of x0..x3, each by the tree ((l0+l1)+(l2+l3)) +
 * ((l4+l5)+(l6+l7)) */
static inline __attribute__((always_inline)) TARGET __m128
reduce4_avx2(__m256 x0, __m256 x1, __m256 x2, __m256 x3)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(x0, x1), _mm256_hadd_ps(x2, x3));

    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
#define VREDUCE4(a, b, c, d) reduce4_avx2(a, b, c, d)

#include "gemm_small.c"

const GemmSmall nnc_small_avx2 = {dots_nt_avx2, epilogue_avx2};

#elif defined(SMALL_AVX512)

/* ---- AVX-512: 16 floats, dot tiles of 6 rows --------------------------- */

#if defined(NNC_AVX512_EMULATE)
#define TARGET /* emulated AVX-512 (kern_avx512.c), real AVX2 from the flags */
#else
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#endif
#define SFX _avx512
#define VW 16
#define RI 6
#define VT __m512
#define VMASK __mmask16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSET1(x) _mm512_set1_ps(x)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VSTOREM(p, m, x) _mm512_mask_storeu_ps(p, m, x)
#define VPOSITIVE(x, y) \
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), x)
#define VMASKN(n) ((__mmask16)((1u << (n)) - 1u))

/* lanes i and i + 8 first, then the AVX2 tree */
static inline __attribute__((always_inline)) TARGET __m256 half_avx512(__m512 x)
{
    return _mm256_add_ps(_mm512_castps512_ps256(x),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
}

static inline __attribute__((always_inline)) TARGET __m128
reduce4_avx512(__m512 x0, __m512 x1, __m512 x2, __m512 x3)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(half_avx512(x0), half_avx512(x1)),
                              _mm256_hadd_ps(half_avx512(x2), half_avx512(x3)));

    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
#define VREDUCE4(a, b, c, d) reduce4_avx512(a, b, c, d)

#include "gemm_small.c"

const GemmSmall nnc_small_avx512 = {dots_nt_avx512, epilogue_avx512};

#else
#error "gemm_small.c is included by kern_avx2.c or kern_avx512.c"
#endif

#else /* SMALL_BODY: the template, under the macros above */

#define FN(name) CAT(name, SFX)
#define SINLINE static inline __attribute__((always_inline)) TARGET

/* Row i of C: four results (cols of them valid, csc apart) scaled, plus
 * beta * C, plus the bias (bias[j * bs]), clamped at zero under relu. */
SINLINE void FN(store4)(float *c, size_t csc, size_t cols, __m128 x,
                        const SmallArgs *s, size_t j0)
{
    float t[4];
    size_t j;

    x = _mm_mul_ps(_mm_set1_ps(s->alpha), x);
    if (s->beta != 0.0f) {
        for (j = 0; j < 4; j++)
            t[j] = j < cols ? c[j * csc] : 0.0f;
        x = _mm_fmadd_ps(_mm_set1_ps(s->beta), _mm_loadu_ps(t), x);
    }
    if (s->bias != NULL && cols == 4 && s->bs == 1) {
        x = _mm_add_ps(x, _mm_loadu_ps(s->bias + j0));
    } else if (s->bias != NULL) {
        for (j = 0; j < 4; j++)
            t[j] = s->bias[(j0 + (j < cols ? j : 0)) * s->bs];
        x = _mm_add_ps(x, _mm_loadu_ps(t));
    }
    if (s->relu)
        x = _mm_max_ps(x, _mm_setzero_ps());
    if (cols == 4 && csc == 1) {
        _mm_storeu_ps(c, x);
        return;
    }
    _mm_storeu_ps(t, x);
    for (j = 0; j < cols; j++)
        c[j * csc] = t[j];
}

#define SROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define SDECL(i) VT s##i##0 = VZERO(), s##i##1 = VZERO(), s##i##2 = VZERO(), \
                    s##i##3 = VZERO();
#define SLOADA(i) VT a##i = R > i ? VLOAD(a + (size_t)i * lda + p) : VZERO();
#define SLOADAM(i) VT a##i = R > i ? VLOADM(a + (size_t)i * lda + p, mk) : VZERO();
#define SFMA(i, j) if (R > i) s##i##j = VFMA(a##i, bv, s##i##j);
#define SCOL(j, LD)                                                     \
    {                                                                   \
        VT bv = LD;                                                     \
        SFMA(0, j) SFMA(1, j) SFMA(2, j) SFMA(3, j) SFMA(4, j) SFMA(5, j) \
    }
#define SSTORE(i)                                                       \
    if (R > i)                                                          \
        FN(store4)(c + (size_t)i * s->ldc, s->csc, cols,               \
                   VREDUCE4(s##i##0, s##i##1, s##i##2, s##i##3), s, j0);

/* Rows i0..i0+R of C, columns j0..j0+cols (cols <= 4; a missing column
 * repeats the last row of B and is not stored). */
SINLINE void FN(dtile)(const int R, const SmallArgs *s, size_t i0, size_t j0,
                       size_t cols)
{
    const float *a = s->a + i0 * s->lda;
    const float *b0 = s->b + j0 * s->ldb;
    const float *b1 = b0 + (cols > 1 ? s->ldb : 0);
    const float *b2 = b0 + (cols > 2 ? 2 * s->ldb : 0);
    const float *b3 = b0 + (cols > 3 ? 3 * s->ldb : (cols - 1) * s->ldb);
    float *c = s->c + i0 * s->ldc + j0 * s->csc;
    size_t lda = s->lda, k = s->k, p;
    SROWS(SDECL)

    for (p = 0; p + VW <= k; p += VW) {
        SROWS(SLOADA)
        SCOL(0, VLOAD(b0 + p)) SCOL(1, VLOAD(b1 + p))
        SCOL(2, VLOAD(b2 + p)) SCOL(3, VLOAD(b3 + p))
    }
    if (p < k) {
        VMASK mk = VMASKN(k - p);
        SROWS(SLOADAM)
        SCOL(0, VLOADM(b0 + p, mk)) SCOL(1, VLOADM(b1 + p, mk))
        SCOL(2, VLOADM(b2 + p, mk)) SCOL(3, VLOADM(b3 + p, mk))
    }
    SROWS(SSTORE)
}

#define SCASE(i)                                \
    case i + 1:                                 \
        if (i < RI)                             \
            FN(dtile)(i + 1, s, i0, j0, cols);  \
        break;

/* The dot products of row a with rows b .. b + 7 (ldb apart) of B over
 * k, reduced: columns 0-3 in *x, 4-7 in *y. As two dtiles of one row
 * (the same fused multiply-adds in the same order and the same reduction
 * tree, so the same bits), with one load of A's row per step for eight
 * rows of B: a row of C alone (predict at batch 1) is load- and
 * loop-bound, not FMA-bound. */
SINLINE void FN(dots8)(const float *a, const float *b, size_t ldb, size_t k, __m128 *x,
                       __m128 *y)
{
    VT c0 = VZERO(), c1 = VZERO(), c2 = VZERO(), c3 = VZERO();
    VT c4 = VZERO(), c5 = VZERO(), c6 = VZERO(), c7 = VZERO();
    size_t p;

#define ROW8_STEP(LD, LDA)                                                              \
    {                                                                                   \
        VT av = LDA;                                                                    \
        c0 = VFMA(av, LD(b + p), c0), c1 = VFMA(av, LD(b + ldb + p), c1);               \
        c2 = VFMA(av, LD(b + 2 * ldb + p), c2), c3 = VFMA(av, LD(b + 3 * ldb + p), c3); \
        c4 = VFMA(av, LD(b + 4 * ldb + p), c4), c5 = VFMA(av, LD(b + 5 * ldb + p), c5); \
        c6 = VFMA(av, LD(b + 6 * ldb + p), c6), c7 = VFMA(av, LD(b + 7 * ldb + p), c7); \
    }
    for (p = 0; p + VW <= k; p += VW)
        ROW8_STEP(VLOAD, VLOAD(a + p))
    if (p < k) {
        VMASK mk = VMASKN(k - p);
#define ROW8_LOADM(q) VLOADM(q, mk)
        ROW8_STEP(ROW8_LOADM, VLOADM(a + p, mk))
#undef ROW8_LOADM
    }
#undef ROW8_STEP
    *x = VREDUCE4(c0, c1, c2, c3), *y = VREDUCE4(c4, c5, c6, c7);
}

/* Row i0 of C, columns j0..j0+8 (all present), with s's epilogue. */
SINLINE void FN(row8)(const SmallArgs *s, size_t i0, size_t j0)
{
    float *c = s->c + i0 * s->ldc + j0 * s->csc;
    __m128 x, y;

    FN(dots8)(s->a + i0 * s->lda, s->b + j0 * s->ldb, s->ldb, s->k, &x, &y);
    FN(store4)(c, s->csc, 4, x, s, j0);
    FN(store4)(c + 4 * s->csc, s->csc, 4, y, s, j0 + 4);
}

/* A dense layer's forward for one row of C (alpha 1, beta 0, contiguous
 * C and bias: predict at batch 1), eight columns from c: dots8, then only
 * the epilogue the layer has (HB: + bias, RELU: clamp), with no test per
 * block: the same bits as row8, whose alpha of 1 multiplies exactly. */
SINLINE void FN(row8_dense)(const float *a, const float *b, size_t ldb, size_t k,
                            float *c, const float *bias, const int HB, const int RELU)
{
    __m128 x, y;

    FN(dots8)(a, b, ldb, k, &x, &y);
    if (HB)
        x = _mm_add_ps(x, _mm_loadu_ps(bias)), y = _mm_add_ps(y, _mm_loadu_ps(bias + 4));
    if (RELU)
        x = _mm_max_ps(x, _mm_setzero_ps()), y = _mm_max_ps(y, _mm_setzero_ps());
    _mm_storeu_ps(c, x);
    _mm_storeu_ps(c + 4, y);
}

/* Row i0 of C by row8_dense, eight columns at a time; returns the first
 * column left (fewer than eight). */
SINLINE size_t FN(row_dense)(const SmallArgs *s, size_t i0, const int HB, const int RELU)
{
    const float *a = s->a + i0 * s->lda, *b = s->b;
    float *c = s->c + i0 * s->ldc;
    size_t j0;

    for (j0 = 0; j0 + 8 <= s->n; j0 += 8, b += 8 * s->ldb)
        FN(row8_dense)(a, b, s->ldb, s->k, c + j0, s->bias + j0, HB, RELU);
    return j0;
}

static TARGET void FN(dots_nt)(const SmallArgs *s)
{
    size_t i0, j0;
    int dense = s->alpha == 1.0f && s->beta == 0.0f && s->csc == 1 &&
                (s->bias == NULL || s->bs == 1);

    for (i0 = 0; i0 < s->m; i0 += RI) {
        size_t rows = s->m - i0 < RI ? s->m - i0 : RI;
        j0 = 0;
        if (rows == 1 && dense)   /* the layer's epilogue chosen once */
            j0 = s->bias != NULL ? (s->relu ? FN(row_dense)(s, i0, 1, 1)
                                            : FN(row_dense)(s, i0, 1, 0))
                                 : (s->relu ? FN(row_dense)(s, i0, 0, 1)
                                            : FN(row_dense)(s, i0, 0, 0));
        else if (rows == 1)
            for (; j0 + 8 <= s->n; j0 += 8)
                FN(row8)(s, i0, j0);
        for (; j0 < s->n; j0 += 4) {
            size_t cols = s->n - j0 < 4 ? s->n - j0 : 4;
            switch (rows) {
                SROWS(SCASE)
            default:
                break;
            }
        }
    }
}

/* ---- Epilogue pass ------------------------------------------------------- */

/* Lanes [0, n) (n <= VW) of row i of C, at c, for columns from j:
 * alpha * x plus beta * C, plus the bias, clamped under relu, zeroed
 * where the mask row is not positive (ReLU's gradient), then stored and
 * added to the column sums. The operations of the emitted loops, in
 * their order, so results are theirs bit for bit. */
SINLINE void FN(ostore)(float *c, size_t n, VT x, const SmallArgs *s,
                        size_t i, size_t j)
{
    VMASK mk = VMASKN(n < VW ? n : VW);
    int part = n < VW;

    x = VMUL(VSET1(s->alpha), x);
    if (s->beta != 0.0f)
        x = VFMA(VSET1(s->beta), part ? VLOADM(c, mk) : VLOAD(c), x);
    if (s->bias != NULL)
        x = VADD(x, part ? VLOADM(s->bias + j, mk) : VLOAD(s->bias + j));
    if (s->relu)
        x = VMAX(x, VZERO());
    if (s->mask != NULL) {
        const float *y = s->mask + i * s->ldm + j;
        x = VPOSITIVE(x, part ? VLOADM(y, mk) : VLOAD(y));
    }
    if (part)
        VSTOREM(c, mk, x);
    else
        VSTORE(c, x);
    if (s->sum != NULL) {
        float *t = s->sum + j;
        if (part)
            VSTOREM(t, mk, VADD(VLOADM(t, mk), x));
        else
            VSTORE(t, VADD(VLOAD(t), x));
    }
}

/* The epilogue alone over a C that holds alpha op(A) op(B) + beta C
 * already (computed by the tiled kernels): rows in order, so column sums
 * add them in order. */
/* A dense layer's epilogue alone (+ bias, ReLU when RELU) over rows of
 * C: ostore's operations for that case (alpha 1 multiplies exactly),
 * with no test per vector. */
SINLINE void FN(bias_rows)(const SmallArgs *s, const int RELU)
{
    size_t i, j, n = s->n, full = n / VW * VW;
    VMASK mk = VMASKN(n - full);
    VT bt = full < n ? VLOADM(s->bias + full, mk) : VZERO();

    for (i = 0; i < s->m; i++) {
        float *c = s->c + i * s->ldc;
        for (j = 0; j < full; j += VW) {
            VT x = VADD(VLOAD(c + j), VLOAD(s->bias + j));
            VSTORE(c + j, RELU ? VMAX(x, VZERO()) : x);
        }
        if (full < n) {
            VT x = VADD(VLOADM(c + full, mk), bt);
            VSTOREM(c + full, mk, RELU ? VMAX(x, VZERO()) : x);
        }
    }
}

static TARGET void FN(epilogue)(const SmallArgs *s)
{
    SmallArgs t = *s;
    size_t i, j;

    if (s->bias != NULL && s->mask == NULL && s->sum == NULL) {
        if (s->relu)
            FN(bias_rows)(s, 1);
        else
            FN(bias_rows)(s, 0);
        return;
    }
    t.alpha = 1.0f, t.beta = 0.0f;
    for (i = 0; i < s->m; i++) {
        float *c = s->c + i * s->ldc;
        for (j = 0; j < s->n; j += VW) {
            size_t n = s->n - j < VW ? s->n - j : VW;
            VT x = n < VW ? VLOADM(c + j, VMASKN(n)) : VLOAD(c + j);
            FN(ostore)(c + j, n, x, &t, i, j);
        }
    }
}

#undef FN
#undef SINLINE
#undef SROWS
#undef SDECL
#undef SLOADA
#undef SLOADAM
#undef SFMA
#undef SCOL
#undef SSTORE
#undef SCASE

#endif /* SMALL_BODY */
