/*
 * matrix_main.c - a small, deterministic run of one emitted model
 * (compiled with `nnc MODEL.nn --prefix m`), for matrix.sh: trains
 * STEPS steps on fixed batches from one seed, then predicts 2*M_BATCH+3
 * rows, and prints every loss and every prediction ("%.9g", one a line).
 * matrix.sh builds it under every compiler setting and compares the
 * outputs within a tolerance. Exits 1 on an API error or a non-finite
 * number.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "m.h"

#define STEPS 5
#define NPRED (2 * M_BATCH + 3)

static unsigned long long lcg = 0x2545f4914f6cdd1dULL;
static float frand(void) /* uniform in [0, 1) */
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) * (1.0 / 16777216.0));
}

static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
static float px[NPRED * M_IN], out[NPRED * M_OUT];

int main(void)
{
    int s, i;
    m_ctx *c = m_create(1234);
    if (!c) {
        printf("m_create failed\n");
        return 1;
    }
    for (s = 0; s < STEPS; s++) {
        float loss;
        for (i = 0; i < M_BATCH * M_IN; i++)
            x[i] = 2 * frand() - 1;
        for (i = 0; i < M_BATCH * M_TARGET; i++)
            y[i] = 0.0f;
        for (i = 0; i < M_BATCH; i++) {
            int k = (int)(frand() * M_OUT) % M_OUT;
            if (M_TARGET == M_OUT && M_OUT > 1)
                y[i * M_TARGET + k] = 1.0f;        /* one-hot */
            else if (M_TARGET == 1 && M_OUT > 1)
                y[i] = (float)k;                   /* class index */
            else
                for (k = 0; k < M_TARGET; k++)     /* 0/1 or regression */
                    y[i * M_TARGET + k] = (float)(frand() > 0.5f);
        }
        loss = m_train_step(c, x, y);
        if (!isfinite(loss)) {
            printf("step %d: loss %g\n", s, loss);
            return 1;
        }
        printf("%.9g\n", loss);
    }
    for (i = 0; i < NPRED * M_IN; i++)
        px[i] = 2 * frand() - 1;
    if (m_predict(c, px, out, NPRED) != 0) {
        printf("m_predict failed\n");
        return 1;
    }
    for (i = 0; i < NPRED * M_OUT; i++) {
        if (!isfinite(out[i])) {
            printf("prediction %d: %g\n", i, out[i]);
            return 1;
        }
        printf("%.9g\n", out[i]);
    }
    m_destroy(c);
    return 0;
}
