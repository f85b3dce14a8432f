/*
 * kern_avx512_i8.c - AVX-512 VNNI int8 micro-kernel (qgemm.c has the
 * scheme), the same template as kern_avx2_i8.c: an 8 x 16 tile of int32
 * accumulators in 8 zmm (one per row), updated per group of 4 k by one
 * load of the packed panel (64 bytes: 16 columns x 4 k), one broadcast
 * of 4 bytes of A per row and one vpdpbusd per row (u8 x s8, the 4
 * products summed into each int32 lane without intermediate saturation).
 * A non-negative A ([0, 127]) is already u8; otherwise 128 is added to
 * each byte (xor 0x80) and 128 * wsum[j] subtracted from the sums at the
 * end, which gives the same exact int32. The epilogue (masked stores for
 * a short panel) is nnc_q_epi's: multiply, add, clamp, round (cvtps:
 * nearest even), narrow (vpmovdb: the values are already in range).
 *
 * Needs AVX-512 F, BW, VL and VNNI (Ice Lake, Cascade Lake and later
 * Xeons; Zen 4); the functions carry target attributes, as
 * kern_avx512.c's do. On non-x86 targets only an "unsupported" stub.
 * -DNNC_AVX512_EMULATE builds it on plain C intrinsics, for a test on
 * CPUs without VNNI (tests/runtime/vnni_emu.sh).
 */
#include <string.h>

#include "qgemm_kern.h"

#if defined(NNC_AVX512_EMULATE)
/* a test build: the intrinsics in plain C (tests/runtime/avx512_emu.h) */
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
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define HAVE_KERNEL 1

static int supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

#ifdef HAVE_KERNEL

#define MR 8

/* 4 bytes of a row at kk (a4_tail: the n < 4 left, the rest zero) as
 * u8 in every lane: as they are when non-negative, else plus 128 (the
 * zero padding then meets zero weights) */
INLINE __m512i a4(const int8_t *a, int kk, int nonneg)
{
    uint32_t v;
    memcpy(&v, a + kk, 4);
    return _mm512_set1_epi32((int)(nonneg ? v : v ^ 0x80808080u));
}

INLINE __m512i a4_tail(const int8_t *a, int kk, int n, int nonneg)
{
    uint32_t v = 0;
    memcpy(&v, a + kk, (size_t)n);
    return _mm512_set1_epi32((int)(nonneg ? v : v ^ 0x80808080u));
}

INLINE void epilogue(const QTile *t, __m512i acc, int r)
{
    __mmask16 mask = (__mmask16)((1u << t->ncols) - 1u);
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(t->mult));
    f = _mm512_add_ps(f, _mm512_loadu_ps(t->bias));
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(t->lo)), _mm512_set1_ps(t->hi));
    if (t->c == NULL)
        _mm512_mask_storeu_ps(t->cf + (size_t)r * t->ldc, mask, f);
    else
        _mm512_mask_cvtepi32_storeu_epi8(t->c + (size_t)r * t->ldc, mask,
                                         _mm512_cvtps_epi32(f));
}

/* The accumulators are named variables (an array indexed by row was
 * kept in memory by gcc, see kern_avx2_i8.c); ROWS(X) repeats X for the
 * rows of the tile. */
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ROWS1(X) X(0)
#define DECL(r) __m512i c##r = _mm512_setzero_si512(); const int8_t *row##r;
#define SEG(r) row##r = t->a[r] + off;
#define DOT(r) c##r = _mm512_dpbusd_epi32(c##r, a4(row##r, kk, nonneg), b);
#define DOT_TAIL(r) c##r = _mm512_dpbusd_epi32(c##r, a4_tail(row##r, kk, n - kk, nonneg), b);
#define FIX(r) c##r = _mm512_sub_epi32(c##r, corr);
#define STORE(r) epilogue(t, c##r, r);

/* The tile body for the rows ROWS names; nonneg is a constant */
#define TILE_BODY(ROWS)                                                        \
    const int8_t *w = t->w;                                                    \
    int sg, kk, n = t->seglen;                                                 \
    ROWS(DECL)                                                                 \
    for (sg = 0; sg < t->nseg; sg++) {                                         \
        size_t off = (size_t)sg * t->segstride;                                \
        ROWS(SEG)                                                              \
        for (kk = 0; kk + 4 <= n; kk += 4, w += 64) {                          \
            __m512i b = _mm512_loadu_si512((const void *)w);                   \
            ROWS(DOT)                                                          \
        }                                                                      \
        if (kk < n) {                                                          \
            __m512i b = _mm512_loadu_si512((const void *)w);                   \
            ROWS(DOT_TAIL)                                                     \
            w += 64;                                                           \
        }                                                                      \
    }                                                                          \
    if (!nonneg) {                                                             \
        __m512i corr = _mm512_slli_epi32(                                      \
            _mm512_loadu_si512((const void *)t->wsum), 7);                     \
        ROWS(FIX)                                                              \
    }                                                                          \
    ROWS(STORE)

INLINE void tile8(const QTile *t, const int nonneg)
{
    TILE_BODY(ROWS8)
}

INLINE void tile1(const QTile *t, const int nonneg)
{
    TILE_BODY(ROWS1)
}

NNC_QKERN_TILE(TARGET, MR, tile8, tile1)

const QKern nnc_qkern_avx512 = {"avx512", supported, MR, tile};

#else

static int unsupported(void)
{
    return 0;
}

const QKern nnc_qkern_avx512 = {"avx512", unsupported, 1, NULL};

#endif
