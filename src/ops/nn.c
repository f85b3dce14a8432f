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
 */
#include <math.h>

#include "ops.h"

static int last_dim(const Node *n)
{
    return n->shape.dim[n->shape.rank - 1];
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
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++)
        softmax_row(in[0] + i * c, out + i * c, c);
}

void eval_softmax_back(const Graph *g, const Node *n, const double *const *in,
                       double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++) {
        const double *dy = in[0] + i * c, *y = in[1] + i * c;
        double s = 0;
        for (int j = 0; j < c; j++)
            s += dy[j] * y[j];
        for (int j = 0; j < c; j++)
            out[i * c + j] = y[j] * (dy[j] - s);
    }
}

/* Emits `for each row r: <body>` with x, y pointing at the row. */
static void row_loop(Emit *e, const Node *n)
{
    emit_line(e, "for (int r = 0; r < %s / %d; r++) {", emit_numel(n), last_dim(n));
    e->indent++;
}

void emit_softmax(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    row_loop(e, n);
    emit_line(e, "const float *xr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "float *yr = %s + (size_t)r * %d;", a[1], c);
    emit_line(e, "float mx = xr[0], s = 0.0f;");
    emit_line(e, "for (int j = 1; j < %d; j++) mx = xr[j] > mx ? xr[j] : mx;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) { yr[j] = nnc_expf(xr[j] - mx); s += yr[j]; }", c);
    emit_line(e, "for (int j = 0; j < %d; j++) yr[j] /= s;", c);
    e->indent--;
    emit_line(e, "}");
}

void emit_softmax_back(Emit *e, const Graph *g, const Node *n,
                       const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    row_loop(e, n);
    emit_line(e, "const float *dyr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "const float *yr = %s + (size_t)r * %d;", a[1], c);
    emit_line(e, "float *dxr = %s + (size_t)r * %d;", a[2], c);
    emit_line(e, "float s = 0.0f;");
    emit_line(e, "for (int j = 0; j < %d; j++) s += dyr[j] * yr[j];", c);
    emit_line(e, "for (int j = 0; j < %d; j++) dxr[j] = yr[j] * (dyr[j] - s);", c);
    e->indent--;
    emit_line(e, "}");
}

/* ---- layer normalization ----------------------------------------------- */
void grad_layernorm(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add2(g, OP_LAYERNORM_BACK, n->loc, dy, n->in[0]);
    if (dx[0] != NODE_NONE)
        NODE(g, dx[0])->fattr[0] = n->fattr[0];
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
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++)
        layernorm_row(in[0] + i * c, out + i * c, c, n->fattr[0]);
}

void eval_layernorm_back(const Graph *g, const Node *n, const double *const *in,
                         double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++) {
        const double *dy = in[0] + i * c;
        double *dx = out + i * c;
        double s = layernorm_row(in[1] + i * c, dx, c, n->fattr[0]);
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
}

/* Emits the row's mean m and scale s from xr (float sums, as the rest). */
static void emit_layernorm_stats(Emit *e, const Node *n)
{
    int c = last_dim(n);
    emit_line(e, "float m = 0.0f, v = 0.0f, s;");
    emit_line(e, "for (int j = 0; j < %d; j++) m += xr[j];", c);
    emit_line(e, "m /= %d.0f;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) v += (xr[j] - m) * (xr[j] - m);", c);
    emit_line(e, "s = 1.0f / sqrtf(v / %d.0f + %s);", c, emit_float(n->fattr[0]));
}

void emit_layernorm(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    row_loop(e, n);
    emit_line(e, "const float *xr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "float *yr = %s + (size_t)r * %d;", a[1], c);
    emit_layernorm_stats(e, n);
    emit_line(e, "for (int j = 0; j < %d; j++) yr[j] = (xr[j] - m) * s;", c);
    e->indent--;
    emit_line(e, "}");
}

void emit_layernorm_back(Emit *e, const Graph *g, const Node *n,
                         const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    row_loop(e, n);
    emit_line(e, "const float *dyr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "const float *xr = %s + (size_t)r * %d;", a[1], c);
    emit_line(e, "float *dxr = %s + (size_t)r * %d;", a[2], c);
    emit_layernorm_stats(e, n);
    emit_line(e, "float ma = 0.0f, mb = 0.0f;");
    emit_line(e, "for (int j = 0; j < %d; j++) { ma += dyr[j]; mb += dyr[j] * (xr[j] - m) * s; }", c);
    emit_line(e, "ma /= %d.0f;", c);
    emit_line(e, "mb /= %d.0f;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) dxr[j] = s * (dyr[j] - ma - (xr[j] - m) * s * mb);", c);
    e->indent--;
    emit_line(e, "}");
}

/* ---- dropout ------------------------------------------------------------ */
void grad_dropout(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add2(g, OP_DROPOUT_BACK, n->loc, dy, y);
    if (dx[0] != NODE_NONE)
        NODE(g, dx[0])->fattr[0] = n->fattr[0];
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
    emit_line(e, "for (size_t i = 0; i < (size_t)(%s); i++)", emit_numel(n));
    emit_line(e, "    %s[i] = nnc_rng_uniform(&ctx->rng) < %s ? 0.0f : %s[i] * %s;", a[1],
              emit_float(n->fattr[0]), a[0], emit_float(1 / (1 - n->fattr[0])));
}

void emit_dropout_back(Emit *e, const Graph *g, const Node *n,
                       const char *const *a)
{
    (void)g;
    emit_line(e, "for (size_t i = 0; i < (size_t)(%s); i++)", emit_numel(n));
    emit_line(e, "    %s[i] = %s[i] != 0.0f ? %s[i] * %s : 0.0f;", a[2], a[1], a[0],
              emit_float(1 / (1 - n->fattr[0])));
}

/* ---- binary cross-entropy ----------------------------------------------- */
static double clamp_log(double v)
{
    double l = log(v);
    return l < -100 ? -100 : l;
}

void grad_bce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_BCE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_bce(const Graph *g, const Node *n, const double *const *in,
              double *out)
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double p = in[0][i], t = in[1][i];
        s -= t * clamp_log(p) + (1 - t) * clamp_log(1 - p);
    }
    out[0] = s / (double)len;
}

void eval_bce_back(const Graph *g, const Node *n, const double *const *in,
                   double *out)
{
    (void)g;
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++) {
        double p = in[1][i], t = in[2][i], d = p * (1 - p);
        out[i] = in[0][0] * (p - t) / (d > 1e-12 ? d : 1e-12) / (double)len;
    }
}

