/*
 * test_nn.c - the op kernels of runtime/nn.c (softmax, log-softmax, layer
 * and batch normalization, dropout, the losses and their gradients,
 * embeddings, concat and slice) against plain double-precision loops, on
 * awkward row lengths (1, 7, 8, 9, 17, 33, 100) and unaligned pointers.
 *
 * Every check runs under each kernel set this CPU supports (scalar, avx2,
 * avx512; one it lacks makes the program a SKIP, naming it, after every
 * other set passed: isa_main.h), and the vectorized sets
 * are also compared with the scalar one, which is the reference: they may
 * differ only by the rounding of contracted multiply-adds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"
#include "isa_main.h" /* exits 77 (SKIP) for an ISA this CPU lacks */

static const size_t sizes[] = {1, 7, 8, 9, 17, 33, 100};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const char *const isas[] = {"scalar", "avx2", "avx512"};
#define NISAS 3

static unsigned state = 12345;
static float frand(void)   /* uniform in [-1, 1) */
{
    state = state * 1103515245u + 12345u;
    return (float)((state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* n floats one float past malloc's alignment (unaligned for every vector
 * width), filled with lo + (hi - lo) u. */
static float *vec(size_t n, float lo, float hi)
{
    float *p = (float *)malloc((n + 2) * sizeof(float)) + 1;   /* malloc: 16-aligned */
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (frand() + 1.0f) / 2.0f;
    return p;
}

static void vfree(float *p)
{
    free(p - 1);
}

/* Switches to kernel set k; false (logged once) if this CPU lacks it. */
static bool use_isa(int k)
{
    static bool told[NISAS];
    if (nnc_set_isa(isas[k]) == NNC_OK)
        return true;
    if (!told[k])
        fprintf(stderr, "test_nn: skipped the %s kernels: this CPU cannot run them\n",
                isas[k]);
    told[k] = true;
    return false;
}

/* y (float) against ref (double): |y - ref| <= tol (1 + |ref|). */
static void near(const char *what, const char *isa, size_t c, const float *y,
                 const double *ref, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs((double)y[i] - ref[i]) <= tol * (1.0 + fabs(ref[i])),
                  "%s [%s, c = %zu] element %zu: %.9g, expected %.9g", what, isa, c, i,
                  (double)y[i], ref[i]);
}

/* A vectorized set's y against the scalar set's s. */
static void same(const char *what, const char *isa, size_t c, const float *y, const float *s,
                 size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(y[i] - s[i]) <= 1e-6f * (1.0f + fabsf(s[i])),
                  "%s [%s, c = %zu] element %zu: %.9g, scalar %.9g", what, isa, c, i,
                  (double)y[i], (double)s[i]);
}

static double *dvec(size_t n)
{
    return calloc(n, sizeof(double));
}

/* ---- row references ------------------------------------------------------ */

/* softmax as exp(x - log sum exp x), the log-sum-exp taken about the
 * row's mean (a different route from the kernels' shift by the maximum). */
static void softmax_ref(const float *x, double *y, size_t rows, size_t c)
{
    for (size_t r = 0; r < rows; r++, x += c, y += c) {
        double mean = 0, se = 0;
        for (size_t j = 0; j < c; j++)
            mean += x[j] / (double)c;
        for (size_t j = 0; j < c; j++)
            se += exp(x[j] - mean);
        for (size_t j = 0; j < c; j++)
            y[j] = exp(x[j] - mean - log(se));
    }
}

static void layernorm_ref(const float *dy, const float *x, double *y, size_t rows, size_t c,
                          double eps)
{
    for (size_t r = 0; r < rows; r++, x += c, y += c) {
        double m = 0, v = 0, a = 0, b = 0;
        for (size_t j = 0; j < c; j++)
            m += x[j];
        m /= (double)c;
        for (size_t j = 0; j < c; j++)
            v += (x[j] - m) * (x[j] - m);
        double s = 1 / sqrt(v / (double)c + eps);
        for (size_t j = 0; j < c; j++)
            y[j] = (x[j] - m) * s;
        if (!dy)
            continue;
        for (size_t j = 0; j < c; j++) {
            a += dy[r * c + j];
            b += dy[r * c + j] * y[j];
        }
        for (size_t j = 0; j < c; j++)
            y[j] = s * (dy[r * c + j] - a / (double)c - y[j] * b / (double)c);
    }
}

