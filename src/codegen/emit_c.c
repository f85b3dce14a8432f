/*
 * emit_c.c - writes a model as standalone C99: a header with the API of
 * DESIGN.md and a source file with the kernels.
 *
 * Memory: one block per model, laid out at compile time. The context
 * struct sits at the start (aligned to 64 bytes inside the caller's
 * block), then floats: parameters, optimizer state, then one buffer per
 * computed node. The header states the exact byte count, so a caller can
 * supply the memory (seed_init) and nothing allocates afterwards.
 * (This plan gives every value its own buffer; the memory planner of the
 * passes issue replaces it with a shared arena.)
 *
 * Code: `forward` computes the model's output for nb <= BATCH rows, so
 * predict runs the same kernels on any chunk; train_step runs forward at
 * the full batch, then the loss, the backward kernels and the updates, in
 * graph order. Each kernel is a block headed by a comment with the .nn
 * line it comes from. Elementwise ops become loops around the C expression
 * their emit rule returns; other ops write their own statements (GEMM
 * through the runtime's nnc_sgemm).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#define CTX_BYTES 128   /* room reserved for struct <prefix>_ctx */
#define ALIGN_FLOATS 16 /* 64-byte alignment of every buffer */

/* ---- helpers for op emitters ------------------------------------------- */

static char *rotating(void)
{
    static char bufs[16][128];
    static int k;
    return bufs[k++ % 16];
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
        snprintf(b, 128, "nb");
    else
        snprintf(b, 128, "%d", n->shape.dim[d]);
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
        snprintf(b, 128, "(nb * %ld)", k);
    else
        snprintf(b, 128, "%ld", k);
    return b;
}

const char *emit_float(double v)
{
    char *b = rotating();
    NNC_ASSERT(isfinite(v));
    snprintf(b, 128, "%.9g", v);
    if (!strpbrk(b, ".e"))
        strcat(b, ".0");
    strcat(b, "f");
    return b;
}

/* ---- the layout ----------------------------------------------------------- */

typedef struct Layout {
    size_t *off;        /* float offset of each node's buffer, by id */
    size_t *state;      /* UPDATE nodes: offset of their first state buffer */
    size_t params, state_floats, acts, total;  /* region sizes in floats */
    bool *fwd;          /* node is computed by forward() */
} Layout;

static size_t align_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static bool has_buffer(const Node *n)
{
    return n->op != OP_INPUT && n->op != OP_TARGET && optab[n->op].kind != K_UPDATE;
}

static void layout(const Graph *g, Layout *l)
{
    memset(l, 0, sizeof *l);
    l->off = calloc((size_t)g->nnodes, sizeof(size_t));
    l->state = calloc((size_t)g->nnodes, sizeof(size_t));
    l->fwd = calloc((size_t)g->nnodes, sizeof(bool));
    NNC_ASSERT(l->off && l->state && l->fwd);
    size_t at = 0;
    for (int i = 0; i < g->nparams; i++) {
        l->off[g->params[i]] = at;
        at += align_up(shape_numel(&NODE(g, g->params[i])->shape));
    }
    l->params = at;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (optab[n->op].kind != K_UPDATE)
            continue;
        l->state[id] = at;
        at += (size_t)n->iattr[0] * align_up(shape_numel(&n->shape));
    }
    l->state_floats = at - l->params;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (n->op == OP_PARAM || !has_buffer(n))
            continue;
        l->off[id] = at;
        at += align_up(shape_numel(&n->shape));
    }
    l->acts = at - l->params - l->state_floats;
    l->total = at;
    /* forward(): the non-source ancestors of the output */
    l->fwd[g->output] = true;
    for (int id = (int)g->output; id >= 1; id--)
        if (l->fwd[id])
            for (int k = 0; k < g->nodes[id].nin; k++)
                l->fwd[g->nodes[id].in[k]] = true;
    for (int id = 1; id < g->nnodes; id++)
        if (optab[g->nodes[id].op].kind == K_SOURCE)
            l->fwd[id] = false;
}

static void layout_free(Layout *l)
{
    free(l->off);
    free(l->state);
    free(l->fwd);
}

