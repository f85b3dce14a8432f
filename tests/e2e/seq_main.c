/*
 * seq_main.c - a small GPT (tests/e2e/seq.nn: token and position
 * embeddings, attention written with matmul, reshape, transpose, split,
 * slice and softmax, layernorm, gelu, dropout, a head tied to the token
 * embedding, the sequence loss, AdamW with decay=matrices, warm-up, cosine
 * decay and clipping) compiled twice, `-O0 --prefix a` and `-O2 --prefix
 * b`, linked together. It learns a fixed successor table of token ids
 * (targets (batch, T, 1): the next token of each position), and:
 *
 *  0. the first loss is the mean over all batch x T positions of the
 *     cross-entropy of predict's logits (dropout is 0 in seq.nn);
 *  1. -O0 and -O2 agree on every step's loss (1e-5 relative);
 *  2. the loss falls: the last steps' mean is below half the first loss;
 *  3. both checkpoints hold the same floats, and the tied head has no
 *     tensor of its own: 'logits.weight' is absent, 'wte.weight' present;
 *  4. predict agrees on 2 * BATCH + 1 rows, and the predicted next token
 *     of most positions is the table's; a context loading the checkpoint
 *     predicts the same.
 *
 * Usage: seq DIR (checkpoints are written there).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"
#include "nncrt_io.h"

#include "a.h"
#include "b.h"
#define CHECK_PROGRAM "seq"
#include "../check.h"

enum { STEPS = 100, T = A_IN, V = A_OUT / A_IN, NPRED = 2 * A_BATCH + 1 };

#if A_TARGET != A_IN || A_OUT % A_IN != 0 || A_PARAMS != B_PARAMS
#error "seq.nn: expected targets (batch, T, 1) and logits (batch, T, V)"
#endif

static double reldiff(double a, double b)
{
    if (!isfinite(a) || !isfinite(b))
        return INFINITY;
    return fabs(a - b) / (fabs(a) > 1 ? fabs(a) : 1);
}

/* the next token of token v */
static int next_of(int v)
{
    return (v * 4 + 3) % V;
}

/* rows of T ids from random starts, and their next tokens */
static void batch(float *x, float *y, int rows)
{
    for (int r = 0; r < rows; r++) {
        int v = (int)(frand() * V) % V;
        for (int t = 0; t < T; t++) {
            x[r * T + t] = (float)v;
            v = next_of(v);
            if (y)
                y[r * T + t] = (float)v;
        }
    }
}

