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

/* The gradients of a product y = op(a) op(b) by the table above, made
 * with `product` (graph_matmul, or bmatmul for batched products). */
typedef NodeId (*ProductFn)(Graph *g, Loc loc, NodeId a, NodeId b, int ta, int tb);
static void grad_product(Graph *g, NodeId y, NodeId dy, NodeId *dx, ProductFn product)
{
    Node *n = NODE(g, y);
    NodeId a = n->in[0], b = n->in[1];
    int ta = n->iattr[0], tb = n->iattr[1];
    Loc l = n->loc;
    if (!ta && !tb) {
        dx[0] = product(g, l, dy, b, 0, 1);
        dx[1] = product(g, l, a, dy, 1, 0);
    } else if (!ta && tb) {
        dx[0] = product(g, l, dy, b, 0, 0);
        dx[1] = product(g, l, dy, a, 1, 0);
    } else if (ta && !tb) {
        dx[0] = product(g, l, b, dy, 0, 1);
        dx[1] = product(g, l, a, dy, 0, 0);
    } else {
        dx[0] = product(g, l, b, dy, 1, 1);
        dx[1] = product(g, l, dy, a, 1, 1);
    }
}

void grad_matmul(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    grad_product(g, y, dy, dx, graph_matmul);
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

/* ---- batched products ----------------------------------------------------
 * bmatmul(a, b) (iattr[0] = trans_a, iattr[1] = trans_b): a product of
 * the last two axes for every index of the leading ones, which must be
 * equal (no broadcasting): a (L..., M, K), b (L..., K, N) -> (L..., M, N),
 * torch.matmul's semantics for operands of one rank. Its gradients are
 * bmatmuls by the same table as matmul's. Emitted as a loop of runtime
 * GEMMs, one per leading index; the matrix axes are never the batch. */

static int brows(const Node *x, int t) { return x->shape.dim[x->shape.rank - (t ? 1 : 2)]; }
static int bcols(const Node *x, int t) { return x->shape.dim[x->shape.rank - (t ? 2 : 1)]; }

static NodeId bmatmul(Graph *g, Loc loc, NodeId a, NodeId b, int ta, int tb)
{
    Node proto = {0};
    proto.op = OP_BMATMUL;
    proto.nin = 2;
    proto.in[0] = a;
    proto.in[1] = b;
    proto.loc = loc;
    proto.what = "matmul";
    proto.iattr[0] = ta;
    proto.iattr[1] = tb;
    return graph_add_node(g, &proto);
}

bool shape_bmatmul(Graph *g, Node *n)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1], r = a->shape.rank;
    unsigned lead = r >= 2 ? (1u << (r - 2)) - 1 : 0;
    bool same = r >= 2 && b->shape.rank == r && (a->bmask & ~lead) == 0 &&
                (b->bmask & ~lead) == 0 && a->bmask == b->bmask;
    for (int d = 0; same && d < r - 2; d++)
        same = a->shape.dim[d] == b->shape.dim[d];
    if (!same) {
        diag_error(n->loc, "matmul: %s and %s need equal leading dimensions and two matrix "
                   "axes", shape_str(&a->shape), shape_str(&b->shape));
        return false;
    }
    if (bcols(a, ta) != brows(b, tb)) {
        diag_error(n->loc, "matmul: inner dimensions differ: %s%s x %s%s (%d and %d)",
                   shape_str(&a->shape), ta ? "^T" : "", shape_str(&b->shape), tb ? "^T" : "",
                   bcols(a, ta), brows(b, tb));
        return false;
    }
    n->shape = a->shape;
    n->shape.dim[r - 2] = brows(a, ta);
    n->shape.dim[r - 1] = bcols(b, tb);
    n->bmask = a->bmask;
    return true;
}

void grad_bmatmul(Graph *g, NodeId y, NodeId dy, NodeId *dx)
{
    grad_product(g, y, dy, dx, bmatmul);
}

/* Matrices: count, and floats per matrix of a, b and y. */
static size_t nmats(const Node *n)
{
    size_t k = 1;
    for (int d = 0; d < n->shape.rank - 2; d++)
        k *= (size_t)n->shape.dim[d];
    return k;
}
static size_t matsize(const Node *x)
{
    return (size_t)x->shape.dim[x->shape.rank - 1] * (size_t)x->shape.dim[x->shape.rank - 2];
}

void eval_bmatmul(const Graph *g, const Node *n, const double *const *in, double *out)
{
    const Node *a = NODE(g, n->in[0]), *b = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1];
    int m = brows(a, ta), nn = bcols(b, tb), k = bcols(a, ta);
    int lda = a->shape.dim[a->shape.rank - 1], ldb = b->shape.dim[b->shape.rank - 1];
    for (size_t l = 0; l < nmats(n); l++) {
        const double *A = in[0] + l * matsize(a), *B = in[1] + l * matsize(b);
        double *C = out + l * matsize(n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < nn; j++) {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta ? A[p * lda + i] : A[i * lda + p]) *
                         (tb ? B[j * ldb + p] : B[p * ldb + j]);
                C[i * nn + j] = s;
            }
    }
}

void emit_bmatmul(Emit *e, const Graph *g, const Node *n, const char *const *a)
{
    const Node *x = NODE(g, n->in[0]), *w = NODE(g, n->in[1]);
    int ta = n->iattr[0], tb = n->iattr[1], r = n->shape.rank;
    int m = brows(x, ta), nn = bcols(w, tb), k = bcols(x, ta);
    int lda = x->shape.dim[r - 1], ldb = w->shape.dim[r - 1];
    emit_line(e, "/* (%s) matrices: a %dx%d%s, b %dx%d%s, y %dx%d */", op_count(n, r - 2),
              x->shape.dim[r - 2], lda, ta ? "^T" : "", w->shape.dim[r - 2], ldb,
              tb ? "^T" : "", m, nn);
    emit_line(e, "for (size_t l = 0; l < %s; l++)", op_count(n, r - 2));
    emit_line(e, "    nnc_sgemm(%d, %d, %d, %d, %d, 1.0f, %s + l * %zu, %d, %s + l * %zu, %d, "
                 "0.0f, %s + l * %zu, %d);", ta, tb, m, nn, k, a[0], matsize(x), lda, a[1],
              matsize(w), ldb, a[2], matsize(n), nn);
}
