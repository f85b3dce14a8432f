/*
 * test_text.c - text.c: the vocabulary and its metadata form, the split
 * and its errors, training windows (in range, uniform, reproducible from
 * the sampler's state) and sampling (greedy, top-k with ties, the
 * frequencies of softmax(logits / temperature)).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"

#define TMP_DIR_NAME "/tmp/nnc_text_XXXXXX"
#include "tmp_dir.h"

TestSuite(text, .init = make_dir, .fini = remove_dir);

/* Writes len bytes of s to a file in the test directory; its path. */
static const char *write_text(const char *name, const char *s, size_t len)
{
    const char *path = in_dir(name);
    write_all(path, s, len);
    return path;
}

Test(text, vocabulary_is_the_sorted_distinct_bytes)
{
    const char *p = write_text("a.txt", "hello, world\n", 13);
    nnc_text t;
    char err[256], hex[513];
    nnc_vocab v;
    cr_assert_eq(nnc_text_load(p, 0, 0.0, 4, &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(t.vocab.n, 10);   /* \n space , d e h l o r w */
    nnc_vocab_hex(&t.vocab, hex);
    cr_assert_str_eq(hex, "0a202c6465686c6f7277");
    cr_assert_eq(t.tok[0], 5);     /* h */
    cr_assert_eq(t.tok[12], 0);    /* \n */
    cr_assert_eq(t.vocab.id['x'], -1);
    cr_assert_eq(nnc_vocab_from_hex(hex, &v), 0);
    cr_assert_eq(memcmp(&v, &t.vocab, sizeof v), 0);
    nnc_text_free(&t);
    cr_assert_eq(nnc_text_load(p, 1, 0.0, 4, &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(t.vocab.n, 256);
    cr_assert_eq(t.tok[0], 'h');
    nnc_text_free(&t);
}

Test(text, malformed_vocabularies_are_refused)
{
    nnc_vocab v;
    const char *bad[] = {"", "0", "0a0a", "200a", "0A", "zz", "0a2"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(nnc_vocab_from_hex(bad[i], &v), NNC_ERR_FORMAT, "'%s'", bad[i]);
}

Test(text, encode_names_the_first_unknown_byte)
{
    nnc_vocab v;
    unsigned char ids[8];
    size_t bad = 99;
    cr_assert_eq(nnc_vocab_from_hex("616263", &v), 0);   /* a b c */
    cr_assert_eq(nnc_vocab_encode(&v, (const unsigned char *)"cab", 3, ids, &bad), 0);
    cr_assert(ids[0] == 2 && ids[1] == 0 && ids[2] == 1);
    cr_assert_eq(nnc_vocab_encode(&v, (const unsigned char *)"abxc", 4, ids, &bad),
                 NNC_ERR_FORMAT);
    cr_assert_eq(bad, 2);
}

Test(text, split_and_its_errors)
{
    char s[100], err[256];
    nnc_text t;
    const char *p;
    memset(s, 'a', sizeof s);
    p = write_text("b.txt", s, 100);
    cr_assert_eq(nnc_text_load(p, 0, 0.1, 9, &t, err, sizeof err), 0, "%s", err);
    cr_assert(t.n == 100 && t.ntrain == 90);
    nnc_text_free(&t);
    cr_assert_eq(nnc_text_load(p, 0, 0.1, 10, &t, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "the validation tail (0.1 of 100 tokens) has 10 tokens"), "%s", err);
    cr_assert_eq(t.tok, NULL);
    cr_assert_eq(nnc_text_load(p, 0, 0.0, 100, &t, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "100 training tokens, fewer than a window of the model's 100 + 1"),
              "%s", err);
    p = write_text("empty.txt", "", 0);
    cr_assert_eq(nnc_text_load(p, 0, 0.0, 1, &t, err, sizeof err), NNC_ERR_FORMAT);
    cr_assert(strstr(err, "the text is empty"), "%s", err);
    cr_assert_eq(nnc_text_load("/nonexistent/x.txt", 0, 0.0, 1, &t, err, sizeof err),
                 NNC_ERR_IO);
    cr_assert(strstr(err, "/nonexistent/x.txt"), "%s", err);
}

/* Windows: y is x shifted by one, offsets cover [0, ntrain - T) evenly,
 * and the same sampler state draws the same windows. */
Test(text, windows)
{
    enum { N = 200, T = 8, B = 4 };
    char s[N], err[256];
    nnc_text t;
    nnc_rng r, r2;
    float x[B * T], y[B * T], x2[B * T], y2[B * T];
    long count[N];
    int i, b, j;
    for (i = 0; i < N; i++)
        s[i] = (char)(32 + i % 90);
    cr_assert_eq(nnc_text_load(write_text("c.txt", s, N), 0, 0.25, T, &t, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(t.ntrain, 150);
    memset(count, 0, sizeof count);
    nnc_rng_seed(&r, 5);
    for (i = 0; i < 20000; i++) {
        nnc_text_batch(&t, &r, B, T, x, y);
        for (b = 0; b < B; b++) {
            int off = (int)x[b * T];   /* tok[i] = i % 90: the offset mod 90 */
            for (j = 0; j + 1 < T; j++)
                cr_assert_eq(x[b * T + j + 1], y[b * T + j]);
            cr_assert_eq(y[b * T + T - 1], (float)((off + T) % 90));
            count[off]++;
        }
    }
    for (i = 0; i < 90; i++)   /* offsets 0..141: residues 0..51 twice, 52..89 once */
        cr_assert(count[i] > (i < 52 ? 2 : 1) * 80000 / 142 * 0.9, "offset %d: %ld", i,
                  count[i]);
    r2 = r;
    nnc_text_batch(&t, &r, B, T, x, y);
    nnc_text_batch(&t, &r2, B, T, x2, y2);
    cr_assert_eq(memcmp(x, x2, sizeof x), 0);
    cr_assert_eq(memcmp(y, y2, sizeof y), 0);
    /* validation windows: first at the tail's start, last ends at the end */
    cr_assert_eq(nnc_text_val_offset(&t, T, 0, 10), 150);
    cr_assert_eq(nnc_text_val_offset(&t, T, 9, 10), N - T - 1);
    nnc_text_free(&t);
}

Test(text, sampling)
{
    float z[5] = {1.0f, 3.0f, 2.0f, 3.0f, -INFINITY};
    nnc_rng r;
    long count[5] = {0};
    double p[3], sum = 0.0;
    int i;
    nnc_rng_seed(&r, 1);
    cr_assert_eq(nnc_sample(z, 5, 0.0, 0, &r), 1);    /* greedy: the first largest */
    for (i = 0; i < 1000; i++) {
        int k = nnc_sample(z, 5, 1.0, 1, &r);        /* top-1 keeps both 3s */
        cr_assert(k == 1 || k == 3);
        cr_assert_neq(nnc_sample(z, 5, 1.0, 0, &r), 4);
    }
    cr_assert_eq(nnc_sample(z, 257, 1.0, 0, &r), -1);
    /* frequencies of softmax(z / 0.5) over the first three */
    for (i = 0; i < 3; i++)
        sum += p[i] = exp((double)z[i] / 0.5);
    for (i = 0; i < 200000; i++)
        count[nnc_sample(z, 3, 0.5, 0, &r)]++;
    for (i = 0; i < 3; i++)
        cr_assert(fabs((double)count[i] / 200000.0 - p[i] / sum) < 0.005, "%d: %ld", i,
                  count[i]);
}
