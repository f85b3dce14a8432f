/*
 * update.c - optimizer steps, the graph's only in-place writes.
 *
 * UPDATE nodes take (param, grad) and overwrite the parameter; their
 * state buffers (iattr[0] of them, zero at start) are passed to the emit
 * rule after the output: a[3], a[4]. The step count t (starting at 1) is
 * ctx->step. The maths is torch.optim's, so runs can be compared with
 * PyTorch step for step:
 *
 *   sgd(lr, momentum):   v = momentum v + g   (v = g when momentum = 0)
 *                        p = p - lr v
 *   adam(lr, b1, b2, eps):
 *                        m = m + (1 - b1) (g - m)
 *                        v = b2 v + (1 - b2) g^2
 *                        p = p - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * fattr: sgd [lr, momentum]; adam [lr, b1, b2, eps].
 */
#include "ops.h"

/* Both call the runtime, whose loops vectorize (see runtime/optim.c). */
void emit_sgd(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    emit_line(e, "nnc_sgd_update(%s, %s, %s, (size_t)%s, %s, %s);", a[0], a[1],
              n->iattr[0] > 0 ? a[3] : "NULL", emit_numel(n), emit_float(n->fattr[0]),
              emit_float(n->fattr[1]));
}

void emit_adam(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    double lr = n->fattr[0], b1 = n->fattr[1], b2 = n->fattr[2], eps = n->fattr[3];
    emit_line(e, "const double t = (double)ctx->step;");
    emit_line(e, "const float step = (float)(%.17g / (1.0 - pow(%.17g, t)));", lr, b1);
    emit_line(e, "const float bc2 = (float)sqrt(1.0 - pow(%.17g, t));", b2);
    emit_line(e, "nnc_adam_update(%s, %s, %s, %s, (size_t)%s, %s, %s, %s, %s, step, bc2);",
              a[0], a[1], a[3], a[4], emit_numel(n), emit_float(1 - b1), emit_float(b2),
              emit_float(1 - b2), emit_float(eps));
}
