/*
 * nncrt.h - the nnc runtime (libnncrt), the only header that code emitted
 * by nnc includes.
 *
 * It holds what generated models call but do not specialize: the GEMM
 * entry point (BLAS-like, row-major), the op kernels (convolution helpers,
 * pooling, softmax, normalization, dropout, losses, embeddings), nnc's own PRNG (so that the same
 * seed gives the same weights on every platform), parameter
 * initialization, and safetensors checkpoint I/O.
 *
 * Everything here is C99. Nothing in the hot path (GEMM, kernels)
 * allocates; only checkpoint loading does, and it frees before returning.
 */
#ifndef NNCRT_H
#define NNCRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNCRT_VERSION "0.1.0"

/* ---- Error codes (returned negative; 0 is success) ---------------------- */

enum {
    NNC_OK = 0,
    NNC_ERR_IO = -1,       /* cannot open, read, write or rename a file     */
    NNC_ERR_FORMAT = -2,   /* not a well-formed safetensors file (truncated,
                              bad header JSON, offsets out of range, ...)   */
    NNC_ERR_MISMATCH = -3, /* well-formed, but names, shapes or dtypes do
                              not match the model                           */
    NNC_ERR_NOMEM = -4,    /* allocation failed (checkpoint loading only)   */
    NNC_ERR_ARG = -5       /* bad argument (NULL pointer, n out of range)   */
};

/* A short English description of an error code above. */
const char *nnc_strerror(int err);

/* Why the last failing runtime call of the calling thread failed, in one
 * line: the file and what is wrong with it, e.g.
 *   "w.safetensors: tensor 'dense_0.weight' has shape [4, 10]; the model
 *    expects [10, 4]"
 * Set by every call that reports an error (the checkpoint functions, and
 * the generated <model>_load, _save and _train_step); calls that succeed
 * leave it as it was. Thread-local (like errno): threads never see each
 * other's messages. "" until an error occurs. The pointer stays valid in
 * this thread; the text changes with the next error. */
const char *nnc_last_error(void);

/* Sets this thread's message (printf-like; at most 511 bytes kept), or
 * clears it with NULL. For generated code and wrappers. */
