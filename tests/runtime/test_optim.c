/*
 * test_optim.c - the runtime's optimizer updates: every ISA and thread
 * count gives the same bits as the plain formula, on awkward lengths and
 * unaligned pointers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"
#include "isa_main.h" /* exits 77 (SKIP) for an ISA this CPU lacks */

static const char *isas[] = {"scalar", "avx2", "avx512", "neon"};

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* The formula of nncrt.h, element by element. */
static void adam_ref(float *p, const float *g, float *m, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        volatile float gi = g[i];
        volatile float mi = m[i] + 0.1f * (gi - m[i]);
        volatile float t = 0.001f * gi;
        volatile float vi = 0.999f * v[i] + t * gi;
        m[i] = mi;
        v[i] = vi;
        volatile float s = sqrtf(vi) * (1.0f / 0.3f) + 1e-7f;
        volatile float u = 0.01f * mi;
        p[i] -= u / s;
    }
}

/* Back to the default threads and the scalar ISA; frees the buffers. */
static void restore_and_free(float *init, float *g, float *ref, float *got)
{
    nnc_set_num_threads(0);
    nnc_set_isa("scalar");
    free(init);
    free(g);
    free(ref);
    free(got);
}

Test(optim, adam_is_bit_identical_on_every_path)
{
    size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 1000, 70001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *buf = malloc(4 * (n + 1) * sizeof(float) * 2);
        float *p0 = buf + 1, *g = p0 + n + 1, *m0 = g + n + 1, *v0 = m0 + n + 1;
        fill(p0, n, 1);
        fill(g, n, 2);
        fill(m0, n, 3);
        fill(v0, n, 4);
        for (size_t i = 0; i < n; i++)
            v0[i] = fabsf(v0[i]);
        float *ref = malloc(3 * (n + 1) * sizeof(float));
        float *rp = ref, *rm = ref + n + 1, *rv = rm + n + 1;
        memcpy(rp, p0, n * sizeof(float));
        memcpy(rm, m0, n * sizeof(float));
        memcpy(rv, v0, n * sizeof(float));
        adam_ref(rp, g, rm, rv, n);
        for (int k = 0; k < 4; k++) {
            if (nnc_set_isa(isas[k]) != 0)
                continue;
            for (int threads = 1; threads <= 2; threads++) {
                nnc_set_num_threads(threads);
                float *w = malloc(3 * (n + 1) * sizeof(float));
                float *p = w, *m = w + n + 1, *v = m + n + 1;
                memcpy(p, p0, n * sizeof(float));
                memcpy(m, m0, n * sizeof(float));
                memcpy(v, v0, n * sizeof(float));
                nnc_adam_update(p, g, m, v, n, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f);
                cr_expect(!memcmp(p, rp, n * sizeof(float)) && !memcmp(m, rm, n * sizeof(float)) &&
                              !memcmp(v, rv, n * sizeof(float)),
                          "adam differs: isa %s, %d threads, n %zu", isas[k], threads, n);
                free(w);
            }
        }
        nnc_set_num_threads(0);
        nnc_set_isa("scalar");
        free(ref);
        free(buf);
    }
    cr_assert_eq(nnc_set_isa("nonsense"), NNC_ERR_ARG);
}

Test(optim, sgd)
{
    float p[5] = {1, 2, 3, 4, 5}, g[5] = {1, 1, 1, 1, 1}, vel[5] = {0};
    nnc_sgd_update(p, g, vel, 5, 0.5f, 0.9f);
    nnc_sgd_update(p, g, vel, 5, 0.5f, 0.9f);
    /* v1 = 1, p = x - 0.5; v2 = 1.9, p = x - 0.5 - 0.95 */
    for (int i = 0; i < 5; i++)
        cr_assert_float_eq(p[i], (float)(i + 1) - 1.45f, 1e-6f);
    nnc_sgd_update(p, g, NULL, 5, 0.25f, 0.0f);
    cr_assert_float_eq(p[0], 1.0f - 1.45f - 0.25f, 1e-6f);
}

