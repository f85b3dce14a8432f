/*
 * test_ops.c - every op's emitted code, compiled and run under every ISA
 * the CPU has, against the op's reference evaluation in double.
 *
 * Driven by the op table, like tests/grad: for each op with a grad rule
 * it tries input shapes whose dims are awkward sizes (1, 7, 17, 33, 100),
 * with broadcasts, size-1 dims and rank 0, attribute values, and with or
 * without a batch dimension (emitted as `nb`), keeping the combinations
 * the op's shape rule accepts (the largest first, then a scrambled
 * variety). Its grad rule then adds the gradient ops (relu_back, col2im,
 * softmax_ce_back, ...) fed by the forward values, plus the attributes
 * only passes set (maxpool_back through a relu, a cropped im2col), and the
 * optimizer lowering (optim_build) makes the update ops. Every node
 * becomes a case: a C function holding what the op's emit rule writes,
 * called as codegen/emit_kernel.c calls it (K_EWISE expressions inside
 * the loop the emitter wraps around them, with broadcast indexing; other
 * kinds with buffer arguments, rank-0 inputs as C values, the output, then
 * an update's state buffers; `ctx->step`, `ctx->rng` and `lr` in scope). A
 * rule that writes differently for predict (Emit.predict) gets a predict
 * case too, and an F_SUMRIDER op one with a sum riding on it (Emit.sum).
 *
 * All cases go into one C file, compiled once with $CC against the
 * freshly built runtime (-std=c99 -Wall -Wextra -Wpedantic -Werror, as
 * users compile emitted code), and run once per ISA (NNC_ISA=scalar, avx2,
 * avx512, neon; one the CPU lacks is printed as skipped). Inputs are
 * rounded to float and the reference is the op's eval rule on the rounded
 * values; an element passes when |got - want| <= atol + rtol |want|.
 * Outputs start as NaN, so an element left unwritten fails; every float
 * the case should not write (its inputs, the gaps between buffers) must
 * come back bit for bit.
 *
 * References beyond the eval rules (documented overrides):
 *  - updates: their eval rule is the first step from the initial state;
 *    they also run from random state at step 3 against update_step
 *    (ops/update.c, which the eval rules use), checking the parameter and
 *    every state buffer;
 *  - dropout draws its mask from ctx->rng, not the eval rule's fixed mask:
 *    each element must be 0 or x / (1 - p), and the dropped fraction near
 *    p; in predict it is the identity;
 *  - batchnorm also updates its running statistics in the training step,
 *    and in predict normalizes with them (norm.c's formulas).
 * An op without any case fails the test (K_SOURCE ops compute nothing and
 * are exempt), so nobody can add an op whose emitted code is untested.
 * What the emitter adds around the rules (fused chains, GEMM epilogues,
 * sums riding on loops) is the end-to-end tests' business.
 *
 * Run by make check; NNC_OPTEST_KEEP=1 keeps the generated files.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nncrt.h"
#include "ops/ops.h"

/* Candidate input shapes (and preset output shapes for sum_to,
 * broadcast_to, reshape): dims from {1, 7, 17, 33, 100}. */
static const Shape shapes[] = {
    {0, {0}}, {1, {1}}, {1, {7}}, {1, {17}}, {1, {33}}, {1, {100}},
    {2, {7, 17}}, {2, {1, 17}}, {2, {7, 1}}, {2, {17, 33}}, {2, {33, 17}},
    {2, {17, 7}}, {2, {7, 33}}, {2, {1, 1}}, {2, {100, 33}}, {2, {1, 7}},
    {3, {7, 1, 17}}, {3, {1, 33, 1}}, {3, {7, 17, 33}}, {3, {7, 17, 17}},
    /* NHWC images for the window ops */
    {4, {1, 7, 17, 1}}, {4, {7, 7, 7, 1}}, {4, {1, 17, 33, 7}}, {4, {7, 17, 7, 1}},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))
/* Window attributes (kh, kw, sh, sw, same) for K_WINDOW ops. */
static const int windows[][5] = {
    {2, 2, 2, 2, 0}, {3, 3, 1, 1, 1}, {3, 2, 2, 1, 0}, {2, 2, 1, 1, 1}, {7, 7, 1, 1, 0},
};
#define NWINDOWS ((int)(sizeof windows / sizeof windows[0]))
/* fattr[0] of F_ATTR ops (slope, alpha, delta, eps, dropout rate);
 * fattr[1] is batchnorm's momentum. */
static const double fattrs[] = {0.3, 0.05};

/* Optimizers lowered to update nodes by optim_build. */
static const Optimizer optimizers[] = {
    {.kind = OPT_SGD, .lr = 0.1},
    {.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9},
    {.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01},
    {.kind = OPT_SGD, .lr = 0.1, .weight_decay = 0.01},
    {.kind = OPT_ADAM, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-7},
    {.kind = OPT_ADAM, .lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3, .weight_decay = 0.1},
    {.kind = OPT_ADAMW, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-7, .weight_decay = 0.1},
    {.kind = OPT_RMSPROP, .lr = 0.01, .rho = 0.9, .eps = 1e-7},
    {.kind = OPT_RMSPROP, .lr = 0.01, .rho = 0.9, .eps = 1e-7, .momentum = 0.5},
    {.kind = OPT_RMSPROP, .lr = 0.01, .rho = 0.8, .eps = 1e-7, .centered = true},
    {.kind = OPT_RMSPROP, .lr = 0.01, .rho = 0.9, .eps = 1e-7, .momentum = 0.5, .centered = true},
    {.kind = OPT_ADAGRAD, .lr = 0.1, .eps = 1e-7, .init = 0.1},
};
#define NOPTIMIZERS ((int)(sizeof optimizers / sizeof optimizers[0]))
/* Update shapes: parameters of awkward sizes. */
static const Shape update_shapes[] = {{1, {1}}, {1, {7}}, {2, {17, 33}}, {2, {100, 33}}};

#define PER_VARIANT 3   /* cases per (op, attributes, batched) */
#define PER_OP 12       /* cases per op */
#define UPDATE_STEP 3   /* ctx->step of update cases (bias corrections) */

/* An element passes when |got - want| <= ATOL + RTOL |want|: float code
 * against a double reference. No op needs a wider tolerance (the summary
 * prints each op's worst error as a fraction of it). */
