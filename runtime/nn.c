/*
 * nn.c - the runtime's non-GEMM, non-elementwise kernels: softmax and
 * log-softmax, layer and batch normalization, dropout, every loss with
 * its gradient, embedding gather and scatter, and joining or cutting rows
 * along the last axis. Code emitted by nnc calls one of these per op; the
 * training driver (fit.c) computes its metrics with the same loss
 * kernels, so each loss is written once. src/ops/nn.c, norm.c and gather.c
 * give the maths each kernel implements and the double-precision
 * reference (eval_*) it is tested against.
 *
 * Each function does the float and double operations the compiler used
 * to emit inline, in the same order (sums run from the first element to
 * the last), so moving a kernel here changed no result beyond the
 * rounding of multiply-adds that a compiler may contract. The exception
 * is layer normalization: it sums a row in 8 interleaved partial sums
 * (lane j % 8), added up in a fixed order, so that its reductions
 * vectorize (4x faster for rows of 256). A row's maximum is also taken in
 * 8 lanes, which cannot change it. Losses accumulate in double and return
 * the mean as a double; the emitted code rounds it to float.
 *
 * Rows whose cost is exp or a long reduction (softmax and its gradient,
 * layer normalization, the softmax cross-entropy gradients) are written
 * once as inline bodies and compiled three times on x86 (baseline,
 * AVX2+FMA, AVX-512, by target attributes, as vmath.c does); each call
 * takes the set that matches nnc_isa(), so NNC_ISA=scalar forces the
 * baseline one, which is the reference. Elsewhere (aarch64: NEON is the
 * baseline) only the baseline is built. Elementwise steps run in blocks
 * of 8 through a local buffer, which gcc 12 vectorizes even at -O2 (see
 * vmath.c); a row's last, partial block is done as the full block that
 * ends the row, so that rows of 10 classes are two vector blocks, not
 * one and a scalar tail. The log-sum-exp of the cross-entropy losses and
 * nnc_log_softmax takes each exp in float and sums them in double.
 *
 * Nothing here allocates or uses threads: results never depend on the
 * thread count. Batch normalization walks rows in order and keeps
 * per-channel sums for 64 channels at a time on the stack, so it reads x
 * contiguously yet adds each channel's values in the same order as a
 * channel-by-channel loop.
 */
#include <math.h>
#include <string.h>

#include "nncrt.h"

#if defined(__GNUC__)
#define ALWAYS __attribute__((always_inline))
#else
#define ALWAYS
#endif

#define BLOCK 8     /* exp block: one AVX2 vector */
#define LANES 8     /* partial sums of a layernorm row */
#define CHUNK 64    /* batchnorm channels per pass */

/* ---- Row bodies, compiled per ISA ---------------------------------------- */

/* OUT[J] = EXPR for J in [0, N), EXPR reading element J of its inputs
 * only (OUT may be one of them). Blocks of BLOCK go through a local
 * buffer, which gcc vectorizes even at -O2 (see vmath.c). A partial last
 * block is done as the full block that ends at N, overlapping the one
 * before; it is computed first, while OUT still holds the inputs, and
 * only its new lanes are stored. Rows shorter than a block take the
 * plain loop. */
#define MAP(N, OUT, EXPR)                                               \
    do {                                                                \
        float t_[BLOCK], e_[BLOCK];                                     \
        size_t n_ = (N), i_, l_, J;                                     \
        if (n_ < BLOCK) {                                               \
            for (J = 0; J < n_; J++)                                    \
                (OUT)[J] = (EXPR);                                      \
            break;                                                      \
        }                                                               \
        for (l_ = 0; l_ < BLOCK; l_++) {                                \
            J = n_ - BLOCK + l_;                                        \
            e_[l_] = (EXPR);                                            \
        }                                                               \
        for (i_ = 0; n_ - i_ >= BLOCK; i_ += BLOCK) {                   \
            for (l_ = 0; l_ < BLOCK; l_++) {                            \
                J = i_ + l_;                                            \
                t_[l_] = (EXPR);                                        \
            }                                                           \
            for (l_ = 0; l_ < BLOCK; l_++)                              \
                (OUT)[i_ + l_] = t_[l_];                                \
        }                                                               \
        for (l_ = BLOCK - (n_ - i_); l_ < BLOCK; l_++)                  \
            (OUT)[n_ - BLOCK + l_] = e_[l_];                            \
    } while (0)

/* MAP for two outputs at once: OUT1[J] = EXPR1, OUT2[J] = EXPR2, each
 * reading element J of its inputs only (the outputs may be among them). */
