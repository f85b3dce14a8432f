/*
 * ewise.c - elementwise ops: arithmetic and activations, with their
 * gradient ops.
 *
 * Emit rules return one C expression over the operands' element
 * expressions (a[0], a[1], ...); the emitter wraps them in loops with
 * broadcast indexing, and a fusion pass may nest them. Operand expressions
 * are plain array accesses, so using one twice is cheap.
 *
 * Broadcasting is numpy's; gradients are produced at the output's shape
 * and autodiff sums them back to each input's shape.
 */
#include <math.h>

#include "ops.h"

/* Defines eval_<name>: out[i] = EXPR over a0, a1 (doubles, broadcast). */
#define EWISE_EVAL(name, EXPR)                                              \
    void eval_##name(const Graph *g, const Node *n,                         \
                     const double *const *in, double *out)                  \
    {                                                                       \
        size_t len = shape_numel(&n->shape);                                \
        const Shape *s0 = &NODE(g, n->in[0])->shape;                        \
        const Shape *s1 = n->nin > 1 ? &NODE(g, n->in[1])->shape : s0;      \
        for (size_t i = 0; i < len; i++) {                                  \
            double a0 = in[0][bcast_index(&n->shape, s0, i)];               \
            double a1 = n->nin > 1 ? in[1][bcast_index(&n->shape, s1, i)] : 0; \
            (void)a1;                                                       \
            out[i] = (EXPR);                                                \
        }                                                                   \
    }

/* ---- add, sub, mul ------------------------------------------------------
 * y = a + b:  da = dy, db = dy
 * y = a - b:  da = dy, db = -dy
 * y = a * b:  da = dy * b, db = dy * a
 */
void grad_add(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    (void)g;
    (void)y;
    dx[0] = dy;
    dx[1] = dy;
}

void grad_sub(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = dy;
    dx[1] = graph_scale(g, NODE(g, y)->loc, dy, -1.0);
}

void grad_mul(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    NodeId a = n->in[0], b = n->in[1];
    Loc loc = n->loc;
    dx[0] = graph_add2(g, OP_MUL, loc, dy, b);
    dx[1] = graph_add2(g, OP_MUL, loc, dy, a);
}

void emit_add(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s + %s", a[0], a[1]);
}

void emit_sub(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s - %s", a[0], a[1]);
}

void emit_mul(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s * %s", a[0], a[1]);
}

EWISE_EVAL(add, a0 + a1)
EWISE_EVAL(sub, a0 - a1)
EWISE_EVAL(mul, a0 * a1)

/* ---- scale: y = s * x, dx = s * dy (s = fattr[0]) ---------------------- */
void grad_scale(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = graph_scale(g, NODE(g, y)->loc, dy, NODE(g, y)->fattr[0]);
}

void emit_scale(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s * %s", emit_float(n->fattr[0]), a[0]);
}

EWISE_EVAL(scale, n->fattr[0] * a0)

/* ---- relu: y = max(x, 0), dx = dy * (y > 0) ------------------------------
 * (y > 0 exactly when x > 0: using the output lets x die early, so the
 * pre-activation can be fused away.) */
void grad_relu(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = graph_add2(g, OP_RELU_BACK, NODE(g, y)->loc, dy, y);
}

void emit_relu(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s > 0.0f ? %s : 0.0f", a[0], a[0]);
}

void emit_relu_back(Emit *e, const Graph *g, const Node *n,
                    const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s > 0.0f ? %s : 0.0f", a[1], a[0]);
}

EWISE_EVAL(relu, a0 > 0 ? a0 : 0)
EWISE_EVAL(relu_back, a1 > 0 ? a0 : 0)

/* ---- sigmoid: y = 1 / (1 + exp(-x)), dx = dy * y * (1 - y) --------------- */
void grad_sigmoid(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = graph_add2(g, OP_SIGMOID_BACK, NODE(g, y)->loc, dy, y);
}

void emit_sigmoid(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "nnc_sigmoidf(%s)", a[0]);
}

void emit_sigmoid_back(Emit *e, const Graph *g, const Node *n,
                       const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s * %s * (1.0f - %s)", a[0], a[1], a[1]);
}

