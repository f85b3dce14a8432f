/*
 * pipeline.c - the compiler's pipeline for one model, as a plain list of
 * calls with the IR verifier between stages (QBE's main.c style; there is
 * no pass manager):
 *
 *   lower -> [[losshead -> crop]] -> autodiff -> optim
 *         -> [simplify -> cse -> dce] -> [[poolrelu (+ dce) -> fuse]]
 *                                                    ([-O1], [[-O2]])
 *         -> layout -> schedule (train, predict) -> memplan -> plan check
 *
 * The driver and the tests both compile through here, so what the tests
 * check is what nnc emits.
 */
#include <string.h>

#include "nnc.h"

static void dump(const PipelineOptions *o, const char *stage, const Graph *g)
{
    if (o->dump_after && (!strcmp(o->dump_after, stage) || !strcmp(o->dump_after, "all"))) {
        fprintf(stderr, "# after %s\n", stage);
        ir_print(stderr, g);
    }
}

static bool stage(const PipelineOptions *o, const char *name, const Graph *g, bool always)
{
    dump(o, name, g);
    return !(always || o->verify_all) || verify(g);
}

static bool pass(const PipelineOptions *o, const char *name, bool (*fn)(Graph *), Graph *g)
{
    fn(g);
    return stage(o, name, g, true);
}

bool pipeline_compile(const Model *m, const PipelineOptions *o, Compiled *c)
{
    Graph *g = &c->g;
    memset(c, 0, sizeof *c);
    if (!lower_model(m, g) || !stage(o, "lower", g, false))
        return false;
    if (o->opt >= 2 && !pass(o, "losshead", pass_losshead, g))
        return false;
    if (o->opt >= 2 && !pass(o, "crop", pass_crop, g))
        return false;
    ad_build(g);
    if (!stage(o, "autodiff", g, false))
        return false;
    optim_build(g);
    if (!stage(o, "optim", g, true))
        return false;
    c->nodes_before = g->nnodes - 1;
    c->naive_train = plan_naive_floats(g, false);
    c->naive_predict = plan_naive_floats(g, true);
    if (o->opt >= 1 && (!pass(o, "simplify", pass_simplify, g) || !pass(o, "cse", pass_cse, g) ||
                        !pass(o, "dce", pass_dce, g)))
        return false;
    if (o->opt >= 2) {
        if (pass_poolrelu(g))
            pass_dce(g);
        if (!stage(o, "poolrelu", g, true))
            return false;
    }
    if (o->opt >= 2 && !pass(o, "fuse", pass_fuse, g))
        return false;
    layout_build(g, &c->layout);
    plan_build(g, &c->layout, false, &c->train);
    plan_build(g, &c->layout, true, &c->predict);
    plan_memory(g, &c->train);
    plan_memory(g, &c->predict);
    if (!plan_check(g, &c->train) || !plan_check(g, &c->predict))
        return false;
    return diag_errors == 0;
}

void pipeline_free(Compiled *c)
{
    plan_free(&c->train);
    plan_free(&c->predict);
    layout_free(&c->layout);
    graph_free(&c->g);
}
