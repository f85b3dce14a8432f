/*
 * e2e_main.c - end-to-end checks of one emitted model, compiled with
 * `nnc MODEL.nn --prefix m`. Generic over models: it only uses the API.
 *
 *  1. the same seed gives bit-identical weights; another seed does not;
 *     m_init in caller memory (unaligned, exactly M_MEM_BYTES) equals
 *     m_create, and refuses a block one byte short;
 *  2. training on one fixed batch lowers the loss (overfitting works);
 *  3. predict gives the same rows whatever the chunking (n = 1 at a time,
 *     or all at once, or more rows than a batch);
 *  4. m_accuracy is 1, 0 and 1/2 on targets made from the predictions
 *     (all right, all wrong, half right), for one-hot, class-index and
 *     single-output (0/1) targets;
 *  5. save then load restores the exact predictions; a truncated file
 *     and a missing file are refused and leave the model untouched;
 *  6. bad arguments are refused; an out-of-range class index gives a
 *     NaN loss and leaves the weights finite;
 *  7. training N steps, saving, loading into a fresh model (another seed)
 *     and training N more writes the same checkpoint, bit for bit
 *     (weights, optimizer state, step), as 2N steps straight; the second
 *     half on other batches than the first.
 * Prints "N passed, N failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"
#include "../check.h"



/* Writes row r's target for class k (one-hot, index, or 0/1 for a single
 * output). */
static void set_target(float *yt, int r, int k)
{
    int j;
    for (j = 0; j < M_TARGET; j++)
        yt[r * M_TARGET + j] = 0.0f;
    if (M_TARGET == M_OUT && M_OUT > 1)
        yt[r * M_TARGET + k] = 1.0f;
    else
        yt[r * M_TARGET] = (float)k;
}

/* m_accuracy against targets made from the predictions a[] of px:
 * all right, all wrong, and the first half right. */
