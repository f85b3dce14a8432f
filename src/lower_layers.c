/*
 * lower_layers.c - the layer table and the layer lowerers: each layer
 * call expands into primitive ops of the graph IR.
 *
 *   dense(x, units)      -> matmul(x, W^T) + b, then the activation
 *   relu(x), silu(x), .. -> the activation op; linear(x) -> x
 *   add(a, b, ...)       -> add ops; multiply(a, b, ...) -> mul ops
 *   conv2d(x, f, k)      -> im2col, matmul with W^T, + b, the activation
 *   layernorm(x)         -> layernorm_affine(x, gamma, beta): layernorm(x) *
 *                           gamma + beta (LAYER.weight/.bias)
 *   dropout(x, rate)     -> dropout op (train_step only; predict copies)
 *   matmul(a, b)         -> bmatmul over the leading axes; reshape(x, shape)
 *                           -> reshape; transpose(x, perm) -> transpose;
 *                           slice(x, axis, start, stop), split(x, n,
 *                           index) -> narrow
 *   position_embedding(x, max_len) -> x + narrow(NAME.weight, rows 0..T)
 *   rescaling(x, scale, offset) -> scale (+ a constant)
 *   causal_mask(x)       -> causal_mask (later positions' scores -1e30)
 *
 * The table at the end (layer_table) is the one place a layer or an
 * activation is registered: its arguments with types, defaults, Keras'
 * spellings and ranges, which sema.c checks before a lowerer runs (so a
 * lowerer reads them by name and only checks what depends on its input's
 * shape). Activation rows also serve `activation=NAME` and import-keras.
 * Parameters are named after the value they produce (`h.weight`) or, for
 * unnamed layers, `dense_0`, `dense_1`, ... in source order.
 */
#include <string.h>

#include "lower.h"

/* ---- activations ---------------------------------------------------------
 * An activation row's first number argument (leaky_relu's negative_slope,
 * elu's alpha) is its op's fattr[0]; named by `activation=` it keeps its
 * default. */

static const Param *attr_param(const LayerInfo *ly)
{
    for (int k = 0; k < MAX_PARAMS && ly->params[k].name; k++)
        if (ly->params[k].type == A_NUM)
            return &ly->params[k];
    return NULL;
}

static NodeId activate_with(Lower *L, Op op, double attr, NodeId x, Loc loc)
{
    if (op == OP_INPUT)     /* linear */
        return x;
    NodeId y = graph_add1(L->g, op, loc, x);
    if (y != NODE_NONE)
        NODE(L->g, y)->fattr[0] = attr;
    return y;
}

/* activation=NAME of dense and conv2d (the name was checked by sema) */
static NodeId activate(Lower *L, const char *name, NodeId x, Loc loc)
{
    const LayerInfo *act = activation_find(name, false);
    NNC_ASSERT(act);
    const Param *p = attr_param(act);
    return activate_with(L, act->op, p ? p->def : 0, x, loc);
}

/* ---- layers --------------------------------------------------------------- */

const char *layer_name(Lower *L, const Expr *call, const char *kind, int *counter)
{
    if (L->assign && L->assign_call == call)
        return L->assign;
    return arena_printf(L->arena, "%s_%d", kind, (*counter)++);
}

/* A parameter's layer: its name up to the first '.' ("dense_0.weight"). */
static size_t layer_len(const char *name)
{
    return strcspn(name, ".");
}

static size_t layer_hash(const char *name, size_t len)
{
    size_t h = 5381;
    for (size_t i = 0; i < len; i++)
        h = h * 33 + (unsigned char)name[i];
    return h;
}

/* The slot of layer name[0 .. len) in L's index: its entry or an empty one. */
static size_t layer_slot(const Lower *L, const char *name, size_t len)
{
    size_t i = layer_hash(name, len) & (L->layer_cap - 1);
    for (; L->layer_index[i]; i = (i + 1) & (L->layer_cap - 1)) {
        const char *p = NODE(L->g, L->g->params[L->layer_index[i] - 1])->name;
        if (layer_len(p) == len && !strncmp(p, name, len))
            break;
    }
    return i;
}

/* Adds the parameters made since the last call to the index (the first
 * parameter of each layer stays), growing it to twice the parameters. */
static void index_layers(Lower *L)
{
    const Graph *g = L->g;
    if ((size_t)g->nparams * 2 >= L->layer_cap) {
        size_t cap = 64;
        while (cap <= (size_t)g->nparams * 4)
            cap *= 2;
        L->layer_index = arena_alloc(L->arena, cap * sizeof *L->layer_index);
        L->layer_cap = cap;
        L->nindexed = 0;
    }
    for (; L->nindexed < g->nparams; L->nindexed++) {
        const char *p = NODE(g, g->params[L->nindexed])->name;
        size_t i = layer_slot(L, p, layer_len(p));
        if (!L->layer_index[i])
            L->layer_index[i] = L->nindexed + 1;
    }
}

bool check_param_name(Lower *L, const char *name, Loc loc)
{
    NNC_ASSERT(!strchr(name, '.'));   /* a name in the source, or kind_N */
    index_layers(L);
    int i = L->layer_index[layer_slot(L, name, strlen(name))];
    if (i) {
        const Node *p = NODE(L->g, L->g->params[i - 1]);
        diag_error(loc, "a layer named '%s' already exists", name);
        diag_note(p->loc, "'%s' defined here", name);
        return false;
    }
    return true;
}

/* If x is a flattened NHWC image, seen through per-element layers
 * (activations, dropout, batchnorm, ...), with more than one pixel and
 * channel, stores its (h, w, c) in hwc:
 * PyTorch flattens NCHW maps in (c, h, w) order, so the parameters along
 * this axis are permuted when converting checkpoints (runtime/ckpt_torch.c). */
