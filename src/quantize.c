/*
 * quantize.c - a trained model's predict program as int8 steps
 * (nnc --quantize=int8 --weights-from=CKPT --calibrate=DATA).
 *
 * The model is lowered again (no passes: the plain layer ops), and its
 * predict program, the nodes the output depends on, must be a chain:
 *
 *   input -> [im2col] matmul(x, W^T) [+ bias] [relu] -> [maxpool] [reshape]
 *         -> ... -> the last matmul [+ bias] [relu] = the output
 *
 * which is what dense, conv2d (valid or same padding, any stride),
 * maxpool2d and flatten lower to (dropout is the identity in predict; a
 * softmax may follow the last layer). Each matmul group becomes one int8 GEMM
 * with its bias, ReLU and requantization fused (runtime/qgemm.c); im2col
 * and max pooling run on int8; reshapes are free. Anything else (other
 * activations, normalization, attention, a branch) is refused with the
 * node's location: those do not quantize in this scheme.
 *
 * Scales. Weights: per output channel (row j of W), sw = max |W[j]| / 127
 * (symmetric, round to nearest). Activations: per tensor, s = max |x| /
 * 127 over the calibration rows (max-abs calibration: nothing clips on
 * data like the calibration set), from running the float model in double
 * (eval.c, the reference interpreter) with the checkpoint's weights. The
 * input and every GEMM's output get a scale; im2col, pooling and reshape
 * keep their input's. What stays float: the last layer's output (the
 * logits: the last GEMM dequantizes instead of requantizing) and a
 * softmax on them (runtime nnc_softmax); a loss's own softmax is not
 * part of predict.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantize.h"
#include "../runtime/nncrt.h"

typedef struct Walk {
    const Graph *g;
    bool *live;             /* by node: in the predict program */
    int *uses;              /* by node: consumers in it */
    double *maxabs;         /* by node: over the calibration rows */
    double *scale;          /* by node: its int8 scale (0: none) */
    bool *nonneg, *done;
    int *crop_h, *crop_w;   /* by node: image rows, columns computed (0: all) */
    const Compiled *c;
    const Weights *w;
    QModel *q;
    NodeId implicit;        /* an im2col the next GEMM reads in place ... */
    int implicit_geo[11];   /* ... with this geometry */
} Walk;

static void mark_live(Walk *k)
{
    const Graph *g = k->g;
    k->live[g->output] = true;
    for (int id = g->output; id > 0; id--) {
        if (!k->live[id])
            continue;
        for (int i = 0; i < NODE(g, id)->nin; i++) {
            k->live[NODE(g, id)->in[i]] = true;
            k->uses[NODE(g, id)->in[i]]++;
        }
    }
}

/* The checkpoint's values of the parameter named as node id. */
static const float *param_data(const Walk *k, NodeId id)
{
    const Graph *cg = &k->c->g;
    const Node *n = NODE(k->g, id);
    for (int i = 0; i < cg->nparams; i++) {
        const Node *p = NODE(cg, cg->params[i]);
        if (!strcmp(p->name, n->name) && shape_numel(&p->shape) == shape_numel(&n->shape))
            return k->w->data[i];
    }
    return NULL;
}

/* The one consumer of id in the predict program (uses[id] == 1). */
static NodeId consumer(const Walk *k, NodeId id)
{
    for (int u = (int)id + 1; u < k->g->nnodes; u++)
        for (int i = 0; k->live[u] && i < NODE(k->g, u)->nin; i++)
            if (NODE(k->g, u)->in[i] == id)
                return (NodeId)u;
    return 0;
}

/* One batch of calibration rows (of the first `rows`) through the float
 * model in double. */
