/*
 * ast.c - constructors for the syntax tree, and a dump for debugging.
 *
 * The parser builds the tree once, in an arena, and nothing rewrites it:
 * lowering reads it and produces the graph IR. Lists (arguments,
 * statements, models) are singly linked in source order.
 */
#include "nnc.h"

static Expr *expr(Arena *a, ExprKind kind, Loc loc)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    return e;
}

Expr *ast_num(Arena *a, Loc loc, double v, bool is_int)
{
    Expr *e = expr(a, EX_NUM, loc);
    e->num = v;
    e->is_int = is_int;
    return e;
}

Expr *ast_name(Arena *a, Loc loc, const char *name)
{
    Expr *e = expr(a, EX_NAME, loc);
    e->name = name;
    return e;
}

Expr *ast_call(Arena *a, Loc loc, const char *name, Arg *args)
{
    Expr *e = expr(a, EX_CALL, loc);
    e->name = name;
    e->args = args;
    return e;
}

Expr *ast_list(Arena *a, Loc loc, Arg *items)
{
    Expr *e = expr(a, EX_LIST, loc);
    e->args = items;
    return e;
}

Arg *ast_arg(Arena *a, const char *key, Loc key_loc, Expr *val)
{
    Arg *g = arena_alloc(a, sizeof *g);
    g->key = key;
    g->key_loc = key_loc;
    g->val = val;
    return g;
}

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc)
{
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    return s;
}

/* Lists under construction are circular and held by their last element
 * (whose next is the first), so appending is O(1) however long the list
 * (a fuzzed line of 200,000 statements took minutes with a walk to the
 * end); *_list_end cuts the circle and returns the first element. The
 * same two functions for each list type: */
#define AST_LIST(T, prefix)                      \
    T *prefix##_append(T *list, T *x)            \
    {                                            \
        if (!x)                                  \
            return list;                         \
        x->next = list ? list->next : x;         \
        if (list)                                \
            list->next = x;                      \
        return x;                                \
    }                                            \
                                                 \
    T *prefix##_list_end(T *list)                \
    {                                            \
        if (!list)                               \
            return NULL;                         \
        T *first = list->next;                   \
        list->next = NULL;                       \
        return first;                            \
    }

AST_LIST(Arg, ast_arg)
AST_LIST(Stmt, ast_stmt)

static void dump_expr(FILE *f, const Expr *e)
{
    switch (e->kind) {
    case EX_LIST:
        fprintf(f, "[");
        for (const Arg *a = e->args; a; a = a->next)
            fprintf(f, "%.17g%s", a->val->num, a->next ? ", " : "");
        fprintf(f, "]");
        break;
    case EX_NUM:
        fprintf(f, "%.17g", e->num);
        break;
    case EX_NAME:
        fprintf(f, "%s", e->name);
        break;
    case EX_CALL:
        fprintf(f, "%s(", e->name);
        for (const Arg *a = e->args; a; a = a->next) {
            if (a->key)
                fprintf(f, "%s=", a->key);
            dump_expr(f, a->val);
            if (a->next)
                fprintf(f, ", ");
        }
        fprintf(f, ")");
        break;
    }
}

void ast_dump(FILE *f, const Model *m)
{
    static const char *kinds[] = {"input", "assign", "layer", "loss",
                                  "optimizer", "batch", "error",
                                  "freeze"};
    for (; m; m = m->next) {
        fprintf(f, "model %s\n", m->name);
        for (const Stmt *s = m->stmts; s; s = s->next) {
            fprintf(f, "  %d:%d %s", s->loc.line, s->loc.col, kinds[s->kind]);
            if (s->name)
                fprintf(f, " %s", s->name);
            for (const Arg *a = s->dims; a; a = a->next)
                fprintf(f, " [%g]", a->val->num);
            if (s->expr) {
                fprintf(f, " ");
                dump_expr(f, s->expr);
            }
            fprintf(f, "\n");
        }
    }
}
