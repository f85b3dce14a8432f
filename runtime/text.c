/*
 * text.c - text files as token ids, for language models: the reader,
 * vocabulary, training windows and sampling behind `PROG train --text
 * FILE` and `PROG generate` (fit.c).
 *
 * Tokens are bytes. The vocabulary is either the sorted distinct bytes of
 * the whole file (nanoGPT's shakespeare_char prepare.py does this over
 * characters: for ASCII text the two are the same; a UTF-8 character
 * outside ASCII is two to four tokens here) or all 256 bytes (llm.c's
 * byte vocabulary); a token's id is its byte's rank in the vocabulary.
 * The file may be gzipped (data.c's reader).
 *
 * The first (1 - f) of the tokens train, the tail validates (nanoGPT's
 * 90/10 split at f = 0.1). A training window is nanoGPT's get_batch: an
 * offset i uniform in [0, ntrain - T - 1], x = tok[i .. i+T), y = tok[i+1
 * .. i+T+1). The offsets come from nnc_rng (xoshiro256**, integers only),
 * whose four words the driver keeps in the checkpoint, so a resumed run
 * draws the windows the uninterrupted one would have drawn.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"
#include "nncrt_io.h"

/* ---- vocabulary ------------------------------------------------------------ */

/* The vocabulary of the bytes marked in seen[256] (all of them if all). */
static void vocab_of(nnc_vocab *v, const unsigned char *seen, int all)
{
    int b;
    memset(v, 0, sizeof *v);
    for (b = 0; b < 256; b++) {
        v->id[b] = -1;
        if (all || seen[b]) {
            v->id[b] = (short)v->n;
            v->byte[v->n++] = (unsigned char)b;
        }
    }
}

void nnc_vocab_hex(const nnc_vocab *v, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = 0; i < v->n; i++) {
        buf[2 * i] = hex[v->byte[i] >> 4];
        buf[2 * i + 1] = hex[v->byte[i] & 15];
    }
    buf[2 * v->n] = 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int nnc_vocab_from_hex(const char *s, nnc_vocab *v)
{
    unsigned char seen[256];
    size_t len = strlen(s), i;
    int last = -1;
    if (len == 0 || len % 2 || len > 512)
        return NNC_ERR_FORMAT;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < len; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]), b = hi * 16 + lo;
        if (hi < 0 || lo < 0 || b <= last)   /* strictly increasing bytes */
            return NNC_ERR_FORMAT;
        seen[b] = 1;
        last = b;
    }
    vocab_of(v, seen, 0);
    return 0;
}

int nnc_vocab_encode(const nnc_vocab *v, const unsigned char *s, size_t n, unsigned char *ids,
                     size_t *bad)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (v->id[s[i]] < 0) {
            *bad = i;
            return NNC_ERR_FORMAT;
        }
        ids[i] = (unsigned char)v->id[s[i]];
    }
    return 0;
}

/* ---- the file ---------------------------------------------------------------- */

/* Each part of the split that holds anything must hold a window of T + 1
 * tokens: 0, or NNC_ERR_FORMAT with the message in err. */
static int check_split(const char *path, size_t n, size_t ntrain, double f, int T, char *err,
                       size_t es)
{
    size_t w = (size_t)T + 1;
    if (ntrain < w)
        snprintf(err, es, "%s: %zu training tokens%s, fewer than a window of the model's %d + 1",
                 path, ntrain, f > 0 ? " before the validation tail" : "", T);
    else if (n > ntrain && n - ntrain < w)
        snprintf(err, es, "%s: the validation tail (%g of %zu tokens) has %zu tokens, fewer "
                 "than a window of %d + 1", path, f, n, n - ntrain, T);
    else
        return 0;
    return NNC_ERR_FORMAT;
}