void emit_bce(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    emit_line(e, "double s = 0.0;");
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(p));
    emit_line(e, "    double lp = log((double)%s[i]), lq = log(1.0 - (double)%s[i]);", a[0], a[0]);
    emit_line(e, "    if (lp < -100.0) lp = -100.0;");
    emit_line(e, "    if (lq < -100.0) lq = -100.0;");
    emit_line(e, "    s -= %s[i] * lp + (1.0 - %s[i]) * lq;", a[1], a[1]);
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s));", a[2], emit_numel(p));
}

void emit_bce_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s * (%s - %s) / fmaxf(%s * (1.0f - %s), 1e-12f) / (float)%s",
               a[0], a[1], a[2], a[1], a[1], emit_numel(n));
}

/* ---- mean squared error ------------------------------------------------- */
void grad_mse(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_MSE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_mse(const Graph *g, const Node *n, const double *const *in,
              double *out)
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0;
    for (size_t i = 0; i < len; i++)
        s += (in[0][i] - in[1][i]) * (in[0][i] - in[1][i]);
    out[0] = s / (double)len;
}

void eval_mse_back(const Graph *g, const Node *n, const double *const *in,
                   double *out)
{
    (void)g;
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++)
        out[i] = in[0][0] * 2 * (in[1][i] - in[2][i]) / (double)len;
}

void emit_mse(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    emit_line(e, "double s = 0.0;");
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(p));
    emit_line(e, "    double d = (double)%s[i] - (double)%s[i];", a[0], a[1]);
    emit_line(e, "    s += d * d;");
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s));", a[2], emit_numel(p));
}

