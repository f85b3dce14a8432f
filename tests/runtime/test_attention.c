/*
 * test_attention.c - nnc_attention_fwd and _bwd (runtime/attention.c)
 * against a naive double-precision reference that writes the T x T
 * scores, the softmax and the causal mask out, for causal and full
 * attention, T in {1, 5, 33, 64}, D in {1, 7, 32}, several heads, dropout,
 * and both layouts: the packed (B, T, 3C) qkv of multihead_attention and
 * torch's (B, H, T, D), the backward with the forward's lse and without
 * (recomputing it). Also: 1 and 2 threads give the same bits, and the
 * gradients match central finite differences of sum(w * o).
 *
 * Every check runs under each kernel set this CPU supports (isa_main.h:
 * exits 77, SKIP, naming a set the CPU lacks after every other passed).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"
#include "isa_main.h"

static const char *const isas[] = {"scalar", "avx2", "avx512"};
#define NISAS 3

static unsigned state = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    state = state * 1103515245u + 12345u;
    return (float)((state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A problem: buffers for q, k, v (one packed buffer or three), o, lse,
 * dout and the gradients, with the strides of its layout. */
typedef struct Prob {
    nnc_attn_shape s;
    int packed;
    size_t nin, nout;    /* floats of the input buffer(s), of o */
    float *in, *o, *lse, *dout, *din;
    const float *q, *k, *v;
    float *dq, *dk, *dv;
} Prob;

static void prob_init(Prob *p, int B, int T, int H, int D, int causal, int packed,
                      float dropout, float mag)
{
    int C = H * D;
    memset(p, 0, sizeof *p);
    p->s.B = B, p->s.T = T, p->s.H = H, p->s.D = D;
    p->s.causal = causal;
    p->s.scale = 1.0f / sqrtf((float)D);
    p->s.dropout = dropout;
    p->s.seed = 42;
    p->packed = packed;
    p->nout = (size_t)B * T * C;
    p->nin = 3 * p->nout;
    p->in = malloc(p->nin * sizeof(float));
    p->din = malloc(p->nin * sizeof(float));
    p->o = malloc(p->nout * sizeof(float));
    p->dout = malloc(p->nout * sizeof(float));
    p->lse = malloc((size_t)B * H * T * sizeof(float));
    for (size_t i = 0; i < p->nin; i++)
        p->in[i] = mag * frand();
    for (size_t i = 0; i < p->nout; i++)
        p->dout[i] = frand();
    if (packed) {
        p->s.sb = (long)T * 3 * C, p->s.st = 3L * C, p->s.sh = D;
        p->s.ob = (long)T * C, p->s.ot = C, p->s.oh = D;
        p->q = p->in, p->k = p->in + C, p->v = p->in + 2 * C;
        p->dq = p->din, p->dk = p->din + C, p->dv = p->din + 2 * C;
    } else {
        p->s.sb = (long)H * T * D, p->s.st = D, p->s.sh = (long)T * D;
        p->s.ob = p->s.sb, p->s.ot = D, p->s.oh = p->s.sh;
        p->q = p->in, p->k = p->in + p->nout, p->v = p->in + 2 * p->nout;
        p->dq = p->din, p->dk = p->din + p->nout, p->dv = p->din + 2 * p->nout;
    }
}

static void prob_free(Prob *p)
{
    free(p->in), free(p->din), free(p->o), free(p->dout), free(p->lse);
}

static long at(const nnc_attn_shape *s, int b, int t, int h)
{
    return b * s->sb + t * s->st + h * s->sh;
}

static long at_o(const nnc_attn_shape *s, int b, int t, int h)
{
    return b * s->ob + t * s->ot + h * s->oh;
}

/* The reference: o, lse and (if dq) the gradients, in double, through
 * the explicit T x T probabilities of each head. */
