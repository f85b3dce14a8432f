/*
 * emit_quant.c - the C of an int8 model (nnc --quantize=int8): the
 * quantized weights as constant data (quantize.c made them), and
 * predict_rows as a straight list of runtime calls, one per step
 * (nnc_quantize, nnc_im2col_i8, nnc_qgemm, nnc_maxpool_i8), around the
 * float model's predict and accuracy (emit_api.c), so a caller switches
 * between the two by the prefix alone.
 *
 * Memory: the context, then two int8 buffers of the largest step output
 * at P_BATCH rows. The program is a chain, so each step reads one buffer
 * and writes the other; the last GEMM writes its float output straight
 * into the caller's rows. Nothing is allocated after create.
 */
#include "codegen.h"
#include "../quantize.h"

#define QCTX_BYTES 64   /* room for struct <prefix>_ctx (quantize.c's mem_bytes) */

void emit_quant_header(Buf *out, const Compiled *c, const QModel *q, const char *p)
{
    const Graph *g = &c->g;
    char P[128];
    snprintf(P, sizeof P, "%s", emit_upper(p));
    buf_printf(out, "\n/* ---- model '%s' (%s), int8: weights per output channel, activations\n"
                    " * per tensor from %d rows of %s; the last layer's output in float ---- */\n\n",
               g->name, emit_loc(g->loc), q->calib_rows, q->calib);
    buf_printf(out, "#define %s_BATCH %d  /* rows per chunk of predict */\n", P, q->batch);
    buf_printf(out, "#define %s_IN %d  /* floats per input sample */\n", P,
               emit_per_sample(NODE(g, g->input)));
    buf_printf(out, "#define %s_OUT %d  /* floats per output sample */\n", P,
               emit_per_sample(NODE(g, g->output)));
    buf_printf(out, "#define %s_TARGET %d  /* floats per target row */\n", P,
               emit_per_sample(NODE(g, g->target)));
    buf_printf(out, "#define %s_INT8 1  /* predict-only: no train_step, save or load */\n", P);
    buf_printf(out, "#define %s_WEIGHT_BYTES ((size_t)%zu)  /* the embedded int8 weights, sums,\n"
                    " * scales and biases (%zu as float parameters) */\n", P,
               q->int8_weight_bytes, q->float_weight_bytes);
    buf_printf(out, "/* Exact bytes for %s_init: 63 (alignment slack) + %d (context) + two\n"
                    " * int8 buffers of %zu. */\n", p, QCTX_BYTES, q->buf_stride);
    buf_printf(out, "#define %s_MEM_BYTES ((size_t)%zu)\n\n", P, q->mem_bytes);
    buf_printf(out, "typedef struct %s_ctx %s_ctx;  /* opaque */\n\n", p, p);
    buf_printf(out,
        "/* The int8 model in one allocation (the weights are embedded; seed is\n"
        " * unused, kept for the float model's signature). NULL if out of memory. */\n"
        "%s_ctx *%s_create(uint64_t seed);\n"
        "/* The same in caller memory: `mem` holds `bytes` >= %s_MEM_BYTES bytes, any\n"
        " * alignment; nothing is allocated. NULL if mem is NULL or too small. */\n"
        "%s_ctx *%s_init(void *mem, size_t bytes, uint64_t seed);\n"
        "/* Frees a model from %s_create (not one from %s_init). */\n"
        "void %s_destroy(%s_ctx *ctx);\n\n", p, p, P, p, p, p, p, p, p);
    buf_printf(out,
        "/* As the float model's: the output for n samples (x: n x %s_IN, y: n x\n"
        " * %s_OUT), in chunks of %s_BATCH; the fraction predict gets right.\n"
        " * Allocation-free; 0, or NNC_ERR_ARG on a NULL argument. */\n"
        "int %s_predict(%s_ctx *ctx, const float *x, float *y, size_t n);\n"
        "int %s_accuracy(%s_ctx *ctx, const float *x, const float *y, size_t n,\n"
        "    double *acc);\n", P, P, P, p, p, p, p);
}

static void int_array(Buf *out, const char *type, const char *name, const void *data,
                      size_t n, bool is32)
{
    buf_printf(out, "static const %s %s[%zu] = {", type, name, n);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%ld,", i % 20 ? " " : "\n    ",
                   is32 ? (long)((const int32_t *)data)[i] : (long)((const int8_t *)data)[i]);
    buf_puts(out, "\n};\n");
}

static void float_array(Buf *out, const char *name, const float *v, size_t n)
{
    buf_printf(out, "static const float %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s,", i % 6 ? " " : "\n    ", emit_float(v[i]));
    buf_puts(out, "\n};\n");
}

/* A GEMM step's constant data and its nnc_qlayer, named p_qI. */
static void layer_data(Buf *out, const QStep *s, const char *p, int i)
{
    size_t n16 = (size_t)(s->n + 15) / 16 * 16;
    char name[160];
    buf_printf(out, "\n/* %s: %s %d x %d, int8 per output channel (largest weight error "
                    "%.3g), %s */\n", emit_loc(s->loc), s->layer, s->n, s->k, s->max_err,
               s->float_out ? "float output" : "int8 output");
    snprintf(name, sizeof name, "%s_q%d_w", p, i);
    int_array(out, "int8_t", name, s->packed, s->packed_bytes, false);
    snprintf(name, sizeof name, "%s_q%d_wsum", p, i);
    int_array(out, "int32_t", name, s->wsum, n16, true);
    snprintf(name, sizeof name, "%s_q%d_mult", p, i);
    float_array(out, name, s->mult, n16);
    snprintf(name, sizeof name, "%s_q%d_bias", p, i);
    float_array(out, name, s->bias, n16);
    buf_printf(out, "static const nnc_qlayer %s_q%d = {%d, %d, %s_q%d_w, %s_q%d_wsum, "
                    "%s_q%d_mult, %s_q%d_bias, %d};\n", p, i, s->n, s->k, p, i, p, i, p, i, p,
               i, s->relu);
}