static void calibrate_batch(Walk *k, double **src, const nnc_data *d, size_t rows,
                            size_t first, double scale)
{
    const Graph *g = k->g;
    size_t in = d->cols;
    for (int r = 0; r < g->batch; r++) {
        size_t row = (first + (size_t)r) % rows;   /* repeats change no max */
        for (size_t i = 0; i < in; i++)
            src[g->input][(size_t)r * in + i] = (double)d->data[row * in + i] * scale;
    }
    double **v = eval_graph(g, src);
    for (int id = 1; id < g->nnodes; id++)
        for (size_t i = 0; k->live[id] && i < shape_numel(&NODE(g, id)->shape); i++)
            k->maxabs[id] = fmax(k->maxabs[id], fabs(v[id][i]));
    eval_free(g, v);
}

static bool calibrate(Walk *k, const char *path, double scale, int max_rows)
{
    const Graph *g = k->g;
    char err[512];
    nnc_data d;
    size_t in = shape_numel(&NODE(g, g->input)->shape) / (size_t)g->batch;
    if (nnc_data_load(path, &d, err, sizeof err) < 0) {
        fprintf(stderr, "nnc: error: --calibrate: %s\n", err);
        return false;
    }
    if (d.cols != in || d.rows == 0) {
        fprintf(stderr, "nnc: error: --calibrate: %s has %zu rows of %zu values; model '%s' "
                "takes %zu values per sample\n", path, d.rows, d.cols, g->name, in);
        nnc_data_free(&d);
        return false;
    }
    double **src = xcalloc((size_t)g->nnodes, sizeof *src);
    NNC_ASSERT(src);
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = NODE(g, id);
        const float *p = n->role == R_PARAM ? param_data(k, (NodeId)id) : NULL;
        if (id == (int)g->input || p) {
            src[id] = xcalloc(shape_numel(&n->shape), sizeof(double));
            NNC_ASSERT(src[id]);
        }
        for (size_t i = 0; p && i < shape_numel(&n->shape); i++)
            src[id][i] = p[i];
    }
    size_t rows = d.rows < (size_t)max_rows ? d.rows : (size_t)max_rows;
    for (size_t first = 0; first < rows; first += (size_t)g->batch)
        calibrate_batch(k, src, &d, rows, first, scale);
    k->q->calib_rows = (int)rows;
    for (int id = 0; id < g->nnodes; id++)
        free(src[id]);
    free(src);
    nnc_data_free(&d);
    return true;
}