#define ATOL 1e-5
#define RTOL 1e-4

/* ---- random values ----------------------------------------------------- */

static nnc_rng rng; /* the runtime's generator, seeded in main */

/* Uniform in [lo, hi), with all 53 bits (the float grid of
 * nnc_rng_uniform would make sums of inputs exact). */
static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(nnc_rng_next(&rng) >> 11) / 9007199254740992.0;
}

/* A value for an input of an op with these flags. */
static double value_for(unsigned flags)
{
    if (flags & F_PROB)
        return uniform(0.1, 0.9);
    double v;
    do
        v = uniform(-1, 1);
    while ((flags & F_KINK) && fabs(v) < 0.1); /* away from the kink */
    return v;
}

/* ---- the arena the generated program works in --------------------------- */

static float *arena;            /* initial contents (written to in.bin) */
static size_t arena_len, arena_cap;
/* What the gaps between buffers hold: a value that tells where it is, so
 * that a copy from one gap to another shows */
#define GUARD(i) (-10000.0f - (float)((i) % 4096))

/* A 64-byte aligned buffer of n floats, set to v (or NaN if v is NULL). */
static size_t arena_put(size_t n, const double *v)
{
    size_t at = align_floats(arena_len), end = at + align_floats(n ? n : 1) + ALIGN_FLOATS;
    if (end > arena_cap) {
        size_t cap = arena_cap ? arena_cap : 1 << 16;
        while (cap < end)
            cap *= 2;
        arena = realloc(arena, cap * sizeof(float));
        NNC_ASSERT(arena);
        arena_cap = cap;
    }
    for (size_t i = arena_len; i < end; i++)
        arena[i] = GUARD(i);
    for (size_t i = 0; i < n; i++)
        arena[at + i] = v ? (float)v[i] : NAN;
    arena_len = end;
    return at;
}

/* ---- cases ---------------------------------------------------------------- */

typedef enum { CHK_TOL, CHK_DROPOUT } CheckKind;
/* A case runs the training step's code (updates at step UPDATE_STEP from
 * random state), predict's, an update's first step from the initial
 * state (against the op's eval rule), or an F_SUMRIDER op's with the
 * per-channel sum of its output riding on it (Emit.sum). */
typedef enum { M_TRAIN, M_PREDICT, M_FIRST_STEP, M_SUM } Mode;
typedef struct Check {
    const char *what;   /* "output", "state 1", "running mean" */
    size_t off, n;      /* floats in the arena */
    double *want;       /* reference (CHK_DROPOUT: the kept value x / (1 - p)) */
    CheckKind kind;
} Check;

#define MAX_CHECKS 4
typedef struct Case {
    Graph *g;
    NodeId id;
    Mode mode;
    char sig[256];      /* op, shapes and attributes: messages, dedup */
    size_t in_off[NNC_MAX_IN], state_off[3];
    size_t out_off, sum_off; /* output; M_SUM: the riding sum */
    size_t lo, hi;          /* the arena range of the case */
    Check check[MAX_CHECKS];
    int nchecks;
} Case;

static Case *cases;
static int ncases, cases_cap;
static int per_op[OP_COUNT];
static int no_predict_ref[OP_COUNT];
static double worst_of[OP_COUNT]; /* worst error / tolerance, any ISA */
static int failures;
static Graph **graphs;  /* every graph holding cases (their emit rules read it) */
static int ngraphs, graphs_cap;

static void keep_graph(Graph *g)
{
    if (ngraphs == graphs_cap) {
        graphs_cap = graphs_cap ? 2 * graphs_cap : 256;
        graphs = realloc(graphs, (size_t)graphs_cap * sizeof(Graph *));
        NNC_ASSERT(graphs);
    }
    graphs[ngraphs++] = g;
}

#define FAIL(...) (failures++, printf("FAIL: " __VA_ARGS__), putchar('\n'))

static void signature(const Graph *g, const Node *n, Mode mode, char *buf, size_t len)
{
    static const char *what[] = {"", " (predict)", " (first step)", " (with a riding sum)"};
    size_t at = (size_t)snprintf(buf, len, "%s%s", op_name(n->op), what[mode]);
    for (int k = 0; k < n->nin && at < len; k++) {
        const Node *x = NODE(g, n->in[k]);
        at += (size_t)snprintf(buf + at, len - at, "%s%s%s", k ? ", " : " ", shape_str(&x->shape),
                               x->bmask ? "b" : "");
    }
    if (at < len)
        at += (size_t)snprintf(buf + at, len - at, " -> %s%s", shape_str(&n->shape),
                               n->bmask ? "b" : "");
    for (int i = 0; i < 8 && at < len; i++)
        if (n->iattr[i])
            at += (size_t)snprintf(buf + at, len - at, " i%d=%d", i, n->iattr[i]);
    for (int i = 0; i < 6 && at < len; i++)
        if (n->fattr[i] != 0)
            at += (size_t)snprintf(buf + at, len - at, " f%d=%g", i, n->fattr[i]);
}

static bool seen(const char *sig)
{
    for (int i = 0; i < ncases; i++)
        if (!strcmp(cases[i].sig, sig))
            return true;
    return false;
}

static double *dup_values(const double *v, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    NNC_ASSERT(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)(float)v[i];
    return d;
}

static void add_check(Case *c, const char *what, size_t off, size_t n, double *want,
                      CheckKind kind)
{
    NNC_ASSERT(c->nchecks < MAX_CHECKS);
    c->check[c->nchecks++] = (Check){what, off, n, want, kind};
}

/* Batchnorm's running statistics after a training step (norm.c), and its
 * predict output from them. */
static void batchnorm_running(const Node *n, const double *const *in, double *rm, double *rv)
{
    int c = n->shape.dim[n->shape.rank - 1];
    size_t m = shape_numel(&n->shape) / (size_t)c;
    double k = n->fattr[1];
    for (int j = 0; j < c; j++) {
        double s = 0, v = 0;
        for (size_t r = 0; r < m; r++)
            s += in[0][r * (size_t)c + (size_t)j];
        double mu = s / (double)m;
        for (size_t r = 0; r < m; r++)
            v += (in[0][r * (size_t)c + (size_t)j] - mu) * (in[0][r * (size_t)c + (size_t)j] - mu);
        double vb = v / (double)m, unb = m > 1 ? vb * (double)m / (double)(m - 1) : vb;
        rm[j] = k * in[1][j] + (1 - k) * mu;
        rv[j] = k * in[2][j] + (1 - k) * unb;
    }
}

