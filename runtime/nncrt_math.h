/*
 * nncrt_math.h - float exp, log, tanh, sigmoid, log1p and softplus that
 * compilers can vectorize, for the loops nnc emits and for the runtime.
 *
 * gcc and clang never vectorize a call to expf or tanhf without
 * -ffast-math, so a fused kernel such as
 *
 *     for (i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
 *
 * runs one libm call per element. The functions below are static inline,
 * use only float arithmetic, integer bit manipulation (through memcpy,
 * which compiles to a register move) and bit-mask selects: no calls, no
 * tables, no branches. In such a loop they vectorize for SSE2, AVX2 and
 * AVX-512 with clang -O2/-O3 and gcc -O3 (or -O2 -fvect-cost-model=cheap;
 * see below for plain gcc -O2), and they are still correct, only slower,
 * when not vectorized or at -O0. Each handles the whole float range:
 * subnormals, +-0, +-inf and NaN (a NaN input gives a NaN result). They
 * do not set errno and do not try to raise the right FP exceptions.
 *
 * The method is the classic one (Cody-Waite range reduction plus Cephes'
 * minimax polynomials): exp(x) = 2^n * exp(r) with |r| <= ln2/2, the 2^n
 * applied as two exact power-of-two factors so that subnormal results
 * round once; log(x) = e*ln2 + log(m) with m in [sqrt(1/2), sqrt(2)).
 *
 * Maximum error against double-precision libm, in units in the last
 * place of the float result (the ulp of a subnormal is 2^-149; 1 ulp is a
 * relative error of 6e-8 to 1.2e-7), measured over all 2^32 floats with
 * gcc -O2 (SSE2, no FMA); the bound in brackets is what
 * tests/runtime/test_vmath.c asserts. With FMA contraction (clang, or
 * gcc -std=gnu99 with -mfma) a result moves by at most 1 ulp; the maxima
 * stay about the same (exp 1.01 and log 0.83 over all floats with clang
 * -march=native on this AVX-512 machine).
 *
 *     nnc_expf      0.97 ulp [1.5]  inf from 88.72284, 0 up to -103.97208
 *     nnc_logf      0.83 ulp [2]    log(+-0) = -inf, log(x < 0) = NaN
 *     nnc_tanhf     1.33 ulp [2]    odd; exactly +-1 for |x| >= 9.0109
 *     nnc_sigmoidf  2.40 ulp [3]    in [0, 1]; 1 for x >= 16.636, a
 *                                   subnormal tail reaching 0 at -103.97208
 *     nnc_log1pf    1.44 ulp [2]    log1p(-1) = -inf, log1p(x < -1) = NaN
 *     nnc_softplusf 1.99 ulp [3]    x for x >= 14.557, 0 at x <= -103.97208
 *     nnc_erff      3.34 ulp [4]    sampled as test_vmath does, not over all
 *                                   floats; Taylor below |x| = 1, then
 *                                   Abramowitz-Stegun 7.1.26
 *
 * Speed (1M floats, ns per element, on an AVX-512 AMD EPYC):
 * y = nnc_sigmoidf(x) takes 0.67 (gcc -O3 -march=x86-64-v3), 0.46 (clang
 * -O2 -march=x86-64-v3) and 0.23 (clang with AVX-512) against 1.5-1.9
 * for 1/(1 + expf(-x)) with glibc; nnc_tanhf 0.3-0.9 against 8.7 for
 * tanhf. Not vectorized they are slower than glibc's table-driven expf
 * and logf (5-8 ns against 1.4-1.9). gcc 12 at plain -O2 vectorizes only
 * loops that need no runtime alias check and whose trip count is a known
 * multiple of the vector width, so generated loops should use restrict
 * pointers and such counts (or runs of 16 plus a tail, as runtime/vmath.c
 * does).
 *
 * nnc_softplusf is the stable form max(x, 0) + log1p(exp(-|x|)), which the
 * logits form of binary cross-entropy needs:
 * bce(z, y) = softplus(z) - y*z.
 */
#ifndef NNCRT_MATH_H
#define NNCRT_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Always inlined where the compiler allows: a loop vectorizes only with
 * the body in it, and gcc's -O2 heuristics keep an out-of-line copy of a
 * function this size once a file calls it from several places (the
 * eight GELU loops of a 4-block GPT then ran one call per element, 18 ns
 * each, 10x the inlined loop). */
