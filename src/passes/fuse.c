/*
 * fuse.c - groups nodes into kernels by setting Node.kernel to the root
 * of the kernel that computes them.
 *
 * requires: topological order, shapes, dce done / preserves: every id and
 * edge / invalidates: nothing (the schedule is built from Node.kernel).
 *
 * Rules, each keeping the group a single pass over memory:
 *  - an elementwise node joins its consumer's loop when that consumer is
 *    its only user, both have one shape, and nobody needs its value in
 *    memory (the model's output, the loss and gradients stay in memory);
 *  - a matrix product joins the same way as the head of a loop: the loop
 *    becomes its epilogue (bias, activation, or in backward the
 *    activation's derivative), applied to row blocks while they are hot;
 *    that includes a convolution's product, whose result is an image
 *    (rank 4, rows N*OH*OW);
 *  - an activation's derivative f'(x) (F_FWDSIDE, dx = dy * f'(x)) joins
 *    a forward loop that reads x, as a second output that the loop also
 *    stores: f(x) and f'(x) share their work (gelu's exp), the backward
 *    only multiplies, and x need not be kept for it (without such a loop,
 *    or with x computed in the backward, it stays in its user's loop);
 *    when that loop then holds every reader of x, x's own kernel (a
 *    dense layer's product and bias) joins it as its GEMM head;
 *  - a sum over axes of a loop's result rides along in that loop (the bias
 *    gradient is summed while dZ is computed), and so does a per-channel
 *    sum of the output of an op flagged F_SUMRIDER (max pooling's gradient,
 *    whose emit rule then calls nnc_maxpool_back_sum);
 *  - a layernorm layer's parameter gradients ride on its input gradient's
 *    kernel (F_PARAMRIDER), which reads dy and x once for all three;
 *  - all parameter updates of one optimizer become one loop over the
 *    parameter, gradient and state regions, when every gradient can live
 *    at its parameter's place in the gradient region, and either the
 *    parameters are few (one call beats several) or gradients are clipped
 *    by their global norm (every gradient is needed before any update).
 *    Otherwise each update stays its own kernel, which the schedule runs
 *    right after its gradient is complete, while that is in cache.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

/* Parameters (floats) from which each update runs on its own: the
 * parameters, gradients and two moments then outgrow a 1 MiB L2 (the
 * Fashion-MNIST MLP's 6.4 MB), so an update reading its gradient while it
 * is still cached saves a trip to memory; below it all stay cached. */
#define SPLIT_UPDATES_FLOATS 65536

static bool fuse_updates(Graph *g)
{
    size_t floats = 0;
    for (int i = 0; i < g->nparams; i++)
        floats += shape_numel(&NODE(g, g->params[i])->shape);
    if (floats >= SPLIT_UPDATES_FLOATS && g->opt.clipnorm <= 0)
        return false;
    NodeId last = NODE_NONE, first = NODE_NONE;
    int count = 0;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (optab[n->op].kind != K_UPDATE)
            continue;
        count++;
        if (first) {
            const Node *f = NODE(g, first);
            if (f->op != n->op || memcmp(f->fattr, n->fattr, sizeof f->fattr) ||
                f->iattr[0] != n->iattr[0])
                return false;
        } else {
            first = (NodeId)id;
        }
        last = (NodeId)id;
    }
    /* one update over the whole region only if every parameter has one
     * (batchnorm's running statistics have none) */
    if (!last || last == first || count != g->nparams)
        return false;
    ModelLayout l;
    layout_build(g, &l);
    bool ok = l.grads_exclusive;
    layout_free(&l);
    if (!ok)
        return false;
    for (int id = 1; id < (int)last; id++)
        if (optab[g->nodes[id].op].kind == K_UPDATE)
            g->nodes[id].kernel = last;
    return true;
}

