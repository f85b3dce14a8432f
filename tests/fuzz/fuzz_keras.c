/*
 * fuzz_keras.c - libFuzzer target: `nnc import-keras` on the input as a
 * Keras model's to_json(), then the nnc source it writes through the
 * parser and the whole compiler, as `nnc import-keras m.json -o m.nn &&
 * nnc m.nn` would.
 *
 * import_keras_main prints its source to stdout and its errors to
 * stderr: both go to memory files for the call (stdout's is then the
 * source to compile), unless FUZZ_VERBOSE is set in the environment. A
 * sanitizer report during the call is then lost, but libFuzzer still
 * saves the input: replay it with FUZZ_VERBOSE=1 to see the report.
 *
 * Oracles: the importer's exit status is 0 or 1; what it writes parses
 * and compiles (nnc may still refuse it with a diagnostic), with no
 * internal error, no crash and no leak.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "nnc.h"

/* Runs import-keras on path with fds 1 and 2 in memory files; its exit
 * status, stdout's bytes in *out (malloc'd, NUL-terminated). */
static int import(const char *path, char **out, size_t *len)
{
    static int mem_out = -1, mem_err = -1;
    static char name[] = "import-keras";
    char *argv[] = {name, (char *)path, NULL};
    int saved_out, saved_err, rc;
    off_t n;

    if (getenv("FUZZ_VERBOSE") != NULL) {
        rc = import_keras_main(2, argv);
        *out = NULL;
        return rc;
    }
    if (mem_out < 0 && ((mem_out = memfd_create("out", 0)) < 0
                        || (mem_err = memfd_create("err", 0)) < 0))
        abort();
    if (ftruncate(mem_out, 0) || ftruncate(mem_err, 0) || lseek(mem_out, 0, SEEK_SET)
        || lseek(mem_err, 0, SEEK_SET))
        abort();
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    dup2(mem_out, 1);
    dup2(mem_err, 2);
    rc = import_keras_main(2, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    n = lseek(mem_out, 0, SEEK_END);
    *len = (size_t)n;
    if ((*out = malloc(*len + 1)) == NULL || pread(mem_out, *out, *len, 0) != n)
        abort();
    (*out)[*len] = '\0';
    return rc;
}

static void compile(const char *text, size_t len)
{
    static FILE *devnull;
    Arena arena = {0};

    if (!devnull)
        devnull = fopen("/dev/null", "w");
    diag_out = devnull;
    diag_errors = 0;
    SrcFile *src = arena_alloc(&arena, sizeof *src);
    src->name = "imported.nn";
    src->text = arena_strndup(&arena, text, len);
    src->len = len;
    Model *models = parse_file(&arena, src);
    for (const Model *m = diag_errors ? NULL : models; m; m = m->next) {
        Compiled c;
        PipelineOptions po = {2, NULL, true, 0};
        if (pipeline_compile(m, &po, &c)) {
            Buf b = {0};
            EmitOptions eo = {.prefix = m->name, .header = "imported.h"};
            emit_source(&b, &c, &eo);
            buf_free(&b);
        }
        pipeline_free(&c);
    }
    diag_flush();
    arena_free(&arena);
    diag_errors = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    int rc = import(fuzz_path(data, size), &text, &len);

    if (rc != 0 && rc != 1)
        __builtin_trap();
    if (rc == 0 && text != NULL)
        compile(text, len);
    free(text);
    return 0;
}
