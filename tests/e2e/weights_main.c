/*
 * weights_main.c - embedded weights against the normal build, bit for bit.
 * One model compiled three ways (tests/e2e/build.sh):
 *
 *   n.c  plain (`--prefix n`): weights from the seed at create;
 *   e.c  `--weights=embedded --seed 7 --prefix e`;
 *   f.c  `--weights-from=DIR/trained.safetensors --prefix f`.
 *
 * Stage 1 (built without -DSTAGE2, links n.c only): trains n_create(7)
 * for a few steps and saves DIR/trained.safetensors, from which build.sh
 * compiles f.c. Stage 2 (all three) checks that
 *
 *  1. e_create(any seed) predicts exactly what n_create(7) predicts, and
 *     both save the same checkpoint bytes (DIR/e0, DIR/n0: compared by
 *     build.sh); e_init in caller memory too;
 *  2. f_create(any seed) predicts exactly what a fresh n model predicts
 *     after n_load of the checkpoint, and not what the untrained one
 *     does (so the comparison can fail);
 *  3. an embedded build still trains: f and n loaded from f's own
 *     checkpoint take the same steps to the same losses and weights.
 *
 * Usage: weights DIR. Exit status 1 on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "n.h"
#include "../check.h"
#ifdef STAGE2
#include "e.h"
#include "f.h"
#endif

enum { NPRED = 3 * N_BATCH + 1 };



static float x[NPRED * N_IN], y[N_BATCH * N_TARGET];

static void make_data(void)
{
    int i, j;
    for (i = 0; i < NPRED * N_IN; i++)
        x[i] = 2 * frand() - 1;
    for (i = 0; i < N_BATCH; i++) {
        int k = (int)(frand() * N_OUT);
        for (j = 0; j < N_TARGET; j++)
            y[i * N_TARGET + j] = N_TARGET == 1 && N_OUT > 1 ? (float)k  /* class index */
                                  : N_OUT == 1 ? (float)(frand() < 0.5f)
                                  : (float)(j == k);                       /* one-hot */
    }
}

static char path[4096];
static const char *at(const char *dir, const char *name)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

#ifdef STAGE2
static float p1[NPRED * N_OUT], p2[NPRED * N_OUT];
#endif

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    make_data();
#ifndef STAGE2
    {
        n_ctx *n = n_create(7);
        int s, err;
        CHECK(n != NULL, "n_create");
        if (!n)
            return 1;
        for (s = 0; s < 5; s++)
            n_train_step(n, x, y);
        err = n_save(n, at(dir, "trained.safetensors"));
        CHECK(err == 0, "n_save: %s", nnc_strerror(err));
        n_destroy(n);
    }
#else
    {
        /* 1. embedded initial weights are the seed's */
        n_ctx *n = n_create(7);
        e_ctx *e = e_create(12345);
        static unsigned char mem[E_MEM_BYTES + 1];
        e_ctx *e2 = e_init(mem + 1, E_MEM_BYTES, 1);
        CHECK(n && e && e2, "create");
        if (!n || !e || !e2)
            return 1;
        n_predict(n, x, p1, NPRED);
        e_predict(e, x, p2, NPRED);
        CHECK(!memcmp(p1, p2, sizeof p1), "e_create(12345) predicts differently from n_create(7)");
        e_predict(e2, x, p2, NPRED);
        CHECK(!memcmp(p1, p2, sizeof p1), "e_init predicts differently from n_create(7)");
        CHECK(n_save(n, at(dir, "n0.safetensors")) == 0, "n_save");
        CHECK(e_save(e, at(dir, "e0.safetensors")) == 0, "e_save");
        n_destroy(n);
        e_destroy(e);
    }
    {
        /* 2. checkpoint weights: f == n after load, != n untrained */
        n_ctx *n = n_create(0);  /* the same seed: the same dropout masks */
        f_ctx *f = f_create(0);
        int err, s;
        CHECK(n && f, "create");
        if (!n || !f)
            return 1;
        n_predict(n, x, p1, NPRED);
        f_predict(f, x, p2, NPRED);
        CHECK(memcmp(p1, p2, sizeof p1) != 0, "f predicts what an untrained model does");
        err = n_load(n, at(dir, "trained.safetensors"));
        CHECK(err == 0, "n_load: %s", nnc_strerror(err));
        n_predict(n, x, p1, NPRED);
        CHECK(!memcmp(p1, p2, sizeof p1), "f_create predicts differently from n after n_load");
        /* 3. f still trains, as n does from the same start: f's own
         * checkpoint (its weights, fresh optimizer state, step 0) */
        CHECK(f_save(f, at(dir, "f0.safetensors")) == 0, "f_save");
        err = n_load(n, at(dir, "f0.safetensors"));
        CHECK(err == 0, "n_load of f's checkpoint: %s", nnc_strerror(err));
        for (s = 0; s < 3; s++) {
            float ln = n_train_step(n, x, y), lf = f_train_step(f, x, y);
            CHECK(ln == lf, "step %d: loss %.9g (n) != %.9g (f)", s, ln, lf);
        }
        n_predict(n, x, p1, NPRED);
        f_predict(f, x, p2, NPRED);
        CHECK(!memcmp(p1, p2, sizeof p1), "f and n differ after training");
        n_destroy(n);
        f_destroy(f);
    }
#endif
    if (failed)
        printf("%d failed\n", failed);
    return failed != 0;
}
