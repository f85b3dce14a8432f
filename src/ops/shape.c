/*
 * shape.c - moving data between axes: transposes and slices along any
 * axis (the functional form's transpose, slice, split and the position
 * table's first T rows), and causal masks.
 *
 * transpose(x) (iattr[0 .. rank-1] = perm): y's axis d is x's axis
 *   perm[d], as torch's x.permute(perm) made contiguous;
 *   dx = transpose(dy) with the inverse permutation.
 * narrow(x) (iattr = axis, start, len): y = x[..., start:start+len, ...]
 *   along `axis`, as torch's x.narrow(axis, start, len);
 *   dx = narrow_back(dy) (iattr[3] = x's size along the axis): dy in
 *   the slice's place, zeros elsewhere. Only a gradient op.
 *
 * causal_mask(x): attention scores of later positions replaced (below).
 *
 * Slices view a tensor as (outer, size along the axis, inner), transposes
 * as nested loops over the output with the input's strides: the emitted
 * code is plain loops and memcpy, no runtime kernel. The batch axis (the
 * first) may move in a transpose; slices never cut it.
 */
#include "ops.h"

/* "(nb, 64, 4, 32)": n's dims as the emitted code sees them. */
static const char *dims(const Node *n)
{
    char b[128];
    size_t at = 0;
    for (int d = 0; d < n->shape.rank && at < sizeof b; d++)
        at += (size_t)snprintf(b + at, sizeof b - at, d ? ", %s" : "%s", emit_dim(n, d));
    return emit_str("(%s)", b);
}

/* ---- transpose ---------------------------------------------------------- */

/* Is iattr[0 .. rank-1] a permutation of 0 .. rank-1? */
static bool is_perm(const int *perm, int rank)
{
    unsigned seen = 0;
    for (int d = 0; d < rank; d++) {
        if (perm[d] < 0 || perm[d] >= rank || (seen >> perm[d]) & 1u)
            return false;
        seen |= 1u << perm[d];
    }
    return true;
}

bool shape_transpose(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    int r = x->shape.rank;
    if (r < 1 || !is_perm(n->iattr, r)) {
        diag_error(n->loc, "transpose: the permutation does not fit a value of shape %s",
                   shape_str(&x->shape));
        return false;
    }
    n->shape.rank = r;
    n->bmask = 0;
    for (int d = 0; d < r; d++) {
        n->shape.dim[d] = x->shape.dim[n->iattr[d]];
        if (x->bmask & (1u << n->iattr[d]))
            n->bmask |= 1u << d;
    }
    return true;
}

/* op(dy) where n was computed, to give attributes before graph_add_node. */
static Node grad_proto(Op op, const Node *n, NodeId dy)
{
    Node proto = {0};
    proto.op = op;
    proto.nin = 1;
    proto.in[0] = dy;
    proto.loc = n->loc;
    proto.what = n->what;
    return proto;
}

void grad_transpose(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Node *n = NODE(g, y);
    Node proto = grad_proto(OP_TRANSPOSE, n, dy);
    for (int d = 0; d < n->shape.rank; d++)
        proto.iattr[n->iattr[d]] = d;
    dx[0] = graph_add_node(g, &proto);
}

/* x's strides (elements) by axis, row-major. */
static void strides(const Shape *s, size_t *st)
{
    size_t k = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = k;
        k *= (size_t)s->dim[d];
    }
}

void eval_transpose(const Graph *g, const Node *n, const double *const *in, double *out)
{
    const Shape *xs = &NODE(g, n->in[0])->shape;
    size_t st[NNC_MAX_DIMS], len = shape_numel(&n->shape);
    int r = n->shape.rank;
    strides(xs, st);
    for (size_t i = 0; i < len; i++) {
        size_t rest = i, at = 0;
        for (int d = r - 1; d >= 0; d--) {
            at += rest % (size_t)n->shape.dim[d] * st[n->iattr[d]];
            rest /= (size_t)n->shape.dim[d];
        }
        out[i] = in[0][at];
    }
}

/* x's stride along axis d as a C expression: a number, or "nb * 33"
 * when a later axis is the batch (a gradient of a transpose that moved
 * it; the layers keep it first). */
static const char *stride_expr(const Node *x, int d)
{
    size_t k = 1;
    bool batch = false;
    for (int i = d + 1; i < x->shape.rank; i++) {
        if ((x->bmask >> i) & 1u)
            batch = true;
        else
            k *= (size_t)x->shape.dim[i];
    }
    return batch ? emit_str("(size_t)nb * %zu", k) : emit_str("%zu", k);
}

