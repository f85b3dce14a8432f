/*
 * fmnist_data.h - reads Fashion-MNIST (or MNIST): the four gzipped IDX
 * files of Debian's dataset-fashion-mnist (/usr/share/datasets/
 * fashion-mnist), with libnncrt's IDX reader (nnc_idx_load, the one the
 * --emit=main training program uses). Pixels stay uint8 (n x 784,
 * row-major), labels uint8 (0..9). Used by examples/fmnist_main.c and by
 * the benchmark bench/fmnist_bench.c, with their clock and shuffling PRNG; a header of static functions so
 * that each program stays one C file plus the generated model, built
 * with $(pkg-config --cflags --libs nncrt) alone.
 */
#ifndef FMNIST_DATA_H
#define FMNIST_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nncrt.h"

typedef struct {
    const unsigned char *train_x, *train_y, *test_x, *test_y;
    size_t n_train, n_test;
    nnc_idx files[4];   /* the files they point into */
} fmnist_data;

/* Reads DIR/NAME into *f: uint8 images (n x 28 x 28) or labels (n), and
 * returns their count, or 0 after printing why. */
static size_t fmnist_read_idx(const char *dir, const char *name, int images, nnc_idx *f)
{
    char path[4096], err[512];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (nnc_idx_load(path, f, err, sizeof err) != 0) {
        fprintf(stderr, "fmnist: %s\n", err);
        return 0;
    }
    if (f->type != 0x08 || f->rank != (images ? 3 : 1) ||
        (images && (f->dims[1] != 28 || f->dims[2] != 28)) || f->dims[0] == 0) {
        fprintf(stderr, "fmnist: %s: not %s\n", path,
                images ? "uint8 images of 28 x 28 pixels" : "uint8 labels");
        nnc_idx_free(f);
        return 0;
    }
    return f->dims[0];
}

static void fmnist_free(fmnist_data *d)
{
    int i;

    for (i = 0; i < 4; i++)
        nnc_idx_free(&d->files[i]);
    d->train_x = d->train_y = d->test_x = d->test_y = NULL;
}

/* Reads the training and test sets from DIR. Returns 0, or -1 after
 * printing why (missing or bad file, counts that differ, a label > 9). */
static int fmnist_load(const char *dir, fmnist_data *d)
{
    static const char *const names[4] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    size_t n[4] = {0}, i;
    int k;

    memset(d, 0, sizeof *d);
    for (k = 0; k < 4; k++)
        if ((n[k] = fmnist_read_idx(dir, names[k], k % 2 == 0, &d->files[k])) == 0) {
            fmnist_free(d);
            return -1;
        }
    if (n[0] != n[1] || n[2] != n[3]) {
        fprintf(stderr, "fmnist: %s: image and label counts differ\n", dir);
        fmnist_free(d);
        return -1;
    }
    d->train_x = d->files[0].data;
    d->train_y = d->files[1].data;
    d->test_x = d->files[2].data;
    d->test_y = d->files[3].data;
    d->n_train = n[0];
    d->n_test = n[2];
    for (i = 0; i < d->n_train + d->n_test; i++)
        if ((i < d->n_train ? d->train_y[i] : d->test_y[i - d->n_train]) > 9) {
            fprintf(stderr, "fmnist: %s: label out of range\n", dir);
            fmnist_free(d);
            return -1;
        }
    return 0;
}

/* Seconds on the monotonic clock. */
static double fmnist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: the shuffling order of the example and the benchmark. */
static uint64_t fmnist_rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#endif
