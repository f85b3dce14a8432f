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

/* 4 bytes of a row at kk (fewer past k, the rest zero), in every lane */
INLINE int8x16_t bcast(const int8_t *a, int kk, int k)
{
    int32_t v = 0;
    memcpy(&v, a + kk, kk + 4 <= k ? 4 : (size_t)(k - kk));
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

/* rows is a constant in each instantiation */
INLINE void tile_body(const QTile *t, const int rows)
{
    int32x4_t acc[MR][4];
    const int8_t *w = t->w;
    int r, h, kk, k = t->k;
    for (r = 0; r < rows; r++)
        for (h = 0; h < 4; h++)
            acc[r][h] = vdupq_n_s32(0);
    for (kk = 0; kk < k; kk += 4, w += 64) {
        int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16);
        int8x16_t b2 = vld1q_s8(w + 32), b3 = vld1q_s8(w + 48);
        for (r = 0; r < rows; r++) {
            int8x16_t av = bcast(t->a + (size_t)r * t->lda, kk, k);
            acc[r][0] = vdotq_s32(acc[r][0], av, b0);
            acc[r][1] = vdotq_s32(acc[r][1], av, b1);
            acc[r][2] = vdotq_s32(acc[r][2], av, b2);
            acc[r][3] = vdotq_s32(acc[r][3], av, b3);
        }
    }
    for (r = 0; r < rows; r++)
        epilogue(t, acc[r], r);
}

TARGET static void tile(const QTile *t, int rows, int nonneg)
{
    QTile one;
    int r;
    (void)nonneg;
    if (rows == MR) {
        tile_body(t, MR);
        return;
    }
    for (r = 0; r < rows; r++) {
        one = *t;
        one.a = t->a + (size_t)r * t->lda;
        one.c = t->c != NULL ? t->c + (size_t)r * t->ldc : NULL;
        one.cf = t->cf != NULL ? t->cf + (size_t)r * t->ldc : NULL;
        tile_body(&one, 1);
    }
}

const QKern nnc_qkern_neon = {"neon", supported, MR, tile};

#else

static int unsupported(void)
{
    return 0;
}

const QKern nnc_qkern_neon = {"neon", unsupported, 1, NULL};

#endif
