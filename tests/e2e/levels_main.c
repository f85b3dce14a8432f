/*
 * levels_main.c - one model compiled twice, `nnc -O0 --prefix a` (no
 * passes) and `nnc -O2 --prefix b` (loss heads, simplify, CSE, DCE,
 * fusion), linked into one program. Both start from the same seed and
 * get the same 20 deterministic batches; they must agree within 1e-5
 * relative (|a - b| <= 1e-5 * max(1, |a|)) on:
 *
 *  1. every step's loss;
 *  2. every float of the weights and optimizer state after training (both
 *     checkpoints are read as safetensors: 8-byte little-endian header
 *     length, JSON header, raw float32 data; the headers must be
 *     identical, since the tensor names, shapes and offsets do not depend
 *     on -O);
 *  3. predict on 3 * A_BATCH + 1 rows (several chunks and a partial one).
 *
 * Usage: levels DIR (checkpoints are written there). Prints the largest
 * relative difference of each kind, then "N passed, M failed"; exit
 * status 1 on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a.h"
#include "b.h"
#include "../check.h"

#if A_BATCH != B_BATCH || A_IN != B_IN || A_OUT != B_OUT || A_PARAMS != B_PARAMS
#error "a.h and b.h describe different models"
#endif

enum { STEPS = 20, NPRED = 3 * A_BATCH + 1 };
static const double TOL = 1e-5;



/* |a - b| / max(1, |a|); +inf if either is not finite (NaN never passes) */
static double reldiff(double a, double b)
{
    if (!isfinite(a) || !isfinite(b))
        return a == b ? 0 : INFINITY;
    return fabs(a - b) / (fabs(a) > 1 ? fabs(a) : 1);
}

/* Tracks the worst relative difference of one kind and where it was. */
typedef struct Worst {
    double rel;
    long at;
    double a, b;
} Worst;

static void worst_add(Worst *w, long at, double a, double b)
{
    double r = reldiff(a, b);
    if (r > w->rel || (w->at < 0 && r == 0)) {
        w->rel = r;
        w->at = at;
        w->a = a;
        w->b = b;
    }
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float lef32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Compares two safetensors checkpoints float by float into *w. */
static void compare_checkpoints(const char *pa, const char *pb, Worst *w)
{
    size_t na = 0, nb = 0;
    unsigned char *fa = read_file(pa, &na), *fb = read_file(pb, &nb);
    CHECK(fa && fb, "cannot read %s or %s", pa, pb);
    if (!fa || !fb)
        goto out;
    CHECK(na >= 8 && nb >= 8, "checkpoint shorter than 8 bytes");
    if (na < 8 || nb < 8)
        goto out;
    uint64_t ha = le64(fa), hb = le64(fb);
    CHECK(ha == hb, "header lengths differ: %llu vs %llu", (unsigned long long)ha,
          (unsigned long long)hb);
    CHECK(ha <= na - 8, "header length %llu past the end", (unsigned long long)ha);
    if (ha != hb || ha > na - 8)
        goto out;
    CHECK(!memcmp(fa + 8, fb + 8, (size_t)ha), "JSON headers differ");
    size_t off = 8 + (size_t)ha, da = na - off, db = nb - off;
    CHECK(da == db, "data sections differ in size: %zu vs %zu", da, db);
    CHECK(da % 4 == 0, "data section of %zu bytes is not float32", da);
    /* the parameters, then the optimizer state of the trained ones (not
     * of batchnorm's running statistics) */
    CHECK(da / 4 >= (size_t)A_PARAMS, "data holds %zu floats, fewer than the %d parameters",
          da / 4, A_PARAMS);
    if (da != db)
        goto out;
    size_t i;
    for (i = 0; i + 4 <= da; i += 4)
        worst_add(w, (long)(i / 4), lef32(fa + off + i), lef32(fb + off + i));
out:
    free(fa);
    free(fb);
}

static void report(const char *what, const Worst *w, const char *unit)
{
    if (w->at < 0) {
        printf("%-8s no values compared\n", what);
        failed++;
        return;
    }
    printf("%-8s max rel diff %.3g at %s %ld (a %.9g, b %.9g)\n", what, w->rel, unit,
           w->at, w->a, w->b);
    CHECK(w->rel <= TOL, "%s differ by %.3g relative (tolerance %g)", what, w->rel, TOL);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char pa0[4096], pb0[4096], pa[4096], pb[4096];
    static float x[A_BATCH * A_IN], y[A_BATCH * A_OUT];
    static float px[NPRED * A_IN], ya[NPRED * A_OUT], yb[NPRED * A_OUT];
    Worst wloss = {0, -1, 0, 0}, winit = {0, -1, 0, 0}, wweights = {0, -1, 0, 0},
          wpred = {0, -1, 0, 0};
    int s, i;

    snprintf(pa0, sizeof pa0, "%s/a0.safetensors", dir);
    snprintf(pb0, sizeof pb0, "%s/b0.safetensors", dir);
    snprintf(pa, sizeof pa, "%s/a.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/b.safetensors", dir);
    a_ctx *a = a_create(1234);
    b_ctx *b = b_create(1234);
    if (!a || !b) {
        printf("FAIL: create\n");
        return 1;
    }
    /* the same seed must give the same starting point */
    CHECK(a_save(a, pa0) == 0 && b_save(b, pb0) == 0, "save before training");
    compare_checkpoints(pa0, pb0, &winit);
    CHECK(winit.rel == 0, "initial weights differ (%.3g)", winit.rel);

    for (s = 0; s < STEPS; s++) {
        for (i = 0; i < A_BATCH * A_IN; i++)
            x[i] = 2 * frand() - 1;
        /* one-hot rows: valid targets for bce, mse and softmax CE alike */
        memset(y, 0, sizeof y);
        for (i = 0; i < A_BATCH; i++)
            y[i * A_OUT + (int)(frand() * A_OUT) % A_OUT] = 1.0f;
        float la = a_train_step(a, x, y), lb = b_train_step(b, x, y);
        worst_add(&wloss, s, la, lb);
        CHECK(reldiff(la, lb) <= TOL, "step %d: loss %.9g at -O0, %.9g at -O2", s, la, lb);
    }

    CHECK(a_save(a, pa) == 0 && b_save(b, pb) == 0, "save after training");
    compare_checkpoints(pa, pb, &wweights);

    for (i = 0; i < NPRED * A_IN; i++)
        px[i] = 2 * frand() - 1;
    CHECK(a_predict(a, px, ya, NPRED) == 0 && b_predict(b, px, yb, NPRED) == 0, "predict");
    for (i = 0; i < NPRED * A_OUT; i++)
        worst_add(&wpred, i, ya[i], yb[i]);

    printf("loss     max rel diff %.3g at step %ld (a %.9g, b %.9g)\n", wloss.rel, wloss.at,
           wloss.a, wloss.b);
    report("weights", &wweights, "float");
    report("predict", &wpred, "output");
    a_destroy(a);
    b_destroy(b);
    return check_summary();
}