void emit_mse_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "2.0f * %s * (%s - %s) / (float)%s", a[0], a[1], a[2],
               emit_numel(n));
}

/* ---- sigmoid + binary cross-entropy, fused ------------------------------ */
void grad_sigmoid_bce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_SIGMOID_BCE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_sigmoid_bce(const Graph *g, const Node *n, const double *const *in,
                      double *out)
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double z = in[0][i], t = in[1][i];
        s += (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
    }
    out[0] = s / (double)len;
}

void eval_sigmoid_bce_back(const Graph *g, const Node *n,
                           const double *const *in, double *out)
{
    (void)g;
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++)
        out[i] = in[0][0] * (1 / (1 + exp(-in[1][i])) - in[2][i]) / (double)len;
}

void emit_sigmoid_bce(Emit *e, const Graph *g, const Node *n,
                      const char *const *a)
{
    const Node *z = NODE(g, n->in[0]);
    emit_line(e, "double s = 0.0;");
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(z));
    emit_line(e, "    double z = %s[i];", a[0]);
    emit_line(e, "    s += (z > 0.0 ? z : 0.0) - z * %s[i] + log1p(exp(-fabs(z)));", a[1]);
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s));", a[2], emit_numel(z));
}

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
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_SOFTMAX_CE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_softmax_ce(const Graph *g, const Node *n, const double *const *in,
                     double *out)
{
    const Node *z = NODE(g, n->in[0]);
    int c = last_dim(z);
    size_t r = shape_numel(&z->shape) / (size_t)c;
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *zr = in[0] + i * c, *tr = in[1] + i * c;
        double mx = zr[0], se = 0;
        for (int j = 1; j < c; j++)
            mx = zr[j] > mx ? zr[j] : mx;
        for (int j = 0; j < c; j++)
            se += exp(zr[j] - mx);
        double lse = mx + log(se);
        for (int j = 0; j < c; j++)
            s -= tr[j] * (zr[j] - lse);
    }
    out[0] = s / (double)r;
}

void eval_softmax_ce_back(const Graph *g, const Node *n,
                          const double *const *in, double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
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

void emit_softmax_ce(Emit *e, const Graph *g, const Node *n,
                     const char *const *a)
{
    const Node *z = NODE(g, n->in[0]);
    int c = last_dim(z);
    emit_line(e, "double s = 0.0;");
    row_loop(e, z);
    emit_line(e, "const float *zr = %s + (size_t)r * %d, *tr = %s + (size_t)r * %d;",
              a[0], c, a[1], c);
    emit_line(e, "float mx = zr[0];");
    emit_line(e, "double se = 0.0, lse;");
    emit_line(e, "for (int j = 1; j < %d; j++) mx = zr[j] > mx ? zr[j] : mx;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) se += exp((double)(zr[j] - mx));", c);
    emit_line(e, "lse = (double)mx + log(se);");
    emit_line(e, "for (int j = 0; j < %d; j++) s -= tr[j] * ((double)zr[j] - lse);", c);
    e->indent--;
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s / %d));", a[2], emit_numel(z), c);
}

void emit_softmax_ce_back(Emit *e, const Graph *g, const Node *n,
                          const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    emit_line(e, "const float k = %s / (float)(%s / %d);", a[0], emit_numel(n), c);
    row_loop(e, n);
    emit_line(e, "const float *zr = %s + (size_t)r * %d, *tr = %s + (size_t)r * %d;",
              a[1], c, a[2], c);
    emit_line(e, "float *dr = %s + (size_t)r * %d;", a[3], c);
    emit_line(e, "float mx = zr[0], s = 0.0f, st = 0.0f;");
    emit_line(e, "for (int j = 1; j < %d; j++) mx = zr[j] > mx ? zr[j] : mx;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) { dr[j] = nnc_expf(zr[j] - mx); s += dr[j]; st += tr[j]; }", c);
    emit_line(e, "for (int j = 0; j < %d; j++) dr[j] = k * (dr[j] / s * st - tr[j]);", c);
    e->indent--;
    emit_line(e, "}");
}

