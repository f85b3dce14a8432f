/*
 * lower_train.c - the training statements: `loss NAME(v, ...)` becomes a
 * target node of v's shape (one class index per row for a sparse loss)
 * and the loss op; `optimizer NAME(args)` fills the graph's Optimizer
 * description, which optim.c later lowers to UPDATE ops.
 *
 * Losses and optimizers are tables of the same argument specs as layers
 * (sema.h): names, types, defaults, Keras' spellings and ranges are
 * checked by sema.c; what depends on several arguments (nesterov needs a
 * momentum, a schedule's own arguments) is checked here. A loss that
 * takes logits warns when its input is already a softmax: the model
 * would apply softmax twice.
 */
#include <string.h>

#include "lower.h"

/* ---- losses ----------------------------------------------------------------
 * A loss's op takes (output, target); its one numeric argument, if any,
 * becomes the op's fattr[0]. The target has the output's shape, or for a
 * sparse loss one float per row (the class index): (batch, T, 1) for
 * logits (batch, T, V), and the loss is the mean over all batch x T
 * positions. is_logits: the loss applies its own softmax, as the
 * categorical losses do with from_logits=true (Keras' spelling). The order
 * is that of the "expected" list. */
typedef struct LossInfo {
    const char *name;
    Op op;
    bool is_sparse;
    bool is_logits;
    Param params[MAX_PARAMS];
} LossInfo;

#define FROM_LOGITS {.name = "from_logits", .type = A_BOOL, .keyword_only = true}

static const LossInfo losses[] = {
    {"binary_crossentropy", OP_BCE, false, false, {{0}}},
    {"categorical_crossentropy", OP_CCE, false, false, {FROM_LOGITS}},
    {"sparse_categorical_crossentropy", OP_SPARSE_CCE, true, false, {FROM_LOGITS}},
    {"mse", OP_MSE, false, false, {{0}}},
    {"mae", OP_MAE, false, false, {{0}}},
    {"huber", OP_HUBER, false, false,
     {{.name = "delta", .type = A_NUM, .def = 1.0, .range = R_POSITIVE}}},
    {"softmax_cross_entropy", OP_SOFTMAX_CE, false, true, {{0}}},
    {"sparse_softmax_cross_entropy", OP_SPARSE_SOFTMAX_CE, true, true, {{0}}},
};
#define NLOSSES ((int)(sizeof losses / sizeof losses[0]))

/* names[0..n-1] from the first field (the name) of n rows of a table,
 * NULL-terminated. */
static const char *const *row_names(const char **names, const void *rows, int n, size_t size)
{
    for (int i = 0; i < n; i++)
        names[i] = *(const char *const *)((const char *)rows + (size_t)i * size);
    names[n] = NULL;
    return names;
}

/* The index of the call's name in names[], or -1 after a diagnostic. */
static int find_name(Lower *L, const Expr *call, const char *kind, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], call->name))
            return i;
    sema_unknown(call->loc, kind, call->name, names, name_list(L->arena, names, " or "));
    return -1;
}

const char *const *loss_names(void)
{
    static const char *names[NLOSSES + 1];
    return row_names(names, losses, NLOSSES, sizeof losses[0]);
}

/* softmax_cross_entropy(softmax(...)) trains, but on a softmax of
 * probabilities: the gradients are flattened and the model learns slowly,
 * as import-keras explains when it refuses the same. */
static void warn_double_softmax(Lower *L, const LossInfo *li, bool is_logits,
                                const Expr *call, NodeId p)
{
    const Node *pn = NODE(L->g, p);
    if (!is_logits || pn->op != OP_SOFTMAX)
        return;
    diag_warning(call->loc, "%s takes logits, but its input is already a softmax (softmax "
                 "is applied twice); use categorical_crossentropy, which nnc fuses with "
                 "the softmax", li->name);
    diag_note(pn->loc, "the softmax is applied here");
}

