/*
 * test_passes.c - the optimizing passes and the memory plan.
 *
 *  - simplify, cse and dce on hand-built graphs: each rewrite happens, and
 *    the result still verifies;
 *  - fusion of the seed model: the kernel structure the emitted code has;
 *  - the plan checker accepts every plan nnc makes, for every example and
 *    for 300 random models (dense stacks, branches joined by add, every
 *    activation, loss and optimizer, every -O level), and rejects plans
 *    that were broken on purpose: overlapping or misaligned offsets, and
 *    lifetimes that miss a use (the checker recomputes them);
 *  - the plan is close to the lower bound (printed; the worst is asserted
 *    loosely so that a regression shows);
 *  - a sum riding on an F_SUMRIDER op, and the header's count of trained
 *    parameters apart from batchnorm's running statistics.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static bool compile_text(const char *text, int opt, Compiled *c)
{
    Model *m = parse(text);
    cr_assert(m, "parse failed:\n%s", text);
    PipelineOptions po = {opt, NULL, true, 0};
    return pipeline_compile(m, &po, c);
}

/* ---- simplify, cse, dce --------------------------------------------------- */

static Graph tiny(NodeId *x, NodeId *w)
{
    Graph g;
    graph_init(&g, "t", 4);
    Shape s = {1, {3}};
    *x = graph_source(&g, R_INPUT, (Loc){0}, &s);
    Shape ws = {2, {4, 3}};
    *w = graph_param(&g, (Loc){0}, "w.weight", &ws, INIT_ZERO, 0, 0);
    g.input = *x;
    return g;
}

Test(passes, simplify_removes_identities_and_folds_constants)
{
    NodeId x, w;
    Graph g = tiny(&x, &w);
    Shape sc = {0, {0}};
    NodeId one = graph_const(&g, (Loc){0}, &sc, 1.0);
    NodeId zero = graph_const(&g, (Loc){0}, &sc, 0.0);
    NodeId two = graph_add2(&g, OP_ADD, (Loc){0}, one, one);        /* folds to 2 */
    NodeId a = graph_add2(&g, OP_MUL, (Loc){0}, x, one);            /* x * 1 */
    NodeId b = graph_add2(&g, OP_ADD, (Loc){0}, a, zero);           /* + 0 */
    NodeId c = graph_scale(&g, (Loc){0}, graph_scale(&g, (Loc){0}, b, 2.0), 0.5);
    NodeId d = graph_add2(&g, OP_MUL, (Loc){0}, c, two);            /* scale by 2 */
    g.output = d;
    cr_assert(pass_simplify(&g));
    cr_assert(verify(&g));
    cr_assert_eq(NODE(&g, two)->op, OP_CONST);
    cr_assert_float_eq(NODE(&g, two)->fattr[0], 2.0, 1e-12);
    /* d = scale(x, 2): the chain collapsed onto x */
    const Node *dn = NODE(&g, g.output);
    cr_assert_eq(dn->op, OP_SCALE);
    cr_assert_float_eq(dn->fattr[0], 2.0, 1e-12);
    cr_assert_eq(dn->in[0], x, "expected scale(x), got scale(%%%u)", dn->in[0]);
    graph_free(&g);
}

Test(passes, cse_merges_duplicates_and_dce_removes_them)
{
    NodeId x, w;
    Graph g = tiny(&x, &w);
    NodeId m1 = graph_matmul(&g, (Loc){0}, x, w, 0, 1);
    NodeId m2 = graph_matmul(&g, (Loc){0}, x, w, 0, 1);
    NodeId r1 = graph_add1(&g, OP_TANH, (Loc){0}, m1);
    NodeId r2 = graph_add1(&g, OP_TANH, (Loc){0}, m2);
    NodeId s = graph_add2(&g, OP_ADD, (Loc){0}, r2, r1);
    g.output = s;
    Shape ts = {1, {4}};
    g.target = graph_source(&g, R_TARGET, (Loc){0}, &ts);
    g.loss = graph_add2(&g, OP_MSE, (Loc){0}, s, g.target);
    int before = g.nnodes;
    cr_assert(pass_cse(&g));
    cr_assert_eq(NODE(&g, s)->in[0], r1);
    cr_assert_eq(NODE(&g, s)->in[1], r1);
    cr_assert(pass_dce(&g));
    cr_assert(verify(&g));
    cr_assert_eq(g.nnodes, before - 2); /* m2 and r2 are gone */
    cr_assert(!pass_cse(&g));           /* nothing left to merge */
    graph_free(&g);
}