static bool has_predict_ref(Op op)
{
    return op == OP_DROPOUT || op == OP_BATCHNORM;
}

/* The reference of a predict case; false if the test knows none. */
static bool predict_ref(const Node *n, const double *const *in, double *out)
{
    size_t len = shape_numel(&n->shape);
    int c = n->shape.dim[n->shape.rank - 1];
    switch (n->op) {
    case OP_DROPOUT:
        memcpy(out, in[0], len * sizeof(double));
        return true;
    case OP_BATCHNORM:
        for (size_t i = 0; i < len; i++)
            out[i] = (in[0][i] - in[1][i % (size_t)c]) / sqrt(in[2][i % (size_t)c] + n->fattr[0]);
        return true;
    default:
        return false;
    }
}

/* An update's output is its parameter, updated in place with its state:
 * at step UPDATE_STEP from random state (positive where a square root
 * reads it) against update_step, or at step 1 from the initial state
 * (zeros, Adagrad's initial accumulator) against the op's eval rule. */
static void update_checks(Case *c, const double *const *in)
{
    const Graph *g = c->g;
    const Node *n = NODE(g, c->id);
    size_t len = shape_numel(&n->shape);
    bool first = c->mode == M_FIRST_STEP;
    double *want = malloc((len ? len : 1) * sizeof(double)), *s[3] = {0};
    NNC_ASSERT(want);
    c->out_off = c->in_off[0];
    memcpy(want, in[0], len * sizeof(double));
    for (int k = 0; k < n->iattr[0]; k++) {
        const char *name = optim_state_name(&g->opt, k);
        bool positive = strstr(name, "sq") || strstr(name, "square") || !strcmp(name, "sum");
        double init[len ? len : 1];
        for (size_t i = 0; i < len; i++)
            init[i] = first ? (n->op == OP_ADAGRAD ? n->fattr[2] : 0)
                            : (double)(float)(positive ? uniform(0.5, 1.5) : uniform(-0.3, 0.3));
        c->state_off[k] = arena_put(len, init);
        s[k] = dup_values(init, len);
    }
    update_step(n, len, want, in[1], s, first ? 1 : UPDATE_STEP, n->fattr[0]);
    if (first)
        optab[n->op].eval(g, n, in, want);
    add_check(c, "parameter", c->out_off, len, want, CHK_TOL);
    for (int k = 0; k < n->iattr[0]; k++)
        add_check(c, optim_state_name(&g->opt, k), c->state_off[k], len, s[k], CHK_TOL);
}

/* Other ops: the output against the eval rule, but for the overrides of
 * the header comment (dropout's drawn mask, predict, batchnorm's running
 * statistics). */
static void op_checks(Case *c, const double *const *in)
{
    const Node *n = NODE(c->g, c->id);
    size_t len = shape_numel(&n->shape);
    double *want = calloc(len ? len : 1, sizeof(double));
    NNC_ASSERT(want);
    c->out_off = arena_put(len, NULL);
    if (c->mode == M_PREDICT) {
        NNC_ASSERT(predict_ref(n, in, want));
    } else if (n->op == OP_DROPOUT) {
        for (size_t i = 0; i < len; i++)
            want[i] = in[0][i] / (1 - n->fattr[0]);
    } else {
        optab[n->op].eval(c->g, n, in, want);
    }
    add_check(c, "output", c->out_off, len, want,
              n->op == OP_DROPOUT && c->mode != M_PREDICT ? CHK_DROPOUT : CHK_TOL);
    if (c->mode == M_SUM) {
        size_t ch = (size_t)n->shape.dim[n->shape.rank - 1];
        double *sum = calloc(ch, sizeof(double));
        NNC_ASSERT(sum);
        for (size_t i = 0; i < len; i++)
            sum[i % ch] += want[i];
        c->sum_off = arena_put(ch, NULL);
        add_check(c, "riding sum", c->sum_off, ch, sum, CHK_TOL);
    }
    if (n->op == OP_BATCHNORM && c->mode != M_PREDICT) {
        int ch = n->shape.dim[n->shape.rank - 1];
        double *rm = calloc((size_t)ch, sizeof(double)), *rv = calloc((size_t)ch, sizeof(double));
        NNC_ASSERT(rm && rv);
        batchnorm_running(n, in, rm, rv);
        add_check(c, "running mean", c->in_off[1], (size_t)ch, rm, CHK_TOL);
        add_check(c, "running variance", c->in_off[2], (size_t)ch, rv, CHK_TOL);
    }
}

/* Makes node `id` of g a case; vals are the graph's values (eval_graph)
 * or NULL for an update (whose inputs are sampled here). */
static void add_case(Graph *g, NodeId id, Mode mode, double **vals)
{
    const Node *n = NODE(g, id);
    const OpInfo *oi = &optab[n->op];
    if (oi->kind == K_SOURCE || (per_op[n->op] >= PER_OP && oi->kind != K_UPDATE))
        return; /* (updates are not searched for: each is wanted) */
    for (int k = 0; k < n->nin; k++) {
        const Node *x = NODE(g, n->in[k]);
        if (__builtin_popcount(x->bmask) > 1)
            return;
        /* a rank-0 input of a non-elementwise op is passed as a C value
         * (ops.def), which only the loss gradients' dl is meant for */
        if (x->shape.rank == 0 && oi->kind != K_EWISE && oi->kind != K_LOSS)
            return;
    }
    if (__builtin_popcount(n->bmask) > 1)
        return;
    char sig[256];
    signature(g, n, mode, sig, sizeof sig);
    if (seen(sig))
        return;
    if (ncases == cases_cap) {
        cases_cap = cases_cap ? 2 * cases_cap : 256;
        cases = realloc(cases, (size_t)cases_cap * sizeof(Case));
        NNC_ASSERT(cases);
    }
    Case *c = &cases[ncases];
    memset(c, 0, sizeof *c);
    c->g = g;
    c->id = id;
    c->mode = mode;
    snprintf(c->sig, sizeof c->sig, "%s", sig);
    c->lo = arena_len;
    double *in[NNC_MAX_IN] = {0};
    for (int k = 0; k < n->nin; k++) {
        const Node *x = NODE(g, n->in[k]);
        size_t xn = shape_numel(&x->shape);
        if (vals) {
            in[k] = dup_values(vals[n->in[k]], xn);
        } else {
            in[k] = malloc(xn * sizeof(double));
            NNC_ASSERT(in[k]);
            for (size_t i = 0; i < xn; i++)
                in[k][i] = (double)(float)uniform(-1, 1);
        }
        c->in_off[k] = 0;
        for (int j = 0; j < k; j++)   /* the same node twice: one buffer */
            if (n->in[j] == n->in[k])
                c->in_off[k] = c->in_off[j];
        if (!c->in_off[k])
            c->in_off[k] = arena_put(xn, in[k]);
    }
    if (oi->kind == K_UPDATE)
        update_checks(c, (const double *const *)in);
    else
        op_checks(c, (const double *const *)in);
    for (int k = 0; k < n->nin; k++)
        free(in[k]);
    c->hi = arena_len;
    per_op[n->op]++;
    ncases++;
}

