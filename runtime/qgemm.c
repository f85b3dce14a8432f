/*
 * qgemm.c - int8 inference: the int8 GEMM with its fused requantization,
 * and the int8 helpers around it (quantizing the input, im2col, max
 * pooling), for the models `nnc --quantize=int8` emits.
 *
 * Numbers. A tensor x is held as q = round(x / s), clamped to
 * [-127, 127] (symmetric, no zero point: 0 is exact, so zero padding and
 * ReLU stay exact, and max pooling commutes with quantizing). A layer
 * y = act(x W^T + b) with W quantized per output column j at scale sw[j]
 * computes acc = sum_k qx qw in int32 (exact), then in float
 *   y_q = clamp(acc * mult[j] + bias[j], lo, hi), rounded to nearest even
 * with mult[j] = sx sw[j] / sy and bias[j] = b[j] / sy: the scale, bias,
 * ReLU (lo = 0) and rounding to the next layer's int8 in one pass over
 * the accumulators (the epilogue). A float output (the last layer) has
 * mult[j] = sx sw[j], bias[j] = b[j] and no clamp. The epilogue is a
 * multiply, then an add (never fused), a clamp and one rounding, so every
 * kernel gives the same bits (tests/runtime/test_qgemm.c checks it).
 *
 * Layout. W is packed once, by the compiler (nnc_qpack), in panels of 16
 * columns; a panel holds k in groups of 4: group g is 64 bytes, column c's
 * k = 4g .. 4g+3 at bytes 4c .. 4c+3 (zeros past k and past n). That is
 * the operand of one AVX-512 VNNI vpdpbusd (16 int32 lanes, each the dot
 * product of 4 bytes), of two AVX2 vpmaddubsw/vpmaddwd pairs (8 lanes
 * each) and of four NEON sdot (4 lanes each), so one packed array serves
 * every ISA (qpack.c, linked into the compiler as well). A row of A (k bytes, any stride, no padding needed: the
 * last short group is read byte by byte) is broadcast 4 bytes at a time.
 *
 * Signs. vpmaddubsw and vpdpbusd multiply unsigned by signed bytes. When
 * A is known non-negative (a ReLU's output: [0, 127]) its bytes are
 * used as they are (vpmaddubsw's int16 pair sums stay below
 * 2 * 127 * 127 < 32767: no saturation). Otherwise AVX2 multiplies |a| by
 * w carrying a's sign (vpsignb; |a| <= 127), and VNNI adds 128 to a
 * (u8 = a xor 0x80) and subtracts 128 * sum_k w[j] (wsum) at the end.
 * NEON's sdot is signed by signed and needs neither.
 *
 * Driver. Rows in blocks of QMC (a block of A, QMC x k bytes, stays in L2
 * while every panel passes over it), panels inside, then the kernel's
 * tiles of mr rows. One thread: predict at small batch is latency-bound
 * and the float model's threads are the user's choice.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qgemm_kern.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define QMC 96

/* ---- Scalar reference kernel ------------------------------------------ */

static int scalar_supported(void)
{
    return 1;
}

static void scalar_tile(const QTile *t, int rows, int nonneg)
{
    int r, j, sg, kk, kw;
    (void)nonneg;
    for (r = 0; r < rows; r++)
        for (j = 0; j < t->ncols; j++) {
            int32_t acc = 0;
            for (sg = 0; sg < t->nseg; sg++)
                for (kk = 0; kk < t->seglen; kk++) {
                    kw = sg * t->seglen + kk;
                    acc += (int32_t)t->a[r][(size_t)sg * t->segstride + (size_t)kk] *
                           (int32_t)t->w[(kw / 4) * 64 + j * 4 + kw % 4];
                }
            float f = nnc_q_epi(acc, t->mult[j], t->bias[j], t->lo, t->hi);
            if (t->c != NULL)
                t->c[(size_t)r * t->ldc + (size_t)j] = (int8_t)lrintf(f);
            else
                t->cf[(size_t)r * t->ldc + (size_t)j] = f;
        }
}

const QKern nnc_qkern_scalar = {"scalar", scalar_supported, 4, scalar_tile};

/* ---- Kernel choice ------------------------------------------------------ */

static const QKern *const qkernels[] = {
    &nnc_qkern_avx512, &nnc_qkern_avx2, &nnc_qkern_neon, &nnc_qkern_scalar,
};

#define NQKERNELS (sizeof qkernels / sizeof qkernels[0])

static const QKern *qkern;  /* a benign race, as gemm.c's choice */

static const QKern *find_qkernel(const char *name)
{
    size_t i;
    for (i = 0; name != NULL && i < NQKERNELS; i++)
        if (strcmp(name, qkernels[i]->name) == 0 && qkernels[i]->supported())
            return qkernels[i];
    return NULL;
}