Test(passes, losshead_makes_sigmoid_bce)
{
    Compiled c;
    cr_assert(compile_text(seed, 2, &c));
    cr_assert_eq(NODE(&c.g, c.g.loss)->op, OP_SIGMOID_BCE);
    cr_assert_eq(NODE(&c.g, c.g.output)->op, OP_SIGMOID); /* still the output */
    pipeline_free(&c);
    cr_assert(compile_text(seed, 0, &c));
    cr_assert_eq(NODE(&c.g, c.g.loss)->op, OP_BCE);
    pipeline_free(&c);
}

/* ---- fusion ------------------------------------------------------------- */

Test(passes, seed_model_kernels)
{
    Compiled o0, o2;
    cr_assert(compile_text(seed, 0, &o0));
    cr_assert(compile_text(seed, 2, &o2));
    cr_log_info("seed: %d kernels at -O0, %d at -O2", o0.train.nkernels, o2.train.nkernels);
    cr_assert_leq(o2.train.nkernels * 10, o0.train.nkernels * 6,
                  "-O2 runs %d kernels, -O0 %d", o2.train.nkernels, o0.train.nkernels);
    /* three forward GEMMs with bias+relu epilogues, one update kernel */
    int epilogues = 0, updates = 0;
    for (int k = 0; k < o2.train.nkernels; k++) {
        const Kernel *kr = &o2.train.kernels[k];
        bool gemm = false;
        for (int m = 0; m < kr->n; m++)
            gemm |= NODE(&o2.g, o2.train.members[kr->first + m])->op == OP_MATMUL;
        epilogues += gemm && kr->n > 1;
        updates += NODE(&o2.g, kr->root)->op == OP_ADAM;
    }
    cr_assert_eq(updates, 1);
    cr_assert_geq(epilogues, 5); /* 3 forward, 2 backward (relu derivative) */
    cr_assert(o2.layout.grads_exclusive);
    pipeline_free(&o0);
    pipeline_free(&o2);
}

/* ---- the memory plan ------------------------------------------------------- */

/* A valid plan, then the same plan with two live buffers overlapped. */
Test(passes, checker_rejects_overlaps)
{
    Compiled c;
    cr_assert(compile_text(seed, 2, &c));
    Plan *p = &c.train;
    cr_assert(plan_check(&c.g, p));
    NodeId a = 0, b = 0;
    for (int i = 1; i < c.g.nnodes && !b; i++)
        for (int j = i + 1; j < c.g.nnodes && !b; j++)
            if (p->region[i] == REG_ARENA && p->region[j] == REG_ARENA &&
                p->def[i] <= p->last[j] && p->def[j] <= p->last[i] && p->shares[j] != (NodeId)i) {
                a = (NodeId)i;
                b = (NodeId)j;
            }
    cr_assert(a && b);
    size_t saved = p->offset[b];
    p->offset[b] = p->offset[a];
    FILE *devnull = fopen("/dev/null", "w");
    FILE *old = stderr;
    stderr = devnull;
    bool ok = plan_check(&c.g, p);
    stderr = old;
    fclose(devnull);
    cr_assert(!ok, "overlapping %%%u and %%%u accepted", a, b);
    p->offset[b] = saved;
    p->offset[a] += 1; /* misaligned */
    stderr = fopen("/dev/null", "w");
    ok = plan_check(&c.g, p);
    fclose(stderr);
    stderr = old;
    cr_assert(!ok, "misaligned buffer accepted");
    pipeline_free(&c);
}

/* plan_check with stderr silenced. */
static bool check_quietly(const Graph *g, const Plan *p)
{
    FILE *old = stderr;
    stderr = fopen("/dev/null", "w");
    cr_assert(stderr);
    bool ok = plan_check(g, p);
    fclose(stderr);
    stderr = old;
    return ok;
}

/* Lifetimes cut short (the last reader, the loss's end) or defined late,
 * and then a plan the planner made from the wrong lifetimes: the checker
 * recomputes every use from the kernels and rejects each. */
