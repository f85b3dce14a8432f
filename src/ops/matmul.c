/*
 * matmul.c - matrix products, emitted as calls to the runtime GEMM.
 *
 *   C = op(A) op(B), op(X) = X or X^T (iattr[0] = trans_a, iattr[1] =
 *   trans_b), all rank 2, row-major.
 *
 * Gradients, for each transpose combination (dC given):
 *   C = A B      dA = dC B^T     dB = A^T dC
 *   C = A B^T    dA = dC B       dB = dC^T A
 *   C = A^T B    dA = B dC^T     dB = A dC
 *   C = A^T B^T  dA = B^T dC^T   dB = dC^T A^T
 * so a dense layer (x W^T, W stored [out, in] like PyTorch) needs no
 * explicit transpose anywhere.
 *
 * An operand of rank > 2 is viewed as the matrix (product of its leading
 * dims, last dim), which costs nothing in row-major order: a convolution
 * multiplies im2col's (N, OH, OW, K) by W^T as (N*OH*OW, K) x (K, cout)
 * and gets (N, OH, OW, cout). The result keeps A's leading dims when A is
 * not transposed, and is a matrix otherwise.
 */
#include "ops.h"

/* Rows and columns of X viewed as a matrix, then of op(X). */
static int mrows(const Node *x)
{
    return (int)(shape_numel(&x->shape) / (size_t)x->shape.dim[x->shape.rank - 1]);
}
static int mcols(const Node *x) { return x->shape.dim[x->shape.rank - 1]; }
static int rows(const Node *x, int t) { return t ? mcols(x) : mrows(x); }
static int cols(const Node *x, int t) { return t ? mrows(x) : mcols(x); }
/* Is the matrix view's row (d = 0) or column (d = 1) dim the batch? */
static unsigned bit(const Node *x, int d)
{
    unsigned lead = (1u << (x->shape.rank - 1)) - 1;
    return d ? (x->bmask >> (x->shape.rank - 1)) & 1u : (x->bmask & lead) != 0;
}

/* The C expression of the view's rows of x ("nb * 28 * 28"). */
static const char *rows_expr(const Node *x, char *b, size_t len)
{
    size_t at = 0;
    for (int d = 0; d < x->shape.rank - 1; d++)
        at += (size_t)snprintf(b + at, len - at, d ? " * %s" : "%s", emit_dim(x, d));
    return b;
}

bool shape_matmul(Graph *g, Node *n)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1];
    if (a->shape.rank < 2 || b->shape.rank < 2) {
        diag_error(n->loc, "matmul needs operands of rank 2 or more, got %s and %s",
                   shape_str(&a->shape), shape_str(&b->shape));
        return false;
    }
    if (cols(a, ta) != rows(b, tb)) {
        diag_error(n->loc, "matmul: inner dimensions differ: %s%s x %s%s",
                   shape_str(&a->shape), ta ? "^T" : "",
                   shape_str(&b->shape), tb ? "^T" : "");
        return false;
    }
    if (!ta && a->shape.rank > 2) {
        n->shape = a->shape;
        n->shape.dim[a->shape.rank - 1] = cols(b, tb);
        n->bmask = (a->bmask & ((1u << (a->shape.rank - 1)) - 1)) |
                   (bit(b, tb ? 0 : 1) << (a->shape.rank - 1));
        return true;
    }
    n->shape.rank = 2;
    n->shape.dim[0] = rows(a, ta);
    n->shape.dim[1] = cols(b, tb);
    n->bmask = bit(a, ta ? 1 : 0) | (bit(b, tb ? 0 : 1) << 1);
    return true;
}

void grad_matmul(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    Node *n = NODE(g, y);
    NodeId a = n->in[0], b = n->in[1];
    int ta = n->iattr[0], tb = n->iattr[1];
    Loc l = n->loc;
    if (!ta && !tb) {
        dx[0] = graph_matmul(g, l, dy, b, 0, 1);
        dx[1] = graph_matmul(g, l, a, dy, 1, 0);
    } else if (!ta && tb) {
        dx[0] = graph_matmul(g, l, dy, b, 0, 0);
        dx[1] = graph_matmul(g, l, dy, a, 1, 0);
    } else if (ta && !tb) {
        dx[0] = graph_matmul(g, l, b, dy, 0, 1);
        dx[1] = graph_matmul(g, l, a, dy, 0, 0);
    } else {
        dx[0] = graph_matmul(g, l, b, dy, 1, 1);
        dx[1] = graph_matmul(g, l, dy, a, 1, 1);
    }
}

void eval_matmul(const Graph *g, const Node *n, const double *const *in,
                 double *out)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1];
    int m = rows(a, ta), nn = cols(b, tb), k = cols(a, ta);
    int lda = mcols(a), ldb = mcols(b);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nn; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = ta ? in[0][p * lda + i] : in[0][i * lda + p];
                double bv = tb ? in[1][j * ldb + p] : in[1][p * ldb + j];
                s += av * bv;
            }
            out[i * nn + j] = s;
        }
}

void emit_matmul(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]), *w = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1];
    char xr[96], wr[96], lda[32], ldb[32];
    rows_expr(x, xr, sizeof xr);
    rows_expr(w, wr, sizeof wr);
    snprintf(lda, sizeof lda, "%s", emit_dim(x, x->shape.rank - 1));
    snprintf(ldb, sizeof ldb, "%s", emit_dim(w, w->shape.rank - 1));
    const char *m = ta ? lda : xr, *k = ta ? xr : lda, *nn = tb ? wr : ldb;
    emit_line(e, "nnc_sgemm(%d, %d, %s, %s, %s, 1.0f, %s, %s, %s, %s, 0.0f, %s, %s);",
              ta, tb, m, nn, k, a[0], lda, a[1], ldb, a[2], nn);
}
