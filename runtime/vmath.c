/*
 * vmath.c - array versions of the vector math in nncrt_math.h:
 * y[i] = f(x[i]) for exp, log, tanh, sigmoid and softplus, for the
 * runtime's own kernels.
 *
 * Each is the plain loop over the static inline function, which the
 * compiler vectorizes. Two details make that happen under any flags:
 *
 * - The loop runs in blocks of 16 through a local buffer, then a scalar
 *   tail. A block has a constant trip count and cannot alias y, so gcc 12
 *   vectorizes it even at -O2, where its "very cheap" cost model refuses
 *   loops that need a runtime alias check or an epilogue. It also makes
 *   y == x (in place) safe.
 * - On x86 with gcc or clang, the same loop is compiled three times, for
 *   the baseline, for AVX2+FMA and for AVX-512 (target attributes, so no
 *   per-file flags), and each call takes the one that matches the GEMM
 *   kernel set in use (nnc_isa(): the best the CPU has, or NNC_ISA /
 *   nnc_set_isa). Elsewhere only the baseline is built.
 *
 * The variants compute the same formulas; they can differ from each other
 * and from the inline function by 1 ulp where a compiler contracts
 * a*b + c into a fused multiply-add. The accuracy bounds in nncrt_math.h
 * hold for all of them.
 */
#include <string.h>

#include "nncrt.h"

#define BLOCK 16

/* static void NAME(float *y, const float *x, size_t n): y[i] = FN(x[i]). */
#define DEFINE_LOOP(NAME, FN, ATTR)                                     \
    static ATTR void NAME(float *y, const float *x, size_t n)           \
    {                                                                   \
        float t[BLOCK];                                                 \
        size_t i = 0, j;                                                \
                                                                        \
        for (; n - i >= BLOCK; i += BLOCK) {                            \
            for (j = 0; j < BLOCK; j++)                                 \
                t[j] = FN(x[i + j]);                                    \
            for (j = 0; j < BLOCK; j++)                                 \
                y[i + j] = t[j];                                        \
        }                                                               \
        for (; i < n; i++)                                              \
            y[i] = FN(x[i]);                                            \
    }

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,fma")))

/* NAME_base, NAME_avx2, NAME_avx512 and the exported ENTRY choosing one. */
#define DEFINE_ENTRY(ENTRY, NAME, FN)                                   \
    DEFINE_LOOP(NAME##_base, FN, )                                      \
    DEFINE_LOOP(NAME##_avx2, FN, AVX2)                                  \
    DEFINE_LOOP(NAME##_avx512, FN, AVX512)                              \
    void ENTRY(float *y, const float *x, size_t n)                      \
    {                                                                   \
        const char *isa = nnc_isa();                                    \
                                                                        \
        if (strcmp(isa, "avx512") == 0)                                 \
            NAME##_avx512(y, x, n);                                     \
        else if (strcmp(isa, "avx2") == 0)                              \
            NAME##_avx2(y, x, n);                                       \
        else                                                            \
            NAME##_base(y, x, n);                                       \
    }

#else

#define DEFINE_ENTRY(ENTRY, NAME, FN)                                   \
    DEFINE_LOOP(NAME##_base, FN, )                                      \
    void ENTRY(float *y, const float *x, size_t n)                      \
    {                                                                   \
        NAME##_base(y, x, n);                                           \
    }

#endif

DEFINE_ENTRY(nnc_vexp, vexp, nnc_expf)
DEFINE_ENTRY(nnc_vlog, vlog, nnc_logf)
DEFINE_ENTRY(nnc_vtanh, vtanh, nnc_tanhf)
DEFINE_ENTRY(nnc_vsigmoid, vsigmoid, nnc_sigmoidf)
DEFINE_ENTRY(nnc_vsoftplus, vsoftplus, nnc_softplusf)
