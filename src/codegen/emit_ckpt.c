/*
 * emit_ckpt.c - a model's checkpoint functions: <p>_save, <p>_load and
 * <p>_export, over a table of its tensors (<p>_tensors) that the runtime
 * reads and writes (runtime/ckpt.c, safetensors), and the layout of each
 * parameter in PyTorch's convention (runtime/ckpt_torch.c).
 *
 * The format is fixed by DESIGN.md: names as in the .nn source, the
 * optimizer state as "optimizer.PARAM.SLOT" after the parameters, the
 * step in the metadata. The emitted code only describes the tensors; all
 * parsing and validation is the runtime's, tested once.
 */
#include <string.h>

#include "codegen.h"

/* Each parameter's layout in PyTorch (runtime/ckpt_torch.c): conv kernels
 * (checkpoint shape (out, kh, kw, in)), parameters along a flattened image
 * (Node.hwc), the rest unchanged. */
static void emit_torch_layout(Buf *out, const Graph *g, const char *p)
{
    buf_printf(out, "\nstatic const nnc_torch_layout %s_torch_layout[%d] = {\n", p,
               g->nparams > 0 ? g->nparams : 1);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        if (n->ckpt_shape.rank == 4)
            buf_printf(out, "    {NNC_TORCH_KERNEL, %d, %d, %d},  /* %s */\n", n->ckpt_shape.dim[1],
                       n->ckpt_shape.dim[2], n->ckpt_shape.dim[3], n->name);
        else if (n->hwc[0] > 0)
            buf_printf(out, "    {NNC_TORCH_FLAT, %d, %d, %d},  /* %s */\n", n->hwc[0], n->hwc[1],
                       n->hwc[2], n->name);
        else
            buf_printf(out, "    {NNC_TORCH_SAME, 0, 0, 0},  /* %s */\n", n->name);
    }
    if (g->nparams == 0)
        buf_puts(out, "    {NNC_TORCH_SAME, 0, 0, 0}\n");
    buf_puts(out, "};\n");
}

/* Checkpoints: the parameters, then the optimizer state of each,
 * "optimizer.PARAM.SLOT", and the step in the metadata. Loading a file
 * without the state (weights only, from PyTorch say) resets the state,
 * and the step unless the metadata has it and there is no state. The
 * table of tensors, in that order; returns their count. */
static int emit_tensors(Buf *out, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    int ns = c->layout.nstate, nt = 0;
    buf_printf(out, "\nstatic void %s_tensors(const %s_ctx *ctx, nnc_tensor *t)\n{\n", p, p);
    for (int k = 0; k < g->nparams * (1 + ns); k++) {
        int i = k % g->nparams, s = k / g->nparams - 1;
        const Node *n = NODE(g, g->params[i]);
        /* no optimizer state for what is not trained (batchnorm's running
         * statistics), as torch.optim has none */
        if (s >= 0 && !graph_is_trained(g, i))
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
            buf_printf(out, "    t[%d].data = W_%s;\n", nt, emit_ident(n->name));
        else
            buf_printf(out, "    t[%d].data = S%d_%s;\n", nt, s, emit_ident(n->name));
        nt++;
    }
    buf_puts(out, "}\n");
    return nt;
}

/* <p>_load: the parameters, and the optimizer state and step when the
 * file has them (else fresh state, step 0). With weights_only,
 * <p>_load_weights: the parameters alone, whatever else the file holds
 * (a checkpoint of a model trained whole, loaded to fine-tune part of it:
 * fresh optimizer state and step 0, so the schedule starts over). */
static void emit_load(Buf *out, const Compiled *c, const char *p, int nt, bool weights_only)
{
    const Graph *g = &c->g;
    const char *fn = weights_only ? "load_weights" : "load";
    Regions rg = emit_offsets(c);
    buf_printf(out, "\nint %s_%s(%s_ctx *ctx, const char *path)\n{\n", p, fn, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", nt);
    buf_puts(out, "    int found = 0, err;\n    uint64_t step = 0;\n");
    buf_printf(out, "    if (!ctx || !path) {\n        nnc_set_error(\"%s_%s: a NULL argument\");"
                    "\n        return NNC_ERR_ARG;\n    }\n", p, fn);
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    /* an unreadable header goes to nnc_ckpt_load_opt, which refuses it with
     * the detailed message */
    buf_printf(out, "    if (nnc_ckpt_is_nnc(path) == 0)  /* PyTorch's layout: weights only */\n"
                    "        err = nnc_ckpt_load_torch(path, t, %s_torch_layout, %d);\n",
               p, g->nparams);
    buf_printf(out, "    else\n        err = nnc_ckpt_load_opt(path, t, %d, %d, &found, &step);\n",
               g->nparams, weights_only ? g->nparams : nt);
    buf_puts(out, "    if (err)\n        return err;\n");
    if (c->layout.nstate > 0) {
        buf_printf(out, "    if (!found) {  /* weights only: fresh optimizer state */\n");
        buf_printf(out, "        memset(ctx->mem + %zu, 0, sizeof(float) * %zu);\n", rg.state,
                   rg.scratch - rg.state);
        emit_state_init(out, c);
        buf_puts(out, "        step = 0;\n    }\n");
    } else {
        buf_puts(out, "    (void)found;\n");
    }
    if (weights_only)
        buf_puts(out, "    step = 0;\n");
    buf_puts(out, "    ctx->step = step;\n    return 0;\n}\n");
}

void emit_checkpoints(Emit *e, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    Buf *out = e->out;
    int nt = emit_tensors(out, c, p);
    emit_torch_layout(out, g, p);
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
    emit_load(out, c, p, nt, false);
    emit_load(out, c, p, nt, true);
    buf_printf(out, "\nint %s_export(const %s_ctx *ctx, const char *path)\n{\n", p, p);
    buf_printf(out, "    nnc_tensor t[%d];\n", nt);
    buf_printf(out, "    const char *meta[] = {\"format\", \"pt\", \"model\", \"%s\", NULL};\n",
               g->name);
    buf_puts(out, "    if (!ctx || !path)\n        return NNC_ERR_ARG;\n");
    buf_printf(out, "    %s_tensors(ctx, t);\n", p);
    buf_printf(out, "    return nnc_ckpt_save_torch(path, t, %s_torch_layout, %d, meta);\n}\n",
               p, g->nparams);
}
