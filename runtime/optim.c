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

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNC_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

typedef struct AdamArgs {
    float *p, *m, *v;
    const float *g;
    float b1c, b2, b2c, eps, step, ibc2; /* 1 - beta1, beta2, 1 - beta2, ..., 1 / bc2 */
} AdamArgs;

static void adam_scalar(const AdamArgs *a, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        float gi = a->g[i];
        float m = a->m[i] + a->b1c * (gi - a->m[i]);
        float v = a->b2 * a->v[i] + a->b2c * gi * gi;
        a->m[i] = m;
        a->v[i] = v;
        a->p[i] -= a->step * m / (sqrtf(v) * a->ibc2 + a->eps);
    }
}

#ifdef NNC_X86
__attribute__((target("avx512f")))
static size_t adam_avx512(const AdamArgs *a, size_t lo, size_t hi)
{
    const __m512 b1c = _mm512_set1_ps(a->b1c), b2 = _mm512_set1_ps(a->b2);
    const __m512 b2c = _mm512_set1_ps(a->b2c), eps = _mm512_set1_ps(a->eps);
    const __m512 step = _mm512_set1_ps(a->step), ibc2 = _mm512_set1_ps(a->ibc2);
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        __m512 g = _mm512_loadu_ps(a->g + i), m0 = _mm512_loadu_ps(a->m + i);
        __m512 m = _mm512_add_ps(m0, _mm512_mul_ps(b1c, _mm512_sub_ps(g, m0)));
        __m512 v = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(a->v + i)),
                                 _mm512_mul_ps(_mm512_mul_ps(b2c, g), g));
        _mm512_storeu_ps(a->m + i, m);
        _mm512_storeu_ps(a->v + i, v);
        __m512 d = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(v), ibc2), eps);
        __m512 u = _mm512_div_ps(_mm512_mul_ps(step, m), d);
        _mm512_storeu_ps(a->p + i, _mm512_sub_ps(_mm512_loadu_ps(a->p + i), u));
    }
    return i;
}

__attribute__((target("avx")))
static size_t adam_avx(const AdamArgs *a, size_t lo, size_t hi)
{
    const __m256 b1c = _mm256_set1_ps(a->b1c), b2 = _mm256_set1_ps(a->b2);
    const __m256 b2c = _mm256_set1_ps(a->b2c), eps = _mm256_set1_ps(a->eps);
    const __m256 step = _mm256_set1_ps(a->step), ibc2 = _mm256_set1_ps(a->ibc2);
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 g = _mm256_loadu_ps(a->g + i), m0 = _mm256_loadu_ps(a->m + i);
        __m256 m = _mm256_add_ps(m0, _mm256_mul_ps(b1c, _mm256_sub_ps(g, m0)));
        __m256 v = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(a->v + i)),
                                 _mm256_mul_ps(_mm256_mul_ps(b2c, g), g));
        _mm256_storeu_ps(a->m + i, m);
        _mm256_storeu_ps(a->v + i, v);
        __m256 d = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(v), ibc2), eps);
        __m256 u = _mm256_div_ps(_mm256_mul_ps(step, m), d);
        _mm256_storeu_ps(a->p + i, _mm256_sub_ps(_mm256_loadu_ps(a->p + i), u));
    }
    return i;
}
#endif

#if defined(__aarch64__)
static size_t adam_neon(const AdamArgs *a, size_t lo, size_t hi)
{
    const float32x4_t b1c = vdupq_n_f32(a->b1c), b2 = vdupq_n_f32(a->b2);
    const float32x4_t b2c = vdupq_n_f32(a->b2c), eps = vdupq_n_f32(a->eps);
    const float32x4_t step = vdupq_n_f32(a->step), ibc2 = vdupq_n_f32(a->ibc2);
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        float32x4_t g = vld1q_f32(a->g + i), m0 = vld1q_f32(a->m + i);
        float32x4_t m = vaddq_f32(m0, vmulq_f32(b1c, vsubq_f32(g, m0)));
        float32x4_t v = vaddq_f32(vmulq_f32(b2, vld1q_f32(a->v + i)),
                                  vmulq_f32(vmulq_f32(b2c, g), g));
        vst1q_f32(a->m + i, m);
        vst1q_f32(a->v + i, v);
        float32x4_t d = vaddq_f32(vmulq_f32(vsqrtq_f32(v), ibc2), eps);
        float32x4_t u = vdivq_f32(vmulq_f32(step, m), d);
        vst1q_f32(a->p + i, vsubq_f32(vld1q_f32(a->p + i), u));
    }
    return i;
}
#endif

