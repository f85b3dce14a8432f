/*
 * schedule.c - kernels and lifetimes of a program (the training step, or
 * predict), and the static layout of parameters, gradients and state.
 *
 * requires: fuse done (Node.kernel) / produces: a Plan, a table that
 * memplan.c completes with offsets and plan_check() verifies.
 *
 * A program is the set of nodes its results need: the loss and every
 * update for training, the output for predict. Kernels run in the order
 * of their roots' ids, which is topological: a kernel's members have
 * smaller ids than its root, and the reductions that ride on a loop only
 * read that loop's result. An update of one parameter (fuse.c leaves
 * them apart for large models) moves up to right after the last kernel
 * that reads its parameter or computes its gradient, and after the loss
 * (whose check precedes every update), so it reads the gradient while
 * that is in cache; nothing reads what an update writes in the step.
 * Under global gradient clipping every update waits for all gradients. Constants are inlined into their users, so
 * they have neither kernel nor buffer. A node's lifetime is [the kernel
 * that writes it, the last kernel that reads it], in kernel indices.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

size_t align_floats(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* of_grad[id]: the first parameter whose gradient node is id, or -1 (a
 * table, so that looking up every node is linear in the graph). */
static int *grad_index(const Graph *g)
{
    int *of_grad = xmalloc((size_t)g->nnodes * sizeof *of_grad);
    NNC_ASSERT(of_grad);
    for (int id = 0; id < g->nnodes; id++)
        of_grad[id] = -1;
    for (int i = g->nparams - 1; i >= 0 && g->grads; i--)
        if (g->grads[i] != NODE_NONE)
            of_grad[g->grads[i]] = i;
    return of_grad;
}

void layout_build(const Graph *g, ModelLayout *l)
{
    memset(l, 0, sizeof *l);
    l->param_off = xcalloc((size_t)g->nnodes, sizeof(size_t));
    l->grad_off = xcalloc((size_t)g->nnodes, sizeof(size_t));
    for (int i = 0; i < g->nparams; i++) {
        size_t n = align_floats(shape_numel(&NODE(g, g->params[i])->shape));
        l->param_off[g->params[i]] = l->param_floats;
        l->param_floats += n;
        if (g->grads && g->grads[i] == NODE_NONE)
            continue;   /* not trained: no gradient, no optimizer state */
        l->grad_off[g->params[i]] = l->grad_floats;
        l->grad_floats += n;
    }
    for (int id = 1; id < g->nnodes; id++)
        if (optab[g->nodes[id].op].kind == K_UPDATE)
            l->nstate = g->nodes[id].iattr[0];
    /* gradients can sit at their parameter's place if each is a computed
     * node of its own */
    l->grads_exclusive = g->grads != NULL;
    int *of_grad = grad_index(g);
    for (int i = 0; i < g->nparams && l->grads_exclusive; i++) {
        NodeId d = g->grads[i];
        if (d == NODE_NONE)
            continue;
        if (optab[NODE(g, d)->op].kind == K_SOURCE || of_grad[d] != i)
            l->grads_exclusive = false;
    }
    free(of_grad);
}

void layout_free(ModelLayout *l)
{
    free(l->param_off);
    free(l->grad_off);
    memset(l, 0, sizeof *l);
}

