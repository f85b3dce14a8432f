/*
 * fuzz_nnc.c - libFuzzer target: source text through the whole compiler
 * in-process (parse, lower, autodiff, optimizer, passes, plans, emit of
 * the header, the source, the bench program, stats, dot, graph JSON and
 * the text IR into memory), at each -O level chosen by the first byte.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... (see `make fuzz`)
 *
 * Diagnostics are printed to /dev/null so that their code (source line,
 * caret) runs too. Every input must leave diag_errors as the only trace:
 * no exit, no abort, no leak (LeakSanitizer checks after each run with
 * -detect_leaks=1).
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

static void compile(const Model *models, int opt)
{
    for (const Model *m = models; m; m = m->next) {
        Compiled c;
        PipelineOptions po = {opt, NULL, opt == 1, 0};
        int before = diag_errors;
        bool ok = pipeline_compile(m, &po, &c);
        if (ok && diag_errors == before) {
            EmitOptions eo = {m->name, "fuzz.h", false};
            Buf b = {0};
            emit_header_begin(&b, "FUZZ_H");
            emit_header(&b, &c, &eo);
            emit_header_end(&b, "FUZZ_H");
            emit_source_begin(&b, "fuzz.h");
            emit_source(&b, &c, &eo);
            EmitOptions bo = {m->name, NULL, true};
            emit_bench(&b, &c, &bo);
            EmitOptions mo = {m->name, NULL, false};
            emit_main(&b, &c, &mo);
            report_dot(&b, &c);
            char *j = report_stats(&c);
            free(j);
            j = ir_json(&c.g);
            free(j);
            size_t len;
            FILE *f = open_memstream(&j, &len);
            if (f) {
                ir_print(f, &c.g);
                fclose(f);
                free(j);
            }
            buf_free(&b);
        }
        pipeline_free(&c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    diag_out = devnull;
    diag_errors = 0;
    int opt = 2;
    if (size > 0 && data[0] >= '\x01' && data[0] <= '\x03') {
        opt = data[0] - 1; /* an optional leading byte picks -O0..-O2 */
        data++;
        size--;
    }
    Arena arena = {0};
    /* as src_read does: the bytes as they are (NULs too), NUL-terminated */
    SrcFile *src = arena_alloc(&arena, sizeof *src);
    char *text = arena_alloc(&arena, size + 1);
    if (size)
        memcpy(text, data, size);
    src->name = "fuzz.nn";
    src->text = text;
    src->len = size;
    Model *models = parse_file(&arena, src);
    if (!diag_errors)
        compile(models, opt);
    diag_flush(); /* this input's diagnostics, sorted, before the next */
    arena_free(&arena);
    diag_errors = 0;
    return 0;
}
