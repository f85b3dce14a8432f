/*
 * codegen.h - what the emitter's files share, and nothing outside
 * src/codegen/ needs (nnc.h declares the emitter's entry points).
 *
 *   emit.c          C-writing primitives (emit.h, shared with the op rules)
 *   emit_kernel.c   one kernel: fused loops, GEMM epilogues, single ops
 *   emit_program.c  the model's source: memory layout, predict_rows and
 *                   train_step as lists of kernels
 *   emit_api.c      the header (sizes, API) and the API's functions
 *   emit_ckpt.c     checkpoint save/load/export
 *   emit_bench.c    --emit=bench, emit_main.c --emit=main,
 *   emit_weights.c  weights compiled into the C
 */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include "emit.h"

#define CTX_BYTES 128   /* room reserved for struct <prefix>_ctx */

/* Float offsets of the regions in ctx->mem (parameters start at 0). */
typedef struct Regions {
    size_t grads, state, scratch, kv, total;   /* kv: generation's cache */
} Regions;
Regions emit_offsets(const Compiled *c);
/* emit_program.c: can train_step be emitted as grad_step + apply_update? */
bool emit_splittable(const Compiled *c);

/* emit_kernel.c: the buffer (a pointer expression) of a node in a
 * program, and the statements of kernel k (numbered `index` in its
 * comment); the declarations of a program's arena buffers. */
const char *emit_buf(const Graph *g, const Plan *p, NodeId id);
void emit_kernel(Emit *e, const Compiled *c, const Plan *p, const Kernel *k, int index);
void emit_buffers(Emit *e, const Compiled *c, const Plan *p);

/* emit_api.c: floats per sample of a batch-major node; the statements
 * that set the optimizer state that does not start at zero. */
int emit_per_sample(const Node *n);
void emit_state_init(Buf *out, const Compiled *c);
/* The API's functions (create, init, reset, predict, accuracy, lr, ...). */
void emit_api(Emit *e, const Compiled *c, const char *p, const Weights *w);
/* p_create, p_destroy, p_predict and p_accuracy, around p_init and a
 * static p_predict_rows(ctx, x, y, nb) for nb <= P_BATCH rows (also the
 * int8 models', emit_quant.c). */
void emit_create_predict(Buf *out, const char *p);
void emit_accuracy(Buf *out, const Compiled *c, const char *p);

/* emit_ckpt.c: <p>_save, <p>_load and <p>_export. */
void emit_checkpoints(Emit *e, const Compiled *c, const char *p);

#endif /* NNC_CODEGEN_H */
