/*
 * attention_vec.h - the vector bodies of attention.c, written once and
 * included by it once per kernel set, with
 *     VW    floats per vector (4 baseline, 8 AVX2, 16 AVX-512)
 *     VR    rows of the micro-kernel (its accumulators: VR x 32 / VW vectors)
 *     VSUF  name suffix (base, avx2, avx512)
 *     VATTR target attribute (empty for the baseline)
 * as GCC vector extensions, so one text serves every width.
 *
 * Everything is made of one micro-kernel: C[r][0:32] (+)= sum_x
 * A(r, x) B[x][0:32] for r < VR, A read as scalars with strides (so a
 * transposed A costs nothing) and B rows of 32 floats: the head's own rows
 * read in place when D is a multiple of 32 (q, k, v, dy: no copies), else
 * a local, zero-padded block. Per block of 32 queries and 32 keys:
 *   S  = Q kT                 (kT: the key block transposed and scaled, D x 32)
 *   O += P V                  (V: the value block, 32 x Dp, Dp = D rounded
 *                              up to 32, zero-padded)
 * and in the backward, with the key block outer (dK, dV of a key block
 * stay in a local block while every query block passes):
 *   S = Q kT, dP = dY vT, dS = P (z dP - D_i) scale
 *   dV += (P z)^T dY,  dK += dS^T Q,  dQ += dS K
 * Each element of a product is the same chain of multiply-adds whatever
 * the row grouping, so the backward's recomputed log-sum-exp equals the
 * forward's.
 */
#define V_CAT(a, b) V_CAT_(a, b)
#define V_CAT_(a, b) a##_##b
#define VN(name) V_CAT(name, VSUF)
#define VNV (BK / VW)   /* vectors per row of 32 */

typedef float VN(vf) __attribute__((vector_size(VW * 4), may_alias));
typedef int VN(vi) __attribute__((vector_size(VW * 4)));

/* acc + s b in one rounding where the ISA has fused multiply-adds (the
 * runtime is ISO C, where gcc does not contract a*b + c by itself): half
 * the micro-kernel's instructions */
#if VW == 8 && defined(ATTN_X86)
#define VFMA_S(acc, s, b) ((VN(vf))_mm256_fmadd_ps((__m256)(b), _mm256_set1_ps(s), (__m256)(acc)))
#elif VW == 16 && defined(ATTN_X86)
#define VFMA_S(acc, s, b) ((VN(vf))_mm512_fmadd_ps((__m512)(b), _mm512_set1_ps(s), (__m512)(acc)))
#else
#define VFMA_S(acc, s, b) ((acc) + (s) * (b))
#endif
typedef float VN(uf) __attribute__((vector_size(VW * 4), may_alias, aligned(4)));

/* y[d] += x[d] (add) or y[d] = x[d] for d < D (y unaligned, x aligned). */
static inline ALWAYS VATTR void VN(put_row)(float *y, const float *x, int D, int add)
{
    int d = 0;

    if (add) {
        for (; d + VW <= D; d += VW)
            *(VN(uf) *)(y + d) += *(const VN(vf) *)(x + d);
        for (; d < D; d++)
            y[d] += x[d];
    } else {
        for (; d + VW <= D; d += VW)
            *(VN(uf) *)(y + d) = *(const VN(vf) *)(x + d);
        for (; d < D; d++)
            y[d] = x[d];
    }
}

/* y[d] = m x[d] for d < D (y unaligned, x aligned). */
static inline ALWAYS VATTR void VN(scale_row)(float *y, const float *x, float m, int D)
{
    int d = 0;

    for (; d + VW <= D; d += VW)
        *(VN(uf) *)(y + d) = m * *(const VN(vf) *)(x + d);
    for (; d < D; d++)
        y[d] = m * x[d];
}

/* x . y over d < D (both may be unaligned), in VW lanes. */
static inline ALWAYS VATTR float VN(dot_row)(const float *x, const float *y, int D)
{
    VN(vf) acc = {0};
    float lanes[VW], sum = 0.0f;
    int d = 0, l;

    for (; d + VW <= D; d += VW)
        acc += *(const VN(uf) *)(x + d) * *(const VN(uf) *)(y + d);
    memcpy(lanes, &acc, sizeof lanes);
    for (l = 0; l < VW; l++)
        sum += lanes[l];
    for (; d < D; d++)
        sum += x[d] * y[d];
    return sum;
}