/* One loop per output axis, innermost last, reading x with its strides.
 * When the last axis stays last ((B, T, H, D) -> (B, H, T, D)), its rows
 * are copied whole. */
void emit_transpose(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]);
    int r = n->shape.rank;
    bool rows = r >= 2 && n->iattr[r - 1] == r - 1;
    int loops = rows ? r - 1 : r;
    Buf perm = {0}, idx = {0};
    for (int d = 0; d < r; d++)
        buf_printf(&perm, d ? ", %d" : "%d", n->iattr[d]);
    for (int d = 0; d < loops; d++) {
        const char *sd = stride_expr(x, n->iattr[d]);
        buf_printf(&idx, d ? " + " : "");
        if (!strcmp(sd, "1"))
            buf_printf(&idx, "(size_t)i%d", d);
        else
            buf_printf(&idx, "(size_t)i%d * %s", d, sd);
    }
    emit_line(e, "/* y = x.permute(%s): x %s, y %s */", perm.data, dims(x), dims(n));
    emit_line(e, "size_t i = 0;");
    for (int d = 0; d < loops; d++) {
        emit_line(e, "for (int i%d = 0; i%d < %s; i%d++)%s", d, d, emit_dim(n, d), d,
                  rows && d == loops - 1 ? " {" : "");
        e->indent++;
    }
    if (rows) {
        int c = n->shape.dim[r - 1];
        emit_line(e, "memcpy(%s + i, %s + %s, sizeof(float) * %d);", a[1], a[0], idx.data, c);
        emit_line(e, "i += %d;", c);
        e->indent--;
        emit_line(e, "}");
        e->indent -= loops - 1;
    } else {
        emit_line(e, "%s[i++] = %s[%s];", a[1], a[0], idx.data);
        e->indent -= loops;
    }
    buf_free(&perm);
    buf_free(&idx);
}

/* ---- narrow and its gradient -------------------------------------------- */

/* Elements after the axis (never the batch: it is the first axis). */
static size_t inner(const Node *n, int axis)
{
    size_t k = 1;
    for (int d = axis + 1; d < n->shape.rank; d++)
        k *= (size_t)n->shape.dim[d];
    return k;
}

/* Elements before the axis, as a number (eval). */
static size_t outer(const Node *n, int axis)
{
    size_t k = 1;
    for (int d = 0; d < axis; d++)
        k *= (size_t)n->shape.dim[d];
    return k;
}

bool shape_narrow(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    int axis = n->iattr[0], start = n->iattr[1], len = n->iattr[2];
    if (axis < 0 || axis >= x->shape.rank || (x->bmask >> axis) & 1u || start < 0 || len < 1 ||
        start > x->shape.dim[axis] - len) {
        diag_error(n->loc, "slice: [%d:%d] along axis %d does not fit a value of shape %s",
                   start, start + len, axis, shape_str(&x->shape));
        return false;
    }
    n->shape = x->shape;
    n->shape.dim[axis] = len;
    n->bmask = x->bmask;
    return true;
}

void grad_narrow(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Node *n = NODE(g, y);
    Node proto = grad_proto(OP_NARROW_BACK, n, dy);
    memcpy(proto.iattr, n->iattr, 3 * sizeof(int));
    proto.iattr[3] = NODE(g, n->in[0])->shape.dim[n->iattr[0]];
    dx[0] = graph_add_node(g, &proto);
}

void eval_narrow(const Graph *g, const Node *n, const double *const *in, double *out)
{
    int axis = n->iattr[0], start = n->iattr[1], len = n->iattr[2];
    int full = NODE(g, n->in[0])->shape.dim[axis];
    size_t k = inner(n, axis), m = outer(n, axis);
    for (size_t o = 0; o < m; o++)
        memcpy(out + o * (size_t)len * k, in[0] + (o * (size_t)full + (size_t)start) * k,
               (size_t)len * k * sizeof(double));
}

void emit_narrow(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]);
    int axis = n->iattr[0], start = n->iattr[1], len = n->iattr[2];
    int full = x->shape.dim[axis];
    size_t k = inner(n, axis);
    emit_line(e, "/* y = x[%d:%d] along axis %d: x %s, y %s */", start, start + len, axis,
              dims(x), dims(n));
    if (axis == 0) {    /* one block */
        emit_line(e, "memcpy(%s, %s + %zu, sizeof(float) * %zu);", a[1], a[0],
                  (size_t)start * k, (size_t)len * k);
        return;
    }
    emit_line(e, "for (size_t o = 0; o < %s; o++)", op_count(n, axis));
    emit_line(e, "    memcpy(%s + o * %zu, %s + o * %zu + %zu, sizeof(float) * %zu);", a[1],
              (size_t)len * k, a[0], (size_t)full * k, (size_t)start * k, (size_t)len * k);
}

