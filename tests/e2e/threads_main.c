/*
 * threads_main.c - a model compiled with --prefix m (the Fashion-MNIST
 * MLP or CNN) and tests/e2e/ftz.nn with --prefix f, linked into one
 * program that checks:
 *
 *  1. threads: STEPS training steps from one seed on the same batches
 *     give the same bits on 1, 2, 3 and 4 threads (every loss, the
 *     checkpoint file byte for byte, predict on 2 * M_BATCH + 3 rows);
 *  2. the caller's floating-point mode: m_train_step, m_predict and
 *     m_accuracy leave it as they found it, flushing or not;
 *  3. denormals are flushed for the whole step: with a subnormal bias and
 *     zero weights, f_predict gives 0 and f_train_step zeroes the
 *     parameters; with nnc_set_flush_denormals(0) predict gives the bias
 *     and training keeps subnormal parameters.
 *
 * Usage: threads DIR (checkpoints are written there). Prints
 * "N passed, M failed"; exit status 1 on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
#include <xmmintrin.h>
#define HAVE_MODE 1
static unsigned long mode_now(void) { return _mm_getcsr() & ~0x3fu; }
static void mode_set_flush(int on)
{
    _mm_setcsr(on ? _mm_getcsr() | 0x8040u : _mm_getcsr() & ~0x8040u);
}
#elif defined(__aarch64__) && defined(__GNUC__)
#define HAVE_MODE 1
static unsigned long mode_now(void)
{
    unsigned long r;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(r));
    return r;
}
static void mode_set_flush(int on)
{
    unsigned long r = mode_now();
    r = on ? r | (1ul << 24) : r & ~(1ul << 24);
    __asm__ __volatile__("msr fpcr, %0" : : "r"(r));
}
#endif

#include "nncrt.h"
#include "m.h"
#include "f.h"

enum { STEPS = 4, NPRED = 2 * M_BATCH + 3 };

static int passed, failed;

static void check(int ok, const char *what)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

static uint64_t rng_state = 12345;

static float uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (float)((z ^ (z >> 31)) >> 40) / 16777216.0f;
}

/* Batches: inputs in [0, 1); targets one-hot rows (or class indices). */
static void fill(float *x, float *y, size_t rows)
{
    size_t i, j;
    for (i = 0; i < rows * M_IN; i++)
        x[i] = uniform();
    for (i = 0; i < rows; i++) {
        int k = (int)(uniform() * (float)M_OUT);
        for (j = 0; j < M_TARGET; j++)
            y[i * M_TARGET + j] = M_TARGET == 1 ? (float)k : (float)((int)j == k);
    }
}

static long file_bytes(const char *path, unsigned char **data)
{
    FILE *fp = fopen(path, "rb");
    long n;
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *data = malloc((size_t)n);
    if (!*data || fread(*data, 1, (size_t)n, fp) != (size_t)n)
        n = -1;
    fclose(fp);
    return n;
}

static void threads_identical(const char *dir)
{
    static float x[STEPS][M_BATCH * M_IN], y[STEPS][M_BATCH * M_TARGET];
    static float px[NPRED * M_IN], pred[5][NPRED * M_OUT];
    float loss[5][STEPS];
    unsigned char *file[5];
    long len[5];
    char path[4096], what[200];
    int s, t;

    for (s = 0; s < STEPS; s++)
        fill(x[s], y[s], M_BATCH);
    for (s = 0; s < NPRED * M_IN; s++)
        px[s] = uniform();
    for (t = 1; t <= 4; t++) {
        m_ctx *ctx = m_create(42);
        if (!ctx) {
            check(0, "m_create");
            return;
        }
        nnc_set_num_threads(t);
        for (s = 0; s < STEPS; s++)
            loss[t][s] = m_train_step(ctx, x[s], y[s]);
        check(m_predict(ctx, px, pred[t], NPRED) == 0, "m_predict");
        snprintf(path, sizeof path, "%s/t%d.safetensors", dir, t);
        check(m_save(ctx, path) == 0, "m_save");
        len[t] = file_bytes(path, &file[t]);
        check(len[t] > 0, "reading the checkpoint back");
        m_destroy(ctx);
        if (t == 1 || len[t] <= 0)
            continue;
        snprintf(what, sizeof what, "%d threads: the losses differ from 1 thread's", t);
        check(memcmp(loss[t], loss[1], sizeof loss[1]) == 0, what);
        snprintf(what, sizeof what, "%d threads: the checkpoint differs from 1 thread's", t);
        check(len[t] == len[1] && memcmp(file[t], file[1], (size_t)len[1]) == 0, what);
        snprintf(what, sizeof what, "%d threads: predict differs from 1 thread's", t);
        check(memcmp(pred[t], pred[1], sizeof pred[1]) == 0, what);
    }
    for (t = 1; t <= 4; t++)
        if (len[t] > 0)
            free(file[t]);
    nnc_set_num_threads(0);
}