void nnc_set_error(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- GEMM ----------------------------------------------------------------
 *
 * C = alpha * op(A) * op(B) + beta * C, all row-major.
 * op(A) is m x k (A is m x k, or k x m when trans_a), op(B) is k x n
 * (B is k x n, or n x k when trans_b), C is m x n. lda, ldb, ldc are the
 * row strides in floats. When beta == 0, C is not read (it may hold NaN).
 * m, n or k of 0 are allowed (k == 0 scales C by beta).
 */
void nnc_sgemm(int trans_a, int trans_b, int m, int n, int k,
               float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/* A dense layer's forward: C = op(A) op(B) + bias, where bias (n floats)
 * is added to every row, then C = C > 0 ? C : 0 when relu is nonzero.
 * The same values as nnc_sgemm with alpha 1 and beta 0 followed by those
 * two operations per element, but where the kernels allow (A times a
 * transposed B, small) the bias and ReLU are applied while the results
 * are in registers. */
void nnc_sgemm_bias(int trans_a, int trans_b, int m, int n, int k,
                    const float *a, int lda, const float *b, int ldb,
                    const float *bias, int relu, float *c, int ldc);

/* A dense layer's gradient through ReLU: C = op(A) op(B) where y > 0,
 * else 0 (y: m x n, row stride ldy: the layer's output), and, when sum is
 * not NULL, sum[j] += C[i,j] for every row in order (the bias gradient;
 * the caller zeroes it). The same values as nnc_sgemm with alpha 1 and
 * beta 0 followed by those operations, applied in registers where the
 * kernels allow (small products with B not transposed). */
void nnc_sgemm_relu_back(int trans_a, int trans_b, int m, int n, int k,
                         const float *a, int lda, const float *b, int ldb,
                         const float *y, int ldy, float *sum, float *c, int ldc);

/* A convolution's weight gradient dw (f x kk, row-major) = dc^T col, dc
 * of rows x f and col of rows x kk (kk = kh*kw*cin): the rows summed in
 * blocks of rb, consecutive blocks in at most 8 groups (fixed by f, kk,
 * rows and rb), each group's blocks accumulated in order, the groups'
 * sums added in group order. The groups run on the thread pool; the bits
 * are the same for any thread count. dw is only written. */
void nnc_conv_wgrad(int f, int kk, size_t rows, size_t rb, const float *dc, const float *col,
                    float *dw);
/* The same, with col's rows built from the images x (nnc_im2col_rows's
 * geometry) a block at a time, into colbuf (rb * kh*kw*c floats) on one
 * thread and into a block buffer of each thread's own on the pool: the
 * same bits as nnc_conv_wgrad over the whole im2col. */
void nnc_conv_wgrad_x(int f, size_t rows, size_t rb, const float *dc, int h, int w, int c,
                      int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow,
                      const float *x, float *colbuf, float *dw);

/* A convolution's forward from its images x (nnc_im2col_rows's
 * geometry; rows = n*oh*ow): y (rows x f) = im2col(x) wt^T + bias, then
 * ReLU when relu is nonzero, with wt (f, kh*kw*c). The im2col is built rb
 * rows at a time (into colbuf, rb * kh*kw*c floats, on one thread; into a
 * block buffer of each thread's own on the pool), each block's product
 * and epilogue by nnc_sgemm_bias right after: the same bits for any
 * thread count, as building the im2col whole and multiplying by blocks. */
void nnc_conv_bias(int h, int w, int c, int kh, int kw, int sh, int sw, int pt, int pl, int oh,
                   int ow, int f, size_t rows, size_t rb, const float *x, const float *wt,
                   const float *bias, int relu, float *colbuf, float *y);

/* A convolution's weight gradient dw (f x kk) = dC^T col where dC (n, h,
 * w, f) is the gradient through a 2x2, stride-2 max pooling (output (n,
 * oh, ow, f)), summed window by window (each window's four pixels) in at
 * most 8 groups of images fixed by the shape, the groups' sums added in
 * order: the same bits for any thread count. dC is read from dc, or,
 * when dc is NULL, never stored: each window's shares come from the
 * pooling's input x and output gradient dy (nnc_maxpool_back_sum's, with
 * ReLU when relu), and db (f floats, or NULL) gets their sum. The im2col
 * rows (n*h*w of kk floats) are read from col, or, when col is NULL,
 * built from the images img with geom = {h, w, c, kh, kw, sh, sw, pt,
 * pl, oh, ow} (nnc_im2col_rows's geometry). Stored or not, saved or
 * built: the same bits. */
void nnc_conv_wgrad_pool(int f, int kk, int n, int h, int w, int oh, int ow, const float *dc,
                         const float *dy, const float *x, int relu, const float *col,
                         const int *geom, const float *img, float *dw, float *db);

/* A convolution's input gradient dx (n, h, w, c) = col2im(dc wt), dc
 * (n, oh, ow, f), wt (f, kh*kw*c): the product and its col2im a chunk of
 * images at a time, the chunks on the thread pool (each thread with a
 * product buffer of its own; prod, chunk * oh*ow * kh*kw*c floats, is
 * used on one thread). The same bits as nnc_sgemm then nnc_col2im per
 * chunk, for any thread count. */
void nnc_conv_dgrad(int n, int chunk, int h, int w, int c, int kh, int kw, int sh, int sw,
                    int pt, int pl, int oh, int ow, int f, const float *dc, const float *wt,
                    float *prod, float *dx);

/* The plain reference GEMM, always built; nnc_sgemm may dispatch to
 * faster kernels but must agree with this one. */
void nnc_sgemm_ref(int trans_a, int trans_b, int m, int n, int k,
                   float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);

/* ---- Convolution and pooling over NHWC images (conv.c) -------------------
 *
 * x: (n, h, w, c) row-major; windows kh x kw at strides sh, sw; pt, pl:
 * zero padding above and to the left; (oh, ow): output positions.
 * im2col: col (n*oh*ow, kh*kw*c), columns ordered (ky, kx, ci), so a
 * kernel stored (cout, kh, kw, cin) multiplies it as col x W^T.
 * col2im is its adjoint (sums overlapping windows; overwrites x).
 * Pooling windows lie inside the image; maxpool_back routes each output
 * gradient to the first maximum of its window (as PyTorch); the _back
 * kernels overwrite dx (which may be x itself for 2 x 2 windows at
 * stride 2: each window is read before its gradient is written over it;
 * not for other windows). maxpool_relu_back is relu_back(maxpool_back(dy,
 * x), x) for x = relu(z): it also drops the gradient of windows whose
 * maximum is not positive, giving dz in one pass.
 */
void nnc_im2col(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *x, float *col);
void nnc_col2im(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                int pt, int pl, int oh, int ow, const float *col, float *x);
/* Rows [r0, r0 + nr) of im2col's col (over any number of images), into
 * col[0 .. nr * kh*kw*c): for a convolution's product computed a block
 * of rows at a time (nnc --max-ram). One thread. */
void nnc_im2col_rows(int h, int w, int c, int kh, int kw, int sh, int sw, int pt, int pl,
                     int oh, int ow, const float *x, size_t r0, size_t nr, float *col);
void nnc_maxpool(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                 int oh, int ow, const float *x, float *y);
void nnc_maxpool_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                      int oh, int ow, const float *dy, const float *x, float *dx);
void nnc_maxpool_relu_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                           int oh, int ow, const float *dy, const float *x, float *dx);
/* maxpool_back (relu 0) or maxpool_relu_back (relu 1) that also writes,
 * when sum is not NULL, sum[ci] = the sum of dx over (n, h, w): the bias
 * gradient of a convolution below the pooling, without another pass. */
void nnc_maxpool_back_sum(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                          int oh, int ow, const float *dy, const float *x, float *dx,
                          int relu, float *sum);
void nnc_avgpool(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                 int oh, int ow, const float *x, float *y);
void nnc_avgpool_back(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                      int oh, int ow, const float *dy, float *dx);

/* ---- int8 inference (qgemm.c; models of nnc --quantize=int8) ----------
 *
 * A tensor is int8 q = round(x / s) in [-127, 127], one scale s per
 * tensor (weights: per output column). nnc_qgemm computes, for the m
 * rows of a (m x l->k, stride lda; a_nonneg: all values in [0, 127]),
 *   c[i][j] = clamp(round(acc * mult[j] + bias[j]))   (int8, c != NULL)
 *   cf[i][j] = acc * mult[j] + bias[j]                (float, c == NULL)
 * with acc = sum_k a[i][k] w[j][k] in int32, clamped below at 0 when
 * relu, in [-127, 127] for int8. w is packed by nnc_qpack (panels of 16
 * columns, k in groups of 4; nnc_qpack_bytes bytes; wsum: the column
 * sums, padded to a multiple of 16 like mult and bias). The kernel
 * (AVX-512 VNNI, AVX2, NEON dot product, scalar) is chosen at run time;
 * NNC_ISA=scalar|avx2|avx512|neon or nnc_set_qisa forces a supported one.
 * Every kernel gives the same bits. nnc_quantize rounds x * inv_scale to
 * int8; im2col and maxpool are conv.c's, on int8; im2col's rows are
 * ldcol >= kh*kw*c bytes apart, zero past kh*kw*c (so a GEMM can take k
 * rounded up to 4, no short last group).
 */
