/*
 * peak.c - the machine's measured single-core floating-point peak, the
 * yardstick of `nnc --emit=bench` ("percent of peak").
 *
 * It times a loop of independent fused multiply-adds at the widest
 * vector width the CPU has (AVX-512, AVX2+FMA, NEON, or scalar), enough
 * independent chains to cover the FMA latency, for about 20 ms, once per
 * process. x86 kernels use target attributes, so the file needs no
 * special compiler flags.
 */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "nncrt.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNC_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHAINS 12

/* Twelve independent accumulators, spelled out so that they live in
 * registers whatever the optimization level; distinct start values, or
 * the compiler merges the identical chains into one. */
#define CHAIN12(F, T)                                                      \
    T a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3);            \
    T a4 = INIT(4), a5 = INIT(5), a6 = INIT(6), a7 = INIT(7);            \
    T a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11);        \
    for (long i = 0; i < iters; i++) {                                    \
        a0 = F(a0, b, c); a1 = F(a1, b, c); a2 = F(a2, b, c);             \
        a3 = F(a3, b, c); a4 = F(a4, b, c); a5 = F(a5, b, c);             \
        a6 = F(a6, b, c); a7 = F(a7, b, c); a8 = F(a8, b, c);             \
        a9 = F(a9, b, c); a10 = F(a10, b, c); a11 = F(a11, b, c);         \
    }


#ifdef NNC_X86
__attribute__((target("avx512f")))
static float fma512(long iters)
{
#define INIT(k) _mm512_set1_ps(1.0f + 0.001f * (k))
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    CHAIN12(_mm512_fmadd_ps, __m512)
#undef INIT
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma")))
static float fma256(long iters)
{
#define INIT(k) _mm256_set1_ps(1.0f + 0.001f * (k))
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    CHAIN12(_mm256_fmadd_ps, __m256)
#undef INIT
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

#if defined(__aarch64__)
static float fma128(long iters)
{
#define INIT(k) vdupq_n_f32(1.0f + 0.001f * (k))
    const float32x4_t b = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-6f);
#define NNC_VFMA(a, b, c) vfmaq_f32(c, a, b)
    CHAIN12(NNC_VFMA, float32x4_t)
#undef NNC_VFMA
#undef INIT
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)),
                              vaddq_f32(vaddq_f32(a4, a5), vaddq_f32(a6, a7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(a8, a9), vaddq_f32(a10, a11)));
    return vaddvq_f32(s);
}
#endif

static float fma1(long iters)
{
    float acc[CHAINS];
    for (int k = 0; k < CHAINS; k++)
        acc[k] = (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = acc[k] * 0.999999f + 1e-6f;
    float s = 0;
    for (int k = 0; k < CHAINS; k++)
        s += acc[k];
    return s;
}

double nnc_peak_gflops(void)
{
    static double peak;
    static volatile float sink;
    if (peak > 0)
        return peak;
    int lanes = 1;
    float (*fn)(long) = fma1;
#ifdef NNC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fn = fma512;
        lanes = 16;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fn = fma256;
        lanes = 8;
    }
#elif defined(__aarch64__)
    fn = fma128;
    lanes = 4;
#endif
    long iters = 1000;
    double t = 0;
    for (;;) {
        double t0 = now();
        sink = fn(iters);
        t = now() - t0;
        if (t > 0.02 || iters > (1L << 30))
            break;
        iters *= 4;
    }
    (void)sink; /* the result is kept only so the loop is not removed */
    peak = 2.0 * lanes * CHAINS * (double)iters / t / 1e9;
    return peak;
}
