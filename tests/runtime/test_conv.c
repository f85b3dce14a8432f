/*
 * test_conv.c - the runtime's image kernels (conv.c) against plain
 * reference loops: max pooling's gradient with ties (first maximum in
 * window order wins), tiling and overlapping windows, odd sizes and
 * channel counts past the kernels' channel block; im2col and col2im as
 * adjoints (<col2im(c), x> = <c, im2col(x)>) with same padding and
 * strides; average pooling and its gradient; a convolution's weight and
 * input gradients (nnc_conv_wgrad, nnc_conv_dgrad) and its forward from the
 * images (nnc_conv_bias) on one and more threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"

static unsigned seed = 7;
static float frand(void)
{
    seed = seed * 1103515245u + 12345u;
    return (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* (b, y, x, c) of an (n, h, w, c) image */
#define AT(b, y, x, ci, h, w, c) ((((size_t)(b) * (h) + (y)) * (w) + (x)) * (c) + (ci))

static void maxpool_back_ref(int n, int h, int w, int c, int k, int s, int oh, int ow,
                             const float *dy, const float *x, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)n * h * w * c);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ci = 0; ci < c; ci++) {
                    int by = oy * s, bx = ox * s;
                    float m = x[AT(b, by, bx, ci, h, w, c)];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            float v = x[AT(b, oy * s + ky, ox * s + kx, ci, h, w, c)];
                            if (v > m) {
                                m = v;
                                by = oy * s + ky;
                                bx = ox * s + kx;
                            }
                        }
                    dx[AT(b, by, bx, ci, h, w, c)] += dy[AT(b, oy, ox, ci, oh, ow, c)];
                }
}

Test(conv, maxpool_back_matches_reference_with_ties)
{
    static const int cfg[][6] = {   /* n, h, w, c, k, stride */
        {2, 7, 5, 70, 2, 2}, {1, 6, 6, 3, 2, 2}, {2, 7, 7, 5, 3, 2}, {1, 5, 5, 1, 2, 1},
        {3, 4, 9, 65, 3, 3},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int n = cfg[t][0], h = cfg[t][1], w = cfg[t][2], c = cfg[t][3], k = cfg[t][4];
        int s = cfg[t][5], oh = (h - k) / s + 1, ow = (w - k) / s + 1;
        size_t nx = (size_t)n * h * w * c, ny = (size_t)n * oh * ow * c;
        float *x = malloc(4 * nx), *dx = malloc(4 * nx), *dr = malloc(4 * nx);
        float *dy = malloc(4 * ny), *y = malloc(4 * ny);
        for (size_t i = 0; i < nx; i++) {
            x[i] = (float)(rand() % 5);  /* many ties */
            dx[i] = NAN;                 /* must be overwritten */
        }
        for (size_t i = 0; i < ny; i++)
            dy[i] = frand();
        nnc_maxpool_back(n, h, w, c, k, k, s, s, oh, ow, dy, x, dx);
        maxpool_back_ref(n, h, w, c, k, s, oh, ow, dy, x, dr);
        for (size_t i = 0; i < nx; i++)
            cr_assert_eq(dx[i], dr[i], "case %zu element %zu: %g, want %g", t, i, dx[i], dr[i]);
        /* through a relu whose output x is: windows with maximum 0 pass
         * nothing (x == 0 where the gradient went) */
        for (size_t i = 0; i < nx; i++)
            dx[i] = NAN;
        nnc_maxpool_relu_back(n, h, w, c, k, k, s, s, oh, ow, dy, x, dx);
        for (size_t i = 0; i < nx; i++) {
            float want = x[i] > 0 ? dr[i] : 0.0f;
            cr_assert_eq(dx[i], want, "relu case %zu element %zu: %g, want %g", t, i, dx[i],
                         want);
        }
        /* with the per-channel sums of dx (a bias gradient) */
        float *sum = malloc(4 * (size_t)c);
        for (int relu = 0; relu < 2; relu++) {
            nnc_maxpool_back_sum(n, h, w, c, k, k, s, s, oh, ow, dy, x, dx, relu, sum);
            for (int ci = 0; ci < c; ci++) {
                double want = 0, mag = 0;
                for (size_t i = (size_t)ci; i < nx; i += (size_t)c) {
                    float v = relu && !(x[i] > 0) ? 0.0f : dr[i];
                    cr_assert_eq(dx[i], v, "sum case %zu relu %d element %zu", t, relu, i);
                    want += v;
                    mag += fabs(v);
                }
                cr_assert(fabs(sum[ci] - want) <= 1e-6 * mag + 1e-30,
                          "case %zu relu %d channel %d: sum %g, want %g", t, relu, ci,
                          sum[ci], want);
            }
        }
        free(sum);
        nnc_maxpool(n, h, w, c, k, k, s, s, oh, ow, x, y);
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    for (int ci = 0; ci < c; ci++) {
                        float m = -INFINITY;
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                                m = fmaxf(m, x[AT(b, oy * s + ky, ox * s + kx, ci, h, w, c)]);
                        cr_assert_eq(y[AT(b, oy, ox, ci, oh, ow, c)], m);
                    }
        free(x), free(dx), free(dr), free(dy), free(y);
    }
}

