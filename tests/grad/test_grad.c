/*
 * test_grad.c - every op's gradient rule against central finite
 * differences, computed in double with the reference interpreter.
 *
 * Driven by the op table: for each op with a grad rule it tries a fixed
 * set of input shapes (including broadcasts and size-1 dims) and
 * attribute values, keeps the combinations the op's shape rule accepts,
 * and for each builds  L = sum(dy * op(inputs))  with random dy. autodiff
 * gives dL/dinput; the check perturbs every input element by +-h. New ops
 * are covered without registering them; an op for which no combination is
 * valid fails the test, so nobody can add an untested gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nnc.h"

static const Shape shapes[] = {
    {2, {3, 4}}, {1, {4}}, {2, {1, 4}}, {2, {3, 1}}, {2, {4, 3}},
    {2, {4, 2}}, {3, {2, 3, 4}}, {0, {0}}, {2, {2, 3}},
    /* NHWC images for the window ops (and reshapes of 2 x 24 floats) */
    {4, {2, 5, 5, 2}}, {4, {1, 4, 6, 3}}, {2, {2, 24}},
    /* sequences (batch, T, C) and heads (batch, H, T, D) for batched
     * products, transposes and slices: T = 1, T = 9 (not a multiple of
     * the vector width), head size 1 */
    {3, {2, 1, 4}}, {3, {2, 9, 3}}, {3, {2, 3, 9}}, {4, {2, 2, 3, 1}}, {4, {2, 2, 1, 3}},
    /* square attention scores (causal masks), T = 9 */
    {3, {2, 9, 9}},
    /* packed attention inputs (batch, T, 3 x heads x D): T = 1; T = 5 with
     * head size 1 ((1, 4, 6, 3) above: 4 heads of size 1, T = 6) */
    {3, {2, 1, 6}}, {3, {1, 5, 3}},
};
/* Window attributes (kh, kw, sh, sw, same) tried for K_WINDOW ops. */
static const int windows[4][5] = {
    {2, 2, 2, 2, 0}, {3, 3, 1, 1, 1}, {3, 2, 2, 1, 0}, {2, 2, 1, 1, 1},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))
#define MAX_CASES 24

static unsigned long long rng = 12345;
static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A value for an input of an op with these flags. */
static double sample(unsigned flags)
{
    if (flags & F_PROB)
        return 0.1 + 0.8 * urand();
    double v = 2 * urand() - 1;
    if (flags & F_KINK)
        while (fabs(v) < 0.1)
            v = 2 * urand() - 1;
    return v;
}

typedef struct Case {
    Graph g;
    NodeId in[NNC_MAX_IN], y, dy;
    NodeId dx[NNC_MAX_IN];
    double *src[64];
} Case;

/* Attributes that are not two flags, from the case's two flags (ta, tb)
 * and its first input's shape s:
 *   transpose: swap the last two axes, reverse all, rotate left, or swap
 *     the first two;
 *   narrow: along the first, a middle or the last axis, from 0 or 1, to
 *     one before the end or to the end. */
static void structured_attrs(Node *proto, Op op, int ta, int tb, const Shape *s)
{
    int r = s->rank;
    if (op == OP_TRANSPOSE && r >= 1) {
        for (int d = 0; d < r; d++) {
            int p = d;
            if (!ta && !tb)
                p = d >= r - 2 && r >= 2 ? (d == r - 1 ? r - 2 : r - 1) : d;
            else if (ta && !tb)
                p = r - 1 - d;
            else if (!ta && tb)
                p = (d + 1) % r;
            else
                p = d <= 1 && r >= 2 ? 1 - d : d;
            proto->iattr[d] = p;
        }
    }
    if (op == OP_NARROW && r >= 1) {
        int axis = ta ? r - 1 : r > 2 ? 1 : 0, n = s->dim[axis];
        proto->iattr[0] = axis;
        proto->iattr[1] = tb && n > 1 ? 1 : 0;
        proto->iattr[2] = n - proto->iattr[1] - (n - proto->iattr[1] > 1 ? 1 : 0);
    }
}

