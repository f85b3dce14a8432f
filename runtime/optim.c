/*
 * optim.c - the optimizer updates that generated training steps call:
 * one pass over the parameter, gradient and state regions.
 *
 * The maths is torch.optim's (see src/ops/update.c). Each element is
 * updated with the same sequence of IEEE operations in every version
 * (mul, add, sub, div and sqrt are correctly rounded, and nothing is
 * contracted into an FMA), so the AVX-512, AVX2, NEON and scalar paths
 * give bit-identical results, and so does any number of threads. A
 * plain C loop would not vectorize: sqrtf must set errno, and we do not
 * compile with -ffast-math or -fno-math-errno.
 *
 * SGD, RMSprop and Adagrad follow the same scheme. The gradient helpers
 * (global norm, scaling) are plain loops on one thread. Adam's L2
 * weight decay (g + wd p) goes through a small stack buffer, so the
 * vectorized Adam kernel does the rest.
 */
#include <math.h>
#include <string.h>

#include "nncrt.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNC_X86 1
#endif
#if defined(NNC_AVX512_EMULATE)   /* a test build (tests/runtime/avx512_emu.sh) */
#include "avx512_emu.h"
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* decay and wd are adam_ex's (AdamW's factor, 1 if none; Adam's L2
 * term, 0 if none), applied in the same loop as the update: a pass of
 * their own over p doubled AdamW's time (1.32 against 0.66 ns a
 * parameter on a Zen 3 core), the L2 form's tripled it. */
typedef struct AdamArgs {
    float *p, *m, *v;
    const float *g;
    float b1c, b2, b2c, eps, step, ibc2; /* 1 - beta1, beta2, 1 - beta2, ..., 1 / bc2 */
    float decay, wd;
} AdamArgs;

static void adam_scalar(const AdamArgs *a, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float pi = a->decay != 1.0f ? a->p[i] * a->decay : a->p[i];
        float gi = a->wd != 0.0f ? a->g[i] + a->wd * pi : a->g[i];
        float m = a->m[i] + a->b1c * (gi - a->m[i]);
        float v = a->b2 * a->v[i] + a->b2c * gi * gi;
        a->m[i] = m;
        a->v[i] = v;
        a->p[i] = pi - a->step * m / (sqrtf(v) * a->ibc2 + a->eps);
    }
}

/* ---- SGD -----------------------------------------------------------------
 *
 * d = g (+ wd p when wd != 0); with a velocity b = momentum b + d and d =
 * b, or d + momentum b for Nesterov; p -= lr d. No division or square
 * root, but GCC -O2 does not vectorize loops of unknown length, so this
 * has SIMD versions like the others. */

typedef struct SgdArgs {
    float *p, *vel;             /* vel: NULL without momentum */
    const float *g;
    float lr, momentum, wd;
    int nesterov;
} SgdArgs;

static void sgd_scalar(const SgdArgs *a, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float d = a->wd != 0.0f ? a->g[i] + a->wd * a->p[i] : a->g[i];
        if (a->vel) {
            float b = a->momentum * a->vel[i] + d;
            a->vel[i] = b;
            d = a->nesterov ? d + a->momentum * b : b;
        }
        a->p[i] -= a->lr * d;
    }
}

/* ---- RMSprop and Adagrad -------------------------------------------------
 *
 * Same scheme as Adam: a scalar loop that is the reference, SIMD versions
 * doing the same IEEE operations in the same order, a scalar tail, and
 * fixed 4096-element chunks between threads for large n. */

typedef struct RmsArgs {
    float *p, *sq, *buf, *gavg; /* buf, gavg: NULL without momentum, centering */
    const float *g;
    float lr, rho, rhoc, momentum, eps; /* rhoc = 1 - rho */
} RmsArgs;

typedef struct AdagradArgs {
    float *p, *sum;
    const float *g;
    float lr, eps;
} AdagradArgs;

static void rms_scalar(const RmsArgs *a, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float gi = a->g[i];
        float s = a->sq[i] * a->rho + a->rhoc * gi * gi;
        float avg;
        a->sq[i] = s;
        if (a->gavg) {
            float ga = a->gavg[i] + a->rhoc * (gi - a->gavg[i]);
            a->gavg[i] = ga;
            avg = sqrtf(s - ga * ga) + a->eps;
        } else {
            avg = sqrtf(s) + a->eps;
        }
        if (a->buf) {
            float b = a->buf[i] * a->momentum + gi / avg;
            a->buf[i] = b;
            a->p[i] -= a->lr * b;
        } else {
            a->p[i] -= a->lr * (gi / avg);
        }
    }
}

static void adagrad_scalar(const AdagradArgs *a, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float gi = a->g[i];
        float s = a->sum[i] + gi * gi;
        a->sum[i] = s;
        a->p[i] -= a->lr * (gi / (sqrtf(s) + a->eps));
    }
}

/* The SIMD versions of the kernels above, written once in optim_vec.h
 * and compiled for each ISA: NAME_avx512, NAME_avx (the AVX2 path; the
 * kernels need only AVX), NAME_neon. Each does the whole vectors of
 * [lo, hi) and returns where the scalar tail starts. */
#ifdef NNC_X86
#define OPTIM_VEC_AVX512
#include "optim_vec.h"
#define OPTIM_VEC_AVX
#include "optim_vec.h"
#elif defined(__aarch64__)
#define OPTIM_VEC_NEON
#include "optim_vec.h"
#endif

/* NAME_range: the widest path the CPU has (NNC_ISA=scalar forces the
 * plain loop), then NAME_scalar for the tail. */