Test(conv, im2col_and_col2im_are_adjoint)
{
    /* n, h, w, c, kh, kw, sh, sw, pt, pl: same padding (3x3, stride 1 and 2) and valid */
    static const int cfg[][10] = {
        {2, 5, 6, 3, 3, 3, 1, 1, 1, 1}, {1, 7, 5, 2, 3, 3, 2, 2, 1, 1}, {2, 6, 6, 4, 2, 3, 2, 1, 0, 0},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], h = g[1], w = g[2], c = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
        int pt = g[8], pl = g[9];
        int oh = (h + 2 * pt - kh) / sh + 1, ow = (w + 2 * pl - kw) / sw + 1;
        size_t nx = (size_t)n * h * w * c, nc = (size_t)n * oh * ow * kh * kw * c;
        float *x = malloc(4 * nx), *x2 = malloc(4 * nx), *col = malloc(4 * nc), *c2 = malloc(4 * nc);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand();
        for (size_t i = 0; i < nc; i++)
            col[i] = frand();
        nnc_im2col(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, x, c2);
        nnc_col2im(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, col, x2);
        double a = 0, b = 0;
        for (size_t i = 0; i < nc; i++)
            a += (double)col[i] * c2[i];
        for (size_t i = 0; i < nx; i++)
            b += (double)x2[i] * x[i];
        cr_assert(fabs(a - b) <= 1e-4 * (1 + fabs(a)), "case %zu: %g vs %g", t, a, b);
        /* one element by hand: output (0, 0), window (ky, kx) = (pt, pl) is x[0, 0, 0, :] */
        for (int ci = 0; ci < c; ci++)
            cr_assert_eq(c2[((size_t)pt * kw + pl) * c + ci], x[ci]);
        free(x), free(x2), free(col), free(c2);
    }
}

Test(conv, avgpool_and_its_gradient)
{
    int n = 2, h = 5, w = 4, c = 3, k = 2, s = 2, oh = 2, ow = 2;
    float x[2 * 5 * 4 * 3], y[2 * 2 * 2 * 3], dy[2 * 2 * 2 * 3], dx[2 * 5 * 4 * 3];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = frand();
    for (size_t i = 0; i < sizeof dy / sizeof dy[0]; i++)
        dy[i] = frand();
    nnc_avgpool(n, h, w, c, k, k, s, s, oh, ow, x, y);
    nnc_avgpool_back(n, h, w, c, k, k, s, s, oh, ow, dy, dx);
    for (int b = 0; b < n; b++)
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < w; xx++)
                for (int ci = 0; ci < c; ci++) {
                    int in = yy / s < oh && xx / s < ow;
                    float want = in ? dy[AT(b, yy / s, xx / s, ci, oh, ow, c)] / 4 : 0;
                    cr_assert_float_eq(dx[AT(b, yy, xx, ci, h, w, c)], want, 1e-6);
                }
    for (int ci = 0; ci < c; ci++) {
        float m = (x[AT(1, 2, 2, ci, h, w, c)] + x[AT(1, 2, 3, ci, h, w, c)] +
                   x[AT(1, 3, 2, ci, h, w, c)] + x[AT(1, 3, 3, ci, h, w, c)]) / 4;
        cr_assert_float_eq(y[AT(1, 1, 1, ci, oh, ow, c)], m, 1e-6);
    }
}