/* The checkpoint's header, parsed; its data section's offset in *off. */
static cJSON *header(const char *path, unsigned char **file, size_t *len, size_t *off)
{
    cJSON *j = NULL;
    size_t h = 0;
    char why[256] = "";
    if (nnc_read_file(path, file, len, why, sizeof why) ||
        nnc_st_header(*file, *len, &j, &h, why, sizeof why)) {
        printf("FAIL: %s: %s\n", path, why);
        failed++;
        return NULL;
    }
    *off = 8 + h;
    return j;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char pa[4096], pb[4096];
    static float x[A_BATCH * T], y[A_BATCH * T], px[NPRED * T];
    static float ya[NPRED * A_OUT], yb[NPRED * A_OUT];
    double first = 0, last = 0, worst = 0;

    a_ctx *a = a_create(7);
    b_ctx *b = b_create(7);
    if (!a || !b)
        die("create failed");
    for (int s = 0; s < STEPS; s++) {
        batch(x, y, A_BATCH);
        if (s == 0) {   /* the loss over every position, from the logits */
            static float z[A_BATCH * A_OUT];
            double want = 0;
            CHECK(a_predict(a, x, z, A_BATCH) == 0, "predict");
            for (int i = 0; i < A_BATCH * T; i++) {
                double m = z[i * V], sum = 0;
                for (int v = 1; v < V; v++)
                    m = fmax(m, z[i * V + v]);
                for (int v = 0; v < V; v++)
                    sum += exp(z[i * V + v] - m);
                want += (m + log(sum) - z[i * V + (int)y[i]]) / (A_BATCH * T);
            }
            float got = a_train_step(a, x, y), lb = b_train_step(b, x, y);
            printf("first loss %.7f, mean cross-entropy of the %d positions %.7f\n", got,
                   A_BATCH * T, want);
            CHECK(reldiff(got, want) <= 1e-5 && reldiff(lb, want) <= 1e-5,
                  "first loss %.9g (-O2 %.9g), mean over all positions %.9g", got, lb, want);
            first = got;
            continue;
        }
        float la = a_train_step(a, x, y), lb = b_train_step(b, x, y);
        CHECK(reldiff(la, lb) <= 1e-5, "step %d: loss %.9g at -O0, %.9g at -O2", s, la, lb);
        worst = fmax(worst, reldiff(la, lb));
        if (s >= STEPS - 5)
            last += la / 5.0;
    }
    printf("loss: first %.6f, mean of the last 5 %.6f; -O0/-O2 max rel diff %.3g\n", first,
           last, worst);
    CHECK(last < 0.5 * first, "the loss did not fall: %.6f -> %.6f", first, last);

    snprintf(pa, sizeof pa, "%s/a.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/b.safetensors", dir);
    CHECK(a_save(a, pa) == 0 && b_save(b, pb) == 0, "save");
    unsigned char *fa = NULL, *fb = NULL;
    size_t na = 0, nb = 0, oa = 0, ob = 0;
    cJSON *ja = header(pa, &fa, &na, &oa), *jb = header(pb, &fb, &nb, &ob);
    if (ja && jb) {
        CHECK(na == nb && oa == ob && !memcmp(fa, fb, oa), "checkpoint headers differ");
        CHECK(cJSON_GetObjectItemCaseSensitive(ja, "wte.weight") != NULL, "no wte.weight");
        CHECK(cJSON_GetObjectItemCaseSensitive(ja, "logits.weight") == NULL,
              "the tied head has a weight of its own");
        CHECK(cJSON_GetObjectItemCaseSensitive(ja, "x0.weight") != NULL, "no x0.weight");
        double w = 0;
        for (size_t i = oa; na == nb && i + 4 <= na; i += 4) {
            float fa32, fb32;
            memcpy(&fa32, fa + i, 4);
            memcpy(&fb32, fb + i, 4);
            w = fmax(w, reldiff(fa32, fb32));
        }
        printf("weights and optimizer state: max rel diff %.3g\n", w);
        CHECK(w <= 1e-5, "checkpoints differ by %.3g", w);
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    free(fa);
    free(fb);

    batch(px, NULL, NPRED);
    CHECK(a_predict(a, px, ya, NPRED) == 0 && b_predict(b, px, yb, NPRED) == 0, "predict");
    double wp = 0;
    int right = 0;
    for (int i = 0; i < NPRED * T; i++) {
        int best = 0;
        for (int v = 0; v < V; v++) {
            wp = fmax(wp, reldiff(ya[i * V + v], yb[i * V + v]));
            if (yb[i * V + v] > yb[i * V + best])
                best = v;
        }
        right += best == next_of((int)px[i]);
    }
    printf("predict: max rel diff %.3g, next token right at %d of %d positions\n", wp, right,
           NPRED * T);
    b_ctx *c = b_create(99);
    static float yc[NPRED * A_OUT];
    CHECK(c && b_load(c, pb) == 0 && b_predict(c, px, yc, NPRED) == 0, "load and predict");
    CHECK(c && !memcmp(yc, yb, sizeof yc), "a context loading the checkpoint predicts otherwise");
    b_destroy(c);
    CHECK(wp <= 1e-5, "predict differs by %.3g", wp);
    CHECK(right > NPRED * T / 2, "next token right at only %d of %d positions", right,
          NPRED * T);
    a_destroy(a);
    b_destroy(b);
    return check_summary();
}