static bool flat_image(const Graph *g, NodeId id, int hwc[3])
{
    for (;;) {
        const Node *n = NODE(g, id);
        if (n->nin < 1 || n->shape.rank != 2)
            return false;
        const Node *x = NODE(g, n->in[0]);
        if (n->op == OP_RESHAPE && n->what && !strcmp(n->what, "reshape"))
            return false;   /* reshape(x, shape=...): not a flattened image */
        if (n->op == OP_RESHAPE && x->shape.rank == 4 && x->bmask == 1) {
            const int *d = x->shape.dim;
            if (d[1] * d[2] == 1 || d[3] == 1)
                return false;   /* both orders agree (global pooling) */
            for (int k = 0; k < 3; k++)
                hwc[k] = d[k + 1];
            return true;
        }
        bool same = shape_eq(&x->shape, &n->shape);
        if (!same || !(optab[n->op].kind == K_EWISE || n->op == OP_DROPOUT ||
                       n->op == OP_BATCHNORM || n->op == OP_LAYERNORM ||
                       n->op == OP_LAYERNORM_AFFINE))
            return false;
        id = n->in[0];
    }
}

static void mark_flat_image(Graph *g, NodeId x, NodeId param)
{
    if (param != NODE_NONE)
        flat_image(g, x, NODE(g, param)->hwc);
}

/* The parameter NAME.SUFFIX of layer `ly` (NAME: this call's layer name),
 * as graph_param makes it, marked as the layer's. */
NodeId layer_param(Lower *L, const LayerInfo *ly, const Expr *call, const char *name,
                   const char *suffix, const Shape *s, Init init, int fan_in, int fan_out)
{
    NodeId p = graph_param(L->g, call->loc, arena_printf(L->arena, "%s.%s", name, suffix), s,
                           init, fan_in, fan_out);
    NODE(L->g, p)->what = ly->name;
    return p;
}

/* dense and conv2d after their product y: + NAME.bias (units zeros) if
 * use_bias, then activation= */
static NodeId bias_activation(Lower *L, const LayerInfo *ly, const Expr *call, const Args *a,
                              NodeId y, const char *name, int units)
{
    if (arg_bool(a, "use_bias")) {
        Shape bs = {1, {units}};
        NodeId b = layer_param(L, ly, call, name, "bias", &bs, INIT_ZERO, 0, 0);
        y = graph_add2(L->g, OP_ADD, call->loc, y, b);
    }
    return activate(L, arg_name(a, "activation"), y, arg_loc(a, "activation", call->loc));
}

/* The weight of the embedding layer NAME (tied=NAME of dense), or
 * NODE_NONE after a diagnostic at the argument. */
static NodeId tied_weight(Lower *L, const Args *a, Loc loc)
{
    const char *name = arg_name(a, "tied");
    Loc tloc = arg_loc(a, "tied", loc);
    const char *want = arena_printf(L->arena, "%s.weight", name);
    for (int i = 0; i < L->g->nparams; i++) {
        const Node *p = NODE(L->g, L->g->params[i]);
        if (strcmp(p->name, want))
            continue;
        if (p->what && !strcmp(p->what, "embedding"))
            return L->g->params[i];
        diag_error(tloc, "dense: tied=%s names a %s layer, not an embedding", name,
                   p->what ? p->what : "");
        diag_note(p->loc, "'%s' defined here", name);
        return NODE_NONE;
    }
    diag_error(tloc, "dense: tied=%s: no embedding layer named '%s' (tie the head to an "
               "embedding defined before it)", name, name);
    return NODE_NONE;
}

/* dense(x, units, activation=linear, use_bias=true, tied=NAME):
 *   y = act(x W^T + b), W: (units, in) Glorot uniform, b: (units) zeros,
 *   over the last axis as Keras' Dense and torch's Linear: (batch, T, C)
 *   gives (batch, T, units), one GEMM over the batch x T rows.
 *   tied=NAME: W is the embedding NAME's weight [vocab, dim] (GPT-2's and
 *   nanoGPT's tied LM head): no weight of its own, units must be vocab and
 *   the input's last axis dim; autodiff sums the gradients of both uses */