/* Runs KERNEL (filling out, n floats) under every set and checks it
 * against ref with tolerance tol, and the vector sets against scalar. */
#define EACH_ISA(what, c, out, n, ref, tol, KERNEL)                  \
    do {                                                             \
        float *scal_ = malloc((n) * sizeof(float));                  \
        for (int k_ = 0; k_ < NISAS; k_++) {                         \
            if (!use_isa(k_))                                        \
                continue;                                            \
            KERNEL;                                                  \
            near(what, isas[k_], c, out, ref, n, tol);               \
            if (k_ == 0)                                             \
                memcpy(scal_, out, (n) * sizeof(float));             \
            else                                                     \
                same(what, isas[k_], c, out, scal_, n);              \
        }                                                            \
        nnc_set_isa(saved);                                          \
        free(scal_);                                                 \
    } while (0)

Test(nn, softmax_and_log_softmax)
{
    const char *saved = nnc_isa();
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], rows = 3, n = rows * c;
        float *x = vec(n, -20, 20), *y = vec(n, 0, 0), *dy = vec(n, -1, 1);
        double *ref = dvec(n), *dref = dvec(n);
        softmax_ref(x, ref, rows, c);
        EACH_ISA("softmax", c, y, n, ref, 1e-6, nnc_softmax(x, y, rows, c));
        for (size_t r = 0; r < rows; r++) {
            double s = 0;
            for (size_t j = 0; j < c; j++)
                s += dy[r * c + j] * (double)y[r * c + j];
            for (size_t j = 0; j < c; j++)
                dref[r * c + j] = y[r * c + j] * (dy[r * c + j] - s);
        }
        float *dx = vec(n, 0, 0);
        EACH_ISA("softmax_back", c, dx, n, dref, 1e-6, nnc_softmax_back(dy, y, dx, rows, c));
        for (size_t i = 0; i < n; i++)
            ref[i] = log(ref[i]);
        EACH_ISA("log_softmax", c, y, n, ref, 1e-6, nnc_log_softmax(x, y, rows, c));
        vfree(x), vfree(y), vfree(dy), vfree(dx), free(ref), free(dref);
    }
}

Test(nn, layernorm)
{
    const char *saved = nnc_isa();
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], rows = 3, n = rows * c;
        float *x = vec(n, -3, 5), *y = vec(n, 0, 0), *dy = vec(n, -1, 1);
        double *ref = dvec(n);
        layernorm_ref(NULL, x, ref, rows, c, (double)1e-3f);
        EACH_ISA("layernorm", c, y, n, ref, 2e-5, nnc_layernorm(x, y, rows, c, 1e-3f));
        layernorm_ref(dy, x, ref, rows, c, (double)1e-3f);
        EACH_ISA("layernorm_back", c, y, n, ref, 1e-4,
                 nnc_layernorm_back(dy, x, y, rows, c, 1e-3f));
        vfree(x), vfree(y), vfree(dy), free(ref);
    }
}

/* The layernorm layer (nnc_layernorm_affine and _back) against double,
 * and bit for bit against the kernels it replaces: nnc_layernorm, then
 * * gamma and + beta; nnc_layernorm_back of dy gamma; gamma's gradient
 * (dy xhat summed over the rows in order) and beta's (dy summed
 * likewise). Even and odd row counts (rows go in pairs), every set, every
 * combination of the outputs, and dx written over dy. */