double node_flops(const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    if (n->op == OP_BMATMUL) {  /* batched products: 2mnk per matrix */
        const Node *a = NODE(g, n->in[0]);
        return 2.0 * (double)shape_numel(&n->shape) *
               a->shape.dim[a->shape.rank - (n->iattr[0] ? 2 : 1)];
    }
    if (n->op == OP_ATTENTION || n->op == OP_ATTENTION_BACK)
        return attention_flops(g, n);
    /* the layernorm layer as the ops it replaced counted: layernorm, * gamma
     * and + beta; dx of dy gamma; gamma's gradient as dy xhat and its sum */
    if (n->op == OP_LAYERNORM_AFFINE)
        return 3.0 * (double)shape_numel(&n->shape);
    if (n->op == OP_LAYERNORM_AFFINE_BACK || n->op == OP_LAYERNORM_DGAMMA)
        return 2.0 * (double)shape_numel(&NODE(g, n->in[0])->shape);
    if (n->op == OP_ATTENTION_DECODE)   /* q.k and p v over (T + 1) / 2 positions on average */
        return 4.0 * (double)shape_numel(&n->shape) * (n->iattr[1] + 1) / 2.0;
    switch (optab[n->op].kind) {
    case K_SOURCE:
        return 0;
    case K_CONTRACT: {
        const Node *a = NODE(g, n->in[0]);
        double last = a->shape.dim[a->shape.rank - 1];
        double k = n->iattr[0] ? (double)shape_numel(&a->shape) / last : last;
        return 2.0 * (double)shape_numel(&n->shape) * k;
    }
    case K_LOSS:
    case K_REDUCE:
        return (double)shape_numel(&NODE(g, n->in[0])->shape);
    default:
        return (double)shape_numel(&n->shape);
    }
}

/* Marks what a program needs: ancestors of its results. */
static void mark_program(const Graph *g, bool predict, bool *in)
{
    if (predict) {
        in[g->output] = true;
    } else {
        in[g->loss] = true;
        for (int id = 1; id < g->nnodes; id++)
            if (optab[g->nodes[id].op].kind == K_UPDATE)
                in[id] = true;
    }
    for (int id = g->nnodes - 1; id >= 1; id--)
        if (in[id])
            for (int k = 0; k < g->nodes[id].nin; k++)
                in[g->nodes[id].in[k]] = true;
}

size_t plan_naive_floats(const Graph *g, bool predict)
{
    bool *in = xcalloc((size_t)g->nnodes, sizeof(bool));
    mark_program(g, predict, in);
    size_t total = 0;
    for (int id = 1; id < g->nnodes; id++) {
        OpKind k = optab[g->nodes[id].op].kind;
        if (in[id] && k != K_SOURCE && k != K_UPDATE)
            total += align_floats(node_floats(g, (NodeId)id));
    }
    free(in);
    return total;
}

/* The kernel's root is a plain loop (no GEMM head): an input that dies in
 * it and has the root's layout can be overwritten in place, since every
 * iteration reads element i of it before writing element i. */
static void find_in_place(const Graph *g, Plan *p, const Kernel *k, const int *kidx)
{
    NodeId r = k->root;
    if (p->region[r] == REG_ARENA && optab[NODE(g, r)->op].kind == K_MOVE && k->n == 1) {
        /* a reshape is a view: it takes over a buffer that dies here */
        NodeId x = NODE(g, r)->in[0];
        if (p->region[x] == REG_ARENA && p->last[x] == kidx[r] && p->def[x] < kidx[r])
            p->shares[r] = x;
        return;
    }
    if (p->region[r] == REG_ARENA && NODE(g, r)->op == OP_MAXPOOL_BACK) {
        /* the runtime writes a 2x2 stride-2 window's gradient over the
         * window's x (nnc_maxpool_back_sum, dx == x): x may die here */
        const Node *n = NODE(g, r);
        NodeId x = n->in[1];
        if (n->iattr[0] == 2 && n->iattr[1] == 2 && n->iattr[2] == 2 && n->iattr[3] == 2 &&
            p->region[x] == REG_ARENA && p->last[x] == kidx[r] && p->def[x] < kidx[r] &&
            graph_same_layout(NODE(g, x), n))
            p->shares[r] = x;
        return;
    }
    if (p->region[r] != REG_ARENA || optab[NODE(g, r)->op].kind != K_EWISE)
        return;
    for (int m = 0; m < k->n; m++)
        if (optab[NODE(g, p->members[k->first + m])->op].kind == K_CONTRACT)
            return;
    for (int m = 0; m < k->n; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        if (optab[n->op].kind == K_REDUCE)
            continue; /* riders read the loop's value, not memory */
        for (int i = 0; i < n->nin; i++) {
            NodeId x = n->in[i];
            if (p->region[x] == REG_ARENA && p->last[x] == kidx[r] && p->def[x] < kidx[r] &&
                graph_same_layout(NODE(g, x), NODE(g, r)) && !p->shares[r]) {
                p->shares[r] = x;
                return;
            }
        }
    }
}