/* The widest path the CPU has (NNC_ISA=scalar forces the plain loop). */
static void adam_range(const AdamArgs *a, size_t lo, size_t hi)
{
    const char *isa = nnc_isa();
    size_t i = lo;
#ifdef NNC_X86
    if (!strcmp(isa, "avx512"))
        i = adam_avx512(a, lo, hi);
    else if (!strcmp(isa, "avx2"))
        i = adam_avx(a, lo, hi);
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon"))
        i = adam_neon(a, lo, hi);
#else
    (void)isa;
#endif
    adam_scalar(a, i, hi);
}

/* Splits large updates between threads in fixed 64-byte-aligned chunks. */
static void adam_all(const AdamArgs *a, size_t n)
{
#ifdef _OPENMP
    if (n >= (1u << 16) && nnc_num_threads() > 1) {
        long chunks = (long)((n + 4095) / 4096);
#pragma omp parallel for schedule(static) num_threads(nnc_num_threads())
        for (long c = 0; c < chunks; c++) {
            size_t lo = (size_t)c * 4096, hi = lo + 4096 < n ? lo + 4096 : n;
            adam_range(a, lo, hi);
        }
        return;
    }
#endif
    adam_range(a, 0, n);
}

void nnc_adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                     float b2, float b2c, float eps, float step, float bc2)
{
    /* one division less per element: the optimizer's loop is bound by the
     * divider, and 1 / bc2 is computed once */
    AdamArgs a = {p, m, v, g, b1c, b2, b2c, eps, step, 1.0f / bc2};
    adam_all(&a, n);
}

void nnc_adam_update_ex(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                        float b2, float b2c, float eps, float step, float bc2, float wd,
                        float decay)
{
    float buf[1024];
    if (decay != 1.0f) /* AdamW: p *= 1 - lr wd, before the Adam step */
        for (size_t i = 0; i < n; i++)
            p[i] *= decay;
    if (wd == 0.0f) {
        nnc_adam_update(p, g, m, v, n, b1c, b2, b2c, eps, step, bc2);
        return;
    }
    /* L2 form: g + wd p, in chunks so Adam's kernel does the rest */
    for (size_t lo = 0; lo < n; lo += 1024) {
        size_t k = n - lo < 1024 ? n - lo : 1024;
        for (size_t i = 0; i < k; i++)
            buf[i] = g[lo + i] + wd * p[lo + i];
        nnc_adam_update(p + lo, buf, m + lo, v + lo, k, b1c, b2, b2c, eps, step, bc2);
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

#ifdef NNC_X86
__attribute__((target("avx512f")))
static size_t sgd_avx512(const SgdArgs *a, size_t lo, size_t hi)
{
    const __m512 lr = _mm512_set1_ps(a->lr), mom = _mm512_set1_ps(a->momentum);
    const __m512 wd = _mm512_set1_ps(a->wd);
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        __m512 p = _mm512_loadu_ps(a->p + i), d = _mm512_loadu_ps(a->g + i);
        if (a->wd != 0.0f)
            d = _mm512_add_ps(d, _mm512_mul_ps(wd, p));
        if (a->vel) {
            __m512 b = _mm512_add_ps(_mm512_mul_ps(mom, _mm512_loadu_ps(a->vel + i)), d);
            _mm512_storeu_ps(a->vel + i, b);
            d = a->nesterov ? _mm512_add_ps(d, _mm512_mul_ps(mom, b)) : b;
        }
        _mm512_storeu_ps(a->p + i, _mm512_sub_ps(p, _mm512_mul_ps(lr, d)));
    }
    return i;
}

__attribute__((target("avx")))
static size_t sgd_avx(const SgdArgs *a, size_t lo, size_t hi)
{
    const __m256 lr = _mm256_set1_ps(a->lr), mom = _mm256_set1_ps(a->momentum);
    const __m256 wd = _mm256_set1_ps(a->wd);
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 p = _mm256_loadu_ps(a->p + i), d = _mm256_loadu_ps(a->g + i);
        if (a->wd != 0.0f)
            d = _mm256_add_ps(d, _mm256_mul_ps(wd, p));
        if (a->vel) {
            __m256 b = _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(a->vel + i)), d);
            _mm256_storeu_ps(a->vel + i, b);
            d = a->nesterov ? _mm256_add_ps(d, _mm256_mul_ps(mom, b)) : b;
        }
        _mm256_storeu_ps(a->p + i, _mm256_sub_ps(p, _mm256_mul_ps(lr, d)));
    }
    return i;
}
#endif

