/*
 * avx512_emu.h - the AVX-512 intrinsics libnncrt's AVX-512 kernels use, in
 * plain C, lane by lane, as Intel's guide defines them, so that code built
 * with -DNNC_AVX512_EMULATE runs on any CPU: the int8 VNNI kernel
 * (runtime/kern_avx512_i8.c, tests/runtime/vnni_emu.sh) and the float
 * GEMM kernels with their small-GEMM tiles and epilogues
 * (runtime/kern_avx512.c, gemm_small.c) and the optimizer's AVX-512 loops
 * (optim_vec.h) (tests/runtime/avx512_emu.sh). Their loops, masks, tails,
 * offsets and shuffles are checked here, where the CPU has no AVX-512,
 * against the references. It does not check the compiler's or the CPU's
 * intrinsics (the acceptance machine's runs of test_gemm, test_qgemm and
 * test_optim do).
 *
 * On x86 the real <immintrin.h> comes first (the kernels also use 128-
 * and 256-bit intrinsics, which stay real: build with -mavx2 -mfma), and
 * the AVX-512 types and functions are then renamed to this file's
 * (emu512_*), so the two never clash.
 */
#ifndef NNC_AVX512_EMU_H
#define NNC_AVX512_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#else
typedef uint16_t __mmask16;
#endif

#define __m512 emu512_ps
#define __m512d emu512_pd
#define __m512i emu512_si
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 emu512_setzero_si512
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 emu512_set1_epi32
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 emu512_loadu_si512
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 emu512_dpbusd_epi32
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 emu512_sub_epi32
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 emu512_slli_epi32
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps emu512_cvtepi32_ps
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 emu512_cvtps_epi32
#undef _mm512_mask_cvtepi32_storeu_epi8
#define _mm512_mask_cvtepi32_storeu_epi8 emu512_mask_cvtepi32_storeu_epi8
#undef _mm512_setzero_ps
#define _mm512_setzero_ps emu512_setzero_ps
#undef _mm512_set1_ps
#define _mm512_set1_ps emu512_set1_ps
#undef _mm512_loadu_ps
#define _mm512_loadu_ps emu512_loadu_ps
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps emu512_maskz_loadu_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps emu512_storeu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps emu512_mask_storeu_ps
#undef _mm512_add_ps
#define _mm512_add_ps emu512_add_ps
#undef _mm512_sub_ps
#define _mm512_sub_ps emu512_sub_ps
#undef _mm512_mul_ps
#define _mm512_mul_ps emu512_mul_ps
#undef _mm512_div_ps
#define _mm512_div_ps emu512_div_ps
#undef _mm512_sqrt_ps
#define _mm512_sqrt_ps emu512_sqrt_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu512_fmadd_ps
#undef _mm512_min_ps
#define _mm512_min_ps emu512_min_ps
#undef _mm512_max_ps
#define _mm512_max_ps emu512_max_ps
#undef _mm512_maskz_mov_ps
#define _mm512_maskz_mov_ps emu512_maskz_mov_ps
#undef _mm512_cmp_ps_mask
#define _mm512_cmp_ps_mask emu512_cmp_ps_mask
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps emu512_reduce_add_ps
#undef _mm512_unpacklo_ps
#define _mm512_unpacklo_ps emu512_unpacklo_ps
#undef _mm512_unpackhi_ps
#define _mm512_unpackhi_ps emu512_unpackhi_ps
#undef _mm512_unpacklo_pd
#define _mm512_unpacklo_pd emu512_unpacklo_pd
#undef _mm512_unpackhi_pd
#define _mm512_unpackhi_pd emu512_unpackhi_pd
#undef _mm512_castps_pd
#define _mm512_castps_pd emu512_castps_pd
#undef _mm512_castpd_ps
#define _mm512_castpd_ps emu512_castpd_ps
#undef _mm512_shuffle_f32x4
#define _mm512_shuffle_f32x4 emu512_shuffle_f32x4
#undef _mm512_castps512_ps256
#define _mm512_castps512_ps256 emu512_castps512_ps256
#undef _mm512_extractf64x4_pd
#define _mm512_extractf64x4_pd emu512_extractf64x4_pd

typedef struct { int32_t i[16]; } __m512i;
typedef struct { float f[16]; } __m512;
typedef struct { double d[8]; } __m512d;

static inline __m512i _mm512_setzero_si512(void)
{
    __m512i r;
    memset(&r, 0, sizeof r);
    return r;
}