#define MAP2(N, OUT1, EXPR1, OUT2, EXPR2)                               \
    do {                                                                \
        float t1_[BLOCK], t2_[BLOCK], e1_[BLOCK], e2_[BLOCK];           \
        size_t n_ = (N), i_, l_, J;                                     \
        if (n_ < BLOCK) {                                               \
            for (J = 0; J < n_; J++) {                                  \
                const float v1_ = (EXPR1), v2_ = (EXPR2);               \
                (OUT1)[J] = v1_, (OUT2)[J] = v2_;                       \
            }                                                           \
            break;                                                      \
        }                                                               \
        for (l_ = 0; l_ < BLOCK; l_++) {                                \
            J = n_ - BLOCK + l_;                                        \
            e1_[l_] = (EXPR1);                                          \
            e2_[l_] = (EXPR2);                                          \
        }                                                               \
        for (i_ = 0; n_ - i_ >= BLOCK; i_ += BLOCK) {                   \
            for (l_ = 0; l_ < BLOCK; l_++) {                            \
                J = i_ + l_;                                            \
                t1_[l_] = (EXPR1);                                      \
                t2_[l_] = (EXPR2);                                      \
            }                                                           \
            for (l_ = 0; l_ < BLOCK; l_++) {                            \
                (OUT1)[i_ + l_] = t1_[l_];                              \
                (OUT2)[i_ + l_] = t2_[l_];                              \
            }                                                           \
        }                                                               \
        for (l_ = BLOCK - (n_ - i_); l_ < BLOCK; l_++) {                \
            (OUT1)[n_ - BLOCK + l_] = e1_[l_];                          \
            (OUT2)[n_ - BLOCK + l_] = e2_[l_];                          \
        }                                                               \
    } while (0)

/* y[j] = exp(x[j] - mx) for j < n (y may equal x); returns the sum of
 * the y[j], added in order of j. The sum runs block by block beside the
 * exps (a separate pass would be one long chain of dependent adds), and
 * the last, partial block is done as in MAP. */
static inline ALWAYS float exp_sum(float *y, const float *x, float mx, size_t n)
{
    float t[BLOCK], e[BLOCK], s = 0.0f;
    size_t i, l;

    if (n < BLOCK) {
        for (i = 0; i < n; i++)
            s += y[i] = nnc_expf(x[i] - mx);
        return s;
    }
    for (l = 0; l < BLOCK; l++)
        e[l] = nnc_expf(x[n - BLOCK + l] - mx);
    for (i = 0; n - i >= BLOCK; i += BLOCK) {
        for (l = 0; l < BLOCK; l++)
            t[l] = nnc_expf(x[i + l] - mx);
        for (l = 0; l < BLOCK; l++)
            s += y[i + l] = t[l];
    }
    for (l = BLOCK - (n - i); l < BLOCK; l++)
        s += y[n - BLOCK + l] = e[l];
    return s;
}

/* max_j x[j] as the loop mx = x[j] > mx ? x[j] : mx would find it (a NaN
 * is skipped unless it is x[0]), in LANES running maxima so that it
 * vectorizes; the order does not change the result. */
