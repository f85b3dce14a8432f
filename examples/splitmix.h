/*
 * splitmix.h - the examples' tiny deterministic PRNG (splitmix64), so that
 * every run on every machine makes the same data, whatever the C library's
 * rand() does. Define RNG_SEED before including it; each program that
 * includes it has its own stream. Static inline: a program pays nothing
 * for the draws it does not use.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

static uint64_t rng_state = RNG_SEED;

static inline uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 24 random bits (exact in a float). */
static inline float rng_float(void)
{
    return (float)(rng_next() >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in [0, 1), 53 random bits. */
static inline double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), for n much smaller than 2^32. */
static inline size_t rng_below(size_t n)
{
    return (size_t)((rng_next() >> 32) % n);
}

/* Standard normal (Box-Muller; one of the pair is enough here). */
static inline double rng_normal(void)
{
    const double two_pi = 6.283185307179586;
    double u = 1.0 - rng_uniform();   /* (0, 1]: log(u) is finite */
    return sqrt(-2.0 * log(u)) * cos(two_pi * rng_uniform());
}

/* Fisher-Yates: n elements of `size` bytes each into a uniformly random
 * order. */
static inline void rng_shuffle(void *base, size_t n, size_t size)
{
    unsigned char *a = base;
    size_t i, k;

    for (i = n; i-- > 1;) {
        size_t j = rng_below(i + 1);
        for (k = 0; k < size; k++) {
            unsigned char t = a[i * size + k];
            a[i * size + k] = a[j * size + k];
            a[j * size + k] = t;
        }
    }
}
