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
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nnc.h"
#include "../quantize.h"

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
    /* int8 inference (issue 16) */
    const char *quantize;   /* --quantize=int8 */
    const char *calibrate;  /* --calibrate=DATA */
    double calib_scale;     /* --calibrate-scale (default 1) */
    int calib_rows;         /* --calibrate-rows (default 512) */
    size_t max_ram;         /* --max-ram: bytes for the context, 0: none */
} Options;

static const char usage_head[] =
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
    "  --dump-after=PASS  print the IR after PASS, or after every stage with\n"
    "                     'all', to stderr; the stages in order, with the\n"
    "                     lowest -O level that runs them:\n";

static const char usage_tail[] =
    "  --verify           verify the IR after every stage (the memory plans are\n"
    "                     always checked)\n"
    "  --weights=embedded\n"
    "                     put the initial weights (of --seed) into the C as\n"
    "                     constant data: create/init copy them, no PRNG init\n"
    "  --weights-from=CKPT\n"
    "                     embed the weights of a safetensors checkpoint (names,\n"
    "                     shapes and dtypes checked against the model)\n"
    "  --seed=N           seed of the --weights=embedded weights (default 0)\n"
    "  --quantize=int8    a predict-only int8 model of the --weights-from\n"
    "                     checkpoint: int8 weights per output channel, int8\n"
    "                     activations, the same predict and accuracy API\n"
    "  --calibrate=DATA   the activations' scales from the float model on these\n"
    "                     samples (CSV, IDX or .npy, gzipped or not; max-abs)\n"
    "  --calibrate-scale=F  multiply the DATA values by F (1/255 for bytes)\n"
    "  --calibrate-rows=N use the first N rows of DATA (default 512)\n"
    "  --max-ram=BYTES    make the whole context (PREFIX_MEM_BYTES) fit BYTES\n"
    "                     (suffix K, M or G: 1024-based) by recomputing forward\n"
    "                     values in the backward pass; an error names the\n"
    "                     smallest budget found when BYTES is too small\n"
    "  -MD                write a make dependency file (OUT.d beside -o OUT)\n"
    "  -MF FILE.d         its name (implies -MD)\n"
    "  --version          print the version\n"
    "  --help             print this help\n";

static void print_help(void)
{
    fputs(usage_head, stdout);
    for (const PassInfo *p = pipeline_passes; p->name; p++)
        printf("                       %-9s (-O%d)  %s\n", p->name, p->level, p->what);
    fputs(usage_tail, stdout);
}

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

/* ---- the command line (getopt_long) -------------------------------------- */

enum { OPT_EMIT = 256, OPT_MODEL, OPT_PREFIX, OPT_WEIGHTS_FROM, OPT_WEIGHTS, OPT_SEED,
       OPT_DUMP_AFTER, OPT_VERIFY, OPT_VERSION, OPT_MAX_RAM,
       OPT_QUANTIZE, OPT_CALIBRATE, OPT_CALIB_SCALE, OPT_CALIB_ROWS };

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"emit", required_argument, NULL, OPT_EMIT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"weights-from", required_argument, NULL, OPT_WEIGHTS_FROM},
    {"weights", required_argument, NULL, OPT_WEIGHTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"dump-after", required_argument, NULL, OPT_DUMP_AFTER},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"quantize", required_argument, NULL, OPT_QUANTIZE},
    {"calibrate", required_argument, NULL, OPT_CALIBRATE},
    {"calibrate-scale", required_argument, NULL, OPT_CALIB_SCALE},
    {"calibrate-rows", required_argument, NULL, OPT_CALIB_ROWS},
    {"max-ram", required_argument, NULL, OPT_MAX_RAM},
    {NULL, 0, NULL, 0},
};

/* "-o", "--emit": the option getopt_long found wanting a value. */
static const char *opt_name(int c, char *buf, size_t size)
{
    for (const struct option *l = long_opts; l->name; l++)
        if (l->val == c) {
            snprintf(buf, size, "--%s", l->name);
            return buf;
        }
    snprintf(buf, size, c == 'M' ? "-MF" : "-%c", c);
    return buf;
}

static void set_seed(Options *o, const char *v)
{
    const char *d = v;
    while (*d >= '0' && *d <= '9')
        d++;
    errno = 0;
    if (!*v || *d || (strtoull(v, NULL, 10), errno))
        bad_usage("--seed '%s' is not an unsigned 64-bit integer", v);
    o->seed = v;
}

