/*
 * nnc.h - the compiler's internal header: one commented section per module.
 *
 * The pipeline is
 *     parse (grammar/) -> lower (AST -> graph IR, shapes inferred as nodes
 *     are built) -> autodiff -> optim -> passes -> emit (C source)
 * and driver/main.c calls it as a plain list of functions.
 *
 * Memory: everything the compiler allocates comes from arenas (arena.c)
 * and is released all at once; nothing is freed individually, and a
 * failed allocation exits with "out of memory", so nobody checks for NULL.
 *
 * The IR refers to nodes by NodeId (an index into Graph.nodes, 0 meaning
 * "none"), never by pointer, so the node array can grow and side tables
 * can be plain arrays indexed by id.
 */
#ifndef NNC_H
#define NNC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NNC_VERSION "0.1.0"

#if defined(__GNUC__)
#define NNC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NNC_NORETURN __attribute__((noreturn))
#else
#define NNC_PRINTF(f, a)
#define NNC_NORETURN
#endif

/* ======================================================================
 * arena.c - bump allocation and small string/buffer helpers
 * ====================================================================== */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t bytes);          /* zeroed, 16-aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) NNC_PRINTF(2, 3);
void arena_free(Arena *a);                          /* releases all blocks */

/* Grows a malloc'd array so that it can hold at least `need` elements
 * (used for the few arrays that outlive no arena, like Graph.nodes). */
void *nnc_grow(void *p, int *cap, int need, size_t elem);

/* malloc, calloc, realloc and strdup that print "nnc: out of memory" and
 * exit 1 when the allocation fails, as an arena does: for the side
 * tables of passes, which then never check for NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Growable text buffer; the emitter writes everything through one. */
typedef struct Buf {
    char *data;
    size_t len, cap;
} Buf;

void buf_printf(Buf *b, const char *fmt, ...) NNC_PRINTF(2, 3);
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
void buf_puts(Buf *b, const char *s);
void buf_append(Buf *b, const void *p, size_t n);
void buf_free(Buf *b);

NNC_NORETURN void nnc_fatal(const char *file, int line, const char *fmt, ...)
    NNC_PRINTF(3, 4);
