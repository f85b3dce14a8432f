/*
 * gemm_kern.h - the contract between the GEMM driver (gemm.c) and its
 * per-ISA micro-kernels (kern_*.c). Internal to libnncrt, not installed.
 *
 * A micro-kernel computes one tile of C, at most mr x nr:
 *
 *     C[i,j] = alpha * sum_p A(i,p) B(p,j) + beta * C[i,j]
 *
 * for i < rows, j < cols, p < k, where A(i,p) = a[i*rsa + p*csa] and
 * B(p,j) = b[p*ldb + j]. The driver passes either packed panels (A as
 * mr-interleaved columns, rsa = 1 and csa = mr; B as rows of nr floats,
 * ldb = nr, both zero-padded to a full tile) or the caller's matrices in
 * place (the "direct" path for small problems). When beta == 0, C is not
 * read. Every element is computed the same way wherever it sits in a tile:
 * one fused multiply-add chain over p in order, then alpha * sum, then
 * beta * C added with one rounding (fma). That, and a tile grid that does
 * not depend on the thread count, make results bit-identical for any
 * number of threads.
 *
 * A kernel with masked_b set may be given fewer than nr readable columns
 * of B in place (cols < nr); otherwise the driver copies such a panel
 * into a padded buffer first.
 */
#ifndef NNC_GEMM_KERN_H
#define NNC_GEMM_KERN_H

#include <stddef.h>

typedef void GemmTileFn(size_t rows, size_t cols, size_t k,
                        const float *a, size_t rsa, size_t csa,
                        const float *b, size_t ldb, float *c, size_t ldc,
                        float alpha, float beta);

/* c[i*ldc] = alpha * dot(a + i*lda, x) + beta * c[i*ldc] for i < m, dots
 * of length k with a and x contiguous (matrix times vector, n == 1). */
typedef void GemmDotsFn(size_t m, size_t k, const float *a, size_t lda,
                        const float *x, float *c, size_t ldc, float alpha,
                        float beta);

/* dst[j*ldd + i] = src[i*lds + j] for i, j < tw: one tw x tw block of a
 * transpose, in registers (tw = 8 for AVX2, 16 for AVX-512). gemm.c
 * transposes whole matrices (a transposed B into panels, a flipped C
 * back) with these blocks and scalar edges. */
typedef void GemmTransFn(const float *src, size_t lds, float *dst,
                         size_t ldd);

typedef struct GemmKern {
    const char *name;           /* NNC_ISA value                          */
    int (*supported)(void);     /* nonzero when this CPU can run it       */
    size_t mr, nr;              /* register tile                          */
    size_t mc, kc, nc;          /* cache blocks (multiples of mr and nr)  */
    int masked_b;               /* may read partial B panels in place     */
    GemmTileFn *packed;         /* tile on packed panels (rsa 1, csa mr)  */
    GemmTileFn *strided;        /* tile on any strides                    */
    GemmDotsFn *dots;           /* n == 1; NULL: gemm.c's portable one    */
    size_t tw;                  /* tr's block size                        */
    GemmTransFn *tr;            /* NULL: gemm.c's scalar transpose        */
} GemmKern;

#if defined(__GNUC__) && !defined(_WIN32)
#define NNC_HIDDEN __attribute__((visibility("hidden")))
#else
#define NNC_HIDDEN
#endif

NNC_HIDDEN extern const GemmKern nnc_kern_avx512;
NNC_HIDDEN extern const GemmKern nnc_kern_avx2;
NNC_HIDDEN extern const GemmKern nnc_kern_neon;
NNC_HIDDEN extern const GemmKern nnc_kern_scalar;

#endif /* NNC_GEMM_KERN_H */
