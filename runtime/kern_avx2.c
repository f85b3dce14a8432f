/*
 * kern_avx2.c - AVX2+FMA GEMM micro-kernel: a 6 x 16 tile of C in 12 ymm
 * accumulators (two vectors of 8 per row), with two B loads and one
 * broadcast per step of k: 15 of the 16 ymm registers, the classic
 * Haswell shape (BLIS and OpenBLAS use the same).
 *
 * As in kern_avx512.c the functions carry target attributes, so no
 * per-file flags are needed, and each row count is its own instantiation
 * of the body. AVX2 has no k-masks; a short last column panel is read and
 * written with vmaskmov under an integer lane mask. On non-x86 targets
 * this file defines only an "unsupported" stub.
 */
#include "gemm_kern.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

#define MR 6
#define NR 16

static int supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Lanes [0, n) of a vector of 8 set (n may exceed 8). */
INLINE __m256i lane_mask(size_t n)
{
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int lim = n > 8 ? 8 : (int)n;

    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lim), idx);
}

/* Row i of C: c = alpha * x + beta * c, lanes under m0 and m1 unless the
 * row is full (full: plain loads and stores, since vmaskmov to memory is
 * slow on AMD cores: about 10 cycles a store on Zen 3, which made a GEMM
 * with k = 9 store-bound at a quarter of the FMA rate). */
INLINE void store_row(float *c, __m256 x0, __m256 x1, __m256i m0,
                      __m256i m1, __m256 alpha, int scale, float beta,
                      int full)
{
    if (scale) {               /* alpha == 1: x as is, the same bits */
        x0 = _mm256_mul_ps(alpha, x0);
        x1 = _mm256_mul_ps(alpha, x1);
    }
    if (full) {
        if (beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(beta);
            x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0);
            x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
        }
        _mm256_storeu_ps(c, x0);
        _mm256_storeu_ps(c + 8, x1);
        return;
    }
    if (beta != 0.0f) {
        __m256 vb = _mm256_set1_ps(beta);
        x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), x1);
    }
    _mm256_maskstore_ps(c, m0, x0);
    _mm256_maskstore_ps(c + 8, m1, x1);
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define DECL(i) __m256 r##i##a = _mm256_setzero_ps(), \
                       r##i##b = _mm256_setzero_ps();
#define STEP(i)                                                  \
    if (R > i) {                                                 \
        __m256 ai = _mm256_broadcast_ss(ap + (size_t)i * rsa);   \
        r##i##a = _mm256_fmadd_ps(ai, b0, r##i##a);              \
        r##i##b = _mm256_fmadd_ps(ai, b1, r##i##b);              \
    }
#define STORE(i)                                                 \
    if (R > i)                                                   \
        store_row(c + (size_t)i * ldc, r##i##a, r##i##b, m0, m1, \
                  valpha, scale, beta, full);

INLINE void tile(const size_t R, const int masked, size_t cols, size_t k,
                 const float *a, size_t rsa, size_t csa, const float *b,
                 size_t ldb, float *c, size_t ldc, float alpha, float beta)
{
    __m256i m0 = lane_mask(cols), m1 = lane_mask(cols > 8 ? cols - 8 : 0);
    __m256 valpha = _mm256_set1_ps(alpha);
    const float *ap = a, *bp = b;
    const int full = cols >= NR, scale = alpha != 1.0f;
    size_t p;
    ROWS(DECL)

    for (p = 0; p < k; p++, ap += csa, bp += ldb) {
        __m256 b0, b1;
        if (masked) {
            b0 = _mm256_maskload_ps(bp, m0);
            b1 = _mm256_maskload_ps(bp + 8, m1);
        } else {
            b0 = _mm256_loadu_ps(bp);
            b1 = _mm256_loadu_ps(bp + 8);
        }
        ROWS(STEP)
    }
    ROWS(STORE)
}

#define CASE(i, masked, rsa, csa)                                      \
    case i + 1:                                                        \
        tile(i + 1, masked, cols, k, a, rsa, csa, b, ldb, c, ldc,      \
             alpha, beta);                                             \
        break;
#define CASE_PACKED(i) CASE(i, 0, 1, MR)
#define CASE_STRIDED(i) CASE(i, 0, rsa, csa)
#define CASE_MASKED(i) CASE(i, 1, rsa, csa)

static TARGET void packed(size_t rows, size_t cols, size_t k,
                          const float *a, size_t rsa, size_t csa,
                          const float *b, size_t ldb, float *c, size_t ldc,
                          float alpha, float beta)
{
    (void)rsa, (void)csa;
    switch (rows > MR ? MR : rows) {
        ROWS(CASE_PACKED)
    default:
        break;
    }
}

static TARGET void strided(size_t rows, size_t cols, size_t k,
                           const float *a, size_t rsa, size_t csa,
                           const float *b, size_t ldb, float *c, size_t ldc,
                           float alpha, float beta)
{
    if (cols < NR) {
        switch (rows > MR ? MR : rows) {
            ROWS(CASE_MASKED)
        default:
            break;
        }
        return;
    }
    switch (rows > MR ? MR : rows) {
        ROWS(CASE_STRIDED)
    default:
        break;
    }
}

/* GemmTransFn: an 8x8 transpose in registers. Pairs of rows interleaved,
 * then quads, then the 128-bit halves swapped: 24 shuffles for 64 floats
 * (the scalar loop does one load and one store per float). */
static TARGET void tr8(const float *src, size_t lds, float *dst, size_t ldd)
{
    __m256 r[8], t[8];
    int i;

    for (i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + (size_t)i * lds);
    for (i = 0; i < 4; i++) {   /* t[2i] = r0 r1 interleaved, low pairs */
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 2; i++) {   /* columns c and c + 4 of four rows */
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (i = 0; i < 4; i++) {   /* rows 0-3 and 4-7 of column c, c + 4 */
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (i = 0; i < 8; i++)
        _mm256_storeu_ps(dst + (size_t)i * ldd, t[i]);
}

const GemmKern nnc_kern_avx2 = {
    "avx2", supported, MR, NR, 6 * 24, 256, 2048, 1, packed, strided, NULL, 8, tr8,
};

#else /* not x86 */

static int supported(void)
{
    return 0;
}

const GemmKern nnc_kern_avx2 = {
    "avx2", supported, 1, 1, 1, 1, 1, 1, NULL, NULL, NULL, 0, NULL,
};

#endif