/* ---- convolutions in chunks ------------------------------------------------
 * A convolution is im2col, then products with its matrix (batch x OH x OW
 * rows of kh kw cin): the forward's col W^T, the weight gradient's
 * dC^T col and the input gradient's col2im(dC W). These matrices are the
 * largest buffers of a CNN (the example's conv2: 7.4 MB at batch 64).
 * Computed a block of rows at a time inside the kernel of the op that
 * reads them, a block stays in cache and its buffer is a block's:
 *  - col2im(dC W): the product, a chunk of images at a time (col2im's
 *    images are independent), inside col2im's kernel;
 *  - im2col read only by a GEMM with an epilogue (as A) or by a weight
 *    gradient (as B): built a block of rows at a time by the runtime's
 *    nnc_im2col_rows inside that kernel. Only a training plan that
 *    recomputes the im2col for the backward (--max-ram) has such an
 *    im2col in training; otherwise the weight gradient reads the saved
 *    one.
 * Row blocks of a forward product and chunks of col2im do the same
 * operations per row as one call. A weight gradient sums over the rows:
 * it always runs in blocks of WGRAD_FLOATS / (kh kw cin) rows, summed in
 * the runtime's fixed groups of blocks (nnc_conv_wgrad, threaded by
 * group), whether it reads a saved im2col or builds the blocks itself
 * (nnc_conv_wgrad_x), so that recomputation changes no bit. */
#define CHUNK_FLOATS 65536  /* a chunk's product: 256 KB, within an L2 */
#define WGRAD_FLOATS 65536  /* a weight gradient's block of im2col rows */

/* The weight gradient of a convolution, dC^T col: summed in row blocks. */
bool node_wgrad(const Graph *g, const Node *n)
{
    if (n->op != OP_MATMUL || !n->iattr[0] || n->iattr[1])
        return false;
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    return b->op == OP_IM2COL && a->bmask == 1u && b->bmask == 1u && a->shape.rank >= 3 &&
           b->shape.rank >= 3 && !n->bmask;
}

/* Node id's readers in the graph (those live in live[], when given)
 * other than skip, counted, and whether all of them are reductions. */
static int readers(const Graph *g, NodeId id, NodeId skip, const bool *live, bool *reduce)
{
    int k = 0;
    *reduce = true;
    for (int r = id + 1; r < g->nnodes; r++) {
        const Node *n = &g->nodes[r];
        if ((NodeId)r == skip || (live && !live[r]))
            continue;
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] == id) {
                k++;
                *reduce &= optab[n->op].kind == K_REDUCE;
                break;
            }
    }
    return k;
}

NodeId node_pool_wgrad(const Graph *g, const Node *c, const bool *live)
{
    if (!node_wgrad(g, c))
        return NODE_NONE;
    NodeId d = c->in[0], pool = d;
    const Node *dn = NODE(g, d), *col = NODE(g, c->in[1]);
    bool reduce;
    if (dn->op == OP_RELU_BACK) {   /* -O0: no pass poolrelu */
        pool = dn->in[0];
        if (readers(g, pool, d, live, &reduce) != 0)
            return NODE_NONE;
    }
    const Node *pn = NODE(g, pool);
    if (pn->op != OP_MAXPOOL_BACK || !maxpool2x2_back(g, pn) || col->shape.rank != 4 ||
        col->shape.dim[1] != pn->shape.dim[1] || col->shape.dim[2] != pn->shape.dim[2])
        return NODE_NONE;
    readers(g, d, (NodeId)(c - g->nodes), live, &reduce);
    /* dC of several weight-gradient blocks: less would save little */
    if (!reduce ||
        shape_numel(&pn->shape) < 4 * (size_t)block_rows(g, col) * (size_t)pn->shape.dim[3])
        return NODE_NONE;
    return pool;
}

bool node_chunked(const Graph *g, const Node *n)
{
    if (!n->kernel)
        return false;
    return (n->op == OP_MATMUL && NODE(g, n->kernel)->op == OP_COL2IM) || n->op == OP_IM2COL;
}

int chunk_images(const Node *n)
{
    size_t per = shape_numel(&n->shape) / (size_t)n->shape.dim[0];
    size_t c = per ? CHUNK_FLOATS / per : 1;
    if (c < 1)
        c = 1;
    return c < (size_t)n->shape.dim[0] ? (int)c : n->shape.dim[0];
}

/* Rows of the matrix view of x (all but the last dim). */
static long view_rows(const Node *x)
{
    int last = x->shape.dim[x->shape.rank - 1];
    return (long)(shape_numel(&x->shape) / (size_t)(last > 0 ? last : 1));
}