bool shape_narrow_back(Graph *g, Node *n)
{
    const Node *dy = NODE(g, n->in[0]);
    int axis = n->iattr[0];
    NNC_ASSERT(axis >= 0 && axis < dy->shape.rank && dy->shape.dim[axis] == n->iattr[2] &&
               n->iattr[1] + n->iattr[2] <= n->iattr[3]);
    n->shape = dy->shape;
    n->shape.dim[axis] = n->iattr[3];
    n->bmask = dy->bmask;
    return true;
}

void eval_narrow_back(const Graph *g, const Node *n, const double *const *in, double *out)
{
    (void)g;
    int axis = n->iattr[0], start = n->iattr[1], len = n->iattr[2], full = n->iattr[3];
    size_t k = inner(n, axis), m = outer(n, axis);
    memset(out, 0, shape_numel(&n->shape) * sizeof(double));
    for (size_t o = 0; o < m; o++)
        memcpy(out + (o * (size_t)full + (size_t)start) * k, in[0] + o * (size_t)len * k,
               (size_t)len * k * sizeof(double));
}

void emit_narrow_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    int axis = n->iattr[0], start = n->iattr[1], len = n->iattr[2], full = n->iattr[3];
    size_t k = inner(n, axis);
    emit_line(e, "/* dx[%d:%d] = dy along axis %d, zeros elsewhere: dy %s, dx %s */", start,
              start + len, axis, dims(NODE(g, n->in[0])), dims(n));
    if (len < full)
        emit_line(e, "memset(%s, 0, sizeof(float) * (size_t)%s);", a[1], emit_numel(n));
    if (axis == 0) {
        emit_line(e, "memcpy(%s + %zu, %s, sizeof(float) * %zu);", a[1], (size_t)start * k,
                  a[0], (size_t)len * k);
        return;
    }
    emit_line(e, "for (size_t o = 0; o < %s; o++)", op_count(n, axis));
    emit_line(e, "    memcpy(%s + o * %zu + %zu, %s + o * %zu, sizeof(float) * %zu);", a[1],
              (size_t)full * k, (size_t)start * k, a[0], (size_t)len * k, (size_t)len * k);
}

/* ---- causal masks -----------------------------------------------------------
 * causal_mask(x) (fattr[0] = fill): over the last two axes, square (T, T)
 * attention scores, y[..., i, j] = x[..., i, j] for j <= i and fill for
 * j > i, so that a softmax over j gives the later positions no weight
 * (the layer's fill is -1e30: exp underflows to 0 as for -inf, and a row
 * always keeps its diagonal); dx = causal_mask(dy) with fill 0. */

bool shape_causal_mask(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    int r = x->shape.rank;
    if (r < 2 || x->shape.dim[r - 1] != x->shape.dim[r - 2] || ((x->bmask >> (r - 2)) & 3u)) {
        diag_error(n->loc, "causal_mask needs square (T, T) scores on the last two axes, "
                   "got %s", shape_str(&x->shape));
        return false;
    }
    n->shape = x->shape;
    n->bmask = x->bmask;
    return true;
}

void grad_causal_mask(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node proto = grad_proto(OP_CAUSAL_MASK, NODE(g, y), dy);
    proto.fattr[0] = 0;
    dx[0] = graph_add_node(g, &proto);
}

void eval_causal_mask(const Graph *g, const Node *n, const double *const *in, double *out)
{
    (void)g;
    size_t t = (size_t)n->shape.dim[n->shape.rank - 1], len = shape_numel(&n->shape);
    for (size_t i = 0; i < len; i++)
        out[i] = i % t > i / t % t ? n->fattr[0] : in[0][i];
}

void emit_causal_mask(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    int r = n->shape.rank, t = n->shape.dim[r - 1];
    emit_line(e, "/* y = x, %s above the diagonal: (%s) matrices of %dx%d */",
              emit_float(n->fattr[0]), op_count(n, r - 2), t, t);
    emit_line(e, "for (size_t l = 0; l < %s; l++)", op_count(n, r - 2));
    emit_line(e, "    for (int i = 0; i < %d; i++)", t);
    emit_line(e, "        for (int j = 0; j < %d; j++) {", t);
    emit_line(e, "            const size_t k = (l * %d + (size_t)i) * %d + (size_t)j;", t, t);
    emit_line(e, "            %s[k] = j > i ? %s : %s[k];", a[1], emit_float(n->fattr[0]), a[0]);
    emit_line(e, "        }");
}
