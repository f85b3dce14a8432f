/* errors_main.c - the generated API on bad files and bad data
 * (tests/e2e/errors.nn), run as `errors_main DIR`:
 *
 *  1. loads of refused checkpoints (truncated at several lengths, a header
 *     length past the end of the file, malformed JSON, a wrong name, shape
 *     or dtype, a missing file) return the right NNC_ERR_* code and a
 *     message naming the file and the problem, and leave the model bit for
 *     bit as it was (its own checkpoint before and after is identical);
 *  2. saves that fail (a missing directory; a read-only directory unless
 *     running as root; a file size limit, RLIMIT_FSIZE with SIGXFSZ
 *     ignored, as on a full disk) return NNC_ERR_IO and a message, leave
 *     an existing checkpoint intact and no temporary file behind;
 *  3. a NaN or infinite loss (NaN in x, in y; a target so large that the
 *     loss overflows) is returned, the
 *     update is skipped (weights, optimizer state and step unchanged),
 *     nnc_last_error() says so, and training goes on normally after it;
 *  4. the message is per thread: another thread's failure does not
 *     change this thread's message.
 * Prints "N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "../check.h"


static char dir[4000];

/* dir/name, in memory of its own (never reused). */
static const char *in_dir(const char *name)
{
    static char bufs[128][4200];
    static int k;
    if (k == 128) {
        printf("FAIL: in_dir: out of buffers\n");
        exit(1);
    }
    snprintf(bufs[k], sizeof bufs[k], "%s/%s", dir, name);
    return bufs[k++];
}

/* read_file with the length as a long (the offsets below are longs) */
static unsigned char *read_all(const char *path, long *size)
{
    size_t n = 0;
    unsigned char *b = read_file(path, &n);
    *size = (long)n;
    return b;
}

static void write_all(const char *path, const void *b, long size)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, (size_t)size, f);
        fclose(f);
    }
}

/* The model's whole state (weights, optimizer state, step) as a file. */
static int same_state(err_ctx *c, const char *before)
{
    const char *now = in_dir("now.safetensors");
    int same = err_save(c, now) == 0 && same_file(before, now);
    remove(now);
    return same;
}

