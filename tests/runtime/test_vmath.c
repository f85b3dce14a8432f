/*
 * test_vmath.c - the vector math of nncrt_math.h against double-precision
 * libm, and the array versions of vmath.c against the inline functions.
 *
 * Errors are in ulps of the float result: |y - ref| / ulp(ref), where the
 * ulp of a subnormal is 2^-149 and ref is the exact function computed in
 * double (libm's double functions are accurate to well under 1e-15). A
 * NaN must give NaN, an infinite reference must be matched exactly, and a
 * finite result that overflows counts as wrong by 2^24 ulp.
 *
 * Each function is checked over (a) every 2039th float bit pattern, which
 * spaces 2.1 million inputs logarithmically over the whole range, both
 * signs, subnormals, infinities and NaNs; (b) about a million floats in
 * each window where its method switches or its result leaves the normal
 * range (every float where the window holds fewer); (c) special values;
 * and (d) random floats, both any bit pattern and uniform on [-20, 20].
 * The bounds asserted are those stated in nncrt_math.h. The whole file
 * runs in about a second.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "nncrt.h"
#include "isa_main.h" /* exits 77 (SKIP) for an ISA this CPU lacks */

typedef float FloatFn(float);
typedef double RefFn(double);
typedef void ArrayFn(float *y, const float *x, size_t n);

static float f_exp(float x) { return nnc_expf(x); }
static float f_log(float x) { return nnc_logf(x); }
static float f_tanh(float x) { return nnc_tanhf(x); }
static float f_sigmoid(float x) { return nnc_sigmoidf(x); }
static float f_log1p(float x) { return nnc_log1pf(x); }
static float f_softplus(float x) { return nnc_softplusf(x); }
static float f_erf(float x) { return nnc_erff(x); }

