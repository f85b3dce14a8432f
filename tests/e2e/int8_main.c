/*
 * int8_main.c - one model compiled twice from one checkpoint, as float
 * (prefix f, --weights-from) and as int8 (prefix q, --quantize=int8),
 * run on the same samples:
 *
 *   int8_main X Y SCALE [MIN_AGREE MAX_REL]    compare (exit 1 outside)
 *   int8_main X Y SCALE --bench REPS           time predict at batch F_BATCH
 *   int8_main X Y SCALE --dump OUT             the int8 outputs, raw floats
 *
 * X: samples (any format nnc_data_load reads), times SCALE; Y: one class
 * index per sample. Prints both accuracies, the fraction of samples whose
 * argmax agrees, the largest |output difference| and the largest |float
 * output|. The comparison fails when agreement < MIN_AGREE or the
 * largest difference > MAX_REL times the largest |float output|. --bench prints the fastest of REPS
 * predict calls on F_BATCH rows for each model (microseconds).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "f.h"
#include "q.h"

#if F_IN != Q_IN || F_OUT != Q_OUT || F_TARGET != Q_TARGET
#error "the float and int8 models differ in shape"
#endif

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static size_t argmax(const float *r, int n)
{
    size_t best = 0;
    for (int k = 1; k < n; k++)
        if (r[k] > r[best])
            best = (size_t)k;
    return best;
}

static void bench(f_ctx *f, q_ctx *q, const float *x, size_t rows, int reps)
{
    static float y[F_BATCH * F_OUT];
    double bf = 1e30, bq = 1e30;
    int b = rows < F_BATCH ? (int)rows : F_BATCH;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        f_predict(f, x, y, (size_t)b);
        double t1 = now_us();
        q_predict(q, x, y, (size_t)b);
        double t2 = now_us();
        bf = t1 - t0 < bf ? t1 - t0 : bf;
        bq = t2 - t1 < bq ? t2 - t1 : bq;
    }
    printf("predict batch %d (fastest of %d): float %.1f us, int8 %.1f us (isa %s), "
           "speed-up %.2fx\n", b, reps, bf, bq, nnc_qisa(), bf / bq);
}

int main(int argc, char **argv)
{
    nnc_data dx, dy;
    char err[512];
    if (argc < 4 || nnc_data_load(argv[1], &dx, err, sizeof err) < 0 ||
        nnc_data_load(argv[2], &dy, err, sizeof err) < 0 || dx.cols != F_IN ||
        dy.rows != dx.rows) {
        fprintf(stderr, "usage: int8_main X Y SCALE [MIN_AGREE MAX_REL | --bench REPS | "
                "--dump OUT]\n");
        return 2;
    }
    size_t n = dx.rows, agree = 0;
    float scale = (float)atof(argv[3]);
    float *yf = malloc(n * F_OUT * sizeof(float)), *yq = malloc(n * F_OUT * sizeof(float));
    float *t = calloc(n * F_TARGET, sizeof(float));
    f_ctx *f = f_create(0);
    q_ctx *q = q_create(0);
    double af, aq, diff = 0, big = 0;
    if (!yf || !yq || !t || !f || !q)
        return 2;
    for (size_t i = 0; i < n * F_IN; i++)
        dx.data[i] *= scale;
    for (size_t i = 0; i < n; i++) {
        if (F_TARGET == F_OUT)
            t[i * F_TARGET + (size_t)dy.data[i]] = 1.0f;
        else
            t[i] = dy.data[i];
    }
    if (argc > 5 && (!strcmp(argv[4], "--bench") || !strcmp(argv[4], "--dump"))) {
        int rc = 0;
        if (!strcmp(argv[4], "--bench")) {
            bench(f, q, dx.data, n, atoi(argv[5]));
        } else {
            FILE *o = fopen(argv[5], "wb");
            q_predict(q, dx.data, yq, n);
            rc = !o || fwrite(yq, sizeof(float), n * F_OUT, o) != n * F_OUT;
            if (o && fclose(o) != 0)
                rc = 1;
        }
        f_destroy(f);
        q_destroy(q);
        free(yf), free(yq), free(t);
        nnc_data_free(&dx);
        nnc_data_free(&dy);
        return rc;
    }
    f_predict(f, dx.data, yf, n);
    q_predict(q, dx.data, yq, n);
    f_accuracy(f, dx.data, t, n, &af);
    q_accuracy(q, dx.data, t, n, &aq);
    for (size_t i = 0; i < n; i++) {
        agree += argmax(yf + i * F_OUT, F_OUT) == argmax(yq + i * F_OUT, F_OUT);
        for (int k = 0; k < F_OUT; k++) {
            diff = fmax(diff, fabs((double)yf[i * F_OUT + k] - yq[i * F_OUT + k]));
            big = fmax(big, fabs((double)yf[i * F_OUT + k]));
        }
    }
    printf("%zu samples: accuracy float %.4f int8 %.4f; argmax agrees on %.4f; "
           "largest |output difference| %.4g (largest |float output| %.4g); "
           "weights %zu -> %zu bytes\n", n, af, aq, (double)agree / (double)n, diff, big,
           (size_t)F_PARAM_BYTES, (size_t)Q_WEIGHT_BYTES);
    f_destroy(f);
    q_destroy(q);
    free(yf), free(yq), free(t);
    nnc_data_free(&dx);
    nnc_data_free(&dy);
    if (argc > 5 && ((double)agree / (double)n < atof(argv[4]) || diff > atof(argv[5]) * big)) {
        printf("FAIL: agreement below %s or difference above %s of the outputs\n", argv[4],
               argv[5]);
        return 1;
    }
    return 0;
}
