/*
 * emit_kernel.c - the statements of one kernel of a plan (schedule.c),
 * as a block headed by a comment with the .nn line it comes from:
 *  - a loop kernel evaluates its fused elementwise members into locals
 *    (v12 = ...) and stores the root, plus any sums riding along (K_REDUCE
 *    members: fuse.c lets a reduction of a loop's result ride in it);
 *  - a GEMM with an epilogue computes row blocks with nnc_sgemm and
 *    applies the loop to each block while it is in cache;
 *  - other ops (softmax, losses, plain GEMMs, pooling, updates) emit their
 *    own statements through their op's emit rule, given the buffers of
 *    their inputs and output (and, for an F_SUMRIDER op, the buffer of
 *    the sum riding on it, in Emit.sum).
 * Nothing here names an op: what a kernel may hold is the op table's
 * business (kinds and flags), and what it computes is the emit rules'.
 *
 * Buffers are named by region: x, y, out (the caller's), W_name and
 * G_name (macros into ctx->mem), tN (arena buffers, declared at the top
 * of each program by emit_buffers).
 */
#include <string.h>

#include "codegen.h"

/* The parameter whose gradient `id` is (the plan's table: a scan over
 * the parameters per use made emitting quadratic in the model). */
static const char *grad_name(const Graph *g, const Plan *p, NodeId id)
{
    NNC_ASSERT(p->grad_of[id] >= 0);
    return NODE(g, g->params[p->grad_of[id]])->name;
}

const char *emit_buf(const Graph *g, const Plan *p, NodeId id)
{
    const Node *n = NODE(g, id);
    if (optab[n->op].kind == K_UPDATE)
        return emit_buf(g, p, n->in[0]);
    switch (p->region[id]) {
    case REG_INPUT:
        return "x";
    case REG_TARGET:
        return "y";
    case REG_OUTPUT:
        return "out";
    case REG_PARAM:
        return emit_str("W_%s", emit_ident(n->name));
    case REG_GRAD:
        return emit_str("G_%s", emit_ident(grad_name(g, p, id)));
    case REG_ARENA:
    case REG_NONE:
        break;
    }
    return emit_str("t%u", (unsigned)id);
}

/* The value of a rank-0 node, for emit rules that take scalars by value. */
static const char *scalar_of(const Graph *g, const Plan *p, NodeId id)
{
    if (NODE(g, id)->role == R_CONST)
        return emit_float(NODE(g, id)->fattr[0]);
    return emit_str("%s[0]", emit_buf(g, p, id));
}

/* ---- kernels ---------------------------------------------------------------- */

/* The element index into `in` (broadcast to out) inside the loop nest i0,
 * i1, ... over out's dims. */
static void bcast_expr(Buf *b, const Node *out, const Node *in)
{
    int off = out->shape.rank - in->shape.rank;
    bool first = true;
    for (int d = 0; d < in->shape.rank; d++) {
        bool batch = in->bmask & (1u << d);
        if (in->shape.dim[d] == 1 && !batch)
            continue; /* broadcast: stride 0 */
        buf_printf(b, first ? "i%d" : " + i%d", d + off);
        for (int k = d + 1; k < in->shape.rank; k++)
            buf_printf(b, " * %s", emit_dim(in, k));
        first = false;
    }
    if (first)
        buf_puts(b, "0");
}

#define MAX_ALIAS 24

typedef struct KCtx {
    const Graph *g;
    const Plan *p;
    const Kernel *k;
    bool flat;          /* one loop over i, not a nest over i0, i1, ... */
    /* restrict-qualified local names of the buffers a loop touches: the
     * plan guarantees that buffers live in one kernel never overlap,
     * except a result computed in place of an input (same address: one
     * name), so the compiler may vectorize without alias checks */
    int nalias;
    char key[MAX_ALIAS][48], name[MAX_ALIAS][48], base[MAX_ALIAS][48];
    bool written[MAX_ALIAS];
} KCtx;

