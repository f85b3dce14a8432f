/*
 * sema.c - argument checking against the tables: a call's arguments are
 * bound to a spec (Param[], sema.h) by position or by name (or Keras'
 * alias), their types and ranges are checked, and activation names are
 * resolved against the layer table (lower_layers.c). Lowering reads the
 * bound arguments by name.
 *
 * Messages name the callee first ("dense: units must be positive, got
 * 0") and point at the argument; unknown names get a did-you-mean from
 * the table, or the table's list when nothing is close. Nothing here
 * builds graph nodes.
 */
#include <limits.h>
#include <string.h>

#include "sema.h"

/* ---- the layer table ---------------------------------------------------- */

const LayerInfo *layer_find(const char *name)
{
    for (int i = 0; i < nlayer_table; i++)
        if (!strcmp(layer_table[i].name, name))
            return &layer_table[i];
    return NULL;
}

const LayerInfo *activation_find(const char *name, bool keras)
{
    for (int i = 0; i < nlayer_table; i++) {
        const LayerInfo *ly = &layer_table[i];
        if (ly->is_activation && (!strcmp(ly->name, name) ||
                                  (keras && ly->keras && !strcmp(ly->keras, name))))
            return ly;
    }
    return NULL;
}

#define MAX_LAYERS 64

/* The names of the rows (activations only, if is_act), NULL-terminated,
 * in `names` of MAX_LAYERS + 1 entries. */
static void table_names(const char **names, bool is_act)
{
    int n = 0;
    NNC_ASSERT(nlayer_table <= MAX_LAYERS);
    for (int i = 0; i < nlayer_table; i++)
        if (!is_act || layer_table[i].is_activation)
            names[n++] = layer_table[i].name;
    names[n] = NULL;
}

const char *const *layer_names(void)
{
    static const char *names[MAX_LAYERS + 1];
    table_names(names, false);
    return names;
}

const char *name_list(Arena *a, const char *const *names, const char *last_sep)
{
    const char *s = names[0];
    for (int i = 1; names[i]; i++)
        s = arena_printf(a, "%s%s%s", s, names[i + 1] ? ", " : last_sep, names[i]);
    return s;
}

const char *activation_list(Arena *a, const char *last_sep)
{
    const char *names[MAX_LAYERS + 1];
    table_names(names, true);
    return name_list(a, names, last_sep);
}

void sema_unknown(Loc loc, const char *kind, const char *name, const char *const *cands,
                  const char *list)
{
    const char *s = diag_suggest(name, cands);
    if (s)
        diag_error(loc, "unknown %s '%s'; did you mean '%s'?", kind, name, s);
    else if (list)
        diag_error(loc, "unknown %s '%s' (expected %s)", kind, name, list);
    else
        diag_error(loc, "unknown %s '%s'", kind, name);
}

/* ---- binding ------------------------------------------------------------- */

int sema_nparams(const Param *spec)
{
    int n = 0;
    while (n < MAX_PARAMS && spec[n].name)
        n++;
    return n;
}

static bool is_bool_name(const Expr *v)
{
    return v->kind == EX_NAME && (!strcmp(v->name, "true") || !strcmp(v->name, "false"));
}

/* An activation name must name an activation row of the layer table;
 * Keras' name for one (swish) suggests nnc's (silu). */
static bool check_activation(const Expr *v)
{
    if (activation_find(v->name, false))
        return true;
    const LayerInfo *keras = activation_find(v->name, true);
    if (keras) {    /* Keras' name for it */
        diag_error(v->loc, "unknown activation '%s'; did you mean '%s'?", v->name, keras->name);
        return false;
    }
    Arena scratch = {0};
    const char *names[MAX_LAYERS + 1];
    table_names(names, true);
    sema_unknown(v->loc, "activation", v->name, names, activation_list(&scratch, " or "));
    arena_free(&scratch);
    return false;
}

static bool check_type(const Param *p, const Expr *v, const char *callee)
{
    static const char *const must[] = {
        [A_INT] = "an integer", [A_NUM] = "a number", [A_NAME] = "a name",
        [A_BOOL] = "true or false", [A_ACT] = "a name",
        [A_INTS] = "a list of integers, as in [2, -1]",
    };
    bool ok = false;
    switch (p->type) {
    case A_INT: ok = v->kind == EX_NUM && v->is_int; break;
    case A_NUM: ok = v->kind == EX_NUM; break;
    case A_BOOL: ok = is_bool_name(v); break;
    case A_NAME: case A_ACT: ok = v->kind == EX_NAME; break;
    case A_INTS:
        ok = v->kind == EX_LIST;
        for (const Arg *x = v->args; ok && x; x = x->next)
            ok = x->val->is_int && fabs(x->val->num) < 1e9;
        break;
    }
    if (!ok)
        diag_error(v->loc, "%s: '%s' must be %s", callee, p->name, must[p->type]);
    return ok;
}

/* The index in spec of keyword `key` (its name or alias), or -1 after a
 * diagnostic. */
static int keyword_index(const char *callee, const Param *spec, int np, const Arg *a)
{
    for (int i = 0; i < np; i++)
        if (!strcmp(spec[i].name, a->key) || (spec[i].alias && !strcmp(spec[i].alias, a->key)))
            return i;
    const char *cands[MAX_PARAMS + 1] = {0};
    for (int i = 0; i < np; i++)
        cands[i] = spec[i].name;
    const char *s = diag_suggest(a->key, cands);
    if (s)
        diag_error(a->key_loc, "%s has no argument '%s'; did you mean '%s'?", callee, a->key, s);
    else if (np == 0)
        diag_error(a->key_loc, "%s takes no arguments", callee);
    else
        diag_error(a->key_loc, "%s has no argument '%s'", callee, a->key);
    return -1;
}

