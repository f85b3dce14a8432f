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
 *          | 'freeze' NAME              NAME and what it depends on: frozen
 *          (';' between statements is optional)
 *   expr  := call | NAME | NUMBER | '-' NUMBER
 *          | '[' number (',' number)* ']'   a list (shape=[4, -1])
 *   call  := NAME '(' [arg (',' arg)* [',']] ')'
 *   arg   := expr | NAME '=' expr
 *
 * Statements need no separator: every statement ends in a token that no
 * statement starts with, except a bare NAME, which LALR(1) resolves by
 * the next token. Pure parser with locations; syntax errors go through
 * diag_error in bison's "unexpected X, expecting Y" wording, with LAC so
 * that the expected tokens are exact (report_syntax_error below).
 *
 * Error recovery: a statement with a syntax error becomes an ST_ERROR
 * statement (keeping the name it assigns or declares, if the error came
 * after it) and parsing goes on with the next statement, from the next
 * line if the error was in the middle of one; outside models, tokens are
 * skipped up to the next 'model'; a model left open is closed by the
 * lexer at the next 'model' or the end of the file. So every independent
 * syntax error of a file is reported, one per line, and lowering still
 * checks the rest (the model is marked `broken`, which silences the
 * checks that an unparsed statement could falsify, such as "no loss").
 */
%define api.pure full
%define parse.error custom
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
/* In an error statement: drops the lookahead if it is on the line being
 * skipped (the lexer skips the rest). */
#define SKIP_LINE()                                                     \
    do {                                                                \
        if (yychar != YYEMPTY && yychar != '}' && pc->skip_line &&      \
            yylloc.first_line == pc->skip_line)                         \
            yyclearin;                                                  \
    } while (0)
}

%union {
    char *str;
    struct { double v; bool is_int; } num;
    Expr *expr;
    Arg *arg;
    Stmt *stmt;
    Model *model;
    int ival;
}

%token MODEL "'model'" INPUT "'input'" LOSS "'loss'"
%token OPTIMIZER "'optimizer'" BATCH "'batch'" FREEZE "'freeze'"
%token <str> IDENT "name"
%token <num> NUMBER "number"

%type <model> model
%type <ival> model_start
%type <stmt> stmts stmt
%type <expr> expr call number
%type <arg> args arglist arg dims

%%

file:
    %empty
  | file model          { if (pc->models_tail) pc->models_tail->next = $2;
                          else pc->models = $2;
                          pc->models_tail = $2; }
  | file error          /* skips to the next 'model' */
  ;

model:
    MODEL IDENT '{' model_start stmts '}'
        { $$ = arena_alloc(pc->arena, sizeof(Model));
          $$->name = $2; $$->loc = L(@2); $$->stmts = ast_stmt_list_end($5);
          $$->broken = diag_errors != $4; }
  ;

model_start:
    %empty              { $$ = diag_errors; }
  ;

stmts:
    %empty              { $$ = NULL; }
  | stmts stmt          { $$ = ast_stmt_append($1, $2); }
  | stmts ';'           { $$ = $1; }
  ;

stmt:
    INPUT IDENT '[' dims ']'
        { $$ = ast_stmt(pc->arena, ST_INPUT, L(@1));
          $$->name = $2; $$->name_loc = L(@2); $$->dims = ast_arg_list_end($4); }
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
  | FREEZE IDENT
        { $$ = ast_stmt(pc->arena, ST_FREEZE, L(@1));
          $$->expr = ast_name(pc->arena, L(@2), $2); }
  | INPUT IDENT error
        { $$ = ast_stmt(pc->arena, ST_ERROR, L(@1));
          $$->name = $2; $$->name_loc = L(@2); $$->error_input = true; SKIP_LINE(); }
  | IDENT '=' error
        { $$ = ast_stmt(pc->arena, ST_ERROR, L(@1));
          $$->name = $1; $$->name_loc = L(@1); SKIP_LINE(); }
  | error
        { $$ = ast_stmt(pc->arena, ST_ERROR, L(@1)); SKIP_LINE(); }
  ;

dims:
    number              { $$ = ast_arg_append(NULL, ast_arg(pc->arena, NULL, $1->loc, $1)); }
  | dims ',' number     { $$ = ast_arg_append($1, ast_arg(pc->arena, NULL, $3->loc, $3)); }
  ;

expr:
    call
  | IDENT               { $$ = ast_name(pc->arena, L(@1), $1); }
  | number
  | '[' dims ']'        { Loc l = L(@1); if (@3.last_line == @1.first_line)
                              l.len = @3.last_column - @1.first_column;
                          $$ = ast_list(pc->arena, l, ast_arg_list_end($2)); }
  ;

number:
    NUMBER              { $$ = ast_num(pc->arena, L(@1), $1.v, $1.is_int); }
  | '-' NUMBER          { Loc l = L(@1); l.len = @2.last_column - @1.first_column;
                          $$ = ast_num(pc->arena, l, -$2.v, $2.is_int); }
  ;

call:
    IDENT '(' args ')'
        { Loc l = L(@1); $$ = ast_call(pc->arena, l, $1, ast_arg_list_end($3)); }
  ;

args:
    %empty              { $$ = NULL; }
  | arglist
  | arglist ','
  ;

