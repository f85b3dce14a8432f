/*
 * report.c - what nnc tells about a compiled model: --emit=stats (one
 * JSON object, cJSON) and --emit=dot (the optimized training graph for
 * graphviz, fused kernels drawn as clusters, buffer sizes on the edges).
 *
 * The memory figures come from the plans: arena_bytes is the planned
 * scratch arena, lower_bound_bytes the most bytes live at any kernel of
 * the schedule, naive_bytes one buffer per value of the graph before
 * any pass (what a compiler without fusion or reuse would allocate, the
 * gradients included). Parameters, gradients, optimizer state, inputs and
 * outputs have regions of their own and are reported separately.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nnc.h"

static cJSON *model_stats(const Compiled *c)
{
    const Graph *g = &c->g;
    size_t rp, rg, rs, ra, params = 0;
    emit_regions(c, &rp, &rg, &rs, &ra);
    for (int i = 0; i < g->nparams; i++)
        params += shape_numel(&NODE(g, g->params[i])->shape);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", g->name);
    cJSON_AddNumberToObject(o, "batch", g->batch);
    cJSON_AddNumberToObject(o, "params", (double)params);
    cJSON_AddNumberToObject(o, "flops_train_step", c->train.flops);
    cJSON_AddNumberToObject(o, "flops_predict", c->predict.flops);
    cJSON_AddNumberToObject(o, "nodes_before_passes", c->nodes_before);
    cJSON_AddNumberToObject(o, "nodes_after_passes", g->nnodes - 1);
    cJSON_AddNumberToObject(o, "kernels", c->train.nkernels);
    cJSON_AddNumberToObject(o, "arena_bytes", (double)c->train.arena_floats * 4);
    cJSON_AddNumberToObject(o, "naive_bytes", (double)c->naive_train * 4);
    cJSON_AddNumberToObject(o, "lower_bound_bytes", (double)c->train.lower_floats * 4);
    cJSON_AddNumberToObject(o, "predict_kernels", c->predict.nkernels);
    cJSON_AddNumberToObject(o, "predict_arena_bytes", (double)c->predict.arena_floats * 4);
    cJSON_AddNumberToObject(o, "predict_naive_bytes", (double)c->naive_predict * 4);
    cJSON_AddNumberToObject(o, "predict_lower_bound_bytes", (double)c->predict.lower_floats * 4);
    cJSON_AddNumberToObject(o, "param_bytes", (double)rp * 4);
    cJSON_AddNumberToObject(o, "grad_bytes", (double)rg * 4);
    cJSON_AddNumberToObject(o, "opt_state_bytes", (double)rs * 4);
    cJSON_AddNumberToObject(o, "mem_bytes", (double)emit_mem_bytes(c));
    return o;
}

char *report_stats(const Compiled *c)
{
    cJSON *o = model_stats(c);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    NNC_ASSERT(s);
    return s;
}

/* ---- dot ------------------------------------------------------------------ */

static const char *human(size_t bytes)
{
    static char b[4][32];
    static int k;
    char *s = b[k++ % 4];
    if (bytes >= 10 * 1024 * 1024)
        snprintf(s, 32, "%.1f MB", (double)bytes / (1024 * 1024));
    else if (bytes >= 10 * 1024)
        snprintf(s, 32, "%.1f KB", (double)bytes / 1024);
    else
        snprintf(s, 32, "%zu B", bytes);
    return s;
}

static void dot_node(Buf *out, const Graph *g, int id, const char *indent)
{
    const Node *n = &g->nodes[id];
    const char *shape = "box";
    if (n->op == OP_PARAM)
        shape = "note";
    else if (n->op == OP_INPUT || n->op == OP_TARGET)
        shape = "ellipse";
    else if (n->op == OP_CONST)
        shape = "plaintext";
    buf_printf(out, "%sn%d [shape=%s, label=\"%s%s%s\\n%s\"%s];\n", indent, id, shape,
               n->name ? n->name : "", n->name ? "\\n" : "", op_name(n->op),
               shape_str(&n->shape), n->is_grad ? ", color=gray40, fontcolor=gray25" : "");
}

void report_dot(Buf *out, const Compiled *c)
{
    const Graph *g = &c->g;
    const Plan *p = &c->train;
    buf_printf(out, "digraph \"%s\" {\n", g->name);
    buf_puts(out, "    rankdir=TB;\n    node [fontname=\"Helvetica\", fontsize=10];\n"
                  "    edge [fontname=\"Helvetica\", fontsize=8];\n");
    buf_printf(out, "    label=\"%s: training step, %d kernels, arena %s (lower bound %s)\";\n",
               g->name, p->nkernels, human(p->arena_floats * 4), human(p->lower_floats * 4));
    bool *drawn = calloc((size_t)g->nnodes, sizeof(bool));
    NNC_ASSERT(drawn);
    for (int k = 0; k < p->nkernels; k++) {
        const Kernel *kr = &p->kernels[k];
        if (kr->n < 2)
            continue;
        buf_printf(out, "    subgraph cluster_k%d {\n        label=\"kernel %d\";\n"
                        "        style=rounded; color=steelblue;\n", k + 1, k + 1);
        for (int m = 0; m < kr->n; m++) {
            dot_node(out, g, (int)p->members[kr->first + m], "        ");
            drawn[p->members[kr->first + m]] = true;
        }
        buf_puts(out, "    }\n");
    }
    bool *in = calloc((size_t)g->nnodes, sizeof(bool));
    NNC_ASSERT(in);
    for (int id = 1; id < g->nnodes; id++)
        in[id] = c->train.in_prog[id] || c->predict.in_prog[id];
    for (int id = 1; id < g->nnodes; id++)
        if (in[id] && !drawn[id])
            dot_node(out, g, id, "    ");
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (!in[id])
            continue;
        for (int k = 0; k < n->nin; k++) {
            NodeId s = n->in[k];
            Region r = p->in_prog[s] ? p->region[s] : c->predict.region[s];
            const char *label = r == REG_NONE ? "fused" : human(shape_numel(&NODE(g, s)->shape) * 4);
            if (NODE(g, s)->op == OP_CONST)
                label = "inlined";
            buf_printf(out, "    n%u -> n%d [label=\"%s\"%s];\n", (unsigned)s, id, label,
                       r == REG_NONE ? ", style=dashed" : "");
        }
    }
    buf_puts(out, "}\n");
    free(drawn);
    free(in);
}