#ifdef NNC_X86
#define VEC_PART(name, isa, a, lo, hi)                                                     \
    (!strcmp(isa, "avx512") ? name##_avx512(a, lo, hi)                                     \
     : !strcmp(isa, "avx2") ? name##_avx(a, lo, hi)                                        \
                            : (lo))
#elif defined(__aarch64__)
#define VEC_PART(name, isa, a, lo, hi) (!strcmp(isa, "neon") ? name##_neon(a, lo, hi) : (lo))
#else
#define VEC_PART(name, isa, a, lo, hi) ((void)(isa), (lo))
#endif
#define DEFINE_RANGE(name, Args)                                                           \
    static void name##_range(const void *args, size_t lo, size_t hi)                      \
    {                                                                                      \
        const Args *a = args;                                                              \
        const char *isa = nnc_isa();                                                       \
        name##_scalar(a, VEC_PART(name, isa, a, lo, hi), hi);                              \
    }

DEFINE_RANGE(adam, AdamArgs)
DEFINE_RANGE(sgd, SgdArgs)
DEFINE_RANGE(rms, RmsArgs)
DEFINE_RANGE(adagrad, AdagradArgs)

/* range() over [0, n), on the thread pool in chunks of 4096 elements for
 * large n (elementwise, so any split gives the same bits). */
typedef struct Ranges {
    void (*range)(const void *, size_t, size_t);
    const void *a;
    size_t n;
} Ranges;

static void ranges_part(void *arg, size_t lo, size_t hi)
{
    const Ranges *r = arg;
    r->range(r->a, lo, hi);
}

static void ranges_whole(void *arg)
{
    const Ranges *r = arg;
    r->range(r->a, 0, r->n);
}

static void run_ranges(void (*range)(const void *, size_t, size_t), const void *a, size_t n)
{
    if (n >= (1u << 16) && nnc_num_threads() > 1) {
        Ranges r = {range, a, n};
        uint64_t id = 0;
        memcpy(&id, &range, sizeof range < sizeof id ? sizeof range : sizeof id);
        nnc_parallel_site(nnc_site_key(id, n, 0, 0), n, 4096, ranges_part, &r, ranges_whole, &r);
        return;
    }
    range(a, 0, n);
}

void nnc_adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                     float b2, float b2c, float eps, float step, float bc2)
{
    /* one division less per element: the optimizer's loop is bound by the
     * divider, and 1 / bc2 is computed once */
    AdamArgs a = {p, m, v, g, b1c, b2, b2c, eps, step, 1.0f / bc2, 1.0f, 0.0f};
    run_ranges(adam_range, &a, n);
}

void nnc_adam_update_ex(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                        float b2, float b2c, float eps, float step, float bc2, float wd,
                        float decay)
{
    AdamArgs a = {p, m, v, g, b1c, b2, b2c, eps, step, 1.0f / bc2, decay, wd};
    run_ranges(adam_range, &a, n);
}

void nnc_sgd_update(float *p, const float *g, float *vel, size_t n, float lr, float momentum)
{
    SgdArgs a = {p, vel, g, lr, momentum, 0.0f, 0};
    run_ranges(sgd_range, &a, n);
}

void nnc_sgd_update_ex(float *p, const float *g, float *vel, size_t n, float lr,
                       float momentum, float wd, int nesterov)
{
    SgdArgs a = {p, vel, g, lr, momentum, wd, nesterov};
    run_ranges(sgd_range, &a, n);
}

void nnc_rmsprop_update(float *p, const float *g, float *sq, float *buf, float *gavg,
                        size_t n, float lr, float rho, float momentum, float eps)
{
    RmsArgs a = {p, sq, buf, gavg, g, lr, rho, 1.0f - rho, momentum, eps};
    run_ranges(rms_range, &a, n);
}

void nnc_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps)
{
    AdagradArgs a = {p, sum, g, lr, eps};
    run_ranges(adagrad_range, &a, n);
}

double nnc_sumsq(const float *x, size_t n)
{
    /* eight partial sums in registers, added in a fixed order:
     * deterministic, and short dependency chains (four had theirs through
     * memory, a store and a load per element: 292 -> 160-185 us for the
     * GPT example's 0.82 M gradients, on Zen 3) */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        const float *p = x + i;
        s0 += (double)p[0] * (double)p[0];
        s1 += (double)p[1] * (double)p[1];
        s2 += (double)p[2] * (double)p[2];
        s3 += (double)p[3] * (double)p[3];
        s4 += (double)p[4] * (double)p[4];
        s5 += (double)p[5] * (double)p[5];
        s6 += (double)p[6] * (double)p[6];
        s7 += (double)p[7] * (double)p[7];
    }
    for (; i < n; i++)
        s0 += (double)x[i] * (double)x[i];
    return ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7));
}

void nnc_scale(float *x, size_t n, float s)
{
    size_t i = 0;
    int k;

    /* clipping scales every gradient, by 1 whenever the norm is below
     * the limit: x * 1 is x, so nothing is written */
    if (s == 1.0f)
        return;
    /* blocks of 8, which gcc -O2 vectorizes (a loop of unknown length it
     * left scalar: 545 -> about 100 us for 0.82 M floats) */
    for (; i + 8 <= n; i += 8)
        for (k = 0; k < 8; k++)
            x[i + (size_t)k] *= s;
    for (; i < n; i++)
        x[i] *= s;
}

float nnc_clip_coef(double sumsq, double max_norm)
{
    /* torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6), at most 1 */
    double c = max_norm / (sqrt(sumsq) + 1e-6);
    return (float)(c < 1.0 ? c : 1.0);
}
