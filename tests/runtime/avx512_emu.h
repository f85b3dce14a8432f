/*
 * avx512_emu.h - the AVX-512 intrinsics runtime/kern_avx512_i8.c uses,
 * in plain C, lane by lane, as Intel's guide defines them: the int8 VNNI
 * kernel compiled with -DNNC_AVX512_EMULATE runs on any CPU
 * (tests/runtime/vnni_emu.sh), so its loops, masks, offsets and the
 * xor-0x80 correction are checked here, where no CPU has VNNI, against
 * the scalar reference. It does not check the compiler's or the CPU's
 * intrinsics (the acceptance machine's run of test_qgemm does).
 */
#ifndef NNC_AVX512_EMU_H
#define NNC_AVX512_EMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct { int32_t i[16]; } __m512i;
typedef struct { float f[16]; } __m512;
typedef uint16_t __mmask16;

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

#endif
