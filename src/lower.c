/*
 * lower.c - AST to graph IR: resolves names, checks arguments against the
 * layer, loss and optimizer tables, and expands layers into primitive ops.
 *
 *   dense(x, units)      -> matmul(x, W^T) + b, then the activation
 *   relu(x), sigmoid(x)  -> the activation op; linear(x) -> x
 *   add(a, b, ...)       -> add ops; multiply(a, b, ...) -> mul ops
 *   layernorm(x)         -> layernorm(x) * gamma + beta (LAYER.weight/.bias)
 *   dropout(x, rate)     -> dropout op (train_step only; predict copies)
 *   loss NAME(v, ...)    -> target node of v's shape, loss op (its one
 *                           numeric argument, e.g. huber's delta, in fattr)
 *
 * Calls take their tensor inputs from their leading positional arguments
 * when those name values (or are calls); otherwise, in the sequential
 * form, from the previous statement's value. Shapes are inferred as nodes
 * are built, so a shape error is reported at the call that caused it.
 * Parameters are named after the value they produce (`h.weight`) or, for
 * unnamed layers, `dense_0`, `dense_1`, ... in source order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

/* ---- argument specs ------------------------------------------------------ */

typedef enum { A_INT, A_NUM, A_NAME, A_BOOL } ArgType;

typedef struct Param {
    const char *name;
    ArgType type;
    bool required;
    double def;             /* A_INT, A_NUM, A_BOOL default */
    const char *def_name;   /* A_NAME default */
    const char *alias;      /* Keras' spelling, also accepted */
} Param;

#define MAX_PARAMS 16

typedef struct Args {
    const Expr *val[MAX_PARAMS];   /* NULL: not given */
    Loc loc[MAX_PARAMS];
} Args;

typedef struct Binding {
    const char *name;
    Loc loc;
    NodeId id;
} Binding;

/* Where a value came from, for the notes of shape errors. */
typedef struct Origin {
    Loc loc;                /* the call, or the input's name */
    const char *name;       /* the value's name, if it has one */
    const char *layer;      /* "input", or the layer that made it */
} Origin;

typedef struct Lower {
    Graph *g;
    const Model *model;
    Origin *origin;         /* by node id */
    int norigin;
    const Stmt *loss_stmt;  /* the first loss statement */
    const Stmt *batch_stmt; /* the first batch statement */
    Arena *arena;           /* lives as long as the graph (names) */
    Binding *env;
    int nenv, cap;
    NodeId prev;            /* the previous statement's value */
    bool prev_failed;       /* ... which had an error (already reported) */
    const char *assign;     /* name being assigned by the current statement */
    const Expr *assign_call;/* ... and the call that is its direct RHS */
    int ndense;             /* unnamed dense layers so far */
    int nconv;              /* unnamed conv2d layers so far */
    int nbn;                /* unnamed batchnorm layers so far */
    int nnorm;              /* unnamed layernorm layers so far */
    int ndropout;           /* dropout layers so far */
    int nembed;             /* unnamed embedding layers so far */
} Lower;

struct Layer;
typedef NodeId (*LowerFn)(Lower *L, const struct Layer *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a);

typedef struct Layer {
    const char *name;
    int min_in, max_in;     /* tensor inputs */
    Param params[MAX_PARAMS];
    LowerFn lower;
} Layer;

/* ---- activations ----------------------------------------------------------
 * Each name maps to one op (linear to none). `attr` is the op's fattr[0]
 * when the activation is named by `activation=`; as a layer it can be set
 * (leaky_relu(x, negative_slope=0.1), elu(x, alpha=0.5)). */

typedef struct Activation {
    const char *name;
    Op op;              /* OP_INPUT: none (linear) */
    double attr;        /* default fattr[0] */
    bool is_attr_positive; /* attr must be > 0 (else >= 0) */
    Op approx_op;       /* with approximate=true (OP_INPUT: no such form) */
} Activation;

static const Activation activations[] = {
    {"relu", OP_RELU, 0, false, OP_INPUT},
    {"sigmoid", OP_SIGMOID, 0, false, OP_INPUT},
    {"tanh", OP_TANH, 0, false, OP_INPUT},
    {"softmax", OP_SOFTMAX, 0, false, OP_INPUT},
    {"leaky_relu", OP_LEAKY_RELU, 0.3, false, OP_INPUT}, /* Keras 3's LeakyReLU */
    {"elu", OP_ELU, 1.0, true, OP_INPUT},
    {"gelu", OP_GELU, 0, false, OP_GELU_TANH},           /* exact erf form */
    {"linear", OP_INPUT, 0, false, OP_INPUT},
};
#define NACTIVATIONS ((int)(sizeof activations / sizeof activations[0]))

static const Activation *find_activation(const char *name)
{
    for (int i = 0; i < NACTIVATIONS; i++)
        if (!strcmp(activations[i].name, name))
            return &activations[i];
    return NULL;
}

static NodeId activate_with(Lower *L, Op op, double attr, NodeId x, Loc loc)
{
    if (op == OP_INPUT)
        return x;
    NodeId y = graph_add1(L->g, op, loc, x);
    if (y != NODE_NONE)
        NODE(L->g, y)->fattr[0] = attr;
    return y;
}

static NodeId activate(Lower *L, const char *name, NodeId x, Loc loc)
{
    const Activation *act = find_activation(name);
    NNC_ASSERT(act);
    return activate_with(L, act->op, act->attr, x, loc);
}

/* ---- argument binding ------------------------------------------------------ */

static int nparams(const Param *p)
{
    int n = 0;
    while (n < MAX_PARAMS && p[n].name)
        n++;
    return n;
}

static bool check_value(const Param *p, const Expr *v, const char *callee)
{
    switch (p->type) {
    case A_INT:
        if (v->kind != EX_NUM || !v->is_int) {
            diag_error(v->loc, "%s: '%s' must be an integer", callee, p->name);
            return false;
        }
        return true;
    case A_NUM:
        if (v->kind != EX_NUM) {
            diag_error(v->loc, "%s: '%s' must be a number", callee, p->name);
            return false;
        }
        return true;
    case A_BOOL:
        if (v->kind != EX_NAME || (strcmp(v->name, "true") && strcmp(v->name, "false"))) {
            diag_error(v->loc, "%s: '%s' must be true or false", callee, p->name);
            return false;
        }
        return true;
    case A_NAME:
        if (v->kind != EX_NAME) {
            diag_error(v->loc, "%s: '%s' must be a name", callee, p->name);
            return false;
        }
        return true;
    }
    return false;
}

