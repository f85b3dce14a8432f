/*
 * recompute.c - training within a memory budget (nnc --max-ram=BYTES):
 * activation checkpointing chosen by the compiler.
 *
 * requires: the final training graph (fused, planned) / produces: the
 * same graph where some forward values are computed a second time for
 * the backward pass, refused, or untouched when the model already fits.
 *
 * The training step keeps every forward value that the backward pass
 * reads, from its forward kernel to its last backward reader: that is
 * most of the arena. Recomputing a value instead means a copy of the
 * kernel that made it (all the nodes fused into it, so the copy fuses
 * the same way and computes the same bits) placed right before its first
 * backward reader; the forward value then dies at its last forward
 * reader. A copy reads the original inputs, or their copies when those
 * are recomputed too (a chain), so a value kept in memory (a residual
 * stream, a pooled image) is the checkpoint the segment after it is
 * recomputed from.
 *
 * Choosing what to recompute is a search over these kernels, measured
 * rather than modelled: each trial applies a set to a copy of the graph
 * and runs fuse, schedule and memplan on it, so the figure is the arena
 * the emitted code will have. The search is greedy: candidates in order
 * of bytes saved per FLOP recomputed; one is kept if the arena shrinks,
 * or stays equal while the sum over buffers of bytes x lifetime shrinks
 * (peaks that several layers share fall only when each of them goes);
 * rounds repeat until the budget is met or nothing helps; then a pruning
 * round drops what the budget no longer needs, cheapest saving first.
 * It is a heuristic: it finds a plan that fits with little extra work,
 * not a proven optimum, and the smallest budget it reports is the
 * smallest its search reached.
 *
 * Ops with effects are never copied: dropout (its mask comes from the
 * step's random stream), batchnorm (it updates the running statistics),
 * attention with dropout, state ops, losses and updates.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

/* Is node n something a copy can recompute with the same result? */
static bool copyable(const Node *n)
{
    OpKind k = optab[n->op].kind;
    if (k == K_SOURCE || k == K_LOSS || k == K_UPDATE || (optab[n->op].flags & F_STATE))
        return false;
    if (n->op == OP_DROPOUT || n->op == OP_BATCHNORM)
        return false;
    return !(n->op == OP_ATTENTION && n->fattr[1] > 0);
}

/* Runs in the backward pass: gradients and updates (and copies). */
static bool is_back(const Node *n)
{
    return n->is_grad || optab[n->op].kind == K_UPDATE;
}

/* Where a node goes in the new order: after node `slot` of the old one
 * (phase 1: in its own place; 2: hoisted after it), before or as
 * `reader`; copies (order 0) come before the reader they serve, by id. */
typedef struct Item {
    int slot, phase, reader, order, id;
} Item;

