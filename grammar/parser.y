/*
 * parser.y - the grammar of the nnc language; builds the AST, nothing else.
 *
 *   file  := model*
 *   model := 'model' NAME '{' stmt* '}'
 *   stmt  := 'input' NAME '[' NUMBER (',' NUMBER)* ']'
 *          | NAME '=' expr              functional form: named value
 *          | call | NAME                sequential form: a layer applied
 *                                       to the previous statement's value
 *          | 'loss' NAME | 'loss' call
 *          | 'optimizer' NAME | 'optimizer' call
 *          | 'batch' NUMBER
 *          (';' between statements is optional)
 *   expr  := call | NAME | NUMBER | '-' NUMBER
 *   call  := NAME '(' [arg (',' arg)* [',']] ')'
 *   arg   := expr | NAME '=' expr
 *
 * Statements need no separator: every statement ends in a token that no
 * statement starts with, except a bare NAME, which LALR(1) resolves by
 * the next token. Pure parser with locations; syntax errors go through
 * diag_error with bison's "unexpected X, expecting Y" wording and LAC so
 * that the expected tokens are exact.
 */
%define api.pure full
%define parse.error detailed
%define parse.lac full
%locations
%param {yyscan_t scanner}
%parse-param {struct ParseCtx *pc}

%code requires {
#include "nnc.h"
#include "parse_ctx.h"
typedef void *yyscan_t;
}

%code provides {
int yylex(YYSTYPE *yylval, YYLTYPE *yylloc, yyscan_t scanner);
}

%code {
#include <stdlib.h>
#include <string.h>

static void yyerror(YYLTYPE *l, yyscan_t scanner, struct ParseCtx *pc,
                    const char *msg);
#define L(l) parse_loc(pc, &(l))
}

%union {
    char *str;
    struct { double v; bool is_int; } num;
    Expr *expr;
    Arg *arg;
    Stmt *stmt;
    Model *model;
}

%token MODEL "'model'" INPUT "'input'" LOSS "'loss'"
%token OPTIMIZER "'optimizer'" BATCH "'batch'"
%token <str> IDENT "name"
%token <num> NUMBER "number"

%type <model> model
%type <stmt> stmts stmt
%type <expr> expr call number
%type <arg> args arglist arg dims

%%

file:
    %empty
  | file model          { pc->models = pc->models ? pc->models : $2;
                          if (pc->models != $2) {
                              Model *m = pc->models;
                              while (m->next) m = m->next;
                              m->next = $2;
                          } }
  ;

model:
    MODEL IDENT '{' stmts '}'
        { $$ = arena_alloc(pc->arena, sizeof(Model));
          $$->name = $2; $$->loc = L(@2); $$->stmts = $4; }
  ;

stmts:
    %empty              { $$ = NULL; }
  | stmts stmt          { $$ = ast_stmt_append($1, $2); }
  | stmts ';'           { $$ = $1; }
  ;

stmt:
    INPUT IDENT '[' dims ']'
        { $$ = ast_stmt(pc->arena, ST_INPUT, L(@1));
          $$->name = $2; $$->name_loc = L(@2); $$->dims = $4; }
  | IDENT '=' expr
        { $$ = ast_stmt(pc->arena, ST_ASSIGN, L(@1));
          $$->name = $1; $$->name_loc = L(@1); $$->expr = $3; }
  | call
        { $$ = ast_stmt(pc->arena, ST_LAYER, $1->loc); $$->expr = $1; }
  | IDENT
        { $$ = ast_stmt(pc->arena, ST_LAYER, L(@1));
          $$->expr = ast_call(pc->arena, L(@1), $1, NULL); }
  | LOSS IDENT
        { $$ = ast_stmt(pc->arena, ST_LOSS, L(@1));
          $$->expr = ast_call(pc->arena, L(@2), $2, NULL); }
  | LOSS call
        { $$ = ast_stmt(pc->arena, ST_LOSS, L(@1)); $$->expr = $2; }
  | OPTIMIZER IDENT
        { $$ = ast_stmt(pc->arena, ST_OPTIMIZER, L(@1));
          $$->expr = ast_call(pc->arena, L(@2), $2, NULL); }
  | OPTIMIZER call
        { $$ = ast_stmt(pc->arena, ST_OPTIMIZER, L(@1)); $$->expr = $2; }
  | BATCH number
        { $$ = ast_stmt(pc->arena, ST_BATCH, L(@1)); $$->expr = $2; }
  ;

dims:
    number              { $$ = ast_arg(pc->arena, NULL, $1->loc, $1); }
  | dims ',' number     { $$ = ast_arg_append($1, ast_arg(pc->arena, NULL, $3->loc, $3)); }
  ;

expr:
    call
  | IDENT               { $$ = ast_name(pc->arena, L(@1), $1); }
  | number
  ;

number:
    NUMBER              { $$ = ast_num(pc->arena, L(@1), $1.v, $1.is_int); }
  | '-' NUMBER          { Loc l = L(@1); l.len = @2.last_column - @1.first_column;
                          $$ = ast_num(pc->arena, l, -$2.v, $2.is_int); }
  ;

call:
    IDENT '(' args ')'
        { Loc l = L(@1); $$ = ast_call(pc->arena, l, $1, $3); }
  ;

args:
    %empty              { $$ = NULL; }
  | arglist
  | arglist ','
  ;

arglist:
    arg
  | arglist ',' arg     { $$ = ast_arg_append($1, $3); }
  ;

arg:
    expr                { $$ = ast_arg(pc->arena, NULL, $1->loc, $1); }
  | IDENT '=' expr      { $$ = ast_arg(pc->arena, $1, L(@1), $3); }
  ;

%%

Loc parse_loc(const struct ParseCtx *pc, const YYLTYPE *l)
{
    Loc loc = {pc->src, l->first_line, l->first_column, 1};
    if (l->last_line == l->first_line && l->last_column > l->first_column)
        loc.len = l->last_column - l->first_column;
    return loc;
}

static void yyerror(YYLTYPE *l, yyscan_t scanner, struct ParseCtx *pc,
                    const char *msg)
{
    (void)scanner;
    diag_error(parse_loc(pc, l), "%s", msg);
}

/* Flex's reentrant interface, declared here to avoid including its
 * generated header. */
int yylex_init_extra(struct ParseCtx *extra, yyscan_t *scanner);
int yylex_destroy(yyscan_t scanner);
struct yy_buffer_state *yy_scan_bytes(const char *bytes, int len,
                                      yyscan_t scanner);

Model *parse_file(Arena *a, const SrcFile *src)
{
    struct ParseCtx pc = {a, src, NULL, 1, 1};
    yyscan_t scanner;
    if (src->len > 0x7fffffff) {
        Loc loc = {src, 0, 0, 1};
        diag_error(loc, "file too large");
        return NULL;
    }
    if (yylex_init_extra(&pc, &scanner) != 0) {
        fprintf(stderr, "nnc: out of memory\n");
        exit(1);
    }
    yy_scan_bytes(src->text, (int)src->len, scanner);
    int rc = yyparse(scanner, &pc);
    yylex_destroy(scanner);
    return rc == 0 ? pc.models : NULL;
}
