/*
 * gather.c - joining along the last axis, and embedding lookups.
 *
 * concat(a, b) over the last axis (other axes equal):
 *   y[..., 0:Ca] = a,  y[..., Ca:Ca+Cb] = b
 *   da = slice(dy, 0, Ca),  db = slice(dy, Ca, Cb)
 * slice(x, s, w) (iattr = s, w): y[..., j] = x[..., s + j], j < w. Only a
 *   gradient op.
 * embed(W, k): W is [V, D], k holds token ids as floats (any shape, each
 *   truncated to an integer as a C cast does); y = k's shape + [D],
 *   y[i, :] = W[k_i, :].
 *   dW = embed_back(dy, k) (iattr[0] = V): dW[v, :] = sum over i with
 *   k_i = v of dy[i, :], accumulated in order of i (deterministic).
 *   An id outside [0, V) (or NaN) gives a zero row and no gradient.
 *   The ids get no gradient.
 * Each op emits one runtime call (nnc_concat, nnc_slice, nnc_embed,
 * nnc_embed_back in runtime/nn.c).
 */
#include "ops.h"

static int last(const Node *n)
{
    return n->shape.dim[n->shape.rank - 1];
}

/* ---- concat / slice ----------------------------------------------------- */
bool shape_concat(Graph *g, Node *n)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    bool ok = a->shape.rank >= 1 && a->shape.rank == b->shape.rank;
    for (int d = 0; ok && d < a->shape.rank - 1; d++)
        ok = a->shape.dim[d] == b->shape.dim[d];
    unsigned lastbit = ok ? 1u << (a->shape.rank - 1) : 0u; /* rank 0: no shift */
    if (ok && ((a->bmask | b->bmask) & lastbit))
        ok = false;
    if (!ok) {
        diag_error(n->loc, "concat: shapes %s and %s differ outside the last axis",
                   shape_str(&a->shape), shape_str(&b->shape));
        return false;
    }
    long long width = (long long)last(a) + last(b); /* 2^30 + 2^30 overflows int */
    if (width > (1 << 30)) {
        diag_error(n->loc, "concat: the result is too large (%lld elements on the last axis)",
                   width);
        return false;
    }
    n->shape = a->shape;
    n->shape.dim[n->shape.rank - 1] = (int)width;
    n->bmask = a->bmask | b->bmask;
    return true;
}

static NodeId slice(Graph *g, Loc loc, NodeId x, int start, int width)
{
    Node proto = {0};
    proto.op = OP_SLICE;
    proto.nin = 1;
    proto.in[0] = x;
    proto.loc = loc;
    proto.iattr[0] = start;
    proto.iattr[1] = width;
    return graph_add_node(g, &proto);
}

void grad_concat(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Loc loc = NODE(g, y)->loc;
    int ca = last(NODE(g, NODE(g, y)->in[0])), cb = last(NODE(g, NODE(g, y)->in[1]));
    dx[0] = slice(g, loc, dy, 0, ca);
    dx[1] = slice(g, loc, dy, ca, cb);
}

void eval_concat(const Graph *g, const Node *n, const double *const *in, double *out)
{
    int ca = last(NODE(g, n->in[0])), cb = last(NODE(g, n->in[1])), c = ca + cb;
    size_t r = shape_numel(&n->shape) / (size_t)c;
    for (size_t i = 0; i < r; i++) {
        memcpy(out + i * c, in[0] + i * ca, ca * sizeof(double));
        memcpy(out + i * c + ca, in[1] + i * cb, cb * sizeof(double));
    }
}

void emit_concat(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    int ca = last(NODE(g, n->in[0])), cb = last(NODE(g, n->in[1]));
    emit_line(e, "/* a: (%s, %d), b: (%s, %d), y: (%s, %d) */", op_rows(n), ca, op_rows(n), cb,
              op_rows(n), ca + cb);
    emit_line(e, "nnc_concat(%s, %d, %s, %d, %s, %s);", a[0], ca, a[1], cb, a[2], op_rows(n));
}

bool shape_slice(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    NNC_ASSERT(x->shape.rank >= 1 && n->iattr[0] >= 0 && n->iattr[1] >= 1 &&
               n->iattr[0] + n->iattr[1] <= last(x));
    n->shape = x->shape;
    n->shape.dim[n->shape.rank - 1] = n->iattr[1];
    n->bmask = x->bmask;
    return true;
}