/* Moves each update kernel (roots only, before members are listed) right
 * after the last of: its gradient's kernel, every other kernel reading its
 * parameter, and the loss; updates that follow the same kernel keep their
 * order. Unless fuse.c made them one. One pass over the nodes and one over
 * the kernels (a counting sort by the kernel to follow). */
static void schedule_updates(const Graph *g, Plan *p, int *kidx)
{
    int nk = p->nkernels, nn = g->nnodes;
    for (int id = 1; id < nn; id++)
        if (optab[g->nodes[id].op].kind == K_UPDATE && g->nodes[id].kernel)
            return; /* fused into one update over every parameter */
    /* reader[id]: the last non-update kernel that reads node id */
    int *reader = xmalloc((size_t)nn * sizeof *reader);
    int *after = xmalloc((size_t)nk * sizeof *after);
    int *start = xcalloc((size_t)nk + 2, sizeof *start);
    Kernel *order = xmalloc((size_t)nk * sizeof *order);
    for (int id = 0; id < nn; id++)
        reader[id] = -1;
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        if (!p->in_prog[id] || optab[n->op].kind == K_UPDATE)
            continue;
        int k = kidx[n->kernel ? n->kernel : (NodeId)id];
        for (int i = 0; i < n->nin; i++)
            if (k > reader[n->in[i]])
                reader[n->in[i]] = k;
    }
    /* after[k]: the kernel update k follows, or -2 for other kernels;
     * start[]: bucket offsets, bucket 0 before every kernel (after -1) */
    for (int k = 0; k < nk; k++) {
        const Node *u = NODE(g, p->kernels[k].root);
        after[k] = -2;
        if (optab[u->op].kind != K_UPDATE)
            continue;
        NodeId grad = u->in[1];
        int kg = kidx[NODE(g, grad)->kernel ? NODE(g, grad)->kernel : grad];
        after[k] = kidx[g->loss];
        if (kg > after[k])
            after[k] = kg;
        if (reader[u->in[0]] > after[k])
            after[k] = reader[u->in[0]];
        start[after[k] + 2]++;
    }
    /* start[b]: where bucket b (the updates with after == b - 1) begins */
    for (int b = 1; b <= nk + 1; b++)
        start[b] += start[b - 1];
    int *updates = xmalloc((size_t)(start[nk + 1] > 0 ? start[nk + 1] : 1) * sizeof *updates);
    int *next = xmalloc((size_t)(nk + 1) * sizeof *next);
    memcpy(next, start, (size_t)(nk + 1) * sizeof *next);
    for (int k = 0; k < nk; k++)
        if (after[k] != -2)
            updates[next[after[k] + 1]++] = k;
    /* kernels in order, each followed by the updates that follow it */
    int out = 0;
    for (int k = -1; k < nk; k++) {
        if (k >= 0 && after[k] != -2)
            continue;
        if (k >= 0)
            order[out++] = p->kernels[k];
        for (int i = start[k + 1]; i < start[k + 2]; i++)
            order[out++] = p->kernels[updates[i]];
    }
    NNC_ASSERT(out == nk);
    for (int k = 0; k < nk; k++) {
        p->kernels[k] = order[k];
        kidx[order[k].root] = k;
    }
    free(reader);
    free(after);
    free(start);
    free(order);
    free(updates);
    free(next);
}

