/*
 * pool.h - libnncrt's internal entry to the thread pool (not installed).
 *
 * nnc_parallel_site runs one parallel loop of a call site that repeats
 * (the same GEMM shape, the same update, every training step): on the
 * pool, fn(arg, lo, hi) over chunks of [0, n), or on the caller alone,
 * solo(arg), whichever the site's recent timings say is faster (see
 * thread.c, "Sites"). key names the site: equal keys must mean the same
 * amount of work. Both ways must give the same bits.
 */
#ifndef NNC_POOL_H
#define NNC_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "nncrt.h"

void nnc_parallel_site(uint64_t key, size_t n, size_t chunk, nnc_range_fn fn, void *arg,
                       void (*solo)(void *), void *solo_arg);

/* For tests: the way a site runs now, 1 on the pool, 0 on the caller
 * alone, -1 not known yet (or no pool). */
int nnc_site_choice(uint64_t key);

/* For tests: the site policy without a clock. nnc_site_next says how the
 * next call of key would run (1 pool, 0 alone) and counts it as a call;
 * nnc_site_note records that the call took ns that way. A test can feed
 * timings of its own and check the choices, the same on any machine.
 * Both return -1 (and do nothing) without a pool. */
int nnc_site_next(uint64_t key);
int nnc_site_note(uint64_t key, int way, long long ns);

/* Scratch from the GEMM's buffer slots (gemm.c): allocated on first use
 * and kept, so that a call repeating every step allocates nothing after
 * the first; p is NULL when memory runs out. Every get is put back. */
typedef struct nnc_scratch {
    float *p;
    void *raw;
    int slot;           /* -1: raw is a private allocation */
} nnc_scratch;

nnc_scratch nnc_scratch_get(size_t floats);
void nnc_scratch_put(nnc_scratch s);

/* A key from a few sizes (FNV-1a over their bytes). */
static inline uint64_t nnc_site_key(uint64_t tag, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t v[4] = {tag, a, b, c}, h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)v;
    size_t i;
    for (i = 0; i < sizeof v; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#endif
