/*
 * kern_avx2_i8.c - AVX2 int8 micro-kernel (qgemm.c has the scheme): a
 * 4 x 16 tile of int32 accumulators in 8 ymm (two per row), updated per
 * group of 4 k by two loads of the packed panel, one broadcast of 4 bytes
 * of A per row, and per row two vpmaddubsw (u8 x s8 -> pairs summed in
 * int16) and two vpmaddwd by ones (-> 4 products summed in int32). A non-
 * negative A ([0, 127]) goes in as it is; otherwise |a| times w with a's
 * sign (vpsignb), which is exact as |a|, |w| <= 127 keep the int16 pair
 * sums below 32767. The epilogue converts, multiplies, adds, clamps and
 * rounds (cvtps: nearest even) as qgemm_kern.h's nnc_q_epi does.
 */
#include <string.h>

#include "qgemm_kern.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define MR 4

static int supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

INLINE void step(__m256i *acc, __m256i av, __m256i b0, __m256i b1, int nonneg)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p0, p1;
    if (nonneg) {
        p0 = _mm256_maddubs_epi16(av, b0);
        p1 = _mm256_maddubs_epi16(av, b1);
    } else {
        __m256i ua = _mm256_abs_epi8(av);
        p0 = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(b0, av));
        p1 = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(b1, av));
    }
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(p0, ones));
    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(p1, ones));
}

INLINE void epilogue(const QTile *t, const __m256i *acc, int r)
{
    __m256 lo = _mm256_set1_ps(t->lo), hi = _mm256_set1_ps(t->hi), f[2];
    int h;
    for (h = 0; h < 2; h++) {
        f[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h]), _mm256_loadu_ps(t->mult + 8 * h));
        f[h] = _mm256_add_ps(f[h], _mm256_loadu_ps(t->bias + 8 * h));
        f[h] = _mm256_min_ps(_mm256_max_ps(f[h], lo), hi);
    }
    if (t->c == NULL) {
        float *d = t->cf + (size_t)r * t->ldc, tmp[16];
        if (t->ncols == 16) {
            _mm256_storeu_ps(d, f[0]);
            _mm256_storeu_ps(d + 8, f[1]);
        } else {
            _mm256_storeu_ps(tmp, f[0]);
            _mm256_storeu_ps(tmp + 8, f[1]);
            memcpy(d, tmp, sizeof(float) * (size_t)t->ncols);
        }
    } else {
        /* packs work per 128-bit lane: the 16 bytes come out as dwords
         * 0, 4, 1, 5 of the twice-packed vector (3 shuffles in all) */
        int8_t *d = t->c + (size_t)r * t->ldc;
        __m256i w16 = _mm256_packs_epi32(_mm256_cvtps_epi32(f[0]), _mm256_cvtps_epi32(f[1]));
        __m256i w8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w16, w16),
                                                 _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
        __m128i b8 = _mm256_castsi256_si128(w8);
        if (t->ncols == 16) {
            _mm_storeu_si128((__m128i *)(void *)d, b8);
        } else {
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)(void *)tmp, b8);
            memcpy(d, tmp, (size_t)t->ncols);
        }
    }
}

/* 4 bytes of a row at kk, in every lane; a4_tail: the n < 4 left past
 * the last full group, the rest zero */
INLINE __m256i a4(const int8_t *a, int kk)
{
    int32_t v;
    memcpy(&v, a + kk, 4);
    return _mm256_set1_epi32(v);
}

INLINE __m256i a4_tail(const int8_t *a, int kk, int n)
{
    int32_t v = 0;
    memcpy(&v, a + kk, (size_t)n);
    return _mm256_set1_epi32(v);
}

/* The accumulators are named variables, not an array indexed by row: gcc
 * kept such an array in memory (a load and a store per update). */
#define LOAD_B()                                                               \
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)w);         \
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32))

INLINE void tile4(const QTile *t, const int nonneg)
{
    __m256i c0[2], c1[2], c2[2], c3[2];
    const int8_t *w = t->w;
    int sg, kk, n = t->seglen;
    c0[0] = c0[1] = c1[0] = c1[1] = _mm256_setzero_si256();
    c2[0] = c2[1] = c3[0] = c3[1] = _mm256_setzero_si256();
    for (sg = 0; sg < t->nseg; sg++) {
        size_t off = (size_t)sg * t->segstride;
        const int8_t *a0 = t->a[0] + off, *a1 = t->a[1] + off;
        const int8_t *a2 = t->a[2] + off, *a3 = t->a[3] + off;
        for (kk = 0; kk + 4 <= n; kk += 4, w += 64) {
            LOAD_B();
            step(c0, a4(a0, kk), b0, b1, nonneg);
            step(c1, a4(a1, kk), b0, b1, nonneg);
            step(c2, a4(a2, kk), b0, b1, nonneg);
            step(c3, a4(a3, kk), b0, b1, nonneg);
        }
        if (kk < n) {
            LOAD_B();
            step(c0, a4_tail(a0, kk, n - kk), b0, b1, nonneg);
            step(c1, a4_tail(a1, kk, n - kk), b0, b1, nonneg);
            step(c2, a4_tail(a2, kk, n - kk), b0, b1, nonneg);
            step(c3, a4_tail(a3, kk, n - kk), b0, b1, nonneg);
            w += 64;
        }
    }
    epilogue(t, c0, 0);
    epilogue(t, c1, 1);
    epilogue(t, c2, 2);
    epilogue(t, c3, 3);
}

INLINE void tile1(const QTile *t, const int nonneg)
{
    __m256i c0[2];
    const int8_t *w = t->w;
    int sg, kk, n = t->seglen;
    c0[0] = c0[1] = _mm256_setzero_si256();
    for (sg = 0; sg < t->nseg; sg++) {
        const int8_t *a0 = t->a[0] + (size_t)sg * t->segstride;
        for (kk = 0; kk + 4 <= n; kk += 4, w += 64) {
            LOAD_B();
            step(c0, a4(a0, kk), b0, b1, nonneg);
        }
        if (kk < n) {
            LOAD_B();
            step(c0, a4_tail(a0, kk, n - kk), b0, b1, nonneg);
            w += 64;
        }
    }
    epilogue(t, c0, 0);
}

NNC_QKERN_TILE(TARGET, MR, tile4, tile1)

const QKern nnc_qkern_avx2 = {"avx2", supported, MR, tile};

#else

static int unsupported(void)
{
    return 0;
}

const QKern nnc_qkern_avx2 = {"avx2", unsupported, 1, NULL};

#endif
