/*
 * cpus.c - how the two CPUs a 2-thread or 2-rank figure runs on relate,
 * printed beside the benchmark tables (bench/run.sh, tests/mpi/bench.sh).
 *
 * On a virtual machine the two CPUs may be two cores sharing an L3, two
 * cores on different L3s (another CCX or die: data one thread wrote
 * reaches the other through memory), or the two hyperthreads of one core
 * (the FMA units shared), and the host may move them between these from
 * one minute to the next. Measured on a 2-vCPU EPYC VM: a cache line's
 * round trip between the CPUs read 80 ns in one minute and 250 ns in
 * another, and a 2-thread GEMM whose operands had left the caches went
 * from 1.45x to 1.1x one thread. So the figures of 2 threads and 2 ranks
 * are shown with this:
 *
 *   round_trip_ns  a cache line handed from CPU A to CPU B and back
 *                  (median of 9 runs of up to 20,000 round trips, each cut
 *                  at 0.1 s: a CPU busy with another process answers late)
 *   fma_alone      GFLOP/s of an FMA loop on CPU A alone
 *   fma_both       the same on CPU A and on CPU B, both at once (about
 *                  fma_alone: separate cores; about half: one core's two
 *                  hyperthreads, or a busy neighbour on the host's core)
 *
 * Usage: cpus [A B]  (default: the first two CPUs the process may use).
 * Prints "key value" lines; exits 0 with a note when there are fewer
 * than two CPUs, 1 on an error. Linux only (sched_setaffinity).
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIPS 20000
#define RUNS 9
#define FMA_ITERS 40000000L

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t s;

    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* ---- Round trip --------------------------------------------------------- */

static _Alignas(64) atomic_int flag;
static _Alignas(64) atomic_int go, stop;

typedef struct {
    int cpu, ok;
} Peer;

/* Hands the line back until told to stop. */
static void *echo(void *arg)
{
    Peer *p = arg;

    p->ok = pin(p->cpu) == 0;
    atomic_store(&go, 1);
    for (;;) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1)
            if (atomic_load_explicit(&stop, memory_order_relaxed))
                return NULL;
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of RUNS runs of up to TRIPS round trips, each run cut short
 * after RUN_MAX_S (a CPU busy with another process answers only when
 * the scheduler lets it: milliseconds, not nanoseconds). */
#define RUN_MAX_S 0.1

static double round_trip(int a, int b)
{
    pthread_t t;
    Peer p = {b, 0};
    double ns[RUNS];
    int r, i;

    if (pin(a) != 0 || pthread_create(&t, NULL, echo, &p) != 0)
        return -1;
    while (!atomic_load(&go))
        ;
    for (r = 0; r < RUNS; r++) {
        double t0 = now(), dt = 0;
        for (i = 0; i < TRIPS && dt < RUN_MAX_S; i++) {
            atomic_store_explicit(&flag, 1, memory_order_release);
            while (atomic_load_explicit(&flag, memory_order_acquire) != 0)
                ;
            if (i % 256 == 255)
                dt = now() - t0;
        }
        ns[r] = (now() - t0) * 1e9 / i;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    if (!p.ok)
        return -1;
    qsort(ns, RUNS, sizeof ns[0], cmp_double);
    return ns[RUNS / 2];
}

/* ---- FMA throughput ----------------------------------------------------- */

/* Twelve independent multiply-add chains of 8 floats in GCC/clang vector
 * types: FMA instructions with -march=native on x86-64 (vmulps and vaddps
 * without FMA: a lower figure, the same for both runs, so the ratio
 * holds). */
typedef float v8 __attribute__((vector_size(32)));

static double fma_gflops(void)
{
    v8 x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, m, c, t;
    double t0;
    long it;
    int j;

    for (j = 0; j < 8; j++) {
        x0[j] = 0.01f * (float)j, m[j] = 0.9999f, c[j] = 1e-4f;
    }
    x1 = x0 + c, x2 = x1 + c, x3 = x2 + c, x4 = x3 + c, x5 = x4 + c;
    x6 = x5 + c, x7 = x6 + c, x8 = x7 + c, x9 = x8 + c, x10 = x9 + c, x11 = x10 + c;
    t0 = now();
    for (it = 0; it < FMA_ITERS; it++) {
        x0 = x0 * m + c, x1 = x1 * m + c, x2 = x2 * m + c, x3 = x3 * m + c;
        x4 = x4 * m + c, x5 = x5 * m + c, x6 = x6 * m + c, x7 = x7 * m + c;
        x8 = x8 * m + c, x9 = x9 * m + c, x10 = x10 * m + c, x11 = x11 * m + c;
    }
    t0 = now() - t0;
    t = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11;
    if (t[0] != t[0] || t0 <= 0)
        return 0;
    return 2.0 * 96.0 * (double)FMA_ITERS / t0 * 1e-9;
}

typedef struct {
    int cpu;
    double gf;
} Fma;

static void *fma_on(void *arg)
{
    Fma *f = arg;

    f->gf = pin(f->cpu) == 0 ? fma_gflops() : -1;
    return NULL;
}

int main(int argc, char **argv)
{
    cpu_set_t s;
    int a = -1, b = -1, cpu;
    pthread_t ta, tb;
    Fma alone, both_a, both_b;
    double rt;

    if (argc == 3) {
        a = atoi(argv[1]), b = atoi(argv[2]);
    } else if (sched_getaffinity(0, sizeof s, &s) == 0) {
        for (cpu = 0; cpu < CPU_SETSIZE && b < 0; cpu++)
            if (CPU_ISSET(cpu, &s)) {
                if (a < 0)
                    a = cpu;
                else
                    b = cpu;
            }
    }
    if (a < 0 || b < 0) {
        printf("note fewer than two CPUs: nothing to measure\n");
        return 0;
    }
    rt = round_trip(a, b);
    if (rt < 0) {
        fprintf(stderr, "cpus: cannot pin threads to CPUs %d and %d\n", a, b);
        return 1;
    }
    alone.cpu = a;
    both_a.cpu = a, both_b.cpu = b;
    if (pthread_create(&ta, NULL, fma_on, &alone) != 0)
        return 1;
    pthread_join(ta, NULL);
    if (pthread_create(&ta, NULL, fma_on, &both_a) != 0 ||
        pthread_create(&tb, NULL, fma_on, &both_b) != 0)
        return 1;
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("cpus %d %d\n", a, b);
    printf("round_trip_ns %.0f\n", rt);
    printf("fma_alone %.1f\n", alone.gf);
    printf("fma_both %.1f %.1f\n", both_a.gf, both_b.gf);
    return 0;
}
