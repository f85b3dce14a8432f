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
 * unit stride, so compilers vectorize them. Scalar C, no allocation
 * (the convolution gradients at the end take their scratch from the
 * GEMM's kept buffers).
 */
#include <string.h>

#include "nncrt.h"
#include "pool.h"

/* On x86 col2im and the 2x2 pooling loops also get an AVX2 build (target attribute,
 * as the GEMM kernels), used when nnc_isa() is avx2 or avx512: twice as
 * fast as the baseline SSE2 build, and the same results (compares and
 * selects, sums in the same order). */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define POOL_AVX2 1
#define BODY static inline __attribute__((always_inline))
#define AVX2 __attribute__((target("avx2")))
#else
#define BODY static inline
#endif

/* gcc's -O2 does not vectorize loops; these are loops over channels */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/* d[0..n) = s[0..n); short runs (a 3x3 window's row of a one-channel
 * image) without the set-up of a vectorized loop */
static void copy_run(float *restrict d, const float *restrict s, size_t n)
{
    switch (n) {
    case 4:
        d[3] = s[3];
        /* fall through */
    case 3:
        d[2] = s[2];
        /* fall through */
    case 2:
        d[1] = s[1];
        /* fall through */
    case 1:
        d[0] = s[0];
        /* fall through */
    case 0:
        return;
    default:
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* One row of a window (kw pixels of c floats from image row xr, from
 * column ix0) into d, zeros outside the image. */
BODY void window_row(float *d, const float *xr, int ix0, int kw, int w, size_t C)
{
    if (ix0 >= 0 && ix0 + kw <= w) {   /* the window's row: kw*c contiguous floats */
        copy_run(d, xr + (size_t)ix0 * C, (size_t)kw * C);
        return;
    }
    for (int kx = 0; kx < kw; kx++) {
        int ix = ix0 + kx;
        if (ix < 0 || ix >= w)
            memset(d + (size_t)kx * C, 0, sizeof(float) * C);
        else
            copy_run(d + (size_t)kx * C, xr + (size_t)ix * C, C);
    }
}

/* The window at (b, oy, ox) into d (one row of col), run by run, with
 * zeros outside the image. */
BODY void im2col_window(int h, int w, int c, int kh, int kw, int sh, int sw, int pt, int pl,
                        const float *x, int b, int oy, int ox, float *d)
{
    size_t C = (size_t)c, run = (size_t)kw * C;
    int ix0 = ox * sw - pl;
    for (int ky = 0; ky < kh; ky++, d += run) {
        int iy = oy * sh + ky - pt;
        if (iy < 0 || iy >= h) {
            memset(d, 0, sizeof(float) * run);
            continue;
        }
        window_row(d, x + ((size_t)b * (size_t)h + (size_t)iy) * (size_t)w * C, ix0, kw, w, C);
    }
}

/* Windows whose rows are runs of fewer than 4 floats (a first layer's
 * one-channel image: 3): each run copied as 4 floats, one vector move,
 * in order, so the extra floats are written over by the next run (the
 * last run's by the windows after it), where those windows follow in this
 * row of windows and the 4 floats read lie inside the image row; other
 * windows run by run. (Fashion-MNIST's 28x28 images, 3x3, batch 64: 310
 * -> 197 us on an AMD Zen 3 core.) */
#define SHORT_KH 8
static void im2col_short(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int pt,
                         int pl, int oh, int ow, const float *x, float *col)
{
    size_t C = (size_t)c, run = (size_t)kw * C, row = (size_t)kh * run;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++) {
            const float *xr[SHORT_KH];
            int rows_in = oy * sh - pt >= 0 && oy * sh - pt + kh <= h;
            float *d = col + ((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow * row;
            for (int ky = 0; ky < kh && rows_in; ky++)
                xr[ky] = x + ((size_t)b * (size_t)h + (size_t)(oy * sh - pt + ky)) * (size_t)w * C;
            for (int ox = 0; ox < ow; ox++, d += row) {
                int ix0 = ox * sw - pl;
                if (rows_in && ix0 >= 0 && (size_t)ix0 * C + 4 <= (size_t)w * C &&
                    (size_t)(kh - 1) * run + 4 <= (size_t)(ow - ox) * row) {
                    for (int ky = 0; ky < kh; ky++)
                        memcpy(d + (size_t)ky * run, xr[ky] + (size_t)ix0 * C, 4 * sizeof(float));
                } else {
                    im2col_window(h, w, c, kh, kw, sh, sw, pt, pl, x, b, oy, ox, d);
                }
            }
        }
}

static void im2col_seq(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int pt,
                       int pl, int oh, int ow, const float *x, float *col)
{
    size_t C = (size_t)c, run = (size_t)kw * C, row = (size_t)kh * run;
    if (run < 4 && kh <= SHORT_KH) {
        im2col_short(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, x, col);
        return;
    }
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++) {
            float *r0 = col + ((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow * row;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh + ky - pt;
                const float *xr = iy >= 0 && iy < h
                                      ? x + ((size_t)b * (size_t)h + (size_t)iy) * (size_t)w * C
                                      : NULL;
                for (int ox = 0; ox < ow; ox++) {
                    float *d = r0 + (size_t)ox * row + (size_t)ky * run;
                    int ix0 = ox * sw - pl;
                    if (xr == NULL)
                        memset(d, 0, sizeof(float) * run);
                    else
                        window_row(d, xr, ix0, kw, w, C);
                }
            }
        }
}

BODY void col2im_body(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int pt,
                      int pl, int oh, int ow, const float *col, float *x)
{
    size_t C = (size_t)c, run = (size_t)kw * C, row = (size_t)kh * run;
    memset(x, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * C);
    /* col read in order, one window after the other; each x element still
     * sums its windows by oy, then ox (ky and kx follow from them) */
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = col + ((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow * row;
            for (int ox = 0; ox < ow; ox++) {
                int ix0 = ox * sw - pl, inside = ix0 >= 0 && ix0 + kw <= w;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh + ky - pt;
                    if (iy < 0 || iy >= h)
                        continue;
                    float *xr = x + ((size_t)b * (size_t)h + (size_t)iy) * (size_t)w * C;
                    const float *restrict s = r0 + (size_t)ox * row + (size_t)ky * run;
                    if (inside) {
                        float *restrict d = xr + (size_t)ix0 * C;
                        for (size_t i = 0; i < run; i++)
                            d[i] += s[i];
                        continue;
                    }
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ix0 + kx;
                        if (ix < 0 || ix >= w)
                            continue;
                        float *restrict d = xr + (size_t)ix * C;
                        const float *restrict sk = s + (size_t)kx * C;
                        for (size_t ci = 0; ci < C; ci++)
                            d[ci] += sk[ci];
                    }
                }
            }
        }
}

#ifdef POOL_AVX2
static AVX2 void col2im_avx2(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int pt,
                             int pl, int oh, int ow, const float *col, float *x)
{
    col2im_body(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, col, x);
}

static int wide(void)
{
    const char *isa = nnc_isa();
    return !strcmp(isa, "avx2") || !strcmp(isa, "avx512");
}
#endif

static void col2im_seq(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int pt,
                       int pl, int oh, int ow, const float *col, float *x)
{
#ifdef POOL_AVX2
    if (wide()) {
        col2im_avx2(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, col, x);
        return;
    }
#endif
    col2im_body(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, col, x);
}

/* Pooling windows lie inside the image (valid padding). */
static const float *pixel(const float *x, int h, int w, int c, int b, int y, int xx)
{
    return x + (((size_t)b * (size_t)h + (size_t)y) * (size_t)w + (size_t)xx) * (size_t)c;
}

/* Channels go in blocks of at most POOL_CB, each inner loop one
 * unit-stride, branch-free pass over a block (vectorized). */
#define POOL_CB 64

/* 2x2 windows at stride 2, the usual pooling: each output row from two
 * input rows, one loop over all of a pixel pair's channels with the four
 * window elements in registers. The comparisons are the general path's,
 * in the same order. */
static int pool2x2(int kh, int kw, int sh, int sw)
{
    return kh == 2 && kw == 2 && sh == 2 && sw == 2;
}

BODY void maxpool2x2_body(int n, int h, int w, int c, int oh, int ow, const float *x, float *y)
{
    size_t C = (size_t)c, rs = (size_t)w * C;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + ((size_t)b * (size_t)h + (size_t)(2 * oy)) * rs;
            float *d = y + ((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow * C;
            for (int ox = 0; ox < ow; ox++, d += C) {
                const float *restrict p = r0 + (size_t)(2 * ox) * C, *restrict q = p + rs;
                float *restrict o = d;
                for (size_t i = 0; i < C; i++) {
                    float m = p[i], e1 = p[C + i], e2 = q[i], e3 = q[C + i];
                    m = e1 > m ? e1 : m;
                    m = e2 > m ? e2 : m;
                    o[i] = e3 > m ? e3 : m;
                }
            }
        }
}

static void maxpool2x2(int n, int h, int w, int c, int oh, int ow, const float *x, float *y)
{
    maxpool2x2_body(n, h, w, c, oh, ow, x, y);
}

#ifdef POOL_AVX2
static AVX2 void maxpool2x2_avx2(int n, int h, int w, int c, int oh, int ow, const float *x,
                                 float *y)
{
    maxpool2x2_body(n, h, w, c, oh, ow, x, y);
}

#endif

static void maxpool_seq(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int oh,
                        int ow, const float *x, float *y)
{
    size_t rs = (size_t)w * (size_t)c;
    if (pool2x2(kh, kw, sh, sw)) {
#ifdef POOL_AVX2
        if (wide()) {
            maxpool2x2_avx2(n, h, w, c, oh, ow, x, y);
            return;
        }
#endif
        maxpool2x2(n, h, w, c, oh, ow, x, y);
        return;
    }
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *restrict d = y + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                         (size_t)ox) * (size_t)c;
                const float *s0 = pixel(x, h, w, c, b, oy * sh, ox * sw);
                memcpy(d, s0, sizeof(float) * (size_t)c);
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        const float *restrict s = s0 + (size_t)ky * rs + (size_t)kx * (size_t)c;
                        for (int ci = 0; ci < c; ci++)
                            d[ci] = s[ci] > d[ci] ? s[ci] : d[ci];
                    }
            }
}

/* The gradient goes to the first maximum of each window in row-major
 * window order, as PyTorch's max_pool2d does: the window's maximum is
 * found first, then the window is walked again and the first element
 * equal to it takes the gradient (what is left of it: the rest see 0).
 * relu: x is a relu's output and the result is that relu's input
 * gradient too, so a window whose maximum is not positive passes none
 * (relu_back(maxpool_back(dy, x), x) in one pass). */
static void back_block(int cb, const float *s0, float *d0, const float *restrict g,
                       size_t rs, size_t cs, int kh, int kw, int tiles, int relu)
{
    float m[POOL_CB], left[POOL_CB];
    for (int j = 0; j < cb; j++)
        m[j] = s0[j];
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++) {
            const float *restrict s = s0 + (size_t)ky * rs + (size_t)kx * cs;
            for (int j = 0; j < cb; j++) {
                float sj = s[j], mj = m[j];
                m[j] = sj > mj ? sj : mj;
            }
        }
    for (int j = 0; j < cb; j++) {
        float gj = g[j], mj = m[j];
        left[j] = relu && !(mj > 0.0f) ? 0.0f : gj;
    }
    for (int ky = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++) {
            const float *restrict s = s0 + (size_t)ky * rs + (size_t)kx * cs;
            float *restrict d = d0 + (size_t)ky * rs + (size_t)kx * cs;
            /* selects on floats, which compilers vectorize */
            if (tiles)
                for (int j = 0; j < cb; j++) {
                    float sj = s[j], mj = m[j], lj = left[j];
                    float v = sj == mj ? lj : 0.0f, rest = sj == mj ? 0.0f : lj;
                    left[j] = rest;
                    d[j] = v;
                }
            else
                for (int j = 0; j < cb; j++) {
                    float sj = s[j], mj = m[j], lj = left[j], dj = d[j];
                    float v = sj == mj ? lj : 0.0f, rest = sj == mj ? 0.0f : lj;
                    left[j] = rest;
                    d[j] = dj + v;
                }
        }
}