static int contains(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

/* How many entries of dir start with prefix. */
static int count_files(const char *d, const char *prefix)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    int n = 0;
    if (!dp)
        return -1;
    while ((e = readdir(dp)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(dp);
    return n;
}

/* Loads path and expects err; the model must not change. */
static void refused(err_ctx *c, const char *path, int err, const char *what, const char *part)
{
    const char *state = in_dir("state.safetensors");
    int r;
    CHECK(err_save(c, state) == 0, "save the state");
    nnc_set_error(NULL);
    r = err_load(c, path);
    CHECK(r == err, "%s: load returned %d (%s), expected %d", what, r, nnc_last_error(), err);
    if (getenv("SHOW_MESSAGES"))
        printf("%s: %s\n", what, nnc_last_error());
    CHECK(contains(nnc_last_error(), path) && contains(nnc_last_error(), part),
          "%s: message '%s' lacks the path or '%s'", what, nnc_last_error(), part);
    CHECK(same_state(c, state), "%s: a failed load changed the model", what);
}

static void *other_thread(void *arg)
{
    (void)arg;
    err_load(NULL, "x");
    return (void *)(nnc_last_error()[0] != '\0' ? "set" : NULL);
}

int main(int argc, char **argv)
{
    static float x[ERR_BATCH * ERR_IN], y[ERR_BATCH * ERR_OUT];
    const char *good, *bad;
    unsigned char *bytes;
    long size = 0;
    int i;
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    good = in_dir("good.safetensors");
    bad = in_dir("bad.safetensors");
    for (i = 0; i < ERR_BATCH * ERR_IN; i++)
        x[i] = (float)((i * 7) % 5) / 5.0f - 0.4f;
    for (i = 0; i < ERR_BATCH * ERR_OUT; i++)
        y[i] = (float)(i % 3) / 3.0f;

    err_ctx *c = err_create(1);
    CHECK(c != NULL, "create");
    if (!c)
        return 1;
    for (i = 0; i < 3; i++)
        err_train_step(c, x, y);
    CHECK(err_save(c, good) == 0, "save: %s", nnc_last_error());
    err_train_step(c, x, y); /* the model now differs from the file */

    /* 1. refused checkpoints */
    bytes = read_all(good, &size);
    CHECK(bytes != NULL && size > 16, "read back");
    if (!bytes)
        return 1;
    {
        long cuts[] = {0, 5, 8, 20, size / 2, size - 4, size - 1};
        for (i = 0; i < (int)(sizeof cuts / sizeof cuts[0]); i++) {
            char what[64];
            write_all(bad, bytes, cuts[i]);
            snprintf(what, sizeof what, "truncated to %ld bytes", cuts[i]);
            refused(c, bad, NNC_ERR_FORMAT, what, cuts[i] < 8 ? "truncated" : "");
        }
    }
    {
        unsigned char *b = malloc((size_t)size);
        memcpy(b, bytes, (size_t)size);
        b[0] = 0xff; b[1] = 0xff; b[2] = 0; /* header length 65535: past the end */
        write_all(bad, b, size);
        refused(c, bad, NNC_ERR_FORMAT, "header length past the end", "past the end");
        memcpy(b, bytes, (size_t)size);
        b[6] = 1; /* 2^48 and more */
        write_all(bad, b, size);
        refused(c, bad, NNC_ERR_FORMAT, "huge header length", "past the end");
        memcpy(b, bytes, (size_t)size);
        b[8] = '['; /* the JSON object's '{' */
        write_all(bad, b, size);
        refused(c, bad, NNC_ERR_FORMAT, "malformed JSON", "malformed JSON");
        memcpy(b, bytes, (size_t)size);
        {
            char *h = (char *)b + 8, *p = strstr(h, "\"F32\"");
            if (p) {
                p[1] = 'I'; /* I32: the same size, another dtype */
                write_all(bad, b, size);
                refused(c, bad, NNC_ERR_MISMATCH, "wrong dtype", "I32");
            }
            memcpy(b, bytes, (size_t)size);
            p = strstr(h, "\"h.weight\"");
            CHECK(p != NULL, "no h.weight in the header");
            if (p) {
                p[1] = 'q'; /* q.weight: not the model's name */
                write_all(bad, b, size);
                refused(c, bad, NNC_ERR_MISMATCH, "wrong name", "h.weight");
            }
        }
        free(b);
    }
    {
        /* a weight of another shape: [3, 4] where the model has [4, 3] */
        static float w[12], hb[4], ow[8], ob[2];
        nnc_tensor t[4] = {{"h.weight", 2, {3, 4}, w}, {"h.bias", 1, {4}, hb},
                           {"o.weight", 2, {2, 4}, ow}, {"o.bias", 1, {2}, ob}};
        CHECK(nnc_ckpt_save(bad, t, 4, NULL) == 0, "save by hand");
        refused(c, bad, NNC_ERR_MISMATCH, "wrong shape", "[3, 4]");
        t[0].shape[0] = 4;
        t[0].shape[1] = 3;
        CHECK(nnc_ckpt_save(bad, t, 4, NULL) == 0, "save by hand");
        CHECK(err_load(c, bad) == 0, "weights only: %s", nnc_last_error());
    }
    refused(c, in_dir("absent.safetensors"), NNC_ERR_IO, "missing file", "cannot open");
    free(bytes);

    /* 2. saves that fail: an existing checkpoint stays as it was */
    {
        const char *copy = in_dir("copy.safetensors");
        char ro[4096];
        int r;
        CHECK(err_save(c, copy) == 0, "save");
        nnc_set_error(NULL);
        r = err_save(c, in_dir("missing/dir.safetensors"));
        CHECK(r == NNC_ERR_IO && contains(nnc_last_error(), "missing/dir.safetensors"),
              "save into a missing directory: %d, '%s'", r, nnc_last_error());
        snprintf(ro, sizeof ro, "%s/ro", dir);
        if (geteuid() != 0 && mkdir(ro, 0700) == 0) {
            char target[4200];
            snprintf(target, sizeof target, "%s/m.safetensors", ro);
            CHECK(err_save(c, target) == 0, "save");
            chmod(ro, 0500);
            err_train_step(c, x, y);
            nnc_set_error(NULL);
            r = err_save(c, target);
            CHECK(r == NNC_ERR_IO && contains(nnc_last_error(), "Permission denied"),
                  "save into a read-only directory: %d, '%s'", r, nnc_last_error());
            CHECK(!same_state(c, target) && count_files(ro, "m.safetensors") == 1,
                  "the read-only directory changed");
            chmod(ro, 0700);
            remove(target);
            rmdir(ro);
        }
        {
            struct rlimit old, lim;
            const char *target = in_dir("limited.safetensors");
            long n = 0;
            unsigned char *before;
            CHECK(err_save(c, target) == 0, "save");
            before = read_all(target, &n);
            err_train_step(c, x, y);
            signal(SIGXFSZ, SIG_IGN);
            getrlimit(RLIMIT_FSIZE, &old);
            lim = old;
            lim.rlim_cur = (rlim_t)(n / 2);
            CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
            nnc_set_error(NULL);
            r = err_save(c, target);
            setrlimit(RLIMIT_FSIZE, &old);
            CHECK(r == NNC_ERR_IO && contains(nnc_last_error(), "limited.safetensors") &&
                      contains(nnc_last_error(), "left as it was"),
                  "save over the size limit: %d, '%s'", r, nnc_last_error());
            {
                long m = -1;
                unsigned char *after = read_all(target, &m);
                CHECK(before && after && m == n && memcmp(before, after, (size_t)n) == 0,
                      "a failed save damaged the existing checkpoint");
                free(after);
            }
            CHECK(count_files(dir, "limited.safetensors") == 1,
                  "a failed save left a temporary file");
            CHECK(err_save(c, target) == 0, "save after the limit is lifted");
            free(before);
        }
        remove(copy);
    }

    /* 3. non-finite losses: returned, the update skipped */
    {
        const char *state = in_dir("state.safetensors");
        float keep, loss;
        int k;
        CHECK(err_save(c, state) == 0, "save the state");
        for (k = 0; k < 3; k++) {
            float *v = k == 0 ? &x[1] : k == 1 ? &y[2] : &y[0];
            keep = *v;
            *v = k == 0 ? NAN : k == 1 ? NAN : 1e30f;
            nnc_set_error(NULL);
            loss = err_train_step(c, x, y);
            *v = keep;
            CHECK(!isfinite(loss), "case %d: the loss is finite: %g", k, loss);
            CHECK(contains(nnc_last_error(), "err_train_step") &&
                      contains(nnc_last_error(), "skipped"),
                  "case %d: message '%s'", k, nnc_last_error());
            CHECK(same_state(c, state), "case %d: a non-finite loss changed the model", k);
        }
        loss = err_train_step(c, x, y);
        CHECK(isfinite(loss) && !same_state(c, state), "training after a NaN: %g", loss);
        remove(state);
    }

    /* 4. per-thread messages */
    {
        pthread_t th;
        void *res = NULL;
        nnc_set_error("mine");
        CHECK(pthread_create(&th, NULL, other_thread, NULL) == 0 && pthread_join(th, &res) == 0,
              "thread");
        CHECK(res != NULL && strcmp(nnc_last_error(), "mine") == 0,
              "messages are not per thread: '%s'", nnc_last_error());
    }
    err_destroy(c);
    remove(good);
    remove(bad);
    remove(in_dir("limited.safetensors"));
    return check_summary();
}