/* The restrict alias of node u's buffer in this loop. */
static const char *alias(KCtx *kc, NodeId u, bool write)
{
    const char *base = emit_buf(kc->g, kc->p, u);
    char key[48];
    if (kc->p->region[u] == REG_ARENA)
        snprintf(key, sizeof key, "a+%zu", kc->p->offset[u]);
    else
        snprintf(key, sizeof key, "%s", base);
    int i = 0;
    while (i < kc->nalias && strcmp(kc->key[i], key))
        i++;
    if (i == kc->nalias) {
        NNC_ASSERT(kc->nalias < MAX_ALIAS);
        snprintf(kc->key[i], sizeof kc->key[i], "%s", key);
        snprintf(kc->base[i], sizeof kc->base[i], "%s", base);
        snprintf(kc->name[i], sizeof kc->name[i], "r_%s", base);
        kc->written[i] = false;
        kc->nalias++;
    }
    kc->written[i] |= write;
    return kc->name[i];
}

/* Declares the aliases collected while writing `body`, then the body. */
static void flush_aliases(Emit *e, KCtx *kc, const Buf *body)
{
    for (int i = 0; i < kc->nalias; i++)
        emit_line(e, "%sfloat *restrict %s = %s;", kc->written[i] ? "" : "const ",
                  kc->name[i], kc->base[i]);
    if (body->len)
        buf_puts(e->out, body->data);
    kc->nalias = 0;
}

static bool is_member(const KCtx *kc, NodeId id)
{
    for (int m = 0; m < kc->k->n; m++)
        if (kc->p->members[kc->k->first + m] == id)
            return true;
    return false;
}

/* A member riding on the kernel's root: a sum of the root's value, kept
 * by the loop (or by an F_SUMRIDER op's rule) as it goes. */
static bool is_rider(const Graph *g, NodeId id)
{
    return optab[NODE(g, id)->op].kind == K_REDUCE;
}

/* The buffer of the rider of the kernel's (non-loop) root, or NULL. */
static const char *rider_buf(const KCtx *kc)
{
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        if (id != kc->k->root && is_rider(kc->g, id))
            return emit_buf(kc->g, kc->p, id);
    }
    return NULL;
}

static NodeId gemm_head(const KCtx *kc)
{
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        if (optab[NODE(kc->g, id)->op].kind == K_CONTRACT)
            return id;
    }
    return NODE_NONE;
}

/* Appends the element expression of operand `u` of a loop kernel. */
static void load(Buf *b, KCtx *kc, NodeId u)
{
    const Node *n = NODE(kc->g, u), *root = NODE(kc->g, kc->k->root);
    if (n->role == R_CONST) {
        buf_puts(b, emit_float(n->fattr[0]));
    } else if (is_member(kc, u) && optab[n->op].kind != K_CONTRACT) {
        buf_printf(b, "v%u", (unsigned)u);
    } else {
        const char *base = alias(kc, is_member(kc, u) ? kc->k->root : u, false);
        buf_printf(b, "%s[", base);
        if (kc->flat)
            buf_puts(b, n->shape.rank ? "i" : "0");
        else
            bcast_expr(b, root, n);
        buf_puts(b, "]");
    }
}

/* Stores member id's value (the root's, or a sibling's) at the loop's
 * element. */
static void store(Emit *e, KCtx *kc, NodeId id)
{
    Buf idx = {0};
    if (kc->flat)
        buf_puts(&idx, "i");
    else
        bcast_expr(&idx, NODE(kc->g, kc->k->root), NODE(kc->g, id));
    emit_line(e, "%s[%s] = v%u;", alias(kc, id, true), idx.data, (unsigned)id);
    buf_free(&idx);
}