/* ---- what the emit rules write -------------------------------------------- */

/* The index into x's buffer of the element that x, broadcast to out's
 * shape (numpy rules), has at position (i0, i1, ...) of out: the same
 * expression the emitter's loop kernels index operands with. */
static void operand_index(Buf *b, const Node *out, const Node *x)
{
    int off = out->shape.rank - x->shape.rank;
    const char *plus = "";
    for (int d = off; d < out->shape.rank; d++) {
        int xd = d - off;
        if (x->shape.dim[xd] == 1 && !(x->bmask & (1u << xd)))
            continue; /* broadcast along d */
        buf_printf(b, "%si%d", plus, d);
        for (int k = xd + 1; k < x->shape.rank; k++)
            buf_printf(b, " * %s", emit_dim(x, k));
        plus = " + ";
    }
    if (!*plus)
        buf_puts(b, "0");
}

/* A K_EWISE op as the emitter's loop kernel of one member: flat when every
 * operand has the output's layout, else a nest with broadcast indexing. */
static void emit_ewise(Emit *e, const Graph *g, const Node *n, NodeId id)
{
    bool flat = true;
    for (int k = 0; k < n->nin; k++) {
        const Node *x = NODE(g, n->in[k]);
        if (x->shape.rank > 0 && !(shape_eq(&x->shape, &n->shape) && x->bmask == n->bmask))
            flat = false;
    }
    if (n->shape.rank == 0)
        flat = true;
    int depth = flat ? 1 : n->shape.rank;
    if (flat) {
        emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(n));
        e->indent++;
    }
    for (int d = 0; !flat && d < n->shape.rank; d++) {
        emit_line(e, "for (int i%d = 0; i%d < %s; i%d++)%s", d, d, emit_dim(n, d), d,
                  d == n->shape.rank - 1 ? " {" : "");
        e->indent++;
    }
    Buf args[NNC_MAX_IN] = {{0}}, expr = {0}, idx = {0};
    const char *a[NNC_MAX_IN];
    for (int k = 0; k < n->nin; k++) {
        const Node *x = NODE(g, n->in[k]);
        buf_printf(&args[k], "t%u[", (unsigned)n->in[k]);
        if (flat)
            buf_puts(&args[k], x->shape.rank ? "i" : "0");
        else
            operand_index(&args[k], n, x);
        buf_puts(&args[k], "]");
        a[k] = args[k].data;
    }
    /* the rule appends its expression to the emitter's output */
    Emit sub = *e;
    sub.out = &expr;
    optab[n->op].emit(&sub, g, n, a);
    emit_line(e, "const float v%u = %s;", (unsigned)id, expr.data);
    if (flat)
        buf_puts(&idx, "i");
    else
        operand_index(&idx, n, n);
    emit_line(e, "t%u[%s] = v%u;", (unsigned)id, idx.data, (unsigned)id);
    e->indent--;
    emit_line(e, "}");
    e->indent -= depth - 1;
    for (int k = 0; k < n->nin; k++)
        buf_free(&args[k]);
    buf_free(&expr);
    buf_free(&idx);
}

/* The statements of node id alone (as emit_kernel.c's emit_single calls it). */
static void emit_op(Emit *e, const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    if (optab[n->op].kind == K_EWISE) {
        emit_ewise(e, g, n, id);
        return;
    }
    char names[NNC_MAX_IN + 4][32];
    const char *a[NNC_MAX_IN + 4];
    for (int k = 0; k < n->nin; k++) {
        snprintf(names[k], sizeof names[k], NODE(g, n->in[k])->shape.rank ? "t%u" : "t%u[0]",
                 (unsigned)n->in[k]);
        a[k] = names[k];
    }
    snprintf(names[n->nin], sizeof names[0], "t%u",
             (unsigned)(optab[n->op].kind == K_UPDATE ? n->in[0] : id));
    a[n->nin] = names[n->nin];
    for (int s = 0; optab[n->op].kind == K_UPDATE && s < n->iattr[0] && s < 3; s++) {
        snprintf(names[n->nin + 1 + s], sizeof names[0], "S%d", s);
        a[n->nin + 1 + s] = names[n->nin + 1 + s];
    }
    optab[n->op].emit(e, g, n, a);
}

/* What the rule writes, as text (to see whether predict changes it). */
static char *emit_text(const Graph *g, NodeId id, bool predict)
{
    Buf b = {0};
    Emit e = {.out = &b, .g = g, .indent = 0, .predict = predict};
    emit_op(&e, g, id);
    buf_puts(&b, "");
    return b.data;
}