/* C[r*ldc + 0:NV*VW) (+)= sum_{x0 <= x < x1} a[r*ra + x*xa] b[x*ldb + ...)
 * for the R rows (R and NV compile-time constants after inlining). add 0:
 * C = the sum, and C's columns from NV*VW to 32 are written 0; 1: the
 * sum continues C's chain (C is its first term); 2: C += the sum (a
 * separate addition, as a local block added to C would give). With add
 * 1 or 2, columns past NV*VW are left as they are. b and c may be
 * unaligned (a head's rows read in place, D a multiple of 32). */
static inline ALWAYS VATTR void VN(mk_rows)(const int R, const int NV, int x0, int x1,
                                            const float *a, long ra, long xa, const float *b,
                                            long ldb, float *c, long ldc, int add)
{
    VN(vf) acc[VR][VNV];
    int r, v, x;

    UNROLL
    for (r = 0; r < R; r++)
        UNROLL
        for (v = 0; v < NV; v++)
            acc[r][v] = add == 1 ? *(const VN(uf) *)(c + r * ldc + v * VW) : (VN(vf)){0};
    for (x = x0; x < x1; x++) {
        const float *bx = b + x * ldb;
        VN(vf) bv[VNV];
        UNROLL
        for (v = 0; v < NV; v++)
            bv[v] = *(const VN(uf) *)(bx + v * VW);
        UNROLL
        for (r = 0; r < R; r++) {
            const float s = a[r * ra + x * xa];
            UNROLL
            for (v = 0; v < NV; v++)
                acc[r][v] = VFMA_S(acc[r][v], s, bv[v]);
        }
    }
    UNROLL
    for (r = 0; r < R; r++) {
        UNROLL
        for (v = 0; v < NV; v++) {
            VN(uf) *cv = (VN(uf) *)(c + r * ldc + v * VW);
            if (add == 2)
                *cv += acc[r][v];
            else
                *cv = acc[r][v];
        }
        UNROLL
        for (v = NV; v < VNV; v++)
            if (add == 0)
                *(VN(uf) *)(c + r * ldc + v * VW) = (VN(vf)){0};
    }
}

/* Causal diagonal blocks (query block i0 against key block j0 = i0) are
 * triangular; the products over them skip what is known to be zero:
 *   MK_FULL   every row over every x, all 32 columns;
 *   MK_COLS   C = scores: row r needs columns j <= r (the rest is
 *             masked), so a group of rows computes the vectors up to its
 *             last row's column and writes 0 past them (add 0 only);
 *   MK_LOWER  A(r, x) = 0 for x > r (P or dS times the keys' rows):
 *             a group's sums stop after its last row;
 *   MK_UPPER  A(r, x) = 0 for x < r (P^T, dS^T times the queries'
 *             rows): a group's sums start at its first row.
 * The terms skipped are 0 times finite values and C's columns skipped
 * are masked or 0, so every value is the full range's (up to the sign of
 * an all-zero sum). tri (attention.c's MK_*) is a constant at each call. */