long block_rows(const Graph *g, const Node *n)
{
    long rows = view_rows(n);
    int k = n->shape.dim[n->shape.rank - 1];
    long rb = WGRAD_FLOATS / (k > 0 ? k : 1);
    if (n->op == OP_IM2COL && n->kernel && !node_wgrad(g, NODE(g, n->kernel))) {
        /* the A of a GEMM with an epilogue: its C's block (emit_kernel.c)
         * and the im2col's block both in L2 */
        const Node *r = NODE(g, n->kernel);
        int ncols = r->shape.dim[r->shape.rank - 1];
        long rc = GEMM_BLOCK_FLOATS / (ncols > 0 ? ncols : 1);
        long rk = CHUNK_FLOATS / (k > 0 ? k : 1);
        rb = rc < rk ? rc : rk;
    }
    if (rb < 1)
        rb = 1;
    return rb < rows ? rb : rows;
}

size_t node_floats(const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    size_t k = shape_numel(&n->shape);
    if (!node_chunked(g, n))
        return k;
    if (n->op == OP_IM2COL)
        return (size_t)block_rows(g, n) * (size_t)n->shape.dim[n->shape.rank - 1];
    return k / (size_t)n->shape.dim[0] * (size_t)chunk_images(n);
}

/* Claims col2im's input product (once its only reader, never kept,
 * computed from a batch-leading gradient and an unbatched weight), and an
 * im2col read once, by a GEMM with an epilogue or a weight gradient. */
static bool fuse_conv(Graph *g, const int *uses, const bool *keep)
{
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *c = &g->nodes[id];
        if (c->op == OP_MATMUL) {
            NodeId x = c->in[c->iattr[0] ? 1 : 0];
            Node *xn = NODE(g, x);
            if (xn->op != OP_IM2COL || uses[x] != 1 || keep[x] || xn->kernel ||
                xn->bmask != 1u)
                continue;
            if (!c->iattr[0] && c->kernel && optab[NODE(g, c->kernel)->op].kind == K_EWISE &&
                !NODE(g, c->in[1])->bmask) {
                xn->kernel = c->kernel;     /* the forward's A */
                changed = true;
            } else if (node_wgrad(g, c) && !c->kernel) {
                xn->kernel = (NodeId)id;    /* the weight gradient's B */
                changed = true;
            }
            continue;
        }
        if (c->op != OP_COL2IM || c->kernel)
            continue;
        NodeId m = c->in[0];
        Node *mn = NODE(g, m);
        if (mn->op != OP_MATMUL || uses[m] != 1 || keep[m] || mn->kernel || mn->iattr[0] ||
            mn->shape.rank < 3 || mn->bmask != 1u || mn->shape.dim[0] < 2)
            continue;
        const Node *a = NODE(g, mn->in[0]), *w = NODE(g, mn->in[1]);
        if (a->bmask != 1u || a->shape.rank < 3 || w->bmask)
            continue;
        mn->kernel = (NodeId)id;
        changed = true;
    }
    return changed;
}

/* A convolution's weight gradient whose dC is a 2x2 max pooling's
 * gradient that only it and reductions read (node_pool_wgrad: a first
 * convolution's, without an input gradient): the pooling's gradient
 * joins the weight gradient's kernel, which takes each window's shares
 * from the pooling's input and output gradient as it sums
 * (nnc_conv_wgrad_pool), so dC is never stored; the bias gradient's
 * sum rides along. The bits are those of the sum over a stored dC. */
static bool fuse_pool_wgrad(Graph *g, const bool *keep)
{
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        Node *c = &g->nodes[id];
        if (c->kernel || !node_wgrad(g, c))
            continue;
        NodeId d = c->in[0];
        if (node_pool_wgrad(g, c, NULL) != d || NODE(g, d)->kernel || keep[d])
            continue;
        bool riders = true;     /* every other reader rides on d's kernel */
        for (int r = d + 1; r < g->nnodes; r++) {
            const Node *n = &g->nodes[r];
            for (int i = 0; i < n->nin && r != id; i++)
                riders &= n->in[i] != d || (i == 0 && n->kernel == d);
        }
        if (!riders)
            continue;
        NODE(g, d)->kernel = (NodeId)id;
        for (int r = d + 1; r < g->nnodes; r++)   /* the bias gradient's sum */
            if (g->nodes[r].kernel == d && optab[g->nodes[r].op].kind == K_REDUCE)
                g->nodes[r].kernel = (NodeId)id;
        changed = true;
    }
    return changed;
}

/* A layernorm layer's backward B = (dy, x, gamma) -> dx (F_PARAMRIDER):
 * gamma's gradient (LAYERNORM_DGAMMA of the same dy and x) and beta's (a
 * sum of dy over its rows, not riding elsewhere) join B's kernel, which
 * then reads dy and x once for all three (nnc_layernorm_affine_back); the
 * bits are those of the three kernels apart. */
