/*
 * gemm.c - single-precision GEMM for libnncrt: C = alpha*op(A)*op(B) + beta*C,
 * row-major, with BLAS-like arguments (see nncrt.h).
 *
 * Two implementations live here. nnc_sgemm_ref is the plain triple loop, one
 * dot product per element of C; it is always built and is what every faster
 * kernel is tested against. gemm_scalar is the portable fast path: for the
 * non-transposed-B cases it runs the i-p-j loop order, so the inner loop
 * walks a row of B and a row of C contiguously and the compiler can
 * vectorize it; for transposed B both operands of the dot product are
 * contiguous in p, so it keeps the dot-product order.
 *
 * nnc_sgemm dispatches through a function pointer chosen once, on first
 * use, from a table of kernels (best first). Per-ISA kernels (AVX-512,
 * AVX2+FMA, NEON) plug in as new rows of that table; NNC_ISA=<name> forces
 * the row with that name. The lazy choice is a benign race: every thread
 * that makes it computes and stores the same pointer.
 *
 * Both versions accumulate in float. When beta == 0, C is only written, never
 * read, so NaN or garbage in C does not propagate (as in BLAS). Indices are
 * computed in size_t so that large strides cannot overflow int.
 */
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"

typedef void GemmFn(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                    float alpha, const float *a, size_t lda,
                    const float *b, size_t ldb, float beta, float *c,
                    size_t ldc);

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

/* ---- Portable fast path ------------------------------------------------- */

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

/* B not transposed: C[i,:] = beta*C[i,:] + sum_p (alpha*op(A)[i,p]) * B[p,:].
 * The inner loop is a contiguous axpy over a row of B and C. */
static void gemm_rows(int trans_a, size_t m, size_t n, size_t k,
                      float alpha, const float *a, size_t lda,
                      const float *b, size_t ldb, float beta, float *c,
                      size_t ldc)
{
    size_t i, j, p;

    for (i = 0; i < m; i++) {
        float *ci = &c[i * ldc];

        scale_row(ci, n, beta);
        for (p = 0; p < k; p++) {
            float s = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
            const float *bp = &b[p * ldb];

            for (j = 0; j < n; j++)
                ci[j] += s * bp[j];
        }
    }
}

/* B transposed: C[i,j] is a dot product of op(A)[i,:] and row j of B, both
 * contiguous in p when A is not transposed. */
static void gemm_dots(int trans_a, size_t m, size_t n, size_t k,
                      float alpha, const float *a, size_t lda,
                      const float *b, size_t ldb, float beta, float *c,
                      size_t ldc)
{
    size_t i, j, p;

    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            const float *bj = &b[j * ldb];
            float sum = 0.0f;
            float *cij = &c[i * ldc + j];

            if (trans_a)
                for (p = 0; p < k; p++)
                    sum += a[p * lda + i] * bj[p];
            else
                for (p = 0; p < k; p++)
                    sum += a[i * lda + p] * bj[p];
            *cij = beta == 0.0f ? alpha * sum : alpha * sum + beta * *cij;
        }
    }
}

static void gemm_scalar(int trans_a, int trans_b, size_t m, size_t n,
                        size_t k, float alpha, const float *a, size_t lda,
                        const float *b, size_t ldb, float beta, float *c,
                        size_t ldc)
{
    if (trans_b)
        gemm_dots(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_rows(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- Dispatch ----------------------------------------------------------- */

/* Kernels, best first. A row is usable when its supported() is NULL or
 * returns nonzero on this CPU. The last row must always be usable. */
static const struct {
    const char *name;
    int (*supported)(void);
    GemmFn *fn;
} kernels[] = {
    {"scalar", NULL, gemm_scalar},
};

#define NKERNELS (sizeof kernels / sizeof kernels[0])

static int usable(size_t i)
{
    return kernels[i].supported == NULL || kernels[i].supported();
}

/* The NNC_ISA kernel if it names a usable one, else the best usable one. */
static GemmFn *choose_kernel(void)
{
    const char *isa = getenv("NNC_ISA");
    size_t i;

    if (isa != NULL)
        for (i = 0; i < NKERNELS; i++)
            if (strcmp(isa, kernels[i].name) == 0 && usable(i))
                return kernels[i].fn;
    for (i = 0; i < NKERNELS; i++)
        if (usable(i))
            return kernels[i].fn;
    return gemm_scalar;
}

static GemmFn *gemm_kernel;

void nnc_sgemm(int trans_a, int trans_b, int m, int n, int k,
               float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k < 0)
        return;
    if (k == 0) {               /* A and B are not read: C = beta * C */
        int i;
        for (i = 0; i < m; i++)
            scale_row(&c[(size_t)i * (size_t)ldc], (size_t)n, beta);
        return;
    }
    if (gemm_kernel == NULL)
        gemm_kernel = choose_kernel();
    gemm_kernel(trans_a, trans_b, (size_t)m, (size_t)n, (size_t)k, alpha,
                a, (size_t)lda, b, (size_t)ldb, beta, c, (size_t)ldc);
}