static inline ALWAYS float row_max(const float *x, size_t c)
{
    float m[LANES], mx;
    size_t i, l;

    if (c < LANES) {
        for (i = 1, mx = x[0]; i < c; i++)
            mx = x[i] > mx ? x[i] : mx;
        return mx;
    }
    for (l = 0; l < LANES; l++)   /* x[0] everywhere: a NaN there wins */
        m[l] = x[0];
    for (i = 0; c - i >= LANES; i += LANES)
        for (l = 0; l < LANES; l++)
            m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
    for (; i < c; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    for (l = 1, mx = m[0]; l < LANES; l++)
        mx = m[l] > mx ? m[l] : mx;
    return mx;
}

static inline ALWAYS float row_sum(const float *x, size_t c)
{
    float s = 0.0f;
    size_t j;

    for (j = 0; j < c; j++)
        s += x[j];
    return s;
}

/* The LANES partial sums a[l] (lane j % LANES) added in the fixed order
 * of every row sum here: the same bits on every ISA. */
static inline ALWAYS float lanes_fold(const float *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* Sums over a row in LANES partial sums (lane j % LANES), added pairwise
 * in a fixed order: the same bits on every ISA, and vectorizable. Each
 * takes two rows (x1 may be x0) and returns both sums: two independent
 * chains of additions in flight instead of one. A 128-wide layernorm row
 * is a chain of 16 dependent vector additions per sum, so one row at a
 * time ran at a third of the core's rate (the GPT's 768 x 128 layernorm:
 * 49 us; 44 in pairs). lane_sum2: sum_j x[j]; lane_sqdev2: sum_j (x[j] -
 * m)^2; lane_dot_dev2: sum_j dy[j] (x[j] - m). */
#define LANE_PAIR(NAME, T0, T1, ARGS)                                            \
    static inline ALWAYS void NAME ARGS                                          \
    {                                                                            \
        float a0[LANES] = {0}, a1[LANES] = {0};                                  \
        size_t i = 0, l;                                                         \
        for (; c - i >= LANES; i += LANES)                                       \
            for (l = 0; l < LANES; l++) {                                        \
                const size_t k = i + l;                                          \
                a0[l] += T0;                                                     \
                a1[l] += T1;                                                     \
            }                                                                    \
        for (l = 0; i < c; i++, l++) {                                           \
            const size_t k = i;                                                  \
            a0[l] += T0;                                                         \
            a1[l] += T1;                                                         \
        }                                                                        \
        *r0 = lanes_fold(a0);                                                    \
        *r1 = lanes_fold(a1);                                                    \
    }
LANE_PAIR(lane_sum2, x0[k], x1[k],
          (const float *x0, const float *x1, size_t c, float *r0, float *r1))
LANE_PAIR(lane_sqdev2, (x0[k] - m0) * (x0[k] - m0), (x1[k] - m1) * (x1[k] - m1),
          (const float *x0, float m0, const float *x1, float m1, size_t c, float *r0,
           float *r1))
LANE_PAIR(lane_dot_dev2, d0[k] * (x0[k] - m0), d1[k] * (x1[k] - m1),
          (const float *d0, const float *x0, float m0, const float *d1, const float *x1,
           float m1, size_t c, float *r0, float *r1))
#undef LANE_PAIR

/* Both sums of the layernorm layer's backward over g = dy gamma, for two
 * rows in one pass: sum_j g[j] (ra) and sum_j g[j] (x[j] - m) (rb); g is
 * rounded to float before it is used, as a stored dy gamma was. */
static inline ALWAYS void lane_gsums2(const float *d0, const float *x0, float m0,
                                      const float *d1, const float *x1, float m1,
                                      const float *gm, size_t c, float *ra0, float *rb0,
                                      float *ra1, float *rb1)
{
    float a0[LANES] = {0}, b0[LANES] = {0}, a1[LANES] = {0}, b1[LANES] = {0};
    size_t i = 0, l;
    for (; c - i >= LANES; i += LANES)
        for (l = 0; l < LANES; l++) {
            const size_t k = i + l;
            const float g0 = d0[k] * gm[k], g1 = d1[k] * gm[k];
            a0[l] += g0;
            b0[l] += g0 * (x0[k] - m0);
            a1[l] += g1;
            b1[l] += g1 * (x1[k] - m1);
        }
    for (l = 0; i < c; i++, l++) {
        const float g0 = d0[i] * gm[i], g1 = d1[i] * gm[i];
        a0[l] += g0;
        b0[l] += g0 * (x0[i] - m0);
        a1[l] += g1;
        b1[l] += g1 * (x1[i] - m1);
    }
    *ra0 = lanes_fold(a0), *rb0 = lanes_fold(b0);
    *ra1 = lanes_fold(a1), *rb1 = lanes_fold(b1);
}

static inline ALWAYS void softmax_body(const float *x, float *y, size_t rows, size_t c)
{
    size_t r;

    for (r = 0; r < rows; r++, x += c, y += c) {
        float s = exp_sum(y, x, row_max(x, c), c);
        MAP(c, y, y[J] / s);
    }
}

static inline ALWAYS void softmax_back_body(const float *dy, const float *y, float *dx,
                                            size_t rows, size_t c)
{
    size_t r, j;

    for (r = 0; r < rows; r++, dy += c, y += c, dx += c) {
        float s = 0.0f;
        for (j = 0; j < c; j++)
            s += dy[j] * y[j];
        MAP(c, dx, y[J] * (dy[J] - s));
    }
}

/* Rows x0 and x1 (x1 may be x0): their means and 1/sqrt(var + eps), all
 * in float. */
static inline ALWAYS void ln_stats2(const float *x0, const float *x1, size_t c, float eps,
                                    float *m0, float *m1, float *s0, float *s1)
{
    float fc = (float)c, v0, v1;

    lane_sum2(x0, x1, c, m0, m1);
    *m0 /= fc, *m1 /= fc;
    lane_sqdev2(x0, *m0, x1, *m1, c, &v0, &v1);
    *s0 = 1.0f / sqrtf(v0 / fc + eps);
    *s1 = 1.0f / sqrtf(v1 / fc + eps);
}

/* Rows x0 and x1; with both == 0 (a constant) x1 is x0 and only y0 is
 * stored: an odd last row, with the same bits as in a pair. */
static inline ALWAYS void layernorm_rows(const float *x0, const float *x1, float *y0, float *y1,
                                         size_t c, float eps, const int both)
{
    float m0, m1, s0, s1;

    ln_stats2(x0, x1, c, eps, &m0, &m1, &s0, &s1);
    MAP(c, y0, (x0[J] - m0) * s0);
    if (both)
        MAP(c, y1, (x1[J] - m1) * s1);
}

static inline ALWAYS void layernorm_body(const float *x, float *y, size_t rows, size_t c,
                                         float eps)
{
    size_t r;

    for (r = 0; r + 2 <= rows; r += 2, x += 2 * c, y += 2 * c)
        layernorm_rows(x, x + c, y, y + c, c, eps, 1);
    if (r < rows)
        layernorm_rows(x, x, y, y, c, eps, 0);
}

static inline ALWAYS void layernorm_back_rows(const float *dy0, const float *dy1,
                                              const float *x0, const float *x1, float *dx0,
                                              float *dx1, size_t c, float eps, const int both)
{
    float fc = (float)c, m0, m1, s0, s1, ma0, ma1, mb0, mb1;

    ln_stats2(x0, x1, c, eps, &m0, &m1, &s0, &s1);
    lane_sum2(dy0, dy1, c, &ma0, &ma1);
    lane_dot_dev2(dy0, x0, m0, dy1, x1, m1, c, &mb0, &mb1);
    ma0 /= fc, ma1 /= fc;
    mb0 = mb0 * s0 / fc, mb1 = mb1 * s1 / fc;
    MAP(c, dx0, s0 * (dy0[J] - ma0 - (x0[J] - m0) * s0 * mb0));
    if (both)
        MAP(c, dx1, s1 * (dy1[J] - ma1 - (x1[J] - m1) * s1 * mb1));
}

static inline ALWAYS void layernorm_back_body(const float *dy, const float *x, float *dx,
                                              size_t rows, size_t c, float eps)
{
    size_t r;

    for (r = 0; r + 2 <= rows; r += 2, dy += 2 * c, x += 2 * c, dx += 2 * c)
        layernorm_back_rows(dy, dy + c, x, x + c, dx, dx + c, c, eps, 1);
    if (r < rows)
        layernorm_back_rows(dy, dy, x, x, dx, dx, c, eps, 0);
}

/* A layernorm layer's rows: y = ((x - m) s) gamma + beta, in that order. */
static inline ALWAYS void layernorm_affine_rows(const float *x0, const float *x1, float *y0,
                                                float *y1, const float *gamma,
                                                const float *beta, size_t c, float eps,
                                                const int both)
{
    float m0, m1, s0, s1;

    ln_stats2(x0, x1, c, eps, &m0, &m1, &s0, &s1);
    MAP(c, y0, (x0[J] - m0) * s0 * gamma[J] + beta[J]);
    if (both)
        MAP(c, y1, (x1[J] - m1) * s1 * gamma[J] + beta[J]);
}

static inline ALWAYS void layernorm_affine_body(const float *x, const float *gamma,
                                                const float *beta, float *y, size_t rows,
                                                size_t c, float eps)
{
    size_t r;

    for (r = 0; r + 2 <= rows; r += 2, x += 2 * c, y += 2 * c)
        layernorm_affine_rows(x, x + c, y, y + c, gamma, beta, c, eps, 1);
    if (r < rows)
        layernorm_affine_rows(x, x, y, y, gamma, beta, c, eps, 0);
}

/* One row's terms of gamma's gradient (dy xhat) and beta's (dy) added to
 * them (either may be NULL), in one pass when both are wanted. */
static inline ALWAYS void ln_param_sums(const float *dy, const float *x, float m, float s,
                                        float *dgamma, float *dbeta, size_t c)
{
    if (dgamma != NULL && dbeta != NULL)
        MAP2(c, dgamma, dgamma[J] + dy[J] * ((x[J] - m) * s), dbeta, dbeta[J] + dy[J]);
    else if (dgamma != NULL)
        MAP(c, dgamma, dgamma[J] + dy[J] * ((x[J] - m) * s));
    else if (dbeta != NULL)
        MAP(c, dbeta, dbeta[J] + dy[J]);
}

/* Its backward over rows x0, x1 (both: see layernorm_rows): the sums for
 * dgamma and dbeta first (row 0's, then row 1's: rows in order), then dx
 * from g = dy gamma, which is nnc_layernorm_back's dy. Every read of a
 * row comes before its dx is written, so dx may be dy. */
static inline ALWAYS void layernorm_affine_back_rows(const float *dy0, const float *dy1,
                                                     const float *x0, const float *x1,
                                                     const float *gamma, float *dx0,
                                                     float *dx1, float *dgamma, float *dbeta,
                                                     size_t c, float eps, const int both)
{
    float fc = (float)c, m0, m1, s0, s1, ma0, ma1, mb0, mb1;

    ln_stats2(x0, x1, c, eps, &m0, &m1, &s0, &s1);
    /* per element, row 0's term is added before row 1's: rows in order;
     * both rows and both sums in one pass (two passes were 20% slower) */
    if (dgamma != NULL && dbeta != NULL && both)
        MAP2(c, dgamma, (dgamma[J] + dy0[J] * ((x0[J] - m0) * s0)) +
                            dy1[J] * ((x1[J] - m1) * s1),
             dbeta, (dbeta[J] + dy0[J]) + dy1[J]);
    else if (both) {
        ln_param_sums(dy0, x0, m0, s0, dgamma, dbeta, c);
        ln_param_sums(dy1, x1, m1, s1, dgamma, dbeta, c);
    } else {
        ln_param_sums(dy0, x0, m0, s0, dgamma, dbeta, c);
    }
    if (dx0 == NULL)
        return;
    lane_gsums2(dy0, x0, m0, dy1, x1, m1, gamma, c, &ma0, &mb0, &ma1, &mb1);
    ma0 /= fc, ma1 /= fc;
    mb0 = mb0 * s0 / fc, mb1 = mb1 * s1 / fc;
    MAP(c, dx0, s0 * (dy0[J] * gamma[J] - ma0 - (x0[J] - m0) * s0 * mb0));
    if (both)
        MAP(c, dx1, s1 * (dy1[J] * gamma[J] - ma1 - (x1[J] - m1) * s1 * mb1));
}

static inline ALWAYS void layernorm_affine_back_body(const float *dy, const float *x,
                                                     const float *gamma, float *dx,
                                                     float *dgamma, float *dbeta, size_t rows,
                                                     size_t c, float eps)
{
    size_t r;

    if (dgamma != NULL)
        memset(dgamma, 0, c * sizeof *dgamma);
    if (dbeta != NULL)
        memset(dbeta, 0, c * sizeof *dbeta);
    for (r = 0; r + 2 <= rows; r += 2, dy += 2 * c, x += 2 * c, dx = dx ? dx + 2 * c : dx)
        layernorm_affine_back_rows(dy, dy + c, x, x + c, gamma, dx, dx ? dx + c : dx, dgamma,
                                   dbeta, c, eps, 1);
    if (r < rows)
        layernorm_affine_back_rows(dy, dy, x, x, gamma, dx, dx, dgamma, dbeta, c, eps, 0);
}

static inline ALWAYS void softmax_ce_back_body(float dl, const float *z, const float *t,
                                               float *dz, size_t rows, size_t c)
{
    const float k = dl / (float)rows;
    size_t r;

    for (r = 0; r < rows; r++, z += c, t += c, dz += c) {
        float s, st;
        s = exp_sum(dz, z, row_max(z, c), c);
        st = row_sum(t, c);
        MAP(c, dz, k * (dz[J] / s * st - t[J]));
    }
}

/* log sum_j exp(z_j) of a row, as the cross-entropy losses need it:
 * max + log(sum exp(z - max)), each exp of the float difference in float
 * (nnc_expf, within 1 ulp; libm's double exp per element made the GPT's
 * loss 0.65 ms of a 70 ms step), summed in double in LANES partial sums
 * (lane j % LANES) added in a fixed order: the same bits on every ISA. */
static inline ALWAYS double lse_body(const float *z, size_t c)
{
    float mx = row_max(z, c), t[LANES];
    double acc[LANES] = {0};
    size_t i = 0, l;

    for (; c - i >= LANES; i += LANES) {
        for (l = 0; l < LANES; l++)
            t[l] = nnc_expf(z[i + l] - mx);
        for (l = 0; l < LANES; l++)
            acc[l] += (double)t[l];
    }
    for (l = 0; i < c; i++, l++)
        acc[l] += (double)nnc_expf(z[i] - mx);
    return (double)mx + log(((acc[0] + acc[4]) + (acc[2] + acc[6]))
                            + ((acc[1] + acc[5]) + (acc[3] + acc[7])));
}

/* The class index that target value v holds, or -1 if it is not in
 * [0, c) (NaN included). */
static int class_of(float v, size_t c)
{
    return v >= 0.0f && v < (float)c ? (int)v : -1;
}

static inline ALWAYS void sparse_softmax_ce_back_body(float dl, const float *z,
                                                      const float *t, float *dz,
                                                      size_t rows, size_t c)
{
    const float k = dl / (float)rows;
    size_t r;

    for (r = 0; r < rows; r++, z += c, dz += c) {
        int tk = class_of(t[r], c);
        float s;
        if (tk < 0) {
            memset(dz, 0, c * sizeof *dz);
            continue;
        }
        s = exp_sum(dz, z, row_max(z, c), c);
        MAP(c, dz, k * (dz[J] / s));
        dz[tk] -= k;
    }
}

/* ---- Per-ISA sets and the choice ----------------------------------------- */

typedef struct NnKern {
    void (*softmax)(const float *, float *, size_t, size_t);
    void (*softmax_back)(const float *, const float *, float *, size_t, size_t);
    void (*layernorm)(const float *, float *, size_t, size_t, float);
    void (*layernorm_back)(const float *, const float *, float *, size_t, size_t, float);
    void (*layernorm_affine)(const float *, const float *, const float *, float *, size_t,
                             size_t, float);
    void (*layernorm_affine_back)(const float *, const float *, const float *, float *, float *,
                                  float *, size_t, size_t, float);
    void (*softmax_ce_back)(float, const float *, const float *, float *, size_t, size_t);
    void (*sparse_softmax_ce_back)(float, const float *, const float *, float *, size_t,
                                   size_t);
    double (*lse)(const float *, size_t);
} NnKern;

/* static const NnKern nn_SUF: the bodies above compiled under ATTR. */
#define DEFINE_SET(SUF, ATTR)                                                              \
    static ATTR void softmax_##SUF(const float *x, float *y, size_t rows, size_t c)       \
    {                                                                                      \
        softmax_body(x, y, rows, c);                                                       \
    }                                                                                      \
    static ATTR void softmax_back_##SUF(const float *dy, const float *y, float *dx,       \
                                        size_t rows, size_t c)                             \
    {                                                                                      \
        softmax_back_body(dy, y, dx, rows, c);                                             \
    }                                                                                      \
    static ATTR void layernorm_##SUF(const float *x, float *y, size_t rows, size_t c,     \
                                     float eps)                                           \
    {                                                                                      \
        layernorm_body(x, y, rows, c, eps);                                                \
    }                                                                                      \
    static ATTR void layernorm_back_##SUF(const float *dy, const float *x, float *dx,     \
                                          size_t rows, size_t c, float eps)               \
    {                                                                                      \
        layernorm_back_body(dy, x, dx, rows, c, eps);                                      \
    }                                                                                      \
    static ATTR void layernorm_affine_##SUF(const float *x, const float *gamma,           \
                                            const float *beta, float *y, size_t rows,      \
                                            size_t c, float eps)                           \
    {                                                                                      \
        layernorm_affine_body(x, gamma, beta, y, rows, c, eps);                            \
    }                                                                                      \
    static ATTR void layernorm_affine_back_##SUF(const float *dy, const float *x,          \
                                                 const float *gamma, float *dx,            \
                                                 float *dgamma, float *dbeta, size_t rows, \
                                                 size_t c, float eps)                      \
    {                                                                                      \
        layernorm_affine_back_body(dy, x, gamma, dx, dgamma, dbeta, rows, c, eps);         \
    }                                                                                      \
    static ATTR void softmax_ce_back_##SUF(float dl, const float *z, const float *t,      \
                                           float *dz, size_t rows, size_t c)               \
    {                                                                                      \
        softmax_ce_back_body(dl, z, t, dz, rows, c);                                       \
    }                                                                                      \
    static ATTR void sparse_softmax_ce_back_##SUF(float dl, const float *z, const float *t, \
                                                  float *dz, size_t rows, size_t c)        \
    {                                                                                      \
        sparse_softmax_ce_back_body(dl, z, t, dz, rows, c);                                \
    }                                                                                      \
    static ATTR double lse_##SUF(const float *z, size_t c)                                 \
    {                                                                                      \
        return lse_body(z, c);                                                             \
    }                                                                                      \
    static const NnKern nn_##SUF = {                                                       \
        softmax_##SUF, softmax_back_##SUF, layernorm_##SUF, layernorm_back_##SUF,          \
        layernorm_affine_##SUF, layernorm_affine_back_##SUF,                               \
        softmax_ce_back_##SUF, sparse_softmax_ce_back_##SUF, lse_##SUF,                    \
    };