static int item_cmp(const Item *a, const Item *b)
{
    int x[5] = {a->slot, a->phase, a->reader, a->order, a->id};
    int y[5] = {b->slot, b->phase, b->reader, b->order, b->id};
    for (int i = 0; i < 5; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int item_qsort(const void *a, const void *b)
{
    return item_cmp(a, b);
}

/* Is u the gradient of a parameter (it lives in the gradient region)? */
static bool is_param_grad(const Graph *g, int u)
{
    for (int i = 0; i < g->nparams && g->grads; i++)
        if (g->grads[i] == (NodeId)u)
            return true;
    return false;
}

int recompute_apply(Graph *g, const bool *S)
{
    int n = g->nnodes;
    Item *key = xcalloc((size_t)n, sizeof *key);      /* by id: the node's place */
    Item *ckey = xcalloc((size_t)n, sizeof *ckey);    /* by id: its copy's place */
    Item *items = xcalloc((size_t)2 * (size_t)n, sizeof *items);
    int *dep = xcalloc((size_t)n, sizeof *dep);       /* copies: latest old input */
    bool *copied = xcalloc((size_t)n, sizeof(bool)), *reads = xcalloc((size_t)n, sizeof(bool));
    NodeId *map = xcalloc((size_t)n, sizeof *map), *cmap = xcalloc((size_t)n, sizeof *cmap);
    NNC_ASSERT(key && ckey && items && dep && copied && reads && map && cmap);
    /* the copies: values in S that a backward node or another copy reads */
    for (int u = n - 1; u >= 1; u--) {
        const Node *d = &g->nodes[u];
        if (!is_back(d) && !copied[u])
            continue;
        for (int k = 0; k < d->nin; k++)
            if (S[d->in[k]]) {
                copied[d->in[k]] = true;
                reads[u] = is_back(d);
            }
    }
    for (int s = 1; s < n; s++)
        for (int k = 0; k < g->nodes[s].nin && copied[s]; k++) {
            NodeId x = g->nodes[s].in[k];
            int d = copied[x] ? dep[x] : (int)x;
            dep[s] = d > dep[s] ? d : dep[s];
        }
    /* places: a parameter's gradient that reads copies (a recomputed
     * layer's weight gradient) moves up to right after its other inputs,
     * so that its copies are made, read and dropped before the larger
     * buffers of the input gradient exist; the rest stays in place */
    for (int u = 1; u < n; u++) {
        const Node *d = &g->nodes[u];
        key[u] = (Item){u, 1, u, 1, u};
        if (!reads[u] || !is_param_grad(g, u))
            continue;
        int t = 0;
        bool hoisted_input = false;
        for (int k = 0; k < d->nin; k++) {
            NodeId x = d->in[k];
            int after = copied[x] ? dep[x] : (int)x;
            t = after > t ? after : t;
            hoisted_input |= !copied[x] && key[x].phase == 2;
        }
        if (!hoisted_input && t < u)
            key[u] = (Item){t, 2, u, 1, u};
    }
    /* a copy goes right before its earliest reader: a backward node, or
     * the copy of a node that reads it (larger ids: walk down) */
    for (int s = n - 1; s >= 1; s--) {
        if (!copied[s])
            continue;
        Item best = {0x7fffffff, 0, 0, 0, 0};
        for (int u = s + 1; u < n; u++) {
            const Node *d = &g->nodes[u];
            bool back = is_back(d);
            if (!back && !copied[u])
                continue;
            for (int k = 0; k < d->nin; k++)
                if (d->in[k] == (NodeId)s) {
                    Item r = back ? key[u] : ckey[u];
                    if (item_cmp(&r, &best) < 0)
                        best = r;
                }
        }
        ckey[s] = (Item){best.slot, best.phase, best.reader, 0, s};
    }
    int ni = 0;
    for (int u = 1; u < n; u++)
        items[ni++] = key[u];
    for (int s = 1; s < n; s++)
        if (copied[s])
            items[ni++] = ckey[s];
    qsort(items, (size_t)ni, sizeof *items, item_qsort);
    Node *nodes = xcalloc((size_t)ni + 1, sizeof(Node));
    NNC_ASSERT(nodes);
    for (int i = 0; i < ni; i++) {
        const Item *it = &items[i];
        Node d = g->nodes[it->id];
        bool copy = it->order == 0, back = copy || is_back(&d);
        for (int k = 0; k < d.nin; k++) {
            NodeId x = d.in[k];
            d.in[k] = back && copied[x] ? cmap[x] : map[x];
            NNC_ASSERT(d.in[k] != NODE_NONE);
        }
        d.kernel = NODE_NONE;
        if (copy) {
            d.is_grad = true;   /* runs in the backward pass */
            d.name = NULL;
            cmap[it->id] = (NodeId)(i + 1);
        } else {
            map[it->id] = (NodeId)(i + 1);
        }
        nodes[i + 1] = d;
    }
    free(g->nodes);
    g->nodes = nodes;
    g->nnodes = g->cap = ni + 1;
    g->input = map[g->input];
    g->target = map[g->target];
    g->output = map[g->output];
    g->loss = map[g->loss];
    for (int i = 0; i < g->nparams; i++) {
        g->params[i] = map[g->params[i]];
        if (g->grads && g->grads[i])
            g->grads[i] = map[g->grads[i]];
    }
    int ncopies = ni - (n - 1);
    free(key);
    free(ckey);
    free(items);
    free(dep);
    free(copied);
    free(reads);
    free(map);
    free(cmap);
    return ncopies;
}

/* ---- the search ------------------------------------------------------------ */

/* A candidate: the nodes of one forward kernel (its root's value is read
 * by the backward pass), the floats of its buffer and its FLOPs. */
typedef struct Cand {
    NodeId root;
    bool *nodes;        /* by id */
    double floats, flops;
} Cand;

/* A trial's figures: the training arena, bytes x lifetime, FLOPs. */
typedef struct Score {
    size_t arena;
    double integral, flops;
} Score;

static Score trial(const Graph *g0, const bool *S, bool fuse)
{
    Graph t = *g0;
    t.nodes = xmalloc((size_t)g0->nnodes * sizeof(Node));
    t.params = xmalloc(((size_t)g0->nparams + 1) * sizeof(NodeId));
    t.grads = xmalloc(((size_t)g0->nparams + 1) * sizeof(NodeId));
    NNC_ASSERT(t.nodes && t.params && t.grads);
    memcpy(t.nodes, g0->nodes, (size_t)g0->nnodes * sizeof(Node));
    memcpy(t.params, g0->params, (size_t)g0->nparams * sizeof(NodeId));
    memcpy(t.grads, g0->grads, (size_t)g0->nparams * sizeof(NodeId));
    t.cap = t.nnodes;
    recompute_apply(&t, S);
    if (fuse)
        pass_fuse(&t);
    ModelLayout l;
    Plan p;
    layout_build(&t, &l);
    plan_build(&t, &l, false, &p);
    plan_memory(&t, &p);
    Score sc = {p.arena_floats, 0, p.flops};
    for (int id = 1; id < t.nnodes; id++)
        if (p.region[id] == REG_ARENA && !p.shares[id])
            sc.integral += (double)align_floats(shape_numel(&t.nodes[id].shape)) *
                           (p.last[id] - p.def[id] + 1);
    plan_free(&p);
    layout_free(&l);
    free(t.nodes);
    free(t.params);
    free(t.grads);
    return sc;
}

static bool better(Score a, Score b)
{
    return a.arena < b.arena || (a.arena == b.arena && a.integral < b.integral);
}

/* Marks into c->nodes the root and, recursively, its inputs fused into
 * the same kernel; false if one of them cannot be copied. */
static bool kernel_nodes(const Graph *g, NodeId root, NodeId id, bool *nodes)
{
    const Node *n = NODE(g, id);
    if (!copyable(n))
        return false;
    nodes[id] = true;
    for (int k = 0; k < n->nin; k++) {
        NodeId x = n->in[k];
        if (NODE(g, x)->kernel == root && !nodes[x] && !kernel_nodes(g, root, x, nodes))
            return false;
    }
    return true;
}

static int by_ratio(const void *a, const void *b)
{
    const Cand *x = a, *y = b;
    double rx = x->floats / (x->flops + 1), ry = y->floats / (y->flops + 1);
    return rx > ry ? -1 : rx < ry ? 1 : (x->root > y->root) - (x->root < y->root);
}

/* Forward kernels whose value the backward pass reads, in arena memory. */
static int candidates(const Graph *g, const Plan *p, Cand **out)
{
    int n = g->nnodes, nc = 0;
    bool *read_back = xcalloc((size_t)n, sizeof(bool));
    Cand *c = xcalloc((size_t)n, sizeof *c);
    NNC_ASSERT(read_back && c);
    for (int u = 1; u < n; u++)
        if (p->in_prog[u] && is_back(&g->nodes[u]))
            for (int k = 0; k < g->nodes[u].nin; k++)
                read_back[g->nodes[u].in[k]] = true;
    for (int k = 0; k < p->nkernels; k++) {
        NodeId r = p->kernels[k].root;
        const Node *rn = NODE(g, r);
        if (rn->is_grad || !read_back[r] || p->region[r] != REG_ARENA ||
            (optab[rn->op].kind == K_MOVE && p->shares[r]) || r == g->loss)
            continue;
        Cand cd = {r, xcalloc((size_t)n, sizeof(bool)), 0, 0};
        NNC_ASSERT(cd.nodes);
        if (!kernel_nodes(g, r, r, cd.nodes)) {
            free(cd.nodes);
            continue;
        }
        cd.floats = (double)align_floats(shape_numel(&rn->shape));
        for (int id = 1; id < n; id++)
            if (cd.nodes[id])
                cd.flops += node_flops(g, (NodeId)id);
        c[nc++] = cd;
    }
    free(read_back);
    qsort(c, (size_t)nc, sizeof *c, by_ratio);
    *out = c;
    return nc;
}

static void set_nodes(bool *S, const Cand *c, int n, bool on)
{
    for (int id = 1; id < n; id++)
        if (c->nodes[id])
            S[id] = on;
}

/* The bytes of the whole context with a training arena of `arena` floats
 * (the other regions and the predict and decode arenas as they are). */
static size_t mem_with(const Compiled *c, size_t arena)
{
    size_t p, g, s, a;
    emit_regions(c, &p, &g, &s, &a);
    size_t fixed = emit_mem_bytes(c) - a * sizeof(float);
    size_t floor = c->predict.arena_floats;
    if (c->decode && c->decode->predict.arena_floats > floor)
        floor = c->decode->predict.arena_floats;
    return fixed + (arena > floor ? arena : floor) * sizeof(float);
}

/* Rebuilds the plans of c after its graph changed. */
static bool replan(Compiled *c, bool fuse)
{
    Graph *g = &c->g;
    plan_free(&c->train);
    plan_free(&c->predict);
    layout_free(&c->layout);
    if (fuse)
        pass_fuse(g);
    layout_build(g, &c->layout);
    plan_build(g, &c->layout, false, &c->train);
    plan_build(g, &c->layout, true, &c->predict);
    plan_memory(g, &c->train);
    plan_memory(g, &c->predict);
    return verify(g) && plan_check(g, &c->train) && plan_check(g, &c->predict);
}

/* An im2col matrix that is cheaper to build again than to keep: large
 * (it spills L2 and comes back from memory for the weight gradient) and
 * of long contiguous runs (kw x cin floats a window row), which its
 * blocks copy fast. Rebuilt, it is made a block of rows at a time inside
 * the forward product's kernel and again inside the weight gradient's
 * (fuse.c), both in cache, and never stored whole; the bits stay the
 * same (the gradient's blocks are the same). Measured on the Fashion-MNIST
 * CNN (AMD Zen 3, one thread): its second convolution's im2col (7.4 MB,
 * runs of 96 floats) rebuilt, the step 14.75 -> 13.55 ms and the context
 * 20.6 -> 14.6 MB; its first convolution's (1.6 MB, runs of 3) rebuilt
 * too, 7% slower than kept. */
#define REBUILD_MIN_BYTES ((size_t)1 << 20)
#define REBUILD_MIN_RUN 16

static bool rebuild_pays(const Graph *g, const Cand *c)
{
    const Node *r = NODE(g, c->root), *x;
    int n = g->nnodes;
    if (r->op != OP_IM2COL || shape_numel(&r->shape) * sizeof(float) < REBUILD_MIN_BYTES)
        return false;
    for (int id = 1; id < n; id++)    /* the im2col alone, nothing fused into it */
        if (c->nodes[id] && id != (int)c->root)
            return false;
    x = NODE(g, r->in[0]);
    return x->shape.rank == 4 && r->iattr[1] * x->shape.dim[3] >= REBUILD_MIN_RUN;
}

/* The greedy search from the set S (in[i]: candidate i is in it) for a
 * set that fits the budget, then its pruning; false, after an error
 * naming the smallest budget found, when none fits. */
static bool search(Compiled *c, size_t budget, bool fuse, const Cand *cand, int nc, bool *S,
                   bool *in)
{
    Graph *g = &c->g;
    int n = g->nnodes;
    Score cur = trial(g, S, fuse);
    bool fits = mem_with(c, cur.arena) <= budget, any = true;
    while (!fits && any) {
        any = false;
        for (int i = 0; i < nc && !fits; i++) {
            if (in[i])
                continue;
            set_nodes(S, &cand[i], n, true);
            Score t = trial(g, S, fuse);
            if (better(t, cur)) {
                in[i] = any = true;
                cur = t;
                fits = mem_with(c, cur.arena) <= budget;
            } else {
                set_nodes(S, &cand[i], n, false);   /* kernels share no node */
            }
        }
    }
    /* pruning: the cheapest savings first (the end of the order); what
     * is rebuilt anyway stays */
    for (int i = nc - 1; i >= 0 && fits; i--) {
        if (!in[i] || rebuild_pays(g, &cand[i]))
            continue;
        set_nodes(S, &cand[i], n, false);
        Score t = trial(g, S, fuse);
        if (mem_with(c, t.arena) <= budget && t.flops <= cur.flops) {
            in[i] = false;
            cur = t;
        } else {
            set_nodes(S, &cand[i], n, true);
        }
    }
    if (!fits) {
        int kept = 0;
        for (int i = 0; i < nc; i++)
            kept += in[i];
        diag_error(g->loc, "--max-ram=%zu is below what model '%s' can train in: the "
                   "smallest budget found is --max-ram=%zu (recomputing %d of %d kernels' "
                   "values in the backward pass; %zu bytes without recomputation)",
                   budget, g->name, mem_with(c, cur.arena), kept, nc, emit_mem_bytes(c));
    }
    return fits;
}

bool recompute_fit(Compiled *c, size_t budget, bool fuse)
{
    Graph *g = &c->g;
    int n = g->nnodes;
    c->max_ram = budget;
    c->recompute_base_flops = c->train.flops;
    Cand *cand;
    int nc = candidates(g, &c->train, &cand);
    bool *S = xcalloc((size_t)n, sizeof(bool)), *in = xcalloc((size_t)nc + 1, sizeof(bool));
    NNC_ASSERT(S && in);
    /* what pays anyway (only when fusing: the blocks are built inside
     * their products' kernels), then as much more as the budget needs */
    int rebuilt = 0;
    for (int i = 0; i < nc && fuse; i++)
        if (rebuild_pays(g, &cand[i])) {
            set_nodes(S, &cand[i], n, true);
            in[i] = true;
            rebuilt++;
        }
    bool fits = budget == 0 || (rebuilt == 0 && emit_mem_bytes(c) <= budget) ||
                search(c, budget, fuse, cand, nc, S, in);
    bool any = false, ok = fits;
    for (int id = 1; id < n; id++)
        any |= S[id];
    if (fits && any) {
        c->recomputed = recompute_apply(g, S);
        ok = replan(c, fuse);
    }
    for (int i = 0; i < nc; i++)
        free(cand[i].nodes);
    free(cand);
    free(S);
    free(in);
    return ok;
}
