/*
 * harness.c - generic training driver for the PyTorch differential test.
 *
 * Compiled together with any model that nnc emitted with `--prefix m`
 * (it includes "m.h" and uses only the public API from DESIGN.md), it
 * records everything diff.py needs to replay the same training in PyTorch:
 *
 *     harness SEED INIT.safetensors FINAL.safetensors DATA.bin STEPS [W.safetensors]
 *
 *   1. m_create(SEED), then m_save(INIT): the initial weights.
 *   2. For each of STEPS batches, reads M_BATCH*M_IN floats of x and then
 *      M_BATCH*M_TARGET floats of y from DATA.bin (float32, little-endian,
 *      row-major), calls m_train_step and prints the returned loss (the
 *      batch's mean loss before the update) as "%.9g\n" on stdout.
 *   3. m_save(FINAL): the trained weights.
 *   4. m_predict on the first batch's x, written to FINAL.pred as raw
 *      little-endian float32 (M_BATCH*M_OUT floats).
 *   5. Consistency checks that need no reference: predicting the same
 *      rows one at a time (n = 1) gives the same values, and a second
 *      context (another seed) that m_load()s FINAL predicts them too.
 *   6. With W (a weights-only file, written by diff.py from PyTorch): a
 *      third context trains two steps, m_load()s W, which must reset its
 *      optimizer state and step, trains one step on the first batch and
 *      saves W.restart.
 *
 * Every failure prints "harness: ..." on stderr and exits 1 (2 for bad
 * usage), so diff.py can tell a broken model from a numerical mismatch.
 * Floats are decoded byte by byte, so the data file means the same thing
 * on big-endian hosts too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"
#include "nncrt.h"   /* nnc_strerror */
#define CHECK_PROGRAM "harness"
#include "../check.h" /* die: "harness: MESSAGE" on stderr, exit 1 */

#define X_FLOATS ((size_t)M_BATCH * (size_t)M_IN)
#define Y_FLOATS ((size_t)M_BATCH * (size_t)M_TARGET)
#define P_FLOATS ((size_t)M_BATCH * (size_t)M_OUT)

static float x[X_FLOATS], y[Y_FLOATS];   /* the current batch      */
static float x0[X_FLOATS];               /* the first batch's x    */
static float y0[Y_FLOATS];               /* ... and y              */
static float pred[P_FLOATS];             /* predict(x0)            */
static float pred2[P_FLOATS];            /* predict(x0), made another way */

/* Reads n little-endian float32 values; returns 0 or -1 on short read. */
static int read_floats(FILE *f, float *dst, size_t n)
{
    unsigned char b[4];
    size_t i;

    for (i = 0; i < n; i++) {
        uint32_t u;
        if (fread(b, 1, 4, f) != 4)
            return -1;
        u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
            (uint32_t)b[3] << 24;
        memcpy(&dst[i], &u, 4);
    }
    return 0;
}

/* Writes n floats as little-endian float32; returns 0 or -1. */
static int write_floats(FILE *f, const float *src, size_t n)
{
    unsigned char b[4];
    size_t i;

    for (i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        b[0] = (unsigned char)(u & 0xff);
        b[1] = (unsigned char)(u >> 8 & 0xff);
        b[2] = (unsigned char)(u >> 16 & 0xff);
        b[3] = (unsigned char)(u >> 24 & 0xff);
        if (fwrite(b, 1, 4, f) != 4)
            return -1;
    }
    return 0;
}

/* Parses a non-negative decimal integer that must fill the whole string. */
static unsigned long long parse_count(const char *s, const char *what)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        die("bad %s (want a non-negative integer)", what);
    return v;
}

static void save_or_die(const m_ctx *ctx, const char *path)
{
    int rc = m_save(ctx, path);
    if (rc != 0) {
        die("m_save(%s) failed: %d (%s)", path, rc, nnc_strerror(rc));
    }
}

/* Predicts the first batch and writes it to FINAL.pred. */
static void write_predictions(m_ctx *ctx, const char *final_path)
{
    size_t len = strlen(final_path);
    char *path = malloc(len + sizeof ".pred");
    FILE *f;
    int rc;

    if (path == NULL)
        die("out of memory");
    memcpy(path, final_path, len);
    memcpy(path + len, ".pred", sizeof ".pred");

    rc = m_predict(ctx, x0, pred, (size_t)M_BATCH);
    if (rc != 0) {
        die("m_predict failed: %d (%s)", rc, nnc_strerror(rc));
    }
    f = fopen(path, "wb");
    if (f == NULL)
        die("cannot create %s: %s", path, strerror(errno));
    if (write_floats(f, pred, P_FLOATS) != 0 || fclose(f) != 0)
        die("cannot write %s", path);
    free(path);
}

