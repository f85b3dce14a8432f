/*
 * parse_ctx.h - state shared by the lexer and the parser of one file.
 */
#ifndef NNC_PARSE_CTX_H
#define NNC_PARSE_CTX_H

#include "nnc.h"

struct ParseCtx {
    Arena *arena;
    const SrcFile *src;
    Model *models;
    int line, col;      /* the lexer's position */
    int last[4];        /* location of the last token returned */
};

/* Forward declaration for parser.h, which the lexer includes. */
struct YYLTYPE;
Loc parse_loc(const struct ParseCtx *pc, const struct YYLTYPE *l);

#endif
