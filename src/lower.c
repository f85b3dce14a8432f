/*
 * lower.c - AST to graph IR: walks a model's statements in order, binds
 * value names, lowers expressions (calls go to the layer table of
 * lower_layers.c, loss and optimizer to lower_train.c), then checks the
 * model as a whole (an input, a loss, an optimizer, parameters) and warns
 * about layers that do not affect the loss.
 *
 * Calls take their tensor inputs from their leading positional arguments
 * when those name values (or are calls); otherwise, in the sequential
 * form, from the previous statement's value. Arguments are checked
 * against the table (sema.c) before a layer is lowered. Shapes are
 * inferred as nodes are built, so a shape error is reported at the call
 * that caused it, with notes on where its inputs came from (Origin).
 */
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* ---- sizes and shape notes ---------------------------------------------------
 * Sizes are computed in 64-bit arithmetic that saturates instead of
 * wrapping, so that a huge layer is refused with its byte count instead of
 * overflowing. The emitted loops index with int: a tensor holds at most
 * 2^30 floats. */

uint64_t mul_sat(uint64_t a, uint64_t b)
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

const char *bytes_str(Lower *L, uint64_t floats)
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
        L->origin = xrealloc(L->origin, sizeof(Origin) * (size_t)n);
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

void note_shape(Lower *L, NodeId id)
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

/* ---- expressions -------------------------------------------------------- */

bool is_tensor_arg(const Arg *a)
{
    return !a->key && (a->val->kind == EX_CALL ||
                       (a->val->kind == EX_NAME && strcmp(a->val->name, "true") &&
                        strcmp(a->val->name, "false")));
}

/* Collects a call's tensor inputs into in[]; returns the first argument
 * that is not an input, or sets *ok = false. */
static const Arg *call_inputs(Lower *L, const LayerInfo *ly, const Expr *call,
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

/* A layer call: the layer table's row, its inputs, its arguments bound
 * and checked (sema.c), then its lowerer. */
static NodeId lower_call(Lower *L, const Expr *call)
{
    const LayerInfo *ly = layer_find(call->name);
    if (!ly) {
        const LayerInfo *keras = activation_find(call->name, true);   /* swish: silu */
        if (keras)
            diag_error(call->loc, "unknown layer '%s'; did you mean '%s'?", call->name,
                       keras->name);
        else
            sema_unknown(call->loc, "layer", call->name, layer_names(), NULL);
        return NODE_NONE;
    }
    NodeId in[NNC_MAX_IN * 4 + 1];
    int nin;
    bool ok = true;
    const Arg *rest = call_inputs(L, ly, call, in, &nin, &ok);
    Args args;
    Loc cloc = call->loc;
    if (!sema_bind(ly->name, cloc, ly->params, rest, &args) || !ok ||
        !sema_check_activations(&args) ||
        !sema_check_ranges(ly->name, &args, 0, sema_nparams(ly->params), false))
        return NODE_NONE;
    NodeId first = (NodeId)L->g->nnodes;
    NodeId y = ly->lower(L, ly, call, in, nin, &args);
    if (y == NODE_NONE || !check_sizes(L, first, ly->name, cloc))
        return NODE_NONE;
    if (arg_exists(ly->params, "trainable") && !arg_bool(&args, "trainable"))
        for (int id = (int)first; id < L->g->nnodes; id++)  /* this layer's parameters */
            if (L->g->nodes[id].role == R_PARAM)
                L->g->nodes[id].is_frozen = true;
    set_origin(L, y, cloc, NULL, ly->name);
    return y;
}

NodeId lower_expr(Lower *L, const Expr *e)
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
    case EX_LIST:
        diag_error(e->loc, "expected a value or a layer, got a list");
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
    if (L->decode) {
        /* [token, position] per row: the name is the token, (1, 1) */
        if (sh.rank != 1)
            L->no_decode = true;
        L->g->decode_T = sh.dim[0];
        sh.rank = 1;
        sh.dim[0] = 2;
    }
    NodeId x = graph_source(L->g, R_INPUT, s->name_loc, &sh);
    NODE(L->g, x)->name = s->name;
    NODE(L->g, x)->what = "input";
    set_origin(L, x, s->name_loc, s->name, "input");
    L->g->input = x;
    if (L->decode) {   /* columns 1 (the position) and 0 (the token) */
        L->decode_pos = narrow(L, "input", s->name_loc, x, 1, 1, 1);
        x = narrow(L, "input", s->name_loc, x, 1, 0, 1);
    }
    bind_name(L, s->name, s->name_loc, x);
    L->prev = x;
}

static void lower_freeze(Lower *L, const Stmt *s);

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
    case ST_FREEZE:
        lower_freeze(L, s);
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

/* freeze NAME: every parameter that the value NAME depends on (the
 * layers up to and including the one that made it) is frozen, as
 * trainable=false on each of them would: a feature extractor kept as
 * loaded while the layers after it are fine-tuned. */
static void lower_freeze(Lower *L, const Stmt *s)
{
    Graph *g = L->g;
    NodeId v = lower_expr(L, s->expr);  /* an undefined name is reported */
    if (v == NODE_NONE)
        return;
    bool *mark = xcalloc((size_t)g->nnodes, sizeof(bool));
    NNC_ASSERT(mark);
    mark_inputs(g, v, mark);
    int n = 0;
    for (int i = 0; i < g->nparams; i++)
        if (mark[g->params[i]]) {
            NODE(g, g->params[i])->is_frozen = true;
            n++;
        }
    free(mark);
    if (n == 0)
        diag_warning(s->expr->loc, "'%s' depends on no parameters: freeze has no effect",
                     s->expr->name);
}

/* Warns once about each named value, and otherwise each layer, that does
 * not affect the loss: its parameters would never be trained. */
static void warn_unused(Lower *L)
{
    Graph *g = L->g;
    bool *reach = xcalloc((size_t)g->nnodes, sizeof(bool));
    bool *covered = xcalloc((size_t)g->nnodes, sizeof(bool));
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

static bool lower_as(const Model *m, Graph *g, bool decode)
{
    int errors = diag_errors;
    Lower L = {0};
    graph_init(g, m->name, decode ? 1 : model_batch(m));
    L.decode = g->decode = decode;
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
    if (diag_errors == errors && !m->broken && !decode)
        warn_unused(&L);
    free(L.env);
    free(L.origin);
    return diag_errors == errors && !(decode && L.no_decode);
}

bool lower_model(const Model *m, Graph *g)
{
    return lower_as(m, g, false);
}

/* The model lowered again for one position, quietly: the model itself
 * compiled, so an error here only means it has no decode form. */
bool lower_decode(const Model *m, Graph *g)
{
    int errors = diag_errors;
    bool quiet = diag_quiet, ok;
    diag_quiet = true;
    ok = lower_as(m, g, true);
    diag_quiet = quiet;
    diag_errors = errors;
    return ok;
}
