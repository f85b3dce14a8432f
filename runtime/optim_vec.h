/*
 * optim_vec.h - the SIMD optimizer kernels of optim.c, written once and
 * included by it once per ISA: with OPTIM_VEC_AVX512 (NAME_avx512),
 * OPTIM_VEC_AVX (NAME_avx, 8 lanes) or OPTIM_VEC_NEON (NAME_neon). Each
 * kernel does the whole vectors of [lo, hi) with the scalar loop's IEEE
 * operations in its order (no FMA) and returns where the tail starts.
 */
#if defined(OPTIM_VEC_AVX512)
#undef OPTIM_VEC_AVX512
#define V __m512
#define W 16
#if defined(NNC_AVX512_EMULATE)   /* tests/runtime/avx512_emu.sh */
#define KERNEL(name) static size_t name##_avx512
#else
#define KERNEL(name) __attribute__((target("avx512f"))) static size_t name##_avx512
#endif
#define vset _mm512_set1_ps
#define vld _mm512_loadu_ps
#define vst _mm512_storeu_ps
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vsqrt _mm512_sqrt_ps
#elif defined(OPTIM_VEC_AVX)
#undef OPTIM_VEC_AVX
#define V __m256
#define W 8
#define KERNEL(name) __attribute__((target("avx"))) static size_t name##_avx
#define vset _mm256_set1_ps
#define vld _mm256_loadu_ps
#define vst _mm256_storeu_ps
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vsqrt _mm256_sqrt_ps
#elif defined(OPTIM_VEC_NEON)
#undef OPTIM_VEC_NEON
#define V float32x4_t
#define W 4
#define KERNEL(name) static size_t name##_neon
#define vset vdupq_n_f32
#define vld vld1q_f32
#define vst vst1q_f32
#define vadd vaddq_f32
#define vsub vsubq_f32
#define vmul vmulq_f32
#define vdiv vdivq_f32
#define vsqrt vsqrtq_f32
#else
#error "optim_vec.h: define OPTIM_VEC_AVX512, OPTIM_VEC_AVX or OPTIM_VEC_NEON"
#endif

/* The update's loop with AdamW's decay (DECAY) and the L2 term (L2) on
 * or off: constants in each copy, so plain Adam's loop has neither. */
#define ADAM_LOOP(DECAY, L2)                                              \
    for (; i + W <= hi; i += W) {                                         \
        V p = DECAY ? vmul(vld(a->p + i), decay) : vld(a->p + i);         \
        V g = L2 ? vadd(vld(a->g + i), vmul(wd, p)) : vld(a->g + i);      \
        V m0 = vld(a->m + i);                                             \
        V m = vadd(m0, vmul(b1c, vsub(g, m0)));                           \
        V v = vadd(vmul(b2, vld(a->v + i)), vmul(vmul(b2c, g), g));       \
        vst(a->m + i, m);                                                 \
        vst(a->v + i, v);                                                 \
        V d = vadd(vmul(vsqrt(v), ibc2), eps);                            \
        V u = vdiv(vmul(step, m), d);                                     \
        vst(a->p + i, vsub(p, u));                                        \
    }

KERNEL(adam)(const AdamArgs *a, size_t lo, size_t hi)
{
    const V b1c = vset(a->b1c), b2 = vset(a->b2);
    const V b2c = vset(a->b2c), eps = vset(a->eps);
    const V step = vset(a->step), ibc2 = vset(a->ibc2);
    const V decay = vset(a->decay), wd = vset(a->wd);
    size_t i = lo;
    if (a->wd != 0.0f) {
        if (a->decay != 1.0f)
            ADAM_LOOP(1, 1)
        else
            ADAM_LOOP(0, 1)
    } else if (a->decay != 1.0f) {
        ADAM_LOOP(1, 0)
    } else {
        ADAM_LOOP(0, 0)
    }
    return i;
}
#undef ADAM_LOOP

KERNEL(sgd)(const SgdArgs *a, size_t lo, size_t hi)
{
    const V lr = vset(a->lr), mom = vset(a->momentum);
    const V wd = vset(a->wd);
    size_t i = lo;
    for (; i + W <= hi; i += W) {
        V p = vld(a->p + i), d = vld(a->g + i);
        if (a->wd != 0.0f)
            d = vadd(d, vmul(wd, p));
        if (a->vel) {
            V b = vadd(vmul(mom, vld(a->vel + i)), d);
            vst(a->vel + i, b);
            d = a->nesterov ? vadd(d, vmul(mom, b)) : b;
        }
        vst(a->p + i, vsub(p, vmul(lr, d)));
    }
    return i;
}

KERNEL(rms)(const RmsArgs *a, size_t lo, size_t hi)
{
    const V rho = vset(a->rho), rhoc = vset(a->rhoc);
    const V mom = vset(a->momentum), eps = vset(a->eps);
    const V lr = vset(a->lr);
    size_t i = lo;
    for (; i + W <= hi; i += W) {
        V g = vld(a->g + i), d, avg;
        V s = vadd(vmul(vld(a->sq + i), rho), vmul(vmul(rhoc, g), g));
        vst(a->sq + i, s);
        if (a->gavg) {
            V ga0 = vld(a->gavg + i);
            V ga = vadd(ga0, vmul(rhoc, vsub(g, ga0)));
            vst(a->gavg + i, ga);
            s = vsub(s, vmul(ga, ga));
        }
        avg = vadd(vsqrt(s), eps);
        d = vdiv(g, avg);
        if (a->buf) {
            d = vadd(vmul(vld(a->buf + i), mom), d);
            vst(a->buf + i, d);
        }
        vst(a->p + i, vsub(vld(a->p + i), vmul(lr, d)));
    }
    return i;
}

KERNEL(adagrad)(const AdagradArgs *a, size_t lo, size_t hi)
{
    const V lr = vset(a->lr), eps = vset(a->eps);
    size_t i = lo;
    for (; i + W <= hi; i += W) {
        V g = vld(a->g + i);
        V s = vadd(vld(a->sum + i), vmul(g, g));
        vst(a->sum + i, s);
        V d = vdiv(g, vadd(vsqrt(s), eps));
        vst(a->p + i, vsub(vld(a->p + i), vmul(lr, d)));
    }
    return i;
}

#undef V
#undef W
#undef KERNEL
#undef vset
#undef vld
#undef vst
#undef vadd
#undef vsub
#undef vmul
#undef vdiv
#undef vsqrt
