/*
 * test_rng.c - the runtime PRNG: splitmix64-seeded xoshiro256** and the
 * uniform initializer built on it.
 *
 * The pinned constants below were computed by an independent Python
 * implementation of splitmix64 and xoshiro256** (arbitrary-precision
 * integers masked to 64 bits, floats rounded with struct.pack('<f')), and
 * splitmix64(0) matches the published first value 0xe220a8397b1dcdaf. If
 * one of them changes, every model's initial weights change: that is a
 * compatibility break, not a test to update.
 */
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"

Test(rng, seed_expands_with_splitmix64)
{
    nnc_rng r;

    nnc_rng_seed(&r, 0);
    cr_assert_eq(r.s[0], UINT64_C(0xe220a8397b1dcdaf));
    nnc_rng_seed(&r, 42);
    cr_assert_eq(r.s[0], UINT64_C(0xbdd732262feb6e95));
    cr_assert_eq(r.s[1], UINT64_C(0x28efe333b266f103));
    cr_assert_eq(r.s[2], UINT64_C(0x47526757130f9f52));
    cr_assert_eq(r.s[3], UINT64_C(0x581ce1ff0e4ae394));
}

Test(rng, pinned_stream_seed_42)
{
    static const uint64_t want[] = {
        UINT64_C(0x15780b2e0c2ec716), UINT64_C(0x6104d9866d113a7e),
        UINT64_C(0xae17533239e499a1), UINT64_C(0xecb8ad4703b360a1),
        UINT64_C(0xfde6dc7fe2ec5e64),
    };
    nnc_rng r;
    size_t i;

    nnc_rng_seed(&r, 42);
    for (i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(nnc_rng_next(&r), want[i], "draw %zu", i);
}

Test(rng, pinned_stream_seed_0)
{
    nnc_rng r;

    nnc_rng_seed(&r, 0);
    cr_assert_eq(nnc_rng_next(&r), UINT64_C(0x99ec5f36cb75f2b4));
    cr_assert_eq(nnc_rng_next(&r), UINT64_C(0xbf6e1f784956452a));
}

Test(rng, pinned_uniform_seed_42)
{
    /* The top 24 bits of the draws above, times 2^-24. */
    static const float want[] = {
        (float)0x15780b * 0x1p-24f, (float)0x6104d9 * 0x1p-24f,
        (float)0xae1753 * 0x1p-24f, (float)0xecb8ad * 0x1p-24f,
    };
    nnc_rng r;
    size_t i;

    nnc_rng_seed(&r, 42);
    for (i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(nnc_rng_uniform(&r), want[i], "draw %zu", i);
}

Test(rng, pinned_fill_uniform_seed_7)
{
    /* lo + (hi - lo) * u in double, rounded once to float. */
    static const float want[] = {0x1.a0aeep-6f, -0x1.29eb48p-2f,
                                 0x1.09aaf2p-3f};
    float w[3];
    nnc_rng r;

    nnc_rng_seed(&r, 7);
    nnc_fill_uniform(w, 3, -0.5, 0.25, &r);
    cr_assert_eq(memcmp(w, want, sizeof w), 0, "%a %a %a", (double)w[0],
                 (double)w[1], (double)w[2]);
}

Test(rng, same_seed_same_stream)
{
    nnc_rng a, b, c;
    int i, differ = 0;

    nnc_rng_seed(&a, 12345);
    nnc_rng_seed(&b, 12345);
    nnc_rng_seed(&c, 12346);
    for (i = 0; i < 1000; i++) {
        uint64_t x = nnc_rng_next(&a);
        cr_assert_eq(x, nnc_rng_next(&b));
        differ += x != nnc_rng_next(&c);
    }
    cr_assert_gt(differ, 990);
}

Test(rng, uniform_in_unit_interval_on_24_bit_grid)
{
    nnc_rng r;
    double sum = 0.0;
    int i, n = 100000;

    nnc_rng_seed(&r, 1);
    for (i = 0; i < n; i++) {
        float u = nnc_rng_uniform(&r);
        cr_assert(u >= 0.0f && u < 1.0f, "u = %a", (double)u);
        cr_assert_eq(u * 16777216.0f, floorf(u * 16777216.0f));
        sum += u;
    }
    /* sd of the mean is sqrt(1/12/n) ~ 0.0009; allow 5 sd. */
    cr_assert(fabs(sum / n - 0.5) < 0.005, "mean %f", sum / n);
}

Test(rng, fill_uniform_bounds_and_mean)
{
    enum { N = 100000 };
    static float w[N + 1];
    double lo = -0.3, hi = 0.7, sum = 0.0, sd;
    nnc_rng r;
    int i;

    w[N] = 42.0f;
    nnc_rng_seed(&r, 2024);
    nnc_fill_uniform(w, N, lo, hi, &r);
    for (i = 0; i < N; i++) {
        /* u < 1, but lo + (hi - lo) * u may round up to hi in float. */
        cr_assert(w[i] >= (float)lo && w[i] <= (float)hi, "w = %a",
                  (double)w[i]);
        sum += w[i];
    }
    cr_assert_eq(w[N], 42.0f, "wrote past n");
    sd = (hi - lo) / sqrt(12.0 * N);
    cr_assert(fabs(sum / N - (lo + hi) / 2) < 5 * sd, "mean %f", sum / N);
}

Test(rng, fill_uniform_glorot_symmetric)
{
    float w[1000];
    double limit = sqrt(6.0 / (784 + 128));
    nnc_rng r;
    int i, neg = 0;

    nnc_rng_seed(&r, 3);
    nnc_fill_uniform(w, 1000, -limit, limit, &r);
    for (i = 0; i < 1000; i++) {
        cr_assert(fabs(w[i]) <= (float)limit);
        neg += w[i] < 0;
    }
    cr_assert(neg > 400 && neg < 600, "%d negative", neg);
}

Test(rng, fill_uniform_zero_length)
{
    float w = 1.0f;
    nnc_rng r, before;

    nnc_rng_seed(&r, 5);
    before = r;
    nnc_fill_uniform(&w, 0, 0.0, 1.0, &r);
    cr_assert_eq(w, 1.0f);
    cr_assert_eq(memcmp(&r, &before, sizeof r), 0, "consumed draws");
}
