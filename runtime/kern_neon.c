/*
 * kern_neon.c - NEON (aarch64) GEMM micro-kernel: an 8 x 12 tile of C in
 * 24 of the 32 q registers (three vectors of 4 per row). Per step of k it
 * loads three B vectors and, from packed A, the column of 8 as two
 * vectors, then multiplies by lane (fmla v.4s, v.4s, v.s[i]): 29 registers,
 * 24 FMAs for 5 loads. On the strided (direct) path A elements are not
 * contiguous and are broadcast one by one (ld1r); both are the same fused
 * multiply-add per element.
 *
 * NEON has no masked loads, so B always has 12 readable columns (the
 * driver pads short panels: masked_b is 0), and a tile with fewer columns
 * goes through a local 8 x 12 buffer whose epilogue is the same vector
 * code as a full tile's. NEON is baseline on aarch64; elsewhere this file
 * defines only an "unsupported" stub.
 */
#include "gemm_kern.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#define MR 8
#define NR 12
#define INLINE static inline __attribute__((always_inline))

static int supported(void)
{
    return 1;
}

/* c[0..12) = alpha * x + beta * c[0..12). */
INLINE void store_row(float *c, float32x4_t x0, float32x4_t x1,
                      float32x4_t x2, float alpha, float beta)
{
    x0 = vmulq_n_f32(x0, alpha);
    x1 = vmulq_n_f32(x1, alpha);
    x2 = vmulq_n_f32(x2, alpha);
    if (beta != 0.0f) {
        float32x4_t vb = vdupq_n_f32(beta);
        x0 = vfmaq_f32(x0, vb, vld1q_f32(c));
        x1 = vfmaq_f32(x1, vb, vld1q_f32(c + 4));
        x2 = vfmaq_f32(x2, vb, vld1q_f32(c + 8));
    }
    vst1q_f32(c, x0);
    vst1q_f32(c + 4, x1);
    vst1q_f32(c + 8, x2);
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DECL(i) float32x4_t r##i##a = vdupq_n_f32(0.0f), \
    r##i##b = vdupq_n_f32(0.0f), r##i##c = vdupq_n_f32(0.0f);
#define FMA3(i, ai)                                              \
    r##i##a = vfmaq_f32(r##i##a, b0, ai);                        \
    r##i##b = vfmaq_f32(r##i##b, b1, ai);                        \
    r##i##c = vfmaq_f32(r##i##c, b2, ai);
#define STEP_LANE(i)                                             \
    if (R > i) {                                                 \
        if (i < 4) {                                             \
            r##i##a = vfmaq_laneq_f32(r##i##a, b0, a0, i & 3);   \
            r##i##b = vfmaq_laneq_f32(r##i##b, b1, a0, i & 3);   \
            r##i##c = vfmaq_laneq_f32(r##i##c, b2, a0, i & 3);   \
        } else {                                                 \
            r##i##a = vfmaq_laneq_f32(r##i##a, b0, a1, i & 3);   \
            r##i##b = vfmaq_laneq_f32(r##i##b, b1, a1, i & 3);   \
            r##i##c = vfmaq_laneq_f32(r##i##c, b2, a1, i & 3);   \
        }                                                        \
    }
#define STEP_DUP(i)                                              \
    if (R > i) {                                                 \
        float32x4_t ai = vld1q_dup_f32(ap + (size_t)i * rsa);    \
        FMA3(i, ai)                                              \
    }
#define STORE(i)                                                 \
    if (R > i)                                                   \
        store_row(ct + (size_t)i * ldt, r##i##a, r##i##b, r##i##c, \
                  alpha, beta);

/* packed: A is an 8-float column per step (rsa 1, csa 8). */
INLINE void tile(const size_t R, const int packed, size_t cols, size_t k,
                 const float *a, size_t rsa, size_t csa, const float *b,
                 size_t ldb, float *c, size_t ldc, float alpha, float beta)
{
    float tmp[MR * NR];
    float *ct = c;
    size_t ldt = ldc, i, j, p;
    const float *ap = a, *bp = b;
    ROWS(DECL)

    for (p = 0; p < k; p++, ap += csa, bp += ldb) {
        float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4);
        float32x4_t b2 = vld1q_f32(bp + 8);
        if (packed) {
            float32x4_t a0 = vld1q_f32(ap), a1 = vld1q_f32(ap + 4);
            ROWS(STEP_LANE)
        } else {
            ROWS(STEP_DUP)
        }
    }
    if (cols < NR) {            /* short tile: through a local buffer */
        ct = tmp, ldt = NR;
        for (i = 0; i < R; i++)
            for (j = 0; j < NR; j++)
                tmp[i * NR + j] = j < cols && beta != 0.0f ? c[i * ldc + j]
                                                           : 0.0f;
    }
    ROWS(STORE)
    if (cols < NR)
        for (i = 0; i < R; i++)
            for (j = 0; j < cols; j++)
                c[i * ldc + j] = tmp[i * NR + j];
}

#define CASE(i, packed, rsa, csa)                                      \
    case i + 1:                                                        \
        tile(i + 1, packed, cols, k, a, rsa, csa, b, ldb, c, ldc,      \
             alpha, beta);                                             \
        break;
#define CASE_PACKED(i) CASE(i, 1, 1, MR)
#define CASE_STRIDED(i) CASE(i, 0, rsa, csa)

static void packed(size_t rows, size_t cols, size_t k, const float *a,
                   size_t rsa, size_t csa, const float *b, size_t ldb,
                   float *c, size_t ldc, float alpha, float beta)
{
    (void)rsa, (void)csa;
    switch (rows > MR ? MR : rows) {
        ROWS(CASE_PACKED)
    default:
        break;
    }
}

static void strided(size_t rows, size_t cols, size_t k, const float *a,
                    size_t rsa, size_t csa, const float *b, size_t ldb,
                    float *c, size_t ldc, float alpha, float beta)
{
    switch (rows > MR ? MR : rows) {
        ROWS(CASE_STRIDED)
    default:
        break;
    }
}

const GemmKern nnc_kern_neon = {
    "neon", supported, MR, NR, 8 * 12, 256, 2040, 0, packed, strided, NULL, 0, NULL,
};

#else /* not aarch64 */

static int supported(void)
{
    return 0;
}

const GemmKern nnc_kern_neon = {
    "neon", supported, 1, 1, 1, 1, 1, 1, NULL, NULL, NULL, 0, NULL,
};

#endif
