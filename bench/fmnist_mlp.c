/*
 * fmnist_mlp.c - trains bench/fmnist_mlp.nn (784-256-128-10 MLP, Adam,
 * batch 64) on Fashion-MNIST and reports what the benchmarks compare:
 * epoch time, samples/s, training loss, test accuracy and peak RSS.
 *
 *     nnc bench/fmnist_mlp.nn -o DIR/fmnist_mlp.c
 *     cc -std=c99 -O2 -IDIR -I<nnc>/runtime bench/fmnist_mlp.c \
 *        DIR/fmnist_mlp.c <nnc>/.libs/libnncrt.a -lcjson -lz -lm
 *     ./a.out [--epochs E] [--warmup W] [--seed S] [--data DIR]
 *
 * The data are the gzipped IDX files of Debian's dataset-fashion-mnist
 * (/usr/share/datasets/fashion-mnist, or --data DIR, or $FMNIST_DIR),
 * read with zlib. Pixels stay uint8 in memory (47 MB for the training
 * set instead of 188 MB as floats) and are scaled to [0, 1] when a batch
 * is gathered; labels become one-hot rows. Each epoch visits the 60000
 * samples in a fresh order from a fixed-seed PRNG and drops the last
 * partial batch (937 batches of 64). Before the timed epochs, W warm-up
 * steps (default 10) train on the first batches in file order, as the
 * Python peers do (there they trigger compilation). An epoch's time
 * covers gathering the batches and train_step; the test accuracy after
 * each epoch (predict on the 10000 test images, argmax of the logits)
 * is measured outside it. The last lines are "key value" pairs for
 * bench/run.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <zlib.h>

#include "fmnist_mlp.h"

#if FMNIST_MLP_IN != 784 || FMNIST_MLP_OUT != 10
#error "fmnist_mlp.c expects 784 inputs and 10 outputs"
#endif

#define B FMNIST_MLP_BATCH
#define PRED_CHUNK 1000

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- IDX files (big-endian header, then uint8 data) -------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads DIR/NAME; magic 2051 (images: n x 784) or 2049 (labels: n).
 * Returns malloc'ed data and sets *n, or NULL after printing why. */
static unsigned char *read_idx(const char *dir, const char *name,
                               uint32_t magic, size_t *n)
{
    char path[4096];
    unsigned char hdr[16];
    size_t hlen = magic == 2051 ? 16 : 8, per = 1, bytes;
    unsigned char *data;
    gzFile f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = gzopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fmnist_mlp: cannot open %s\n", path);
        return NULL;
    }
    if (gzread(f, hdr, (unsigned)hlen) != (int)hlen || be32(hdr) != magic) {
        fprintf(stderr, "fmnist_mlp: %s: not an IDX file (magic %u)\n",
                path, (unsigned)magic);
        gzclose(f);
        return NULL;
    }
    *n = be32(hdr + 4);
    if (magic == 2051) {
        per = (size_t)be32(hdr + 8) * be32(hdr + 12);
        if (per != FMNIST_MLP_IN) {
            fprintf(stderr, "fmnist_mlp: %s: images of %lu pixels, "
                    "expected 784\n", path, (unsigned long)per);
            gzclose(f);
            return NULL;
        }
    }
    bytes = *n * per;
    data = malloc(bytes);
    if (data == NULL || gzread(f, data, (unsigned)bytes) != (int)bytes) {
        fprintf(stderr, "fmnist_mlp: %s: truncated\n", path);
        free(data);
        gzclose(f);
        return NULL;
    }
    gzclose(f);
    return data;
}

/* ---- Training ---------------------------------------------------------- */

static float xb[B * 784], yb[B * 10];

static void gather(const unsigned char *x, const unsigned char *y,
                   const size_t *idx)
{
    size_t i, j;

    memset(yb, 0, sizeof yb);
    for (i = 0; i < B; i++) {
        const unsigned char *px = x + idx[i] * 784;
        float *row = xb + i * 784;

        for (j = 0; j < 784; j++)
            row[j] = (float)px[j] * (1.0f / 255.0f);
        yb[i * 10 + y[idx[i]]] = 1.0f;
    }
}