/* One channel of a 2x2 window (e0..e3 in window order) and its output
 * gradient l: l goes to the first element equal to the maximum (with
 * relu, only if that maximum is positive), 0 to the others (integer
 * flags: compilers vectorize these). Returns what reached the window,
 * for the bias gradient's sum. */
BODY float win2x2(float e0, float e1, float e2, float e3, float l, const int relu,
                  float *g0, float *g1, float *g2, float *g3)
{
    float m = e0;
    m = e1 > m ? e1 : m;
    m = e2 > m ? e2 : m;
    m = e3 > m ? e3 : m;
    int h0 = e0 == m, h1 = (e1 == m) & !h0, h2 = (e2 == m) & !(h0 | h1);
    int h3 = (e3 == m) & !(h0 | h1 | h2), pass = !relu | (m > 0.0f);
    *g0 = h0 & pass ? l : 0.0f;
    *g1 = h1 & pass ? l : 0.0f;
    *g2 = h2 & pass ? l : 0.0f;
    *g3 = h3 & pass ? l : 0.0f;
    return (h0 | h1 | h2 | h3) & pass ? l : 0.0f;
}

/* The 2x2 stride-2 case in one pass per pixel pair: the maximum, then
 * what is left of the gradient handed along the window in order. */
BODY void back2x2_run(size_t C, const float *restrict x0, const float *restrict x1,
                      const float *restrict x2, const float *restrict x3,
                      const float *restrict g, float *restrict d0, float *restrict d1,
                      float *restrict d2, float *restrict d3, float *restrict sum,
                      const int relu, const int summing)
{
    for (size_t i = 0; i < C; i++) {
        float s = win2x2(x0[i], x1[i], x2[i], x3[i], g[i], relu, &d0[i], &d1[i], &d2[i],
                         &d3[i]);
        if (summing)
            sum[i] += s;
    }
}