/* A 2x2 stride-2 pooling gradient written over its input (dx == x, as
 * the memory plan does when x dies there): the out-of-place results, for
 * plain, relu and bias-summing kernels, threaded (many channels) or not. */
Test(conv, maxpool_back_2x2_in_place)
{
    static const int cfg[][4] = {{2, 6, 6, 3}, {3, 8, 10, 70}, {2, 7, 5, 40}}; /* n, h, w, c */
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int n = cfg[t][0], h = cfg[t][1], w = cfg[t][2], c = cfg[t][3], oh = h / 2, ow = w / 2;
        size_t nx = (size_t)n * h * w * c, ny = (size_t)n * oh * ow * c;
        float *x = malloc(4 * nx), *in = malloc(4 * nx), *want = malloc(4 * nx);
        float *dy = malloc(4 * ny), *sw = malloc(4 * (size_t)c), *si = malloc(4 * (size_t)c);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)(rand() % 5) - 1.0f;  /* ties, and maxima not positive */
        for (size_t i = 0; i < ny; i++)
            dy[i] = frand();
        for (int relu = 0; relu < 2; relu++)
            for (int summing = 0; summing < 2; summing++) {
                memcpy(in, x, 4 * nx);
                nnc_maxpool_back_sum(n, h, w, c, 2, 2, 2, 2, oh, ow, dy, x, want, relu,
                                     summing ? sw : NULL);
                nnc_maxpool_back_sum(n, h, w, c, 2, 2, 2, 2, oh, ow, dy, in, in, relu,
                                     summing ? si : NULL);
                for (size_t i = 0; i < nx; i++)
                    cr_assert_eq(in[i], want[i], "case %zu relu %d sum %d element %zu: %g, "
                                 "want %g", t, relu, summing, i, in[i], want[i]);
                for (int ci = 0; summing && ci < c; ci++)
                    cr_assert_eq(si[ci], sw[ci], "case %zu relu %d channel %d", t, relu, ci);
            }
        free(x), free(in), free(want), free(dy), free(sw), free(si);
    }
}

/* Any block of im2col's rows, across image boundaries, with padding and
 * strides: those rows of nnc_im2col's matrix. */
Test(conv, im2col_rows_are_rows_of_im2col)
{
    static const int cfg[][10] = {  /* n, h, w, c, kh, kw, sh, sw, pt, pl */
        {3, 5, 6, 3, 3, 3, 1, 1, 1, 1}, {2, 7, 5, 2, 3, 3, 2, 2, 1, 1}, {2, 13, 13, 32, 3, 3, 1, 1, 0, 0},
        {4, 6, 6, 1, 2, 3, 2, 1, 0, 0}, {2, 7, 6, 1, 3, 3, 1, 1, 1, 1}, {2, 5, 4, 1, 1, 1, 1, 1, 0, 0},
        {2, 9, 9, 1, 3, 3, 1, 1, 0, 0}, {1, 6, 7, 1, 3, 2, 1, 2, 1, 0},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], h = g[1], w = g[2], c = g[3], kh = g[4], kw = g[5], sh = g[6], sw = g[7];
        int pt = g[8], pl = g[9];
        int oh = (h + 2 * pt - kh) / sh + 1, ow = (w + 2 * pl - kw) / sw + 1;
        size_t nx = (size_t)n * h * w * c, k = (size_t)kh * kw * c;
        size_t rows = (size_t)n * oh * ow;
        float *x = malloc(4 * nx), *col = malloc(4 * rows * k), *blk = malloc(4 * rows * k);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand();
        nnc_im2col(n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, x, col);
        size_t sizes[] = {1, 7, (size_t)oh * ow + 3, rows};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (size_t r0 = 0; r0 < rows; r0 += sizes[s]) {
                size_t nr = rows - r0 < sizes[s] ? rows - r0 : sizes[s];
                for (size_t i = 0; i < nr * k; i++)
                    blk[i] = NAN;
                nnc_im2col_rows(h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, x, r0, nr, blk);
                cr_assert(memcmp(blk, col + r0 * k, 4 * nr * k) == 0,
                          "case %zu: rows [%zu, %zu) differ", t, r0, r0 + nr);
            }
        free(x), free(col), free(blk);
    }
}