/* The loss's value: its first argument if that is a tensor, else the
 * previous statement's; *rest is set to the arguments after it. */
static NodeId loss_input(Lower *L, const Expr *call, const Arg **rest)
{
    NodeId p = L->prev;
    const Arg *a = call->args;
    if (a && is_tensor_arg(a)) {
        p = lower_expr(L, a->val);
        a = a->next;
    } else if (p == NODE_NONE && !L->prev_failed) {
        diag_error(call->loc, "loss has no value to apply to");
    }
    *rest = a;
    return p;
}

void lower_loss(Lower *L, const Stmt *s)
{
    const Expr *call = s->expr;
    if (L->loss_stmt) {
        diag_error(s->loc, "a model has one loss");
        diag_note(L->loss_stmt->loc, "the loss is given here");
        return;
    }
    L->loss_stmt = s;
    int i = find_name(L, call, "loss", loss_names());
    if (i < 0)
        return;
    const LossInfo *li = &losses[i];
    const Arg *a;
    NodeId p = loss_input(L, call, &a);
    Args args;
    bool positional = li->params[0].name && !li->params[0].keyword_only;
    if (a && !positional && (!a->key || !li->params[0].name)) {
        diag_error(a->val->loc, "%s takes one argument, the model's output", li->name);
        return;
    }
    if (!sema_bind(li->name, call->loc, li->params, a, &args) ||
        !sema_check_ranges(li->name, &args, 0, sema_nparams(li->params), false))
        return;
    bool from_logits = arg_exists(li->params, "from_logits") && arg_bool(&args, "from_logits");
    bool is_logits = li->is_logits || from_logits;
    Op op = !from_logits ? li->op : li->is_sparse ? OP_SPARSE_SOFTMAX_CE : OP_SOFTMAX_CE;
    bool has_attr = li->params[0].name && li->params[0].type == A_NUM;
    double attr = has_attr ? arg_num(&args, li->params[0].name) : 0;
    if (p == NODE_NONE)
        return;
    const Node *pn = NODE(L->g, p);
    if (!(pn->bmask & 1) || pn->op == OP_INPUT) {
        diag_error(call->loc, "loss must apply to a layer's output, not %s",
                   pn->op == OP_INPUT ? "the input" : "this value");
        return;
    }
    if (li->is_sparse && (pn->shape.rank < 2 || pn->shape.dim[pn->shape.rank - 1] < 2 ||
                          (pn->bmask >> (pn->shape.rank - 1)) & 1)) {
        diag_error(call->loc, "%s needs class scores on the last axis, (batch, classes) or "
                   "(batch, T, classes), got %s", li->name, shape_str(&pn->shape));
        note_shape(L, p);
        return;
    }
    warn_double_softmax(L, li, is_logits, call, p);
    Shape ts = {pn->shape.rank - 1, {0}};
    memcpy(ts.dim, pn->shape.dim + 1, sizeof(int) * (size_t)ts.rank);
    if (li->is_sparse && ts.rank > 0)
        ts.dim[ts.rank - 1] = 1;
    NodeId t = graph_source(L->g, R_TARGET, call->loc, &ts);
    NODE(L->g, t)->what = "target";
    NODE(L->g, t)->name = "y";
    L->g->target = t;
    L->g->output = p;
    L->g->loss = graph_add2(L->g, op, call->loc, p, t);
    if (L->g->loss) {
        NODE(L->g, L->g->loss)->what = li->name;
        NODE(L->g, L->g->loss)->fattr[0] = attr;
    }
}

/* ---- optimizers ------------------------------------------------------------
 * Their own arguments (Keras' defaults and names), then the arguments every
 * optimizer takes (common_params). */

#define LR(d) {.name = "lr", .type = A_NUM, .def = (d), .alias = "learning_rate", \
               .range = R_POSITIVE}
