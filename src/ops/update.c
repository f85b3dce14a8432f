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
 *
 * update_step is these formulas in double; the eval rules are the first
 * step (t = 1, lr = fattr[0]) from the initial state, and tests/ops
 * checks the emitted updates against both.
 */
#include <math.h>
#include <stdlib.h>

#include "ops.h"

/* ---- reference, in double --------------------------------------------- */

void update_step(const Node *n, size_t len, double *p, const double *g, double *const *s,
                 double t, double lr)
{
    const double *f = n->fattr;
    for (size_t i = 0; i < len; i++) {
        double gi = g[i];
        switch (n->op) {
        case OP_SGD: { /* f: lr, momentum, wd; iattr[1] nesterov */
            double d = gi + f[2] * p[i];
            if (n->iattr[0] > 0) {
                s[0][i] = f[1] * s[0][i] + d;
                d = n->iattr[1] ? d + f[1] * s[0][i] : s[0][i];
            }
            p[i] -= lr * d;
            break;
        }
        case OP_ADAM: /* f: lr, b1, b2, eps, wd; iattr[1] decoupled (AdamW) */
            if (n->iattr[1])
                p[i] *= 1 - lr * f[4];
            else
                gi += f[4] * p[i];
            s[0][i] += (1 - f[1]) * (gi - s[0][i]);
            s[1][i] = f[2] * s[1][i] + (1 - f[2]) * gi * gi;
            p[i] -= lr / (1 - pow(f[1], t)) * s[0][i] /
                    (sqrt(s[1][i]) / sqrt(1 - pow(f[2], t)) + f[3]);
            break;
        case OP_RMSPROP: { /* f: lr, rho, momentum, eps; state: square
                              average, [momentum buffer], [mean gradient] */
            double *avg = n->iattr[1] ? s[1 + n->iattr[2]] : NULL;
            s[0][i] = f[1] * s[0][i] + (1 - f[1]) * gi * gi;
            if (avg)
                avg[i] += (1 - f[1]) * (gi - avg[i]);
            double d = sqrt(s[0][i] - (avg ? avg[i] * avg[i] : 0)) + f[3];
            if (n->iattr[2]) {
                s[1][i] = f[2] * s[1][i] + gi / d;
                p[i] -= lr * s[1][i];
            } else {
                p[i] -= lr * gi / d;
            }
            break;
        }
        case OP_ADAGRAD: /* f: lr, eps, initial accumulator */
            s[0][i] += gi * gi;
            p[i] -= lr * gi / (sqrt(s[0][i]) + f[1]);
            break;
        default:
            nnc_unreachable();
        }
    }
}

/* The first step (t = 1, the .nn file's lr) from the initial state: zeros,
 * Adagrad's accumulator at its initial value. */
static void eval_update(const Graph *g, const Node *n, const double *const *in, double *out)
{
    size_t len = shape_numel(&n->shape);
    double *s[3] = {NULL, NULL, NULL};
    NNC_ASSERT(n->iattr[0] <= 3);
    for (int k = 0; k < n->iattr[0]; k++) {
        s[k] = xcalloc(len ? len : 1, sizeof(double));
        for (size_t i = 0; n->op == OP_ADAGRAD && i < len; i++)
            s[k][i] = n->fattr[2];
    }
    (void)g;
    memcpy(out, in[0], len * sizeof(double));
    update_step(n, len, out, in[1], s, 1, n->fattr[0]);
    for (int k = 0; k < 3; k++)
        free(s[k]);
}

void eval_sgd(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_update(g, n, in, out);
}

void eval_adam(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_update(g, n, in, out);
}

void eval_rmsprop(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_update(g, n, in, out);
}

void eval_adagrad(const Graph *g, const Node *n, const double *const *in, double *out)
{
    eval_update(g, n, in, out);
}

/* ---- emitters ------------------------------------------------------------ */

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