/* The loop body: member values, the root's store, riders' sums. */
static void loop_body(Emit *e, KCtx *kc)
{
    const Graph *g = kc->g;
    NodeId r = kc->k->root;
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        const Node *n = NODE(g, id);
        if (optab[n->op].kind != K_EWISE)
            continue;
        Buf args[NNC_MAX_IN] = {{0}}, expr = {0};
        const char *a[NNC_MAX_IN];
        for (int k = 0; k < n->nin; k++) {
            load(&args[k], kc, n->in[k]);
            a[k] = args[k].data;
        }
        Buf *saved = e->out;
        e->out = &expr;
        optab[n->op].emit(e, g, n, a);
        e->out = saved;
        emit_line(e, "const float v%u = %s;", (unsigned)id, expr.data);
        for (int k = 0; k < n->nin; k++)
            buf_free(&args[k]);
        buf_free(&expr);
    }
    /* The root's store, unless only its riders read it: a plain loop
     * whose root no later kernel uses (a layernorm's dy * xhat, wanted
     * only for the sum that is gamma's gradient) computes the value for
     * them and writes nothing else. */
    bool riders = false;
    for (int m = 0; m < kc->k->n; m++)
        riders |= is_rider(g, kc->p->members[kc->k->first + m]);
    if (!riders || gemm_head(kc) != NODE_NONE || kc->p->region[r] != REG_ARENA ||
        kc->p->last[r] != (int)(kc->k - kc->p->kernels))
        store(e, kc, r);
    /* second outputs (an activation's derivative for the backward) */
    for (int m = 0; m < kc->k->n; m++)
        if (NODE(g, kc->p->members[kc->k->first + m])->sibling)
            store(e, kc, kc->p->members[kc->k->first + m]);
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        if (!is_rider(g, id))
            continue;
        Buf ridx = {0};
        bcast_expr(&ridx, NODE(g, r), NODE(g, id));
        emit_line(e, "%s[%s] += v%u;", alias(kc, id, true), ridx.data, (unsigned)r);
        buf_free(&ridx);
    }
}

static void zero_riders(Emit *e, const KCtx *kc)
{
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        if (is_rider(kc->g, id))
            emit_line(e, "memset(%s, 0, sizeof(float) * %s);", emit_buf(kc->g, kc->p, id),
                      emit_numel(NODE(kc->g, id)));
    }
}

/* May the kernel's innermost loop (over the root's last axis) run its
 * iterations as SIMD lanes (NNC_IVDEP)? Each writes the root's element of
 * its own; a rider adds into an element of its own only if it keeps the
 * root's last axis (a sum over the rows), not if it sums that axis away. */
static bool inner_independent(const KCtx *kc)
{
    const Node *r = NODE(kc->g, kc->k->root);
    int last = r->shape.rank > 0 ? r->shape.dim[r->shape.rank - 1] : 1;
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        const Node *n = NODE(kc->g, id);
        if (id == kc->k->root || !is_rider(kc->g, id) || last == 1)
            continue;
        if (n->shape.rank < 1 || n->shape.dim[n->shape.rank - 1] != last)
            return false;
    }
    return true;
}

/* A loop kernel: elementwise members (and riders), no GEMM. */
static void emit_loop(Emit *e, KCtx *kc)
{
    const Graph *g = kc->g;
    const Node *r = NODE(g, kc->k->root);
    bool riders = false;
    kc->flat = true;
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        const Node *n = NODE(g, id);
        bool rider = is_rider(g, id);
        riders |= rider;
        for (int i = 0; i < n->nin && !rider; i++) {
            const Node *in = NODE(g, n->in[i]);
            if (in->role != R_CONST && in->shape.rank > 0 && !graph_same_layout(in, r))
                kc->flat = false;
        }
    }
    if (riders)
        kc->flat = false;
    zero_riders(e, kc);
    Buf body = {0};
    Buf *out = e->out;
    e->out = &body;
    int depth = kc->flat || r->shape.rank == 0 ? 1 : r->shape.rank;
    if (kc->flat || r->shape.rank == 0) {
        kc->flat = true;
        /* only loops that can be large enough to gain from threads */
        if (shape_numel(&r->shape) >= 65536)
            emit_line(e, "NNC_PARALLEL_FOR(%s)", emit_numel(r));
        else
            emit_line(e, "NNC_IVDEP");
        emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(r));
        e->indent++;
    }
    for (int d = 0; !kc->flat && d < r->shape.rank; d++) {
        if (d == r->shape.rank - 1 && inner_independent(kc))
            emit_line(e, "NNC_IVDEP");
        emit_line(e, "for (int i%d = 0; i%d < %s; i%d++)%s", d, d, emit_dim(r, d), d,
                  d == r->shape.rank - 1 ? " {" : "");
        e->indent++;
    }
    loop_body(e, kc);
    e->indent--;
    emit_line(e, "}");
    e->indent -= depth - 1;
    e->out = out;
    flush_aliases(e, kc, &body);
    buf_free(&body);
}

/* "d0 * d1 * ..." of x's dims [0, upto) (the rows of its matrix view). */
static void lead_expr(char *b, size_t size, const Node *x, int upto)
{
    size_t at = 0;
    b[0] = '\0';
    for (int d = 0; d < upto && at < size; d++)
        at += (size_t)snprintf(b + at, size - at, d ? " * %s" : "%s", emit_dim(x, d));
}