static NodeId lower_dense(Lower *L, const LayerInfo *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    int units = (int)arg_num(a, "units");   /* in range: sema */
    if (x->shape.rank < 2 || !(x->bmask & 1) || (x->bmask >> (x->shape.rank - 1)) & 1) {
        diag_error(call->loc, "dense expects a (batch, ..., features) input, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "dense", &L->ndense);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    int fan_in = x->shape.dim[x->shape.rank - 1];
    NodeId w;
    if (arg_given(a, "tied")) {
        if ((w = tied_weight(L, a, call->loc)) == NODE_NONE)
            return NODE_NONE;
        const Shape *ws = &NODE(g, w)->shape;
        if (ws->dim[0] != units || ws->dim[1] != fan_in) {
            diag_error(call->loc, "dense: tied=%s uses a [%d, %d] weight: units must be %d "
                       "and the input's last axis %d, got units %d and an input of shape %s",
                       arg_name(a, "tied"), ws->dim[0], ws->dim[1], ws->dim[0], ws->dim[1],
                       units, shape_str(&x->shape));
            note_shape(L, in[0]);
            return NODE_NONE;
        }
    } else {
        Shape ws = {2, {units, fan_in}};
        w = layer_param(L, ly, call, name, "weight", &ws, INIT_GLOROT, fan_in, units);
        mark_flat_image(g, in[0], w);
    }
    NodeId y = graph_matmul(g, call->loc, in[0], w, 0, 1);
    NODE(g, y)->what = "dense";
    return bias_activation(L, ly, call, a, y, name, units);
}

/* relu(x), sigmoid(x), ..., linear(x): the activation's op (none for
 * linear); leaky_relu(x, negative_slope=0.3), elu(x, alpha=1.0): their
 * first number argument is the op's fattr[0]; gelu(x, approximate=true):
 * the approximate form's op */
static NodeId lower_activation(Lower *L, const LayerInfo *ly, const Expr *call,
                               NodeId *in, int nin, const Args *a)
{
    (void)nin;
    const Param *p = attr_param(ly);
    Op op = ly->op;
    if (arg_exists(ly->params, "axis")) {   /* softmax: over the last axis */
        int r = NODE(L->g, in[0])->shape.rank, axis = (int)arg_num(a, "axis");
        if (axis != -1 && axis != r - 1) {
            diag_error(arg_loc(a, "axis", call->loc), "%s: only the last axis (axis=-1) is "
                       "supported, got axis=%d for a value of rank %d", ly->name, axis, r);
            note_shape(L, in[0]);
            return NODE_NONE;
        }
    }
    if (arg_exists(ly->params, "approximate") && arg_bool(a, "approximate"))
        op = ly->approx_op;
    return activate_with(L, op, p ? arg_num(a, p->name) : 0, in[0], call->loc);
}

/* add(a, b, ...), multiply(a, b, ...): elementwise sum or product of
 * values of one shape */
static NodeId lower_merge(Lower *L, const LayerInfo *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a)
{
    (void)a;
    Op op = !strcmp(ly->name, "multiply") ? OP_MUL : OP_ADD;
    NodeId y = in[0];
    for (int i = 1; i < nin; i++) {
        const Shape *s0 = &NODE(L->g, y)->shape, *s1 = &NODE(L->g, in[i])->shape;
        if (!shape_eq(s0, s1)) {
            diag_error(call->loc, "%s: shapes %s and %s differ", ly->name, shape_str(s0),
                       shape_str(s1));
            note_shape(L, in[0]);
            note_shape(L, in[i]);
            return NODE_NONE;
        }
        y = graph_add2(L->g, op, call->loc, y, in[i]);
    }
    return y;
}

/* ---- image layers (NHWC: batch, height, width, channels) ------------------ */

static bool image_input(Lower *L, NodeId id, const char *layer, Loc loc)
{
    const Node *x = NODE(L->g, id);
    if (x->shape.rank != 4 || !(x->bmask & 1)) {
        diag_error(loc, "%s expects a (batch, height, width, channels) input, got %s",
                   layer, shape_str(&x->shape));
        note_shape(L, id);
        return false;
    }
    return true;
}

/* padding=valid|same -> 0|1, or -1 after a diagnostic. */
static int padding_arg(const LayerInfo *ly, const Args *a, Loc loc, bool same_ok)
{
    const char *p = arg_name(a, "padding");
    if (!strcmp(p, "valid"))
        return 0;
    if (!strcmp(p, "same") && same_ok)
        return 1;
    diag_error(arg_loc(a, "padding", loc), "%s: padding must be %s, got '%s'", ly->name,
               same_ok ? "valid or same" : "valid", p);
    return -1;
}

/* A node op(x) to give attributes before graph_add_node. */
static Node unary_proto(Op op, NodeId x, Loc loc, const char *what)
{
    Node proto = {0};
    proto.op = op;
    proto.nin = 1;
    proto.in[0] = x;
    proto.loc = loc;
    proto.what = what;
    return proto;
}

/* A sliding-window op over x with square windows and strides. */
static NodeId window(Lower *L, Op op, Loc loc, NodeId x, int kh, int kw, int sh, int sw,
                     int same, const char *what)
{
    Node proto = unary_proto(op, x, loc, what);
    proto.iattr[0] = kh;
    proto.iattr[1] = kw;
    proto.iattr[2] = sh;
    proto.iattr[3] = sw;
    proto.iattr[4] = same;
    return graph_add_node(L->g, &proto);
}

/* conv2d(x, filters, kernel_size, strides=1, padding=valid,
 *        activation=linear, use_bias=true):
 *   y = act(im2col(x) W^T + b), W: (filters, kh*kw*cin), saved as
 *   (filters, kh, kw, cin); Glorot uniform with fan_in = kh*kw*cin and
 *   fan_out = kh*kw*filters (as Keras); b: (filters) zeros */
static NodeId lower_conv2d(Lower *L, const LayerInfo *ly, const Expr *call,
                           NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    int filters = (int)arg_num(a, "filters"), k = (int)arg_num(a, "kernel_size");
    int st = (int)arg_num(a, "strides"), same;
    if ((same = padding_arg(ly, a, call->loc, true)) < 0 ||
        !image_input(L, in[0], "conv2d", call->loc))
        return NODE_NONE;
    /* the kernel's columns (an int in the im2col shape) */
    uint64_t cols = mul_sat(mul_sat((uint64_t)k, (uint64_t)k), (uint64_t)x->shape.dim[3]);
    if (mul_sat(cols, (uint64_t)filters) > MAX_TENSOR_FLOATS) {
        diag_error(call->loc, "conv2d: a %dx%d kernel over %d channels with %d filters would "
                   "need %s; a tensor holds at most 2^30 floats (4294967296 bytes)", k, k,
                   x->shape.dim[3], filters, bytes_str(L, mul_sat(cols, (uint64_t)filters)));
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "conv2d", &L->nconv);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    NodeId col = window(L, OP_IM2COL, call->loc, in[0], k, k, st, st, same, "conv2d");
    if (col == NODE_NONE) {
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    int cin = x->shape.dim[3];
    Shape ws = {2, {filters, k * k * cin}};
    NodeId w = layer_param(L, ly, call, name, "weight", &ws, INIT_GLOROT, k * k * cin,
                           k * k * filters);
    NODE(g, w)->ckpt_shape = (Shape){4, {filters, k, k, cin}};
    NodeId y = graph_matmul(g, call->loc, col, w, 0, 1);
    return bias_activation(L, ly, call, a, y, name, filters);
}

/* maxpool2d(x, pool_size=2, strides=pool_size, padding=valid) and
 * avgpool2d(...): the max or mean of each window */
static NodeId lower_pool(Lower *L, const LayerInfo *ly, const Expr *call,
                         NodeId *in, int nin, const Args *a)
{
    (void)nin;
    int k = (int)arg_num(a, "pool_size");
    int st = arg_given(a, "strides") ? (int)arg_num(a, "strides") : k;
    if (padding_arg(ly, a, call->loc, false) < 0 ||
        !image_input(L, in[0], ly->name, call->loc))
        return NODE_NONE;
    Op op = !strcmp(ly->name, "maxpool2d") ? OP_MAXPOOL : OP_AVGPOOL;
    NodeId y = window(L, op, call->loc, in[0], k, k, st, st, 0, ly->name);
    if (y == NODE_NONE)
        note_shape(L, in[0]);
    return y;
}

/* global_avgpool2d(x): the mean over height and width -> (batch, channels) */
static NodeId lower_global_avgpool(Lower *L, const LayerInfo *ly, const Expr *call,
                                   NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    (void)a;
    const Node *x = NODE(L->g, in[0]);
    if (!image_input(L, in[0], "global_avgpool2d", call->loc))
        return NODE_NONE;
    int h = x->shape.dim[1], w = x->shape.dim[2];
    Shape s = {2, {x->shape.dim[0], x->shape.dim[3]}};
    NodeId p = window(L, OP_AVGPOOL, call->loc, in[0], h, w, h, w, 0, "global_avgpool2d");
    return graph_reshape(L->g, call->loc, p, &s, 1);
}

/* flatten(x): (batch, d1, d2, ...) -> (batch, d1*d2*...), row-major, so an
 * NHWC image flattens in (h, w, c) order */
static NodeId lower_flatten(Lower *L, const LayerInfo *ly, const Expr *call,
                            NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    (void)a;
    const Node *x = NODE(L->g, in[0]);
    if (x->shape.rank < 2 || x->bmask != 1) {
        diag_error(call->loc, "flatten expects a batched input, got %s", shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    if (x->shape.rank == 2)
        return in[0];
    Shape s = {2, {x->shape.dim[0], (int)(shape_numel(&x->shape) / (size_t)x->shape.dim[0])}};
    NodeId y = graph_reshape(L->g, call->loc, in[0], &s, 1);
    if (y)
        NODE(L->g, y)->what = "flatten";
    return y;
}

/* concat(a, b, ..., axis=-1): joins along the last axis (the only axis
 * supported), other axes equal. */
static NodeId lower_concat(Lower *L, const LayerInfo *ly, const Expr *call,
                           NodeId *in, int nin, const Args *a)
{
    (void)ly;
    double axis = arg_num(a, "axis");
    if (axis != -1) {
        diag_error(arg_loc(a, "axis", call->loc), "concat: only axis=-1 is supported, got %.0f",
                   axis);
        return NODE_NONE;
    }
    NodeId y = in[0];
    for (int i = 1; i < nin && y; i++) {
        y = graph_add2(L->g, OP_CONCAT, call->loc, y, in[i]);
        for (int j = 0; j <= i && y == NODE_NONE; j++)
            note_shape(L, in[j]);
    }
    return y;
}

/* embedding(vocab, dim) (Keras: input_dim, output_dim): token ids (batch, ...) as floats ->
 * (batch, ..., output_dim), rows of a [input_dim, output_dim] weight drawn
 * uniformly from (-0.05, 0.05) as Keras does. An id outside
 * [0, input_dim) gives a zero row and no gradient. */
static NodeId lower_embedding(Lower *L, const LayerInfo *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    int vocab = (int)arg_num(a, "vocab"), dim = (int)arg_num(a, "dim");
    const Node *x = NODE(g, in[0]);
    if (x->shape.rank < 1 || x->bmask != 1 || x->shape.rank >= NNC_MAX_DIMS) {
        diag_error(call->loc, "embedding expects a batched input of token ids, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "embedding", &L->nembed);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    Shape ws = {2, {vocab, dim}};
    NodeId w = layer_param(L, ly, call, name, "weight", &ws, INIT_UNIFORM, 0, 0);
    NodeId y = graph_add2(g, OP_EMBED, call->loc, w, in[0]);
    if (y)
        NODE(g, y)->what = "embedding";
    return y;
}

/* ---- sequences: positions and the functional form's primitives ----------
 * Axes are counted as torch and Keras count them, the batch axis being 0
 * (axis=-1 is the last); per-sample shapes and permutations (reshape's
 * shape, transpose's perm) leave the batch axis out, as `input` does. */

/* x[..., start:start+len, ...] along axis */
NodeId narrow(Lower *L, const char *what, Loc loc, NodeId x, int axis, int start, int len)
{
    Node proto = unary_proto(OP_NARROW, x, loc, what);
    proto.iattr[0] = axis;
    proto.iattr[1] = start;
    proto.iattr[2] = len;
    return graph_add_node(L->g, &proto);
}

/* position_embedding(x, max_len): x + W[0:T] for x (batch, T, C), W
 * (NAME.weight) a [max_len, C] table of learned positions (nanoGPT's wpe,
 * KerasHub's PositionEmbedding, whose glorot_uniform initialization it
 * takes: fan_in max_len, fan_out C); a shorter sequence uses the first T
 * rows. */
static NodeId lower_position_embedding(Lower *L, const LayerInfo *ly, const Expr *call,
                                       NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    int max_len = (int)arg_num(a, "max_len");
    if (x->shape.rank != 3 || x->bmask != 1) {
        diag_error(call->loc, "position_embedding expects a (batch, T, features) input, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    int t = x->shape.dim[1], c = x->shape.dim[2];
    if (t > max_len) {
        diag_error(call->loc, "position_embedding: the sequence has %d positions, more than "
                   "max_len=%d", t, max_len);
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "position_embedding", &L->npos);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    Shape ws = {2, {max_len, c}};
    NodeId w = layer_param(L, ly, call, name, "weight", &ws, INIT_GLOROT, max_len, c);
    if (L->decode && L->decode_pos && t == 1) {
        /* one position: the table's row of the input's position */
        NodeId row = graph_add2(g, OP_EMBED, call->loc, w, L->decode_pos);
        return row ? graph_add2(g, OP_ADD, call->loc, in[0], row) : NODE_NONE;
    }
    if (L->decode)
        L->no_decode = true;
    if (t < max_len)
        w = narrow(L, "position_embedding", call->loc, w, 0, 0, t);
    NodeId y = graph_add2(g, OP_ADD, call->loc, in[0], w);
    if (y)
        NODE(g, y)->what = "position_embedding";
    return y;
}

/* The axis argument `name` of x as an index into x's shape (negative:
 * from the end); -1 after a diagnostic (out of range, or the batch). */
static int axis_arg(Lower *L, const LayerInfo *ly, const Args *a, const char *name,
                    NodeId xid, Loc loc)
{
    const Node *x = NODE(L->g, xid);
    int r = x->shape.rank, axis = (int)arg_num(a, name);
    int d = axis < 0 ? axis + r : axis;
    if (d < 0 || d >= r) {
        diag_error(arg_loc(a, name, loc), "%s: %s=%d is out of range for a value of shape %s "
                   "(axes -%d to %d, the batch being 0)", ly->name, name, axis,
                   shape_str(&x->shape), r, r - 1);
        note_shape(L, xid);
        return -1;
    }
    if ((x->bmask >> d) & 1u) {
        diag_error(arg_loc(a, name, loc), "%s: %s=%d is the batch axis", ly->name, name, axis);
        return -1;
    }
    return d;
}

/* slice(x, axis=-1, start=0, stop=end): x[..., start:stop, ...] along
 * axis, Python's negative indices counting from the end (x[:, :, 0:128]
 * is slice(x, axis=2, start=0, stop=128)); the slice must not be empty
 * nor reach outside the axis */
static NodeId lower_slice(Lower *L, const LayerInfo *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a)
{
    (void)nin;
    int d = axis_arg(L, ly, a, "axis", in[0], call->loc);
    if (d < 0)
        return NODE_NONE;
    int size = NODE(L->g, in[0])->shape.dim[d];
    long start = (long)arg_num(a, "start");
    long stop = arg_given(a, "stop") ? (long)arg_num(a, "stop") : size;
    long s0 = start < 0 ? start + size : start, s1 = stop < 0 ? stop + size : stop;
    if (s0 < 0 || s1 > size || s0 >= s1) {
        diag_error(call->loc, "slice: [%ld:%ld] is %s axis %d of size %d", start, stop,
                   s0 >= 0 && s1 <= size ? "empty along" : "outside", d, size);
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    return narrow(L, "slice", call->loc, in[0], d, (int)s0, (int)(s1 - s0));
}

/* split(x, n, index, axis=-1): part `index` (from 0) of x cut into n equal
 * parts along axis, as torch.chunk(x, n, axis)[index] when n divides the
 * axis (qkv = dense(x, 3C); q = split(qkv, 3, index=0)) */
static NodeId lower_split(Lower *L, const LayerInfo *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a)
{
    (void)nin;
    int d = axis_arg(L, ly, a, "axis", in[0], call->loc);
    if (d < 0)
        return NODE_NONE;
    int size = NODE(L->g, in[0])->shape.dim[d], n = (int)arg_num(a, "n");
    int index = (int)arg_num(a, "index");
    if (size % n) {
        diag_error(arg_loc(a, "n", call->loc), "split: %d parts do not divide axis %d of size "
                   "%d", n, d, size);
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    if (index >= n) {
        diag_error(arg_loc(a, "index", call->loc), "split: index must be below n=%d, got %d",
                   n, index);
        return NODE_NONE;
    }
    return narrow(L, "split", call->loc, in[0], d, index * (size / n), size / n);
}

/* reshape(x, shape=[...]): the same floats under another per-sample shape
 * (the batch axis stays first and is not listed), one entry of which may
 * be -1: whatever makes the count match (torch's view, Keras' Reshape) */
static NodeId lower_reshape(Lower *L, const LayerInfo *ly, const Expr *call,
                            NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    const Node *x = NODE(L->g, in[0]);
    int want[NNC_MAX_DIMS], n = arg_ints(a, "shape", want, NNC_MAX_DIMS), infer = -1;
    Loc sloc = arg_loc(a, "shape", call->loc);
    if (x->bmask != 1) {
        diag_error(call->loc, "reshape expects a batched value, got %s", shape_str(&x->shape));
        return NODE_NONE;
    }
    if (n < 1 || n > NNC_MAX_DIMS - 1) {
        diag_error(sloc, "reshape: shape needs 1 to %d dimensions (the batch is not listed), "
                   "got %d", NNC_MAX_DIMS - 1, n);
        return NODE_NONE;
    }
    size_t have = shape_numel(&x->shape) / (size_t)x->shape.dim[0], known = 1;
    for (int i = 0; i < n; i++) {
        if (want[i] == -1 && infer < 0) {
            infer = i;
        } else if (want[i] < 1) {
            diag_error(sloc, "reshape: dimensions must be positive, with at most one -1, "
                       "got %d", want[i]);
            return NODE_NONE;
        } else {
            known *= (size_t)want[i];
        }
    }
    if (infer >= 0 && known <= have && have % known == 0)
        want[infer] = (int)(have / known);
    Shape s = {n + 1, {x->shape.dim[0]}};
    memcpy(s.dim + 1, want, sizeof(int) * (size_t)n);
    if ((infer >= 0 && want[infer] == -1) || shape_numel(&s) != shape_numel(&x->shape)) {
        char b[96];
        size_t at = 0;
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(b + at, sizeof b - at, i ? ", %d" : "%d",
                                   infer == i ? -1 : want[i]);
        diag_error(sloc, "reshape: [%s] does not fit %zu floats per sample (shape %s)", b,
                   have, shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    NodeId y = graph_reshape(L->g, call->loc, in[0], &s, 1);
    if (y)
        NODE(L->g, y)->what = "reshape";
    return y;
}

/* transpose(x, perm=[...]): y's axis i is x's axis perm[i], as torch's
 * x.permute(perm); perm lists the per-sample axes ([1, 0, 2] turns (batch,
 * T, H, D) into (batch, H, T, D)) or, as torch writes it, every axis with
 * the batch first ([0, 2, 1, 3]) */
static NodeId lower_transpose(Lower *L, const LayerInfo *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    const Node *x = NODE(L->g, in[0]);
    int r = x->shape.rank, p[NNC_MAX_DIMS + 1];
    int n = arg_ints(a, "perm", p, NNC_MAX_DIMS + 1);
    Loc ploc = arg_loc(a, "perm", call->loc);
    Node proto = unary_proto(OP_TRANSPOSE, in[0], call->loc, "transpose");
    bool ok = x->bmask == 1 && (n == r - 1 || (n == r && p[0] == 0));
    unsigned seen = 0;
    for (int i = 0; ok && i < r - 1; i++) {
        int v = n == r ? p[i + 1] - 1 : p[i];   /* per-sample */
        ok = v >= 0 && v < r - 1 && !((seen >> v) & 1u);
        seen |= ok ? 1u << v : 0;
        proto.iattr[i + 1] = v + 1;
    }
    if (!ok) {
        diag_error(ploc, "transpose: perm must order the %d per-sample axes of %s (0 to %d), "
                   "or all %d axes with the batch (0) first", r - 1, shape_str(&x->shape),
                   r - 2, r);
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    return graph_add_node(L->g, &proto);
}

/* rescaling(x, scale, offset=0): x * scale + offset, Keras' Rescaling
 * (attention scores times 1/sqrt(head size) in the functional form) */
static NodeId lower_rescaling(Lower *L, const LayerInfo *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    NodeId y = graph_scale(L->g, call->loc, in[0], arg_num(a, "scale"));
    if (y && arg_num(a, "offset") != 0) {
        Shape s0 = {0, {0}};
        NodeId c = graph_const(L->g, call->loc, &s0, arg_num(a, "offset"));
        y = graph_add2(L->g, OP_ADD, call->loc, y, c);
    }
    if (y)
        NODE(L->g, y)->what = "rescaling";
    return y;
}

/* causal_mask(x): attention scores (batch, ..., T, T) with the scores of
 * later keys (column j > row i) replaced by -1e30, so that a softmax gives
 * them no weight (torch's masked_fill(mask, -inf) before F.softmax) */
static NodeId lower_causal_mask(Lower *L, const LayerInfo *ly, const Expr *call,
                                NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    (void)a;
    Node proto = unary_proto(OP_CAUSAL_MASK, in[0], call->loc, "causal_mask");
    proto.fattr[0] = -1e30;
    NodeId y = graph_add_node(L->g, &proto);
    if (y == NODE_NONE)
        note_shape(L, in[0]);
    return y;
}

/* matmul(a, b, transpose_b=false): a @ b (a @ b^T) over the last two
 * axes, for each index of the leading ones, which must be equal (torch's
 * matmul without broadcasting): (batch, H, T, D) @ (batch, H, D, T) ->
 * (batch, H, T, T); both operands are activations, and both get
 * gradients */
static NodeId lower_matmul(Lower *L, const LayerInfo *ly, const Expr *call,
                           NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    const Node *x = NODE(L->g, in[0]), *w = NODE(L->g, in[1]);
    if (x->shape.rank < 3 || w->shape.rank < 3 || x->bmask != 1 || w->bmask != 1) {
        diag_error(call->loc, "matmul expects two batched values of shape (batch, ..., rows, "
                   "cols), got %s and %s", shape_str(&x->shape), shape_str(&w->shape));
        note_shape(L, in[0]);
        note_shape(L, in[1]);
        return NODE_NONE;
    }
    Node proto = unary_proto(OP_BMATMUL, in[0], call->loc, "matmul");
    proto.nin = 2;
    proto.in[1] = in[1];
    proto.iattr[1] = arg_bool(a, "transpose_b");
    NodeId y = graph_add_node(L->g, &proto);
    if (y == NODE_NONE) {
        note_shape(L, in[0]);
        note_shape(L, in[1]);
    }
    return y;
}

/* layernorm(x, epsilon=1e-3): over the last axis, as Keras'
 * LayerNormalization(axis=-1):
 *   y = layernorm(x) * gamma + beta, gamma (LAYER.weight): ones,
 *   beta (LAYER.bias): zeros, both of the last axis' size (torch's names) */
static NodeId lower_layernorm(Lower *L, const LayerInfo *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    double eps = arg_num(a, "epsilon");
    if (x->shape.rank < 2 || !(x->bmask & 1) || (x->bmask >> (x->shape.rank - 1)) & 1) {
        diag_error(call->loc, "layernorm expects a batched input with features, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "layernorm", &L->nnorm);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    Shape ps = {1, {x->shape.dim[x->shape.rank - 1]}};
    NodeId w = layer_param(L, ly, call, name, "weight", &ps, INIT_ONE, 0, 0);
    NodeId b = layer_param(L, ly, call, name, "bias", &ps, INIT_ZERO, 0, 0);
    if (w == NODE_NONE || b == NODE_NONE)
        return NODE_NONE;
    mark_flat_image(g, in[0], w);
    mark_flat_image(g, in[0], b);
    /* one op: one pass over the rows forward, one backward (ops/nn.c) */
    NodeId y = graph_add3(g, OP_LAYERNORM_AFFINE, call->loc, in[0], w, b);
    if (y == NODE_NONE)
        return NODE_NONE;
    NODE(g, y)->fattr[0] = eps;
    NODE(g, y)->what = "layernorm";
    return y;
}

/* dropout(x, rate): Keras' inverted dropout, active in the training step
 * only (predict is the identity); each dropout op gets its own iattr[0]
 * so that CSE never merges two of them */
static NodeId lower_dropout(Lower *L, const LayerInfo *ly, const Expr *call,
                            NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    Node proto = unary_proto(OP_DROPOUT, in[0], call->loc, "dropout");
    proto.fattr[0] = arg_num(a, "rate");
    proto.iattr[0] = L->ndropout++;
    return graph_add_node(L->g, &proto);
}

/* batchnorm(x, momentum=0.99, epsilon=1e-3), Keras' defaults: normalizes
 * every channel (the last axis) over all other axes, then y = gamma xhat +
 * beta. Parameters as torch names them: LAYER.weight (gamma, ones),
 * LAYER.bias (beta, zeros) and the running statistics LAYER.running_mean
 * (zeros) and LAYER.running_var (ones), which have no gradient: the
 * training step updates them (ops/norm.c), predict normalizes with them. */
static NodeId lower_batchnorm(Lower *L, const LayerInfo *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    double momentum = arg_num(a, "momentum"), eps = arg_num(a, "epsilon");
    if (x->shape.rank < 2 || !(x->bmask & 1)) {
        diag_error(call->loc, "batchnorm expects a batch of features or images, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "batchnorm", &L->nbn);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    Shape cs = {1, {x->shape.dim[x->shape.rank - 1]}};
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    static const Init init[4] = {INIT_ONE, INIT_ZERO, INIT_ZERO, INIT_ONE};
    NodeId p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = layer_param(L, ly, call, name, suffix[i], &cs, init[i], 0, 0);
        mark_flat_image(g, in[0], p[i]);
    }
    NodeId y = graph_add3(g, OP_BATCHNORM, call->loc, in[0], p[2], p[3]);
    if (!y)
        return NODE_NONE;
    NODE(g, y)->fattr[0] = eps;
    NODE(g, y)->fattr[1] = momentum;
    NODE(g, y)->what = "batchnorm";
    y = graph_add2(g, OP_MUL, call->loc, y, p[0]);
    NODE(g, y)->what = "batchnorm";
    y = graph_add2(g, OP_ADD, call->loc, y, p[1]);
    NODE(g, y)->what = "batchnorm";
    return y;
}

/* ---- the layer table -------------------------------------------------------
 * One row per layer: name, tensor inputs (min, max), lowerer, arguments.
 * Activation rows (ACT) list their op; their order is the order of the
 * "expected ..." lists. Adding an activation: its ops.def rows and rules
 * (ops/ewise.c), and one ACT row here. */

#define ACT(o) .min_in = 1, .max_in = 1, .lower = lower_activation, .is_activation = true, \
               .op = (o)
#define MERGE .min_in = 2, .max_in = NNC_MAX_IN * 4
#define ONE .min_in = 1, .max_in = 1
#define ACTIVATION_ARG {.name = "activation", .type = A_ACT, .def_name = "linear"}
#define USE_BIAS_ARG {.name = "use_bias", .type = A_BOOL, .def = 1}
/* every layer with parameters: false freezes them (lower.c) */
#define TRAINABLE_ARG {.name = "trainable", .type = A_BOOL, .def = 1, .keyword_only = true}
#define PADDING_ARG {.name = "padding", .type = A_NAME, .def_name = "valid"}
#define POOL_ARGS                                                                        \
    {{.name = "pool_size", .type = A_INT, .def = 2, .range = R_BETWEEN(1, 1 << 10)},      \
     {.name = "strides", .type = A_INT, .def = -1 /* pool_size */,                        \
      .range = R_BETWEEN(1, 1 << 10)},                                                    \
     PADDING_ARG}

const LayerInfo layer_table[] = {
    {.name = "dense", ONE, .lower = lower_dense,
     .params = {{.name = "units", .type = A_INT, .required = true, .range = R_POSITIVE_GOT},
                ACTIVATION_ARG, USE_BIAS_ARG,
                {.name = "tied", .type = A_NAME, .keyword_only = true}, TRAINABLE_ARG}},
    {.name = "relu", ACT(OP_RELU)},
    {.name = "sigmoid", ACT(OP_SIGMOID)},
    {.name = "tanh", ACT(OP_TANH)},
    {.name = "softmax", ACT(OP_SOFTMAX),
     .params = {{.name = "axis", .type = A_INT, .def = -1}}},
    {.name = "leaky_relu", ACT(OP_LEAKY_RELU), .keras_args = "negative_slope=0.2",
     .params = {{.name = "negative_slope", .type = A_NUM, .def = 0.3, /* Keras 3's LeakyReLU */
                 .alias = "alpha", .range = R_NONNEG}}},
    {.name = "elu", ACT(OP_ELU),
     .params = {{.name = "alpha", .type = A_NUM, .def = 1.0, .range = R_POSITIVE}}},
    {.name = "gelu", ACT(OP_GELU), .approx_op = OP_GELU_TANH,   /* exact erf form */
     .params = {{.name = "approximate", .type = A_BOOL}}},
    {.name = "silu", ACT(OP_SILU), .keras = "swish"},
    {.name = "linear", ACT(OP_INPUT)},
    {.name = "add", MERGE, .lower = lower_merge},
    {.name = "multiply", MERGE, .lower = lower_merge},
    {.name = "conv2d", ONE, .lower = lower_conv2d,
     .params = {{.name = "filters", .type = A_INT, .required = true,
                 .range = R_BETWEEN(1, 1 << 16)},
                {.name = "kernel_size", .type = A_INT, .required = true,
                 .range = R_BETWEEN(1, 1 << 10)},
                {.name = "strides", .type = A_INT, .def = 1, .range = R_BETWEEN(1, 1 << 10)},
                PADDING_ARG, ACTIVATION_ARG, USE_BIAS_ARG, TRAINABLE_ARG}},
    {.name = "maxpool2d", ONE, .lower = lower_pool, .params = POOL_ARGS},
    {.name = "avgpool2d", ONE, .lower = lower_pool, .params = POOL_ARGS},
    {.name = "global_avgpool2d", ONE, .lower = lower_global_avgpool},
    {.name = "flatten", ONE, .lower = lower_flatten},
    {.name = "concat", MERGE, .lower = lower_concat,
     .params = {{.name = "axis", .type = A_INT, .def = -1}}},
    {.name = "embedding", ONE, .lower = lower_embedding,
     .params = {{.name = "vocab", .type = A_INT, .required = true, .alias = "input_dim",
                 .range = R_BETWEEN(1, 1 << 24)},
                {.name = "dim", .type = A_INT, .required = true, .alias = "output_dim",
                 .range = R_BETWEEN(1, 1 << 24)}, TRAINABLE_ARG}},
    {.name = "dropout", ONE, .lower = lower_dropout,
     .params = {{.name = "rate", .type = A_NUM, .required = true, .range = R_UNIT_GOT}}},
    {.name = "layernorm", ONE, .lower = lower_layernorm,
     .params = {{.name = "epsilon", .type = A_NUM, .def = 1e-3, .range = R_POSITIVE},
                TRAINABLE_ARG}},
    {.name = "position_embedding", ONE, .lower = lower_position_embedding,
     .params = {{.name = "max_len", .type = A_INT, .required = true,
                 .alias = "sequence_length", .range = R_BETWEEN(1, 1 << 24)},
                TRAINABLE_ARG}},
    {.name = "rescaling", ONE, .lower = lower_rescaling,
     .params = {{.name = "scale", .type = A_NUM, .required = true},
                {.name = "offset", .type = A_NUM}}},
    {.name = "causal_mask", ONE, .lower = lower_causal_mask},
    {.name = "matmul", .min_in = 2, .max_in = 2, .lower = lower_matmul,
     .params = {{.name = "transpose_b", .type = A_BOOL}}},
    {.name = "reshape", ONE, .lower = lower_reshape,
     .params = {{.name = "shape", .type = A_INTS, .required = true}}},
    {.name = "transpose", ONE, .lower = lower_transpose,
     .params = {{.name = "perm", .type = A_INTS, .required = true}}},
    {.name = "slice", ONE, .lower = lower_slice,
     .params = {{.name = "axis", .type = A_INT, .def = -1},
                {.name = "start", .type = A_INT},
                {.name = "stop", .type = A_INT}}},
    {.name = "split", ONE, .lower = lower_split,
     .params = {{.name = "n", .type = A_INT, .required = true, .range = R_BETWEEN(1, 1 << 24)},
                {.name = "index", .type = A_INT, .required = true,
                 .range = R_BETWEEN(0, 1 << 24)},
                {.name = "axis", .type = A_INT, .def = -1}}},
    {.name = "batchnorm", ONE, .lower = lower_batchnorm,
     .params = {{.name = "momentum", .type = A_NUM, .def = 0.99, .range = R_UNIT_GOT},
                {.name = "epsilon", .type = A_NUM, .def = 1e-3, .range = R_POSITIVE_GOT},
                TRAINABLE_ARG}},
    /* attention (lower_attention.c) */
    {.name = "multihead_attention", ONE, .lower = lower_multihead_attention,
     .params = {{.name = "heads", .type = A_INT, .required = true, .alias = "num_heads",
                 .range = R_BETWEEN(1, 1 << 16)},
                {.name = "causal", .type = A_BOOL},
                {.name = "dropout", .type = A_NUM, .range = R_UNIT_GOT},
                USE_BIAS_ARG, TRAINABLE_ARG}},
    {.name = "scaled_dot_product_attention", .min_in = 3, .max_in = 3,
     .lower = lower_scaled_dot_product_attention,
     .params = {{.name = "causal", .type = A_BOOL, .alias = "is_causal"},
                {.name = "dropout", .type = A_NUM, .alias = "dropout_p", .range = R_UNIT_GOT}}},
};
const int nlayer_table = (int)(sizeof layer_table / sizeof layer_table[0]);
