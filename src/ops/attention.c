/*
 * attention.c - softmax attention over packed queries, keys and values,
 * per (batch, head), through the runtime kernel (runtime/attention.c:
 * online softmax over blocks of keys, no T x T matrix in memory).
 *
 * attention(qkv) -> o, in one of two layouts told apart by rank:
 *   rank 3, (B, T, 3C): multihead_attention's packed projection; H =
 *           iattr[0] heads (0 counts as 1) of D = C / H, head h's query
 *           at columns [hD, hD + D), its key at C + hD, its value at
 *           2C + hD (torch's in_proj order); o is (B, T, C), heads side by
 *           side, ready for the output projection;
 *   rank 4, (B, H, T, 3D): q, k and v of torch's (B, H, T, D) joined on
 *           the last axis (scaled_dot_product_attention); o is (B, H, T, D).
 * For query i of each head,
 *   o_i = sum_j softmax_j(q_i . k_j / sqrt(D)) z_ij v_j,  j < T (j <= i if
 *   causal: iattr[1])
 * with z the dropout factor (rate fattr[1], training only: 0 or 1 / (1 -
 * rate), torch's dropout on the attention weights; the mask is a hash of
 * (seed, b, h, i, j), seeded from the model's seed, the step and
 * iattr[2], a per-layer salt that also keeps CSE from merging two layers).
 *
 * attention_back(do, qkv, o) -> dqkv, the three gradients packed as qkv:
 *   p_ij = softmax_j,  dv_j = sum_i p_ij z_ij do_i
 *   ds_ij = p_ij (z_ij do_i . v_j - do_i . o_i)
 *   dq_i = sum_j ds_ij k_j / sqrt(D),  dk_j = sum_i ds_ij q_i / sqrt(D)
 * The kernel recomputes each row's log-sum-exp from q and k.
 *
 * The eval rules write the scores, softmax and mask out in double, the
 * reference of the kernel's tests and of the finite differences.
 */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "../../runtime/nncrt.h"

/* The geometry of an attention node's packed input: B, T, H, D, and the
 * strides of q, k, v (and of o) in floats; k and v follow q at koff and
 * 2 koff. */
typedef struct Geo {
    int B, T, H, D;
    long koff, sb, st, sh, ob, ot, oh;
} Geo;

static bool geometry(const Shape *x, int heads, Geo *g)
{
    int last = x->dim[x->rank - 1];
    if (last % 3)
        return false;
    if (x->rank == 3) {
        int C = last / 3, H = heads > 0 ? heads : 1;
        if (C % H)
            return false;
        *g = (Geo){x->dim[0], x->dim[1], H, C / H, C,
                   (long)x->dim[1] * last, last, C / H,
                   (long)x->dim[1] * C, C, C / H};
        return true;
    }
    if (x->rank == 4) {
        int H = x->dim[1], T = x->dim[2], D = last / 3;
        *g = (Geo){x->dim[0], T, H, D, D,
                   (long)H * T * last, last, (long)T * last,
                   (long)H * T * D, D, (long)T * D};
        return true;
    }
    return false;
}

static Geo geo_of(const Graph *g, const Node *n)
{
    Geo r;
    const Node *x = NODE(g, n->in[n->op == OP_ATTENTION ? 0 : 1]);
    NNC_ASSERT(geometry(&x->shape, n->iattr[0], &r));
    return r;
}

bool shape_attention(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]);
    Geo geo;
    if (x->shape.rank < 3 || !geometry(&x->shape, n->iattr[0], &geo) || (x->bmask & ~1u) ||
        geo.D < 1 || geo.T < 1) {
        diag_error(n->loc, "attention expects packed (batch, T, 3 x heads x D) or "
                   "(batch, heads, T, 3 x D) queries, keys and values, got %s",
                   shape_str(&x->shape));
        return false;
    }
    n->shape = x->shape;
    n->shape.dim[n->shape.rank - 1] /= 3;
    n->bmask = x->bmask;
    return true;
}

