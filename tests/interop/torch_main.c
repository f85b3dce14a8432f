/*
 * torch_main.c - the C side of tests/interop/torch_interop.py, built with
 * a model that nnc emitted with `--prefix m`:
 *
 *   torch_main load FILE X.bin N OUT.bin
 *       m_load(FILE) into a fresh context (which must succeed), then
 *       predict N rows of X.bin into OUT.bin (float32, little-endian).
 *   torch_main fail FILE CODE
 *       m_load(FILE) must fail with the NNC_ERR_* code CODE and leave the
 *       weights untouched (predictions unchanged).
 *   torch_main export FILE X.bin N OUT.bin
 *       trains 5 steps on made-up data (so batchnorm's running statistics
 *       move), m_export(FILE), predicts N rows of X.bin into OUT.bin; then
 *       a second context m_load()s FILE (PyTorch's layout, converted back)
 *       and must predict the same bits, and m_save + m_load round trips.
 *
 * Failures print "torch_main: ..." and exit 1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"
#include "nncrt.h"
#define CHECK_PROGRAM "torch_main"
#include "../check.h" /* die */

static float *read_rows(const char *path, size_t n)
{
    float *x = malloc(n * M_IN * sizeof *x + 1);
    FILE *f = fopen(path, "rb");

    if (!x || !f || fread(x, sizeof *x, n * M_IN, f) != n * M_IN)
        die("cannot read %zu rows from %s", n, path);
    fclose(f);
    return x;
}

static void write_rows(const char *path, const float *y, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(y, sizeof *y, n * M_OUT, f) != n * M_OUT || fclose(f) != 0)
        die("cannot write %s", path);
}

static float *predict(m_ctx *ctx, const float *x, size_t n)
{
    float *y = malloc(n * M_OUT * sizeof *y + 1);
    int err;

    if (!y)
        die("out of memory");
    if ((err = m_predict(ctx, x, y, n)) != 0)
        die("m_predict: %s", nnc_strerror(err));
    return y;
}

static float next(unsigned long *s)
{
    *s = *s * 6364136223846793005UL + 1442695040888963407UL;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void train(m_ctx *ctx)
{
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET];
    unsigned long s = 12345;
    int step, i;

    for (step = 0; step < 5; step++) {
        for (i = 0; i < M_BATCH * M_IN; i++)
            x[i] = next(&s) + 0.5f;   /* mean 0.5: running means move */
        memset(y, 0, sizeof y);
        for (i = 0; i < M_BATCH; i++)
            y[i * M_TARGET + (M_TARGET > 1 ? i % M_TARGET : 0)] = 1.0f;
        (void)m_train_step(ctx, x, y);
    }
}

int main(int argc, char **argv)
{
    m_ctx *ctx, *ctx2;
    float *x, *y, *y2;
    size_t n;
    int err;

    if (argc == 4 && strcmp(argv[1], "fail") == 0) {
        float probe[M_IN] = {0}, before[M_OUT], after[M_OUT];

        if (!(ctx = m_create(7)))
            die("m_create failed");
        m_predict(ctx, probe, before, 1);
        err = m_load(ctx, argv[2]);
        if (err != atoi(argv[3]))
            die("m_load(%s) returned %d (%s), want %s", argv[2], err, nnc_strerror(err),
                argv[3]);
        m_predict(ctx, probe, after, 1);
        if (memcmp(before, after, sizeof before) != 0)
            die("m_load(%s) failed but changed the weights", argv[2]);
        m_destroy(ctx);
        return 0;
    }
    if (argc != 6 || (strcmp(argv[1], "load") != 0 && strcmp(argv[1], "export") != 0))
        die("usage: torch_main load|export FILE X.bin N OUT.bin | fail FILE CODE");
    n = (size_t)atol(argv[4]);
    x = read_rows(argv[3], n);
    if (!(ctx = m_create(7)) || !(ctx2 = m_create(8)))
        die("m_create failed");
    if (strcmp(argv[1], "load") == 0) {
        if ((err = m_load(ctx, argv[2])) != 0)
            die("m_load(%s): %s", argv[2], nnc_strerror(err));
        y = predict(ctx, x, n);
    } else {
        char path[4096];

        train(ctx);
        if ((err = m_export(ctx, argv[2])) != 0)
            die("m_export(%s): %s", argv[2], nnc_strerror(err));
        y = predict(ctx, x, n);
        if ((err = m_load(ctx2, argv[2])) != 0)
            die("m_load(%s) of the exported file: %s", argv[2], nnc_strerror(err));
        y2 = predict(ctx2, x, n);
        if (memcmp(y, y2, n * M_OUT * sizeof *y) != 0)
            die("export then load does not give the same predictions");
        free(y2);
        snprintf(path, sizeof path, "%s.nnc", argv[2]);
        if ((err = m_save(ctx, path)) != 0 || (err = m_load(ctx2, path)) != 0)
            die("m_save/m_load(%s): %s", path, nnc_strerror(err));
        y2 = predict(ctx2, x, n);
        if (memcmp(y, y2, n * M_OUT * sizeof *y) != 0)
            die("save then load does not give the same predictions");
        free(y2);
    }
    write_rows(argv[5], y, n);
    free(x);
    free(y);
    m_destroy(ctx);
    m_destroy(ctx2);
    return 0;
}