typedef struct nnc_qlayer {
    int n, k;               /* output columns, inputs per row */
    const int8_t *w;        /* nnc_qpack's layout */
    const int32_t *wsum;    /* (n + 15) / 16 * 16 */
    const float *mult, *bias; /* as many */
    int relu;
} nnc_qlayer;

size_t nnc_qpack_bytes(int n, int k);
void nnc_qpack(int n, int k, const int8_t *w, int8_t *packed, int32_t *wsum);
void nnc_qgemm(const nnc_qlayer *l, int m, const int8_t *a, size_t lda, int a_nonneg,
               int8_t *c, float *cf, size_t ldc);
/* A valid (unpadded) convolution over int8 NHWC images x (n, h, w, c):
 * nnc_qgemm on the windows at stride (sh, sw) of the first oh x ow output
 * positions, read in place (no im2col copy); y (or yf): (n, oh, ow,
 * l->n). W's columns are the window rows (ky) of kw * c values each,
 * every one padded with zero weights to a multiple of 4 when kh > 1
 * (l->k == kh * seg, seg = kw * c rounded up to 4; else NNC_ERR_ARG,
 * nothing done): a window row is then read as whole groups of 4 bytes,
 * up to 3 past its end, so x needs 3 readable bytes after its last. */
int nnc_qconv(const nnc_qlayer *l, int n, int h, int w, int c, int kh, int kw, int sh, int sw,
              int oh, int ow, const int8_t *x, int x_nonneg, int8_t *y, float *yf);
const char *nnc_qisa(void);
int nnc_set_qisa(const char *name);
void nnc_quantize(const float *x, size_t count, float inv_scale, int8_t *q);
void nnc_im2col_i8(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                   int pt, int pl, int oh, int ow, const int8_t *x, int8_t *col, size_t ldcol);
void nnc_maxpool_i8(int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                    int oh, int ow, const int8_t *x, int8_t *y);

/* The measured single-core fp32 peak of this machine in GFLOP/s (FMA
 * throughput at the widest vector width), measured once (~20 ms). */
double nnc_peak_gflops(void);

/* ---- GEMM kernels ----------------------------------------------------------
 *
 * nnc_sgemm picks the best kernel set this CPU supports ("avx512", "avx2",
 * "neon", "scalar"); the environment variable NNC_ISA forces one if it is
 * supported. nnc_isa names the set in use; nnc_set_isa switches to another
 * and returns 0, or NNC_ERR_ARG (leaving the choice unchanged) if the name
 * is unknown or this CPU cannot run it.
 */
const char *nnc_isa(void);
int nnc_set_isa(const char *name);

/* ---- Threads (thread.c) -------------------------------------------------
 *
 * Large GEMMs, optimizer updates and convolution helpers run on a pool of
 * POSIX threads: nnc_num_threads() in all, the caller included. The
 * default is the number of CPUs the process may run on (its affinity
 * mask), capped by its cgroup CPU quota; NNC_NUM_THREADS=N in the
 * environment overrides it, and nnc_set_num_threads(n) overrides both for
 * later calls (n <= 0 restores the default). Work is cut into more chunks
 * than threads and claimed dynamically; small work stays on the caller;
 * when another process keeps preempting a worker, the pool runs on the
 * caller alone for a while and then tries again. Results are bit-identical
 * for every thread count. Built without threads (configure
 * --disable-threads), nnc_num_threads() is 1.
 *
 * nnc_parallel_for calls fn(arg, lo, hi) for consecutive chunks [lo, hi)
 * of [0, n), chunk long (the last may be shorter), possibly on several
 * threads at once and in any order, or once with [0, n) when it runs on
 * the caller alone; fn must give the same results either way. It returns
 * when all are done. Tasks run in the caller's floating-point mode.
 * nnc_parallel_threads() is the number of threads it would use now: 1
 * while the pool runs on the caller alone, else nnc_num_threads() (for
 * callers that split work differently for one thread).
 */
void nnc_set_num_threads(int n);
int nnc_num_threads(void);
typedef void (*nnc_range_fn)(void *arg, size_t lo, size_t hi);
void nnc_parallel_for(size_t n, size_t chunk, nnc_range_fn fn, void *arg);
int nnc_parallel_threads(void);

/* ---- Denormals (thread.c) -------------------------------------------------
 *
 * The emitted train_step, predict and accuracy, nnc_sgemm and the pool's
 * tasks run with subnormal floats flushed to zero (x86: MXCSR FTZ and
 * DAZ; AArch64: FPCR.FZ; elsewhere nothing changes): subnormal operands
 * read as zero and subnormal results become zero, which avoids the
 * microcode assists that make arithmetic on them up to 100x slower (Adam's
 * second moments become subnormal in ordinary training). They restore the
 * caller's mode before returning; exception flags raised meanwhile stay
 * raised.
 *
 * nnc_fp_enter sets that mode for the calling thread and returns the mode
 * to restore with nnc_fp_leave. nnc_set_flush_denormals(0) keeps IEEE
 * subnormals everywhere from then on (nnc_fp_enter changes nothing),
 * nnc_set_flush_denormals(1) flushes again; the environment variable
 * NNC_DENORMALS=keep, read on first use, makes 0 the default.
 * nnc_flush_denormals() tells which is in force.
 */
typedef unsigned long nnc_fpmode;
nnc_fpmode nnc_fp_enter(void);
void nnc_fp_leave(nnc_fpmode mode);
void nnc_set_flush_denormals(int on);
int nnc_flush_denormals(void);

/* ---- Optimizer updates ------------------------------------------------------
 *
 * One step over n parameters, in place, exactly as torch.optim does it:
 *   adam: m += b1c (g - m); v = b2 v + b2c g^2 (b1c = 1 - beta1,
 *         b2c = 1 - beta2); p -= step m / (sqrt(v) (1 / bc2) + eps), with
 *         step = lr / (1 - beta1^t) and bc2 = sqrt(1 - beta2^t);
 *   sgd:  vel = momentum vel + g; p -= lr vel  (vel NULL: p -= lr g).
 * Vectorized, threaded for large n, bit-identical on every path.
 */
