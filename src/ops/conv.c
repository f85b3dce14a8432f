/*
 * conv.c - sliding-window ops over NHWC images (batch, height, width,
 * channels) and the reshape that flattens them.
 *
 * Attributes (iattr): kh, kw (window), sh, sw (strides), same (1: zero
 * padding so that out = ceil(in / stride), the extra row or column at the
 * bottom/right as Keras does; 0: valid, windows inside the image).
 *
 *   im2col(x): (N, H, W, C) -> (N, OH, OW, kh*kw*C), or only the first
 *       iattr[5] x iattr[6] positions when those are set (pass crop);
 *       col[b, oy, ox, (ky, kx, c)] = x[b, oy*sh + ky - pt, ox*sw + kx - pl, c]
 *       (0 in the padding). A convolution is then matmul(col, W^T) with W
 *       (cout, kh*kw*cin) and the GEMM sees col as (N*OH*OW, kh*kw*C).
 *       dx = col2im(dcol): the adjoint, summing overlapping windows.
 *   maxpool(x): y = max over each window (valid padding only)
 *       dx: dy routed to the first maximum of its window (as PyTorch).
 *       maxpool_back with iattr[7] (pass poolrelu) is also the gradient
 *       of the relu whose output x is: only windows with a positive
 *       maximum pass their gradient.
 *   avgpool(x): y = mean over each window;  dx: dy / (kh kw) spread back.
 *   reshape(x): the same floats under another shape (row-major order);
 *       dx = reshape(dy) to x's shape. Flatten of NHWC keeps (h, w, c)
 *       order, unlike PyTorch's NCHW (c, h, w).
 *
 * col2im and avgpool_back carry the image's height and width as
 * attributes, so the forward input need not stay alive for its shape;
 * maxpool_back(dy, x) reads x. Kernels live in the runtime
 * (runtime/conv.c).
 */
#include <math.h>
#include <string.h>

#include "ops.h"

typedef struct Geom {
    int n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow;
} Geom;

/* Window geometry of op node n over image x; false if it does not fit. */
static bool geom(const Node *n, const Node *x, Geom *G)
{
    const int *a = n->iattr;
    if (x->shape.rank != 4 || a[0] < 1 || a[1] < 1 || a[2] < 1 || a[3] < 1)
        return false;
    G->n = x->shape.dim[0];
    G->h = x->shape.dim[1];
    G->w = x->shape.dim[2];
    G->c = x->shape.dim[3];
    G->kh = a[0];
    G->kw = a[1];
    G->sh = a[2];
    G->sw = a[3];
    if (a[4]) {
        G->oh = (G->h + G->sh - 1) / G->sh;
        G->ow = (G->w + G->sw - 1) / G->sw;
        int ph = (G->oh - 1) * G->sh + G->kh - G->h, pw = (G->ow - 1) * G->sw + G->kw - G->w;
        G->pt = ph > 0 ? ph / 2 : 0;
        G->pl = pw > 0 ? pw / 2 : 0;
    } else {
        if (G->h < G->kh || G->w < G->kw)
            return false;
        G->oh = (G->h - G->kh) / G->sh + 1;
        G->ow = (G->w - G->kw) / G->sw + 1;
        G->pt = G->pl = 0;
    }
    /* im2col cropped to its first iattr[5] x iattr[6] positions (pass
     * crop: the windows a pooling above never reads) */
    if (n->op == OP_IM2COL && a[5] > 0) {
        if (a[5] > G->oh || a[6] > G->ow || a[6] < 1)
            return false;
        G->oh = a[5];
        G->ow = a[6];
    }
    return true;
}

/* geom, where col2im takes its positions from its input (a cropped
 * im2col's gradient has fewer than the image gives). */
static bool geom_g(const Graph *g, const Node *n, const Node *x, Geom *G)
{
    if (!geom(n, x, G))
        return false;
    if (n->op == OP_COL2IM) {
        const Shape *d = &NODE(g, n->in[0])->shape;
        if (d->rank != 4 || d->dim[1] > G->oh || d->dim[2] > G->ow)
            return false;
        G->oh = d->dim[1];
        G->ow = d->dim[2];
    }
    return true;
}

static bool window_error(const Node *n, const Node *x)
{
    diag_error(n->loc, "%s: a %dx%d window with strides %dx%d does not fit %s",
               n->what ? n->what : op_name(n->op), n->iattr[0], n->iattr[1], n->iattr[2],
               n->iattr[3], shape_str(&x->shape));
    return false;
}

