/*
 * oom_api.c - every allocation of a model's API and of the runtime's file
 * readers fails in turn (tests/oom/run.sh builds this against the seed
 * model that nnc emits and libnncrt).
 *
 * failmalloc.c, included here, replaces malloc and friends for the whole
 * process. One pass of the sequence below with no failure counts its
 * allocation calls, N; then for k = 1 .. N the sequence runs again with
 * the k-th call failing. Each step that fails must return its documented
 * error (NULL from create; NNC_ERR_NOMEM, or NNC_ERR_IO when it is the C
 * library's fopen that could not allocate) with a message, and leave no
 * block behind (the count of live blocks is back where it was). The
 * steps: seed_create, seed_save, seed_load, seed_export, seed_load of the
 * export (PyTorch's layout), nnc_data_load of a CSV and of a gzipped CSV,
 * nnc_idx_load, nnc_text_load, a train step and seed_destroy.
 *
 * Prints "oom_api: N allocation sites, F failures"; exit status 1 after
 * any failure.
 */
#define FAILMALLOC_NO_REPORT
#include "failmalloc.c"

#include <zlib.h>

#include "nncrt.h"
#include "seed.h"

static long k_now, failures;
static int warming;   /* the first pass: the thread pool starts in the first step */

#define EXPECT(cond, ...)                                                          \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "FAIL: allocation %ld: ", k_now);                      \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            failures++;                                                            \
        }                                                                          \
    } while (0)

/* rc of a step that began with `before` live blocks: 0, or a documented
 * error with a message, and no leak. */
static void step(const char *what, int rc, long before, const char *msg)
{
    if (rc == 0)
        return;
    EXPECT(rc == NNC_ERR_NOMEM || rc == NNC_ERR_IO, "%s: error %d (%s)", what, rc, msg);
    EXPECT(msg[0] != '\0', "%s: error %d without a message", what, rc);
    EXPECT(live == before, "%s: %ld blocks leaked", what, live - before);
}

static void write_files(void)
{
    FILE *f = fopen("x.csv", "w");
    gzFile z = gzopen("x.csv.gz", "wb");
    static const unsigned char idx[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};

    for (int i = 0; i < 40; i++)
        fprintf(f, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d\n", i, 1, 2, 3, 4, 5, 6, 7, 8, i % 2);
    fclose(f);
    gzputs(z, "1,2\n3,4\n");
    gzclose(z);
    f = fopen("x.idx", "wb");
    fwrite(idx, 1, sizeof idx, f);
    fclose(f);
    f = fopen("t.txt", "w");
    fputs("to be or not to be, that is the question\n", f);
    fclose(f);
}

static void sequence(void)
{
    static float x[SEED_BATCH * SEED_IN], y[SEED_BATCH * SEED_OUT];
    char err[256];
    nnc_data d;
    nnc_idx ix;
    nnc_text t;
    seed_ctx *c;
    long before = live;
    int rc;

    if ((c = seed_create(1)) == NULL) {
        EXPECT(live == before, "seed_create: %ld blocks leaked", live - before);
        c = seed_create(1);   /* the next calls succeed */
    }
    if (c == NULL) {
        EXPECT(0, "seed_create failed twice");
        return;
    }
#define API(what, call)                                                            \
    do {                                                                           \
        long b = live;                                                             \
        nnc_set_error(NULL);                                                       \
        rc = call;                                                                 \
        step(what, rc, b, nnc_last_error());                                       \
    } while (0)
#define READER(what, call, done)                                                   \
    do {                                                                           \
        long b = live;                                                             \
        err[0] = '\0';                                                             \
        rc = call;                                                                 \
        step(what, rc, b, err);                                                    \
        if (rc == 0)                                                               \
            done;                                                                  \
    } while (0)
    API("seed_save", seed_save(c, "a.st"));
    API("seed_load", seed_load(c, "a.st"));
    API("seed_export", seed_export(c, "t.st"));
    API("seed_load (PyTorch's layout)", seed_load(c, "t.st"));
    READER("nnc_data_load (CSV)", nnc_data_load("x.csv", &d, err, sizeof err),
           nnc_data_free(&d));
    READER("nnc_data_load (gzip)", nnc_data_load("x.csv.gz", &d, err, sizeof err),
           nnc_data_free(&d));
    READER("nnc_idx_load", nnc_idx_load("x.idx", &ix, err, sizeof err), nnc_idx_free(&ix));
    READER("nnc_text_load", nnc_text_load("t.txt", 0, 0.0, 4, &t, err, sizeof err),
           nnc_text_free(&t));
    before = live;
    seed_train_step(c, x, y);
    EXPECT(live == before || warming, "seed_train_step allocated");
    seed_destroy(c);
}

int main(void)
{
    long n, base;

    write_files();
    fail_at = 0;
    warming = 1;
    sequence();           /* warm-up: the thread pool, stdio */
    warming = 0;
    base = live;
    calls = 0;
    sequence();
    n = calls;
    EXPECT(live == base, "the sequence leaks %ld blocks without a failure", live - base);
    for (k_now = 1; k_now <= n; k_now++) {
        calls = 0;
        fail_at = k_now;
        sequence();
        EXPECT(live == base, "%ld blocks leaked in all", live - base);
        base = live;
    }
    printf("oom_api: %ld allocation sites, %ld failures\n", n, failures);
    return failures ? 1 : 0;
}