void nnc_adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                     float b2, float b2c, float eps, float step, float bc2);
void nnc_sgd_update(float *p, const float *g, float *vel, size_t n, float lr,
                    float momentum);

/* The same with torch's extras:
 *   adam_ex: p *= decay first (AdamW: decay = 1 - lr wd), then Adam on
 *            g + wd p (Adam's L2 weight_decay; wd 0: on g);
 *   sgd_ex:  d = g + wd p; b = momentum b + d; d = nesterov ? d + momentum b
 *            : b; p -= lr d (vel NULL: p -= lr d with no momentum);
 *   rmsprop: s = rho s + (1 - rho) g^2; (centered, gavg != NULL:
 *            a = a + (1 - rho) (g - a), s' = s - a^2); avg = sqrt(s') + eps;
 *            buf != NULL: b = momentum b + g / avg, p -= lr b; else
 *            p -= lr (g / avg);
 *   adagrad: s += g^2; p -= lr (g / (sqrt(s) + eps)).
 * Vectorized and threaded like Adam (adam_ex's decay and L2 term in the
 * update's loop): the same bits on every path. */
void nnc_adam_update_ex(float *p, const float *g, float *m, float *v, size_t n, float b1c,
                        float b2, float b2c, float eps, float step, float bc2, float wd,
                        float decay);
void nnc_sgd_update_ex(float *p, const float *g, float *vel, size_t n, float lr,
                       float momentum, float wd, int nesterov);
void nnc_rmsprop_update(float *p, const float *g, float *sq, float *buf, float *gavg,
                        size_t n, float lr, float rho, float momentum, float eps);
void nnc_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps);

/* Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): the
 * sum of squares in double, in a fixed order; the factor
 * min(1, max_norm / (sqrt(sumsq) + 1e-6)); x *= s. */
double nnc_sumsq(const float *x, size_t n);
float nnc_clip_coef(double sumsq, double max_norm);
void nnc_scale(float *x, size_t n, float s);

/* ---- PRNG ----------------------------------------------------------------
 *
 * splitmix64-seeded xoshiro256**: integer-only, so the stream is the same on
 * every platform. Floats are derived from the top 24 bits of a draw.
 */
typedef struct nnc_rng {
    uint64_t s[4];
} nnc_rng;

void nnc_rng_seed(nnc_rng *r, uint64_t seed);
uint64_t nnc_rng_next(nnc_rng *r);
/* A float uniformly distributed in [0, 1), a multiple of 2^-24. */
float nnc_rng_uniform(nnc_rng *r);

/* w[i] = lo + (hi - lo) * u, u from nnc_rng_uniform, computed in double and
 * rounded once to float, for i in [0, n). Glorot uniform is
 * lo = -hi = -sqrt(6 / (fan_in + fan_out)). */
void nnc_fill_uniform(float *w, size_t n, double lo, double hi, nnc_rng *r);

/* ---- Rows, normalization, dropout, losses, embeddings (nn.c) -------------
 *
 * One call per op of the emitted code; src/ops/nn.c, norm.c and gather.c
 * state the maths. Rows are the last axis: x, y, dy, dx are (rows, c)
 * row-major with c >= 1. Outputs never alias inputs except where noted.
 * Softmax, layernorm and the softmax cross-entropy gradients are
 * vectorized for the kernel set nnc_isa() names (NNC_ISA=scalar: the
 * reference). No call allocates or uses threads.
 */
/* y = softmax(x) per row; dx = y (dy - sum_j dy_j y_j) per row. */
void nnc_softmax(const float *x, float *y, size_t rows, size_t c);
void nnc_softmax_back(const float *dy, const float *y, float *dx, size_t rows, size_t c);
/* y = x - log sum_j exp(x_j) per row (the log-sum-exp in double, as the
 * softmax cross-entropy losses compute it). */
void nnc_log_softmax(const float *x, float *y, size_t rows, size_t c);
/* y = (x - mean) / sqrt(var + eps) per row (biased variance); dx its
 * gradient for dy, recomputing the statistics from x. */
void nnc_layernorm(const float *x, float *y, size_t rows, size_t c, float eps);
void nnc_layernorm_back(const float *dy, const float *x, float *dx, size_t rows, size_t c,
                        float eps);
/* A layernorm layer: y = xhat gamma + beta per row, xhat as nnc_layernorm
 * computes it (y may be x). _back, for dy, with the statistics recomputed
 * from x: dx = the layernorm gradient of dy gamma (dx may be dy), dgamma
 * = sum over rows of dy xhat, dbeta = sum over rows of dy (both c long,
 * overwritten, rows added in order); any of dx (then gamma may be NULL),
 * dgamma and dbeta may be NULL. One pass over the rows: the layer's
 * backward reads dy and x once. */
void nnc_layernorm_affine(const float *x, const float *gamma, const float *beta, float *y,
                          size_t rows, size_t c, float eps);
void nnc_layernorm_affine_back(const float *dy, const float *x, const float *gamma, float *dx,
                               float *dgamma, float *dbeta, size_t rows, size_t c, float eps);
/* Per channel (the last axis, c) over m rows: y = (x - mu) / sqrt(var + eps)
 * with the batch's mean and biased variance, and the running statistics
 * mean, var (c each) updated in place: mean = momentum mean + (1 - momentum)
 * mu, var likewise with the unbiased variance. _predict normalizes with
 * the running statistics; _back is dx for dy (statistics recomputed). */
void nnc_batchnorm(const float *x, float *y, float *mean, float *var, size_t m, size_t c,
                   double eps, double momentum);
