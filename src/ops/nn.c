/*
 * nn.c - softmax and the losses, each with its own gradient op.
 *
 * softmax over the last axis:
 *   y_j = exp(x_j - max x) / sum_k exp(x_k - max x)
 *   dx_j = y_j * (dy_j - sum_k dy_k y_k)
 *
 * layer normalization over the last axis (C columns, eps = fattr[0]); the
 * layer multiplies by gamma and adds beta with ordinary ops, so their
 * gradients come from mul/add and sum_to:
 *   m = mean x,  v = mean (x - m)^2,  s = 1/sqrt(v + eps)
 *   y_j = (x_j - m) s
 *   dx_j = s (dy_j - mean dy - y_j mean(dy y))
 *
 * inverted dropout (rate p = fattr[0]) in the training step, the identity
 * in predict:  y = x m / (1 - p), m_i = 0 with probability p, else 1
 *   dx = dy / (1 - p) where y != 0, else 0  (the mask is read back from y,
 *   so an input that is exactly 0 passes no gradient: after a relu that
 *   changes nothing). Masks come from ctx->rng; the reference evaluation
 *   uses a fixed mask (element i dropped iff frac(0.618... i) < p).
 *
 * Losses reduce by the mean, as Keras and PyTorch do by default. N is the
 * number of elements, R the number of rows (N / last dim).
 *   bce(p, t)  = -1/N sum t log p + (1-t) log(1-p), each log clamped at
 *                -100 as torch.nn.BCELoss does
 *       dp     = dl (p - t) / max(p (1-p), 1e-12) / N
 *   mse(p, t)  = 1/N sum (p - t)^2;  dp = dl 2 (p - t) / N
 *   sigmoid_bce(z, t) = bce(sigmoid(z), t) in the stable logits form
 *                1/N sum max(z, 0) - z t + log(1 + exp(-|z|))
 *       dz     = dl (sigmoid(z) - t) / N       (the loss-head pass makes it)
 *   softmax_ce(z, t) = -1/R sum_rows sum_j t_j log_softmax(z)_j
 *       dz     = dl (softmax(z) sum_j t_j - t) / R
 *     (log-sum-exp form: no overflow for large logits, no log(0))
 *   mae(p, t)  = 1/N sum |p - t|;  dp = dl sign(p - t) / N  (0 at p = t, as
 *                torch.nn.L1Loss)
 *   huber(p, t) = 1/N sum h(p - t), h(d) = d^2/2 for |d| <= delta, else
 *                delta (|d| - delta/2)  (Keras' Huber = torch.nn.HuberLoss)
 *       dp     = dl clamp(p - t, -delta, delta) / N      (delta = fattr[0])
 *   cce(p, t)  = Keras' categorical_crossentropy on probabilities: each row
 *                is renormalized, q = p / sum_k p_k, clipped to
 *                c = clip(q, 1e-7, 1 - 1e-7), and
 *                cce = -1/R sum_rows sum_j t_j log c_j
 *       with g_j = -dl t_j / c_j / R where q_j is inside the clip range, 0
 *       outside:  dp_k = (g_k - sum_j g_j q_j) / sum p
 *     (the loss-head pass turns cce(softmax(z), t) into softmax_ce(z, t))
 *   sparse_cce(p, k) = cce(p, onehot(k)): the target row holds the class
 *                index k as a float, truncated to an integer as Keras'
 *                cast does. A row whose k is not in [0, C) (or NaN) makes
 *                the loss NaN and contributes no gradient.
 *   sparse_softmax_ce(z, k) = -1/R sum_rows log_softmax(z)_k
 *       dz     = dl (softmax(z) - onehot(k)) / R
 *     (what the loss-head pass makes of sparse_cce(softmax(z), k))
 * Targets get no gradient.
 *
 * Each non-elementwise op emits one call of its runtime kernel
 * (runtime/nn.c: nnc_softmax, nnc_layernorm, nnc_dropout, nnc_cce, ...),
 * which does the float and double arithmetic this file's emit rules used
 * to write inline; the eval_* functions are the double references those
 * kernels are tested against. The gradients of bce, mse, mae, huber and
 * sigmoid_bce are elementwise and stay expressions that fuse into their
 * neighbours' loops.
 */
