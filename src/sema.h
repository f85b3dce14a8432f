/*
 * sema.h - the layer table and its argument specs (lower_layers.c), and
 * the argument checking that reads them (sema.c). Shared by the lowering
 * files (lower.c, lower_layers.c, lower_train.c) and import-keras.
 *
 * Every layer, activation, loss and optimizer argument is described once,
 * by a Param: its name, type, default, Keras' spelling and allowed range.
 * sema.c binds a call's arguments to such a spec, checks their types and
 * ranges and reports what is wrong; the lowerers then read the arguments
 * by name (arg_num(a, "units")). Lists in messages ("expected relu,
 * sigmoid, ...") and did-you-mean suggestions are made from the tables.
 */
#ifndef NNC_SEMA_H
#define NNC_SEMA_H

#include <math.h>

#include "nnc.h"

#define MAX_PARAMS 16

typedef enum {
    A_INT,      /* an integer */
    A_NUM,      /* a number */
    A_NAME,     /* a name (padding=same) */
    A_BOOL,     /* true or false */
    A_ACT,      /* the name of an activation (a layer table row) */
    A_INTS,     /* a list of integers, [2, -1] (arg_ints reads it) */
} ArgType;

/* The values an argument may take, checked when it is given (defaults
 * are in range by construction): lo <= v <= hi, finite, with open ends
 * excluded. `what` says it in words ("positive"); NULL with is_between:
 * "between LO and HI". is_got appends ", got V" to the message. */
typedef struct Range {
    double lo, hi;
    bool is_lo_open, is_hi_open;
    bool is_between;
    bool is_got;
    const char *what;   /* NULL and !is_between: no check */
} Range;

#define R_POSITIVE      {.lo = 0, .hi = INFINITY, .is_lo_open = true, .what = "positive"}
#define R_POSITIVE_GOT  {.lo = 0, .hi = INFINITY, .is_lo_open = true, .what = "positive", \
                         .is_got = true}
#define R_NONNEG        {.lo = 0, .hi = INFINITY, .what = "non-negative"}
#define R_UNIT          {.lo = 0, .hi = 1, .is_hi_open = true, .what = "in [0, 1)"}
#define R_UNIT_GOT      {.lo = 0, .hi = 1, .is_hi_open = true, .what = "in [0, 1)", \
                         .is_got = true}
#define R_BETWEEN(a, b) {.lo = (a), .hi = (b), .is_between = true, .is_got = true}

typedef struct Param {
    const char *name;
    ArgType type;
    bool required;
    double def;             /* A_INT, A_NUM, A_BOOL (0 or 1) default */
    const char *def_name;   /* A_NAME, A_ACT default */
    const char *alias;      /* Keras' spelling, also accepted */
    Range range;
    bool keyword_only;      /* never bound by position (arguments added
                               after others, so that positions keep their
                               meaning: dense's tied=, adamw's decay=) */
} Param;

/* A call's arguments bound to a spec (sema_bind). */
typedef struct Args {
    const Param *spec;
    const Expr *val[MAX_PARAMS];   /* NULL: not given */
} Args;

struct Lower;
struct LayerInfo;
typedef NodeId (*LowerFn)(struct Lower *L, const struct LayerInfo *ly, const Expr *call,
                          NodeId *in, int nin, const Args *a);

/* A row of the layer table. Activations are layers with is_activation
 * set: `op` is their op (OP_INPUT: none, linear), and the same name works
 * as `activation=NAME` of dense and conv2d, where their first number
 * argument (leaky_relu's slope, elu's alpha) keeps its default. */
typedef struct LayerInfo {
    const char *name;
    int min_in, max_in;     /* tensor inputs */
    LowerFn lower;
    bool is_activation;
    Op op;                  /* activations: the op */
    Op approx_op;           /* with approximate=true (gelu's tanh form) */
    const char *keras;      /* activations: Keras' other name ("swish") */
    const char *keras_args; /* activations: the arguments that give Keras'
                             * activation function when its defaults differ
                             * from the layer's ("negative_slope=0.2") */
    Param params[MAX_PARAMS];
} LayerInfo;

extern const LayerInfo layer_table[];
extern const int nlayer_table;

/* ---- sema.c -------------------------------------------------------------- */

/* The row of the layer table called `name`, or NULL. */
const LayerInfo *layer_find(const char *name);
/* The activation called `name` (nnc's or, with keras, Keras' name), or NULL. */
const LayerInfo *activation_find(const char *name, bool keras);
/* Every layer's name, NULL-terminated (for did-you-mean). */
const char *const *layer_names(void);
/* "a, b, ... or z" (last_sep " or ") from names[] (NULL-terminated). */
const char *name_list(Arena *a, const char *const *names, const char *last_sep);
/* "relu, sigmoid, ... or linear" (last_sep " or ") or "relu, ..., linear"
 * (last_sep ", "): the activations in table order. */
const char *activation_list(Arena *a, const char *last_sep);

int sema_nparams(const Param *spec);
/* Binds `args` (the non-tensor arguments of a call of `callee`) to spec,
 * checking names and types; reports and returns false
 * on an error. */
bool sema_bind(const char *callee, Loc callee_loc, const Param *spec, const Arg *args,
               Args *out);
/* Checks the activation names among the bound arguments (A_ACT). */
bool sema_check_activations(const Args *a);
/* Checks the ranges of the given arguments spec[first .. first+n-1]:
 * reports the first out of range in the spec's order, or with is_all
 * every one, in source order. */
bool sema_check_ranges(const char *callee, const Args *a, int first, int n, bool is_all);
/* "unknown KIND 'NAME'; did you mean 'X'?" or, with no suggestion,
 * "unknown KIND 'NAME'" followed by " (expected LIST)" if list. */
void sema_unknown(Loc loc, const char *kind, const char *name, const char *const *cands,
                  const char *list);

/* Arguments by name (the name must be in the spec: an internal error
 * otherwise); the default when not given. */
bool arg_given(const Args *a, const char *name);
double arg_num(const Args *a, const char *name);
const char *arg_name(const Args *a, const char *name);
bool arg_bool(const Args *a, const char *name);
/* A list argument (A_INTS): its integers into out[0 .. max-1]; returns
 * how many it has (0 when not given; more than max: only max stored). */
int arg_ints(const Args *a, const char *name, int *out, int max);
/* The argument's location, or `fallback` when it was not given. */
Loc arg_loc(const Args *a, const char *name, Loc fallback);
/* Whether the spec has an argument `name`. */
bool arg_exists(const Param *spec, const char *name);

/* ---- lower_train.c ------------------------------------------------------- */

/* The losses' and optimizers' names, NULL-terminated, in table order. */
const char *const *loss_names(void);
const char *const *optimizer_names(void);

#endif