void nnc_batchnorm_predict(const float *x, float *y, const float *mean, const float *var,
                           size_t m, size_t c, double eps);
void nnc_batchnorm_back(const float *dy, const float *x, float *dx, size_t m, size_t c,
                        double eps);
/* Inverted dropout of n floats: y = 0 where a draw from rng is < p, else
 * x scale (scale = 1 / (1 - p)); dx = dy scale where y != 0, else 0. */
void nnc_dropout(const float *x, float *y, size_t n, float p, float scale, nnc_rng *rng);
void nnc_dropout_back(const float *dy, const float *y, float *dx, size_t n, float scale);
/* Mean losses of n predictions p (or logits z) against targets t, summed
 * in double: binary cross-entropy (logs clamped at -100), squared error,
 * absolute error, Huber (delta), and binary cross-entropy on logits. */
double nnc_bce(const float *p, const float *t, size_t n);
double nnc_mse(const float *p, const float *t, size_t n);
double nnc_mae(const float *p, const float *t, size_t n);
double nnc_huber(const float *p, const float *t, size_t n, double delta);
double nnc_sigmoid_bce(const float *z, const float *t, size_t n);
/* Mean over rows of cross-entropies of (rows, c) probabilities p (each row
 * renormalized, clipped to [1e-7, 1 - 1e-7], as Keras) or logits z, with
 * one-hot rows t (rows, c) or class indices t (rows; an index outside
 * [0, c) makes the loss NaN). The _back kernels write the gradient
 * (rows, c) for a loss gradient dl (a sparse row with a bad index gets 0). */
double nnc_cce(const float *p, const float *t, size_t rows, size_t c);
void nnc_cce_back(float dl, const float *p, const float *t, float *dp, size_t rows, size_t c);
double nnc_sparse_cce(const float *p, const float *t, size_t rows, size_t c);
void nnc_sparse_cce_back(float dl, const float *p, const float *t, float *dp, size_t rows,
                         size_t c);
double nnc_softmax_ce(const float *z, const float *t, size_t rows, size_t c);
void nnc_softmax_ce_back(float dl, const float *z, const float *t, float *dz, size_t rows,
                         size_t c);
double nnc_sparse_softmax_ce(const float *z, const float *t, size_t rows, size_t c);
void nnc_sparse_softmax_ce_back(float dl, const float *z, const float *t, float *dz,
                                size_t rows, size_t c);
/* Embedding: w (vocab, d); ids: n token ids as floats (truncated; outside
 * [0, vocab) or NaN: a zero row, no gradient); y (n, d) = w[ids]. dw
 * (vocab, d) = sum of dy's rows (n, d) per id, in order of i. */
void nnc_embed(const float *w, size_t vocab, size_t d, const float *ids, size_t n, float *y);
void nnc_embed_back(const float *dy, const float *ids, size_t n, size_t vocab, size_t d,
                    float *dw);
/* y (rows, ca + cb) = [a (rows, ca) | b (rows, cb)]; y (rows, w) =
 * x (rows, cx)[:, start : start + w]. */
void nnc_concat(const float *a, size_t ca, const float *b, size_t cb, float *y, size_t rows);
void nnc_slice(const float *x, size_t cx, size_t start, size_t w, float *y, size_t rows);

/* ---- Checkpoints (safetensors) -------------------------------------------
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON
 * header ({"name": {"dtype": "F32", "shape": [...], "data_offsets":
 * [begin, end]}, ..., "__metadata__": {...}}), then the raw little-endian
 * data. Tensors are written in the order given, data packed without gaps.
 */
#define NNC_MAX_RANK 6

typedef struct nnc_tensor {
    const char *name;             /* e.g. "dense_0.weight"            */
    int rank;                     /* 0..NNC_MAX_RANK                  */
    int64_t shape[NNC_MAX_RANK];  /* row-major dims                   */
    float *data;                  /* product(shape) floats            */
} nnc_tensor;

/* Writes the tensors to path atomically (a temporary file in the same
 * directory, then rename), so that a crash never leaves a partial file
 * under path. metadata may be NULL or a NULL-terminated list of
 * key, value string pairs stored in "__metadata__". */
int nnc_ckpt_save(const char *path, const nnc_tensor *t, int n,
                  const char *const *metadata);

/* Reads path into the tensors. The file must hold exactly these names,
 * each with dtype F32 and the same shape; otherwise NNC_ERR_MISMATCH.
 * A truncated or malformed file gives NNC_ERR_FORMAT. The whole file is
 * validated before any tensor is written, so on any error the tensors are
 * left untouched. */
int nnc_ckpt_load(const char *path, const nnc_tensor *t, int n);

/* The same with optional tensors (optimizer state): t[0 .. nreq) must be
 * in the file, t[nreq .. n) either all of them or none (else
 * NNC_ERR_MISMATCH), and nothing else. *found (if not NULL) tells whether
 * the optional ones were loaded. If step is not NULL, *step is the
 * metadata's "step" (a decimal integer, else NNC_ERR_FORMAT), 0 if there
 * is none; it must be there if the optional tensors are. Everything is
 * validated first: on error nothing is written, *found and *step
 * included. */
int nnc_ckpt_load_opt(const char *path, const nnc_tensor *t, int nreq, int n,
                      int *found, uint64_t *step);

/* ---- Checkpoints in PyTorch's layout (ckpt_torch.c) ----------------------
 *
 * nnc images are NHWC, PyTorch's NCHW: a convolution kernel is
 * [out, kh, kw, in] in nnc and [out, in, kh, kw] in torch, and parameters
 * along a flattened image (a dense layer's input columns after flatten)
 * run in (h, w, c) order in nnc and (c, h, w) in torch. Each parameter is
 * described by one nnc_torch_layout:
 *   NNC_TORCH_SAME    the same in both;
 *   NNC_TORCH_KERNEL  a kernel [out, h, w, c] (torch [out, c, h, w]);
 *   NNC_TORCH_FLAT    the last axis is blocks of a flattened (h, w, c)
 *                     image (torch: (c, h, w)); the shape is the same.
 */
