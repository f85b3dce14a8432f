/*
 * ops.h - declarations of every op rule named in ops.def, and helpers the
 * rule files share. Included by src/ops/ *.c only.
 */
#ifndef NNC_OPS_H
#define NNC_OPS_H

#include <string.h>

#include "../nnc.h"
#include "../codegen/emit.h"

/* Every rule named in ops.def is declared from the table itself: a rule
 * shared by several rows (shape_ewise) is declared once per row, which C
 * allows, and a 0 in the grad or eval column declares nothing (OPS_IS_0
 * tells a literal 0 from a name: only OPS_PROBE_ ## 0 is a macro). */
#define OPS_CAT(a, b) OPS_CAT_(a, b)
#define OPS_CAT_(a, b) a##b
#define OPS_SECOND(...) OPS_SECOND_(__VA_ARGS__)
#define OPS_SECOND_(a, b, ...) b
#define OPS_PROBE_0 ~, 1
#define OPS_IS_0(x) OPS_SECOND(OPS_CAT_(OPS_PROBE_, x), 0, 0)
#define OPS_UNLESS_0(x, ...) OPS_CAT(OPS_WHEN_, OPS_IS_0(x))(__VA_ARGS__)
#define OPS_WHEN_0(...) __VA_ARGS__
#define OPS_WHEN_1(...)

#define OP(name, arity, kind, flags, shape, grad, emit, eval) \
    bool shape(Graph *g, Node *n); \
    OPS_UNLESS_0(grad, void grad(Graph *g, NodeId y, NodeId dy, NodeId *dx);) \
    void emit(Emit *e, const Graph *g, const Node *n, const char *const *a); \
    OPS_UNLESS_0(eval, void eval(const Graph *g, const Node *n, const double *const *in, \
                             double *out);)
#include "../ops.def"
#undef OP

/* Copies the attribute block of `from` to `to` (gradient ops of F_ATTR
 * ops take their forward op's slope or delta); returns `to`. */
static inline NodeId with_attrs(Graph *g, NodeId to, NodeId from)
{
    if (to != NODE_NONE)
        memcpy(NODE(g, to)->fattr, NODE(g, from)->fattr, sizeof NODE(g, to)->fattr);
    return to;
}

/* Index into input `in` (shape is) of the element at flat index `i` of an
 * output of shape os that `in` is broadcast to (numpy rules). */
size_t bcast_index(const Shape *os, const Shape *is, size_t i);

/* update.c: one optimizer step of update node n in double, at step t (from
 * 1) with learning rate lr: p and the iattr[0] state buffers s[] of len
 * elements in place (the reference the updates' eval rules and the op
 * test use). */
void update_step(const Node *n, size_t len, double *p, const double *g, double *const *s,
                 double t, double lr);

/* nn.c: node n's row count (all axes but the last) and element count as
 * size_t expressions of emitted C, for the arguments of runtime kernels. */
const char *op_rows(const Node *n);
const char *op_numel(const Node *n);
/* The product of n's first `upto` axes, likewise ("(size_t)nb * 4"). */
const char *op_count(const Node *n, int upto);

#endif
