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
 */
#include "ops.h"

/* Rows and columns of op(X). */
static int rows(const Node *x, int t) { return x->shape.dim[t ? 1 : 0]; }
static int cols(const Node *x, int t) { return x->shape.dim[t ? 0 : 1]; }
static unsigned bit(const Node *x, int d) { return (x->bmask >> d) & 1u; }

bool shape_matmul(Graph *g, Node *n)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1];
    if (a->shape.rank != 2 || b->shape.rank != 2) {
        diag_error(n->loc, "matmul needs rank-2 operands, got %s and %s",
                   shape_str(&a->shape), shape_str(&b->shape));
        return false;
    }
    if (cols(a, ta) != rows(b, tb)) {
        diag_error(n->loc, "matmul: inner dimensions differ: %s%s x %s%s",
                   shape_str(&a->shape), ta ? "^T" : "",
                   shape_str(&b->shape), tb ? "^T" : "");
        return false;
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
    int m = n->shape.dim[0], nn = n->shape.dim[1], k = cols(a, ta);
    int lda = a->shape.dim[1], ldb = b->shape.dim[1];
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
    char m[32], nn[32], k[32];
    snprintf(m, sizeof m, "%s", emit_dim(x, ta ? 1 : 0));
    snprintf(k, sizeof k, "%s", emit_dim(x, ta ? 0 : 1));
    snprintf(nn, sizeof nn, "%s", emit_dim(w, tb ? 0 : 1));
    char lda[32], ldb[32];
    snprintf(lda, sizeof lda, "%s", emit_dim(x, 1));
    snprintf(ldb, sizeof ldb, "%s", emit_dim(w, 1));
    emit_line(e, "nnc_sgemm(%d, %d, %s, %s, %s, 1.0f, %s, %s, %s, %s, 0.0f, %s, %s);",
              ta, tb, m, nn, k, a[0], lda, a[1], ldb, a[2], nn);
}