static void reference(const Prob *p, double *o, double *lse, double *dq, double *dk,
                      double *dv)
{
    const nnc_attn_shape *s = &p->s;
    int T = s->T, D = s->D;
    double *P = malloc((size_t)T * T * sizeof(double));
    double *Z = malloc((size_t)T * T * sizeof(double));
    double *dP = malloc((size_t)T * T * sizeof(double));
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double sc = 0;
                    for (int d = 0; d < D; d++)
                        sc += (double)p->q[at(s, b, i, h) + d] * p->k[at(s, b, j, h) + d];
                    sc *= s->scale;
                    if (s->causal && j > i)
                        sc = -INFINITY;
                    P[i * T + j] = sc;
                    mx = sc > mx ? sc : mx;
                }
                for (int j = 0; j < T; j++)
                    sum += exp(P[i * T + j] - mx);
                for (int j = 0; j < T; j++) {
                    P[i * T + j] = exp(P[i * T + j] - mx) / sum;
                    Z[i * T + j] = s->dropout > 0 && !nnc_attention_keep(s, b, h, i, j)
                                       ? 0.0
                                       : 1.0 / (1.0 - s->dropout);
                }
                lse[((long)b * s->H + h) * T + i] = mx + log(sum);
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++)
                        acc += P[i * T + j] * Z[i * T + j] * p->v[at(s, b, j, h) + d];
                    o[at_o(s, b, i, h) + d] = acc;
                }
            }
            if (!dq)
                continue;
            /* dP = Z (dout . v), dS = P (dP - rowsum(P dP)) */
            for (int i = 0; i < T; i++) {
                double rs = 0;
                for (int j = 0; j < T; j++) {
                    double a = 0;
                    for (int d = 0; d < D; d++)
                        a += (double)p->dout[at_o(s, b, i, h) + d] * p->v[at(s, b, j, h) + d];
                    dP[i * T + j] = a * Z[i * T + j];
                    rs += P[i * T + j] * dP[i * T + j];
                }
                for (int j = 0; j < T; j++)
                    dP[i * T + j] = P[i * T + j] * (dP[i * T + j] - rs) * s->scale;
            }
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int j = 0; j < T; j++) {
                        gq += dP[t * T + j] * p->k[at(s, b, j, h) + d];
                        gk += dP[j * T + t] * p->q[at(s, b, j, h) + d];
                        gv += P[j * T + t] * Z[j * T + t] * p->dout[at_o(s, b, j, h) + d];
                    }
                    dq[at(s, b, t, h) + d] = gq;
                    dk[at(s, b, t, h) + d] = gk;
                    dv[at(s, b, t, h) + d] = gv;
                }
        }
    free(P), free(Z), free(dP);
}

static void near(const char *what, const Prob *p, const float *y, const double *ref,
                 const long *idx, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        long j = idx ? idx[i] : (long)i;
        double e = fabs((double)y[j] - ref[j]);
        cr_assert(e <= tol * (1 + fabs(ref[j])),
                  "%s [%s, B %d T %d H %d D %d causal %d packed %d dropout %g] element %ld: "
                  "%.9g, expected %.9g",
                  what, nnc_isa(), p->s.B, p->s.T, p->s.H, p->s.D, p->s.causal, p->packed,
                  (double)p->s.dropout, j, (double)y[j], ref[j]);
    }
}

/* The indices of q, k, v (or dq, dk, dv) elements in the input buffer(s). */
static long *in_index(const Prob *p, size_t *n)
{
    const nnc_attn_shape *s = &p->s;
    long *idx = malloc(p->nin * sizeof(long));
    long base[3];
    size_t c = 0;
    base[0] = p->q - p->in, base[1] = p->k - p->in, base[2] = p->v - p->in;
    for (int w = 0; w < 3; w++)
        for (int b = 0; b < s->B; b++)
            for (int t = 0; t < s->T; t++)
                for (int h = 0; h < s->H; h++)
                    for (int d = 0; d < s->D; d++)
                        idx[c++] = base[w] + at(s, b, t, h) + d;
    *n = c;
    return idx;
}

