/*
 * emit_c.c - writes a model as standalone C99: a header with the API of
 * DESIGN.md and a source file with the kernels.
 *
 * Memory: one block per model, laid out at compile time. The context
 * struct sits at the start (aligned to 64 bytes inside the caller's
 * block), then floats in regions: parameters, their gradients (same
 * layout), optimizer state (same layout again, so one loop updates
 * everything), and the scratch arena shared by the training step's plan
 * and predict's smaller plan (memplan.c). The header states every
 * region's bytes, so a caller can supply the memory (seed_init) and
 * nothing allocates afterwards.
 *
 * Code: one function per program. `predict_rows` runs predict's kernels
 * for nb <= BATCH rows and writes the output rows straight to the caller;
 * train_step runs the training plan at the full batch. Each kernel is a
 * block headed by a comment with the .nn line it comes from:
 *  - a loop kernel evaluates its fused elementwise members into locals
 *    (v12 = ...) and stores the root, plus any sums riding along;
 *  - a GEMM with an epilogue computes row blocks with nnc_sgemm and
 *    applies the loop to each block while it is in cache;
 *  - other ops (softmax, losses, plain GEMMs, updates) emit their own
 *    statements through their op's emit rule.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#define CTX_BYTES 128   /* room reserved for struct <prefix>_ctx */

/* ---- helpers for op emitters ------------------------------------------- */

static char *rotating(void)
{
    static char bufs[32][160];
    static int k;
    return bufs[k++ % 32];
}

static const char *rotating_printf(const char *fmt, ...) NNC_PRINTF(1, 2);
static const char *rotating_printf(const char *fmt, ...)
{
    char *b = rotating();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 160, fmt, ap);
    va_end(ap);
    return b;
}

void emit_line(Emit *e, const char *fmt, ...)
{
    va_list ap;
    for (int i = 0; i < e->indent; i++)
        buf_puts(e->out, "    ");
    va_start(ap, fmt);
    buf_vprintf(e->out, fmt, ap);
    va_end(ap);
    buf_puts(e->out, "\n");
}

const char *emit_dim(const Node *n, int d)
{
    char *b = rotating();
    if (n->bmask & (1u << d))
        snprintf(b, 160, "nb");
    else
        snprintf(b, 160, "%d", n->shape.dim[d]);
    return b;
}

const char *emit_numel(const Node *n)
{
    char *b = rotating();
    long k = 1;
    int nbatch = 0;
    for (int d = 0; d < n->shape.rank; d++) {
        if (n->bmask & (1u << d))
            nbatch++;
        else
            k *= n->shape.dim[d];
    }
    NNC_ASSERT(nbatch <= 1);
    if (nbatch)
        snprintf(b, 160, "(nb * %ld)", k);
    else
        snprintf(b, 160, "%ld", k);
    return b;
}

const char *emit_float(double v)
{
    char *b = rotating();
    NNC_ASSERT(isfinite(v));
    snprintf(b, 160, "%.9g", v);
    if (!strpbrk(b, ".e"))
        strcat(b, ".0");
    strcat(b, "f");
    return b;
}

/* ---- names and regions ---------------------------------------------- */

/* A C identifier from a parameter name: "dense_0.weight" -> "dense_0_weight". */
static const char *c_ident(const char *s)
{
    char *b = rotating();
    size_t i = 0;
    for (; s[i] && i < 100; i++)
        b[i] = isalnum((unsigned char)s[i]) ? s[i] : '_';
    b[i] = '\0';
    return b;
}

static const char *upper(const char *s)
{
    char *b = rotating();
    size_t i = 0;
    for (; s[i] && i < 100; i++)
        b[i] = (char)toupper((unsigned char)s[i]);
    b[i] = '\0';
    return b;
}

static const char *loc_str(Loc l)
{
    char *b = rotating();
    if (l.src)
        snprintf(b, 160, "%s:%d:%d", l.src->name, l.line, l.col);
    else
        snprintf(b, 160, "(generated)");
    return b;
}

void emit_regions(const Compiled *c, size_t *params, size_t *grads, size_t *state,
                  size_t *scratch)
{
    *params = c->layout.param_floats;
    *grads = c->layout.grads_exclusive ? c->layout.param_floats : 0;
    *state = (size_t)c->layout.nstate * c->layout.param_floats;
    *scratch = c->train.arena_floats > c->predict.arena_floats ? c->train.arena_floats
                                                                : c->predict.arena_floats;
}

/* Float offsets of the regions in ctx->mem. */
typedef struct Regions {
    size_t grads, state, scratch, total;
} Regions;

static Regions regions(const Compiled *c)
{
    size_t p, g, s, a;
    emit_regions(c, &p, &g, &s, &a);
    return (Regions){p, p + g, p + g + s, p + g + s + a};
}

/* The parameter whose gradient `id` is. */
static const char *grad_name(const Graph *g, NodeId id)
{
    for (int i = 0; i < g->nparams; i++)
        if (g->grads[i] == id)
            return NODE(g, g->params[i])->name;
    nnc_unreachable();
}

/* The buffer (a pointer expression) of a node in a program. */
static const char *buf_of(const Graph *g, const Plan *p, NodeId id)
{
    const Node *n = NODE(g, id);
    char *b = rotating();
    if (optab[n->op].kind == K_UPDATE)
        return buf_of(g, p, n->in[0]);
    switch (p->region[id]) {
    case REG_INPUT:
        return "x";
    case REG_TARGET:
        return "y";
    case REG_OUTPUT:
        return "out";
    case REG_PARAM:
        snprintf(b, 160, "W_%s", c_ident(n->name));
        return b;
    case REG_GRAD:
        snprintf(b, 160, "G_%s", c_ident(grad_name(g, id)));
        return b;
    case REG_ARENA:
        snprintf(b, 160, "t%u", (unsigned)id);
        return b;
    case REG_NONE:
        break;
    }
    snprintf(b, 160, "t%u", (unsigned)id);
    return b;
}

