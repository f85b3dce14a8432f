/*
 * memplan.c - offsets in one arena for every buffer of a program, and the
 * checker that proves the plan safe.
 *
 * requires: a Plan from plan_build (regions, lifetimes, in-place pairs) /
 * produces: Plan.offset for REG_ARENA, arena_floats, lower_floats.
 *
 * After TFLite's and ggml-alloc's planners: buffers computed in place of
 * an input share its slot; slots are placed one by one, each at the
 * lowest 64-byte-aligned offset where it overlaps no placed slot whose
 * lifetime intersects its own. The order matters and no order is best
 * for every graph, so five are tried (largest first, largest size x
 * lifetime first, longest-lived first, earliest first, latest first) and
 * the smallest
 * arena is kept. The lower bound is the most floats live at any one
 * kernel (--emit=stats reports both).
 */
#include <stdlib.h>

#include "nnc.h"

typedef struct Slot {
    NodeId id;          /* representative node */
    int index;          /* position in the unsorted slot array */
    size_t size;        /* floats, aligned */
    int def, last;
    size_t off;
} Slot;

static int by_size(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->def != y->def)
        return x->def < y->def ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

static int tie(const Slot *x, const Slot *y)
{
    return by_size(x, y);
}

/* Size times lifetime: the slots that block the most first. */
static int by_area(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    size_t ax = x->size * (size_t)(x->last - x->def + 1);
    size_t ay = y->size * (size_t)(y->last - y->def + 1);
    return ax != ay ? (ax > ay ? -1 : 1) : tie(x, y);
}

static int by_length(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    int lx = x->last - x->def, ly = y->last - y->def;
    return lx != ly ? (lx > ly ? -1 : 1) : tie(x, y);
}

static int by_def(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    return x->def != y->def ? (x->def < y->def ? -1 : 1) : tie(x, y);
}

static int by_last(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    return x->last != y->last ? (x->last > y->last ? -1 : 1) : tie(x, y);
}