/* back2x2_run in place: the gradient written over the window's x (dx ==
 * x), each element read before it is written (the same results); its
 * own loop because back2x2_run's pointers are restrict. */
BODY void back2x2_inplace_run(size_t C, float *restrict p0, float *restrict p1,
                              float *restrict p2, float *restrict p3, const float *restrict g,
                              float *restrict sum, const int relu, const int summing)
{
    for (size_t i = 0; i < C; i++) {
        float s = win2x2(p0[i], p1[i], p2[i], p3[i], g[i], relu, &p0[i], &p1[i], &p2[i],
                         &p3[i]);
        if (summing)
            sum[i] += s;
    }
}

/* Channels [c0, c1) of every pixel: each channel is summed into sum in
 * the same order whichever range it is in. dx may be x (in place). */
BODY void back2x2_body(int n, int h, int w, int c, int oh, int ow, const float *dy,
                       const float *x, float *dx, int relu, float *sum, size_t c0, size_t c1)
{
    size_t C = (size_t)c, rs = (size_t)w * C, CB = c1 - c0;
    float *s = sum ? sum + c0 : NULL;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++) {
            size_t r0 = ((size_t)b * (size_t)h + (size_t)(2 * oy)) * rs;
            const float *g = dy + ((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow * C + c0;
            for (int ox = 0; ox < ow; ox++, g += C) {
                size_t at = r0 + (size_t)(2 * ox) * C + c0;
                const float *x0 = x + at, *x2 = x0 + rs;
                float *d0 = dx + at, *d2 = d0 + rs;
                /* constant flags: four loops without branches */
                if (dx == x && relu && sum)
                    back2x2_inplace_run(CB, d0, d0 + C, d2, d2 + C, g, s, 1, 1);
                else if (dx == x && relu)
                    back2x2_inplace_run(CB, d0, d0 + C, d2, d2 + C, g, s, 1, 0);
                else if (dx == x && sum)
                    back2x2_inplace_run(CB, d0, d0 + C, d2, d2 + C, g, s, 0, 1);
                else if (dx == x)
                    back2x2_inplace_run(CB, d0, d0 + C, d2, d2 + C, g, s, 0, 0);
                else if (relu && sum)
                    back2x2_run(CB, x0, x0 + C, x2, x2 + C, g, d0, d0 + C, d2, d2 + C, s, 1, 1);
                else if (relu)
                    back2x2_run(CB, x0, x0 + C, x2, x2 + C, g, d0, d0 + C, d2, d2 + C, s, 1, 0);
                else if (sum)
                    back2x2_run(CB, x0, x0 + C, x2, x2 + C, g, d0, d0 + C, d2, d2 + C, s, 0, 1);
                else
                    back2x2_run(CB, x0, x0 + C, x2, x2 + C, g, d0, d0 + C, d2, d2 + C, s, 0, 0);
            }
        }
}

#ifdef POOL_AVX2
static AVX2 void back2x2_avx2(int n, int h, int w, int c, int oh, int ow, const float *dy,
                              const float *x, float *dx, int relu, float *sum, size_t c0,
                              size_t c1)
{
    back2x2_body(n, h, w, c, oh, ow, dy, x, dx, relu, sum, c0, c1);
}
#endif

static void back2x2(int n, int h, int w, int c, int oh, int ow, const float *dy,
                    const float *x, float *dx, int relu, float *sum, size_t c0, size_t c1)
{
#ifdef POOL_AVX2
    if (wide()) {
        back2x2_avx2(n, h, w, c, oh, ow, dy, x, dx, relu, sum, c0, c1);
        return;
    }
#endif
    back2x2_body(n, h, w, c, oh, ow, dy, x, dx, relu, sum, c0, c1);
}

static int channels_threaded(int n, int h, int w, int c, int oh, int ow, const float *dy,
                             const float *x, float *dx, int relu, float *sum);

static void back_sum(int n, int h, int w, int c, int kh, int kw, int sh, int sw, int oh,
                     int ow, const float *dy, const float *x, float *dx, int relu, float *sum,
                     int zero_sum)
{
    size_t rs = (size_t)w * (size_t)c;
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
    if (sum && zero_sum)
        memset(sum, 0, sizeof(float) * (size_t)c);
    if (pool2x2(kh, kw, sh, sw)) {
        /* each window's gradient lands once: sum what the windows pass */
        if (!sum || !channels_threaded(n, h, w, c, oh, ow, dy, x, dx, relu, sum))
            back2x2(n, h, w, c, oh, ow, dy, x, dx, relu, sum, 0, (size_t)c);
        return;
    }
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *g = dy + (((size_t)b * (size_t)oh + (size_t)oy) * (size_t)ow +
                                       (size_t)ox) * (size_t)c;
                size_t at0 = (((size_t)b * (size_t)h + (size_t)(oy * sh)) * (size_t)w +
                              (size_t)(ox * sw)) * (size_t)c;
                for (int c0 = 0; c0 < c; c0 += POOL_CB)
                    back_block(c - c0 < POOL_CB ? c - c0 : POOL_CB, x + at0 + c0,
                               dx + at0 + c0, g + c0, rs, (size_t)c, kh, kw, tiles, relu);
            }
    if (sum)
        for (size_t i = 0; i < (size_t)n * (size_t)h * (size_t)w; i++)
            for (int ci = 0; ci < c; ci++)
                sum[ci] += dx[i * (size_t)c + (size_t)ci];
}

