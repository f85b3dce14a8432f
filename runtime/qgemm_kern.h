/*
 * qgemm_kern.h - what qgemm.c (the int8 GEMM's driver) and the per-ISA
 * int8 micro-kernels (kern_*_i8.c) share: one tile of work and the table
 * of a kernel set. Not installed; the emitted code sees only nncrt.h.
 */
#ifndef NNC_QGEMM_KERN_H
#define NNC_QGEMM_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "nncrt.h"

/* One call of a kernel: rows rows of A (tiles of the kernel's mr, then
 * single rows) times one packed 16-column panel of W, then the epilogue. Row r's k values
 * lie in nseg segments of seglen bytes, segment s at a[r] + s *
 * segstride: one segment for a plain matrix, a convolution's kh window
 * rows in its image for nnc_qconv (implicit im2col). seglen is a
 * multiple of 4 when nseg > 1, so no group of 4 straddles two. */
typedef struct QTile {
    const int8_t *const *a; /* rows pointers */
    int nseg, seglen;
    size_t segstride;
    const int8_t *w;        /* the panel: ceil(k/4) groups of 16 x 4 bytes */
    const int32_t *wsum;    /* 16: each column's sum of weights */
    const float *mult, *bias; /* 16 each */
    float lo, hi;           /* the clamp before rounding (or -inf, inf) */
    int ncols;              /* valid columns, 1 .. 16 */
    int8_t *c;              /* int8 output, or NULL: float output in cf */
    float *cf;
    size_t ldc;
} QTile;

typedef struct QKern {
    const char *name;                   /* as NNC_ISA names it */
    int (*supported)(void);
    int mr;                             /* rows per full tile (for reports) */
    /* nonneg: every value of A is in [0, 127] */
    void (*tile)(const QTile *t, int rows, int nonneg);
} QKern;

/* Row r of t's rows as a tile of its own */
static inline void nnc_qtile_at(QTile *s, const QTile *t, int r)
{
    s->a = t->a + r;
    s->c = t->c != NULL ? t->c + (size_t)r * t->ldc : NULL;
    s->cf = t->cf != NULL ? t->cf + (size_t)r * t->ldc : NULL;
}

/* The entry point every SIMD kernel file defines alike: all the rows of
 * a block in one call (a call per tile cost as much as the arithmetic
 * when k is small), FULL(tile, nonneg) on whole tiles of MR rows, then
 * ONE(tile, nonneg) row by row; nonneg is a constant in each call, so
 * each instantiation drops the other path. */
#define NNC_QKERN_TILE(TARGET, MR, FULL, ONE)                                  \
    TARGET static void tile(const QTile *t, int rows, int nonneg)              \
    {                                                                          \
        QTile s = *t;                                                          \
        int r = 0;                                                             \
        for (; r + (MR) <= rows; r += (MR)) {                                  \
            nnc_qtile_at(&s, t, r);                                            \
            if (nonneg)                                                        \
                FULL(&s, 1);                                                   \
            else                                                               \
                FULL(&s, 0);                                                   \
        }                                                                      \
        for (; r < rows; r++) {                                                \
            nnc_qtile_at(&s, t, r);                                            \
            if (nonneg)                                                        \
                ONE(&s, 1);                                                    \
            else                                                               \
                ONE(&s, 0);                                                    \
        }                                                                      \
    }

extern const QKern nnc_qkern_scalar, nnc_qkern_avx2, nnc_qkern_avx512, nnc_qkern_neon;

/* The scalar epilogue every kernel matches bit for bit: a float multiply,
 * a float add (two roundings, never a fused multiply-add), the clamp,
 * round to nearest even. */
static inline float nnc_q_epi(int32_t acc, float mult, float bias, float lo, float hi)
{
    float f = (float)acc * mult;
    f = f + bias;
    f = f < lo ? lo : f;
    return f > hi ? hi : f;
}

#endif