#include <math.h>
#include <stdlib.h>

#include "ops.h"

static int last_dim(const Node *n)
{
    return n->shape.dim[n->shape.rank - 1];
}

/* The product of n's first `upto` axes as a size_t expression of emitted
 * C ("(size_t)nb * 4" with a batch axis, else "40"): the row count of a
 * row kernel (upto = rank - 1) or the element count (upto = rank). */
const char *op_count(const Node *n, int upto)
{
    static char buf[8][64];
    static int next;
    char *b = buf[next++ % 8];
    long k = 1;
    bool batch = false;
    for (int d = 0; d < upto; d++) {
        if (n->bmask & (1u << d))
            batch = true;
        else
            k *= n->shape.dim[d];
    }
    if (batch && k == 1)
        snprintf(b, 64, "(size_t)nb");
    else if (batch)
        snprintf(b, 64, "(size_t)nb * %ld", k);
    else
        snprintf(b, 64, "%ld", k);
    return b;
}

const char *op_rows(const Node *n)
{
    return op_count(n, n->shape.rank - 1);
}

const char *op_numel(const Node *n)
{
    return op_count(n, n->shape.rank);
}

/* The loss emitters: out[0] = (float)nnc_FN(p, t, ...), and the gradient
 * of a loss over rows of classes, nnc_FN_back(dl, p, t, dp, rows, c).
 * Sparse targets hold one class index per row. */
static void value_loss(Emit *e, const Graph *g, const Node *n, const char *const *a,
                       const char *fn, const char *param)
{
    const Node *p = NODE(g, n->in[0]);
    emit_line(e, "/* p, t: %s floats */", op_numel(p));
    emit_line(e, "%s[0] = (float)nnc_%s(%s, %s, %s%s%s);", a[2], fn, a[0], a[1], op_numel(p),
              param ? ", " : "", param ? param : "");
}

static const char *targets(const Node *n, bool sparse)
{
    static char b[2][96];
    static int next;
    char *t = b[next++ % 2];
    if (sparse)
        snprintf(t, sizeof b[0], "(%s)", op_rows(n));
    else
        snprintf(t, sizeof b[0], "(%s, %d)", op_rows(n), last_dim(n));
    return t;
}

static void row_loss(Emit *e, const Graph *g, const Node *n, const char *const *a,
                     const char *fn, bool sparse)
{
    const Node *p = NODE(g, n->in[0]);
    emit_line(e, "/* p: (%s, %d), t: %s */", op_rows(p), last_dim(p), targets(p, sparse));
    emit_line(e, "%s[0] = (float)nnc_%s(%s, %s, %s, %d);", a[2], fn, a[0], a[1], op_rows(p),
              last_dim(p));
}

static void row_loss_back(Emit *e, const Node *n, const char *const *a, const char *fn,
                          bool sparse)
{
    emit_line(e, "/* p, dp: (%s, %d), t: %s */", op_rows(n), last_dim(n), targets(n, sparse));
    emit_line(e, "nnc_%s_back(%s, %s, %s, %s, %s, %d);", fn, a[0], a[1], a[2], a[3], op_rows(n),
              last_dim(n));
}

