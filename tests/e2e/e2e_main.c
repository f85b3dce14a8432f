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
 *  4. save then load restores the exact predictions; a truncated file
 *     and a missing file are refused and leave the model untouched;
 *  5. bad arguments are refused;
 *  6. training N steps, saving, loading into a fresh model (another seed)
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

static int passed, failed;
#define CHECK(c, ...)                                                    \
    do {                                                                 \
        if (c) {                                                         \
            passed++;                                                    \
        } else {                                                         \
            failed++;                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                  \
            printf(__VA_ARGS__);                                         \
            printf("\n");                                                \
        }                                                                \
    } while (0)

static unsigned long long lcg = 88172645463325252ULL;
static float frand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) * (1.0 / 16777216.0));
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char p1[4096], p2[4096], p3[4096];
    enum { NPRED = 3 * M_BATCH + 1 };
    static float x[M_BATCH * M_IN], y[M_BATCH * M_OUT];
    static float px[NPRED * M_IN], a[NPRED * M_OUT], b[NPRED * M_OUT];
    int i;

    snprintf(p1, sizeof p1, "%s/w1.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/w2.safetensors", dir);
    snprintf(p3, sizeof p3, "%s/w3.safetensors", dir);
    for (i = 0; i < M_BATCH * M_IN; i++)
        x[i] = 2 * frand() - 1;
    /* targets valid for every loss: a one-hot row (sums to 1, in [0, 1]) */
    memset(y, 0, sizeof y);
    for (i = 0; i < M_BATCH; i++)
        y[i * M_OUT + (int)(frand() * M_OUT) % M_OUT] = 1.0f;
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
         * GEMM kernels, which sum in another order */
        CHECK(m_predict(c, px, a, NPRED) == 0, "predict");
        for (i = 0; i < NPRED; i++)
            CHECK(m_predict(c, px + i * M_IN, b + i * M_OUT, 1) == 0, "predict 1");
        {
            /* relative to the outputs' scale: an output near 0 made by
             * cancellation (a sum of layers) has no relative precision */
            double worst = 0, scale = 1e-3;
            for (i = 0; i < NPRED * M_OUT; i++)
                scale = fabs((double)a[i]) > scale ? fabs((double)a[i]) : scale;
            for (i = 0; i < NPRED * M_OUT; i++) {
                double d = fabs((double)a[i] - (double)b[i]) / scale;
                worst = d > worst ? d : worst;
            }
            CHECK(worst <= 1e-5, "predict depends on chunking: relative difference %g", worst);
        }
        CHECK(m_predict(c, px, b, 2 * M_BATCH + 1) == 0 &&
                  memcmp(a, b, sizeof(float) * (2 * M_BATCH) * M_OUT) == 0,
              "predict of the same chunks differs");
        CHECK(m_predict(c, px, b, 0) == 0, "predict n = 0");

        /* 4. checkpoints */
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

        /* 5. misuse */
        CHECK(m_predict(NULL, px, a, 1) == NNC_ERR_ARG, "predict NULL ctx");
        CHECK(m_predict(c, NULL, a, 1) == NNC_ERR_ARG, "predict NULL x");
        CHECK(isnan(m_train_step(c, NULL, y)), "train_step NULL x");
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
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
