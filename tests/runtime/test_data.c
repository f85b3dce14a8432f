/*
 * test_data.c - the data loaders of the training driver: gzipped files
 * made by the gzip program (stored, fixed and dynamic blocks, long
 * matches, several members, every level), corrupt and truncated streams,
 * and the CSV, IDX and .npy readers with their error messages (file and
 * line, or byte offset).
 *
 * Inputs are generated here with a fixed PRNG, wrapped as IDX byte
 * vectors, compressed by running `gzip` and read back with nnc_idx_load;
 * a test skips if gzip is not installed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nncrt.h"
#include "nncrt_io.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/nnc_data_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(data, .init = setup, .fini = teardown);

static const char *path(const char *name)
{
    static char b[4][256];
    static int k;
    char *s = b[k++ % 4];
    snprintf(s, 256, "%s/%s", dir, name);
    return s;
}

static void write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_file(const char *p, size_t *n)
{
    unsigned char *b;
    char why[200];
    cr_assert_eq(nnc_read_file(p, &b, n, why, sizeof why), 0, "%s: %s", p, why);
    return b;
}

static int have_gzip(void)
{
    return system("gzip --version > /dev/null 2>&1") == 0;
}

/* gzip -LEVEL the file p (to p.gz) */
static void gzip_file(const char *p, int level)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "gzip -%d -k -f '%s'", level, p);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

/* Data of several kinds: 0 random bytes (stored blocks), 1 text with
 * repeats near and far (dynamic blocks, long matches), 2 runs of one byte
 * (overlapping copies at distance 1), 3 a few bytes (fixed Huffman). */
static unsigned char *make_data(int kind, size_t n, uint64_t seed)
{
    static const char *const words[] = {"tensor", "gradient", "kernel", "arena", "batch",
                                        "epoch", " ", "\n", ",", "0.5", "relu", "softmax"};
    unsigned char *b = malloc(n + 1);
    nnc_rng r;
    size_t i = 0;
    cr_assert_not_null(b);
    nnc_rng_seed(&r, seed);
    while (i < n) {
        uint64_t v = nnc_rng_next(&r);
        if (kind == 0 || kind == 3) {
            b[i++] = (unsigned char)(v >> 24);
        } else if (kind == 1) {
            const char *w = words[v % 12];
            size_t k;
            if ((v >> 8) % 50 == 0 && i > 40000) {   /* a far repeat */
                size_t from = (size_t)((v >> 16) % (i - 32768)), len = 200;
                for (k = 0; k < len && i < n; k++, i++)
                    b[i] = b[from + k];
                continue;
            }
            for (k = 0; w[k] && i < n; k++)
                b[i++] = (unsigned char)w[k];
        } else {
            unsigned char c = (unsigned char)(v >> 40);
            size_t run = (size_t)((v >> 8) % 1000) + 1, k;
            for (k = 0; k < run && i < n; k++)
                b[i++] = c;
        }
    }
    return b;
}

/* Writes data[0 .. n) as the IDX vector NAME (uint8, shape [total]). */
static void write_idx(const char *name, const unsigned char *data, size_t n, size_t total)
{
    unsigned char *b = malloc(n + 8);
    cr_assert_not_null(b);
    memcpy(b, "\0\0\x08\x01", 4);
    b[4] = (unsigned char)(total >> 24);
    b[5] = (unsigned char)(total >> 16);
    b[6] = (unsigned char)(total >> 8);
    b[7] = (unsigned char)total;
    if (n)
        memcpy(b + 8, data, n);
    write_file(path(name), b, n + 8);
    free(b);
}

/* Loads the IDX file NAME, expecting the n bytes `want`. */
static void expect_idx(const char *name, const unsigned char *want, size_t n)
{
    nnc_idx x;
    char err[512];
    cr_assert_eq(nnc_idx_load(path(name), &x, err, sizeof err), 0, "%s: %s", name, err);
    cr_assert(x.type == 0x08 && x.rank == 1 && x.count == n, "%s: %zu values", name, x.count);
    cr_assert(n == 0 || memcmp(x.data, want, n) == 0, "%s: data differ", name);
    nnc_idx_free(&x);
}

static void roundtrip(int kind, size_t n, int level)
{
    unsigned char *src = make_data(kind, n, (uint64_t)(kind * 100 + level));
    char name[64], gzname[80];
    if (!have_gzip())
        cr_skip_test("gzip is not installed");
    snprintf(name, sizeof name, "d%d_%zu_%d", kind, n, level);
    snprintf(gzname, sizeof gzname, "%s.gz", name);
    write_idx(name, src, n, n);
    gzip_file(path(name), level);
    expect_idx(gzname, src, n);
    free(src);
}