/* emit_NAME and emit_NAME_back of a loss over rows of classes. */
#define ROW_LOSS_EMITTERS(name, sparse)                                                    \
    void emit_##name(Emit *e, const Graph *g, const Node *n, const char *const *a)         \
    {                                                                                      \
        row_loss(e, g, n, a, #name, sparse);                                               \
    }                                                                                      \
    void emit_##name##_back(Emit *e, const Graph *g, const Node *n, const char *const *a)  \
    {                                                                                      \
        (void)g;                                                                           \
        row_loss_back(e, n, a, #name, sparse);                                             \
    }

/* A loss's gradient: dx[0] = back(dl, p, t); targets get none. */
static void loss_grad(Graph *g, NodeId y, NodeId dy, NodeId *dx, Op back)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, back, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

/* The reference of an elementwise loss: the mean of term(p, t, param) over
 * the N elements of p and t. */
static void eval_mean_loss(const Graph *g, const Node *n, const double *const *in,
                           double *out, double (*term)(double p, double t, double param))
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0;
    for (size_t i = 0; i < len; i++)
        s += term(in[0][i], in[1][i], n->fattr[0]);
    out[0] = s / (double)len;
}

/* Its gradient: dp_i = grad(dl, p_i, t_i, param) / N. */
static void eval_mean_loss_back(const Node *n, const double *const *in, double *out,
                                double (*grad)(double dl, double p, double t, double param))
{
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++)
        out[i] = grad(in[0][0], in[1][i], in[2][i], n->fattr[0]) / (double)len;
}

/* eval_NAME and eval_NAME_back of an elementwise loss, from NAME_term and
 * NAME_grad. */
#define MEAN_LOSS_EVAL(name)                                                               \
    void eval_##name(const Graph *g, const Node *n, const double *const *in, double *out)  \
    {                                                                                      \
        eval_mean_loss(g, n, in, out, name##_term);                                        \
    }                                                                                      \
    void eval_##name##_back(const Graph *g, const Node *n, const double *const *in,        \
                            double *out)                                                   \
    {                                                                                      \
        (void)g;                                                                           \
        eval_mean_loss_back(n, in, out, name##_grad);                                      \
    }

/* Those, grad_NAME (the gradient op BACK) and emit_NAME (nnc_NAME(p, t, N)). */
#define MEAN_LOSS(name, back)                                                              \
    void grad_##name(Graph *g, NodeId y, NodeId dy, NodeId *dx)                            \
    {                                                                                      \
        loss_grad(g, y, dy, dx, back);                                                     \
    }                                                                                      \
    void emit_##name(Emit *e, const Graph *g, const Node *n, const char *const *a)         \
    {                                                                                      \
        value_loss(e, g, n, a, #name, NULL);                                               \
    }                                                                                      \
    MEAN_LOSS_EVAL(name)

/* Rows and columns (the last axis) of n. */
static size_t rows_of(const Node *n, int *c)
{
    *c = last_dim(n);
    return shape_numel(&n->shape) / (size_t)*c;
}

/* ---- softmax ------------------------------------------------------------ */
void grad_softmax(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = graph_add2(g, OP_SOFTMAX_BACK, NODE(g, y)->loc, dy, y);
}

static void softmax_row(const double *x, double *y, int c)
{
    double mx = x[0], s = 0;
    for (int j = 1; j < c; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (int j = 0; j < c; j++)
        s += y[j] = exp(x[j] - mx);
    for (int j = 0; j < c; j++)
        y[j] /= s;
}

void eval_softmax(const Graph *g, const Node *n, const double *const *in,
                  double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++)
        softmax_row(in[0] + i * c, out + i * c, c);
}

void eval_softmax_back(const Graph *g, const Node *n, const double *const *in,
                       double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        const double *dy = in[0] + i * c, *y = in[1] + i * c;
        double s = 0;
        for (int j = 0; j < c; j++)
            s += dy[j] * y[j];
        for (int j = 0; j < c; j++)
            out[i * c + j] = y[j] * (dy[j] - s);
    }
}

void emit_softmax(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "/* x, y: (%s, %d) */", op_rows(n), last_dim(n));
    emit_line(e, "nnc_softmax(%s, %s, %s, %d);", a[0], a[1], op_rows(n), last_dim(n));
}

void emit_softmax_back(Emit *e, const Graph *g, const Node *n,
                       const char *const *a)
{
    (void)g;
    emit_line(e, "/* dy, y, dx: (%s, %d) */", op_rows(n), last_dim(n));
    emit_line(e, "nnc_softmax_back(%s, %s, %s, %s, %d);", a[0], a[1], a[2], op_rows(n),
              last_dim(n));
}