Test(passes, checker_rejects_wrong_lifetimes)
{
    Compiled c;
    cr_assert(compile_text(seed, 2, &c));
    Plan *p = &c.train;
    cr_assert(plan_check(&c.g, p));
    NodeId a = 0;
    for (int i = 1; i < c.g.nnodes && !a; i++)
        if (p->region[i] == REG_ARENA && p->last[i] > p->def[i] && (NodeId)i != c.g.loss)
            a = (NodeId)i;
    cr_assert(a, "no arena buffer read after its kernel");
    int last = p->last[a], def = p->def[a];
    p->last[a] = def;
    cr_assert(!check_quietly(&c.g, p), "%%%u dying before its last reader accepted", a);
    /* the planner trusts lifetimes: it may now reuse a's memory early */
    plan_memory(&c.g, p);
    cr_assert(!check_quietly(&c.g, p), "plan made from a short lifetime accepted");
    p->last[a] = last;
    p->def[a] = def + 1;
    cr_assert(!check_quietly(&c.g, p), "%%%u defined after its kernel accepted", a);
    p->def[a] = def;
    plan_memory(&c.g, p);
    cr_assert(check_quietly(&c.g, p), "the restored plan is rejected");
    int end = p->last[c.g.loss];
    p->last[c.g.loss] = end - 1;
    cr_assert(!check_quietly(&c.g, p), "a loss freed before the step returns accepted");
    p->last[c.g.loss] = end;
    pipeline_free(&c);
}

static unsigned long long rs = 2024;
static int rnd(int n)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rs >> 33) % (unsigned long long)n);
}

/* A random model in the functional form. */
static void random_model(char *buf, size_t len)
{
    static const char *acts[] = {"relu", "sigmoid", "tanh", "linear", "softmax", "gelu", "silu"};
    const int nacts = (int)(sizeof acts / sizeof acts[0]);
    static const char *losses[] = {"mse", "binary_crossentropy", "softmax_cross_entropy"};
    size_t at = 0;
    int width = 1 + rnd(40), depth = 1 + rnd(5), nv = 1;
    int widths[16];
    widths[0] = 1 + rnd(30);
    at += (size_t)snprintf(buf + at, len - at, "model r {\n input v0[%d]\n", widths[0]);
    for (int i = 0; i < depth && nv < 15; i++) {
        int src = rnd(nv);
        if (rnd(3) == 0 && nv >= 2) {
            /* a branch joined by add: two layers of the same width */
            int w = 1 + rnd(width);
            at += (size_t)snprintf(buf + at, len - at,
                                   " v%d = dense(v%d, %d, activation=%s)\n"
                                   " v%d = dense(v%d, %d)\n"
                                   " v%d = add(v%d, v%d)\n",
                                   nv, src, w, acts[rnd(nacts)], nv + 1, rnd(nv), w, nv + 2, nv, nv + 1);
            widths[nv] = widths[nv + 1] = widths[nv + 2] = w;
            nv += 3;
        } else {
            int w = 1 + rnd(width);
            at += (size_t)snprintf(buf + at, len - at, " v%d = dense(v%d, %d, activation=%s)\n",
                                   nv, src, w, acts[rnd(nacts)]);
            widths[nv++] = w;
        }
    }
    const char *loss = losses[rnd(3)];
    at += (size_t)snprintf(buf + at, len - at, " o = dense(v%d, %d%s)\n loss %s(o)\n",
                           nv - 1, 1 + rnd(10), !strcmp(loss, "binary_crossentropy") ?
                           ", activation=sigmoid" : "", loss);
    at += (size_t)snprintf(buf + at, len - at, rnd(2) ? " optimizer adam\n" :
                           " optimizer sgd(lr=0.1, momentum=0.5)\n");
    snprintf(buf + at, len - at, " batch %d\n}\n", 1 + rnd(64));
}

