/*
 * qgemm_check.h - nnc_qgemm under one ISA against a reference written
 * from the definition in nncrt.h (int32 dot products of the unpacked
 * weights, then qgemm_kern.h's nnc_q_epi and a round to nearest even):
 * every element must be equal, bit for bit, and nothing past the n
 * columns of a row may be written. Plain C99, included by the Criterion
 * test (tests/runtime/test_qgemm.c) and by the program tests/runtime/
 * neon.sh cross-compiles for aarch64 (tests/runtime/qgemm_check.c).
 *
 * The cases cover row counts around the tiles' (1, 3, 4, 5, 8, 9, 17,
 * 100), short panels and several of them (n 1 .. 64), k with and
 * without a short last group of 4 (1 .. 288), strided A and C, non-
 * negative and signed A, ReLU, int8 and float outputs, and the extreme
 * values (+-127 everywhere: vpmaddubsw's int16 pairs at their largest);
 * and nnc_qconv's in-place windows against im2col + nnc_qgemm.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"
#include "qgemm_kern.h"

static unsigned long qc_state = 12345;

static int qc_rand(int lo, int hi)
{
    qc_state = qc_state * 6364136223846793005UL + 1442695040888963407UL;
    return lo + (int)((qc_state >> 33) % (unsigned long)(hi - lo + 1));
}

/* One case; extreme: every a and w at +-127. Returns the mismatches. */
static int qc_case(int m, int n, int k, int nonneg, int relu, int fout, int extreme)
{
    size_t lda = (size_t)k + 3, ldc = (size_t)n + 5, i, j, kk;
    size_t n16 = (size_t)(n + 15) / 16 * 16;
    int8_t *a = malloc((size_t)m * lda + 1), *w = malloc((size_t)n * (size_t)k + 1);
    int8_t *pw = malloc(nnc_qpack_bytes(n, k) + 1), *c = malloc((size_t)m * ldc + 1);
    float *cf = malloc(((size_t)m * ldc + 1) * sizeof(float));
    float *mult = malloc(n16 * sizeof(float)), *bias = malloc(n16 * sizeof(float));
    int32_t *wsum = malloc(n16 * sizeof(int32_t));
    int bad = 0;
    nnc_qlayer l;

    if (!a || !w || !pw || !c || !cf || !mult || !bias || !wsum) {
        fprintf(stderr, "qgemm_check: out of memory\n");
        exit(2);
    }
    for (i = 0; i < (size_t)m * lda; i++)
        a[i] = (int8_t)(extreme ? (nonneg ? 127 : (i % 3 ? -127 : 127))
                                : qc_rand(nonneg ? 0 : -127, 127));
    for (i = 0; i < (size_t)n * (size_t)k; i++)
        w[i] = (int8_t)(extreme ? (i % 2 ? -127 : 127) : qc_rand(-127, 127));
    for (j = 0; j < n16; j++) {
        mult[j] = (float)qc_rand(1, 1000) * (extreme ? 1e-6f : 1e-4f);
        bias[j] = (float)qc_rand(-500, 500) * 0.01f;
    }
    nnc_qpack(n, k, w, pw, wsum);
    memset(c, 0x5a, (size_t)m * ldc);
    for (i = 0; i < (size_t)m * ldc; i++)
        cf[i] = 1234.5f;
    l.n = n, l.k = k, l.w = pw, l.wsum = wsum, l.mult = mult, l.bias = bias, l.relu = relu;
    nnc_qgemm(&l, m, a, lda, nonneg, fout ? NULL : c, fout ? cf : NULL, ldc);
    for (i = 0; i < (size_t)m; i++)
        for (j = 0; j < ldc; j++) {
            float lo = fout ? (relu ? 0.0f : -HUGE_VALF) : (relu ? 0.0f : -127.0f);
            float hi = fout ? HUGE_VALF : 127.0f, f = 0;
            int32_t acc = 0;
            if (j < (size_t)n) {
                for (kk = 0; kk < (size_t)k; kk++)
                    acc += a[i * lda + kk] * w[j * (size_t)k + kk];
                f = nnc_q_epi(acc, mult[j], bias[j], lo, hi);
            }
            if (fout ? (j < (size_t)n ? memcmp(&cf[i * ldc + j], &f, sizeof f) != 0
                                      : cf[i * ldc + j] != 1234.5f)
                     : c[i * ldc + j] != (j < (size_t)n ? (int8_t)lrintf(f) : 0x5a)) {
                if (bad++ == 0)
                    fprintf(stderr, "qgemm_check: %s m=%d n=%d k=%d nonneg=%d relu=%d "
                            "float=%d extreme=%d: (%zu, %zu) differs\n", nnc_qisa(), m, n,
                            k, nonneg, relu, fout, extreme, i, j);
            }
        }
    free(a), free(w), free(pw), free(c), free(cf), free(mult), free(bias), free(wsum);
    return bad;
}

/* nnc_qconv (windows read in place) against nnc_im2col_i8 + nnc_qgemm,
 * which qc_case checks; returns the mismatches. */
