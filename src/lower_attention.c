/*
 * lower_attention.c - the attention layers, lowered onto the attention op
 * (ops/attention.c) and ordinary matrix products:
 *
 *   multihead_attention(x, heads, causal=false, dropout=0.0, use_bias=true)
 *       self-attention as torch.nn.MultiheadAttention(C, heads, dropout,
 *       bias, batch_first=True) computes mha(x, x, x, need_weights=False)
 *       (with a causal mask if causal): x (batch, T, C) ->
 *         qkv = x W_in^T + b_in          (batch, T, 3C), one GEMM
 *         a   = attention(qkv)           heads read q, k, v in place by
 *                                        strides (no split, no transpose)
 *         y   = a W_out^T + b_out        (batch, T, C)
 *       Parameters as torch names them, so load_state_dict takes them:
 *       NAME.in_proj_weight [3C, C] (xavier uniform, as torch), NAME.
 *       in_proj_bias [3C] (zeros), NAME.out_proj.weight [C, C] (Glorot
 *       uniform as dense; torch draws it as a Linear's, U(+-1/sqrt(C))),
 *       NAME.out_proj.bias [C] (zeros, as torch).
 *       dropout: on the attention weights, in the training step only.
 *
 *   scaled_dot_product_attention(q, k, v, causal=false, dropout=0.0)
 *       torch.nn.functional.scaled_dot_product_attention(q, k, v,
 *       is_causal=causal, dropout_p=dropout) on (batch, H, T, D) values:
 *       softmax(q k^T / sqrt(D)) v per head; q, k and v are joined on the
 *       last axis (two concats) for the op.
 */
#include "lower.h"

/* In a decode graph: causal self-attention of one new position, its
 * packed q, k, v appended to this layer's part of the cache (after the
 * layers before it) and attending to the positions 0 .. pos there. */
static NodeId attention_decode(Lower *L, const Expr *call, NodeId qkv, int heads)
{
    Graph *g = L->g;
    Node proto = {0};
    proto.op = OP_ATTENTION_DECODE;
    proto.nin = 2;
    proto.in[0] = qkv;
    proto.in[1] = L->decode_pos;
    proto.loc = call->loc;
    proto.what = "attention";
    proto.iattr[0] = heads;
    proto.iattr[1] = g->decode_T;
    proto.iattr[2] = (int)g->kv_floats;
    NodeId id = graph_add_node(g, &proto);
    if (id)
        g->kv_floats += (size_t)g->decode_T * (size_t)NODE(g, qkv)->shape.dim[2];
    return id;
}

static NodeId attention(Lower *L, const Expr *call, const Args *a, NodeId qkv, int heads)
{
    Node proto = {0};
    if (L->decode) {
        if (heads > 0 && arg_bool(a, "causal") && arg_num(a, "dropout") >= 0 && L->decode_pos &&
            NODE(L->g, qkv)->shape.rank == 3 && NODE(L->g, qkv)->shape.dim[1] == 1)
            return attention_decode(L, call, qkv, heads);
        L->no_decode = true;   /* full attention needs the later positions */
    }
    proto.op = OP_ATTENTION;
    proto.nin = 1;
    proto.in[0] = qkv;
    proto.loc = call->loc;
    proto.what = "attention";
    proto.iattr[0] = heads;
    proto.iattr[1] = arg_bool(a, "causal");
    proto.iattr[2] = L->g->nnodes;     /* dropout salt: unique */
    proto.fattr[1] = arg_num(a, "dropout");
    return graph_add_node(L->g, &proto);
}

NodeId lower_multihead_attention(Lower *L, const LayerInfo *ly, const Expr *call, NodeId *in,
                                 int nin, const Args *a)
{
    (void)nin;
    Graph *g = L->g;
    const Node *x = NODE(g, in[0]);
    int heads = (int)arg_num(a, "heads");   /* in range: sema */
    if (x->shape.rank != 3 || x->bmask != 1) {
        diag_error(call->loc, "multihead_attention expects a (batch, T, C) sequence, got %s",
                   shape_str(&x->shape));
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    int C = x->shape.dim[2];
    if (C % heads) {
        diag_error(arg_loc(a, "heads", call->loc),
                   "multihead_attention: %d heads do not divide the width %d", heads, C);
        note_shape(L, in[0]);
        return NODE_NONE;
    }
    const char *name = layer_name(L, call, "multihead_attention", &L->nmha);
    if (!check_param_name(L, name, call->loc))
        return NODE_NONE;
    bool bias = arg_bool(a, "use_bias");
    Shape ws = {2, {3 * C, C}}, bs = {1, {3 * C}}, os = {2, {C, C}}, obs = {1, {C}};
    NodeId w = layer_param(L, ly, call, name, "in_proj_weight", &ws, INIT_GLOROT, C, 3 * C);
    NodeId qkv = graph_matmul(g, call->loc, in[0], w, 0, 1);
    NODE(g, qkv)->what = "multihead_attention";
    if (bias) {
        NodeId b = layer_param(L, ly, call, name, "in_proj_bias", &bs, INIT_ZERO, 0, 0);
        qkv = graph_add2(g, OP_ADD, call->loc, qkv, b);
    }
    NodeId att = attention(L, call, a, qkv, heads);
    if (att == NODE_NONE)
        return NODE_NONE;
    NodeId wo = layer_param(L, ly, call, name, "out_proj.weight", &os, INIT_GLOROT, C, C);
    NodeId y = graph_matmul(g, call->loc, att, wo, 0, 1);
    NODE(g, y)->what = "multihead_attention";
    if (bias) {
        NodeId bo = layer_param(L, ly, call, name, "out_proj.bias", &obs, INIT_ZERO, 0, 0);
        y = graph_add2(g, OP_ADD, call->loc, y, bo);
    }
    return y;
}

NodeId lower_scaled_dot_product_attention(Lower *L, const LayerInfo *ly, const Expr *call,
                                          NodeId *in, int nin, const Args *a)
{
    (void)ly;
    (void)nin;
    Graph *g = L->g;
    static const char *const what[3] = {"query", "key", "value"};
    for (int i = 0; i < 3; i++) {
        const Node *x = NODE(g, in[i]);
        if (x->shape.rank != 4 || x->bmask != 1) {
            diag_error(call->loc,
                       "scaled_dot_product_attention expects (batch, heads, T, D) values, "
                       "got %s for the %s", shape_str(&x->shape), what[i]);
            note_shape(L, in[i]);
            return NODE_NONE;
        }
        if (i && !shape_eq(&x->shape, &NODE(g, in[0])->shape)) {
            diag_error(call->loc,
                       "scaled_dot_product_attention: the %s's shape %s differs from the "
                       "query's %s", what[i], shape_str(&x->shape),
                       shape_str(&NODE(g, in[0])->shape));
            note_shape(L, in[0]);
            note_shape(L, in[i]);
            return NODE_NONE;
        }
    }
    NodeId qk = graph_add2(g, OP_CONCAT, call->loc, in[0], in[1]);
    NodeId qkv = qk ? graph_add2(g, OP_CONCAT, call->loc, qk, in[2]) : NODE_NONE;
    if (qkv == NODE_NONE)
        return NODE_NONE;
    return attention(L, call, a, qkv, 0);
}