static void check_case(int B, int T, int H, int D, int causal, int packed, float dropout)
{
    const char *saved = nnc_isa();
    for (int k = 0; k < NISAS; k++) {
        if (nnc_set_isa(isas[k]) != NNC_OK)
            continue;
        Prob p;
        prob_init(&p, B, T, H, D, causal, packed, dropout, 2.0f);
        size_t nl = (size_t)B * H * T, ni;
        double *o = calloc(p.nout, sizeof(double)), *lse = calloc(nl, sizeof(double));
        double *din = calloc(p.nin, sizeof(double));
        reference(&p, o, lse, din + (p.dq - p.din), din + (p.dk - p.din), din + (p.dv - p.din));
        nnc_attention_fwd(&p.s, p.q, p.k, p.v, p.o, p.lse);
        near("o", &p, p.o, o, NULL, p.nout, 2e-5);
        near("lse", &p, p.lse, lse, NULL, nl, 2e-6);
        long *idx = in_index(&p, &ni);
        nnc_attention_bwd(&p.s, p.q, p.k, p.v, p.o, p.lse, p.dout, p.dq, p.dk, p.dv);
        near("dqkv", &p, p.din, din, idx, ni, 1e-4);
        /* without lse: recomputed */
        nnc_attention_bwd(&p.s, p.q, p.k, p.v, p.o, NULL, p.dout, p.dq, p.dk, p.dv);
        near("dqkv without lse", &p, p.din, din, idx, ni, 1e-4);
        free(idx), free(o), free(lse), free(din);
        prob_free(&p);
    }
    nnc_set_isa(saved);
}

Test(attention, against_reference)
{
    static const int Ts[] = {1, 5, 33, 64}, Ds[] = {1, 7, 32};
    for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++)
        for (size_t d = 0; d < sizeof Ds / sizeof Ds[0]; d++)
            for (int causal = 0; causal < 2; causal++)
                for (int packed = 0; packed < 2; packed++)
                    check_case(2, Ts[t], 3, Ds[d], causal, packed, 0.0f);
}

Test(attention, dropout)
{
    for (int causal = 0; causal < 2; causal++)
        for (int packed = 0; packed < 2; packed++) {
            check_case(2, 37, 2, 8, causal, packed, 0.25f);
            check_case(1, 5, 3, 1, causal, packed, 0.5f);
        }
}

Test(attention, large_head_size)
{
    /* D > 128: smaller blocks */
    check_case(1, 40, 1, 300, 1, 0, 0.0f);
    check_case(1, 17, 2, 129, 0, 1, 0.0f);
}

Test(attention, dropout_rate)
{
    nnc_attn_shape s = {1, 200, 2, 4, 0, 0, 0, 0, 0, 0, 0, 1.0f, 0.3f, 7};
    long kept = 0, all = 0;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 200; i++)
            for (int j = 0; j < 200; j++)
                kept += nnc_attention_keep(&s, 0, h, i, j), all++;
    double rate = 1.0 - (double)kept / (double)all;
    cr_assert(fabs(rate - 0.3) < 0.01, "dropped %g, expected 0.3", rate);
}