/* One group of R rows starting at row r of a mk. */
static inline ALWAYS VATTR void VN(mk_group)(const int R, int r, int tri, int nx,
                                             const float *a, long ra, long xa, const float *b,
                                             long ldb, float *c, long ldc, int add)
{
    const int x0 = tri == MK_UPPER ? (r < nx ? r : nx) : 0;
    const int x1 = tri == MK_LOWER ? (r + R < nx ? r + R : nx) : nx;
    const int nv = (r + R + VW - 1) / VW;

    a += r * ra, c += r * ldc;
    if (tri != MK_COLS || nv >= VNV) {
        VN(mk_rows)(R, VNV, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        return;
    }
    switch (nv) {
#if VNV > 1
    case 1:
        VN(mk_rows)(R, 1, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
#endif
#if VNV > 2
    case 2:
        VN(mk_rows)(R, 2, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
#endif
#if VNV > 3
    case 3:
        VN(mk_rows)(R, 3, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
#endif
#if VNV > 4
    case 4:
        VN(mk_rows)(R, 4, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
    case 5:
        VN(mk_rows)(R, 5, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
    case 6:
        VN(mk_rows)(R, 6, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
    case 7:
        VN(mk_rows)(R, 7, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
        break;
#endif
    default:
        VN(mk_rows)(R, VNV, x0, x1, a, ra, xa, b, ldb, c, ldc, add);
    }
}

/* The same over nr rows: groups of VR, then single rows. */
static inline ALWAYS VATTR void VN(mk)(int nr, int nx, const float *a, long ra, long xa,
                                       const float *b, long ldb, float *c, long ldc, int add,
                                       int tri)
{
    int r = 0;

    for (; r + VR <= nr; r += VR)
        VN(mk_group)(VR, r, tri, nx, a, ra, xa, b, ldb, c, ldc, add);
    if (VR > 2 && r + 2 <= nr) {
        VN(mk_group)(2, r, tri, nx, a, ra, xa, b, ldb, c, ldc, add);
        r += 2;
    }
    for (; r < nr; r++)
        VN(mk_group)(1, r, tri, nx, a, ra, xa, b, ldb, c, ldc, add);
}

/* The same for Dp = 32 nc columns of B and C, in chunks of 32. */
static inline ALWAYS VATTR void VN(mk_wide)(int nr, int nx, const float *a, long ra, long xa,
                                            const float *b, long ldb, float *c, long ldc,
                                            int nc, int add, int tri)
{
    int ch;

    for (ch = 0; ch < nc; ch++)
        VN(mk)(nr, nx, a, ra, xa, b + ch * BK, ldb, c + ch * BK, ldc, add, tri);
}

/* kT[d*32 + j] = m x[j*st + d] (j < nk, d < D; other columns 0): the
 * scores' scale rides on the keys' transposition. */
static inline ALWAYS VATTR void VN(pack_t)(float *kT, const float *x, long st, int nk, int D,
                                           float m)
{
    int j, d, j8 = 0, d8 = 0;

    if (nk < BK)
        for (d = 0; d < D; d++)
            for (j = nk; j < BK; j++)
                kT[d * BK + j] = 0.0f;
#if defined(ATTN_X86) && VW >= 8
    j8 = nk / 8 * 8, d8 = D / 8 * 8;
    for (j = 0; j < j8; j += 8)
        for (d = 0; d < d8; d += 8)
            tr8x8(kT + d * BK + j, BK, x + j * st + d, st, m);
#endif
    for (j = 0; j < nk; j++)
        for (d = j < j8 ? d8 : 0; d < D; d++)
            kT[d * BK + j] = m * x[j * st + d];
}

/* p[j*Dp + d] = x[j*st + d] (j < n, d < D; columns D..Dp 0). */
static inline ALWAYS VATTR void VN(pack_rows)(float *p, int Dp, const float *x, long st, int n,
                                              int D)
{
    int j, d;

    for (j = 0; j < n; j++) {
        for (d = 0; d + VW <= D; d += VW)
            *(VN(vf) *)(p + j * Dp + d) = *(const VN(uf) *)(x + j * st + d);
        for (; d < D; d++)
            p[j * Dp + d] = x[j * st + d];
        for (; d < Dp; d++)
            p[j * Dp + d] = 0.0f;
    }
}

/* pr[j] = scale (sr[j] (pr[j] - dr)) for the 32 keys of a row (dP to
 * scale dS), in vectors: a scalar loop through pointers that may alias,
 * with scale read through the shape each time, was not vectorized. */
static inline ALWAYS VATTR void VN(ds_row)(float *pr, const float *sr, float dr, float scale)
{
    int v;

    for (v = 0; v < VNV; v++) {
        VN(vf) p = *(const VN(uf) *)(sr + v * VW), d = *(const VN(vf) *)(pr + v * VW);
        *(VN(vf) *)(pr + v * VW) = scale * (p * (d - dr));
    }
}

/* s[j] for j >= nj to -inf (masked), by whole vectors: scalar stores
 * just before max32's and exp32's vector loads of the same row stalled
 * every masked row (a load cannot take its data from narrower stores). */
static inline ALWAYS VATTR void VN(mask)(float *s, int nj)
{
    static const int iota[16] ALIGNED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const VN(vi) lane = *(const VN(vi) *)iota;
    const VN(vi) ninf = (VN(vi)){0} - 8388608;     /* 0xff800000: -inf */
    int v;

    for (v = nj / VW; v < VNV; v++) {
        const VN(vi) keep = lane + v * VW < (VN(vi)){0} + nj;
        const VN(vi) x = (VN(vi)) * (const VN(vf) *)(s + v * VW);
        *(VN(vf) *)(s + v * VW) = (VN(vf))((x & keep) | (ninf & ~keep));
    }
}

/* The row's maximum, in 8 lanes (the order cannot change a maximum). */
static inline ALWAYS VATTR float VN(max32)(const float *s)
{
#if defined(ATTN_X86) && VW >= 8
    /* the lanes' maxima reduced in registers: the scalar chain of seven
     * compares was a latency on every row of every block */
    __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_load_ps(s), _mm256_load_ps(s + 8)),
                             _mm256_max_ps(_mm256_load_ps(s + 16), _mm256_load_ps(s + 24)));
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
#else
    float m[8];
    int i, l;

    for (l = 0; l < 8; l++)
        m[l] = s[l];
    for (i = 8; i < BK; i += 8)
        for (l = 0; l < 8; l++)
            m[l] = s[i + l] > m[l] ? s[i + l] : m[l];
    for (l = 1; l < 8; l++)
        m[0] = m[l] > m[0] ? m[l] : m[0];
    return m[0];
#endif
}

/* The row's sum, in 8 lanes added in a fixed order. */
static inline ALWAYS VATTR float VN(sum32)(const float *s)
{
#if defined(ATTN_X86) && VW >= 8
    /* the same additions in the same order, reduced in registers */
    __m256 a = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_load_ps(s),
                                                         _mm256_load_ps(s + 8)),
                                           _mm256_load_ps(s + 16)),
                             _mm256_load_ps(s + 24));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));  /* (a0+a4)+(a2+a6), (a1+a5)+(a3+a7) */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
#else
    float a[8];
    int i, l;

    for (l = 0; l < 8; l++)
        a[l] = s[l];
    for (i = 8; i < BK; i += 8)
        for (l = 0; l < 8; l++)
            a[l] += s[i + l];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
#endif
}

/* s[j] = exp(s[j] - m) for the row's first nj (visible) keys and 0 for
 * the rest, for s[j] <= m (a softmax's): nnc_expf's operations in
 * vectors (each vector that holds a visible key; masked -inf gives 0),
 * with 2^n applied by one multiplication (nnc_expf's two, which only
 * matter for results that overflow or are subnormal) and 0 for n < -126:
 * the same bits wherever the result is normal, 0 where nnc_expf's is
 * subnormal (as under the step's flush-to-zero anyway). */
static inline ALWAYS VATTR void VN(exp32)(float *s, float m, int nj)
{
    const int nv = nj >= BK ? VNV : (nj + VW - 1) / VW;
    int v;

    /* the zeros in the same loop: a loop of its own became a memset
     * call (rep stos) for every short row */
    for (v = 0; v < VNV; v++) {
        if (v >= nv) {
            *(VN(vf) *)(s + v * VW) = (VN(vf)){0};
            continue;
        }
        const VN(vf) x = *(const VN(vf) *)(s + v * VW) - m;
        const VN(vf) t = x * 1.44269504088896341f + 12582912.0f;
        const VN(vi) nb = (VN(vi))t - 0x4b400000;       /* n */
        const VN(vf) n = __builtin_convertvector(nb + 150, VN(vf)) - 150.0f;
        VN(vf) r, r2, p;
        r = x - n * 0.693359375f;
        r = r - n * -2.12194440e-4f;
        r2 = r * r;
        p = (1.9875691500e-4f * r + 1.3981999507e-3f) * (r2 * r2) +
            (8.3334519073e-3f * r + 4.1665795894e-2f) * r2 +
            (1.6666665459e-1f * r + 5.0000001201e-1f);
        p = p * r2 + r + 1.0f;
        p = p * (VN(vf))((nb + 127) << 23);
        *(VN(vf) *)(s + v * VW) = (VN(vf))((VN(vi))p & (nb >= -126));
    }
}

/* One key block [j0, j0 + nk) of the online softmax of query rows
 * [i0, i0 + nq), their scores in S (rows of 32): each row becomes the
 * block's exp(s - m'), m[r] and l[r] are updated, and corr[r] =
 * exp(m - m') is the factor for the row's accumulator. Row by row the
 * operations of a one-row softmax step; the rows' corrections are
 * computed together, as one vector loop (a scalar exp per row was a
 * long dependent chain). */
static inline ALWAYS VATTR void VN(online)(const nnc_attn_shape *s, float *S, int i0, int nq,
                                           int j0, int nk, float *m, float *l, float *corr)
{
    float mn[BK];
    int nj[BK], r;

    for (r = 0; r < nq; r++) {
        float mx;
        nj[r] = visible(s, i0 + r, j0, nk);
        VN(mask)(S + r * BK, nj[r]);
        mx = VN(max32)(S + r * BK);
        mn[r] = mx > m[r] ? mx : m[r];
    }
    for (r = 0; r < nq; r++)
        corr[r] = nnc_selectf(m[r] == -INFINITY, 0.0f, nnc_expf(m[r] - mn[r]));
    for (r = 0; r < nq; r++) {
        VN(exp32)(S + r * BK, mn[r], nj[r]);
        l[r] = l[r] * corr[r] + VN(sum32)(S + r * BK);
        m[r] = mn[r];
    }
}

/* z[j] = the dropout factor of key j0 + j for query i (j < 32). */
static inline ALWAYS VATTR void VN(drop_factors)(float *z, const nnc_attn_shape *s, int b,
                                                 int h, int i, int j0, int nj)
{
    const float inv = 1.0f / (1.0f - s->dropout);
    int j;

    for (j = 0; j < BK; j++)
        z[j] = j < nj && nnc_attention_keep(s, b, h, i, j0 + j) ? inv : 0.0f;
}

/* The log-sum-exp of query rows [i0, i0 + nq) of a head. */
static inline ALWAYS VATTR void VN(rows_lse)(const nnc_attn_shape *s, const float *q,
                                             const float *k, int i0, int nq, float *kT,
                                             float *S, float *lse)
{
    const int T = s->T, D = s->D, jend = s->causal ? i0 + nq : T;
    float m[BK], l[BK], corr[BK];
    int r, j0;

    for (r = 0; r < nq; r++)
        m[r] = -INFINITY, l[r] = 0.0f;
    for (j0 = 0; j0 < jend; j0 += BK) {
        const int nk = jend - j0 < BK ? jend - j0 : BK;
        VN(pack_t)(kT, k + j0 * s->st, s->st, nk, D, s->scale);
        if (s->causal && j0 == i0)
            VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kT, BK, S, BK, 0, MK_COLS);
        else
            VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kT, BK, S, BK, 0, MK_FULL);
        VN(online)(s, S, i0, nq, j0, nk, m, l, corr);
    }
    for (r = 0; r < nq; r++)
        lse[r] = m[r] + logf(l[r]);
}