Test(passes, every_plan_is_checked_on_random_models)
{
    double worst = 1.0;
    int models = 0;
    for (int i = 0; i < 300; i++) {
        char text[4096];
        random_model(text, sizeof text);
        for (int opt = 0; opt <= 2; opt++) {
            Compiled c;
            bool ok = compile_text(text, opt, &c);
            cr_assert(ok, "-O%d failed (plan check or pass) on:\n%s", opt, text);
            for (int pr = 0; pr < 2; pr++) {
                const Plan *p = pr ? &c.predict : &c.train;
                cr_assert(plan_check(&c.g, p));
                cr_assert_geq(p->arena_floats, p->lower_floats);
                if (p->lower_floats) {
                    double r = (double)p->arena_floats / (double)p->lower_floats;
                    worst = r > worst ? r : worst;
                    cr_expect_leq(r, 1.25, "arena %zu vs lower bound %zu on:\n%s",
                                  p->arena_floats, p->lower_floats, text);
                }
            }
            models++;
            pipeline_free(&c);
        }
    }
    cr_log_info("%d plans checked; worst arena / lower bound: %.3f", 2 * models, worst);
}

/* ---- what fusion hands the emitter ----------------------------------------- */

/* The bias gradient of a conv under a max pooling rides on the pooling's
 * gradient (an F_SUMRIDER op): one kernel, whose emit rule writes the sum
 * (the emitter passes the rider's buffer without naming the op). The
 * first conv's pooling gradient, which only its weight gradient reads,
 * joins that weight gradient's kernel (dC, 8 x 64 x 64 x 4, spans
 * several of its blocks), its bias gradient riding along. */
Test(passes, sum_rides_on_pooling_gradient)
{
    static const char cnn[] =
        "model cnn {\n"
        "    input img[64, 64, 1]\n"
        "    conv2d(4, 3, padding=same, activation=relu)\n"
        "    maxpool2d(2)\n"
        "    conv2d(4, 3, padding=same, activation=relu)\n"
        "    maxpool2d(2)\n"
        "    flatten\n"
        "    dense(3)\n"
        "    loss softmax_cross_entropy\n"
        "    optimizer sgd(lr=0.1)\n"
        "    batch 8\n"
        "}\n";
    Compiled c;
    cr_assert(compile_text(cnn, 2, &c));
    int riding = 0;
    for (int k = 0; k < c.train.nkernels; k++) {
        const Kernel *kr = &c.train.kernels[k];
        if (!(optab[NODE(&c.g, kr->root)->op].flags & F_SUMRIDER) || kr->n < 2)
            continue;
        cr_assert_eq(kr->n, 2);
        for (int m = 0; m < kr->n; m++) {
            NodeId id = c.train.members[kr->first + m];
            cr_assert(id == kr->root || optab[NODE(&c.g, id)->op].kind == K_REDUCE);
        }
        riding++;
    }
    cr_assert_eq(riding, 1);
    int fused = 0;
    for (int k = 0; k < c.train.nkernels; k++) {
        const Kernel *kr = &c.train.kernels[k];
        bool pool = false, sum = false;
        for (int m = 0; m < kr->n; m++) {
            NodeId id = c.train.members[kr->first + m];
            pool |= NODE(&c.g, id)->op == OP_MAXPOOL_BACK;
            sum |= optab[NODE(&c.g, id)->op].kind == K_REDUCE;
        }
        if (pool && node_wgrad(&c.g, NODE(&c.g, kr->root))) {
            cr_assert(sum && kr->n == 3);
            fused++;
        }
    }
    cr_assert_eq(fused, 1);
    Buf src = {0};
    EmitOptions eo = {"cnn", "cnn.h", false, NULL};
    emit_source(&src, &c, &eo);
    cr_assert(strstr(src.data, "nnc_maxpool_back_sum("));
    cr_assert(strstr(src.data, "nnc_conv_wgrad_pool("));
    buf_free(&src);
    pipeline_free(&c);
}

/* A layernorm layer is one op forward (layernorm_affine) and one kernel
 * backward: dx with gamma's gradient (stored in the gradient region: a
 * sibling) and beta's (a sum of dy) riding on it, at -O2; at -O0 the
 * three are kernels of their own. */