arglist:
    arg                 { $$ = ast_arg_append(NULL, $1); }
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

/* How a token is named in messages: keywords and punctuation as bison
 * names them ('loss', ')'), names and numbers with their text. */
static void describe_token(Buf *b, const struct ParseCtx *pc, yysymbol_kind_t t,
                           const YYLTYPE *l)
{
    if ((t == YYSYMBOL_IDENT || t == YYSYMBOL_NUMBER) && l->first_line == l->last_line &&
        l->last_column > l->first_column && l->last_column - l->first_column <= 40) {
        const char *p = pc->src->text;
        for (int line = 1; line < l->first_line && *p; p++)
            if (*p == '\n')
                line++;
        buf_printf(b, "%s '%.*s'", yysymbol_name(t), l->last_column - l->first_column,
                   p + l->first_column - 1);
    } else {
        buf_puts(b, yysymbol_name(t));
    }
}

static bool has(const yysymbol_kind_t *set, int n, yysymbol_kind_t t)
{
    for (int i = 0; i < n; i++)
        if (set[i] == t)
            return true;
    return false;
}

/* "syntax error, unexpected X, expecting A, B or C": the tokens that can
 * start a statement are named together ("a statement"), ';' (optional
 * everywhere) and the end of file (after a model) are left out, and more
 * than four choices are not listed. A note shows the bracket that the
 * expected closing one would match, when that is the likely fix (or the
 * file ended inside it). */
static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner,
                                 struct ParseCtx *pc)
{
    (void)scanner;
    yysymbol_kind_t exp[YYNTOKENS], shown[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS), ns = 0;
    yysymbol_kind_t tok = yypcontext_token(ctx);
    const YYLTYPE *l = yypcontext_location(ctx);
    static const yysymbol_kind_t starts[] = {YYSYMBOL_INPUT, YYSYMBOL_IDENT, YYSYMBOL_LOSS,
                                             YYSYMBOL_OPTIMIZER, YYSYMBOL_BATCH,
                                             YYSYMBOL_FREEZE};
    bool stmt = n > 0;
    for (int i = 0; i < 6; i++)
        stmt = stmt && has(exp, n, starts[i]);
    for (int i = 0; i < n; i++) {
        bool start = false;
        for (int k = 0; k < 6; k++)
            start = start || exp[i] == starts[k];
        if (stmt && start)
            continue;
        if (exp[i] == YYSYMBOL_13_ || (exp[i] == YYSYMBOL_YYEOF && has(exp, n, YYSYMBOL_MODEL)))
            continue;
        shown[ns++] = exp[i];
    }
    /* an error in the middle of a line (or at a token that cannot start
     * a statement): recovery skips the rest of the line */
    bool can_start = tok == YYSYMBOL_IDENT || tok == YYSYMBOL_INPUT || tok == YYSYMBOL_LOSS ||
                  tok == YYSYMBOL_OPTIMIZER || tok == YYSYMBOL_BATCH ||
                  tok == YYSYMBOL_FREEZE || tok == YYSYMBOL_MODEL || tok == YYSYMBOL_12_;
    if (tok != YYSYMBOL_YYEOF && (l->first_line == pc->prev_line || !can_start))
        pc->skip_line = l->first_line;
    /* one error per line: this one may come from a bad character there */
    if (l->first_line == pc->bad_line)
        return 0;
    Buf b = {0};
    buf_puts(&b, "syntax error, unexpected ");
    describe_token(&b, pc, tok, l);
    int total = ns + stmt;
    if (total > 0 && total <= 4) {
        buf_puts(&b, ", expecting ");
        int k = 0;
        if (stmt) {
            buf_puts(&b, "a statement");
            k++;
        }
        for (int i = 0; i < ns; i++, k++)
            buf_printf(&b, "%s%s", k == 0 ? "" : k == total - 1 ? " or " : ", ",
                       yysymbol_name(shown[i]));
    }
    diag_error(parse_loc(pc, l), "%s", b.data);
    buf_free(&b);
    /* the innermost open bracket, if its closer is what is missing */
    if (pc->depth > 0 && pc->depth <= PARSE_MAX_DEPTH) {
        const struct OpenBracket *o = &pc->open[pc->depth - 1];
        yysymbol_kind_t closer = o->c == '(' ? YYSYMBOL_20_
                                 : o->c == '[' ? YYSYMBOL_15_ : YYSYMBOL_12_;
        if (tok == YYSYMBOL_YYEOF || (!stmt && total <= 4 && has(exp, n, closer)))
            diag_note(o->loc, "to match this '%c'", o->c);
    }
    return 0;
}

/* Flex's reentrant interface, declared here to avoid including its
 * generated header. */
int yylex_init_extra(struct ParseCtx *extra, yyscan_t *scanner);
int yylex_destroy(yyscan_t scanner);
struct yy_buffer_state *yy_scan_bytes(const char *bytes, int len,
                                      yyscan_t scanner);

Model *parse_file(Arena *a, const SrcFile *src)
{
    struct ParseCtx pc = {.arena = a, .src = src, .line = 1, .col = 1};
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
    yyparse(scanner, &pc);
    yylex_destroy(scanner);
    return pc.models;
}