/* ---- mean absolute error ------------------------------------------------ */
void grad_mae(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_MAE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_mae(const Graph *g, const Node *n, const double *const *in,
              double *out)
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0;
    for (size_t i = 0; i < len; i++)
        s += fabs(in[0][i] - in[1][i]);
    out[0] = s / (double)len;
}

void eval_mae_back(const Graph *g, const Node *n, const double *const *in,
                   double *out)
{
    (void)g;
    size_t len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++) {
        double d = in[1][i] - in[2][i];
        out[i] = in[0][0] * ((d > 0) - (d < 0)) / (double)len;
    }
}

void emit_mae(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    emit_line(e, "double s = 0.0;");
    emit_line(e, "for (int i = 0; i < %s; i++) s += fabs((double)%s[i] - (double)%s[i]);",
              emit_numel(p), a[0], a[1]);
    emit_line(e, "%s[0] = (float)(s / (%s));", a[2], emit_numel(p));
}

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

void eval_huber(const Graph *g, const Node *n, const double *const *in,
                double *out)
{
    size_t len = shape_numel(&NODE(g, n->in[0])->shape);
    double s = 0, delta = n->fattr[0];
    for (size_t i = 0; i < len; i++) {
        double d = fabs(in[0][i] - in[1][i]);
        s += d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
    }
    out[0] = s / (double)len;
}

void eval_huber_back(const Graph *g, const Node *n, const double *const *in,
                     double *out)
{
    (void)g;
    size_t len = shape_numel(&n->shape);
    double delta = n->fattr[0];
    for (size_t i = 0; i < len; i++) {
        double d = in[1][i] - in[2][i];
        d = d > delta ? delta : d < -delta ? -delta : d;
        out[i] = in[0][0] * d / (double)len;
    }
}

void emit_huber(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    const char *delta = emit_float(n->fattr[0]);
    emit_line(e, "double s = 0.0;");
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(p));
    emit_line(e, "    double d = fabs((double)%s[i] - (double)%s[i]);", a[0], a[1]);
    emit_line(e, "    s += d <= (double)%s ? 0.5 * d * d : (double)%s * (d - 0.5 * (double)%s);",
              delta, delta, delta);
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s));", a[2], emit_numel(p));
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
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_CCE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
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
    const Node *p = NODE(g, n->in[0]);
    int c = last_dim(p);
    size_t r = shape_numel(&p->shape) / (size_t)c;
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[0] + i * c, *tr = in[1] + i * c;
        double sum = row_sum(pr, c);
        for (int j = 0; j < c; j++) {
            double q = pr[j] / sum;
            q = q < CCE_EPS ? CCE_EPS : q > 1 - CCE_EPS ? 1 - CCE_EPS : q;
            s -= tr[j] * log(q);
        }
    }
    out[0] = s / (double)r;
}

void eval_cce_back(const Graph *g, const Node *n, const double *const *in,
                   double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
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

void emit_cce(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    int c = last_dim(p);
    emit_line(e, "double s = 0.0;");
    row_loop(e, p);
    emit_line(e, "const float *pr = %s + (size_t)r * %d, *tr = %s + (size_t)r * %d;",
              a[0], c, a[1], c);
    emit_line(e, "double sum = 0.0;");
    emit_line(e, "for (int j = 0; j < %d; j++) sum += pr[j];", c);
    emit_line(e, "for (int j = 0; j < %d; j++) {", c);
    emit_line(e, "    double q = pr[j] / sum;");
    emit_line(e, "    q = q < %g ? %g : q > 1.0 - %g ? 1.0 - %g : q;", CCE_EPS, CCE_EPS,
              CCE_EPS, CCE_EPS);
    emit_line(e, "    s -= tr[j] * log(q);");
    emit_line(e, "}");
    e->indent--;
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s / %d));", a[2], emit_numel(p), c);
}