enum { NNC_TORCH_SAME, NNC_TORCH_KERNEL, NNC_TORCH_FLAT };

typedef struct nnc_torch_layout {
    int kind;      /* NNC_TORCH_* */
    int h, w, c;   /* KERNEL and FLAT: the block's dims in nnc's order */
} nnc_torch_layout;

/* 1 if path's metadata says "format": "nnc" (nnc's layout), 0 if not
 * (PyTorch's layout), or a negative NNC_ERR_* code if the header cannot be
 * read. */
int nnc_ckpt_is_nnc(const char *path);

/* nnc_ckpt_save of the tensors converted to PyTorch's layout (the
 * tensors themselves are not changed). */
int nnc_ckpt_save_torch(const char *path, const nnc_tensor *t,
                        const nnc_torch_layout *lay, int n,
                        const char *const *metadata);

/* nnc_ckpt_load from a file in PyTorch's layout, converting. Names match
 * exactly, or else layer by layer in order: the file's layers (names up to
 * their last '.') sorted with digit runs compared as numbers, the i-th
 * with the same tensor suffixes as the model's i-th (so nn.Sequential's
 * "0.weight", "2.weight" load into dense_0, dense_1). Torch's
 * num_batches_tracked is ignored. Nothing is written unless the whole file
 * is valid and matches. */
int nnc_ckpt_load_torch(const char *path, const nnc_tensor *t,
                        const nnc_torch_layout *lay, int n);

/* ---- Data files (data.c) ------------------------------------------------
 *
 * nnc_data_load reads a numeric table from CSV text (fields separated by
 * commas, semicolons, tabs or blanks; blank lines skipped; a first line
 * that does not start with a number is a header), IDX (the MNIST format:
 * big-endian u8, i8, i16, i32, f32 or f64) or NumPy .npy (v1-v3,
 * little-endian float32/64, int8-64, uint8-64 or bool, C order), each
 * optionally gzip-compressed; the content tells the format. Rows are the
 * first dimension, the others are flattened into cols; a 1-D array is one
 * column. Values must be finite floats. On error it returns a negative
 * NNC_ERR_* code and writes a message naming the file and the line (CSV)
 * or byte offset into err (errsize bytes, may be 0); d is then empty.
 * nnc_data_where names where row `row` comes from ("y.csv:12", or
 * "y.idx: byte offset 8").
 */
typedef struct nnc_data {
    float *data;         /* rows x cols, row-major */
    size_t rows, cols;
    const char *path;    /* as given to nnc_data_load (not copied) */
    size_t *line;        /* CSV: the line of each row; else NULL */
    size_t offset;       /* binary: byte offset of the data */
    size_t elsize;       /* binary: bytes per value in the file */
    int gzipped;
} nnc_data;

int nnc_data_load(const char *path, nnc_data *d, char *err, size_t errsize);
void nnc_data_free(nnc_data *d);
int nnc_data_where(const nnc_data *d, size_t row, char *buf, size_t size);

/* nnc_idx_load reads an IDX file (optionally gzipped) without converting
 * its values: x->data points at the count values (big-endian, of the IDX
 * type code x->type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
 * float32, 0x0E float64) of shape dims[0 .. rank), inside x->bytes, the
 * whole decompressed file. Errors as nnc_data_load's; x is then empty.
 * nnc_idx_free frees x->bytes. */
typedef struct nnc_idx {
    unsigned char *bytes;
    const unsigned char *data;
    int type, rank;
    size_t dims[8];
    size_t count;
} nnc_idx;

int nnc_idx_load(const char *path, nnc_idx *x, char *err, size_t errsize);
void nnc_idx_free(nnc_idx *x);

/* ---- Text for language models (text.c) -----------------------------------
 *
 * Tokens are bytes; a vocabulary maps the bytes it holds to ids 0 .. n-1 in
 * byte order. nnc_text_load reads a text file (gzipped or not): the
 * vocabulary is the file's distinct bytes (all 256 if all_bytes), the
 * tokens are the file's bytes as ids, the last floor(n * val_fraction) of
 * them validate. Errors (a negative NNC_ERR_*, the message in err naming
 * the file): unreadable, empty, fewer than T + 1 training tokens, a
 * nonempty validation tail of fewer than T + 1 tokens.
 */
typedef struct nnc_vocab {
    int n;                    /* ids 0 .. n-1 */
    unsigned char byte[256];  /* id -> byte */
    short id[256];            /* byte -> id, -1 if the byte is not in it */
} nnc_vocab;

typedef struct nnc_text {
    unsigned char *tok;       /* n token ids */
    size_t n, ntrain;         /* [0, ntrain) trains, [ntrain, n) validates */
    nnc_vocab vocab;
} nnc_text;

int nnc_text_load(const char *path, int all_bytes, double val_fraction, int T, nnc_text *t,
                  char *err, size_t errsize);
void nnc_text_free(nnc_text *t);
/* The vocabulary as checkpoint metadata: two lower-case hex digits per
 * byte in id order (2 * n + 1 bytes with the NUL), and back
 * (NNC_ERR_FORMAT unless nonempty, hex and strictly increasing). */
void nnc_vocab_hex(const nnc_vocab *v, char *buf);
int nnc_vocab_from_hex(const char *s, nnc_vocab *v);
/* ids[i] = the id of s[i] for i < n (ids may be s); NNC_ERR_FORMAT at
 * the first byte not in v, its index in *bad. */
int nnc_vocab_encode(const nnc_vocab *v, const unsigned char *s, size_t n, unsigned char *ids,
                     size_t *bad);