Test(optim, sgd_nesterov_and_weight_decay)
{
    /* torch.optim.SGD(momentum=0.5, nesterov=True, weight_decay=0.1) */
    float p[2] = {1, -2}, g[2] = {0.5f, 0.25f}, vel[2] = {0};
    for (int s = 0; s < 2; s++)
        nnc_sgd_update_ex(p, g, vel, 2, 0.1f, 0.5f, 0.1f, 1);
    double q[2] = {1, -2}, b[2] = {0};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 2; i++) {
            double d = g[i] + 0.1 * q[i];
            b[i] = 0.5 * b[i] + d;
            q[i] -= 0.1 * (d + 0.5 * b[i]);
        }
    for (int i = 0; i < 2; i++)
        cr_assert_float_eq(p[i], q[i], 1e-6);
}

Test(optim, adam_ex_is_adam_on_decayed_gradient)
{
    enum { N = 3000 };
    static float p[N], g[N], m[N], v[N], p2[N], g2[N], m2[N], v2[N];
    fill(p, N, 1);
    fill(g, N, 2);
    memcpy(p2, p, sizeof p);
    for (int i = 0; i < N; i++)
        g2[i] = g[i] + 0.01f * p[i];
    nnc_adam_update_ex(p, g, m, v, N, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f, 0.01f, 1.0f);
    nnc_adam_update(p2, g2, m2, v2, N, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f);
    cr_assert(!memcmp(p, p2, sizeof p) && !memcmp(m, m2, sizeof m) && !memcmp(v, v2, sizeof v));
    /* AdamW: the parameter shrinks first */
    memcpy(p2, p, sizeof p);
    for (int i = 0; i < N; i++)
        p2[i] *= 0.5f;
    memcpy(m2, m, sizeof m);
    memcpy(v2, v, sizeof v);
    nnc_adam_update_ex(p, g, m, v, N, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f, 0.0f, 0.5f);
    nnc_adam_update(p2, g, m2, v2, N, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f);
    cr_assert(!memcmp(p, p2, sizeof p));
}

/* adam_ex with AdamW's decay, Adam's L2 term, or both (both is what a
 * model with weight_decay and decay on the same tensor would ask), in the
 * update's own loop: the same bits as the two-step formula (p *= decay;
 * Adam on g + wd p) on every ISA, thread count and awkward length. */
Test(optim, adam_ex_is_bit_identical_on_every_path)
{
    const float wds[] = {0.0f, 0.01f, 0.0f, 0.03f}, decays[] = {1.0f, 1.0f, 0.999f, 0.99f};
    const size_t sizes[] = {1, 15, 17, 1000, 70001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *in = malloc(4 * n * sizeof(float)), *ref = malloc(4 * n * sizeof(float));
        float *got = malloc(3 * n * sizeof(float));
        cr_assert(in && ref && got);
        fill(in, n, 7);
        fill(in + n, n, 8);
        fill(in + 2 * n, n, 9);
        fill(in + 3 * n, n, 10);
        for (size_t i = 0; i < n; i++)
            in[3 * n + i] = fabsf(in[3 * n + i]);
        for (int c = 0; c < 4; c++) {
            float *rp = ref, *rg = ref + n, *rm = ref + 2 * n, *rv = ref + 3 * n;
            nnc_set_isa("scalar");
            nnc_set_num_threads(1);
            memcpy(ref, in, 4 * n * sizeof(float));
            for (size_t i = 0; i < n; i++) {
                rp[i] *= decays[c];
                rg[i] = rg[i] + wds[c] * rp[i];
            }
            adam_ref(rp, rg, rm, rv, n);
            for (int k = 0; k < 4; k++) {
                if (nnc_set_isa(isas[k]) != 0)
                    continue;
                for (int threads = 1; threads <= 3; threads++) {
                    float *p = got, *m = got + n, *v = got + 2 * n;
                    nnc_set_num_threads(threads);
                    memcpy(p, in, n * sizeof(float));
                    memcpy(m, in + 2 * n, 2 * n * sizeof(float));
                    nnc_adam_update_ex(p, in + n, m, v, n, 0.1f, 0.999f, 0.001f, 1e-7f,
                                       0.01f, 0.3f, wds[c], decays[c]);
                    cr_expect(!memcmp(p, rp, n * sizeof(float)) &&
                                  !memcmp(m, rm, n * sizeof(float)) &&
                                  !memcmp(v, rv, n * sizeof(float)),
                              "adam_ex (wd %g, decay %g) differs: isa %s, %d threads, n %zu",
                              wds[c], decays[c], isas[k], threads, n);
                }
            }
        }
        nnc_set_num_threads(0);
        nnc_set_isa("scalar");
        free(in);
        free(ref);
        free(got);
    }
}

