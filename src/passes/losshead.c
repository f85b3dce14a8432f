/*
 * losshead.c - fused, numerically stable loss heads.
 *
 * requires: the forward graph with its loss, before autodiff /
 * preserves: every id / invalidates: nothing (one node is rewritten).
 *
 * bce(sigmoid(z), t) becomes sigmoid_bce(z, t): the loss in the logits
 * form max(z, 0) - z t + log(1 + exp(-|z|)), which never takes log(0),
 * and a single gradient (sigmoid(z) - t) / N instead of the BCE gradient
 * times the sigmoid derivative (whose quotient p(1-p) underflows). The
 * sigmoid node stays: it is still the model's output for predict.
 * softmax_cross_entropy is already one op in log-sum-exp form.
 */
#include "nnc.h"

bool pass_losshead(Graph *g)
{
    Node *l = NODE(g, g->loss);
    if (l->op != OP_BCE)
        return false;
    const Node *p = NODE(g, l->in[0]);
    if (p->op != OP_SIGMOID)
        return false;
    l->op = OP_SIGMOID_BCE;
    l->in[0] = p->in[0];
    return true;
}