bool shape_attention_back(Graph *g, Node *n)
{
    const Node *dy = NODE(g, n->in[0]), *x = NODE(g, n->in[1]), *o = NODE(g, n->in[2]);
    Node fwd = *n;
    fwd.op = OP_ATTENTION;
    fwd.in[0] = n->in[1];
    fwd.nin = 1;
    if (!shape_attention(g, &fwd))
        return false;
    if (!shape_eq(&dy->shape, &fwd.shape) || !shape_eq(&o->shape, &fwd.shape)) {
        diag_error(n->loc, "attention_back: gradient %s and output %s for %s",
                   shape_str(&dy->shape), shape_str(&o->shape), shape_str(&fwd.shape));
        return false;
    }
    n->shape = x->shape;
    n->bmask = x->bmask;
    return true;
}

void grad_attention(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    const Node *n = NODE(g, y);
    Node proto = *n;
    proto.op = OP_ATTENTION_BACK;
    proto.nin = 3;
    proto.in[0] = dy;
    proto.in[1] = n->in[0];
    proto.in[2] = y;
    proto.kernel = NODE_NONE;
    proto.name = NULL;
    dx[0] = graph_add_node(g, &proto);
}

/* Two multiply-adds per (query, key, d) for the forward (q.k and p v),
 * five for the backward (q.k, dy.v, dq, dk, dv); causal: half the pairs. */
double attention_flops(const Graph *g, const Node *n)
{
    Geo q = geo_of(g, n);
    double pairs = (double)q.T * q.T * (n->iattr[1] ? 0.5 : 1);
    return 2.0 * (n->op == OP_ATTENTION ? 2 : 5) * q.B * q.H * pairs * q.D;
}

/* ---- emitted calls ---------------------------------------------------------- */

/* Declares s_, the kernel's nnc_attn_shape, for node n (its own geometry
 * is its packed input's). */
static void emit_shape(Emit *e, const Graph *g, const Node *n)
{
    Geo q = geo_of(g, n);
    const Node *x = NODE(g, n->in[n->op == OP_ATTENTION ? 0 : 1]);
    double rate = e->predict ? 0 : n->fattr[1];
    emit_line(e, "/* %s: %d heads of %d, %d positions%s%s */", shape_str(&x->shape), q.H, q.D,
              q.T, n->iattr[1] ? ", causal" : "", rate > 0 ? ", dropout" : "");
    emit_line(e, "nnc_attn_shape s_;");
    emit_line(e, "s_.B = %s; s_.T = %d; s_.H = %d; s_.D = %d;", emit_dim(x, 0), q.T, q.H, q.D);
    emit_line(e, "s_.sb = %ld; s_.st = %ld; s_.sh = %ld;", q.sb, q.st, q.sh);
    emit_line(e, "s_.ob = %ld; s_.ot = %ld; s_.oh = %ld;", q.ob, q.ot, q.oh);
    emit_line(e, "s_.causal = %d; s_.scale = %s; s_.dropout = %s;", n->iattr[1] ? 1 : 0,
              emit_float(1 / sqrt(q.D)), emit_float(rate));
    if (rate > 0)
        emit_line(e, "s_.seed = ctx->seed ^ (ctx->step * UINT64_C(0x9E3779B97F4A7C15)) ^ "
                     "UINT64_C(%llu);",
                  (unsigned long long)(n->iattr[2] + 1) * 0xD1B54A32D192ED03ull);
    else
        emit_line(e, "s_.seed = 0;");
}

void emit_attention(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    Geo q = geo_of(g, n);
    emit_line(e, "{");
    e->indent++;
    emit_shape(e, g, n);
    emit_line(e, "nnc_attention_fwd(&s_, %s, %s + %ld, %s + %ld, %s, NULL);", a[0], a[0], q.koff,
              a[0], 2 * q.koff, a[1]);
    e->indent--;
    emit_line(e, "}");
}

