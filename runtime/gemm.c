/*
 * gemm.c - single-precision GEMM for libnncrt: C = alpha*op(A)*op(B) + beta*C,
 * row-major, with BLAS-like arguments (see nncrt.h).
 *
 * nnc_sgemm_ref is the plain triple loop, one dot product per element of C;
 * it is always built and is what every faster path is tested against.
 *
 * nnc_sgemm is the GotoBLAS/BLIS scheme around per-ISA micro-kernels
 * (gemm_kern.h; AVX-512, AVX2+FMA, NEON, portable scalar), chosen once
 * from the CPU or by NNC_ISA / nnc_set_isa. Large problems take the packed
 * path: for each nc-wide column block of C and kc-deep slice of k, op(B)
 * is packed into nr-wide panels (kept in L3), then for each mc-high row
 * block op(A) is packed into mr-high panels (kept in L2), and the kernel
 * walks one B panel (kept in L1) down all A panels. Small problems (the
 * layers of a small MLP at batch 32) take the direct path: no packing,
 * the kernel reads A and B in place through strides, except that a
 * transposed B is copied one panel at a time, since the kernel needs rows
 * of B contiguous. Either path may run a problem as its transpose, C^T =
 * op(B)^T op(A)^T, when that packs fewer floats (see flip_pays), and
 * transposes with the kernel set's register blocks (see transpose).
 *
 * Threads (thread.c's pool) claim rectangles of C whose edges lie on the
 * mr x nr tile grid, a few per thread, and run the same sequential
 * algorithm on each with their own buffers. k is never split between threads and its blocking
 * depends only on k, so every element of C sees the same operations in
 * the same order for any thread count: results are bit-identical.
 *
 * Matrix-vector products (n == 1) skip tiles: one dot product per row, or
 * for a transposed A a one-row GEMM on the transposed problem.
 *
 * Packing buffers come from a small pool of slots allocated on first use
 * and kept, so after warm-up no call allocates. Denormals are flushed to
 * zero during the call (nnc_fp_enter: MXCSR FTZ|DAZ on x86, FPCR.FZ on
 * aarch64; not with nnc_set_flush_denormals(0)) and the caller's mode is
 * restored before returning, in every thread that worked
 * (exception flags raised meanwhile stay raised, as for any arithmetic).
 * When beta == 0, C is only written, never read (as in BLAS).
 */
#include <stdlib.h>
#include <string.h>

#include "gemm_kern.h"
#include "pool.h"
#include "nncrt.h"

/* ---- Reference ---------------------------------------------------------- */

void nnc_sgemm_ref(int trans_a, int trans_b, int m, int n, int k,
                   float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    size_t i, j, p;
    size_t M, N, K, LDA, LDB, LDC;

    if (m <= 0 || n <= 0 || k < 0)
        return;
    M = (size_t)m, N = (size_t)n, K = (size_t)k;
    LDA = (size_t)lda, LDB = (size_t)ldb, LDC = (size_t)ldc;

    for (i = 0; i < M; i++) {
        for (j = 0; j < N; j++) {
            float sum = 0.0f;
            float *cij = &c[i * LDC + j];

            for (p = 0; p < K; p++) {
                float aip = trans_a ? a[p * LDA + i] : a[i * LDA + p];
                float bpj = trans_b ? b[j * LDB + p] : b[p * LDB + j];
                sum += aip * bpj;
            }
            if (beta == 0.0f)
                *cij = alpha * sum;
            else
                *cij = alpha * sum + beta * *cij;
        }
    }
}

/* ---- Problem, blocking helpers ------------------------------------------ */

/* One call's arguments. op(A)(i,p) = a[i*rsa + p*csa] and op(B)(p,j) =
 * b[p*rsb + j*csb]. */
typedef struct Gemm {
    size_t m, n, k;
    const float *a, *b;
    size_t rsa, csa, rsb, csb;
    float *c;
    size_t ldc;
    float alpha, beta;
    int ta, tb, lda, ldb;   /* as given, for the reference fallback */
    const SmallArgs *epi;   /* applied to each rectangle after its product
                             * (bias, ReLU, mask; no column sums), or NULL */
    const GemmSmall *sm;    /* its epilogue pass */
} Gemm;

/* Direct path when k and the whole problem are this small (measured with
 * bench/gemm_bench.c: packing stops paying below these). */
#ifndef DIRECT_K
#define DIRECT_K 256
#endif
#ifndef DIRECT_MNK
#define DIRECT_MNK ((size_t)128 * 128 * 128)
#endif
/* Threads only above this many multiply-adds (m*n*k): below it waking
 * a worker costs more than the second core gains. */
#define THREAD_MNK ((size_t)96 * 96 * 96)

static size_t min_sz(size_t x, size_t y)
{
    return x < y ? x : y;
}

static size_t round_up(size_t x, size_t unit)
{
    return (x + unit - 1) / unit * unit;
}

/* The step for blocking len by at most blk: equal steps (a multiple of unit)
 * rather than full blocks and a thin remainder. */
static size_t block_step(size_t len, size_t blk, size_t unit)
{
    size_t nblocks = (len + blk - 1) / blk;

    return round_up((len + nblocks - 1) / nblocks, unit);
}

/* c[0..n) *= beta, writing zeros (not reading c) when beta == 0. */
static void scale_row(float *c, size_t n, float beta)
{
    size_t j;

    if (beta == 0.0f)
        memset(c, 0, n * sizeof *c);
    else if (beta != 1.0f)
        for (j = 0; j < n; j++)
            c[j] *= beta;
}

/* ---- Packing ------------------------------------------------------------ */

/* dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols: the kernel set's
 * register blocks where whole, scalar code at the edges. */