/* 1 and 2 threads: the same bits (2 x 4 heads of 64 x 32). */
Test(attention, threads_bit_identical)
{
    for (int causal = 0; causal < 2; causal++) {
        Prob p;
        prob_init(&p, 2, 64, 4, 32, causal, 1, 0.1f, 1.0f);
        float *o1 = malloc(p.nout * sizeof(float)), *d1 = malloc(p.nin * sizeof(float));
        nnc_set_num_threads(1);
        nnc_attention_fwd(&p.s, p.q, p.k, p.v, o1, p.lse);
        nnc_attention_bwd(&p.s, p.q, p.k, p.v, o1, p.lse, p.dout, p.dq, p.dk, p.dv);
        memcpy(d1, p.din, p.nin * sizeof(float));
        nnc_set_num_threads(2);
        nnc_attention_fwd(&p.s, p.q, p.k, p.v, p.o, p.lse);
        nnc_attention_bwd(&p.s, p.q, p.k, p.v, p.o, p.lse, p.dout, p.dq, p.dk, p.dv);
        nnc_set_num_threads(0);
        cr_assert(memcmp(o1, p.o, p.nout * sizeof(float)) == 0, "o differs with 2 threads");
        cr_assert(memcmp(d1, p.din, p.nin * sizeof(float)) == 0,
                  "dqkv differs with 2 threads");
        free(o1), free(d1);
        prob_free(&p);
    }
}

/* f = sum w o: its gradient (the backward with dout = w) against central
 * differences of the float kernel. */
Test(attention, finite_differences)
{
    for (int causal = 0; causal < 2; causal++)
        for (int packed = 0; packed < 2; packed++) {
            Prob p;
            prob_init(&p, 1, 5, 2, 3, causal, packed, 0.2f, 1.0f);
            size_t ni;
            long *idx = in_index(&p, &ni);
            nnc_attention_fwd(&p.s, p.q, p.k, p.v, p.o, p.lse);
            nnc_attention_bwd(&p.s, p.q, p.k, p.v, p.o, p.lse, p.dout, p.dq, p.dk, p.dv);
            for (size_t n = 0; n < ni; n++) {
                float *x = &p.in[idx[n]], x0 = *x, h = 1e-2f;
                double f[2];
                for (int side = 0; side < 2; side++) {
                    *x = x0 + (side ? -h : h);
                    nnc_attention_fwd(&p.s, p.q, p.k, p.v, p.o, NULL);
                    f[side] = 0;
                    for (size_t i = 0; i < p.nout; i++)
                        f[side] += (double)p.dout[i] * p.o[i];
                }
                *x = x0;
                double fd = (f[0] - f[1]) / (2.0 * (double)h);
                double g = p.din[idx[n]];
                cr_assert(fabs(fd - g) <= 2e-3 + 2e-2 * fabs(g),
                          "causal %d packed %d element %ld: gradient %.7g, differences %.7g",
                          causal, packed, idx[n], g, fd);
            }
            free(idx);
            prob_free(&p);
        }
}

/* nnc_attention_decode(pos): row pos of the causal forward, the same
 * bits, for every position (a KV cache filled up to pos). */
Test(attention, decode_is_forward_row)
{
    static const int Ts[] = {1, 5, 40, 70}, Ds[] = {1, 7, 32, 100};
    const char *saved = nnc_isa();
    for (int k = 0; k < NISAS; k++) {
        if (nnc_set_isa(isas[k]) != NNC_OK)
            continue;
        for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++)
            for (size_t d = 0; d < sizeof Ds / sizeof Ds[0]; d++)
                for (int packed = 0; packed < 2; packed++) {
                    Prob p;
                    prob_init(&p, 2, Ts[t], 2, Ds[d], 1, packed, 0.0f, 2.0f);
                    float *o = malloc(p.nout * sizeof(float));
                    memset(o, 0, p.nout * sizeof(float));
                    nnc_attention_fwd(&p.s, p.q, p.k, p.v, p.o, NULL);
                    for (int pos = 0; pos < Ts[t]; pos++)
                        nnc_attention_decode(&p.s, pos, p.q, p.k, p.v, o);
                    for (size_t i = 0; i < p.nout; i++)
                        cr_assert(o[i] == p.o[i],
                                  "decode [%s, T %d D %d packed %d] element %zu: %.9g, "
                                  "forward %.9g", nnc_isa(), Ts[t], Ds[d], packed, i,
                                  (double)o[i], (double)p.o[i]);
                    free(o);
                    prob_free(&p);
                }
    }
    nnc_set_isa(saved);
}
