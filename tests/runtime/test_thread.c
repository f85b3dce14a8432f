/*
 * test_thread.c - the thread pool and the floating-point mode (thread.c):
 * nnc_parallel_for runs every chunk once for any thread count, nested and
 * concurrent calls included; nnc_fp_enter flushes denormals in the caller
 * and in the workers and nnc_fp_leave restores the caller's mode;
 * nnc_set_flush_denormals(0) keeps subnormals in GEMM and workers too;
 * GEMMs of training shapes and Adam give the same bits on 1 to 4 threads.
 */
#define _GNU_SOURCE 1   /* sched_setaffinity */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"
#include "pool.h"

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__)) || \
    (defined(__aarch64__) && defined(__GNUC__))
#define HAVE_FLUSH 1
#endif

/* A subnormal product, 0 when this thread flushes (volatile: computed at
 * run time, in this thread's mode). */
static int flushes(void)
{
    volatile float a = 1e-30f, b = 1e-10f;
    float p = a * b;
    return p == 0.0f;
}

static void busy_us(long us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* ---- nnc_parallel_for --------------------------------------------------- */

typedef struct Cover {
    int *hits;      /* per index */
    size_t n, chunk;
    int bad;        /* a chunk of the wrong size or out of range */
} Cover;

static void cover_range(void *arg, size_t lo, size_t hi)
{
    Cover *c = arg;
    if (hi > c->n || lo >= hi)
        __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
    for (size_t i = lo; i < hi; i++)
        __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

Test(pool, every_index_once)
{
    /* 65534 chunks of 1 are claimed from both ends, 65535 from the front */
    static const size_t ns[] = {1, 2, 3, 7, 64, 1000, 4097, 65534, 65535, 100000};
    static const size_t chunks[] = {1, 3, 64, 4096};

    for (int t = 1; t <= 4; t++) {
        nnc_set_num_threads(t);
        cr_assert(nnc_num_threads() == t || nnc_num_threads() == 1);  /* 1: no threads */
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t j = 0; j < sizeof chunks / sizeof chunks[0]; j++) {
                Cover c = {calloc(ns[i], sizeof(int)), ns[i], chunks[j], 0};
                cr_assert(c.hits);
                nnc_parallel_for(ns[i], chunks[j], cover_range, &c);
                cr_assert_eq(c.bad, 0);
                for (size_t k = 0; k < ns[i]; k++)
                    cr_assert_eq(c.hits[k], 1, "threads %d n %zu chunk %zu: index %zu ran %d times",
                                 t, ns[i], chunks[j], k, c.hits[k]);
                free(c.hits);
            }
    }
    nnc_set_num_threads(0);
}

/* A task that calls nnc_parallel_for again: runs on its thread alone. */
static void nested_range(void *arg, size_t lo, size_t hi)
{
    Cover *outer = arg;
    for (size_t i = lo; i < hi; i++) {
        int inner[10] = {0};
        Cover c = {inner, 10, 1, 0};
        nnc_parallel_for(10, 1, cover_range, &c);
        for (int k = 0; k < 10; k++)
            if (inner[k] != 1)
                __atomic_store_n(&outer->bad, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&outer->hits[i], 1, __ATOMIC_RELAXED);
    }
}

/* ---- Sites: threads only where they pay ---------------------------------- */

typedef struct Timed {
    long chunk_us, solo_us;
    int pooled, solo;   /* calls run each way */
} Timed;

static void timed_range(void *arg, size_t lo, size_t hi)
{
    Timed *t = arg;
    if (lo == 0)
        __atomic_add_fetch(&t->pooled, 1, __ATOMIC_RELAXED);
    busy_us(t->chunk_us * (long)(hi - lo));
}

static void timed_solo(void *arg)
{
    Timed *t = arg;
    t->solo++;
    busy_us(t->solo_us);
}

static void run_site(uint64_t key, Timed *t, int calls)
{
    for (int i = 0; i < calls; i++)
        nnc_parallel_site(key, 4, 1, timed_range, t, timed_solo, t);
}

/* On the real clock, which way a site goes depends on the machine and its
 * load, so this checks only that every call ran exactly once, one way or
 * the other; the choices are checked below on timings the test gives. */
Test(pool, site_runs_every_call_once)
{
    Timed t = {20, 30, 0, 0};
    uint64_t key = nnc_site_key(1, 2, 3, 4);
    nnc_set_num_threads(2);
    run_site(key, &t, 100);
    cr_assert_eq(t.pooled + t.solo, 100);
    nnc_set_num_threads(0);
}

/* Feeds a site `calls` calls that take pool_ns on the pool and solo_ns
 * alone, with every `spike`-th call 20x slower (a preemption); returns the
 * calls run on the pool. */
static int feed_site(uint64_t key, int calls, long long pool_ns, long long solo_ns, int spike)
{
    int pooled = 0;
    for (int i = 0; i < calls; i++) {
        int way = nnc_site_next(key);
        long long ns = way ? pool_ns : solo_ns;
        cr_assert(way == 0 || way == 1, "no pool");
        if (spike && i % spike == spike - 1)
            ns *= 20;
        pooled += way;
        cr_assert_eq(nnc_site_note(key, way, ns), 0);
    }
    return pooled;
}

Test(pool, site_runs_alone_where_threads_lose)
{
    uint64_t key = nnc_site_key(9, 2, 3, 4);
    int pooled;
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    pooled = feed_site(key, 2000, 800000, 100000, 0);
    cr_assert_eq(nnc_site_choice(key), 0, "threads chosen, though slower");
    /* two tries each, then probes of the slower way at doubling intervals
     * (8, 16, ..., 1024 calls): a dozen calls on the pool in all */
    cr_assert(pooled <= 14, "threads ran %d of 2000 calls, though slower", pooled);
    /* an occasional slow call alone does not hand the site to threads */
    pooled = feed_site(key, 2000, 800000, 100000, 97);
    cr_assert_eq(nnc_site_choice(key), 0);
    cr_assert(pooled <= 200, "threads ran %d of 2000 calls, though slower", pooled);
    nnc_set_num_threads(0);
}

Test(pool, site_threads_where_they_pay)
{
    uint64_t key = nnc_site_key(5, 6, 7, 8);
    int pooled;
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    pooled = feed_site(key, 1000, 200000, 3000000, 0);
    cr_assert_eq(nnc_site_choice(key), 1, "threads not chosen, though faster");
    cr_assert(pooled >= 980, "threads ran only %d of 1000 calls, though faster", pooled);
    pooled = feed_site(key, 1000, 200000, 3000000, 89);
    cr_assert_eq(nnc_site_choice(key), 1);
    cr_assert(pooled >= 900, "threads ran only %d of 1000 calls, though faster", pooled);
    nnc_set_num_threads(0);
}

/* When the machine changes (a competitor takes a core), the site follows. */
Test(pool, site_follows_a_change)
{
    uint64_t key = nnc_site_key(11, 12, 13, 14);
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    feed_site(key, 500, 200000, 300000, 0);
    cr_assert_eq(nnc_site_choice(key), 1);
    feed_site(key, 3000, 2000000, 300000, 0);
    cr_assert_eq(nnc_site_choice(key), 0, "still on threads after they became 7x slower");
    feed_site(key, 3000, 200000, 300000, 0);
    cr_assert_eq(nnc_site_choice(key), 1, "still alone after threads became faster again");
    nnc_set_num_threads(0);
}

Test(pool, nested_calls)
{
    int hits[50] = {0};
    Cover c = {hits, 50, 1, 0};
    nnc_set_num_threads(2);
    nnc_parallel_for(50, 1, nested_range, &c);
    cr_assert_eq(c.bad, 0);
    for (int k = 0; k < 50; k++)
        cr_assert_eq(hits[k], 1);
    nnc_set_num_threads(0);
}

/* Two application threads using the pool at once. */
static void *app_thread(void *p)
{
    Cover *c = p;
    for (int r = 0; r < 200; r++)
        nnc_parallel_for(c->n, c->chunk, cover_range, c);
    return NULL;
}

Test(pool, concurrent_callers)
{
    Cover c[2];
    pthread_t t[2];
    nnc_set_num_threads(3);
    for (int i = 0; i < 2; i++) {
        c[i] = (Cover){calloc(5000, sizeof(int)), 5000, 100, 0};
        cr_assert(c[i].hits);
        cr_assert_eq(pthread_create(&t[i], NULL, app_thread, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(c[i].bad, 0);
        for (int k = 0; k < 5000; k++)
            cr_assert_eq(c[i].hits[k], 200);
        free(c[i].hits);
    }
    nnc_set_num_threads(0);
}

Test(pool, thread_count)
{
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    setenv("NNC_NUM_THREADS", "3", 1);
    nnc_set_num_threads(0);
    cr_assert_eq(nnc_num_threads(), 3);
    unsetenv("NNC_NUM_THREADS");
    nnc_set_num_threads(0);
    cr_assert_geq(nnc_num_threads(), 1);
    nnc_set_num_threads(5);
    cr_assert_eq(nnc_num_threads(), 5);
    nnc_set_num_threads(-1);
    cr_assert_geq(nnc_num_threads(), 1);
}

#ifdef __linux__
/* The default is the CPUs the process may run on: one after pinning. */
Test(pool, default_follows_affinity)
{
    cpu_set_t all, one;
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    unsetenv("NNC_NUM_THREADS");
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    nnc_set_num_threads(0);
    cr_assert_leq(nnc_num_threads(), CPU_COUNT(&all));
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    nnc_set_num_threads(0);
    cr_assert_eq(nnc_num_threads(), 1);
    sched_setaffinity(0, sizeof all, &all);
}
#endif

/* ---- Denormals ------------------------------------------------------------ */

Test(fpmode, enter_flushes_leave_restores)
{
#ifndef HAVE_FLUSH
    cr_skip_test("no flush-to-zero control on this architecture");
#else
    nnc_set_flush_denormals(1);
    cr_assert_eq(nnc_flush_denormals(), 1);
    cr_assert_eq(flushes(), 0, "the test starts in IEEE mode");
    nnc_fpmode outer = nnc_fp_enter();
    cr_assert_eq(flushes(), 1, "nnc_fp_enter flushes");
    nnc_fpmode inner = nnc_fp_enter();   /* nested: still flushed after leave */
    nnc_fp_leave(inner);
    cr_assert_eq(flushes(), 1);
    nnc_fp_leave(outer);
    cr_assert_eq(flushes(), 0, "nnc_fp_leave restores the caller's mode");

    nnc_set_flush_denormals(0);
    cr_assert_eq(nnc_flush_denormals(), 0);
    outer = nnc_fp_enter();
    cr_assert_eq(flushes(), 0, "nnc_set_flush_denormals(0) keeps subnormals");
    nnc_fp_leave(outer);
    nnc_set_flush_denormals(1);
#endif
}

typedef struct Modes {
    int flushed[64], ran;
    pthread_t who[64];
} Modes;

static void mode_range(void *arg, size_t lo, size_t hi)
{
    Modes *m = arg;
    for (size_t i = lo; i < hi; i++) {
        busy_us(300);   /* long enough that the workers take some */
        m->flushed[i] = flushes();
        m->who[i] = pthread_self();
    }
}

/* Runs 64 chunks on 2 threads; returns how many were flushed and sets
 * *workers to the number the caller did not run. */
static int run_modes(int *workers)
{
    Modes m;
    int f = 0;
    memset(&m, 0, sizeof m);
    nnc_parallel_for(64, 1, mode_range, &m);
    *workers = 0;
    for (int i = 0; i < 64; i++) {
        f += m.flushed[i];
        *workers += !pthread_equal(m.who[i], pthread_self());
    }
    return f;
}

Test(fpmode, workers_take_the_callers_mode)
{
#ifndef HAVE_FLUSH
    cr_skip_test("no flush-to-zero control on this architecture");
#else
    int w1, w2, w3, tries = 0;
    nnc_set_num_threads(2);
    if (nnc_num_threads() == 1)
        cr_skip_test("built without threads");
    do {   /* a busy machine may leave the caller alone: try a few times */
        nnc_fpmode mode = nnc_fp_enter();
        cr_assert_eq(run_modes(&w1), 64, "every task flushes in a flushing caller");
        nnc_fp_leave(mode);
        cr_assert_eq(run_modes(&w2), 0, "no task flushes in an IEEE caller");
        nnc_set_flush_denormals(0);
        mode = nnc_fp_enter();
        cr_assert_eq(run_modes(&w3), 0, "no task flushes after nnc_set_flush_denormals(0)");
        nnc_fp_leave(mode);
        nnc_set_flush_denormals(1);
    } while ((w1 == 0 || w2 == 0) && ++tries < 20);
    cr_expect_gt(w1 + w2, 0, "the workers never ran a task (a very busy machine?)");
    nnc_set_num_threads(0);
#endif
}

/* A large GEMM (threaded) of subnormal A by ones: 0 where flushed. */
Test(fpmode, gemm_flushes_unless_kept)
{
#ifndef HAVE_FLUSH
    cr_skip_test("no flush-to-zero control on this architecture");
#else
    enum { M = 300, N = 200, K = 100 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c = malloc(sizeof(float) * M * N);
    cr_assert(a && b && c);
    for (int i = 0; i < M * K; i++)
        a[i] = 1e-39f;
    for (int i = 0; i < K * N; i++)
        b[i] = 1.0f;
    for (int t = 1; t <= 2; t++) {
        nnc_set_num_threads(t);
        nnc_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        for (int i = 0; i < M * N; i++)
            cr_assert_eq(c[i], 0.0f, "threads %d: subnormal A not flushed at %d", t, i);
        cr_assert_eq(flushes(), 0, "nnc_sgemm restores the caller's mode");
        nnc_set_flush_denormals(0);
        nnc_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        nnc_set_flush_denormals(1);
        for (int i = 0; i < M * N; i++)
            cr_assert_eq(c[i], 1e-39f * K, "threads %d: subnormals not kept at %d", t, i);
    }
    nnc_set_num_threads(0);
    free(a);
    free(b);
    free(c);
#endif
}

/* Adam over subnormal gradients and moments, threaded: the same bits on
 * 1 to 4 threads in each mode; flushed, the second moments become 0. */
Test(fpmode, adam_on_subnormals)
{
#ifndef HAVE_FLUSH
    cr_skip_test("no flush-to-zero control on this architecture");
#else
    enum { N = 200000 };
    float *p[2][5], *m[2][5], *v[2][5], *g = malloc(sizeof(float) * N);
    cr_assert(g);
    for (int i = 0; i < N; i++)
        g[i] = (float)(i % 7 + 1) * 1e-39f;
    for (int keep = 0; keep < 2; keep++)
        for (int t = 1; t <= 4; t++) {
            p[keep][t] = malloc(sizeof(float) * N), m[keep][t] = malloc(sizeof(float) * N);
            v[keep][t] = malloc(sizeof(float) * N);
            cr_assert(p[keep][t] && m[keep][t] && v[keep][t]);
            for (int i = 0; i < N; i++)
                p[keep][t][i] = 0.5f, m[keep][t][i] = 2e-39f, v[keep][t][i] = 3e-39f;
            nnc_set_num_threads(t);
            nnc_set_flush_denormals(!keep);
            nnc_fpmode mode = nnc_fp_enter();
            for (int s = 1; s <= 3; s++)
                nnc_adam_update(p[keep][t], g, m[keep][t], v[keep][t], N, 0.1f, 0.999f, 0.001f,
                                1e-8f, 0.001f / (1.0f - powf(0.9f, (float)s)),
                                sqrtf(1.0f - powf(0.999f, (float)s)));
            nnc_fp_leave(mode);
            nnc_set_flush_denormals(1);
            if (t > 1) {
                cr_assert_eq(memcmp(p[keep][t], p[keep][1], sizeof(float) * N), 0,
                             "adam: %d threads differ from 1 (keep %d)", t, keep);
                cr_assert_eq(memcmp(v[keep][t], v[keep][1], sizeof(float) * N), 0);
                cr_assert_eq(memcmp(m[keep][t], m[keep][1], sizeof(float) * N), 0);
            }
        }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(v[0][1][i], 0.0f, "flushed: v[%d] = %g", i, (double)v[0][1][i]);
        cr_assert_neq(v[1][1][i], 0.0f, "kept: v[%d] is 0", i);
    }
    for (int keep = 0; keep < 2; keep++)
        for (int t = 1; t <= 4; t++)
            free(p[keep][t]), free(m[keep][t]), free(v[keep][t]);
    free(g);
    nnc_set_num_threads(0);
#endif
}

/* ---- GEMM of training shapes on 1 to 4 threads ------------------------------ */

Test(gemm_threads, training_shapes_identical_bits)
{
    /* ta, tb, m, n, k: the Fashion-MNIST MLP (batch 64, 784-256-128-10)
     * and CNN (im2col rows 64*26*26 and 64*10*10) forward (B^T), weight
     * gradients (A^T) and input gradients */
    static const int shapes[][5] = {
        {0, 1, 64, 256, 784}, {0, 1, 64, 128, 256}, {0, 1, 64, 10, 128},
        {1, 0, 256, 784, 64}, {1, 0, 128, 256, 64}, {1, 0, 10, 128, 64},
        {0, 0, 64, 256, 128}, {0, 0, 64, 128, 10},
        {0, 1, 43264, 32, 9}, {0, 1, 6400, 64, 288}, {0, 1, 64, 128, 1600},
        {1, 0, 32, 9, 43264}, {1, 0, 64, 288, 6400}, {1, 0, 128, 1600, 64},
        {0, 0, 6400, 288, 64}, {0, 0, 64, 1600, 128}, {0, 0, 257, 301, 299},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], m = shapes[s][2], n = shapes[s][3];
        int k = shapes[s][4], lda = ta ? m : k, ldb = tb ? k : n;
        size_t la = (size_t)m * (size_t)k, lb = (size_t)k * (size_t)n, lc = (size_t)m * (size_t)n;
        float *a = malloc(la * sizeof(float)), *b = malloc(lb * sizeof(float));
        float *c[5];
        nnc_rng r;
        cr_assert(a && b);
        nnc_rng_seed(&r, (uint64_t)s);
        nnc_fill_uniform(a, la, -1, 1, &r);
        nnc_fill_uniform(b, lb, -1, 1, &r);
        for (int t = 1; t <= 4; t++) {
            c[t] = malloc(lc * sizeof(float));
            cr_assert(c[t]);
            for (size_t i = 0; i < lc; i++)
                c[t][i] = (float)(i % 13) * 0.25f;
            nnc_set_num_threads(t);
            nnc_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, s % 2 ? 1.0f : 0.0f, c[t], n);
            if (t > 1)
                cr_assert_eq(memcmp(c[t], c[1], lc * sizeof(float)), 0,
                             "%s: %d threads differ from 1: ta=%d tb=%d %dx%dx%d", nnc_isa(), t,
                             ta, tb, m, n, k);
        }
        for (int t = 1; t <= 4; t++)
            free(c[t]);
        free(a);
        free(b);
    }
    nnc_set_num_threads(0);
}
