/*
 * verify.c - the IR invariant checker, run between passes.
 *
 * It checks what every pass may assume: ids in range, inputs before their
 * users (topological order), arity as the op table says, shapes present
 * and consistent with the op's shape rule, and the graph's roles
 * (input, target, loss, parameters) pointing at nodes of the right kind.
 * A failure is a compiler bug: it dumps the IR and reports where.
 */
#include <string.h>

#include "nnc.h"

static bool fail(const Graph *g, NodeId id, const char *what)
{
    fprintf(stderr, "nnc: internal error: IR verification failed at %%%u: %s\n",
            (unsigned)id, what);
    ir_print(stderr, g);
    return false;
}

bool verify(const Graph *g)
{
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if ((unsigned)n->op >= OP_COUNT)
            return fail(g, (NodeId)id, "bad op");
        if (n->nin != optab[n->op].arity)
            return fail(g, (NodeId)id, "arity differs from the op table");
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == NODE_NONE || n->in[k] >= (NodeId)id)
                return fail(g, (NodeId)id, "input not before its user");
        if (n->shape.rank < 0 || n->shape.rank > NNC_MAX_DIMS)
            return fail(g, (NodeId)id, "bad rank");
        for (int d = 0; d < n->shape.rank; d++)
            if (n->shape.dim[d] < 1)
                return fail(g, (NodeId)id, "non-positive dimension");
        if (n->bmask >> n->shape.rank)
            return fail(g, (NodeId)id, "batch mask beyond rank");
        if ((optab[n->op].kind == K_SOURCE) != (n->role != R_NONE))
            return fail(g, (NodeId)id, "sources and roles disagree");
        if (n->nin > 0) {
            /* re-run the shape rule on a copy: it must agree */
            Node copy = *n;
            bool q = diag_quiet;
            diag_quiet = true;
            int errs = diag_errors;
            bool ok = optab[n->op].shape((Graph *)g, &copy);
            diag_errors = errs;
            diag_quiet = q;
            if (!ok || !shape_eq(&copy.shape, &n->shape) || copy.bmask != n->bmask)
                return fail(g, (NodeId)id, "shape differs from the shape rule");
        }
    }
    if (g->input && g->nodes[g->input].op != OP_INPUT)
        return fail(g, g->input, "graph input is not an INPUT node");
    if (g->target && g->nodes[g->target].op != OP_TARGET)
        return fail(g, g->target, "graph target is not a TARGET node");
    if (g->loss && optab[g->nodes[g->loss].op].kind != K_LOSS)
        return fail(g, g->loss, "graph loss is not a loss op");
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i] >= (NodeId)g->nnodes || g->nodes[g->params[i]].op != OP_PARAM)
            return fail(g, g->params[i], "parameter list entry is not a PARAM");
    return true;
}
