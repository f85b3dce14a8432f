/*
 * eval.c - a reference interpreter for the graph IR, in double.
 *
 * It is the independent check on everything else: the finite-difference
 * gradient test evaluates forward and backward graphs with it, and tests
 * compare emitted code against it. It is deliberately naive: one array
 * per node, every op through its eval rule in ops/, no sharing.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

double **eval_graph(const Graph *g, double *const *src)
{
    double **v = xcalloc((size_t)g->nnodes, sizeof(double *));
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        size_t len = shape_numel(&n->shape);
        v[id] = xcalloc(len ? len : 1, sizeof(double));
        if (n->op == OP_CONST) {
            for (size_t i = 0; i < len; i++)
                v[id][i] = n->fattr[0];
        } else if (optab[n->op].kind == K_SOURCE) {
            if (src && src[id])
                memcpy(v[id], src[id], len * sizeof(double));
        } else if (optab[n->op].eval) {
            const double *in[NNC_MAX_IN];
            for (int k = 0; k < n->nin; k++)
                in[k] = v[n->in[k]];
            optab[n->op].eval(g, n, in, v[id]);
        }
    }
    return v;
}

void eval_free(const Graph *g, double **vals)
{
    if (!vals)
        return;
    for (int id = 0; id < g->nnodes; id++)
        free(vals[id]);
    free(vals);
}
