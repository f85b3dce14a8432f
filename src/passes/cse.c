/*
 * cse.c - common-subexpression elimination.
 *
 * requires: topological order / preserves: ids (duplicates are left dead
 * for dce) / invalidates: use counts.
 *
 * Two nodes compute the same value when they have the same op, inputs
 * (in any order for commutative ops), attributes and shape. Sources other
 * than constants are unique by definition, and updates have side effects,
 * so neither is merged. Candidates are found through a hash table of the
 * nodes kept so far (keyed by what same_value compares), so the pass is
 * linear in the graph: a scan over earlier nodes made a 5,000-layer model
 * take seconds. The earliest kept twin wins, as with that scan.
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

/* FNV-1a over what same_value compares (inputs sorted as it sorts them). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static uint64_t value_hash(const Node *n)
{
    NodeId in[NNC_MAX_IN];
    int head[3] = {(int)n->op, n->nin, (int)n->bmask};
    sorted_inputs(n, in);
    uint64_t h = hash_bytes(14695981039346656037u, head, sizeof head);
    h = hash_bytes(h, &n->shape.rank, sizeof n->shape.rank);
    h = hash_bytes(h, n->shape.dim, (size_t)n->shape.rank * sizeof n->shape.dim[0]);
    h = hash_bytes(h, in, (size_t)n->nin * sizeof in[0]);
    h = hash_bytes(h, n->iattr, sizeof n->iattr);
    return hash_bytes(h, n->fattr, sizeof n->fattr);
}

/* The nodes kept so far, open addressing; 0 marks an empty entry. The
 * rewrite callback has no context argument, hence a file-level table
 * (nnc compiles one graph at a time). */
static NodeId *table;
static size_t mask;

/* An earlier node (not itself replaced) with the same value as `id`. */
static NodeId earlier_twin(Graph *g, NodeId id, const NodeId *repl, bool *changed)
{
    (void)changed;
    (void)repl;
    const Node *n = NODE(g, id);
    size_t i = (size_t)value_hash(n) & mask;
    for (; table[i]; i = (i + 1) & mask)
        if (same_value(&g->nodes[table[i]], n))
            break;
    OpKind kind = optab[n->op].kind;
    bool mergeable = !((kind == K_SOURCE && n->role != R_CONST) || kind == K_UPDATE);
    if (table[i] && mergeable)
        return table[i];
    if (!table[i])
        table[i] = id;  /* kept: a candidate for later nodes */
    return NODE_NONE;
}

bool pass_cse(Graph *g)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)g->nnodes)
        cap *= 2;
    table = xcalloc(cap, sizeof *table);
    NNC_ASSERT(table);
    mask = cap - 1;
    bool changed = graph_rewrite(g, earlier_twin);
    free(table);
    table = NULL;
    return changed;
}
