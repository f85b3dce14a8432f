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

#ifdef NNC_X86
__attribute__((target("avx512f")))
static float fma512(long iters)
{
    __m512 acc[CHAINS];
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], b, c);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm512_add_ps(s, acc[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma")))
static float fma256(long iters)
{
    __m256 acc[CHAINS];
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], b, c);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = _mm256_add_ps(s, acc[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

#if defined(__aarch64__)
static float fma128(long iters)
{
    float32x4_t acc[CHAINS];
    const float32x4_t b = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-6f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = vdupq_n_f32((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = vfmaq_f32(c, acc[k], b);
    float32x4_t s = acc[0];
    for (int k = 1; k < CHAINS; k++)
        s = vaddq_f32(s, acc[k]);
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
