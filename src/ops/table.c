/*
 * table.c - expands ops.def into optab[], and holds the shape rules that
 * several op families share (sources, broadcasting, losses, updates).
 *
 * Shape rules see a node whose inputs are set and whose shape may be
 * preset by the builder (sources, SUM_TO's target). They compute the
 * output shape and the batch mask: bit d of bmask says that dim d is the
 * batch dimension, so the emitter can write `nb` there and predict can run
 * any number of rows through the same code.
 */
#include <ctype.h>

#include "ops.h"

const OpInfo optab[OP_COUNT] = {
#define OP(name, arity, kind, flags, shape, grad, emit, eval) \
    { #name, arity, kind, flags, shape, grad, emit, eval },
#include "../ops.def"
#undef OP
};

const char *op_name(Op op)
{
    static char names[OP_COUNT][24];
    NNC_ASSERT((unsigned)op < OP_COUNT);
    if (!names[op][0])
        for (size_t i = 0; optab[op].name[i] && i < sizeof names[op] - 1; i++)
            names[op][i] = (char)tolower((unsigned char)optab[op].name[i]);
    return names[op];
}

bool shape_source(Graph *g, Node *n)
{
    (void)g;
    (void)n;
    return true;
}

/* The batch bit of output dim d, from input `in` aligned at the right. */
static unsigned bcast_mask(const Node *in, const Shape *os)
{
    unsigned m = 0;
    int off = os->rank - in->shape.rank;
    for (int d = 0; d < in->shape.rank; d++)
        if (in->bmask & (1u << d))
            m |= 1u << (d + off);
    return m;
}

bool shape_ewise(Graph *g, Node *n)
{
    Shape s = NODE(g, n->in[0])->shape;
    for (int i = 1; i < n->nin; i++) {
        const Shape *b = &NODE(g, n->in[i])->shape;
        Shape t;
        if (!shape_bcast(&s, b, &t)) {
            diag_error(n->loc, "%s: shapes %s and %s do not broadcast",
                       n->what ? n->what : "operation", shape_str(&s),
                       shape_str(b));
            return false;
        }
        s = t;
    }
    n->shape = s;
    n->bmask = 0;
    for (int i = 0; i < n->nin; i++)
        n->bmask |= bcast_mask(NODE(g, n->in[i]), &s);
    return true;
}

/* SUM_TO: the builder presets the target shape and mask. */
bool shape_sum_to(Graph *g, Node *n)
{
    const Shape *is = &NODE(g, n->in[0])->shape;
    Shape t;
    if (!shape_bcast(&n->shape, is, &t) || !shape_eq(&t, is)) {
        diag_error(n->loc, "cannot sum %s down to %s", shape_str(is),
                   shape_str(&n->shape));
        return false;
    }
    return true;
}

/* BROADCAST_TO: the builder presets the target shape and mask. */
bool shape_bcast_to(Graph *g, Node *n)
{
    const Shape *is = &NODE(g, n->in[0])->shape;
    Shape t;
    if (!shape_bcast(is, &n->shape, &t) || !shape_eq(&t, &n->shape)) {
        diag_error(n->loc, "cannot broadcast %s to %s", shape_str(is),
                   shape_str(&n->shape));
        return false;
    }
    return true;
}

/* Same shape as input 0 for every input (softmax and its gradient). */
bool shape_rowwise(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    for (int i = 1; i < n->nin; i++)
        if (!shape_eq(&NODE(g, n->in[i])->shape, &x->shape)) {
            diag_error(n->loc, "%s: shapes %s and %s differ", op_name(n->op),
                       shape_str(&x->shape), shape_str(&NODE(g, n->in[i])->shape));
            return false;
        }
    if (x->shape.rank < 1) {
        diag_error(n->loc, "%s needs at least one axis", op_name(n->op));
        return false;
    }
    n->shape = x->shape;
    n->bmask = x->bmask;
    return true;
}

/* A loss: prediction and target of one shape, or (sparse) prediction
 * (..., C) and class indices (..., 1) -> a scalar. */
static bool loss_shape(Graph *g, Node *n, bool sparse)
{
    const Shape *p = &NODE(g, n->in[0])->shape;
    const Shape *y = &NODE(g, n->in[1])->shape;
    Shape want = *p;
    if (p->rank < 1) {
        diag_error(n->loc, "loss needs a value with at least one axis");
        return false;
    }
    if (sparse)
        want.dim[want.rank - 1] = 1;
    if (!shape_eq(&want, y)) {
        if (sparse)
            diag_error(n->loc, "loss: prediction %s needs class indices %s, got %s",
                       shape_str(p), shape_str(&want), shape_str(y));
        else
            diag_error(n->loc, "loss: prediction %s and target %s differ", shape_str(p),
                       shape_str(y));
        return false;
    }
    n->shape.rank = 0;
    n->bmask = 0;
    return true;
}

/* Its gradient (dl, prediction, target) -> the prediction's shape. */
static bool loss_back_shape(Graph *g, Node *n, bool sparse)
{
    const Node *p = NODE(g, n->in[1]);
    NNC_ASSERT(NODE(g, n->in[0])->shape.rank == 0);
    NNC_ASSERT(sparse || shape_eq(&p->shape, &NODE(g, n->in[2])->shape));
    n->shape = p->shape;
    n->bmask = p->bmask;
    return true;
}

bool shape_loss(Graph *g, Node *n)
{
    return loss_shape(g, n, false);
}

bool shape_loss_back(Graph *g, Node *n)
{
    return loss_back_shape(g, n, false);
}

bool shape_sparse_loss(Graph *g, Node *n)
{
    return loss_shape(g, n, true);
}

bool shape_sparse_loss_back(Graph *g, Node *n)
{
    return loss_back_shape(g, n, true);
}

/* Updates (param, grad) -> the parameter, written in place. */
bool shape_update(Graph *g, Node *n)
{
    const Node *p = NODE(g, n->in[0]);
    NNC_ASSERT(p->role == R_PARAM);
    NNC_ASSERT(shape_eq(&p->shape, &NODE(g, n->in[1])->shape));
    n->shape = p->shape;
    n->bmask = 0;
    return true;
}

size_t bcast_index(const Shape *os, const Shape *is, size_t i)
{
    size_t idx = 0, stride = 1;
    int off = os->rank - is->rank;
    for (int d = os->rank - 1; d >= 0; d--) {
        size_t c = i % (size_t)os->dim[d];
        i /= (size_t)os->dim[d];
        int di = d - off;
        if (di < 0)
            continue;
        if (is->dim[di] != 1)
            idx += c * stride;
        stride *= (size_t)is->dim[di];
    }
    return idx;
}

/* Only constants are computed: inputs, targets and parameters live in
 * caller memory or the parameter region. */
void emit_const(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    if (n->op == OP_CONST)
        emit_line(e, "for (int i = 0; i < %s; i++) %s[i] = %s;", emit_numel(n), a[0],
                  emit_float(n->fattr[0]));
}