Test(data, gzip_kinds_and_levels)
{
    int kind, level;
    for (kind = 0; kind < 3; kind++)
        for (level = 1; level <= 9; level += 4)
            roundtrip(kind, 300000, level);
    roundtrip(3, 10, 6);
    roundtrip(3, 1, 9);
    roundtrip(3, 0, 6);
}

/* Two members: the IDX header and a, then b. */
Test(data, gzip_several_members)
{
    unsigned char *a = make_data(1, 70000, 1), *b = make_data(2, 5000, 2);
    unsigned char *ab = malloc(75000);
    char cmd[600];
    if (!have_gzip())
        cr_skip_test("gzip is not installed");
    cr_assert_not_null(ab);
    write_idx("a", a, 70000, 75000);
    write_file(path("b"), b, 5000);
    gzip_file(path("a"), 6);
    gzip_file(path("b"), 6);
    snprintf(cmd, sizeof cmd, "cat '%s.gz' '%s.gz' > '%s'", path("a"), path("b"), path("ab.gz"));
    cr_assert_eq(system(cmd), 0);
    memcpy(ab, a, 70000);
    memcpy(ab + 70000, b, 5000);
    expect_idx("ab.gz", ab, 75000);
    free(ab);
    free(a);
    free(b);
}

/* Every truncation and a flipped bit in each region is refused, never a crash. */
Test(data, gzip_corrupt)
{
    unsigned char *src = make_data(1, 50000, 7), *gz;
    size_t gzn, cut, i;
    nnc_idx x;
    char err[512];
    if (!have_gzip())
        cr_skip_test("gzip is not installed");
    write_idx("c", src, 50000, 50000);
    gzip_file(path("c"), 9);
    gz = read_file(path("c.gz"), &gzn);
    for (cut = 0; cut < gzn; cut += cut < 64 ? 1 : 997) {
        write_file(path("cut.gz"), gz, cut);
        cr_assert_neq(nnc_idx_load(path("cut.gz"), &x, err, sizeof err), 0, "truncated at %zu",
                      cut);
    }
    cr_assert(strstr(err, "cut.gz: byte offset") && strstr(err, "gzip"), "%s", err);
    for (i = 0; i < gzn; i += 101) {
        gz[i] ^= 0x10;
        write_file(path("flip.gz"), gz, gzn);
        if (nnc_idx_load(path("flip.gz"), &x, err, sizeof err) == 0) {
            /* the flip may hit a header byte gzip ignores (mtime, OS) */
            cr_assert(i >= 4 && i < 10, "flip at %zu accepted", i);
            cr_assert_eq(x.count, 50000);
            nnc_idx_free(&x);
        }
        gz[i] ^= 0x10;
    }
    /* the trailer's CRC */
    gz[gzn - 8] ^= 1;
    write_file(path("crc.gz"), gz, gzn);
    cr_assert_eq(nnc_idx_load(path("crc.gz"), &x, err, sizeof err), NNC_ERR_FORMAT);
    free(gz);
    free(src);
}

/* ---- tables ---------------------------------------------------------------- */

static int load_text(const char *name, const char *text, nnc_data *d, char *err)
{
    write_file(path(name), text, strlen(text));
    return nnc_data_load(path(name), d, err, 512);
}

Test(data, csv)
{
    nnc_data d;
    char err[512];
    cr_assert_eq(load_text("a.csv", "x1,x2,x3\n1, 2.5 ,-3e2\n\n4;5;6\r\n7\t8 9\n", &d, err), 0,
                 "%s", err);
    cr_assert(d.rows == 3 && d.cols == 3);
    cr_assert(d.data[1] == 2.5f && d.data[2] == -300.0f && d.data[8] == 9.0f);
    cr_assert(d.line[0] == 2 && d.line[1] == 4 && d.line[2] == 5);
    nnc_data_where(&d, 2, err, 512);
    cr_assert(strstr(err, "a.csv:5"), "%s", err);
    nnc_data_free(&d);

    cr_assert_eq(load_text("b.csv", "1,2\n3,x\n", &d, err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "b.csv:2:") && strstr(err, "'x'") && strstr(err, "column 2"), "%s",
              err);
    cr_assert_null(d.data);
    cr_assert_eq(load_text("c.csv", "1,2\n3,4\n5\n", &d, err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "c.csv:3:") && strstr(err, "1 values"), "%s", err);
    cr_assert_eq(load_text("d.csv", "1,nan\n", &d, err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "d.csv:1:") && strstr(err, "finite"), "%s", err);
    cr_assert_eq(load_text("e.csv", "1,1e39\n", &d, err), NNC_ERR_FORMAT);
    cr_assert_eq(load_text("f.csv", "a,b\n", &d, err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "no data"), "%s", err);
    cr_assert_eq(load_text("g.csv", "1,,2\n", &d, err), NNC_ERR_FORMAT);
    cr_assert_eq(nnc_data_load(path("missing.csv"), &d, err, 512), NNC_ERR_IO);
    cr_assert(strstr(err, "missing.csv") && strstr(err, "cannot open"), "%s", err);
}