/* The bias of a dense layer's epilogue that the runtime GEMM applies
 * itself (nnc_sgemm_bias), or NODE_NONE: the kernel is the product, an
 * F_EPIBIAS op adding a vector of one value per column, and optionally
 * an F_EPIRELU op of that sum as the root; nothing else, no riders. */
static NodeId bias_epilogue(const KCtx *kc, NodeId head, bool *relu)
{
    const Graph *g = kc->g;
    const Node *r = NODE(g, kc->k->root), *a = NODE(g, NODE(g, head)->in[0]);
    NodeId sum = kc->k->root;
    int ncols = r->shape.dim[r->shape.rank - 1];
    /* an im2col built in this kernel (the product's A) is a member too */
    int built = a->op == OP_IM2COL && a->kernel == kc->k->root;
    *relu = false;
    if (r->shape.rank < 2 || kc->k->n != (optab[r->op].flags & F_EPIRELU ? 3 : 2) + built)
        return NODE_NONE;
    if (optab[r->op].flags & F_EPIRELU) {
        sum = r->in[0];
        *relu = true;
    }
    const Node *s = NODE(g, sum);
    if (!(optab[s->op].flags & F_EPIBIAS) || !is_member(kc, sum) ||
        (s->in[0] == head) == (s->in[1] == head))
        return NODE_NONE;
    NodeId bias = s->in[0] == head ? s->in[1] : s->in[0];
    const Node *b = NODE(g, bias);
    if (b->role == R_CONST || is_member(kc, bias) || b->shape.rank != 1 ||
        b->shape.dim[0] != ncols || !graph_same_layout(s, NODE(g, head)))
        return NODE_NONE;
    return bias;
}

/* A GEMM whose result feeds a loop: row blocks of C are computed, then
 * the loop runs over the block while it is in cache. The result may be
 * an image (a convolution's (N, OH, OW, C), the GEMM's rows being
 * N*OH*OW): each row's position is then split back into its indices. */
