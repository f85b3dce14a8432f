/*
 * rng.c - nnc's own pseudo-random numbers: xoshiro256** (Blackman and
 * Vigna), seeded by expanding a 64-bit seed with splitmix64, plus the
 * uniform parameter initializer built on it.
 *
 * The point is reproducibility, not speed: the integer stream depends only
 * on the seed, and floats are derived from it with exact operations (the
 * top 24 bits of a draw times 2^-24, then one double-precision affine map
 * rounded once to float), so the same seed gives bit-identical weights on
 * every platform and compiler, which libc's rand() cannot promise.
 *
 * splitmix64 never yields four zero words in a row, so the xoshiro state is
 * never all zero (its one fixed point).
 */
#include "nncrt.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void nnc_rng_seed(nnc_rng *r, uint64_t seed)
{
    int i;

    for (i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t nnc_rng_next(nnc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float nnc_rng_uniform(nnc_rng *r)
{
    /* A 24-bit integer and a power of two: both conversions are exact. */
    return (float)(nnc_rng_next(r) >> 40) * 0x1.0p-24f;
}

/* The volatiles force each step to be rounded to double on its own: without
 * them a compiler may fuse the multiply and add into one FMA (clang does by
 * default, gcc in GNU modes, on targets that have it). That rounds
 * differently; after the final rounding to float it rarely shows (none in
 * a million draws tried), but when it does the weights depend on the
 * target. */
void nnc_fill_uniform(float *w, size_t n, double lo, double hi, nnc_rng *r)
{
    volatile double range = hi - lo;
    size_t i;

    for (i = 0; i < n; i++) {
        volatile double scaled = range * (double)nnc_rng_uniform(r);
        volatile double sum = lo + scaled;

        w[i] = (float)sum;
    }
}