static QStep *add_step(QModel *q, QStepKind kind, const Node *n, size_t out_bytes)
{
    q->steps = xrealloc(q->steps, (size_t)(q->nsteps + 1) * sizeof *q->steps);
    NNC_ASSERT(q->steps);
    QStep *s = &q->steps[q->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->loc = n->loc;
    snprintf(s->layer, sizeof s->layer, "%s", n->what ? n->what : op_name(n->op));
    s->out_bytes = out_bytes;
    if (kind != QS_GEMM && out_bytes > q->buf_bytes)
        q->buf_bytes = out_bytes;
    return s;
}

static double scale_of(double maxabs)
{
    return maxabs > 0 ? maxabs / 127.0 : 1.0;
}

/* Same padding as ops/conv.c's geometry: the excess split, top-left
 * getting the smaller half. */
static int pad_before(int in, int out, int k, int s)
{
    int p = (out - 1) * s + k - in;
    return p > 0 ? p / 2 : 0;
}

/* An im2col or a max pooling. An im2col without padding gets no step:
 * its GEMM reads the windows in the image (nnc_qconv). */
static void window_step(Walk *k, NodeId id)
{
    const Node *n = NODE(k->g, id), *x = NODE(k->g, n->in[0]);
    const int *a = n->iattr;
    int h = x->shape.dim[1], w = x->shape.dim[2], oh = n->shape.dim[1], ow = n->shape.dim[2];
    if (k->crop_h[n->in[0]])    /* pooling a cropped convolution */
        h = k->crop_h[n->in[0]], w = k->crop_w[n->in[0]];
    if (k->crop_h[id])          /* im2col of a convolution whose pooling reads less */
        oh = k->crop_h[id], ow = k->crop_w[id];
    int pt = n->op == OP_IM2COL && a[4] ? pad_before(h, oh, a[0], a[2]) : 0;
    int pl = n->op == OP_IM2COL && a[4] ? pad_before(w, ow, a[1], a[3]) : 0;
    int geo[11] = {h, w, x->shape.dim[3], a[0], a[1], a[2], a[3], pt, pl, oh, ow};
    k->scale[id] = k->scale[n->in[0]];
    k->nonneg[id] = k->nonneg[n->in[0]];
    if (n->op == OP_IM2COL && pt == 0 && pl == 0 && (oh - 1) * a[2] + a[0] <= h &&
        (ow - 1) * a[3] + a[1] <= w) {
        k->implicit = id;
        memcpy(k->implicit_geo, geo, sizeof geo);
        return;
    }
    QStep *s = add_step(k->q, n->op == OP_IM2COL ? QS_IM2COL : QS_MAXPOOL, n,
                        shape_numel(&n->shape) / (size_t)k->g->batch);
    memcpy(s->geo, geo, sizeof geo);
    s->ldcol = n->shape.dim[3];
    s->out_bytes = n->op == OP_IM2COL ? (size_t)oh * (size_t)ow * (size_t)s->ldcol
                                      : s->out_bytes;
}

/* W (n x k) per row: sw[j] = max |W[j]| / 127, q = round(W / sw). */
static int8_t *quantize_weights(const float *W, int n, int kk, double *sw, double *max_err)
{
    int8_t *qw = xmalloc((size_t)n * (size_t)kk);
    NNC_ASSERT(qw);
    for (int j = 0; j < n; j++) {
        double m = 0;
        for (int i = 0; i < kk; i++)
            m = fmax(m, fabs(W[(size_t)j * (size_t)kk + (size_t)i]));
        sw[j] = scale_of(m);
        for (int i = 0; i < kk; i++) {
            double v = W[(size_t)j * (size_t)kk + (size_t)i] / sw[j];
            long r = lrint(v < -127 ? -127 : v > 127 ? 127 : v);
            qw[(size_t)j * (size_t)kk + (size_t)i] = (int8_t)r;
            *max_err = fmax(*max_err, fabs(W[(size_t)j * (size_t)kk + (size_t)i] -
                                           (double)r * sw[j]));
        }
    }
    return qw;
}

/* A GEMM on im2col's patches takes k rounded up to 4 (no short last
 * group in the kernels): the patches' rows get zero padding (ldcol), the
 * weights zero columns. Returns the padded weights (qw freed). */
static int8_t *pad_im2col(QModel *q, QStep *s, int8_t *qw)
{
    QStep *im = s - 1;      /* the patches are the step before */
    int k4 = (s->k + 3) / 4 * 4;
    int8_t *p = xcalloc((size_t)s->n * (size_t)k4, 1);
    NNC_ASSERT(p && im->kind == QS_IM2COL);
    for (int j = 0; j < s->n; j++)
        memcpy(p + (size_t)j * (size_t)k4, qw + (size_t)j * (size_t)s->k, (size_t)s->k);
    im->ldcol = k4;
    im->out_bytes = (size_t)s->rows * (size_t)k4;
    q->buf_bytes = im->out_bytes > q->buf_bytes ? im->out_bytes : q->buf_bytes;
    s->k = k4;
    free(qw);
    return p;
}

/* nnc_qconv reads a window row (kw * c bytes) as groups of 4: each row's
 * weights get zero columns up to a multiple of 4. Returns them (qw
 * freed). */
static int8_t *pad_window_rows(QStep *s, int8_t *qw)
{
    int kh = s->geo[3], row = s->geo[4] * s->geo[2], seg = (row + 3) / 4 * 4;
    int8_t *p = xcalloc((size_t)s->n * (size_t)(kh * seg), 1);
    NNC_ASSERT(p);
    for (int j = 0; j < s->n; j++)
        for (int ky = 0; ky < kh; ky++)
            memcpy(p + (size_t)j * (size_t)(kh * seg) + (size_t)(ky * seg),
                   qw + (size_t)j * (size_t)s->k + (size_t)(ky * row), (size_t)row);
    s->k = kh * seg;
    free(qw);
    return p;
}

/* The group matmul [+ bias] [relu] at mm: returns its last node. */
static NodeId group_end(Walk *k, NodeId mm, NodeId *bias, bool *relu)
{
    NodeId end = mm, u;
    *bias = 0;
    *relu = false;
    u = k->uses[end] == 1 ? consumer(k, end) : 0;
    if (u && NODE(k->g, u)->op == OP_ADD) {
        const Node *a = NODE(k->g, u);
        NodeId b = a->in[0] == end ? a->in[1] : a->in[0];
        if (NODE(k->g, b)->role == R_PARAM && NODE(k->g, b)->shape.rank == 1) {
            *bias = b;
            end = u;
        }
    }
    u = k->uses[end] == 1 ? consumer(k, end) : 0;
    if (u && NODE(k->g, u)->op == OP_RELU) {
        *relu = true;
        end = u;
    }
    return end;
}

/* Pass crop's idea (ops/conv.c): a convolution whose only reader is a
 * max pooling computes just the rows and columns the windows read
 * (11 x 11 -> 10 x 10 under a 2 x 2 pooling): marked on the nodes from
 * im2col to the pooling's input. */
static void plan_crop(Walk *k, NodeId im)
{
    NodeId mm = k->uses[im] == 1 ? consumer(k, im) : 0, bias, end, pool;
    bool relu;
    if (!mm || NODE(k->g, mm)->op != OP_MATMUL)
        return;
    end = group_end(k, mm, &bias, &relu);
    pool = k->uses[end] == 1 ? consumer(k, end) : 0;
    if (!pool || NODE(k->g, pool)->op != OP_MAXPOOL)
        return;
    const Node *p = NODE(k->g, pool), *i = NODE(k->g, im);
    int h = (p->shape.dim[1] - 1) * p->iattr[2] + p->iattr[0];
    int w = (p->shape.dim[2] - 1) * p->iattr[3] + p->iattr[1];
    if (h >= i->shape.dim[1] && w >= i->shape.dim[2])
        return;
    for (NodeId id = im; id <= end; id++)
        if (k->live[id] && NODE(k->g, id)->role != R_PARAM)
            k->crop_h[id] = h, k->crop_w[id] = w;
}

static bool gemm_step(Walk *k, NodeId mm)
{
    const Graph *g = k->g;
    const Node *n = NODE(g, mm), *x = NODE(g, n->in[0]), *W = NODE(g, n->in[1]);
    NodeId bias, end;
    bool relu;
    if (W->role != R_PARAM || W->shape.rank != 2 || n->iattr[0] || !n->iattr[1] ||
        !k->scale[n->in[0]]) {
        diag_error(n->loc, "--quantize=int8: this product has no int8 kernel (int8 takes "
                   "dense and conv2d layers on int8 values)");
        return false;
    }
    end = group_end(k, mm, &bias, &relu);
    for (NodeId i = mm; i <= end; i++)
        k->done[i] = true;
    QStep *s = add_step(k->q, QS_GEMM, n, shape_numel(&NODE(g, end)->shape) / (size_t)g->batch);
    snprintf(s->layer, sizeof s->layer, "%.*s", (int)strcspn(W->name, "."), W->name);
    s->n = W->shape.dim[0];
    s->k = W->shape.dim[1];
    s->rows = (int)(shape_numel(&x->shape) / (size_t)g->batch / (size_t)s->k);
    if (k->crop_h[mm]) {
        s->rows = k->crop_h[mm] * k->crop_w[mm];
        s->out_bytes = (size_t)s->rows * (size_t)s->n;
    }
    s->relu = relu;
    s->nonneg_in = k->nonneg[n->in[0]];
    NodeId u = k->uses[end] == 1 ? consumer(k, end) : 0;
    s->float_out = end == g->output ||
                   (u == g->output && NODE(g, u)->op == OP_SOFTMAX);
    if (n->in[0] == k->implicit) {
        s->conv = true;
        memcpy(s->geo, k->implicit_geo, sizeof s->geo);
    }
    s->in_scale = k->scale[n->in[0]];
    s->scale = s->float_out ? 1.0 : scale_of(k->maxabs[end]);
    k->scale[end] = s->float_out ? 0 : s->scale;
    k->nonneg[end] = relu;
    if (!s->float_out && s->out_bytes > k->q->buf_bytes)
        k->q->buf_bytes = s->out_bytes;

    const float *wd = param_data(k, n->in[1]), *bd = bias ? param_data(k, bias) : NULL;
    NNC_ASSERT(wd && (!bias || bd));
    int n16 = (s->n + 15) / 16 * 16;
    double *sw = xcalloc((size_t)s->n, sizeof *sw);
    NNC_ASSERT(sw);
    int8_t *qw = quantize_weights(wd, s->n, s->k, sw, &s->max_err);
    if (x->op == OP_IM2COL && !s->conv && s->k % 4)
        qw = pad_im2col(k->q, s, qw);
    if (s->conv && s->geo[3] > 1 && s->geo[4] * s->geo[2] % 4)
        qw = pad_window_rows(s, qw);
    s->packed_bytes = nnc_qpack_bytes(s->n, s->k);
    s->packed = xmalloc(s->packed_bytes);
    s->wsum = xcalloc((size_t)n16, sizeof(int32_t));
    s->mult = xcalloc((size_t)n16, sizeof(float));
    s->bias = xcalloc((size_t)n16, sizeof(float));
    NNC_ASSERT(s->packed && s->wsum && s->mult && s->bias);
    nnc_qpack(s->n, s->k, qw, s->packed, s->wsum);
    for (int j = 0; j < s->n; j++) {
        s->mult[j] = (float)(s->in_scale * sw[j] / s->scale);
        s->bias[j] = bd ? (float)(bd[j] / s->scale) : 0.0f;
    }
    k->q->float_weight_bytes += shape_numel(&W->shape) * 4 + (bias ? (size_t)s->n * 4 : 0);
    k->q->int8_weight_bytes += s->packed_bytes + (size_t)n16 * 12;
    free(qw);
    free(sw);
    return true;
}

/* One node of the predict program, in order. */
static bool walk_node(Walk *k, NodeId id)
{
    const Graph *g = k->g;
    const Node *n = NODE(g, id);
    if (!k->live[id] || k->done[id] || n->role == R_PARAM || n->role == R_CONST)
        return true;
    if (k->uses[id] > 1) {
        diag_error(n->loc, "--quantize=int8: this value feeds %d layers; int8 models are "
                   "chains of layers", k->uses[id]);
        return false;
    }
    if (id == g->input) {
        QStep *s = add_step(k->q, QS_QUANTIZE, n, shape_numel(&n->shape) / (size_t)g->batch);
        s->count = (int)s->out_bytes;
        s->scale = k->scale[id] = scale_of(k->maxabs[id]);
        snprintf(s->layer, sizeof s->layer, "input");
        return true;
    }
    if ((n->op == OP_IM2COL || n->op == OP_MAXPOOL) && k->scale[n->in[0]]) {
        if (n->op == OP_IM2COL)
            plan_crop(k, id);
        window_step(k, id);
        return true;
    }
    if (n->op == OP_SOFTMAX && id == g->output && k->q->nsteps > 0 &&
        k->q->steps[k->q->nsteps - 1].float_out) {
        int rows = k->q->steps[k->q->nsteps - 1].rows, cols = k->q->steps[k->q->nsteps - 1].n;
        QStep *s = add_step(k->q, QS_SOFTMAX, n, 0);   /* (may move the steps) */
        snprintf(s->layer, sizeof s->layer, "softmax");
        s->rows = rows;
        s->n = cols;
        k->q->logits_bytes = (size_t)s->rows * (size_t)s->n * sizeof(float);
        return true;
    }
    if ((n->op == OP_RESHAPE || n->op == OP_DROPOUT) && k->scale[n->in[0]]) {
        k->scale[id] = k->scale[n->in[0]];
        k->nonneg[id] = k->nonneg[n->in[0]];
        return true;
    }
    if (n->op == OP_MATMUL)
        return gemm_step(k, id);
    diag_error(n->loc, "--quantize=int8: %s%s has no int8 kernel (int8 models take dense, "
               "conv2d, maxpool2d, flatten and relu, and end in a dense or conv2d layer)",
               op_name(n->op), k->done[n->in[0]] && id == g->output ? " after the last layer"
                                                                   : "");
    return false;
}

bool quant_build(const Model *m, const Compiled *c, const Weights *w, const char *calib,
                 double scale, int max_rows, QModel *q)
{
    Graph g;
    memset(q, 0, sizeof *q);
    if (!lower_model(m, &g)) {
        graph_free(&g);
        return false;
    }
    size_t nn = (size_t)g.nnodes;
    Walk k = {.g = &g, .live = xcalloc(nn, sizeof(bool)), .uses = xcalloc(nn, sizeof(int)),
              .maxabs = xcalloc(nn, sizeof(double)), .scale = xcalloc(nn, sizeof(double)),
              .nonneg = xcalloc(nn, sizeof(bool)), .done = xcalloc(nn, sizeof(bool)),
              .crop_h = xcalloc(nn, sizeof(int)), .crop_w = xcalloc(nn, sizeof(int)),
              .c = c, .w = w, .q = q};
    NNC_ASSERT(k.live && k.uses && k.maxabs && k.scale && k.nonneg && k.done && k.crop_h &&
               k.crop_w);
    q->batch = g.batch;
    q->calib = calib;
    mark_live(&k);
    for (int id = 1; id < g.nnodes; id++)   /* predict's dropout: none */
        if (g.nodes[id].op == OP_DROPOUT)
            g.nodes[id].fattr[0] = 0;
    bool ok = calibrate(&k, calib, scale, max_rows);
    for (int id = 1; ok && id < g.nnodes; id++)
        ok = walk_node(&k, (NodeId)id);
    if (ok && (q->nsteps == 0 || (!q->steps[q->nsteps - 1].float_out &&
                                  q->steps[q->nsteps - 1].kind != QS_SOFTMAX))) {
        diag_error(NODE(&g, g.output)->loc, "--quantize=int8: the output must be a dense or "
                   "conv2d layer's");
        ok = false;
    }
    /* + 64: nnc_qconv reads up to 3 bytes past an image */
    q->buf_stride = ((size_t)q->batch * q->buf_bytes + 63) / 64 * 64 + 64;
    q->mem_bytes = 63 + 64 + 2 * q->buf_stride +
                   ((size_t)q->batch * q->logits_bytes + 63) / 64 * 64;
    free(k.live), free(k.uses), free(k.maxabs), free(k.scale), free(k.nonneg), free(k.done);
    free(k.crop_h), free(k.crop_w);
    graph_free(&g);
    if (!ok)
        quant_free(q);
    return ok;
}

void quant_free(QModel *q)
{
    for (int i = 0; i < q->nsteps; i++) {
        free(q->steps[i].packed);
        free(q->steps[i].wsum);
        free(q->steps[i].mult);
        free(q->steps[i].bias);
    }
    free(q->steps);
    memset(q, 0, sizeof *q);
}
