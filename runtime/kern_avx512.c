/*
 * kern_avx512.c - AVX-512 GEMM micro-kernel: a 14 x 32 tile of C held in
 * 28 zmm accumulators (two vectors of 16 floats per row), updated per step
 * of k by two loads of B, 14 broadcasts of A and 28 fused multiply-adds.
 * That leaves 3 of the 32 zmm registers for the B vectors and the
 * broadcast, and does 1.75 FMAs per load, the best ratio of the shapes
 * tried (6x32, 8x32 and 12x32 measured within noise of it on a Zen-class
 * EPYC; K512_MR and K512_MC/KC/NC override the shape and blocks for such
 * experiments). kc = 256 keeps a B micro-panel (kc x 32 floats, 32 KiB)
 * in two thirds of a 48 KiB L1d (Intel since Ice Lake), leaving room for
 * the A micro-panel streamed beside it (14 x kc, 14 KiB); at kc = 384 the
 * two came to 69 KiB, so B panels were evicted and refetched from L2
 * within each tile. Smaller kc costs only more passes over C (once per kc
 * slice: 28 loads and 28 stores per 3,584 FMA instructions). mc = 336 rows of
 * packed A take 336 KiB, a third of a 1 MiB L2 (2 MiB on Emerald Rapids).
 *
 * The functions carry target attributes instead of the file needing
 * -mavx512f, so the build uses one set of flags and gemm.c only calls
 * them after checking the CPU. Partial tiles use k-masks: a short last
 * column panel is loaded and stored with masks, short row counts get their
 * own instantiation of the body (rows is a constant in each). On non-x86
 * targets this file defines only an "unsupported" stub. -DNNC_AVX512_EMULATE
 * builds it (and the small-GEMM tiles) on plain C intrinsics, for a test
 * on CPUs without AVX-512 (tests/runtime/avx512_emu.sh).
 */
#include "gemm_kern.h"

#if defined(NNC_AVX512_EMULATE)
/* a test build: the intrinsics in plain C (tests/runtime/avx512_emu.h),
 * the 128- and 256-bit ones real (built with -mavx2 -mfma) */
#include "avx512_emu.h"
#define TARGET
#define INLINE static inline
#define HAVE_KERNEL 1

static int supported(void)
{
    return 1;
}
#elif (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define HAVE_KERNEL 1

static int supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
}
#endif

#ifdef HAVE_KERNEL

#ifndef K512_MR
#define K512_MR 14
#endif
#define MR K512_MR
#define NR 32
#ifndef K512_MC
#define K512_MC (MR * 24)
#endif
#ifndef K512_KC
#define K512_KC 256
#endif
#ifndef K512_NC
#define K512_NC 2048
#endif

INLINE __mmask16 lane_mask(size_t n)
{
    /* not a conditional expression: under -fsanitize gcc types it int
       and -Wconversion warns */
    if (n >= 16)
        return (__mmask16)0xffff;
    return (__mmask16)((1u << n) - 1u);
}

/* Row i of C: c = alpha * x + beta * c, under masks m0 (lanes 0-15) and
 * m1 (lanes 16-31). */
INLINE void store_row(float *c, __m512 x0, __m512 x1, __mmask16 m0,
                      __mmask16 m1, __m512 alpha, int scale, float beta)
{
    if (scale) {               /* alpha == 1: x as is, the same bits */
        x0 = _mm512_mul_ps(alpha, x0);
        x1 = _mm512_mul_ps(alpha, x1);
    }
    if (beta != 0.0f) {
        __m512 vb = _mm512_set1_ps(beta);
        x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), x0);
        x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), x1);
    }
    _mm512_mask_storeu_ps(c, m0, x0);
    _mm512_mask_storeu_ps(c + 16, m1, x1);
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
                X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define DECL(i) __m512 r##i##a = _mm512_setzero_ps(), \
                       r##i##b = _mm512_setzero_ps();
#define STEP(i)                                                  \
    if (R > i) {                                                 \
        __m512 ai = _mm512_set1_ps(ap[(size_t)i * rsa]);         \
        r##i##a = _mm512_fmadd_ps(ai, b0, r##i##a);              \
        r##i##b = _mm512_fmadd_ps(ai, b1, r##i##b);              \
    }
#define STORE(i)                                                 \
    if (R > i)                                                   \
        store_row(c + (size_t)i * ldc, r##i##a, r##i##b, m0, m1, \
                  valpha, scale, beta);

/* The tile body; R (rows) and, on the packed path, rsa and csa are
 * constants after inlining. masked: load B under the column masks. */