void emit_attention_back(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    Geo q = geo_of(g, n);
    emit_line(e, "{");
    e->indent++;
    emit_shape(e, g, n);
    emit_line(e, "nnc_attention_bwd(&s_, %s, %s + %ld, %s + %ld, %s, NULL, %s, %s, %s + %ld, "
                 "%s + %ld);",
              a[1], a[1], q.koff, a[1], 2 * q.koff, a[2], a[0], a[3], a[3], q.koff, a[3],
              2 * q.koff);
    e->indent--;
    emit_line(e, "}");
}

/* ---- generation: one position against the cache ---------------------------- */

bool shape_attention_decode(Graph *g, Node *n)
{
    const Node *x = NODE(g, n->in[0]), *pos = NODE(g, n->in[1]);
    Geo geo;
    if (x->shape.rank != 3 || x->shape.dim[1] != 1 || !geometry(&x->shape, n->iattr[0], &geo) ||
        shape_numel(&pos->shape) != (size_t)x->shape.dim[0] || n->iattr[1] < 1) {
        diag_error(n->loc, "attention_decode expects one position's packed (batch, 1, 3C) "
                   "queries, keys and values and its position, got %s and %s",
                   shape_str(&x->shape), shape_str(&pos->shape));
        return false;
    }
    n->shape = x->shape;
    n->shape.dim[2] /= 3;
    n->bmask = x->bmask;
    return true;
}

/* The cache holds, for positions 0 .. T-1, the packed q, k, v rows as the
 * training step's (1, T, 3C) projection would: the layout of the forward,
 * so nnc_attention_decode gives the forward's row pos bit for bit. */
void emit_attention_decode(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]);
    int T = n->iattr[1], C3 = x->shape.dim[2], H = n->iattr[0], D = C3 / 3 / H;
    emit_line(e, "{");
    e->indent++;
    emit_line(e, "/* %d heads of %d, causal, position pos_ of %d; this layer's cache at %d */",
              H, D, T, n->iattr[2]);
    emit_line(e, "float *const kv_ = KV_CACHE + %d;", n->iattr[2]);
    emit_line(e, "const int pos_ = (int)%s[0];", a[1]);
    emit_line(e, "nnc_attn_shape s_;");
    emit_line(e, "s_.B = 1; s_.T = %d; s_.H = %d; s_.D = %d;", T, H, D);
    emit_line(e, "s_.sb = %ld; s_.st = %d; s_.sh = %d;", (long)T * C3, C3, D);
    emit_line(e, "s_.ob = 0; s_.ot = 0; s_.oh = %d;", D);
    emit_line(e, "s_.causal = 1; s_.scale = %s; s_.dropout = 0.0f; s_.seed = 0;",
              emit_float(1 / sqrt(D)));
    emit_line(e, "memcpy(kv_ + (size_t)pos_ * %d, %s, sizeof(float) * %d);", C3, a[0], C3);
    emit_line(e, "nnc_attention_decode(&s_, pos_, kv_, kv_ + %d, kv_ + %d, %s);", C3 / 3,
              2 * C3 / 3, a[2]);
    e->indent--;
    emit_line(e, "}");
}

/* ---- the double references ------------------------------------------------ */

/* The probabilities p[i*T + j] of head (b, h) and the dropout factors
 * z[i*T + j] (seeded by the salt alone: a fixed mask). */