static void emit_gemm_epilogue(Emit *e, KCtx *kc, NodeId head)
{
    const Graph *g = kc->g;
    const Node *h = NODE(g, head), *r = NODE(g, kc->k->root);
    const Node *a = NODE(g, h->in[0]), *b = NODE(g, h->in[1]);
    int ta = h->iattr[0], tb = h->iattr[1];
    int rank = r->shape.rank, ar = a->shape.rank;
    int ncols = r->shape.dim[rank - 1];
    long rows = (long)(shape_numel(&r->shape) / (size_t)(ncols > 0 ? ncols : 1));
    /* Row blocks of C (1 MiB) that the epilogue reads soon after the
     * GEMM wrote them: in a 1-2 MiB L2, else in L3. Not smaller: each call
     * packs B again, which for a transposed B (dense weights) costs as
     * much as a large part of the product. With 256 KiB blocks the GPT's
     * 768x512x128 layer (128 rows a call) ran 7-10% slower than with 512
     * or 768 rows on an AMD Zen 3 with a 512 KiB L2, epilogue included. */
    int rb = GEMM_EPI_FLOATS / (ncols > 0 ? ncols : 1);
    rb = rb >= 128 ? rb / 64 * 64 : rb < 1 ? 1 : rb;   /* whole tiles of rows */
    if (rb >= rows)
        rb = (int)rows;
    /* an im2col built a block of rows at a time in this kernel (fuse.c) */
    bool pro = !ta && a->op == OP_IM2COL && a->kernel == kc->k->root;
    if (pro)
        rb = (int)block_rows(g, a);
    char m[96], k[96], lda[32], ldb[32], aoff[64];
    lead_expr(m, sizeof m, r, rank - 1);
    if (ta)
        lead_expr(k, sizeof k, a, ar - 1);
    else
        snprintf(k, sizeof k, "%s", emit_dim(a, ar - 1));
    snprintf(lda, sizeof lda, "%s", emit_dim(a, ar - 1));
    snprintf(ldb, sizeof ldb, "%s", emit_dim(b, b->shape.rank - 1));
    const char *c = emit_buf(g, kc->p, kc->k->root);
    bool relu;
    NodeId bias = bias_epilogue(kc, head, &relu);
    if (pro && bias && !ta && tb) {
        /* a convolution's forward: the runtime builds the im2col's
         * blocks and multiplies them on its threads */
        emit_line(e, "nnc_conv_bias(%s, %d, (size_t)%s, %d, %s, %s, %s, %d, %s, %s);",
                  im2col_geom(g, a), ncols, m, rb, emit_buf(g, kc->p, a->in[0]),
                  emit_buf(g, kc->p, h->in[1]), emit_buf(g, kc->p, bias), relu,
                  emit_buf(g, kc->p, h->in[0]), c);
        return;
    }
    kc->flat = false;
    zero_riders(e, kc);
    emit_line(e, "for (int r0 = 0; r0 < %s; r0 += %d) {", m, rb);
    e->indent++;
    emit_line(e, "const int rb = %s - r0 < %d ? %s - r0 : %d;", m, rb, m, rb);
    if (pro) {
        emit_im2col_rows(e, g, a, emit_buf(g, kc->p, a->in[0]), emit_buf(g, kc->p, h->in[0]));
        snprintf(aoff, sizeof aoff, "0");
    } else {
        snprintf(aoff, sizeof aoff, "%s", ta ? "r0" : emit_str("(size_t)r0 * %s", lda));
    }
    if (bias) {
        /* the runtime adds the bias (and applies ReLU) to each rectangle
         * of C right after its product, on the thread that computed it;
         * a block of one or two rows (predict at batch 1) in registers */
        emit_line(e, "nnc_sgemm_bias(%d, %d, rb, %d, %s, %s + %s, %s, %s, %s, %s, %d, %s + (size_t)r0 * %d, %d);",
                  ta, tb, ncols, k, emit_buf(g, kc->p, h->in[0]), aoff, lda,
                  emit_buf(g, kc->p, h->in[1]), ldb, emit_buf(g, kc->p, bias), relu, c,
                  ncols, ncols);
        e->indent--;
        emit_line(e, "}");
        return;
    }
    emit_line(e, "nnc_sgemm(%d, %d, rb, %d, %s, 1.0f, %s + %s, %s, %s, %s, 0.0f, %s + (size_t)r0 * %d, %d);",
              ta, tb, ncols, k, emit_buf(g, kc->p, h->in[0]), aoff, lda,
              emit_buf(g, kc->p, h->in[1]), ldb, c, ncols, ncols);
    emit_line(e, "{");
    e->indent++;
    Buf body = {0};
    Buf *out = e->out;
    e->out = &body;
    if (rank == 2) {
        emit_line(e, "for (int i0 = r0; i0 < r0 + rb; i0++)");
    } else {
        /* row q = ((i0 * d1 + i1) * d2 + i2) ...: its indices, innermost first */
        emit_line(e, "for (int q = r0; q < r0 + rb; q++) {");
        e->indent++;
        for (int d = rank - 2; d >= 0; d--) {
            Buf ix = {0};
            buf_puts(&ix, "q");
            for (int j = d + 1; j < rank - 1; j++)
                buf_printf(&ix, " / %s", emit_dim(r, j));
            if (d > 0 && r->shape.dim[d] == 1)   /* a broadcast index: unused */
                emit_line(e, "const int i%d = %s %% %s;  (void)i%d;", d, ix.data,
                          emit_dim(r, d), d);
            else if (d > 0)
                emit_line(e, "const int i%d = %s %% %s;", d, ix.data, emit_dim(r, d));
            else
                emit_line(e, "const int i0 = %s;", ix.data);
            buf_free(&ix);
        }
    }
    /* the rank-2 row loop has no braces: its body is one level deeper */
    const char *in = rank == 2 ? "    " : "";
    if (inner_independent(kc))
        emit_line(e, "%sNNC_IVDEP", in);
    emit_line(e, "%sfor (int i%d = 0; i%d < %d; i%d++) {", in, rank - 1, rank - 1, ncols,
              rank - 1);
    e->indent += rank == 2 ? 2 : 1;
    loop_body(e, kc);
    e->indent -= rank == 2 ? 2 : 1;
    emit_line(e, "%s}", in);
    if (rank > 2) {
        e->indent--;
        emit_line(e, "}");
    }
    e->out = out;
    flush_aliases(e, kc, &body);
    buf_free(&body);
    e->indent--;
    emit_line(e, "}");
    e->indent--;
    emit_line(e, "}");
}

