/*
 * attention.c - softmax attention, forward and backward, per (batch, head),
 * without a T x T matrix (flash-attention style):
 *
 *   s_ij = scale q_i . k_j,  j < T (j <= i if causal)
 *   p_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)
 *   o_i  = sum_j p_ij z_ij v_j,  z_ij = keep(b, h, i, j) / (1 - dropout)
 *
 * Forward. Queries go in blocks of 32 rows, keys in blocks of 32; for
 * each query row a running maximum m and sum l are kept (the online
 * softmax): a key block's scores raise m to m', the row's accumulator and
 * l are scaled by exp(m - m'), and the block's exp(s - m') are added
 * (into l before dropout, into the accumulator after it). At the end
 * o = acc / l and lse = m + log l. Nothing but one block of 32 x 32
 * scores is ever held.
 *
 * Backward (dy = dL/do), per query row i with D_i = dy_i . o_i:
 *   dv_j += p_ij z_ij dy_i
 *   ds_ij = p_ij (z_ij dy_i . v_j - D_i)
 *   dq_i += scale ds_ij k_j,  dk_j += scale ds_ij q_i
 * Key blocks are the outer loop (a block's dk and dv stay local while
 * every query block passes). The p_ij are recomputed from the scores and
 * lse: the caller's lse from the forward, or, when it passes NULL, a
 * short head's (T <= 64) whole probability matrix is computed first and
 * held on the stack (no more work than with lse), a longer head's lse
 * recomputed by the forward's online pass over the keys. Five products
 * of T x T x D per head (s, dy.v, dq, dk, dv), never a T^3 loop.
 *
 * Decode (generation with a KV cache): row pos of the causal forward
 * alone, by the forward's operations for that row in its order, so it
 * gives the forward's bits.
 *
 * Vectors (attention_vec.h, D <= 64). Everything is one micro-kernel,
 * C[r][0:32] += sum_x A(r, x) B[x][0:32], with B a local, aligned block:
 * the key block transposed (and scaled), or the value/key/query rows
 * padded to a multiple of 32; written once with GCC vector extensions and
 * compiled three times on x86 (baseline, AVX2+FMA, AVX-512, by target
 * attributes, as nn.c does); each call takes the set nnc_isa() names
 * (NNC_ISA=scalar: the baseline). Larger heads (and compilers without
 * vector extensions) take the plain loops below, with blocks that keep
 * the stack scratch small. The backward's scratch is about 125 KB of
 * stack. Block sizes depend only on D: results depend on the shapes and
 * the kernel set, not on the thread count.
 *
 * Threads. The B x H heads are independent: nnc_parallel_for hands whole
 * heads to threads, and each head's outputs (o, lse, and dq, dk, dv, which
 * the backward zeroes first and then accumulates in a fixed order) are
 * written by one task only, so results are bit-identical for any thread
 * count. Nothing allocates.
 *
 * Dropout (rate p, in training only) applies to the probabilities, as
 * torch's does: kept with probability 1 - p and scaled by 1 / (1 - p).
 * Its mask is a counter-based hash of (seed, b, h, i, j)
 * (nnc_attention_keep in nncrt.h), so the backward regenerates it.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nncrt.h"

/* NNC_ATTN_WIDE_GENERIC (tests only): the AVX-512 set's vector code
 * built as plain 16-lane GCC vectors, without its target attribute or
 * intrinsics, and chosen by NNC_ATTN_SET=wide, so that its blocking runs
 * on any CPU (tests/runtime/test_attn_wide.c); no intrinsics anywhere. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && \
    !defined(NNC_ATTN_WIDE_GENERIC)
#include <immintrin.h>
#define ATTN_X86 1
#endif
#if defined(NNC_ATTN_WIDE_GENERIC)
#include <stdlib.h>
#define ATTR_AVX512
#else
#define ATTR_AVX512 __attribute__((target("avx512f,fma")))
#endif

#if defined(__GNUC__)
#define ALWAYS __attribute__((always_inline))
#else
#define ALWAYS
#endif

#define BMAX 32         /* rows of a query block, keys of a key block */
#define SCRATCH 4096    /* floats of one transposed block (kT, vT) or accumulator */

/* The block size (query rows and keys) for head size d. */
static int block_of(int d)
{
    int b = SCRATCH / d;

    return b >= BMAX ? BMAX : b < 1 ? 1 : b;
}

