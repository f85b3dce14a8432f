/*
 * prefix_main.c - several models in one program (tests/e2e/build.sh):
 * examples/seed.nn compiled twice, `--prefix p1` and `--prefix p2`, and
 * examples/rings.nn under its own name, each in its own .c/.h pair.
 * They must link together and keep separate state:
 *
 *  1. p1 and p2 from the same seed predict the same;
 *  2. training p1 changes p1 and neither p2 nor rings;
 *  3. p2 trained on the same batches afterwards ends where p1 did (step
 *     for step the same losses), and training rings leaves both alone.
 */
#include <stdio.h>
#include <string.h>

#include "p1.h"
#include "p2.h"
#include "rings.h"
#include "../check.h"

enum { NPRED = 2 * P1_BATCH + 3, STEPS = 5 };



static float x[NPRED * P1_IN], y[P1_BATCH * P1_TARGET];
static float rx[NPRED * RINGS_IN], ry[RINGS_BATCH * RINGS_TARGET];
static float a[NPRED * P1_OUT], b[NPRED * P1_OUT], r0[NPRED * RINGS_OUT], r1[NPRED * RINGS_OUT];
static float loss1[STEPS];

int main(void)
{
    p1_ctx *m1 = p1_create(11);
    p2_ctx *m2 = p2_create(11);
    rings_ctx *r = rings_create(5);
    int i, s;
    CHECK(m1 && m2 && r, "create");
    if (!m1 || !m2 || !r)
        return 1;
    for (i = 0; i < NPRED * P1_IN; i++)
        x[i] = frand();
    for (i = 0; i < P1_BATCH * P1_TARGET; i++)
        y[i] = (float)(frand() < 0.5f);
    for (i = 0; i < NPRED * RINGS_IN; i++)
        rx[i] = 2 * frand() - 1;
    for (i = 0; i < RINGS_BATCH; i++)
        for (s = 0; s < RINGS_TARGET; s++)
            ry[i * RINGS_TARGET + s] = RINGS_TARGET == 1 ? (float)(i % RINGS_OUT) : (float)(s == i % RINGS_TARGET);

    p1_predict(m1, x, a, NPRED);
    p2_predict(m2, x, b, NPRED);
    CHECK(!memcmp(a, b, sizeof a), "p1 and p2 from one seed differ");
    rings_predict(r, rx, r0, NPRED);

    for (s = 0; s < STEPS; s++)
        loss1[s] = p1_train_step(m1, x, y);
    p1_predict(m1, x, a, NPRED);
    CHECK(memcmp(a, b, sizeof a) != 0, "training p1 changed nothing");
    p2_predict(m2, x, b, NPRED);
    p1_predict(m1, x, a, NPRED);
    CHECK(memcmp(a, b, sizeof a) != 0, "training p1 changed p2");
    rings_predict(r, rx, r1, NPRED);
    CHECK(!memcmp(r0, r1, sizeof r0), "training p1 changed rings");

    for (s = 0; s < STEPS; s++) {
        float l = p2_train_step(m2, x, y);
        CHECK(l == loss1[s], "step %d: p2 loss %.9g, p1 had %.9g", s, l, loss1[s]);
    }
    p2_predict(m2, x, b, NPRED);
    CHECK(!memcmp(a, b, sizeof a), "p2 trained like p1 ends elsewhere");

    for (s = 0; s < STEPS; s++)
        rings_train_step(r, rx, ry);
    rings_predict(r, rx, r1, NPRED);
    CHECK(memcmp(r0, r1, sizeof r0) != 0, "training rings changed nothing");
    p1_predict(m1, x, b, NPRED);
    CHECK(!memcmp(a, b, sizeof a), "training rings changed p1");
    p2_predict(m2, x, b, NPRED);
    CHECK(!memcmp(a, b, sizeof a), "training rings changed p2");

    p1_destroy(m1);
    p2_destroy(m2);
    rings_destroy(r);
    if (failed)
        printf("%d failed\n", failed);
    return failed != 0;
}