DEFINE_SET(base, )

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

DEFINE_SET(avx2, __attribute__((target("avx2,fma"))))
DEFINE_SET(avx512, __attribute__((target("avx512f,fma"))))

/* The set matching the GEMM's kernel set (nnc_isa()). */
static const NnKern *kern(void)
{
    const char *isa = nnc_isa();

    if (strcmp(isa, "avx512") == 0)
        return &nn_avx512;
    if (strcmp(isa, "avx2") == 0)
        return &nn_avx2;
    return &nn_base;
}

#else

static const NnKern *kern(void)
{
    return &nn_base;
}

#endif

/* ---- Softmax, log-softmax, layer normalization ---------------------------- */

void nnc_softmax(const float *x, float *y, size_t rows, size_t c)
{
    kern()->softmax(x, y, rows, c);
}

void nnc_softmax_back(const float *dy, const float *y, float *dx, size_t rows, size_t c)
{
    kern()->softmax_back(dy, y, dx, rows, c);
}

void nnc_log_softmax(const float *x, float *y, size_t rows, size_t c)
{
    const NnKern *kn = kern();
    size_t r, j;

    for (r = 0; r < rows; r++, x += c, y += c) {
        double lse = kn->lse(x, c);
        for (j = 0; j < c; j++)
            y[j] = (float)((double)x[j] - lse);
    }
}