static bool fuse_param_riders(Graph *g)
{
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *b = &g->nodes[id];
        if (!(optab[b->op].flags & F_PARAMRIDER) || b->kernel)
            continue;
        NodeId dy = b->in[0], x = b->in[1];
        const Node *dyn = NODE(g, dy);
        bool gamma = false, beta = false;
        for (int r = 1; r < g->nnodes; r++) {
            Node *n = &g->nodes[r];
            if (n->kernel || r == id)
                continue;
            if (!gamma && n->op == OP_LAYERNORM_DGAMMA && n->in[0] == dy && n->in[1] == x &&
                n->fattr[0] == b->fattr[0]) {
                n->kernel = (NodeId)id;
                n->sibling = true;      /* stored: a gradient */
                gamma = changed = true;
            } else if (!beta && n->op == OP_SUM_TO && n->in[0] == dy && n->shape.rank == 1 &&
                       !n->bmask &&
                       n->shape.dim[0] == dyn->shape.dim[dyn->shape.rank - 1]) {
                n->kernel = (NodeId)id;
                beta = changed = true;
            }
        }
    }
    return changed;
}

/* The loop kernel (its root) that an F_FWDSIDE node s can join as a
 * second output: an elementwise loop without a GEMM over s's shape, one
 * of whose members reads s's input, and that runs before s's users (it
 * does: s's users follow s, which follows its input's readers in the
 * forward). The loop of the activation s is the derivative of (the same
 * source location) comes first: they share their work. NODE_NONE if
 * none. */
static bool same_loc(Loc a, Loc b)
{
    return a.src && a.src == b.src && a.line == b.line && a.col == b.col;
}

/* The first suitable loop with a member reading x (only the members
 * from s's source location when `paired`). */
static NodeId fwdside_reader(const Graph *g, const Node *s, NodeId x, const bool *has_gemm,
                             bool paired)
{
    for (int id = 1; id < g->nnodes; id++) {
        const Node *m = &g->nodes[id];
        if (m == s || optab[m->op].kind != K_EWISE || (optab[m->op].flags & F_FWDSIDE) ||
            (paired && !same_loc(m->loc, s->loc)))
            continue;
        bool reads = false;
        for (int k = 0; k < m->nin; k++)
            reads |= m->in[k] == x;
        if (!reads)
            continue;
        NodeId root = m->kernel ? m->kernel : (NodeId)id;
        const Node *r = NODE(g, root);
        if (optab[r->op].kind == K_EWISE && !has_gemm[root] && !node_chunked(g, r) &&
            graph_same_layout(r, s) && root < (NodeId)(s - g->nodes))
            return root;
    }
    return NODE_NONE;
}

static NodeId fwdside_host(const Graph *g, const Node *s, const bool *has_gemm)
{
    NodeId x = s->in[0];
    for (int pass = 0; pass < 2; pass++) {
        NodeId root = fwdside_reader(g, s, x, has_gemm, pass == 0);
        if (root)
            return root;
    }
    return NODE_NONE;
}
/* Once f'(x) has joined the loop over f(x), every reader of x may be in
 * that loop: then x's own kernel (its product and epilogue, say a dense
 * layer's x W^T + b) joins it too, as the head of one GEMM epilogue that
 * computes f(x) and f'(x) while the rows are in cache and never stores x.
 * Not when x is kept, carries sums, or the loop has a product already. */
static bool merge_producer(Graph *g, NodeId host, NodeId x, const int *uses, const bool *keep,
                           bool *has_gemm)
{
    const Node *xn = NODE(g, x);
    if (xn->kernel || keep[x] || optab[xn->op].kind != K_EWISE || has_gemm[host] ||
        !graph_same_layout(xn, NODE(g, host)) || node_chunked(g, xn))
        return false;
    int reads = 0;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if ((NodeId)id == x || n->kernel == x) {
            if (optab[n->op].kind == K_REDUCE || node_chunked(g, n))
                return false;
            continue;
        }
        if ((NodeId)id != host && n->kernel != host)
            continue;
        for (int k = 0; k < n->nin; k++)
            reads += n->in[k] == x;
    }
    if (reads != uses[x])
        return false;
    for (int id = 1; id < g->nnodes; id++) {
        Node *n = &g->nodes[id];
        if (n->kernel == x)
            n->kernel = host;
    }
    g->nodes[x].kernel = host;
    has_gemm[host] |= has_gemm[x];
    return true;
}

