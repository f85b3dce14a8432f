/*
 * optim.c - lowers the model's optimizer to one UPDATE node per
 * parameter, after the backward graph. The update maths is in
 * ops/update.c; here we only choose the op, its hyper-parameters and how
 * many state buffers (velocity; Adam's two moments) it needs.
 */
#include "nnc.h"

void optim_build(Graph *g)
{
    const Optimizer *o = &g->opt;
    for (int i = 0; i < g->nparams; i++) {
        NodeId p = g->params[i], dp = g->grads[i];
        if (dp == NODE_NONE)
            continue; /* lower_model warned: it does not affect the loss */
        NodeId u = graph_add2(g, o->kind == OPT_SGD ? OP_SGD : OP_ADAM, o->loc, p, dp);
        Node *n = NODE(g, u);
        n->what = "optimizer";
        n->name = NODE(g, p)->name;
        if (o->kind == OPT_SGD) {
            n->fattr[0] = o->lr;
            n->fattr[1] = o->momentum;
            n->iattr[0] = o->momentum != 0 ? 1 : 0;
        } else {
            n->fattr[0] = o->lr;
            n->fattr[1] = o->beta1;
            n->fattr[2] = o->beta2;
            n->fattr[3] = o->eps;
            n->iattr[0] = 2;
        }
    }
}
