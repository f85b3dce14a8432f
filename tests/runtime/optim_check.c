/*
 * optim_check.c - the optimizer updates give the same bits with every
 * ISA the CPU has as with the scalar reference, on awkward lengths and
 * unaligned pointers. A plain program (no Criterion), so that neon.sh can
 * cross-compile it and run it under emulation; test_optim.c covers the
 * same ground on the host, threads included.
 *
 * Prints "optim_check: isas: ..." and "optim_check: N passed, N failed";
 * exits 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"

static int passed, failed;

static void fill(float *x, size_t n, unsigned seed, int positive)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        float v = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        x[i] = positive ? (v < 0 ? -v : v) : v;
    }
}

/* Runs every optimizer twice over fresh copies of the state; out holds
 * 8 n floats afterwards. */
static void run_all(const float *init, const float *g, size_t n, float *out)
{
    float *p = out, *a = p + n, *b = a + n, *c = b + n;
    float *q = c + n, *s = q + n, *r = s + n, *v = r + n;
    memcpy(out, init, 8 * n * sizeof(float));
    for (int k = 0; k < 2; k++) {
        nnc_rmsprop_update(p, g, a, b, c, n, 0.01f, 0.9f, 0.5f, 1e-7f);
        nnc_adagrad_update(q, g, s, n, 0.01f, 1e-7f);
        nnc_sgd_update_ex(r, g, v, n, 0.1f, 0.9f, 0.01f, 1);
        nnc_adam_update_ex(p, g, a, s, n, 0.1f, 0.999f, 0.001f, 1e-7f, 0.01f, 0.3f, 0.01f,
                           0.999f);
    }
}

int main(void)
{
    static const char *const isas[] = {"avx2", "avx512", "neon"};
    static const size_t sizes[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 1000};
    printf("optim_check: isas: scalar");
    for (int k = 0; k < 3; k++)
        if (nnc_set_isa(isas[k]) == 0)
            printf(" %s", isas[k]);
    printf("\n");
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *init = malloc(8 * n * sizeof(float) + 4), *g = malloc((n + 1) * sizeof(float));
        float *ref = malloc(8 * n * sizeof(float) + 4), *got = malloc(8 * n * sizeof(float) + 4);
        if (!init || !g || !ref || !got)
            return 1;
        fill(init, 8 * n, 1, 1);
        for (size_t i = 0; i < n; i++)
            init[3 * n + i] *= 0.1f; /* RMSprop's mean gradient: s - a^2 > 0 */
        fill(g + 1, n, 2, 0);        /* unaligned */
        nnc_set_isa("scalar");
        run_all(init, g + 1, n, ref);
        for (int k = 0; k < 3; k++) {
            if (nnc_set_isa(isas[k]) != 0)
                continue;
            run_all(init, g + 1, n, got);
            if (memcmp(got, ref, 8 * n * sizeof(float)) == 0) {
                passed++;
            } else {
                failed++;
                printf("FAIL: %s differs from scalar at n = %lu\n", isas[k], (unsigned long)n);
            }
        }
        free(init);
        free(g);
        free(ref);
        free(got);
    }
    printf("optim_check: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