static void transpose(const GemmKern *kn, const float *src, size_t lds,
                      size_t rows, size_t cols, float *dst, size_t ldd)
{
    size_t tw = kn->tr != NULL ? kn->tw : 1;
    size_t r0 = kn->tr != NULL ? rows / tw * tw : 0;
    size_t c0 = kn->tr != NULL ? cols / tw * tw : 0;
    size_t i, j;

    for (i = 0; i < r0; i += tw)
        for (j = 0; j < c0; j += tw)
            kn->tr(src + i * lds + j, lds, dst + j * ldd + i, ldd);
    for (i = 0; i < rows; i++) {    /* the right edge, then the bottom */
        const float *s = src + i * lds;
        for (j = i < r0 ? c0 : 0; j < cols; j++)
            dst[j * ldd + i] = s[j];
    }
}

/* dst[p*mr + 0:mr] = src[p*lds + 0:mr] for p < kc: a transposed A's
 * columns, mr contiguous floats each, into a panel. With mr a constant
 * in each case the copies are a few vector moves, not mr scalar ones (the
 * GPT's weight gradients dY^T X spent a fifth of their time in the
 * scalar loop). */
#define PACK_COLS(MR)                                                  \
    case MR:                                                           \
        for (p = 0; p < kc; p++)                                       \
            memcpy(dst + p * (MR), src + p * lds, (MR) * sizeof *dst); \
        return
static void pack_cols(float *dst, const float *src, size_t lds, size_t kc, size_t mr)
{
    size_t p, i;

    switch (mr) {
    PACK_COLS(4);
    PACK_COLS(6);
    PACK_COLS(8);
    PACK_COLS(14);
    PACK_COLS(16);
    default:
        for (p = 0; p < kc; p++)
            for (i = 0; i < mr; i++)
                dst[p * mr + i] = src[p * lds + i];
    }
}
#undef PACK_COLS

/* op(A)[i0:i0+mc, p0:p0+kc] as mr-high panels, each kc columns of mr
 * floats, rows past mc zero. */
static void pack_a(const Gemm *g, size_t mr, size_t i0, size_t mc,
                   size_t p0, size_t kc, float *dst)
{
    size_t ir, i, p;

    for (ir = 0; ir < mc; ir += mr, dst += mr * kc) {
        size_t rows = min_sz(mr, mc - ir);
        const float *src = g->a + (i0 + ir) * g->rsa + p0 * g->csa;

        if (g->rsa == 1 && rows == mr) {  /* A transposed, a whole panel */
            pack_cols(dst, src, g->csa, kc, mr);
        } else if (g->rsa == 1) {  /* A transposed: columns of op(A) in rows */
            for (p = 0; p < kc; p++) {
                const float *s = src + p * g->csa;
                for (i = 0; i < rows; i++)
                    dst[p * mr + i] = s[i];
                for (; i < mr; i++)
                    dst[p * mr + i] = 0.0f;
            }
        } else {
            for (i = 0; i < rows; i++) {
                const float *s = src + i * g->rsa;
                for (p = 0; p < kc; p++)
                    dst[p * mr + i] = s[p];
            }
            for (; i < mr; i++)
                for (p = 0; p < kc; p++)
                    dst[p * mr + i] = 0.0f;
        }
    }
}

/* op(B)[p0:p0+kc, j0:j0+nc] as nr-wide panels, each kc rows of nr floats,
 * columns past nc zero. Source rows are read in order, so that the
 * hardware prefetcher sees one stream per row of B, not a stride. */
static void pack_b(const Gemm *g, const GemmKern *kn, size_t nr, size_t p0,
                   size_t kc, size_t j0, size_t nc, float *dst)
{
    size_t jr, j, p;

    if (g->csb == 1) {          /* B not transposed: rows contiguous */
        for (p = 0; p < kc; p++) {
            const float *src = g->b + (p0 + p) * g->rsb + j0;
            float *d = dst + p * nr;
            for (jr = 0; jr < nc; jr += nr, d += nr * kc) {
                size_t cols = min_sz(nr, nc - jr);
                memcpy(d, src + jr, cols * sizeof *d);
                for (j = cols; j < nr; j++)
                    d[j] = 0.0f;
            }
        }
        return;
    }
    for (jr = 0; jr < nc; jr += nr, dst += nr * kc) {
        size_t cols = min_sz(nr, nc - jr);
        transpose(kn, g->b + p0 + (j0 + jr) * g->csb, g->csb, cols, kc, dst, nr);
        for (p = 0; cols < nr && p < kc; p++)
            for (j = cols; j < nr; j++)
                dst[p * nr + j] = 0.0f;
    }
}

/* ---- Buffer pool -------------------------------------------------------- */

/* Slots of packing memory, claimed by one thread at a time and kept after
 * use. When all are busy (many callers at once) a call allocates its own. */
#define NSLOTS 16
#define ALIGN 64

typedef nnc_scratch Buf;

#if defined(__GNUC__)
static struct {
    void *raw;
    float *p;
    size_t cap;
    int busy;
} pool[NSLOTS];
#endif

static float *align_up(void *raw)
{
    uintptr_t u = (uintptr_t)raw;

    return (float *)(void *)((u + ALIGN - 1) / ALIGN * ALIGN);
}

/* At least floats floats, 64-byte aligned; buf.p is NULL on failure. */
static Buf buf_get(size_t floats)
{
    Buf buf = {NULL, NULL, -1};
    size_t bytes = floats * sizeof(float) + ALIGN;

#if defined(__GNUC__)
    int i;
    for (i = 0; i < NSLOTS; i++) {
        if (__atomic_exchange_n(&pool[i].busy, 1, __ATOMIC_ACQUIRE))
            continue;
        if (pool[i].cap < floats) {
            void *raw = malloc(bytes);
            if (raw == NULL) {
                __atomic_store_n(&pool[i].busy, 0, __ATOMIC_RELEASE);
                return buf;
            }
            free(pool[i].raw);
            pool[i].raw = raw;
            pool[i].p = align_up(raw);
            pool[i].cap = floats;
        }
        buf.p = pool[i].p;
        buf.slot = i;
        return buf;
    }
#endif
    buf.raw = malloc(bytes);
    if (buf.raw != NULL)
        buf.p = align_up(buf.raw);
    return buf;
}

