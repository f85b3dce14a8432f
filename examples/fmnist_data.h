/*
 * fmnist_data.h - reads Fashion-MNIST (or MNIST): the four gzipped IDX
 * files of Debian's dataset-fashion-mnist (/usr/share/datasets/
 * fashion-mnist), with zlib. Pixels stay uint8 (n x 784, row-major),
 * labels uint8 (0..9). Used by examples/fmnist_main.c and by the
 * benchmark bench/fmnist_bench.c; a header of static functions so that
 * each program stays one C file plus the generated model. Link with -lz.
 */
#ifndef FMNIST_DATA_H
#define FMNIST_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

typedef struct {
    unsigned char *train_x, *train_y, *test_x, *test_y;
    size_t n_train, n_test;
} fmnist_data;

static uint32_t fmnist_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads DIR/NAME; magic 2051 (images: n x 784) or 2049 (labels: n).
 * Returns malloc'ed data and sets *n, or NULL after printing why. */
static unsigned char *fmnist_read_idx(const char *dir, const char *name, uint32_t magic, size_t *n)
{
    char path[4096];
    unsigned char hdr[16];
    size_t hlen = magic == 2051 ? 16 : 8, per = 1, bytes;
    unsigned char *data;
    gzFile f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = gzopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fmnist: cannot open %s\n", path);
        return NULL;
    }
    if (gzread(f, hdr, (unsigned)hlen) != (int)hlen || fmnist_be32(hdr) != magic) {
        fprintf(stderr, "fmnist: %s: not an IDX file (magic %u expected)\n", path,
                (unsigned)magic);
        gzclose(f);
        return NULL;
    }
    *n = fmnist_be32(hdr + 4);
    if (magic == 2051)
        per = (size_t)fmnist_be32(hdr + 8) * fmnist_be32(hdr + 12);
    if (per != (magic == 2051 ? 784u : 1u)) {
        fprintf(stderr, "fmnist: %s: images of %lu pixels, expected 784\n", path,
                (unsigned long)per);
        gzclose(f);
        return NULL;
    }
    bytes = *n * per;
    data = malloc(bytes ? bytes : 1);
    if (data == NULL || gzread(f, data, (unsigned)bytes) != (int)bytes) {
        fprintf(stderr, "fmnist: %s: %s\n", path, data ? "truncated" : "out of memory");
        free(data);
        gzclose(f);
        return NULL;
    }
    gzclose(f);
    return data;
}

static void fmnist_free(fmnist_data *d)
{
    free(d->train_x);
    free(d->train_y);
    free(d->test_x);
    free(d->test_y);
    d->train_x = d->train_y = d->test_x = d->test_y = NULL;
}

/* Reads the training and test sets from DIR. Returns 0, or -1 after
 * printing why (missing or bad file, counts that differ, a label > 9). */
static int fmnist_load(const char *dir, fmnist_data *d)
{
    size_t ny = 0, nty = 0, i;

    d->train_x = fmnist_read_idx(dir, "train-images-idx3-ubyte.gz", 2051, &d->n_train);
    d->train_y = d->train_x ? fmnist_read_idx(dir, "train-labels-idx1-ubyte.gz", 2049, &ny) : NULL;
    d->test_x = d->train_y ? fmnist_read_idx(dir, "t10k-images-idx3-ubyte.gz", 2051, &d->n_test) : NULL;
    d->test_y = d->test_x ? fmnist_read_idx(dir, "t10k-labels-idx1-ubyte.gz", 2049, &nty) : NULL;
    if (d->test_y == NULL) {
        fmnist_free(d);
        return -1;
    }
    if (ny != d->n_train || nty != d->n_test) {
        fprintf(stderr, "fmnist: %s: image and label counts differ\n", dir);
        fmnist_free(d);
        return -1;
    }
    for (i = 0; i < d->n_train + d->n_test; i++)
        if ((i < d->n_train ? d->train_y[i] : d->test_y[i - d->n_train]) > 9) {
            fprintf(stderr, "fmnist: %s: label out of range\n", dir);
            fmnist_free(d);
            return -1;
        }
    return 0;
}

#endif