typedef struct AttnArgs {
    const nnc_attn_shape *s;
    const float *q, *k, *v, *o, *dout, *lse_in;
    float *out, *lse, *dq, *dk, *dv;
    int pos;                /* nnc_attention_decode: the query's position */
} AttnArgs;

/* kT[d * ld + j] = k[j * st + d] for j < nk, d < D. */
static inline ALWAYS void transpose(float *kT, int ld, const float *k, long st, int nk, int D)
{
    int j, d;

    for (j = 0; j < nk; j++)
        for (d = 0; d < D; d++)
            kT[d * ld + j] = k[(long)j * st + d];
}

/* sc[j] = scale q . k_j for j < nk, from the transposed block kT. */
static inline ALWAYS void scores(float *sc, const float *q, const float *kT, int ld, int nk,
                                 int D, float scale)
{
    int j, d;

    for (j = 0; j < nk; j++)
        sc[j] = 0.0f;
    for (d = 0; d < D; d++) {
        const float qd = q[d], *kd = kT + d * ld;
        for (j = 0; j < nk; j++)
            sc[j] += qd * kd[j];
    }
    for (j = 0; j < nk; j++)
        sc[j] *= scale;
}

/* One key block of the online softmax of a row: raises *m to the block's
 * maximum, sets sc[j] = exp(sc[j] - m) for j < nj, rescales *l and adds
 * the block's sum; returns the factor exp(m_old - m) for the row's
 * accumulator. */
static inline ALWAYS float online(float *sc, int nj, float *m, float *l)
{
    float mx = *m, corr, sum = 0.0f;
    int j;

    for (j = 0; j < nj; j++)
        mx = sc[j] > mx ? sc[j] : mx;
    corr = *m == -INFINITY ? 0.0f : nnc_expf(*m - mx);
    for (j = 0; j < nj; j++)
        sc[j] = nnc_expf(sc[j] - mx);
    for (j = 0; j < nj; j++)
        sum += sc[j];
    *l = *l * corr + sum;
    *m = mx;
    return corr;
}

/* x[j] *= z_j (the dropout factor: 0 or 1 / (1 - p)) for keys j0 + j. */
static inline ALWAYS void drop(float *x, int nj, const nnc_attn_shape *s, int b, int h, int i,
                               int j0)
{
    const float inv = 1.0f / (1.0f - s->dropout);
    int j;

    for (j = 0; j < nj; j++)
        x[j] *= nnc_attention_keep(s, b, h, i, j0 + j) ? inv : 0.0f;
}

/* The keys query row i sees of the block [j0, j0 + nk). */
static int visible(const nnc_attn_shape *s, int i, int j0, int nk)
{
    int n = s->causal ? i - j0 + 1 : nk;

    return n < nk ? n : nk;
}

/* The log-sum-exp of query rows [i0, i0 + nq) of head (b, h), by the
 * forward's online pass (the same operations, so the same bits). */
static inline ALWAYS void head_lse(const nnc_attn_shape *s, const float *q, const float *k,
                                   int i0, int nq, int bs, float *kT, float *lse)
{
    const int T = s->T, D = s->D, jend = s->causal ? i0 + nq : T;
    float m[BMAX], l[BMAX], sc[BMAX];
    int r, j0;

    for (r = 0; r < nq; r++)
        m[r] = -INFINITY, l[r] = 0.0f;
    for (j0 = 0; j0 < jend; j0 += bs) {
        int nk = jend - j0 < bs ? jend - j0 : bs;
        transpose(kT, bs, k + (long)j0 * s->st, s->st, nk, D);
        for (r = 0; r < nq; r++) {
            int nj = visible(s, i0 + r, j0, nk);
            if (nj <= 0)
                continue;
            scores(sc, q + (long)(i0 + r) * s->st, kT, bs, nk, D, s->scale);
            (void)online(sc, nj, &m[r], &l[r]);
        }
    }
    for (r = 0; r < nq; r++)
        lse[r] = m[r] + logf(l[r]);
}

