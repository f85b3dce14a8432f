/*
 * attention_main.c - tests/e2e/attention.nn compiled with --prefix m:
 *  1. training lowers the loss (the largest id so far: the first step's
 *     near ln 8 = 2.08, the last 20 steps' mean under a tenth of it,
 *     attention dropout on);
 *  2. one and two threads give the same bits (every loss, then predict);
 *  3. predict of one row equals predict of the batch (no dropout there).
 * Prints "N passed, M failed"; exit status 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"
#include "m.h"

enum { STEPS = 300, T = M_IN };

static int passed, failed;

static void check(int ok, const char *what)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

static unsigned rng = 1;
static int next_id(void)
{
    rng = rng * 1103515245u + 12345u;
    return (int)((rng >> 16) % 8u);
}

/* A batch: ids and, per position, the largest id so far. */
static void batch(float *x, float *y)
{
    for (int b = 0; b < M_BATCH; b++) {
        int mx = 0;
        for (int t = 0; t < T; t++) {
            int id = next_id();
            mx = id > mx ? id : mx;
            x[b * T + t] = (float)id;
            y[b * T + t] = (float)mx;
        }
    }
}

/* Trains STEPS steps from seed 3 on threads; losses and predictions out. */
static int train(int threads, float *losses, float *pred, const float *px)
{
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
    m_ctx *ctx = m_create(3);
    if (!ctx)
        return 0;
    nnc_set_num_threads(threads);
    rng = 1;
    for (int s = 0; s < STEPS; s++) {
        batch(x, y);
        losses[s] = m_train_step(ctx, x, y);
    }
    int ok = m_predict(ctx, px, pred, M_BATCH) == 0;
    m_destroy(ctx);
    nnc_set_num_threads(0);
    return ok;
}

int main(void)
{
    static float l1[STEPS], l2[STEPS], x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
    static float p1[M_BATCH * M_OUT], p2[M_BATCH * M_OUT], row[M_OUT];
    rng = 99;
    batch(x, y);
    check(train(1, l1, p1, x), "train on 1 thread");
    check(train(2, l2, p2, x), "train on 2 threads");
    double first = 0, last = 0;
    for (int s = 0; s < 20; s++)
        first += l1[s] / 20, last += l1[STEPS - 20 + s] / 20;
    printf("loss %.4f at the first step; mean of the first 20 steps %.4f, of the last 20 "
           "%.4f\n", l1[0], first, last);
    check(l1[0] > 1.5 && last < 0.1 * l1[0], "the loss falls");
    check(memcmp(l1, l2, sizeof l1) == 0, "1 and 2 threads: the same losses");
    check(memcmp(p1, p2, sizeof p1) == 0, "1 and 2 threads: the same predictions");
    m_ctx *ctx = m_create(5);
    check(ctx && m_predict(ctx, x, p1, M_BATCH) == 0, "predict a batch");
    for (int b = 0; ctx && b < M_BATCH; b++) {
        check(m_predict(ctx, x + b * M_IN, row, 1) == 0, "predict a row");
        check(memcmp(row, p1 + b * M_OUT, sizeof row) == 0, "a row as in the batch");
    }
    m_destroy(ctx);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