bool sema_bind(const char *callee, Loc callee_loc, const Param *spec, const Arg *args,
               Args *out)
{
    int np = sema_nparams(spec), pos = 0, npos = 0;
    bool ok = true, seen_kw = false;
    for (int i = 0; i < np; i++)
        npos += !spec[i].keyword_only;
    memset(out, 0, sizeof *out);
    out->spec = spec;
    for (const Arg *a = args; a; a = a->next) {
        int k = -1;
        if (a->key) {
            seen_kw = true;
            k = keyword_index(callee, spec, np, a);
        } else if (seen_kw) {
            diag_error(a->val->loc, "%s: positional argument after keyword argument", callee);
        } else {
            while (pos < np && spec[pos].keyword_only)
                pos++;
            if (pos >= np)
                diag_error(a->val->loc, "%s: too many arguments (takes at most %d)", callee,
                           npos);
            else
                k = pos++;
        }
        if (k >= 0 && out->val[k]) {
            diag_error(a->key ? a->key_loc : a->val->loc, "%s: argument '%s' given twice",
                       callee, spec[k].name);
            k = -1;
        }
        if (k < 0 || !check_type(&spec[k], a->val, callee)) {
            ok = false;
            continue;
        }
        out->val[k] = a->val;
    }
    for (int i = 0; i < np && ok; i++)
        if (spec[i].required && !out->val[i]) {
            diag_error(callee_loc, "%s: missing argument '%s'", callee, spec[i].name);
            ok = false;
        }
    return ok;
}

bool sema_check_activations(const Args *a)
{
    for (int i = 0; i < sema_nparams(a->spec); i++)
        if (a->spec[i].type == A_ACT && a->val[i] && !check_activation(a->val[i]))
            return false;
    return true;
}

/* ---- ranges -------------------------------------------------------------- */

static bool in_range(const Range *r, double v)
{
    if (!isfinite(v) || v < r->lo || v > r->hi)
        return false;
    return !(r->is_lo_open && v == r->lo) && !(r->is_hi_open && v == r->hi);
}

/* The value as the message shows it: an integer argument as %ld. */
static void report_range(const char *callee, const Param *p, const Expr *v)
{
    char got[64] = "", what[80];
    double x = v->num;
    if (p->range.is_got && p->type == A_INT) {
        long l = x >= (double)LONG_MAX ? LONG_MAX : x <= (double)LONG_MIN ? LONG_MIN : (long)x;
        snprintf(got, sizeof got, ", got %ld", l);
    } else if (p->range.is_got) {
        snprintf(got, sizeof got, ", got %g", x);
    }
    if (p->range.is_between)
        snprintf(what, sizeof what, "between %.0f and %.0f", p->range.lo, p->range.hi);
    else
        snprintf(what, sizeof what, "%s", p->range.what);
    diag_error(v->loc, "%s: %s must be %s%s", callee, p->name, what, got);
}

static bool loc_before(Loc a, Loc b)
{
    return a.line < b.line || (a.line == b.line && a.col < b.col);
}

bool sema_check_ranges(const char *callee, const Args *a, int first, int n, bool is_all)
{
    int bad[MAX_PARAMS], nbad = 0;
    for (int k = first; k < first + n; k++) {
        const Param *p = &a->spec[k];
        const Expr *v = a->val[k];
        if (v && (p->range.what || p->range.is_between) && !in_range(&p->range, v->num))
            bad[nbad++] = k;
    }
    if (nbad == 0)
        return true;
    if (!is_all)                /* the first in the spec's order */
        nbad = 1;
    for (int i = 1; i < nbad; i++)      /* by position in the source */
        for (int j = i; j > 0 && loc_before(a->val[bad[j]]->loc, a->val[bad[j - 1]]->loc); j--) {
            int t = bad[j];
            bad[j] = bad[j - 1];
            bad[j - 1] = t;
        }
    for (int i = 0; i < nbad; i++)
        report_range(callee, &a->spec[bad[i]], a->val[bad[i]]);
    return false;
}

/* ---- arguments by name --------------------------------------------------- */

static int index_of(const Param *spec, const char *name)
{
    for (int k = 0; k < MAX_PARAMS && spec[k].name; k++)
        if (!strcmp(spec[k].name, name))
            return k;
    return -1;
}

static int arg_index(const Args *a, const char *name)
{
    int k = index_of(a->spec, name);
    NNC_ASSERT(k >= 0);
    return k;
}

bool arg_exists(const Param *spec, const char *name)
{
    return index_of(spec, name) >= 0;
}

bool arg_given(const Args *a, const char *name)
{
    return a->val[arg_index(a, name)] != NULL;
}

double arg_num(const Args *a, const char *name)
{
    int k = arg_index(a, name);
    return a->val[k] ? a->val[k]->num : a->spec[k].def;
}

const char *arg_name(const Args *a, const char *name)
{
    int k = arg_index(a, name);
    return a->val[k] ? a->val[k]->name : a->spec[k].def_name;
}

bool arg_bool(const Args *a, const char *name)
{
    int k = arg_index(a, name);
    return a->val[k] ? !strcmp(a->val[k]->name, "true") : a->spec[k].def != 0;
}

int arg_ints(const Args *a, const char *name, int *out, int max)
{
    int k = arg_index(a, name), n = 0;
    NNC_ASSERT(a->spec[k].type == A_INTS);
    for (const Arg *x = a->val[k] ? a->val[k]->args : NULL; x; x = x->next, n++)
        if (n < max)
            out[n] = (int)x->val->num;
    return n;
}

Loc arg_loc(const Args *a, const char *name, Loc fallback)
{
    int k = arg_index(a, name);
    return a->val[k] ? a->val[k]->loc : fallback;
}