static double accuracy(fmnist_mlp_ctx *ctx, const unsigned char *x,
                       const unsigned char *y, size_t n)
{
    static float xs[PRED_CHUNK * 784], ys[PRED_CHUNK * 10];
    size_t i, j, c, k, correct = 0;

    for (i = 0; i < n; i += PRED_CHUNK) {
        c = n - i < PRED_CHUNK ? n - i : PRED_CHUNK;
        for (j = 0; j < c * 784; j++)
            xs[j] = (float)x[i * 784 + j] * (1.0f / 255.0f);
        if (fmnist_mlp_predict(ctx, xs, ys, c) != 0) {
            fprintf(stderr, "fmnist_mlp: predict failed\n");
            exit(1);
        }
        for (j = 0; j < c; j++) {
            size_t best = 0;
            for (k = 1; k < 10; k++)
                if (ys[j * 10 + k] > ys[j * 10 + best])
                    best = k;
            correct += best == y[i + j];
        }
    }
    return (double)correct / (double)n;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("FMNIST_DIR");
    int epochs = 1, warmup = 10, a, e;
    uint64_t seed = 42;
    unsigned char *xtr, *ytr, *xte, *yte;
    size_t ntr, ntr2, nte, nte2, nb, b, i, *order;
    double t0, dt, total_time = 0, acc = 0, loss = 0;
    fmnist_mlp_ctx *ctx;
    struct rusage ru;

    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/datasets/fashion-mnist";
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--epochs") == 0 && a + 1 < argc)
            epochs = atoi(argv[++a]);
        else if (strcmp(argv[a], "--warmup") == 0 && a + 1 < argc)
            warmup = atoi(argv[++a]);
        else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc)
            seed = strtoull(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--data") == 0 && a + 1 < argc)
            dir = argv[++a];
        else {
            fprintf(stderr, "usage: %s [--epochs E] [--warmup W] "
                    "[--seed S] [--data DIR]\n", argv[0]);
            return 2;
        }
    }
    if (epochs < 1 || warmup < 0)
        return 2;

    t0 = now_s();
    xtr = read_idx(dir, "train-images-idx3-ubyte.gz", 2051, &ntr);
    ytr = read_idx(dir, "train-labels-idx1-ubyte.gz", 2049, &ntr2);
    xte = read_idx(dir, "t10k-images-idx3-ubyte.gz", 2051, &nte);
    yte = read_idx(dir, "t10k-labels-idx1-ubyte.gz", 2049, &nte2);
    if (!xtr || !ytr || !xte || !yte)
        return 1;
    if (ntr != ntr2 || nte != nte2) {
        fprintf(stderr, "fmnist_mlp: image and label counts differ\n");
        return 1;
    }
    printf("load_s %.3f\n", now_s() - t0);
    for (i = 0; i < ntr; i++)
        if (ytr[i] > 9)
            return 1;

    ctx = fmnist_mlp_create(1234);
    order = malloc(ntr * sizeof *order);
    if (ctx == NULL || order == NULL) {
        fprintf(stderr, "fmnist_mlp: out of memory\n");
        return 1;
    }
    nb = ntr / B;

    for (i = 0; i < ntr; i++)
        order[i] = i;
    t0 = now_s();
    for (b = 0; b < (size_t)warmup && b < nb; b++) {
        gather(xtr, ytr, order + b * B);
        fmnist_mlp_train_step(ctx, xb, yb);
    }
    printf("warmup_s %.3f\n", now_s() - t0);

    rng_state = seed;
    for (e = 1; e <= epochs; e++) {
        double sum = 0;

        for (i = ntr - 1; i > 0; i--) {   /* Fisher-Yates, fixed seed */
            size_t j = (size_t)((rng_next() >> 32) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        t0 = now_s();
        for (b = 0; b < nb; b++) {
            gather(xtr, ytr, order + b * B);
            sum += fmnist_mlp_train_step(ctx, xb, yb);
        }
        dt = now_s() - t0;
        total_time += dt;
        loss = sum / (double)nb;
        acc = accuracy(ctx, xte, yte, nte);
        printf("epoch %d/%d  time %.3f s  %.0f samples/s  loss %.4f  "
               "test_acc %.4f\n", e, epochs, dt, (double)(nb * B) / dt,
               loss, acc);
        fflush(stdout);
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("epoch_s %.4f\n", total_time / epochs);
    printf("samples_per_s %.1f\n", (double)(nb * B) * epochs / total_time);
    printf("train_loss %.4f\n", loss);
    printf("test_acc %.4f\n", acc);
    printf("peak_rss_kb %ld\n", (long)ru.ru_maxrss);

    fmnist_mlp_destroy(ctx);
    free(order);
    free(xtr); free(ytr); free(xte); free(yte);
    return 0;
}
