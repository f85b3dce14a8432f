/*
 * decode_main.c - generation with a cache (m_decode) against predict, on
 * tests/e2e/decode.nn compiled with --prefix m: after some training, each
 * position decoded alone (the earlier positions' queries, keys and values
 * from the cache) gives predict's row of that position, for two sequences
 * one after the other (a new sequence starts again at position 0); bad
 * positions and NULL arguments are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "m.h"

#define T (M_IN)
#define V (M_OUT / M_IN)

static int failures;
#define CHECK(c, ...) \
    do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                     printf(__VA_ARGS__); printf("\n"); } } while (0)

static unsigned long long rng = 88172645463325252ULL;
static int next_id(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int)(rng % V);
}

int main(void)
{
    static float x[M_BATCH * M_IN], y[M_BATCH * M_TARGET], seq[T], full[T * V], row[V];
    m_ctx *c = m_create(3);
    double worst = 0;
    int i, s, t;
    CHECK(c != NULL, "create");
    if (!c)
        return 1;
    /* a learnable rule: each token is the one before it plus one */
    for (s = 0; s < 30; s++) {
        for (i = 0; i < M_BATCH; i++) {
            int first = next_id();
            for (t = 0; t < T; t++) {
                x[i * T + t] = (float)((first + t) % V);
                y[i * T + t] = (float)((first + t + 1) % V);
            }
        }
        CHECK(isfinite(m_train_step(c, x, y)), "train_step");
    }
    for (s = 0; s < 2; s++) {
        for (t = 0; t < T; t++)
            seq[t] = (float)next_id();
        CHECK(m_predict(c, seq, full, 1) == 0, "predict");
        for (t = 0; t < T; t++) {
            CHECK(m_decode(c, (int)seq[t], t, row) == 0, "decode position %d", t);
            for (i = 0; i < V; i++) {
                double p = full[t * V + i], d = fabs(row[i] - p);
                worst = d > worst ? d : worst;
                CHECK(d <= 1e-5 + 1e-4 * fabs(p), "sequence %d position %d output %d: decode %g, "
                      "predict %g", s, t, i, row[i], p);
            }
        }
    }
    CHECK(m_decode(c, 0, -1, row) == NNC_ERR_ARG && m_decode(c, 0, T, row) == NNC_ERR_ARG,
          "a position outside 0 .. T-1 accepted");
    CHECK(m_decode(NULL, 0, 0, row) == NNC_ERR_ARG && m_decode(c, 0, 0, NULL) == NNC_ERR_ARG,
          "a NULL argument accepted");
    printf("decode vs predict: %d positions x 2 sequences, largest difference %.3g\n", T, worst);
    m_destroy(c);
    return failures != 0;
}