bool shape_im2col(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    Geom G;
    if (!geom(n, x, &G))
        return window_error(n, x);
    n->shape = (Shape){4, {G.n, G.oh, G.ow, G.kh * G.kw * G.c}};
    n->bmask = x->bmask & 1u;
    return true;
}

bool shape_pool(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    Geom G;
    if (n->iattr[4] || !geom(n, x, &G))
        return window_error(n, x);
    n->shape = (Shape){4, {G.n, G.oh, G.ow, G.c}};
    n->bmask = x->bmask & 1u;
    return true;
}

/* The image a gradient op scatters into: maxpool_back(dy, x) has x;
 * col2im(dcol) and avgpool_back(dy) have its height and width in
 * iattr[5], iattr[6] (so the forward input need not stay alive). */
static Node image_of(const Graph *g, const Node *n)
{
    if (n->nin == 2)
        return *NODE(g, n->in[1]);
    const Node *d = NODE(g, n->in[0]);
    Node x = {0};
    int c = d->shape.dim[3];
    if (n->op == OP_COL2IM)
        c /= n->iattr[0] * n->iattr[1];
    x.shape = (Shape){4, {d->shape.dim[0], n->iattr[5], n->iattr[6], c}};
    x.bmask = d->bmask & 1u;
    return x;
}

/* col2im(dcol), avgpool_back(dy), maxpool_back(dy, x) -> the image's
 * shape; the forward rule on that image must give the gradient's shape. */
static bool shape_back(Graph *g, Node *n, bool pool)
{
    Node x = image_of(g, n);
    Geom G;
    NNC_ASSERT(geom_g(g, n, &x, &G) && !(pool && n->iattr[4]));
    const Shape *d = &NODE(g, n->in[0])->shape;
    NNC_ASSERT(d->rank == 4 && d->dim[1] == G.oh && d->dim[2] == G.ow &&
               d->dim[3] == (pool ? G.c : G.kh * G.kw * G.c));
    n->shape = x.shape;
    n->bmask = x.bmask;
    return true;
}

bool shape_col2im(Graph *g, Node *n) { return shape_back(g, n, false); }
bool shape_pool_back(Graph *g, Node *n) { return shape_back(g, n, true); }

/* RESHAPE: the builder presets the shape and batch mask. */
bool shape_reshape(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    if (shape_numel(&x->shape) != shape_numel(&n->shape) ||
        ((x->bmask & 1u) != (n->bmask & 1u)) || (n->bmask & ~1u) || (x->bmask & ~1u)) {
        diag_error(n->loc, "cannot reshape %s to %s", shape_str(&x->shape),
                   shape_str(&n->shape));
        return false;
    }
    return true;
}

/* ---- gradients ---------------------------------------------------------- */

/* OP(dy) or, for maxpool, OP(dy, x), with y's window attributes and the
 * image's height and width. */
static NodeId window_back(Graph *g, Op op, NodeId y, NodeId dy)
{
    Node proto = *NODE(g, y);
    const Node *x = NODE(g, NODE(g, y)->in[0]);
    proto.op = op;
    proto.nin = optab[op].arity;
    proto.in[0] = dy;
    proto.in[1] = proto.nin == 2 ? NODE(g, y)->in[0] : NODE_NONE;
    proto.iattr[5] = x->shape.dim[1];
    proto.iattr[6] = x->shape.dim[2];
    proto.name = NULL;
    return graph_add_node(g, &proto);
}

void grad_im2col(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = window_back(g, OP_COL2IM, y, dy);
}

void grad_maxpool(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = window_back(g, OP_MAXPOOL_BACK, y, dy);
}

void grad_avgpool(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = window_back(g, OP_AVGPOOL_BACK, y, dy);
}

void grad_reshape(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Node *x = NODE(g, NODE(g, y)->in[0]);
    dx[0] = graph_reshape(g, NODE(g, y)->loc, dy, &x->shape, x->bmask);
}

/* ---- reference evaluation (double) -------------------------------------- */

static size_t at(int b, int y, int x, int h, int w)
{
    return (((size_t)b * (size_t)h + (size_t)y) * (size_t)w + (size_t)x);
}

