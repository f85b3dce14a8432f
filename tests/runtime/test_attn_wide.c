/*
 * test_attn_wide.c - the AVX-512 attention set's vector code on any CPU:
 * linked with runtime/attention.c built with -DNNC_ATTN_WIDE_GENERIC (its
 * 16-lane set as plain GCC vectors, chosen by NNC_ATTN_SET=wide), the
 * forward and backward are compared with a double-precision reference
 * over awkward shapes (T not a multiple of the blocks, heads short
 * enough to be packed once and longer, D from 1 to the vector bodies'
 * 64), causal and not, and generation with the cache must give the
 * forward's bits. What it cannot check is the AVX-512 instructions
 * themselves (the acceptance machine's run of the attention tests does).
 * Exit status 0 on success.
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nncrt.h"

static float frand(unsigned long *s)
{
    *s = *s * 6364136223846793005ul + 1442695040888963407ul;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* y = softmax(scale q k^T (causal)) v for one head, and the gradients of
 * sum(y * dy), in double. */
static void reference(const nnc_attn_shape *s, const float *q, const float *k,
                      const float *v, const float *dy, double *o, double *dq, double *dk,
                      double *dv)
{
    const int T = s->T, D = s->D;
    double *p = malloc(sizeof *p * (size_t)T * (size_t)T);
    double *dp = malloc(sizeof *dp * (size_t)T * (size_t)T);
    int i, j, d;

    for (i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0.0, di = 0.0;
        for (j = 0; j < T; j++) {
            double x = 0.0;
            for (d = 0; d < D; d++)
                x += (double)q[i * s->st + d] * k[j * s->st + d];
            p[i * T + j] = s->causal && j > i ? -INFINITY : x * s->scale;
            mx = p[i * T + j] > mx ? p[i * T + j] : mx;
        }
        for (j = 0; j < T; j++)
            sum += p[i * T + j] = exp(p[i * T + j] - mx);
        for (j = 0; j < T; j++)
            p[i * T + j] /= sum;
        for (d = 0; d < D; d++) {
            double acc = 0.0;
            for (j = 0; j < T; j++)
                acc += p[i * T + j] * v[j * s->st + d];
            o[i * D + d] = acc;
        }
        for (j = 0; j < T; j++) {
            double x = 0.0;
            for (d = 0; d < D; d++)
                x += (double)dy[i * s->ot + d] * v[j * s->st + d];
            dp[i * T + j] = x;
            di += x * p[i * T + j];
        }
        for (j = 0; j < T; j++)
            dp[i * T + j] = p[i * T + j] * (dp[i * T + j] - di) * s->scale;
    }
    for (i = 0; i < T * D; i++)
        dq[i] = dk[i] = dv[i] = 0.0;
    for (i = 0; i < T; i++)
        for (j = 0; j < T; j++)
            for (d = 0; d < D; d++) {
                dv[j * D + d] += p[i * T + j] * dy[i * s->ot + d];
                dq[i * D + d] += dp[i * T + j] * k[j * s->st + d];
                dk[j * D + d] += dp[i * T + j] * q[i * s->st + d];
            }
    free(p);
    free(dp);
}

static int check(int T, int D, int causal, double *worst)
{
    const int B = 2, H = 2, C = H * D;
    const size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C;
    nnc_attn_shape s = {0};
    float *qkv = malloc(nq * sizeof *qkv), *o = malloc(no * sizeof *o);
    float *dy = malloc(no * sizeof *dy), *g = malloc(nq * sizeof *g), *dec = malloc(no * sizeof *dec);
    double *ro = malloc(sizeof *ro * (size_t)T * D * 4);
    unsigned long seed = (unsigned long)(T * 131 + D * 7 + causal);
    int b, h, i, d, bad = 0, pos;

    s.B = B, s.T = T, s.H = H, s.D = D;
    s.sb = (long)T * 3 * C, s.st = 3 * C, s.sh = D;
    s.ob = (long)T * C, s.ot = C, s.oh = D;
    s.causal = causal, s.scale = 1.0f / sqrtf((float)D);
    for (i = 0; i < (int)nq; i++)
        qkv[i] = frand(&seed);
    for (i = 0; i < (int)no; i++)
        dy[i] = frand(&seed);
    nnc_attention_fwd(&s, qkv, qkv + C, qkv + 2 * C, o, NULL);
    nnc_attention_bwd(&s, qkv, qkv + C, qkv + 2 * C, o, NULL, dy, g, g + C, g + 2 * C);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            const long qo = b * s.sb + h * s.sh, oo = b * s.ob + h * s.oh;
            double *rdq = ro + T * D, *rdk = rdq + T * D, *rdv = rdk + T * D;
            reference(&s, qkv + qo, qkv + qo + C, qkv + qo + 2 * C, dy + oo, ro, rdq, rdk, rdv);
            for (i = 0; i < T; i++)
                for (d = 0; d < D; d++) {
                    double e[4];
                    int n;
                    e[0] = fabs(o[oo + i * s.ot + d] - ro[i * D + d]);
                    e[1] = fabs(g[qo + i * s.st + d] - rdq[i * D + d]);
                    e[2] = fabs(g[qo + C + i * s.st + d] - rdk[i * D + d]);
                    e[3] = fabs(g[qo + 2 * C + i * s.st + d] - rdv[i * D + d]);
                    for (n = 0; n < 4; n++) {
                        *worst = e[n] > *worst ? e[n] : *worst;
                        bad += e[n] > 2e-5;
                    }
                }
        }
    if (causal) {   /* the cache's rows: the forward's bits */
        for (pos = 0; pos < T; pos++)
            nnc_attention_decode(&s, pos, qkv, qkv + C, qkv + 2 * C, dec);
        for (i = 0; i < (int)no; i++)
            bad += dec[i] != o[i];
    }
    if (bad)
        fprintf(stderr, "test_attn_wide: T=%d D=%d causal=%d: %d elements off\n", T, D,
                causal, bad);
    free(qkv), free(o), free(dy), free(g), free(dec), free(ro);
    return bad == 0;
}

int main(void)
{
    static const int Ts[] = {1, 5, 31, 32, 33, 64, 65, 100};
    static const int Ds[] = {1, 3, 8, 16, 17, 32, 33, 64};
    double worst = 0.0;
    int ok = 1;
    size_t t, d;
    int causal;

    setenv("NNC_ATTN_SET", "wide", 1);
    nnc_set_num_threads(1);
    for (t = 0; t < sizeof Ts / sizeof Ts[0]; t++)
        for (d = 0; d < sizeof Ds / sizeof Ds[0]; d++)
            for (causal = 0; causal < 2; causal++)
                ok &= check(Ts[t], Ds[d], causal, &worst);
    printf("test_attn_wide: the 16-lane attention set against double precision: "
           "largest error %.3g, %s\n", worst, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