static inline ALWAYS void fwd_head(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int T = s->T, D = s->D, bs = block_of(D);
    const long qo = b * s->sb + h * s->sh;
    const float *q = a->q + qo, *k = a->k + qo, *v = a->v + qo;
    float *o = a->out + b * s->ob + h * s->oh;
    float kT[SCRATCH], acc[SCRATCH], sc[BMAX], m[BMAX], l[BMAX];
    int i0, j0, r, j, d;

    for (i0 = 0; i0 < T; i0 += bs) {
        const int nq = T - i0 < bs ? T - i0 : bs, jend = s->causal ? i0 + nq : T;
        for (r = 0; r < nq; r++)
            m[r] = -INFINITY, l[r] = 0.0f;
        memset(acc, 0, (size_t)(nq * D) * sizeof *acc);
        for (j0 = 0; j0 < jend; j0 += bs) {
            const int nk = jend - j0 < bs ? jend - j0 : bs;
            transpose(kT, bs, k + (long)j0 * s->st, s->st, nk, D);
            for (r = 0; r < nq; r++) {
                const int i = i0 + r, nj = visible(s, i, j0, nk);
                float *ar = acc + r * D, corr;
                if (nj <= 0)
                    continue;
                scores(sc, q + (long)i * s->st, kT, bs, nk, D, s->scale);
                corr = online(sc, nj, &m[r], &l[r]);
                if (s->dropout > 0.0f)
                    drop(sc, nj, s, b, h, i, j0);
                for (d = 0; d < D; d++)
                    ar[d] *= corr;
                for (j = 0; j < nj; j++) {
                    const float p = sc[j], *vj = v + (long)(j0 + j) * s->st;
                    for (d = 0; d < D; d++)
                        ar[d] += p * vj[d];
                }
            }
        }
        for (r = 0; r < nq; r++) {
            const float inv = 1.0f / l[r], *ar = acc + r * D;
            float *orow = o + (long)(i0 + r) * s->ot;
            for (d = 0; d < D; d++)
                orow[d] = ar[d] * inv;
            if (a->lse)
                a->lse[((long)b * s->H + h) * T + i0 + r] = m[r] + logf(l[r]);
        }
    }
}

static inline ALWAYS void bwd_head(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int T = s->T, D = s->D, bs = block_of(D);
    const long qo = b * s->sb + h * s->sh, oo = b * s->ob + h * s->oh;
    const float *q = a->q + qo, *k = a->k + qo, *v = a->v + qo;
    const float *o = a->o + oo, *dy = a->dout + oo;
    float *dq = a->dq + qo, *dk = a->dk + qo, *dv = a->dv + qo;
    float kT[SCRATCH], vT[SCRATCH], dqa[SCRATCH];
    float sc[BMAX], dp[BMAX], pz[BMAX], z[BMAX], lse[BMAX], di[BMAX];
    int i0, j0, r, j, d, t;

    for (t = 0; t < T; t++)
        for (d = 0; d < D; d++)
            dk[(long)t * s->st + d] = 0.0f, dv[(long)t * s->st + d] = 0.0f;
    for (i0 = 0; i0 < T; i0 += bs) {
        const int nq = T - i0 < bs ? T - i0 : bs, jend = s->causal ? i0 + nq : T;
        if (a->lse_in)
            for (r = 0; r < nq; r++)
                lse[r] = a->lse_in[((long)b * s->H + h) * T + i0 + r];
        else
            head_lse(s, q, k, i0, nq, bs, kT, lse);
        for (r = 0; r < nq; r++) {
            const float *dyr = dy + (long)(i0 + r) * s->ot, *orow = o + (long)(i0 + r) * s->ot;
            float acc = 0.0f;
            for (d = 0; d < D; d++)
                acc += dyr[d] * orow[d];
            di[r] = acc;
        }
        memset(dqa, 0, (size_t)(nq * D) * sizeof *dqa);
        for (j0 = 0; j0 < jend; j0 += bs) {
            const int nk = jend - j0 < bs ? jend - j0 : bs;
            transpose(kT, bs, k + (long)j0 * s->st, s->st, nk, D);
            transpose(vT, bs, v + (long)j0 * s->st, s->st, nk, D);
            for (r = 0; r < nq; r++) {
                const int i = i0 + r, nj = visible(s, i, j0, nk);
                const float *qi = q + (long)i * s->st, *dyi = dy + (long)i * s->ot;
                float *dqr = dqa + r * D;
                if (nj <= 0)
                    continue;
                scores(sc, qi, kT, bs, nk, D, s->scale);
                scores(dp, dyi, vT, bs, nk, D, 1.0f);
                for (j = 0; j < nj; j++)
                    sc[j] = nnc_expf(sc[j] - lse[r]);
                if (s->dropout > 0.0f) {
                    for (j = 0; j < nj; j++)
                        z[j] = 1.0f;
                    drop(z, nj, s, b, h, i, j0);
                    for (j = 0; j < nj; j++)
                        pz[j] = sc[j] * z[j], dp[j] *= z[j];
                } else {
                    for (j = 0; j < nj; j++)
                        pz[j] = sc[j];
                }
                /* sc becomes scale * ds */
                for (j = 0; j < nj; j++)
                    sc[j] = s->scale * (sc[j] * (dp[j] - di[r]));
                for (j = 0; j < nj; j++) {
                    const float g = sc[j], pj = pz[j];
                    const long jo = (long)(j0 + j) * s->st;
                    const float *kj = k + jo;
                    float *dkj = dk + jo, *dvj = dv + jo;
                    for (d = 0; d < D; d++)
                        dvj[d] += pj * dyi[d];
                    for (d = 0; d < D; d++)
                        dkj[d] += g * qi[d];
                    for (d = 0; d < D; d++)
                        dqr[d] += g * kj[d];
                }
            }
        }
        for (r = 0; r < nq; r++)
            for (d = 0; d < D; d++)
                dq[(long)(i0 + r) * s->st + d] = dqa[r * D + d];
    }
}

