/*
 * reduce.c - sums over axes.
 *
 * SUM_TO sums its input down to a shape it broadcasts to (numpy rules);
 * autodiff uses it to bring a broadcast operand's gradient back to the
 * operand's shape (the bias gradient of a dense layer is SUM_TO over the
 * batch).
 *   y = sum_to(x, S):  dx = broadcast_to(dy, shape(x))
 */
#include "ops.h"

void grad_sum_to(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_bcast_to(g, n->loc, dy, n->in[0]);
}

void eval_sum_to(const Graph *g, const Node *n, const double *const *in,
                 double *out)
{
    const Shape *is = &NODE(g, n->in[0])->shape;
    size_t len = shape_numel(is), olen = shape_numel(&n->shape);
    for (size_t i = 0; i < olen; i++)
        out[i] = 0;
    for (size_t i = 0; i < len; i++)
        out[bcast_index(is, &n->shape, i)] += in[0][i];
}

/* out[j] accumulates in[i] over the input's loops; the loop nest walks the
 * input in memory order and the output index skips summed dims. */
void emit_sum_to(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]);
    const Shape *is = &x->shape;
    int off = is->rank - n->shape.rank;
    /* restrict: the sums stay in registers, vectorized over the kept
     * (innermost) dims, in the same order per element */
    emit_line(e, "float *restrict so = %s;", a[1]);
    emit_line(e, "const float *restrict si = %s;", a[0]);
    a = (const char *const[]){"si", "so"};
    emit_line(e, "for (int i = 0; i < %s; i++) %s[i] = 0.0f;", emit_numel(n), a[1]);
    Buf oidx = {0}, iidx = {0};
    for (int d = 0; d < is->rank; d++) {
        /* gcc -O2 does not vectorize the innermost loop on block-scope
         * restrict pointers alone (the GPT's bias gradients, 768 x 384,
         * took 0.2 ms); the input and output never overlap */
        if (d == is->rank - 1)
            emit_line(e, "NNC_IVDEP");
        emit_line(e, "for (int i%d = 0; i%d < %s; i%d++)", d, d, emit_dim(x, d), d);
        e->indent++;
        buf_printf(&iidx, d ? " + i%d" : "i%d", d);
        for (int k = d + 1; k < is->rank; k++)
            buf_printf(&iidx, " * %s", emit_dim(x, k));
        int od = d - off;
        if (od >= 0 && !(n->shape.dim[od] == 1 && !(n->bmask & (1u << od)))) {
            buf_printf(&oidx, oidx.len ? " + i%d" : "i%d", d);
            for (int k = od + 1; k < n->shape.rank; k++)
                buf_printf(&oidx, " * %s", emit_dim(n, k));
        }
    }
    emit_line(e, "%s[%s] += %s[%s];", a[1], oidx.len ? oidx.data : "0", a[0],
              iidx.len ? iidx.data : "0");
    e->indent -= is->rank;
    buf_free(&oidx);
    buf_free(&iidx);
}