static double ref_sigmoid(double x)
{
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

static double ref_softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The error of y against the reference r, in float ulps (see above). */
static double ulp_error(float y, double r)
{
    double big = ldexp(1.0, 128), ulp;
    int e;

    if (isnan(r) || isnan(y))
        return isnan(r) && isnan(y) ? 0 : INFINITY;
    if (isinf((float)r) || isinf(y)) {
        if (y == (float)r)
            return 0;
        if (isinf(y))
            return fabs(copysign(big, y) - (fabs(r) > big ? copysign(big, r) : r))
                   / ldexp(1.0, 104);
        return ldexp(1.0, 24);
    }
    frexp(fabs(r), &e);                     /* |r| in [2^(e-1), 2^e) */
    ulp = ldexp(1.0, e - 24 < -149 ? -149 : e - 24);
    return fabs((double)y - r) / ulp;
}

/* The largest error of a function and where it happened. */
typedef struct MaxErr {
    double err;
    float at;
} MaxErr;

static void check(MaxErr *m, FloatFn *f, RefFn *ref, float x)
{
    double e = ulp_error(f(x), ref((double)x));

    if (e > m->err) {
        m->err = e;
        m->at = x;
    }
}

/* Floats from lo to hi (same sign, |lo| <= |hi|), evenly spaced in bit
 * pattern (so logarithmically in value), at most about npoints of them:
 * every float when the window holds fewer. */
static void sweep(MaxErr *m, FloatFn *f, RefFn *ref, float lo, float hi,
                  uint32_t npoints)
{
    uint32_t first = to_bits(lo), last = to_bits(hi);
    uint32_t step = (last - first) / npoints + 1;
    uint32_t b;

    for (b = first; b <= last && b >= first; b += step)
        check(m, f, ref, from_bits(b));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rand32(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);   /* splitmix64 */

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* (a), (c) and (d) of the file comment; the caller adds (b). */
static void sweep_all(MaxErr *m, FloatFn *f, RefFn *ref)
{
    static const float specials[] = {
        0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, FLT_MIN, -FLT_MIN,
        1e-45f, -1e-45f, 1e-40f, -1e-40f, FLT_EPSILON, FLT_MAX, -FLT_MAX,
        88.0f, 88.5f, 88.72283f, 88.72284f, 89.0f, -87.33654f, -100.0f,
        -103.97207f, -103.97208f, -104.0f, 100.0f, 1e10f, -1e10f,
        INFINITY, -INFINITY, NAN, -NAN,
    };
    uint64_t b;
    size_t i;

    for (i = 0; i < sizeof specials / sizeof specials[0]; i++)
        check(m, f, ref, specials[i]);
    for (b = 0; b <= UINT32_MAX; b += 2039)
        check(m, f, ref, from_bits((uint32_t)b));
    for (i = 0; i < 200000; i++) {
        check(m, f, ref, from_bits(rand32()));
        check(m, f, ref, (float)((double)rand32() / 4294967296.0 * 40 - 20));
    }
}

static void report(const char *name, MaxErr m, double bound)
{
    cr_log_info("%-14s max error %.3f ulp at x = %a (%.9g), bound %.1f",
                name, m.err, (double)m.at, (double)m.at, bound);
    cr_expect(m.err <= bound, "%s: %.3f ulp at x = %a exceeds %.1f ulp",
              name, m.err, (double)m.at, bound);
}

/* ---- Accuracy ------------------------------------------------------------ */

Test(vmath, expf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_all(&m, f_exp, exp);
    sweep(&m, f_exp, exp, 0.125f, 0.5f, 1000000);  /* n = 0, 1       */
    sweep(&m, f_exp, exp, -0.125f, -0.5f, 1000000);
    sweep(&m, f_exp, exp, 87.0f, 89.0f, 1000000);  /* overflow       */
    sweep(&m, f_exp, exp, -86.0f, -105.0f, 1000000); /* subnormal, 0 */
    report("nnc_expf", m, 1.5);

    cr_expect_eq(nnc_expf(0.0f), 1.0f);
    cr_expect_eq(nnc_expf(-0.0f), 1.0f);
    cr_expect_eq(nnc_expf(INFINITY), INFINITY);
    cr_expect_eq(nnc_expf(89.0f), INFINITY);
    cr_expect_eq(to_bits(nnc_expf(-INFINITY)), 0u);
    cr_expect_eq(to_bits(nnc_expf(-200.0f)), 0u);
    cr_expect_eq(nnc_expf(-103.2789f), 1e-45f);   /* smallest subnormal */
    cr_expect(isnan(nnc_expf(NAN)));
}

Test(vmath, logf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_all(&m, f_log, log);
    sweep(&m, f_log, log, 0.7f, 1.42f, 2000000);   /* e = 0, around 1 */
    sweep(&m, f_log, log, 0.0f, FLT_MIN, 200000);  /* subnormals      */
    report("nnc_logf", m, 2.0);

    cr_expect_eq(to_bits(nnc_logf(1.0f)), 0u);
    cr_expect_eq(nnc_logf(0.0f), -INFINITY);
    cr_expect_eq(nnc_logf(-0.0f), -INFINITY);
    cr_expect_eq(nnc_logf(INFINITY), INFINITY);
    cr_expect(isnan(nnc_logf(-1.0f)));
    cr_expect(isnan(nnc_logf(-1e-45f)));
    cr_expect(isnan(nnc_logf(-INFINITY)));
    cr_expect(isnan(nnc_logf(NAN)));
}

Test(vmath, erff_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_all(&m, f_erf, erf);
    sweep(&m, f_erf, erf, 0.75f, 1.25f, 1000000);  /* the switch at 1   */
    sweep(&m, f_erf, erf, -0.75f, -1.25f, 1000000);
    sweep(&m, f_erf, erf, 1.25f, 4.0f, 1000000);   /* the rational part */
    report("nnc_erff", m, 4.0);

    cr_expect_eq(to_bits(nnc_erff(0.0f)), 0u);
    cr_expect_eq(to_bits(nnc_erff(-0.0f)), 0x80000000u);
    cr_expect_eq(nnc_erff(10.0f), 1.0f);
    cr_expect_eq(nnc_erff(-INFINITY), -1.0f);
    cr_expect(isnan(nnc_erff(NAN)));
}

/* nnc_normcdff, nnc_geluf, nnc_gelu_gradf: absolute errors (Phi needs no
 * relative accuracy; see nncrt_math.h), on a fine grid over [-14, 14],
 * where Phi goes from 0 to 1 in float, and at the ends of the line. */
static double ref_phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

Test(vmath, gelu_accuracy)
{
    double ephi = 0, egelu = 0, egrad = 0, rel = 0;
    float at_phi = 0, at_gelu = 0, at_grad = 0, at_rel = 0;
    int i;

    for (i = -1400000; i <= 1400000; i++) {
        float x = (float)i * 1e-5f;
        double X = x, phi = ref_phi(X);
        double gelu = X * phi, grad = phi + X * exp(-0.5 * X * X) * 0.3989422804014327;
        double e1 = fabs(nnc_normcdff(x) - phi), e2 = fabs(nnc_geluf(x) - gelu);
        double e3 = fabs(nnc_gelu_gradf(x) - grad);
        if (e1 > ephi)
            ephi = e1, at_phi = x;
        if (e2 > egelu * (fabs(X) > 1 ? fabs(X) : 1))
            egelu = e2 / (fabs(X) > 1 ? fabs(X) : 1), at_gelu = x;
        if (e3 > egrad)
            egrad = e3, at_grad = x;
        if (x >= 0.0f && gelu != 0 && ulp_error(nnc_geluf(x), gelu) > rel)
            rel = ulp_error(nnc_geluf(x), gelu), at_rel = x;
    }
    cr_log_info("nnc_normcdff  max abs error %.3g at %g; nnc_geluf %.3g max(1, |x|) at %g "
                "(%.2f ulp for x >= 0, at %g); nnc_gelu_gradf %.3g at %g",
                ephi, (double)at_phi, egelu, (double)at_gelu, rel, (double)at_rel, egrad,
                (double)at_grad);
    cr_expect(ephi <= 4e-7, "nnc_normcdff: %.3g at %g", ephi, (double)at_phi);
    cr_expect(egelu <= 4e-7, "nnc_geluf: %.3g max(1, |x|) at %g", egelu, (double)at_gelu);
    cr_expect(rel <= 8.0, "nnc_geluf: %.2f ulp at %g", rel, (double)at_rel);
    cr_expect(egrad <= 4e-7, "nnc_gelu_gradf: %.3g at %g", egrad, (double)at_grad);

    cr_expect_eq(to_bits(nnc_geluf(0.0f)), 0u);
    cr_expect_eq(nnc_normcdff(0.0f), 0.5f);
    cr_expect_eq(nnc_geluf(30.0f), 30.0f);
    cr_expect_eq(nnc_geluf(-30.0f), 0.0f);
    cr_expect_eq(nnc_geluf(FLT_MAX), FLT_MAX);
    cr_expect_eq(nnc_geluf(INFINITY), INFINITY);
    cr_expect_eq(nnc_gelu_gradf(30.0f), 1.0f);
    cr_expect_eq(nnc_gelu_gradf(-30.0f), 0.0f);
    cr_expect_eq(nnc_normcdff(-INFINITY), 0.0f);
    cr_expect(isnan(nnc_geluf(NAN)));
    cr_expect(isnan(nnc_gelu_gradf(NAN)));
}

Test(vmath, tanhf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_all(&m, f_tanh, tanh);
    sweep(&m, f_tanh, tanh, 0.5f, 0.75f, 1000000); /* the 0.625 switch */
    sweep(&m, f_tanh, tanh, -0.5f, -0.75f, 1000000);
    sweep(&m, f_tanh, tanh, 8.0f, 10.0f, 1000000); /* saturation       */
    report("nnc_tanhf", m, 2.0);

    cr_expect_eq(to_bits(nnc_tanhf(0.0f)), 0u);
    cr_expect_eq(to_bits(nnc_tanhf(-0.0f)), 0x80000000u);
    cr_expect_eq(nnc_tanhf(10.0f), 1.0f);
    cr_expect_eq(nnc_tanhf(-10.0f), -1.0f);
    cr_expect_eq(nnc_tanhf(FLT_MAX), 1.0f);
    cr_expect_eq(nnc_tanhf(INFINITY), 1.0f);
    cr_expect_eq(nnc_tanhf(-INFINITY), -1.0f);
    cr_expect_eq(nnc_tanhf(1e-40f), 1e-40f);
    cr_expect(isnan(nnc_tanhf(NAN)));
}

/* The whole float line, then where a logistic-type function bends: both
 * sides of 0 out to its saturation, and the far negative tail where it
 * underflows through the subnormals. */
static void sweep_logistic(MaxErr *m, FloatFn *f, RefFn *ref)
{
    sweep_all(m, f, ref);
    sweep(m, f, ref, 1.0f, 20.0f, 1000000);
    sweep(m, f, ref, -1.0f, -20.0f, 1000000);
    sweep(m, f, ref, -86.0f, -105.0f, 1000000);
}

Test(vmath, sigmoidf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_logistic(&m, f_sigmoid, ref_sigmoid);
    report("nnc_sigmoidf", m, 3.0);

    cr_expect_eq(nnc_sigmoidf(0.0f), 0.5f);
    cr_expect_eq(nnc_sigmoidf(-0.0f), 0.5f);
    cr_expect_eq(nnc_sigmoidf(17.0f), 1.0f);
    cr_expect_eq(nnc_sigmoidf(100.0f), 1.0f);
    cr_expect_eq(nnc_sigmoidf(INFINITY), 1.0f);
    cr_expect(nnc_sigmoidf(-100.0f) > 0.0f
              && nnc_sigmoidf(-100.0f) < 4e-44f);   /* 3.72e-44 */
    cr_expect_eq(to_bits(nnc_sigmoidf(-200.0f)), 0u);
    cr_expect_eq(to_bits(nnc_sigmoidf(-INFINITY)), 0u);
    cr_expect(isnan(nnc_sigmoidf(NAN)));
}

Test(vmath, log1pf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_all(&m, f_log1p, log1p);
    sweep(&m, f_log1p, log1p, -0.25f, -1.0f, 1000000);
    sweep(&m, f_log1p, log1p, 0.25f, 2.0f, 1000000);
    report("nnc_log1pf", m, 2.0);

    cr_expect_eq(to_bits(nnc_log1pf(0.0f)), 0u);
    cr_expect_eq(nnc_log1pf(1e-30f), 1e-30f);
    cr_expect_eq(nnc_log1pf(-1.0f), -INFINITY);
    cr_expect_eq(nnc_log1pf(INFINITY), INFINITY);
    cr_expect(isnan(nnc_log1pf(-2.0f)));
    cr_expect(isnan(nnc_log1pf(-INFINITY)));
    cr_expect(isnan(nnc_log1pf(NAN)));
}

Test(vmath, softplusf_accuracy)
{
    MaxErr m = { 0, 0 };

    sweep_logistic(&m, f_softplus, ref_softplus);
    report("nnc_softplusf", m, 3.0);

    cr_expect_eq(nnc_softplusf(100.0f), 100.0f);
    cr_expect_eq(nnc_softplusf(INFINITY), INFINITY);
    cr_expect_eq(to_bits(nnc_softplusf(-200.0f)), 0u);
    cr_expect_eq(to_bits(nnc_softplusf(-INFINITY)), 0u);
    cr_expect(isnan(nnc_softplusf(NAN)));
}

/* ---- Array versions ------------------------------------------------------ */

/* Distance in representable floats (NaN equals NaN). */
static uint32_t float_distance(float a, float b)
{
    int64_t ia = to_bits(a), ib = to_bits(b);

    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : UINT32_MAX;
    ia = ia & 0x80000000 ? 0x80000000 - ia : ia;   /* ordered integers */
    ib = ib & 0x80000000 ? 0x80000000 - ib : ib;
    return (uint32_t)(ia > ib ? ia - ib : ib - ia);
}

#define NX 1100

/* y = f(x) at awkward sizes and offsets, in place, and under every ISA
 * this CPU has: the same as the inline function (within 1 ulp, for FMA
 * contraction), and nothing written past n. */
static void check_array(const char *name, ArrayFn *vf, FloatFn *f)
{
    static const size_t sizes[] = { 0, 1, 7, 8, 9, 15, 16, 17, 33, 1000 };
    static const char *const isas[] = { "avx512", "avx2", "neon", "scalar" };
    const char *saved = nnc_isa();
    float x[NX], y[NX], inplace[NX];
    size_t i, s, k, off;

    for (i = 0; i < NX; i++)
        x[i] = (float)((double)rand32() / 4294967296.0 * 200 - 100);
    x[3] = NAN, x[4] = INFINITY, x[5] = -INFINITY, x[6] = -0.0f;
    x[20] = 1e-40f, x[21] = 0.0f, x[22] = -1.0f;

    for (k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (nnc_set_isa(isas[k]) != NNC_OK)
            continue;
        for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            for (off = 0; off < 4; off++) {
                size_t n = sizes[s];

                for (i = 0; i < NX; i++)
                    y[i] = inplace[i] = -7.0f;
                memcpy(inplace + off, x + 3 * off, n * sizeof(float));
                vf(y + off, x + 3 * off, n);
                vf(inplace + off, inplace + off, n);
                for (i = 0; i < n; i++) {
                    float want = f(x[3 * off + i]);

                    cr_assert_leq(float_distance(y[off + i], want), 1,
                                  "%s (%s) n=%zu x=%a: %a, inline %a", name,
                                  isas[k], n, (double)x[3 * off + i],
                                  (double)y[off + i], (double)want);
                    cr_assert_leq(float_distance(inplace[off + i], want), 1);
                }
                for (i = 0; i < NX; i++)
                    if (i < off || i >= off + n)
                        cr_assert(y[i] == -7.0f && inplace[i] == -7.0f,
                                  "%s (%s) wrote outside [0, %zu)", name,
                                  isas[k], n);
            }
        }
    }
    nnc_set_isa(saved);
}

Test(vmath, arrays_match_inline)
{
    check_array("nnc_vexp", nnc_vexp, f_exp);
    check_array("nnc_vlog", nnc_vlog, f_log);
    check_array("nnc_vtanh", nnc_vtanh, f_tanh);
    check_array("nnc_vsigmoid", nnc_vsigmoid, f_sigmoid);
    check_array("nnc_vsoftplus", nnc_vsoftplus, f_softplus);
}
