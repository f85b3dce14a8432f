/*
 * norm.c - batch normalization: the normalizing core, per channel (the
 * last axis) over every other axis, as Keras' BatchNormalization and
 * torch's BatchNorm1d/2d do (NHWC images: per channel; (batch, features):
 * per feature). The learnable affine part, gamma xhat + beta, is ordinary
 * broadcast MUL and ADD built by the layer, so dgamma and dbeta are theirs.
 *
 * C = last dim, M = numel / C, eps = fattr[0]; per channel c:
 *   batchnorm(x):  mu = 1/M sum x,  var = 1/M sum (x - mu)^2  (biased, as
 *                  torch normalizes), inv = 1 / sqrt(var + eps)
 *                  xhat = (x - mu) inv
 *       dx     = inv / M (M g - sum g - xhat sum g xhat),  g = dxhat
 *     (batchnorm_back(g, x) recomputes mu and inv from x)
 *   batchnorm(x, running_mean, running_var) in predict (Emit.predict):
 *                  xhat = (x - running_mean) / sqrt(running_var + eps)
 *   The training step also updates the running statistics in place, as
 *   torch does (k = fattr[1], Keras' momentum; torch's is 1 - k):
 *                  running_mean = k running_mean + (1 - k) mu
 *                  running_var  = k running_var + (1 - k) var M / (M - 1)
 *   (torch keeps the unbiased variance; normalizing uses the biased one).
 *   The running statistics are parameters without gradient or update.
 * The kernels are runtime calls (nnc_batchnorm, _predict, _back in
 * runtime/nn.c); eval_* here are their double references.
 */
#include <math.h>

#include "ops.h"

static int chans(const Node *n)
{
    return n->shape.dim[n->shape.rank - 1];
}

bool shape_channel(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    if (x->shape.rank < 1) {
        diag_error(n->loc, "%s needs at least one axis", op_name(n->op));
        return false;
    }
    int c = x->shape.dim[x->shape.rank - 1];
    for (int i = 1; i < n->nin; i++) {
        const Shape *s = &NODE(g, n->in[i])->shape;
        bool same = shape_eq(s, &x->shape);
        bool per_channel = s->rank == 1 && s->dim[0] == c;
        /* batchnorm_back(g, x): same shape; batchnorm(x, mean, var): one
         * value per channel */
        if (n->op == OP_BATCHNORM_BACK ? !same : !per_channel) {
            diag_error(n->loc, "%s: input %d has shape %s for %s", op_name(n->op), i,
                       shape_str(s), shape_str(&x->shape));
            return false;
        }
    }
    if (n->op == OP_BATCHNORM && shape_numel(&x->shape) == (size_t)c &&
        !x->bmask) {
        /* one row: the variance is 0, normalizing is meaningless */
        diag_error(n->loc, "batchnorm of %s: a single row per channel", shape_str(&x->shape));
        return false;
    }
    n->shape = x->shape;
    n->bmask = x->bmask;
    return true;
}

/* ---- batch statistics --------------------------------------------------- */
void grad_batchnorm(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = with_attrs(g, graph_add2(g, OP_BATCHNORM_BACK, NODE(g, y)->loc, dy,
                                     NODE(g, y)->in[0]), y);
    dx[1] = dx[2] = NODE_NONE; /* running statistics: not trained */
}

/* mu and inv of every channel of x (m rows of c). */
static void stats(const double *x, size_t m, int c, double eps, double *mu, double *inv)
{
    for (int j = 0; j < c; j++) {
        double s = 0, v = 0;
        for (size_t r = 0; r < m; r++)
            s += x[r * c + j];
        mu[j] = s / (double)m;
        for (size_t r = 0; r < m; r++)
            v += (x[r * c + j] - mu[j]) * (x[r * c + j] - mu[j]);
        inv[j] = 1 / sqrt(v / (double)m + eps);
    }
}

void eval_batchnorm(const Graph *g, const Node *n, const double *const *in, double *out)
{
    (void)g;
    int c = chans(n);
    size_t m = shape_numel(&n->shape) / (size_t)c;
    double mu[c], inv[c];
    stats(in[0], m, c, n->fattr[0], mu, inv);
    for (size_t r = 0; r < m; r++)
        for (int j = 0; j < c; j++)
            out[r * c + j] = (in[0][r * c + j] - mu[j]) * inv[j];
}

void eval_batchnorm_back(const Graph *g, const Node *n, const double *const *in,
                         double *out)
{
    (void)g;
    int c = chans(n);
    size_t m = shape_numel(&n->shape) / (size_t)c;
    const double *dy = in[0], *x = in[1];
    double mu[c], inv[c];
    stats(x, m, c, n->fattr[0], mu, inv);
    for (int j = 0; j < c; j++) {
        double sg = 0, sgx = 0;
        for (size_t r = 0; r < m; r++) {
            sg += dy[r * c + j];
            sgx += dy[r * c + j] * (x[r * c + j] - mu[j]) * inv[j];
        }
        for (size_t r = 0; r < m; r++) {
            double xh = (x[r * c + j] - mu[j]) * inv[j];
            out[r * c + j] = inv[j] / (double)m * ((double)m * dy[r * c + j] - sg - xh * sgx);
        }
    }
}

void emit_batchnorm(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    int c = chans(n);
    emit_line(e, "/* x, y: (%s, %d); running mean, var: (%d) */", op_rows(n), c, c);
    if (e->predict) {
        emit_line(e, "nnc_batchnorm_predict(%s, %s, %s, %s, %s, %d, %.17g);", a[0], a[3], a[1],
                  a[2], op_rows(n), c, n->fattr[0]);
        return;
    }
    /* the running statistics are updated in place */
    emit_line(e, "nnc_batchnorm(%s, %s, (float *)%s, (float *)%s, %s, %d, %.17g, %.17g);", a[0],
              a[3], a[1], a[2], op_rows(n), c, n->fattr[0], n->fattr[1]);
}

void emit_batchnorm_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "/* dy, x, dx: (%s, %d) */", op_rows(n), chans(n));
    emit_line(e, "nnc_batchnorm_back(%s, %s, %s, %s, %d, %.17g);", a[0], a[1], a[2], op_rows(n),
              chans(n), n->fattr[0]);
}