/* nnc_conv_wgrad: dW = dC^T col summed in row blocks grouped as the
 * runtime documents: against a double reference within rounding, and in
 * bits against the same groups computed here with nnc_sgemm on one
 * thread, and against nnc_conv_wgrad_x (col built a block at a time), on
 * 1 and 3 threads; a C too large for the groups' buffers sums its blocks
 * in one sequence. */
/* dw (f x kk) against dc^T col in double, every fstep-th filter and
 * jstep-th column, within 1e-6 of the terms' magnitudes. */
static void dw_near_reference(size_t t, int f, int kk, size_t rows, const float *dc,
                              const float *col, const float *dw, int fstep, int jstep)
{
    for (int fi = 0; fi < f; fi += fstep)
        for (int j = 0; j < kk; j += jstep) {
            double s = 0, mag = 0;
            for (size_t r = 0; r < rows; r++) {
                s += (double)dc[r * f + fi] * col[r * kk + j];
                mag += fabs((double)dc[r * f + fi] * col[r * kk + j]);
            }
            cr_assert(fabs(dw[(size_t)fi * kk + j] - s) <= 1e-6 * mag + 1e-6,
                      "case %zu: dw[%d][%d] = %g, reference %g", t, fi, j,
                      dw[(size_t)fi * kk + j], s);
        }
}

static void wgrad_groups_ref(int f, int kk, size_t rows, size_t rb, const float *dc,
                             const float *col, float *dw)
{
    size_t nblocks = (rows + rb - 1) / rb, groups = nblocks < 8 ? nblocks : 8;
    size_t cap = 1 + ((size_t)1 << 19) / ((size_t)f * (size_t)kk), n = (size_t)f * (size_t)kk;
    float *part = malloc(4 * n);
    if (groups > cap)
        groups = cap;
    for (size_t s = 0; s < groups; s++) {
        size_t b0 = s * nblocks / groups, b1 = (s + 1) * nblocks / groups;
        float *out = s == 0 ? dw : part;
        for (size_t b = b0; b < b1; b++) {
            size_t r0 = b * rb, nr = rows - r0 < rb ? rows - r0 : rb;
            nnc_sgemm(1, 0, f, kk, (int)nr, 1.0f, dc + r0 * (size_t)f, f, col + r0 * (size_t)kk,
                      kk, b > b0 ? 1.0f : 0.0f, out, kk);
        }
        if (s > 0)
            for (size_t i = 0; i < n; i++)
                dw[i] += part[i];
    }
    free(part);
}