static void emit_case(Buf *out, const Case *c, int index)
{
    const Graph *g = c->g;
    const Node *n = NODE(g, c->id);
    Emit e = {.out = out, .g = g, .indent = 1, .predict = c->mode == M_PREDICT,
              .sum = c->mode == M_SUM ? "R" : NULL};
    buf_printf(out, "\n/* case %d: %s */\nstatic void case_%d(struct ctx *ctx, float *B)\n{\n",
               index, c->sig, index);
    emit_line(&e, "const int nb = %d;", g->batch);
    emit_line(&e, "const double lr = %.17g;", n->fattr[0]);
    emit_line(&e, "(void)ctx;");
    emit_line(&e, "(void)nb;");
    emit_line(&e, "(void)lr;");
    for (int k = 0; k < n->nin; k++) {
        bool again = false;
        for (int j = 0; j < k; j++)
            again |= n->in[j] == n->in[k];
        if (!again)
            emit_line(&e, "float *const t%u = B + %zu;", (unsigned)n->in[k], c->in_off[k]);
    }
    if (optab[n->op].kind == K_UPDATE) {
        for (int s = 0; s < n->iattr[0]; s++)
            emit_line(&e, "float *const S%d = B + %zu;", s, c->state_off[s]);
    } else {
        emit_line(&e, "float *const t%u = B + %zu;", (unsigned)c->id, c->out_off);
    }
    if (c->mode == M_SUM)
        emit_line(&e, "float *const R = B + %zu;", c->sum_off);
    emit_line(&e, "{");
    e.indent++;
    emit_op(&e, g, c->id);
    e.indent--;
    emit_line(&e, "}");
    buf_puts(out, "}\n");
}

/* The program: reads the arena, runs every case, writes the arena. */
static void emit_program(Buf *out)
{
    buf_puts(out, "/* Generated by tests/ops/test_ops.c: one function per case. */\n"
                  "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n"
                  "#include <stdlib.h>\n#include <string.h>\n\n#include \"nncrt.h\"\n\n"
                  "struct ctx {\n    float *mem;\n    void *owned;\n    uint64_t step;\n"
                  "    uint64_t seed;\n    nnc_rng rng;\n    double lr;\n    double lr_step;\n};\n");
    for (int i = 0; i < ncases; i++)
        emit_case(out, &cases[i], i);
    buf_puts(out, "\nstatic void (*const cases[])(struct ctx *, float *) = {\n");
    for (int i = 0; i < ncases; i++)
        buf_printf(out, "    case_%d,\n", i);
    buf_puts(out, "};\n\n/* ctx->step of each case */\nstatic const int steps[] = {");
    for (int i = 0; i < ncases; i++)
        buf_printf(out, "%s%d,", i % 16 ? " " : "\n    ",
                   cases[i].mode == M_FIRST_STEP ? 1 : UPDATE_STEP);
    buf_puts(out, "\n};\n\n");
    buf_printf(out,
        "int main(int argc, char **argv)\n{\n"
        "    FILE *f;\n    long len;\n    char *raw;\n    float *B;\n    struct ctx c;\n"
        "    size_t i;\n"
        "    if (argc != 3 || !(f = fopen(argv[1], \"rb\")))\n        return 2;\n"
        "    fseek(f, 0, SEEK_END);\n    len = ftell(f);\n    rewind(f);\n"
        "    raw = malloc((size_t)len + 64);\n"
        "    if (!raw)\n        return 2;\n"
        "    B = (float *)(void *)(raw + (64 - (uintptr_t)raw %% 64) %% 64);\n"
        "    if (fread(B, 1, (size_t)len, f) != (size_t)len)\n        return 2;\n"
        "    fclose(f);\n"
        "    printf(\"%%s\\n\", nnc_isa());\n"
        "    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {\n"
        "        memset(&c, 0, sizeof c);\n"
        "        c.step = (uint64_t)steps[i];\n        c.seed = 7;\n        c.lr = 0.01;\n"
        "        nnc_rng_seed(&c.rng, UINT64_C(0x9E3779B97F4A7C15) * (i + 1));\n"
        "        cases[i](&c, B);\n    }\n"
        "    if (!(f = fopen(argv[2], \"wb\")) || fwrite(B, 1, (size_t)len, f) != (size_t)len)\n"
        "        return 2;\n"
        "    fclose(f);\n    free(raw);\n    return 0;\n}\n");
}

/* ---- building the cases ----------------------------------------------------- */

static int variants_of(const OpInfo *oi)
{
    Op op = (Op)(oi - optab);
    if (oi->kind == K_CONTRACT || op == OP_BMATMUL || op == OP_TRANSPOSE || op == OP_NARROW)
        return 4;
    if (oi->kind == K_WINDOW)
        return NWINDOWS;
    if (oi->flags & F_ATTR)
        return (int)(sizeof fattrs / sizeof fattrs[0]);
    return 1;
}

/* Builds op on inputs of shapes si[] (a batch dim on the leading axis of
 * the rank >= 2 inputs that share input 0's, or with F_ROWS input 1's,
 * first dim, when batched), variant v of its attributes, preset shape
 * `preset` (sum_to, broadcast_to, reshape read it). NULL if the shape
 * rule rejects it. */
static Graph *build(Op op, const int *si, int v, bool batched, int preset, NodeId *y)
{
    const OpInfo *oi = &optab[op];
    int lead = oi->flags & F_ROWS ? 1 : 0, b = 0;
    if (batched) {
        const Shape *s = &shapes[si[lead]];
        if (s->rank < 2 || s->dim[0] < 2)
            return NULL;
        b = s->dim[0];
    }
    Graph *g = malloc(sizeof *g);
    NNC_ASSERT(g);
    graph_init(g, "ops", batched ? b : 1);
    Node proto = {0};
    proto.op = op;
    proto.nin = oi->arity;
    for (int k = 0; k < oi->arity; k++) {
        proto.in[k] = graph_param(g, (Loc){0}, "x", &shapes[si[k]], INIT_ZERO, 0, 0);
        const Shape *s = &shapes[si[k]];
        if (batched && s->rank >= 2 && s->dim[0] == b && !(k == 0 && lead))
            NODE(g, proto.in[k])->bmask = 1;
    }
    int r = shapes[si[0]].rank;
    if (oi->kind == K_CONTRACT || op == OP_BMATMUL) {
        proto.iattr[0] = v & 1;
        proto.iattr[1] = v >> 1;
    } else if (op == OP_TRANSPOSE) {
        /* v: reverse the axes, swap the first two (the last stays: rows
         * are copied whole), rotate left or right */
        for (int d = 0; d < r; d++)
            proto.iattr[d] = v == 0 ? r - 1 - d
                             : v == 1 ? (d < 2 && r >= 2 ? 1 - d : d)
                             : v == 2 ? (d + 1) % r : (d + r - 1) % r;
    } else if (op == OP_NARROW && r > 0) {
        /* v: along the last or the first axis; the tail or the middle */
        int axis = v & 1 ? 0 : r - 1, n = shapes[si[0]].dim[axis];
        proto.iattr[0] = axis;
        proto.iattr[1] = v & 2 ? n / 3 : n / 2;
        proto.iattr[2] = v & 2 ? (n + 2) / 3 : n - n / 2;
    } else if (oi->kind == K_WINDOW) {
        memcpy(proto.iattr, windows[v], sizeof windows[v]);
    } else if (oi->flags & F_ATTR) {
        proto.fattr[0] = fattrs[v];
        proto.fattr[1] = 0.9;
    }
    proto.shape = shapes[preset];
    const Node *x = NODE(g, proto.in[0]);
    if (proto.shape.rank && x->shape.rank && proto.shape.dim[0] == x->shape.dim[0])
        proto.bmask = x->bmask & 1u;
    bool quiet = diag_quiet;
    diag_quiet = true;
    *y = graph_add_node(g, &proto);
    diag_quiet = quiet;
    /* one batch dim at most (inputs batched on dims that do not line up
     * are no real graph) */
    if (*y && __builtin_popcount(NODE(g, *y)->bmask) > 1)
        *y = NODE_NONE;
    if (!*y) {
        graph_free(g);
        free(g);
        return NULL;
    }
    return g;
}