Test(nn, layernorm_affine)
{
    const char *saved = nnc_isa();
    for (size_t t = 0; t < NSIZES; t++)
        for (size_t rows = 1; rows <= 4; rows++) {
            size_t c = sizes[t], n = rows * c;
            float *x = vec(n, -3, 5), *dy = vec(n, -1, 1), *gamma = vec(c, 0.5f, 1.5f);
            float *beta = vec(c, -1, 1), *y = vec(n, 0, 0), *g = vec(n, 0, 0);
            float *dx = vec(n, 0, 0), *want = vec(n, 0, 0), *xhat = vec(n, 0, 0);
            float *dg = vec(c, 0, 0), *db = vec(c, 0, 0), *wg = vec(c, 0, 0), *wb = vec(c, 0, 0);
            double *ref = dvec(n), *gref = dvec(c), *bref = dvec(c);
            layernorm_ref(NULL, x, ref, rows, c, (double)1e-3f);
            for (size_t i = 0; i < n; i++) {
                gref[i % c] += dy[i] * ref[i];
                bref[i % c] += dy[i];
                ref[i] = ref[i] * gamma[i % c] + beta[i % c];
                g[i] = dy[i] * gamma[i % c];
            }
            EACH_ISA("layernorm_affine", c, y, n, ref, 3e-5,
                     nnc_layernorm_affine(x, gamma, beta, y, rows, c, 1e-3f));
            layernorm_ref(g, x, ref, rows, c, (double)1e-3f);
            EACH_ISA("layernorm_affine_back", c, dx, n, ref, 1e-4,
                     nnc_layernorm_affine_back(dy, x, gamma, dx, dg, db, rows, c, 1e-3f));
            for (int k = 0; k < NISAS; k++) {
                if (!use_isa(k))
                    continue;
                /* the kernels it replaces */
                /* products through a volatile: never fused into an fma */
                volatile float prod;
                nnc_layernorm(x, xhat, rows, c, 1e-3f);
                for (size_t i = 0; i < n; i++) {
                    prod = xhat[i] * gamma[i % c];
                    want[i] = prod + beta[i % c];
                }
                nnc_layernorm_affine(x, gamma, beta, y, rows, c, 1e-3f);
                cr_assert_eq(memcmp(y, want, n * sizeof *y), 0, "layernorm_affine [%s, c = %zu]: "
                             "not the bits of layernorm, * gamma, + beta", isas[k], c);
                memcpy(y, x, n * sizeof *y);    /* in place */
                nnc_layernorm_affine(y, gamma, beta, y, rows, c, 1e-3f);
                cr_assert_eq(memcmp(y, want, n * sizeof *y), 0, "in place [%s]", isas[k]);
                nnc_layernorm_back(g, x, want, rows, c, 1e-3f);
                for (size_t j = 0; j < c; j++)
                    wg[j] = wb[j] = 0.0f;
                for (size_t i = 0; i < n; i++) {
                    prod = dy[i] * xhat[i];
                    wg[i % c] += prod;
                    wb[i % c] += dy[i];
                }
                for (int mask = 0; mask < 8; mask++) {  /* which outputs */
                    memset(dx, 0, n * sizeof *dx);
                    memset(dg, 0xff, c * sizeof *dg);   /* NaN: must be overwritten */
                    memset(db, 0xff, c * sizeof *db);
                    nnc_layernorm_affine_back(dy, x, mask & 1 ? gamma : NULL,
                                              mask & 1 ? dx : NULL, mask & 2 ? dg : NULL,
                                              mask & 4 ? db : NULL, rows, c, 1e-3f);
                    cr_assert(!(mask & 1) || !memcmp(dx, want, n * sizeof *dx),
                              "dx [%s, c = %zu, rows = %zu, mask %d]", isas[k], c, rows, mask);
                    cr_assert(!(mask & 2) || !memcmp(dg, wg, c * sizeof *dg),
                              "dgamma [%s, c = %zu, rows = %zu, mask %d]", isas[k], c, rows, mask);
                    cr_assert(!(mask & 4) || !memcmp(db, wb, c * sizeof *db),
                              "dbeta [%s, c = %zu, rows = %zu, mask %d]", isas[k], c, rows, mask);
                }
                memcpy(dx, dy, n * sizeof *dx);     /* dx over dy */
                nnc_layernorm_affine_back(dx, x, gamma, dx, dg, db, rows, c, 1e-3f);
                cr_assert(!memcmp(dx, want, n * sizeof *dx) && !memcmp(dg, wg, c * sizeof *dg),
                          "dx over dy [%s, c = %zu]", isas[k], c);
                for (size_t j = 0; j < c; j++)
                    cr_assert(fabs((double)dg[j] - gref[j]) <= 1e-4 * (1.0 + fabs(gref[j])) &&
                                  fabs((double)db[j] - bref[j]) <= 1e-5 * (1.0 + fabs(bref[j])),
                              "dgamma/dbeta [%s, c = %zu] element %zu: %g %g, expected %g %g",
                              isas[k], c, j, (double)dg[j], (double)db[j], gref[j], bref[j]);
            }
            nnc_set_isa(saved);
            vfree(x), vfree(dy), vfree(gamma), vfree(beta), vfree(y), vfree(g), vfree(dx);
            vfree(want), vfree(xhat), vfree(dg), vfree(db), vfree(wg), vfree(wb);
            free(ref), free(gref), free(bref);
        }
}

/* ---- softmax cross-entropy gradients ----------------------------------------- */

