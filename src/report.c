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
#include "quantize.h"

static cJSON *model_stats(const Compiled *c)
{
    const Graph *g = &c->g;
    size_t rp, rg, rs, ra;
    emit_regions(c, &rp, &rg, &rs, &ra);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", g->name);
    cJSON_AddNumberToObject(o, "batch", g->batch);
    /* trained parameters and the others (batchnorm's running
     * statistics), as <PREFIX>_PARAMS and <PREFIX>_BUFFERS count them */
    cJSON_AddNumberToObject(o, "params", (double)graph_param_floats(g, true));
    cJSON_AddNumberToObject(o, "buffers", (double)graph_param_floats(g, false));
    /* frozen parameters (trainable=false, freeze): saved, not trained */
    cJSON_AddNumberToObject(o, "frozen_params", (double)graph_frozen_floats(g));
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
    if (c->decode) {   /* generation with a cache (PREFIX_decode) */
        cJSON_AddNumberToObject(o, "decode_kernels", c->decode->predict.nkernels);
        cJSON_AddNumberToObject(o, "decode_flops", c->decode->predict.flops);
        cJSON_AddNumberToObject(o, "decode_arena_bytes",
                                (double)c->decode->predict.arena_floats * 4);
        cJSON_AddNumberToObject(o, "kv_cache_bytes", (double)c->decode->g.kv_floats * 4);
    }
    cJSON_AddNumberToObject(o, "param_bytes", (double)rp * 4);
    cJSON_AddNumberToObject(o, "grad_bytes", (double)rg * 4);
    cJSON_AddNumberToObject(o, "opt_state_bytes", (double)rs * 4);
    cJSON_AddNumberToObject(o, "mem_bytes", (double)emit_mem_bytes(c));
    if (c->max_ram > 0 || c->recomputed > 0) {   /* what recomputation costs */
        if (c->max_ram > 0)
            cJSON_AddNumberToObject(o, "max_ram", (double)c->max_ram);
        cJSON_AddNumberToObject(o, "recomputed_nodes", c->recomputed);
        cJSON_AddNumberToObject(o, "recompute_flops",
                                c->train.flops - c->recompute_base_flops);
    }
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

/* The part of the training step a node belongs to: forward (with the
 * loss), backward (made by autodiff), the optimizer's update, or a
 * source (input, target, parameter, constant). */
enum { SEC_FWD, SEC_BWD, SEC_UPD, SEC_SRC, NSEC };

static int section(const Graph *g, int id)
{
    const Node *n = &g->nodes[id];
    if (n->op == OP_INPUT || n->op == OP_TARGET || n->op == OP_PARAM || n->op == OP_CONST)
        return SEC_SRC;
    if (optab[n->op].kind == K_UPDATE)
        return SEC_UPD;
    return n->is_grad ? SEC_BWD : SEC_FWD;
}

static const struct {
    const char *name, *fill, *border, *kfill;
} sections[NSEC] = {
    {"forward", "#f2f7fd", "#9dbbe0", "#d9e8f8"},
    {"backward (gradients)", "#fdf6ef", "#e0b98f", "#f8e3cc"},
    {"optimizer update", "#f1f8f0", "#9ccc95", "#d8eed4"},
    {"", "", "", ""},
};

/* One node: the op, the shape, and the .nn line it comes from. */
static void dot_node(Buf *out, const Compiled *c, int id, const char *indent)
{
    const Graph *g = &c->g;
    const Node *n = &g->nodes[id];
    const char *shape = "box", *style = "rounded,filled", *fill = "white";
    bool predict_only = !c->train.in_prog[id] && c->predict.in_prog[id];
    if (n->op == OP_PARAM) {
        shape = "note";
        style = "filled";
        fill = "#fff7d6";
    } else if (n->op == OP_INPUT || n->op == OP_TARGET) {
        shape = "ellipse";
        style = "filled";
        fill = "#eeeeee";
    }
    buf_printf(out, "%sn%d [shape=%s, style=\"%s%s\", fillcolor=\"%s\", label=\"", indent, id,
               shape, style, predict_only ? ",dashed" : "", fill);
    if (n->op == OP_PARAM || n->op == OP_INPUT || n->op == OP_TARGET)
        buf_printf(out, "%s\\n", n->name ? n->name : op_name(n->op));
    else if (optab[n->op].kind == K_UPDATE && n->name)
        buf_printf(out, "%s %s\\n", op_name(n->op), n->name);
    else
        buf_printf(out, "%s\\n", op_name(n->op));
    buf_printf(out, "%s", shape_str(&n->shape));
    if (n->loc.src && n->op != OP_PARAM)
        buf_printf(out, "\\nline %d", n->loc.line);
    if (predict_only)
        buf_puts(out, "\\n(predict only)");
    buf_puts(out, "\"];\n");
}

void report_dot(Buf *out, const Compiled *c)
{
    const Graph *g = &c->g;
    const Plan *p = &c->train;
    size_t params = graph_param_floats(g, true);
    int fused = 0;
    for (int k = 0; k < p->nkernels; k++)
        fused += p->kernels[k].n > 1;
    bool *in = xcalloc((size_t)g->nnodes, sizeof(bool));
    int *kern = xcalloc((size_t)g->nnodes, sizeof(int));   /* kernel index + 1 */
    for (int id = 1; id < g->nnodes; id++)
        in[id] = (c->train.in_prog[id] || c->predict.in_prog[id]) && g->nodes[id].op != OP_CONST;
    for (int k = 0; k < p->nkernels; k++)
        for (int m = 0; m < p->kernels[k].n; m++)
            kern[p->members[p->kernels[k].first + m]] = k + 1;

    buf_printf(out, "digraph \"%s\" {\n", g->name);
    buf_printf(out, "    graph [rankdir=TB, newrank=true, nodesep=0.25, ranksep=0.35, "
                    "fontname=\"Helvetica\", fontsize=13, labelloc=t,\n"
                    "           label=\"%s: training step, %d kernels (%d fused), %zu parameters, "
                    "arena %s (lower bound %s)\\n", g->name, p->nkernels, fused, params,
               human(p->arena_floats * 4), human(p->lower_floats * 4));
    buf_puts(out, "blue frames: fused kernels (one loop or GEMM epilogue); dashed edges stay "
                  "in registers, solid edges are buffers (size)\"];\n");
    buf_puts(out, "    node [fontname=\"Helvetica\", fontsize=9, margin=\"0.08,0.03\", "
                  "height=0.3];\n"
                  "    edge [fontname=\"Helvetica\", fontsize=7, color=\"#555555\", "
                  "fontcolor=\"#555555\", arrowsize=0.6];\n");
    for (int s = 0; s < SEC_SRC; s++) {
        bool any = false;
        for (int id = 1; id < g->nnodes && !any; id++)
            any = in[id] && section(g, id) == s;
        if (!any)
            continue;
        buf_printf(out, "    subgraph cluster_%s {\n        label=\"%s\"; style=\"rounded,filled\"; "
                        "fillcolor=\"%s\"; color=\"%s\"; fontsize=11;\n",
                   s == SEC_FWD ? "forward" : s == SEC_BWD ? "backward" : "update",
                   sections[s].name, sections[s].fill, sections[s].border);
        for (int k = 0; k < p->nkernels; k++) {
            const Kernel *kr = &p->kernels[k];
            if (kr->n < 2 || section(g, (int)kr->root) != s)
                continue;
            buf_printf(out, "        subgraph cluster_k%d {\n            label=\"kernel %d: "
                            "%d ops fused\"; style=\"rounded,filled\"; fillcolor=\"%s\"; "
                            "color=\"#2f6db5\"; penwidth=1.4; fontsize=9;\n",
                       k + 1, k + 1, kr->n, sections[s].kfill);
            for (int m = 0; m < kr->n; m++)
                dot_node(out, c, (int)p->members[kr->first + m], "            ");
            buf_puts(out, "        }\n");
        }
        for (int id = 1; id < g->nnodes; id++) {
            if (!in[id] || section(g, id) != s)
                continue;
            int k = kern[id];
            if (k && p->kernels[k - 1].n > 1 && section(g, (int)p->kernels[k - 1].root) == s)
                continue;   /* drawn in its kernel */
            dot_node(out, c, id, "        ");
        }
        buf_puts(out, "    }\n");
    }
    for (int id = 1; id < g->nnodes; id++)
        if (in[id] && section(g, id) == SEC_SRC)
            dot_node(out, c, id, "    ");
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        if (!in[id])
            continue;
        for (int k = 0; k < n->nin; k++) {
            NodeId s = n->in[k];
            const Node *sn = NODE(g, s);
            if (!in[s])
                continue;   /* constants are inlined */
            if (section(g, id) == SEC_UPD && sn->op == OP_PARAM)
                continue;   /* an update writes the parameter it names */
            Region r = p->in_prog[s] ? p->region[s] : c->predict.region[s];
            bool same_kernel = kern[s] && kern[s] == kern[id];
            bool across = section(g, (int)s) != SEC_SRC && section(g, (int)s) != section(g, id) &&
                          section(g, id) != SEC_UPD;
            bool param_back = sn->op == OP_PARAM && section(g, id) == SEC_BWD;
            if (r == REG_NONE || same_kernel)
                buf_printf(out, "    n%u -> n%d [style=dashed, color=\"#2f6db5\"];\n",
                           (unsigned)s, id);
            else
                buf_printf(out, "    n%u -> n%d [label=\"%s\"%s];\n", (unsigned)s, id,
                           human(shape_numel(&sn->shape) * 4),
                           param_back ? ", color=\"#aaaaaa\", fontcolor=\"#999999\", "
                                        "constraint=false"
                           : across ? ", color=\"#aaaaaa\", fontcolor=\"#999999\"" : "");
        }
    }
    buf_puts(out, "}\n");
    free(in);
    free(kern);
}

