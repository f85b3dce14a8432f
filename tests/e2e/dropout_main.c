/* dropout_main.c - dropout through the API of tests/e2e/dropout.nn: the
 * fraction of dropped units, the 1/(1 - rate) scaling (forward and
 * backward), predict as the identity, and reproducible masks (same seed,
 * same run; another seed, other masks; a resumed run continues the
 * uninterrupted run's masks). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drop.h"

#define N DROP_OUT
#define RATE 0.25
#define LR 100.0

static int failed;
#define CHECK(c, ...) \
    do { if (!(c)) { printf("FAIL: "); printf(__VA_ARGS__); printf("\n"); failed++; } } while (0)

static float losses(uint64_t seed, int steps, float *out)
{
    static const float x[1] = {1.0f};
    static float y[N];
    drop_ctx *c = drop_create(seed);
    for (int i = 0; i < steps; i++)
        out[i] = drop_train_step(c, x, y);
    drop_destroy(c);
    return out[steps - 1];
}

int main(int argc, char **argv)
{
    static const float x[1] = {1.0f};
    static float y[N], w0[N], w1[N], w2[N];
    const double s = 1 / (1 - RATE);
    char path[4096];
    snprintf(path, sizeof path, "%s/drop.safetensors", argc > 1 ? argv[1] : ".");
    drop_ctx *c = drop_create(5);
    CHECK(c != NULL, "create");

    /* predict is the identity: twice the same, and a step changes no
     * predict-time randomness */
    CHECK(drop_predict(c, x, w0, 1) == 0 && drop_predict(c, x, w1, 1) == 0 &&
              !memcmp(w0, w1, sizeof w0), "predict is not deterministic");

    /* one step: the loss is the mean of the kept (w s)^2, and exactly the
     * kept weights move, by the factor of the scaled gradient */
    float loss = drop_train_step(c, x, y);
    CHECK(drop_predict(c, x, w1, 1) == 0, "predict");
    int dropped = 0, bad = 0;
    double want = 0, f = 1 - LR * 2 * s * s / N;
    for (int j = 0; j < N; j++) {
        if (w1[j] == w0[j]) {
            dropped++;
            continue;
        }
        want += (double)w0[j] * w0[j] * s * s;
        bad += fabs(w1[j] - w0[j] * f) > 1e-5 * fabs(w0[j]) + 1e-7;
    }
    want /= N;
    double frac = (double)dropped / N;
    printf("dropout: %d of %d dropped (%.4f, rate %.2f), loss %.6g (kept mean %.6g)\n",
           dropped, N, frac, RATE, loss, want);
    CHECK(fabs(frac - RATE) < 0.03, "dropped fraction %g, rate %g", frac, RATE);
    CHECK(fabs(loss - want) <= 1e-4 * want, "loss %g, want %g", loss, want);
    CHECK(bad == 0, "%d kept weights moved by the wrong amount", bad);

    /* a second step draws another mask */
    drop_train_step(c, x, y);
    CHECK(drop_predict(c, x, w2, 1) == 0, "predict");
    int same = 0;
    for (int j = 0; j < N; j++)
        same += (w2[j] == w1[j]) == (w1[j] == w0[j]);
    CHECK(same < N, "two steps drew the same mask");
    drop_destroy(c);

    /* reproducible: the same seed gives the same losses, another not */
    {
        float a[6], b[6], d[6];
        losses(11, 6, a);
        losses(11, 6, b);
        losses(12, 6, d);
        CHECK(!memcmp(a, b, sizeof a), "same seed, different losses");
        CHECK(memcmp(a, d, sizeof a) != 0, "different seeds, same losses");
    }

    /* resuming: masks depend on (seed, step), and load restores step */
    {
        float a[6], r[6];
        losses(21, 6, a);
        drop_ctx *c1 = drop_create(21), *c2 = drop_create(21);
        for (int i = 0; i < 3; i++)
            r[i] = drop_train_step(c1, x, y);
        CHECK(drop_save(c1, path) == 0 && drop_load(c2, path) == 0, "save and load");
        for (int i = 3; i < 6; i++)
            r[i] = drop_train_step(c2, x, y);
        CHECK(!memcmp(a, r, sizeof a), "a resumed run differs from the straight run");
        drop_destroy(c1);
        drop_destroy(c2);
        remove(path);
    }
    printf("dropout: %s\n", failed ? "FAILED" : "ok");
    return failed != 0;
}