/* --max-ram=BYTES: a positive integer, optionally K, M or G (x 1024^k). */
static void set_max_ram(Options *o, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift)
        end++;
    if (*v < '0' || *v > '9' || *end || errno || n == 0 || n > (SIZE_MAX >> 31))
        bad_usage("--max-ram '%s' is not a number of bytes (e.g. 20000000 or 20M)", v);
    o->max_ram = (size_t)n << shift;
}

/* -MD, or -MF FILE (the file is the next argument). */
static void set_make_option(Options *o, const char *v, int argc, char **argv)
{
    if (!strcmp(v, "D")) {
        o->md = true;
    } else if (!strcmp(v, "F")) {
        if (optind >= argc)
            bad_usage("option '%s' needs a value", "-MF");
        o->depfile = argv[optind++];
    } else {
        bad_usage("unknown option '%s'", argv[optind - 1]);
    }
}

/* --quantize, --calibrate* (int8 inference, issue 16). */
static void set_quant_option(Options *o, int c, const char *v)
{
    char *end;
    if (c == OPT_QUANTIZE) {
        if (strcmp(v, "int8"))
            bad_usage("unknown --quantize kind '%s' (expected int8)", v);
        o->quantize = v;
    } else if (c == OPT_CALIBRATE) {
        o->calibrate = v;
    } else if (c == OPT_CALIB_SCALE) {
        o->calib_scale = strtod(v, &end);
        if (!*v || *end || !(o->calib_scale > 0) || o->calib_scale > 1e30)
            bad_usage("--calibrate-scale '%s' is not a positive number", v);
    } else {
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 1000000)
            bad_usage("--calibrate-rows '%s' is not a count from 1 to 1000000", v);
        o->calib_rows = (int)n;
    }
}

/* One option c (a getopt_long result) with its value v. */
static void set_option(Options *o, int c, const char *v, int argc, char **argv)
{
    switch (c) {
    case 'h': print_help(); exit(0);
    case OPT_VERSION: printf("nnc %s\n", NNC_VERSION); exit(0);
    case 'o': o->output = v; break;
    case OPT_EMIT: o->emit = v; break;
    case OPT_MODEL: o->model = v; break;
    case OPT_PREFIX:
        if (!is_ident(v))
            bad_usage("--prefix '%s' is not a C identifier", v);
        o->prefix = v;
        break;
    case OPT_WEIGHTS_FROM: o->weights_from = v; o->embed = true; break;
    case OPT_WEIGHTS:
        if (strcmp(v, "embedded") && strcmp(v, "seed"))
            bad_usage("unknown --weights kind '%s' (expected embedded or seed)", v);
        o->embed = !strcmp(v, "embedded");
        break;
    case OPT_SEED: set_seed(o, v); break;
    case OPT_DUMP_AFTER: o->dump_after = v; break;
    case OPT_VERIFY: o->verify_all = true; break;
    case OPT_MAX_RAM: set_max_ram(o, v); break;
    case 'O':
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '2')
            bad_usage("unknown option '%s'", argv[optind - 1]);
        o->opt = v[0] - '0';
        break;
    case 'M': set_make_option(o, v, argc, argv); break;
    case OPT_QUANTIZE: case OPT_CALIBRATE: case OPT_CALIB_SCALE: case OPT_CALIB_ROWS:
        set_quant_option(o, c, v);
        break;
    default: nnc_unreachable();
    }
}

/* "lower, losshead, ..., fuse or all" */
static const char *pass_names(char *buf, size_t size)
{
    size_t k = 0;
    for (const PassInfo *p = pipeline_passes; p->name && k < size; p++)
        k += (size_t)snprintf(buf + k, size - k, "%s, ", p->name);
    if (k >= 2 && k < size)
        snprintf(buf + k - 2, size - k + 2, " or all");
    return buf;
}

static void check_dump_after(const Options *o)
{
    if (!o->dump_after || !strcmp(o->dump_after, "all"))
        return;
    const PassInfo *p = pipeline_pass(o->dump_after);
    if (!p) {
        char names[256], msg[400];
        snprintf(msg, sizeof msg, "unknown pass '%%s' for --dump-after (expected %s)",
                 pass_names(names, sizeof names));
        bad_usage(msg, o->dump_after);
    }
    if (o->opt < p->level)
        fprintf(stderr, "nnc: warning: --dump-after=%s prints nothing: the pass runs at -O%d "
                "and above\n", p->name, p->level);
}

