/*
 * main.c - the nnc command line: options, the pipeline, outputs, exit
 * codes (0 success, 1 diagnostics or any other failure, out of memory
 * included, 2 bad usage; tests/fuzz/run.sh checks them).
 *
 * The pipeline is a plain list of calls in compile_model(), with the IR
 * verifier between stages, as in QBE's main.c: there is no pass manager.
 * Outputs are written to temporary files and renamed into place only when
 * everything succeeded, so a failed compilation never leaves a file (or
 * half a file) behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nnc.h"

typedef struct Options {
    const char *input;
    const char *output;     /* -o */
    const char *emit;       /* NULL: c and h */
    const char *model;      /* --model */
    const char *prefix;     /* --prefix */
    const char *depfile;    /* -MF */
    bool md;                /* -MD */
    int opt;                /* -O level */
    const char *dump_after; /* --dump-after */
    bool verify_all;        /* --verify */
    bool embed;             /* --weights=embedded (or --weights-from) */
    const char *weights_from; /* --weights-from */
    const char *seed;       /* --seed: of the embedded initial weights */
} Options;

static const char usage[] =
    "usage: nnc FILE.nn [options]\n"
    "       nnc import-keras MODEL.json -o MODEL.nn   (see nnc import-keras --help)\n"
    "\n"
    "Compiles the models of FILE.nn into C that trains and predicts.\n"
    "\n"
    "options:\n"
    "  -o OUT.c           write OUT.c and OUT.h (default: FILE.c, FILE.h)\n"
    "  --emit=KIND        write one thing, to -o or stdout: c, h, graph-json\n"
    "                     (the graph with shapes), ir (the text IR), stats\n"
    "                     (JSON: FLOPs, kernels, memory plan), dot (graphviz)\n"
    "                     bench (a program timing every kernel) or main (one\n"
    "                     file: the model and a training program, see README)\n"
    "  --model NAME       compile only model NAME of a multi-model file\n"
    "  --prefix NAME      symbol prefix instead of the model's name\n"
    "  -O0, -O1, -O2      optimization level (-O0: no passes; default -O2)\n"
    "  --dump-after=PASS  print the IR after PASS (lower, losshead, autodiff,\n"
    "                     optim, simplify, cse, dce, fuse, or all) to stderr\n"
    "  --verify           verify the IR after every stage (the memory plans are\n"
    "                     always checked)\n"
    "  --weights=embedded\n"
    "                     put the initial weights (of --seed) into the C as\n"
    "                     constant data: create/init copy them, no PRNG init\n"
    "  --weights-from=CKPT\n"
    "                     embed the weights of a safetensors checkpoint (names,\n"
    "                     shapes and dtypes checked against the model)\n"
    "  --seed=N           seed of the --weights=embedded weights (default 0)\n"
    "  -MD                write a make dependency file (OUT.d beside -o OUT)\n"
    "  -MF FILE.d         its name (implies -MD)\n"
    "  --version          print the version\n"
    "  --help             print this help\n";

static NNC_NORETURN void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "nnc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'nnc --help' for usage)\n");
    exit(2);
}

static bool is_ident(const char *s)
{
    if (!*s || !(*s == '_' || (*s | 0x20) >= 'a') || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')))
            return false;
    return true;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc)
        bad_usage("option '%s' needs a value", name);
    return argv[++*i];
}