/* Binds `args` (the non-tensor arguments of a call) to the spec. */
static bool bind(const char *callee, Loc callee_loc, const Param *spec,
                 const Arg *args, Args *out)
{
    int np = nparams(spec), pos = 0;
    bool ok = true, seen_kw = false;
    memset(out, 0, sizeof *out);
    for (const Arg *a = args; a; a = a->next) {
        int k = -1;
        if (!a->key) {
            if (seen_kw) {
                diag_error(a->val->loc, "%s: positional argument after keyword argument", callee);
                ok = false;
                continue;
            }
            if (pos >= np) {
                diag_error(a->val->loc, "%s: too many arguments (takes at most %d)", callee, np);
                ok = false;
                continue;
            }
            k = pos++;
        } else {
            seen_kw = true;
            for (int i = 0; i < np; i++)
                if (!strcmp(spec[i].name, a->key) ||
                    (spec[i].alias && !strcmp(spec[i].alias, a->key)))
                    k = i;
            if (k < 0) {
                const char *cands[MAX_PARAMS + 1] = {0};
                for (int i = 0; i < np; i++)
                    cands[i] = spec[i].name;
                const char *s = diag_suggest(a->key, cands);
                if (s)
                    diag_error(a->key_loc, "%s has no argument '%s'; did you mean '%s'?",
                               callee, a->key, s);
                else if (np == 0)
                    diag_error(a->key_loc, "%s takes no arguments", callee);
                else
                    diag_error(a->key_loc, "%s has no argument '%s'", callee, a->key);
                ok = false;
                continue;
            }
        }
        if (out->val[k]) {
            diag_error(a->key ? a->key_loc : a->val->loc,
                       "%s: argument '%s' given twice", callee, spec[k].name);
            ok = false;
            continue;
        }
        if (!check_value(&spec[k], a->val, callee)) {
            ok = false;
            continue;
        }
        out->val[k] = a->val;
        out->loc[k] = a->val->loc;
    }
    for (int i = 0; i < np && ok; i++)
        if (spec[i].required && !out->val[i]) {
            diag_error(callee_loc, "%s: missing argument '%s'", callee, spec[i].name);
            ok = false;
        }
    return ok;
}

static double num_arg(const Param *spec, const Args *a, int k)
{
    return a->val[k] ? a->val[k]->num : spec[k].def;
}

static const char *name_arg(const Param *spec, const Args *a, int k)
{
    return a->val[k] ? a->val[k]->name : spec[k].def_name;
}

static Loc arg_loc(const Args *a, int k, Loc fallback)
{
    return a->val[k] ? a->loc[k] : fallback;
}

/* ---- sizes and shape notes ---------------------------------------------------
 * Sizes are computed in 64-bit arithmetic that saturates instead of
 * wrapping, so that a huge layer is refused with its byte count instead of
 * overflowing. The emitted loops index with int: a tensor holds at most
 * 2^30 floats. */

#define MAX_TENSOR_FLOATS (UINT64_C(1) << 30)

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t shape_floats(const Shape *s)
{
    uint64_t n = 1;
    for (int d = 0; d < s->rank; d++)
        n = mul_sat(n, s->dim[d] > 0 ? (uint64_t)s->dim[d] : 0);
    return n;
}

/* "4000000000 bytes", or "more than 2^64 bytes" */
static const char *bytes_str(Lower *L, uint64_t floats)
{
    uint64_t b = mul_sat(floats, 4);
    if (b == UINT64_MAX)
        return "more than 2^64 bytes";
    return arena_printf(L->arena, "%llu bytes", (unsigned long long)b);
}

/* Refuses the tensors made since node `first` that are too large. */
static bool check_sizes(Lower *L, NodeId first, const char *layer, Loc loc)
{
    for (NodeId id = first; (int)id < L->g->nnodes; id++) {
        const Node *n = NODE(L->g, id);
        uint64_t f = shape_floats(&n->shape);
        if (f <= MAX_TENSOR_FLOATS)
            continue;
        if (n->role == R_PARAM)
            diag_error(loc, "%s: the parameter '%s' of shape %s would need %s; a tensor "
                       "holds at most 2^30 floats (4294967296 bytes)", layer, n->name,
                       shape_str(&n->shape), bytes_str(L, f));
        else
            diag_error(loc, "%s: its output of shape %s would need %s; a tensor holds at "
                       "most 2^30 floats (4294967296 bytes)", layer, shape_str(&n->shape),
                       bytes_str(L, f));
        return false;
    }
    return true;
}

static Origin *origin_of(Lower *L, NodeId id)
{
    if (id == NODE_NONE)
        return NULL;
    if ((int)id >= L->norigin) {
        int n = L->g->nnodes > (int)id ? L->g->nnodes : (int)id + 1;
        L->origin = realloc(L->origin, sizeof(Origin) * (size_t)n);
        NNC_ASSERT(L->origin);
        memset(L->origin + L->norigin, 0, sizeof(Origin) * (size_t)(n - L->norigin));
        L->norigin = n;
    }
    return &L->origin[id];
}

/* Records where value `id` came from (the first record wins, but a name
 * given later is kept). */
static void set_origin(Lower *L, NodeId id, Loc loc, const char *name, const char *layer)
{
    Origin *o = origin_of(L, id);
    if (!o)
        return;
    if (!o->loc.src)
        *o = (Origin){loc, name, layer};
    else if (name && !o->name)
        o->name = name;
}

/* After a shape error: a note showing where value `id` and its shape come
 * from. */
static void note_shape(Lower *L, NodeId id)
{
    const Origin *o = id != NODE_NONE && (int)id < L->norigin ? &L->origin[id] : NULL;
    if (!o || !o->loc.src)
        return;
    const char *sh = shape_str(&NODE(L->g, id)->shape);
    if (o->layer && !strcmp(o->layer, "input"))
        diag_note(o->loc, "input '%s' has shape %s", o->name, sh);
    else if (o->name)
        diag_note(o->loc, "'%s' has shape %s, the output of this %s", o->name, sh, o->layer);
    else
        diag_note(o->loc, "the output of this %s has shape %s", o->layer, sh);
}

/* ---- layers --------------------------------------------------------------- */

static const char *layer_name(Lower *L, const Expr *call, const char *kind,
                              int *counter)
{
    if (L->assign && L->assign_call == call)
        return L->assign;
    return arena_printf(L->arena, "%s_%d", kind, (*counter)++);
}

static bool check_param_name(Lower *L, const char *name, Loc loc)
{
    for (int i = 0; i < L->g->nparams; i++) {
        const Node *p = NODE(L->g, L->g->params[i]);
        size_t n = strlen(name);
        if (!strncmp(p->name, name, n) && p->name[n] == '.') {
            diag_error(loc, "a layer named '%s' already exists", name);
            diag_note(p->loc, "'%s' defined here", name);
            return false;
        }
    }
    return true;
}

/* dense(x, units, activation=linear, use_bias=true):
 *   y = act(x W^T + b), W: (units, in) Glorot uniform, b: (units) zeros */
static NodeId lower_dense(Lower *L, const Layer *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    long units = (long)num_arg(ly->params, a, 0);
    const char *act = name_arg(ly->params, a, 1);
    bool bias = num_arg(ly->params, a, 2) != 0;
    if (a->val[2])
        bias = !strcmp(a->val[2]->name, "true");
    if (units <= 0) {
        diag_error(arg_loc(a, 0, call->loc), "dense: units must be positive, got %ld", units);
        return NODE_NONE;
    }
    if (x->shape.rank != 2 || !(x->bmask & 1)) {
        diag_error(call->loc, "dense expects a (batch, features) input, got %s%s",
                   shape_str(&x->shape), x->shape.rank > 2 ? "; add 'flatten' before it" : "");
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "dense", &L->ndense);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    int fan_in = x->shape.dim[1];
    Shape ws = {2, {(int)units, fan_in}}, bs = {1, {(int)units}};
    NodeId w = graph_param(g, call->loc, arena_printf(L->arena, "%s.weight", name),
                           &ws, INIT_GLOROT, fan_in, (int)units);
    NODE(g, w)->what = "dense";
    NodeId y = graph_matmul(g, call->loc, in[0], w, 0, 1);
    NODE(g, y)->what = "dense";
    if (bias) {
        NodeId b = graph_param(g, call->loc, arena_printf(L->arena, "%s.bias", name),
                               &bs, INIT_ZERO, 0, 0);
        NODE(g, b)->what = "dense";
        y = graph_add2(g, OP_ADD, call->loc, y, b);
    }
    return activate(L, act, y, arg_loc(a, 1, call->loc));
}