/* Dies unless got[] matches pred[] within tol (what: how got was made). */
static void expect_pred(const float *got, double tol, const char *what)
{
    size_t i;

    for (i = 0; i < P_FLOATS; i++) {
        double d = (double)got[i] - (double)pred[i];
        if (!(d <= tol && d >= -tol))
            die("%s: output %lu is %.9g, but predicting the whole batch "
                "gave %.9g", what, (unsigned long)i, (double)got[i],
                (double)pred[i]);
    }
}

/* Predicts x0 one row at a time; must match the batch prediction. */
static void check_single_rows(m_ctx *ctx)
{
    size_t i;

    for (i = 0; i < (size_t)M_BATCH; i++) {
        int rc = m_predict(ctx, x0 + i * M_IN, pred2 + i * M_OUT, 1);
        if (rc != 0)
            die("m_predict(n = 1) failed: %d (%s)", rc, nnc_strerror(rc));
    }
    expect_pred(pred2, 1e-5, "m_predict one row at a time");
}

/* Loads FINAL into a fresh context; its predictions must match pred[]. */
static void check_load(uint64_t seed, const char *final_path)
{
    m_ctx *ctx = m_create(seed + 1);
    int rc;

    if (ctx == NULL)
        die("m_create failed (out of memory?)");
    rc = m_load(ctx, final_path);
    if (rc != 0)
        die("m_load(%s) failed: %d (%s)", final_path, rc, nnc_strerror(rc));
    rc = m_predict(ctx, x0, pred2, (size_t)M_BATCH);
    if (rc != 0)
        die("m_predict after m_load failed: %d (%s)", rc, nnc_strerror(rc));
    expect_pred(pred2, 1e-6, "m_predict after m_load");
    m_destroy(ctx);
}

/* Step 6: a weights-only file resets the optimizer. */
static void check_restart(uint64_t seed, const char *w_path)
{
    m_ctx *ctx = m_create(seed + 2);
    size_t len = strlen(w_path);
    char *path = malloc(len + sizeof ".restart");
    int rc;

    if (ctx == NULL || path == NULL)
        die("out of memory");
    m_train_step(ctx, x0, y0);
    m_train_step(ctx, x0, y0);
    rc = m_load(ctx, w_path);
    if (rc != 0)
        die("m_load(%s) failed: %d (%s)", w_path, rc, nnc_strerror(rc));
    m_train_step(ctx, x0, y0);
    memcpy(path, w_path, len);
    memcpy(path + len, ".restart", sizeof ".restart");
    save_or_die(ctx, path);
    free(path);
    m_destroy(ctx);
}

int main(int argc, char **argv)
{
    uint64_t seed;
    unsigned long long steps, step;
    const char *init_path, *final_path, *data_path;
    FILE *data;
    m_ctx *ctx;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s SEED INIT.safetensors FINAL.safetensors "
                "DATA.bin STEPS [W.safetensors]\n", argv[0]);
        return 2;
    }
    seed = (uint64_t)parse_count(argv[1], "SEED");
    init_path = argv[2];
    final_path = argv[3];
    data_path = argv[4];
    steps = parse_count(argv[5], "STEPS");
    if (steps == 0)
        die("STEPS must be at least 1");

    ctx = m_create(seed);
    if (ctx == NULL)
        die("m_create failed (out of memory?)");
    save_or_die(ctx, init_path);

    data = fopen(data_path, "rb");
    if (data == NULL)
        die("cannot open %s: %s", data_path, strerror(errno));
    for (step = 0; step < steps; step++) {
        float loss;
        if (read_floats(data, x, X_FLOATS) != 0 ||
            read_floats(data, y, Y_FLOATS) != 0) {
            die("%s: short read in batch %llu of %llu (each batch is %lu "
                "floats of x, then %lu of y)", data_path, step + 1, steps,
                (unsigned long)X_FLOATS, (unsigned long)Y_FLOATS);
        }
        if (step == 0) {
            memcpy(x0, x, sizeof x0);
            memcpy(y0, y, sizeof y0);
        }
        loss = m_train_step(ctx, x, y);
        printf("%.9g\n", (double)loss);
    }
    fclose(data);
    if (fflush(stdout) != 0)
        die("cannot write the losses to stdout");

    save_or_die(ctx, final_path);
    write_predictions(ctx, final_path);
    check_single_rows(ctx);
    m_destroy(ctx);
    check_load(seed, final_path);
    if (argc == 7)
        check_restart(seed, argv[6]);
    return 0;
}
