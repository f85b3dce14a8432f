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
#include <string.h>

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

static bool live_together(int d1, int l1, int d2, int l2)
{
    return d1 <= l2 && d2 <= l1;
}

/* ---- placement -------------------------------------------------------------
 *
 * Each slot goes at the lowest offset where it overlaps no placed slot
 * whose lifetime meets its own: a scan over the placed slots in offset
 * order that skips those not live with it, moves past each one that is,
 * and stops at the first that starts a gap large enough. Slots at the
 * same offset may be visited in any order: that does not move the gap.
 *
 * Done naively that is quadratic (a deep model keeps thousands of
 * activations live across its backward pass), so the placed slots are
 * kept in blocks of consecutive offsets with a summary each: a block
 * with no slot live with the one being placed is skipped; one whose
 * slots are all live with it and leave no gap as large is passed in one
 * step (to its largest end); only the others are scanned slot by slot.
 * The result is exactly the naive scan's. */

typedef struct Placed {
    size_t off, end;
    int def, last;
} Placed;

#define BLOCK 64    /* slots per block after a split; at most 2 * BLOCK */

typedef struct Block {
    int n;
    int min_def, max_def, min_last, max_last;
    size_t max_end;     /* the largest end */
    size_t max_gap;     /* the largest e[j].off - max(e[0 .. j).end), j >= 1 */
    Placed e[2 * BLOCK];
} Block;

/* A summary of SUPER consecutive blocks, as a block's of its slots, so
 * that a scan skips or passes them in one step as well (a 20,000-layer
 * model has thousands of blocks). Its gap is an upper bound (each block's
 * own gaps, and the gap before each block's first slot): an overestimate
 * only sends the scan into the blocks. */
#define SUPER 32

typedef struct Super {
    int min_def, max_def, min_last, max_last;
    size_t first_off, first_end, max_end, max_gap;
} Super;

typedef struct Placement {
    Block **b;
    int nb, cap;
    Super *sup;
    int nsup, supcap;
} Placement;

static void summarize(Block *b)
{
    const Placed *e = b->e;
    b->min_def = b->max_def = e[0].def;
    b->min_last = b->max_last = e[0].last;
    b->max_end = e[0].end;
    b->max_gap = 0;
    for (int j = 1; j < b->n; j++) {
        if (e[j].off > b->max_end && e[j].off - b->max_end > b->max_gap)
            b->max_gap = e[j].off - b->max_end;
        if (e[j].end > b->max_end)
            b->max_end = e[j].end;
        b->min_def = e[j].def < b->min_def ? e[j].def : b->min_def;
        b->max_def = e[j].def > b->max_def ? e[j].def : b->max_def;
        b->min_last = e[j].last < b->min_last ? e[j].last : b->min_last;
        b->max_last = e[j].last > b->max_last ? e[j].last : b->max_last;
    }
}

/* Recomputes the summary of the super holding block i, and of every one
 * after it when rest (a split moved the blocks after i). */
static void summarize_supers(Placement *pl, int i, bool rest)
{
    int nsup = (pl->nb + SUPER - 1) / SUPER;
    pl->sup = nnc_grow(pl->sup, &pl->supcap, nsup, sizeof *pl->sup);
    pl->nsup = nsup;
    for (int si = i / SUPER; si < nsup; si++) {
        Super *u = &pl->sup[si];
        const Block *b = pl->b[si * SUPER];
        u->min_def = b->min_def, u->max_def = b->max_def;
        u->min_last = b->min_last, u->max_last = b->max_last;
        u->first_off = b->e[0].off, u->first_end = b->e[0].end;
        u->max_end = b->max_end, u->max_gap = b->max_gap;
        int hi = (si + 1) * SUPER < pl->nb ? (si + 1) * SUPER : pl->nb;
        for (int k = si * SUPER + 1; k < hi; k++) {
            b = pl->b[k];
            if (b->e[0].off > u->max_end && b->e[0].off - u->max_end > u->max_gap)
                u->max_gap = b->e[0].off - u->max_end;
            u->max_gap = b->max_gap > u->max_gap ? b->max_gap : u->max_gap;
            u->max_end = b->max_end > u->max_end ? b->max_end : u->max_end;
            u->min_def = b->min_def < u->min_def ? b->min_def : u->min_def;
            u->max_def = b->max_def > u->max_def ? b->max_def : u->max_def;
            u->min_last = b->min_last < u->min_last ? b->min_last : u->min_last;
            u->max_last = b->max_last > u->max_last ? b->max_last : u->max_last;
        }
        if (!rest)
            break;
    }
}

/* One step of the scan over e: false when e starts the gap for s at
 * *off; else moves *off past e if it is live with s. */
static bool pass(const Slot *s, const Placed *e, size_t *off)
{
    if (!live_together(s->def, s->last, e->def, e->last))
        return true;
    if (e->off >= *off + s->size)
        return false;
    if (e->end > *off)
        *off = e->end;
    return true;
}

