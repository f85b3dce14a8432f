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
 *
 * Likewise cce(softmax(z), t) (categorical_crossentropy on a softmax
 * output) becomes softmax_ce(z, t), the log-sum-exp form: the same loss
 * without the 1e-7 clip, and the gradient softmax(z) sum t - t instead
 * of a division by each probability. softmax_cross_entropy is already
 * that op. sparse_categorical_crossentropy on a softmax becomes
 * sparse_softmax_ce in the same way.
 */
#include "nnc.h"

/* loss(activation(z), t) -> fused(z, t) */
static const struct {
    Op loss, activation, fused;
} heads[] = {
    {OP_BCE, OP_SIGMOID, OP_SIGMOID_BCE},
    {OP_CCE, OP_SOFTMAX, OP_SOFTMAX_CE},
    {OP_SPARSE_CCE, OP_SOFTMAX, OP_SPARSE_SOFTMAX_CE},
};

Op losshead_unfused(Op op)
{
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        if (op == heads[i].fused)
            return heads[i].loss;
    return op;
}

bool pass_losshead(Graph *g)
{
    Node *l = NODE(g, g->loss);
    const Node *p = NODE(g, l->in[0]);
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        if (l->op == heads[i].loss && p->op == heads[i].activation) {
            l->op = heads[i].fused;
            l->in[0] = p->in[0];
            return true;
        }
    return false;
}
