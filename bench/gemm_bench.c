/*
 * gemm_bench.c - GFLOP/s of nnc_sgemm, or of OpenBLAS cblas_sgemm, on the
 * shapes nnc's models run: square N = 32..1024, an MLP 784-256-128-10 and
 * a two-conv Fashion-MNIST CNN (im2col) at batch 64, forward and backward,
 * and the seed model at batch 32.
 *
 *     gemm_bench nnc|blas THREADS [FILTER]
 *
 * prints one tab-separated line per shape: name, M x N x K, threads,
 * GFLOP/s, and the kernel set (nnc ISA or OpenBLAS core name). One process measures one library at one
 * thread count, because OpenBLAS reads OPENBLAS_CORETYPE when it loads;
 * bench/gemm.sh runs the combinations and builds the table. Each shape is
 * warmed up, then timed as the median of 7 samples of at least 20 ms.
 * OpenBLAS is linked only here, never into libnncrt.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef WITH_OPENBLAS
#include <cblas.h>
/* OpenBLAS extensions: declared by OpenBLAS's own cblas.h, not by the
 * reference cblas.h that Debian's alternatives may select */
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
#endif

#include "nncrt.h"

typedef struct Shape {
    const char *name;
    int m, n, k, ta, tb;
} Shape;

/* Weights are stored (out, in), so a dense forward is x W^T. */
static const Shape shapes[] = {
    {"square 32", 32, 32, 32, 0, 0},
    {"square 64", 64, 64, 64, 0, 0},
    {"square 128", 128, 128, 128, 0, 0},
    {"square 256", 256, 256, 256, 0, 0},
    {"square 512", 512, 512, 512, 0, 0},
    {"square 1024", 1024, 1024, 1024, 0, 0},
    {"mlp fwd 64x784 W1^T", 64, 256, 784, 0, 1},
    {"mlp fwd 64x256 W2^T", 64, 128, 256, 0, 1},
    {"mlp fwd 64x128 W3^T", 64, 10, 128, 0, 1},
    {"mlp dX3 64x10 W3", 64, 128, 10, 0, 0},
    {"mlp dX2 64x128 W2", 64, 256, 128, 0, 0},
    {"mlp dW1 dY^T X 256x784", 256, 784, 64, 1, 0},
    {"mlp dW2 dY^T X 128x256", 128, 256, 64, 1, 0},
    {"mlp dW3 dY^T X 10x128", 10, 128, 64, 1, 0},
    {"cnn conv1 fwd 43264x32x9", 43264, 32, 9, 0, 1},
    {"cnn conv2 fwd 7744x64x288", 7744, 64, 288, 0, 1},
    {"cnn conv2 dW 64x288 (k=7744)", 64, 288, 7744, 1, 0},
    {"cnn conv2 dcol 7744x288x64", 7744, 288, 64, 0, 0},
    {"cnn train conv1 fwd 2048x32x9", 2048, 32, 9, 0, 1},
    {"cnn train conv2 fwd 1024x64x288", 1024, 64, 288, 0, 1},
    {"cnn train dense1 fwd 64x1600 W^T", 64, 128, 1600, 0, 1},
    {"cnn train dense1 dX 64x128 W", 64, 1600, 128, 0, 0},
    {"cnn train dense1 dW 128x1600 (k=64)", 128, 1600, 64, 1, 0},
    {"cnn train conv2 dcol 6400x288x64", 6400, 288, 64, 0, 0},
    {"cnn train conv2 dW 64x288 (k=6400)", 64, 288, 6400, 1, 0},
    {"cnn train conv1 dW 32x9 (k=43264)", 32, 9, 43264, 1, 0},
    {"seed fwd 32x10 -> 128", 32, 128, 10, 0, 1},
    {"seed fwd 32x128 -> 64", 32, 64, 128, 0, 1},
    {"seed fwd 32x64 -> 1", 32, 1, 64, 0, 1},
    {"seed dW1 128x10 (k=32)", 128, 10, 32, 1, 0},
    {"seed dX2 32x64 W2", 32, 128, 64, 0, 0},
    /* the GPT example (12 x 64 tokens, 128 wide, MLP 512) */
    {"gpt qkv 768x128 -> 384", 768, 384, 128, 0, 1},
    {"gpt mlp up 768x128 -> 512", 768, 512, 128, 0, 1},
    {"gpt mlp down 768x512 -> 128", 768, 128, 512, 0, 1},
    {"gpt mlp down dX 768x128 W", 768, 512, 128, 0, 0},
    {"gpt mlp up dX 768x512 W", 768, 128, 512, 0, 0},
    {"gpt mlp up dW 512x128 (k=768)", 512, 128, 768, 1, 0},
    {"gpt mlp down dW 128x512 (k=768)", 128, 512, 768, 1, 0},
};