Test(passes, layernorm_gradients_ride_on_its_backward)
{
    static const char seq[] =
        "model seq {\n"
        "    input x[6, 8]\n"
        "    dense(8)\n"
        "    layernorm\n"
        "    dense(8)\n"
        "    layernorm\n"
        "    flatten\n"
        "    dense(2)\n"
        "    loss softmax_cross_entropy\n"
        "    optimizer adam\n"
        "    batch 4\n"
        "}\n";
    for (int level = 0; level <= 2; level += 2) {
        Compiled c;
        cr_assert(compile_text(seq, level, &c));
        int fwd = 0, back = 0;
        for (int k = 0; k < c.train.nkernels; k++) {
            const Kernel *kr = &c.train.kernels[k];
            const Node *r = NODE(&c.g, kr->root);
            fwd += r->op == OP_LAYERNORM_AFFINE;
            if (r->op != OP_LAYERNORM_AFFINE_BACK)
                continue;
            back++;
            int gamma = 0, beta = 0;
            for (int m = 0; m < kr->n; m++) {
                const Node *n = NODE(&c.g, c.train.members[kr->first + m]);
                gamma += n->op == OP_LAYERNORM_DGAMMA && n->sibling;
                beta += n->op == OP_SUM_TO && n->in[0] == r->in[0];
            }
            cr_assert_eq(kr->n, level ? 3 : 1, "-O%d: %d members", level, kr->n);
            cr_assert_eq(gamma + beta, level ? 2 : 0);
        }
        cr_assert_eq(fwd, 2);
        cr_assert_eq(back, 2);
        for (int i = 0; i < c.g.nparams; i++)   /* every gradient in its region */
            if (c.g.grads[i])
                cr_assert_eq(c.train.region[c.g.grads[i]], REG_GRAD, "-O%d: %s", level,
                             NODE(&c.g, c.g.params[i])->name);
        Buf src = {0};
        EmitOptions eo = {"seq", "seq.h", false, NULL};
        emit_source(&src, &c, &eo);
        cr_assert(strstr(src.data, "nnc_layernorm_affine_back(") != NULL);
        cr_assert((strstr(src.data, "NULL, G_layernorm_0_weight, NULL") != NULL) == !level);
        buf_free(&src);
        pipeline_free(&c);
    }
}

/* An activation whose derivative needs its input (gelu, silu): f'(x) is
 * a second output of the forward's loop over x (a sibling, stored for the
 * backward, left out of predict), that loop is the epilogue of the dense
 * layer's product, and the backward only multiplies. */
Test(passes, activation_derivative_is_a_forward_sibling)
{
    static const char mlp[] =
        "model m {\n"
        "    input x[16]\n"
        "    h = dense(x, 32, activation=gelu)\n"
        "    s = dense(h, 32, activation=silu)\n"
        "    dense(s, 4)\n"
        "    loss mse\n"
        "    optimizer adam\n"
        "    batch 8\n"
        "}\n";
    Compiled c;
    cr_assert(compile_text(mlp, 2, &c));
    int siblings = 0;
    for (int k = 0; k < c.train.nkernels; k++) {
        const Kernel *kr = &c.train.kernels[k];
        for (int m = 0; m < kr->n; m++) {
            NodeId id = c.train.members[kr->first + m];
            const Node *n = NODE(&c.g, id);
            if (!(optab[n->op].flags & F_FWDSIDE))
                continue;
            cr_assert(n->sibling, "%s not a sibling", optab[n->op].name);
            cr_assert(c.train.region[id] == REG_ARENA);
            /* the loop computes the activation of the same input */
            const Node *r = NODE(&c.g, kr->root);
            cr_assert(r->op == (n->op == OP_GELU_GRAD ? OP_GELU : OP_SILU));
            cr_assert_eq(r->in[0], n->in[0]);
            cr_assert(!c.predict.in_prog[id]);
            /* and the dense layer's product and bias are its head: the
             * pre-activation x is never stored */
            bool product = false;
            for (int j = 0; j < kr->n; j++)
                product |= optab[NODE(&c.g, c.train.members[kr->first + j])->op].kind == K_CONTRACT;
            cr_assert(product);
            cr_assert(c.train.region[n->in[0]] == REG_NONE);
            siblings++;
        }
    }
    cr_assert_eq(siblings, 2);
    Buf src = {0};
    EmitOptions eo = {"m", "m.h", false, NULL};
    emit_source(&src, &c, &eo);
    /* computed in the forward only: once in train_body's loop (and once
     * in the split step's grad_step) */
    const char *at = src.data;
    int calls = 0;
    while ((at = strstr(at, "nnc_gelu_gradf(")) != NULL)
        calls++, at++;
    cr_assert(calls >= 1 && calls <= 2, "%d calls", calls);
    buf_free(&src);
    pipeline_free(&c);
}

