/*
 * optim.c - lowers the model's optimizer to one UPDATE node per
 * parameter, after the backward graph. The update maths is in
 * ops/update.c; here we only choose the op, its hyper-parameters and how
 * many state buffers it needs (SGD's velocity, Adam's two moments,
 * RMSprop's square average, momentum buffer and mean gradient, Adagrad's
 * sum of squares). AdamW is ADAM with decoupled weight decay. The
 * attributes are the same for every parameter, so fuse.c can make one
 * loop of all updates, except with decay=matrices: as nanoGPT's parameter
 * groups, weight_decay applies to parameters of rank >= 2 only (dense,
 * conv and embedding weights, position tables), not to biases and norm
 * weights, whose updates get a weight decay of 0 (and loops of their own).
 */
#include "nnc.h"

/* fattr and iattr of one update (see ops/update.c for their meaning). */
static void set_attrs(const Optimizer *o, Node *n)
{
    n->iattr[3] = o->schedule != LRS_CONSTANT || o->warmup > 0;
    n->fattr[0] = o->lr;
    switch (o->kind) {
    case OPT_SGD:
        n->fattr[1] = o->momentum;
        n->fattr[2] = o->weight_decay;
        n->iattr[0] = o->momentum != 0 ? 1 : 0;
        n->iattr[1] = o->nesterov;
        break;
    case OPT_ADAM:
    case OPT_ADAMW:
        n->fattr[1] = o->beta1;
        n->fattr[2] = o->beta2;
        n->fattr[3] = o->eps;
        n->fattr[4] = o->weight_decay;
        n->iattr[0] = 2;
        n->iattr[1] = o->kind == OPT_ADAMW;
        break;
    case OPT_RMSPROP:
        n->fattr[1] = o->rho;
        n->fattr[2] = o->momentum;
        n->fattr[3] = o->eps;
        n->iattr[1] = o->centered;
        n->iattr[2] = o->momentum != 0;
        n->iattr[0] = 1 + n->iattr[1] + n->iattr[2];
        break;
    case OPT_ADAGRAD:
        n->fattr[1] = o->eps;
        n->fattr[2] = o->init;
        n->iattr[0] = 1;
        break;
    }
}

void optim_build(Graph *g)
{
    static const Op ops[] = {OP_SGD, OP_ADAM, OP_ADAM, OP_RMSPROP, OP_ADAGRAD};
    const Optimizer *o = &g->opt;
    for (int i = 0; i < g->nparams; i++) {
        NodeId p = g->params[i], dp = g->grads[i];
        if (dp == NODE_NONE)
            continue; /* lower_model warned: it does not affect the loss */
        NodeId u = graph_add2(g, ops[o->kind], o->loc, p, dp);
        Node *n = NODE(g, u);
        n->what = "optimizer";
        n->name = NODE(g, p)->name;
        set_attrs(o, n);
        if (o->decay_matrices && NODE(g, p)->shape.rank < 2)
            n->fattr[o->kind == OPT_SGD ? 2 : 4] = 0;
    }
}

const char *optim_state_name(const Optimizer *o, int s)
{
    switch (o->kind) {
    case OPT_SGD:
        return "momentum_buffer";
    case OPT_ADAM:
    case OPT_ADAMW:
        return s == 0 ? "exp_avg" : "exp_avg_sq";
    case OPT_RMSPROP:
        if (s == 0)
            return "square_avg";
        return s == 1 && o->momentum != 0 ? "momentum_buffer" : "grad_avg";
    case OPT_ADAGRAD:
        return "sum";
    }
    nnc_unreachable();
}