/* The scan over a run of slots summarized by these bounds: skipped (none
 * live with s), passed in one step (all live with s, the first in the
 * way, no gap as large as s), or not (false: scan inside). */
static bool summary_pass(const Slot *s, int min_def, int max_def, int min_last, int max_last,
                         size_t first_off, size_t first_end, size_t max_end, size_t max_gap,
                         size_t *off)
{
    if (min_def > s->last || max_last < s->def)
        return true;    /* none live with s */
    bool all_live = max_def <= s->last && min_last >= s->def;
    if (all_live && first_off < *off + s->size && *off <= first_end && max_gap < s->size) {
        *off = max_end > *off ? max_end : *off;
        return true;    /* passed in one step, as the scan would */
    }
    return false;
}

/* The lowest offset free for s among the placed slots. */
static size_t lowest_free(const Placement *pl, const Slot *s)
{
    size_t off = 0;
    for (int si = 0; si < pl->nsup; si++) {
        const Super *u = &pl->sup[si];
        if (summary_pass(s, u->min_def, u->max_def, u->min_last, u->max_last, u->first_off,
                         u->first_end, u->max_end, u->max_gap, &off))
            continue;
        int hi = (si + 1) * SUPER < pl->nb ? (si + 1) * SUPER : pl->nb;
        for (int i = si * SUPER; i < hi; i++) {
            const Block *b = pl->b[i];
            if (summary_pass(s, b->min_def, b->max_def, b->min_last, b->max_last, b->e[0].off,
                             b->e[0].end, b->max_end, b->max_gap, &off))
                continue;
            for (int j = 0; j < b->n; j++)
                if (!pass(s, &b->e[j], &off))
                    return off;
        }
    }
    return off;
}

/* Inserts e after the slots at offsets up to e.off. */
static void insert(Placement *pl, Placed e)
{
    if (pl->nb == 0) {
        pl->b = nnc_grow(pl->b, &pl->cap, 1, sizeof *pl->b);
        pl->b[0] = xcalloc(1, sizeof(Block));
        NNC_ASSERT(pl->b[0]);
        pl->nb = 1;
    }
    /* the last block whose first offset is at most e.off (else the first) */
    int lo = 0, hi = pl->nb - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (pl->b[mid]->e[0].off > e.off)
            hi = mid - 1;
        else
            lo = mid;
    }
    int i = lo;
    Block *b = pl->b[i];
    int j = b->n;
    while (j > 0 && b->e[j - 1].off > e.off)
        j--;
    memmove(&b->e[j + 1], &b->e[j], (size_t)(b->n - j) * sizeof e);
    b->e[j] = e;
    b->n++;
    bool split = b->n == 2 * BLOCK;
    if (split) {    /* split in two */
        Block *c = xcalloc(1, sizeof(Block));
        NNC_ASSERT(c);
        memcpy(c->e, &b->e[BLOCK], BLOCK * sizeof e);
        c->n = b->n = BLOCK;
        summarize(c);
        pl->b = nnc_grow(pl->b, &pl->cap, pl->nb + 1, sizeof *pl->b);
        memmove(&pl->b[i + 2], &pl->b[i + 1], (size_t)(pl->nb - i - 1) * sizeof *pl->b);
        pl->b[i + 1] = c;
        pl->nb++;
    }
    summarize(b);
    summarize_supers(pl, i, split);
}

/* Places slots in the given order, each at the lowest offset that is
 * free for its whole lifetime; returns the arena size. */
static size_t place(Slot *s, int ns)
{
    Placement pl = {0};
    size_t top = 0;
    for (int i = 0; i < ns; i++) {
        s[i].off = lowest_free(&pl, &s[i]);
        if (s[i].off + s[i].size > top)
            top = s[i].off + s[i].size;
        insert(&pl, (Placed){s[i].off, s[i].off + s[i].size, s[i].def, s[i].last});
    }
    for (int i = 0; i < pl.nb; i++)
        free(pl.b[i]);
    free(pl.b);
    free(pl.sup);
    return top;
}