static void buf_put(Buf buf)
{
#if defined(__GNUC__)
    if (buf.slot >= 0) {
        __atomic_store_n(&pool[buf.slot].busy, 0, __ATOMIC_RELEASE);
        return;
    }
#endif
    free(buf.raw);
}

nnc_scratch nnc_scratch_get(size_t floats)
{
    return buf_get(floats);
}

void nnc_scratch_put(nnc_scratch s)
{
    buf_put(s);
}

/* ---- Sequential paths over one rectangle of C --------------------------- */

/* Packing an operand costs a copy of it per use, while the product reuses
 * each element of op(A) n times and each of op(B) m times: with few
 * columns of C (a convolution's filters) packing A costs about as much as
 * the product, and with few rows (a weight gradient) packing B does. Such
 * an operand is read in place when its rows are contiguous, at a row
 * stride that does not map too many of the rows read together to the
 * same cache sets (see a_in_place). The kernels compute each element of C
 * identically from packed or strided operands, so this changes speed,
 * never results. (Measured on the Fashion-MNIST CNN's GEMMs: the
 * convolution 7744x64x288 went from 144 to 250 GFLOP/s, its weight
 * gradient 64x288x7744 from 150 to 183; its input gradient 7744x288x64
 * from 210 to 250, with n up to 512.) */
#ifndef INPLACE_MAX
#define INPLACE_MAX 512
#endif

/* Rows of A that a tile reads at once (the kernel's mr) fall into the
 * same L1 sets when their stride is a multiple of 512 floats: half of
 * them at an odd multiple (2 KB apart, sets repeat every 4 KB), all of
 * them at an even one. Up to 4 rows to a set leave room for the B panel
 * in an 8-way L1 (AVX2's 6-row tiles at stride 512, the GPT's MLP down
 * projection 768x128x512: 76 -> 91 GFLOP/s on a Zen 3 core); more (the
 * AVX-512 tiles) are packed. */
static int a_in_place(const Gemm *g, const GemmKern *kn)
{
    size_t per_set = g->rsa % 1024 == 0 ? kn->mr : (kn->mr + 1) / 2;

    return g->csa == 1 && g->n <= INPLACE_MAX && (g->rsa % 512 != 0 || per_set <= 4);
}