static size_t mem_bytes(const Layout *l)
{
    return 63 + CTX_BYTES + l->total * sizeof(float);
}

/* ---- names ------------------------------------------------------------------ */

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

/* The buffer expression of a node. */
static const char *buf_of(const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    char *b = rotating();
    if (n->op == OP_INPUT)
        return "x";
    if (n->op == OP_TARGET)
        return "y";
    if (optab[n->op].kind == K_UPDATE)
        return buf_of(g, n->in[0]);
    if (n->op == OP_PARAM)
        snprintf(b, 128, "W_%s", c_ident(n->name));
    else
        snprintf(b, 128, "T%u", (unsigned)id);
    return b;
}

static const char *loc_str(Loc l)
{
    char *b = rotating();
    if (l.src)
        snprintf(b, 128, "%s:%d:%d", l.src->name, l.line, l.col);
    else
        snprintf(b, 128, "(generated)");
    return b;
}

/* ---- kernels ---------------------------------------------------------------- */

/* The element index into input `in` (broadcast to out) inside the loop
 * nest i0, i1, ... over out's dims. */
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

static void emit_ewise(Emit *e, const Graph *g, const Node *n, const char *out)
{
    bool flat = true;
    for (int k = 0; k < n->nin; k++)
        flat &= same_layout(NODE(g, n->in[k]), n);
    Buf idx[NNC_MAX_IN] = {{0}}, oidx = {0}, expr = {0};
    const char *args[NNC_MAX_IN];
    if (flat) {
        emit_line(e, "for (int i = 0; i < %s; i++)", emit_numel(n));
        buf_puts(&oidx, "i");
        for (int k = 0; k < n->nin; k++)
            buf_printf(&idx[k], "%s[i]", buf_of(g, n->in[k]));
    } else {
        for (int d = 0; d < n->shape.rank; d++) {
            emit_line(e, "for (int i%d = 0; i%d < %s; i%d++)", d, d, emit_dim(n, d), d);
            e->indent++;
        }
        bcast_expr(&oidx, n, n);
        for (int k = 0; k < n->nin; k++) {
            buf_printf(&idx[k], "%s[", buf_of(g, n->in[k]));
            bcast_expr(&idx[k], n, NODE(g, n->in[k]));
            buf_puts(&idx[k], "]");
        }
        e->indent -= n->shape.rank;
    }
    for (int k = 0; k < n->nin; k++)
        args[k] = idx[k].data;
    Buf *saved = e->out;
    e->out = &expr;
    optab[n->op].emit(e, g, n, args);
    e->out = saved;
    e->indent += flat ? 1 : n->shape.rank;
    emit_line(e, "%s[%s] = %s;", out, oidx.data, expr.data);
    e->indent -= flat ? 1 : n->shape.rank;
    for (int k = 0; k < n->nin; k++)
        buf_free(&idx[k]);
    buf_free(&oidx);
    buf_free(&expr);
}