static void parse_args(int argc, char **argv, Options *o)
{
    memset(o, 0, sizeof *o);
    o->opt = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("nnc %s\n", NNC_VERSION);
            exit(0);
        } else if (!strcmp(a, "-o")) {
            if (i + 1 >= argc)
                bad_usage("option '%s' needs a value", "-o");
            o->output = argv[++i];
        } else if (!strncmp(a, "--emit", 6) && (a[6] == '=' || !a[6])) {
            o->emit = opt_value(argc, argv, &i, "--emit");
        } else if (!strncmp(a, "--model", 7) && (a[7] == '=' || !a[7])) {
            o->model = opt_value(argc, argv, &i, "--model");
        } else if (!strncmp(a, "--prefix", 8) && (a[8] == '=' || !a[8])) {
            o->prefix = opt_value(argc, argv, &i, "--prefix");
            if (!is_ident(o->prefix))
                bad_usage("--prefix '%s' is not a C identifier", o->prefix);
        } else if (!strncmp(a, "--weights-from", 14) && (a[14] == '=' || !a[14])) {
            o->weights_from = opt_value(argc, argv, &i, "--weights-from");
            o->embed = true;
        } else if (!strncmp(a, "--weights", 9) && (a[9] == '=' || !a[9])) {
            const char *v = opt_value(argc, argv, &i, "--weights");
            if (strcmp(v, "embedded") && strcmp(v, "seed"))
                bad_usage("unknown --weights kind '%s' (expected embedded or seed)", v);
            o->embed = !strcmp(v, "embedded");
        } else if (!strncmp(a, "--seed", 6) && (a[6] == '=' || !a[6])) {
            o->seed = opt_value(argc, argv, &i, "--seed");
            const char *d = o->seed;
            while (*d >= '0' && *d <= '9')
                d++;
            errno = 0;
            if (!*o->seed || *d || (strtoull(o->seed, NULL, 10), errno))
                bad_usage("--seed '%s' is not an unsigned 64-bit integer", o->seed);
        } else if (!strncmp(a, "--dump-after", 12) && (a[12] == '=' || !a[12])) {
            o->dump_after = opt_value(argc, argv, &i, "--dump-after");
        } else if (!strcmp(a, "--verify")) {
            o->verify_all = true;
        } else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
            o->opt = a[2] - '0';
        } else if (!strcmp(a, "-MD")) {
            o->md = true;
        } else if (!strcmp(a, "-MF")) {
            if (i + 1 >= argc)
                bad_usage("option '%s' needs a value", "-MF");
            o->depfile = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            bad_usage("unknown option '%s'", a);
        } else if (o->input) {
            bad_usage("more than one input file ('%s')", a);
        } else {
            o->input = a;
        }
    }
    if (!o->input)
        bad_usage("%s", "no input file");
    if (o->emit && strcmp(o->emit, "c") && strcmp(o->emit, "h") &&
        strcmp(o->emit, "graph-json") && strcmp(o->emit, "ir") && strcmp(o->emit, "stats") &&
        strcmp(o->emit, "dot") && strcmp(o->emit, "bench") && strcmp(o->emit, "main")) {
        bad_usage("unknown --emit kind '%s' (expected c, h, graph-json, ir, stats, dot, "
                  "bench or main)",
                  o->emit);
    }
    static const char *const stages[] = {"all", "lower", "losshead", "crop", "autodiff", "optim",
                                         "simplify", "cse", "dce", "poolrelu", "fuse", NULL};
    bool known = !o->dump_after;
    for (int i = 0; stages[i] && !known; i++)
        known = !strcmp(o->dump_after, stages[i]);
    if (!known)
        bad_usage("unknown pass '%s' for --dump-after (expected lower, losshead, crop, autodiff, "
                  "optim, simplify, cse, dce, poolrelu, fuse or all)", o->dump_after);
    if (o->dump_after) {
        static const char *const level[] = {"losshead", "2", "crop", "2", "simplify", "1",
                                            "cse", "1", "dce", "1", "poolrelu", "2",
                                            "fuse", "2", NULL};
        for (int i = 0; level[i]; i += 2)
            if (!strcmp(o->dump_after, level[i]) && o->opt < level[i + 1][0] - '0')
                fprintf(stderr, "nnc: warning: --dump-after=%s prints nothing: the pass "
                        "runs at -O%s and above\n", level[i], level[i + 1]);
    }
    if (o->depfile && !o->md)
        o->md = true;
    if (o->md && o->emit && !o->output)
        bad_usage("%s", "-MD needs -o with --emit (there is no file to depend on stdout)");
    if (o->seed && (!o->embed || o->weights_from))
        bad_usage("%s", o->weights_from ? "--seed does not apply to --weights-from (the "
                                          "checkpoint has the weights)"
                                        : "--seed needs --weights=embedded");
}