#define EPS {.name = "eps", .type = A_NUM, .def = 1e-7, .alias = "epsilon", .range = R_POSITIVE}
#define BETAS {.name = "beta1", .type = A_NUM, .def = 0.9, .alias = "beta_1", .range = R_UNIT}, \
              {.name = "beta2", .type = A_NUM, .def = 0.999, .alias = "beta_2", .range = R_UNIT}
#define DECAY(d) {.name = "weight_decay", .type = A_NUM, .def = (d), .range = R_NONNEG}, \
                 {.name = "decay", .type = A_NAME, .def_name = "all", .keyword_only = true}
#define MOMENTUM {.name = "momentum", .type = A_NUM, .range = R_UNIT}

typedef struct OptInfo {
    const char *name;
    OptKind kind;
    Param params[8];
} OptInfo;

static const OptInfo optimizers[] = {
    {"sgd", OPT_SGD, {LR(0.01), MOMENTUM, {.name = "nesterov", .type = A_BOOL}, DECAY(0.0)}},
    {"adam", OPT_ADAM, {LR(0.001), BETAS, EPS, DECAY(0.0)}},
    {"adamw", OPT_ADAMW, {LR(0.001), BETAS, EPS, DECAY(0.004)}},
    {"rmsprop", OPT_RMSPROP,
     {LR(0.001), {.name = "rho", .type = A_NUM, .def = 0.9, .range = R_UNIT}, MOMENTUM, EPS,
      {.name = "centered", .type = A_BOOL}}},
    {"adagrad", OPT_ADAGRAD,
     {LR(0.001),
      {.name = "initial_accumulator_value", .type = A_NUM, .def = 0.1, .range = R_NONNEG},
      EPS}},
};
#define NOPTIMIZERS ((int)(sizeof optimizers / sizeof optimizers[0]))

/* decay_steps and decay_rate have no default: the schedules that use them
 * require them (sched_args below); the 1s stand in when they are not
 * given. */
static const Param common_params[] = {
    {.name = "lr_schedule", .type = A_NAME, .def_name = "constant"},
    {.name = "decay_steps", .type = A_NUM, .def = 1, .range = R_POSITIVE},
    {.name = "alpha", .type = A_NUM, .range = {.lo = 0, .hi = 1, .what = "in [0, 1]"}},
    {.name = "decay_rate", .type = A_NUM, .def = 1, .range = R_POSITIVE},
    {.name = "staircase", .type = A_BOOL},
    {.name = "warmup", .type = A_INT,
     .range = {.lo = 0, .hi = 1e9, .is_hi_open = true, .what = "in [0, 1e9)"}},
    {.name = "global_clipnorm", .type = A_NUM,
     .range = {.lo = 0, .hi = INFINITY, .what = "positive (0: no clipping)"}},
};
#define NCOMMON ((int)(sizeof common_params / sizeof common_params[0]))

/* A number argument by name; NAN if the optimizer has no such argument. */
static double opt_num(const Args *a, const char *name)
{
    return arg_exists(a->spec, name) ? arg_num(a, name) : NAN;
}

static bool opt_bool(const Args *a, const char *name)
{
    return arg_exists(a->spec, name) && arg_bool(a, name);
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
static void lower_schedule(Optimizer *o, const Args *a, const Expr *call, Arena *arena)
{
    static const char *const names[] = {"constant", "cosine", "exponential", NULL};
    const char *s = arg_name(a, "lr_schedule");
    Loc sloc = arg_loc(a, "lr_schedule", call->loc);
    o->schedule = LRS_CONSTANT;
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i]))
            o->schedule = (LrSchedule)i;
    bool known = o->schedule != LRS_CONSTANT || !strcmp(s, "constant");
    if (!known)
        sema_unknown(sloc, "lr_schedule", s, names, name_list(arena, names, " or "));
    for (int i = 0; i < (int)(sizeof sched_args / sizeof sched_args[0]) && known; i++) {
        const char *arg = sched_args[i].name;
        int want = sched_args[i].schedule;
        bool applies = o->schedule != LRS_CONSTANT && (want < 0 || want == (int)o->schedule);
        if (arg_given(a, arg) && !applies)
            diag_error(arg_loc(a, arg, call->loc), "%s: '%s' needs lr_schedule=%s", call->name,
                       arg, want < 0 ? "cosine or exponential" : names[want]);
        else if (!arg_given(a, arg) && applies && sched_args[i].required)
            diag_error(sloc, "%s: lr_schedule=%s needs '%s'", call->name, s, arg);
    }
    o->decay_steps = arg_num(a, "decay_steps");
    o->alpha = arg_num(a, "alpha");
    o->decay_rate = arg_num(a, "decay_rate");
    o->staircase = arg_bool(a, "staircase");
    o->warmup = (long)arg_num(a, "warmup");
    o->clipnorm = arg_num(a, "global_clipnorm");
}

