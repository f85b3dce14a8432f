/*
 * update.c - optimizer steps, the graph's only in-place writes.
 *
 * UPDATE nodes take (param, grad) and overwrite the parameter; their
 * state buffers (iattr[0] of them, zero at start except Adagrad's sum)
 * are passed to the emit rule after the output: a[3], a[4], a[5]. The
 * step count t (starting at 1) is ctx->step. The maths is torch.optim's,
 * so runs can be compared with PyTorch step for step:
 *
 *   sgd(lr, momentum, nesterov, wd):
 *                        d = g + wd p;  b = momentum b + d  (b = d when momentum = 0)
 *                        p = p - lr (nesterov ? d + momentum b : b)
 *   adam(lr, b1, b2, eps, wd), adamw (decoupled: p = (1 - lr wd) p first,
 *   and g unchanged):    g = g + wd p
 *                        m = m + (1 - b1) (g - m)
 *                        v = b2 v + (1 - b2) g^2
 *                        p = p - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   rmsprop(lr, rho, momentum, eps, centered):
 *                        s = rho s + (1 - rho) g^2;  centered: a = a + (1 - rho) (g - a)
 *                        avg = sqrt(s - a^2) + eps   (a = 0 unless centered)
 *                        b = momentum b + g / avg;  p = p - lr b  (b = g / avg when momentum = 0)
 *   adagrad(lr, eps):    s = s + g^2  (s starts at initial_accumulator_value)
 *                        p = p - lr g / (sqrt(s) + eps)
 *
 * fattr: sgd [lr, momentum, wd]; adam [lr, b1, b2, eps, wd]; rmsprop [lr,
 * rho, momentum, eps]; adagrad [lr, eps, initial accumulator]. iattr: [0]
 * state buffers, [1] sgd nesterov / adam decoupled (AdamW) / rmsprop
 * centered, [2] rmsprop momentum, [3] lr scheduled. The training step
 * computes the double `lr` for this step from the context's base rate
 * (codegen/emit_program.c: the .nn file's lr unless set_lr changed it)
 * and the rules use it.
 */
#include "ops.h"

/* The learning rate as a C double expression. */
static const char *lr_of(const Node *n)
{
    (void)n;
    return "lr";
}

/* Both call the runtime, whose loops vectorize (see runtime/optim.c). */
void emit_sgd(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    const char *lr = "(float)lr";
    if (n->fattr[2] == 0 && !n->iattr[1]) {
        emit_line(e, "nnc_sgd_update(%s, %s, %s, (size_t)%s, %s, %s);", a[0], a[1],
                  n->iattr[0] > 0 ? a[3] : "NULL", emit_numel(n), lr, emit_float(n->fattr[1]));
        return;
    }
    emit_line(e, "nnc_sgd_update_ex(%s, %s, %s, (size_t)%s, %s, %s, %s, %d);", a[0], a[1],
              n->iattr[0] > 0 ? a[3] : "NULL", emit_numel(n), lr, emit_float(n->fattr[1]),
              emit_float(n->fattr[2]), n->iattr[1]);
}

void emit_adam(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    double b1 = n->fattr[1], b2 = n->fattr[2], eps = n->fattr[3], wd = n->fattr[4];
    emit_line(e, "const double t = (double)ctx->step;");
    emit_line(e, "const float step = (float)(%s / (1.0 - pow(%.17g, t)));", lr_of(n), b1);
    emit_line(e, "const float bc2 = (float)sqrt(1.0 - pow(%.17g, t));", b2);
    if (wd == 0) {
        emit_line(e, "nnc_adam_update(%s, %s, %s, %s, (size_t)%s, %s, %s, %s, %s, step, bc2);",
                  a[0], a[1], a[3], a[4], emit_numel(n), emit_float(1 - b1), emit_float(b2),
                  emit_float(1 - b2), emit_float(eps));
        return;
    }
    if (n->iattr[1]) /* AdamW: torch's p *= 1 - lr wd, the factor in float */
        emit_line(e, "const float decay = (float)(1.0 - %s * %.17g);", lr_of(n), wd);
    emit_line(e, "nnc_adam_update_ex(%s, %s, %s, %s, (size_t)%s, %s, %s, %s, %s, step, bc2, "
                 "%s, %s);",
              a[0], a[1], a[3], a[4], emit_numel(n), emit_float(1 - b1), emit_float(b2),
              emit_float(1 - b2), emit_float(eps), n->iattr[1] ? "0.0f" : emit_float(wd),
              n->iattr[1] ? "decay" : "1.0f");
}

void emit_rmsprop(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    const char *lr = "(float)lr";
    const char *buf = n->iattr[2] ? a[4] : "NULL";
    const char *avg = n->iattr[1] ? a[4 + n->iattr[2]] : "NULL";
    emit_line(e, "nnc_rmsprop_update(%s, %s, %s, %s, %s, (size_t)%s, %s, %s, %s, %s);", a[0],
              a[1], a[3], buf, avg, emit_numel(n), lr, emit_float(n->fattr[1]),
              emit_float(n->fattr[2]), emit_float(n->fattr[3]));
}

void emit_adagrad(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    (void)g;
    const char *lr = "(float)lr";
    emit_line(e, "nnc_adagrad_update(%s, %s, %s, (size_t)%s, %s, %s);", a[0], a[1], a[3],
              emit_numel(n), lr, emit_float(n->fattr[1]));
}
