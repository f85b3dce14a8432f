/*
 * fuzz_text.c - libFuzzer target: the text-corpus reader behind `PROG
 * train --text` (runtime/text.c: nnc_text_load, its split and windows)
 * and the vocabulary a checkpoint's metadata carries (nnc_vocab_from_hex,
 * nnc_vocab_encode, as `PROG generate` reads a prompt).
 *
 * The first byte picks the window T (1 .. 16), the validation fraction
 * (0, 0.1, 0.5, 0.9) and the byte vocabulary; the rest is the file. The
 * same rest, as a string, is a vocabulary in hex.
 *
 * Oracles: every token id is below the vocabulary's size; every training
 * and validation window lies inside the tokens (ASan); a vocabulary
 * written with nnc_vocab_hex reads back the same.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "nncrt.h"

static void windows(const nnc_text *t, int T)
{
    float x[16], y[16];
    nnc_rng rng;
    size_t nval = t->n - t->ntrain;

    nnc_rng_seed(&rng, t->n);
    for (int b = 0; b < 4; b++)
        nnc_text_batch(t, &rng, 1, T, x, y);
    for (size_t k = 0; nval > 0 && k < 3; k++)
        nnc_text_window(t->tok, nnc_text_val_offset(t, T, k, 3), T, x, y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double fractions[4] = {0.0, 0.1, 0.5, 0.9};
    char err[256], hex[520], *s;
    nnc_text t;
    nnc_vocab v, back;
    size_t bad;

    if (size < 1)
        return 0;
    int T = 1 + (data[0] & 15), all = data[0] >> 6 & 1;
    double f = fractions[data[0] >> 4 & 3];
    err[0] = '\0';
    int rc = nnc_text_load(fuzz_path(data + 1, size - 1), all, f, T, &t, err, sizeof err);
    if (rc == 0) {
        for (size_t i = 0; i < t.n; i++)
            if (t.tok[i] >= t.vocab.n)
                __builtin_trap();
        windows(&t, T);
        nnc_vocab_hex(&t.vocab, hex);
        if (nnc_vocab_from_hex(hex, &back) != 0 || back.n != t.vocab.n
            || memcmp(back.byte, t.vocab.byte, (size_t)back.n) != 0)
            __builtin_trap();
        nnc_text_free(&t);
    } else if (err[0] == '\0' || rc == NNC_ERR_NOMEM) {   /* see fuzz_data.c */
        __builtin_trap();
    }
    if ((s = malloc(size)) == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (nnc_vocab_from_hex(s, &v) == 0) {
        unsigned char ids[64];
        size_t n = size - 1 < sizeof ids ? size - 1 : sizeof ids;
        nnc_vocab_encode(&v, data + 1, n, ids, &bad);
    }
    free(s);
    return 0;
}