Test(data, csv_gzipped)
{
    nnc_data d;
    char err[512];
    if (!have_gzip())
        cr_skip_test("gzip is not installed");
    write_file(path("z.csv"), "1,2\n3,4\n", 8);
    gzip_file(path("z.csv"), 6);
    cr_assert_eq(nnc_data_load(path("z.csv.gz"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 2 && d.cols == 2 && d.data[3] == 4.0f);
    nnc_data_free(&d);
}

Test(data, idx)
{
    /* 3 x 2 x 2 unsigned bytes, then 2 big-endian floats of shape [2] */
    unsigned char u8[4 + 12 + 12] = {0, 0, 0x08, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    static const unsigned char f32[4 + 4 + 8] = {0, 0, 0x0D, 1, 0, 0, 0, 2,
                                                 0x3f, 0xc0, 0, 0, 0xc0, 0x20, 0, 0};
    nnc_data d;
    char err[512];
    int i;
    for (i = 0; i < 12; i++)
        u8[16 + i] = (unsigned char)(i * 20);
    write_file(path("a.idx"), u8, sizeof u8);
    cr_assert_eq(nnc_data_load(path("a.idx"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 3 && d.cols == 4 && d.data[11] == 220.0f && d.offset == 16);
    nnc_data_where(&d, 2, err, sizeof err);
    cr_assert(strstr(err, "byte offset 24"), "%s", err);
    nnc_data_free(&d);
    write_file(path("b.idx"), f32, sizeof f32);
    cr_assert_eq(nnc_data_load(path("b.idx"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 2 && d.cols == 1 && d.data[0] == 1.5f && d.data[1] == -2.5f);
    nnc_data_free(&d);
    write_file(path("c.idx"), u8, sizeof u8 - 1);   /* truncated */
    cr_assert_eq(nnc_data_load(path("c.idx"), &d, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "c.idx") && strstr(err, "12 bytes") && strstr(err, "11"), "%s", err);
}

static void write_npy(const char *name, const char *descr, const char *shape,
                      const void *data, size_t n)
{
    char h[128];
    unsigned char buf[512];
    size_t hl;
    int len = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape);
    hl = (size_t)len;
    while ((10 + hl + 1) % 64)
        h[hl++] = ' ';
    h[hl++] = '\n';
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    memcpy(buf + 10, h, hl);
    memcpy(buf + 10 + hl, data, n);
    write_file(path(name), buf, 10 + hl + n);
}

Test(data, npy)
{
    static const float f[6] = {1, 2, 3, 4, 5, 6.5f};
    static const double g[2] = {0.25, -8};
    static const int32_t k[3] = {7, -1, 9};
    static const unsigned char u[4] = {0, 255, 3, 4};
    nnc_data d;
    char err[512];
    write_npy("f.npy", "<f4", "(2, 3)", f, sizeof f);
    cr_assert_eq(nnc_data_load(path("f.npy"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 2 && d.cols == 3 && d.data[5] == 6.5f);
    nnc_data_free(&d);
    write_npy("g.npy", "<f8", "(2,)", g, sizeof g);
    cr_assert_eq(nnc_data_load(path("g.npy"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 2 && d.cols == 1 && d.data[0] == 0.25f && d.data[1] == -8.0f);
    nnc_data_free(&d);
    write_npy("k.npy", "<i4", "(3,)", k, sizeof k);
    cr_assert_eq(nnc_data_load(path("k.npy"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.data[1] == -1.0f && d.data[2] == 9.0f);
    nnc_data_free(&d);
    write_npy("u.npy", "|u1", "(2, 2)", u, sizeof u);
    cr_assert_eq(nnc_data_load(path("u.npy"), &d, err, sizeof err), 0, "%s", err);
    cr_assert(d.rows == 2 && d.cols == 2 && d.data[1] == 255.0f);
    nnc_data_free(&d);
    write_npy("big.npy", ">f4", "(1,)", f, 4);
    cr_assert_eq(nnc_data_load(path("big.npy"), &d, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, ">f4") && strstr(err, "not supported"), "%s", err);
    write_npy("short.npy", "<f4", "(2, 3)", f, sizeof f - 4);
    cr_assert_eq(nnc_data_load(path("short.npy"), &d, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "short.npy: byte offset 128") && strstr(err, "truncated"), "%s", err);
}