/* ---- int8 models (nnc --quantize=int8, issue 16) ------------------------- */

static const char *const qstep_kind[] = {"quantize", "im2col", "gemm", "maxpool", "softmax"};

/* The float model's figures, then "int8": the scheme, the bytes, what
 * stays float, and each step with its scales. */
char *report_stats_quant(const Compiled *c, const QModel *q)
{
    cJSON *o = model_stats(c), *qo = cJSON_AddObjectToObject(o, "int8");
    cJSON_AddStringToObject(qo, "weights", "int8, symmetric, per output channel");
    cJSON_AddStringToObject(qo, "activations", "int8, symmetric, per tensor, max-abs "
                                               "calibration");
    cJSON_AddStringToObject(qo, "calibration_file", q->calib);
    cJSON_AddNumberToObject(qo, "calibration_rows", q->calib_rows);
    cJSON_AddNumberToObject(qo, "weight_bytes", (double)q->int8_weight_bytes);
    cJSON_AddNumberToObject(qo, "float_weight_bytes", (double)q->float_weight_bytes);
    cJSON_AddNumberToObject(qo, "mem_bytes", (double)q->mem_bytes);
    /* the outputs that stay float: the last layer's (its GEMM is int8,
     * dequantized instead of requantized) and a softmax after it */
    cJSON *fl = cJSON_AddArrayToObject(qo, "float_outputs");
    cJSON *steps = cJSON_AddArrayToObject(qo, "steps");
    for (int i = 0; i < q->nsteps; i++) {
        const QStep *s = &q->steps[i];
        cJSON *so = cJSON_CreateObject();
        cJSON_AddStringToObject(so, "layer", s->layer);
        cJSON_AddStringToObject(so, "kind", qstep_kind[s->kind]);
        if (s->kind == QS_GEMM) {
            cJSON_AddNumberToObject(so, "in_scale", s->in_scale);
            cJSON_AddBoolToObject(so, "relu", s->relu);
            cJSON_AddNumberToObject(so, "max_weight_error", s->max_err);
        }
        if (s->kind == QS_QUANTIZE || (s->kind == QS_GEMM && !s->float_out))
            cJSON_AddNumberToObject(so, "scale", s->scale);
        cJSON_AddStringToObject(so, "output", s->float_out || s->kind == QS_SOFTMAX ? "float"
                                                                                 : "int8");
        if (s->float_out || s->kind == QS_SOFTMAX)
            cJSON_AddItemToArray(fl, cJSON_CreateString(s->layer));
        cJSON_AddItemToArray(steps, so);
    }
    char *j = cJSON_Print(o);
    cJSON_Delete(o);
    NNC_ASSERT(j);
    return j;
}