/* ---- layer normalization ----------------------------------------------- */
void grad_layernorm(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    /* eps, not a Node pointer: graph_add may move g->nodes */
    double eps = NODE(g, y)->fattr[0];
    dx[0] = graph_add2(g, OP_LAYERNORM_BACK, NODE(g, y)->loc, dy, NODE(g, y)->in[0]);
    if (dx[0] != NODE_NONE)
        NODE(g, dx[0])->fattr[0] = eps;
}

/* y = normalized row x; returns s = 1/sqrt(var + eps). */
static double layernorm_row(const double *x, double *y, int c, double eps)
{
    double m = 0, v = 0;
    for (int j = 0; j < c; j++)
        m += x[j];
    m /= c;
    for (int j = 0; j < c; j++)
        v += (x[j] - m) * (x[j] - m);
    double s = 1 / sqrt(v / c + eps);
    for (int j = 0; j < c; j++)
        y[j] = (x[j] - m) * s;
    return s;
}

void eval_layernorm(const Graph *g, const Node *n, const double *const *in,
                    double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++)
        layernorm_row(in[0] + i * c, out + i * c, c, n->fattr[0]);
}

/* dx = the layernorm gradient of row dy at row x. */
static void layernorm_back_row(const double *dy, const double *x, double *dx, int c,
                               double eps)
{
    double s = layernorm_row(x, dx, c, eps);
    double a = 0, b = 0;
    for (int j = 0; j < c; j++) {
        a += dy[j];
        b += dy[j] * dx[j];
    }
    a /= c;
    b /= c;
    for (int j = 0; j < c; j++)
        dx[j] = s * (dy[j] - a - dx[j] * b);
}

void eval_layernorm_back(const Graph *g, const Node *n, const double *const *in,
                         double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++)
        layernorm_back_row(in[0] + i * c, in[1] + i * c, out + i * c, c, n->fattr[0]);
}

void emit_layernorm(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "/* x, y: (%s, %d) */", op_rows(n), last_dim(n));
    emit_line(e, "nnc_layernorm(%s, %s, %s, %d, %s);", a[0], a[1], op_rows(n), last_dim(n),
              emit_float(n->fattr[0]));
}

void emit_layernorm_back(Emit *e, const Graph *g, const Node *n,
                         const char *const *a)
{
    (void)g;
    emit_line(e, "/* dy, x, dx: (%s, %d) */", op_rows(n), last_dim(n));
    emit_line(e, "nnc_layernorm_back(%s, %s, %s, %s, %d, %s);", a[0], a[1], a[2], op_rows(n),
              last_dim(n), emit_float(n->fattr[0]));
}

/* ---- the layernorm layer: layernorm(x) gamma + beta ---------------------- */

/* gamma (and beta) of shape (C,) for rows of C */
static bool vec_of_rows(const Graph *g, const Node *n, int k, const Node *x)
{
    const Node *v = NODE(g, n->in[k]);
    if (v->shape.rank == 1 && v->shape.dim[0] == x->shape.dim[x->shape.rank - 1])
        return true;
    diag_error(n->loc, "%s: input %d must be (%d,), got %s", op_name(n->op), k + 1,
               x->shape.dim[x->shape.rank - 1], shape_str(&v->shape));
    return false;
}

/* (x, gamma, beta) -> x's shape */
bool shape_layernorm_affine(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    if (x->shape.rank < 1) {
        diag_error(n->loc, "%s needs at least one axis", op_name(n->op));
        return false;
    }
    if (!vec_of_rows(g, n, 1, x) || !vec_of_rows(g, n, 2, x))
        return false;
    n->shape = x->shape;
    n->bmask = x->bmask;
    return true;
}

/* The backward's dy and x: one shape, with at least one axis. */
static bool dy_like_x(const Graph *g, const Node *n)
{
    const Node *dy = NODE(g, n->in[0]), *x = NODE(g, n->in[1]);
    if (shape_eq(&dy->shape, &x->shape) && dy->shape.rank >= 1)
        return true;
    diag_error(n->loc, "%s: shapes %s and %s differ", op_name(n->op), shape_str(&dy->shape),
               shape_str(&x->shape));
    return false;
}