/* ---- Threads ------------------------------------------------------------
 *
 * Large calls run on the thread pool (nncrt.h): im2col, col2im, pooling
 * and the pooling gradient by whole images, which are independent; the
 * pooling gradient that also sums the bias gradient by blocks of
 * channels, so that each channel's sum adds the same terms in the same
 * order. Every element sees the same operations for any thread count. */

/* Threads only for calls that touch at least this many floats. */
#define THREAD_FLOATS ((size_t)1 << 16)
/* Chunks of about this many floats (whole images, or 16 channels). */
#define CHUNK_FLOATS ((size_t)1 << 14)

enum { IM2COL, COL2IM, MAXPOOL, MAXPOOL_BACK, BACK2X2_SUM };

typedef struct Conv {
    int kind, n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, relu;
    const float *in, *in2;
    float *out, *sum;
} Conv;

static void conv_range(void *arg, size_t lo, size_t hi)
{
    const Conv *k = arg;
    size_t img = (size_t)k->h * (size_t)k->w * (size_t)k->c;
    size_t outs = (size_t)k->oh * (size_t)k->ow * (size_t)k->c;
    size_t cols = outs * (size_t)k->kh * (size_t)k->kw;
    int nb = (int)(hi - lo);

    switch (k->kind) {
    case IM2COL:
        im2col_seq(nb, k->h, k->w, k->c, k->kh, k->kw, k->sh, k->sw, k->pt, k->pl, k->oh,
                   k->ow, k->in + lo * img, k->out + lo * cols);
        break;
    case COL2IM:
        col2im_seq(nb, k->h, k->w, k->c, k->kh, k->kw, k->sh, k->sw, k->pt, k->pl, k->oh,
                   k->ow, k->in + lo * cols, k->out + lo * img);
        break;
    case MAXPOOL:
        maxpool_seq(nb, k->h, k->w, k->c, k->kh, k->kw, k->sh, k->sw, k->oh, k->ow,
                    k->in + lo * img, k->out + lo * outs);
        break;
    case MAXPOOL_BACK:
        back_sum(nb, k->h, k->w, k->c, k->kh, k->kw, k->sh, k->sw, k->oh, k->ow,
                 k->in + lo * outs, k->in2 + lo * img, k->out + lo * img, k->relu, NULL, 0);
        break;
    default:   /* BACK2X2_SUM: channels [lo, hi) of every image */
        back2x2(k->n, k->h, k->w, k->c, k->oh, k->ow, k->in, k->in2, k->out, k->relu,
                k->sum, lo, hi);
    }
}

/* The whole call on the caller: every image, or every channel block. */
static void conv_whole(void *arg)
{
    Conv *k = arg;
    conv_range(k, 0, (size_t)(k->kind == BACK2X2_SUM ? k->c : k->n));
}

/* The pool's name for this call site (pool.h): its kind and sizes. */
static uint64_t site_key(const Conv *k, size_t floats)
{
    return nnc_site_key((uint64_t)k->kind << 32 | (uint64_t)(unsigned)k->c, (uint64_t)k->n,
                        (uint64_t)k->h << 32 | (uint64_t)(unsigned)k->w, floats);
}

/* Runs k over its n images: on the pool if the call touches enough
 * floats, else on the caller. */
static void run_images(Conv *k, size_t floats)
{
    size_t n = (size_t)k->n, per = floats / (n > 0 ? n : 1);
    if (floats < THREAD_FLOATS || n < 2 || nnc_num_threads() < 2)
        conv_range(k, 0, n);
    else
        nnc_parallel_site(site_key(k, floats), n,
                          per >= CHUNK_FLOATS ? 1 : CHUNK_FLOATS / (per + 1) + 1, conv_range, k,
                          conv_whole, k);
}

static int channels_threaded(int n, int h, int w, int c, int oh, int ow, const float *dy,
                             const float *x, float *dx, int relu, float *sum)
{
    Conv k = {BACK2X2_SUM, n, h, w, c, 2, 2, 2, 2, 0, 0, oh, ow, relu, dy, x, dx, sum};
    if ((size_t)n * (size_t)h * (size_t)w * (size_t)c < THREAD_FLOATS || c < 32 ||
        nnc_num_threads() < 2)
        return 0;
    nnc_parallel_site(site_key(&k, (size_t)n * (size_t)h * (size_t)w * (size_t)c), (size_t)c,
                      16, conv_range, &k, conv_whole, &k);
    return 1;
}

void nnc_im2col(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *x, float *col)
{
    Conv k = {IM2COL, n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, 0, x, NULL, col, NULL};
    run_images(&k, (size_t)n * (size_t)oh * (size_t)ow * (size_t)kh * (size_t)kw * (size_t)c);
}

/* Rows [r0, r0 + nr) of im2col's matrix, row q being output position
 * (b, oy, ox) = (q / (oh ow), q / ow % oh, q % ow): the same values as
 * those rows of nnc_im2col's, in one thread (the caller's GEMM on them
 * takes the threads). */
void nnc_im2col_rows(int h, int w, int c, int kh, int kw, int sh, int sw, int pt, int pl,
                     int oh, int ow, const float *x, size_t r0, size_t nr, float *col)
{
    size_t row = (size_t)kh * (size_t)kw * (size_t)c, per = (size_t)oh * (size_t)ow;
    for (size_t q = r0; q < r0 + nr; q++)
        im2col_window(h, w, c, kh, kw, sh, sw, pt, pl, x, (int)(q / per),
                      (int)(q % per / (size_t)ow), (int)(q % (size_t)ow), col + (q - r0) * row);
}

void nnc_col2im(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *col, float *x)
{
    Conv k = {COL2IM, n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, 0, col, NULL, x, NULL};
    run_images(&k, (size_t)n * (size_t)oh * (size_t)ow * (size_t)kh * (size_t)kw * (size_t)c);
}

void nnc_maxpool(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                 int oh, int ow, const float *x, float *y)
{
    Conv k = {MAXPOOL, n, h, w, c, kh, kw, sh, sw, 0, 0, oh, ow, 0, x, NULL, y, NULL};
    run_images(&k, (size_t)n * (size_t)h * (size_t)w * (size_t)c);
}

void nnc_maxpool_back_sum(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                          int oh, int ow, const float *dy, const float *x, float *dx,
                          int relu, float *sum)
{
    Conv k = {MAXPOOL_BACK, n, h, w, c, kh, kw, sh, sw, 0, 0, oh, ow, relu, dy, x, dx, NULL};
    if (sum != NULL)   /* threaded by channels inside (channels_threaded) */
        back_sum(n, h, w, c, kh, kw, sh, sw, oh, ow, dy, x, dx, relu, sum, 1);
    else
        run_images(&k, (size_t)n * (size_t)h * (size_t)w * (size_t)c);
}