/* The call of step i, reading buffer `from` (-1: the caller's x); a
 * float output goes to y, or to the logits when a softmax follows. */
static void step_call(Buf *out, const QStep *s, const char *p, int i, int from, bool logits)
{
    const int *G = s->geo;
    int to = 1 - from;
    const char *y = logits ? "ctx->logits" : "y";
    buf_printf(out, "    /* %s: %s */\n", emit_loc(s->loc), s->layer);
    switch (s->kind) {
    case QS_QUANTIZE:
        buf_printf(out, "    nnc_quantize(x, (size_t)nb * %d, %s, ctx->buf[0]);  /* scale %.9g */\n",
                   s->count, emit_float(1.0 / s->scale), s->scale);
        break;
    case QS_IM2COL:
        buf_printf(out, "    nnc_im2col_i8(nb, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
                        "ctx->buf[%d], ctx->buf[%d], %d);\n", G[0], G[1], G[2], G[3], G[4],
                   G[5], G[6], G[7], G[8], G[9], G[10], from, to, s->ldcol);
        break;
    case QS_MAXPOOL:
        buf_printf(out, "    nnc_maxpool_i8(nb, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
                        "ctx->buf[%d], ctx->buf[%d]);\n", G[0], G[1], G[2], G[3], G[4], G[5],
                   G[6], G[9], G[10], from, to);
        break;
    case QS_GEMM:
        if (s->conv) {
            buf_printf(out, "    nnc_qconv(&%s_q%d, nb, %d, %d, %d, %d, %d, %d, %d, %d, %d, "
                            "ctx->buf[%d], %d, ", p, i, G[0], G[1], G[2], G[3], G[4], G[5], G[6],
                       G[9], G[10], from, s->nonneg_in);
            if (s->float_out)
                buf_printf(out, "NULL, %s);\n", y);
            else
                buf_printf(out, "ctx->buf[%d], NULL);  /* out scale %.9g */\n", to, s->scale);
        } else if (s->float_out)
            buf_printf(out, "    nnc_qgemm(&%s_q%d, nb * %d, ctx->buf[%d], %d, %d, NULL, %s, %d);\n",
                       p, i, s->rows, from, s->k, s->nonneg_in, y, s->n);
        else
            buf_printf(out, "    nnc_qgemm(&%s_q%d, nb * %d, ctx->buf[%d], %d, %d, ctx->buf[%d], "
                            "NULL, %d);  /* out scale %.9g */\n", p, i, s->rows, from, s->k,
                       s->nonneg_in, to, s->n, s->scale);
        break;
    case QS_SOFTMAX:
        buf_printf(out, "    nnc_softmax(ctx->logits, y, (size_t)nb * %d, %d);\n", s->rows, s->n);
        break;
    }
}

static void predict_rows(Buf *out, const QModel *q, const char *p)
{
    int from = 0;
    buf_printf(out, "\n/* nb <= %d rows through the int8 steps, the buffers taking turns */\n"
                    "static void %s_predict_rows(%s_ctx *ctx, const float *x, float *y, int nb)\n"
                    "{\n", q->batch, p, p);
    for (int i = 0; i < q->nsteps; i++) {
        step_call(out, &q->steps[i], p, i, i == 0 ? -1 : from,
                  i + 1 < q->nsteps && q->steps[i + 1].kind == QS_SOFTMAX);
        from = i == 0 ? 0 : 1 - from;
    }
    buf_puts(out, "}\n");
}

void emit_quant_source(Buf *out, const Compiled *c, const QModel *q, const char *p)
{
    char P[128];
    snprintf(P, sizeof P, "%s", emit_upper(p));
    buf_printf(out, "\n/* ======== model '%s', int8 (--quantize=int8) ======== */\n\n",
               c->g.name);
    buf_printf(out, "struct %s_ctx {\n    int8_t *buf[2];\n    float *logits;\n    void *owned;\n};\n",
               p);
    for (int i = 0; i < q->nsteps; i++)
        if (q->steps[i].kind == QS_GEMM)
            layer_data(out, &q->steps[i], p, i);
    predict_rows(out, q, p);
    buf_printf(out, "\n%s_ctx *%s_init(void *mem, size_t bytes, uint64_t seed)\n{\n"
                    "    uintptr_t a;\n    %s_ctx *ctx;\n    (void)seed;\n", p, p, p);
    buf_printf(out, "    if (!mem || bytes < %s_MEM_BYTES)\n        return NULL;\n", P);
    buf_puts(out, "    a = ((uintptr_t)mem + 63) & ~(uintptr_t)63;\n");
    buf_printf(out, "    ctx = (%s_ctx *)a;\n", p);
    buf_printf(out, "    ctx->buf[0] = (int8_t *)(a + %d);\n", QCTX_BYTES);
    buf_printf(out, "    ctx->buf[1] = ctx->buf[0] + %zu;\n", q->buf_stride);
    if (q->logits_bytes)
        buf_printf(out, "    ctx->logits = (float *)(void *)(ctx->buf[1] + %zu);\n", q->buf_stride);
    else
        buf_puts(out, "    ctx->logits = NULL;\n");
    buf_puts(out, "    ctx->owned = NULL;\n    return ctx;\n}\n");
    emit_create_predict(out, p);
    emit_accuracy(out, c, p);
}