static void mode_restored(void)
{
#ifdef HAVE_MODE
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET], out[M_BATCH * M_OUT];
    m_ctx *ctx = m_create(1);
    double acc;
    int on;
    fill(x, y, M_BATCH);
    for (on = 0; on < 2 && ctx; on++) {
        unsigned long before;
        mode_set_flush(on);
        before = mode_now();
        m_train_step(ctx, x, y);
        check(mode_now() == before, "m_train_step changed the caller's mode");
        m_predict(ctx, x, out, M_BATCH);
        check(mode_now() == before, "m_predict changed the caller's mode");
        m_accuracy(ctx, x, y, M_BATCH, &acc);
        check(mode_now() == before, "m_accuracy changed the caller's mode");
    }
    mode_set_flush(0);
    m_destroy(ctx);
#endif
}

/* f with zero weights and subnormal biases, from a checkpoint. */
static f_ctx *subnormal_model(const char *dir)
{
    static float w[4 * 4], b[4] = {3e-39f, 3e-39f, 3e-39f, 3e-39f};
    nnc_tensor t[2] = {{"dense_0.weight", 2, {4, 4}, w}, {"dense_0.bias", 1, {4}, b}};
    char path[4096];
    f_ctx *ctx = f_create(1);
    snprintf(path, sizeof path, "%s/subnormal.safetensors", dir);
    check(nnc_ckpt_save(path, t, 2, NULL) == 0, "writing the subnormal checkpoint");
    check(ctx && f_load(ctx, path) == 0, "f_load of the subnormal checkpoint");
    return ctx;
}

static void flushed_inside(const char *dir)
{
#ifdef HAVE_MODE
    static const float x[F_BATCH * 4] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const float y[F_BATCH * 4] = {0};
    float out[F_BATCH * 4], w[16], b[4];
    nnc_tensor t[2] = {{"dense_0.weight", 2, {4, 4}, w}, {"dense_0.bias", 1, {4}, b}};
    char path[4096];
    int keep, i, zero;

    mode_set_flush(0);
    snprintf(path, sizeof path, "%s/trained.safetensors", dir);
    for (keep = 0; keep < 2; keep++) {
        f_ctx *ctx = subnormal_model(dir);
        if (!ctx)
            return;
        nnc_set_flush_denormals(!keep);
        check(f_predict(ctx, x, out, F_BATCH) == 0, "f_predict");
        for (i = 0, zero = 0; i < F_BATCH * 4; i++)
            zero += out[i] == 0.0f;
        check(keep ? zero == 0 : zero == F_BATCH * 4,
              keep ? "predict flushed a subnormal bias with nnc_set_flush_denormals(0)"
                   : "predict kept a subnormal bias (denormals not flushed)");
        f_train_step(ctx, x, y);
        check(f_save(ctx, path) == 0, "f_save");
        check(nnc_ckpt_load(path, t, 2) == 0, "reading f's checkpoint");
        for (i = 0, zero = 0; i < 4; i++)
            zero += b[i] == 0.0f;
        check(keep ? zero == 0 : zero == 4,
              keep ? "train_step flushed subnormal biases with nnc_set_flush_denormals(0)"
                   : "train_step kept subnormal biases (denormals not flushed)");
        f_destroy(ctx);
    }
    nnc_set_flush_denormals(1);
#else
    (void)dir;
    (void)subnormal_model;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: threads DIR\n");
        return 2;
    }
    threads_identical(argv[1]);
    mode_restored();
    flushed_inside(argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0;
}