static void emit_kernel(Emit *e, const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    const OpInfo *oi = &optab[n->op];
    Buf c = {0};
    buf_printf(&c, "/* %s %s%s: %s", loc_str(n->loc), n->what ? n->what : "",
               n->is_grad ? " (backward)" : "", op_name(n->op));
    for (int k = 0; k < n->nin; k++)
        buf_printf(&c, "%s%s %s", k ? ", " : " ", buf_of(g, n->in[k]),
                   shape_str(&NODE(g, n->in[k])->shape));
    buf_printf(&c, " -> %s %s", buf_of(g, id), shape_str(&n->shape));
    if (n->op == OP_MATMUL)
        buf_printf(&c, " (trans_a=%d, trans_b=%d)", n->iattr[0], n->iattr[1]);
    if (oi->kind == K_UPDATE)
        buf_printf(&c, " (update '%s')", n->name);
    buf_puts(&c, " */");
    emit_line(e, "%s", c.data);
    buf_free(&c);
    emit_line(e, "{");
    e->indent++;
    if (oi->kind == K_EWISE) {
        emit_ewise(e, g, n, buf_of(g, id));
    } else {
        const char *args[NNC_MAX_IN + 3];
        char st[2][64];
        for (int k = 0; k < n->nin; k++)
            args[k] = buf_of(g, n->in[k]);
        args[n->nin] = buf_of(g, id);
        if (oi->kind == K_UPDATE) {
            for (int s = 0; s < n->iattr[0] && s < 2; s++) {
                snprintf(st[s], sizeof st[s], "S%d_%s", s, c_ident(n->name));
                args[n->nin + 1 + s] = st[s];
            }
        }
        oi->emit(e, g, n, args);
    }
    e->indent--;
    emit_line(e, "}");
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

void emit_header(Buf *out, const Graph *g, const EmitOptions *o)
{
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    Layout l;
    layout(g, &l);
    const Node *x = NODE(g, g->input), *y = NODE(g, g->output);
    buf_printf(out, "\n/* ---- model '%s' (%s) ---- */\n\n", g->name, loc_str(g->loc));
    buf_printf(out, "#define %s_BATCH %d  /* training batch (rows per train_step) */\n", P,
               g->batch);
    Shape xs = {x->shape.rank - 1, {0}};
    memcpy(xs.dim, x->shape.dim + 1, sizeof(int) * (size_t)xs.rank);
    buf_printf(out, "#define %s_IN %d  /* floats per input sample %s */\n", P, per_sample(x),
               shape_str(&xs));
    buf_printf(out, "#define %s_OUT %d  /* floats per output sample */\n", P, per_sample(y));
    buf_printf(out, "#define %s_PARAMS %zu  /* trainable parameters */\n", P, count_params(g));
    buf_printf(out,
               "/* Exact bytes for %s_init: 63 (alignment slack) + %d (context)\n"
               " * + 4 * (%zu parameter + %zu optimizer state + %zu activation floats). */\n",
               p, CTX_BYTES, l.params, l.state_floats, l.acts);
    buf_printf(out, "#define %s_MEM_BYTES ((size_t)%zu)\n\n", P, mem_bytes(&l));
    buf_printf(out, "typedef struct %s_ctx %s_ctx;  /* opaque */\n\n", p, p);
    buf_printf(out,
        "/* A model with weights initialized from `seed` (Glorot uniform kernels,\n"
        " * zero biases; the same on every platform), in one allocation.\n"
        " * NULL if out of memory. */\n"
        "%s_ctx *%s_create(uint64_t seed);\n\n", p, p);
    buf_printf(out,
        "/* The same in caller memory: `mem` holds `bytes` >= %s_MEM_BYTES bytes, any\n"
        " * alignment; nothing is allocated. NULL if mem is NULL or too small. */\n"
        "%s_ctx *%s_init(void *mem, size_t bytes, uint64_t seed);\n\n",
        upper(p), p, p);
    buf_printf(out, "/* Frees a model from %s_create (not one from %s_init). */\n"
                    "void %s_destroy(%s_ctx *ctx);\n\n", p, p, p, p);
    buf_printf(out,
        "/* One optimizer step on one batch: x is %s_BATCH x %s_IN, y is\n"
        " * %s_BATCH x %s_OUT (row-major). Returns the batch's mean loss before the\n"
        " * update (NaN if an argument is NULL). Allocation-free. */\n"
        "float %s_train_step(%s_ctx *ctx, const float *x, const float *y);\n\n",
        upper(p), upper(p), upper(p), upper(p), p, p);
    buf_printf(out,
        "/* The model's output for n samples: x is n x %s_IN, y gets n x %s_OUT.\n"
        " * Any n; runs in chunks of up to %s_BATCH rows. Allocation-free.\n"
        " * 0 on success, NNC_ERR_ARG on a NULL argument. */\n"
        "int %s_predict(%s_ctx *ctx, const float *x, float *y, size_t n);\n\n",
        upper(p), upper(p), upper(p), p, p);
    buf_printf(out,
        "/* Checkpoints (safetensors; names as in the .nn source, dense weights\n"
        " * [out, in] like PyTorch). Save is atomic. Load validates the whole\n"
        " * file first and leaves the model untouched on error. 0 on success,\n"
        " * else a negative NNC_ERR_* code (see nnc_strerror). */\n"
        "int %s_save(const %s_ctx *ctx, const char *path);\n"
        "int %s_load(%s_ctx *ctx, const char *path);\n", p, p, p, p);
    layout_free(&l);
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

static void emit_layout(Emit *e, const Graph *g, const Layout *l, const char *p)
{
    Buf *out = e->out;
    buf_printf(out, "\n/* ======== model '%s' from %s ======== */\n\n", g->name, loc_str(g->loc));
    buf_printf(out, "struct %s_ctx {\n"
                    "    float *mem;      /* %zu floats, 64-byte aligned */\n"
                    "    void *owned;     /* the block from %s_create, or NULL */\n"
                    "    uint64_t step;   /* optimizer steps taken */\n"
                    "};\n", p, l->total, p);
    buf_printf(out, "typedef char %s_ctx_fits_[sizeof(struct %s_ctx) <= %d ? 1 : -1];\n\n",
               p, p, CTX_BYTES);
    buf_puts(out, "/* Buffers (float offsets into ctx->mem). */\n");
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        buf_printf(out, "#define %s (ctx->mem + %zu)  /* %s %s */\n", buf_of(g, g->params[i]),
                   l->off[g->params[i]], n->name, shape_str(&n->shape));
    }
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        size_t len = align_up(shape_numel(&n->shape));
        for (int s = 0; optab[n->op].kind == K_UPDATE && s < n->iattr[0]; s++)
            buf_printf(out, "#define S%d_%s (ctx->mem + %zu)  /* optimizer state %d of %s */\n",
                       s, c_ident(n->name), l->state[id] + (size_t)s * len, s, n->name);
    }
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (n->op == OP_PARAM || !has_buffer(n))
            continue;
        buf_printf(out, "#define %s (ctx->mem + %zu)  /* %s%s %s at %s */\n",
                   buf_of(g, (NodeId)id), l->off[id], op_name(n->op),
                   n->is_grad ? " (backward)" : "", shape_str(&n->shape), loc_str(n->loc));
    }
}