void emit_cce_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    emit_line(e, "const float k = %s / (float)(%s / %d);", a[0], emit_numel(n), c);
    row_loop(e, n);
    emit_line(e, "const float *pr = %s + (size_t)r * %d, *tr = %s + (size_t)r * %d;",
              a[1], c, a[2], c);
    emit_line(e, "float *dr = %s + (size_t)r * %d;", a[3], c);
    emit_line(e, "float sum = 0.0f, sg = 0.0f;");
    emit_line(e, "for (int j = 0; j < %d; j++) sum += pr[j];", c);
    emit_line(e, "for (int j = 0; j < %d; j++) {", c);
    emit_line(e, "    float q = pr[j] / sum;");
    emit_line(e, "    dr[j] = q > %gf && q < 1.0f - %gf ? -k * tr[j] / q : 0.0f;",
              CCE_EPS, CCE_EPS);
    emit_line(e, "    sg += dr[j] * q;");
    emit_line(e, "}");
    emit_line(e, "for (int j = 0; j < %d; j++) dr[j] = (dr[j] - sg) / sum;", c);
    e->indent--;
    emit_line(e, "}");
}

/* ---- sparse categorical cross-entropy ----------------------------------- */

/* The class index held in target value v, or -1 if it is not one of c. */
static int class_index(double v, int c)
{
    return v >= 0 && v < c ? (int)v : -1;
}

void grad_sparse_cce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_SPARSE_CCE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_sparse_cce(const Graph *g, const Node *n, const double *const *in,
                     double *out)
{
    const Node *p = NODE(g, n->in[0]);
    int c = last_dim(p);
    size_t r = shape_numel(&p->shape) / (size_t)c;
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *pr = in[0] + i * c;
        int k = class_index(in[1][i], c);
        if (k < 0) {
            s = NAN;
            continue;
        }
        double q = pr[k] / row_sum(pr, c);
        q = q < CCE_EPS ? CCE_EPS : q > 1 - CCE_EPS ? 1 - CCE_EPS : q;
        s -= log(q);
    }
    out[0] = s / (double)r;
}

void eval_sparse_cce_back(const Graph *g, const Node *n,
                          const double *const *in, double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
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

void emit_sparse_cce(Emit *e, const Graph *g, const Node *n,
                     const char *const *a)
{
    const Node *p = NODE(g, n->in[0]);
    int c = last_dim(p);
    emit_line(e, "double s = 0.0;");
    row_loop(e, p);
    emit_line(e, "const float *pr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "const float tk = %s[r];", a[1]);
    emit_line(e, "double sum = 0.0, q;");
    emit_line(e, "if (!(tk >= 0.0f && tk < %d.0f)) { s = (double)NAN; continue; }", c);
    emit_line(e, "for (int j = 0; j < %d; j++) sum += pr[j];", c);
    emit_line(e, "q = pr[(int)tk] / sum;");
    emit_line(e, "q = q < %g ? %g : q > 1.0 - %g ? 1.0 - %g : q;", CCE_EPS, CCE_EPS,
              CCE_EPS, CCE_EPS);
    emit_line(e, "s -= log(q);");
    e->indent--;
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s / %d));", a[2], emit_numel(p), c);
}

void emit_sparse_cce_back(Emit *e, const Graph *g, const Node *n,
                          const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    emit_line(e, "const float k = %s / (float)(%s / %d);", a[0], emit_numel(n), c);
    row_loop(e, n);
    emit_line(e, "const float *pr = %s + (size_t)r * %d;", a[1], c);
    emit_line(e, "const float tk = %s[r];", a[2]);
    emit_line(e, "float *dr = %s + (size_t)r * %d;", a[3], c);
    emit_line(e, "float sum = 0.0f, q, gk;");
    emit_line(e, "int t;");
    emit_line(e, "for (int j = 0; j < %d; j++) dr[j] = 0.0f;", c);
    emit_line(e, "if (!(tk >= 0.0f && tk < %d.0f)) continue;", c);
    emit_line(e, "t = (int)tk;");
    emit_line(e, "for (int j = 0; j < %d; j++) sum += pr[j];", c);
    emit_line(e, "q = pr[t] / sum;");
    emit_line(e, "gk = q > %gf && q < 1.0f - %gf ? -k / q : 0.0f;", CCE_EPS, CCE_EPS);
    emit_line(e, "for (int j = 0; j < %d; j++) dr[j] = -gk * q / sum;", c);
    emit_line(e, "dr[t] += gk / sum;");
    e->indent--;
    emit_line(e, "}");
}