/* <PREFIX>_PARAMS counts what is trained; batchnorm's running statistics
 * (PyTorch's buffers) are <PREFIX>_BUFFERS. */
Test(passes, running_statistics_are_buffers)
{
    static const char bn[] =
        "model bn {\n"
        "    input x[6]\n"
        "    h = dense(x, 10)\n"
        "    n = batchnorm(h)\n"
        "    probs = dense(n, 4, activation=softmax)\n"
        "    loss categorical_crossentropy(probs)\n"
        "    optimizer sgd(lr=0.1)\n"
        "    batch 8\n"
        "}\n";
    Compiled c;
    cr_assert(compile_text(bn, 2, &c));
    /* dense 6*10+10, batchnorm gamma and beta 2*10, dense 10*4+4 */
    cr_assert_eq(graph_param_floats(&c.g, true), 70 + 20 + 44);
    cr_assert_eq(graph_param_floats(&c.g, false), 20);
    Buf h = {0};
    EmitOptions eo = {"bn", "bn.h", false, NULL};
    emit_header(&h, &c, &eo);
    cr_assert(strstr(h.data, "#define BN_PARAMS 134 "), "%s", h.data);
    cr_assert(strstr(h.data, "#define BN_BUFFERS 20 "), "%s", h.data);
    buf_free(&h);
    pipeline_free(&c);
}

/* ---- issue 16: frozen parameters, recomputation under --max-ram ------------- */

static const char small_cnn[] =
    "model c { input img[10, 10, 1]\n"
    "  conv2d(4, 3, activation=relu)\n  f = maxpool2d(2)\n  flatten\n"
    "  dense(8, activation=relu)\n  dense(3)\n"
    "  loss softmax_cross_entropy\n  optimizer adam\n  batch 8 }\n";

/* freeze f: the conv has no gradient, no state, and the gradient and
 * state regions hold the dense layers only. */
Test(passes, frozen_parameters_get_no_gradient)
{
    Compiled a, b;
    char text[sizeof small_cnn + 16];
    cr_assert(compile_text(small_cnn, 2, &a));
    snprintf(text, sizeof text, "%s", small_cnn);
    char *at = strstr(text, "  flatten");
    memmove(at + 11, at, strlen(at) + 1);
    memcpy(at, "  freeze f\n", 11);
    cr_assert(compile_text(text, 2, &b), "%s", text);
    for (int i = 0; i < b.g.nparams; i++) {
        const Node *p = NODE(&b.g, b.g.params[i]);
        bool conv = !strncmp(p->name, "conv2d_0.", 9);
        cr_assert_eq(p->is_frozen, conv, "%s", p->name);
        cr_assert_eq(b.g.grads[i] == NODE_NONE, conv, "%s", p->name);
    }
    cr_assert_eq(graph_frozen_floats(&b.g), 40);
    cr_assert_eq(b.layout.grad_floats + align_floats(36) + align_floats(4),
                 a.layout.grad_floats);
    cr_assert_lt(b.train.flops, a.train.flops);
    pipeline_free(&a);
    pipeline_free(&b);
}

/* A budget between the smallest found and the plan without recomputation
 * compiles to a checked plan that fits; one far below is refused. */
Test(passes, recomputation_fits_the_budget)
{
    Compiled a, b, c;
    cr_assert(compile_text(small_cnn, 2, &a));
    size_t full = emit_mem_bytes(&a);
    Model *m = parse(small_cnn);
    /* (this model: 41,471 bytes without recomputation, 37,119 at the least) */
    PipelineOptions po = {2, NULL, true, full - full / 16};
    cr_assert(pipeline_compile(m, &po, &b));
    cr_assert_leq(emit_mem_bytes(&b), po.max_ram);
    cr_assert_gt(b.recomputed, 0);
    cr_assert_geq(b.train.flops, a.train.flops);
    cr_assert(check_quietly(&b.g, &b.train) && check_quietly(&b.g, &b.predict));
    po.max_ram = 1000;
    diag_quiet = true;
    int errors = diag_errors;
    cr_assert(!pipeline_compile(parse(small_cnn), &po, &c));
    cr_assert_eq(diag_errors, errors + 1);
    diag_quiet = false;
    pipeline_free(&a);
    pipeline_free(&b);
    pipeline_free(&c);
}