/* im2col (back = false) or its adjoint (back = true, out zeroed first). */
static void eval_cols(const Geom *G, const double *src, double *dst, bool back)
{
    size_t row = (size_t)(G->kh * G->kw * G->c);
    for (int b = 0; b < G->n; b++)
        for (int oy = 0; oy < G->oh; oy++)
            for (int ox = 0; ox < G->ow; ox++)
                for (int ky = 0; ky < G->kh; ky++)
                    for (int kx = 0; kx < G->kw; kx++)
                        for (int c = 0; c < G->c; c++) {
                            int iy = oy * G->sh + ky - G->pt, ix = ox * G->sw + kx - G->pl;
                            size_t ci = at(b, oy, ox, G->oh, G->ow) * row +
                                        (size_t)((ky * G->kw + kx) * G->c + c);
                            bool in = iy >= 0 && iy < G->h && ix >= 0 && ix < G->w;
                            size_t xi = in ? at(b, iy, ix, G->h, G->w) * (size_t)G->c + (size_t)c : 0;
                            if (!back)
                                dst[ci] = in ? src[xi] : 0;
                            else if (in)
                                dst[xi] += src[ci];
                        }
}

void eval_im2col(const Graph *g, const Node *n, const double *const *in, double *out)
{
    Geom G;
    NNC_ASSERT(geom(n, NODE(g, n->in[0]), &G));
    eval_cols(&G, in[0], out, false);
}

void eval_col2im(const Graph *g, const Node *n, const double *const *in, double *out)
{
    Geom G;
    Node x = image_of(g, n);
    NNC_ASSERT(geom_g(g, n, &x, &G));
    eval_cols(&G, in[0], out, true);
}

/* Pooling: mode 0 max forward, 1 max backward, 2 avg forward, 3 avg
 * backward (out zeroed by the caller for the backward modes); mode 4 is
 * max backward through a relu (windows whose maximum is not positive pass
 * no gradient). */
static void eval_pool(const Geom *G, const double *x, const double *dy, double *out, int mode)
{
    bool relu = mode == 4;
    if (relu)
        mode = 1;
    for (int b = 0; b < G->n; b++)
        for (int oy = 0; oy < G->oh; oy++)
            for (int ox = 0; ox < G->ow; ox++)
                for (int c = 0; c < G->c; c++) {
                    size_t oi = at(b, oy, ox, G->oh, G->ow) * (size_t)G->c + (size_t)c;
                    size_t best = at(b, oy * G->sh, ox * G->sw, G->h, G->w) * (size_t)G->c +
                                  (size_t)c;
                    double s = 0;
                    for (int ky = 0; ky < G->kh; ky++)
                        for (int kx = 0; kx < G->kw; kx++) {
                            size_t xi = at(b, oy * G->sh + ky, ox * G->sw + kx, G->h, G->w) *
                                        (size_t)G->c + (size_t)c;
                            if (mode == 3)
                                out[xi] += dy[oi] / (G->kh * G->kw);
                            else if (mode == 2)
                                s += x[xi];
                            else if (x[xi] > x[best])
                                best = xi;
                        }
                    if (mode == 0)
                        out[oi] = x[best];
                    else if (mode == 1 && (!relu || x[best] > 0))
                        out[best] += dy[oi];
                    else if (mode == 2)
                        out[oi] = s / (G->kh * G->kw);
                }
}

/* eval_pool over n's geometry: of its input, or for a gradient (back) of
 * the image it is the gradient of. */
static void eval_pool_node(const Graph *g, const Node *n, bool back, const double *x,
                           const double *dy, double *out, int mode)
{
    Geom G;
    Node img = back ? image_of(g, n) : *NODE(g, n->in[0]);
    NNC_ASSERT(geom(n, &img, &G));
    eval_pool(&G, x, dy, out, mode);
}

void eval_maxpool(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_pool_node(g, n, false, in[0], NULL, out, 0);
}

void eval_maxpool_back(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_pool_node(g, n, true, in[1], in[0], out, n->iattr[7] ? 4 : 1);
}

void eval_avgpool(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_pool_node(g, n, false, in[0], NULL, out, 2);
}

void eval_avgpool_back(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_pool_node(g, n, true, NULL, in[0], out, 3);
}

void eval_reshape(const Graph *g, const Node *n, const double *const *in, double *out)
{
    (void)g;
    memcpy(out, in[0], shape_numel(&n->shape) * sizeof(double));
}

/* ---- emitters: runtime calls -------------------------------------------- */

