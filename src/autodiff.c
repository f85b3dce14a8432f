/*
 * autodiff.c - reverse-mode differentiation of the graph, in the graph.
 *
 * Like ggml's build_backward and tinygrad's compute_gradient: mark the
 * nodes that lie on a path from a wanted input to the output, seed the
 * output's gradient, and walk the marked nodes in reverse id order
 * (reverse topological order) calling each op's grad rule. Gradients are
 * ordinary forward ops appended to the same graph, so everything after
 * this (passes, planning, emission) treats forward and backward alike.
 *
 * Frozen parameters (trainable=false, `freeze`) are not differentiated:
 * ad_build leaves them out of the wanted inputs, so no node that depends
 * on frozen parameters alone is marked, and the backward pass stops
 * below the lowest trainable layer (nothing computes a gradient that no
 * update reads; the frozen ones keep grads[i] = NODE_NONE, as batchnorm's
 * running statistics do, and so get no update and no optimizer state).
 *
 * Two rules live here and nowhere else: a second gradient reaching the
 * same node is accumulated with ADD, and a gradient with the output's
 * shape is summed back to a broadcast input's shape with SUM_TO.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

void ad_backward(Graph *g, NodeId y, NodeId dy, const NodeId *wrt, int n,
                 NodeId *dx)
{
    int nn = g->nnodes;
    bool *from = xcalloc((size_t)nn, sizeof(bool));  /* depends on a wrt */
    bool *to = xcalloc((size_t)nn, sizeof(bool));    /* y depends on it */
    NodeId *grad = xcalloc((size_t)nn, sizeof(NodeId));
    for (int i = 0; i < n; i++)
        from[wrt[i]] = true;
    for (int id = 1; id < nn; id++)
        for (int k = 0; k < g->nodes[id].nin; k++)
            from[id] |= from[g->nodes[id].in[k]];
    to[y] = true;
    for (int id = (int)y; id >= 1; id--)
        if (to[id])
            for (int k = 0; k < g->nodes[id].nin; k++)
                to[g->nodes[id].in[k]] = true;

    grad[y] = dy;
    for (int id = (int)y; id >= 1; id--) {
        if (!from[id] || !to[id] || grad[id] == NODE_NONE || g->nodes[id].nin == 0)
            continue;
        const OpInfo *oi = &optab[g->nodes[id].op];
        NNC_ASSERT(oi->grad);
        NodeId d[NNC_MAX_IN] = {0};
        int first_new = g->nnodes;
        oi->grad(g, (NodeId)id, grad[id], d);
        for (int k = 0; k < g->nodes[id].nin; k++) {
            NodeId in = g->nodes[id].in[k];
            if (!from[in] || !to[in] || d[k] == NODE_NONE)
                continue;
            Loc loc = g->nodes[id].loc;
            if (!shape_eq(&NODE(g, d[k])->shape, &NODE(g, in)->shape))
                d[k] = graph_sum_to(g, loc, d[k], in);
            grad[in] = grad[in] ? graph_add2(g, OP_ADD, loc, grad[in], d[k]) : d[k];
        }
        for (int j = first_new; j < g->nnodes; j++) {
            g->nodes[j].is_grad = true;
            g->nodes[j].what = g->nodes[id].what;
        }
    }
    for (int i = 0; i < n; i++)
        dx[i] = wrt[i] < (NodeId)nn ? grad[wrt[i]] : NODE_NONE;
    free(from);
    free(to);
    free(grad);
}

void ad_build(Graph *g)
{
    Shape scalar = {0, {0}};
    NodeId one = graph_const(g, NODE(g, g->loss)->loc, &scalar, 1.0);
    NODE(g, one)->what = "d(loss)/d(loss)";
    g->grads = xcalloc((size_t)g->nparams + 1, sizeof(NodeId));
    NodeId *wrt = xcalloc((size_t)g->nparams + 1, sizeof(NodeId));
    NodeId *dw = xcalloc((size_t)g->nparams + 1, sizeof(NodeId));
    int n = 0;
    for (int i = 0; i < g->nparams; i++)
        if (!NODE(g, g->params[i])->is_frozen)
            wrt[n++] = g->params[i];
    ad_backward(g, g->loss, one, wrt, n, dw);
    for (int i = 0, k = 0; i < g->nparams; i++)
        if (!NODE(g, g->params[i])->is_frozen)
            g->grads[i] = dw[k++];
    free(wrt);
    free(dw);
}

bool ad_any_frozen(const Graph *g)
{
    for (int i = 0; i < g->nparams; i++)
        if (NODE(g, g->params[i])->is_frozen)
            return true;
    return false;
}