/* Does the op's shape rule read the preset output shape? Probed: two
 * presets that give different results. */
static bool reads_preset(Op op)
{
    int si[NNC_MAX_IN] = {6, 6, 6, 6}; /* (7, 17) */
    NodeId y1, y2;
    Graph *a = build(op, si, 0, false, 6, &y1), *b = build(op, si, 0, false, 3, &y2);
    bool differ = !a != !b || (a && !shape_eq(&NODE(a, y1)->shape, &NODE(b, y2)->shape));
    if (a)
        graph_free(a);
    if (b)
        graph_free(b);
    free(a);
    free(b);
    return differ;
}

/* Values of the sources of a case graph, by the forward op's flags. */
static double **sources(Graph *g, Op op, NodeId y)
{
    const OpInfo *oi = &optab[op];
    const Node *n = NODE(g, y);
    double **src = calloc((size_t)g->nnodes, sizeof(double *));
    NNC_ASSERT(src);
    for (int id = 1; id < g->nnodes; id++) {
        const Node *s = NODE(g, id);
        if (optab[s->op].kind != K_SOURCE)
            continue;
        size_t len = shape_numel(&s->shape);
        src[id] = malloc((len ? len : 1) * sizeof(double));
        NNC_ASSERT(src[id]);
        int k = 0;
        while (k < n->nin && n->in[k] != (NodeId)id)
            k++;
        for (size_t i = 0; i < len; i++) {
            if (k == n->nin)                 /* the output gradient */
                src[id][i] = uniform(-1, 1);
            else if (oi->kind == K_CHANNEL && k > 0)
                src[id][i] = uniform(0.1, 1.1); /* running statistics */
            else
                src[id][i] = value_for(oi->flags);
        }
        if (k == 1 && (oi->flags & F_INDEX)) {
            const Shape *s0 = &NODE(g, n->in[0])->shape;
            int classes = oi->flags & F_ROWS ? s0->dim[0] : s0->dim[s0->rank - 1];
            for (size_t i = 0; i < len; i++)
                src[id][i] = floor(uniform(0, classes)) + uniform(0, 0.5);
            if ((oi->flags & F_ROWS) && len >= 3) { /* ids outside the table */
                src[id][1] = -0.5;
                src[id][2] = classes;
            }
        }
    }
    return src;
}

/* Cases of one built graph: y, its gradient ops and their variants made
 * by passes (maxpool_back through a relu, a cropped im2col). */
static void add_graph(Graph *g, Op op, NodeId y)
{
    NodeId first = (NodeId)g->nnodes;
    if (optab[op].grad) {
        NodeId dx[NNC_MAX_IN] = {0};
        const Node *n = NODE(g, y);
        NodeId dy = graph_param(g, (Loc){0}, "dy", &n->shape, INIT_ZERO, 0, 0);
        NODE(g, dy)->bmask = NODE(g, y)->bmask;
        first = (NodeId)g->nnodes;
        optab[op].grad(g, y, dy, dx);
    }
    int last = g->nnodes;
    for (int id = (int)y; id < last; id++) {
        Node proto = *NODE(g, (NodeId)id);
        if (proto.op == OP_MAXPOOL_BACK) {
            proto.iattr[7] = 1;
        } else if (proto.op == OP_IM2COL && proto.shape.dim[1] > 1) {
            proto.iattr[5] = proto.shape.dim[1] - 1;
            proto.iattr[6] = proto.shape.dim[2];
        } else {
            continue;
        }
        graph_add_node(g, &proto);
    }
    double **src = sources(g, op, y);
    double **vals = eval_graph(g, src);
    for (int id = (int)y; id < g->nnodes; id++) {
        if (id != (int)y && id < (int)first)
            continue; /* dy */
        add_case(g, (NodeId)id, M_TRAIN, vals);
        char *train = emit_text(g, (NodeId)id, false), *pred = emit_text(g, (NodeId)id, true);
        Op o = NODE(g, (NodeId)id)->op;
        if (optab[o].flags & F_SUMRIDER)
            add_case(g, (NodeId)id, M_SUM, vals);
        if (strcmp(train, pred) && has_predict_ref(o))
            add_case(g, (NodeId)id, M_PREDICT, vals);
        else if (strcmp(train, pred) && !no_predict_ref[o]++)
            FAIL("op %s writes other code for predict, and the test has no predict reference",
                 op_name(o));
        free(train);
        free(pred);
    }
    eval_free(g, vals);
    for (int id = 0; id < g->nnodes; id++)
        free(src[id]);
    free(src);
}

/* Tries the combination of input shapes number `combo` (with every preset
 * if the op reads one); true if it gave new cases. */