/* The value of a rank-0 node, for emit rules that take scalars by value. */
static const char *scalar_of(const Graph *g, const Plan *p, NodeId id)
{
    char *b = rotating();
    if (NODE(g, id)->op == OP_CONST)
        return emit_float(NODE(g, id)->fattr[0]);
    snprintf(b, 160, "%s[0]", buf_of(g, p, id));
    return b;
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

static bool same_layout(const Node *a, const Node *b)
{
    return shape_eq(&a->shape, &b->shape) && a->bmask == b->bmask;
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
    const char *base = buf_of(kc->g, kc->p, u);
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
    if (n->op == OP_CONST) {
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
    Buf idx = {0};
    if (kc->flat)
        buf_puts(&idx, "i");
    else
        bcast_expr(&idx, NODE(g, r), NODE(g, r));
    emit_line(e, "%s[%s] = v%u;", alias(kc, r, true), idx.data, (unsigned)r);
    buf_free(&idx);
    for (int m = 0; m < kc->k->n; m++) {
        NodeId id = kc->p->members[kc->k->first + m];
        if (NODE(g, id)->op != OP_SUM_TO)
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
        if (NODE(kc->g, id)->op == OP_SUM_TO)
            emit_line(e, "memset(%s, 0, sizeof(float) * %s);", buf_of(kc->g, kc->p, id),
                      emit_numel(NODE(kc->g, id)));
    }
}

/* A loop kernel: elementwise members (and riders), no GEMM. */
static void emit_loop(Emit *e, KCtx *kc)
{
    const Graph *g = kc->g;
    const Node *r = NODE(g, kc->k->root);
    bool riders = false;
    kc->flat = true;
    for (int m = 0; m < kc->k->n; m++) {
        const Node *n = NODE(g, kc->p->members[kc->k->first + m]);
        riders |= n->op == OP_SUM_TO;
        for (int i = 0; i < n->nin && n->op != OP_SUM_TO; i++) {
            const Node *in = NODE(g, n->in[i]);
            if (in->op != OP_CONST && in->shape.rank > 0 && !same_layout(in, r))
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
        emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(r));
        e->indent++;
    }
    for (int d = 0; !kc->flat && d < r->shape.rank; d++) {
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

/* A GEMM whose result feeds a loop: row blocks of C are computed, then
 * the loop runs over the block while it is in cache. */
static void emit_gemm_epilogue(Emit *e, KCtx *kc, NodeId head)
{
    const Graph *g = kc->g;
    const Node *h = NODE(g, head), *r = NODE(g, kc->k->root);
    const Node *a = NODE(g, h->in[0]), *b = NODE(g, h->in[1]);
    int ta = h->iattr[0], tb = h->iattr[1];
    int ncols = r->shape.dim[1];
    /* Row blocks of C that stay in L2 (256 KiB) between the GEMM and the
     * epilogue. Not smaller: each call packs B again, which for a
     * transposed B (dense weights) costs as much as a large part of the
     * product (measured on the Fashion-MNIST MLP's 64x256x784 layer). */
    int rb = 65536 / (ncols > 0 ? ncols : 1);
    rb = rb < 1 ? 1 : rb;
    if (rb >= r->shape.dim[0])
        rb = r->shape.dim[0];
    char m[32], k[32], lda[32], ldb[32];
    snprintf(m, sizeof m, "%s", emit_dim(r, 0));
    snprintf(k, sizeof k, "%s", emit_dim(a, ta ? 0 : 1));
    snprintf(lda, sizeof lda, "%s", emit_dim(a, 1));
    snprintf(ldb, sizeof ldb, "%s", emit_dim(b, 1));
    const char *c = buf_of(g, kc->p, kc->k->root);
    kc->flat = false;
    zero_riders(e, kc);
    emit_line(e, "for (int r0 = 0; r0 < %s; r0 += %d) {", m, rb);
    e->indent++;
    emit_line(e, "const int rb = %s - r0 < %d ? %s - r0 : %d;", m, rb, m, rb);
    emit_line(e, "nnc_sgemm(%d, %d, rb, %d, %s, 1.0f, %s + %s, %s, %s, %s, 0.0f, %s + (size_t)r0 * %d, %d);",
              ta, tb, ncols, k, buf_of(g, kc->p, h->in[0]),
              ta ? "r0" : rotating_printf("(size_t)r0 * %s", lda), lda,
              buf_of(g, kc->p, h->in[1]), ldb, c, ncols, ncols);
    emit_line(e, "{");
    e->indent++;
    Buf body = {0};
    Buf *out = e->out;
    e->out = &body;
    emit_line(e, "for (int i0 = r0; i0 < r0 + rb; i0++)");
    emit_line(e, "    for (int i1 = 0; i1 < %d; i1++) {", ncols);
    e->indent += 2;
    loop_body(e, kc);
    e->indent -= 2;
    emit_line(e, "    }");
    e->out = out;
    flush_aliases(e, kc, &body);
    buf_free(&body);
    e->indent--;
    emit_line(e, "}");
    e->indent--;
    emit_line(e, "}");
}

/* Statements of a kernel with a single, non-loop op. */
static void emit_single(Emit *e, const Graph *g, const Plan *p, const Regions *rg,
                        NodeId id, const Kernel *k)
{
    const Node *n = NODE(g, id);
    const char *args[NNC_MAX_IN + 3];
    char st[3][160];
    for (int i = 0; i < n->nin; i++)
        args[i] = NODE(g, n->in[i])->shape.rank == 0 ? scalar_of(g, p, n->in[i])
                                                      : buf_of(g, p, n->in[i]);
    args[n->nin] = buf_of(g, p, id);
    if (optab[n->op].kind != K_UPDATE) {
        optab[n->op].emit(e, g, n, args);
        return;
    }
    if (k->n > 1) {
        /* one update over the whole parameter region */
        Node all = *n;
        all.shape.rank = 1;
        all.shape.dim[0] = (int)(rg->grads);
        all.bmask = 0;
        args[0] = args[2] = "ctx->mem";
        args[1] = rotating_printf("(ctx->mem + %zu)", rg->grads);
        for (int s = 0; s < n->iattr[0] && s < 3; s++) {
            snprintf(st[s], sizeof st[s], "(ctx->mem + %zu)",
                     rg->state + (size_t)s * rg->grads);
            args[n->nin + 1 + s] = st[s];
        }
        optab[n->op].emit(e, g, &all, args);
        return;
    }
    for (int s = 0; s < n->iattr[0] && s < 3; s++) {
        snprintf(st[s], sizeof st[s], "S%d_%s", s, c_ident(n->name));
        args[n->nin + 1 + s] = st[s];
    }
    optab[n->op].emit(e, g, n, args);
}

static void kernel_comment(Emit *e, const Graph *g, const Plan *p, const Kernel *k, int index)
{
    const Node *r = NODE(g, k->root);
    Buf c = {0};
    buf_printf(&c, "/* %d. %s %s%s:", index, loc_str(r->loc), r->what ? r->what : "",
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
        buf_printf(&c, " -> %s %s", buf_of(g, p, k->root), shape_str(&r->shape));
    /* other source lines folded into this kernel */
    for (int m = 0; m < k->n && optab[r->op].kind != K_UPDATE; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        if (n->loc.src && (n->loc.line != r->loc.line || n->loc.col != r->loc.col))
            buf_printf(&c, "; %s at %s", op_name(n->op), loc_str(n->loc));
    }
    buf_puts(&c, " */");
    emit_line(e, "%s", c.data);
    buf_free(&c);
}

static void emit_kernel(Emit *e, const Compiled *cc, const Plan *p, const Kernel *k,
                        int index)
{
    const Graph *g = &cc->g;
    Regions rg = regions(cc);
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
    if (kind == K_EWISE && head)
        emit_gemm_epilogue(e, &kc, head);
    else if (kind == K_EWISE)
        emit_loop(e, &kc);
    else
        emit_single(e, g, p, &rg, k->root, k);
    e->indent--;
    emit_line(e, "}");
}

/* Declares the arena buffers a function uses. */
static void declare_buffers(Emit *e, const Compiled *c, const Plan *p)
{
    const Graph *g = &c->g;
    bool any = false;
    for (int id = 1; id < g->nnodes; id++)
        any |= p->region[id] == REG_ARENA;
    if (!any)
        return;
    emit_line(e, "float *const a = ctx->mem + %zu;  /* scratch arena */", regions(c).scratch);
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (p->region[id] != REG_ARENA)
            continue;
        char at[64] = "";
        if (p->shares[id])
            snprintf(at, sizeof at, ", in place of t%u", (unsigned)p->shares[id]);
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

/* ---- the header ------------------------------------------------------------- */

static int per_sample(const Node *n)
{
    return (int)(shape_numel(&n->shape) / (size_t)n->shape.dim[0]);
}

static size_t count_params(const Graph *g)
{
    size_t p = 0;
    for (int i = 0; i < g->nparams; i++)
        p += shape_numel(&NODE(g, g->params[i])->shape);
    return p;
}

size_t emit_mem_bytes(const Compiled *c)
{
    return 63 + CTX_BYTES + regions(c).total * sizeof(float);
}

void emit_header_begin(Buf *out, const char *guard)
{
    buf_printf(out, "/* Generated by nnc %s. Do not edit: edit the .nn source. */\n",
               NNC_VERSION);
    buf_printf(out, "#ifndef %s\n#define %s\n\n", guard, guard);
    buf_puts(out, "#include <stddef.h>\n#include <stdint.h>\n\n#include \"nncrt.h\"\n\n");
    buf_puts(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
}

void emit_header_end(Buf *out, const char *guard)
{
    buf_puts(out, "\n#ifdef __cplusplus\n}\n#endif\n\n");
    buf_printf(out, "#endif /* %s */\n", guard);
}

void emit_header(Buf *out, const Compiled *c, const EmitOptions *o)
{
    const Graph *g = &c->g;
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    size_t rp, rgr, rs, ra;
    emit_regions(c, &rp, &rgr, &rs, &ra);
    const Node *x = NODE(g, g->input), *y = NODE(g, g->output);
    buf_printf(out, "\n/* ---- model '%s' (%s) ---- */\n\n", g->name, loc_str(g->loc));
    buf_printf(out, "#define %s_BATCH %d  /* training batch (rows per train_step) */\n", P,
               g->batch);
    Shape xs = {x->shape.rank - 1, {0}};
    memcpy(xs.dim, x->shape.dim + 1, sizeof(int) * (size_t)xs.rank);
    buf_printf(out, "#define %s_IN %d  /* floats per input sample %s */\n", P, per_sample(x),
               shape_str(&xs));
    buf_printf(out, "#define %s_OUT %d  /* floats per output sample */\n", P, per_sample(y));
    buf_printf(out, "#define %s_TARGET %d  /* floats per target row (%s) */\n", P,
               per_sample(NODE(g, g->target)),
               per_sample(NODE(g, g->target)) == per_sample(y)
                   ? "as the output" : "the class index");
    buf_printf(out, "#define %s_PARAMS %zu  /* trainable parameters */\n", P, count_params(g));
    buf_puts(out, "\n/* Memory, by region (each buffer 64-byte aligned; the scratch arena\n"
                  " * is planned at compile time and shared by train_step and predict). */\n");
    buf_printf(out, "#define %s_PARAM_BYTES ((size_t)%zu)\n", P, rp * 4);
    buf_printf(out, "#define %s_GRAD_BYTES ((size_t)%zu)\n", P, rgr * 4);
    buf_printf(out, "#define %s_OPT_STATE_BYTES ((size_t)%zu)\n", P, rs * 4);
    buf_printf(out, "#define %s_TRAIN_ARENA_BYTES ((size_t)%zu)\n", P, c->train.arena_floats * 4);
    buf_printf(out, "#define %s_PREDICT_ARENA_BYTES ((size_t)%zu)\n", P,
               c->predict.arena_floats * 4);
    buf_printf(out,
               "/* Exact bytes for %s_init: 63 (alignment slack) + %d (context) + the\n"
               " * regions above, with the larger of the two arenas. */\n",
               p, CTX_BYTES);
    buf_printf(out, "#define %s_MEM_BYTES ((size_t)%zu)\n\n", P, emit_mem_bytes(c));
    buf_printf(out, "typedef struct %s_ctx %s_ctx;  /* opaque */\n\n", p, p);
    buf_printf(out,
        "/* A model with weights initialized from `seed` (Glorot uniform kernels,\n"
        " * zero biases; the same on every platform), in one allocation.\n"
        " * NULL if out of memory. */\n"
        "%s_ctx *%s_create(uint64_t seed);\n\n", p, p);
    buf_printf(out,
        "/* The same in caller memory: `mem` holds `bytes` >= %s_MEM_BYTES bytes, any\n"
        " * alignment; nothing is allocated. NULL if mem is NULL or too small. */\n"
        "%s_ctx *%s_init(void *mem, size_t bytes, uint64_t seed);\n\n", P, p, p);
    buf_printf(out, "/* Frees a model from %s_create (not one from %s_init). */\n"
                    "void %s_destroy(%s_ctx *ctx);\n\n", p, p, p, p);
    buf_printf(out,
        "/* One optimizer step on one batch: x is %s_BATCH x %s_IN, y is\n"
        " * %s_BATCH x %s_TARGET (row-major; for a sparse loss, one class index\n"
        " * per row as a float). Returns the batch's mean loss before the update.\n"
        " * A loss that is NaN or infinite (from the data, a class index out of\n"
        " * range, or divergence) is returned, the update is skipped (weights,\n"
        " * optimizer state and step stay as they were) and nnc_last_error() says\n"
        " * so; NaN too if an argument is NULL. Allocation-free. */\n"
        "float %s_train_step(%s_ctx *ctx, const float *x, const float *y);\n\n",
        P, P, P, P, p, p);
    buf_printf(out,
        "/* The model's output for n samples: x is n x %s_IN, y gets n x %s_OUT.\n"
        " * Any n; runs in chunks of up to %s_BATCH rows. Allocation-free.\n"
        " * 0 on success, NNC_ERR_ARG on a NULL argument. */\n"
        "int %s_predict(%s_ctx *ctx, const float *x, float *y, size_t n);\n\n",
        P, P, P, p, p);
    buf_printf(out,
        "/* The fraction of n samples (x: n x %s_IN, y: n x %s_TARGET targets)\n"
        " * that predict gets right, in *acc (0 for n = 0): the output's argmax\n"
        " * equals the target's argmax (one-hot targets) or the class index\n"
        " * (sparse targets); with one output, output >= 0.5 equals target >= 0.5.\n"
        " * Allocation-free (up to 16 KB of stack, or one output row).\n"
        " * 0 on success, NNC_ERR_ARG on a NULL argument. */\n"
        "int %s_accuracy(%s_ctx *ctx, const float *x, const float *y, size_t n,\n"
        "    double *acc);\n\n",
        P, P, p, p);
    buf_printf(out,
        "/* Checkpoints (safetensors; names as in the .nn source, dense weights\n"
        " * [out, in] like PyTorch). Save is atomic: on error an existing file\n"
        " * at path is left as it was. Load validates the whole file first and\n"
        " * leaves the model untouched on error. 0 on success, else a negative\n"
        " * NNC_ERR_* code (see nnc_strerror), and nnc_last_error() tells what\n"
        " * is wrong (with the file). */\n"
        "int %s_save(const %s_ctx *ctx, const char *path);\n"
        "int %s_load(%s_ctx *ctx, const char *path);\n", p, p, p, p);
}

/* ---- the source --------------------------------------------------------------- */

void emit_source_begin(Buf *out, const char *header)
{
    buf_printf(out, "/* Generated by nnc %s. Do not edit: edit the .nn source. */\n",
               NNC_VERSION);
    buf_puts(out, "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
                  "#include <stdio.h>\n#include <string.h>\n\n#include \"nncrt.h\"\n");
    buf_printf(out, "#include \"%s\"\n", header);
}

static void emit_layout(Emit *e, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    Buf *out = e->out;
    Regions rg = regions(c);
    buf_printf(out, "\n/* ======== model '%s' from %s ======== */\n\n", g->name, loc_str(g->loc));
    buf_printf(out, "struct %s_ctx {\n"
                    "    float *mem;      /* %zu floats, 64-byte aligned */\n"
                    "    void *owned;     /* the block from %s_create, or NULL */\n"
                    "    uint64_t step;   /* optimizer steps taken */\n"
                    "    uint64_t seed;   /* from create/init: dropout masks */\n"
                    "    nnc_rng rng;     /* the step's dropout stream, from seed and step */\n"
                    "};\n", p, rg.total, p);
    buf_printf(out, "typedef char %s_ctx_fits_[sizeof(struct %s_ctx) <= %d ? 1 : -1];\n\n",
               p, p, CTX_BYTES);
    buf_printf(out, "/* Regions of ctx->mem (floats): parameters at 0, gradients at %zu,\n"
                    " * optimizer state at %zu, scratch arena at %zu (%zu for training,\n"
                    " * %zu for predict). */\n",
               rg.grads, rg.state, rg.scratch, c->train.arena_floats, c->predict.arena_floats);
    for (int i = 0; i < g->nparams; i++) {
        NodeId pid = g->params[i];
        const Node *n = NODE(g, pid);
        size_t off = c->layout.param_off[pid];
        buf_printf(out, "#define W_%s (ctx->mem + %zu)  /* %s %s */\n", c_ident(n->name), off,
                   n->name, shape_str(&n->shape));
        if (rg.state > rg.grads)
            buf_printf(out, "#define G_%s (ctx->mem + %zu)  /* gradient */\n",
                       c_ident(n->name), rg.grads + off);
        for (int s = 0; s < c->layout.nstate; s++)
            buf_printf(out, "#define S%d_%s (ctx->mem + %zu)  /* optimizer state %d */\n", s,
                       c_ident(n->name), rg.state + (size_t)s * c->layout.param_floats + off, s);
    }
}

static void emit_undefs(Buf *out, const Compiled *c)
{
    const Graph *g = &c->g;
    Regions rg = regions(c);
    buf_puts(out, "\n");
    for (int i = 0; i < g->nparams; i++) {
        const char *n = c_ident(NODE(g, g->params[i])->name);
        buf_printf(out, "#undef W_%s\n", n);
        if (rg.state > rg.grads)
            buf_printf(out, "#undef G_%s\n", n);
        for (int s = 0; s < c->layout.nstate; s++)
            buf_printf(out, "#undef S%d_%s\n", s, n);
    }
}

static bool profile; /* --emit=bench: time every kernel */

/* global_clipnorm, before the first update: torch's clip_grad_norm_ with
 * the norm summed in double, parameter by parameter (or over the whole
 * gradient region when the updates are fused; its padding is zero). */
/* Does update `id` clip a gradient, first among the updates (two
 * parameters may share one gradient node: it is scaled once)? */
static bool clips(const Graph *g, const Plan *p, int id, bool first)
{
    const Node *n = NODE(g, id);
    if (optab[n->op].kind != K_UPDATE || !p->in_prog[id] ||
        optab[NODE(g, n->in[1])->op].kind == K_SOURCE)
        return false;
    for (int j = 1; j < id && first; j++)
        if (optab[g->nodes[j].op].kind == K_UPDATE && p->in_prog[j] &&
            g->nodes[j].in[1] == n->in[1])
            return false;
    return true;
}

static void emit_clip(Emit *e, const Compiled *c, const Plan *p, const Kernel *k)
{
    const Graph *g = &c->g;
    Regions rg = regions(c);
    emit_line(e, "{");
    e->indent++;
    if (k->n > 1) {
        /* the gradient region: rg.grads floats from offset rg.grads */
        emit_line(e, "float *gr = ctx->mem + %zu;", rg.grads);
        emit_line(e, "nnc_scale(gr, %zu, nnc_clip_coef(nnc_sumsq(gr, %zu), %.17g));", rg.grads,
                  rg.grads, g->opt.clipnorm);
    } else {
        emit_line(e, "double ss = 0;");
        emit_line(e, "float coef;");
        for (int id = 1; id < g->nnodes; id++)
            if (clips(g, p, id, false))
                emit_line(e, "ss += nnc_sumsq(%s, %s);", buf_of(g, p, NODE(g, id)->in[1]),
                          emit_numel(NODE(g, id)));
        emit_line(e, "coef = nnc_clip_coef(ss, %.17g);", g->opt.clipnorm);
        for (int id = 1; id < g->nnodes; id++)
            if (clips(g, p, id, true))
                emit_line(e, "nnc_scale(%s, %s, coef);", buf_of(g, p, NODE(g, id)->in[1]),
                          emit_numel(NODE(g, id)));
    }
    e->indent--;
    emit_line(e, "}");
}

/* Before the first update of train_step: a loss that is NaN or infinite
 * skips the update (and does not count as a step), so that one bad batch
 * does not poison the weights or the optimizer state. */
static void emit_loss_check(Emit *e, const char *p)
{
    emit_line(e, "if (!isfinite(loss)) {");
    e->indent++;
    emit_line(e, "ctx->step--;");
    emit_line(e, "nnc_set_error(\"%s_train_step: the loss is %%s at step %%lu; the update "
                 "was skipped\", isnan(loss) ? \"NaN\" : \"infinite\", "
                 "(unsigned long)ctx->step + 1);", p);
    emit_line(e, "return loss;");
    e->indent--;
    emit_line(e, "}");
}

static void emit_program(Emit *e, const Compiled *c, const Plan *p, const char *prefix)
{
    bool clipped = false, loss_done = false, checked = false;
    e->predict = p->predict;
    for (int k = 0; k < p->nkernels; k++) {
        bool update = optab[NODE(&c->g, p->kernels[k].root)->op].kind == K_UPDATE;
        if (!p->predict && update && loss_done && !checked) {
            emit_loss_check(e, prefix);
            checked = true;
        }
        if (!p->predict && !clipped && c->g.opt.clipnorm > 0 && update) {
            emit_clip(e, c, p, &p->kernels[k]);
            clipped = true;
        }
        if (profile)
            emit_line(e, "nnc_prof_begin();");
        emit_kernel(e, c, p, &p->kernels[k], k + 1);
        if (profile)
            emit_line(e, "nnc_prof_end(%d, %d);", p->predict, k);
        if (!p->predict && p->kernels[k].root == c->g.loss) {
            emit_line(e, "loss = %s[0];", buf_of(&c->g, p, c->g.loss));
            loss_done = true;
        }
    }
    if (!p->predict && !checked) { /* the loss came last: report it at least */
        emit_line(e, "if (!isfinite(loss))");
        e->indent++;
        emit_line(e, "nnc_set_error(\"%s_train_step: the loss is %%s\", loss != loss ? "
                     "\"NaN\" : \"infinite\");", prefix);
        e->indent--;
    }
}

static void emit_predict_rows(Emit *e, const Compiled *c, const char *p)
{
    buf_printf(e->out, "\n/* predict's plan: %d kernels, %zu arena floats. Output rows go\n"
                       " * straight to `out`; nb <= %d rows. */\n",
               c->predict.nkernels, c->predict.arena_floats, c->g.batch);
    buf_printf(e->out, "static void %s_predict_rows(%s_ctx *ctx, const float *x, float *out, "
                       "int nb)\n{\n", p, p);
    e->indent = 1;
    declare_buffers(e, c, &c->predict);
    emit_program(e, c, &c->predict, NULL);
    e->indent = 0;
    buf_puts(e->out, "}\n");
}

static bool has_updates(const Graph *g)
{
    for (int id = 1; id < g->nnodes; id++)
        if (optab[g->nodes[id].op].kind == K_UPDATE)
            return true;
    return false;
}

/* The learning rate of this step, in double, from the steps taken before
 * it (s = ctx->step - 1): warm-up (s + 1) / warmup lr, then the schedule
 * at s - warmup, as Keras' CosineDecay (clamped at decay_steps) and
 * ExponentialDecay do. In a block of its own, so that its names cannot
 * clash with the kernels'. */
static void emit_lr(Emit *e, const Optimizer *o)
{
    if (o->schedule == LRS_CONSTANT && o->warmup == 0)
        return;
    emit_line(e, "double lr = %.17g;  /* this step's learning rate */", o->lr);
    emit_line(e, "{");
    e->indent++;
    emit_line(e, "double ls = (double)(ctx->step - 1);  /* steps before this one */");
    if (o->warmup > 0) {
        emit_line(e, "if (ls < %ld.0)", o->warmup);
        emit_line(e, "    lr = %.17g * (ls + 1.0) / %ld.0;", o->lr, o->warmup);
        emit_line(e, "ls -= %ld.0;", o->warmup);
    }
    if (o->schedule == LRS_COSINE) {
        emit_line(e, "if (ls >= 0.0) {");
        emit_line(e, "    const double ld = ls < %.17g ? ls : %.17g;", o->decay_steps,
                  o->decay_steps);
        emit_line(e, "    lr = %.17g * ((1.0 - %.17g) * 0.5 * (1.0 + cos(3.141592653589793 * ld / "
                     "%.17g)) + %.17g);", o->lr, o->alpha, o->decay_steps, o->alpha);
        emit_line(e, "}");
    } else if (o->schedule == LRS_EXPONENTIAL) {
        emit_line(e, "if (ls >= 0.0)");
        emit_line(e, "    lr = %.17g * pow(%.17g, %s(ls / %.17g));", o->lr, o->decay_rate,
                  o->staircase ? "floor" : "", o->decay_steps);
    }
    e->indent--;
    emit_line(e, "}");
}

static void emit_train_step(Emit *e, const Compiled *c, const char *p)
{
    Buf *out = e->out;
    buf_printf(out, "\n/* The training step's plan: %d kernels, %zu arena floats. */\n",
               c->train.nkernels, c->train.arena_floats);
    buf_printf(out, "float %s_train_step(%s_ctx *ctx, const float *x, const float *y)\n{\n",
               p, p);
    buf_printf(out, "    const int nb = %s_BATCH;\n", upper(p));
    buf_puts(out, "    float loss;\n");
    buf_printf(out, "    if (!ctx || !x || !y) {\n        nnc_set_error(\"%s_train_step: a NULL "
                    "argument\");\n        return NAN;\n    }\n", p);
    e->indent = 1;
    declare_buffers(e, c, &c->train);
    emit_line(e, "ctx->step++;");
    /* dropout masks depend on (seed, step) only, so a run resumed from a
     * checkpoint (which restores step) in a context created with the same
     * seed draws the masks the uninterrupted run would have */
    emit_line(e, "nnc_rng_seed(&ctx->rng, ctx->seed ^ (ctx->step * UINT64_C(0x9E3779B97F4A7C15)));");
    if (has_updates(&c->g))
        emit_lr(e, &c->g.opt);
    emit_program(e, c, &c->train, p);
    e->indent = 0;
    buf_puts(out, "    return loss;\n}\n");
}

/* p_accuracy: predict in chunks of up to 4096 floats of output, then
 * compare each row with its target by the rule the shapes call for. */
static void emit_accuracy(Buf *out, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    int nout = per_sample(NODE(g, g->output)), ntgt = per_sample(NODE(g, g->target));
    int chunk = 4096 / nout;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    chunk = chunk < 1 ? 1 : chunk > g->batch ? g->batch : chunk;
    buf_printf(out, "\nint %s_accuracy(%s_ctx *ctx, const float *x, const float *y, size_t n,\n"
                    "    double *acc)\n{\n", p, p);
    buf_printf(out, "    float out[%d * %s_OUT];\n", chunk, P);
    buf_puts(out, "    size_t i, hits = 0;\n    int r;\n");
    buf_puts(out, "    if (!ctx || !acc || ((!x || !y) && n > 0))\n        return NNC_ERR_ARG;\n");
    buf_printf(out, "    for (i = 0; i < n; i += %d) {\n", chunk);
    buf_printf(out, "        int nb = (int)(n - i < %d ? n - i : %d);\n", chunk, chunk);
    buf_printf(out, "        %s_predict_rows(ctx, x + i * %s_IN, out, nb);\n", p, P);
    buf_puts(out, "        for (r = 0; r < nb; r++) {\n");
    buf_printf(out, "            const float *o = out + (size_t)r * %s_OUT;\n", P);
    buf_printf(out, "            const float *yt = y + (i + (size_t)r) * %s_TARGET;\n", P);
    if (nout == 1 && ntgt == 1) {
        buf_puts(out, "            hits += (o[0] >= 0.5f) == (yt[0] >= 0.5f);\n");
    } else {
        buf_puts(out, "            int j, k, t;\n");
        buf_printf(out, "            for (k = 0, j = 1; j < %s_OUT; j++)\n"
                        "                k = o[j] > o[k] ? j : k;\n", P);
        if (ntgt == nout)
            buf_printf(out, "            for (t = 0, j = 1; j < %s_TARGET; j++)\n"
                            "                t = yt[j] > yt[t] ? j : t;\n", P);
        else
            buf_printf(out, "            t = yt[0] >= 0.0f && yt[0] < (float)%s_OUT ? "
                            "(int)yt[0] : -1;\n", P);
        buf_puts(out, "            hits += k == t;\n");
    }
    buf_puts(out, "        }\n    }\n");
    buf_puts(out, "    *acc = n > 0 ? (double)hits / (double)n : 0.0;\n    return 0;\n}\n");
}

/* Optimizer state that does not start at zero: Adagrad's sums. */
static void emit_state_init(Buf *out, const Compiled *c)
{
    const Optimizer *o = &c->g.opt;
    Regions rg = regions(c);
    if (o->kind != OPT_ADAGRAD || o->init == 0 || rg.scratch == rg.state)
        return;
    buf_printf(out, "    {\n        size_t i;\n        for (i = 0; i < %zu; i++)\n"
                    "            ctx->mem[%zu + i] = %s;\n    }\n",
               rg.scratch - rg.state, rg.state, emit_float(o->init));
}

static void emit_checkpoints(Emit *e, const Compiled *c, const char *p);

static void emit_api(Emit *e, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    Buf *out = e->out;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    buf_printf(out, "\n/* Weights from the seed: Glorot uniform kernels, zero biases, in\n"
                    " * declaration order from one nnc_rng stream; norm scales ones. */\n"
                    "static void %s_reset(%s_ctx *ctx, uint64_t seed)\n{\n"
                    "    nnc_rng rng;\n    nnc_rng_seed(&rng, seed);\n", p, p);
    buf_printf(out, "    memset(ctx->mem, 0, sizeof(float) * %zu);\n", regions(c).total);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        if (n->init == INIT_ONE)
            buf_printf(out, "    { size_t i; for (i = 0; i < %zu; i++) W_%s[i] = 1.0f; }  /* %s */\n",
                       shape_numel(&n->shape), c_ident(n->name), n->name);
        if (n->init != INIT_GLOROT && n->init != INIT_UNIFORM)
            continue;
        double lim = n->init == INIT_UNIFORM ? 0.05 : sqrt(6.0 / (n->fan_in + n->fan_out));
        buf_printf(out, "    nnc_fill_uniform(W_%s, %zu, %.17g, %.17g, &rng);  /* %s */\n",
                   c_ident(n->name), shape_numel(&n->shape), -lim, lim, n->name);
    }
    emit_state_init(out, c);
    buf_puts(out, "    ctx->seed = seed;\n    ctx->step = 0;\n}\n");

    buf_printf(out, "\n%s_ctx *%s_init(void *mem, size_t bytes, uint64_t seed)\n{\n", p, p);
    buf_printf(out, "    uintptr_t a;\n    %s_ctx *ctx;\n", p);
    buf_printf(out, "    if (!mem || bytes < %s_MEM_BYTES)\n        return NULL;\n", P);
    buf_puts(out, "    a = ((uintptr_t)mem + 63) & ~(uintptr_t)63;\n");
    buf_printf(out, "    ctx = (%s_ctx *)a;\n", p);
    buf_printf(out, "    ctx->mem = (float *)(a + %d);\n", CTX_BYTES);
    buf_puts(out, "    ctx->owned = NULL;\n");
    buf_printf(out, "    %s_reset(ctx, seed);\n    return ctx;\n}\n", p);

    buf_printf(out, "\n%s_ctx *%s_create(uint64_t seed)\n{\n", p, p);
    buf_printf(out, "    void *mem = malloc(%s_MEM_BYTES);\n    %s_ctx *ctx;\n", P, p);
    buf_puts(out, "    if (!mem)\n        return NULL;\n");
    buf_printf(out, "    ctx = %s_init(mem, %s_MEM_BYTES, seed);\n", p, P);
    buf_puts(out, "    ctx->owned = mem;\n    return ctx;\n}\n");

    buf_printf(out, "\nvoid %s_destroy(%s_ctx *ctx)\n{\n", p, p);
    buf_puts(out, "    if (ctx)\n        free(ctx->owned);\n}\n");

    buf_printf(out, "\nint %s_predict(%s_ctx *ctx, const float *x, float *y, size_t n)\n{\n",
               p, p);
    buf_puts(out, "    size_t i;\n");
    buf_puts(out, "    if (!ctx || ((!x || !y) && n > 0))\n        return NNC_ERR_ARG;\n");
    buf_printf(out, "    for (i = 0; i < n; i += %s_BATCH) {\n", P);
    buf_printf(out, "        int nb = (int)(n - i < %s_BATCH ? n - i : %s_BATCH);\n", P, P);
    buf_printf(out, "        %s_predict_rows(ctx, x + i * %s_IN, y + i * %s_OUT, nb);\n", p, P,
               P);
    buf_puts(out, "    }\n    return 0;\n}\n");

    emit_accuracy(out, c, p);
    emit_checkpoints(e, c, p);
}

/* Checkpoints: the parameters, then the optimizer state of each,
 * "optimizer.PARAM.SLOT", and the step in the metadata. Loading a file
 * without the state (weights only, from PyTorch say) resets the state,
 * and the step unless the metadata has it and there is no state. */
static void emit_checkpoints(Emit *e, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    Buf *out = e->out;
    int ns = c->layout.nstate, nt = 0;
    Regions rg = regions(c);
    buf_printf(out, "\nstatic void %s_tensors(const %s_ctx *ctx, nnc_tensor *t)\n{\n", p, p);
    for (int k = 0; k < g->nparams * (1 + ns); k++) {
        int i = k % g->nparams, s = k / g->nparams - 1;
        const Node *n = NODE(g, g->params[i]);
        /* no optimizer state for what is not trained (batchnorm's running
         * statistics), as torch.optim has none */
        if (s >= 0 && (!g->grads || g->grads[i] == NODE_NONE))
            continue;
        /* conv kernels have a checkpoint shape of their own (same order) */
        const Shape *cs = n->ckpt_shape.rank ? &n->ckpt_shape : &n->shape;
        NNC_ASSERT(shape_numel(cs) == shape_numel(&n->shape));
        if (s < 0)
            buf_printf(out, "    t[%d].name = \"%s\";\n", nt, n->name);
        else
            buf_printf(out, "    t[%d].name = \"optimizer.%s.%s\";\n", nt, n->name,
                       optim_state_name(&g->opt, s));
        buf_printf(out, "    t[%d].rank = %d;\n", nt, cs->rank);
        for (int d = 0; d < cs->rank; d++)
            buf_printf(out, "    t[%d].shape[%d] = %d;\n", nt, d, cs->dim[d]);
        if (s < 0)
            buf_printf(out, "    t[%d].data = W_%s;\n", nt, c_ident(n->name));
        else
            buf_printf(out, "    t[%d].data = S%d_%s;\n", nt, s, c_ident(n->name));
        nt++;
    }
    buf_puts(out, "}\n");
    buf_printf(out, "\nint %s_save(const %s_ctx *ctx, const char *path)\n{\n", p, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", nt);
    buf_puts(out, "    char step[32];\n");
    buf_printf(out, "    const char *meta[] = {\"format\", \"nnc\", \"model\", \"%s\", "
                    "\"step\", step, NULL};\n", g->name);
    buf_printf(out, "    if (!ctx || !path) {\n        nnc_set_error(\"%s_save: a NULL argument\");"
                    "\n        return NNC_ERR_ARG;\n    }\n", p);
    buf_puts(out, "    snprintf(step, sizeof step, \"%lu\", (unsigned long)ctx->step);\n");
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    buf_printf(out, "    return nnc_ckpt_save(path, t, %d, meta);\n}\n", nt);
    buf_printf(out, "\nint %s_load(%s_ctx *ctx, const char *path)\n{\n", p, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", nt);
    buf_puts(out, "    int found = 0, err;\n    uint64_t step = 0;\n");
    buf_printf(out, "    if (!ctx || !path) {\n        nnc_set_error(\"%s_load: a NULL argument\");"
                    "\n        return NNC_ERR_ARG;\n    }\n", p);
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    buf_printf(out, "    err = nnc_ckpt_load_opt(path, t, %d, %d, &found, &step);\n",
               g->nparams, nt);
    buf_puts(out, "    if (err)\n        return err;\n");
    if (ns > 0) {
        buf_puts(out, "    if (!found) {  /* weights only: fresh optimizer state */\n");
        buf_printf(out, "        memset(ctx->mem + %zu, 0, sizeof(float) * %zu);\n", rg.state,
                   rg.scratch - rg.state);
        emit_state_init(out, c);
        buf_puts(out, "        step = 0;\n    }\n");
    } else {
        buf_puts(out, "    (void)found;\n");
    }
    buf_puts(out, "    ctx->step = step;\n    return 0;\n}\n");
}

void emit_source(Buf *out, const Compiled *c, const EmitOptions *o)
{
    profile = o->profile;
    Emit e = {out, &c->g, 0, false};
    emit_layout(&e, c, o->prefix);
    emit_predict_rows(&e, c, o->prefix);
    emit_train_step(&e, c, o->prefix);
    emit_api(&e, c, o->prefix);
    emit_undefs(out, c);
}

/* ---- --emit=bench: the model plus a program that times its kernels ------- */

/* Bytes a kernel reads and writes: every buffer it touches, once. */
static double kernel_bytes(const Graph *g, const Plan *p, const Kernel *k)
{
    NodeId seen[64];
    int ns = 0;
    double bytes = 0;
    for (int m = 0; m < k->n; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        NodeId ids[NNC_MAX_IN + 1];
        int nid = 0;
        for (int i = 0; i < n->nin; i++)
            ids[nid++] = n->in[i];
        ids[nid++] = p->members[k->first + m];
        for (int i = 0; i < nid; i++) {
            NodeId u = ids[i];
            bool dup = false;
            for (int j = 0; j < ns; j++)
                dup |= seen[j] == u;
            if (dup || p->region[u] == REG_NONE || ns == 64)
                continue;
            seen[ns++] = u;
            bytes += 4.0 * (double)shape_numel(&NODE(g, u)->shape);
        }
    }
    return bytes;
}

static void kernel_table(Buf *out, const Compiled *c, const Plan *p, const char *name)
{
    const Graph *g = &c->g;
    buf_printf(out, "static const KernelInfo %s[%d] = {\n", name, p->nkernels);
    for (int k = 0; k < p->nkernels; k++) {
        const Kernel *kr = &p->kernels[k];
        const Node *r = NODE(g, kr->root);
        double flops = 0, bytes = kernel_bytes(g, p, kr);
        Buf ops = {0};
        for (int m = 0; m < kr->n; m++) {
            NodeId id = p->members[kr->first + m];
            flops += node_flops(g, id);
            if (optab[r->op].kind != K_UPDATE || m == 0)
                buf_printf(&ops, "%s%s", m ? "+" : "", op_name(NODE(g, id)->op));
        }
        if (optab[r->op].kind == K_UPDATE) {
            size_t pf = c->layout.param_floats;
            if (kr->n > 1) {
                flops = 10.0 * (double)pf;
                bytes = 4.0 * (double)pf * (2.0 + 2.0 * c->layout.nstate + 1.0);
            }
        }
        buf_printf(out, "    {\"%s\", \"%s%s\", %.0f, %.0f},\n", loc_str(r->loc), ops.data,
                   r->is_grad ? " (bwd)" : "", flops, bytes);
        buf_free(&ops);
    }
    buf_puts(out, "};\n");
}

void emit_bench(Buf *out, const Compiled *c, const EmitOptions *o)
{
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    buf_printf(out, "/* Generated by nnc %s: kernel timings of model '%s'. Build with\n"
                    " *   cc -O3 -march=native bench.c $(pkg-config --cflags --libs nncrt) -lm\n"
                    " * and run ./a.out [seconds per measurement]. */\n", NNC_VERSION, p);
    buf_puts(out, "#define _POSIX_C_SOURCE 199309L\n#include <math.h>\n#include <stdint.h>\n"
                  "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                  "#include <time.h>\n\n#include \"nncrt.h\"\n\n");
    buf_puts(out, "static double nnc_now(void)\n{\n    struct timespec ts;\n"
                  "    clock_gettime(CLOCK_MONOTONIC, &ts);\n"
                  "    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;\n}\n\n");
    int nk = c->train.nkernels > c->predict.nkernels ? c->train.nkernels : c->predict.nkernels;
    buf_printf(out, "static double prof_t0, prof_time[2][%d];\n", nk);
    buf_puts(out, "static void nnc_prof_begin(void)\n{\n    prof_t0 = nnc_now();\n}\n\n");
    buf_puts(out, "static void nnc_prof_end(int prog, int k)\n{\n"
                  "    prof_time[prog][k] += nnc_now() - prof_t0;\n}\n");
    emit_header(out, c, o);
    EmitOptions po = *o;
    po.profile = true;
    emit_source(out, c, &po);
    profile = false;
    buf_puts(out, "\ntypedef struct KernelInfo {\n    const char *loc, *ops;\n"
                  "    double flops, bytes;\n} KernelInfo;\n");
    kernel_table(out, c, &c->train, "train_kernels");
    kernel_table(out, c, &c->predict, "predict_kernels");
    buf_printf(out,
"\nstatic void report(const char *title, int prog, const KernelInfo *ki, int nk, long runs,\n"
"                   double peak)\n"
"{\n"
"    double t = 0, f = 0, b = 0;\n"
"    int k;\n"
"    printf(\"\\n%%s: %%d kernels, %%ld runs\\n\", title, nk, runs);\n"
"    printf(\"%%3s  %%-22s %%-34s %%10s %%10s %%10s %%9s %%6s\\n\", \"#\", \"source\", \"kernel\",\n"
"           \"MFLOP\", \"KB moved\", \"us\", \"GFLOP/s\", \"%%peak\");\n"
"    for (k = 0; k < nk; k++) {\n"
"        double us = 1e6 * prof_time[prog][k] / (double)runs;\n"
"        double gf = ki[k].flops / (us * 1e3);\n"
"        printf(\"%%3d  %%-22s %%-34.34s %%10.4f %%10.1f %%10.3f %%9.2f %%5.1f%%%%\\n\", k + 1,\n"
"               ki[k].loc, ki[k].ops, ki[k].flops / 1e6, ki[k].bytes / 1024, us, gf,\n"
"               100 * gf / peak);\n"
"        t += us;\n"
"        f += ki[k].flops;\n"
"        b += ki[k].bytes;\n"
"    }\n"
"    printf(\"     %%-22s %%-34s %%10.4f %%10.1f %%10.3f %%9.2f %%5.1f%%%%\\n\", \"total\", \"\",\n"
"           f / 1e6, b / 1024, t, f / (t * 1e3), 100 * f / (t * 1e3) / peak);\n"
"}\n");
    buf_printf(out,
"\nint main(int argc, char **argv)\n"
"{\n"
"    static float x[%s_BATCH * %s_IN], y[%s_BATCH * %s_TARGET], out[%s_BATCH * %s_OUT];\n"
"    double secs = argc > 1 ? atof(argv[1]) : 0.5, peak, t0, t1;\n"
"    long runs, i;\n"
"    uint64_t s = 12345;\n"
"    %s_ctx *ctx = %s_create(1);\n"
"    if (!ctx) {\n        fprintf(stderr, \"out of memory\\n\");\n        return 1;\n    }\n"
"    for (i = 0; i < %s_BATCH * %s_IN; i++) {\n"
"        s = s * 6364136223846793005ULL + 1442695040888963407ULL;\n"
"        x[i] = (float)((s >> 40) * (2.0 / 16777216.0) - 1.0);\n"
"    }\n"
"    for (i = 0; i < %s_BATCH; i++)\n        y[i * %s_TARGET + i %% %s_TARGET] = 1.0f;\n"
"    peak = nnc_peak_gflops();\n"
"    printf(\"model %s: batch %%d, %%d -> %%d, ISA %%s, %%d thread(s), peak %%.1f GFLOP/s (measured, one core)\\n\",\n"
"           %s_BATCH, %s_IN, %s_OUT, nnc_isa(), nnc_num_threads(), peak);\n"
"    for (i = 0; i < 20; i++)\n        %s_train_step(ctx, x, y);\n"
"    memset(prof_time, 0, sizeof prof_time);\n"
"    t0 = nnc_now();\n"
"    for (runs = 0; (t1 = nnc_now()) - t0 < secs || runs < 10; runs++)\n"
"        %s_train_step(ctx, x, y);\n"
"    report(\"train_step\", 0, train_kernels, %d, runs, peak);\n"
"    printf(\"train_step: %%.3f us per step (wall)\\n\", 1e6 * (t1 - t0) / (double)runs);\n"
"    for (i = 0; i < 20; i++)\n        %s_predict(ctx, x, out, %s_BATCH);\n"
"    memset(prof_time, 0, sizeof prof_time);\n"
"    t0 = nnc_now();\n"
"    for (runs = 0; (t1 = nnc_now()) - t0 < secs || runs < 10; runs++)\n"
"        %s_predict(ctx, x, out, %s_BATCH);\n"
"    report(\"predict\", 1, predict_kernels, %d, runs, peak);\n"
"    printf(\"predict: %%.3f us per batch of %%d (wall)\\n\", 1e6 * (t1 - t0) / (double)runs, %s_BATCH);\n"
"    %s_destroy(ctx);\n"
"    return 0;\n"
"}\n",
        P, P, P, P, P, P, p, p, P, P, P, P, P, p, P, P, P, p, p, c->train.nkernels, p, P, p, P,
        c->predict.nkernels, P, p);
}
