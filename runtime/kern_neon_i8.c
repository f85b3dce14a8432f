/*
 * kern_neon_i8.c - NEON int8 micro-kernel with the dot-product
 * instructions (sdot, Armv8.2-A DotProd: Cortex-A55/A76 and later, Apple,
 * Graviton 2+), the same template as kern_avx2_i8.c: a 4 x 16 tile of
 * int32 accumulators in 16 q registers (four per row), updated per group
 * of 4 k by four 16-byte loads of the packed panel, one broadcast of 4
 * bytes of A per row and four sdot per row (s8 x s8, 4 products summed
 * into each int32 lane: signed by signed, so no sign tricks). The
 * epilogue is nnc_q_epi's (multiply, add: not vmla, which would fuse;
 * clamp; fcvtns: nearest even). Chosen only where the CPU reports
 * DotProd (HWCAP_ASIMDDP); on other targets an "unsupported" stub.
 */
#include <string.h>

#include "qgemm_kern.h"

#if defined(__aarch64__) && defined(__GNUC__) && defined(__linux__)

#include <arm_neon.h>
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

#define TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define MR 4

static int supported(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

/* 4 bytes of a row at kk (a4_tail: the n < 4 left, the rest zero), in
 * every lane */
INLINE int8x16_t a4(const int8_t *a, int kk)
{
    int32_t v;
    memcpy(&v, a + kk, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

INLINE int8x16_t a4_tail(const int8_t *a, int kk, int n)
{
    int32_t v = 0;
    memcpy(&v, a + kk, (size_t)n);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

INLINE void epilogue(const QTile *t, const int32x4_t *acc, int r)
{
    float32x4_t lo = vdupq_n_f32(t->lo), hi = vdupq_n_f32(t->hi), f[4];
    int h;
    for (h = 0; h < 4; h++) {
        f[h] = vmulq_f32(vcvtq_f32_s32(acc[h]), vld1q_f32(t->mult + 4 * h));
        f[h] = vaddq_f32(f[h], vld1q_f32(t->bias + 4 * h));
        f[h] = vminq_f32(vmaxq_f32(f[h], lo), hi);
    }
    if (t->c == NULL) {
        float tmp[16];
        for (h = 0; h < 4; h++)
            vst1q_f32(tmp + 4 * h, f[h]);
        memcpy(t->cf + (size_t)r * t->ldc, tmp, sizeof(float) * (size_t)t->ncols);
    } else {
        int8_t tmp[16];
        int16x8_t s0 = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(f[0])),
                                    vqmovn_s32(vcvtnq_s32_f32(f[1])));
        int16x8_t s1 = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(f[2])),
                                    vqmovn_s32(vcvtnq_s32_f32(f[3])));
        vst1q_s8(tmp, vcombine_s8(vqmovn_s16(s0), vqmovn_s16(s1)));
        memcpy(t->c + (size_t)r * t->ldc, tmp, (size_t)t->ncols);
    }
}

/* Named accumulators (see kern_avx2_i8.c); ROWS(X) repeats X per row. */
#define ROWS4(X) X(0) X(1) X(2) X(3)
#define ROWS1(X) X(0)
#define DECL(r)                                                                \
    int32x4_t c##r[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0),       \
                         vdupq_n_s32(0)};                                      \
    const int8_t *row##r;
#define SEG(r) row##r = t->a[r] + off;
#define DOT4(r, av)                                                            \
    {                                                                          \
        int8x16_t v##r = (av);                                                 \
        c##r[0] = vdotq_s32(c##r[0], v##r, b0);                                \
        c##r[1] = vdotq_s32(c##r[1], v##r, b1);                                \
        c##r[2] = vdotq_s32(c##r[2], v##r, b2);                                \
        c##r[3] = vdotq_s32(c##r[3], v##r, b3);                                \
    }
#define DOT(r) DOT4(r, a4(row##r, kk))
#define DOT_TAIL(r) DOT4(r, a4_tail(row##r, kk, n - kk))
#define STORE(r) epilogue(t, c##r, r);
#define LOAD_B()                                                               \
    int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16);                         \
    int8x16_t b2 = vld1q_s8(w + 32), b3 = vld1q_s8(w + 48)

#define TILE_BODY(ROWS)                                                        \
    const int8_t *w = t->w;                                                    \
    int sg, kk, n = t->seglen;                                                 \
    ROWS(DECL)                                                                 \
    for (sg = 0; sg < t->nseg; sg++) {                                         \
        size_t off = (size_t)sg * t->segstride;                                \
        ROWS(SEG)                                                              \
        for (kk = 0; kk + 4 <= n; kk += 4, w += 64) {                          \
            LOAD_B();                                                          \
            ROWS(DOT)                                                          \
        }                                                                      \
        if (kk < n) {                                                          \
            LOAD_B();                                                          \
            ROWS(DOT_TAIL)                                                     \
            w += 64;                                                           \
        }                                                                      \
    }                                                                          \
    ROWS(STORE)

/* nonneg: unused, sdot multiplies signed by signed */
INLINE void tile4(const QTile *t, const int nonneg)
{
    (void)nonneg;
    TILE_BODY(ROWS4)
}

INLINE void tile1(const QTile *t, const int nonneg)
{
    (void)nonneg;
    TILE_BODY(ROWS1)
}

NNC_QKERN_TILE(TARGET, MR, tile4, tile1)

const QKern nnc_qkern_neon = {"neon", supported, MR, tile};

#else

static int unsupported(void)
{
    return 0;
}

const QKern nnc_qkern_neon = {"neon", unsupported, 1, NULL};

#endif