/* One window at off: x[j] = tok[off + j], y[j] = tok[off + j + 1], j < T
 * (nanoGPT's get_batch), as floats. */
void nnc_text_window(const unsigned char *tok, size_t off, int T, float *x, float *y);
/* batch training windows (x, y: batch x T) at offsets drawn uniformly
 * from [0, ntrain - T) with rng. */
void nnc_text_batch(const nnc_text *t, nnc_rng *rng, int batch, int T, float *x, float *y);
/* The k-th of nwin validation windows' offsets, evenly spread over the
 * tail (the same windows at every evaluation). */
size_t nnc_text_val_offset(const nnc_text *t, int T, size_t k, size_t nwin);
/* A token drawn from softmax(logits[0 .. n) / temperature) restricted to
 * the top_k largest logits (and ties; 0: all), in double, with 53 bits of
 * rng; temperature <= 0 picks the largest. n <= 256; -1 otherwise. */
int nnc_sample(const float *logits, int n, double temperature, int top_k, nnc_rng *rng);

/* ---- Split training step (PREFIX_grad_step_notify) ---------------------------
 * Called by grad_step as soon as the gradients from float `from` to the
 * end of the gradient region are final, and again after every later
 * kernel (so that communication can progress): from never goes up, and
 * the last call has 0. */
typedef void (*nnc_grad_ready)(void *arg, size_t from);

/* ---- The training driver (fit.c) ---------------------------------------------
 *
 * `nnc FILE.nn --emit=main` writes a program whose main() describes the
 * model with an nnc_fit_model and calls nnc_fit_main, which parses the
 * command line (train / evaluate / predict, see --help), reads the data
 * files, trains with progress output, logs, checkpoints and predicts.
 * Returns the exit status: 0, 1 (bad data or files), 2 (bad usage).
 */
enum {
    NNC_LOSS_MSE, NNC_LOSS_MAE, NNC_LOSS_HUBER,      /* on the output's values   */
    NNC_LOSS_BCE,                                    /* probabilities, 0/1 labels */
    NNC_LOSS_CCE,                                    /* probabilities, one-hot   */
    NNC_LOSS_SPARSE_CCE,                             /* probabilities, indices   */
    NNC_LOSS_SOFTMAX_CE,                             /* logits, one-hot          */
    NNC_LOSS_SPARSE_SOFTMAX_CE                       /* logits, indices          */
};

typedef struct nnc_fit_model {
    const char *name;            /* default weights: NAME.safetensors */
    int batch, in, out, target;  /* as MODEL_BATCH, _IN, _OUT, _TARGET */
    int loss;                    /* NNC_LOSS_* of the model's output */
    double loss_param;           /* huber's delta */
    void *(*create)(uint64_t seed);
    void (*destroy)(void *ctx);
    float (*train_step)(void *ctx, const float *x, const float *y);
    int (*predict)(void *ctx, const float *x, float *y, size_t n);
    int (*save)(void *ctx, const char *path);
    int (*load)(void *ctx, const char *path);
    void (*set_lr)(void *ctx, float lr);
    float (*get_lr)(void *ctx);
    uint64_t (*steps)(void *ctx);  /* optimizer steps taken */
    /* Sequence language models (train --text, generate); 0 for others:
     * T ids in, T class indices as targets, T x (out / T) outputs, the
     * ids into a table of vocab_rows rows (the embedding). */
    int seq_len, vocab_rows;
    /* save with more metadata: a NULL-terminated list of key, value
     * pairs (at most 16) after format, model and step */
    int (*save_meta)(void *ctx, const char *path, const char *const *more);
    /* generation with a cache (PREFIX_decode), or NULL: the output row of
     * position pos for token, positions 0 .. pos-1 decoded before */
    int (*decode)(void *ctx, int token, int pos, float *out);
    /* Data parallelism (nncrt_mpi.h), NULL where the model has no split
     * step: PREFIX_grad_step_notify, _apply_update, _grads, _params; and
     * a hash of the model's code that every process must agree on. */
    float (*grad_step)(void *ctx, const float *x, const float *y, nnc_grad_ready ready,
                       void *arg);
    int (*apply_update)(void *ctx);
    float *(*grads)(void *ctx, size_t *n);
    float *(*params)(void *ctx, size_t *n);
    uint64_t hash;
    /* train --init-from: MODEL_load_weights (the parameters alone; fresh
     * optimizer state, step 0), or NULL */
    int (*load_weights)(void *ctx, const char *path);
} nnc_fit_model;

int nnc_fit_main(int argc, char **argv, const nnc_fit_model *m);

/* Data-parallel training: nnc_fit_main as one of `size` processes (ranks)
 * that train together, through these hooks (libnncrt-mpi fills them with
 * MPI; libnncrt itself knows no transport). Each step, rank r trains on
 * rows [r B, (r + 1) B) of a global batch of size x B rows taken as one
 * process with batch size x B would take them; rank 0 alone prints,
 * logs and saves. Every hook is collective: all ranks call it, in the
 * same order. */
typedef struct nnc_fit_dist {
    int rank, size;
    /* One optimizer step on this rank's rows x, y (m->batch of them):
     * the gradients averaged over the ranks, the same update everywhere.
     * Returns the global batch's mean loss; the update is skipped on
     * every rank when that is not finite. */
    float (*train_step)(const nnc_fit_model *m, void *ctx, const float *x, const float *y);
    /* v[0 .. n) summed over the ranks, in place. */
    void (*sum)(double *v, int n);
    /* 1 if every rank passes the same v, else 0 (on every rank). */
    int (*same)(uint64_t v);
    /* 1 if every rank passes ok != 0, else 0 (on every rank). */
    int (*all_ok)(int ok);
    /* Rank 0's parameters (m->params) to every rank. */
    void (*bcast_params)(const nnc_fit_model *m, void *ctx);
} nnc_fit_dist;

