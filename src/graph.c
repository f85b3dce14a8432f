/*
 * graph.c - the IR builder: appends nodes, runs each op's shape rule as
 * the node is built, and keeps the parameter list.
 *
 * Invariant: a node's inputs have smaller ids (nodes are appended after
 * their inputs), so id order is a topological order and every pass can
 * walk the array forwards (or backwards, for autodiff).
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

void graph_init(Graph *g, const char *name, int batch)
{
    memset(g, 0, sizeof *g);
    g->name = name;
    g->batch = batch;
    g->nodes = nnc_grow(NULL, &g->cap, 64, sizeof(Node));
    g->nnodes = 1; /* node 0 is NODE_NONE */
}

void graph_free(Graph *g)
{
    free(g->nodes);
    free(g->params);
    free(g->grads);
    arena_free(&g->arena);
    memset(g, 0, sizeof *g);
}

static NodeId append(Graph *g, Op op, Loc loc)
{
    g->nodes = nnc_grow(g->nodes, &g->cap, g->nnodes + 1, sizeof(Node));
    NodeId id = (NodeId)g->nnodes++;
    Node *n = NODE(g, id);
    memset(n, 0, sizeof *n);
    n->op = op;
    n->loc = loc;
    return id;
}

/* Appends a node of `op` reading x (and y unless NODE_NONE), described
 * as x is; its attributes are the caller's to set. */
static NodeId append_on(Graph *g, Op op, Loc loc, NodeId x, NodeId y)
{
    NodeId id = append(g, op, loc);
    Node *n = NODE(g, id);
    n->nin = y ? 2 : 1;
    n->in[0] = x;
    n->in[1] = y;
    n->what = NODE(g, x)->what;
    return id;
}

/* Runs the shape rule; on failure the node is dropped again. */
static NodeId finish(Graph *g, NodeId id)
{
    Node *n = NODE(g, id);
    if (!optab[n->op].shape(g, n)) {
        g->nnodes--;
        return NODE_NONE;
    }
    return id;
}

NodeId graph_add(Graph *g, Op op, Loc loc, int nin, const NodeId *in)
{
    NNC_ASSERT(nin == optab[op].arity && nin <= NNC_MAX_IN);
    for (int i = 0; i < nin; i++)
        if (in[i] == NODE_NONE)
            return NODE_NONE; /* an earlier error; already reported */
    NodeId id = append(g, op, loc);
    Node *n = NODE(g, id);
    n->nin = nin;
    for (int i = 0; i < nin; i++) {
        NNC_ASSERT(in[i] < id);
        n->in[i] = in[i];
    }
    if (nin > 0)
        n->what = NODE(g, in[0])->what;
    return finish(g, id);
}

NodeId graph_add_node(Graph *g, const Node *proto)
{
    NNC_ASSERT(proto->nin == optab[proto->op].arity);
    NodeId id = append(g, proto->op, proto->loc);
    Node *n = NODE(g, id);
    *n = *proto;
    for (int i = 0; i < n->nin; i++)
        NNC_ASSERT(n->in[i] != NODE_NONE && n->in[i] < id);
    return finish(g, id);
}

NodeId graph_add1(Graph *g, Op op, Loc loc, NodeId a)
{
    return graph_add(g, op, loc, 1, &a);
}

NodeId graph_add2(Graph *g, Op op, Loc loc, NodeId a, NodeId b)
{
    NodeId in[2] = {a, b};
    return graph_add(g, op, loc, 2, in);
}

NodeId graph_add3(Graph *g, Op op, Loc loc, NodeId a, NodeId b, NodeId c)
{
    NodeId in[3] = {a, b, c};
    return graph_add(g, op, loc, 3, in);
}

NodeId graph_source(Graph *g, Role role, Loc loc, const Shape *per_sample)
{
    NNC_ASSERT(role == R_INPUT || role == R_TARGET);
    NNC_ASSERT(per_sample->rank < NNC_MAX_DIMS);
    NodeId id = append(g, role == R_INPUT ? OP_INPUT : OP_TARGET, loc);
    Node *n = NODE(g, id);
    n->role = role;
    n->shape.rank = per_sample->rank + 1;
    n->shape.dim[0] = g->batch;
    memcpy(n->shape.dim + 1, per_sample->dim, sizeof(int) * (size_t)per_sample->rank);
    n->bmask = 1;
    return finish(g, id);
}

NodeId graph_param(Graph *g, Loc loc, const char *name, const Shape *s,
                   Init init, int fan_in, int fan_out)
{
    NodeId id = append(g, OP_PARAM, loc);
    Node *n = NODE(g, id);
    n->role = R_PARAM;
    n->shape = *s;
    n->name = name;
    n->init = init;
    n->fan_in = fan_in;
    n->fan_out = fan_out;
    g->params = nnc_grow(g->params, &g->pcap, g->nparams + 1, sizeof(NodeId));
    g->params[g->nparams++] = id;
    return finish(g, id);
}

NodeId graph_const(Graph *g, Loc loc, const Shape *s, double value)
{
    NodeId id = append(g, OP_CONST, loc);
    Node *n = NODE(g, id);
    n->role = R_CONST;
    n->shape = *s;
    n->fattr[0] = value;
    return finish(g, id);
}

NodeId graph_matmul(Graph *g, Loc loc, NodeId a, NodeId b, int ta, int tb)
{
    if (a == NODE_NONE || b == NODE_NONE)
        return NODE_NONE;
    NodeId id = append_on(g, OP_MATMUL, loc, a, b);
    NODE(g, id)->iattr[0] = ta;
    NODE(g, id)->iattr[1] = tb;
    return finish(g, id);
}