#define NNC_ASSERT(c) \
    ((c) ? (void)0 : nnc_fatal(__FILE__, __LINE__, "assertion '%s' failed", #c))
#define nnc_unreachable() nnc_fatal(__FILE__, __LINE__, "unreachable")

/* ======================================================================
 * diag.c - diagnostics in the gcc/clang format, with source line and caret
 * ====================================================================== */

typedef struct SrcFile {
    const char *name;   /* as given on the command line */
    const char *text;   /* whole contents, NUL-terminated */
    size_t len;
} SrcFile;

typedef struct Loc {
    const SrcFile *src; /* NULL: no location (made by the compiler) */
    int line, col;      /* 1-based */
    int len;            /* characters to underline, >= 1 */
} Loc;

extern int diag_errors;         /* errors reported so far */
#define DIAG_MAX_ERRORS 20      /* errors printed; past them nnc stops reading */
extern bool diag_quiet;         /* tests: count errors, print nothing */
extern FILE *diag_out;          /* default stderr */

void diag_error(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
void diag_warning(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
void diag_note(Loc loc, const char *fmt, ...) NNC_PRINTF(2, 3);
/* Diagnostics are held back and printed sorted by position (line, column)
 * at exit, or now: call it before reading diag_out or resetting it. */
void diag_flush(void);
/* The closest of `cands` (NULL-terminated) to `name` within an edit
 * distance that makes a typo likely, or NULL. */
const char *diag_suggest(const char *name, const char *const *cands);

/* ======================================================================
 * ast.c - the syntax tree built by the parser (nothing rewrites it)
 * ====================================================================== */

typedef enum { EX_CALL, EX_NAME, EX_NUM, EX_LIST } ExprKind;

typedef struct Arg Arg;
typedef struct Expr {
    ExprKind kind;
    Loc loc;
    const char *name;   /* EX_CALL: callee; EX_NAME: identifier */
    double num;         /* EX_NUM */
    bool is_int;        /* EX_NUM written without '.' or exponent */
    Arg *args;          /* EX_CALL: arguments in order; EX_LIST: the
                           numbers of [a, b, ...] (keyword arguments'
                           values only: shape=[2, -1]) */
} Expr;

struct Arg {
    const char *key;    /* keyword argument name, or NULL if positional */
    Loc key_loc;
    Expr *val;
    Arg *next;
};

typedef enum { ST_INPUT, ST_ASSIGN, ST_LAYER, ST_LOSS, ST_OPTIMIZER,
               ST_BATCH, ST_ERROR, ST_FREEZE } StmtKind;

typedef struct Stmt {
    StmtKind kind;
    Loc loc;
    const char *name;   /* ST_INPUT, ST_ASSIGN: the bound name */
    Loc name_loc;
    Arg *dims;          /* ST_INPUT: dimensions (numbers) */
    Expr *expr;         /* ST_ASSIGN, ST_LAYER, ST_LOSS, ST_OPTIMIZER,
                           ST_BATCH (the number), ST_FREEZE (the name) */
    bool error_input;   /* ST_ERROR (a syntax error): in an input
                           statement; `name` is what it declares or
                           assigns, if the error came after it */
    struct Stmt *next;
} Stmt;

typedef struct Model {
    const char *name;
    Loc loc;
    Stmt *stmts;
    bool broken;        /* has syntax errors (ST_ERROR statements) */
    struct Model *next;
} Model;

Expr *ast_num(Arena *a, Loc loc, double v, bool is_int);
Expr *ast_name(Arena *a, Loc loc, const char *name);
Expr *ast_call(Arena *a, Loc loc, const char *name, Arg *args);
Expr *ast_list(Arena *a, Loc loc, Arg *items);
Arg *ast_arg(Arena *a, const char *key, Loc key_loc, Expr *val);
Arg *ast_arg_append(Arg *list, Arg *a);   /* circular while built: */
Arg *ast_arg_list_end(Arg *list);          /* cut, first element */
Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc);
Stmt *ast_stmt_append(Stmt *list, Stmt *s);
Stmt *ast_stmt_list_end(Stmt *list);
void ast_dump(FILE *f, const Model *m);

/* parser.y: parses a whole file; returns the models (NULL if none). After
 * syntax errors (diag_errors > 0) the models that were recognized are
 * still returned, with ST_ERROR statements and `broken` set, so that
 * lowering can report their other errors too. */
Model *parse_file(Arena *a, const SrcFile *src);
/* Reads a file into an arena; NULL after printing an error on failure. */
SrcFile *src_read(Arena *a, const char *path);
/* The whole of path, malloc'd and NUL-terminated, or NULL after
 * "nnc: error: cannot VERB 'path': why". */
unsigned char *src_read_bytes(const char *path, size_t *len, const char *verb);
SrcFile *src_from_string(Arena *a, const char *name, const char *text);

/* ======================================================================
 * The graph IR (graph.c) and the op table (ops.def, ops/ *.c)
 * ====================================================================== */

typedef uint32_t NodeId;
#define NODE_NONE 0u
#define NNC_MAX_IN 4
#define NNC_MAX_DIMS 6

typedef struct Shape {
    int rank;
    int dim[NNC_MAX_DIMS];
} Shape;

/* Op kinds group ops the way passes treat them. */
typedef enum {
    K_SOURCE,   /* no inputs: model input, target, parameter, constant */
    K_EWISE,    /* elementwise with broadcasting; emits a C expression */
    K_REDUCE,   /* sums over axes */
    K_CONTRACT, /* matrix products (runtime GEMM) */
    K_ROWWISE,  /* per-row ops over the last axis (softmax, layernorm), and
                   dropout, which draws its mask in a loop of its own */
    K_CHANNEL,  /* per-channel ops reducing over all but the last axis */
    K_WINDOW,   /* sliding windows over NHWC images (im2col, pooling);
                   iattr: kh, kw, sh, sw, same-padding, and for
                   gradients the image's height and width */
    K_MOVE,     /* data movement without arithmetic (reshape) */
    K_LOSS,     /* a scalar loss and its fused gradient */
    K_UPDATE    /* optimizer steps: the only in-place writes */
} OpKind;

/* Op flags. */
enum {
    F_COMMUTE = 1 << 0, /* binary op whose inputs may be swapped */
    F_KINK = 1 << 1,    /* not differentiable at 0: tests sample away */
    F_PROB = 1 << 2,    /* inputs are probabilities: tests sample in (0,1) */
    F_NOGRAD = 1 << 3,  /* defined only as a gradient: no grad rule */
    F_ATTR = 1 << 4,    /* fattr[0] is a parameter (alpha, delta): dumped */
    F_INDEX = 1 << 5,   /* input 1 holds class indices into input 0's last
                           axis: tests sample integers there */
    F_ROWS = 1 << 6,    /* with F_INDEX: indices into input 0's first axis */
    F_SUMRIDER = 1 << 7, /* a per-channel sum of the output may ride on the
                           op (fuse.c): its emit rule writes that sum too,
                           to Emit.sum when not NULL */
    F_EPIBIAS = 1 << 8, /* x + y: as a GEMM's epilogue, the runtime GEMM
                           can add a row vector itself (nnc_sgemm_bias) */
    F_EPIRELU = 1 << 9, /* x > 0 ? x : 0, likewise (nnc_sgemm_bias's relu) */
    F_STATE = 1 << 10,  /* reads and writes state kept in the context across
                         * calls (generation's cache): no reference of its
                         * own; tested end to end against predict */
    F_FWDSIDE = 1 << 11, /* f'(x) of an activation: joins the forward's loop
                         * over x as a second output (fuse.c) */
    F_PARAMRIDER = 1 << 12 /* a layernorm layer's backward (dy, x, gamma):
                         * its gamma's gradient (LAYERNORM_DGAMMA of the
                         * same dy and x) and beta's (the sum of dy over
                         * rows) may ride on it (fuse.c): its emit rule
                         * writes them to Emit.side and Emit.sum */
};

/* Roles of source nodes, and flags on others. */
typedef enum { R_NONE, R_INPUT, R_TARGET, R_PARAM, R_CONST } Role;
typedef enum { INIT_ZERO, INIT_GLOROT, INIT_UNIFORM, INIT_ONE } Init; /* UNIFORM: +-0.05 */

typedef enum {
#define OP(name, arity, kind, flags, shape, grad, emit, eval) OP_##name,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

typedef struct Node {
    Op op;
    Shape shape;
    unsigned bmask;         /* bit d set: dim d is the batch dimension */
    int nin;
    NodeId in[NNC_MAX_IN];
    int iattr[8];           /* integer attributes (transpose flags, ...) */
    double fattr[6];        /* float attributes (lr, eps, value, ...) */
    Role role;
    Init init;              /* R_PARAM: how to initialize */
    int fan_in, fan_out;    /* R_PARAM with INIT_GLOROT */
    Shape ckpt_shape;       /* R_PARAM: shape in checkpoints when rank > 0
                               (a conv kernel (out, kh*kw*in) is saved as
                               (out, kh, kw, in): same data) */
    int hwc[3];             /* R_PARAM: nonzero when the last axis runs over a
                               flattened (h, w, c) image (a dense layer's
                               input columns after flatten): PyTorch's
                               order is (c, h, w) (checkpoint interop) */
    const char *name;       /* params: checkpoint name; others: optional */
    Loc loc;                /* the DSL text this node derives from */
    const char *what;       /* short description for comments ("dense") */
    bool is_grad;           /* made by autodiff */
    bool is_frozen;         /* R_PARAM: trainable=false or under `freeze`:
                               saved and loaded, never differentiated */
    NodeId kernel;          /* fuse: the root of the kernel that computes
                               this node; NODE_NONE: a kernel of its own */
    bool sibling;           /* fuse: a member that its kernel also stores,
                               for later kernels (an F_FWDSIDE node) */
} Node;

typedef struct Graph Graph;

/* Shape rule: fills n->shape and n->bmask from the inputs; returns false
 * after a located diagnostic if the inputs are incompatible. */
typedef bool (*ShapeFn)(Graph *g, Node *n);
/* Grad rule: given dy (the gradient of the output), sets dx[i] to the
 * gradient of input i (NODE_NONE where none). dx[i] may have the output's
 * shape where input i was broadcast: autodiff sums it back. */
typedef void (*GradFn)(Graph *g, NodeId y, NodeId dy, NodeId *dx);
/* Emit rule. K_EWISE: args are the inputs' element expressions, and the
 * rule appends one C expression for the output element. Other kinds:
 * args are the inputs' buffer pointers then the output's, and the rule
 * appends C statements. */
typedef struct Emit Emit;   /* codegen/emit.h */
typedef void (*EmitFn)(Emit *e, const Graph *g, const Node *n,
                       const char *const *args);
/* Reference evaluation in double (tests, the finite-difference check):
 * in[i] holds input i (full shapes), out the output. */
typedef void (*EvalFn)(const Graph *g, const Node *n,
                       const double *const *in, double *out);

typedef struct OpInfo {
    const char *name;   /* lower case, as in dumps */
    int arity;          /* number of inputs */
    OpKind kind;
    unsigned flags;
    ShapeFn shape;
    GradFn grad;        /* NULL: not differentiable */
    EmitFn emit;
    EvalFn eval;        /* NULL for sources; an update's: its first step */
} OpInfo;

extern const OpInfo optab[OP_COUNT];
/* The op's name in lower case ("matmul"), for dumps and comments. */
const char *op_name(Op op);

/* Optimizer description (lowered to UPDATE nodes by optim.c). */
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD } OptKind;
/* Learning-rate schedules (lr_schedule=): the lr of step s (0-based) */
typedef enum { LRS_CONSTANT, LRS_COSINE, LRS_EXPONENTIAL } LrSchedule;
typedef struct Optimizer {
    OptKind kind;
    double lr, momentum;             /* sgd, rmsprop */
    double beta1, beta2, eps;        /* adam, adamw; eps: rmsprop, adagrad */
    double weight_decay;             /* sgd, adam: L2; adamw: decoupled */
    bool decay_matrices;             /* decay=matrices: weight_decay only on
                                        parameters of rank >= 2 (nanoGPT) */
    double rho, init;                /* rmsprop; adagrad's initial accumulator */
    bool nesterov, centered;
    LrSchedule schedule;
    double decay_steps, alpha, decay_rate; /* cosine; exponential */
    bool staircase;
    long warmup;                     /* linear warm-up steps, 0: none */
    double clipnorm;                 /* global_clipnorm, 0: none */
    Loc loc;
} Optimizer;

struct Graph {
    Node *nodes;        /* nodes[0] is unused: NODE_NONE */
    int nnodes, cap;
    int batch;          /* the training batch */
    NodeId input, target, output, loss;
    NodeId *params;     /* in declaration order */
    int nparams, pcap;
    NodeId *grads;      /* grads[i]: gradient of params[i] (autodiff) */
    Optimizer opt;
    const char *name;   /* the model's name */
    Loc loc;
    Arena arena;        /* names made while building (freed with it) */
    /* a decode graph (lower_decode): one new position of a sequence
     * model, its attention layers reading a cache of the packed queries,
     * keys and values of the positions before it */
    bool decode;
    int decode_T;       /* the sequence model's T: positions 0 .. T-1 */
    size_t kv_floats;   /* the cache: every attention layer's T x 3C */
};

#define NODE(g, id) (&(g)->nodes[(id)])

void graph_init(Graph *g, const char *name, int batch);
void graph_free(Graph *g);
/* Appends a node, runs its shape rule; NODE_NONE after a diagnostic. */
NodeId graph_add(Graph *g, Op op, Loc loc, int nin, const NodeId *in);
/* Appends a copy of `proto` (op, inputs, attributes, and for SUM_TO and
 * BROADCAST_TO the target shape), then runs the shape rule. */
NodeId graph_add_node(Graph *g, const Node *proto);
NodeId graph_add1(Graph *g, Op op, Loc loc, NodeId a);
/* Output, loss and gradients follow a replacement map (passes). */
void graph_follow(Graph *g, const NodeId *repl);
NodeId graph_add2(Graph *g, Op op, Loc loc, NodeId a, NodeId b);
NodeId graph_add3(Graph *g, Op op, Loc loc, NodeId a, NodeId b, NodeId c);
/* Sources: a batched input/target (shape excludes the batch), a
 * parameter, or a constant filled with one value. */
NodeId graph_source(Graph *g, Role role, Loc loc, const Shape *per_sample);
NodeId graph_param(Graph *g, Loc loc, const char *name, const Shape *s,
                   Init init, int fan_in, int fan_out);
NodeId graph_const(Graph *g, Loc loc, const Shape *s, double value);
NodeId graph_matmul(Graph *g, Loc loc, NodeId a, NodeId b, int ta, int tb);
NodeId graph_sum_to(Graph *g, Loc loc, NodeId x, NodeId like);
NodeId graph_bcast_to(Graph *g, Loc loc, NodeId x, NodeId like);
NodeId graph_scale(Graph *g, Loc loc, NodeId x, double s);
/* RESHAPE of x to `s` (full shape, batch mask `bmask`); same numel. */
NodeId graph_reshape(Graph *g, Loc loc, NodeId x, const Shape *s, unsigned bmask);
/* Same shape and batch mask: one element index serves both nodes. */
bool graph_same_layout(const Node *a, const Node *b);
/* Users of each node (calloc'd, by id), counting one more for the output,
 * the loss and each gradient: the values the graph must keep. */
int *graph_uses(const Graph *g);
/* Walks the nodes in order: each first reads its inputs through the
 * replacement map, then `rule` may change it in place (setting *changed)
 * or return the node that now stands for it (NODE_NONE: itself); the
 * graph's roles follow the map. Returns whether anything changed. */
typedef NodeId (*RewriteFn)(Graph *g, NodeId id, const NodeId *repl, bool *changed);
bool graph_rewrite(Graph *g, RewriteFn rule);
/* Is parameter i trained (it has a gradient, after autodiff)? Batchnorm's
 * running statistics are not: PyTorch calls them buffers. */
bool graph_is_trained(const Graph *g, int i);
/* Floats of the parameters that are trained (trained = true) or not
 * (batchnorm's running statistics; frozen parameters count in neither). */
size_t graph_param_floats(const Graph *g, bool trained);
/* Floats of the frozen parameters (trainable=false, freeze). */
size_t graph_frozen_floats(const Graph *g);
size_t shape_numel(const Shape *s);
bool shape_eq(const Shape *a, const Shape *b);
/* "(32, 128)" into a static rotating buffer, for messages. */
const char *shape_str(const Shape *s);
/* Is the node's shape numpy-broadcastable from `in` to `out`? */
bool shape_bcast(const Shape *a, const Shape *b, Shape *out);

/* verify.c: checks the IR invariants; returns false after printing. */
bool verify(const Graph *g);

/* irprint.c: stable, diffable text dump; JSON dump (cJSON). */
void ir_print(FILE *f, const Graph *g);
char *ir_json(const Graph *g);  /* malloc'd */

/* eval.c: evaluates every node in double. src[id] provides the values of
 * source nodes (R_INPUT, R_TARGET, R_PARAM); constants are filled. The
 * result is vals[id] (malloc'd arrays; eval_free releases them). */
double **eval_graph(const Graph *g, double *const *src);
void eval_free(const Graph *g, double **vals);

/* ======================================================================
 * lower.c - AST to graph IR: names, layers, arguments, shapes
 * (lower_layers.c: the layer table and lowerers; lower_train.c: loss and
 * optimizer; sema.c: arguments checked against the tables; the tables'
 * types are in sema.h, the lowering state in lower.h)
 * ====================================================================== */

/* Lowers one model into g (forward graph, target, loss, optimizer spec).
 * Returns false after diagnostics. */
bool lower_model(const Model *m, Graph *g);

/* ======================================================================
 * autodiff.c, optim.c - the training graph
 * ====================================================================== */

/* Appends the backward graph of `y` seeded with `dy` and stores in dx[i]
 * the gradient of wrt[i] (NODE_NONE if y does not depend on it). */
void ad_backward(Graph *g, NodeId y, NodeId dy, const NodeId *wrt, int n,
                 NodeId *dx);
/* Differentiates the loss with respect to every parameter that is not
 * frozen (g->grads; NODE_NONE for the frozen ones). */
void ad_build(Graph *g);
/* Has the model frozen parameters (trainable=false, freeze)? */
bool ad_any_frozen(const Graph *g);
/* Appends one UPDATE node per parameter. */
void optim_build(Graph *g);
/* The name of state buffer s in checkpoints, after torch.optim's state
 * keys: "exp_avg", "momentum_buffer", ... */
const char *optim_state_name(const Optimizer *o, int s);

/* ======================================================================
 * passes/ - graph transformations, one entry point each
 * ====================================================================== */

/* Each pass returns whether it changed the graph. Contracts are above
 * each entry point; the driver runs verify() after every pass. */

/* losshead.c: bce(sigmoid(z)) -> sigmoid_bce(z), before autodiff. */
bool pass_losshead(Graph *g);
/* The loss a fused head was made from (bce for sigmoid_bce), else op. */
Op losshead_unfused(Op op);
/* crop.c: a convolution under a valid pooling computes only the positions
 * the pooling reads (im2col iattr[5], iattr[6]), before autodiff. */
bool pass_crop(Graph *g);
/* simplify.c: constant folding and algebraic identities (x*1, x+0,
 * scale(scale(x)), identity broadcasts and sums). */
bool pass_simplify(Graph *g);
/* cse.c: merges nodes that compute the same value. */
bool pass_cse(Graph *g);
/* dce.c: removes nodes that neither the loss, the output nor an update
 * needs; renumbers the rest keeping topological order. */
bool pass_dce(Graph *g);
/* poolrelu.c: relu_back(maxpool_back(dy, x), x) -> one maxpool_back with
 * the relu's derivative (iattr[7]); run dce after it. */
bool pass_poolrelu(Graph *g);
/* fuse.c: groups nodes into kernels (Node.kernel): elementwise chains,
 * GEMM epilogues, reductions riding on a loop, one optimizer update. */
bool pass_fuse(Graph *g);
/* Convolutions in chunks (fuse.c): a product or im2col computed a block
 * at a time inside the kernel of the op that reads it (node_chunked); a
 * convolution's weight gradient, summed in blocks of rows (node_wgrad);
 * the images of a chunk of col2im's product; the rows of a block of an
 * im2col or of a weight gradient's sum; and the floats a node's buffer
 * holds (a chunk's or block's for chunked nodes, its shape's otherwise).
 * GEMM_BLOCK_FLOATS: the floats of C a GEMM with an epilogue computes per
 * block when an im2col builds its A a block at a time (fuse.c);
 * GEMM_EPI_FLOATS: per block otherwise (emit_kernel.c). */
#define GEMM_BLOCK_FLOATS 65536
#define GEMM_EPI_FLOATS 262144
bool node_chunked(const Graph *g, const Node *n);
bool node_wgrad(const Graph *g, const Node *n);
/* The 2x2 max pooling gradient (maxpool_back) whose gradient, directly or
 * through a relu_back, is weight gradient c's dC when only c and
 * reductions read it (in live[], when given) and it spans several of c's
 * blocks: c then sums window by window (nnc_conv_wgrad_pool), fused with
 * the pooling's gradient or not. NODE_NONE otherwise. */
NodeId node_pool_wgrad(const Graph *g, const Node *c, const bool *live);
int chunk_images(const Node *n);
long block_rows(const Graph *g, const Node *n);
size_t node_floats(const Graph *g, NodeId id);
/* ops/conv.c: the call building rows [r0, r0 + rb) of im2col n into col. */
const char *im2col_geom(const Graph *g, const Node *n);
/* ops/conv.c: is maxpool_back n a 2x2, stride-2, unpadded window's; its
 * "n, h, w, oh, ow" (nnc_conv_wgrad_pool's geometry). */
bool maxpool2x2_back(const Graph *g, const Node *n);
const char *maxpool_back_geom(const Graph *g, const Node *n);
void emit_im2col_rows(Emit *e, const Graph *g, const Node *n, const char *x, const char *col);

/* ---- schedule.c, memplan.c: kernels, lifetimes and the memory plan ---- */

typedef enum {
    REG_NONE,    /* no buffer: fused into its kernel, or an inlined constant */
    REG_INPUT,   /* the caller's x */
    REG_TARGET,  /* the caller's y (training targets) */
    REG_OUTPUT,  /* the caller's output rows (predict) */
    REG_PARAM,   /* parameters */
    REG_GRAD,    /* parameter gradients, laid out like the parameters */
    REG_ARENA    /* everything else: planned, reused */
} Region;

/* Static layout shared by both programs: parameter offsets (gradients and
 * optimizer state mirror them), in floats, 64-byte aligned. */
typedef struct ModelLayout {
    size_t *param_off;      /* by node id (params only) */
    size_t param_floats;    /* size of the parameter region */
    size_t *grad_off;       /* by node id (trained params only): offset of
                               the gradient and each optimizer state buffer
                               in their regions; frozen parameters and
                               batchnorm's statistics have neither */
    size_t grad_floats;     /* size of the gradient region (and of each
                               optimizer state buffer) */
    int nstate;             /* optimizer state buffers per parameter */
    bool grads_exclusive;   /* every parameter gradient can live in the
                               gradient region */
} ModelLayout;

typedef struct Kernel {
    NodeId root;            /* the node that names the kernel */
    int first, n;           /* its nodes: Plan.members[first .. first+n) */
} Kernel;

typedef struct Plan {
    bool predict;           /* forward only, output to the caller */
    Kernel *kernels;
    int nkernels;
    NodeId *members;        /* nodes of each kernel, in id order */
    int nmembers;
    bool *in_prog;          /* by id: the program needs this node */
    Region *region;         /* by id */
    size_t *offset;         /* by id: floats into the region */
    int *def, *last;        /* by id: first and last kernel using it */
    NodeId *shares;         /* by id: computed in place of this input */
    int *grad_of;           /* by id: the parameter whose gradient it is, or -1 */
    size_t arena_floats;    /* planned arena size */
    size_t naive_floats;    /* one buffer per value of this plan */
    size_t lower_floats;    /* most floats live at once */
    double flops;
} Plan;

void layout_build(const Graph *g, ModelLayout *l);
void layout_free(ModelLayout *l);
/* Kernels and lifetimes of the training step or of predict. */
void plan_build(const Graph *g, const ModelLayout *l, bool predict, Plan *p);
/* memplan.c: arena offsets (greedy by size, in-place reuse), sizes. */
void plan_memory(const Graph *g, Plan *p);
/* Proves that no two buffers live at the same time overlap; false after
 * printing the first conflict. */
bool plan_check(const Graph *g, const Plan *p);
void plan_free(Plan *p);
/* Floats of one buffer per computed value (no fusion, no reuse): the
 * naive scheme -O0 planning improves on. */
size_t plan_naive_floats(const Graph *g, bool predict);
/* FLOPs of one node (2mnk for matrix products, else one per element). */
double node_flops(const Graph *g, NodeId id);
/* ops/attention.c: those of an attention node (its T x T x D products,
 * halved when causal). */
double attention_flops(const Graph *g, const Node *n);
/* ALIGN_FLOATS: every buffer starts on a 64-byte boundary. */
#define ALIGN_FLOATS 16
size_t align_floats(size_t n);

/* ======================================================================
 * codegen/ - the standalone C for a model (emit_program.c: the source,
 * emit_api.c: the header; codegen.h lists the files)
 * ====================================================================== */

typedef struct EmitOptions {
    const char *prefix;     /* symbol prefix (default: the model's name) */
    const char *header;     /* file name the .c includes ("seed.h") */
    bool profile;           /* time every kernel (--emit=bench) */
    const struct Weights *weights; /* embedded weights, or NULL (seed init) */
} EmitOptions;

/* A model through the whole pipeline: the final graph, its layout and
 * the plans of both programs, plus figures from before the passes. */
typedef struct Compiled {
    Graph g;
    ModelLayout layout;
    Plan train, predict;
    /* generation's decode program (its graph's predict plan), or NULL;
     * owner: the model whose context it runs in (set on the decode one) */
    struct Compiled *decode;
    const struct Compiled *owner;
    int nodes_before;           /* training graph nodes before passes */
    /* --max-ram (recompute.c): the budget (0: none), the forward nodes
     * recomputed in the backward pass, the step's FLOPs without them */
    size_t max_ram;
    int recomputed;
    double recompute_base_flops;
    size_t naive_train;         /* floats, one buffer per value (before passes) */
    size_t naive_predict;
} Compiled;

/* pipeline.c: everything from the AST to checked plans. */
typedef struct PipelineOptions {
    int opt;                /* -O level */
    const char *dump_after; /* stage name, "all" or NULL */
    bool verify_all;        /* verify after every stage, not only passes */
    size_t max_ram;         /* --max-ram: bytes for the whole context, 0: none */
} PipelineOptions;
bool pipeline_compile(const Model *m, const PipelineOptions *o, Compiled *c);
/* recompute.c: recomputes forward values in the backward pass where
 * that is faster than keeping them (large im2col matrices, when `fuse`),
 * and with a budget (--max-ram, 0: none) so that the whole context fits
 * `budget` bytes, at little extra work (a greedy search, measured by
 * planning trial graphs); false after an error naming the smallest budget
 * found. Runs on a compiled model and rebuilds its plans (fusing again
 * when `fuse`: the -O level runs fuse). */
bool recompute_fit(Compiled *c, size_t budget, bool fuse);
/* Copies every node s with S[s] (by id) for its backward readers, right
 * before the first of them; renumbers; returns the number of copies. */
int recompute_apply(Graph *g, const bool *S);
void pipeline_free(Compiled *c);
/* lower.c: the decode graph of a sequence model (input (batch, T) token
 * ids into an embedding, attention only in causal multihead_attention
 * layers): input (1, 2) = [token, position], output one position's row.
 * false (and no diagnostics) when the model has no such form. */
bool lower_decode(const Model *m, Graph *g);
/* The stages after parsing, in order, ending with a NULL name; --dump-after,
 * --help and the man page list them from here. */
typedef struct PassInfo {
    const char *name;
    int level;              /* lowest -O level that runs it */
    bool (*run)(Graph *g);  /* NULL for lower, which takes the model */
    bool verify;            /* verify after it even without --verify */
    bool baseline;          /* after it: the unoptimized training graph */
    const char *what;       /* for --help */
} PassInfo;
extern const PassInfo pipeline_passes[];
const PassInfo *pipeline_pass(const char *name);  /* NULL if unknown */

/* Appends the header / source of one model. */
void emit_header(Buf *out, const Compiled *c, const EmitOptions *o);
void emit_source(Buf *out, const Compiled *c, const EmitOptions *o);
/* --emit=bench: a program with the model that times each kernel. */
void emit_bench(Buf *out, const Compiled *c, const EmitOptions *o);
/* emit_main.c, --emit=main: the model and a main() running libnncrt's
 * training driver, in one file. */
void emit_main(Buf *out, const Compiled *c, const EmitOptions *o);
/* Header and source prologue/epilogue for a file holding several models. */
void emit_header_begin(Buf *out, const char *guard);
void emit_header_end(Buf *out, const char *guard);
void emit_source_begin(Buf *out, const char *header);
/* Region sizes in floats (params, grads, optimizer state, scratch). */
void emit_regions(const Compiled *c, size_t *params, size_t *grads, size_t *state,
                  size_t *scratch);

/* Exact bytes of a model's memory block (<PREFIX>_MEM_BYTES). */
size_t emit_mem_bytes(const Compiled *c);

/* codegen/emit_weights.c: weights compiled into the C as constant data
 * (--weights=embedded, --weights-from=CKPT); create/init copy them
 * instead of drawing from the seed. */
typedef struct Weights {
    int n;                  /* the graph's parameters, in g->params order */
    float **data;           /* n arrays of shape_numel floats */
    char *source;           /* for comments: "seed 7", "checkpoint 'x.st'" */
} Weights;
/* The weights <prefix>_create(seed) would draw (NULL: out of memory). */
Weights *weights_from_seed(const Compiled *c, uint64_t seed);
/* The weights of a safetensors checkpoint, validated against the model
 * (names, F32, shapes; optimizer state is ignored); NULL after printing
 * an error. */
Weights *weights_from_file(const Compiled *c, const char *path);
void weights_free(Weights *w);
/* The arrays (before <prefix>_reset) and the copies (in it). */
void emit_weights_data(Buf *out, const Compiled *c, const Weights *w, const char *prefix);
void emit_weights_copy(Buf *out, const Compiled *c, const Weights *w, const char *prefix);

/* report.c: --emit=stats (a JSON object, malloc'd) and --emit=dot. */
char *report_stats(const Compiled *c);
void report_dot(Buf *out, const Compiled *c);

/* nnc import-keras (import_keras.c): argv[0] is "import-keras"; returns
 * the exit status. */
int import_keras_main(int argc, char **argv);

#endif /* NNC_H */