/* Row pos of fwd_head (causal): query pos against keys 0..pos. */
static inline ALWAYS void decode_head(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int D = s->D, bs = block_of(D), pos = a->pos;
    const long qo = b * s->sb + h * s->sh;
    const float *q = a->q + qo + (long)pos * s->st, *k = a->k + qo, *v = a->v + qo;
    float *o = a->out + b * s->ob + h * s->oh + (long)pos * s->ot;
    float kT[SCRATCH], acc[SCRATCH], sc[BMAX], m = -INFINITY, l = 0.0f;
    int j0, j, d;

    for (d = 0; d < D; d++)
        acc[d] = 0.0f;
    for (j0 = 0; j0 <= pos; j0 += bs) {
        const int nk = pos + 1 - j0 < bs ? pos + 1 - j0 : bs;
        float corr;
        transpose(kT, bs, k + (long)j0 * s->st, s->st, nk, D);
        scores(sc, q, kT, bs, nk, D, s->scale);
        corr = online(sc, nk, &m, &l);
        for (d = 0; d < D; d++)
            acc[d] *= corr;
        for (j = 0; j < nk; j++) {
            const float p = sc[j], *vj = v + (long)(j0 + j) * s->st;
            for (d = 0; d < D; d++)
                acc[d] += p * vj[d];
        }
    }
    for (d = 0; d < D; d++)
        o[d] = acc[d] * (1.0f / l);
}

/* ---- Per-ISA sets and the choice ----------------------------------------- */

typedef void (*HeadFn)(const AttnArgs *a, int b, int h);
typedef struct AttnKern {
    HeadFn fwd, bwd, decode;  /* D <= DMAX: the blocked vector bodies */
    HeadFn fwd_any, bwd_any, decode_any; /* any D: the plain loops above */
} AttnKern;

#if defined(__GNUC__)

#define BK 32       /* queries and keys of a block: the micro-kernel's width */
#define DMAX 64     /* the vector bodies' largest head size (stack: 125 KB) */
#define QCHUNK 1024 /* query rows whose lse the backward holds at once */
#define PMAX 4096   /* without lse, T x T probabilities held up to T = 64 */
#define HT 64       /* a head this short has its keys (and in the backward
                     * its queries) packed once, not once per block pair */
#define ALIGNED __attribute__((aligned(64)))
/* the micro-kernel's loops over rows and vectors, fully, so that its
 * accumulators live in registers (gcc -O2 does not unroll them itself) */
#define UNROLL _Pragma("GCC unroll 16")
#define HAVE_VEC 1
/* the micro-kernel's shapes on causal diagonal blocks (attention_vec.h) */
enum { MK_FULL, MK_COLS, MK_LOWER, MK_UPPER };

#define VW 4
#define VR 2
#define VSUF base
#define VATTR
#include "attention_vec.h"

#endif

#define DEFINE_SET(SUF, ATTR, FWD, BWD, DEC)                            \
    static ATTR void fwd_any_##SUF(const AttnArgs *a, int b, int h)    \
    {                                                                  \
        fwd_head(a, b, h);                                             \
    }                                                                  \
    static ATTR void bwd_any_##SUF(const AttnArgs *a, int b, int h)    \
    {                                                                  \
        bwd_head(a, b, h);                                             \
    }                                                                  \
    static ATTR void decode_any_##SUF(const AttnArgs *a, int b, int h) \
    {                                                                  \
        decode_head(a, b, h);                                          \
    }                                                                  \
    static const AttnKern attn_##SUF = {FWD, BWD, DEC, fwd_any_##SUF, bwd_any_##SUF, \
                                        decode_any_##SUF};