static const QKern *current_qkernel(void)
{
    size_t i;
    if (qkern == NULL) {
        const QKern *kn = find_qkernel(getenv("NNC_ISA"));
        for (i = 0; kn == NULL && i < NQKERNELS; i++)
            if (qkernels[i]->supported())
                kn = qkernels[i];
        qkern = kn;
    }
    return qkern;
}

const char *nnc_qisa(void)
{
    return current_qkernel()->name;
}

int nnc_set_qisa(const char *name)
{
    const QKern *kn = find_qkernel(name);
    if (kn == NULL)
        return NNC_ERR_ARG;
    qkern = kn;
    return NNC_OK;
}

/* ---- Entry points ------------------------------------------------------- */

/* Where the rows of A start: a + i * lda, or a convolution's window at
 * output position i (image b, row oy, column ox) for implicit im2col. */
typedef struct QRows {
    const int8_t *a;
    size_t lda;
    int conv, oh, ow;
    size_t img, rowb, colb;     /* bytes per image, per output row, column */
} QRows;

/* The start of rows i0 .. i1 - 1 into ptr (a convolution's positions
 * stepped along, no division per row) */
static void rows_at(const QRows *q, int i0, int i1, const int8_t **ptr)
{
    int i, b, oy, ox;
    if (!q->conv) {
        for (i = i0; i < i1; i++)
            ptr[i - i0] = q->a + (size_t)i * q->lda;
        return;
    }
    b = i0 / (q->oh * q->ow), oy = i0 % (q->oh * q->ow) / q->ow, ox = i0 % q->ow;
    for (i = i0; i < i1; i++) {
        ptr[i - i0] = q->a + (size_t)b * q->img + (size_t)oy * q->rowb + (size_t)ox * q->colb;
        if (++ox == q->ow) {
            ox = 0;
            if (++oy == q->oh)
                oy = 0, b++;
        }
    }
}

/* Rows in blocks of QMC, their start pointers computed once per block;
 * panels inside, each one kernel call over the block's rows. */
static void run(const nnc_qlayer *l, int m, const QRows *rows, QTile *t, int a_nonneg,
                int8_t *c, float *cf)
{
    const QKern *kn = current_qkernel();
    const int8_t *ptr[QMC];
    size_t panel = (size_t)((l->k + 3) / 4) * 64;
    int i0, p, npanels = (l->n + 15) / 16;

    t->lo = cf != NULL ? (l->relu ? 0.0f : -HUGE_VALF) : (l->relu ? 0.0f : -127.0f);
    t->hi = cf != NULL ? HUGE_VALF : 127.0f;
    for (i0 = 0; i0 < m; i0 += QMC) {
        int i1 = m - i0 < QMC ? m : i0 + QMC;
        rows_at(rows, i0, i1, ptr);
        for (p = 0; p < npanels; p++) {
            t->w = l->w + (size_t)p * panel;
            t->wsum = l->wsum + p * 16;
            t->mult = l->mult + p * 16;
            t->bias = l->bias + p * 16;
            t->ncols = l->n - p * 16 < 16 ? l->n - p * 16 : 16;
            t->a = ptr;
            t->c = c != NULL ? c + (size_t)i0 * t->ldc + (size_t)p * 16 : NULL;
            t->cf = cf != NULL ? cf + (size_t)i0 * t->ldc + (size_t)p * 16 : NULL;
            kn->tile(t, i1 - i0, a_nonneg);
        }
    }
}

void nnc_qgemm(const nnc_qlayer *l, int m, const int8_t *a, size_t lda, int a_nonneg,
               int8_t *c, float *cf, size_t ldc)
{
    QRows rows;
    QTile t;
    memset(&rows, 0, sizeof rows);
    rows.a = a, rows.lda = lda;
    t.nseg = 1, t.seglen = l->k, t.segstride = 0, t.ldc = ldc;
    run(l, m, &rows, &t, a_nonneg, c, cf);
}

int nnc_qconv(const nnc_qlayer *l, int n, int h, int w, int c, int kh, int kw, int sh, int sw,
              int oh, int ow, const int8_t *x, int x_nonneg, int8_t *y, float *yf)
{
    QRows rows;
    QTile t;
    int seg = kh > 1 ? (kw * c + 3) / 4 * 4 : kw * c;
    if (l->k != kh * seg || (oh - 1) * sh + kh > h ||
        (ow - 1) * sw + kw > w || n < 0 || oh < 1 || ow < 1)
        return NNC_ERR_ARG;
    rows.a = x, rows.lda = 0, rows.conv = 1, rows.oh = oh, rows.ow = ow;
    rows.img = (size_t)h * (size_t)w * (size_t)c;
    rows.rowb = (size_t)sh * (size_t)w * (size_t)c;
    rows.colb = (size_t)sw * (size_t)c;
    t.nseg = kh, t.seglen = seg, t.segstride = (size_t)w * (size_t)c, t.ldc = (size_t)l->n;
    run(l, n * oh * ow, &rows, &t, x_nonneg, y, yf);
    return NNC_OK;
}