/* relu(x), sigmoid(x), tanh(x), softmax(x), linear(x),
 * leaky_relu(x, negative_slope=0.3), elu(x, alpha=1.0),
 * gelu(x, approximate=false) */
static NodeId lower_activation(Lower *L, const Layer *ly, const Expr *call,
                               NodeId *in, int nin, const Args *a)
{
    (void)nin;
    const Activation *act = find_activation(ly->name);
    NNC_ASSERT(act);
    double attr = act->attr;
    Op op = act->op;
    if (ly->params[0].type == A_BOOL) {
        if (a->val[0] && !strcmp(a->val[0]->name, "true"))
            op = act->approx_op;
    } else if (ly->params[0].name) {
        attr = num_arg(ly->params, a, 0);
        bool ok = act->is_attr_positive ? attr > 0 : attr >= 0;
        if (!ok || !isfinite(attr)) {
            diag_error(arg_loc(a, 0, call->loc), "%s: %s must be %s", ly->name,
                       ly->params[0].name, act->is_attr_positive ? "positive" : "non-negative");
            return NODE_NONE;
        }
    }
    return activate_with(L, op, attr, in[0], call->loc);
}

/* add(a, b, ...), multiply(a, b, ...): elementwise sum or product of
 * values of one shape */
static NodeId lower_merge(Lower *L, const Layer *ly, const Expr *call,
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

/* An int argument in [lo, hi], or the default (def < 0: `dflt`). */
static bool int_arg(const Layer *ly, const Args *a, int k, int dflt, int lo, int hi,
                    Loc loc, int *out)
{
    long v = a->val[k] ? (long)a->val[k]->num : ly->params[k].def < 0 ? dflt
                                                                        : (long)ly->params[k].def;
    if (v < lo || v > hi) {
        diag_error(arg_loc(a, k, loc), "%s: %s must be between %d and %d, got %ld", ly->name,
                   ly->params[k].name, lo, hi, v);
        return false;
    }
    *out = (int)v;
    return true;
}

/* padding=valid|same -> 0|1, or -1 after a diagnostic. */
static int padding_arg(const Layer *ly, const Args *a, int k, Loc loc, bool same_ok)
{
    const char *p = name_arg(ly->params, a, k);
    if (!strcmp(p, "valid"))
        return 0;
    if (!strcmp(p, "same") && same_ok)
        return 1;
    diag_error(arg_loc(a, k, loc), "%s: padding must be %s, got '%s'", ly->name,
               same_ok ? "valid or same" : "valid", p);
    return -1;
}

/* A sliding-window op over x with square windows and strides. */
static NodeId window(Lower *L, Op op, Loc loc, NodeId x, int kh, int kw, int sh, int sw,
                     int same, const char *what)
{
    Node proto = {0};
    proto.op = op;
    proto.nin = 1;
    proto.in[0] = x;
    proto.loc = loc;
    proto.what = what;
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
static NodeId lower_conv2d(Lower *L, const Layer *ly, const Expr *call,
                           NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    int filters, k, st, same;
    if (!int_arg(ly, a, 0, 0, 1, 1 << 16, call->loc, &filters) ||
        !int_arg(ly, a, 1, 0, 1, 1 << 10, call->loc, &k) ||
        !int_arg(ly, a, 2, 0, 1, 1 << 10, call->loc, &st) ||
        (same = padding_arg(ly, a, 3, call->loc, true)) < 0 ||
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
    const char *act = name_arg(ly->params, a, 4);
    bool bias = !a->val[5] || !strcmp(a->val[5]->name, "true");
    const char *name = layer_name(L, call, "conv2d", &L->nconv);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    NodeId col = window(L, OP_IM2COL, call->loc, in[0], k, k, st, st, same, "conv2d");
    if (col == NODE_NONE) {
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    int cin = x->shape.dim[3];
    Shape ws = {2, {filters, k * k * cin}}, bs = {1, {filters}};
    NodeId w = graph_param(g, call->loc, arena_printf(L->arena, "%s.weight", name), &ws,
                           INIT_GLOROT, k * k * cin, k * k * filters);
    NODE(g, w)->what = "conv2d";
    NODE(g, w)->ckpt_shape = (Shape){4, {filters, k, k, cin}};
    NodeId y = graph_matmul(g, call->loc, col, w, 0, 1);
    if (bias) {
        NodeId b = graph_param(g, call->loc, arena_printf(L->arena, "%s.bias", name), &bs,
                               INIT_ZERO, 0, 0);
        NODE(g, b)->what = "conv2d";
        y = graph_add2(g, OP_ADD, call->loc, y, b);
    }
    return activate(L, act, y, arg_loc(a, 4, call->loc));
}

/* maxpool2d(x, pool_size=2, strides=pool_size, padding=valid) and
 * avgpool2d(...): the max or mean of each window */
static NodeId lower_pool(Lower *L, const Layer *ly, const Expr *call,
                         NodeId *in, int nin, const Args *a)
{
    (void)nin;
    int k, st;
    if (!int_arg(ly, a, 0, 0, 1, 1 << 10, call->loc, &k) ||
        !int_arg(ly, a, 1, k, 1, 1 << 10, call->loc, &st) ||
        padding_arg(ly, a, 2, call->loc, false) < 0 ||
        !image_input(L, in[0], ly->name, call->loc))
        return NODE_NONE;
    Op op = !strcmp(ly->name, "maxpool2d") ? OP_MAXPOOL : OP_AVGPOOL;
    NodeId y = window(L, op, call->loc, in[0], k, k, st, st, 0, ly->name);
    if (y == NODE_NONE)
        note_shape(L, in[0]);
    return y;
}

/* global_avgpool2d(x): the mean over height and width -> (batch, channels) */
static NodeId lower_global_avgpool(Lower *L, const Layer *ly, const Expr *call,
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
static NodeId lower_flatten(Lower *L, const Layer *ly, const Expr *call,
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
static NodeId lower_concat(Lower *L, const Layer *ly, const Expr *call,
                           NodeId *in, int nin, const Args *a)
{
    (void)ly;
    if (a->val[0] && (long)a->val[0]->num != -1) {
        diag_error(arg_loc(a, 0, call->loc), "concat: only axis=-1 is supported, got %ld",
                   (long)a->val[0]->num);
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
static NodeId lower_embedding(Lower *L, const Layer *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    int vocab, dim;
    if (!int_arg(ly, a, 0, 0, 1, 1 << 24, call->loc, &vocab) ||
        !int_arg(ly, a, 1, 0, 1, 1 << 24, call->loc, &dim))
        return NODE_NONE;
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
    NodeId w = graph_param(g, call->loc, arena_printf(L->arena, "%s.weight", name), &ws,
                           INIT_UNIFORM, 0, 0);
    NODE(g, w)->what = "embedding";
    NodeId y = graph_add2(g, OP_EMBED, call->loc, w, in[0]);
    if (y)
        NODE(g, y)->what = "embedding";
    return y;
}

/* layernorm(x, epsilon=1e-3): over the last axis, as Keras'
 * LayerNormalization(axis=-1):
 *   y = layernorm(x) * gamma + beta, gamma (LAYER.weight): ones,
 *   beta (LAYER.bias): zeros, both of the last axis' size (torch's names) */
static NodeId lower_layernorm(Lower *L, const Layer *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    double eps = num_arg(ly->params, a, 0);
    if (!(eps > 0) || !isfinite(eps)) {
        diag_error(arg_loc(a, 0, call->loc), "layernorm: epsilon must be positive");
        return NODE_NONE;
    }
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
    NodeId y = graph_add1(g, OP_LAYERNORM, call->loc, in[0]);
    if (y == NODE_NONE)
        return NODE_NONE;
    NODE(g, y)->fattr[0] = eps;
    NODE(g, y)->what = "layernorm";
    NodeId w = graph_param(g, call->loc, arena_printf(L->arena, "%s.weight", name), &ps,
                           INIT_ONE, 0, 0);
    NodeId b = graph_param(g, call->loc, arena_printf(L->arena, "%s.bias", name), &ps,
                           INIT_ZERO, 0, 0);
    NODE(g, w)->what = "layernorm";
    NODE(g, b)->what = "layernorm";
    y = graph_add2(g, OP_MUL, call->loc, y, w);
    return graph_add2(g, OP_ADD, call->loc, y, b);
}

/* dropout(x, rate): Keras' inverted dropout, active in the training step
 * only (predict is the identity); each dropout op gets its own iattr[0]
 * so that CSE never merges two of them */
static NodeId lower_dropout(Lower *L, const Layer *ly, const Expr *call,
                            NodeId *in, int nin, const Args *a)
{
    (void)nin;
    double rate = num_arg(ly->params, a, 0);
    if (!(rate >= 0 && rate < 1)) {
        diag_error(arg_loc(a, 0, call->loc), "dropout: rate must be in [0, 1), got %g", rate);
        return NODE_NONE;
    }
    Node proto = {0};
    proto.op = OP_DROPOUT;
    proto.nin = 1;
    proto.in[0] = in[0];
    proto.loc = call->loc;
    proto.what = "dropout";
    proto.fattr[0] = rate;
    proto.iattr[0] = L->ndropout++;
    return graph_add_node(L->g, &proto);
}

/* batchnorm(x, momentum=0.99, epsilon=1e-3), Keras' defaults: normalizes
 * every channel (the last axis) over all other axes, then y = gamma xhat +
 * beta. Parameters as torch names them: LAYER.weight (gamma, ones),
 * LAYER.bias (beta, zeros) and the running statistics LAYER.running_mean
 * (zeros) and LAYER.running_var (ones), which have no gradient: the
 * training step updates them (ops/norm.c), predict normalizes with them. */
static NodeId lower_batchnorm(Lower *L, const Layer *ly, const Expr *call,
                              NodeId *in, int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    double momentum = num_arg(ly->params, a, 0), eps = num_arg(ly->params, a, 1);
    if (!(momentum >= 0 && momentum < 1)) {
        diag_error(arg_loc(a, 0, call->loc), "batchnorm: momentum must be in [0, 1), got %g",
                   momentum);
        return NODE_NONE;
    }
    if (!(eps > 0)) {
        diag_error(arg_loc(a, 1, call->loc), "batchnorm: epsilon must be positive, got %g", eps);
        return NODE_NONE;
    }
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
        p[i] = graph_param(g, call->loc, arena_printf(L->arena, "%s.%s", name, suffix[i]), &cs,
                           init[i], 0, 0);
        NODE(g, p[i])->what = "batchnorm";
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

#define ACT_LAYER(n) {n, 1, 1, {{0}}, lower_activation}

static const Layer layers[] = {
    {"dense", 1, 1,
     {{"units", A_INT, true, 0, NULL, NULL},
      {"activation", A_NAME, false, 0, "linear", NULL},
      {"use_bias", A_BOOL, false, 1, NULL, NULL}},
     lower_dense},
    ACT_LAYER("relu"), ACT_LAYER("sigmoid"), ACT_LAYER("tanh"),
    ACT_LAYER("softmax"), ACT_LAYER("linear"),
    {"gelu", 1, 1, {{"approximate", A_BOOL, false, 0, NULL, NULL}}, lower_activation},
    {"leaky_relu", 1, 1, {{"negative_slope", A_NUM, false, 0.3, NULL, "alpha"}},
     lower_activation},
    {"elu", 1, 1, {{"alpha", A_NUM, false, 1.0, NULL, NULL}}, lower_activation},
    {"add", 2, NNC_MAX_IN * 4, {{0}}, lower_merge},
    {"multiply", 2, NNC_MAX_IN * 4, {{0}}, lower_merge},
    {"conv2d", 1, 1,
     {{"filters", A_INT, true, 0, NULL, NULL},
      {"kernel_size", A_INT, true, 0, NULL, NULL},
      {"strides", A_INT, false, 1, NULL, NULL},
      {"padding", A_NAME, false, 0, "valid", NULL},
      {"activation", A_NAME, false, 0, "linear", NULL},
      {"use_bias", A_BOOL, false, 1, NULL, NULL}},
     lower_conv2d},
    {"maxpool2d", 1, 1,
     {{"pool_size", A_INT, false, 2, NULL, NULL},
      {"strides", A_INT, false, -1, NULL, NULL},
      {"padding", A_NAME, false, 0, "valid", NULL}},
     lower_pool},
    {"avgpool2d", 1, 1,
     {{"pool_size", A_INT, false, 2, NULL, NULL},
      {"strides", A_INT, false, -1, NULL, NULL},
      {"padding", A_NAME, false, 0, "valid", NULL}},
     lower_pool},
    {"global_avgpool2d", 1, 1, {{0}}, lower_global_avgpool},
    {"flatten", 1, 1, {{0}}, lower_flatten},
    {"concat", 2, NNC_MAX_IN * 4, {{"axis", A_INT, false, -1, NULL, NULL}}, lower_concat},
    {"embedding", 1, 1,
     {{"vocab", A_INT, true, 0, NULL, "input_dim"},
      {"dim", A_INT, true, 0, NULL, "output_dim"}},
     lower_embedding},
    {"dropout", 1, 1, {{"rate", A_NUM, true, 0, NULL, NULL}}, lower_dropout},
    {"layernorm", 1, 1, {{"epsilon", A_NUM, false, 1e-3, NULL, NULL}}, lower_layernorm},
    {"batchnorm", 1, 1,
     {{"momentum", A_NUM, false, 0.99, NULL, NULL},
      {"epsilon", A_NUM, false, 1e-3, NULL, NULL}},
     lower_batchnorm},
};
#define NLAYERS ((int)(sizeof layers / sizeof layers[0]))

/* ---- losses and optimizers ------------------------------------------------- */

/* A loss's op takes (output, target); its one numeric argument, if any,
 * becomes the op's fattr[0] and must be positive. The target has the
 * output's shape, or for a sparse loss one float per row (the class
 * index). */
typedef struct LossInfo {
    const char *name;
    Op op;
    bool is_sparse;
    Param params[MAX_PARAMS];
} LossInfo;

static const LossInfo losses[] = {
    {"binary_crossentropy", OP_BCE, false, {{0}}},
    {"mse", OP_MSE, false, {{0}}},
    {"mae", OP_MAE, false, {{0}}},
    {"huber", OP_HUBER, false, {{"delta", A_NUM, false, 1.0, NULL, NULL}}},
    {"categorical_crossentropy", OP_CCE, false, {{0}}},
    {"sparse_categorical_crossentropy", OP_SPARSE_CCE, true, {{0}}},
    {"softmax_cross_entropy", OP_SOFTMAX_CE, false, {{0}}},
};
#define NLOSSES ((int)(sizeof losses / sizeof losses[0]))

/* Optimizers: their own arguments (Keras' defaults and names), then the
 * arguments every optimizer takes (common_params). */
typedef struct OptInfo {
    const char *name;
    OptKind kind;
    Param params[6];
} OptInfo;

static const OptInfo optimizers[] = {
    {"sgd", OPT_SGD,
     {{"lr", A_NUM, false, 0.01, NULL, "learning_rate"},
      {"momentum", A_NUM, false, 0.0, NULL, NULL},
      {"nesterov", A_BOOL, false, 0, NULL, NULL},
      {"weight_decay", A_NUM, false, 0.0, NULL, NULL}}},
    {"adam", OPT_ADAM,
     {{"lr", A_NUM, false, 0.001, NULL, "learning_rate"},
      {"beta1", A_NUM, false, 0.9, NULL, "beta_1"},
      {"beta2", A_NUM, false, 0.999, NULL, "beta_2"},
      {"eps", A_NUM, false, 1e-7, NULL, "epsilon"},
      {"weight_decay", A_NUM, false, 0.0, NULL, NULL}}},
    {"adamw", OPT_ADAMW,
     {{"lr", A_NUM, false, 0.001, NULL, "learning_rate"},
      {"beta1", A_NUM, false, 0.9, NULL, "beta_1"},
      {"beta2", A_NUM, false, 0.999, NULL, "beta_2"},
      {"eps", A_NUM, false, 1e-7, NULL, "epsilon"},
      {"weight_decay", A_NUM, false, 0.004, NULL, NULL}}},
    {"rmsprop", OPT_RMSPROP,
     {{"lr", A_NUM, false, 0.001, NULL, "learning_rate"},
      {"rho", A_NUM, false, 0.9, NULL, NULL},
      {"momentum", A_NUM, false, 0.0, NULL, NULL},
      {"eps", A_NUM, false, 1e-7, NULL, "epsilon"},
      {"centered", A_BOOL, false, 0, NULL, NULL}}},
    {"adagrad", OPT_ADAGRAD,
     {{"lr", A_NUM, false, 0.001, NULL, "learning_rate"},
      {"initial_accumulator_value", A_NUM, false, 0.1, NULL, NULL},
      {"eps", A_NUM, false, 1e-7, NULL, "epsilon"}}},
};
#define NOPTIMIZERS ((int)(sizeof optimizers / sizeof optimizers[0]))

/* decay_steps and decay_rate have no default: the schedules that use them
 * require them (sched_args below); the 1s only keep the range checks
 * quiet when they are not given. */
static const Param common_params[] = {
    {"lr_schedule", A_NAME, false, 0, "constant", NULL},
    {"decay_steps", A_NUM, false, 1, NULL, NULL},
    {"alpha", A_NUM, false, 0.0, NULL, NULL},
    {"decay_rate", A_NUM, false, 1, NULL, NULL},
    {"staircase", A_BOOL, false, 0, NULL, NULL},
    {"warmup", A_INT, false, 0, NULL, NULL},
    {"global_clipnorm", A_NUM, false, 0, NULL, NULL},
};
#define NCOMMON ((int)(sizeof common_params / sizeof common_params[0]))

/* ---- names ---------------------------------------------------------------- */

static Binding *lookup(Lower *L, const char *name)
{
    for (int i = L->nenv - 1; i >= 0; i--)
        if (!strcmp(L->env[i].name, name))
            return &L->env[i];
    return NULL;
}

static void undefined(Lower *L, const Expr *e)
{
    for (const Stmt *s = L->model->stmts; s; s = s->next)
        if ((s->kind == ST_ASSIGN || s->kind == ST_INPUT || s->kind == ST_ERROR) && s->name &&
            !strcmp(s->name, e->name)) {
            diag_error(e->loc, "'%s' is used before it is defined", e->name);
            diag_note(s->name_loc, "'%s' is defined here", e->name);
            return;
        }
    const char **cands = arena_alloc(L->arena, sizeof(char *) * (size_t)(L->nenv + 1));
    for (int i = 0; i < L->nenv; i++)
        cands[i] = L->env[i].name;
    const char *s = diag_suggest(e->name, cands);
    if (s)
        diag_error(e->loc, "undefined value '%s'; did you mean '%s'?", e->name, s);
    else
        diag_error(e->loc, "undefined value '%s'", e->name);
}

static bool bind_name(Lower *L, const char *name, Loc loc, NodeId id)
{
    Binding *b = lookup(L, name);
    if (b) {
        diag_error(loc, "redefinition of '%s'", name);
        diag_note(b->loc, "'%s' first defined here", name);
        return false;
    }
    L->env = nnc_grow(L->env, &L->cap, L->nenv + 1, sizeof(Binding));
    L->env[L->nenv++] = (Binding){name, loc, id};
    return true;
}

static const char *const *layer_names(void)
{
    static const char *names[NLAYERS + 1];
    for (int i = 0; i < NLAYERS; i++)
        names[i] = layers[i].name;
    return names;
}

/* ---- expressions -------------------------------------------------------- */

static NodeId lower_expr(Lower *L, const Expr *e);

/* Is this argument a tensor (a value name or a call)? */
static bool is_tensor_arg(const Arg *a)
{
    return !a->key && (a->val->kind == EX_CALL ||
                       (a->val->kind == EX_NAME && strcmp(a->val->name, "true") &&
                        strcmp(a->val->name, "false")));
}

/* Collects a call's tensor inputs into in[]; returns the first argument
 * that is not an input, or sets *ok = false. */
static const Arg *call_inputs(Lower *L, const Layer *ly, const Expr *call,
                              NodeId *in, int *nin, bool *ok)
{
    const Arg *a = call->args;
    *nin = 0;
    while (a && is_tensor_arg(a) && *nin < ly->max_in) {
        in[(*nin)++] = lower_expr(L, a->val);
        if (in[*nin - 1] == NODE_NONE)
            *ok = false;
        a = a->next;
    }
    if (*nin < ly->min_in) {
        if (L->prev == NODE_NONE) {
            if (*ok && !L->prev_failed)
                diag_error(call->loc, "%s has no input: name one, as in %s(x, ...), "
                           "or put it after an input or layer", ly->name, ly->name);
            *ok = false;
            return a;
        }
        memmove(in + 1, in, sizeof(NodeId) * (size_t)*nin);
        in[0] = L->prev;
        (*nin)++;
    }
    if (*nin < ly->min_in) {
        diag_error(call->loc, "%s needs %d inputs, got %d", ly->name, ly->min_in, *nin);
        *ok = false;
    }
    return a;
}

static const Layer *find_layer(const Expr *call)
{
    for (int i = 0; i < NLAYERS; i++)
        if (!strcmp(layers[i].name, call->name))
            return &layers[i];
    return NULL;
}

static NodeId lower_call(Lower *L, const Expr *call)
{
    const Layer *ly = find_layer(call);
    if (!ly) {
        const char *s = diag_suggest(call->name, layer_names());
        if (s)
            diag_error(call->loc, "unknown layer '%s'; did you mean '%s'?", call->name, s);
        else
            diag_error(call->loc, "unknown layer '%s'", call->name);
        return NODE_NONE;
    }
    NodeId in[NNC_MAX_IN * 4 + 1];
    int nin;
    bool ok = true;
    const Arg *rest = call_inputs(L, ly, call, in, &nin, &ok);
    Args args;
    Loc cloc = call->loc;
    if (!bind(ly->name, cloc, ly->params, rest, &args) || !ok)
        return NODE_NONE;
    /* activation names are checked here, once for every layer */
    for (int k = 0; ly->params[k].name && k < MAX_PARAMS; k++)
        if (args.val[k] && !strcmp(ly->params[k].name, "activation")) {
            const char *act = args.val[k]->name;
            if (!find_activation(act)) {
                const char *names[NACTIVATIONS + 1] = {0};
                for (int i = 0; i < NACTIVATIONS; i++)
                    names[i] = activations[i].name;
                const char *s = diag_suggest(act, names);
                if (s)
                    diag_error(args.loc[k], "unknown activation '%s'; did you mean '%s'?", act, s);
                else
                    diag_error(args.loc[k], "unknown activation '%s' (expected relu, "
                               "sigmoid, tanh, softmax, leaky_relu, elu, gelu or linear)", act);
                return NODE_NONE;
            }
        }
    NodeId first = (NodeId)L->g->nnodes;
    NodeId y = ly->lower(L, ly, call, in, nin, &args);
    if (y == NODE_NONE || !check_sizes(L, first, ly->name, cloc))
        return NODE_NONE;
    set_origin(L, y, cloc, NULL, ly->name);
    return y;
}

static NodeId lower_expr(Lower *L, const Expr *e)
{
    switch (e->kind) {
    case EX_CALL:
        return lower_call(L, e);
    case EX_NAME: {
        Binding *b = lookup(L, e->name);
        if (!b) {
            undefined(L, e);
            return NODE_NONE;
        }
        if (b->id == NODE_NONE)
            return NODE_NONE; /* its definition failed: already reported */
        return b->id;
    }
    case EX_NUM:
        diag_error(e->loc, "expected a value or a layer, got a number");
        return NODE_NONE;
    }
    return NODE_NONE;
}

/* ---- statements ----------------------------------------------------------- */

static void lower_input(Lower *L, const Stmt *s)
{
    Shape sh = {0, {0}};
    bool ok = true;
    if (L->g->input) {
        diag_error(s->loc, "a model has one input (for now)");
        diag_note(NODE(L->g, L->g->input)->loc, "first input declared here");
        if (!lookup(L, s->name))
            bind_name(L, s->name, s->name_loc, NODE_NONE);
        return;
    }
    uint64_t floats = 1;
    for (const Arg *a = s->dims; a; a = a->next) {
        const Expr *v = a->val;
        if (sh.rank == NNC_MAX_DIMS - 1) {
            diag_error(v->loc, "input has too many dimensions (at most %d)", NNC_MAX_DIMS - 1);
            ok = false;
            break;
        }
        if (!v->is_int || v->num < 1 || v->num > (1 << 24)) {
            diag_error(v->loc, "input dimension must be an integer between 1 and %d, got %g",
                       1 << 24, v->num);
            ok = false;
            continue;
        }
        sh.dim[sh.rank++] = (int)v->num;
        floats = mul_sat(floats, (uint64_t)v->num);
    }
    if (ok && floats == UINT64_MAX) {
        diag_error(s->name_loc, "input '%s' is too large: more than 2^64 floats per sample, "
                   "at most 2^26", s->name);
        ok = false;
    } else if (ok && floats > (1u << 26)) {
        diag_error(s->name_loc, "input '%s' is too large: %llu floats (%s) per sample, at "
                   "most 2^26", s->name, (unsigned long long)floats,
                   bytes_str(L, floats));
        ok = false;
    }
    if (!ok) {  /* reported: its uses are not */
        bind_name(L, s->name, s->name_loc, NODE_NONE);
        L->prev = NODE_NONE;
        L->prev_failed = true;
        return;
    }
    NodeId x = graph_source(L->g, R_INPUT, s->name_loc, &sh);
    NODE(L->g, x)->name = s->name;
    NODE(L->g, x)->what = "input";
    set_origin(L, x, s->name_loc, s->name, "input");
    L->g->input = x;
    bind_name(L, s->name, s->name_loc, x);
    L->prev = x;
}

static void lower_loss(Lower *L, const Stmt *s)
{
    const Expr *call = s->expr;
    const LossInfo *li = NULL;
    for (int i = 0; i < NLOSSES; i++)
        if (!strcmp(losses[i].name, call->name))
            li = &losses[i];
    if (L->loss_stmt) {
        diag_error(s->loc, "a model has one loss");
        diag_note(L->loss_stmt->loc, "the loss is given here");
        return;
    }
    L->loss_stmt = s;
    if (!li) {
        const char *names[NLOSSES + 1] = {0};
        for (int i = 0; i < NLOSSES; i++)
            names[i] = losses[i].name;
        const char *sg = diag_suggest(call->name, names);
        if (sg)
            diag_error(call->loc, "unknown loss '%s'; did you mean '%s'?", call->name, sg);
        else
            diag_error(call->loc, "unknown loss '%s' (expected binary_crossentropy, "
                       "categorical_crossentropy, sparse_categorical_crossentropy, "
                       "mse, mae, huber or softmax_cross_entropy)", call->name);
        return;
    }
    NodeId p = L->prev;
    const Arg *a = call->args;
    if (a && is_tensor_arg(a)) {
        p = lower_expr(L, a->val);
        a = a->next;
    } else if (p == NODE_NONE && !L->prev_failed) {
        diag_error(call->loc, "loss has no value to apply to");
    }
    Args args;
    if (!li->params[0].name && a) {
        diag_error(a->val->loc, "%s takes one argument, the model's output", li->name);
        return;
    }
    if (!bind(li->name, call->loc, li->params, a, &args))
        return;
    double attr = li->params[0].name ? num_arg(li->params, &args, 0) : 0;
    if (li->params[0].name && !(attr > 0 && isfinite(attr))) {
        diag_error(arg_loc(&args, 0, call->loc), "%s: %s must be positive", li->name,
                   li->params[0].name);
        return;
    }
    if (p == NODE_NONE)
        return;
    const Node *pn = NODE(L->g, p);
    if (!(pn->bmask & 1) || pn->op == OP_INPUT) {
        diag_error(call->loc, "loss must apply to a layer's output, not %s",
                   pn->op == OP_INPUT ? "the input" : "this value");
        return;
    }
    Shape ts = {pn->shape.rank - 1, {0}};
    memcpy(ts.dim, pn->shape.dim + 1, sizeof(int) * (size_t)ts.rank);
    if (li->is_sparse && ts.rank > 0)
        ts.dim[ts.rank - 1] = 1;
    NodeId t = graph_source(L->g, R_TARGET, call->loc, &ts);
    NODE(L->g, t)->what = "target";
    NODE(L->g, t)->name = "y";
    L->g->target = t;
    L->g->output = p;
    L->g->loss = graph_add2(L->g, li->op, call->loc, p, t);
    if (L->g->loss) {
        NODE(L->g, L->g->loss)->what = li->name;
        NODE(L->g, L->g->loss)->fattr[0] = attr;
    }
}

/* The index of argument `name` in a spec (it must be there). */
static int arg_index(const Param *spec, const char *name)
{
    for (int k = 0; k < MAX_PARAMS && spec[k].name; k++)
        if (!strcmp(spec[k].name, name))
            return k;
    nnc_unreachable();
}

/* A number argument by name; NAN if the optimizer has no such argument. */
static double opt_num(const Param *spec, const Args *a, const char *name)
{
    for (int k = 0; k < MAX_PARAMS && spec[k].name; k++)
        if (!strcmp(spec[k].name, name))
            return num_arg(spec, a, k);
    return NAN;
}

static bool opt_bool(const Param *spec, const Args *a, const char *name)
{
    for (int k = 0; k < MAX_PARAMS && spec[k].name; k++)
        if (!strcmp(spec[k].name, name))
            return a->val[k] ? !strcmp(a->val[k]->name, "true") : spec[k].def != 0;
    return false;
}

/* Reports `name` unless lo <= value < hi (lo_open: lo < value). */
static void check_range(const Param *spec, const Args *a, const Expr *call, const char *name,
                        double lo, bool lo_open, double hi, const char *what)
{
    int k = arg_index(spec, name);
    double v = num_arg(spec, a, k);
    if (!isfinite(v) || v < lo || (lo_open && v == lo) || v >= hi)
        diag_error(arg_loc(a, k, call->loc), "%s: %s must be %s", call->name, name, what);
}

/* The arguments of the lr schedules: which schedule each belongs to (-1:
 * any but constant) and whether that schedule needs it (as Keras'
 * CosineDecay and ExponentialDecay do). */
static const struct {
    const char *name;
    int schedule;
    bool required;
} sched_args[] = {
    {"decay_steps", -1, true},
    {"alpha", LRS_COSINE, false},
    {"decay_rate", LRS_EXPONENTIAL, true},
    {"staircase", LRS_EXPONENTIAL, false},
};

/* lr_schedule=NAME and its arguments; warmup=N; global_clipnorm=X. */
static void lower_schedule(Optimizer *o, const Param *spec, const Args *a, const Expr *call)
{
    static const char *const names[] = {"constant", "cosine", "exponential", NULL};
    int k = arg_index(spec, "lr_schedule");
    const char *s = name_arg(spec, a, k);
    o->schedule = LRS_CONSTANT;
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i]))
            o->schedule = (LrSchedule)i;
    bool known = o->schedule != LRS_CONSTANT || !strcmp(s, "constant");
    if (!known) {
        const char *sg = diag_suggest(s, names);
        if (sg)
            diag_error(arg_loc(a, k, call->loc), "unknown lr_schedule '%s'; did you mean '%s'?",
                       s, sg);
        else
            diag_error(arg_loc(a, k, call->loc), "unknown lr_schedule '%s' (expected constant, "
                       "cosine or exponential)", s);
    }
    for (int i = 0; i < (int)(sizeof sched_args / sizeof sched_args[0]) && known; i++) {
        int j = arg_index(spec, sched_args[i].name), want = sched_args[i].schedule;
        bool applies = o->schedule != LRS_CONSTANT && (want < 0 || want == (int)o->schedule);
        if (a->val[j] && !applies)
            diag_error(a->loc[j], "%s: '%s' needs lr_schedule=%s", call->name,
                       sched_args[i].name, want < 0 ? "cosine or exponential" : names[want]);
        else if (!a->val[j] && applies && sched_args[i].required)
            diag_error(arg_loc(a, k, call->loc), "%s: lr_schedule=%s needs '%s'", call->name,
                       s, sched_args[i].name);
    }
    o->decay_steps = opt_num(spec, a, "decay_steps");
    o->alpha = opt_num(spec, a, "alpha");
    o->decay_rate = opt_num(spec, a, "decay_rate");
    o->staircase = opt_bool(spec, a, "staircase");
    o->warmup = (long)opt_num(spec, a, "warmup");
    o->clipnorm = opt_num(spec, a, "global_clipnorm");
    check_range(spec, a, call, "decay_steps", 0, true, INFINITY, "positive");
    check_range(spec, a, call, "alpha", 0, false, 1.0000001, "in [0, 1]");
    check_range(spec, a, call, "decay_rate", 0, true, INFINITY, "positive");
    check_range(spec, a, call, "warmup", 0, false, 1e9, "in [0, 1e9)");
    check_range(spec, a, call, "global_clipnorm", 0, false, INFINITY,
                "positive (0: no clipping)");
}

/* optimizer NAME(args): one of `optimizers`, plus common_params. */
static void lower_optimizer(Lower *L, const Stmt *s)
{
    const Expr *call = s->expr;
    Optimizer *o = &L->g->opt;
    const OptInfo *oi = NULL;
    Param spec[MAX_PARAMS] = {{0}};
    Args a;
    if (o->loc.src) {
        diag_error(s->loc, "a model has one optimizer");
        diag_note(o->loc, "the optimizer is given here");
        return;
    }
    o->loc = call->loc;
    for (int i = 0; i < NOPTIMIZERS; i++)
        if (!strcmp(call->name, optimizers[i].name))
            oi = &optimizers[i];
    if (!oi) {
        static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", NULL};
        const char *sg = diag_suggest(call->name, names);
        if (sg)
            diag_error(call->loc, "unknown optimizer '%s'; did you mean '%s'?", call->name, sg);
        else
            diag_error(call->loc, "unknown optimizer '%s' (expected sgd, adam, adamw, rmsprop "
                       "or adagrad)", call->name);
        return;
    }
    for (const Arg *g = call->args; g; g = g->next)
        if (g->key && !strcmp(g->key, "clipnorm")) {
            /* Keras' clipnorm clips each gradient on its own: not ours */
            diag_error(g->key_loc, "%s: per-gradient 'clipnorm' is not supported; did you "
                       "mean 'global_clipnorm'?", oi->name);
            return;
        }
    int n = nparams(oi->params);
    memcpy(spec, oi->params, sizeof(Param) * (size_t)n);
    memcpy(spec + n, common_params, sizeof common_params);
    if (!bind(oi->name, call->loc, spec, call->args, &a))
        return;
    o->kind = oi->kind;
    o->lr = opt_num(spec, &a, "lr");
    o->momentum = opt_num(spec, &a, "momentum");
    o->beta1 = opt_num(spec, &a, "beta1");
    o->beta2 = opt_num(spec, &a, "beta2");
    o->eps = opt_num(spec, &a, "eps");
    o->weight_decay = opt_num(spec, &a, "weight_decay");
    o->rho = opt_num(spec, &a, "rho");
    o->init = opt_num(spec, &a, "initial_accumulator_value");
    o->nesterov = opt_bool(spec, &a, "nesterov");
    o->centered = opt_bool(spec, &a, "centered");
    check_range(spec, &a, call, "lr", 0, true, INFINITY, "positive");
    if (!isnan(o->momentum))
        check_range(spec, &a, call, "momentum", 0, false, 1, "in [0, 1)");
    if (!isnan(o->beta1))
        check_range(spec, &a, call, "beta1", 0, false, 1, "in [0, 1)");
    if (!isnan(o->beta2))
        check_range(spec, &a, call, "beta2", 0, false, 1, "in [0, 1)");
    if (!isnan(o->rho))
        check_range(spec, &a, call, "rho", 0, false, 1, "in [0, 1)");
    if (!isnan(o->eps))
        check_range(spec, &a, call, "eps", 0, true, INFINITY, "positive");
    if (!isnan(o->weight_decay))
        check_range(spec, &a, call, "weight_decay", 0, false, INFINITY, "non-negative");
    if (!isnan(o->init))
        check_range(spec, &a, call, "initial_accumulator_value", 0, false, INFINITY,
                    "non-negative");
    if (o->nesterov && !(o->momentum > 0))
        diag_error(arg_loc(&a, arg_index(spec, "nesterov"), call->loc),
                   "sgd: nesterov needs a momentum");
    lower_schedule(o, spec, &a, call);
}

static void lower_stmt(Lower *L, const Stmt *s)
{
    NodeId v;
    switch (s->kind) {
    case ST_INPUT:
        lower_input(L, s);
        break;
    case ST_ASSIGN:
        if (lookup(L, s->name)) {
            bind_name(L, s->name, s->name_loc, NODE_NONE); /* reports */
            L->prev = NODE_NONE;
            L->prev_failed = true;
            break;
        }
        L->assign = s->name;
        L->assign_call = s->expr;
        v = lower_expr(L, s->expr);
        L->assign = NULL;
        L->assign_call = NULL;
        if (v != NODE_NONE && !NODE(L->g, v)->name)
            NODE(L->g, v)->name = s->name;
        set_origin(L, v, s->expr->loc, s->name, s->expr->kind == EX_CALL ? s->expr->name
                                                                           : "value");
        if (bind_name(L, s->name, s->name_loc, v))
            L->prev = v;
        L->prev_failed = v == NODE_NONE;
        break;
    case ST_LAYER:
        L->prev = lower_call(L, s->expr);
        L->prev_failed = L->prev == NODE_NONE;
        break;
    case ST_LOSS:
        lower_loss(L, s);
        break;
    case ST_OPTIMIZER:
        lower_optimizer(L, s);
        break;
    case ST_BATCH: /* read before lowering (shapes need it); checked here */
        if (L->batch_stmt) {
            diag_error(s->loc, "batch given twice");
            diag_note(L->batch_stmt->loc, "first given here");
            break;
        }
        L->batch_stmt = s;
        if (!s->expr->is_int || s->expr->num < 1 || s->expr->num > 65536)
            diag_error(s->expr->loc, "batch must be an integer between 1 and 65536, got %g",
                       s->expr->num);
        break;
    case ST_ERROR:
        /* a syntax error, reported: its name is known, without a value */
        if (s->name && !lookup(L, s->name))
            bind_name(L, s->name, s->name_loc, NODE_NONE);
        L->prev = NODE_NONE;
        L->prev_failed = true;
        break;
    }
}

/* The batch size, read first because every batched shape includes it
 * (errors are reported in statement order, by lower_stmt). Keras' default
 * is 32. */
static int model_batch(const Model *m)
{
    const Stmt *seen = NULL;
    int batch = 32;
    for (const Stmt *s = m->stmts; s; s = s->next) {
        if (s->kind != ST_BATCH)
            continue;
        if (seen)
            continue;
        seen = s;
        if (s->expr->is_int && s->expr->num >= 1 && s->expr->num <= 65536)
            batch = (int)s->expr->num;
    }
    return batch;
}

/* Marks `id` and everything it depends on. */
static void mark_inputs(const Graph *g, NodeId id, bool *mark)
{
    mark[id] = true;
    for (int i = (int)id; i >= 1; i--)
        if (mark[i])
            for (int k = 0; k < g->nodes[i].nin; k++)
                mark[g->nodes[i].in[k]] = true;
}

/* Warns once about each named value, and otherwise each layer, that does
 * not affect the loss: its parameters would never be trained. */
static void warn_unused(Lower *L)
{
    Graph *g = L->g;
    bool *reach = calloc((size_t)g->nnodes, sizeof(bool));
    bool *covered = calloc((size_t)g->nnodes, sizeof(bool));
    NNC_ASSERT(reach && covered);
    mark_inputs(g, g->loss, reach);
    for (int i = 0; i < L->nenv; i++) {
        NodeId id = L->env[i].id;
        if (reach[id] || g->nodes[id].op == OP_INPUT)
            continue;
        diag_warning(L->env[i].loc, "value '%s' does not affect the loss", L->env[i].name);
        mark_inputs(g, id, covered);
    }
    Loc last = {0};
    for (int i = 0; i < g->nparams; i++) {
        const Node *p = NODE(g, g->params[i]);
        if (reach[g->params[i]] || covered[g->params[i]] ||
            (p->loc.line == last.line && p->loc.col == last.col))
            continue;
        last = p->loc;
        diag_warning(p->loc, "this layer does not affect the loss; its parameters are "
                     "not trained");
    }
    free(reach);
    free(covered);
}

bool lower_model(const Model *m, Graph *g)
{
    int errors = diag_errors;
    Lower L = {0};
    graph_init(g, m->name, model_batch(m));
    L.arena = &g->arena;
    g->loc = m->loc;
    L.g = g;
    L.model = m;
    bool has_input = false;
    for (const Stmt *s = m->stmts; s; s = s->next)
        has_input = has_input || s->kind == ST_INPUT || (s->kind == ST_ERROR && s->error_input);
    if (!has_input) {
        /* reported once, here, rather than at every layer that lacks one */
        if (!m->broken)
            diag_error(m->loc, "model '%s' has no input (add, e.g., 'input x[10]')", m->name);
        L.prev_failed = true;
    }
    for (const Stmt *s = m->stmts; s; s = s->next)
        lower_stmt(&L, s);
    if (diag_errors == errors && !m->broken) {
        if (!g->input)
            diag_error(m->loc, "model '%s' has no input", m->name);
        else if (!g->loss)
            diag_error(m->loc, "model '%s' has no loss (add, e.g., 'loss mse')", m->name);
        else if (!g->opt.loc.src)
            diag_error(m->loc, "model '%s' has no optimizer (add, e.g., 'optimizer adam')",
                       m->name);
        else if (g->nparams == 0)
            diag_error(m->loc, "model '%s' has no parameters to train (add a layer with "
                       "weights, such as dense)", m->name);
    }
    /* emitted loops index with int: every tensor below 2^30 floats (the
     * layers were checked; this covers the loss and its target) */
    for (int id = 1; id < g->nnodes && diag_errors == errors; id++)
        if (shape_floats(&g->nodes[id].shape) > MAX_TENSOR_FLOATS)
            diag_error(g->nodes[id].loc, "a tensor of shape %s would need %s; a tensor "
                       "holds at most 2^30 floats (4294967296 bytes)",
                       shape_str(&g->nodes[id].shape),
                       bytes_str(&L, shape_floats(&g->nodes[id].shape)));
    if (diag_errors == errors && !m->broken)
        warn_unused(&L);
    free(L.env);
    free(L.origin);
    return diag_errors == errors;
}