static int by_off(const void *a, const void *b)
{
    const Slot *x = *(const Slot *const *)a, *y = *(const Slot *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static bool live_together(int d1, int l1, int d2, int l2)
{
    return d1 <= l2 && d2 <= l1;
}

/* Places slots in the given order, each at the lowest offset that is
 * free for its whole lifetime; returns the arena size. */
static size_t place(Slot *s, int ns, const Slot **placed)
{
    size_t top = 0;
    for (int i = 0; i < ns; i++) {
        int nc = 0;
        for (int j = 0; j < i; j++)
            if (live_together(s[i].def, s[i].last, s[j].def, s[j].last))
                placed[nc++] = &s[j];
        qsort(placed, (size_t)nc, sizeof(Slot *), by_off);
        size_t off = 0;
        for (int j = 0; j < nc; j++) {
            if (placed[j]->off >= off + s[i].size)
                break;
            size_t end = placed[j]->off + placed[j]->size;
            if (end > off)
                off = end;
        }
        s[i].off = off;
        if (off + s[i].size > top)
            top = off + s[i].size;
    }
    return top;
}

void plan_memory(const Graph *g, Plan *p)
{
    int nn = g->nnodes;
    int *slot_of = xmalloc((size_t)nn * sizeof(int));
    Slot *slots = xcalloc((size_t)nn, sizeof(Slot));
    const Slot **placed = xcalloc((size_t)nn, sizeof(Slot *));
    int ns = 0;
    for (int id = 1; id < nn; id++) {
        slot_of[id] = -1;
        if (p->region[id] != REG_ARENA)
            continue;
        size_t size = align_floats(shape_numel(&g->nodes[id].shape));
        NodeId x = p->shares[id];
        if (x && slot_of[x] >= 0) {
            Slot *s = &slots[slot_of[x]];
            slot_of[id] = slot_of[x];
            s->last = p->last[id] > s->last ? p->last[id] : s->last;
            s->size = size > s->size ? size : s->size;
            continue;
        }
        slot_of[id] = ns;
        slots[ns] = (Slot){(NodeId)id, ns, size, p->def[id], p->last[id], 0};
        ns++;
    }
    /* lower bound: the most floats live at one kernel */
    p->lower_floats = 0;
    for (int k = 0; k < p->nkernels; k++) {
        size_t live = 0;
        for (int i = 0; i < ns; i++)
            if (slots[i].def <= k && k <= slots[i].last)
                live += slots[i].size;
        if (live > p->lower_floats)
            p->lower_floats = live;
    }
    /* greedy placement under several orders; keep the smallest arena */
    static int (*const orders[])(const void *, const void *) = {
        by_size, by_area, by_length, by_def, by_last};
    Slot *try = xmalloc((size_t)(ns ? ns : 1) * sizeof(Slot));
    p->arena_floats = (size_t)-1;
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        for (int i = 0; i < ns; i++)
            try[i] = slots[i];
        qsort(try, (size_t)ns, sizeof(Slot), orders[o]);
        size_t size = place(try, ns, placed);
        if (size < p->arena_floats) {
            p->arena_floats = size;
            for (int i = 0; i < ns; i++)
                slots[try[i].index].off = try[i].off;
        }
    }
    if (ns == 0)
        p->arena_floats = 0;
    free(try);
    for (int id = 1; id < nn; id++)
        if (slot_of[id] >= 0)
            p->offset[id] = slots[slot_of[id]].off;
    free(slot_of);
    free(slots);
    free(placed);
}

static bool conflict(const Graph *g, NodeId a, NodeId b, const char *why)
{
    fprintf(stderr, "nnc: internal error: memory plan of model '%s': %%%u and %%%u %s\n",
            g->name, (unsigned)a, (unsigned)b, why);
    return false;
}

/* Is b computed in place of a (directly or through a chain)? */
static bool in_place_of(const Plan *p, NodeId b, NodeId a)
{
    for (NodeId x = p->shares[b]; x; x = p->shares[x])
        if (x == a)
            return true;
    return false;
}

/* Recomputed from the kernel schedule, not trusted: each kernel writes its
 * members' buffers at their def and reads its inputs within their
 * lifetimes; the training step's loss lives to the end. A lifetime cut
 * short would let the planner hand out memory that is still read. */
static bool lifetimes_cover_uses(const Graph *g, const Plan *p)
{
    for (int k = 0; k < p->nkernels; k++) {
        const Kernel *kr = &p->kernels[k];
        for (int m = 0; m < kr->n; m++) {
            NodeId id = p->members[kr->first + m];
            const Node *n = NODE(g, id);
            bool planned = p->region[id] == REG_ARENA || p->region[id] == REG_GRAD;
            if (planned && p->def[id] != k)
                return conflict(g, id, id, "is written outside its lifetime");
            for (int i = 0; i < n->nin; i++) {
                NodeId x = n->in[i];
                if ((p->region[x] == REG_ARENA || p->region[x] == REG_GRAD) &&
                    (k < p->def[x] || k > p->last[x]))
                    return conflict(g, x, id, "is read by it outside its lifetime");
            }
        }
    }
    if (!p->predict && p->region[g->loss] == REG_ARENA && p->last[g->loss] != p->nkernels - 1)
        return conflict(g, g->loss, g->loss, "(the loss) dies before the step returns");
    return true;
}

bool plan_check(const Graph *g, const Plan *p)
{
    int nn = g->nnodes;
    if (!lifetimes_cover_uses(g, p))
        return false;
    for (int a = 1; a < nn; a++) {
        Region ra = p->region[a];
        if (ra != REG_ARENA && ra != REG_GRAD)
            continue;
        size_t sa = shape_numel(&g->nodes[a].shape);
        if (p->offset[a] % ALIGN_FLOATS)
            return conflict(g, (NodeId)a, (NodeId)a, "is not 64-byte aligned");
        if (ra == REG_ARENA && p->offset[a] + sa > p->arena_floats)
            return conflict(g, (NodeId)a, (NodeId)a, "lies outside the arena");
        if (p->def[a] < 0 || p->last[a] < p->def[a])
            return conflict(g, (NodeId)a, (NodeId)a, "has no lifetime");
        for (int b = a + 1; b < nn; b++) {
            if (p->region[b] != ra)
                continue;
            size_t sb = shape_numel(&g->nodes[b].shape);
            bool overlap = p->offset[a] < p->offset[b] + sb && p->offset[b] < p->offset[a] + sa;
            if (!overlap)
                continue;
            if (ra == REG_GRAD)
                return conflict(g, (NodeId)a, (NodeId)b, "share gradient memory");
            if (!live_together(p->def[a], p->last[a], p->def[b], p->last[b]))
                continue;
            /* allowed only for an elementwise result written over an input
             * that dies in the same kernel, element for element */
            if (in_place_of(p, (NodeId)b, (NodeId)a) && p->offset[a] == p->offset[b] &&
                p->last[a] == p->def[b])
                continue;
            return conflict(g, (NodeId)a, (NodeId)b, "overlap while both are live");
        }
    }
    return true;
}
