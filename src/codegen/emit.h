/*
 * emit.h - the C-writing primitives shared by the op rules (src/ops/,
 * through ops.h) and the emitter (src/codegen/): a Buf with an indent,
 * lines, dimensions, element counts, float literals and identifiers.
 *
 * The strings these return live in a ring of 32 static buffers of 160
 * bytes (emit.c), so a rule may use several in one printf without
 * freeing anything; a result is valid until 32 more have been made.
 * This module knows no op, kernel or plan: everything above it may use
 * it, and it uses nothing above it.
 */
#ifndef NNC_EMIT_H
#define NNC_EMIT_H

#include "../nnc.h"

/* Where emit rules write: lines go to `out` at `indent` levels. */
struct Emit {
    Buf *out;
    const Graph *g;
    int indent;
    bool predict;   /* emitting the predict program (dropout is identity) */
    const char *sum;    /* in an F_SUMRIDER op's kernel: the buffer of the
                           per-channel sum riding on it (fuse.c), else NULL;
                           in an F_PARAMRIDER op's, beta's gradient */
    const char *side;   /* in an F_PARAMRIDER op's kernel: the buffer of the
                           gamma gradient riding on it, else NULL */
};

/* One line of C at the current indent (a newline is added). */
void emit_line(Emit *e, const char *fmt, ...) NNC_PRINTF(2, 3);
/* The C expression of dimension d of node n ("nb" for the batch dim). */
const char *emit_dim(const Node *n, int d);
/* Names the batch dim's expression in emit_dim and emit_numel from now on
 * ("cn" in a loop over chunks of images); returns the previous name. */
const char *emit_batch_as(const char *name);
/* The C expression of the element count of node n. */
const char *emit_numel(const Node *n);
/* A float literal that round-trips ("0.001f"). */
const char *emit_float(double v);

/* A formatted string in the ring of buffers (at most 159 characters). */
const char *emit_str(const char *fmt, ...) NNC_PRINTF(1, 2);
/* A C identifier from a parameter name: "dense_0.weight" -> "dense_0_weight"
 * (at most 100 characters). */
const char *emit_ident(const char *s);
/* s in upper case (symbol prefixes: "seed" -> "SEED"). */
const char *emit_upper(const char *s);
/* "file.nn:12:5" of a location, or "(generated)". */
const char *emit_loc(Loc l);

#endif /* NNC_EMIT_H */