EWISE_EVAL(sigmoid, 1.0 / (1.0 + exp(-a0)))
EWISE_EVAL(sigmoid_back, a0 * a1 * (1.0 - a1))

/* ---- tanh: y = tanh(x), dx = dy * (1 - y^2) ------------------------------ */
void grad_tanh(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = graph_add2(g, OP_TANH_BACK, NODE(g, y)->loc, dy, y);
}

void emit_tanh(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "nnc_tanhf(%s)", a[0]);
}

void emit_tanh_back(Emit *e, const Graph *g, const Node *n,
                    const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s * (1.0f - %s * %s)", a[0], a[1], a[1]);
}

EWISE_EVAL(tanh, tanh(a0))
EWISE_EVAL(tanh_back, a0 * (1.0 - a1 * a1))

/* ---- leaky_relu: y = x > 0 ? x : s x, dx = dy * (y > 0 ? 1 : s) ---------
 * (s = fattr[0] >= 0, Keras 3's negative_slope, default 0.3; lowering
 * rejects s < 0, so y > 0 exactly when x > 0 and the output suffices.) */
void grad_leaky_relu(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = with_attrs(g, graph_add2(g, OP_LEAKY_RELU_BACK, NODE(g, y)->loc, dy, y), y);
}

void emit_leaky_relu(Emit *e, const Graph *g, const Node *n,
                     const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s > 0.0f ? %s : %s * %s", a[0], a[0],
               emit_float(n->fattr[0]), a[0]);
}

void emit_leaky_relu_back(Emit *e, const Graph *g, const Node *n,
                          const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s > 0.0f ? %s : %s * %s", a[1], a[0],
               emit_float(n->fattr[0]), a[0]);
}

EWISE_EVAL(leaky_relu, a0 > 0 ? a0 : n->fattr[0] * a0)
EWISE_EVAL(leaky_relu_back, a1 > 0 ? a0 : n->fattr[0] * a0)

/* ---- elu: y = x > 0 ? x : alpha (exp(x) - 1),
 *      dx = dy * (y > 0 ? 1 : y + alpha)  (= alpha exp(x) for x <= 0) ------
 * (alpha = fattr[0], Keras' default 1.0; lowering requires alpha > 0, so
 * again y > 0 exactly when x > 0.) */
void grad_elu(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    dx[0] = with_attrs(g, graph_add2(g, OP_ELU_BACK, NODE(g, y)->loc, dy, y), y);
}

void emit_elu(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s > 0.0f ? %s : %s * (nnc_expf(%s) - 1.0f)", a[0], a[0],
               emit_float(n->fattr[0]), a[0]);
}

void emit_elu_back(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    buf_printf(e->out, "%s > 0.0f ? %s : %s * (%s + %s)", a[1], a[0], a[0], a[1],
               emit_float(n->fattr[0]));
}

EWISE_EVAL(elu, a0 > 0 ? a0 : n->fattr[0] * (exp(a0) - 1))
EWISE_EVAL(elu_back, a1 > 0 ? a0 : a0 * (a1 + n->fattr[0]))

/* ---- gelu, exact form (Keras' default approximate=False):
 *      y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)),
 *      dx = dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2) / sqrt(2 pi) ------
 * The gradient needs x, not y: dx = dy * GELU_GRAD(x), where GELU_GRAD
 * (F_FWDSIDE) is computed beside y in the forward's loop over x when the
 * fusion finds it (nnc_geluf and nnc_gelu_gradf of nncrt_math.h share one
 * exp between Phi and phi, which the compiler computes once), so that the
 * backward only multiplies. */
void grad_gelu(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Loc loc = NODE(g, y)->loc;
    dx[0] = graph_add2(g, OP_MUL, loc, dy, graph_add1(g, OP_GELU_GRAD, loc, NODE(g, y)->in[0]));
}

void emit_gelu(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "nnc_geluf(%s)", a[0]);
}

void emit_gelu_grad(Emit *e, const Graph *g, const Node *n,
                    const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "nnc_gelu_gradf(%s)", a[0]);
}

