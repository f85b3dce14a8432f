/*
 * seed_bench.c - times the seed model (examples/seed.nn) compiled by nnc.
 *
 *     nnc examples/seed.nn --prefix seed -o DIR/seed.c
 *     cc -O2 -IDIR -I<nnc>/runtime bench/seed_bench.c DIR/seed.c \
 *        <nnc>/.libs/libnncrt.a -lcjson -lm
 *     ./a.out [train] [predict] [fit] [--samples R] [--steps N]
 *
 * Steady state: before train and predict are timed, the model trains N
 * steps (--steps, default 10000, or $NNC_BENCH_STEPS; N x 32 / B at a
 * batch B other than 32: the same samples) on synthetic data:
 * a pool of 64 batches of inputs uniform in [0, 1) (splitmix64 from seed
 * 42) labelled by a fixed random linear teacher, label = [w . (x - 0.5) >
 * 0] with w uniform in [-1, 1) drawn first from the same stream (the
 * Python peers build the same data, bench/peer.py seed_data). Training
 * steps cycle through the pool, timed ones too.
 *
 * Prints one "key value" line per figure, times in microseconds:
 *   train_bB_us    one seed_train_step at the compiled batch B, after the
 *                  N training steps
 *   train_bB_fresh_us  the same on the initial weights: the context is put
 *                  back (seed_init in memory of ours) after every block
 *   predict_b1_us  seed_predict of 1 sample, predict_b100_us of 100, with
 *                  the trained weights
 *   fit_us         10 epochs on 1000 random samples at batch B, with a
 *                  fresh shuffle per epoch (like examples/seed_main.c),
 *                  from fresh weights (the whole fit is timed)
 *   warmup_steps, warmup_loss_first, warmup_loss_last: the training
 *                  before timing (mean loss of its first and last 64 steps)
 *   peak_gflops    the runtime's measured one-core peak (nnc_peak_gflops)
 * Each figure is the median of R samples (default 301) after a warm-up;
 * a sample times a block of K back-to-back calls (K chosen so a block
 * lasts about 1 ms) and is divided by K, so that the clock's own cost
 * does not count for sub-microsecond calls. The model is compiled with
 * --prefix seed whatever its batch, so one source serves every copy.
 * The thread count is whatever the runtime takes from NNC_NUM_THREADS.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seed.h"

#define N_TRAIN 1000
#define EPOCHS 10

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static uint64_t rng_state = 42;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static float rng_float(void)
{
    return (float)(rng_next() >> 40) * (1.0f / 16777216.0f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- What is timed ------------------------------------------------------ */

#define POOL 64

static seed_ctx *ctx;
static float *xb, *yb, *xp, *yp;
static size_t pred_n;
static long cursor;
static volatile float sink;

static float step(void)
{
    long b = cursor++ % POOL;
    return seed_train_step(ctx, xb + b * SEED_BATCH * SEED_IN, yb + b * SEED_BATCH * SEED_OUT);
}

static void do_train(void) { sink = step(); }

/* fresh weights: the context's memory is put back every call of ten */
static unsigned char *ctx_mem, *ctx_copy;
static int fresh_calls;

static void do_train_fresh(void)
{
    if (fresh_calls++ % 10 == 0)
        memcpy(ctx_mem, ctx_copy, SEED_MEM_BYTES);
    sink = step();
}

static void do_predict(void)
{
    if (seed_predict(ctx, xp, yp, pred_n) != 0)
        abort();
    sink = yp[0];
}

/* Warm up for about 0.2 s, pick K for ~1 ms blocks, return the median of
 * nsamp per-call times in microseconds. */
static double bench(void (*f)(void), int nsamp)
{
    double t0, per, *s;
    long k, i, calls = 0;
    int j;

    t0 = now_us();
    do {
        f();
        calls++;
    } while (now_us() - t0 < 200000.0 || calls < 10);
    per = (now_us() - t0) / (double)calls;
    k = (long)(1000.0 / per);
    if (k < 1)
        k = 1;
    s = malloc((size_t)nsamp * sizeof *s);
    if (s == NULL)
        abort();
    for (j = 0; j < nsamp; j++) {
        t0 = now_us();
        for (i = 0; i < k; i++)
            f();
        s[j] = (now_us() - t0) / (double)k;
    }
    per = median(s, nsamp);
    free(s);
    return per;
}

/* 10 epochs at batch SEED_BATCH over 1000 samples, shuffled each epoch;
 * the last partial batch is dropped, as in examples/seed_main.c. */
static float fit(seed_ctx *c, const float *x, const float *y, size_t *order)
{
    size_t nb = N_TRAIN / SEED_BATCH, b, i, j;
    float loss = 0;
    int e;

    for (e = 0; e < EPOCHS; e++) {
        for (i = N_TRAIN - 1; i > 0; i--) {
            size_t r = (size_t)((rng_next() >> 32) % (i + 1)), t = order[i];
            order[i] = order[r];
            order[r] = t;
        }
        for (b = 0; b < nb; b++) {
            for (i = 0; i < SEED_BATCH; i++) {
                size_t k = order[b * SEED_BATCH + i];
                memcpy(xb + i * SEED_IN, x + k * SEED_IN,
                       SEED_IN * sizeof *x);
                for (j = 0; j < SEED_OUT; j++)
                    yb[i * SEED_OUT + j] = y[k * SEED_OUT + j];
            }
            loss = seed_train_step(c, xb, yb);
        }
    }
    return loss;
}