Test(conv, weight_gradient_in_groups)
{
    static const int cfg[][9] = {  /* n, h, w, c, kh, kw, f, rb, threads */
        {64, 12, 12, 32, 3, 3, 64, 227, 3}, {5, 9, 7, 3, 3, 3, 16, 7, 1},
        {64, 28, 28, 1, 3, 3, 32, 7281, 3}, {2, 6, 6, 2, 2, 2, 3, 1000, 3},
        {4, 18, 18, 256, 3, 3, 256, 28, 3},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], h = g[1], w = g[2], c = g[3], kh = g[4], kw = g[5], f = g[6];
        int oh = h - kh + 1, ow = w - kw + 1, kk = kh * kw * c;
        size_t rb = (size_t)g[7], rows = (size_t)n * oh * ow, nw = (size_t)f * kk;
        float *x = malloc(4 * (size_t)n * h * w * c), *col = malloc(4 * rows * kk);
        float *dc = malloc(4 * rows * f), *dw = malloc(4 * nw), *ref = malloc(4 * nw);
        float *dwx = malloc(4 * nw), *blk = malloc(4 * rb * kk);
        for (size_t i = 0; i < (size_t)n * h * w * c; i++)
            x[i] = frand();
        for (size_t i = 0; i < rows * f; i++)
            dc[i] = frand();
        nnc_im2col(n, h, w, c, kh, kw, 1, 1, 0, 0, oh, ow, x, col);
        nnc_set_num_threads(1);
        wgrad_groups_ref(f, kk, rows, rb, dc, col, ref);
        for (int i = 0; i < 2; i++) {
            nnc_set_num_threads(i ? g[8] : 1);
            for (int rep = 0; rep < 3; rep++) {   /* the pool's choices settle */
                for (size_t j = 0; j < nw; j++)
                    dw[j] = dwx[j] = NAN;
                nnc_conv_wgrad(f, kk, rows, rb, dc, col, dw);
                nnc_conv_wgrad_x(f, rows, rb, dc, h, w, c, kh, kw, 1, 1, 0, 0, oh, ow, x, blk,
                                 dwx);
                cr_assert(memcmp(dw, ref, 4 * nw) == 0, "case %zu, %d threads: bits differ",
                          t, i ? g[8] : 1);
                cr_assert(memcmp(dwx, ref, 4 * nw) == 0,
                          "case %zu, %d threads: built im2col gives other bits", t, i ? g[8] : 1);
            }
        }
        dw_near_reference(t, f, kk, rows, dc, col, dw, f / 3 + 1, kk / 5 + 1);
        free(x), free(col), free(dc), free(dw), free(ref), free(dwx), free(blk);
    }
    nnc_set_num_threads(0);
}

/* nnc_conv_wgrad_pool: a convolution's weight gradient through a 2x2 max
 * pooling, window by window: the same bits with dC stored or computed
 * from the pooling's input and gradient, with the im2col saved or built,
 * on 1 and 3 threads (with and without ReLU, odd sizes whose last row or
 * column no window reads, ties, channels past a block of 32, padding);
 * dW and the bias gradient against dC^T col and dC's sums in double,
 * dC from nnc_maxpool_back_sum (checked against maxpool_back_ref above). */