void plan_memory(const Graph *g, Plan *p)
{
    int nn = g->nnodes;
    int *slot_of = xmalloc((size_t)nn * sizeof(int));
    Slot *slots = xcalloc((size_t)nn, sizeof(Slot));
    int ns = 0;
    for (int id = 1; id < nn; id++) {
        slot_of[id] = -1;
        if (p->region[id] != REG_ARENA)
            continue;
        size_t size = align_floats(node_floats(g, (NodeId)id));
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
    /* lower bound: the most floats live at one kernel (a sweep: each slot
     * adds its size at its def and takes it back after its last) */
    size_t *delta = xcalloc((size_t)p->nkernels + 1, sizeof *delta);
    NNC_ASSERT(delta);
    for (int i = 0; i < ns; i++) {
        int lo = slots[i].def > 0 ? slots[i].def : 0;
        int hi = slots[i].last < p->nkernels - 1 ? slots[i].last : p->nkernels - 1;
        if (lo <= hi) {
            delta[lo] += slots[i].size;
            delta[hi + 1] -= slots[i].size;
        }
    }
    p->lower_floats = 0;
    size_t live = 0;
    for (int k = 0; k < p->nkernels; k++) {
        live += delta[k];   /* unsigned wrap-around cancels out */
        if (live > p->lower_floats)
            p->lower_floats = live;
    }
    free(delta);
    /* greedy placement under several orders; keep the smallest arena */
    static int (*const orders[])(const void *, const void *) = {
        by_size, by_area, by_length, by_def, by_last};
    Slot *try = xmalloc((size_t)(ns ? ns : 1) * sizeof(Slot));
    p->arena_floats = (size_t)-1;
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        for (int i = 0; i < ns; i++)
            try[i] = slots[i];
        qsort(try, (size_t)ns, sizeof(Slot), orders[o]);
        size_t size = place(try, ns);
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

/* Buffers of the arena or gradient region (plan_check), in the order the
 * check visits them. */
typedef struct Buf_ {
    NodeId id;
    int def;
    size_t off, end;
} Buf_;

static int by_start(const void *a, const void *b)
{
    const Buf_ *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int by_def_id(const void *a, const void *b)
{
    const Buf_ *x = a, *y = b;
    if (x->def != y->def)
        return x->def < y->def ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* May a and b (a < b) share memory? Only when they are never live at
 * once, or for an elementwise result written over an input that dies in
 * the same kernel, element for element. */
static bool may_share(const Plan *p, NodeId a, NodeId b)
{
    if (!live_together(p->def[a], p->last[a], p->def[b], p->last[b]))
        return true;
    return in_place_of(p, b, a) && p->offset[a] == p->offset[b] && p->last[a] == p->def[b];
}

/* Gradients never share memory: sorted by offset, each starts at or after
 * the end of all before it. */
static bool check_grads(const Graph *g, Buf_ *gr, int n)
{
    qsort(gr, (size_t)n, sizeof *gr, by_start);
    for (int i = 1, top = 0; i < n; i++) {
        if (gr[i].off < gr[top].end && gr[i].off < gr[i].end) {
            NodeId a = gr[top].id < gr[i].id ? gr[top].id : gr[i].id;
            return conflict(g, a, gr[top].id ^ gr[i].id ^ a, "share gradient memory");
        }
        if (gr[i].end > gr[top].end)
            top = i;
    }
    return true;
}

/* Arena buffers in the order of their defs (ties by id), each compared
 * with the one that last held each 64-byte unit of its memory: if any
 * two buffers may not share memory, some buffer and the last holder of
 * a unit it covers may not either, so this finds a conflict if there is
 * one, in time proportional to the buffers' sizes (a quadratic check
 * over pairs took seconds on deep models). */
static bool check_arena(const Graph *g, const Plan *p, Buf_ *ar, int n)
{
    size_t units = p->arena_floats / ALIGN_FLOATS + 1;
    NodeId *holder = xcalloc(units, sizeof *holder);
    NNC_ASSERT(holder);
    qsort(ar, (size_t)n, sizeof *ar, by_def_id);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        size_t end = (ar[i].end + ALIGN_FLOATS - 1) / ALIGN_FLOATS;
        for (size_t u = ar[i].off / ALIGN_FLOATS; u < end && ok; u++) {
            NodeId h = holder[u], b = ar[i].id;
            if (h && h != b && !may_share(p, h < b ? h : b, h < b ? b : h))
                ok = conflict(g, h < b ? h : b, h < b ? b : h, "overlap while both are live");
            holder[u] = b;
        }
    }
    free(holder);
    return ok;
}

bool plan_check(const Graph *g, const Plan *p)
{
    int nn = g->nnodes, nar = 0, ngr = 0;
    if (!lifetimes_cover_uses(g, p))
        return false;
    Buf_ *ar = xmalloc((size_t)nn * sizeof *ar), *gr = xmalloc((size_t)nn * sizeof *gr);
    NNC_ASSERT(ar && gr);
    bool ok = true;
    for (int a = 1; a < nn && ok; a++) {
        Region ra = p->region[a];
        if (ra != REG_ARENA && ra != REG_GRAD)
            continue;
        size_t sa = node_floats(g, (NodeId)a);
        if (p->offset[a] % ALIGN_FLOATS)
            ok = conflict(g, (NodeId)a, (NodeId)a, "is not 64-byte aligned");
        else if (ra == REG_ARENA && p->offset[a] + sa > p->arena_floats)
            ok = conflict(g, (NodeId)a, (NodeId)a, "lies outside the arena");
        else if (p->def[a] < 0 || p->last[a] < p->def[a])
            ok = conflict(g, (NodeId)a, (NodeId)a, "has no lifetime");
        Buf_ b = {(NodeId)a, p->def[a], p->offset[a], p->offset[a] + sa};
        if (ra == REG_ARENA)
            ar[nar++] = b;
        else
            gr[ngr++] = b;
    }
    ok = ok && check_grads(g, gr, ngr) && check_arena(g, p, ar, nar);
    free(ar);
    free(gr);
    return ok;
}