void nnc_maxpool_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                      int oh, int ow, const float *dy, const float *x, float *dx)
{
    nnc_maxpool_back_sum(n, h, w, c, kh, kw, sh, sw, oh, ow, dy, x, dx, 0, NULL);
}

void nnc_maxpool_relu_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                           int oh, int ow, const float *dy, const float *x, float *dx)
{
    nnc_maxpool_back_sum(n, h, w, c, kh, kw, sh, sw, oh, ow, dy, x, dx, 1, NULL);
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

/* ---- Block buffers of the pool's threads ---------------------------------- */

/* A buffer of floats for one pool thread's blocks: its own from the
 * GEMM's kept slots or, without memory for one, the caller's `shared`,
 * one thread at a time (*busy guards it). */
typedef struct TaskBuf {
    nnc_scratch s;
    float *p;
    int *busy;          /* non-NULL: holding the shared buffer */
} TaskBuf;

static TaskBuf taskbuf_get(size_t floats, float *shared, int *busy)
{
    TaskBuf t;

    t.s = nnc_scratch_get(floats);
    t.p = t.s.p, t.busy = NULL;
    if (t.p == NULL) {
        while (__atomic_exchange_n(busy, 1, __ATOMIC_ACQUIRE))
            ;
        t.p = shared, t.busy = busy;
    }
    return t;
}

static void taskbuf_put(TaskBuf t)
{
    if (t.busy != NULL)
        __atomic_store_n(t.busy, 0, __ATOMIC_RELEASE);
    else
        nnc_scratch_put(t.s);
}

/* ---- A convolution's weight gradient ------------------------------------ */

/* dW = dC^T col sums over every output position of the batch: a long k
 * (64 x 100 positions for the Fashion-MNIST CNN's second convolution) for
 * a small C (64 filters x 288). Cut into rectangles of C, each thread
 * packs all of k for a few tiles; here k is cut instead. The rows are
 * summed in blocks of rb (nnc --max-ram builds col a block at a time:
 * the same blocks either way), the blocks in at most WG_GROUPS groups of
 * consecutive blocks: each group's blocks accumulate in order into the
 * group's own sum, and the sums are added in group order at the end.
 * Groups depend on the shape alone and are independent of each other, so
 * they run on the pool with every element of dW seeing the same
 * operations on any number of threads. The groups' sums live in the
 * GEMM's buffer slots (nnc_scratch_get), at most WG_PART_FLOATS of them (a C too large for
 * that has tiles enough for rectangles: one group, each block's product
 * threaded as any GEMM; so too without memory for the sums, with other
 * roundings, as gemm_part's fallback). Measured on a Zen 3 VM (AVX2), 64 x 288 over
 * 6400 rows in blocks of 227: one thread 3.49 ms (blocks in one
 * sequence: 3.44), two threads 2.02 ms (rectangles of each block: 3.44). */
#define WG_GROUPS 8
#define WG_PART_FLOATS ((size_t)1 << 19)

typedef struct WGrad {
    size_t f, kk, rows, rb, nblocks, groups;
    const float *dc, *col;
    float *dw, *part;          /* group g > 0 sums into part + (g-1) f kk */
    /* col == NULL: rows of x's im2col, built a block at a time into a
     * buffer of each thread's (colbuf: the caller's, rb x kk floats) */
    const int *geom;           /* h w c kh kw sh sw pt pl oh ow */
    const float *x;
    float *colbuf;
    int *colbuf_busy;
} WGrad;

static size_t wg_groups(size_t f, size_t kk, size_t nblocks)
{
    size_t cap = 1 + WG_PART_FLOATS / (f * kk);
    size_t gr = nblocks < WG_GROUPS ? nblocks : WG_GROUPS;
    gr = gr < cap ? gr : cap;
    return gr < 1 ? 1 : gr;
}

static void wg_group(const WGrad *w, size_t s, float *colbuf)
{
    size_t b0 = s * w->nblocks / w->groups, b1 = (s + 1) * w->nblocks / w->groups, b;
    float *out = s == 0 ? w->dw : w->part + (s - 1) * w->f * w->kk;

    for (b = b0; b < b1; b++) {
        size_t r0 = b * w->rb, n = w->rows - r0 < w->rb ? w->rows - r0 : w->rb;
        const float *colp = w->col + r0 * w->kk;
        if (w->col == NULL) {
            const int *q = w->geom;
            nnc_im2col_rows(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10],
                            w->x, r0, n, colbuf);
            colp = colbuf;
        }
        nnc_sgemm(1, 0, (int)w->f, (int)w->kk, (int)n, 1.0f, w->dc + r0 * w->f, (int)w->f,
                  colp, (int)w->kk, b > b0 ? 1.0f : 0.0f, out, (int)w->kk);
    }
}

/* Groups [lo, hi) on a pool thread: with col built here, into a block
 * buffer of the thread's own, or without memory for one into the
 * caller's colbuf, one thread at a time. */
static void wg_range(void *arg, size_t lo, size_t hi)
{
    const WGrad *w = arg;
    TaskBuf b = {{NULL, NULL, -1}, NULL, NULL};

    if (w->col == NULL)
        b = taskbuf_get(w->rb * w->kk, w->colbuf, w->colbuf_busy);
    for (; lo < hi; lo++)
        wg_group(w, lo, b.p);
    if (w->col == NULL)
        taskbuf_put(b);
}

static void wg_whole(void *arg)
{
    const WGrad *w = arg;
    size_t s;

    for (s = 0; s < w->groups; s++)
        wg_group(w, s, w->colbuf);
}

/* dW += the groups' sums after the first, in order; one pass over dW. */
static void wg_sum(const WGrad *w)
{
    size_t n = w->f * w->kk, i, s;
    nnc_fpmode mode = nnc_fp_enter();

    for (i = 0; i < n; i++) {
        float v = w->dw[i];
        for (s = 1; s < w->groups; s++)
            v += w->part[(s - 1) * n + i];
        w->dw[i] = v;
    }
    nnc_fp_leave(mode);
}