/* "n, h, w, c, kh, kw, sh, sw" of the image x (nb for a batched dim). */
static const char *geom_args(const Graph *g, const Node *n, const Node *x, bool pads)
{
    static char b[256];
    Geom G;
    NNC_ASSERT(geom_g(g, n, x, &G));
    snprintf(b, sizeof b, "%s, %d, %d, %d, %d, %d, %d, %d, ", emit_dim(x, 0), G.h, G.w, G.c,
             G.kh, G.kw, G.sh, G.sw);
    if (pads)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%d, %d, ", G.pt, G.pl);
    snprintf(b + strlen(b), sizeof b - strlen(b), "%d, %d", G.oh, G.ow);
    return b;
}

bool maxpool2x2_back(const Graph *g, const Node *n)
{
    Node x = image_of(g, n);
    Geom G;
    return n->op == OP_MAXPOOL_BACK && n->nin == 2 && geom_g(g, n, &x, &G) && G.kh == 2 &&
           G.kw == 2 && G.sh == 2 && G.sw == 2 && G.pt == 0 && G.pl == 0 && !n->iattr[4];
}

const char *maxpool_back_geom(const Graph *g, const Node *n)
{
    static char b[160];
    Node x = image_of(g, n);
    Geom G;
    NNC_ASSERT(geom_g(g, n, &x, &G));
    snprintf(b, sizeof b, "%s, %d, %d, %d, %d", emit_dim(&x, 0), G.h, G.w, G.oh, G.ow);
    return b;
}

void emit_im2col(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    emit_line(e, "nnc_im2col(%s, %s, %s);", geom_args(g, n, NODE(g, n->in[0]), true), a[0], a[1]);
}

/* "h, w, c, kh, kw, sh, sw, pt, pl, oh, ow" of im2col or col2im n
 * (nnc_im2col_rows's and nnc_conv_dgrad's geometry). */
const char *im2col_geom(const Graph *g, const Node *n)
{
    static char b[160];
    Node x = image_of(g, n);
    Geom G;
    NNC_ASSERT(geom_g(g, n, n->op == OP_COL2IM ? &x : NODE(g, n->in[0]), &G));
    snprintf(b, sizeof b, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d", G.h, G.w, G.c, G.kh,
             G.kw, G.sh, G.sw, G.pt, G.pl, G.oh, G.ow);
    return b;
}

/* Rows [r0, r0 + rb) of im2col n's matrix into col (nnc_im2col_rows), in
 * a loop over blocks of rows whose variables are r0 and rb. */
void emit_im2col_rows(Emit *e, const Graph *g, const Node *n, const char *x, const char *col)
{
    emit_line(e, "nnc_im2col_rows(%s, %s, (size_t)r0, (size_t)rb, %s);", im2col_geom(g, n), x,
              col);
}

void emit_col2im(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    Node x = image_of(g, n);
    emit_line(e, "nnc_col2im(%s, %s, %s);", geom_args(g, n, &x, true), a[0], a[1]);
}

void emit_maxpool(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    emit_line(e, "nnc_maxpool(%s, %s, %s);", geom_args(g, n, NODE(g, n->in[0]), false), a[0], a[1]);
}

/* With a bias gradient riding on it (F_SUMRIDER, e->sum), the runtime
 * sums each channel of dx as the windows hand it out. */
void emit_maxpool_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const char *geom = geom_args(g, n, NODE(g, n->in[1]), false);
    if (e->sum)
        emit_line(e, "nnc_maxpool_back_sum(%s, %s, %s, %s, %d, %s);", geom, a[0], a[1], a[2],
                  n->iattr[7] ? 1 : 0, e->sum);
    else
        emit_line(e, "nnc_maxpool%s_back(%s, %s, %s, %s);", n->iattr[7] ? "_relu" : "", geom,
                  a[0], a[1], a[2]);
}

void emit_avgpool(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    emit_line(e, "nnc_avgpool(%s, %s, %s);", geom_args(g, n, NODE(g, n->in[0]), false), a[0], a[1]);
}

void emit_avgpool_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    Node x = image_of(g, n);
    emit_line(e, "nnc_avgpool_back(%s, %s, %s);", geom_args(g, n, &x, false), a[0], a[1]);
}

/* Usually a no-op: the planner puts the output where the input is. */
void emit_reshape(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "if (%s != %s) memcpy(%s, %s, sizeof(float) * (size_t)%s);", a[1], a[0], a[1],
              a[0], emit_numel(n));
}