int nnc_fit_main_dist(int argc, char **argv, const nnc_fit_model *m, const nnc_fit_dist *d);

/* The sum over rows of each row's loss (the mean over the row's values for
 * mse, mae, huber and bce), from model outputs `out` (rows x nout) and
 * targets y (rows x ntarget: one class index per row for sparse_cce), as
 * the training step computes it; divide by rows for the mean. Rows whose
 * class index is out of range give NaN. *hits (if not NULL) gets the
 * number of rows predicted right (argmax, or output >= 0.5 for one output). */
double nnc_loss_sum(int loss, double param, const float *out, const float *y, size_t rows,
                    int nout, int ntarget, size_t *hits);

/* ---- Attention (attention.c) ----------------------------------------------
 *
 * Softmax attention per (batch, head), streaming over keys with an online
 * softmax (no T x T matrix): for query i,
 *     o_i = sum_j softmax_j(scale q_i . k_j) z_ij v_j,  j < T (j <= i if causal)
 * with z_ij the dropout factor (1 without dropout). Layout by strides:
 * element (b, t, h, d) of q, k, v (and of dq, dk, dv) is at
 * base + b*sb + t*st + h*sh + d, of o and dout at base + b*ob + t*ot +
 * h*oh + d (unit stride over d), so the packed (B, T, 3C) qkv of
 * multihead_attention (q = qkv, k = qkv + C, v = qkv + 2C, sb = 3TC,
 * st = 3C, sh = D) and torch's (B, H, T, D) both work. lse, if not NULL,
 * gets each row's log-sum-exp at [(b*H + h)*T + t]; the backward takes it
 * back, or NULL to recompute it (for T <= 64 from the head's whole
 * probability matrix, held on the stack: no more work than with lse). The backward overwrites dq,
 * dk and dv (they must not overlap q, k, v). dropout (the rate, 0 in
 * predict) drops probabilities as torch does, kept ones scaled by
 * 1/(1 - dropout); the mask is nnc_attention_keep's hash of (seed, b, h,
 * i, j), so the backward regenerates it. Heads run on the thread pool;
 * results do not depend on the thread count. No allocation.
 */
typedef struct nnc_attn_shape {
    int B, T, H, D;
    long sb, st, sh;        /* q, k, v, dq, dk, dv */
    long ob, ot, oh;        /* o, dout */
    int causal;
    float scale;            /* usually 1/sqrt(D) */
    float dropout;          /* rate in [0, 1); 0: none */
    uint64_t seed;          /* dropout mask */
} nnc_attn_shape;
void nnc_attention_fwd(const nnc_attn_shape *s, const float *q, const float *k,
                       const float *v, float *o, float *lse);
void nnc_attention_bwd(const nnc_attn_shape *s, const float *q, const float *k,
                       const float *v, const float *o, const float *lse, const float *dout,
                       float *dq, float *dk, float *dv);

/* Generation with a cache of keys and values: row pos of
 * nnc_attention_fwd's causal output, computed alone (query pos against
 * keys and values 0..pos, with s's strides and layout; s->T is the
 * cache's length, pos < T; no dropout), with the forward's operations for
 * that row in its order: the same bits as the forward's row pos. */
void nnc_attention_decode(const nnc_attn_shape *s, int pos, const float *q, const float *k,
                          const float *v, float *o);

/* Is probability (b, h, i, j) kept by attention dropout? A splitmix64 hash
 * of seed and the index ((b*H + h)*T + i)*T + j; its top 24 bits u are
 * kept if u >= dropout * 2^24. */
static inline int nnc_attention_keep(const nnc_attn_shape *s, int b, int h, int i, int j)
{
    uint64_t idx = (((uint64_t)b * (uint64_t)s->H + (uint64_t)h) * (uint64_t)s->T +
                    (uint64_t)i) * (uint64_t)s->T + (uint64_t)j;
    uint64_t z = s->seed + (idx + 1u) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (float)(uint32_t)(z >> 40) >= s->dropout * 16777216.0f;
}

/* ---- Threads in generated loops ------------------------------------------
 *
 * NNC_PARALLEL_FOR(n) precedes a generated elementwise loop of n
 * iterations (only loops that are not fused into a GEMM's row blocks, of
 * at least 65536 elements): when the generated C is compiled with OpenMP
 * (-fopenmp), large loops run on nnc_num_threads() OpenMP threads, a team
 * of their own beside the runtime's pool; each iteration writes its own
 * element, so results do not depend on the thread count (and, like
 * NNC_IVDEP below, it lets the loop be vectorized). Without OpenMP (the
 * default) it is NNC_IVDEP.
 */
/*
 * NNC_IVDEP precedes a generated loop whose iterations touch disjoint
 * elements (each writes its own; sums ride into per-column totals), so
 * that GCC vectorizes it at -O2: its buffers are restrict-qualified
 * locals, which GCC's vectorizer does not trust, and -O2's cost model
 * does not version loops for aliasing. Clang vectorizes them as they are.
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER) && \
    (__GNUC__ > 4 || (__GNUC__ == 4 && __GNUC_MINOR__ >= 9))
#define NNC_IVDEP _Pragma("GCC ivdep")
#else
#define NNC_IVDEP
#endif

#if defined(_OPENMP)
#define NNC_PRAGMA_(x) _Pragma(#x)
#define NNC_PARALLEL_FOR(n)                                                  \
    NNC_PRAGMA_(omp parallel for simd schedule(static) if ((n) >= 65536) \
                num_threads(nnc_num_threads()))
#else
#define NNC_PARALLEL_FOR(n) NNC_IVDEP
#endif

#include "nncrt_math.h"

#ifdef __cplusplus
}
#endif

#endif /* NNCRT_H */