static inline __m512i _mm512_set1_epi32(int v)
{
    __m512i r;
    int j;
    for (j = 0; j < 16; j++)
        r.i[j] = v;
    return r;
}

static inline __m512i _mm512_loadu_si512(const void *p)
{
    __m512i r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* vpdpbusd: each lane += the 4 products of a's unsigned bytes by b's
 * signed bytes (no saturation) */
static inline __m512i _mm512_dpbusd_epi32(__m512i src, __m512i a, __m512i b)
{
    unsigned char ab[64];
    signed char bb[64];
    int j, t;
    memcpy(ab, &a, 64);
    memcpy(bb, &b, 64);
    for (j = 0; j < 16; j++)
        for (t = 0; t < 4; t++)
            src.i[j] += (int32_t)ab[4 * j + t] * (int32_t)bb[4 * j + t];
    return src;
}

static inline __m512i _mm512_sub_epi32(__m512i a, __m512i b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.i[j] -= b.i[j];
    return a;
}

static inline __m512i _mm512_slli_epi32(__m512i a, unsigned n)
{
    int j;
    for (j = 0; j < 16; j++)
        a.i[j] = (int32_t)((uint32_t)a.i[j] << n);
    return a;
}

static inline __m512 _mm512_cvtepi32_ps(__m512i a)
{
    __m512 r;
    int j;
    for (j = 0; j < 16; j++)
        r.f[j] = (float)a.i[j];
    return r;
}

static inline __m512 _mm512_loadu_ps(const float *p)
{
    __m512 r;
    memcpy(&r, p, sizeof r);
    return r;
}

static inline __m512 _mm512_set1_ps(float v)
{
    __m512 r;
    int j;
    for (j = 0; j < 16; j++)
        r.f[j] = v;
    return r;
}

static inline __m512 _mm512_mul_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] * b.f[j];
    return a;
}

static inline __m512 _mm512_add_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] + b.f[j];
    return a;
}

/* minps / maxps: the second operand unless the first compares below
 * (above) it */
static inline __m512 _mm512_min_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] < b.f[j] ? a.f[j] : b.f[j];
    return a;
}

static inline __m512 _mm512_max_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] > b.f[j] ? a.f[j] : b.f[j];
    return a;
}

/* cvtps2dq in the default rounding mode: nearest even */
static inline __m512i _mm512_cvtps_epi32(__m512 a)
{
    __m512i r;
    int j;
    for (j = 0; j < 16; j++)
        r.i[j] = (int32_t)lrintf(a.f[j]);
    return r;
}

static inline void _mm512_mask_storeu_ps(void *p, __mmask16 m, __m512 a)
{
    int j;
    for (j = 0; j < 16; j++)
        if (m >> j & 1)
            memcpy((float *)p + j, &a.f[j], sizeof(float));
}

/* vpmovdb: the low byte of each lane (truncation) */
static inline void _mm512_mask_cvtepi32_storeu_epi8(void *p, __mmask16 m, __m512i a)
{
    int j;
    for (j = 0; j < 16; j++)
        if (m >> j & 1)
            ((signed char *)p)[j] = (signed char)(a.i[j] & 0xff);
}

/* ---- the float kernels' (kern_avx512.c, gemm_small.c, optim_vec.h) ---- */

static inline __m512 _mm512_setzero_ps(void)
{
    return _mm512_set1_ps(0.0f);
}

/* masked lanes are neither read (no fault past an array's end) nor kept */
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 m, const void *p)
{
    __m512 r = _mm512_setzero_ps();
    int j;
    for (j = 0; j < 16; j++)
        if (m >> j & 1)
            memcpy(&r.f[j], (const float *)p + j, sizeof(float));
    return r;
}

static inline void _mm512_storeu_ps(void *p, __m512 a)
{
    memcpy(p, &a, sizeof a);
}

static inline __m512 _mm512_sub_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] - b.f[j];
    return a;
}

static inline __m512 _mm512_div_ps(__m512 a, __m512 b)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = a.f[j] / b.f[j];
    return a;
}

static inline __m512 _mm512_sqrt_ps(__m512 a)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = sqrtf(a.f[j]);
    return a;
}

/* one rounding, as vfmadd does */
static inline __m512 _mm512_fmadd_ps(__m512 a, __m512 b, __m512 c)
{
    int j;
    for (j = 0; j < 16; j++)
        a.f[j] = fmaf(a.f[j], b.f[j], c.f[j]);
    return a;
}