Test(conv, weight_gradient_through_pooling)
{
    static const int cfg[][7] = {  /* n, xh, xw, f, c, relu, pad */
        {64, 28, 28, 32, 1, 1, 0}, {5, 13, 15, 20, 3, 0, 1}, {3, 9, 8, 70, 2, 1, 0},
        {1, 4, 4, 1, 1, 0, 0}, {9, 10, 10, 64, 32, 1, 1},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], xh = g[1], xw = g[2], f = g[3], c = g[4], relu = g[5], pad = g[6];
        int h = pad ? xh : xh - 2, w = pad ? xw : xw - 2, oh = h / 2, ow = w / 2, kk = 9 * c;
        int geom[11] = {xh, xw, c, 3, 3, 1, 1, pad, pad, h, w};
        size_t rows = (size_t)n * h * w, nw = (size_t)f * kk;
        float *img = malloc(4 * (size_t)n * xh * xw * c), *x = malloc(4 * rows * f);
        float *dy = malloc(4 * (size_t)n * oh * ow * f), *col = malloc(4 * rows * kk);
        float *dc = malloc(4 * rows * f), *dw = malloc(4 * nw), *dw1 = malloc(4 * nw);
        float *db = malloc(4 * (size_t)f), *db1 = malloc(4 * (size_t)f);
        for (size_t i = 0; i < (size_t)n * xh * xw * c; i++)
            img[i] = frand();
        for (size_t i = 0; i < rows * f; i++)   /* ties and negatives */
            x[i] = i % 5 == 0 ? 0.25f : frand();
        for (size_t i = 0; i < (size_t)n * oh * ow * f; i++)
            dy[i] = frand();
        nnc_im2col(n, xh, xw, c, 3, 3, 1, 1, pad, pad, h, w, img, col);
        nnc_set_num_threads(1);
        nnc_maxpool_back_sum(n, h, w, f, 2, 2, 2, 2, oh, ow, dy, x, dc, relu, NULL);
        for (int i = 0; i < 2; i++) {
            nnc_set_num_threads(i ? 3 : 1);
            for (int mode = 0; mode < 4; mode++) {
                const int stored = mode & 1, built = mode >> 1;
                for (size_t j = 0; j < nw; j++)
                    dw[j] = NAN;
                nnc_conv_wgrad_pool(f, kk, n, h, w, oh, ow, stored ? dc : NULL, dy, x, relu,
                                    built ? NULL : col, geom, img, dw, db);
                if (i == 0 && mode == 0) {
                    memcpy(dw1, dw, 4 * nw);
                    memcpy(db1, db, 4 * (size_t)f);
                }
                cr_assert(memcmp(dw, dw1, 4 * nw) == 0,
                          "case %zu, %d threads, dC %s, im2col %s: other bits", t, i ? 3 : 1,
                          stored ? "stored" : "computed", built ? "built" : "saved");
                if (!stored)
                    cr_assert(memcmp(db, db1, 4 * (size_t)f) == 0,
                              "case %zu, %d threads: bias gradient bits differ", t, i ? 3 : 1);
            }
        }
        for (int fi = 0; fi < f; fi++) {
            double sb = 0, mb = 0;
            for (size_t r = 0; r < rows; r++)
                sb += dc[r * f + fi], mb += fabs(dc[r * f + fi]);
            cr_assert(fabs(db1[fi] - sb) <= 1e-6 * mb + 1e-6, "case %zu: db[%d] = %g, reference %g",
                      t, fi, db1[fi], sb);
        }
        dw_near_reference(t, f, kk, rows, dc, col, dw1, 1, 1);
        free(img), free(x), free(dy), free(col), free(dc), free(dw), free(dw1), free(db);
        free(db1);
    }
    nnc_set_num_threads(0);
}

/* nnc_conv_dgrad: col2im(dC W) by chunks of images on the pool, the bits
 * of nnc_sgemm + nnc_col2im per chunk, on 1 and 3 threads. */
Test(conv, input_gradient_by_chunks)
{
    static const int cfg[][11] = {  /* n, h, w, c, kh, kw, s, p, f, chunk, threads */
        {64, 13, 13, 32, 3, 3, 1, 0, 64, 2, 3}, {5, 7, 6, 3, 3, 3, 2, 1, 4, 2, 3},
        {3, 5, 5, 2, 2, 2, 1, 0, 5, 4, 1},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], h = g[1], w = g[2], c = g[3], kh = g[4], kw = g[5], s = g[6], p = g[7];
        int f = g[8], ch = g[9], kk = kh * kw * c;
        int oh = (h + 2 * p - kh) / s + 1, ow = (w + 2 * p - kw) / s + 1;
        size_t img = (size_t)h * w * c, rows = (size_t)oh * ow;
        float *dc = malloc(4 * n * rows * f), *wt = malloc(4 * (size_t)f * kk);
        float *prod = malloc(4 * ch * rows * kk), *ref = malloc(4 * n * img);
        float *dx = malloc(4 * n * img);
        for (size_t i = 0; i < n * rows * f; i++)
            dc[i] = frand();
        for (size_t i = 0; i < (size_t)f * kk; i++)
            wt[i] = frand();
        nnc_set_num_threads(1);
        for (int c0 = 0; c0 < n; c0 += ch) {
            int cn = n - c0 < ch ? n - c0 : ch;
            nnc_sgemm(0, 0, cn * (int)rows, kk, f, 1.0f, dc + (size_t)c0 * rows * f, f, wt, kk,
                      0.0f, prod, kk);
            nnc_col2im(cn, h, w, c, kh, kw, s, s, p, p, oh, ow, prod, ref + (size_t)c0 * img);
        }
        for (int i = 0; i < 2; i++) {
            nnc_set_num_threads(i ? g[10] : 1);
            for (int rep = 0; rep < 3; rep++) {
                for (size_t j = 0; j < n * img; j++)
                    dx[j] = NAN;
                nnc_conv_dgrad(n, ch, h, w, c, kh, kw, s, s, p, p, oh, ow, f, dc, wt, prod, dx);
                cr_assert(memcmp(dx, ref, 4 * n * img) == 0, "case %zu, %d threads: bits differ",
                          t, i ? g[10] : 1);
            }
        }
        free(dc), free(wt), free(prod), free(ref), free(dx);
    }
    nnc_set_num_threads(0);
}

