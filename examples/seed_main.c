/*
 * seed_main.c - the classic Keras example, with nnc instead of Keras.
 *
 *     nnc seed.nn -o seed.c        # writes seed.c and seed.h
 *     cc -std=c99 -O2 -I<nnc>/runtime seed_main.c seed.c \
 *        <nnc>/.libs/libnncrt.a -lcjson -lm       # in a build tree
 *     # or, with nnc installed:
 *     cc -std=c99 -O2 seed_main.c seed.c $(pkg-config --cflags --libs nncrt) -lm
 *     ./a.out [CHECKPOINT.safetensors]
 *
 * Like the Keras snippet it mirrors, it trains on meaningless data: 1000
 * samples of 10 uniform [0, 1) features with random 0/1 labels, 10 epochs
 * at batch 32. The loss starts near ln 2 = 0.693 and falls only a little,
 * as the network memorizes some labels; the point is the API, not the
 * accuracy. It then predicts 100 fresh samples and prints a summary, and
 * saves the weights if a checkpoint path is given.
 *
 * The model lives in memory this program provides (seed_init on a buffer
 * of SEED_MEM_BYTES), the allocation-free path for targets without malloc;
 * seed_create(seed) would allocate the same bytes itself. The data comes
 * from a small PRNG of our own (splitmix64), so every run prints the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "seed.h"
#include "nncrt.h"   /* nnc_strerror */

#define N_TRAIN 1000
#define N_TEST  100
#define EPOCHS  10

#if SEED_IN != 10 || SEED_OUT != 1
#error "seed_main.c expects seed.nn's shapes: 10 inputs, 1 output"
#endif

/* ---- A tiny deterministic PRNG (splitmix64) ----------------------------- */

#define RNG_SEED 42
#include "splitmix.h"

/* ---- Data -------------------------------------------------------------- */

static float x_train[N_TRAIN][SEED_IN], y_train[N_TRAIN][SEED_OUT];
static float x_test[N_TEST][SEED_IN], y_pred[N_TEST][SEED_OUT];
static float x_batch[SEED_BATCH][SEED_IN], y_batch[SEED_BATCH][SEED_OUT];
static size_t order[N_TRAIN];

/* x: uniform [0, 1) features; y: random 0/1 labels (NULL: none). */
static void make_samples(float (*x)[SEED_IN], float (*y)[SEED_OUT], size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < SEED_IN; j++)
            x[i][j] = rng_float();
        if (y != NULL)
            y[i][0] = (float)(rng_next() >> 63);
    }
}

/*
 * One pass over the training set in a fresh random order. 1000 is not a
 * multiple of 32: we drop the last partial batch, so each epoch trains on
 * 31 full batches (992 samples); the shuffle makes the 8 left-out samples
 * differ from epoch to epoch. Returns the mean of the batch losses.
 */
static float train_epoch(seed_ctx *ctx)
{
    size_t nbatches = N_TRAIN / SEED_BATCH, b, i, j;
    double total = 0;

    rng_shuffle(order, N_TRAIN, sizeof order[0]);
    for (b = 0; b < nbatches; b++) {
        for (i = 0; i < SEED_BATCH; i++) {
            size_t k = order[b * SEED_BATCH + i];
            for (j = 0; j < SEED_IN; j++)
                x_batch[i][j] = x_train[k][j];
            y_batch[i][0] = y_train[k][0];
        }
        total += seed_train_step(ctx, &x_batch[0][0], &y_batch[0][0]);
    }
    return (float)(total / (double)nbatches);
}

static void print_predictions(void)
{
    double sum = 0;
    int above = 0;
    size_t i;

    for (i = 0; i < N_TEST; i++) {
        sum += y_pred[i][0];
        above += y_pred[i][0] > 0.5f;
    }
    printf("predicted %d samples: mean %.4f, %d of them > 0.5\n", N_TEST,
           sum / N_TEST, above);
    printf("first 5:");
    for (i = 0; i < 5; i++)
        printf(" %.4f", y_pred[i][0]);
    printf("\n");
}

int main(int argc, char **argv)
{
    void *mem;
    seed_ctx *ctx;
    size_t i;
    int epoch, rc;

    /* The caller-provided-memory path: one buffer, no malloc inside nnc.
     * A static array of SEED_MEM_BYTES works the same way. */
    mem = malloc(SEED_MEM_BYTES);
    if (mem == NULL) {
        fprintf(stderr, "seed_main: out of memory\n");
        return 1;
    }
    ctx = seed_init(mem, SEED_MEM_BYTES, 1234);
    if (ctx == NULL) {
        fprintf(stderr, "seed_main: seed_init failed\n");
        return 1;
    }
    printf("model: %d -> %d, batch %d, %lu bytes of model memory\n",
           SEED_IN, SEED_OUT, SEED_BATCH, (unsigned long)SEED_MEM_BYTES);

    make_samples(x_train, y_train, N_TRAIN);
    for (i = 0; i < N_TRAIN; i++)
        order[i] = i;
    for (epoch = 1; epoch <= EPOCHS; epoch++)
        printf("epoch %2d/%d  loss %.4f\n", epoch, EPOCHS, train_epoch(ctx));

    make_samples(x_test, NULL, N_TEST);
    rc = seed_predict(ctx, &x_test[0][0], &y_pred[0][0], N_TEST);
    if (rc != 0) {
        fprintf(stderr, "seed_main: seed_predict: %s\n", nnc_strerror(rc));
        return 1;
    }
    print_predictions();

    if (argc > 1) {
        rc = seed_save(ctx, argv[1]);
        if (rc != 0) {
            fprintf(stderr, "seed_main: cannot save %s: %s\n", argv[1],
                    nnc_strerror(rc));
            return 1;
        }
        printf("weights saved to %s\n", argv[1]);
    }
    free(mem);   /* a seed_init context needs no seed_destroy */
    return 0;
}