/* A file name in a make rule: blanks, '#' and '\' before them escaped,
 * '$' doubled (as gcc -MD does). */
static void dep_name(Buf *b, const char *s)
{
    for (const char *c = s; *c; c++) {
        if (*c == ' ' || *c == '\t') {
            for (const char *k = c; k > s && k[-1] == '\\'; k--)
                buf_puts(b, "\\");
            buf_puts(b, "\\");
        } else if (*c == '#') {
            buf_puts(b, "\\");
        } else if (*c == '$') {
            buf_puts(b, "$");
        }
        buf_append(b, c, 1);
    }
}

/* ---- output files --------------------------------------------------------- */

typedef struct OutFile {
    const char *path;   /* final name; NULL: stdout */
    char *tmp;          /* temporary name, renamed at the end */
} OutFile;

static bool write_tmp(OutFile *f, const Buf *b)
{
    if (!f->path)
        return fwrite(b->data, 1, b->len, stdout) == b->len && fflush(stdout) == 0;
    /* a device or a pipe (-o /dev/stdout) is written as it is: renaming a
       temporary over it would replace it with a plain file */
    struct stat st;
    if (stat(f->path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        FILE *fp = fopen(f->path, "wb");
        bool ok = fp && fwrite(b->data, 1, b->len, fp) == b->len;
        ok = (fp && fclose(fp) == 0) && ok;
        if (!ok)
            fprintf(stderr, "nnc: error: cannot write '%s': %s\n", f->path, strerror(errno));
        return ok;
    }
    size_t n = strlen(f->path);
    f->tmp = malloc(n + 16);
    NNC_ASSERT(f->tmp);
    snprintf(f->tmp, n + 16, "%s.tmp.XXXXXX", f->path);
    int fd = mkstemp(f->tmp);
    /* mkstemp's 0600 would survive the rename: the mode a plain
     * fopen would give instead (0666 less the umask) */
    if (fd >= 0) {
        mode_t mask = umask(0);
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
    }
    if (fd < 0) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", f->path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return false;
    }
    FILE *fp = fdopen(fd, "wb");
    bool ok = fp && fwrite(b->data, 1, b->len, fp) == b->len;
    ok = (fp ? fclose(fp) == 0 : (close(fd), false)) && ok;
    if (!ok) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", f->path, strerror(errno));
        remove(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
    }
    return ok;
}

/* Renames all temporaries into place if ok; otherwise removes them. */
static bool commit(OutFile *files, int n, bool ok)
{
    for (int i = 0; i < n; i++) {
        if (!files[i].tmp)
            continue;
        if (ok && rename(files[i].tmp, files[i].path) != 0) {
            fprintf(stderr, "nnc: error: cannot write '%s': %s\n", files[i].path,
                    strerror(errno));
            ok = false;
        }
        if (!ok)
            remove(files[i].tmp);
        free(files[i].tmp);
        files[i].tmp = NULL;
    }
    return ok;
}