void nnc_layernorm(const float *x, float *y, size_t rows, size_t c, float eps)
{
    kern()->layernorm(x, y, rows, c, eps);
}

void nnc_layernorm_back(const float *dy, const float *x, float *dx, size_t rows, size_t c,
                        float eps)
{
    kern()->layernorm_back(dy, x, dx, rows, c, eps);
}

void nnc_layernorm_affine(const float *x, const float *gamma, const float *beta, float *y,
                          size_t rows, size_t c, float eps)
{
    kern()->layernorm_affine(x, gamma, beta, y, rows, c, eps);
}

void nnc_layernorm_affine_back(const float *dy, const float *x, const float *gamma, float *dx,
                               float *dgamma, float *dbeta, size_t rows, size_t c, float eps)
{
    kern()->layernorm_affine_back(dy, x, gamma, dx, dgamma, dbeta, rows, c, eps);
}

/* ---- Batch normalization --------------------------------------------------- */

/* Mean mu and 1/sqrt(var + eps) inv of channels [j0, j0 + w) of x (m rows
 * of c), and the biased variance vb (if not NULL); sums in double, each
 * channel's rows in order. */
static void bn_stats(const float *x, size_t m, size_t c, size_t j0, size_t w, double eps,
                     float *mu, float *inv, double *vb)
{
    double s[CHUNK] = {0}, v[CHUNK] = {0}, mean[CHUNK];
    size_t r, j;

    for (r = 0; r < m; r++)
        for (j = 0; j < w; j++)
            s[j] += x[r * c + j0 + j];
    for (j = 0; j < w; j++)
        mean[j] = s[j] / (double)m;
    for (r = 0; r < m; r++)
        for (j = 0; j < w; j++) {
            double d = x[r * c + j0 + j] - mean[j];
            v[j] += d * d;
        }
    for (j = 0; j < w; j++) {
        mu[j] = (float)mean[j];
        if (vb)
            vb[j] = v[j] / (double)m;
        inv[j] = (float)(1.0 / sqrt(v[j] / (double)m + eps));
    }
}