static int qc_conv_case(int n, int h, int w, int c, int kh, int kw, int s, int nout, int nonneg,
                        int fout)
{
    int oh = (h - kh) / s + 1, ow = (w - kw) / s + 1, k = kh * kw * c, bad = 0;
    int seg = kh > 1 ? (kw * c + 3) / 4 * 4 : kw * c, kp = kh * seg, j, ky;
    size_t rows = (size_t)n * (size_t)oh * (size_t)ow, i, n16 = (size_t)(nout + 15) / 16 * 16;
    size_t xn = (size_t)n * (size_t)h * (size_t)w * (size_t)c;
    int8_t *x = malloc(xn + 3), *col = malloc(rows * (size_t)k + 1), *wt = malloc((size_t)nout * (size_t)k);
    int8_t *pw = malloc(nnc_qpack_bytes(nout, k)), *y1 = malloc(rows * (size_t)nout);
    int8_t *wp = calloc((size_t)nout * (size_t)kp, 1), *pwp = malloc(nnc_qpack_bytes(nout, kp));
    int8_t *y2 = malloc(rows * (size_t)nout);
    float *f1 = malloc(rows * (size_t)nout * sizeof(float));
    float *f2 = malloc(rows * (size_t)nout * sizeof(float));
    float *mult = malloc(n16 * sizeof(float)), *bias = malloc(n16 * sizeof(float));
    int32_t *wsum = malloc(n16 * sizeof(int32_t));
    nnc_qlayer l;
    if (!x || !col || !wt || !pw || !wp || !pwp || !y1 || !y2 || !f1 || !f2 || !mult || !bias || !wsum) {
        fprintf(stderr, "qgemm_check: out of memory\n");
        exit(2);
    }
    for (i = 0; i < xn + 3; i++)   /* 3 bytes past x: qconv's slack, junk */
        x[i] = (int8_t)qc_rand(nonneg ? 0 : -127, 127);
    for (i = 0; i < (size_t)nout * (size_t)k; i++)
        wt[i] = (int8_t)qc_rand(-127, 127);
    for (i = 0; i < n16; i++)
        mult[i] = (float)qc_rand(1, 1000) * 1e-4f, bias[i] = (float)qc_rand(-500, 500) * 0.01f;
    nnc_qpack(nout, k, wt, pw, wsum);
    l.n = nout, l.k = k, l.w = pw, l.wsum = wsum, l.mult = mult, l.bias = bias, l.relu = 1;
    for (j = 0; j < nout; j++)    /* window rows padded to seg for qconv */
        for (ky = 0; ky < kh; ky++)
            memcpy(wp + (size_t)j * (size_t)kp + (size_t)ky * (size_t)seg,
                   wt + (size_t)j * (size_t)k + (size_t)ky * (size_t)kw * (size_t)c,
                   (size_t)kw * (size_t)c);
    nnc_im2col_i8(n, h, w, c, kh, kw, s, s, 0, 0, oh, ow, x, col, (size_t)k);
    nnc_qgemm(&l, (int)rows, col, (size_t)k, nonneg, fout ? NULL : y1, fout ? f1 : NULL,
              (size_t)nout);
    nnc_qpack(nout, kp, wp, pwp, wsum);
    l.k = kp, l.w = pwp;
    if (nnc_qconv(&l, n, h, w, c, kh, kw, s, s, oh, ow, x, nonneg, fout ? NULL : y2,
                  fout ? f2 : NULL) != NNC_OK)
        bad++;
    else if (fout ? memcmp(f1, f2, rows * (size_t)nout * sizeof(float)) != 0
                  : memcmp(y1, y2, rows * (size_t)nout) != 0)
        bad++;
    if (bad)
        fprintf(stderr, "qgemm_check: %s conv n=%d %dx%dx%d k=%dx%d s=%d out=%d nonneg=%d "
                "float=%d differs from im2col + qgemm\n", nnc_qisa(), n, h, w, c, kh, kw, s,
                nout, nonneg, fout);
    free(x), free(col), free(wt), free(pw), free(wp), free(pwp), free(y1), free(y2), free(f1);
    free(f2);
    free(mult), free(bias), free(wsum);
    return bad;
}

/* Every case under the current ISA; returns the failed cases. */
static int qc_all(void)
{
    static const int ms[] = {1, 3, 4, 5, 8, 9, 17, 100};
    static const int ns[] = {1, 7, 16, 17, 33, 64};
    static const int ks[] = {1, 3, 4, 5, 9, 31, 288};
    size_t a, b, d;
    int flags, failed = 0;
    for (a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (d = 0; d < sizeof ks / sizeof ks[0]; d++)
                for (flags = 0; flags < 8; flags++)
                    failed += qc_case(ms[a], ns[b], ks[d], flags & 1, flags >> 1 & 1,
                                      flags >> 2 & 1, 0) != 0;
    for (flags = 0; flags < 8; flags++)
        failed += qc_case(9, 17, 288, flags & 1, flags >> 1 & 1, flags >> 2 & 1, 1) != 0;
    for (flags = 0; flags < 4; flags++) {
        failed += qc_conv_case(2, 7, 9, 4, 3, 3, 1, 17, flags & 1, flags >> 1 & 1);
        failed += qc_conv_case(1, 8, 8, 8, 2, 3, 2, 64, flags & 1, flags >> 1 & 1);
        failed += qc_conv_case(3, 5, 5, 3, 1, 5, 1, 5, flags & 1, flags >> 1 & 1);
        failed += qc_conv_case(2, 9, 8, 1, 3, 3, 1, 32, flags & 1, flags >> 1 & 1);
        failed += qc_conv_case(1, 9, 9, 3, 2, 2, 2, 20, flags & 1, flags >> 1 & 1);
    }
    return failed;
}
