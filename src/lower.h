/*
 * lower.h - the lowering state shared by lower.c (statements, names,
 * values), lower_layers.c (the layer table and its lowerers) and
 * lower_train.c (loss and optimizer). Private to those files.
 */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "sema.h"

typedef struct Binding {
    const char *name;
    Loc loc;
    NodeId id;
} Binding;

/* Where a value came from, for the notes of shape errors. */
typedef struct Origin {
    Loc loc;                /* the call, or the input's name */
    const char *name;       /* the value's name, if it has one */
    const char *layer;      /* "input", or the layer that made it */
} Origin;

typedef struct Lower {
    Graph *g;
    const Model *model;
    Origin *origin;         /* by node id */
    int norigin;
    const Stmt *loss_stmt;  /* the first loss statement */
    const Stmt *batch_stmt; /* the first batch statement */
    Arena *arena;           /* lives as long as the graph (names) */
    Binding *env;
    int nenv, cap;
    NodeId prev;            /* the previous statement's value */
    bool prev_failed;       /* ... which had an error (already reported) */
    const char *assign;     /* name being assigned by the current statement */
    const Expr *assign_call;/* ... and the call that is its direct RHS */
    int ndense;             /* unnamed dense layers so far */
    int nconv;              /* unnamed conv2d layers so far */
    int nbn;                /* unnamed batchnorm layers so far */
    int nnorm;              /* unnamed layernorm layers so far */
    int ndropout;           /* dropout layers so far */
    int nembed;             /* unnamed embedding layers so far */
    int npos;               /* unnamed position_embedding layers so far */
    int nmha;               /* unnamed multihead_attention layers so far */
    /* lowering a decode graph (lower_decode) */
    bool decode;
    bool no_decode;         /* a layer that cannot decode one position */
    NodeId decode_pos;      /* (1, 1): the position, input column 1 */
    /* check_param_name: the layer names of params[0 .. nindexed), open
     * addressing (entries: param index + 1, 0 empty), in L->arena */
    int *layer_index;
    size_t layer_cap;
    int nindexed;
} Lower;

/* Emitted loops index with int: a tensor holds at most 2^30 floats. */
#define MAX_TENSOR_FLOATS (UINT64_C(1) << 30)

/* lower.c */
NodeId lower_expr(Lower *L, const Expr *e);
/* Is this argument a tensor (a value name or a call)? */
bool is_tensor_arg(const Arg *a);
/* a * b, saturating at UINT64_MAX */
uint64_t mul_sat(uint64_t a, uint64_t b);
/* "4000000000 bytes", or "more than 2^64 bytes" */
const char *bytes_str(Lower *L, uint64_t floats);
/* After a shape error: a note showing where value `id` and its shape
 * come from. */
void note_shape(Lower *L, NodeId id);

/* lower_layers.c: x[..., start:start+len, ...] along axis (NARROW) */
NodeId narrow(Lower *L, const char *what, Loc loc, NodeId x, int axis, int start, int len);
/* lower_layers.c: the name of this call's layer (the assigned value's,
 * or KIND_N by *counter); false after an error if a layer of that name
 * exists; the parameter NAME.SUFFIX of layer ly, marked as the layer's. */
const char *layer_name(Lower *L, const Expr *call, const char *kind, int *counter);
bool check_param_name(Lower *L, const char *name, Loc loc);
NodeId layer_param(Lower *L, const LayerInfo *ly, const Expr *call, const char *name,
                   const char *suffix, const Shape *s, Init init, int fan_in, int fan_out);

/* lower_attention.c: the attention layers' lowerers (layer_table rows) */
NodeId lower_multihead_attention(Lower *L, const LayerInfo *ly, const Expr *call, NodeId *in,
                                 int nin, const Args *a);
NodeId lower_scaled_dot_product_attention(Lower *L, const LayerInfo *ly, const Expr *call,
                                          NodeId *in, int nin, const Args *a);

/* lower_train.c */
void lower_loss(Lower *L, const Stmt *s);
void lower_optimizer(Lower *L, const Stmt *s);

#endif