/* y = (x - mu) inv over channels [j0, j0 + w). */
static void bn_apply(const float *x, float *y, size_t m, size_t c, size_t j0, size_t w,
                     const float *mu, const float *inv)
{
    size_t r, j;

    for (r = 0; r < m; r++)
        for (j = 0; j < w; j++)
            y[r * c + j0 + j] = (x[r * c + j0 + j] - mu[j]) * inv[j];
}

void nnc_batchnorm(const float *x, float *y, float *mean, float *var, size_t m, size_t c,
                   double eps, double momentum)
{
    size_t j0, j;

    for (j0 = 0; j0 < c; j0 += CHUNK) {
        size_t w = c - j0 < CHUNK ? c - j0 : CHUNK;
        float mu[CHUNK], inv[CHUNK];
        double vb[CHUNK];
        bn_stats(x, m, c, j0, w, eps, mu, inv, vb);
        bn_apply(x, y, m, c, j0, w, mu, inv);
        for (j = 0; j < w; j++) {   /* running statistics, as torch */
            double unb = m > 1 ? vb[j] * (double)m / (double)(m - 1) : vb[j];
            mean[j0 + j] = (float)(momentum * mean[j0 + j] + (1.0 - momentum) * mu[j]);
            var[j0 + j] = (float)(momentum * var[j0 + j] + (1.0 - momentum) * unb);
        }
    }
}