Test(nn, softmax_ce_gradients)
{
    const char *saved = nnc_isa();
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], rows = 5, n = rows * c;
        float *z = vec(n, -8, 8), *tt = vec(n, 0, 1), *k = vec(rows, 0, 0), *dz = vec(n, 0, 0);
        double *ref = dvec(n);
        for (size_t r = 0; r < rows; r++)   /* a bad index in row 2 */
            k[r] = r == 2 ? (float)c : (float)((r * 7) % c) + 0.5f;
        softmax_ref(z, ref, rows, c);
        double *sp = dvec(n);
        memcpy(sp, ref, n * sizeof *sp);
        for (size_t r = 0; r < rows; r++) {
            double st = 0;
            for (size_t j = 0; j < c; j++)
                st += tt[r * c + j];
            for (size_t j = 0; j < c; j++)
                ref[r * c + j] = 0.5 * (ref[r * c + j] * st - tt[r * c + j]) / (double)rows;
        }
        EACH_ISA("softmax_ce_back", c, dz, n, ref, 1e-6,
                 nnc_softmax_ce_back(0.5f, z, tt, dz, rows, c));
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < c; j++)
                ref[r * c + j] = r == 2 ? 0
                    : 0.5 * (sp[r * c + j] - (j == (size_t)k[r])) / (double)rows;
        EACH_ISA("sparse_softmax_ce_back", c, dz, n, ref, 1e-6,
                 nnc_sparse_softmax_ce_back(0.5f, z, k, dz, rows, c));
        vfree(z), vfree(tt), vfree(k), vfree(dz), free(ref), free(sp);
    }
}

/* ---- losses -------------------------------------------------------------------- */

static void near1(const char *what, size_t c, double y, double ref, double tol)
{
    cr_assert(fabs(y - ref) <= tol * (1 + fabs(ref)), "%s [c = %zu]: %.12g, expected %.12g",
              what, c, y, ref);
}

Test(nn, value_losses)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t n = sizes[t] * 3;
        float *p = vec(n, 0.001f, 0.999f), *tt = vec(n, 0, 1), *z = vec(n, -30, 30);
        double bce = 0, mse = 0, mae = 0, hub = 0, sbce = 0;
        p[0] = 0.0f;   /* log clamped at -100 */
        for (size_t i = 0; i < n; i++) {
            double d = (double)p[i] - tt[i], a = fabs(d);
            double lp = p[i] > 0 ? log(p[i]) : -100;
            bce -= tt[i] * (lp < -100 ? -100 : lp) + (1 - tt[i]) * log(1 - (double)p[i]);
            mse += d * d;
            mae += a;
            hub += a <= 0.25 ? 0.5 * a * a : 0.25 * (a - 0.125);
            sbce += (z[i] > 0 ? z[i] : 0) - (double)z[i] * tt[i] + log1p(exp(-fabs(z[i])));
        }
        near1("bce", n, nnc_bce(p, tt, n), bce / (double)n, 1e-12);
        near1("mse", n, nnc_mse(p, tt, n), mse / (double)n, 1e-12);
        near1("mae", n, nnc_mae(p, tt, n), mae / (double)n, 1e-12);
        near1("huber", n, nnc_huber(p, tt, n, 0.25), hub / (double)n, 1e-12);
        near1("sigmoid_bce", n, nnc_sigmoid_bce(z, tt, n), sbce / (double)n, 1e-12);
        vfree(p), vfree(tt), vfree(z);
    }
}

