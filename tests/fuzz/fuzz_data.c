/*
 * fuzz_data.c - libFuzzer target: the input as a data file for the
 * training driver (runtime/data.c): nnc_data_load, which tells CSV, IDX
 * and .npy apart by their content, nnc_data_where on its rows, and
 * nnc_idx_load. Gzipped inputs are fuzz_gzip's.
 *
 * Oracles besides the sanitizers: a failure returns a documented code
 * with a message and leaves the table empty; a success gives rows x cols
 * values, and where() a location for each row. Never NNC_ERR_NOMEM: the
 * inputs are a few KB (a gzip bomb a few MB), so running out means that
 * a reader sized a buffer by a header's claim before checking the file
 * (replay.c caps memory at 1 GB so that replays catch it too).
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "nncrt.h"

/* Whether a message is the runtime's "PATH: out of memory" (a suffix: a
 * message may quote the input, which may say anything). */
static int says_nomem(const char *err)
{
    size_t n = strlen(err), k = strlen(": out of memory");
    return n >= k && strcmp(err + n - k, ": out of memory") == 0;
}

/* Checks one load of path; shared with fuzz_gzip. */
static void load_data(const char *path)
{
    char err[256], where[300];
    nnc_data d;
    nnc_idx x;
    int rc;

    err[0] = '\0';
    rc = nnc_data_load(path, &d, err, sizeof err);
    if (rc != 0) {
        if (rc != NNC_ERR_FORMAT || err[0] == '\0' || says_nomem(err)
            || d.data != NULL || d.rows != 0)
            __builtin_trap();
    } else {
        volatile float sum = 0;
        for (size_t i = 0; i < d.rows * d.cols; i++)
            sum += d.data[i];   /* every value is there (ASan) */
        if (d.rows > 0 && (nnc_data_where(&d, 0, where, sizeof where) <= 0
                           || nnc_data_where(&d, d.rows - 1, where, sizeof where) <= 0))
            __builtin_trap();
    }
    nnc_data_free(&d);
    err[0] = '\0';
    rc = nnc_idx_load(path, &x, err, sizeof err);
    if (rc != 0) {
        if (rc != NNC_ERR_FORMAT || err[0] == '\0' || says_nomem(err)
            || x.bytes != NULL)
            __builtin_trap();
    } else if (x.count > 0) {
        static const size_t size[16] = {[0x08] = 1, [0x09] = 1, [0x0B] = 2, [0x0C] = 4,
                                        [0x0D] = 4, [0x0E] = 8};
        volatile unsigned char last = x.data[x.count * size[x.type & 15] - 1];
        (void)last;
    }
    nnc_idx_free(&x);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_data(fuzz_path(data, size));
    return 0;
}
#endif