void eval_slice(const Graph *g, const Node *n, const double *const *in, double *out)
{
    int cx = last(NODE(g, n->in[0])), s = n->iattr[0], w = n->iattr[1];
    size_t r = shape_numel(&n->shape) / (size_t)w;
    for (size_t i = 0; i < r; i++)
        memcpy(out + i * w, in[0] + i * cx + s, w * sizeof(double));
}

void emit_slice(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    int cx = last(NODE(g, n->in[0])), s = n->iattr[0], w = n->iattr[1];
    emit_line(e, "/* x: (%s, %d), y: (%s, %d) = x[:, %d:%d] */", op_rows(n), cx, op_rows(n), w,
              s, s + w);
    emit_line(e, "nnc_slice(%s, %d, %d, %d, %s, %s);", a[0], cx, s, w, a[1], op_rows(n));
}

/* ---- embedding ---------------------------------------------------------- */
bool shape_embed(Graph *g, Node *n)
{
    const Node *w = NODE(g, n->in[0]), *k = NODE(g, n->in[1]);
    if (w->shape.rank != 2 || w->bmask || k->shape.rank + 1 > NNC_MAX_DIMS) {
        diag_error(n->loc, "embedding: needs a [vocab, dim] weight and ids of rank < %d, "
                   "got %s and %s", NNC_MAX_DIMS, shape_str(&w->shape), shape_str(&k->shape));
        return false;
    }
    n->shape = k->shape;
    n->shape.dim[n->shape.rank++] = w->shape.dim[1];
    n->bmask = k->bmask;
    return true;
}

void grad_embed(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Node *n = NODE(g, y);
    Node proto = {0};
    proto.op = OP_EMBED_BACK;
    proto.nin = 2;
    proto.in[0] = dy;
    proto.in[1] = n->in[1];
    proto.loc = n->loc;
    proto.iattr[0] = NODE(g, n->in[0])->shape.dim[0];
    dx[0] = graph_add_node(g, &proto);
    dx[1] = NODE_NONE;
}

/* The row of id v, or -1 outside [0, vocab). */
static long row_of(double v, int vocab)
{
    return v >= 0 && v < vocab ? (long)v : -1;
}

void eval_embed(const Graph *g, const Node *n, const double *const *in, double *out)
{
    const Node *w = NODE(g, n->in[0]);
    int vocab = w->shape.dim[0], d = w->shape.dim[1];
    size_t m = shape_numel(&NODE(g, n->in[1])->shape);
    for (size_t i = 0; i < m; i++) {
        long r = row_of(in[1][i], vocab);
        for (int j = 0; j < d; j++)
            out[i * d + j] = r < 0 ? 0 : in[0][r * d + j];
    }
}

void emit_embed(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *w = NODE(g, n->in[0]), *k = NODE(g, n->in[1]);
    int vocab = w->shape.dim[0], d = w->shape.dim[1];
    emit_line(e, "/* w: (%d, %d), ids: %s, y: (%s, %d) */", vocab, d, op_numel(k), op_numel(k), d);
    emit_line(e, "nnc_embed(%s, %d, %d, %s, %s, %s);", a[0], vocab, d, a[1], op_numel(k), a[2]);
}

bool shape_embed_back(Graph *g, Node *n)
{
    const Node *dy = NODE(g, n->in[0]);
    NNC_ASSERT(dy->shape.rank == NODE(g, n->in[1])->shape.rank + 1);
    n->shape.rank = 2;
    n->shape.dim[0] = n->iattr[0];
    n->shape.dim[1] = last(dy);
    n->bmask = 0;
    return true;
}

void eval_embed_back(const Graph *g, const Node *n, const double *const *in, double *out)
{
    int vocab = n->iattr[0], d = n->shape.dim[1];
    size_t m = shape_numel(&NODE(g, n->in[1])->shape);
    memset(out, 0, shape_numel(&n->shape) * sizeof(double));
    for (size_t i = 0; i < m; i++) {
        long r = row_of(in[1][i], vocab);
        for (int j = 0; r >= 0 && j < d; j++)
            out[r * d + j] += in[0][i * d + j];
    }
}

void emit_embed_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *k = NODE(g, n->in[1]);
    int vocab = n->iattr[0], d = n->shape.dim[1];
    emit_line(e, "/* dy: (%s, %d), ids: %s, dw: (%d, %d) */", op_numel(k), d, op_numel(k), vocab,
              d);
    emit_line(e, "nnc_embed_back(%s, %s, %s, %d, %d, %s);", a[0], a[1], op_numel(k), vocab, d,
              a[2]);
}