/* (dy, x, gamma) -> dy's shape */
bool shape_layernorm_affine_back(Graph *g, Node *n)
{
    const Node *dy = NODE(g, n->in[0]);
    if (!dy_like_x(g, n) || !vec_of_rows(g, n, 2, NODE(g, n->in[1])))
        return false;
    n->shape = dy->shape;
    n->bmask = dy->bmask;
    return true;
}

/* (dy, x) -> (C,) */
bool shape_layernorm_dgamma(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[1]);
    if (!dy_like_x(g, n))
        return false;
    n->shape = (Shape){1, {x->shape.dim[x->shape.rank - 1]}};
    n->bmask = 0;
    return true;
}

/* dx = layernorm_back(dy gamma, x), dgamma = sum_rows dy xhat, dbeta =
 * sum_rows dy (autodiff sums dy to beta's shape) */
void grad_layernorm_affine(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    /* ids and the location, not a Node pointer: graph_add may move g->nodes */
    NodeId x = NODE(g, y)->in[0], gamma = NODE(g, y)->in[1];
    Loc loc = NODE(g, y)->loc;
    dx[0] = with_attrs(g, graph_add3(g, OP_LAYERNORM_AFFINE_BACK, loc, dy, x, gamma), y);
    dx[1] = with_attrs(g, graph_add2(g, OP_LAYERNORM_DGAMMA, loc, dy, x), y);
    dx[2] = dy;
}

void eval_layernorm_affine(const Graph *g, const Node *n, const double *const *in,
                           double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        double *y = out + i * c;
        layernorm_row(in[0] + i * c, y, c, n->fattr[0]);
        for (int j = 0; j < c; j++)
            y[j] = y[j] * in[1][j] + in[2][j];
    }
}

void eval_layernorm_affine_back(const Graph *g, const Node *n, const double *const *in,
                                double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    double *dyg = xmalloc((size_t)c * sizeof *dyg);
    for (size_t i = 0; i < r; i++) {
        for (int j = 0; j < c; j++)
            dyg[j] = in[0][i * c + j] * in[2][j];
        layernorm_back_row(dyg, in[1] + i * c, out + i * c, c, n->fattr[0]);
    }
    free(dyg);
}

void eval_layernorm_dgamma(const Graph *g, const Node *n, const double *const *in,
                           double *out)
{
    int c;
    size_t r = rows_of(NODE(g, n->in[1]), &c);
    double *xhat = xmalloc((size_t)c * sizeof *xhat);
    for (int j = 0; j < c; j++)
        out[j] = 0;
    for (size_t i = 0; i < r; i++) {
        layernorm_row(in[1] + i * c, xhat, c, n->fattr[0]);
        for (int j = 0; j < c; j++)
            out[j] += in[0][i * c + j] * xhat[j];
    }
    free(xhat);
}

void emit_layernorm_affine(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "/* x, y: (%s, %d); gamma, beta: %d */", op_rows(n), last_dim(n), last_dim(n));
    emit_line(e, "nnc_layernorm_affine(%s, %s, %s, %s, %s, %d, %s);", a[0], a[1], a[2], a[3],
              op_rows(n), last_dim(n), emit_float(n->fattr[0]));
}

/* dx, with gamma's and beta's gradients when they ride along (fuse.c) */
void emit_layernorm_affine_back(Emit *e, const Graph *g, const Node *n,
                                const char *const *a)
{
    (void)g;
    emit_line(e, "/* dy, x, dx: (%s, %d); gamma%s%s: %d */", op_rows(n), last_dim(n),
              e->side ? ", its gradient" : "", e->sum ? ", beta's gradient" : "", last_dim(n));
    emit_line(e, "nnc_layernorm_affine_back(%s, %s, %s, %s, %s, %s, %s, %d, %s);", a[0], a[1],
              a[2], a[3], e->side ? e->side : "NULL", e->sum ? e->sum : "NULL", op_rows(n),
              last_dim(n), emit_float(n->fattr[0]));
}