static void wgrad_run(WGrad *w)
{
    nnc_scratch part = {NULL, NULL, -1};
    int busy = 0;

    w->colbuf_busy = &busy;
    w->nblocks = (w->rows + w->rb - 1) / w->rb;
    w->groups = wg_groups(w->f, w->kk, w->nblocks);
    if (w->groups > 1) {
        part = nnc_scratch_get((w->groups - 1) * w->f * w->kk);
        if (part.p == NULL)
            w->groups = 1;      /* the same sum, other roundings: as gemm_part */
        w->part = part.p;
    }
    if (w->groups > 1)
        nnc_parallel_site(nnc_site_key(0x77677261646bull + (w->col == NULL), w->f, w->kk,
                                       w->rows * 4096 + w->rb),
                          w->groups, 1, wg_range, w, wg_whole, w);
    else
        wg_whole(w);
    if (w->groups > 1)
        wg_sum(w);
    if (part.p != NULL)
        nnc_scratch_put(part);
}

void nnc_conv_wgrad(int f, int kk, size_t rows, size_t rb, const float *dc, const float *col,
                    float *dw)
{
    WGrad w;

    if (f <= 0 || kk <= 0 || rb == 0)
        return;
    memset(&w, 0, sizeof w);
    w.f = (size_t)f, w.kk = (size_t)kk, w.rows = rows, w.rb = rb;
    w.dc = dc, w.col = col, w.dw = dw;
    if (rows == 0) {
        memset(dw, 0, w.f * w.kk * sizeof *dw);
        return;
    }
    wgrad_run(&w);
}

void nnc_conv_wgrad_x(int f, size_t rows, size_t rb, const float *dc, int h, int w_, int c,
                      int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow,
                      const float *x, float *colbuf, float *dw)
{
    WGrad w;
    int geom[11];

    if (f <= 0 || c <= 0 || kh <= 0 || kw <= 0 || rb == 0)
        return;
    geom[0] = h, geom[1] = w_, geom[2] = c, geom[3] = kh, geom[4] = kw, geom[5] = sh;
    geom[6] = sw, geom[7] = pt, geom[8] = pl, geom[9] = oh, geom[10] = ow;
    memset(&w, 0, sizeof w);
    w.f = (size_t)f, w.kk = (size_t)kh * (size_t)kw * (size_t)c, w.rows = rows, w.rb = rb;
    w.dc = dc, w.dw = dw, w.geom = geom, w.x = x, w.colbuf = colbuf;
    if (rows == 0) {
        memset(dw, 0, w.f * w.kk * sizeof *dw);
        return;
    }
    wgrad_run(&w);
}

/* ---- A convolution's weight gradient through a 2x2 max pooling ---------- */

/* The gradient dC of a convolution's output below a 2x2, stride-2 max
 * pooling is 3/4 zeros: each window hands its gradient to one pixel
 * (win2x2's choice). When only the weight (and bias) gradient reads dC
 * (a first convolution: no input gradient), dW is summed window by
 * window, the window's four pixels' im2col rows scaled by their shares,
 *     dW^T[j][c] += g0[c] e0[j] + g1[c] e1[j] + g2[c] e2[j] + g3[c] e3[j],
 * the shares either computed from the pooling's input and output
 * gradient (then dC is never written: the Fashion-MNIST CNN's first
 * convolution wrote and read back 5.5 MB of it a step) or read from a
 * stored dC (when the pooling's gradient is its own kernel, as at -O0:
 * the same values, so the same bits), and the im2col rows read or built
 * (nnc --max-ram). Windows are summed in at most PW_GROUPS groups of
 * images fixed by the shape, each into a sum of its own, the sums added
 * in order: the same bits for any thread count. */
#define PW_GROUPS 8
#define PW_CB 32        /* channels of a window handled at once */

typedef struct PoolWGrad {
    size_t F, K, groups, per;  /* per: floats of a group's sum and rows */
    int n, h, w, oh, ow, relu;
    const float *dc;            /* stored dC, or NULL: from dy and x */
    const float *dy, *x, *col;  /* col NULL: rows built from img by geom */
    const int *geom;
    const float *img;
    float *part, *dw, *db;      /* part NULL: one group, straight into dw */
} PoolWGrad;

/* Channels [0, nc) of one window (x0, x2: the pooling input's top and
 * bottom rows at the window, or dC's; a0..a3: the pixels' im2col rows)
 * into acc (dW^T from the block's first channel: acc[j*sj + i*si]) and
 * db (the window's share, from x only). */
BODY void pw_window(const size_t nc, size_t K, size_t F, int stored, const float *x0,
                    const float *x2, const float *gy, const float *a0, const float *a1,
                    const float *a2, const float *a3, int relu, float *restrict g0,
                    float *restrict g1, float *restrict g2, float *restrict g3,
                    float *restrict db, float *acc, size_t sj, size_t si)
{
    if (stored) {
        for (size_t i = 0; i < nc; i++)
            g0[i] = x0[i], g1[i] = x0[F + i], g2[i] = x2[i], g3[i] = x2[F + i];
    } else if (db != NULL) {
        for (size_t i = 0; i < nc; i++)
            db[i] += win2x2(x0[i], x0[F + i], x2[i], x2[F + i], gy[i], relu, &g0[i], &g1[i],
                            &g2[i], &g3[i]);
    } else {
        for (size_t i = 0; i < nc; i++)
            (void)win2x2(x0[i], x0[F + i], x2[i], x2[F + i], gy[i], relu, &g0[i], &g1[i],
                         &g2[i], &g3[i]);
    }
    for (size_t j = 0; j < K; j++) {
        const float e0 = a0[j], e1 = a1[j], e2 = a2[j], e3 = a3[j];
        float *restrict d = acc + j * sj;
        if (si == 1)
            for (size_t i = 0; i < nc; i++)
                d[i] += g0[i] * e0 + g1[i] * e1 + g2[i] * e2 + g3[i] * e3;
        else
            for (size_t i = 0; i < nc; i++)
                d[i * si] += g0[i] * e0 + g1[i] * e1 + g2[i] * e2 + g3[i] * e3;
    }
}

/* The windows of images [b0, b1) into acc and db (zeroed here); rows:
 * 4 K floats for built im2col rows. */
