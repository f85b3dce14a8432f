/*
 * rings_main.c - a learnable task for rings.nn: which ring is a point in?
 *
 *     nnc rings.nn -o rings.c      # writes rings.c and rings.h
 *     cc -std=c99 -O2 -I<nnc>/runtime rings_main.c rings.c \
 *        <nnc>/.libs/libnncrt.a -lcjson -lm       # in a build tree
 *     # or, with nnc installed:
 *     cc -std=c99 -O2 rings_main.c rings.c $(pkg-config --cflags --libs nncrt) -lm
 *     ./a.out
 *
 * Each point gets a class c in {0, 1, 2}, a radius uniform in [c, c+1)
 * and a uniform angle, then a little Gaussian jitter (sigma 0.05), so
 * points near a boundary can land on the wrong side and 100% accuracy is
 * out of reach. The classes need a curved (circular) boundary, which the
 * network has to learn from x and y alone.
 *
 * It trains for 20 epochs on 1536 points (48 batches of 32, reshuffled
 * every epoch), printing the mean loss and the training accuracy per
 * epoch, then reports the accuracy on 512 held-out points. The class is
 * the argmax of the logits that rings_predict returns. Chance is 33%;
 * the loss falls from about 0.94 to 0.09 and test accuracy ends near 97%.
 * Exits 1 if test accuracy is below 90%, so the example doubles as an
 * end-to-end test. The data come from our own splitmix64 PRNG, so every
 * run prints the same.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rings.h"
#include "nncrt.h"   /* nnc_strerror */

#define N_TRAIN 1536        /* a multiple of RINGS_BATCH: no partial batch */
#define N_TEST  512
#define EPOCHS  20
#define JITTER  0.05

#if RINGS_IN != 2 || RINGS_OUT != 3
#error "rings_main.c expects rings.nn's shapes: 2 inputs, 3 classes"
#endif

/* ---- A tiny deterministic PRNG (splitmix64) ----------------------------- */

#define RNG_SEED 7
#include "splitmix.h"

/* ---- Data -------------------------------------------------------------- */

typedef struct {
    float xy[RINGS_IN];
    int label;
} Point;

static Point train[N_TRAIN], test[N_TEST];
static float x_batch[RINGS_BATCH][RINGS_IN], y_batch[RINGS_BATCH][RINGS_OUT];
static float x_all[N_TRAIN][RINGS_IN], logits[N_TRAIN][RINGS_OUT];

static void make_points(Point *p, size_t n)
{
    const double two_pi = 6.283185307179586;
    size_t i;

    for (i = 0; i < n; i++) {
        int c = (int)rng_below(RINGS_OUT);
        double r = c + rng_uniform(), t = two_pi * rng_uniform();
        p[i].xy[0] = (float)(r * cos(t) + JITTER * rng_normal());
        p[i].xy[1] = (float)(r * sin(t) + JITTER * rng_normal());
        p[i].label = c;
    }
}

/* ---- Training and evaluation ------------------------------------------- */

/* One epoch over train[] in a fresh order; returns the mean batch loss. */
static double train_epoch(rings_ctx *ctx)
{
    size_t nbatches = N_TRAIN / RINGS_BATCH, b, i, j;
    double total = 0;

    rng_shuffle(train, N_TRAIN, sizeof train[0]);
    for (b = 0; b < nbatches; b++) {
        for (i = 0; i < RINGS_BATCH; i++) {
            const Point *p = &train[b * RINGS_BATCH + i];
            for (j = 0; j < RINGS_IN; j++)
                x_batch[i][j] = p->xy[j];
            for (j = 0; j < RINGS_OUT; j++)   /* one-hot target */
                y_batch[i][j] = (int)j == p->label ? 1.0f : 0.0f;
        }
        total += rings_train_step(ctx, &x_batch[0][0], &y_batch[0][0]);
    }
    return total / (double)nbatches;
}

/* Fraction of p[0..n) whose argmax logit is the label (n <= N_TRAIN). */
static double accuracy(rings_ctx *ctx, const Point *p, size_t n)
{
    size_t i, j, correct = 0;
    int rc;

    for (i = 0; i < n; i++)
        for (j = 0; j < RINGS_IN; j++)
            x_all[i][j] = p[i].xy[j];
    rc = rings_predict(ctx, &x_all[0][0], &logits[0][0], n);
    if (rc != 0) {
        fprintf(stderr, "rings_main: rings_predict: %s\n", nnc_strerror(rc));
        exit(1);
    }
    for (i = 0; i < n; i++) {
        int best = 0;
        for (j = 1; j < RINGS_OUT; j++)
            if (logits[i][j] > logits[i][best])
                best = (int)j;
        correct += best == p[i].label;
    }
    return (double)correct / (double)n;
}

int main(void)
{
    rings_ctx *ctx = rings_create(2024);
    double test_acc;
    int epoch;

    if (ctx == NULL) {
        fprintf(stderr, "rings_main: rings_create failed\n");
        return 1;
    }
    make_points(train, N_TRAIN);
    make_points(test, N_TEST);

    printf("epoch  loss    train acc\n");
    for (epoch = 1; epoch <= EPOCHS; epoch++) {
        double loss = train_epoch(ctx);
        printf("%5d  %.4f  %5.1f%%\n", epoch, loss,
               100.0 * accuracy(ctx, train, N_TRAIN));
    }
    test_acc = accuracy(ctx, test, N_TEST);
    printf("test accuracy: %.1f%% on %d held-out points (chance: 33.3%%)\n",
           100.0 * test_acc, N_TEST);
    rings_destroy(ctx);
    return test_acc >= 0.90 ? 0 : 1;
}