static char *replace_ext(const char *path, const char *ext)
{
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path && dot[-1] != '/')
        n = (size_t)(dot - path);
    char *s = malloc(n + strlen(ext) + 1);
    NNC_ASSERT(s);
    memcpy(s, path, n);
    strcpy(s + n, ext);
    return s;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static char *guard_of(const char *header)
{
    const char *b = base_name(header);
    size_t n = strlen(b);
    char *g = malloc(n + 16);
    NNC_ASSERT(g);
    size_t k = 0;
    g[k++] = 'N';
    g[k++] = 'N';
    g[k++] = 'C';
    g[k++] = '_';
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        g[k++] = (char)((c >= 'a' && c <= 'z') ? c - 32
                        : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_');
    }
    strcpy(g + k, "_INCLUDED");
    return g;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "import-keras"))
        return import_keras_main(argc - 1, argv + 1);
    Options o;
    parse_args(argc, argv, &o);
    Arena arena = {0};
    SrcFile *src = src_read(&arena, o.input);
    if (!src)
        return 1;
    Model *models = parse_file(&arena, src);
    if (!diag_errors && !models) {
        Loc l = {src, 1, 1, 1};
        diag_error(l, "no model in file (expected 'model NAME { ... }')");
    }
    if (!models) {
        arena_free(&arena);
        return 1;
    }
    /* choose the models, check names (after syntax errors too: the models
     * parsed with errors are checked, so that all errors are reported) */
    int nsel = 0;
    for (Model *m = models; m; m = m->next) {
        for (Model *p = models; p != m; p = p->next)
            if (!strcmp(p->name, m->name)) {
                diag_error(m->loc, "model '%s' defined twice", m->name);
                diag_note(p->loc, "first defined here");
            }
        if (!o.model || !strcmp(o.model, m->name))
            nsel++;
    }
    if (!diag_errors && nsel == 0)
        fprintf(stderr, "nnc: error: no model named '%s' in %s\n", o.model, o.input);
    if (nsel == 0) {
        arena_free(&arena);
        return 1;
    }
    if (o.prefix && nsel > 1) {
        arena_free(&arena);
        bad_usage("%s", "--prefix needs --model when the file holds several models");
    }
    if (o.weights_from && nsel > 1) {
        arena_free(&arena);
        bad_usage("%s", "--weights-from needs --model when the file holds several models");
    }

    Compiled *graphs = calloc((size_t)nsel, sizeof(Compiled));
    NNC_ASSERT(graphs);
    int ng = 0;
    for (Model *m = models; m; m = m->next) {
        if (o.model && strcmp(o.model, m->name))
            continue;
        PipelineOptions po = {o.opt, o.dump_after, o.verify_all};
        if (diag_errors) {  /* only check the others, to report their errors too */
            Graph g;
            lower_model(m, &g);
            graph_free(&g);
        } else {
            pipeline_compile(m, &po, &graphs[ng++]);
        }
    }
    bool ok = diag_errors == 0;

    /* embedded weights, one set per model */
    Weights **weights = calloc((size_t)nsel, sizeof(Weights *));
    NNC_ASSERT(weights);
    for (int i = 0; ok && o.embed && i < ng; i++) {
        if (o.weights_from) {
            weights[i] = weights_from_file(&graphs[i], o.weights_from);
        } else {
            weights[i] = weights_from_seed(&graphs[i], o.seed ? strtoull(o.seed, NULL, 10) : 0);
            if (!weights[i])
                fprintf(stderr, "nnc: error: out of memory\n");
        }
        ok = weights[i] != NULL;
    }

    /* outputs */
    char *cpath = NULL, *hpath = NULL;
    if (!o.emit) {
        cpath = o.output ? strdup(o.output) : replace_ext(base_name(o.input), ".c");
        hpath = replace_ext(cpath, ".h");
    } else if (o.output) {
        cpath = strdup(o.output);
        hpath = replace_ext(cpath, ".h");
    } else {
        hpath = replace_ext(base_name(o.input), ".h");
    }
    OutFile files[3] = {{0}};
    char *dpath = NULL;
    int nfiles = 0;
    Buf cb = {0}, hb = {0}, db = {0};
    if (ok) {
        char *guard = guard_of(hpath);
        emit_header_begin(&hb, guard);
        emit_source_begin(&cb, base_name(hpath));
        for (int i = 0; i < ng; i++) {
            EmitOptions eo = {o.prefix ? o.prefix : graphs[i].g.name, base_name(hpath), false,
                              weights[i]};
            emit_header(&hb, &graphs[i], &eo);
            emit_source(&cb, &graphs[i], &eo);
        }
        emit_header_end(&hb, guard);
        free(guard);
        if (!o.emit) {
            files[nfiles] = (OutFile){cpath, NULL};
            ok = write_tmp(&files[nfiles++], &cb);
            files[nfiles] = (OutFile){hpath, NULL};
            ok = ok && write_tmp(&files[nfiles++], &hb);
        } else {
            Buf eb = {0};
            const Buf *what = &eb;
            if (!strcmp(o.emit, "c")) {
                what = &cb;
            } else if (!strcmp(o.emit, "h")) {
                what = &hb;
            } else if (!strcmp(o.emit, "stats")) {
                if (ng > 1)
                    buf_puts(&eb, "{\"models\": [\n");
                for (int i = 0; i < ng; i++) {
                    char *j = report_stats(&graphs[i]);
                    buf_printf(&eb, "%s%s\n", j, ng > 1 && i + 1 < ng ? "," : "");
                    free(j);
                }
                if (ng > 1)
                    buf_puts(&eb, "]}\n");
            } else if (!strcmp(o.emit, "bench")) {
                if (ng > 1) {
                    fprintf(stderr, "nnc: error: --emit=bench needs one model (use --model)\n");
                    ok = false;
                } else {
                    EmitOptions eo = {o.prefix ? o.prefix : graphs[0].g.name, NULL, true,
                                      weights[0]};
                    emit_bench(&eb, &graphs[0], &eo);
                }
            } else if (!strcmp(o.emit, "main")) {
                if (ng > 1) {
                    fprintf(stderr, "nnc: error: --emit=main needs one model (use --model)\n");
                    ok = false;
                } else {
                    EmitOptions eo = {o.prefix ? o.prefix : graphs[0].g.name, NULL, false,
                                      weights[0]};
                    emit_main(&eb, &graphs[0], &eo);
                }
            } else if (!strcmp(o.emit, "dot")) {
                for (int i = 0; i < ng; i++)
                    report_dot(&eb, &graphs[i]);
            } else if (!strcmp(o.emit, "graph-json")) {
                for (int i = 0; i < ng; i++) {
                    char *j = ir_json(&graphs[i].g);
                    buf_printf(&eb, "%s\n", j);
                    free(j);
                }
            } else {
                for (int i = 0; i < ng; i++) {
                    FILE *mf = tmpfile();
                    NNC_ASSERT(mf);
                    ir_print(mf, &graphs[i].g);
                    rewind(mf);
                    char chunk[4096];
                    size_t n;
                    while ((n = fread(chunk, 1, sizeof chunk, mf)) > 0)
                        buf_append(&eb, chunk, n);
                    fclose(mf);
                }
            }
            if (ok) {
                files[nfiles] = (OutFile){o.output, NULL};
                ok = write_tmp(&files[nfiles++], what);
            }
            buf_free(&eb);
        }
        if (ok && o.md) {
            /* targets: what was written; prerequisites: the source and
             * the checkpoint, each also a target without prerequisites
             * (gcc's -MP), so deleting one does not break make */
            const char *target = o.output ? o.output : cpath;
            dpath = o.depfile ? strdup(o.depfile) : replace_ext(target, ".d");
            dep_name(&db, target);
            if (!o.emit) {
                buf_puts(&db, " ");
                dep_name(&db, hpath);
            }
            buf_puts(&db, ": ");
            dep_name(&db, o.input);
            if (o.weights_from) {
                buf_puts(&db, " ");
                dep_name(&db, o.weights_from);
            }
            buf_puts(&db, "\n\n");
            dep_name(&db, o.input);
            buf_puts(&db, ":\n");
            if (o.weights_from) {
                buf_puts(&db, "\n");
                dep_name(&db, o.weights_from);
                buf_puts(&db, ":\n");
            }
            files[nfiles] = (OutFile){dpath, NULL};
            ok = write_tmp(&files[nfiles++], &db);
        }
    }
    ok = commit(files, nfiles, ok);
    free(dpath);
    buf_free(&cb);
    buf_free(&hb);
    buf_free(&db);
    free(cpath);
    free(hpath);
    for (int i = 0; i < ng; i++) {
        weights_free(weights[i]);
        pipeline_free(&graphs[i]);
    }
    free(weights);
    free(graphs);
    arena_free(&arena);
    return ok ? 0 : 1;
}