BODY void pw_body(const PoolWGrad *p, int b0, int b1, float *acc, size_t sj, size_t si,
                  float *db, float *rows)
{
    const size_t F = p->F, K = p->K, W = (size_t)p->w;
    const float *src = p->dc != NULL ? p->dc : p->x;
    float g0[PW_CB], g1[PW_CB], g2[PW_CB], g3[PW_CB];

    for (size_t j = 0; j < K; j++)
        for (size_t i = 0; i < F; i++)
            acc[j * sj + i * si] = 0.0f;
    if (db != NULL)
        memset(db, 0, F * sizeof *db);
    for (int b = b0; b < b1; b++)
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                size_t r = ((size_t)b * (size_t)p->h + (size_t)(2 * oy)) * W + (size_t)(2 * ox);
                const float *x0 = src + r * F, *x2 = x0 + W * F, *a[4];
                const float *gy =
                    p->dy == NULL ? NULL
                                  : p->dy + (((size_t)b * (size_t)p->oh + (size_t)oy) *
                                                 (size_t)p->ow + (size_t)ox) * F;
                if (p->col != NULL) {
                    a[0] = p->col + r * K, a[1] = a[0] + K;
                    a[2] = a[0] + W * K, a[3] = a[2] + K;
                } else {
                    const int *q = p->geom;
                    for (size_t k = 0; k < 4; k++) {
                        im2col_window(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8],
                                      p->img, b, 2 * oy + (int)(k / 2), 2 * ox + (int)(k % 2),
                                      rows + k * K);
                        a[k] = rows + k * K;
                    }
                }
                for (size_t c0 = 0; c0 < F; c0 += PW_CB) {
                    float *dbc = db == NULL || p->dc != NULL ? NULL : db + c0;
                    if (F - c0 >= PW_CB && si == 1)   /* constant trip counts */
                        pw_window(PW_CB, K, F, p->dc != NULL, x0 + c0, x2 + c0,
                                  gy == NULL ? NULL : gy + c0, a[0], a[1], a[2], a[3], p->relu,
                                  g0, g1, g2, g3, dbc, acc + c0 * si, sj, 1);
                    else
                        pw_window(F - c0 < PW_CB ? F - c0 : PW_CB, K, F, p->dc != NULL, x0 + c0,
                                  x2 + c0, gy == NULL ? NULL : gy + c0, a[0], a[1], a[2], a[3],
                                  p->relu, g0, g1, g2, g3, dbc, acc + c0 * si, sj, si);
                }
            }
}

#ifdef POOL_AVX2
static AVX2 void pw_avx2(const PoolWGrad *p, int b0, int b1, float *acc, size_t sj, size_t si,
                         float *db, float *rows)
{
    pw_body(p, b0, b1, acc, sj, si, db, rows);
}
#endif

static void pw_run(const PoolWGrad *p, int b0, int b1, float *acc, size_t sj, size_t si,
                   float *db, float *rows)
{
    nnc_fpmode mode = nnc_fp_enter();

#ifdef POOL_AVX2
    if (wide())
        pw_avx2(p, b0, b1, acc, sj, si, db, rows);
    else
#endif
        pw_body(p, b0, b1, acc, sj, si, db, rows);
    nnc_fp_leave(mode);
}

static void pw_range(void *arg, size_t lo, size_t hi)
{
    const PoolWGrad *p = arg;

    for (; lo < hi; lo++) {
        float *acc = p->part + lo * p->per;
        pw_run(p, (int)(lo * (size_t)p->n / p->groups),
               (int)((lo + 1) * (size_t)p->n / p->groups), acc, p->F, 1, acc + p->K * p->F,
               acc + p->K * p->F + p->F);
    }
}

static void pw_whole(void *arg)
{
    pw_range(arg, 0, ((const PoolWGrad *)arg)->groups);
}

void nnc_conv_wgrad_pool(int f, int kk, int n, int h, int w, int oh, int ow, const float *dc,
                         const float *dy, const float *x, int relu, const float *col,
                         const int *geom, const float *img, float *dw, float *db)
{
    PoolWGrad p;
    nnc_scratch part;
    nnc_fpmode mode;
    size_t i, j, g;

    if (f <= 0 || kk <= 0 || h <= 0 || w <= 0 || (dc == NULL && (dy == NULL || x == NULL)) ||
        (col == NULL && (geom == NULL || img == NULL)))
        return;
    memset(&p, 0, sizeof p);
    p.F = (size_t)f, p.K = (size_t)kk;
    p.n = n > 0 ? n : 0, p.h = h, p.w = w, p.oh = oh > 0 ? oh : 0, p.ow = ow > 0 ? ow : 0;
    p.relu = relu != 0, p.dc = dc, p.dy = dc != NULL ? NULL : dy, p.x = x, p.col = col;
    p.geom = geom, p.img = img, p.dw = dw, p.db = dc != NULL ? NULL : db;
    p.per = p.K * p.F + p.F + 4 * p.K;
    p.groups = (size_t)p.n < PW_GROUPS ? (size_t)p.n : PW_GROUPS;
    if (p.groups * p.per > WG_PART_FLOATS)
        p.groups = WG_PART_FLOATS / p.per;
    if (p.groups < 1)
        p.groups = 1;
    for (;;) {  /* fewer groups without memory: other roundings (as nnc_conv_wgrad) */
        part = nnc_scratch_get(p.groups * p.per);
        if (part.p != NULL || p.groups == 1)
            break;
        p.groups = 1;
    }
    p.part = part.p;
    if (p.part == NULL) {   /* one group straight into dw (and db): no buffer but rows */
        float rows[4 * 1024];
        if (col == NULL && 4 * p.K > sizeof rows / sizeof rows[0])
            return;
        pw_run(&p, 0, p.n, dw, 1, p.K, p.db, rows);
        return;
    }
    if (p.groups > 1 && (size_t)p.n * (size_t)p.oh * (size_t)p.ow * p.F * p.K >= THREAD_FLOATS)
        nnc_parallel_site(nnc_site_key(0x706f6f6c7767ull + (uint64_t)(dc != NULL) +
                                           2u * (uint64_t)(col != NULL),
                                       p.F, p.K, (uint64_t)p.n << 32 | (uint64_t)(h * w)),
                          p.groups, 1, pw_range, &p, pw_whole, &p);
    else
        pw_whole(&p);
    mode = nnc_fp_enter();  /* the groups' sums in order */
    for (i = 0; i < p.F; i++)
        for (j = 0; j < p.K; j++) {
            float v = p.part[j * p.F + i];
            for (g = 1; g < p.groups; g++)
                v += p.part[g * p.per + j * p.F + i];
            dw[i * p.K + j] = v;
        }
    for (i = 0; p.db != NULL && i < p.F; i++) {
        float v = p.part[p.K * p.F + i];
        for (g = 1; g < p.groups; g++)
            v += p.part[g * p.per + p.K * p.F + i];
        p.db[i] = v;
    }
    nnc_fp_leave(mode);
    nnc_scratch_put(part);
}

/* ---- A convolution's input gradient ------------------------------------- */