#if defined(__aarch64__)
static size_t sgd_neon(const SgdArgs *a, size_t lo, size_t hi)
{
    const float32x4_t lr = vdupq_n_f32(a->lr), mom = vdupq_n_f32(a->momentum);
    const float32x4_t wd = vdupq_n_f32(a->wd);
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        float32x4_t p = vld1q_f32(a->p + i), d = vld1q_f32(a->g + i);
        if (a->wd != 0.0f)
            d = vaddq_f32(d, vmulq_f32(wd, p));
        if (a->vel) {
            float32x4_t b = vaddq_f32(vmulq_f32(mom, vld1q_f32(a->vel + i)), d);
            vst1q_f32(a->vel + i, b);
            d = a->nesterov ? vaddq_f32(d, vmulq_f32(mom, b)) : b;
        }
        vst1q_f32(a->p + i, vsubq_f32(p, vmulq_f32(lr, d)));
    }
    return i;
}
#endif

static void sgd_range(const void *args, size_t lo, size_t hi)
{
    const SgdArgs *a = args;
    const char *isa = nnc_isa();
    size_t i = lo;
#ifdef NNC_X86
    if (!strcmp(isa, "avx512"))
        i = sgd_avx512(a, lo, hi);
    else if (!strcmp(isa, "avx2"))
        i = sgd_avx(a, lo, hi);
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon"))
        i = sgd_neon(a, lo, hi);
#else
    (void)isa;
#endif
    sgd_scalar(a, i, hi);
}

/* range() over [0, n), split between threads in fixed chunks for large n
 * (elementwise, so any split gives the same bits). */
static void run_ranges(void (*range)(const void *, size_t, size_t), const void *a, size_t n)
{
#ifdef _OPENMP
    if (n >= (1u << 16) && nnc_num_threads() > 1) {
        long chunks = (long)((n + 4095) / 4096);
#pragma omp parallel for schedule(static) num_threads(nnc_num_threads())
        for (long c = 0; c < chunks; c++) {
            size_t lo = (size_t)c * 4096, hi = lo + 4096 < n ? lo + 4096 : n;
            range(a, lo, hi);
        }
        return;
    }
#endif
    range(a, 0, n);
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

#ifdef NNC_X86
__attribute__((target("avx512f")))
static size_t rms_avx512(const RmsArgs *a, size_t lo, size_t hi)
{
    const __m512 rho = _mm512_set1_ps(a->rho), rhoc = _mm512_set1_ps(a->rhoc);
    const __m512 mom = _mm512_set1_ps(a->momentum), eps = _mm512_set1_ps(a->eps);
    const __m512 lr = _mm512_set1_ps(a->lr);
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        __m512 g = _mm512_loadu_ps(a->g + i), d, avg;
        __m512 s = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(a->sq + i), rho),
                                 _mm512_mul_ps(_mm512_mul_ps(rhoc, g), g));
        _mm512_storeu_ps(a->sq + i, s);
        if (a->gavg) {
            __m512 ga0 = _mm512_loadu_ps(a->gavg + i);
            __m512 ga = _mm512_add_ps(ga0, _mm512_mul_ps(rhoc, _mm512_sub_ps(g, ga0)));
            _mm512_storeu_ps(a->gavg + i, ga);
            s = _mm512_sub_ps(s, _mm512_mul_ps(ga, ga));
        }
        avg = _mm512_add_ps(_mm512_sqrt_ps(s), eps);
        d = _mm512_div_ps(g, avg);
        if (a->buf) {
            d = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(a->buf + i), mom), d);
            _mm512_storeu_ps(a->buf + i, d);
        }
        _mm512_storeu_ps(a->p + i, _mm512_sub_ps(_mm512_loadu_ps(a->p + i),
                                                 _mm512_mul_ps(lr, d)));
    }
    return i;
}