/* Moves each F_FWDSIDE node that the chains put into its user's kernel,
 * reading inputs from memory (none computed in that kernel), into a
 * forward loop over its input as a stored second output (Node.sibling).
 * Otherwise (no such loop, or its input computed in the user's kernel, as
 * in a recomputed forward) it stays where it is. */
static bool fuse_fwdside(Graph *g, const int *uses, const bool *keep, bool *has_gemm)
{
    bool changed = false;
    for (int id = 1; id < g->nnodes; id++) {
        Node *s = &g->nodes[id];
        if (!(optab[s->op].flags & F_FWDSIDE) || s->nin != 1)
            continue;
        bool alone = true;
        for (int m = 1; m < g->nnodes && alone; m++)
            alone = g->nodes[m].kernel != (NodeId)id;
        const Node *x = NODE(g, s->in[0]);
        if (!alone || (s->kernel && x->kernel == s->kernel))
            continue;
        NodeId host = fwdside_host(g, s, has_gemm);
        /* x stored, or computed in the host's loop */
        if (host && (!x->kernel || x->sibling || x->kernel == host)) {
            s->kernel = host;
            s->sibling = true;
            merge_producer(g, host, s->in[0], uses, keep, has_gemm);
            changed = true;
        }
    }
    return changed;
}

bool pass_fuse(Graph *g)
{
    int nn = g->nnodes;
    int *uses = xcalloc((size_t)nn, sizeof(int));
    bool *keep = xcalloc((size_t)nn, sizeof(bool));
    bool *has_gemm = xcalloc((size_t)nn, sizeof(bool));
    bool changed = false;
    for (int id = 1; id < nn; id++) {
        Node *n = &g->nodes[id];
        n->kernel = NODE_NONE;
        n->sibling = false;
        for (int k = 0; k < n->nin; k++)
            uses[n->in[k]]++;
    }
    keep[g->output] = keep[g->loss] = true;
    for (int i = 0; i < g->nparams && g->grads; i++)
        keep[g->grads[i]] = true;

    /* elementwise chains and GEMM epilogues: consumers first */
    for (int id = nn - 1; id >= 1; id--) {
        Node *c = &g->nodes[id];
        if (optab[c->op].kind != K_EWISE)
            continue;
        NodeId root = c->kernel ? c->kernel : (NodeId)id;
        for (int k = 0; k < c->nin; k++) {
            NodeId p = c->in[k];
            Node *pn = NODE(g, p);
            if (keep[p] || uses[p] != 1 || pn->kernel || !graph_same_layout(pn, c))
                continue;
            if (optab[pn->op].kind == K_EWISE) {
                pn->kernel = root;
                changed = true;
            } else if (optab[pn->op].kind == K_CONTRACT && !has_gemm[root] &&
                       (pn->shape.rank == 2 || !pn->iattr[0])) {
                pn->kernel = root;
                has_gemm[root] = true;
                changed = true;
            }
        }
    }
    changed |= fuse_fwdside(g, uses, keep, has_gemm);
    /* reductions riding on the loop that computes their input */
    for (int id = 1; id < nn; id++) {
        Node *s = &g->nodes[id];
        if (optab[s->op].kind != K_REDUCE)
            continue;
        const Node *r = NODE(g, s->in[0]);
        if (r->kernel == NODE_NONE && optab[r->op].kind == K_EWISE) {
            s->kernel = s->in[0];
            changed = true;
        } else if ((optab[r->op].flags & F_SUMRIDER) && !has_gemm[s->in[0]] &&
                   s->shape.rank == 1 && !s->bmask &&
                   s->shape.dim[0] == r->shape.dim[r->shape.rank - 1]) {
            /* a per-channel sum (a bias gradient) over, say, a pooling
             * gradient: summed as the op writes its output (has_gemm: one
             * rider; the emitter hands its buffer to the op's rule in
             * Emit.sum) */
            s->kernel = s->in[0];
            has_gemm[s->in[0]] = true;
            changed = true;
        }
    }
    changed |= fuse_conv(g, uses, keep);
    changed |= fuse_pool_wgrad(g, keep);
    changed |= fuse_param_riders(g);
    changed |= fuse_updates(g);
    free(uses);
    free(keep);
    free(has_gemm);
    return changed;
}
