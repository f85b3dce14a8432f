/*
 * seed_bench.c - times the seed model (examples/seed.nn) compiled by nnc.
 *
 *     nnc examples/seed.nn --prefix seed -o DIR/seed.c
 *     cc -O2 -IDIR -I<nnc>/runtime bench/seed_bench.c DIR/seed.c \
 *        <nnc>/.libs/libnncrt.a -lcjson -lm
 *     ./a.out [train] [predict] [fit] [--samples R]
 *
 * Prints one "key value" line per figure, times in microseconds:
 *   train_bB_us    one seed_train_step at the compiled batch B
 *   predict_b1_us  seed_predict of 1 sample, predict_b100_us of 100
 *   fit_us         10 epochs on 1000 random samples at batch B, with a
 *                  fresh shuffle per epoch (like examples/seed_main.c)
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

static seed_ctx *ctx;
static float *xb, *yb, *xp, *yp;
static size_t pred_n;
static volatile float sink;

static void do_train(void) { sink = seed_train_step(ctx, xb, yb); }

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

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "train") == 0)
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
                    "[--samples R] [--fit-runs R]\n", argv[0]);
            return 2;
        }
    }
    if (!do_t && !do_p && !do_f)
        do_t = do_p = do_f = 1;
    if (nsamp < 1 || fit_runs < 1)
        return 2;

    xb = malloc(SEED_BATCH * SEED_IN * sizeof *xb);
    yb = malloc(SEED_BATCH * SEED_OUT * sizeof *yb);
    xp = malloc(100 * SEED_IN * sizeof *xp);
    yp = malloc(100 * SEED_OUT * sizeof *yp);
    ctx = seed_create(1234);
    if (!xb || !yb || !xp || !yp || !ctx) {
        fprintf(stderr, "seed_bench: out of memory\n");
        return 1;
    }
    for (i = 0; i < SEED_BATCH * SEED_IN; i++)
        xb[i] = rng_float();
    for (i = 0; i < SEED_BATCH * SEED_OUT; i++)
        yb[i] = (float)(rng_next() >> 63);
    for (i = 0; i < 100 * SEED_IN; i++)
        xp[i] = rng_float();

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
    free(xb); free(yb); free(xp); free(yp);
    return 0;
}
