/*
 * crop.c - convolutions compute only the positions a pooling above them
 * reads.
 *
 * requires: the forward graph, before autodiff / preserves: every id /
 * invalidates: nothing (shapes of the rewritten chain are inferred again).
 *
 * A pooling with valid padding drops the last rows or columns of an
 * image its windows do not reach (an 11x11 image under 2x2 pooling: row
 * and column 10). When the image comes from a convolution through
 * elementwise ops (bias, activation) that nothing else reads, those
 * positions are computed for nothing, and in training their gradients
 * are zeros that the weight and input gradients multiply anyway. The
 * convolution's im2col is cropped to the reached positions (iattr[5],
 * iattr[6]), which shrinks its GEMM, the elementwise ops and every
 * gradient after autodiff; the pooling's result is unchanged.
 */
#include <stdlib.h>

#include "nnc.h"

/* An elementwise node of the chain: its other operands must not be
 * images (a bias, a constant), so they still broadcast after the crop. */
static bool side_inputs_ok(const Graph *g, const Node *n, NodeId main)
{
    for (int k = 0; k < n->nin; k++) {
        const Node *in = NODE(g, n->in[k]);
        if (n->in[k] != main && in->shape.rank > 1)
            return false;
    }
    return true;
}

bool pass_crop(Graph *g)
{
    int nn = g->nnodes;
    int *uses = graph_uses(g);
    NodeId *chain = xcalloc((size_t)nn, sizeof(NodeId));
    bool changed = false;
    for (int id = 1; id < nn; id++) {
        const Node *p = &g->nodes[id];
        if ((p->op != OP_MAXPOOL && p->op != OP_AVGPOOL) || p->iattr[4])
            continue;
        const Node *x = NODE(g, p->in[0]);
        int reach_h = (p->shape.dim[1] - 1) * p->iattr[2] + p->iattr[0];
        int reach_w = (p->shape.dim[2] - 1) * p->iattr[3] + p->iattr[1];
        if (x->shape.rank != 4 || (reach_h >= x->shape.dim[1] && reach_w >= x->shape.dim[2]))
            continue;
        /* down the elementwise chain to matmul(im2col(...), W) */
        int len = 0;
        NodeId at = p->in[0];
        bool ok = true;
        while (ok && optab[NODE(g, at)->op].kind == K_EWISE) {
            const Node *e = NODE(g, at);
            NodeId main = NODE_NONE;
            for (int k = 0; k < e->nin; k++)
                if (shape_eq(&NODE(g, e->in[k])->shape, &e->shape))
                    main = e->in[k];
            ok = uses[at] == 1 && main != NODE_NONE && side_inputs_ok(g, e, main);
            chain[len++] = at;
            at = main;
        }
        const Node *m = ok ? NODE(g, at) : NULL;
        if (!m || m->op != OP_MATMUL || m->iattr[0] || uses[at] != 1 ||
            NODE(g, m->in[0])->op != OP_IM2COL || uses[m->in[0]] != 1 ||
            !shape_eq(&m->shape, &x->shape))
            continue;
        Node *im = NODE(g, m->in[0]);
        im->iattr[5] = reach_h < x->shape.dim[1] ? reach_h : x->shape.dim[1];
        im->iattr[6] = reach_w < x->shape.dim[2] ? reach_w : x->shape.dim[2];
        /* shapes again, inputs first: im2col, matmul, the chain up */
        bool shaped = optab[im->op].shape(g, im) && optab[OP_MATMUL].shape(g, NODE(g, at));
        for (int i = len - 1; i >= 0 && shaped; i--)
            shaped = optab[NODE(g, chain[i])->op].shape(g, NODE(g, chain[i]));
        shaped = shaped && optab[p->op].shape(g, &g->nodes[id]);
        NNC_ASSERT(shaped);
        changed = true;
    }
    free(uses);
    free(chain);
    return changed;
}