int nnc_text_load(const char *path, int all_bytes, double val_fraction, int T, nnc_text *t,
                  char *err, size_t errsize)
{
    unsigned char seen[256], *bytes;
    size_t n, i, bad, ntrain;
    int r, gz;
    memset(t, 0, sizeof *t);
    if (T < 1 || !(val_fraction >= 0.0 && val_fraction < 1.0)) {
        snprintf(err, errsize, "%s: bad window or validation fraction", path);
        return NNC_ERR_ARG;
    }
    if ((r = nnc_read_data(path, &bytes, &n, &gz, err, errsize)) != 0)
        return r;
    ntrain = n - (size_t)floor((double)n * val_fraction);
    if (n == 0)
        snprintf(err, errsize, "%s: the text is empty", path);
    if (n == 0 || check_split(path, n, ntrain, val_fraction, T, err, errsize) != 0) {
        free(bytes);
        return NNC_ERR_FORMAT;
    }
    memset(seen, 0, sizeof seen);
    for (i = 0; i < n; i++)
        seen[bytes[i]] = 1;
    vocab_of(&t->vocab, seen, all_bytes);
    nnc_vocab_encode(&t->vocab, bytes, n, bytes, &bad);   /* in place: every byte is in */
    t->tok = bytes;
    t->n = n;
    t->ntrain = ntrain;
    return 0;
}

void nnc_text_free(nnc_text *t)
{
    free(t->tok);
    memset(t, 0, sizeof *t);
}

/* ---- windows ------------------------------------------------------------------- */

void nnc_text_window(const unsigned char *tok, size_t off, int T, float *x, float *y)
{
    int j;
    for (j = 0; j < T; j++) {
        x[j] = (float)tok[off + (size_t)j];
        y[j] = (float)tok[off + (size_t)j + 1];
    }
}

/* A draw uniform in [0, n) without modulo bias (rejection of the top
 * partial range), so the offsets are exactly uniform. */
static size_t uniform_below(nnc_rng *rng, size_t n)
{
    uint64_t m = (uint64_t)n, lim = UINT64_MAX - UINT64_MAX % m, v;
    do
        v = nnc_rng_next(rng);
    while (v >= lim);
    return (size_t)(v % m);
}

void nnc_text_batch(const nnc_text *t, nnc_rng *rng, int batch, int T, float *x, float *y)
{
    int b;
    for (b = 0; b < batch; b++) {
        size_t off = uniform_below(rng, t->ntrain - (size_t)T);
        nnc_text_window(t->tok, off, T, x + (size_t)b * (size_t)T, y + (size_t)b * (size_t)T);
    }
}

size_t nnc_text_val_offset(const nnc_text *t, int T, size_t k, size_t nwin)
{
    size_t span = t->n - t->ntrain - (size_t)T - 1;   /* last start in the tail */
    return t->ntrain + (nwin > 1 ? (size_t)((double)span * (double)k / (double)(nwin - 1)) : 0);
}

/* ---- sampling --------------------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int nnc_sample(const float *logits, int n, double temperature, int top_k, nnc_rng *rng)
{
    double z[256], sorted[256], max = -INFINITY, sum = 0.0, u, cut = -INFINITY;
    int i, best = 0;
    if (n < 1 || n > 256)
        return -1;
    for (i = 0; i < n; i++) {
        z[i] = (double)logits[i];
        if (z[i] > z[best] || (isnan(z[best]) && !isnan(z[i])))
            best = i;
    }
    if (temperature <= 0.0)   /* greedy */
        return best;
    for (i = 0; i < n; i++)
        z[i] = isnan(z[i]) ? -INFINITY : z[i] / temperature;
    if (top_k > 0 && top_k < n) {   /* keep the k largest (and ties), as nanoGPT */
        memcpy(sorted, z, (size_t)n * sizeof z[0]);
        qsort(sorted, (size_t)n, sizeof sorted[0], cmp_desc);
        cut = sorted[top_k - 1];
    }
    for (i = 0; i < n; i++) {
        if (z[i] < cut)
            z[i] = -INFINITY;
        max = z[i] > max ? z[i] : max;
    }
    if (max == -INFINITY)
        return best;
    for (i = 0; i < n; i++)
        sum += z[i] = exp(z[i] - max);
    /* 53 random bits: u uniform in [0, sum) */
    u = (double)(nnc_rng_next(rng) >> 11) * 0x1.0p-53 * sum;
    for (i = 0; i < n; i++) {
        if (u < z[i])
            return i;
        u -= z[i];
    }
    for (i = n - 1; i > 0 && z[i] == 0.0; i--)   /* rounding at the end */
        ;
    return i;
}