/* Statements of a kernel with a single, non-loop op. */
static void emit_single(Emit *e, const KCtx *kc, const Regions *rg)
{
    const Graph *g = kc->g;
    const Plan *p = kc->p;
    NodeId id = kc->k->root;
    const Node *n = NODE(g, id);
    const char *args[NNC_MAX_IN + 3];
    char st[3][160];
    for (int i = 0; i < n->nin; i++)
        args[i] = NODE(g, n->in[i])->shape.rank == 0 ? scalar_of(g, p, n->in[i])
                                                      : emit_buf(g, p, n->in[i]);
    args[n->nin] = emit_buf(g, p, id);
    if (optab[n->op].kind != K_UPDATE) {
        e->sum = rider_buf(kc);
        NNC_ASSERT(!e->sum || (optab[n->op].flags & (F_SUMRIDER | F_PARAMRIDER)));
        for (int m = 0; m < kc->k->n; m++) {    /* gamma's gradient */
            NodeId r = p->members[kc->k->first + m];
            if (r != id && !is_rider(g, r)) {
                NNC_ASSERT(optab[n->op].flags & F_PARAMRIDER);
                e->side = emit_buf(g, p, r);
            }
        }
        optab[n->op].emit(e, g, n, args);
        e->sum = e->side = NULL;
        return;
    }
    if (kc->k->n > 1) {
        /* one update over the whole parameter region */
        Node all = *n;
        all.shape.rank = 1;
        all.shape.dim[0] = (int)(rg->grads);
        all.bmask = 0;
        args[0] = args[2] = "ctx->mem";
        args[1] = emit_str("(ctx->mem + %zu)", rg->grads);
        for (int s = 0; s < n->iattr[0] && s < 3; s++) {
            snprintf(st[s], sizeof st[s], "(ctx->mem + %zu)",
                     rg->state + (size_t)s * rg->grads);
            args[n->nin + 1 + s] = st[s];
        }
        optab[n->op].emit(e, g, &all, args);
        return;
    }
    for (int s = 0; s < n->iattr[0] && s < 3; s++) {
        snprintf(st[s], sizeof st[s], "S%d_%s", s, emit_ident(n->name));
        args[n->nin + 1 + s] = st[s];
    }
    optab[n->op].emit(e, g, n, args);
}

static void kernel_comment(Emit *e, const Graph *g, const Plan *p, const Kernel *k, int index)
{
    const Node *r = NODE(g, k->root);
    Buf c = {0};
    buf_printf(&c, "/* %d. %s %s%s:", index, emit_loc(r->loc), r->what ? r->what : "",
               r->is_grad ? " (backward)" : "");
    for (int m = 0; m < k->n && optab[r->op].kind != K_UPDATE; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        buf_printf(&c, "%s%s", m ? " + " : " ", op_name(n->op));
    }
    if (optab[r->op].kind == K_UPDATE)
        buf_printf(&c, " %s", op_name(r->op));
    if (optab[r->op].kind == K_UPDATE)
        buf_printf(&c, " of %s", k->n > 1 ? "every parameter" : r->name);
    else
        buf_printf(&c, " -> %s %s", emit_buf(g, p, k->root), shape_str(&r->shape));
    /* other source lines folded into this kernel */
    for (int m = 0; m < k->n && optab[r->op].kind != K_UPDATE; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        if (n->loc.src && (n->loc.line != r->loc.line || n->loc.col != r->loc.col))
            buf_printf(&c, "; %s at %s", op_name(n->op), emit_loc(n->loc));
    }
    buf_puts(&c, " */");
    emit_line(e, "%s", c.data);
    buf_free(&c);
}

/* col2im(dC W) a chunk of images at a time (fuse.c, node_chunked): the
 * product of each chunk into its chunk-sized buffer, then its col2im,
 * both under the chunk's image count cn in place of nb. */