static size_t gcd_sz(size_t a, size_t b)
{
    while (b != 0) {
        size_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* B in place: a kernel walks one nr-wide panel, kc rows rsb floats apart,
 * down a column of tiles, so the panel must stay in L1. Rows whose stride
 * has a large power-of-two factor fall into few of its 64 sets (a stride
 * of 128 floats into every eighth: a 256-row panel then needs 32 lines
 * of an 8-way set, and each tile reloads it from L2); read in place
 * when each set holds at most L1_PANEL_WAYS of the panel's lines, and
 * pack otherwise, unless the packed block (kc rows of all n columns)
 * would not stay in L2 either (BIG_B_BYTES: a dense layer's input
 * gradient at batch 64, 64x1600x128, B = W of 800 KB, was 30% slower
 * packed). Measured on a Zen 3 core (the sum of per-kernel minima over
 * alternated runs): the GPT's weight gradients dY^T X, B = X with 128 or
 * 384 columns, 72-78 -> 79-83 GFLOP/s (3-7% of the step); a
 * convolution's weight gradient over 227-row blocks of its im2col, 288
 * columns, 4.4-4.9 -> 3.7-4.1 ms a step. */
#define L1_SETS 64
#define L1_PANEL_WAYS 4
#define BIG_B_BYTES ((size_t)512 * 1024)

static int b_in_place(const Gemm *g, const GemmKern *kn)
{
    size_t kc = block_step(g->k, kn->kc, 1);
    size_t lines = kc * ((kn->nr * sizeof(float) + 63) / 64);
    size_t sets = L1_SETS * 16 / gcd_sz(g->rsb, L1_SETS * 16);  /* 16 floats a line */

    if (g->csb != 1 || !kn->masked_b || g->m > INPLACE_MAX)
        return 0;
    return lines <= sets * L1_PANEL_WAYS ||
           (kc * g->n * sizeof(float) > BIG_B_BYTES && g->rsb % 512 != 0);
}

/* The rows x cols tile of C at c toward L1 before a kernel spends k steps
 * on it, so that its stores do not wait for memory when C is much larger
 * than the caches (a convolution's 6400x288 input gradient, 7.4 MB: 87-92
 * -> 89-94 GFLOP/s on AVX2, on a machine busy with other processes). Done
 * here, not in the kernels: inside them it slowed the store-bound k = 9
 * tiles by 4% even when skipped. */
static void prefetch_c(const float *c, size_t ldc, size_t rows, size_t cols,
                       size_t k)
{
#if defined(__GNUC__)
    size_t i, j;

    if (k < 32)
        return;
    for (i = 0; i < rows; i++) {
        for (j = 0; j < cols; j += 16)
            __builtin_prefetch(c + i * ldc + j, 1);
        __builtin_prefetch(c + i * ldc + cols - 1, 1);
    }
#else
    (void)c, (void)ldc, (void)rows, (void)cols, (void)k;
#endif
}

/* C[m0:m1, n0:n1] with packing; buf holds mc*kc + kc*nc floats. */
static void gemm_packed(const Gemm *g, const GemmKern *kn, size_t m0,
                        size_t m1, size_t n0, size_t n1, float *buf)
{
    size_t mr = kn->mr, nr = kn->nr;
    size_t kcs = block_step(g->k, kn->kc, 1);
    size_t mcs = block_step(m1 - m0, kn->mc, mr);
    size_t ncs = block_step(n1 - n0, kn->nc, nr);
    float *ab = buf, *bb = buf + kn->mc * kn->kc;
    int ain = a_in_place(g, kn), bin = b_in_place(g, kn);
    size_t jc, pc, ic, jr, ir;

    for (jc = n0; jc < n1; jc += ncs) {
        size_t nc = min_sz(ncs, n1 - jc);
        for (pc = 0; pc < g->k; pc += kcs) {
            size_t kc = min_sz(kcs, g->k - pc);
            float beta = pc == 0 ? g->beta : 1.0f;
            /* panel jr of op(B): at bp + jr * bstep, rows ldb apart */
            const float *bp = bin ? g->b + pc * g->rsb + jc : bb;
            size_t bstep = bin ? 1 : kc, ldb = bin ? g->rsb : nr;
            if (!bin)
                pack_b(g, kn, nr, pc, kc, jc, nc, bb);
            for (ic = m0; ic < m1; ic += mcs) {
                size_t mc = min_sz(mcs, m1 - ic);
                if (ain) {
                    const float *ap = g->a + ic * g->rsa + pc;
                    for (jr = 0; jr < nc; jr += nr)
                        for (ir = 0; ir < mc; ir += mr) {
                            float *c = g->c + (ic + ir) * g->ldc + jc + jr;
                            size_t rows = min_sz(mr, mc - ir), cols = min_sz(nr, nc - jr);
                            prefetch_c(c, g->ldc, rows, cols, kc);
                            kn->strided(rows, cols, kc, ap + ir * g->rsa, g->rsa, 1,
                                        bp + jr * bstep, ldb, c, g->ldc, g->alpha, beta);
                        }
                    continue;
                }
                pack_a(g, mr, ic, mc, pc, kc, ab);
                for (jr = 0; jr < nc; jr += nr) {
                    /* B read in place: a last panel narrower than the tile
                     * takes the masked loads, not reads past B's end */
                    GemmTileFn *tile = bin && nc - jr < nr ? kn->strided : kn->packed;
                    for (ir = 0; ir < mc; ir += mr) {
                        float *c = g->c + (ic + ir) * g->ldc + jc + jr;
                        size_t rows = min_sz(mr, mc - ir), cols = min_sz(nr, nc - jr);
                        prefetch_c(c, g->ldc, rows, cols, kc);
                        tile(rows, cols, kc, ab + ir * kc, 1, mr, bp + jr * bstep, ldb,
                             c, g->ldc, g->alpha, beta);
                    }
                }
            }
        }
    }
}

/* A small C over a long k (a first convolution's weight gradient: 32 x 9
 * over k = batch * 26 * 26) has too few tiles to repay any packing, and
 * padded to whole tiles it wastes most of each: one strided kernel call
 * per tile over all of k reads both operands once, in place. A C with
 * fewer columns than rows fits the tiles better transposed, C^T =
 * op(B)^T op(A)^T, when op(A)'s columns are contiguous (A stored
 * transposed, as a gradient's dY^T is); that tile goes through a small
 * buffer. Returns 0 (not such a problem), 1 (C as is) or 2 (transposed). */
#define TALL_TILES 4

static size_t ntiles(size_t rows, size_t cols, const GemmKern *kn)
{
    return ((rows + kn->mr - 1) / kn->mr) * ((cols + kn->nr - 1) / kn->nr);
}

static int tall_kind(const Gemm *g, const GemmKern *kn)
{
    size_t t1 = g->csb == 1 ? ntiles(g->m, g->n, kn) : (size_t)-1;
    size_t t2 = g->rsa == 1 ? ntiles(g->n, g->m, kn) : (size_t)-1;

    if (g->k <= DIRECT_K || !kn->masked_b || (t1 > TALL_TILES && t2 > TALL_TILES))
        return 0;
    return t2 < t1 ? 2 : 1;
}

/* C[m0:m1, n0:n1] of a tall_kind problem; buf holds mr*nr floats. */
static void gemm_tall(const Gemm *g, const GemmKern *kn, int kind, size_t m0,
                      size_t m1, size_t n0, size_t n1, float *buf)
{
    size_t mr = kn->mr, nr = kn->nr, i0, j0, i, j;

    if (kind == 1) {
        for (j0 = n0; j0 < n1; j0 += nr)
            for (i0 = m0; i0 < m1; i0 += mr)
                kn->strided(min_sz(mr, m1 - i0), min_sz(nr, n1 - j0), g->k,
                            g->a + i0 * g->rsa, g->rsa, g->csa, g->b + j0, g->rsb,
                            g->c + i0 * g->ldc + j0, g->ldc, g->alpha, g->beta);
        return;
    }
    /* tile (rows j0.., columns i0..) of C^T: its A is op(B)^T, element
     * (j, p) at b[p*rsb + j*csb]; its B is op(A)^T, row p at a + p*csa */
    for (i0 = m0; i0 < m1; i0 += nr)
        for (j0 = n0; j0 < n1; j0 += mr) {
            size_t rows = min_sz(mr, n1 - j0), cols = min_sz(nr, m1 - i0);
            kn->strided(rows, cols, g->k, g->b + j0 * g->csb, g->csb, g->rsb,
                        g->a + i0, g->csa, buf, nr, g->alpha, 0.0f);
            for (j = 0; j < rows; j++)
                for (i = 0; i < cols; i++) {
                    float *c = g->c + (i0 + i) * g->ldc + j0 + j;
                    float t = buf[j * nr + i];
                    *c = g->beta == 0.0f ? t : t + g->beta * *c;
                }
        }
}

/* C[m0:m1, n0:n1] reading A in place, and B too unless it is transposed or
 * a partial panel the kernel cannot mask; buf holds k*nr floats. */
static void gemm_direct(const Gemm *g, const GemmKern *kn, size_t m0,
                        size_t m1, size_t n0, size_t n1, float *buf)
{
    size_t mr = kn->mr, nr = kn->nr;
    size_t jr, ir;

    for (jr = n0; jr < n1; jr += nr) {
        size_t cols = min_sz(nr, n1 - jr);
        const float *bp = g->b + jr * g->csb;
        size_t ldb = g->rsb;

        if (g->csb != 1 || (cols < nr && !kn->masked_b)) {
            pack_b(g, kn, nr, 0, g->k, jr, cols, buf);
            bp = buf, ldb = nr;
        }
        for (ir = m0; ir < m1; ir += mr) {
            size_t rows = min_sz(mr, m1 - ir);
            prefetch_c(g->c + ir * g->ldc + jr, g->ldc, rows, cols, g->k);
            kn->strided(rows, cols, g->k, g->a + ir * g->rsa, g->rsa, g->csa, bp, ldb,
                        g->c + ir * g->ldc + jr, g->ldc, g->alpha, g->beta);
        }
    }
}

static int is_direct(const Gemm *g)
{
    return g->k <= DIRECT_K && g->m * g->n * g->k <= DIRECT_MNK;
}

/* Floats packed per call: op(A) unless read in place, op(B) likewise. */
static size_t pack_cost(const Gemm *g, const GemmKern *kn, int direct)
{
    size_t ca = direct || a_in_place(g, kn) ? 0 : g->m * g->k;
    size_t cb = (direct ? g->csb == 1 : b_in_place(g, kn)) ? 0 : g->n * g->k;

    return ca + cb;
}

/* C^T = op(B)^T op(A)^T, the same products summed in the same order, so
 * the same bits in every element (fma(a, b, s) == fma(b, a, s)). */
static Gemm flipped(const Gemm *g)
{
    Gemm t = *g;

    t.m = g->n, t.n = g->m;
    t.a = g->b, t.rsa = g->csb, t.csa = g->rsb;
    t.b = g->a, t.rsb = g->csa, t.csb = g->rsa;
    t.ta = !g->tb, t.tb = !g->ta, t.lda = g->ldb, t.ldb = g->lda;
    return t;
}

/* A dense layer's forward product X W^T, with W stored (out, in), has to
 * transpose W into panels on every call: n*k floats moved for m*n*k
 * multiply-adds, only m of them per float moved (64 at batch 64), and the
 * copy weighs twice as much where the multiply-adds are twice as fast
 * (AVX-512). Its transpose W X^T reads W's rows in place and packs X
 * instead, m*k floats, for one transpose of C (m*n floats, twice when
 * beta != 0 as C is read). Flip when that moves fewer floats, for a C
 * small enough to stay in cache between the product and the transpose.
 * (Measured on a Zen 3 core, AVX2, one thread: the MLP's 64x256x784 went
 * from 64 to 89 GFLOP/s, the CNN's 64x128x1600 from 65 to 85.) */
#define FLIP_MAX_MN ((size_t)1 << 16)

static int flip_pays(const Gemm *g, const GemmKern *kn, int direct, size_t m,
                     size_t n)
{
    Gemm a = *g, b;

    if (m * n > FLIP_MAX_MN)
        return 0;
    a.m = m, a.n = n;
    b = flipped(&a);
    return pack_cost(&b, kn, direct) + m * n * (g->beta == 0.0f ? 1 : 2)
           < pack_cost(&a, kn, direct);
}

/* The path of a whole problem: 0 packed, 1 direct, 2 or 3 tall (kind
 * 1 or 2). Chosen once for all of C: the tall path does not block k, so
 * every rectangle (each thread's, flipped or not) must take the same. The
 * direct and packed paths agree, as a direct k fits one kc block. */
static int path_of(const Gemm *g, const GemmKern *kn)
{
    int tall;

    if (is_direct(g) && g->k <= kn->kc)
        return 1;
    tall = tall_kind(g, kn);
    return tall ? 1 + tall : 0;
}

static size_t path_floats(const Gemm *g, const GemmKern *kn, int path)
{
    if (path == 1)
        return g->k * kn->nr;
    if (path > 1)
        return kn->mr * kn->nr;
    return kn->mc * kn->kc + kn->kc * kn->nc;
}

/* C[m0:m1, n0:n1] by the given path; buf holds path_floats(). */
static void gemm_path(const Gemm *g, const GemmKern *kn, int path, size_t m0,
                      size_t m1, size_t n0, size_t n1, float *buf)
{
    if (path > 1)
        gemm_tall(g, kn, path - 1, m0, m1, n0, n1, buf);
    else if (path == 1)
        gemm_direct(g, kn, m0, m1, n0, n1, buf);
    else
        gemm_packed(g, kn, m0, m1, n0, n1, buf);
}

/* Runs one rectangle on the calling thread, flipped when that pays (then
 * into a buffer holding C^T, transposed into C at the end). Without
 * memory for buffers it falls back to the reference, which needs none. */
static void gemm_part(const Gemm *g, const GemmKern *kn, size_t m0,
                      size_t m1, size_t n0, size_t n1)
{
    size_t mm = m1 - m0, nn = n1 - n0, tn = 0;
    int path = path_of(g, kn), flip;
    Gemm f;
    nnc_fpmode mode;
    Buf buf;

    if (m0 >= m1 || n0 >= n1)
        return;
    flip = path < 2 && flip_pays(g, kn, path, mm, nn);
    if (flip) {     /* the rectangle as a problem of its own, flipped */
        f = *g;
        f.m = mm, f.n = nn;
        f.a = g->a + m0 * g->rsa, f.b = g->b + n0 * g->csb;
        f = flipped(&f);
        tn = round_up(mm * nn, ALIGN / sizeof(float));
    }
    buf = buf_get(tn + path_floats(flip ? &f : g, kn, path));
    mode = nnc_fp_enter();
    if (buf.p == NULL) {
        nnc_sgemm_ref(g->ta, g->tb, (int)mm, (int)nn, (int)g->k, g->alpha,
                      g->a + m0 * g->rsa, g->lda, g->b + n0 * g->csb, g->ldb,
                      g->beta, g->c + m0 * g->ldc + n0, (int)g->ldc);
    } else if (flip) {
        float *c = g->c + m0 * g->ldc + n0;
        f.c = buf.p, f.ldc = mm;
        if (g->beta != 0.0f)
            transpose(kn, c, g->ldc, mm, nn, f.c, f.ldc);
        gemm_path(&f, kn, path, 0, nn, 0, mm, buf.p + tn);
        transpose(kn, f.c, f.ldc, nn, mm, c, g->ldc);
    } else {
        gemm_path(g, kn, path, m0, m1, n0, n1, buf.p);
    }
    if (g->epi != NULL) {   /* the rectangle's epilogue while it is in cache */
        SmallArgs t = *g->epi;
        t.m = mm, t.n = nn, t.c = g->c + m0 * g->ldc + n0, t.ldc = g->ldc, t.csc = 1;
        if (t.bias != NULL)
            t.bias += n0;          /* the pass reads bias[j] */
        if (t.mask != NULL)
            t.mask += m0 * t.ldm + n0;
        g->sm->epilogue(&t);
    }
    nnc_fp_leave(mode);
    if (buf.p != NULL)
        buf_put(buf);
}

/* ---- Matrix times vector (n == 1) -------------------------------------- */

/* Portable GemmDotsFn: eight partial sums per row, which compilers can keep
 * in one or two vectors without reassociating anything. */
static void dots_portable(size_t m, size_t k, const float *a, size_t lda,
                          const float *x, float *c, size_t ldc, float alpha,
                          float beta)
{
    size_t i, j, p;

    for (i = 0; i < m; i++) {
        const float *ar = a + i * lda;
        float acc[8] = {0}, sum;
        for (p = 0; p + 8 <= k; p += 8)
            for (j = 0; j < 8; j++)
                acc[j] += ar[p + j] * x[p + j];
        for (j = 0; p < k; p++, j++)
            acc[j] += ar[p] * x[p];
        sum = ((acc[0] + acc[1]) + (acc[2] + acc[3]))
              + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        c[i * ldc] = beta == 0.0f ? alpha * sum : alpha * sum + beta * c[i * ldc];
    }
}

static void gemm_run(const Gemm *g, const GemmKern *kn);

/* n == 1, where a tile of nr columns would waste all but one. Rows of A
 * contiguous: one dot product per row. A transposed and C contiguous:
 * C^T = x^T A is a one-row GEMM whose B (A itself) has contiguous rows.
 * Returns 0 for the other layouts, which take the general path. */

static int gemm_vector(const Gemm *g, const GemmKern *kn)
{
    /* A times B^T with few rows of A: each row of C is B times a row of A,
     * dot products over rows of B that are contiguous as stored (the
     * weights of a dense layer), so nothing is transposed or packed; each
     * dot ends in a horizontal sum, which pays only for long rows (measured
     * on the seed model: predict at batch 1 went from 2.7 to 0.9 us) */
    if (g->n > 1 && g->csa == 1 && g->rsb == 1 &&
        (g->m <= 2 || (g->m <= 8 && g->k >= 64))) {
        nnc_fpmode mode = nnc_fp_enter();
        for (size_t i = 0; i < g->m; i++)
            (kn->dots != NULL ? kn->dots : dots_portable)(
                g->n, g->k, g->b, g->csb, g->a + i * g->rsa, g->c + i * g->ldc, 1,
                g->alpha, g->beta);
        nnc_fp_leave(mode);
        return 1;
    }
    if (g->n != 1)
        return 0;
    if (g->csa == 1 && g->rsb == 1) {
        nnc_fpmode mode = nnc_fp_enter();
        (kn->dots != NULL ? kn->dots : dots_portable)(
            g->m, g->k, g->a, g->rsa, g->b, g->c, g->ldc, g->alpha, g->beta);
        nnc_fp_leave(mode);
        return 1;
    }
    if (g->rsa == 1 && g->ldc == 1) {
        Gemm t = *g;
        t.m = 1, t.n = g->m;
        t.a = g->b, t.rsa = 1, t.csa = g->rsb;
        t.b = g->a, t.rsb = g->csa, t.csb = 1;
        t.ta = 1, t.tb = 0, t.lda = (int)g->rsb, t.ldb = g->lda;
        t.ldc = 1;
        gemm_run(&t, kn);
        return 1;
    }
    return 0;
}

/* ---- Small products against a transposed B ------------------------------ */

static const GemmSmall *small_for(const GemmKern *kn)
{
    if (kn == &nnc_kern_avx512)
        return &nnc_small_avx512;
    if (kn == &nnc_kern_avx2)
        return &nnc_small_avx2;
    return NULL;
}

/* C = alpha * A B^T + beta * C and the epilogue in epi (bias, ReLU:
 * SmallArgs; NULL for none) by gemm_small.c's dot products, when the
 * rows of A and B are contiguous along k (a dense layer's forward), C has
 * at most two rows or columns (predict at batch 1, a layer of one output:
 * with more, the tiled kernels were measured as fast or faster) and the
 * problem is small enough to stay in L1/L2 (is_direct). A C with one column is done
 * transposed, C^T = x^T A^T, so that its elements fill the dot tiles'
 * four columns. Returns 0, doing nothing, when the problem or the ISA
 * does not fit. */
static int gemm_small(const Gemm *g, const GemmKern *kn, const SmallArgs *epi)
{
    const GemmSmall *sm = small_for(kn);
    SmallArgs s;
    nnc_fpmode mode;

    if (sm == NULL || sm->dots_nt == NULL || g->csa != 1 || g->rsb != 1 ||
        (g->m > 2 && g->n > 2) || !is_direct(g) ||
        (epi != NULL && (epi->mask != NULL || epi->sum != NULL)))
        return 0;
    if (epi != NULL)
        s = *epi;
    else
        memset(&s, 0, sizeof s);
    s.m = g->m, s.n = g->n, s.k = g->k;
    s.a = g->a, s.lda = g->rsa, s.b = g->b, s.ldb = g->csb;
    s.c = g->c, s.ldc = g->ldc, s.csc = 1;
    s.alpha = g->alpha, s.beta = g->beta, s.bs = 1;
    if (g->n == 1) {
        s.m = 1, s.n = g->m;
        s.a = g->b, s.lda = 0, s.b = g->a, s.ldb = g->rsa;
        s.ldc = 0, s.csc = g->ldc, s.bs = 0;
    }
    mode = nnc_fp_enter();
    sm->dots_nt(&s);
    nnc_fp_leave(mode);
    return 1;
}

/* ---- Kernel choice ------------------------------------------------------ */

/* Kernel sets, best first; the last (scalar) is always supported. */
static const GemmKern *const kernels[] = {
    &nnc_kern_avx512, &nnc_kern_avx2, &nnc_kern_neon, &nnc_kern_scalar,
};

#define NKERNELS (sizeof kernels / sizeof kernels[0])

/* The lazy choices below are benign races: every thread that makes one
 * computes and stores the same value. */
static const GemmKern *kern;

static const GemmKern *find_kernel(const char *name)
{
    size_t i;

    for (i = 0; i < NKERNELS; i++)
        if (strcmp(name, kernels[i]->name) == 0 && kernels[i]->supported())
            return kernels[i];
    return NULL;
}

/* The NNC_ISA kernel if it names a supported one, else the best one. */
static const GemmKern *choose_kernel(void)
{
    const char *isa = getenv("NNC_ISA");
    const GemmKern *kn = isa != NULL ? find_kernel(isa) : NULL;
    size_t i;

    for (i = 0; kn == NULL && i < NKERNELS; i++)
        if (kernels[i]->supported())
            kn = kernels[i];
    return kn;
}

static const GemmKern *current_kernel(void)
{
    if (kern == NULL)
        kern = choose_kernel();
    return kern;
}

const char *nnc_isa(void)
{
    return current_kernel()->name;
}

int nnc_set_isa(const char *name)
{
    const GemmKern *kn = name != NULL ? find_kernel(name) : NULL;

    if (kn == NULL)
        return NNC_ERR_ARG;
    kern = kn;
    return NNC_OK;
}

/* ---- Entry point -------------------------------------------------------- */

/* Threads (thread.c): C is cut into a pm x pn grid of rectangles in whole
 * tiles, about TASKS_PER_THREAD per thread so that a late thread does
 * not hold the others, claimed dynamically. Each rectangle runs the
 * sequential algorithm, packing its own rows of op(A) and columns of
 * op(B): more rectangles pack more. (Two per thread rather than four:
 * on 2 threads of a Zen 3 VM the MLP's 64x256x784 went from 131-146 to
 * 148-150 GFLOP/s, the CNN's dense 64x128x1600 from 102-111 to 144-148;
 * under a busy loop on one CPU, the MLP's epoch on 2 threads stayed
 * within the noise of 1 thread's.) */
#define TASKS_PER_THREAD 2
/* ... but no rectangle below this many multiply-adds */
#define TASK_MNK ((size_t)48 * 48 * 48)

typedef struct Grid {
    const Gemm *g;
    const GemmKern *kn;
    size_t mt, nt, pm, pn;   /* tiles of C; rectangles */
} Grid;

/* The pm x pn grid of at most tasks rectangles that should finish first
 * on nt threads: the total work over nt plus one rectangle (the last one
 * claimed), where a rectangle packs its rows of op(A) and its columns of
 * op(B), each float costing about as much as 16 multiply-adds. */
static void grid_for(Grid *r, size_t tasks, size_t nt)
{
    const Gemm *g = r->g;
    size_t best = (size_t)-1, d;

    r->pm = r->pn = 1;
    for (d = 1; d <= tasks && d <= r->mt; d++) {
        size_t e = min_sz(tasks / d, r->nt), rows, cols, pack, cost;
        if (e < 1)
            break;
        rows = (r->mt + d - 1) / d * r->kn->mr;
        cols = (r->nt + e - 1) / e * r->kn->nr;
        pack = (rows + cols) * g->k * 16;
        cost = (d * e * pack + g->m * g->n * g->k) / nt + pack + rows * cols * g->k;
        if (d * e >= 2 && cost < best)
            best = cost, r->pm = d, r->pn = e;
    }
}

/* Rectangles [lo, hi) of the grid. */
static void grid_range(void *arg, size_t lo, size_t hi)
{
    const Grid *r = arg;
    const Gemm *g = r->g;
    size_t mr = r->kn->mr, nr = r->kn->nr, t;

    for (t = lo; t < hi; t++) {
        size_t tm = t / r->pn, tn = t % r->pn;
        gemm_part(g, r->kn, min_sz(g->m, tm * r->mt / r->pm * mr),
                  min_sz(g->m, (tm + 1) * r->mt / r->pm * mr),
                  min_sz(g->n, tn * r->nt / r->pn * nr),
                  min_sz(g->n, (tn + 1) * r->nt / r->pn * nr));
    }
}

/* The whole product on the caller (when threads do not pay here). */
static void grid_whole(void *arg)
{
    const Grid *r = arg;
    gemm_part(r->g, r->kn, 0, r->g->m, 0, r->g->n);
}

static void gemm_run(const Gemm *g, const GemmKern *kn)
{
    size_t mnk = g->m * g->n * g->k, tasks;
    int nt = mnk < THREAD_MNK ? 1 : nnc_parallel_threads();
    Grid r;

    if (nt <= 1 || mnk < THREAD_MNK) {
        gemm_part(g, kn, 0, g->m, 0, g->n);
        return;
    }
    r.g = g, r.kn = kn;
    r.mt = (g->m + kn->mr - 1) / kn->mr, r.nt = (g->n + kn->nr - 1) / kn->nr;
    tasks = min_sz((size_t)nt * TASKS_PER_THREAD, mnk / TASK_MNK);
    grid_for(&r, tasks < 2 ? 2 : tasks, (size_t)nt);
    if (r.pm * r.pn < 2) {
        gemm_part(g, kn, 0, g->m, 0, g->n);
        return;
    }
    nnc_parallel_site(nnc_site_key((uint64_t)(g->rsa == 1) << 1 | (uint64_t)(g->rsb == 1),
                                   g->m, g->n, g->k),
                      r.pm * r.pn, 1, grid_range, &r, grid_whole, &r);
}

void nnc_sgemm(int trans_a, int trans_b, int m, int n, int k,
               float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    Gemm g;

    if (m <= 0 || n <= 0 || k < 0)
        return;
    if (k == 0 || alpha == 0.0f) {  /* A and B are not read: C = beta * C */
        int i;
        for (i = 0; i < m; i++)
            scale_row(&c[(size_t)i * (size_t)ldc], (size_t)n, beta);
        return;
    }
    g.m = (size_t)m, g.n = (size_t)n, g.k = (size_t)k;
    g.a = a, g.b = b, g.c = c, g.ldc = (size_t)ldc;
    g.rsa = trans_a ? 1 : (size_t)lda, g.csa = trans_a ? (size_t)lda : 1;
    g.rsb = trans_b ? 1 : (size_t)ldb, g.csb = trans_b ? (size_t)ldb : 1;
    g.alpha = alpha, g.beta = beta;
    g.ta = trans_a, g.tb = trans_b, g.lda = lda, g.ldb = ldb;
    g.epi = NULL, g.sm = NULL;
    if (!gemm_small(&g, current_kernel(), NULL) && !gemm_vector(&g, current_kernel()))
        gemm_run(&g, current_kernel());
}

/* C = op(A) op(B) (alpha 1, beta 0) with epi applied: in registers by
 * the dot products where they fit, else by a vector pass over C after
 * the product: 1. Else (no vector kernels) 0, C holding the plain
 * product, for the caller to apply epi over. */
static int gemm_epi(int trans_a, int trans_b, int m, int n, int k,
                    const float *a, int lda, const float *b, int ldb,
                    float *c, int ldc, const SmallArgs *epi)
{
    const GemmKern *kn = current_kernel();
    const GemmSmall *sm = small_for(kn);
    SmallArgs s;
    Gemm g;

    g.m = (size_t)m, g.n = (size_t)n, g.k = (size_t)k;
    g.a = a, g.b = b, g.c = c, g.ldc = (size_t)ldc;
    g.rsa = trans_a ? 1 : (size_t)lda, g.csa = trans_a ? (size_t)lda : 1;
    g.rsb = trans_b ? 1 : (size_t)ldb, g.csb = trans_b ? (size_t)ldb : 1;
    g.alpha = 1.0f, g.beta = 0.0f;
    g.ta = trans_a, g.tb = trans_b, g.lda = lda, g.ldb = ldb;
    g.epi = NULL, g.sm = NULL;
    if (k > 0 && gemm_small(&g, kn, epi))
        return 1;
    if (sm == NULL || sm->epilogue == NULL) {
        nnc_sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
        return 0;
    }
    if (k == 0 || !gemm_vector(&g, kn)) {
        if (k > 0 && epi->sum == NULL) {
            /* each rectangle of C (each thread's) applies the epilogue
             * to its own elements after their product, while they are
             * in cache: the same operations per element as one pass
             * after the whole (column sums add rows in order: those
             * take the pass) */
            g.epi = epi, g.sm = sm;
            gemm_run(&g, kn);
            return 1;
        }
        nnc_sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    }
    s = *epi;
    s.m = (size_t)m, s.n = (size_t)n, s.c = c, s.ldc = (size_t)ldc;
    sm->epilogue(&s);
    return 1;
}

void nnc_sgemm_bias(int trans_a, int trans_b, int m, int n, int k,
                    const float *a, int lda, const float *b, int ldb,
                    const float *bias, int relu, float *c, int ldc)
{
    SmallArgs epi;
    size_t i, j;

    if (m <= 0 || n <= 0)
        return;
    memset(&epi, 0, sizeof epi);
    epi.bias = bias, epi.relu = relu;
    if (!trans_a && trans_b && m <= 2 && (n > 1 || m == 1) && k > 0 && (size_t)k <= DIRECT_K &&
        (size_t)m * (size_t)n * (size_t)k <= DIRECT_MNK) {
        /* a dense layer at batch 1 or 2 (predict): a subset of the cases
         * gemm_small takes (is_direct, rows of A and B along k), so the
         * same kernel and bits, without building a Gemm first: on a
         * 20k-FLOP predict the set-up was a tenth of the instructions */
        const GemmSmall *sm = small_for(current_kernel());
        if (sm != NULL && sm->dots_nt != NULL) {
            nnc_fpmode mode = nnc_fp_enter();
            epi.m = (size_t)m, epi.n = (size_t)n, epi.k = (size_t)k;
            epi.a = a, epi.lda = (size_t)lda, epi.b = b, epi.ldb = (size_t)ldb;
            epi.c = c, epi.ldc = (size_t)ldc, epi.csc = 1, epi.bs = 1;
            epi.alpha = 1.0f;
            sm->dots_nt(&epi);
            nnc_fp_leave(mode);
            return;
        }
    }
    if (gemm_epi(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, &epi))
        return;
    for (i = 0; i < (size_t)m; i++) {
        float *row = c + i * (size_t)ldc;
        for (j = 0; j < (size_t)n; j++) {
            float v = row[j] + bias[j];
            row[j] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}

void nnc_sgemm_relu_back(int trans_a, int trans_b, int m, int n, int k,
                         const float *a, int lda, const float *b, int ldb,
                         const float *y, int ldy, float *sum, float *c, int ldc)
{
    SmallArgs epi;
    size_t i, j;

    if (m <= 0 || n <= 0)
        return;
    memset(&epi, 0, sizeof epi);
    epi.mask = y, epi.ldm = (size_t)ldy, epi.sum = sum;
    if (gemm_epi(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, &epi))
        return;
    for (i = 0; i < (size_t)m; i++) {
        float *row = c + i * (size_t)ldc;
        const float *yr = y + i * (size_t)ldy;
        for (j = 0; j < (size_t)n; j++) {
            row[j] = yr[j] > 0.0f ? row[j] : 0.0f;
            if (sum != NULL)
                sum[j] += row[j];
        }
    }
}