/* Builds the case; false if the shape rule rejects it. */
static bool build(Case *c, Op op, const int *si, int ta, int tb, int preset)
{
    const OpInfo *oi = &optab[op];
    graph_init(&c->g, "grad", 2);
    for (int k = 0; k < oi->arity; k++)
        c->in[k] = graph_param(&c->g, (Loc){0}, "x", &shapes[si[k]], INIT_ZERO, 0, 0);
    Node proto = {0};
    proto.op = op;
    proto.nin = oi->arity;
    memcpy(proto.in, c->in, sizeof c->in);
    proto.iattr[0] = ta;
    proto.iattr[1] = tb;
    if (oi->kind == K_WINDOW)
        memcpy(proto.iattr, windows[ta + 2 * tb], sizeof windows[0]);
    if (oi->arity >= 1)
        structured_attrs(&proto, op, ta, tb, &shapes[si[0]]);
    proto.fattr[0] = 0.7;
    proto.shape = shapes[preset];
    bool quiet = diag_quiet;
    diag_quiet = true;
    c->y = graph_add_node(&c->g, &proto);
    diag_quiet = quiet;
    if (!c->y)
        return false;
    c->dy = graph_param(&c->g, (Loc){0}, "dy", &NODE(&c->g, c->y)->shape, INIT_ZERO, 0, 0);
    return true;
}

/* L = sum(dy * y) with the current source values. */
static double objective(Case *c)
{
    double **v = eval_graph(&c->g, c->src);
    size_t n = shape_numel(&NODE(&c->g, c->y)->shape);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[c->dy][i] * v[c->y][i];
    eval_free(&c->g, v);
    return s;
}

/* Fills sources with random values (by the op's flags). */
static void fill(Case *c, Op op)
{
    Graph *g = &c->g;
    memset(c->src, 0, sizeof c->src);
    for (int k = 0; k < optab[op].arity; k++) {
        size_t n = shape_numel(&NODE(g, c->in[k])->shape);
        c->src[c->in[k]] = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            c->src[c->in[k]][i] = sample(optab[op].flags);
        if (k == 1 && (optab[op].flags & F_INDEX)) {
            const Shape *s0 = &NODE(g, c->in[0])->shape;
            int classes = optab[op].flags & F_ROWS ? s0->dim[0] : s0->dim[s0->rank - 1];
            for (size_t i = 0; i < n; i++)
                c->src[c->in[k]][i] = (double)(int)(urand() * classes) + 0.5 * urand();
        }
    }
    size_t ny = shape_numel(&NODE(g, c->y)->shape);
    c->src[c->dy] = malloc(ny * sizeof(double));
    for (size_t i = 0; i < ny; i++)
        c->src[c->dy][i] = 2 * urand() - 1;
}

static void unfill(Case *c)
{
    for (int i = 0; i < 64; i++)
        free(c->src[i]);
}

/* The worst error of the gradients in c->dx against central differences,
 * as |fd - analytic| / (1e-6 + 1e-5 |fd|): <= 1 passes. */
static double worst_error(Case *c, Op op, int *checked, char *where, size_t wlen)
{
    Graph *g = &c->g;
    double **v = eval_graph(g, c->src);
    const double h = 1e-6;
    double worst = 0;
    for (int k = 0; k < optab[op].arity; k++) {
        if (c->dx[k] == NODE_NONE)
            continue;
        const Shape *s = &NODE(g, c->in[k])->shape;
        cr_assert(shape_eq(&NODE(g, c->dx[k])->shape, s),
                  "%s: gradient of input %d has shape %s, input %s", optab[op].name, k,
                  shape_str(&NODE(g, c->dx[k])->shape), shape_str(s));
        for (size_t i = 0; i < shape_numel(s); i++) {
            double *x = &c->src[c->in[k]][i], x0 = *x;
            *x = x0 + h;
            double lp = objective(c);
            *x = x0 - h;
            double lm = objective(c);
            *x = x0;
            double fd = (lp - lm) / (2 * h), an = v[c->dx[k]][i];
            double err = fabs(fd - an) / (1e-6 + 1e-5 * fabs(fd));
            if (err > worst) {
                worst = err;
                snprintf(where, wlen, "input %d %s element %zu: analytic %.9g, "
                         "finite difference %.9g", k, shape_str(s), i, an, fd);
            }
        }
        (*checked)++;
    }
    eval_free(g, v);
    return worst;
}

static void check_case(Case *c, Op op, int *checked)
{
    char where[256] = "";
    fill(c, op);
    ad_backward(&c->g, c->y, c->dy, c->in, optab[op].arity, c->dx);
    cr_assert(verify(&c->g), "%s: backward graph fails verification", optab[op].name);
    cr_assert(c->g.nnodes < 64);
    double err = worst_error(c, op, checked, where, sizeof where);
    cr_expect(err <= 1, "%s: %s", optab[op].name, where);
    unfill(c);
}

/* A signature of a case, to skip duplicates (ops ignore attributes and
 * preset shapes they do not use). */
