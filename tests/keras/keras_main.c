/*
 * keras_main.c - numerics of imported Keras models (tests/keras/run.sh),
 * built with the model that `nnc import-keras` made, emitted with
 * `--prefix m`:
 *
 *     keras_main W.safetensors IO.bin
 *
 * m_load()s the Keras weights (converted to nnc's layout by gen.py), reads
 * N rows of input and Keras' predictions for them from IO.bin (float32,
 * little-endian: N*M_IN then N*M_OUT floats, N from the file size),
 * predicts and compares: |nnc - keras| <= 1e-4 max(1, |keras|). Prints the
 * largest difference; exit status 1 on a mismatch or any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "m.h"
#include "nncrt.h"

int main(int argc, char **argv)
{
    FILE *f;
    long bytes;
    size_t n, i, row = M_IN + M_OUT;
    float *x, *want, *got;
    double worst = 0;
    int bad = 0;
    m_ctx *ctx;
    int err;

    if (argc != 3) {
        fprintf(stderr, "usage: keras_main W.safetensors IO.bin\n");
        return 2;
    }
    if (!(ctx = m_create(1)) || (err = m_load(ctx, argv[1])) != 0) {
        fprintf(stderr, "keras_main: m_load(%s): %s\n", argv[1],
                ctx ? nnc_strerror(err) : "m_create failed");
        return 1;
    }
    if (!(f = fopen(argv[2], "rb")) || fseek(f, 0, SEEK_END) != 0 || (bytes = ftell(f)) < 0 ||
        bytes % (long)(row * sizeof(float)) != 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "keras_main: %s: unreadable or not N rows of %lu floats\n", argv[2],
                (unsigned long)row);
        return 1;
    }
    n = (size_t)bytes / (row * sizeof(float));
    x = malloc(n * M_IN * sizeof *x);
    want = malloc(n * M_OUT * sizeof *want);
    got = malloc(n * M_OUT * sizeof *got);
    if (!x || !want || !got || fread(x, sizeof *x, n * M_IN, f) != n * M_IN ||
        fread(want, sizeof *want, n * M_OUT, f) != n * M_OUT) {
        fprintf(stderr, "keras_main: cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(f);
    if ((err = m_predict(ctx, x, got, n)) != 0) {
        fprintf(stderr, "keras_main: m_predict: %s\n", nnc_strerror(err));
        return 1;
    }
    for (i = 0; i < n * M_OUT; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(d <= 1e-4))
            bad = 1;   /* NaN too */
        if (d > worst)
            worst = d;
    }
    printf("%lu rows, max difference %.2g%s\n", (unsigned long)n, worst, bad ? " (too large)" : "");
    free(x);
    free(want);
    free(got);
    m_destroy(ctx);
    return bad;
}
