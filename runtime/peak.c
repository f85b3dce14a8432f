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
 * the compiler merges the identical chains into one.  Leaves their sum,
 * added as a tree, in s.  SET broadcasts a float, ADD adds two vectors. */
#define CHAIN12(F, T, SET, ADD)                                            \
    const T b = SET(0.999999f), c = SET(1e-6f);                           \
    T a0 = SET(1.0f), a1 = SET(1.001f), a2 = SET(1.002f);                 \
    T a3 = SET(1.003f), a4 = SET(1.004f), a5 = SET(1.005f);               \
    T a6 = SET(1.006f), a7 = SET(1.007f), a8 = SET(1.008f);               \
    T a9 = SET(1.009f), a10 = SET(1.01f), a11 = SET(1.011f);              \
    for (long i = 0; i < iters; i++) {                                    \
        a0 = F(a0, b, c); a1 = F(a1, b, c); a2 = F(a2, b, c);             \
        a3 = F(a3, b, c); a4 = F(a4, b, c); a5 = F(a5, b, c);             \
        a6 = F(a6, b, c); a7 = F(a7, b, c); a8 = F(a8, b, c);             \
        a9 = F(a9, b, c); a10 = F(a10, b, c); a11 = F(a11, b, c);         \
    }                                                                     \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))); \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)))


#ifdef NNC_X86
__attribute__((target("avx512f")))
static float fma512(long iters)
{
    CHAIN12(_mm512_fmadd_ps, __m512, _mm512_set1_ps, _mm512_add_ps);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma")))
static float fma256(long iters)
{
    CHAIN12(_mm256_fmadd_ps, __m256, _mm256_set1_ps, _mm256_add_ps);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

#if defined(__aarch64__)
static float fma128(long iters)
{
#define NNC_VFMA(a, b, c) vfmaq_f32(c, a, b)
    CHAIN12(NNC_VFMA, float32x4_t, vdupq_n_f32, vaddq_f32);
#undef NNC_VFMA
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
