/*
 * poolrelu.c - folds a relu's gradient into the max pooling gradient
 * that feeds it.
 *
 * requires: topological order, exact uses (dce done) / preserves: ids,
 * order / invalidates: nothing (the replaced maxpool_back is left dead
 * for dce).
 *
 *   relu_back(maxpool_back(dy, x), x)  ->  maxpool_back(dy, x) relu
 *
 * when x is the relu's output that the pooling reads (conv -> relu ->
 * maxpool, the usual block) and nothing else reads the pooling gradient.
 * The gradient reaches only the first maximum of each window, where the
 * relu's derivative is that maximum's (x > 0), so the runtime checks the
 * window's maximum once and writes dz in one pass over the image instead
 * of two (nnc_maxpool_relu_back). iattr[7] marks the fused form. The
 * relu_back node itself becomes the pooling gradient, so every user and
 * role keeps its id.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

bool pass_poolrelu(Graph *g)
{
    int nn = g->nnodes;
    int *uses = graph_uses(g);
    bool changed = false;
    for (int id = 1; id < nn; id++) {
        Node *n = &g->nodes[id];
        if (n->op != OP_RELU_BACK)
            continue;
        const Node *p = NODE(g, n->in[0]);
        if (p->op != OP_MAXPOOL_BACK || p->iattr[7] || uses[n->in[0]] != 1 ||
            p->in[1] != n->in[1] || !graph_same_layout(p, n))
            continue;
        uses[n->in[0]]--;
        n->op = OP_MAXPOOL_BACK;
        n->nin = 2;
        n->in[0] = p->in[0];
        n->in[1] = p->in[1];
        memcpy(n->iattr, p->iattr, sizeof n->iattr);
        n->iattr[7] = 1;
        n->loc = p->loc;
        n->what = p->what;
        changed = true;
    }
    free(uses);
    return changed;
}