Test(nn, class_losses)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], rows = 4, n = rows * c;
        float *p = vec(n, 0.01f, 1), *tt = vec(n, 0, 1), *z = vec(n, -10, 10);
        float *k = vec(rows, 0, 0);
        double cce = 0, scce = 0, sce = 0, ssce = 0;
        for (size_t r = 0; r < rows; r++) {
            k[r] = (float)((r * 5) % c);
            const float *pr = p + r * c, *zr = z + r * c, *tr = tt + r * c;
            double sum = 0, mx = zr[0], se = 0;
            for (size_t j = 0; j < c; j++) {
                sum += pr[j];
                mx = zr[j] > mx ? zr[j] : mx;
            }
            for (size_t j = 0; j < c; j++)
                se += exp(zr[j] - mx);
            for (size_t j = 0; j < c; j++) {
                double q = pr[j] / sum;
                q = q < 1e-7 ? 1e-7 : q > 1 - 1e-7 ? 1 - 1e-7 : q;
                cce -= tr[j] * log(q);
                if (j == (size_t)k[r])
                    scce -= log(q);
                sce -= tr[j] * (zr[j] - mx - log(se));
            }
            ssce += mx + log(se) - zr[(size_t)k[r]];
        }
        near1("cce", c, nnc_cce(p, tt, rows, c), cce / (double)rows, 1e-12);
        near1("sparse_cce", c, nnc_sparse_cce(p, k, rows, c), scce / (double)rows, 1e-12);
        near1("softmax_ce", c, nnc_softmax_ce(z, tt, rows, c), sce / (double)rows, 1e-6);
        near1("sparse_softmax_ce", c, nnc_sparse_softmax_ce(z, k, rows, c),
              ssce / (double)rows, 1e-6);
        k[1] = -1.0f;
        cr_assert(isnan(nnc_sparse_cce(p, k, rows, c)));
        cr_assert(isnan(nnc_sparse_softmax_ce(z, k, rows, c)));
        vfree(p), vfree(tt), vfree(z), vfree(k);
    }
}

/* Keras' gradient of cce on probabilities: g_j = -dl t_j / q_j / R inside
 * the clip, then dp_k = (g_k - sum_j g_j q_j) / sum p. */
static void cce_back_ref(double dl, const float *p, const float *t, const float *k,
                         double *out, size_t rows, size_t c)
{
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * c;
        double sum = 0, sg = 0, *o = out + r * c;
        for (size_t j = 0; j < c; j++)
            sum += pr[j];
        for (size_t j = 0; j < c; j++) {
            double q = pr[j] / sum, tj = k ? (double)(j == (size_t)k[r]) : t[r * c + j];
            o[j] = q > 1e-7 && q < 1 - 1e-7 ? -dl * tj / q / (double)rows : 0;
            sg += o[j] * q;
        }
        for (size_t j = 0; j < c; j++)
            o[j] = (o[j] - sg) / sum;
    }
}

Test(nn, cce_gradients)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], rows = 4, n = rows * c;
        float *p = vec(n, 0.01f, 1), *tt = vec(n, 0, 1), *k = vec(rows, 0, 0), *dp = vec(n, 0, 0);
        double *ref = dvec(n);
        for (size_t r = 0; r < rows; r++)
            k[r] = (float)((r * 3) % c);
        cce_back_ref(2.0, p, tt, NULL, ref, rows, c);
        nnc_cce_back(2.0f, p, tt, dp, rows, c);
        near("cce_back", "scalar", c, dp, ref, n, 1e-5);
        cce_back_ref(2.0, p, NULL, k, ref, rows, c);
        nnc_sparse_cce_back(2.0f, p, k, dp, rows, c);
        near("sparse_cce_back", "scalar", c, dp, ref, n, 1e-5);
        vfree(p), vfree(tt), vfree(k), vfree(dp), free(ref);
    }
}

/* ---- batch normalization ------------------------------------------------------- */

Test(nn, batchnorm)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t c = sizes[t], m = 13 + t, n = m * c;   /* past the 64-channel chunk too */
        if (c == 100)
            m = 3, n = m * c;
        float *x = vec(n, -2, 6), *y = vec(n, 0, 0), *dy = vec(n, -1, 1), *dx = vec(n, 0, 0);
        float *mean = vec(c, 0, 1), *var = vec(c, 0.5f, 2), *m0 = vec(c, 0, 0), *v0 = vec(c, 0, 0);
        double *ref = dvec(n), *dref = dvec(n), eps = 1e-3, k = 0.9;
        memcpy(m0, mean, c * sizeof *m0);
        memcpy(v0, var, c * sizeof *v0);
        nnc_batchnorm(x, y, mean, var, m, c, eps, k);
        nnc_batchnorm_back(dy, x, dx, m, c, eps);
        for (size_t j = 0; j < c; j++) {
            double mu = 0, v = 0, sg = 0, sgx = 0;
            for (size_t r = 0; r < m; r++)
                mu += x[r * c + j];
            mu /= (double)m;
            for (size_t r = 0; r < m; r++)
                v += (x[r * c + j] - mu) * (x[r * c + j] - mu);
            double inv = 1 / sqrt(v / (double)m + eps);
            for (size_t r = 0; r < m; r++) {
                ref[r * c + j] = (x[r * c + j] - mu) * inv;
                sg += dy[r * c + j];
                sgx += dy[r * c + j] * ref[r * c + j];
            }
            for (size_t r = 0; r < m; r++)
                dref[r * c + j] = inv / (double)m *
                                  ((double)m * dy[r * c + j] - sg - ref[r * c + j] * sgx);
            near1("running mean", c, mean[j], k * m0[j] + (1 - k) * mu, 1e-6);
            near1("running var", c, var[j], k * v0[j] + (1 - k) * v / (double)(m - 1), 1e-6);
        }
        near("batchnorm", "scalar", c, y, ref, n, 1e-5);
        near("batchnorm_back", "scalar", c, dx, dref, n, 1e-4);
        nnc_batchnorm_predict(x, y, mean, var, m, c, eps);
        for (size_t i = 0; i < n; i++)
            ref[i] = (x[i] - (double)mean[i % c]) / sqrt((double)var[i % c] + eps);
        near("batchnorm_predict", "scalar", c, y, ref, n, 1e-5);
        vfree(x), vfree(y), vfree(dy), vfree(dx), vfree(mean), vfree(var), vfree(m0), vfree(v0);
        free(ref), free(dref);
    }
}

