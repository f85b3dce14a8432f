/*
 * ops.h - declarations of every op rule named in ops.def, and helpers the
 * rule files share. Included by src/ops/ *.c only.
 */
#ifndef NNC_OPS_H
#define NNC_OPS_H

#include <string.h>

#include "../nnc.h"
#include "../codegen/emit.h"

#define OP(name, arity, kind, flags, shape, grad, emit, eval)
#include "../ops.def"
#undef OP

bool shape_source(Graph *g, Node *n);
bool shape_ewise(Graph *g, Node *n);
bool shape_sum_to(Graph *g, Node *n);
bool shape_bcast_to(Graph *g, Node *n);
bool shape_matmul(Graph *g, Node *n);
bool shape_rowwise(Graph *g, Node *n);
bool shape_loss(Graph *g, Node *n);
bool shape_loss_back(Graph *g, Node *n);
bool shape_sparse_loss(Graph *g, Node *n);
bool shape_sparse_loss_back(Graph *g, Node *n);
bool shape_update(Graph *g, Node *n);
bool shape_im2col(Graph *g, Node *n);
bool shape_col2im(Graph *g, Node *n);
bool shape_pool(Graph *g, Node *n);
bool shape_pool_back(Graph *g, Node *n);
bool shape_reshape(Graph *g, Node *n);
bool shape_concat(Graph *g, Node *n);
bool shape_slice(Graph *g, Node *n);
bool shape_embed(Graph *g, Node *n);
bool shape_embed_back(Graph *g, Node *n);
bool shape_channel(Graph *g, Node *n);

#define DECL_EWISE(x) \
    void emit_##x(Emit *e, const Graph *g, const Node *n, const char *const *a); \
    void eval_##x(const Graph *g, const Node *n, const double *const *in, double *out);
#define DECL_OP(x) \
    void grad_##x(Graph *g, NodeId y, NodeId dy, NodeId *dx); \
    DECL_EWISE(x)

DECL_OP(add) DECL_OP(sub) DECL_OP(mul) DECL_OP(scale)
DECL_OP(relu) DECL_OP(sigmoid) DECL_OP(tanh)
DECL_EWISE(relu_back) DECL_EWISE(sigmoid_back) DECL_EWISE(tanh_back)
DECL_OP(leaky_relu) DECL_OP(elu) DECL_OP(gelu) DECL_OP(gelu_tanh)
DECL_EWISE(leaky_relu_back) DECL_EWISE(elu_back) DECL_EWISE(gelu_back)
DECL_EWISE(gelu_tanh_back)
DECL_OP(sum_to) DECL_OP(bcast_to)
DECL_OP(matmul)
DECL_OP(softmax) DECL_EWISE(softmax_back)
DECL_OP(layernorm) DECL_EWISE(layernorm_back)
DECL_OP(dropout) DECL_EWISE(dropout_back)
DECL_OP(im2col) DECL_EWISE(col2im)
DECL_OP(maxpool) DECL_EWISE(maxpool_back)
DECL_OP(avgpool) DECL_EWISE(avgpool_back)
DECL_OP(reshape)
DECL_OP(concat) DECL_EWISE(slice)
DECL_OP(embed) DECL_EWISE(embed_back)
DECL_OP(batchnorm) DECL_EWISE(batchnorm_back)
DECL_OP(bce) DECL_EWISE(bce_back)
DECL_OP(mse) DECL_EWISE(mse_back)
DECL_OP(mae) DECL_EWISE(mae_back)
DECL_OP(huber) DECL_EWISE(huber_back)
DECL_OP(cce) DECL_EWISE(cce_back)
DECL_OP(sparse_cce) DECL_EWISE(sparse_cce_back)
DECL_OP(sparse_softmax_ce) DECL_EWISE(sparse_softmax_ce_back)
DECL_OP(softmax_ce) DECL_EWISE(softmax_ce_back)
DECL_OP(sigmoid_bce) DECL_EWISE(sigmoid_bce_back)

void emit_const(Emit *e, const Graph *g, const Node *n, const char *const *a);
DECL_EWISE(sgd) DECL_EWISE(adam) DECL_EWISE(rmsprop) DECL_EWISE(adagrad)
/* update.c: one optimizer step of update node n in double, at step t (from
 * 1) with learning rate lr: p and the iattr[0] state buffers s[] of len
 * elements in place (the reference the updates' eval rules and the op
 * test use). */
void update_step(const Node *n, size_t len, double *p, const double *g, double *const *s,
                 double t, double lr);

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

#endif