#if defined(HAVE_VEC)
DEFINE_SET(base, , fwd_base, bwd_base, decode_base)
#else
DEFINE_SET(base, , fwd_any_base, bwd_any_base, decode_any_base)
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#if defined(ATTN_X86)
/* dst[c*ld + r] = m x[r*st + c] for r, c < 8: an 8 x 8 block through
 * registers (unpack, shuffle, lane permute) instead of 64 scalar moves,
 * for the AVX2 and AVX-512 sets' key transpositions (the same products
 * m x, so the same bits as the scalar loop) */
static inline ALWAYS __attribute__((target("avx"))) void tr8x8(float *dst, int ld,
                                                                const float *x, long st,
                                                                float m)
{
    const __m256 r0 = _mm256_loadu_ps(x), r1 = _mm256_loadu_ps(x + st),
                 r2 = _mm256_loadu_ps(x + 2 * st), r3 = _mm256_loadu_ps(x + 3 * st),
                 r4 = _mm256_loadu_ps(x + 4 * st), r5 = _mm256_loadu_ps(x + 5 * st),
                 r6 = _mm256_loadu_ps(x + 6 * st), r7 = _mm256_loadu_ps(x + 7 * st);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
                 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
                 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    /* u0: column 0 of rows 0-3 | column 4; u1: 1 | 5; u2: 2 | 6; u3: 3 | 7
     * (u4-u7 the same for rows 4-7) */
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee),
                 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee),
                 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee),
                 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    const __m256 vm = _mm256_set1_ps(m);

    _mm256_storeu_ps(dst, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u0, u4, 0x20)));
    _mm256_storeu_ps(dst + ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u1, u5, 0x20)));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u2, u6, 0x20)));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u3, u7, 0x20)));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u0, u4, 0x31)));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u1, u5, 0x31)));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u2, u6, 0x31)));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_mul_ps(vm, _mm256_permute2f128_ps(u3, u7, 0x31)));
}
#endif

#define VW 8
#define VR 3
#define VSUF avx2
#define VATTR __attribute__((target("avx2,fma")))
#include "attention_vec.h"
DEFINE_SET(avx2, __attribute__((target("avx2,fma"))), fwd_avx2, bwd_avx2, decode_avx2)

#define VW 16
#define VR 8
#define VSUF avx512
#define VATTR ATTR_AVX512
#include "attention_vec.h"
DEFINE_SET(avx512, ATTR_AVX512, fwd_avx512, bwd_avx512, decode_avx512)

static const AttnKern *kern(void)
{
    const char *isa = nnc_isa();

#if defined(NNC_ATTN_WIDE_GENERIC)
    if (getenv("NNC_ATTN_SET") && strcmp(getenv("NNC_ATTN_SET"), "wide") == 0)
        return &attn_avx512;
#endif
    if (strcmp(isa, "avx512") == 0)
        return &attn_avx512;
    if (strcmp(isa, "avx2") == 0)
        return &attn_avx2;
    return &attn_base;
}

#else

static const AttnKern *kern(void)
{
    return &attn_base;
}

#endif

/* ---- Entry points ---------------------------------------------------------- */

#if defined(HAVE_VEC)
#define DMAX_ANY DMAX
#else
#define DMAX_ANY 0
#endif

typedef struct Task {
    const AttnArgs *a;
    HeadFn fn;
    int prefetch;           /* whole heads' rows (forward, backward) */
} Task;

/* Prefetching. In a model's step a head's rows are rarely in cache (the
 * backward's q, k, v, o were written long before, among megabytes of
 * other activations), and a head's few strided rows are too short for
 * the hardware's prefetchers to catch up: with the caches flushed first,
 * the GPT example's attention (48 heads of 64 x 32) took 1.8x (forward)
 * and 1.7x (backward) its warm time, as inside the step. So while one
 * head computes, the next head's rows are requested, when a head is
 * small enough for L2 to hold several (longer heads stream through their
 * own blocks): flushed first, the backward took 12% less, the forward 4%
 * (Zen 3; the rest is the memory's bandwidth). */
#define PREFETCH_MAX ((size_t)96 * 1024)   /* bytes of one head's rows */

#if defined(__GNUC__)
/* rows x[t * st + 0 .. n) for t < T, to L2 (write: for a store) */
static void prefetch_rows(const float *x, long st, int T, int n, int write)
{
    int t;

    for (t = 0; t < T; t++) {
        uintptr_t p = (uintptr_t)(x + (long)t * st), end = p + (size_t)n * sizeof(float);
        for (p -= p % 64; p < end; p += 64) {
            if (write)
                __builtin_prefetch((const void *)p, 1, 2);
            else
                __builtin_prefetch((const void *)p, 0, 2);
        }
    }
}