static void signature(const Case *c, Op op, char *buf, size_t len)
{
    size_t at = 0;
    for (int k = 0; k < optab[op].arity; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s", shape_str(&NODE(&c->g, c->in[k])->shape));
    const Node *y = NODE(&c->g, c->y);
    at += (size_t)snprintf(buf + at, len - at, "->%s", shape_str(&y->shape));
    /* attention: iattr[1] is causal */
    if (optab[op].kind == K_CONTRACT || optab[op].kind == K_WINDOW || op == OP_BMATMUL ||
        op == OP_ATTENTION)
        snprintf(buf + at, len - at, " %d%d", y->iattr[0], y->iattr[1]);
    if (op == OP_TRANSPOSE || op == OP_NARROW)
        snprintf(buf + at, len - at, " %d%d%d%d", y->iattr[0], y->iattr[1], y->iattr[2],
                 y->iattr[3]);
}

Test(grad, every_op_matches_finite_differences)
{
    for (int op = 0; op < OP_COUNT; op++) {
        const OpInfo *oi = &optab[op];
        if (!oi->grad)
            continue;
        int cases = 0, checked = 0;
        char seen[MAX_CASES][256];
        int si[NNC_MAX_IN] = {0};
        int total = 1;
        for (int k = 0; k < oi->arity; k++)
            total *= NSHAPES;
        for (int combo = 0; combo < total && cases < MAX_CASES; combo++) {
            int r = combo;
            for (int k = 0; k < oi->arity; k++) {
                si[k] = r % NSHAPES;
                r /= NSHAPES;
            }
            for (int attrs = 0; attrs < 4; attrs++)
                for (int preset = 0; preset < NSHAPES; preset++) {
                    Case c;
                    if (cases >= MAX_CASES)
                        break;
                    if (!build(&c, (Op)op, si, attrs & 1, attrs >> 1, preset)) {
                        graph_free(&c.g);
                        continue;
                    }
                    char sig[256];
                    signature(&c, (Op)op, sig, sizeof sig);
                    bool dup = false;
                    for (int i = 0; i < cases; i++)
                        dup |= !strcmp(seen[i], sig);
                    if (!dup) {
                        strcpy(seen[cases++], sig);
                        check_case(&c, (Op)op, &checked);
                    }
                    graph_free(&c.g);
                }
        }
        cr_assert(checked > 0, "op %s has a grad rule but no test case: add shapes", oi->name);
        cr_log_info("%-12s %2d cases, %2d gradients checked", oi->name, cases, checked);
    }
}

/* The harness itself must catch a wrong rule: replace tanh's gradient by
 * 1.5 dy and expect a large error. */
Test(grad, harness_detects_a_wrong_rule)
{
    Case c;
    int si[1] = {0}, checked = 0;
    char where[256];
    cr_assert(build(&c, OP_TANH, si, 0, 0, 0));
    fill(&c, OP_TANH);
    c.dx[0] = graph_scale(&c.g, (Loc){0}, c.dy, 1.5);
    cr_assert(worst_error(&c, OP_TANH, &checked, where, sizeof where) > 100);
    cr_assert_eq(checked, 1);
    unfill(&c);
    graph_free(&c.g);
}

/* embedding: an id outside [0, vocab) (or NaN) gives a zero row and adds
 * no gradient; ids are truncated toward zero. */
Test(grad, embed_out_of_range_ids)
{
    Graph g;
    graph_init(&g, "embed", 2);
    Shape ws = {2, {3, 2}}, ks = {1, {5}};
    NodeId w = graph_param(&g, (Loc){0}, "w", &ws, INIT_ZERO, 0, 0);
    NodeId k = graph_param(&g, (Loc){0}, "k", &ks, INIT_ZERO, 0, 0);
    NodeId y = graph_add2(&g, OP_EMBED, (Loc){0}, w, k);
    cr_assert(y);
    NodeId dy = graph_param(&g, (Loc){0}, "dy", &NODE(&g, y)->shape, INIT_ZERO, 0, 0);
    NodeId in[2] = {w, k}, dx[2];
    ad_backward(&g, y, dy, in, 2, dx);
    cr_assert_eq(dx[1], NODE_NONE);
    double wv[6] = {1, 2, 3, 4, 5, 6}, kv[5] = {2.7, -1, 3, NAN, 0};
    double dyv[10] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    double *src[64] = {0};
    src[w] = wv;
    src[k] = kv;
    src[dy] = dyv;
    double **v = eval_graph(&g, src);
    double want_y[10] = {5, 6, 0, 0, 0, 0, 0, 0, 1, 2};
    double want_dw[6] = {5, 5, 0, 0, 1, 1};
    for (int i = 0; i < 10; i++)
        cr_expect_eq(v[y][i], want_y[i], "y[%d] = %g", i, v[y][i]);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(v[dx[0]][i], want_dw[i], "dw[%d] = %g", i, v[dx[0]][i]);
    eval_free(&g, v);
    graph_free(&g);
}

/* The sequence ops on sequences and heads only (the general test above
 * fills its cases with matrices first): every pair of inputs of rank >= 3
 * and every attribute combination, so that batched products of (2, 9, 3)
 * sequences, T = 1 and head size 1 are covered. */
Test(grad, sequence_ops_on_sequences_and_heads)
{
    static const Op ops[] = {OP_BMATMUL, OP_TRANSPOSE, OP_NARROW, OP_CAUSAL_MASK};
    for (int o = 0; o < 4; o++) {
        Op op = ops[o];
        int cases = 0, checked = 0, ns = optab[op].arity == 2 ? NSHAPES : 1;
        for (int a = 0; a < NSHAPES; a++)
            for (int b = 0; b < ns; b++)
                for (int attrs = 0; attrs < 4; attrs++) {
                    int si[NNC_MAX_IN] = {a, b};
                    Case c;
                    if (shapes[a].rank < 3 || (optab[op].arity == 2 && shapes[b].rank < 3))
                        continue;
                    if (build(&c, op, si, attrs & 1, attrs >> 1, 0)) {
                        check_case(&c, op, &checked);
                        cases++;
                    }
                    graph_free(&c.g);
                }
        cr_assert(cases >= (op == OP_CAUSAL_MASK ? 1 : 8), "%s: only %d cases on sequences",
                  optab[op].name, cases);
        cr_log_info("%-12s %2d sequence cases, %2d gradients checked", optab[op].name, cases,
                    checked);
    }
}

/* A tied LM head: W [V, D] both embeds the ids and, transposed, maps the
 * embeddings back to V logits, y = embed(W, k) W^T. autodiff must sum the
 * gradients of both uses; checked against finite differences of
 * L = sum(dy * y). */
Test(grad, tied_weight_sums_both_uses)
{
    Graph g;
    graph_init(&g, "tied", 2);
    Shape ws = {2, {5, 3}}, ks = {2, {2, 4}};
    NodeId w = graph_param(&g, (Loc){0}, "w", &ws, INIT_ZERO, 0, 0);
    NodeId k = graph_param(&g, (Loc){0}, "k", &ks, INIT_ZERO, 0, 0);
    NodeId e = graph_add2(&g, OP_EMBED, (Loc){0}, w, k);
    NodeId y = graph_matmul(&g, (Loc){0}, e, w, 0, 1);
    cr_assert(y && NODE(&g, y)->shape.rank == 3 && NODE(&g, y)->shape.dim[2] == 5);
    NodeId dy = graph_param(&g, (Loc){0}, "dy", &NODE(&g, y)->shape, INIT_ZERO, 0, 0);
    NodeId dw;
    ad_backward(&g, y, dy, &w, 1, &dw);
    cr_assert(dw && verify(&g));
    double wv[15], kv[8], dyv[40], *src[64] = {0};
    for (int i = 0; i < 15; i++)
        wv[i] = 2 * urand() - 1;
    for (int i = 0; i < 8; i++)
        kv[i] = (double)(i * 3 % 5);
    for (int i = 0; i < 40; i++)
        dyv[i] = 2 * urand() - 1;
    src[w] = wv;
    src[k] = kv;
    src[dy] = dyv;
    double **v = eval_graph(&g, src), worst = 0;
    for (int i = 0; i < 15; i++) {
        double x0 = wv[i], l[2];
        for (int s = 0; s < 2; s++) {
            wv[i] = x0 + (s ? -1e-6 : 1e-6);
            double **u = eval_graph(&g, src);
            l[s] = 0;
            for (int j = 0; j < 40; j++)
                l[s] += dyv[j] * u[y][j];
            eval_free(&g, u);
        }
        wv[i] = x0;
        double fd = (l[0] - l[1]) / 2e-6;
        worst = fmax(worst, fabs(fd - v[dw][i]) / (1e-6 + 1e-5 * fabs(fd)));
    }
    cr_expect(worst <= 1, "tied weight's gradient off by %g of the tolerance", worst);
    eval_free(&g, v);
    graph_free(&g);
}
