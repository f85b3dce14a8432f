/*
 * split_main.c - train_step against its two halves (grad_step_notify,
 * then apply_update): the same parameters, optimizer state and losses
 * bit for bit, step after step, on random batches. Built against any
 * model compiled with --prefix m (tests/mpi/split.sh). Also checks the
 * ready notices: `from` never goes up, ends at 0, and the gradients it
 * declares final do not change afterwards.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"

#define STEPS 4

typedef struct Watch {
    float *g, *copy;
    size_t n, from;
    int calls, bad;
} Watch;

/* Copies the gradients just declared final; the end of grad_step checks
 * that they kept their values. */
static void ready(void *arg, size_t from)
{
    Watch *w = (Watch *)arg;
    if (from > w->from || from > w->n)
        w->bad = 1;
    memcpy(w->copy + from, w->g + from, (w->from - from) * sizeof(float));
    w->from = from;
    w->calls++;
}

static float uniform(unsigned long *s)
{
    *s = *s * 6364136223846793005UL + 1442695040888963407UL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f;
}

int main(void)
{
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
    m_ctx *a = m_create(7), *b = m_create(7);
    size_t np, ng, i;
    unsigned long s = 1;
    int step, fails = 0;
    Watch w;
    if (!a || !b)
        return 1;
    w.g = m_grads(b, &ng);
    w.copy = (float *)calloc(ng, sizeof(float));
    m_params(b, &np);
    w.n = ng;   /* fewer than np when some parameters have no gradient
                 * (frozen ones, batchnorm's running statistics) */
    if (!w.copy || ng == 0 || ng > np) {
        fprintf(stderr, "%zu gradients for %zu parameters\n", ng, np);
        return 1;
    }
    if (m_grads(NULL, &ng) != NULL || ng != 0)
        return 1;
    ng = w.n;
    for (step = 0; step < STEPS; step++) {
        float la, lb;
        for (i = 0; i < (size_t)M_BATCH * M_IN; i++)
            x[i] = floorf(uniform(&s) * 8.0f);
        for (i = 0; i < (size_t)M_BATCH * M_TARGET; i++)
            y[i] = M_TARGET == M_OUT ? uniform(&s)
                                     : floorf(uniform(&s) * (float)(M_OUT / M_TARGET));
        la = m_train_step(a, x, y);
        w.from = ng;
        w.calls = w.bad = 0;
        lb = m_grad_step_notify(b, x, y, ready, &w);
        if (w.bad || w.from != 0 || w.calls == 0 ||
            memcmp(w.copy, w.g, ng * sizeof(float))) {
            fprintf(stderr, "step %d: bad ready notices (%d calls, ends at %zu)\n", step,
                    w.calls, w.from);
            fails++;
        }
        if (m_apply_update(b) != 0)
            fails++;
        if (memcmp(&la, &lb, sizeof la) != 0) {
            fprintf(stderr, "step %d: loss %.9g != %.9g\n", step, (double)la, (double)lb);
            fails++;
        }
    }
    /* the whole memory but the scratch arena: parameters, gradients,
     * optimizer state */
    if (memcmp(m_params(a, NULL), m_params(b, NULL),
               M_PARAM_BYTES + M_GRAD_BYTES + M_OPT_STATE_BYTES) != 0) {
        fprintf(stderr, "the parameters or optimizer state differ after %d steps\n", STEPS);
        fails++;
    }
    if (m_get_lr(a) != m_get_lr(b))
        fails++;
    free(w.copy);
    m_destroy(a);
    m_destroy(b);
    return fails != 0;
}