/* gamma's gradient alone (its layer's dx has a kernel of its own) */
void emit_layernorm_dgamma(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[1]);
    emit_line(e, "/* dy, x: (%s, %d); dgamma: %d */", op_rows(x), last_dim(x), last_dim(x));
    emit_line(e, "nnc_layernorm_affine_back(%s, %s, NULL, NULL, %s, NULL, %s, %d, %s);", a[0],
              a[1], a[2], op_rows(x), last_dim(x), emit_float(n->fattr[0]));
}

/* ---- dropout ------------------------------------------------------------ */
void grad_dropout(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    /* the rate, not a Node pointer: graph_add may move g->nodes */
    double rate = NODE(g, y)->fattr[0];
    dx[0] = graph_add2(g, OP_DROPOUT_BACK, NODE(g, y)->loc, dy, y);
    if (dx[0] != NODE_NONE)
        NODE(g, dx[0])->fattr[0] = rate;
}

void eval_dropout(const Graph *g, const Node *n, const double *const *in,
                  double *out)
{
    (void)g;
    double p = n->fattr[0], scale = 1 / (1 - p);
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++) {
        double u = fmod(0.6180339887498949 * (double)i, 1.0);
        out[i] = u < p ? 0 : in[0][i] * scale;
    }
}

void eval_dropout_back(const Graph *g, const Node *n, const double *const *in,
                       double *out)
{
    (void)g;
    double scale = 1 / (1 - n->fattr[0]);
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++)
        out[i] = in[1][i] != 0 ? in[0][i] * scale : 0;
}

void emit_dropout(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    if (e->predict) {
        emit_line(e, "memmove(%s, %s, sizeof(float) * (size_t)(%s));", a[1], a[0],
                  emit_numel(n));
        return;
    }
    emit_line(e, "/* x, y: %s floats */", op_numel(n));
    emit_line(e, "nnc_dropout(%s, %s, %s, %s, %s, &ctx->rng);", a[0], a[1], op_numel(n),
              emit_float(n->fattr[0]), emit_float(1 / (1 - n->fattr[0])));
}

void emit_dropout_back(Emit *e, const Graph *g, const Node *n,
                       const char *const *a)
{
    (void)g;
    emit_line(e, "/* dy, y, dx: %s floats */", op_numel(n));
    emit_line(e, "nnc_dropout_back(%s, %s, %s, %s, %s);", a[0], a[1], a[2], op_numel(n),
              emit_float(1 / (1 - n->fattr[0])));
}

/* ---- binary cross-entropy ----------------------------------------------- */
static double clamp_log(double v)
{
    double l = log(v);
    return l < -100 ? -100 : l;
}

static double bce_term(double p, double t, double param)
{
    (void)param;
    return -(t * clamp_log(p) + (1 - t) * clamp_log(1 - p));
}

static double bce_grad(double dl, double p, double t, double param)
{
    (void)param;
    double d = p * (1 - p);
    return dl * (p - t) / (d > 1e-12 ? d : 1e-12);
}

MEAN_LOSS(bce, OP_BCE_BACK)

void emit_bce_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s * (%s - %s) / fmaxf(%s * (1.0f - %s), 1e-12f) / (float)%s",
               a[0], a[1], a[2], a[1], a[1], emit_numel(n));
}

/* ---- mean squared error ------------------------------------------------- */
static double mse_term(double p, double t, double param)
{
    (void)param;
    return (p - t) * (p - t);
}

static double mse_grad(double dl, double p, double t, double param)
{
    (void)param;
    return dl * 2 * (p - t);
}

MEAN_LOSS(mse, OP_MSE_BACK)

void emit_mse_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "2.0f * %s * (%s - %s) / (float)%s", a[0], a[1], a[2],
               emit_numel(n));
}