/* ---- dropout, embeddings, rows -------------------------------------------------- */

Test(nn, dropout)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t n = sizes[t] * 5;
        float *x = vec(n, 0.5f, 1), *y = vec(n, 0, 0), *dy = vec(n, -1, 1), *dx = vec(n, 0, 0);
        nnc_rng rng, replay;
        nnc_rng_seed(&rng, 99 + t);
        replay = rng;
        nnc_dropout(x, y, n, 0.25f, 1 / 0.75f, &rng);
        nnc_dropout_back(dy, y, dx, n, 1 / 0.75f);
        for (size_t i = 0; i < n; i++) {
            bool drop = nnc_rng_uniform(&replay) < 0.25f;
            cr_assert_eq(y[i], drop ? 0.0f : x[i] * (1 / 0.75f), "dropout element %zu", i);
            cr_assert_eq(dx[i], drop ? 0.0f : dy[i] * (1 / 0.75f), "dropout_back element %zu", i);
        }
        cr_assert_eq(nnc_rng_next(&rng), nnc_rng_next(&replay), "one draw per element");
        vfree(x), vfree(y), vfree(dy), vfree(dx);
    }
}

Test(nn, embed_gather_and_scatter)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t d = sizes[t], vocab = 5, n = 9;
        float *w = vec(vocab * d, -1, 1), *ids = vec(n, 0, 0), *y = vec(n * d, 0, 0);
        float *dy = vec(n * d, -1, 1), *dw = vec(vocab * d, 0, 0);
        double *ref = dvec(vocab * d);
        static const float id[] = {0, 4, 2.7f, 4, -1, 5, NAN, 1, 0};
        memcpy(ids, id, sizeof id);
        nnc_embed(w, vocab, d, ids, n, y);
        nnc_embed_back(dy, ids, n, vocab, d, dw);
        for (size_t i = 0; i < n; i++) {
            int v = ids[i] >= 0 && ids[i] < (float)vocab ? (int)ids[i] : -1;
            for (size_t j = 0; j < d; j++) {
                cr_assert_eq(y[i * d + j], v < 0 ? 0.0f : w[(size_t)v * d + j]);
                if (v >= 0)
                    ref[(size_t)v * d + j] += dy[i * d + j];
            }
        }
        near("embed_back", "scalar", d, dw, ref, vocab * d, 1e-6);
        vfree(w), vfree(ids), vfree(y), vfree(dy), vfree(dw), free(ref);
    }
}

Test(nn, concat_and_slice)
{
    for (size_t t = 0; t < NSIZES; t++) {
        size_t ca = sizes[t], cb = sizes[NSIZES - 1 - t], rows = 3;
        float *a = vec(rows * ca, -1, 1), *b = vec(rows * cb, -1, 1);
        float *y = vec(rows * (ca + cb), 0, 0), *s = vec(rows * cb, 0, 0);
        nnc_concat(a, ca, b, cb, y, rows);
        nnc_slice(y, ca + cb, ca, cb, s, rows);
        for (size_t r = 0; r < rows; r++) {
            cr_assert(memcmp(y + r * (ca + cb), a + r * ca, ca * sizeof *a) == 0);
            cr_assert(memcmp(s + r * cb, b + r * cb, cb * sizeof *b) == 0);
        }
        vfree(a), vfree(b), vfree(y), vfree(s);
    }
}