__attribute__((target("avx")))
static size_t rms_avx(const RmsArgs *a, size_t lo, size_t hi)
{
    const __m256 rho = _mm256_set1_ps(a->rho), rhoc = _mm256_set1_ps(a->rhoc);
    const __m256 mom = _mm256_set1_ps(a->momentum), eps = _mm256_set1_ps(a->eps);
    const __m256 lr = _mm256_set1_ps(a->lr);
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 g = _mm256_loadu_ps(a->g + i), d, avg;
        __m256 s = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a->sq + i), rho),
                                 _mm256_mul_ps(_mm256_mul_ps(rhoc, g), g));
        _mm256_storeu_ps(a->sq + i, s);
        if (a->gavg) {
            __m256 ga0 = _mm256_loadu_ps(a->gavg + i);
            __m256 ga = _mm256_add_ps(ga0, _mm256_mul_ps(rhoc, _mm256_sub_ps(g, ga0)));
            _mm256_storeu_ps(a->gavg + i, ga);
            s = _mm256_sub_ps(s, _mm256_mul_ps(ga, ga));
        }
        avg = _mm256_add_ps(_mm256_sqrt_ps(s), eps);
        d = _mm256_div_ps(g, avg);
        if (a->buf) {
            d = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a->buf + i), mom), d);
            _mm256_storeu_ps(a->buf + i, d);
        }
        _mm256_storeu_ps(a->p + i, _mm256_sub_ps(_mm256_loadu_ps(a->p + i),
                                                 _mm256_mul_ps(lr, d)));
    }
    return i;
}

__attribute__((target("avx512f")))
static size_t adagrad_avx512(const AdagradArgs *a, size_t lo, size_t hi)
{
    const __m512 lr = _mm512_set1_ps(a->lr), eps = _mm512_set1_ps(a->eps);
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        __m512 g = _mm512_loadu_ps(a->g + i);
        __m512 s = _mm512_add_ps(_mm512_loadu_ps(a->sum + i), _mm512_mul_ps(g, g));
        _mm512_storeu_ps(a->sum + i, s);
        __m512 d = _mm512_div_ps(g, _mm512_add_ps(_mm512_sqrt_ps(s), eps));
        _mm512_storeu_ps(a->p + i, _mm512_sub_ps(_mm512_loadu_ps(a->p + i),
                                                 _mm512_mul_ps(lr, d)));
    }
    return i;
}

__attribute__((target("avx")))
static size_t adagrad_avx(const AdagradArgs *a, size_t lo, size_t hi)
{
    const __m256 lr = _mm256_set1_ps(a->lr), eps = _mm256_set1_ps(a->eps);
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 g = _mm256_loadu_ps(a->g + i);
        __m256 s = _mm256_add_ps(_mm256_loadu_ps(a->sum + i), _mm256_mul_ps(g, g));
        _mm256_storeu_ps(a->sum + i, s);
        __m256 d = _mm256_div_ps(g, _mm256_add_ps(_mm256_sqrt_ps(s), eps));
        _mm256_storeu_ps(a->p + i, _mm256_sub_ps(_mm256_loadu_ps(a->p + i),
                                                 _mm256_mul_ps(lr, d)));
    }
    return i;
}
#endif

