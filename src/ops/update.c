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

void emit_sgd(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    double lr = n->fattr[0], mom = n->fattr[1];
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(n));
    if (n->iattr[0] > 0) {
        emit_line(e, "    float v = %s * %s[i] + %s[i];", emit_float(mom), a[3], a[1]);
        emit_line(e, "    %s[i] = v;", a[3]);
        emit_line(e, "    %s[i] -= %s * v;", a[0], emit_float(lr));
    } else {
        emit_line(e, "    %s[i] -= %s * %s[i];", a[0], emit_float(lr), a[1]);
    }
    emit_line(e, "}");
}

void emit_adam(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    double lr = n->fattr[0], b1 = n->fattr[1], b2 = n->fattr[2], eps = n->fattr[3];
    emit_line(e, "const double t = (double)ctx->step;");
    emit_line(e, "const float step = (float)(%.17g / (1.0 - pow(%.17g, t)));", lr, b1);
    emit_line(e, "const float bc2 = (float)sqrt(1.0 - pow(%.17g, t));", b2);
    emit_line(e, "for (int i = 0; i < %s; i++) {", emit_numel(n));
    emit_line(e, "    float gi = %s[i];", a[1]);
    emit_line(e, "    float m = %s[i] + %s * (gi - %s[i]);", a[3], emit_float(1 - b1), a[3]);
    emit_line(e, "    float v = %s * %s[i] + %s * gi * gi;", emit_float(b2), a[4], emit_float(1 - b2));
    emit_line(e, "    %s[i] = m;", a[3]);
    emit_line(e, "    %s[i] = v;", a[4]);
    emit_line(e, "    %s[i] -= step * m / (sqrtf(v) / bc2 + %s);", a[0], emit_float(eps));
    emit_line(e, "}");
}
