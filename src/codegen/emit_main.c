/*
 * emit_main.c - --emit=main: one self-contained C file with the model
 * (its header and source, as -o would write them) and a main() that
 * hands the model to the runtime's training driver (runtime/fit.c):
 *
 *     nnc model.nn --emit=main -o train.c
 *     cc -O3 train.c $(pkg-config --cflags --libs nncrt) -lm -o train
 *     ./train train --x X --y Y --epochs 5 --val-split 0.1 --log log.csv
 *
 * A sequence language model (T token ids in, an index loss over T
 * positions, the ids into a table of rows: an embedding) also trains on
 * text and samples from it: `./train train --text FILE`, `./train
 * generate --prompt TEXT`. Its checkpoints then keep the vocabulary and
 * the window sampler's state in their metadata, written by fit_save_meta.
 *
 * The driver's logic (options, data files, progress, checkpoints) is
 * plain runtime code, tested once; the emitted part only describes the
 * model: its sizes, how to read its output (the loss), and its API
 * through small wrappers with the void * context the driver takes.
 */
#include "codegen.h"

/* How the driver reads the model's output (NNC_LOSS_<loss op>, nncrt.h):
 * a fused head (losshead.c) takes the logits, but the output (what
 * predict returns) is still the activation's, read with the loss as it
 * was written; a loss on the output itself is read as it is. */
static const char *loss_kind(const Graph *g)
{
    const Node *l = NODE(g, g->loss);
    Op op = l->in[0] == g->output ? l->op : losshead_unfused(l->op);
    return emit_str("NNC_LOSS_%s", emit_upper(op_name(op)));
}

/* A sequence language model: per sample T ids in, T class indices as
 * targets (an index loss), T x V outputs, the ids read by an op that
 * indexes a table's rows (embedding). Its seq_len (T) and the table's
 * rows, or 0, 0. */
static void seq_model(const Graph *g, int *seq_len, int *rows)
{
    int in = emit_per_sample(NODE(g, g->input));
    int tgt = emit_per_sample(NODE(g, g->target));
    int out = emit_per_sample(NODE(g, g->output));
    *seq_len = *rows = 0;
    if (!(optab[NODE(g, g->loss)->op].flags & F_INDEX) || in != tgt || in < 2 ||
        out % in != 0 || out == in)
        return;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        unsigned f = optab[n->op].flags;
        if ((f & F_INDEX) && (f & F_ROWS) && n->in[1] == g->input) {
            *seq_len = in;
            *rows = NODE(g, n->in[0])->shape.dim[0];
            return;
        }
    }
}

/* fit_save_meta: <p>_save with more metadata (the text's vocabulary and
 * the window sampler's state). The tensors as <p>_save writes them: the
 * table <p>_tensors fills (its entries counted by their names). */
static void emit_save_meta(Buf *out, const Compiled *c, const char *p)
{
    const Graph *g = &c->g;
    int cap = g->nparams * (1 + c->layout.nstate);
    cap = cap > 0 ? cap : 1;
    buf_puts(out, "static int fit_save_meta(void *ctx, const char *path, "
                  "const char *const *more)\n{\n");
    buf_printf(out, "    nnc_tensor t[%d];\n    char step[32];\n", cap);
    buf_printf(out, "    const char *meta[2 * 16 + 7] = {\"format\", \"nnc\", \"model\", \"%s\", "
                    "\"step\", step};\n", g->name);
    buf_puts(out, "    int n = 0, k = 6;\n");
    buf_puts(out, "    while (more && more[k - 6] && k < 2 * 16 + 6) {\n"
                  "        meta[k] = more[k - 6];\n        k++;\n    }\n    meta[k] = NULL;\n");
    buf_printf(out, "    snprintf(step, sizeof step, \"%%lu\", "
                    "(unsigned long)((const %s_ctx *)ctx)->step);\n", p);
    buf_puts(out, "    memset(t, 0, sizeof t);\n");
    buf_printf(out, "    %s_tensors((const %s_ctx *)ctx, t);\n", p, p);
    buf_printf(out, "    while (n < %d && t[n].name)\n        n++;\n", cap);
    buf_puts(out, "    return nnc_ckpt_save(path, t, n, meta);\n}\n");
}

/* Data parallelism's calls into the model (nnc_fit_model's last fields). */
static void emit_dist_wrappers(Buf *out, const char *p)
{
    buf_printf(out, "static float fit_grad_step(void *ctx, const float *x, const float *y,\n"
                    "    nnc_grad_ready ready, void *arg)\n"
                    "{\n    return %s_grad_step_notify((%s_ctx *)ctx, x, y, ready, arg);\n}\n",
               p, p);
    buf_printf(out, "static int fit_apply_update(void *ctx) { return %s_apply_update((%s_ctx *)"
                    "ctx); }\n", p, p);
    buf_printf(out, "static float *fit_grads(void *ctx, size_t *n) { return %s_grads((%s_ctx *)"
                    "ctx, n); }\n", p, p);
    buf_printf(out, "static float *fit_params(void *ctx, size_t *n) { return %s_params((%s_ctx *)"
                    "ctx, n); }\n", p, p);
}

/* FNV-1a of the program so far (the model's code, byte-deterministic):
 * processes that train together must agree on it. */
static uint64_t model_hash(const Buf *b)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (size_t i = 0; i < b->len; i++)
        h = (h ^ (unsigned char)b->data[i]) * UINT64_C(0x100000001B3);
    return h;
}