static inline __m512 _mm512_maskz_mov_ps(__mmask16 m, __m512 a)
{
    int j;
    for (j = 0; j < 16; j++)
        if (!(m >> j & 1))
            a.f[j] = 0.0f;
    return a;
}

/* the predicates the kernels use (ordered, quiet: false on NaN); any
 * other is a test error */
static inline __mmask16 _mm512_cmp_ps_mask(__m512 a, __m512 b, const int pred)
{
    unsigned m = 0;
    int j;
    for (j = 0; j < 16; j++) {
        int t;
        if (pred == 0x1e)           /* _CMP_GT_OQ */
            t = a.f[j] > b.f[j];
        else if (pred == 0x11)      /* _CMP_LT_OQ */
            t = a.f[j] < b.f[j];
        else if (pred == 0x00)      /* _CMP_EQ_OQ */
            t = a.f[j] == b.f[j];
        else
            abort();
        m |= (unsigned)t << j;
    }
    return (__mmask16)m;
}

/* in GCC's order (avx512fintrin.h): the two halves, then their two
 * halves, then lanes 0+2 and 1+3, then those two */
static inline float _mm512_reduce_add_ps(__m512 a)
{
    float t3[8], t6[4], t8[2];
    int j;
    for (j = 0; j < 8; j++)
        t3[j] = a.f[j + 8] + a.f[j];
    for (j = 0; j < 4; j++)
        t6[j] = t3[j + 4] + t3[j];
    t8[0] = t6[0] + t6[2];
    t8[1] = t6[1] + t6[3];
    return t8[0] + t8[1];
}

/* unpck{l,h}ps: in each 128-bit lane, a0 b0 a1 b1 (a2 b2 a3 b3) */
static inline __m512 emu512_unpack_ps(__m512 a, __m512 b, int hi)
{
    __m512 r;
    int l;
    for (l = 0; l < 4; l++) {
        const float *x = a.f + 4 * l + 2 * hi, *y = b.f + 4 * l + 2 * hi;
        r.f[4 * l] = x[0], r.f[4 * l + 1] = y[0];
        r.f[4 * l + 2] = x[1], r.f[4 * l + 3] = y[1];
    }
    return r;
}

static inline __m512 _mm512_unpacklo_ps(__m512 a, __m512 b)
{
    return emu512_unpack_ps(a, b, 0);
}

static inline __m512 _mm512_unpackhi_ps(__m512 a, __m512 b)
{
    return emu512_unpack_ps(a, b, 1);
}

/* unpck{l,h}pd: in each 128-bit lane, a0 b0 (a1 b1) */
static inline __m512d _mm512_unpacklo_pd(__m512d a, __m512d b)
{
    __m512d r;
    int l;
    for (l = 0; l < 4; l++)
        r.d[2 * l] = a.d[2 * l], r.d[2 * l + 1] = b.d[2 * l];
    return r;
}

static inline __m512d _mm512_unpackhi_pd(__m512d a, __m512d b)
{
    __m512d r;
    int l;
    for (l = 0; l < 4; l++)
        r.d[2 * l] = a.d[2 * l + 1], r.d[2 * l + 1] = b.d[2 * l + 1];
    return r;
}

static inline __m512d _mm512_castps_pd(__m512 a)
{
    __m512d r;
    memcpy(&r, &a, sizeof r);
    return r;
}

static inline __m512 _mm512_castpd_ps(__m512d a)
{
    __m512 r;
    memcpy(&r, &a, sizeof r);
    return r;
}

/* vshuff32x4: 128-bit lanes a[imm 1:0], a[imm 3:2], b[imm 5:4], b[imm 7:6] */
static inline __m512 _mm512_shuffle_f32x4(__m512 a, __m512 b, const int imm)
{
    __m512 r;
    memcpy(r.f, a.f + 4 * (imm & 3), 4 * sizeof(float));
    memcpy(r.f + 4, a.f + 4 * (imm >> 2 & 3), 4 * sizeof(float));
    memcpy(r.f + 8, b.f + 4 * (imm >> 4 & 3), 4 * sizeof(float));
    memcpy(r.f + 12, b.f + 4 * (imm >> 6 & 3), 4 * sizeof(float));
    return r;
}

#if defined(__AVX__)
/* the low 256 bits, and the 256 bits at imm: real AVX types */
static inline __m256 _mm512_castps512_ps256(__m512 a)
{
    return _mm256_loadu_ps(a.f);
}

static inline __m256d _mm512_extractf64x4_pd(__m512d a, const int imm)
{
    return _mm256_loadu_pd(a.d + 4 * (imm & 1));
}
#endif

#endif