/* dX = col2im(dC W) a chunk of images at a time (each chunk's product
 * fits L2 and is read back from it): the chunks are independent, so they
 * run on the pool, each with a product buffer of its own from the
 * buffer slots (the caller's prod when one thread does them all, or
 * without memory for one, one thread at a time). Each
 * chunk's product and col2im are the same calls as on one thread, so the
 * same bits. (Cut by rectangles inside each chunk instead, the col2im
 * after each product ran on one thread while the other waited.) */
typedef struct DGrad {
    int n, chunk, f, kk;
    const int *geom;           /* h w c kh kw sh sw pt pl oh ow */
    const float *dc, *wt;
    float *prod, *dx;
    int *prod_busy;
} DGrad;

static void dg_chunk(const DGrad *d, size_t t, float *prod)
{
    const int *q = d->geom;
    int c0 = (int)t * d->chunk, cn = d->n - c0 < d->chunk ? d->n - c0 : d->chunk;
    size_t rows = (size_t)q[9] * (size_t)q[10];     /* oh ow per image */
    size_t img = (size_t)q[0] * (size_t)q[1] * (size_t)q[2];

    nnc_sgemm(0, 0, cn * (int)rows, d->kk, d->f, 1.0f, d->dc + (size_t)c0 * rows * (size_t)d->f,
              d->f, d->wt, d->kk, 0.0f, prod, d->kk);
    nnc_col2im(cn, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], prod,
               d->dx + (size_t)c0 * img);
}

static void dg_range(void *arg, size_t lo, size_t hi)
{
    const DGrad *d = arg;
    size_t rows = (size_t)d->geom[9] * (size_t)d->geom[10];
    TaskBuf b = taskbuf_get((size_t)d->chunk * rows * (size_t)d->kk, d->prod, d->prod_busy);

    for (; lo < hi; lo++)
        dg_chunk(d, lo, b.p);
    taskbuf_put(b);
}

static void dg_whole(void *arg)
{
    const DGrad *d = arg;
    size_t t, chunks = (size_t)((d->n + d->chunk - 1) / d->chunk);

    for (t = 0; t < chunks; t++)
        dg_chunk(d, t, d->prod);
}

void nnc_conv_dgrad(int n, int chunk, int h, int w, int c, int kh, int kw, int sh, int sw,
                    int pt, int pl, int oh, int ow, int f, const float *dc, const float *wt,
                    float *prod, float *dx)
{
    DGrad d;
    int busy = 0;
    int geom[11];
    size_t chunks;

    if (n <= 0 || f <= 0 || c <= 0 || kh <= 0 || kw <= 0)
        return;
    if (chunk <= 0)
        chunk = 1;
    geom[0] = h, geom[1] = w, geom[2] = c, geom[3] = kh, geom[4] = kw, geom[5] = sh;
    geom[6] = sw, geom[7] = pt, geom[8] = pl, geom[9] = oh, geom[10] = ow;
    d.n = n, d.chunk = chunk, d.f = f, d.kk = kh * kw * c, d.geom = geom;
    d.dc = dc, d.wt = wt, d.prod = prod, d.dx = dx, d.prod_busy = &busy;
    chunks = (size_t)((n + chunk - 1) / chunk);
    if (chunks < 2) {
        dg_whole(&d);
        return;
    }
    nnc_parallel_site(nnc_site_key(0x64677261646bull, (size_t)n << 32 | (size_t)chunk,
                                   (size_t)h * (size_t)w * (size_t)c, (size_t)f * (size_t)d.kk),
                      chunks, 1, dg_range, &d, dg_whole, &d);
}

/* ---- A convolution's forward from its image ----------------------------- */

/* y = relu?(im2col(x) wt^T + bias), the im2col built a block of rb rows
 * at a time into a buffer that stays in cache (never stored whole), each
 * block's product and epilogue right after it (nnc_sgemm_bias). Blocks
 * are independent: they run on the pool, each thread building into a
 * block buffer of its own (the caller's colbuf on one thread, or when no
 * memory is left for one, one thread at a time). Each block is the same
 * calls as on one thread, so the same bits. */
typedef struct CFwd {
    const int *geom;           /* h w c kh kw sh sw pt pl oh ow */
    int f, kk, relu;
    size_t rows, rb;
    const float *x, *wt, *bias;
    float *colbuf, *y;
    int *colbuf_busy;
} CFwd;

static void cf_block(const CFwd *k, size_t b, float *buf)
{
    const int *q = k->geom;
    size_t r0 = b * k->rb, n = k->rows - r0 < k->rb ? k->rows - r0 : k->rb;

    nnc_im2col_rows(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], k->x,
                    r0, n, buf);
    nnc_sgemm_bias(0, 1, (int)n, k->f, k->kk, buf, k->kk, k->wt, k->kk, k->bias, k->relu,
                   k->y + r0 * (size_t)k->f, k->f);
}

static void cf_range(void *arg, size_t lo, size_t hi)
{
    const CFwd *k = arg;
    TaskBuf b = taskbuf_get(k->rb * (size_t)k->kk, k->colbuf, k->colbuf_busy);

    for (; lo < hi; lo++)
        cf_block(k, lo, b.p);
    taskbuf_put(b);
}

static void cf_whole(void *arg)
{
    const CFwd *k = arg;
    size_t b, blocks = (k->rows + k->rb - 1) / k->rb;

    for (b = 0; b < blocks; b++)
        cf_block(k, b, k->colbuf);
}

void nnc_conv_bias(int h, int w, int c, int kh, int kw, int sh, int sw, int pt, int pl, int oh,
                   int ow, int f, size_t rows, size_t rb, const float *x, const float *wt,
                   const float *bias, int relu, float *colbuf, float *y)
{
    CFwd k;
    int geom[11], busy = 0;
    size_t blocks;

    if (f <= 0 || c <= 0 || kh <= 0 || kw <= 0 || rb == 0 || rows == 0)
        return;
    geom[0] = h, geom[1] = w, geom[2] = c, geom[3] = kh, geom[4] = kw, geom[5] = sh;
    geom[6] = sw, geom[7] = pt, geom[8] = pl, geom[9] = oh, geom[10] = ow;
    k.geom = geom, k.f = f, k.kk = kh * kw * c, k.relu = relu, k.rows = rows, k.rb = rb;
    k.x = x, k.wt = wt, k.bias = bias, k.colbuf = colbuf, k.y = y, k.colbuf_busy = &busy;
    blocks = (rows + rb - 1) / rb;
    if (blocks < 2) {
        cf_whole(&k);
        return;
    }
    nnc_parallel_site(nnc_site_key(0x6366776462ull, (size_t)f << 32 | (size_t)k.kk, rows, rb),
                      blocks, 1, cf_range, &k, cf_whole, &k);
}
