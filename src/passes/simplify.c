/*
 * simplify.c - constant folding and algebraic simplification.
 *
 * requires: topological order / preserves: ids (replaced nodes are left
 * dead for dce) / invalidates: use counts.
 *
 * One forward walk; each node first reads its inputs through the
 * replacement map, then may be folded or replaced:
 *   ewise(const, ..., const)     -> const (evaluated once, in double)
 *   x * c, c * x                 -> scale(x, c)   (c a constant)
 *   scale(x, 1), x + 0, x - 0    -> x
 *   scale(scale(x, a), b)        -> scale(x, a b)
 *   sum_to(x, shape(x)), broadcast_to(x, shape(x)) -> x
 * Replacing keeps a node's shape and batch mask, so users stay valid.
 * (The IR has no transposes or frozen values yet; matmul carries its
 * transposes as attributes, so there are no double transposes to remove.)
 */
#include <stdlib.h>

#include "nnc.h"

static bool is_const(const Graph *g, NodeId id, double *v)
{
    const Node *n = NODE(g, id);
    if (n->op != OP_CONST)
        return false;
    if (v)
        *v = n->fattr[0];
    return true;
}


/* Folds an elementwise node with constant inputs into a constant: all
 * elements are equal, so evaluating the node on filled arrays gives it. */
static bool fold(Graph *g, Node *n)
{
    if (optab[n->op].kind != K_EWISE || !optab[n->op].eval)
        return false;
    double vals[NNC_MAX_IN];
    for (int k = 0; k < n->nin; k++)
        if (!is_const(g, n->in[k], &vals[k]))
            return false;
    double *in[NNC_MAX_IN];
    for (int k = 0; k < n->nin; k++) {
        size_t len = shape_numel(&NODE(g, n->in[k])->shape);
        in[k] = xmalloc(len * sizeof(double));
        for (size_t i = 0; i < len; i++)
            in[k][i] = vals[k];
    }
    double *out = xmalloc(shape_numel(&n->shape) * sizeof(double));
    optab[n->op].eval(g, n, (const double *const *)in, out);
    for (int k = 0; k < n->nin; k++)
        free(in[k]);
    n->op = OP_CONST;
    n->role = R_CONST;
    n->nin = 0;
    n->fattr[0] = out[0];
    for (int k = 0; k < NNC_MAX_IN; k++)
        n->in[k] = NODE_NONE;
    free(out);
    return true;
}

/* The node that now stands for `id` (NODE_NONE: itself); may rewrite it
 * in place (a folded constant, a multiply that became a scale). */
static NodeId simplify_node(Graph *g, NodeId id, const NodeId *repl, bool *changed)
{
    (void)repl;
    Node *n = NODE(g, id);
    if (fold(g, n)) {
        *changed = true;
        return NODE_NONE;
    }
    double c;
    NodeId x = n->nin > 0 ? n->in[0] : NODE_NONE;
    NodeId r = NODE_NONE;
    if (n->op == OP_MUL) {
        for (int k = 0; k < 2; k++)
            if (is_const(g, n->in[k], &c) && graph_same_layout(NODE(g, n->in[1 - k]), n)) {
                n->op = OP_SCALE;
                n->in[0] = n->in[1 - k];
                n->nin = 1;
                n->fattr[0] = c;
                *changed = true;
                break;
            }
    }
    if (n->op == OP_SCALE) {
        x = n->in[0];
        if (NODE(g, x)->op == OP_SCALE) {
            n->fattr[0] *= NODE(g, x)->fattr[0];
            n->in[0] = x = NODE(g, x)->in[0];
            *changed = true;
        }
        if (n->fattr[0] == 1.0)
            r = x;
    } else if ((n->op == OP_ADD || n->op == OP_SUB) && is_const(g, n->in[1], &c) &&
               c == 0.0 && graph_same_layout(NODE(g, x), n)) {
        r = x;
    } else if (n->op == OP_ADD && is_const(g, x, &c) && c == 0.0 &&
               graph_same_layout(NODE(g, n->in[1]), n)) {
        r = n->in[1];
    } else if ((n->op == OP_SUM_TO || n->op == OP_BROADCAST_TO) &&
               graph_same_layout(NODE(g, x), n)) {
        r = x;
    }
    return r != NODE_NONE && graph_same_layout(NODE(g, r), n) ? r : NODE_NONE;
}

bool pass_simplify(Graph *g)
{
    return graph_rewrite(g, simplify_node);
}