void plan_build(const Graph *g, const ModelLayout *l, bool predict, Plan *p)
{
    int nn = g->nnodes;
    memset(p, 0, sizeof *p);
    p->predict = predict;
    p->in_prog = xcalloc((size_t)nn, sizeof(bool));
    p->region = xcalloc((size_t)nn, sizeof(Region));
    p->offset = xcalloc((size_t)nn, sizeof(size_t));
    p->def = xmalloc((size_t)nn * sizeof(int));
    p->last = xmalloc((size_t)nn * sizeof(int));
    p->shares = xcalloc((size_t)nn, sizeof(NodeId));
    p->kernels = xcalloc((size_t)nn, sizeof(Kernel));
    p->members = xcalloc((size_t)nn, sizeof(NodeId));
    int *kidx = xmalloc((size_t)nn * sizeof(int));
    int *of_grad = p->grad_of = grad_index(g);
    mark_program(g, predict, p->in_prog);
    for (int id = 1; id < nn; id++) {
        /* a fused node's kernel is in every program the node is in; riders
         * that a program does not need are simply left out of it */
        NNC_ASSERT(!p->in_prog[id] || !g->nodes[id].kernel ||
                   p->in_prog[g->nodes[id].kernel]);
        kidx[id] = -1;
        p->def[id] = p->last[id] = -1;
    }
    /* kernels in root order; members in id order */
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        if (!p->in_prog[id] || optab[n->op].kind == K_SOURCE || n->kernel)
            continue;
        kidx[id] = p->nkernels;
        p->kernels[p->nkernels++].root = (NodeId)id;
    }
    if (!predict && g->opt.clipnorm <= 0)
        schedule_updates(g, p, kidx);
    /* members: a counting sort of the nodes by kernel, in id order */
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        NodeId root = n->kernel ? n->kernel : (NodeId)id;
        if (p->in_prog[id] && kidx[root] >= 0)
            p->kernels[kidx[root]].n++;
    }
    for (int k = 0; k < p->nkernels; k++) {
        p->kernels[k].first = p->nmembers;
        p->nmembers += p->kernels[k].n;
        p->kernels[k].n = 0;
    }
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        NodeId root = n->kernel ? n->kernel : (NodeId)id;
        if (!p->in_prog[id] || kidx[root] < 0)
            continue;
        Kernel *kr = &p->kernels[kidx[root]];
        p->members[kr->first + kr->n++] = (NodeId)id;
        kidx[id] = kidx[root];
    }
    /* regions */
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        Region r = REG_NONE;
        if (!p->in_prog[id])
            r = REG_NONE;
        else if (n->role == R_INPUT)
            r = REG_INPUT;
        else if (n->role == R_TARGET)
            r = REG_TARGET;
        else if (n->role == R_PARAM)
            r = REG_PARAM;
        else if (n->role == R_CONST || optab[n->op].kind == K_UPDATE)
            r = REG_NONE;
        else if (n->kernel && optab[n->op].kind != K_REDUCE && !node_chunked(g, n) &&
                 !n->sibling)
            r = REG_NONE; /* computed inside its kernel's loop */
        else if (predict && (NodeId)id == g->output)
            r = REG_OUTPUT;
        else if (!predict && l->grads_exclusive && of_grad[id] >= 0)
            r = REG_GRAD;
        else
            r = REG_ARENA;
        p->region[id] = r;
        if (r == REG_PARAM)
            p->offset[id] = l->param_off[id];
        if (r == REG_GRAD)
            p->offset[id] = l->grad_off[g->params[of_grad[id]]];
        if (r != REG_NONE && kidx[id] >= 0)
            p->def[id] = p->last[id] = kidx[id];
        if (p->in_prog[id] && optab[n->op].kind != K_SOURCE)
            p->flops += node_flops(g, (NodeId)id);
    }
    /* lifetimes: a buffer lives until its last reader */
    for (int id = 1; id < nn; id++) {
        const Node *n = &g->nodes[id];
        if (!p->in_prog[id] || kidx[id] < 0)
            continue;
        for (int k = 0; k < n->nin; k++) {
            NodeId x = n->in[k];
            if (p->region[x] != REG_NONE && kidx[id] > p->last[x])
                p->last[x] = kidx[id];
        }
    }
    if (!predict)
        p->last[g->loss] = p->nkernels - 1; /* returned at the end */
    for (int k = 0; k < p->nkernels; k++)
        find_in_place(g, p, &p->kernels[k], kidx);
    free(kidx);
}

void plan_free(Plan *p)
{
    free(p->in_prog);
    free(p->region);
    free(p->offset);
    free(p->def);
    free(p->last);
    free(p->shares);
    free(p->grad_of);
    free(p->kernels);
    free(p->members);
    memset(p, 0, sizeof *p);
}
