/*
 * fmnist_bench.c - trains a Fashion-MNIST model compiled by nnc with
 * --prefix m (bench/fmnist_mlp.nn, the 784-256-128-10 MLP, or
 * examples/fmnist_cnn.nn, the CNN: any model with 784 inputs and 10
 * logits) and reports what the benchmarks compare: epoch time,
 * samples/s, training loss, test accuracy and peak RSS.
 *
 *     nnc bench/fmnist_mlp.nn --prefix m -o DIR/m.c
 *     cc -std=c99 -O3 -march=native -IDIR -I<nnc>/runtime bench/fmnist_bench.c \
 *        DIR/m.c <nnc>/.libs/libnncrt.a -lcjson -lz -lm
 *     ./a.out [--epochs E] [--batches N] [--warmup W] [--warmup-epochs E]
 *             [--warmup-batches N] [--seed S] [--data DIR]
 *
 * The data are the gzipped IDX files of Debian's dataset-fashion-mnist
 * (/usr/share/datasets/fashion-mnist, or --data DIR, or $FMNIST_DIR),
 * read by libnncrt's nnc_idx_load (examples/fmnist_data.h). Pixels stay uint8 in memory
 * (47 MB for the training set instead of 188 MB as floats) and are
 * scaled to [0, 1] when a batch is gathered; labels become one-hot rows.
 * Each epoch visits the 60000 samples in a fresh order from a fixed-seed
 * PRNG and drops the last partial batch (937 batches of 64); --batches N
 * trains only the first N batches of each epoch (a shorter run) and
 * extrapolates the epoch time from them. Before the timed epochs, W
 * warm-up steps (default 10) train on the first batches in file order,
 * as the Python peers do (there they trigger compilation), then
 * --warmup-epochs (default 1) untimed epochs of --warmup-batches batches
 * (default all): the timed epochs run in the steady state, after
 * training. The first warm-up epoch's time is printed as first_epoch_s
 * (extrapolated to a full epoch): the figure on fresh weights. An epoch's
 * time covers gathering the batches and train_step; the test accuracy
 * after the timed epochs (predict on the 10000 test images, argmax of the
 * logits) is measured outside it. The last lines are "key value" pairs
 * for bench/run.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "../examples/fmnist_data.h"
#include "m.h"

#if M_IN != 784 || M_OUT != 10
#error "fmnist_bench.c expects 784 inputs and 10 outputs"
#endif

#define B M_BATCH
#define PRED_CHUNK 1000

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

static double accuracy(m_ctx *ctx, const unsigned char *x,
                       const unsigned char *y, size_t n)
{
    static float xs[PRED_CHUNK * 784], ys[PRED_CHUNK * 10];
    size_t i, j, c, k, correct = 0;

    for (i = 0; i < n; i += PRED_CHUNK) {
        c = n - i < PRED_CHUNK ? n - i : PRED_CHUNK;
        for (j = 0; j < c * 784; j++)
            xs[j] = (float)x[i * 784 + j] * (1.0f / 255.0f);
        if (m_predict(ctx, xs, ys, c) != 0) {
            fprintf(stderr, "fmnist_bench: predict failed\n");
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
    int epochs = 1, warmup = 10, wepochs = 1, a, e;
    long batches = 0, wbatches = 0;
    uint64_t seed = 42;
    fmnist_data d;
    size_t nb, run, b, i, *order;
    double t0, dt, total_time = 0, acc = 0, loss = 0;
    m_ctx *ctx;
    struct rusage ru;

    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/datasets/fashion-mnist";
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--epochs") == 0 && a + 1 < argc)
            epochs = atoi(argv[++a]);
        else if (strcmp(argv[a], "--warmup") == 0 && a + 1 < argc)
            warmup = atoi(argv[++a]);
        else if (strcmp(argv[a], "--warmup-epochs") == 0 && a + 1 < argc)
            wepochs = atoi(argv[++a]);
        else if (strcmp(argv[a], "--warmup-batches") == 0 && a + 1 < argc)
            wbatches = atol(argv[++a]);
        else if (strcmp(argv[a], "--batches") == 0 && a + 1 < argc)
            batches = atol(argv[++a]);
        else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc)
            seed = strtoull(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--data") == 0 && a + 1 < argc)
            dir = argv[++a];
        else {
            fprintf(stderr, "usage: %s [--epochs E] [--batches N] [--warmup W] "
                    "[--warmup-epochs E] [--warmup-batches N] [--seed S] [--data DIR]\n", argv[0]);
            return 2;
        }
    }
    if (epochs < 1 || warmup < 0 || batches < 0 || wepochs < 0 || wbatches < 0) {
        fprintf(stderr, "fmnist_bench: --epochs must be >= 1, --warmup, "
                "--warmup-epochs, --warmup-batches and --batches >= 0\n");
        return 2;
    }

    t0 = fmnist_now();
    if (fmnist_load(dir, &d) != 0)
        return 1;
    printf("load_s %.3f\n", fmnist_now() - t0);
    nb = d.n_train / B;
    if (nb == 0) {
        fprintf(stderr, "fmnist_bench: fewer than %d training samples\n", B);
        fmnist_free(&d);
        return 1;
    }
    run = batches > 0 && (size_t)batches < nb ? (size_t)batches : nb;

    ctx = m_create(1234);
    order = malloc(d.n_train * sizeof *order);
    if (ctx == NULL || order == NULL) {
        fprintf(stderr, "fmnist_bench: out of memory\n");
        return 1;
    }
    for (i = 0; i < d.n_train; i++)
        order[i] = i;
    t0 = fmnist_now();
    for (b = 0; b < (size_t)warmup && b < nb; b++) {
        gather(d.train_x, d.train_y, order + b * B);
        m_train_step(ctx, xb, yb);
    }
    printf("warmup_s %.3f\n", fmnist_now() - t0);

    printf("peak_gflops %.1f\n", nnc_peak_gflops());
    printf("threads %d\n", nnc_num_threads());
    uint64_t rng_state = seed;
    size_t wrun = wbatches > 0 && (size_t)wbatches < nb ? (size_t)wbatches : nb;
    for (e = 1 - wepochs; e <= epochs; e++) {
        double sum = 0;
        size_t n = e < 1 ? wrun : run;

        for (i = d.n_train - 1; i > 0; i--) {   /* Fisher-Yates, fixed seed */
            size_t j = (size_t)((fmnist_rng_next(&rng_state) >> 32) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        t0 = fmnist_now();
        for (b = 0; b < n; b++) {
            gather(d.train_x, d.train_y, order + b * B);
            sum += m_train_step(ctx, xb, yb);
        }
        dt = fmnist_now() - t0;
        loss = sum / (double)n;
        if (e < 1) {
            printf("warm-up epoch %d/%d  %lu batches  time %.3f s  loss %.4f (untimed)\n",
                   e + wepochs, wepochs, (unsigned long)n, dt, loss);
            if (e == 1 - wepochs)
                printf("first_epoch_s %.4f\n", dt * (double)nb / (double)n);
            fflush(stdout);
            continue;
        }
        total_time += dt;
        printf("epoch %d/%d  %lu batches  time %.3f s  %.0f samples/s  "
               "loss %.4f\n", e, epochs, (unsigned long)run, dt,
               (double)(run * B) / dt, loss);
        fflush(stdout);
    }
    printf("warmup_epoch_steps %lu\n", (unsigned long)(wrun * (size_t)wepochs));
    acc = accuracy(ctx, d.test_x, d.test_y, d.n_test);
    getrusage(RUSAGE_SELF, &ru);
    /* an epoch is nb batches; with --batches, extrapolated from run */
    printf("batches %lu\n", (unsigned long)run);
    printf("epoch_batches %lu\n", (unsigned long)nb);
    printf("epoch_s %.4f\n", total_time / epochs * (double)nb / (double)run);
    printf("samples_per_s %.1f\n", (double)(run * B) * epochs / total_time);
    printf("train_loss %.4f\n", loss);
    printf("test_acc %.4f\n", acc);
    printf("peak_rss_kb %ld\n", (long)ru.ru_maxrss);

    m_destroy(ctx);
    free(order);
    fmnist_free(&d);
    return 0;
}
