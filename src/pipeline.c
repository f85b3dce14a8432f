/*
 * pipeline.c - the compiler's pipeline for one model, as a plain list of
 * stages with the IR verifier between them (QBE's main.c style; there is
 * no pass manager):
 *
 *   lower -> [[losshead -> crop]] -> autodiff -> optim
 *         -> [simplify -> cse -> dce] -> [[poolrelu (+ dce) -> fuse]]
 *                                                    ([-O1], [[-O2]])
 *         -> layout -> schedule (train, predict) -> memplan -> plan check
 *
 * The stages from lower to fuse are rows of one table, pipeline_passes[]:
 * name, lowest -O level, function. The pipeline runs it in order, and
 * --dump-after (its names and messages), --help and the man page's list
 * (tests/e2e/passes.sh compares them) all read it, so a pass is added in
 * one place. The driver and the tests both compile through here, so what
 * the tests check is what nnc emits.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

static bool run_autodiff(Graph *g)
{
    ad_build(g);
    bool any = false;
    for (int i = 0; i < g->nparams; i++)
        any = any || g->grads[i] != NODE_NONE;
    if (!any && ad_any_frozen(g))
        diag_error(g->loc, "every parameter of model '%s' is frozen: nothing to train",
                   g->name);
    return true;
}

static bool run_optim(Graph *g)
{
    optim_build(g);
    return true;
}

static bool run_poolrelu(Graph *g)
{
    if (!pass_poolrelu(g))
        return false;
    pass_dce(g);
    return true;
}

/* verify: after this stage even without --verify; baseline: the graph
 * after it is the unoptimized training graph (nodes_before, naive sizes). */
const PassInfo pipeline_passes[] = {
    /* name       -O  run            verify baseline what */
    {"lower",     0,  NULL,          false, false, "layers as primitive ops, shapes inferred"},
    {"losshead",  2,  pass_losshead, true,  false, "bce(sigmoid(z)), cce(softmax(z)) fused"},
    {"crop",      2,  pass_crop,     true,  false, "convolutions compute what pooling reads"},
    {"autodiff",  0,  run_autodiff,  false, false, "the backward graph"},
    {"optim",     0,  run_optim,     true,  true,  "the optimizer's updates"},
    {"simplify",  1,  pass_simplify, true,  false, "constant folding, identities"},
    {"cse",       1,  pass_cse,      true,  false, "common subexpressions merged"},
    {"dce",       1,  pass_dce,      true,  false, "dead nodes removed"},
    {"poolrelu",  2,  run_poolrelu,  true,  false, "relu_back(maxpool_back) as one op"},
    {"fuse",      2,  pass_fuse,     true,  false, "nodes grouped into kernels"},
    {NULL, 0, NULL, false, false, NULL},
};

const PassInfo *pipeline_pass(const char *name)
{
    for (const PassInfo *p = pipeline_passes; p->name; p++)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

/* Ops that a decode graph may run: each computes a position's row from
 * that row alone (elementwise ops, products over the last axis, per-row
 * normalization and softmax, table lookups), or is the cached attention;
 * the input's two columns are its only slices. Anything else (reshapes,
 * transposes, batched products, masks, images) mixes positions. */
static bool decodable(const Graph *g, const Plan *p)
{
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = NODE(g, id);
        if (!p->in_prog[id])
            continue;
        switch (optab[n->op].kind) {
        case K_SOURCE:
        case K_EWISE:
        case K_CONTRACT:
            continue;
        case K_ROWWISE:
            if (n->op == OP_SOFTMAX || n->op == OP_LAYERNORM || n->op == OP_LAYERNORM_AFFINE ||
                n->op == OP_DROPOUT ||
                n->op == OP_EMBED || n->op == OP_CONCAT || n->op == OP_ATTENTION_DECODE ||
                (n->op == OP_NARROW && n->in[0] == g->input))
                continue;
            return false;
        default:
            return false;
        }
    }
    return true;
}

/* Floats per row (batch element) of node id. */
static size_t row_floats(const Graph *g, NodeId id)
{
    const Node *n = NODE(g, id);
    return n->shape.rank > 0 && n->shape.dim[0] > 0 ? shape_numel(&n->shape) /
                                                      (size_t)n->shape.dim[0] : 0;
}

/* The decode program of a sequence model, in c->decode (NULL if it has
 * none): the model lowered again for one position, through the same
 * passes as predict (no autodiff), planned as a predict program. */
static void compile_decode(const Model *m, const PipelineOptions *o, Compiled *c)
{
    Compiled *d = xcalloc(1, sizeof *d);
    bool ok = lower_decode(m, &d->g);
    for (const PassInfo *p = pipeline_passes; ok && p->name; p++)
        if (o->opt >= p->level && p->run && p->run != run_autodiff && p->run != run_optim)
            p->run(&d->g);
    if (ok) {
        int errors = diag_errors;
        bool quiet = diag_quiet;
        diag_quiet = true;
        layout_build(&d->g, &d->layout);
        plan_build(&d->g, &d->layout, true, &d->predict);
        plan_memory(&d->g, &d->predict);
        ok = plan_check(&d->g, &d->predict) && diag_errors == errors &&
             decodable(&d->g, &d->predict) && d->g.kv_floats > 0 &&
             row_floats(&d->g, d->g.output) * (size_t)d->g.decode_T ==
                 row_floats(&c->g, c->g.output);
        diag_quiet = quiet;
        diag_errors = errors;
    }
    if (!ok) {
        pipeline_free(d);
        free(d);
        return;
    }
    d->owner = c;
    c->decode = d;
}

bool pipeline_compile(const Model *m, const PipelineOptions *o, Compiled *c)
{
    Graph *g = &c->g;
    memset(c, 0, sizeof *c);
    if (!lower_model(m, g))  /* the first row; it takes the model */
        return false;
    for (const PassInfo *p = pipeline_passes; p->name; p++) {
        if (o->opt < p->level)
            continue;
        if (p->run)
            p->run(g);
        if (diag_errors > 0)    /* a stage's error (all frozen) */
            return false;
        if (o->dump_after && (!strcmp(o->dump_after, p->name) || !strcmp(o->dump_after, "all"))) {
            fprintf(stderr, "# after %s\n", p->name);
            ir_print(stderr, g);
        }
        if ((p->verify || o->verify_all) && !verify(g))
            return false;
        if (p->baseline) {
            c->nodes_before = g->nnodes - 1;
            c->naive_train = plan_naive_floats(g, false);
            c->naive_predict = plan_naive_floats(g, true);
        }
    }
    layout_build(g, &c->layout);
    plan_build(g, &c->layout, false, &c->train);
    plan_build(g, &c->layout, true, &c->predict);
    plan_memory(g, &c->train);
    plan_memory(g, &c->predict);
    if (!plan_check(g, &c->train) || !plan_check(g, &c->predict))
        return false;
    if (diag_errors == 0)
        compile_decode(m, o, c);
    /* recomputation in the backward pass: what is faster to build again
     * than to keep, and with --max-ram what the budget needs (issue 16) */
    if (diag_errors == 0 && !recompute_fit(c, o->max_ram, o->opt >= pipeline_pass("fuse")->level))
        return false;
    return diag_errors == 0;
}

void pipeline_free(Compiled *c)
{
    if (c->decode) {
        pipeline_free(c->decode);
        free(c->decode);
        c->decode = NULL;
    }
    plan_free(&c->train);
    plan_free(&c->predict);
    layout_free(&c->layout);
    graph_free(&c->g);
}