/* RMSprop and Adagrad against the formula in double: plain loops, so
 * every ISA setting gives the same bits too. */
Test(optim, rmsprop_and_adagrad)
{
    enum { N = 37 };
    float p0[N], g[N];
    fill(p0, N, 5);
    fill(g, N, 6);
    float ref[2][N];
    for (int k = 0; k < 4; k++) {
        if (nnc_set_isa(isas[k]) != 0)
            continue;
        float p[N], sq[N] = {0}, buf[N] = {0}, avg[N] = {0}, q[N], sum[N];
        memcpy(p, p0, sizeof p);
        memcpy(q, p0, sizeof q);
        for (int i = 0; i < N; i++)
            sum[i] = 0.1f;
        for (int s = 0; s < 3; s++) {
            nnc_rmsprop_update(p, g, sq, buf, avg, N, 0.01f, 0.9f, 0.5f, 1e-7f);
            nnc_adagrad_update(q, g, sum, N, 0.01f, 1e-7f);
        }
        if (k == 0) {
            memcpy(ref[0], p, sizeof p);
            memcpy(ref[1], q, sizeof q);
            for (int i = 0; i < N; i++) {
                double P = p0[i], Q = p0[i], S = 0, B = 0, A = 0, U = 0.1;
                for (int s = 0; s < 3; s++) {
                    S = 0.9 * S + 0.1 * g[i] * g[i];
                    A = A + 0.1 * (g[i] - A);
                    B = 0.5 * B + g[i] / (sqrt(S - A * A) + 1e-7);
                    P -= 0.01 * B;
                    U += (double)g[i] * g[i];
                    Q -= 0.01 * g[i] / (sqrt(U) + 1e-7);
                }
                cr_assert_float_eq(p[i], P, 1e-4 * (1 + fabs(P)), "rmsprop %d", i);
                cr_assert_float_eq(q[i], Q, 1e-5 * (1 + fabs(Q)), "adagrad %d", i);
            }
        }
        cr_expect(!memcmp(p, ref[0], sizeof p) && !memcmp(q, ref[1], sizeof q),
                  "differs on %s", isas[k]);
    }
    nnc_set_isa("scalar");
}

Test(optim, global_norm_clipping)
{
    float x[9];
    for (int i = 0; i < 9; i++)
        x[i] = (float)(i + 1);
    cr_assert_eq(nnc_sumsq(x, 9), 285.0);
    cr_assert_eq(nnc_sumsq(x, 0), 0.0);
    cr_assert_eq(nnc_clip_coef(285.0, 1000.0), 1.0f);
    float c = nnc_clip_coef(4.0, 1.0);
    cr_assert_float_eq(c, 1.0 / (2.0 + 1e-6), 1e-7);
    nnc_scale(x, 9, 0.5f);
    cr_assert_eq(x[8], 4.5f);

    /* past the blocks of 8 (and their tail): every element */
    float y[37];
    double want = 0;
    for (int i = 0; i < 37; i++) {
        y[i] = (float)(i - 18);
        want += (double)(i - 18) * (i - 18);
    }
    cr_assert_eq(nnc_sumsq(y, 37), want);
    nnc_scale(y, 37, 0.25f);
    for (int i = 0; i < 37; i++)
        cr_assert_eq(y[i], (float)(i - 18) * 0.25f, "element %d", i);
    nnc_scale(y, 37, 1.0f);
    for (int i = 0; i < 37; i++)
        cr_assert_eq(y[i], (float)(i - 18) * 0.25f, "element %d", i);
}

