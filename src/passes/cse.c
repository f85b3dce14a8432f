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
#include <stdlib.h>
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

bool pass_cse(Graph *g)
{
    NodeId *repl = calloc((size_t)g->nnodes, sizeof(NodeId));
    NNC_ASSERT(repl);
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        Node *n = &g->nodes[id];
        for (int k = 0; k < n->nin; k++)
            if (repl[n->in[k]])
                n->in[k] = repl[n->in[k]];
        OpKind kind = optab[n->op].kind;
        if ((kind == K_SOURCE && n->op != OP_CONST) || kind == K_UPDATE)
            continue;
        for (int j = 1; j < id; j++)
            if (!repl[j] && same_value(&g->nodes[j], n)) {
                repl[id] = (NodeId)j;
                changed = true;
                break;
            }
    }
    graph_follow(g, repl);
    free(repl);
    return changed;
}
