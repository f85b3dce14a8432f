/*
 * fuzz_weights.c - libFuzzer target: the input as the checkpoint of
 * `nnc --weights-from=CKPT` (and of --quantize=int8), read by the
 * compiler itself (weights_from_file, src/codegen/emit_weights.c), then
 * the weights embedded in the emitted C as that option does.
 *
 * The model, compiled once: a small CNN with a layer norm and an
 * embedding-free dense head, so that the checkpoint needs 4-D, 2-D and
 * 1-D tensors (conv2d.weight [4, 1, 3, 3] in PyTorch's layout, dense
 * weights [out, in], biases and the norm's gain):
 *
 *   input img[6, 6, 1]; conv2d(4, 3); flatten; layernorm;
 *   dense(5, activation=relu); dense(3)
 *
 * Oracles: weights_from_file returns the weights or NULL after printing
 * a message (stderr is a memory file, checked non-empty on NULL); the
 * weights it returns are finite and emit without an internal error; no
 * crash, no leak.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "nnc.h"

static const char source[] =
    "model fw {\n"
    "    input img[6, 6, 1]\n"
    "    conv2d(4, 3)\n"
    "    flatten\n"
    "    layernorm\n"
    "    dense(5, activation=relu)\n"
    "    dense(3)\n"
    "    loss softmax_cross_entropy\n"
    "    optimizer adam(lr=0.01)\n"
    "    batch 2\n"
    "}\n";

static Arena arena;
static Compiled compiled;
static int ready;   /* 1 compiled, -1 failed */

static void setup(void)
{
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    diag_out = devnull;
    SrcFile *src = arena_alloc(&arena, sizeof *src);
    src->name = "fw.nn";
    src->text = arena_strndup(&arena, source, sizeof source - 1);
    src->len = sizeof source - 1;
    Model *m = parse_file(&arena, src);
    PipelineOptions po = {2, NULL, true, 0};
    ready = m && !diag_errors && pipeline_compile(m, &po, &compiled) ? 1 : -1;
    if (ready < 0) {
        fprintf(stderr, "fuzz_weights: the model does not compile\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int mem_err = -1;
    if (!ready)
        setup();
    const char *path = fuzz_path(data, size);
    if (mem_err < 0 && (mem_err = memfd_create("err", 0)) < 0)
        abort();
    if (ftruncate(mem_err, 0) || lseek(mem_err, 0, SEEK_SET))
        abort();
    int saved_err = -1;
    if (!getenv("FUZZ_VERBOSE")) {
        fflush(stderr);
        saved_err = dup(2);
        dup2(mem_err, 2);
    }
    Weights *w = weights_from_file(&compiled, path);
    if (saved_err >= 0) {
        fflush(stderr);
        dup2(saved_err, 2);
        close(saved_err);
        struct stat st;
        if (!w && (fstat(mem_err, &st) || st.st_size == 0))
            __builtin_trap();   /* refused without a word */
    }
    if (w) {
        const Graph *g = &compiled.g;
        for (int i = 0; i < g->nparams; i++) {
            size_t k = shape_numel(&NODE(g, g->params[i])->shape);
            for (size_t j = 0; j < k; j++)
                if (!isfinite(w->data[i][j]))
                    __builtin_trap();
        }
        Buf b = {0};
        emit_weights_data(&b, &compiled, w, "fw");
        emit_weights_copy(&b, &compiled, w, "fw");
        buf_free(&b);
        weights_free(w);
    }
    return 0;
}