/* ---- sparse softmax cross-entropy, fused -------------------------------- */
void grad_sparse_softmax_ce(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_add3(g, OP_SPARSE_SOFTMAX_CE_BACK, n->loc, dy, n->in[0], n->in[1]);
    dx[1] = NODE_NONE;
}

void eval_sparse_softmax_ce(const Graph *g, const Node *n,
                            const double *const *in, double *out)
{
    const Node *z = NODE(g, n->in[0]);
    int c = last_dim(z);
    size_t r = shape_numel(&z->shape) / (size_t)c;
    double s = 0;
    for (size_t i = 0; i < r; i++) {
        const double *zr = in[0] + i * c;
        int k = class_index(in[1][i], c);
        if (k < 0) {
            s = NAN;
            continue;
        }
        double mx = zr[0], se = 0;
        for (int j = 1; j < c; j++)
            mx = zr[j] > mx ? zr[j] : mx;
        for (int j = 0; j < c; j++)
            se += exp(zr[j] - mx);
        s += mx + log(se) - zr[k];
    }
    out[0] = s / (double)r;
}

void eval_sparse_softmax_ce_back(const Graph *g, const Node *n,
                                 const double *const *in, double *out)
{
    (void)g;
    int c = last_dim(n);
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++) {
        double *o = out + i * c;
        int k = class_index(in[2][i], c);
        softmax_row(in[1] + i * c, o, c);
        for (int j = 0; j < c; j++)
            o[j] = k < 0 ? 0 : in[0][0] * (o[j] - (j == k)) / (double)r;
    }
}

void emit_sparse_softmax_ce(Emit *e, const Graph *g, const Node *n,
                            const char *const *a)
{
    const Node *z = NODE(g, n->in[0]);
    int c = last_dim(z);
    emit_line(e, "double s = 0.0;");
    row_loop(e, z);
    emit_line(e, "const float *zr = %s + (size_t)r * %d;", a[0], c);
    emit_line(e, "const float tk = %s[r];", a[1]);
    emit_line(e, "float mx = zr[0];");
    emit_line(e, "double se = 0.0;");
    emit_line(e, "if (!(tk >= 0.0f && tk < %d.0f)) { s = (double)NAN; continue; }", c);
    emit_line(e, "for (int j = 1; j < %d; j++) mx = zr[j] > mx ? zr[j] : mx;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) se += exp((double)(zr[j] - mx));", c);
    emit_line(e, "s += (double)mx + log(se) - (double)zr[(int)tk];");
    e->indent--;
    emit_line(e, "}");
    emit_line(e, "%s[0] = (float)(s / (%s / %d));", a[2], emit_numel(z), c);
}

void emit_sparse_softmax_ce_back(Emit *e, const Graph *g, const Node *n,
                                 const char *const *a)
{
    (void)g;
    int c = last_dim(n);
    emit_line(e, "const float k = %s / (float)(%s / %d);", a[0], emit_numel(n), c);
    row_loop(e, n);
    emit_line(e, "const float *zr = %s + (size_t)r * %d;", a[1], c);
    emit_line(e, "const float tk = %s[r];", a[2]);
    emit_line(e, "float *dr = %s + (size_t)r * %d;", a[3], c);
    emit_line(e, "float mx = zr[0], s = 0.0f;");
    emit_line(e, "if (!(tk >= 0.0f && tk < %d.0f)) {", c);
    emit_line(e, "    for (int j = 0; j < %d; j++) dr[j] = 0.0f;", c);
    emit_line(e, "    continue;");
    emit_line(e, "}");
    emit_line(e, "for (int j = 1; j < %d; j++) mx = zr[j] > mx ? zr[j] : mx;", c);
    emit_line(e, "for (int j = 0; j < %d; j++) { dr[j] = nnc_expf(zr[j] - mx); s += dr[j]; }", c);
    emit_line(e, "for (int j = 0; j < %d; j++) dr[j] = k * (dr[j] / s);", c);
    emit_line(e, "dr[(int)tk] -= k;");
    e->indent--;
    emit_line(e, "}");
}