/* What no single option can check. */
static void check_opts(Options *o)
{
    static const char *const kinds[] = {"c", "h", "graph-json", "ir", "stats", "dot",
                                        "bench", "main", NULL};
    bool known = !o->emit;
    for (int i = 0; kinds[i] && !known; i++)
        known = !strcmp(o->emit, kinds[i]);
    if (!o->input)
        bad_usage("%s", "no input file");
    if (!known)
        bad_usage("unknown --emit kind '%s' (expected c, h, graph-json, ir, stats, dot, "
                  "bench or main)", o->emit);
    check_dump_after(o);
    if (o->depfile && !o->md)
        o->md = true;
    if (o->md && o->emit && !o->output)
        bad_usage("%s", "-MD needs -o with --emit (there is no file to depend on stdout)");
    if (o->seed && (!o->embed || o->weights_from))
        bad_usage("%s", o->weights_from ? "--seed does not apply to --weights-from (the "
                                          "checkpoint has the weights)"
                                        : "--seed needs --weights=embedded");
    if (o->quantize && (!o->weights_from || !o->calibrate))
        bad_usage("%s", "--quantize=int8 needs --weights-from=CKPT (the trained weights) and "
                        "--calibrate=DATA (samples for the activations' scales)");
    if (!o->quantize && (o->calibrate || o->calib_rows || o->calib_scale))
        bad_usage("%s", "--calibrate goes with --quantize=int8");
    if (o->quantize && o->emit && strcmp(o->emit, "c") && strcmp(o->emit, "h") &&
        strcmp(o->emit, "stats"))
        bad_usage("--emit=%s does not apply to --quantize=int8 (c, h or stats)", o->emit);
}

static void parse_opts(int argc, char **argv, Options *o)
{
    char name[64];
    int c;
    memset(o, 0, sizeof *o);
    o->opt = 2;
    opterr = 0;
    /* '-': operands come back in order as 1; ':': a missing value is ':' */
    while ((c = getopt_long(argc, argv, "-:ho:O:M:", long_opts, NULL)) != -1) {
        if (c == 1 && o->input)
            bad_usage("more than one input file ('%s')", optarg);
        else if (c == 1)
            o->input = optarg;
        else if (c == ':')
            bad_usage("option '%s' needs a value", opt_name(optopt, name, sizeof name));
        else if (c == '?')
            bad_usage("unknown option '%s'", optopt && optopt < 256
                                                 ? opt_name(optopt, name, sizeof name)
                                                 : argv[optind - 1]);
        else
            set_option(o, c, optarg, argc, argv);
    }
    check_opts(o);
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
    f->tmp = xmalloc(n + 16);
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
    char *s = xmalloc(n + strlen(ext) + 1);
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
    char *g = xmalloc(n + 16);
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

/* Checks the models' names (after syntax errors too: the models parsed
 * with errors are checked, so that all errors are reported) and counts
 * those --model selects. */
static int select_models(const Model *models, const Options *o)
{
    int nsel = 0;
    for (const Model *m = models; m; m = m->next) {
        for (const Model *p = models; p != m; p = p->next)
            if (!strcmp(p->name, m->name)) {
                diag_error(m->loc, "model '%s' defined twice", m->name);
                diag_note(p->loc, "first defined here");
            }
        if (!o->model || !strcmp(o->model, m->name))
            nsel++;
    }
    if (!diag_errors && nsel == 0)
        fprintf(stderr, "nnc: error: no model named '%s' in %s\n", o->model, o->input);
    return nsel;
}

/* Compiles the selected models into graphs[]; returns how many. */
static int compile_models(const Model *models, const Options *o, Compiled *graphs)
{
    int ng = 0;
    for (const Model *m = models; m; m = m->next) {
        if (o->model && strcmp(o->model, m->name))
            continue;
        PipelineOptions po = {o->opt, o->dump_after, o->verify_all, o->max_ram};
        if (diag_errors) {  /* only check the others, to report their errors too */
            Graph g;
            lower_model(m, &g);
            graph_free(&g);
        } else {
            pipeline_compile(m, &po, &graphs[ng++]);
        }
    }
    return ng;
}

/* The embedded weights, one set per model (NULL each without them). */
static bool make_weights(const Options *o, const Compiled *graphs, int ng, Weights **weights)
{
    for (int i = 0; o->embed && i < ng; i++) {
        if (o->weights_from) {
            weights[i] = weights_from_file(&graphs[i], o->weights_from);
        } else {
            weights[i] = weights_from_seed(&graphs[i], o->seed ? strtoull(o->seed, NULL, 10) : 0);
            if (!weights[i])
                fprintf(stderr, "nnc: error: out of memory\n");
        }
        if (!weights[i])
            return false;
    }
    return true;
}

/* The outputs of one compilation. */
typedef struct Outputs {
    const Options *o;
    const Compiled *graphs;
    Weights **weights;
    int ng;
    const QModel *quant;    /* --quantize=int8: the int8 model (one) */
    char *cpath, *hpath, *dpath;
    Buf cb, hb, db;         /* C, header, dependency file */
    OutFile files[3];
    int nfiles;
} Outputs;

/* --emit=bench or --emit=main: a program of one model. */
static bool emit_program(Outputs *out, Buf *eb, bool bench)
{
    if (out->ng > 1) {
        fprintf(stderr, "nnc: error: --emit=%s needs one model (use --model)\n",
                bench ? "bench" : "main");
        return false;
    }
    const Options *o = out->o;
    EmitOptions eo = {o->prefix ? o->prefix : out->graphs[0].g.name, NULL, bench,
                      out->weights[0]};
    if (bench)
        emit_bench(eb, &out->graphs[0], &eo);
    else
        emit_main(eb, &out->graphs[0], &eo);
    return true;
}

static void emit_stats(Buf *eb, const Compiled *graphs, int ng, const QModel *quant)
{
    if (quant) {
        char *j = report_stats_quant(&graphs[0], quant);
        buf_printf(eb, "%s\n", j);
        free(j);
        return;
    }
    if (ng > 1)
        buf_puts(eb, "{\"models\": [\n");
    for (int i = 0; i < ng; i++) {
        char *j = report_stats(&graphs[i]);
        buf_printf(eb, "%s%s\n", j, ng > 1 && i + 1 < ng ? "," : "");
        free(j);
    }
    if (ng > 1)
        buf_puts(eb, "]}\n");
}

static void emit_ir(Buf *eb, const Compiled *graphs, int ng)
{
    for (int i = 0; i < ng; i++) {
        FILE *mf = tmpfile();
        if (!mf) {
            fprintf(stderr, "nnc: error: cannot create a temporary file: %s\n", strerror(errno));
            exit(1);
        }
        ir_print(mf, &graphs[i].g);
        rewind(mf);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, mf)) > 0)
            buf_append(eb, chunk, n);
        fclose(mf);
    }
}