static void probs(const Node *n, const Geo *q, const double *x, int b, int h, double *p,
                  double *z)
{
    const double *qb = x + b * q->sb + h * q->sh, *kb = qb + q->koff;
    double rate = n->fattr[1];
    nnc_attn_shape s = {q->B, q->T, q->H, q->D, 0, 0, 0, 0, 0, 0, 0, 0, (float)rate,
                        (uint64_t)n->iattr[2]};
    for (int i = 0; i < q->T; i++) {
        double mx = -INFINITY, sum = 0;
        int n_j = n->iattr[1] ? i + 1 : q->T;
        for (int j = 0; j < q->T; j++) {
            double sc = 0;
            for (int d = 0; d < q->D; d++)
                sc += qb[i * q->st + d] * kb[j * q->st + d];
            p[i * q->T + j] = j < n_j ? sc / sqrt(q->D) : -INFINITY;
            mx = fmax(mx, p[i * q->T + j]);
        }
        for (int j = 0; j < q->T; j++)
            sum += exp(p[i * q->T + j] - mx);
        for (int j = 0; j < q->T; j++) {
            p[i * q->T + j] = exp(p[i * q->T + j] - mx) / sum;
            z[i * q->T + j] = rate > 0 && !nnc_attention_keep(&s, b, h, i, j) ? 0
                              : 1 / (1 - rate);
        }
    }
}

void eval_attention(const Graph *g, const Node *n, const double *const *in, double *out)
{
    Geo q = geo_of(g, n);
    size_t tt = (size_t)q.T * (size_t)q.T;
    double *p = xmalloc(2 * tt * sizeof(double)), *z = p + tt;
    for (int b = 0; b < q.B; b++)
        for (int h = 0; h < q.H; h++) {
            const double *vb = in[0] + b * q.sb + h * q.sh + 2 * q.koff;
            probs(n, &q, in[0], b, h, p, z);
            for (int i = 0; i < q.T; i++)
                for (int d = 0; d < q.D; d++) {
                    double acc = 0;
                    for (int j = 0; j < q.T; j++)
                        acc += p[i * q.T + j] * z[i * q.T + j] * vb[j * q.st + d];
                    out[b * q.ob + h * q.oh + i * q.ot + d] = acc;
                }
        }
    free(p);
}

void eval_attention_back(const Graph *g, const Node *n, const double *const *in, double *out)
{
    Geo q = geo_of(g, n);
    size_t tt = (size_t)q.T * (size_t)q.T;
    const double *dy = in[0], *x = in[1];
    double *p = xmalloc(3 * tt * sizeof(double)), *z = p + tt, *ds = p + 2 * tt;
    double scale = 1 / sqrt(q.D);
    for (int b = 0; b < q.B; b++)
        for (int h = 0; h < q.H; h++) {
            long base = b * q.sb + h * q.sh, obase = b * q.ob + h * q.oh;
            const double *qb = x + base, *kb = qb + q.koff, *vb = qb + 2 * q.koff;
            double *dq = out + base, *dk = dq + q.koff, *dv = dq + 2 * q.koff;
            probs(n, &q, x, b, h, p, z);
            for (int i = 0; i < q.T; i++) {
                double rs = 0;
                for (int j = 0; j < q.T; j++) {
                    double a = 0;
                    for (int d = 0; d < q.D; d++)
                        a += dy[obase + i * q.ot + d] * vb[j * q.st + d];
                    ds[i * q.T + j] = a * z[i * q.T + j];
                    rs += p[i * q.T + j] * ds[i * q.T + j];
                }
                for (int j = 0; j < q.T; j++)
                    ds[i * q.T + j] = p[i * q.T + j] * (ds[i * q.T + j] - rs) * scale;
            }
            for (int t = 0; t < q.T; t++)
                for (int d = 0; d < q.D; d++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int j = 0; j < q.T; j++) {
                        gq += ds[t * q.T + j] * kb[j * q.st + d];
                        gk += ds[j * q.T + t] * qb[j * q.st + d];
                        gv += p[j * q.T + t] * z[j * q.T + t] * dy[obase + j * q.ot + d];
                    }
                    dq[t * q.st + d] = gq;
                    dk[t * q.st + d] = gk;
                    dv[t * q.st + d] = gv;
                }
        }
    free(p);
}