static VATTR void VN(fwd)(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int T = s->T, D = s->D, Dp = (D + BK - 1) / BK * BK, nc = Dp / BK;
    const long qo = b * s->sb + h * s->sh;
    const float *q = a->q + qo, *k = a->k + qo, *v = a->v + qo;
    float *o = a->out + b * s->ob + h * s->oh;
    ALIGNED float kT[HT * DMAX], vp[HT * DMAX], acc[BK * DMAX], S[BK * BK];
    float m[BK], l[BK], z[BK], corr[BK];
    const int hoist = T <= HT;  /* every key block packed once, up front */
    const int direct = D == Dp; /* the value rows read in place, not copied */
    const long vs = direct ? s->st : Dp;
    int i0, j0, r, d, j;

    for (j0 = 0; hoist && j0 < T; j0 += BK) {
        const int nk = T - j0 < BK ? T - j0 : BK;
        VN(pack_t)(kT + j0 * D, k + j0 * s->st, s->st, nk, D, s->scale);
        if (!direct)
            VN(pack_rows)(vp + j0 * Dp, Dp, v + j0 * s->st, s->st, nk, D);
    }
    for (i0 = 0; i0 < T; i0 += BK) {
        const int nq = T - i0 < BK ? T - i0 : BK, jend = s->causal ? i0 + nq : T;
        for (r = 0; r < nq; r++)
            m[r] = -INFINITY, l[r] = 0.0f;
        for (j0 = 0; j0 < jend; j0 += BK) {
            const int nk = jend - j0 < BK ? jend - j0 : BK;
            const float *kb = hoist ? kT + j0 * D : kT;
            const float *vb = direct ? v + j0 * s->st : hoist ? vp + j0 * Dp : vp;
            const int diag = s->causal && j0 == i0;  /* the causal triangle */
            if (!hoist)
                VN(pack_t)(kT, k + j0 * s->st, s->st, nk, D, s->scale);
            if (!hoist && !direct)
                VN(pack_rows)(vp, Dp, v + j0 * s->st, s->st, nk, D);
            if (diag)
                VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kb, BK, S, BK, 0, MK_COLS);
            else
                VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kb, BK, S, BK, 0, MK_FULL);
            VN(online)(s, S, i0, nq, j0, nk, m, l, corr);
            for (r = 0; r < nq; r++) {
                const int i = i0 + r, nj = visible(s, i, j0, nk);
                float *sr = S + r * BK, *ar = acc + r * Dp;
                if (s->dropout > 0.0f) {
                    VN(drop_factors)(z, s, b, h, i, j0, nj);
                    for (j = 0; j < BK; j++)
                        sr[j] *= z[j];
                }
                if (j0 > 0 && corr[r] != 1.0f)
                    for (d = 0; d < Dp; d += VW)
                        *(VN(vf) *)(ar + d) *= corr[r];
            }
            /* the first key block starts the accumulators (as zeros that
             * its correction, 0, would scale would) */
            if (diag)
                VN(mk_wide)(nq, nk, S, BK, 1, vb, vs, acc, Dp, nc, j0 > 0, MK_LOWER);
            else
                VN(mk_wide)(nq, nk, S, BK, 1, vb, vs, acc, Dp, nc, j0 > 0, MK_FULL);
        }
        for (r = 0; r < nq; r++) {
            VN(scale_row)(o + (i0 + r) * s->ot, acc + r * Dp, 1.0f / l[r], D);
            if (a->lse)
                a->lse[((long)b * s->H + h) * T + i0 + r] = m[r] + logf(l[r]);
        }
    }
}