INLINE void tile(const size_t R, const int masked, size_t cols, size_t k,
                 const float *a, size_t rsa, size_t csa, const float *b,
                 size_t ldb, float *c, size_t ldc, float alpha, float beta)
{
    __mmask16 m0 = lane_mask(cols), m1 = lane_mask(cols > 16 ? cols - 16 : 0);
    __m512 valpha = _mm512_set1_ps(alpha);
    const float *ap = a, *bp = b;
    const int scale = alpha != 1.0f;
    size_t p;
    ROWS(DECL)

    for (p = 0; p < k; p++, ap += csa, bp += ldb) {
        __m512 b0, b1;
        if (masked) {
            b0 = _mm512_maskz_loadu_ps(m0, bp);
            b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
        } else {
            b0 = _mm512_loadu_ps(bp);
            b1 = _mm512_loadu_ps(bp + 16);
        }
        ROWS(STEP)
    }
    ROWS(STORE)
}

#define CASE(i, masked, rsa, csa)                                      \
    case i + 1:                                                        \
        if (i < MR)                                                    \
            tile(i + 1, masked, cols, k, a, rsa, csa, b, ldb, c, ldc,  \
                 alpha, beta);                                         \
        break;
#define CASE_PACKED(i) CASE(i, 0, 1, MR)
#define CASE_STRIDED(i) CASE(i, 1, rsa, csa)

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
    switch (rows > MR ? MR : rows) {
        ROWS(CASE_STRIDED)
    default:
        break;
    }
}

/* Matrix times vector: four rows at a time, two accumulators each, the
 * tail of k under a mask, then a fixed-order horizontal sum. */
static TARGET void dots(size_t m, size_t k, const float *a, size_t lda,
                        const float *x, float *c, size_t ldc, float alpha,
                        float beta)
{
    size_t i, r, p;

    for (i = 0; i < m; i += 4) {
        size_t rows = m - i < 4 ? m - i : 4;
        __m512 s0[4], s1[4];
        for (r = 0; r < 4; r++)
            s0[r] = s1[r] = _mm512_setzero_ps();
        for (p = 0; p + 32 <= k; p += 32) {
            __m512 x0 = _mm512_loadu_ps(x + p), x1 = _mm512_loadu_ps(x + p + 16);
            for (r = 0; r < rows; r++) {
                const float *ar = a + (i + r) * lda + p;
                s0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(ar), x0, s0[r]);
                s1[r] = _mm512_fmadd_ps(_mm512_loadu_ps(ar + 16), x1, s1[r]);
            }
        }
        if (p < k) {
            __mmask16 m0 = lane_mask(k - p);
            __mmask16 m1 = lane_mask(k - p > 16 ? k - p - 16 : 0);
            __m512 x0 = _mm512_maskz_loadu_ps(m0, x + p);
            __m512 x1 = _mm512_maskz_loadu_ps(m1, x + p + 16);
            for (r = 0; r < rows; r++) {
                const float *ar = a + (i + r) * lda + p;
                s0[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, ar), x0,
                                        s0[r]);
                s1[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, ar + 16),
                                        x1, s1[r]);
            }
        }
        for (r = 0; r < rows; r++) {
            float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0[r], s1[r]));
            float *cr = c + (i + r) * ldc;
            *cr = beta == 0.0f ? alpha * sum : alpha * sum + beta * *cr;
        }
    }
}

/* GemmTransFn: a 16x16 transpose in registers: rows of src (stride lds)
 * become columns of dst (stride ldd). Pairs, then quads, then 128-bit lanes
 * twice: 64 shuffles for 256 floats. */
static TARGET void tr16(const float *src, size_t lds, float *dst, size_t ldd)
{
    __m512 r[16], t[16];
    int i, k;
    for (i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    for (i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (i = 0; i < 2; i++)
        for (k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + k + 4], 0x88);
            t[8 * i + k + 4] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + k + 4], 0xdd);
        }
    for (k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
    for (i = 0; i < 16; i++)
        _mm512_storeu_ps(dst + (size_t)i * ldd, r[i]);
}

const GemmKern nnc_kern_avx512 = {
    "avx512", supported, MR, NR, K512_MC, K512_KC, K512_NC, 1, packed, strided,
    dots, 16, tr16,
};

/* the small-GEMM kernels, one template for AVX2 and AVX-512 */
#define SMALL_AVX512 1
#include "gemm_small.c"

#else /* not x86, no emulation */

static int supported(void)
{
    return 0;
}

const GemmKern nnc_kern_avx512 = {
    "avx512", supported, 1, 1, 1, 1, 1, 1, NULL, NULL, NULL, 0, NULL,
};

const GemmSmall nnc_small_avx512 = {NULL, NULL};

#endif