/* ---- sigmoid + binary cross-entropy, fused ------------------------------ */
static double sigmoid_bce_term(double z, double t, double param)
{
    (void)param;
    return (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
}

static double sigmoid_bce_grad(double dl, double z, double t, double param)
{
    (void)param;
    return dl * (1 / (1 + exp(-z)) - t);
}

MEAN_LOSS(sigmoid_bce, OP_SIGMOID_BCE_BACK)

void emit_sigmoid_bce_back(Emit *e, const Graph *g, const Node *n,
                           const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s * (nnc_sigmoidf(%s) - %s) / (float)%s", a[0], a[1],
               a[2], emit_numel(n));
}

/* ---- softmax cross-entropy ---------------------------------------------- */
void grad_softmax_ce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    loss_grad(g, y, dy, dx, OP_SOFTMAX_CE_BACK);
}

/* log sum_j exp(z_j), as max z + log sum_j exp(z_j - max z). */
static double log_sum_exp(const double *z, int c)
{
    double mx = z[0], se = 0;
    for (int j = 1; j < c; j++)
        mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < c; j++)
        se += exp(z[j] - mx);
    return mx + log(se);
}

void eval_softmax_ce(const Graph *g, const Node *n, const double *const *in,
                     double *out)
{
    int c;
    size_t r = rows_of(NODE(g, n->in[0]), &c);
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *zr = in[0] + i * c, *tr = in[1] + i * c;
        double lse = log_sum_exp(zr, c);
        for (int j = 0; j < c; j++)
            s -= tr[j] * (zr[j] - lse);
    }
    out[0] = s / (double)r;
}

void eval_softmax_ce_back(const Graph *g, const Node *n,
                          const double *const *in, double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        const double *tr = in[2] + i * c;
        double *o = out + i * c, st = 0;
        softmax_row(in[1] + i * c, o, c);
        for (int j = 0; j < c; j++)
            st += tr[j];
        for (int j = 0; j < c; j++)
            o[j] = in[0][0] * (o[j] * st - tr[j]) / (double)r;
    }
}

ROW_LOSS_EMITTERS(softmax_ce, false)

/* ---- mean absolute error ------------------------------------------------ */
static double mae_term(double p, double t, double param)
{
    (void)param;
    return fabs(p - t);
}

static double mae_grad(double dl, double p, double t, double param)
{
    (void)param;
    double d = p - t;
    return dl * ((d > 0) - (d < 0));
}

MEAN_LOSS(mae, OP_MAE_BACK)

void emit_mae_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s * (float)((%s > %s) - (%s < %s)) / (float)%s", a[0],
               a[1], a[2], a[1], a[2], emit_numel(n));
}

/* ---- huber -------------------------------------------------------------- */
void grad_huber(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = with_attrs(g, graph_add3(g, OP_HUBER_BACK, n->loc, dy, n->in[0], n->in[1]), y);
    dx[1] = NODE_NONE;
}

static double huber_term(double p, double t, double delta)
{
    double d = fabs(p - t);
    return d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
}

static double huber_grad(double dl, double p, double t, double delta)
{
    double d = p - t;
    d = d > delta ? delta : d < -delta ? -delta : d;
    return dl * d;
}

MEAN_LOSS_EVAL(huber)

void emit_huber(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    value_loss(e, g, n, a, "huber", emit_float(n->fattr[0]));
}

void emit_huber_back(Emit *e, const Graph *g, const Node *n,
                     const char *const *a)
{
    (void)g;
    const char *delta = emit_float(n->fattr[0]);
    buf_printf(e->out, "%s * fminf(fmaxf(%s - %s, -%s), %s) / (float)%s", a[0],
               a[1], a[2], delta, delta, emit_numel(n));
}

/* ---- categorical cross-entropy on probabilities ------------------------- */
#define CCE_EPS 1e-7

void grad_cce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    loss_grad(g, y, dy, dx, OP_CCE_BACK);
}

/* q clipped to [CCE_EPS, 1 - CCE_EPS]. */
static double cce_clip(double q)
{
    return q < CCE_EPS ? CCE_EPS : q > 1 - CCE_EPS ? 1 - CCE_EPS : q;
}