void nnc_batchnorm_predict(const float *x, float *y, const float *mean, const float *var,
                           size_t m, size_t c, double eps)
{
    size_t j0, j;

    for (j0 = 0; j0 < c; j0 += CHUNK) {
        size_t w = c - j0 < CHUNK ? c - j0 : CHUNK;
        float inv[CHUNK];
        for (j = 0; j < w; j++)
            inv[j] = (float)(1.0 / sqrt((double)var[j0 + j] + eps));
        bn_apply(x, y, m, c, j0, w, mean + j0, inv);
    }
}

void nnc_batchnorm_back(const float *dy, const float *x, float *dx, size_t m, size_t c,
                        double eps)
{
    const float fm = (float)m;
    size_t j0, j, r;

    for (j0 = 0; j0 < c; j0 += CHUNK) {
        size_t w = c - j0 < CHUNK ? c - j0 : CHUNK;
        float mu[CHUNK], inv[CHUNK], k[CHUNK], sg[CHUNK], sgx[CHUNK];
        double dsg[CHUNK] = {0}, dsgx[CHUNK] = {0};
        bn_stats(x, m, c, j0, w, eps, mu, inv, NULL);
        for (r = 0; r < m; r++)
            for (j = 0; j < w; j++) {
                size_t i = r * c + j0 + j;
                dsg[j] += dy[i];
                dsgx[j] += dy[i] * ((x[i] - mu[j]) * inv[j]);
            }
        for (j = 0; j < w; j++) {
            k[j] = inv[j] / fm;
            sg[j] = (float)dsg[j];
            sgx[j] = (float)dsgx[j];
        }
        for (r = 0; r < m; r++)
            for (j = 0; j < w; j++) {
                size_t i = r * c + j0 + j;
                float xh = (x[i] - mu[j]) * inv[j];
                dx[i] = k[j] * (fm * dy[i] - sg[j] - xh * sgx[j]);
            }
    }
}

/* ---- Dropout ----------------------------------------------------------------- */

void nnc_dropout(const float *x, float *y, size_t n, float p, float scale, nnc_rng *rng)
{
    size_t i;

    for (i = 0; i < n; i++)
        y[i] = nnc_rng_uniform(rng) < p ? 0.0f : x[i] * scale;
}

void nnc_dropout_back(const float *dy, const float *y, float *dx, size_t n, float scale)
{
    size_t i;

    for (i = 0; i < n; i++)
        dx[i] = y[i] != 0.0f ? dy[i] * scale : 0.0f;
}

/* ---- Losses on values (n elements) ----------------------------------------- */

static double clamp_log(double v)
{
    double l = log(v);
    return l < -100.0 ? -100.0 : l;
}

double nnc_bce(const float *p, const float *t, size_t n)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++)
        s -= t[i] * clamp_log((double)p[i]) + (1.0 - t[i]) * clamp_log(1.0 - (double)p[i]);
    return s / (double)n;
}

double nnc_mse(const float *p, const float *t, size_t n)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double d = (double)p[i] - (double)t[i];
        s += d * d;
    }
    return s / (double)n;
}

double nnc_mae(const float *p, const float *t, size_t n)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++)
        s += fabs((double)p[i] - (double)t[i]);
    return s / (double)n;
}

double nnc_huber(const float *p, const float *t, size_t n, double delta)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double d = fabs((double)p[i] - (double)t[i]);
        s += d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
    }
    return s / (double)n;
}

double nnc_sigmoid_bce(const float *z, const float *t, size_t n)
{
    double s = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double zi = z[i];
        s += (zi > 0.0 ? zi : 0.0) - zi * t[i] + log1p(exp(-fabs(zi)));
    }
    return s / (double)n;
}

/* ---- Losses on rows of c classes ------------------------------------------- */

#define CCE_EPS 1e-7

static double clip_prob(double q)
{
    return q < CCE_EPS ? CCE_EPS : q > 1.0 - CCE_EPS ? 1.0 - CCE_EPS : q;
}

