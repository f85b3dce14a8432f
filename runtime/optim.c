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
 * The other optimizers (SGD with Nesterov and weight decay, RMSprop,
 * Adagrad) and the gradient helpers (global norm, scaling) are plain C
 * loops, one thread: the same bits on every ISA and thread count. Adam's
 * L2 weight decay (g + wd p) goes through a small stack buffer, so the
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

void nnc_sgd_update(float *p, const float *g, float *vel, size_t n, float lr, float momentum)
{
    /* no division or square root: this loop vectorizes as plain C */
    if (vel) {
        for (size_t i = 0; i < n; i++) {
            float v = momentum * vel[i] + g[i];
            vel[i] = v;
            p[i] -= lr * v;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * g[i];
    }
}

/* GCC vectorizes sqrtf only when it need not set errno; sqrt is
 * correctly rounded either way, so the bits do not change. */
#if defined(__GNUC__) && !defined(__clang__)
#define NNC_NOERRNO __attribute__((optimize("no-math-errno")))
#else
#define NNC_NOERRNO
#endif

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

void nnc_sgd_update_ex(float *p, const float *g, float *vel, size_t n, float lr,
                       float momentum, float wd, int nesterov)
{
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        if (vel) {
            float b = momentum * vel[i] + d;
            vel[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] -= lr * d;
    }
}

NNC_NOERRNO
void nnc_rmsprop_update(float *p, const float *g, float *sq, float *buf, float *gavg,
                        size_t n, float lr, float rho, float momentum, float eps)
{
    const float rhoc = 1.0f - rho;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float s = sq[i] * rho + rhoc * gi * gi;
        float avg;
        sq[i] = s;
        if (gavg) {
            float ga = gavg[i] + rhoc * (gi - gavg[i]);
            gavg[i] = ga;
            avg = sqrtf(s - ga * ga) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (buf) {
            float b = buf[i] * momentum + gi / avg;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * (gi / avg);
        }
    }
}

NNC_NOERRNO
void nnc_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] -= lr * (gi / (sqrtf(s) + eps));
    }
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