/* SUM_TO and BROADCAST_TO take their target shape from `like`. */
static NodeId reshape_like(Graph *g, Op op, Loc loc, NodeId x, NodeId like)
{
    if (x == NODE_NONE)
        return NODE_NONE;
    NodeId id = append_on(g, op, loc, x, NODE_NONE);
    NODE(g, id)->shape = NODE(g, like)->shape;
    NODE(g, id)->bmask = NODE(g, like)->bmask;
    return finish(g, id);
}

NodeId graph_sum_to(Graph *g, Loc loc, NodeId x, NodeId like)
{
    return reshape_like(g, OP_SUM_TO, loc, x, like);
}

NodeId graph_bcast_to(Graph *g, Loc loc, NodeId x, NodeId like)
{
    return reshape_like(g, OP_BROADCAST_TO, loc, x, like);
}

NodeId graph_scale(Graph *g, Loc loc, NodeId x, double s)
{
    if (x == NODE_NONE)
        return NODE_NONE;
    NodeId id = append_on(g, OP_SCALE, loc, x, NODE_NONE);
    NODE(g, id)->fattr[0] = s;
    return finish(g, id);
}

/* The graph's roles (output, loss, gradients) follow a replacement map
 * (repl[id]: the node that now stands for id, 0 if none). */
void graph_follow(Graph *g, const NodeId *repl)
{
    if (g->output && repl[g->output])
        g->output = repl[g->output];
    if (g->loss && repl[g->loss])
        g->loss = repl[g->loss];
    for (int i = 0; i < g->nparams && g->grads; i++)
        if (g->grads[i] && repl[g->grads[i]])
            g->grads[i] = repl[g->grads[i]];
}

int *graph_uses(const Graph *g)
{
    int *uses = xcalloc((size_t)g->nnodes, sizeof(int));
    for (int id = 1; id < g->nnodes; id++)
        for (int k = 0; k < g->nodes[id].nin; k++)
            uses[g->nodes[id].in[k]]++;
    uses[g->output]++;
    uses[g->loss]++;
    for (int i = 0; i < g->nparams && g->grads; i++)
        uses[g->grads[i]]++;
    return uses;
}

bool graph_rewrite(Graph *g, RewriteFn rule)
{
    NodeId *repl = xcalloc((size_t)g->nnodes, sizeof(NodeId));
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        Node *n = &g->nodes[id];
        for (int k = 0; k < n->nin; k++)
            if (repl[n->in[k]])
                n->in[k] = repl[n->in[k]];
        NodeId r = rule(g, (NodeId)id, repl, &changed);
        if (r != NODE_NONE && r != (NodeId)id) {
            repl[id] = r;
            changed = true;
        }
    }
    graph_follow(g, repl);
    free(repl);
    return changed;
}

bool graph_is_trained(const Graph *g, int i)
{
    return g->grads && g->grads[i] != NODE_NONE;
}

size_t graph_param_floats(const Graph *g, bool trained)
{
    size_t n = 0;
    for (int i = 0; i < g->nparams; i++)
        if (graph_is_trained(g, i) == trained && !NODE(g, g->params[i])->is_frozen)
            n += shape_numel(&NODE(g, g->params[i])->shape);
    return n;
}

size_t graph_frozen_floats(const Graph *g)
{
    size_t n = 0;
    for (int i = 0; i < g->nparams; i++)
        if (NODE(g, g->params[i])->is_frozen)
            n += shape_numel(&NODE(g, g->params[i])->shape);
    return n;
}

/* ---- shapes ------------------------------------------------------------- */

size_t shape_numel(const Shape *s)
{
    size_t n = 1;
    for (int d = 0; d < s->rank; d++)
        n *= (size_t)s->dim[d];
    return n;
}

bool shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dim[d] != b->dim[d])
            return false;
    return true;
}

const char *shape_str(const Shape *s)
{
    static char bufs[4][128];
    static int k;
    char *b = bufs[k++ % 4];
    size_t len = 0;
    len += (size_t)snprintf(b, 128, "(");
    for (int d = 0; d < s->rank && len < 100; d++)
        len += (size_t)snprintf(b + len, 128 - len, d ? ", %d" : "%d", s->dim[d]);
    snprintf(b + len, 128 - len, ")");
    return b;
}

bool graph_same_layout(const Node *a, const Node *b)
{
    return shape_eq(&a->shape, &b->shape) && a->bmask == b->bmask;
}

bool shape_bcast(const Shape *a, const Shape *b, Shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    Shape s = {r, {0}};
    for (int d = 0; d < r; d++) {
        int da = d - (r - a->rank), db = d - (r - b->rank);
        int x = da >= 0 ? a->dim[da] : 1, y = db >= 0 ? b->dim[db] : 1;
        if (x != y && x != 1 && y != 1)
            return false;
        s.dim[d] = x == 1 ? y : x;
    }
    *out = s;
    return true;
}

NodeId graph_reshape(Graph *g, Loc loc, NodeId x, const Shape *s, unsigned bmask)
{
    if (x == NODE_NONE)
        return NODE_NONE;
    NodeId id = append_on(g, OP_RESHAPE, loc, x, NODE_NONE);
    NODE(g, id)->shape = *s;
    NODE(g, id)->bmask = bmask;
    return finish(g, id);
}