/* The probabilities of a whole head, P[i*Tp + j] (Tp = T rounded up to
 * 32; 0 where masked), for a backward without the forward's lse and a
 * short sequence (T <= HT): every key block transposed once into kT, the
 * scores of each query block, its rows' softmax in blocks of 32 (so that
 * each exp is computed once). */
static inline ALWAYS VATTR void VN(head_probs)(const nnc_attn_shape *s, const float *q,
                                               const float *k, int Tp, float *kT, float *P)
{
    const int T = s->T, D = s->D;
    int i0, j0, r, jb;

    for (j0 = 0; j0 < T; j0 += BK)
        VN(pack_t)(kT + j0 * D, k + j0 * s->st, s->st, T - j0 < BK ? T - j0 : BK, D, s->scale);
    for (i0 = 0; i0 < T; i0 += BK) {
        const int nq = T - i0 < BK ? T - i0 : BK, jend = s->causal ? i0 + nq : T;
        for (j0 = 0; j0 < jend; j0 += BK)
            if (s->causal && j0 == i0)
                VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kT + j0 * D, BK, P + i0 * Tp + j0, Tp,
                       0, MK_COLS);
            else
                VN(mk)(nq, D, q + i0 * s->st, s->st, 1, kT + j0 * D, BK, P + i0 * Tp + j0, Tp,
                       0, MK_FULL);
        for (r = 0; r < nq; r++) {
            const int n = s->causal ? i0 + r + 1 : T;
            float *row = P + (i0 + r) * Tp, mx = -INFINITY, l = 0.0f, inv;
            for (jb = 0; jb < n; jb += BK) {
                float m1;
                VN(mask)(row + jb, n - jb);
                m1 = VN(max32)(row + jb);
                mx = m1 > mx ? m1 : mx;
            }
            for (jb = 0; jb < n; jb += BK) {
                VN(exp32)(row + jb, mx, n - jb);
                l += VN(sum32)(row + jb);
            }
            inv = 1.0f / l;
            for (jb = 0; jb < n; jb += BK) {
                int j;
                for (j = 0; j < BK; j++)
                    row[jb + j] *= inv;
            }
        }
    }
}