#if defined(__GNUC__) || defined(__clang__)
#define NNC_MATH_INLINE static inline __attribute__((always_inline))
#else
#define NNC_MATH_INLINE static inline
#endif

/* ---- Bit casts and selects ------------------------------------------------
 *
 * nnc_selectf(c, a, b) is c ? a : b done with bit masks. gcc (12, 13)
 * turns a float ?: whose arm is a constant into a branch and sinks the
 * other arm's arithmetic into it; since float arithmetic may trap
 * (-ftrapping-math is the default), it then cannot if-convert the loop
 * and does not vectorize it. Masks keep both arms computed
 * unconditionally. clang handles either form.
 */
NNC_MATH_INLINE uint32_t nnc_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

NNC_MATH_INLINE float nnc_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

NNC_MATH_INLINE float nnc_selectf(int c, float a, float b)
{
    uint32_t mask = 0u - (uint32_t)(c != 0);
    return nnc_f32_from_bits((nnc_f32_bits(a) & mask)
                             | (nnc_f32_bits(b) & ~mask));
}

NNC_MATH_INLINE float nnc_absf(float x)
{
    return nnc_f32_from_bits(nnc_f32_bits(x) & 0x7fffffffu);
}

/* ---- exp -----------------------------------------------------------------
 *
 * n = round(x / ln2); r = x - n*ln2 in two parts (ln2_hi has 9
 * significant bits, so n*ln2_hi is exact); exp(r) by a degree-6
 * polynomial; then two multiplications by 2^(n/2) and 2^(n - n/2), each
 * a normal float even when 2^n is not, so that subnormal results round
 * once. Between 88.72 and 100 the product overflows to inf by itself;
 * above 100 (where n would no longer fit the exponent field) inf is
 * selected, below -104 (where the polynomial is meaningless) 0. NaN
 * propagates through r.
 *
 * round(k) comes from adding 1.5*2^23 and reading the integer from the
 * low mantissa bits, not from (k + t) - t, so -ffast-math cannot fold it
 * away, and there is no float-to-int conversion of an out-of-range value.
 * The range is handled by selects on x at the end, not by clamping n
 * first, and the polynomial is evaluated in Estrin's scheme (three
 * independent multiply-adds in r, combined with r^2 and r^4), not
 * Horner's: in a vectorized loop the out-of-order core overlaps
 * iterations only as far as its schedulers hold their dependent chains,
 * and the shorter chain made a loop of exps 20% faster on a Zen 3 core.
 */
NNC_MATH_INLINE float nnc_expf(float x)
{
    float k, n, r, r2, p, y;
    uint32_t m;

    k = x * 1.44269504088896341f;                    /* x / ln2            */
    m = nnc_f32_bits(k + 12582912.0f) - 0x4b400000u + 150u; /* n + 150    */
    n = (float)(int32_t)m - 150.0f;
    r = x - n * 0.693359375f;                        /* ln2_hi             */
    r = r - n * -2.12194440e-4f;                     /* ln2_lo             */

    r2 = r * r;
    p = (1.9875691500e-4f * r + 1.3981999507e-3f) * (r2 * r2)
        + (8.3334519073e-3f * r + 4.1665795894e-2f) * r2
        + (1.6666665459e-1f * r + 5.0000001201e-1f);
    p = p * r2 + r + 1.0f;

    y = p * nnc_f32_from_bits(((m >> 1) + 52u) << 23);
    y = y * nnc_f32_from_bits(((m - (m >> 1)) + 52u) << 23);
    y = nnc_selectf(x > 100.0f, nnc_f32_from_bits(0x7f800000u), y);
    return nnc_selectf(x < -104.0f, 0.0f, y);
}

/* ---- log -----------------------------------------------------------------
 *
 * Subnormals are first scaled by 2^23. Adding 0x3f800000 - 0x3f3504f3 to
 * the bits moves the exponent boundary to sqrt(2), so x = 2^e * m with m in
 * [sqrt(1/2), sqrt(2)), and log(m) = log1p(f), f = m - 1, by Cephes'
 * polynomial. Zero, negatives, inf and NaN are selected at the end.
 */