static int use_blas;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(const Shape *s, const float *a, const float *b, float *c)
{
    int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;

#ifdef WITH_OPENBLAS
    if (use_blas) {
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k,
                    1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        return;
    }
#endif
    nnc_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c,
              s->n);
}

static int cmp_double(const void *x, const void *y)
{
    double u = *(const double *)x, v = *(const double *)y;

    return (u > v) - (u < v);
}

/* Median GFLOP/s over 7 samples, each repeating the call for >= 20 ms. */
static double measure(const Shape *s, const float *a, const float *b,
                      float *c)
{
    double flops = 2.0 * s->m * s->n * s->k, t, samples[7];
    long reps = 1, r;
    int i;

    for (;;) {          /* warm-up, and calibrate reps per sample */
        t = now();
        for (r = 0; r < reps; r++)
            run(s, a, b, c);
        t = now() - t;
        if (t >= 0.02)
            break;
        reps *= t > 0.002 ? 2 : 10;
    }
    for (i = 0; i < 7; i++) {
        t = now();
        for (r = 0; r < reps; r++)
            run(s, a, b, c);
        samples[i] = flops * (double)reps / (now() - t) * 1e-9;
    }
    qsort(samples, 7, sizeof samples[0], cmp_double);
    return samples[3];
}

static float *random_floats(size_t n, nnc_rng *r)
{
    float *p = malloc(n * sizeof *p);
    size_t i;

    if (p == NULL) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        exit(2);
    }
    for (i = 0; i < n; i++)
        p[i] = 2.0f * nnc_rng_uniform(r) - 1.0f;
    return p;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 3 ? argv[3] : NULL;
    const char *core = "";
    int threads;
    size_t i;
    nnc_rng r;

    if (argc < 3 || (strcmp(argv[1], "nnc") && strcmp(argv[1], "blas"))) {
        fprintf(stderr, "usage: gemm_bench nnc|blas THREADS [FILTER]\n");
        return 2;
    }
    use_blas = strcmp(argv[1], "blas") == 0;
    threads = atoi(argv[2]);
#ifdef WITH_OPENBLAS
    if (use_blas) {
        openblas_set_num_threads(threads);
        core = openblas_get_corename();
    }
#else
    if (use_blas) {
        fprintf(stderr, "gemm_bench: built without OpenBLAS\n");
        return 2;
    }
#endif
    if (!use_blas) {
        nnc_set_num_threads(threads);
        core = nnc_isa();
    }
    nnc_rng_seed(&r, 1);
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const Shape *s = &shapes[i];
        float *a, *b, *c;
        if (filter != NULL && strstr(s->name, filter) == NULL)
            continue;
        a = random_floats((size_t)s->m * (size_t)s->k, &r);
        b = random_floats((size_t)s->k * (size_t)s->n, &r);
        c = random_floats((size_t)s->m * (size_t)s->n, &r);
        printf("%s\t%dx%dx%d%s%s\t%d\t%.1f\t%s\n", s->name, s->m, s->n,
               s->k, s->ta ? " A^T" : "", s->tb ? " B^T" : "", threads,
               measure(s, a, b, c), core);
        fflush(stdout);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