int main(int argc, char **argv)
{
    int do_t = 0, do_p = 0, do_f = 0, nsamp = 301, fit_runs = 21, a;
    size_t i;

    const char *env = getenv("NNC_BENCH_STEPS");
    long steps = env && *env ? atol(env) : 10000;    /* at batch 32 */

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--steps") == 0 && a + 1 < argc)
            steps = atol(argv[++a]);
        else if (strcmp(argv[a], "train") == 0)
            do_t = 1;
        else if (strcmp(argv[a], "predict") == 0)
            do_p = 1;
        else if (strcmp(argv[a], "fit") == 0)
            do_f = 1;
        else if (strcmp(argv[a], "--samples") == 0 && a + 1 < argc)
            nsamp = atoi(argv[++a]);
        else if (strcmp(argv[a], "--fit-runs") == 0 && a + 1 < argc)
            fit_runs = atoi(argv[++a]);
        else {
            fprintf(stderr, "usage: %s [train] [predict] [fit] "
                    "[--samples R] [--fit-runs R] [--steps N]\n", argv[0]);
            return 2;
        }
    }
    if (!do_t && !do_p && !do_f)
        do_t = do_p = do_f = 1;
    if (nsamp < 1 || fit_runs < 1 || steps < 0)
        return 2;
    steps = steps * 32 / SEED_BATCH;    /* the same samples at any batch */

    xb = malloc(POOL * SEED_BATCH * SEED_IN * sizeof *xb);
    yb = malloc(POOL * SEED_BATCH * SEED_OUT * sizeof *yb);
    xp = xb;
    yp = malloc(100 * SEED_OUT * sizeof *yp);
    if (posix_memalign((void **)&ctx_mem, 64, SEED_MEM_BYTES) != 0)
        ctx_mem = NULL;
    ctx_copy = malloc(SEED_MEM_BYTES);
    ctx = ctx_mem ? seed_init(ctx_mem, SEED_MEM_BYTES, 1234) : NULL;
    if (!xb || !yb || !yp || !ctx || !ctx_copy) {
        fprintf(stderr, "seed_bench: out of memory\n");
        return 1;
    }
    {   /* the data: a fixed random linear teacher's labels */
        double w[SEED_IN];
        size_t j;

        for (j = 0; j < SEED_IN; j++)
            w[j] = 2.0 * rng_float() - 1.0;
        for (i = 0; i < POOL * SEED_BATCH * SEED_IN; i++)
            xb[i] = rng_float();
        for (i = 0; i < POOL * SEED_BATCH; i++) {
            double z = 0;
            for (j = 0; j < SEED_IN; j++)
                z += w[j] * ((double)xb[i * SEED_IN + j] - 0.5);
            for (j = 0; j < SEED_OUT; j++)
                yb[i * SEED_OUT + j] = z > 0 ? 1.0f : 0.0f;
        }
    }
    printf("peak_gflops %.1f\n", nnc_peak_gflops());
    printf("threads %d\n", nnc_num_threads());
    if (do_t) {
        memcpy(ctx_copy, ctx_mem, SEED_MEM_BYTES);
        printf("train_b%d_fresh_us %.4f\n", SEED_BATCH, bench(do_train_fresh, nsamp));
        memcpy(ctx_mem, ctx_copy, SEED_MEM_BYTES);
        cursor = 0;
    }
    if (do_t || do_p) {     /* the steady state: train before timing */
        double first = 0, last = 0, t0 = now_us();
        long s, avg = steps < POOL ? steps : POOL;

        for (s = 0; s < steps; s++) {
            float l = step();
            if (s < avg)
                first += l;
            if (s >= steps - avg)
                last += l;
        }
        printf("warmup_steps %ld\n", steps);
        printf("warmup_s %.3f\n", (now_us() - t0) * 1e-6);
        if (avg > 0) {
            printf("warmup_loss_first %.4f\n", first / (double)avg);
            printf("warmup_loss_last %.4f\n", last / (double)avg);
        }
    }
    if (do_t)
        printf("train_b%d_us %.4f\n", SEED_BATCH, bench(do_train, nsamp));
    if (do_p) {
        pred_n = 1;
        printf("predict_b1_us %.4f\n", bench(do_predict, nsamp));
        pred_n = 100;
        printf("predict_b100_us %.4f\n", bench(do_predict, nsamp));
    }
    if (do_f) {
        float *x = malloc(N_TRAIN * SEED_IN * sizeof *x);
        float *y = malloc(N_TRAIN * SEED_OUT * sizeof *y);
        size_t *order = malloc(N_TRAIN * sizeof *order);
        double *s = malloc((size_t)(fit_runs + 1) * sizeof *s);
        float loss = 0;
        int r;

        if (!x || !y || !order || !s)
            return 1;
        for (i = 0; i < N_TRAIN * SEED_IN; i++)
            x[i] = rng_float();
        for (i = 0; i < N_TRAIN * SEED_OUT; i++)
            y[i] = (float)(rng_next() >> 63);
        /* run 0 is a warm-up; each run trains a fresh model */
        for (r = 0; r <= fit_runs; r++) {
            seed_ctx *c = seed_create(1234 + (uint64_t)r);
            double t0;

            if (c == NULL)
                return 1;
            for (i = 0; i < N_TRAIN; i++)
                order[i] = i;
            t0 = now_us();
            loss = fit(c, x, y, order);
            s[r] = now_us() - t0;
            seed_destroy(c);
        }
        printf("fit_us %.1f\n", median(s + 1, fit_runs));
        printf("fit_final_loss %.4f\n", loss);
        free(x); free(y); free(order); free(s);
    }
    seed_destroy(ctx);
    free(ctx_mem); free(ctx_copy);
    free(xb); free(yb); free(yp);
    return 0;
}