static void emit_undefs(Buf *out, const Graph *g)
{
    buf_puts(out, "\n");
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (n->op == OP_PARAM || has_buffer(n))
            buf_printf(out, "#undef %s\n", buf_of(g, (NodeId)id));
        for (int s = 0; optab[n->op].kind == K_UPDATE && s < n->iattr[0]; s++)
            buf_printf(out, "#undef S%d_%s\n", s, c_ident(n->name));
    }
}

static void emit_forward(Emit *e, const Graph *g, const Layout *l, const char *p)
{
    buf_printf(e->out, "\n/* The model's output for nb <= %d rows of x. */\n", g->batch);
    buf_printf(e->out, "static void %s_forward(%s_ctx *ctx, const float *x, int nb)\n{\n", p, p);
    e->indent = 1;
    for (int id = 1; id < g->nnodes; id++)
        if (l->fwd[id])
            emit_kernel(e, g, (NodeId)id);
    e->indent = 0;
    buf_puts(e->out, "}\n");
}

static void emit_train_step(Emit *e, const Graph *g, const Layout *l, const char *p)
{
    Buf *out = e->out;
    buf_printf(out, "\nfloat %s_train_step(%s_ctx *ctx, const float *x, const float *y)\n{\n",
               p, p);
    buf_printf(out, "    const int nb = %s_BATCH;\n", upper(p));
    buf_puts(out, "    float loss;\n");
    buf_puts(out, "    if (!ctx || !x || !y)\n        return NAN;\n");
    buf_printf(out, "    %s_forward(ctx, x, nb);\n", p);
    buf_puts(out, "    ctx->step++;\n");
    e->indent = 1;
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (l->fwd[id] || (optab[n->op].kind == K_SOURCE && n->op != OP_CONST))
            continue;
        emit_kernel(e, g, (NodeId)id);
        if ((NodeId)id == g->loss)
            emit_line(e, "loss = %s[0];", buf_of(g, (NodeId)id));
    }
    e->indent = 0;
    buf_puts(out, "    return loss;\n}\n");
}