EWISE_EVAL(gelu, 0.5 * a0 * (1 + erf(a0 / sqrt(2.0))))
EWISE_EVAL(gelu_grad, 0.5 * (1 + erf(a0 / sqrt(2.0))) +
                            a0 * exp(-0.5 * a0 * a0) * 0.3989422804014327)

/* ---- gelu, tanh approximation (Keras' approximate=True, torch's
 *      approximate='tanh'), with c = sqrt(2/pi), u = c (x + 0.044715 x^3):
 *      y = x/2 (1 + tanh u),
 *      dx = dy (1/2 (1 + tanh u) + x/2 (1 - tanh^2 u) c (1 + 3 0.044715 x^2))
 * as dy * GELU_TANH_GRAD(x), computed beside y in the forward like gelu's.
 */
void grad_gelu_tanh(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Loc loc = NODE(g, y)->loc;
    dx[0] = graph_add2(g, OP_MUL, loc, dy,
                       graph_add1(g, OP_GELU_TANH_GRAD, loc, NODE(g, y)->in[0]));
}

void emit_gelu_tanh(Emit *e, const Graph *g, const Node *n,
                    const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "0.5f * %s * (1.0f + nnc_tanhf(0.797884561f * (%s + 0.044715f * %s * %s * %s)))",
               a[0], a[0], a[0], a[0], a[0]);
}

void emit_gelu_tanh_grad(Emit *e, const Graph *g, const Node *n,
                         const char *const *a)
{
    (void)g;
    (void)n;
    const char *x = a[0];
    buf_printf(e->out, "(0.5f * (1.0f + nnc_tanhf(0.797884561f * (%s + 0.044715f * %s * %s * %s))) + "
               "0.5f * %s * (1.0f - nnc_tanhf(0.797884561f * (%s + 0.044715f * %s * %s * %s)) * "
               "nnc_tanhf(0.797884561f * (%s + 0.044715f * %s * %s * %s))) * "
               "0.797884561f * (1.0f + 0.134145f * %s * %s))",
               x, x, x, x, x, x, x, x, x, x, x, x, x, x, x);
}

static double gelu_tanh_u(double x)
{
    return 0.7978845608028654 * (x + 0.044715 * x * x * x);
}

EWISE_EVAL(gelu_tanh, 0.5 * a0 * (1 + tanh(gelu_tanh_u(a0))))
EWISE_EVAL(gelu_tanh_grad, 0.5 * (1 + tanh(gelu_tanh_u(a0))) +
                                 0.5 * a0 * (1 - tanh(gelu_tanh_u(a0)) * tanh(gelu_tanh_u(a0))) *
                                 0.7978845608028654 * (1 + 0.134145 * a0 * a0))

/* ---- silu (Keras' swish, torch.nn.SiLU), with s = sigmoid(x):
 *      y = x s,  dx = dy s (1 + x (1 - s)) ----------------------------------
 * The gradient needs x, not y: dx = dy * SILU_GRAD(x), computed beside y
 * in the forward like gelu's. */
void grad_silu(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Loc loc = NODE(g, y)->loc;
    dx[0] = graph_add2(g, OP_MUL, loc, dy, graph_add1(g, OP_SILU_GRAD, loc, NODE(g, y)->in[0]));
}

void emit_silu(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "%s * nnc_sigmoidf(%s)", a[0], a[0]);
}

void emit_silu_grad(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    (void)n;
    buf_printf(e->out, "nnc_sigmoidf(%s) * (1.0f + %s * (1.0f - nnc_sigmoidf(%s)))",
               a[0], a[0], a[0]);
}

EWISE_EVAL(silu, a0 / (1.0 + exp(-a0)))
EWISE_EVAL(silu_grad, 1.0 / (1.0 + exp(-a0)) * (1.0 + a0 * (1.0 - 1.0 / (1.0 + exp(-a0)))))

/* ---- broadcast_to: y = x repeated along broadcast dims;
 *      dx = sum of dy over them ------------------------------------------- */
void grad_bcast_to(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    dx[0] = graph_sum_to(g, n->loc, dy, n->in[0]);
}

void emit_bcast_to(Emit *e, const Graph *g, const Node *n,
                   const char *const *a)
{
    (void)g;
    (void)n;
    buf_puts(e->out, a[0]);
}

EWISE_EVAL(bcast_to, a0)