/* mk_wide with tri on a causal diagonal block, MK_FULL elsewhere (tri a
 * constant in each copy) */
#define MK_WIDE_TRI(diag, tri, ...)                  \
    do {                                             \
        if (diag)                                    \
            VN(mk_wide)(__VA_ARGS__, tri);           \
        else                                         \
            VN(mk_wide)(__VA_ARGS__, MK_FULL);       \
    } while (0)

static VATTR void VN(bwd)(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int T = s->T, D = s->D, Dp = (D + BK - 1) / BK * BK, nc = Dp / BK;
    const long qo = b * s->sb + h * s->sh, oo = b * s->ob + h * s->oh;
    const float *q = a->q + qo, *k = a->k + qo, *v = a->v + qo;
    const float *o = a->o + oo, *dy = a->dout + oo;
    float *dq = a->dq + qo, *dk = a->dk + qo, *dv = a->dv + qo;
    ALIGNED float kT[HT * DMAX], vT[BK * DMAX], kp[BK * DMAX], qp[HT * DMAX],
        dyp[HT * DMAX], dka[BK * DMAX], dva[BK * DMAX], dqt[BK * DMAX];
    ALIGNED float S[BK * BK], dP[BK * BK], pz[BK * BK];
    ALIGNED float P[PMAX];
    float lse[QCHUNK], di[HT], z[BK];
    const int Tp = (T + BK - 1) / BK * BK, stored = !a->lse_in && T <= HT && T * Tp <= PMAX;
    const int hoist = T <= HT;  /* every query block packed once, up front */
    /* D a multiple of 32: the rows of q, k and dy read in place */
    const int direct = D == Dp;
    const long qs = direct ? s->st : Dp, dys = direct ? s->ot : Dp;
    const float scale = s->scale;
    int c0, i0, j0, r, j;

    for (i0 = 0; hoist && i0 < T; i0 += BK) {
        const int nq = T - i0 < BK ? T - i0 : BK;
        if (!direct) {
            VN(pack_rows)(qp + i0 * Dp, Dp, q + i0 * s->st, s->st, nq, D);
            VN(pack_rows)(dyp + i0 * Dp, Dp, dy + i0 * s->ot, s->ot, nq, D);
        }
        for (r = 0; r < nq; r++)
            di[i0 + r] = VN(dot_row)(o + (i0 + r) * s->ot, dy + (i0 + r) * s->ot, D);
    }
    for (c0 = 0; c0 < T; c0 += QCHUNK) {
        const int cend = T - c0 < QCHUNK ? T : c0 + QCHUNK;
        const int kend = s->causal ? cend : T;
        if (stored)
            VN(head_probs)(s, q, k, Tp, kT, P);
        for (i0 = c0; i0 < cend && !stored; i0 += BK) {
            const int nq = cend - i0 < BK ? cend - i0 : BK;
            if (a->lse_in)
                for (r = 0; r < nq; r++)
                    lse[i0 - c0 + r] = a->lse_in[((long)b * s->H + h) * T + i0 + r];
            else
                VN(rows_lse)(s, q, k, i0, nq, kT, S, lse + (i0 - c0));
        }
        for (j0 = 0; j0 < kend; j0 += BK) {
            const int nk = kend - j0 < BK ? kend - j0 : BK;
            /* causal: query blocks from the key block's own */
            const int ifirst = s->causal && j0 > c0 ? j0 : c0;
            /* the key block's first chunk: no dk, dv written before */
            const int first = c0 == 0 || (s->causal && j0 >= c0);
            const float *kb = direct ? k + j0 * s->st : kp;
            if (!stored)
                VN(pack_t)(kT, k + j0 * s->st, s->st, nk, D, s->scale);
            VN(pack_t)(vT, v + j0 * s->st, s->st, nk, D, 1.0f);
            if (!direct)
                VN(pack_rows)(kp, Dp, k + j0 * s->st, s->st, nk, D);
            for (i0 = ifirst; i0 < cend; i0 += BK) {
                const int nq = cend - i0 < BK ? cend - i0 : BK;
                const float *qb = direct ? q + i0 * s->st : hoist ? qp + i0 * Dp : qp;
                const float *dyb = direct ? dy + i0 * s->ot : hoist ? dyp + i0 * Dp : dyp;
                const float *dib = hoist ? di + i0 : di;
                if (!hoist && !direct) {
                    VN(pack_rows)(qp, Dp, q + i0 * s->st, s->st, nq, D);
                    VN(pack_rows)(dyp, Dp, dy + i0 * s->ot, s->ot, nq, D);
                }
                if (!hoist)
                    for (r = 0; r < nq; r++)
                        di[r] = VN(dot_row)(o + (i0 + r) * s->ot, dy + (i0 + r) * s->ot, D);
                const int diag = s->causal && j0 == i0;  /* the causal triangle */
                if (!stored && diag)
                    VN(mk)(nq, D, qb, qs, 1, kT, BK, S, BK, 0, MK_COLS);
                else if (!stored)
                    VN(mk)(nq, D, qb, qs, 1, kT, BK, S, BK, 0, MK_FULL);
                if (diag)
                    VN(mk)(nq, D, dyb, dys, 1, vT, BK, dP, BK, 0, MK_COLS);
                else
                    VN(mk)(nq, D, dyb, dys, 1, vT, BK, dP, BK, 0, MK_FULL);
                for (r = 0; r < nq; r++) {
                    const int i = i0 + r, nj = visible(s, i, j0, nk);
                    float *sr = stored ? P + i * Tp + j0 : S + r * BK, *pr = dP + r * BK,
                          *zr = pz + r * BK;
                    const float dr = dib[r];
                    if (!stored) {
                        VN(mask)(sr, nj);
                        VN(exp32)(sr, lse[i - c0], nj);
                    }
                    if (s->dropout > 0.0f) {
                        VN(drop_factors)(z, s, b, h, i, j0, nj);
                        for (j = 0; j < BK; j++)
                            zr[j] = sr[j] * z[j], pr[j] *= z[j];
                    }
                    /* dP becomes scale * dS */
                    VN(ds_row)(pr, sr, dr, scale);
                }
                /* rows: the keys; reduction over the queries (the key
                 * block's first query block starts the sums); without
                 * dropout P z is P, read where it is */
                if (s->dropout > 0.0f)
                    MK_WIDE_TRI(diag, MK_UPPER, nk, nq, pz, 1, BK, dyb, dys, dva, Dp, nc,
                                i0 > ifirst);
                else
                    MK_WIDE_TRI(diag, MK_UPPER, nk, nq, stored ? P + i0 * Tp + j0 : S, 1,
                                stored ? Tp : BK, dyb, dys, dva, Dp, nc, i0 > ifirst);
                MK_WIDE_TRI(diag, MK_UPPER, nk, nq, dP, 1, BK, qb, qs, dka, Dp, nc, i0 > ifirst);
                /* dq: the first key block writes it, the others add their
                 * block's sum to it */
                if (direct) {
                    MK_WIDE_TRI(diag, MK_LOWER, nq, nk, dP, BK, 1, kb, s->st, dq + i0 * s->st,
                                s->st, nc, j0 > 0 ? 2 : 0);
                } else {
                    MK_WIDE_TRI(diag, MK_LOWER, nq, nk, dP, BK, 1, kb, Dp, dqt, Dp, nc, 0);
                    for (r = 0; r < nq; r++)
                        VN(put_row)(dq + (i0 + r) * s->st, dqt + r * Dp, D, j0 > 0);
                }
            }
            /* a key row's first chunk writes it, a later one adds */
            for (j = 0; j < nk; j++) {
                VN(put_row)(dk + (j0 + j) * s->st, dka + j * Dp, D, !first);
                VN(put_row)(dv + (j0 + j) * s->st, dva + j * Dp, D, !first);
            }
        }
    }
}

