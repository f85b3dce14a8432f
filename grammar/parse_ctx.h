/*
 * parse_ctx.h - state shared by the lexer and the parser of one file.
 */
#ifndef NNC_PARSE_CTX_H
#define NNC_PARSE_CTX_H

#include "nnc.h"

#define PARSE_MAX_DEPTH 64

struct ParseCtx {
    Arena *arena;
    const SrcFile *src;
    Model *models;
    Model *models_tail;     /* the last of models (O(1) appends) */
    int line, col;      /* the lexer's position */
    int last[4];        /* location of the last token returned */
    int prev_line;      /* line of the token before it */
    int skip_line;      /* after a syntax error: skip this line's tokens */
    int bad_line;       /* the line of the last lexical error */
    int depth;          /* brackets open (the lexer's count) */
    Loc comment;        /* where the open comment starts */
    int comment_len;    /* bytes of the open comment so far */
    struct OpenBracket {
        char c;         /* '(', '[' or '{' */
        Loc loc;
    } open[PARSE_MAX_DEPTH];  /* the innermost PARSE_MAX_DEPTH of them */
};

/* Forward declaration for parser.h, which the lexer includes. */
struct YYLTYPE;
Loc parse_loc(const struct ParseCtx *pc, const struct YYLTYPE *l);

#endif
