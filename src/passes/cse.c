/*
 * cse.c - common-subexpression elimination.
 *
 * requires: topological order / preserves: ids (duplicates are left dead
 * for dce) / invalidates: use counts.
 *
 * Two nodes compute the same value when they have the same op, inputs
 * (in any order for commutative ops), attributes and shape. Sources other
 * than constants are unique by definition, and updates have side effects,
 * so neither is merged. Graphs have thousands of nodes at most: a
 * quadratic scan over earlier nodes of the same op is simple and enough.
 */
#include <string.h>

#include "nnc.h"

static void sorted_inputs(const Node *n, NodeId *in)
{
    memcpy(in, n->in, sizeof n->in);
    if ((optab[n->op].flags & F_COMMUTE) && n->nin == 2 && in[0] > in[1]) {
        NodeId t = in[0];
        in[0] = in[1];
        in[1] = t;
    }
}

static bool same_value(const Node *a, const Node *b)
{
    NodeId ia[NNC_MAX_IN], ib[NNC_MAX_IN];
    if (a->op != b->op || a->nin != b->nin || a->bmask != b->bmask ||
        !shape_eq(&a->shape, &b->shape))
        return false;
    sorted_inputs(a, ia);
    sorted_inputs(b, ib);
    for (int k = 0; k < a->nin; k++)
        if (ia[k] != ib[k])
            return false;
    return !memcmp(a->iattr, b->iattr, sizeof a->iattr) &&
           !memcmp(a->fattr, b->fattr, sizeof a->fattr);
}

/* An earlier node (not itself replaced) with the same value as `id`. */
static NodeId earlier_twin(Graph *g, NodeId id, const NodeId *repl, bool *changed)
{
    (void)changed;
    const Node *n = NODE(g, id);
    OpKind kind = optab[n->op].kind;
    if ((kind == K_SOURCE && n->role != R_CONST) || kind == K_UPDATE)
        return NODE_NONE;
    for (int j = 1; j < (int)id; j++)
        if (!repl[j] && same_value(&g->nodes[j], n))
            return (NodeId)j;
    return NODE_NONE;
}

bool pass_cse(Graph *g)
{
    return graph_rewrite(g, earlier_twin);
}
