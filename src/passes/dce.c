/*
 * dce.c - dead-code elimination.
 *
 * requires: topological order / preserves: order of the kept nodes /
 * invalidates: every NodeId (nodes are renumbered densely).
 *
 * A node is live if the loss, the model's output or an update needs it;
 * parameters, the input and the target are always kept, because the
 * emitted API exposes them. Walking ids backwards visits users before
 * their inputs, so one pass marks everything.
 */
#include <stdlib.h>

#include "nnc.h"

static NodeId remap(const NodeId *map, NodeId id)
{
    return id == NODE_NONE ? NODE_NONE : map[id];
}

bool pass_dce(Graph *g)
{
    int n = g->nnodes;
    bool *live = xcalloc((size_t)n, sizeof(bool));
    NodeId *map = xcalloc((size_t)n, sizeof(NodeId));
    live[g->loss] = live[g->output] = true;
    live[g->input] = live[g->target] = true;
    for (int i = 0; i < g->nparams; i++)
        live[g->params[i]] = true;
    for (int id = 1; id < n; id++)
        if (optab[g->nodes[id].op].kind == K_UPDATE)
            live[id] = true;
    for (int id = n - 1; id >= 1; id--)
        if (live[id])
            for (int k = 0; k < g->nodes[id].nin; k++)
                live[g->nodes[id].in[k]] = true;
    int next = 1;
    for (int id = 1; id < n; id++) {
        if (!live[id])
            continue;
        Node nd = g->nodes[id];
        for (int k = 0; k < nd.nin; k++)
            nd.in[k] = map[nd.in[k]];
        nd.kernel = NODE_NONE; /* fusion runs after dce */
        map[id] = (NodeId)next;
        g->nodes[next++] = nd;
    }
    bool changed = next != n;
    g->nnodes = next;
    g->input = remap(map, g->input);
    g->target = remap(map, g->target);
    g->output = remap(map, g->output);
    g->loss = remap(map, g->loss);
    for (int i = 0; i < g->nparams; i++) {
        g->params[i] = remap(map, g->params[i]);
        if (g->grads)
            g->grads[i] = remap(map, g->grads[i]);
    }
    free(live);
    free(map);
    return changed;
}