void nnc_quantize(const float *x, size_t count, float inv_scale, int8_t *q)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* the same operations 16 at a time: multiply, clamp, round to nearest
     * even (cvtps2dq in the default rounding mode, as lrintf), narrow */
    const __m128 s = _mm_set1_ps(inv_scale), lo = _mm_set1_ps(-127.0f), hi = _mm_set1_ps(127.0f);
    for (; i + 16 <= count; i += 16) {
        __m128i v[4];
        int j;
        for (j = 0; j < 4; j++) {
            __m128 f = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * (size_t)j), s);
            v[j] = _mm_cvtps_epi32(_mm_min_ps(_mm_max_ps(f, lo), hi));
        }
        _mm_storeu_si128((__m128i *)(void *)(q + i),
                         _mm_packs_epi16(_mm_packs_epi32(v[0], v[1]), _mm_packs_epi32(v[2], v[3])));
    }
#endif
    for (; i < count; i++) {
        float f = x[i] * inv_scale;
        f = f < -127.0f ? -127.0f : f > 127.0f ? 127.0f : f;
        q[i] = (int8_t)lrintf(f);
    }
}

/* d[0..n) = s[0..n): 16-byte pieces (memcpy of a constant size is one
 * vector move; gcc -O2 left a plain byte loop unvectorized), then bytes */
static void copy_bytes(int8_t *d, const int8_t *s, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        memcpy(d + i, s + i, 16);
    for (; i + 4 <= n; i += 4)
        memcpy(d + i, s + i, 4);
    for (; i < n; i++)
        d[i] = s[i];
}

/* One window row (ky) of an output position: kw * c bytes, zeros where
 * the window leaves the image. */
static void window_row(int8_t *col, const int8_t *row, int w, int c, int kw, int x0)
{
    int kx;
    if (row == NULL) {
        memset(col, 0, (size_t)kw * (size_t)c);
    } else if (x0 >= 0 && x0 + kw <= w) {
        copy_bytes(col, row + (size_t)x0 * (size_t)c, (size_t)kw * (size_t)c);
    } else {
        for (kx = 0; kx < kw; kx++, col += c) {
            if (x0 + kx < 0 || x0 + kx >= w)
                memset(col, 0, (size_t)c);
            else
                copy_bytes(col, row + (size_t)(x0 + kx) * (size_t)c, (size_t)c);
        }
    }
}

void nnc_im2col_i8(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                   int pt, int pl, int oh, int ow, const int8_t *x, int8_t *col, size_t ldcol)
{
    size_t k = (size_t)kh * (size_t)kw * (size_t)c, img = (size_t)h * (size_t)w * (size_t)c;
    int b, oy, ox, ky;
    for (b = 0; b < n; b++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++, col += ldcol) {
                for (ky = 0; ky < kh; ky++) {
                    int y = oy * sh + ky - pt;
                    const int8_t *row = y < 0 || y >= h ? NULL
                        : x + (size_t)b * img + (size_t)y * (size_t)w * (size_t)c;
                    window_row(col + (size_t)ky * (size_t)kw * (size_t)c, row, w, c, kw,
                               ox * sw - pl);
                }
                memset(col + k, 0, ldcol - k);
            }
}

/* d[i] = max(d[i], s[i]) over n bytes: SSE2 has no signed byte max, so
 * both go to unsigned order (xor 0x80), take pmaxub and come back */
static void max_bytes(int8_t *d, const int8_t *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i flip = _mm_set1_epi8((char)0x80);
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(d + i)), flip);
        __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(s + i)), flip);
        _mm_storeu_si128((__m128i *)(void *)(d + i), _mm_xor_si128(_mm_max_epu8(a, b), flip));
    }
#elif defined(__ARM_NEON)
    for (; i + 16 <= n; i += 16)
        vst1q_s8(d + i, vmaxq_s8(vld1q_s8(d + i), vld1q_s8(s + i)));
#endif
    for (; i < n; i++)
        d[i] = s[i] > d[i] ? s[i] : d[i];
}

void nnc_maxpool_i8(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                    int oh, int ow, const int8_t *x, int8_t *y)
{
    int b, oy, ox, ky, kx;
    for (b = 0; b < n; b++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++, y += c)
                for (ky = 0; ky < kh; ky++)
                    for (kx = 0; kx < kw; kx++) {
                        const int8_t *s = x + (((size_t)b * (size_t)h +
                                                (size_t)(oy * sh + ky)) * (size_t)w +
                                               (size_t)(ox * sw + kx)) * (size_t)c;
                        if (ky == 0 && kx == 0)
                            copy_bytes(y, s, (size_t)c);
                        else
                            max_bytes(y, s, (size_t)c);
                    }
}