static void emit_api(Emit *e, const Graph *g, const Layout *l, const char *p)
{
    Buf *out = e->out;
    char P[128];
    snprintf(P, sizeof P, "%s", upper(p));
    /* reset: parameter initialization */
    buf_printf(out, "\n/* Weights from the seed: Glorot uniform kernels, zero biases, in\n"
                    " * declaration order from one nnc_rng stream. */\n"
                    "static void %s_reset(%s_ctx *ctx, uint64_t seed)\n{\n"
                    "    nnc_rng rng;\n    nnc_rng_seed(&rng, seed);\n", p, p);
    buf_printf(out, "    memset(ctx->mem, 0, sizeof(float) * %zu);\n", l->total);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        if (n->init != INIT_GLOROT)
            continue;
        double lim = sqrt(6.0 / (n->fan_in + n->fan_out));
        buf_printf(out, "    nnc_fill_uniform(%s, %zu, %.17g, %.17g, &rng);  /* %s */\n",
                   buf_of(g, g->params[i]), shape_numel(&n->shape), -lim, lim, n->name);
    }
    buf_puts(out, "    ctx->step = 0;\n}\n");

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

    const Node *y = NODE(g, g->output);
    buf_printf(out, "\nint %s_predict(%s_ctx *ctx, const float *x, float *y, size_t n)\n{\n",
               p, p);
    buf_puts(out, "    size_t i;\n");
    buf_puts(out, "    if (!ctx || ((!x || !y) && n > 0))\n        return NNC_ERR_ARG;\n");
    buf_printf(out, "    for (i = 0; i < n; i += %s_BATCH) {\n", P);
    buf_printf(out, "        int nb = (int)(n - i < %s_BATCH ? n - i : %s_BATCH);\n", P, P);
    buf_printf(out, "        %s_forward(ctx, x + i * %s_IN, nb);\n", p, P);
    buf_printf(out, "        memcpy(y + i * %s_OUT, %s, sizeof(float) * (size_t)nb * %s_OUT);\n",
               P, buf_of(g, g->output), P);
    buf_puts(out, "    }\n    return 0;\n}\n");
    (void)y;

    /* checkpoints */
    buf_printf(out, "static void %s_tensors(const %s_ctx *ctx, nnc_tensor *t)\n{\n", p, p);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        buf_printf(out, "    t[%d].name = \"%s\";\n    t[%d].rank = %d;\n", i, n->name, i,
                   n->shape.rank);
        for (int d = 0; d < n->shape.rank; d++)
            buf_printf(out, "    t[%d].shape[%d] = %d;\n", i, d, n->shape.dim[d]);
        buf_printf(out, "    t[%d].data = %s;\n", i, buf_of(g, g->params[i]));
    }
    buf_puts(out, "}\n");
    buf_printf(out, "\nint %s_save(const %s_ctx *ctx, const char *path)\n{\n", p, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", g->nparams);
    buf_puts(out, "    char step[32];\n");
    buf_printf(out, "    const char *meta[] = {\"format\", \"nnc\", \"model\", \"%s\", "
                    "\"step\", step, NULL};\n", g->name);
    buf_puts(out, "    if (!ctx || !path)\n        return NNC_ERR_ARG;\n");
    buf_puts(out, "    snprintf(step, sizeof step, \"%lu\", (unsigned long)ctx->step);\n");
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    buf_printf(out, "    return nnc_ckpt_save(path, t, %d, meta);\n}\n", g->nparams);
    buf_printf(out, "\nint %s_load(%s_ctx *ctx, const char *path)\n{\n", p, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", g->nparams);
    buf_puts(out, "    if (!ctx || !path)\n        return NNC_ERR_ARG;\n");
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    buf_printf(out, "    return nnc_ckpt_load(path, t, %d);\n}\n", g->nparams);
}

void emit_source(Buf *out, const Graph *g, const EmitOptions *o)
{
    Layout l;
    layout(g, &l);
    Emit e = {out, g, 0};
    emit_layout(&e, g, &l, o->prefix);
    emit_forward(&e, g, &l, o->prefix);
    emit_train_step(&e, g, &l, o->prefix);
    emit_api(&e, g, &l, o->prefix);
    emit_undefs(out, g);
    layout_free(&l);
}