/* The one output of --emit=KIND into eb; what points at it (or at the
 * C or the header, already built). */
static bool emit_kind(Outputs *out, Buf *eb, const Buf **what)
{
    const char *kind = out->o->emit;
    *what = eb;
    if (!strcmp(kind, "c"))
        *what = &out->cb;
    else if (!strcmp(kind, "h"))
        *what = &out->hb;
    else if (!strcmp(kind, "stats"))
        emit_stats(eb, out->graphs, out->ng, out->quant);
    else if (!strcmp(kind, "bench") || !strcmp(kind, "main"))
        return emit_program(out, eb, !strcmp(kind, "bench"));
    else if (!strcmp(kind, "dot"))
        for (int i = 0; i < out->ng; i++)
            report_dot(eb, &out->graphs[i]);
    else if (!strcmp(kind, "graph-json"))
        for (int i = 0; i < out->ng; i++) {
            char *j = ir_json(&out->graphs[i].g);
            buf_printf(eb, "%s\n", j);
            free(j);
        }
    else
        emit_ir(eb, out->graphs, out->ng);
    return true;
}

/* The make rule: targets, what was written; prerequisites, the source
 * and the checkpoint, each also a target without prerequisites (gcc's
 * -MP), so deleting one does not break make. */
static void dep_rules(Outputs *out)
{
    const Options *o = out->o;
    const char *target = o->output ? o->output : out->cpath;
    Buf *db = &out->db;
    out->dpath = o->depfile ? xstrdup(o->depfile) : replace_ext(target, ".d");
    dep_name(db, target);
    if (!o->emit) {
        buf_puts(db, " ");
        dep_name(db, out->hpath);
    }
    buf_puts(db, ": ");
    dep_name(db, o->input);
    if (o->weights_from) {
        buf_puts(db, " ");
        dep_name(db, o->weights_from);
    }
    if (o->calibrate) {     /* --quantize=int8's scales come from it */
        buf_puts(db, " ");
        dep_name(db, o->calibrate);
    }
    buf_puts(db, "\n\n");
    dep_name(db, o->input);
    buf_puts(db, ":\n");
    if (o->weights_from) {
        buf_puts(db, "\n");
        dep_name(db, o->weights_from);
        buf_puts(db, ":\n");
    }
    if (o->calibrate) {
        buf_puts(db, "\n");
        dep_name(db, o->calibrate);
        buf_puts(db, ":\n");
    }
}

static bool write_out(Outputs *out, const char *path, const Buf *b)
{
    out->files[out->nfiles] = (OutFile){path, NULL};
    return write_tmp(&out->files[out->nfiles++], b);
}