NNC_MATH_INLINE float nnc_logf(float x)
{
    const float inf = nnc_f32_from_bits(0x7f800000u);
    const float nan = nnc_f32_from_bits(0x7fc00000u);
    uint32_t ax = nnc_f32_bits(x) & 0x7fffffffu;
    int is_sub = x < 1.17549435e-38f;                /* also 0 and x < 0   */
    uint32_t ix = nnc_f32_bits(nnc_selectf(is_sub, x * 8388608.0f, x))
                  + (0x3f800000u - 0x3f3504f3u);
    float e = (float)((int32_t)(ix >> 23) - 127 - 23 * is_sub);
    float f = nnc_f32_from_bits((ix & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    float z = f * f;
    float p, y;

    p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    y = f * z * p;
    y = y + e * -2.12194440e-4f;                     /* ln2_lo             */
    y = y - 0.5f * z;
    y = f + y;
    y = y + e * 0.693359375f;                        /* ln2_hi             */

    y = nnc_selectf(x < 0.0f, nan, y);
    y = nnc_selectf(ax == 0u, -inf, y);              /* +-0                */
    y = nnc_selectf(nnc_f32_bits(x) == 0x7f800000u, inf, y);
    return nnc_selectf(ax > 0x7f800000u, x, y);      /* NaN in, NaN out    */
}

/* ---- tanh ----------------------------------------------------------------
 *
 * On a = |x|: an odd polynomial below 0.625, where 1 - 2/(exp(2a) + 1)
 * would cancel, that formula above (it reaches 1 as exp(2a) grows and
 * overflows); then the sign of x is copied back, so tanh(-0) = -0.
 */
NNC_MATH_INLINE float nnc_tanhf(float x)
{
    float a = nnc_absf(x);
    float z = a * a;
    float p, small, big;

    p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    small = a + a * z * p;
    big = 1.0f - 2.0f / (nnc_expf(2.0f * a) + 1.0f);
    return nnc_f32_from_bits(nnc_f32_bits(nnc_selectf(a < 0.625f, small, big))
                             | (nnc_f32_bits(x) & 0x80000000u));
}

/* ---- sigmoid -------------------------------------------------------------
 *
 * With e = exp(-|x|), which never overflows: 1/(1 + e) for x >= 0 and
 * e/(1 + e) for x < 0, so the left tail keeps its relative accuracy down
 * to the subnormals instead of dividing by an overflowed exp(-x).
 */
NNC_MATH_INLINE float nnc_sigmoidf(float x)
{
    float e = nnc_expf(-nnc_absf(x));
    return nnc_selectf(x < 0.0f, e, 1.0f) / (1.0f + e);
}

/* ---- log1p and softplus --------------------------------------------------
 *
 * log1p(x) = log(u) + (x - (u - 1))/u with u = 1 + x rounded: the second
 * term corrects for the rounding of u (Goldberg's trick). It is dropped
 * where u is 0 or inf, where it would be NaN.
 */
NNC_MATH_INLINE float nnc_log1pf(float x)
{
    const float inf = nnc_f32_from_bits(0x7f800000u);
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;

    c = nnc_selectf((u > 0.0f) & (u < inf), c, 0.0f);
    return nnc_logf(u) + c;
}

/* softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)). */
NNC_MATH_INLINE float nnc_softplusf(float x)
{
    return nnc_selectf(x > 0.0f, x, 0.0f) + nnc_log1pf(nnc_expf(-nnc_absf(x)));
}

/* ---- erf -----------------------------------------------------------------
 *
 * Below |x| = 1 the Taylor series x * 2/sqrt(pi) * sum_n (-x^2)^n /
 * (n! (2n+1)) up to n = 10 (truncation error about 1e-9), so small
 * arguments keep their relative accuracy. Above, Abramowitz and Stegun
 * 7.1.26 on a = |x|: erf(a) = 1 - t P(t) exp(-a^2) with t = 1/(1 + p a),
 * absolute error below 1.5e-7 where erf >= 0.84 (a few ulp); then the
 * sign of x is copied back. Large |x| gives exactly +-1 once exp(-a^2)
 * underflows; NaN gives NaN. Used by the exact (erf) form of GELU.
 */
NNC_MATH_INLINE float nnc_erff(float x)
{
    float a = nnc_absf(x);
    float z = x * x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p, q, big;

    q = 1.31225329e-8f;                              /*  1/76204800        */
    q = q * z - 1.45038522e-7f;                      /* -1/6894720         */
    q = q * z + 1.45891690e-6f;                      /*  1/685440          */
    q = q * z - 1.32275132e-5f;                      /* -1/75600           */
    q = q * z + 1.06837607e-4f;                      /*  1/9360            */
    q = q * z - 7.57575758e-4f;                      /* -1/1320            */
    q = q * z + 4.62962963e-3f;                      /*  1/216             */
    q = q * z - 2.38095238e-2f;                      /* -1/42              */
    q = q * z + 1.0e-1f;                             /*  1/10              */
    q = q * z - 3.33333333e-1f;                      /* -1/3               */
    q = q * z + 1.0f;

    p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    big = 1.0f - p * t * nnc_expf(-z);
    big = nnc_f32_from_bits(nnc_f32_bits(big) | (nnc_f32_bits(x) & 0x80000000u));
    return nnc_selectf(a < 1.0f, 1.12837917f * x * q, big);
}

/* ---- GELU ------------------------------------------------------------------
 *
 * gelu(x) = x Phi(x) and its derivative Phi(x) + x phi(x), with Phi the
 * normal distribution function and phi(x) = exp(-x^2/2) / sqrt(2 pi) its
 * density. Below |x| = 1, Phi = 1/2 + x S(x^2), the Taylor series of
 * Phi - 1/2 to x^17 (truncation below 3e-9); above, Abramowitz and Stegun
 * 7.1.26 for erfc(a) = t P(t) exp(-a^2), a = |x|/sqrt 2,
 * t = 1/(1 + p a), then Phi = 1 - erfc/2 for x >= 0 and erfc/2 below.
 * exp(-a^2) = exp(-x^2/2) is phi's exp too, so the derivative costs one
 * exp, where 0.5 x (1 + nnc_erff(x / sqrt 2)) and the derivative written
 * with it cost two. Absolute error of Phi and of the derivative below
 * 2e-7, gelu's relative error a few ulp wherever Phi >= 1/2
 * (test_vmath); toward the negative tail, where gelu(x) tends to -0, its
 * error stays below 2e-7 |x|.
 */
NNC_MATH_INLINE float nnc_normcdf_e(float x, float *e)
{
    float z = 0.5f * x * x;
    float t = 1.0f / (1.0f + 0.231641900f * nnc_absf(x)); /* p / sqrt 2 */
    float p, q, h;

    *e = nnc_expf(-z);
    z = x * x;
    q = 2.273529824e-09f;
    q = q * z - 4.122667415e-08f;
    q = q * z + 6.659693516e-07f;
    q = q * z - 9.444656260e-06f;
    q = q * z + 1.154346876e-04f;
    q = q * z - 1.187328215e-03f;
    q = q * z + 9.973557010e-03f;
    q = q * z - 6.649038007e-02f;
    q = q * z + 3.989422804e-01f;

    p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    h = 0.5f * (p * t) * *e;                         /* erfc(|x|/sqrt 2) / 2 */
    h = nnc_selectf(x >= 0.0f, 1.0f - h, h);
    return nnc_selectf(nnc_absf(x) < 1.0f, 0.5f + x * q, h);
}

NNC_MATH_INLINE float nnc_normcdff(float x)
{
    float e;

    return nnc_normcdf_e(x, &e);
}

/* gelu(x) = x Phi(x) (the exact, erf form) */
NNC_MATH_INLINE float nnc_geluf(float x)
{
    return x * nnc_normcdff(x);
}

/* d gelu / dx = Phi(x) + x phi(x) */
NNC_MATH_INLINE float nnc_gelu_gradf(float x)
{
    float e, phi = nnc_normcdf_e(x, &e);

    return phi + x * 0.398942280f * e;
}

/* ---- Array versions (runtime/vmath.c) ------------------------------------
 *
 * y[i] = f(x[i]) for i in [0, n), the inline function above compiled for
 * the ISA that nnc_isa() names (AVX-512, AVX2+FMA or the baseline) and
 * vectorized. Results equal the inline function's, or differ by 1 ulp
 * where a compiler contracts a*b + c into an FMA. y may equal x (in
 * place); otherwise the arrays must not overlap.
 */
void nnc_vexp(float *y, const float *x, size_t n);
void nnc_vlog(float *y, const float *x, size_t n);
void nnc_vtanh(float *y, const float *x, size_t n);
void nnc_vsigmoid(float *y, const float *x, size_t n);
void nnc_vsoftplus(float *y, const float *x, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* NNCRT_MATH_H */