static void check_accuracy(m_ctx *c, const float *px, const float *a)
{
    enum { N = 3 * M_BATCH + 1 };
    static float yt[N * M_TARGET];
    double acc = -1;
    int r, j, pass;
    for (pass = 0; pass < 3; pass++) {
        for (r = 0; r < N; r++) {
            const float *o = a + r * M_OUT;
            int k = 0, wrong = pass == 1 || (pass == 2 && r >= N / 2);
            for (j = 1; j < M_OUT; j++)
                k = o[j] > o[k] ? j : k;
            if (M_OUT == 1)
                k = o[0] >= 0.5f;
            set_target(yt, r, wrong ? (M_OUT == 1 ? 1 - k : (k + 1) % M_OUT) : k);
        }
        CHECK(m_accuracy(c, px, yt, N, &acc) == 0, "accuracy");
        CHECK(acc == (pass == 0 ? 1.0 : pass == 1 ? 0.0 : (double)(N / 2) / N),
              "accuracy pass %d: %g", pass, acc);
    }
    CHECK(m_accuracy(c, px, yt, 0, &acc) == 0 && acc == 0.0, "accuracy n = 0");
    CHECK(m_accuracy(NULL, px, yt, 1, &acc) == NNC_ERR_ARG &&
              m_accuracy(c, px, yt, 1, NULL) == NNC_ERR_ARG &&
              m_accuracy(c, px, NULL, 1, &acc) == NNC_ERR_ARG, "accuracy NULL");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char p1[4096], p2[4096], p3[4096];
    enum { NPRED = 3 * M_BATCH + 1 };
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
    static float px[NPRED * M_IN], a[NPRED * M_OUT], b[NPRED * M_OUT];
    int i, j;

    snprintf(p1, sizeof p1, "%s/w1.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/w2.safetensors", dir);
    snprintf(p3, sizeof p3, "%s/w3.safetensors", dir);
    for (i = 0; i < M_BATCH * M_IN; i++)
        x[i] = 2 * frand() - 1;
    /* targets valid for every loss: a one-hot row (sums to 1, in [0, 1]),
     * or its class index for sparse losses (M_TARGET 1, M_OUT classes) */
    memset(y, 0, sizeof y);
    for (i = 0; i < M_BATCH; i++) {
        int k = (int)(frand() * M_OUT) % M_OUT;
        if (M_TARGET == M_OUT)
            y[i * M_TARGET + k] = 1.0f;
        else
            y[i] = (float)k;
    }
    for (i = 0; i < NPRED * M_IN; i++)
        px[i] = 2 * frand() - 1;

    /* 1. determinism of initialization */
    {
        m_ctx *c1 = m_create(7), *c2 = m_create(7), *c3 = m_create(8);
        char *raw = malloc(M_MEM_BYTES + 1);
        m_ctx *c4;
        CHECK(c1 && c2 && c3 && raw, "create");
        CHECK(m_save(c1, p1) == 0 && m_save(c2, p2) == 0 && m_save(c3, p3) == 0, "save");
        CHECK(same_file(p1, p2), "same seed, different weights");
        CHECK(!same_file(p1, p3), "different seeds, same weights");
        CHECK(m_init(raw + 1, M_MEM_BYTES - 1, 7) == NULL, "init accepted a short block");
        c4 = m_init(raw + 1, M_MEM_BYTES, 7); /* deliberately unaligned */
        CHECK(c4 != NULL, "init refused M_MEM_BYTES");
        CHECK(c4 && m_save(c4, p3) == 0 && same_file(p1, p3), "init differs from create");
        m_destroy(c1);
        m_destroy(c2);
        m_destroy(c3);
        free(raw);
    }

    /* 2. training lowers the loss on a fixed batch */
    {
        m_ctx *c = m_create(1);
        float first = m_train_step(c, x, y), last = first;
        CHECK(isfinite(first), "first loss %g", first);
        for (i = 0; i < 200; i++)
            last = m_train_step(c, x, y);
        printf("loss: step 1 %.6f, step 201 %.6f\n", first, last);
        CHECK(isfinite(last) && last < 0.9f * first, "loss did not fall: %g -> %g", first, last);

        /* 3. predict does not depend on chunking, beyond rounding: one row
         * at a time takes the runtime's dot-product path, whole batches the
         * GEMM kernels, which sum in another order. Differences are
         * measured against the largest output: an output that is a small
         * sum of large terms (a linear layer over gelu features) keeps
         * only the absolute accuracy of its terms */
        CHECK(m_predict(c, px, a, NPRED) == 0, "predict");
        for (i = 0; i < NPRED; i++)
            CHECK(m_predict(c, px + i * M_IN, b + i * M_OUT, 1) == 0, "predict 1");
        {
            /* relative to the row's largest output: a dot product's
             * rounding error scales with its terms, not with its result
             * (wide models cancel large terms into small logits) */
            double worst = 0;
            for (i = 0; i < NPRED * M_OUT; i++) {
                double scale = 0;
                for (j = i - i % M_OUT; j < i - i % M_OUT + M_OUT; j++)
                    scale = fabs((double)a[j]) > scale ? fabs((double)a[j]) : scale;
                double d = fabs((double)a[i] - (double)b[i]) / (1e-3 + scale);
                worst = d > worst ? d : worst;
            }
            CHECK(worst <= 1e-5, "predict depends on chunking: relative difference %g", worst);
        }
        CHECK(m_predict(c, px, b, 2 * M_BATCH + 1) == 0 &&
                  memcmp(a, b, sizeof(float) * (2 * M_BATCH) * M_OUT) == 0,
              "predict of the same chunks differs");
        CHECK(m_predict(c, px, b, 0) == 0, "predict n = 0");

        /* 4. accuracy (a holds the predictions of px) */
        check_accuracy(c, px, a);

        /* 5. checkpoints */
        CHECK(m_save(c, p1) == 0, "save");
        m_train_step(c, x, y);
        CHECK(m_load(c, p1) == 0, "load");
        CHECK(m_predict(c, px, b, NPRED) == 0 && memcmp(a, b, sizeof a) == 0,
              "load did not restore the predictions");
        {
            FILE *f = fopen(p1, "rb"), *g = fopen(p2, "wb");
            long n;
            int ch;
            CHECK(f && g, "copy");
            if (f && g) {
                fseek(f, 0, SEEK_END);
                n = ftell(f);
                rewind(f);
                while (n-- > 8 && (ch = fgetc(f)) != EOF)
                    fputc(ch, g);
            }
            if (f)
                fclose(f);
            if (g)
                fclose(g);
        }
        m_train_step(c, x, y);
        CHECK(m_predict(c, px, a, NPRED) == 0, "predict");
        CHECK(m_load(c, p2) == NNC_ERR_FORMAT, "truncated checkpoint accepted");
        CHECK(m_load(c, "/nonexistent/dir/w.safetensors") == NNC_ERR_IO, "missing file");
        CHECK(m_predict(c, px, b, NPRED) == 0 && memcmp(a, b, sizeof a) == 0,
              "a failed load changed the model");

        /* 6. misuse */
        CHECK(m_predict(NULL, px, a, 1) == NNC_ERR_ARG, "predict NULL ctx");
        CHECK(m_predict(c, NULL, a, 1) == NNC_ERR_ARG, "predict NULL x");
        CHECK(isnan(m_train_step(c, NULL, y)), "train_step NULL x");
        if (M_TARGET != M_OUT) { /* a class index out of range: NaN loss, no harm */
            float keep = y[0];
            y[0] = (float)M_OUT;
            CHECK(isnan(m_train_step(c, x, y)), "out-of-range class index accepted");
            y[0] = -1.0f;
            CHECK(isnan(m_train_step(c, x, y)), "negative class index accepted");
            y[0] = keep;
            CHECK(isfinite(m_train_step(c, x, y)), "a bad index left NaN in the weights");
        }
        CHECK(m_save(NULL, p1) == NNC_ERR_ARG && m_load(c, NULL) == NNC_ERR_ARG, "NULL");
        m_destroy(c);
        m_destroy(NULL);
    }
    /* 6. resuming from a checkpoint */
    {
        enum { N = 7 };
        static float x2[M_BATCH * M_IN];
        m_ctx *c1 = m_create(3), *c2 = m_create(3), *c3 = m_create(99);
        for (i = 0; i < M_BATCH * M_IN; i++)
            x2[i] = 0.5f * x[(i * 7) % (M_BATCH * M_IN)];
        for (i = 0; i < N; i++) {
            m_train_step(c1, x, y);
            m_train_step(c2, x, y);
        }
        CHECK(m_save(c2, p2) == 0 && m_load(c3, p2) == 0, "save and load");
        for (i = 0; i < N; i++) {
            m_train_step(c1, x2, y);
            m_train_step(c3, x2, y);
        }
        CHECK(m_save(c1, p1) == 0 && m_save(c3, p3) == 0, "save");
        CHECK(same_file(p1, p3), "resumed training differs from training straight");
        m_destroy(c1);
        m_destroy(c2);
        m_destroy(c3);
    }
    remove(p1);
    remove(p2);
    remove(p3);
    return check_summary();
}