/* Builds the C and the header, writes what was asked into temporaries. */
static bool write_outputs(Outputs *out)
{
    const Options *o = out->o;
    char *guard = guard_of(out->hpath);
    bool ok = true;
    emit_header_begin(&out->hb, guard);
    emit_source_begin(&out->cb, base_name(out->hpath));
    for (int i = 0; i < out->ng; i++) {
        EmitOptions eo = {o->prefix ? o->prefix : out->graphs[i].g.name, base_name(out->hpath),
                          false, out->weights[i]};
        if (out->quant) {   /* --quantize=int8 */
            emit_quant_header(&out->hb, &out->graphs[i], out->quant, eo.prefix);
            emit_quant_source(&out->cb, &out->graphs[i], out->quant, eo.prefix);
            continue;
        }
        emit_header(&out->hb, &out->graphs[i], &eo);
        emit_source(&out->cb, &out->graphs[i], &eo);
    }
    emit_header_end(&out->hb, guard);
    free(guard);
    if (!o->emit) {
        ok = write_out(out, out->cpath, &out->cb) && write_out(out, out->hpath, &out->hb);
    } else {
        Buf eb = {0};
        const Buf *what;
        ok = emit_kind(out, &eb, &what) && write_out(out, o->output, what);
        buf_free(&eb);
    }
    if (ok && o->md) {
        dep_rules(out);
        ok = write_out(out, out->dpath, &out->db);
    }
    return ok;
}

static void output_paths(Outputs *out)
{
    const Options *o = out->o;
    if (!o->emit) {
        out->cpath = o->output ? xstrdup(o->output) : replace_ext(base_name(o->input), ".c");
        out->hpath = replace_ext(out->cpath, ".h");
    } else if (o->output) {
        out->cpath = xstrdup(o->output);
        out->hpath = replace_ext(out->cpath, ".h");
    } else {
        out->hpath = replace_ext(base_name(o->input), ".h");
    }
}

static void outputs_free(Outputs *out)
{
    free(out->dpath);
    buf_free(&out->cb);
    buf_free(&out->hb);
    buf_free(&out->db);
    free(out->cpath);
    free(out->hpath);
}

/* Compiles the selected models and writes the outputs: true on success. */
static bool compile_and_write(const Options *o, Model *models, int nsel, Arena *arena)
{
    if (o->prefix && nsel > 1) {
        arena_free(arena);
        bad_usage("%s", "--prefix needs --model when the file holds several models");
    }
    if (o->weights_from && nsel > 1) {
        arena_free(arena);
        bad_usage("%s", "--weights-from needs --model when the file holds several models");
    }
    Compiled *graphs = xcalloc((size_t)nsel, sizeof(Compiled));
    Weights **weights = xcalloc((size_t)nsel, sizeof(Weights *));
    int ng = compile_models(models, o, graphs);
    bool ok = diag_errors == 0 && make_weights(o, graphs, ng, weights);
    Outputs out = {.o = o, .graphs = graphs, .weights = weights, .ng = ng};
    QModel quant = {0};     /* --quantize=int8 (issue 16) */
    if (ok && o->quantize) {
        const Model *m = models;
        while (m && o->model && strcmp(m->name, o->model))
            m = m->next;
        ok = quant_build(m, &graphs[0], weights[0], o->calibrate,
                         o->calib_scale > 0 ? o->calib_scale : 1.0,
                         o->calib_rows > 0 ? o->calib_rows : 512, &quant);
        out.quant = ok ? &quant : NULL;
    }
    output_paths(&out);
    ok = ok && write_outputs(&out);
    ok = commit(out.files, out.nfiles, ok);
    outputs_free(&out);
    quant_free(&quant);
    for (int i = 0; i < ng; i++) {
        weights_free(weights[i]);
        pipeline_free(&graphs[i]);
    }
    free(weights);
    free(graphs);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "import-keras"))
        return import_keras_main(argc - 1, argv + 1);
    Options o;
    parse_opts(argc, argv, &o);
    Arena arena = {0};
    SrcFile *src = src_read(&arena, o.input);
    if (!src)
        return 1;
    Model *models = parse_file(&arena, src);
    if (!diag_errors && !models) {
        Loc l = {src, 1, 1, 1};
        diag_error(l, "no model in file (expected 'model NAME { ... }')");
    }
    int nsel = models ? select_models(models, &o) : 0;
    bool ok = nsel > 0 && compile_and_write(&o, models, nsel, &arena);
    arena_free(&arena);
    return ok ? 0 : 1;
}