double nnc_cce(const float *p, const float *t, size_t rows, size_t c)
{
    double s = 0.0;
    size_t r, j;

    for (r = 0; r < rows; r++, p += c, t += c) {
        double sum = 0.0;
        for (j = 0; j < c; j++)
            sum += p[j];
        for (j = 0; j < c; j++)
            s -= t[j] * log(clip_prob(p[j] / sum));
    }
    return s / (double)rows;
}

void nnc_cce_back(float dl, const float *p, const float *t, float *dp, size_t rows, size_t c)
{
    const float k = dl / (float)rows;
    size_t r, j;

    for (r = 0; r < rows; r++, p += c, t += c, dp += c) {
        float sum = row_sum(p, c), sg = 0.0f;
        for (j = 0; j < c; j++) {
            float q = p[j] / sum;
            dp[j] = q > (float)CCE_EPS && q < 1.0f - (float)CCE_EPS ? -k * t[j] / q : 0.0f;
            sg += dp[j] * q;
        }
        for (j = 0; j < c; j++)
            dp[j] = (dp[j] - sg) / sum;
    }
}

double nnc_sparse_cce(const float *p, const float *t, size_t rows, size_t c)
{
    double s = 0.0;
    size_t r, j;

    for (r = 0; r < rows; r++, p += c) {
        int k = class_of(t[r], c);
        double sum = 0.0;
        if (k < 0) {
            s = NAN;
            continue;
        }
        for (j = 0; j < c; j++)
            sum += p[j];
        s -= log(clip_prob(p[k] / sum));
    }
    return s / (double)rows;
}

void nnc_sparse_cce_back(float dl, const float *p, const float *t, float *dp, size_t rows,
                         size_t c)
{
    const float k = dl / (float)rows;
    size_t r, j;

    for (r = 0; r < rows; r++, p += c, dp += c) {
        int tk = class_of(t[r], c);
        float sum, q, gk;
        memset(dp, 0, c * sizeof *dp);
        if (tk < 0)
            continue;
        sum = row_sum(p, c);
        q = p[tk] / sum;
        gk = q > (float)CCE_EPS && q < 1.0f - (float)CCE_EPS ? -k / q : 0.0f;
        for (j = 0; j < c; j++)
            dp[j] = -gk * q / sum;
        dp[tk] += gk / sum;
    }
}

double nnc_softmax_ce(const float *z, const float *t, size_t rows, size_t c)
{
    const NnKern *kn = kern();
    double s = 0.0;
    size_t r, j;

    for (r = 0; r < rows; r++, z += c, t += c) {
        double lse = kn->lse(z, c);
        for (j = 0; j < c; j++)
            s -= t[j] * ((double)z[j] - lse);
    }
    return s / (double)rows;
}

void nnc_softmax_ce_back(float dl, const float *z, const float *t, float *dz, size_t rows,
                         size_t c)
{
    kern()->softmax_ce_back(dl, z, t, dz, rows, c);
}

double nnc_sparse_softmax_ce(const float *z, const float *t, size_t rows, size_t c)
{
    const NnKern *kn = kern();
    double s = 0.0;
    size_t r;

    for (r = 0; r < rows; r++, z += c) {
        int k = class_of(t[r], c);
        if (k < 0) {
            s = NAN;
            continue;
        }
        s += kn->lse(z, c) - (double)z[k];
    }
    return s / (double)rows;
}

void nnc_sparse_softmax_ce_back(float dl, const float *z, const float *t, float *dz,
                                size_t rows, size_t c)
{
    kern()->sparse_softmax_ce_back(dl, z, t, dz, rows, c);
}

/* ---- Embeddings and rows ------------------------------------------------------ */

void nnc_embed(const float *w, size_t vocab, size_t d, const float *ids, size_t n, float *y)
{
    size_t i;

    for (i = 0; i < n; i++, y += d) {
        int v = class_of(ids[i], vocab);
        if (v >= 0)
            memcpy(y, w + (size_t)v * d, d * sizeof *y);
        else
            memset(y, 0, d * sizeof *y);
    }
}

void nnc_embed_back(const float *dy, const float *ids, size_t n, size_t vocab, size_t d,
                    float *dw)
{
    size_t i, j;

    memset(dw, 0, vocab * d * sizeof *dw);
    for (i = 0; i < n; i++, dy += d) {
        int v = class_of(ids[i], vocab);
        float *row = dw + (size_t)(v < 0 ? 0 : v) * d;
        for (j = 0; v >= 0 && j < d; j++)
            row[j] += dy[j];
    }
}

void nnc_concat(const float *a, size_t ca, const float *b, size_t cb, float *y, size_t rows)
{
    size_t r;

    for (r = 0; r < rows; r++) {
        memcpy(y + r * (ca + cb), a + r * ca, ca * sizeof *y);
        memcpy(y + r * (ca + cb) + ca, b + r * cb, cb * sizeof *y);
    }
}

void nnc_slice(const float *x, size_t cx, size_t start, size_t w, float *y, size_t rows)
{
    size_t r;

    for (r = 0; r < rows; r++)
        memcpy(y + r * w, x + r * cx + start, w * sizeof *y);
}