/* Row pos of the forward (causal): query pos against keys 0..pos, the
 * forward's operations for that row in its order, so the same bits. */
static VATTR void VN(decode)(const AttnArgs *a, int b, int h)
{
    const nnc_attn_shape *s = a->s;
    const int D = s->D, Dp = (D + BK - 1) / BK * BK, nc = Dp / BK, pos = a->pos;
    const long qo = b * s->sb + h * s->sh;
    const float *q = a->q + qo + pos * s->st, *k = a->k + qo, *v = a->v + qo;
    ALIGNED float kT[BK * DMAX], vp[BK * DMAX], acc[DMAX], S[BK];
    float m = -INFINITY, l = 0.0f;
    int j0, d;

    memset(acc, 0, (size_t)Dp * sizeof *acc);
    for (j0 = 0; j0 <= pos; j0 += BK) {
        const int nk = pos + 1 - j0 < BK ? pos + 1 - j0 : BK;
        float corr;
        VN(pack_t)(kT, k + j0 * s->st, s->st, nk, D, s->scale);
        VN(pack_rows)(vp, Dp, v + j0 * s->st, s->st, nk, D);
        VN(mk)(1, D, q, s->st, 1, kT, BK, S, BK, 0, MK_FULL);
        VN(online)(s, S, pos, 1, j0, nk, &m, &l, &corr);
        if (corr != 1.0f)
            for (d = 0; d < Dp; d += VW)
                *(VN(vf) *)(acc + d) *= corr;
        VN(mk_wide)(1, nk, S, BK, 1, vp, Dp, acc, Dp, nc, 1, MK_FULL);
    }
    VN(scale_row)(a->out + b * s->ob + h * s->oh + pos * s->ot, acc, 1.0f / l, D);
}

#undef VFMA_S
#undef MK_WIDE_TRI
#undef VW
#undef VR
#undef VSUF
#undef VATTR