static void prefetch_head(const Task *t, size_t i)
{
    const AttnArgs *a = t->a;
    const nnc_attn_shape *s = a->s;
    const int b = (int)(i / (size_t)s->H), h = (int)(i % (size_t)s->H);
    const long qo = b * s->sb + h * s->sh, oo = b * s->ob + h * s->oh;
    const int bwd = a->dout != NULL;

    if (!t->prefetch ||
        (size_t)s->T * (size_t)s->D * sizeof(float) * (bwd ? 8u : 4u) > PREFETCH_MAX)
        return;
    prefetch_rows(a->q + qo, s->st, s->T, s->D, 0);
    prefetch_rows(a->k + qo, s->st, s->T, s->D, 0);
    prefetch_rows(a->v + qo, s->st, s->T, s->D, 0);
    if (bwd) {
        prefetch_rows(a->o + oo, s->ot, s->T, s->D, 0);
        prefetch_rows(a->dout + oo, s->ot, s->T, s->D, 0);
        prefetch_rows(a->dq + qo, s->st, s->T, s->D, 1);
        prefetch_rows(a->dk + qo, s->st, s->T, s->D, 1);
        prefetch_rows(a->dv + qo, s->st, s->T, s->D, 1);
    } else {
        prefetch_rows(a->out + oo, s->ot, s->T, s->D, 1);
    }
}
#else
static void prefetch_head(const Task *t, size_t i)
{
    (void)t, (void)i;
}
#endif

static void run_heads(void *arg, size_t lo, size_t hi)
{
    const Task *t = (const Task *)arg;
    const int H = t->a->s->H;
    size_t i;

    for (i = lo; i < hi; i++) {
        if (i + 1 < hi)
            prefetch_head(t, i + 1);
        t->fn(t->a, (int)(i / (size_t)H), (int)(i % (size_t)H));
    }
}

static void run(const AttnArgs *a, HeadFn fn)
{
    Task t;
    size_t heads = (size_t)a->s->B * (size_t)a->s->H;

    t.a = a;
    t.fn = fn;
    t.prefetch = 1;
    if (heads == 0 || a->s->T <= 0 || a->s->D <= 0)
        return;
    /* a head of T x T x D multiply-adds is worth a task from about 32^3 */
    if ((double)a->s->T * a->s->T * a->s->D * (double)heads < 65536.0)
        run_heads(&t, 0, heads);
    else
        nnc_parallel_for(heads, 1, run_heads, &t);
}

void nnc_attention_fwd(const nnc_attn_shape *s, const float *q, const float *k,
                       const float *v, float *o, float *lse)
{
    AttnArgs a;

    memset(&a, 0, sizeof a);
    a.s = s, a.q = q, a.k = k, a.v = v, a.out = o, a.lse = lse;
    run(&a, s->D <= DMAX_ANY ? kern()->fwd : kern()->fwd_any);
}

void nnc_attention_bwd(const nnc_attn_shape *s, const float *q, const float *k,
                       const float *v, const float *o, const float *lse, const float *dout,
                       float *dq, float *dk, float *dv)
{
    AttnArgs a;

    memset(&a, 0, sizeof a);
    a.s = s, a.q = q, a.k = k, a.v = v, a.o = o, a.lse_in = lse, a.dout = dout;
    a.dq = dq, a.dk = dk, a.dv = dv;
    run(&a, s->D <= DMAX_ANY ? kern()->bwd : kern()->bwd_any);
}

void nnc_attention_decode(const nnc_attn_shape *s, int pos, const float *q, const float *k,
                          const float *v, float *o)
{
    AttnArgs a;
    Task t;
    size_t heads = (size_t)s->B * (size_t)s->H;

    memset(&a, 0, sizeof a);
    a.s = s, a.q = q, a.k = k, a.v = v, a.out = o, a.pos = pos;
    t.a = &a;
    t.prefetch = 0;     /* one row a head */
    t.fn = s->D <= DMAX_ANY ? kern()->decode : kern()->decode_any;
    if (heads == 0 || pos < 0 || pos >= s->T || s->D <= 0)
        return;
    if ((double)(pos + 1) * s->D * (double)heads < 65536.0)
        run_heads(&t, 0, heads);
    else
        nnc_parallel_for(heads, 1, run_heads, &t);
}