static bool try_combo(Op op, int combo, int v, bool preset)
{
    int si[NNC_MAX_IN] = {0}, r = combo;
    for (int k = 0; k < optab[op].arity; k++) {
        si[k] = r % NSHAPES;
        r /= NSHAPES;
    }
    for (int p = 0; p < (preset ? NSHAPES : 1); p++) {
        NodeId y;
        Graph *g = build(op, si, v >> 1, v & 1, (p + combo) % NSHAPES, &y);
        if (!g)
            continue;
        char sig[256];
        signature(g, NODE(g, y), M_TRAIN, sig, sizeof sig);
        int before = ncases;
        if (!seen(sig))
            add_graph(g, op, y);
        if (ncases > before) {
            keep_graph(g);
            return true;
        }
        graph_free(g);
        free(g);
    }
    return false;
}

static size_t combo_numel(const OpInfo *oi, int combo)
{
    size_t n = 0;
    for (int k = 0; k < oi->arity; k++, combo /= NSHAPES)
        n += shape_numel(&shapes[combo % NSHAPES]);
    return n;
}

static int by_numel_desc(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Cases of one op with a grad rule: for each variant (attributes, with or
 * without a batch dim) the largest accepted combination of input shapes
 * (the kernels' blocked paths), then others in a scrambled order (small
 * and size-1 dims), up to PER_VARIANT, PER_OP in all. */
static void build_op(Op op)
{
    const OpInfo *oi = &optab[op];
    int total = 1;
    for (int k = 0; k < oi->arity; k++)
        total *= NSHAPES;
    size_t (*order)[2] = malloc((size_t)total * sizeof *order);
    NNC_ASSERT(order);
    for (int c = 0; c < total; c++) {
        order[c][0] = combo_numel(oi, c);
        order[c][1] = (size_t)c;
    }
    qsort(order, (size_t)total, sizeof *order, by_numel_desc);
    bool preset = reads_preset(op);
    int nv = variants_of(oi);
    for (int v = 0; v < 2 * nv; v++) {
        int taken = 0;
        for (int j = 0; j < total && !taken; j++)
            taken += try_combo(op, (int)order[j][1], v, preset);
        for (int j = 0; j < total && taken < PER_VARIANT && per_op[op] < PER_OP; j++)
            taken += try_combo(op, (int)(((long long)j * 7919 + 13 + v * 104729LL) % total), v,
                               preset);
    }
    free(order);
}

/* Update ops, as optim_build lowers each optimizer for one parameter. */
static void build_updates(void)
{
    for (int o = 0; o < NOPTIMIZERS; o++)
        for (size_t s = 0; s < sizeof update_shapes / sizeof update_shapes[0]; s++) {
            Graph *g = malloc(sizeof *g);
            NNC_ASSERT(g);
            graph_init(g, "ops", 1);
            g->opt = optimizers[o];
            NodeId p = graph_param(g, (Loc){0}, "w", &update_shapes[s], INIT_ZERO, 0, 0);
            NodeId dp = graph_param(g, (Loc){0}, "dw", &update_shapes[s], INIT_ZERO, 0, 0);
            g->grads = calloc((size_t)g->nparams, sizeof(NodeId)); /* dw: none */
            NNC_ASSERT(g->grads && g->params[0] == p);
            g->grads[0] = dp;
            int before = g->nnodes;
            optim_build(g);
            NNC_ASSERT(g->nnodes == before + 1);
            add_case(g, (NodeId)before, M_TRAIN, NULL);
            if (s % 2 == 0)
                add_case(g, (NodeId)before, M_FIRST_STEP, NULL);
            keep_graph(g);
        }
}

/* ---- running and comparing ------------------------------------------------- */

static bool write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(p, 1, n, f) == n;
    if (f)
        ok &= fclose(f) == 0;
    return ok;
}

/* Compares the arena after a run under `isa` with the references. */
static void compare(const float *got, const char *isa)
{
    unsigned char *checked = calloc(arena_len, 1);
    NNC_ASSERT(checked);
    for (int ci = 0; ci < ncases; ci++) {
        const Case *c = &cases[ci];
        const Node *n = NODE(c->g, c->id);
        for (int k = 0; k < c->nchecks; k++) {
            const Check *ck = &c->check[k];
            size_t bad = 0, worst_i = 0, dropped = 0;
            double worst = -1;
            for (size_t i = 0; i < ck->n; i++) {
                double g = got[ck->off + i], w = ck->want[i];
                checked[ck->off + i] = 1;
                if (ck->kind == CHK_DROPOUT && g == 0) {
                    dropped++;
                    continue;
                }
                double err = isnan(w) && isnan(g) ? 0
                           : isnan(w) || isnan(g) ? INFINITY
                           : fabs(g - w) / (ATOL + RTOL * fabs(w));
                if (!(err <= 1))
                    bad++;
                if (!(err <= worst_of[n->op]))
                    worst_of[n->op] = err;
                if (!(err <= worst)) {
                    worst = err;
                    worst_i = i;
                }
            }
            if (bad)
                FAIL("%s, case %d (%s) under %s: %s element %zu of %zu is %.9g, want %.9g "
                     "(%zu elements outside %g + %g |want|)", op_name(n->op), ci, c->sig, isa,
                     ck->what, worst_i, ck->n, got[ck->off + worst_i], ck->want[worst_i], bad,
                     ATOL, RTOL);
            if (ck->kind == CHK_DROPOUT && ck->n >= 100) {
                double p = n->fattr[0], frac = (double)dropped / (double)ck->n;
                if (fabs(frac - p) > 5 * sqrt(p * (1 - p) / (double)ck->n) + 1.0 / (double)ck->n)
                    FAIL("%s, case %d (%s) under %s: dropped %zu of %zu elements at rate %g",
                         op_name(n->op), ci, c->sig, isa, dropped, ck->n, p);
            }
        }
    }
    /* everything else must be as it was: inputs, the gaps between buffers */
    for (size_t i = 0; i < arena_len; i++) {
        if (checked[i] || !memcmp(&got[i], &arena[i], sizeof(float)))
            continue;
        int ci = 0;
        while (ci < ncases && !(cases[ci].lo <= i && i < cases[ci].hi))
            ci++;
        FAIL("%s, case %d (%s) under %s: wrote %.9g at arena float %zu outside its output "
             "(it holds %.9g)", ci < ncases ? op_name(NODE(cases[ci].g, cases[ci].id)->op) : "?",
             ci, ci < ncases ? cases[ci].sig : "?", isa, got[i], i, arena[i]);
        break;
    }
    free(checked);
}