/* nnc_conv_bias: the forward from the images, im2col blocks built on the
 * pool, gives the bits of the whole im2col multiplied by blocks
 * (nnc_sgemm) then + bias and ReLU per element, on 1 and 3 threads. */
Test(conv, forward_from_images)
{
    static const int cfg[][10] = {  /* n, h, w, c, k, s, p, f, rb, relu */
        {64, 13, 13, 32, 3, 1, 0, 64, 227, 1}, {5, 9, 7, 3, 3, 2, 1, 8, 7, 0},
        {3, 6, 6, 4, 2, 1, 0, 5, 1000, 1}, {2, 5, 5, 2, 3, 1, 1, 3, 2, 1},
    };
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *g = cfg[t];
        int n = g[0], h = g[1], w = g[2], c = g[3], k = g[4], s = g[5], p = g[6], f = g[7];
        int rb = g[8], relu = g[9], kk = k * k * c;
        int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        size_t rows = (size_t)n * oh * ow, nx = (size_t)n * h * w * c;
        float *x = malloc(4 * nx), *wt = malloc(4 * (size_t)f * kk), *bias = malloc(4 * (size_t)f);
        float *col = malloc(4 * rows * kk), *ref = malloc(4 * rows * f), *y = malloc(4 * rows * f);
        float *blk = malloc(4 * (size_t)rb * kk);
        for (size_t i = 0; i < nx; i++)
            x[i] = frand();
        for (size_t i = 0; i < (size_t)f * kk; i++)
            wt[i] = frand();
        for (int i = 0; i < f; i++)
            bias[i] = frand();
        nnc_set_num_threads(1);
        nnc_im2col(n, h, w, c, k, k, s, s, p, p, oh, ow, x, col);
        for (size_t r0 = 0; r0 < rows; r0 += (size_t)rb) {
            size_t nr = rows - r0 < (size_t)rb ? rows - r0 : (size_t)rb;
            nnc_sgemm(0, 1, (int)nr, f, kk, 1.0f, col + r0 * kk, kk, wt, kk, 0.0f, ref + r0 * f, f);
        }
        for (size_t i = 0; i < rows * f; i++) {
            float v = ref[i] + bias[i % f];
            ref[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
        }
        for (int i = 0; i < 2; i++) {
            nnc_set_num_threads(i ? 3 : 1);
            for (int rep = 0; rep < 3; rep++) {
                for (size_t j = 0; j < rows * f; j++)
                    y[j] = NAN;
                nnc_conv_bias(h, w, c, k, k, s, s, p, p, oh, ow, f, rows, (size_t)rb, x, wt, bias,
                              relu, blk, y);
                cr_assert(memcmp(y, ref, 4 * rows * f) == 0, "case %zu, %d threads: bits differ",
                          t, i ? 3 : 1);
            }
        }
        free(x), free(wt), free(bias), free(col), free(ref), free(y), free(blk);
    }
    nnc_set_num_threads(0);
}