static void emit_chunked_col2im(Emit *e, const KCtx *kc)
{
    const Graph *g = kc->g;
    const Plan *p = kc->p;
    const Node *c = NODE(g, kc->k->root), *m = NODE(g, c->in[0]);
    const Node *dy = NODE(g, m->in[0]);
    int ch = chunk_images(m);
    size_t dy_img = shape_numel(&dy->shape) / (size_t)dy->shape.dim[0];
    size_t dx_img = shape_numel(&c->shape) / (size_t)c->shape.dim[0];
    char dyb[96], wb[96], mb[96], dxb[96];
    snprintf(dyb, sizeof dyb, "(%s + (size_t)c0 * %zu)", emit_buf(g, p, m->in[0]), dy_img);
    snprintf(wb, sizeof wb, "%s", emit_buf(g, p, m->in[1]));
    snprintf(mb, sizeof mb, "%s", emit_buf(g, p, c->in[0]));
    snprintf(dxb, sizeof dxb, "(%s + (size_t)c0 * %zu)", emit_buf(g, p, kc->k->root), dx_img);
    emit_line(e, "/* %d image%s at a time: each chunk's product is read from cache */", ch,
              ch > 1 ? "s" : "");
    const Node *w = NODE(g, m->in[1]);
    if (m->op == OP_MATMUL && !m->iattr[0] && !m->iattr[1] && w->shape.rank == 2 &&
        dy->shape.rank == 4 && w->shape.dim[0] == dy->shape.dim[3] &&
        (size_t)w->shape.dim[1] * (size_t)dy->shape.dim[1] * (size_t)dy->shape.dim[2] ==
            shape_numel(&m->shape) / (size_t)m->shape.dim[0]) {
        /* the runtime runs the chunks on its threads */
        emit_line(e, "nnc_conv_dgrad(nb, %d, %s, %d, %s, %s, %s, %s);", ch, im2col_geom(g, c),
                  w->shape.dim[0], emit_buf(g, p, m->in[0]), wb, mb,
                  emit_buf(g, p, kc->k->root));
        return;
    }
    emit_line(e, "for (int c0 = 0; c0 < nb; c0 += %d) {", ch);
    e->indent++;
    emit_line(e, "const int cn = nb - c0 < %d ? nb - c0 : %d;", ch, ch);
    const char *was = emit_batch_as("cn");
    const char *ma[3] = {dyb, wb, mb}, *ca[2] = {mb, dxb};
    optab[m->op].emit(e, g, m, ma);
    optab[c->op].emit(e, g, c, ca);
    emit_batch_as(was);
    e->indent--;
    emit_line(e, "}");
}

/* A convolution's weight gradient dW = dC^T col (node_wgrad): the
 * runtime sums it over blocks of col's rows (block_rows), in fixed groups
 * of blocks that run on its threads (nnc_conv_wgrad), from the saved
 * im2col, or from one built a block at a time into its block-sized
 * buffer when the im2col is this kernel's (fuse.c; nnc_conv_wgrad_x).
 * The same blocks and groups either way, so the same bits. */
static void emit_chunked_wgrad(Emit *e, const KCtx *kc)
{
    const Graph *g = kc->g;
    const Plan *p = kc->p;
    const Node *w = NODE(g, kc->k->root), *dc = NODE(g, w->in[0]), *col = NODE(g, w->in[1]);
    bool built = col->kernel == kc->k->root;
    int f = dc->shape.dim[dc->shape.rank - 1], kk = col->shape.dim[col->shape.rank - 1];
    long rb = block_rows(g, col);
    char rows[96];
    NodeId pool = node_pool_wgrad(g, w, p->in_prog);
    if (pool != NODE_NONE) {
        /* window by window (fuse.c): the shares from the pooling's input
         * and gradient when the pooling's gradient is this kernel's,
         * else from the stored dC; the same bits either way */
        const Node *pn = NODE(g, pool);
        bool fused = dc->kernel == kc->k->root;
        const char *db = fused ? rider_buf(kc) : NULL;
        char geom[192] = "NULL, NULL";
        if (built)
            snprintf(geom, sizeof geom, "(const int[]){%s}, %s", im2col_geom(g, col),
                     emit_buf(g, p, col->in[0]));
        emit_line(e, "/* summed window by window of the 2x2 pooling above%s%s */",
                  fused ? "; dC is not stored" : "", built ? "; im2col rows built here" : "");
        emit_line(e, "nnc_conv_wgrad_pool(%d, %d, %s, %s, %s, %s, %d, %s, %s, %s, %s);", f, kk,
                  maxpool_back_geom(g, pn), fused ? "NULL" : emit_buf(g, p, w->in[0]),
                  fused ? emit_buf(g, p, pn->in[0]) : "NULL",
                  fused ? emit_buf(g, p, pn->in[1]) : "NULL", fused && pn->iattr[7] ? 1 : 0,
                  built ? "NULL" : emit_buf(g, p, w->in[1]), geom,
                  emit_buf(g, p, kc->k->root), db ? db : "NULL");
        return;
    }
    snprintf(rows, sizeof rows, "(size_t)%s / %d", emit_numel(col), kk);
    emit_line(e, "/* summed over blocks of %ld rows of the im2col%s */", rb,
              built ? ", each built here" : "");
    if (built)
        emit_line(e, "nnc_conv_wgrad_x(%d, %s, %ld, %s, %s, %s, %s, %s);", f, rows, rb,
                  emit_buf(g, p, w->in[0]), im2col_geom(g, col),
                  emit_buf(g, p, col->in[0]), emit_buf(g, p, w->in[1]),
                  emit_buf(g, p, kc->k->root));
    else
        emit_line(e, "nnc_conv_wgrad(%d, %d, %s, %ld, %s, %s, %s);", f, kk, rows, rb,
                  emit_buf(g, p, w->in[0]), emit_buf(g, p, w->in[1]),
                  emit_buf(g, p, kc->k->root));
}