const char *const *optimizer_names(void)
{
    static const char *names[NOPTIMIZERS + 1];
    return row_names(names, optimizers, NOPTIMIZERS, sizeof optimizers[0]);
}

/* Keras' clipnorm clips each gradient on its own: not ours. */
static bool refuse_clipnorm(const OptInfo *oi, const Expr *call)
{
    for (const Arg *g = call->args; g; g = g->next)
        if (g->key && !strcmp(g->key, "clipnorm")) {
            diag_error(g->key_loc, "%s: per-gradient 'clipnorm' is not supported; did you "
                       "mean 'global_clipnorm'?", oi->name);
            return false;
        }
    return true;
}

/* optimizer NAME(args): one of `optimizers`, plus common_params. Every
 * argument out of range is reported, in the spec's order. */
void lower_optimizer(Lower *L, const Stmt *s)
{
    const Expr *call = s->expr;
    Optimizer *o = &L->g->opt;
    Param spec[MAX_PARAMS] = {{0}};
    Args a;
    if (o->loc.src) {
        diag_error(s->loc, "a model has one optimizer");
        diag_note(o->loc, "the optimizer is given here");
        return;
    }
    o->loc = call->loc;
    int i = find_name(L, call, "optimizer", optimizer_names());
    if (i < 0 || !refuse_clipnorm(&optimizers[i], call))
        return;
    const OptInfo *oi = &optimizers[i];
    int n = sema_nparams(oi->params);
    memcpy(spec, oi->params, sizeof(Param) * (size_t)n);
    memcpy(spec + n, common_params, sizeof common_params);
    if (!sema_bind(oi->name, call->loc, spec, call->args, &a))
        return;
    o->kind = oi->kind;
    o->lr = opt_num(&a, "lr");
    o->momentum = opt_num(&a, "momentum");
    o->beta1 = opt_num(&a, "beta1");
    o->beta2 = opt_num(&a, "beta2");
    o->eps = opt_num(&a, "eps");
    o->weight_decay = opt_num(&a, "weight_decay");
    o->rho = opt_num(&a, "rho");
    o->init = opt_num(&a, "initial_accumulator_value");
    o->nesterov = opt_bool(&a, "nesterov");
    if (arg_exists(a.spec, "decay")) {     /* which parameters weight_decay applies to */
        static const char *const groups[] = {"all", "matrices", NULL};
        const char *d = arg_name(&a, "decay");
        o->decay_matrices = !strcmp(d, "matrices");
        if (!o->decay_matrices && strcmp(d, "all"))
            sema_unknown(arg_loc(&a, "decay", call->loc), "decay group", d, groups,
                         name_list(L->arena, groups, " or "));
    }
    o->centered = opt_bool(&a, "centered");
    sema_check_ranges(call->name, &a, 0, n, true);
    if (o->nesterov && !(o->momentum > 0))
        diag_error(arg_loc(&a, "nesterov", call->loc), "sgd: nesterov needs a momentum");
    lower_schedule(o, &a, call, L->arena);
    sema_check_ranges(call->name, &a, n, NCOMMON, true);
}