void emit_main(Buf *out, const Compiled *c, const EmitOptions *o)
{
    const Graph *g = &c->g;
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", emit_upper(p));
    buf_printf(out,
        "/* Generated by nnc %s: a training program for model '%s'.\n"
        " * Do not edit: edit the .nn source. Build and run:\n"
        " *     cc -O3 THIS.c $(pkg-config --cflags --libs nncrt) -lm -o train\n"
        " *     ./train --help\n"
        " * Data-parallel over MPI (mpirun -np N ./train train ...):\n"
        " *     mpicc -O3 THIS.c $(pkg-config --cflags --libs nncrt-mpi) -lm -o train\n"
        " * The model's header and source come first, as `nnc -o` writes them;\n"
        " * main() at the end runs the driver of libnncrt (nnc_fit_main). */\n\n",
        NNC_VERSION, g->name);
    Buf hb = {0};
    emit_header_begin(&hb, "NNC_MAIN_MODEL_H");
    emit_header(&hb, c, o);
    emit_header_end(&hb, "NNC_MAIN_MODEL_H");
    buf_append(out, hb.data, hb.len);
    buf_free(&hb);
    buf_puts(out, "\n#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
                  "#include <stdio.h>\n#include <string.h>\n");
    buf_puts(out, "#ifdef NNC_MPI  /* pkg-config --cflags nncrt-mpi */\n"
                  "#include \"nncrt_mpi.h\"\n#endif\n");
    emit_source(out, c, o);

    buf_printf(out, "\n/* ======== the training driver ======== */\n\n");
    buf_printf(out, "static void *fit_create(uint64_t seed) { return %s_create(seed); }\n", p);
    buf_printf(out, "static void fit_destroy(void *ctx) { %s_destroy((%s_ctx *)ctx); }\n", p, p);
    buf_printf(out, "static float fit_train_step(void *ctx, const float *x, const float *y)\n"
                    "{\n    return %s_train_step((%s_ctx *)ctx, x, y);\n}\n", p, p);
    buf_printf(out, "static int fit_predict(void *ctx, const float *x, float *y, size_t n)\n"
                    "{\n    return %s_predict((%s_ctx *)ctx, x, y, n);\n}\n", p, p);
    buf_printf(out, "static int fit_save(void *ctx, const char *path)\n"
                    "{\n    return %s_save((const %s_ctx *)ctx, path);\n}\n", p, p);
    buf_printf(out, "static int fit_load(void *ctx, const char *path)\n"
                    "{\n    return %s_load((%s_ctx *)ctx, path);\n}\n", p, p);
    buf_printf(out, "static int fit_load_weights(void *ctx, const char *path)\n"
                    "{\n    return %s_load_weights((%s_ctx *)ctx, path);\n}\n", p, p);
    buf_printf(out, "static void fit_set_lr(void *ctx, float lr) { %s_set_lr((%s_ctx *)ctx, "
                    "lr); }\n", p, p);
    buf_printf(out, "static float fit_get_lr(void *ctx) { return %s_get_lr((const %s_ctx *)"
                    "ctx); }\n", p, p);
    if (c->decode)
        buf_printf(out, "static int fit_decode(void *ctx, int token, int pos, float *out)\n"
                        "{\n    return %s_decode((%s_ctx *)ctx, token, pos, out);\n}\n", p, p);
    buf_printf(out, "static uint64_t fit_steps(void *ctx) { return ((%s_ctx *)ctx)->step; }\n",
               p);
    emit_save_meta(out, c, p);
    bool split = emit_splittable(c);
    if (split)
        emit_dist_wrappers(out, p);
    int seq_len, rows;
    seq_model(g, &seq_len, &rows);
    buf_puts(out, "\n");
    buf_puts(out, "int main(int argc, char **argv)\n{\n");
    buf_puts(out, "    static const nnc_fit_model model = {\n");
    buf_printf(out, "        \"%s\", %s_BATCH, %s_IN, %s_OUT, %s_TARGET,\n", g->name, P, P, P,
               P);
    const Node *l = NODE(g, g->loss);
    /* the loss's parameter (huber's delta), if it has one */
    buf_printf(out, "        %s, %.17g,\n", loss_kind(g),
               (optab[l->op].flags & F_ATTR) ? l->fattr[0] : 0.0);
    buf_puts(out, "        fit_create, fit_destroy, fit_train_step, fit_predict, fit_save,\n"
                  "        fit_load, fit_set_lr, fit_get_lr, fit_steps,\n");
    buf_printf(out, "        %d, %d, fit_save_meta,  /* sequence models: T, the table's rows */\n",
               seq_len, rows);
    buf_printf(out, "        %s,  /* generation with a cache of keys and values */\n",
               c->decode && seq_len ? "fit_decode" : "NULL");
    buf_printf(out, "        %s,\n        UINT64_C(0x%016llx),  /* the model's hash */\n",
               split ? "fit_grad_step, fit_apply_update, fit_grads, fit_params"
                     : "NULL, NULL, NULL, NULL",
               (unsigned long long)model_hash(out));
    buf_puts(out, "        fit_load_weights};  /* train --init-from */\n");
    buf_puts(out, "#ifdef NNC_MPI\n"
                  "    return nnc_mpi_fit_main(argc, argv, &model);\n"
                  "#else\n"
                  "    return nnc_fit_main(argc, argv, &model);\n"
                  "#endif\n}\n");
}