void emit_kernel(Emit *e, const Compiled *cc, const Plan *p, const Kernel *k, int index)
{
    const Graph *g = &cc->g;
    Regions rg = emit_offsets(cc);
    kernel_comment(e, g, p, k, index);
    emit_line(e, "{");
    e->indent++;
    KCtx kc;
    memset(&kc, 0, sizeof kc);
    kc.g = g;
    kc.p = p;
    kc.k = k;
    kc.flat = true;
    NodeId head = gemm_head(&kc);
    OpKind kind = optab[NODE(g, k->root)->op].kind;
    if (NODE(g, k->root)->op == OP_COL2IM && k->n == 2)
        emit_chunked_col2im(e, &kc);
    else if (node_wgrad(g, NODE(g, k->root)))
        emit_chunked_wgrad(e, &kc);
    else if (kind == K_EWISE && head)
        emit_gemm_epilogue(e, &kc, head);
    else if (kind == K_EWISE)
        emit_loop(e, &kc);
    else
        emit_single(e, &kc, &rg);
    e->indent--;
    emit_line(e, "}");
}

/* Declares the arena buffers a program uses. */
void emit_buffers(Emit *e, const Compiled *c, const Plan *p)
{
    const Graph *g = &c->g;
    bool any = false;
    for (int id = 1; id < g->nnodes; id++)
        any |= p->region[id] == REG_ARENA;
    if (!any)
        return;
    emit_line(e, "float *const a = ctx->mem + %zu;  /* scratch arena */", emit_offsets(c).scratch);
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (p->region[id] != REG_ARENA)
            continue;
        char at[64] = "";
        if (p->shares[id])
            snprintf(at, sizeof at, ", in place of t%u", (unsigned)p->shares[id]);
        if (node_chunked(g, n) && n->op == OP_IM2COL)
            snprintf(at, sizeof at, ", %ld rows at a time", block_rows(g, n));
        else if (node_chunked(g, n))
            snprintf(at, sizeof at, ", %d images at a time", chunk_images(n));
        emit_line(e, "float *const t%d = a + %zu;  /* %s%s %s, kernels %d-%d%s */", id,
                  p->offset[id], op_name(n->op), n->is_grad ? " (backward)" : "",
                  shape_str(&n->shape), p->def[id] + 1, p->last[id] + 1, at);
        /* a loop whose only reader is the reduction riding on it (the
         * product of a broadcast multiply's gradient, summed) may not
         * store it */
        if (p->def[id] == p->last[id])
            emit_line(e, "(void)t%d;", id);
    }
    /* a result stored in place of an input may be written only through
     * the input's name (a fused mul + sum_to of gradients) */
    for (int id = 1; id < g->nnodes; id++)
        if (p->region[id] == REG_ARENA && p->shares[id])
            emit_line(e, "(void)t%d;", id);
}