/* Every case of every op; fails for an op (not a source) without one. */
static void build_all(void)
{
    for (int op = 0; op < OP_COUNT; op++)
        if (optab[op].grad)
            build_op((Op)op);
    build_updates();
    for (int op = 0; op < OP_COUNT; op++) {
        if (optab[op].kind == K_SOURCE)
            continue; /* no computation */
        if (optab[op].flags & F_STATE)
            continue; /* state across calls: tests/e2e/decode_main.c */
        if (!per_op[op])
            FAIL("op %s has no test case: give it shapes or attributes its shape rule accepts "
                 "(or, for a gradient op, a forward op whose grad rule makes it)", op_name((Op)op));
        else if (!optab[op].eval)
            FAIL("op %s has no eval rule to compare its emitted code with", op_name((Op)op));
    }
}

/* Writes cases.c and in.bin to dir and compiles the program as users
 * compile emitted code; false after reporting. */
static bool compile(const char *dir)
{
    const char *cc = getenv("CC"), *rtc = getenv("RT_CFLAGS"), *rtl = getenv("RT_LIBS");
    const char *srcdir = getenv("srcdir"), *builddir = getenv("builddir");
    char defc[1024], defl[1024], path[4096], cmd[8192];
    snprintf(defc, sizeof defc, "-I%s/runtime", srcdir ? srcdir : ".");
    snprintf(defl, sizeof defl, "%s/.libs/libnncrt.a -lcjson -lz -fopenmp -lm",
             builddir ? builddir : ".");
    Buf prog = {0};
    emit_program(&prog);
    snprintf(path, sizeof path, "%s/cases.c", dir);
    NNC_ASSERT(write_file(path, prog.data, prog.len));
    snprintf(path, sizeof path, "%s/in.bin", dir);
    NNC_ASSERT(write_file(path, arena, arena_len * sizeof(float)));
    printf("%d cases (%zu floats of data, %zu bytes of C) in %s\n", ncases, arena_len, prog.len,
           dir);
    buf_free(&prog);
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror %s -o %s/cases "
             "%s/cases.c %s 2> %s/cc.log", cc && *cc ? cc : "cc", rtc ? rtc : defc, dir, dir,
             rtl ? rtl : defl, dir);
    if (system(cmd) == 0)
        return true;
    FAIL("the emitted code does not compile warning-free: %s", cmd);
    snprintf(cmd, sizeof cmd, "head -40 %s/cc.log", dir);
    if (system(cmd) != 0)
        printf("(no log)\n");
    return false;
}

/* Runs the program under NNC_ISA=isa and compares; false if the CPU
 * cannot run that ISA (the runtime falls back to another). */
static bool run_isa(const char *dir, const char *isa)
{
    char path[4096], cmd[8192], used[64] = "";
    snprintf(cmd, sizeof cmd, "NNC_ISA=%s %s/cases %s/in.bin %s/out.bin > %s/isa.txt", isa, dir,
             dir, dir, dir);
    int rc = system(cmd);
    snprintf(path, sizeof path, "%s/isa.txt", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(used, sizeof used, f))
            used[0] = '\0';
        fclose(f);
    }
    used[strcspn(used, "\n")] = '\0';
    if (rc != 0) {
        FAIL("the cases program failed under NNC_ISA=%s (status %d)", isa, rc);
        return true;
    }
    if (strcmp(used, isa)) {
        printf("SKIP %s: this CPU cannot run it (NNC_ISA=%s runs %s)\n", isa, isa, used);
        return false;
    }
    float *got = malloc(arena_len * sizeof(float));
    snprintf(path, sizeof path, "%s/out.bin", dir);
    f = fopen(path, "rb");
    NNC_ASSERT(got && f && fread(got, sizeof(float), arena_len, f) == arena_len);
    fclose(f);
    int before = failures;
    compare(got, isa);
    printf("%s %s: %d cases\n", failures > before ? "FAIL" : "PASS", isa, ncases);
    free(got);
    return true;
}

static void free_all(void)
{
    for (int i = 0; i < ncases; i++)
        for (int k = 0; k < cases[i].nchecks; k++)
            free(cases[i].check[k].want);
    for (int i = 0; i < ngraphs; i++) {
        graph_free(graphs[i]);
        free(graphs[i]);
    }
    free(graphs);
    free(cases);
    free(arena);
}

int main(void)
{
    static const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    const char *tmp = getenv("TMPDIR");
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/nnc-ops-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    NNC_ASSERT(mkdtemp(dir));
    nnc_rng_seed(&rng, 12345);
    build_all();
    /* the vector ISAs of this architecture: one the CPU lacks makes the
     * test a SKIP (77) after everything else passed, as isa_main.h does */
#if defined(__x86_64__) || defined(__i386__)
    static const char own[] = " avx2 avx512 ";
#elif defined(__aarch64__)
    static const char own[] = " neon ";
#else
    static const char own[] = " ";
#endif
    char lacks[64] = "";
    int ran = 0;
    if (compile(dir))
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
            char word[16];
            bool did = run_isa(dir, isas[k]);
            ran += did;
            snprintf(word, sizeof word, " %s ", isas[k]);
            if (!did && strstr(own, word) && strlen(lacks) + strlen(word) < sizeof lacks)
                strcat(strcat(lacks, " "), isas[k]);
        }
    if (!ran)
        FAIL("no ISA ran");
    for (int op = 0; op < OP_COUNT; op++)
        if (optab[op].kind != K_SOURCE)
            printf("  %-24s %2d cases, worst error %.3g of the tolerance\n", op_name((Op)op),
                   per_op[op], worst_of[op]);
    if (failures || getenv("NNC_OPTEST_KEEP")) {
        printf("generated files kept in %s\n", dir);
    } else {
        static const char *files[] = {"cases.c", "cases", "in.bin", "out.bin", "isa.txt", "cc.log"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    printf("%s: %d failures\n", failures ? "FAIL" : "PASS", failures);
    free_all();
    if (failures)
        return 1;
    if (lacks[0]) {
        printf("test_ops: SKIP: this CPU lacks%s, whose kernels were not run "
               "(every other ISA passed)\n", lacks);
        return 77;
    }
    return 0;
}
