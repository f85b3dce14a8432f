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
