/*
 * conv.c - sliding-window kernels over NHWC images: im2col and its
 * adjoint col2im (convolutions become one GEMM), max and average pooling
 * with their gradients.
 *
 * Layout: x is (n, h, w, c) row-major, the batch first and channels
 * last. A window is kh x kw at stride (sh, sw); pt, pl are the zero rows
 * and columns padded above and left ("same" padding); output positions
 * are (oh, ow). im2col writes one row per output position:
 *     col[(b, oy, ox), (ky, kx, ci)] = x[b, oy*sh + ky - pt, ox*sw + kx - pl, ci]
 * (0 outside the image), so with a kernel W stored (cout, kh, kw, cin)
 * a convolution is col x W^T. The innermost loops run over channels with
 * unit stride, so compilers vectorize them. Scalar C, no allocation.
 */
#include <string.h>

#include "nncrt.h"

/* gcc's -O2 does not vectorize loops; these are loops over channels */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

void nnc_im2col(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *x, float *col)
{
    size_t row = (size_t)kh * (size_t)kw * (size_t)c;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *r = col + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                  (size_t)ox) * row;
                int ix0 = ox * sw - pl;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh + ky - pt;
                    if (iy >= 0 && iy < h && ix0 >= 0 && ix0 + kw <= w) {
                        /* the window's row is kw*c contiguous floats */
                        float *d = r + (size_t)ky * (size_t)kw * (size_t)c;
                        const float *s = x + (((size_t)b * (size_t)h + (size_t)iy) * (size_t)w +
                                              (size_t)ix0) * (size_t)c;
                        for (int i = 0; i < kw * c; i++)
                            d[i] = s[i];
                        continue;
                    }
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ix0 + kx;
                        float *d = r + ((size_t)ky * (size_t)kw + (size_t)kx) * (size_t)c;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                            memset(d, 0, sizeof(float) * (size_t)c);
                            continue;
                        }
                        const float *s = x + (((size_t)b * (size_t)h + (size_t)iy) *
                                              (size_t)w + (size_t)ix) * (size_t)c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] = s[ci];
                    }
                }
            }
}

void nnc_col2im(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *col, float *x)
{
    size_t row = (size_t)kh * (size_t)kw * (size_t)c;
    memset(x, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *r = col + (((size_t)b * (size_t)oh + (size_t)oy) *
                                        (size_t)ow + (size_t)ox) * row;
                int ix0 = ox * sw - pl;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh + ky - pt;
                    if (iy < 0 || iy >= h)
                        continue;
                    if (ix0 >= 0 && ix0 + kw <= w) {
                        const float *s = r + (size_t)ky * (size_t)kw * (size_t)c;
                        float *d = x + (((size_t)b * (size_t)h + (size_t)iy) * (size_t)w +
                                        (size_t)ix0) * (size_t)c;
                        for (int i = 0; i < kw * c; i++)
                            d[i] += s[i];
                        continue;
                    }
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ox * sw + kx - pl;
                        if (ix < 0 || ix >= w)
                            continue;
                        const float *s = r + ((size_t)ky * (size_t)kw + (size_t)kx) * (size_t)c;
                        float *d = x + (((size_t)b * (size_t)h + (size_t)iy) * (size_t)w +
                                        (size_t)ix) * (size_t)c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] += s[ci];
                    }
                }
            }
}

/* Pooling windows lie inside the image (valid padding). */
static const float *pixel(const float *x, int h, int w, int c, int b, int y, int xx)
{
    return x + (((size_t)b * (size_t)h + (size_t)y) * (size_t)w + (size_t)xx) * (size_t)c;
}

void nnc_maxpool(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                 int oh, int ow, const float *x, float *y)
{
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *d = y + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                (size_t)ox) * (size_t)c;
                memcpy(d, pixel(x, h, w, c, b, oy * sh, ox * sw), sizeof(float) * (size_t)c);
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        const float *s = pixel(x, h, w, c, b, oy * sh + ky, ox * sw + kx);
                        for (int ci = 0; ci < c; ci++)
                            d[ci] = s[ci] > d[ci] ? s[ci] : d[ci];
                    }
            }
}

/* The gradient goes to the first maximum of each window in row-major
 * window order, as PyTorch's max_pool2d does: the window's maximum is
 * found first, then the window is walked again and the first element
 * equal to it takes the gradient. Channels are processed in blocks so
 * that every inner loop runs with unit stride and no branches. */
#define POOL_CB 64
void nnc_maxpool_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                      int oh, int ow, const float *dy, const float *x, float *dx)
{
    float m[POOL_CB];
    int done[POOL_CB];
    /* windows that tile the image (the usual stride = pool size) each own
     * their pixels: store instead of accumulating, and zero only the
     * rows and columns no window covers */
    int tiles = sh == kh && sw == kw;
    if (!tiles)
        memset(dx, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    else
        for (int b = 0; b < n; b++)
            for (int y = 0; y < h; y++) {
                int x0 = y < oh * kh ? ow * kw : 0;
                memset(dx + (((size_t)b * (size_t)h + (size_t)y) * (size_t)w + (size_t)x0) *
                                (size_t)c,
                       0, sizeof(float) * (size_t)(w - x0) * (size_t)c);
            }
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *g = dy + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                       (size_t)ox) * (size_t)c;
                for (int c0 = 0; c0 < c; c0 += POOL_CB) {
                    int cb = c - c0 < POOL_CB ? c - c0 : POOL_CB;
                    const float *s0 = pixel(x, h, w, c, b, oy * sh, ox * sw) + c0;
                    for (int j = 0; j < cb; j++) {
                        m[j] = s0[j];
                        done[j] = 0;
                    }
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            const float *s = pixel(x, h, w, c, b, oy * sh + ky, ox * sw + kx) + c0;
                            for (int j = 0; j < cb; j++)
                                m[j] = s[j] > m[j] ? s[j] : m[j];
                        }
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            size_t at = (((size_t)b * (size_t)h + (size_t)(oy * sh + ky)) *
                                         (size_t)w + (size_t)(ox * sw + kx)) * (size_t)c + (size_t)c0;
                            const float *s = x + at;
                            float *d = dx + at;
                            const float *gc = g + c0;
                            for (int j = 0; j < cb; j++) {
                                int hit = (s[j] == m[j]) & !done[j];
                                float gv = gc[j];
                                d[j] = (tiles ? 0.0f : d[j]) + (hit ? gv : 0.0f);
                                done[j] |= hit;
                            }
                        }
                }
            }
}

void nnc_avgpool(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                 int oh, int ow, const float *x, float *y)
{
    const float k = 1.0f / (float)(kh * kw);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *d = y + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                (size_t)ox) * (size_t)c;
                memset(d, 0, sizeof(float) * (size_t)c);
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        const float *s = pixel(x, h, w, c, b, oy * sh + ky, ox * sw + kx);
                        for (int ci = 0; ci < c; ci++)
                            d[ci] += s[ci];
                    }
                for (int ci = 0; ci < c; ci++)
                    d[ci] *= k;
            }
}

void nnc_avgpool_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                      int oh, int ow, const float *dy, float *dx)
{
    const float k = 1.0f / (float)(kh * kw);
    memset(dx, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *g = dy + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                       (size_t)ox) * (size_t)c;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        float *d = dx + (((size_t)b * (size_t)h + (size_t)(oy * sh + ky)) *
                                         (size_t)w + (size_t)(ox * sw + kx)) * (size_t)c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] += k * g[ci];
                    }
            }
}