static double row_sum(const double *x, int c)
{
    double s = 0;
    for (int j = 0; j < c; j++)
        s += x[j];
    return s;
}

void eval_cce(const Graph *g, const Node *n, const double *const *in,
              double *out)
{
    int c;
    size_t r = rows_of(NODE(g, n->in[0]), &c);
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[0] + i * c, *tr = in[1] + i * c;
        double sum = row_sum(pr, c);
        for (int j = 0; j < c; j++) {
            s -= tr[j] * log(cce_clip(pr[j] / sum));
        }
    }
    out[0] = s / (double)r;
}

void eval_cce_back(const Graph *g, const Node *n, const double *const *in,
                   double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[1] + i * c, *tr = in[2] + i * c;
        double *o = out + i * c, sum = row_sum(pr, c), sg = 0;
        for (int j = 0; j < c; j++) {
            double q = pr[j] / sum;
            o[j] = q > CCE_EPS && q < 1 - CCE_EPS ? -in[0][0] * tr[j] / q / (double)r : 0;
            sg += o[j] * q;
        }
        for (int j = 0; j < c; j++)
            o[j] = (o[j] - sg) / sum;
    }
}

ROW_LOSS_EMITTERS(cce, false)

/* ---- sparse categorical cross-entropy ----------------------------------- */

/* The class index held in target value v, or -1 if it is not one of c. */
static int class_index(double v, int c)
{
    return v >= 0 && v < c ? (int)v : -1;
}

void grad_sparse_cce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    loss_grad(g, y, dy, dx, OP_SPARSE_CCE_BACK);
}

void eval_sparse_cce(const Graph *g, const Node *n, const double *const *in,
                     double *out)
{
    int c;
    size_t r = rows_of(NODE(g, n->in[0]), &c);
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[0] + i * c;
        int k = class_index(in[1][i], c);
        if (k < 0) {
            s = NAN;
            continue;
        }
        s -= log(cce_clip(pr[k] / row_sum(pr, c)));
    }
    out[0] = s / (double)r;
}

void eval_sparse_cce_back(const Graph *g, const Node *n,
                          const double *const *in, double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[1] + i * c;
        double *o = out + i * c, sum = row_sum(pr, c), gk = 0, q = 0;
        int k = class_index(in[2][i], c);
        if (k >= 0) {
            q = pr[k] / sum;
            gk = q > CCE_EPS && q < 1 - CCE_EPS ? -in[0][0] / q / (double)r : 0;
        }
        for (int j = 0; j < c; j++)
            o[j] = ((j == k ? gk : 0) - gk * q) / sum;
    }
}

ROW_LOSS_EMITTERS(sparse_cce, true)

/* ---- sparse softmax cross-entropy, fused -------------------------------- */
void grad_sparse_softmax_ce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    loss_grad(g, y, dy, dx, OP_SPARSE_SOFTMAX_CE_BACK);
}

void eval_sparse_softmax_ce(const Graph *g, const Node *n,
                            const double *const *in, double *out)
{
    int c;
    size_t r = rows_of(NODE(g, n->in[0]), &c);
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *zr = in[0] + i * c;
        int k = class_index(in[1][i], c);
        if (k < 0) {
            s = NAN;
            continue;
        }
        s += log_sum_exp(zr, c) - zr[k];
    }
    out[0] = s / (double)r;
}

void eval_sparse_softmax_ce_back(const Graph *g, const Node *n,
                                 const double *const *in, double *out)
{
    (void)g;
    int c;
    size_t r = rows_of(n, &c);
    for (size_t i = 0; i < r; i++) {
        double *o = out + i * c;
        int k = class_index(in[2][i], c);
        softmax_row(in[1] + i * c, o, c);
        for (int j = 0; j < c; j++)
            o[j] = k < 0 ? 0 : in[0][0] * (o[j] - (j == k)) / (double)r;
    }
}

ROW_LOSS_EMITTERS(sparse_softmax_ce, true)