/* One RMSprop (variant bits: 1 momentum, 2 centered) and Adagrad step on
 * fresh copies; the outputs go to out (p, state..., q, sum). */
static void rms_adagrad_run(const float *init, const float *g, size_t n, int variant,
                            float *out)
{
    float *p = out, *sq = p + n, *buf = sq + n, *avg = buf + n, *q = avg + n, *sum = q + n;
    for (int k = 0; k < 6; k++)
        memcpy(out + (size_t)k * n, init + (size_t)k * n, n * sizeof(float));
    for (int s = 0; s < 2; s++) {
        nnc_rmsprop_update(p, g, sq, variant & 1 ? buf : NULL, variant & 2 ? avg : NULL, n,
                           0.01f, 0.9f, 0.5f, 1e-7f);
        nnc_adagrad_update(q, g, sum, n, 0.01f, 1e-7f);
    }
}

Test(optim, rmsprop_and_adagrad_bit_identical_on_every_path)
{
    size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 1000, 70001};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si], bytes = 6 * (n + 1) * sizeof(float);
        float *init = malloc(bytes), *g = malloc((n + 2) * sizeof(float));
        float *ref = malloc(bytes), *got = malloc(bytes);
        fill(init, 6 * n, 11);
        fill(g + 1, n, 12); /* unaligned */
        for (size_t i = n; i < 6 * n; i++)
            init[i] = fabsf(init[i]); /* state: s >= a^2 needs care, below */
        for (size_t i = 0; i < n; i++)
            init[3 * n + i] *= 0.1f; /* small mean gradient: s - a^2 > 0 */
        for (int variant = 0; variant < 4; variant++) {
            nnc_set_isa("scalar");
            nnc_set_num_threads(1);
            rms_adagrad_run(init, g + 1, n, variant, ref);
            for (int k = 1; k < 4; k++) {
                if (nnc_set_isa(isas[k]) != 0)
                    continue;
                for (int threads = 1; threads <= 2; threads++) {
                    nnc_set_num_threads(threads);
                    rms_adagrad_run(init, g + 1, n, variant, got);
                    cr_expect(!memcmp(got, ref, 6 * n * sizeof(float)),
                              "differs: isa %s, %d threads, n %zu, variant %d", isas[k],
                              threads, n, variant);
                }
            }
        }
        restore_and_free(init, g, ref, got);
    }
}

Test(optim, sgd_bit_identical_on_every_path)
{
    size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 1000, 70001};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *init = malloc(2 * (n + 1) * sizeof(float)), *g = malloc((n + 2) * sizeof(float));
        float *ref = malloc(2 * (n + 1) * sizeof(float));
        float *got = malloc(2 * (n + 1) * sizeof(float));
        fill(init, 2 * n, 21);
        fill(g + 1, n, 22);
        for (int variant = 0; variant < 8; variant++) { /* 1 momentum, 2 wd, 4 nesterov */
            float *out = ref;
            for (int k = 0; k < 4; k++) {
                if (nnc_set_isa(isas[k]) != 0)
                    continue;
                for (int threads = 1; threads <= 2; threads++) {
                    nnc_set_num_threads(threads);
                    memcpy(out, init, 2 * n * sizeof(float));
                    for (int s = 0; s < 2; s++)
                        nnc_sgd_update_ex(out, g + 1, variant & 1 ? out + n : NULL, n, 0.1f,
                                          0.9f, variant & 2 ? 0.01f : 0.0f, variant & 4);
                    if (out == got)
                        cr_expect(!memcmp(got, ref, 2 * n * sizeof(float)),
                                  "differs: isa %s, %d threads, n %zu, variant %d", isas[k],
                                  threads, n, variant);
                    out = got;
                }
            }
        }
        restore_and_free(init, g, ref, got);
    }
}