#if defined(__aarch64__)
static size_t rms_neon(const RmsArgs *a, size_t lo, size_t hi)
{
    const float32x4_t rho = vdupq_n_f32(a->rho), rhoc = vdupq_n_f32(a->rhoc);
    const float32x4_t mom = vdupq_n_f32(a->momentum), eps = vdupq_n_f32(a->eps);
    const float32x4_t lr = vdupq_n_f32(a->lr);
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        float32x4_t g = vld1q_f32(a->g + i), d, avg;
        float32x4_t s = vaddq_f32(vmulq_f32(vld1q_f32(a->sq + i), rho),
                                  vmulq_f32(vmulq_f32(rhoc, g), g));
        vst1q_f32(a->sq + i, s);
        if (a->gavg) {
            float32x4_t ga0 = vld1q_f32(a->gavg + i);
            float32x4_t ga = vaddq_f32(ga0, vmulq_f32(rhoc, vsubq_f32(g, ga0)));
            vst1q_f32(a->gavg + i, ga);
            s = vsubq_f32(s, vmulq_f32(ga, ga));
        }
        avg = vaddq_f32(vsqrtq_f32(s), eps);
        d = vdivq_f32(g, avg);
        if (a->buf) {
            d = vaddq_f32(vmulq_f32(vld1q_f32(a->buf + i), mom), d);
            vst1q_f32(a->buf + i, d);
        }
        vst1q_f32(a->p + i, vsubq_f32(vld1q_f32(a->p + i), vmulq_f32(lr, d)));
    }
    return i;
}

static size_t adagrad_neon(const AdagradArgs *a, size_t lo, size_t hi)
{
    const float32x4_t lr = vdupq_n_f32(a->lr), eps = vdupq_n_f32(a->eps);
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        float32x4_t g = vld1q_f32(a->g + i);
        float32x4_t s = vaddq_f32(vld1q_f32(a->sum + i), vmulq_f32(g, g));
        vst1q_f32(a->sum + i, s);
        float32x4_t d = vdivq_f32(g, vaddq_f32(vsqrtq_f32(s), eps));
        vst1q_f32(a->p + i, vsubq_f32(vld1q_f32(a->p + i), vmulq_f32(lr, d)));
    }
    return i;
}
#endif

static void rms_range(const void *args, size_t lo, size_t hi)
{
    const RmsArgs *a = args;
    const char *isa = nnc_isa();
    size_t i = lo;
#ifdef NNC_X86
    if (!strcmp(isa, "avx512"))
        i = rms_avx512(a, lo, hi);
    else if (!strcmp(isa, "avx2"))
        i = rms_avx(a, lo, hi);
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon"))
        i = rms_neon(a, lo, hi);
#else
    (void)isa;
#endif
    rms_scalar(a, i, hi);
}

static void adagrad_range(const void *args, size_t lo, size_t hi)
{
    const AdagradArgs *a = args;
    const char *isa = nnc_isa();
    size_t i = lo;
#ifdef NNC_X86
    if (!strcmp(isa, "avx512"))
        i = adagrad_avx512(a, lo, hi);
    else if (!strcmp(isa, "avx2"))
        i = adagrad_avx(a, lo, hi);
#elif defined(__aarch64__)
    if (!strcmp(isa, "neon"))
        i = adagrad_neon(a, lo, hi);
#else
    (void)isa;
#endif
    adagrad_scalar(a, i, hi);
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
    /* four partial sums in a fixed order: deterministic, and a shorter
     * dependency chain than one */
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++)
            s[k] += (double)x[i + (size_t)k] * (double)x[i + (size_t)k];
    for (; i < n; i++)
        s[0] += (double)x[i] * (double)x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void nnc_scale(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

float nnc_clip_coef(double sumsq, double max_norm)
{
    /* torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6), at most 1 */
    double c = max_norm / (sqrt(sumsq) + 1e-6);
    return (float)(c < 1.0 ? c : 1.0);
}
