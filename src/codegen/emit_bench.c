/*
 * emit_bench.c - --emit=bench: one C file with the model, compiled with a
 * timer around every kernel (emit_program.c's profile mode), and a main()
 * that times train_step and predict and prints each kernel's time, FLOP
 * rate and bytes moved against the measured peak.
 *
 *     nnc model.nn --emit=bench -o bench.c
 *     cc -O3 -march=native bench.c $(pkg-config --cflags --libs nncrt) -lm
 *     ./a.out 0.5 [--steps N] [--flops]
 *
 * The figures are the steady state: the program first trains the model
 * (BENCH_STEPS_SMALL steps, or for a step over BENCH_BIG_FLOPS one epoch
 * of a BENCH_EPOCH_SAMPLES-sample data set; --steps N or NNC_BENCH_STEPS)
 * on data it makes: a pool of batches of random inputs whose targets come
 * from a teacher, the same model with other initial weights, by a rule
 * that fits the loss (target_rule). The times on the initial weights are
 * shown beside (the state is put back after every 10 steps).
 *
 * A kernel's FLOPs come from node_flops (schedule.c) and its bytes from
 * the buffers it touches, each counted once: figures to compare kernels
 * and runs with, not a cache model.
 */
#include "codegen.h"

/* The default warm-up (documented in the README and bench/README.md). */
#define BENCH_STEPS_SMALL 10000L
#define BENCH_BIG_FLOPS 1e7
#define BENCH_EPOCH_SAMPLES 60000L

/* Bytes a kernel reads and writes: every buffer it touches, once. */
static double kernel_bytes(const Graph *g, const Plan *p, const Kernel *k)
{
    NodeId seen[64];
    int ns = 0;
    double bytes = 0;
    for (int m = 0; m < k->n; m++) {
        const Node *n = NODE(g, p->members[k->first + m]);
        NodeId ids[NNC_MAX_IN + 1];
        int nid = 0;
        for (int i = 0; i < n->nin; i++)
            ids[nid++] = n->in[i];
        ids[nid++] = p->members[k->first + m];
        for (int i = 0; i < nid; i++) {
            NodeId u = ids[i];
            bool dup = false;
            for (int j = 0; j < ns; j++)
                dup |= seen[j] == u;
            if (dup || p->region[u] == REG_NONE || ns == 64)
                continue;
            seen[ns++] = u;
            bytes += 4.0 * (double)shape_numel(&NODE(g, u)->shape);
        }
    }
    return bytes;
}

/* A kernel's FLOPs (node_flops of its members); a fused optimizer update
 * over the whole parameter region counts 10 per parameter. */
static double kernel_flops(const Compiled *c, const Plan *p, const Kernel *kr)
{
    const Graph *g = &c->g;
    double flops = 0;
    for (int m = 0; m < kr->n; m++)
        flops += node_flops(g, p->members[kr->first + m]);
    if (optab[NODE(g, kr->root)->op].kind == K_UPDATE && kr->n > 1)
        flops = 10.0 * (double)c->layout.param_floats;
    return flops;
}

static void kernel_table(Buf *out, const Compiled *c, const Plan *p, const char *name)
{
    const Graph *g = &c->g;
    buf_printf(out, "static const KernelInfo %s[%d] = {\n", name, p->nkernels);
    for (int k = 0; k < p->nkernels; k++) {
        const Kernel *kr = &p->kernels[k];
        const Node *r = NODE(g, kr->root);
        double flops = kernel_flops(c, p, kr), bytes = kernel_bytes(g, p, kr);
        Buf ops = {0};
        for (int m = 0; m < kr->n; m++) {
            NodeId id = p->members[kr->first + m];
            if (optab[r->op].kind != K_UPDATE || m == 0)
                buf_printf(&ops, "%s%s", m ? "+" : "", op_name(NODE(g, id)->op));
        }
        if (optab[r->op].kind == K_UPDATE && kr->n > 1) {
            size_t pf = c->layout.grad_floats;
            bytes = 4.0 * (double)pf * (2.0 + 2.0 * c->layout.nstate + 1.0);
        }
        buf_printf(out, "    {\"%s\", \"%s%s\", %.0f, %.0f},\n", emit_loc(r->loc), ops.data,
                   r->is_grad ? " (bwd)" : "", flops, bytes);
        buf_free(&ops);
    }
    buf_puts(out, "};\n");
}

/* Sums of the kernels' FLOPs of a plan, as kernel_table counts them. */
static double plan_flops(const Compiled *c, const Plan *p)
{
    double f = 0;
    for (int k = 0; k < p->nkernels; k++)
        f += kernel_flops(c, p, &p->kernels[k]);
    return f;
}

/* The rule that turns the teacher's outputs into targets, from the loss:
 * class indices (sparse losses), one-hot rows (categorical), 0/1 above
 * the teacher's mean (binary), or the outputs themselves (regression). */
typedef enum { T_INDEX, T_ONEHOT, T_BINARY, T_COPY } TargetRule;

static TargetRule target_rule(const Graph *g)
{
    Op op = NODE(g, g->loss)->op;   /* the loss that reads the target */
    for (int id = 1; id < g->nnodes; id++)
        if (optab[g->nodes[id].op].kind == K_LOSS && g->nodes[id].nin > 1 &&
            g->nodes[id].in[1] == g->target)
            op = g->nodes[id].op;
    if (optab[op].flags & F_INDEX)
        return T_INDEX;
    if (op == OP_CCE || op == OP_SOFTMAX_CE)
        return T_ONEHOT;
    if (op == OP_BCE || op == OP_SIGMOID_BCE)
        return T_BINARY;
    return T_COPY;
}

/* Rows of the table whose rows the input's values index (token ids read
 * by an embedding), or 0: such an input gets ids, not random floats. */
static int input_rows(const Graph *g)
{
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        unsigned f = optab[n->op].flags;
        if ((f & F_INDEX) && (f & F_ROWS) && n->nin > 1 && n->in[1] == g->input)
            return NODE(g, n->in[0])->shape.dim[0];
    }
    return 0;
}

static const char *const rule_text[] = {
    "the class of the teacher's largest output",
    "one-hot rows of the teacher's largest output",
    "1 where the teacher's output exceeds its mean over the data, else 0",
    "the teacher's outputs",
};

/* Replaces @p and @P in a template by the prefix and its upper case. */
static void put_template(Buf *out, const char *t, const char *p, const char *P)
{
    for (; *t; t++) {
        if (t[0] == '@' && (t[1] == 'p' || t[1] == 'P')) {
            buf_puts(out, t[1] == 'p' ? p : P);
            t++;
        } else {
            buf_printf(out, "%c", *t);
        }
    }
}

/* The program's report(): a table of the kernels' times and rates after
 * the warm-up, with the times on fresh weights beside. */
static const char bench_report[] =
"\nstatic void report(const char *title, int prog, const KernelInfo *ki, int nk, long runs,\n"
"                   double peak, const double *fresh, long fresh_runs, long steps)\n"
"{\n"
"    double t = 0, f = 0, b = 0, tf = 0;\n"
"    int k;\n"
"    printf(\"\\n%s: %d kernels, %ld runs after %ld training steps (fresh: %ld runs on the \"\n"
"           \"initial weights)\\n\", title, nk, runs, steps, fresh_runs);\n"
"    printf(\"%3s  %-22s %-34s %10s %10s %10s %9s %6s %10s\\n\", \"#\", \"source\", \"kernel\",\n"
"           \"MFLOP\", \"KB moved\", \"us\", \"GFLOP/s\", \"%peak\", \"fresh us\");\n"
"    for (k = 0; k < nk; k++) {\n"
"        double us = 1e6 * prof_time[prog][k] / (double)runs;\n"
"        double fus = 1e6 * fresh[k] / (double)fresh_runs;\n"
"        double gf = ki[k].flops / (us * 1e3);\n"
"        printf(\"%3d  %-22s %-34.34s %10.4f %10.1f %10.3f %9.2f %5.1f%% %10.3f\\n\", k + 1,\n"
"               ki[k].loc, ki[k].ops, ki[k].flops / 1e6, ki[k].bytes / 1024, us, gf,\n"
"               100 * gf / peak, fus);\n"
"        t += us;\n"
"        tf += fus;\n"
"        f += ki[k].flops;\n"
"        b += ki[k].bytes;\n"
"    }\n"
"    printf(\"     %-22s %-34s %10.4f %10.1f %10.3f %9.2f %5.1f%% %10.3f\\n\", \"total\", \"\",\n"
"           f / 1e6, b / 1024, t, f / (t * 1e3), 100 * f / (t * 1e3) / peak, tf);\n"
"}\n";

/* The program's data: a pool of batches of random inputs, and targets
 * that a teacher (the same model with other initial weights) gives them,
 * so that training has something to learn and the optimizer state
 * evolves as in real training. */
static const char bench_data[] =
"\nstatic uint64_t bench_rng = 12345;\n"
"\nstatic float bench_uniform(void)  /* in [-1, 1) */\n"
"{\n"
"    bench_rng = bench_rng * 6364136223846793005ULL + 1442695040888963407ULL;\n"
"    return (float)((double)(bench_rng >> 40) * (2.0 / 16777216.0) - 1.0);\n"
"}\n"
"\nstatic @p_ctx *ctx;\n"
"static float *bx, *by, bench_out[@P_BATCH * @P_OUT];\n"
"static long cursor;\n"
"\n/* BENCH_POOL batches: inputs, then targets from the teacher's outputs,\n"
" * one batch of outputs at a time (the rule that compares with the mean\n"
" * output predicts the pool twice), so that the program's peak memory is\n"
" * the model's, not a pool of logits (25 MB for the GPT example). */\n"
"static int bench_data(void)\n"
"{\n"
"    size_t rows = (size_t)BENCH_POOL * @P_BATCH, i, j, r;\n"
"    float *t = malloc((size_t)@P_BATCH * @P_OUT * sizeof *t);\n"
"    double mean[@P_OUT] = {0};\n"
"    @p_ctx *teacher = @p_create(2);\n"
"    int pass;\n"
"    bx = malloc(rows * @P_IN * sizeof *bx);\n"
"    by = calloc(rows * @P_TARGET, sizeof *by);\n"
"    if (!t || !teacher || !bx || !by)\n"
"        return -1;\n"
"    for (i = 0; i < rows * @P_IN; i++)  /* token ids for an embedding, else [-1, 1) */\n"
"        bx[i] = BENCH_IDS ? (float)(int)((bench_uniform() + 1.0f) * 0.5f * BENCH_IDS) : bench_uniform();\n"
"    for (pass = BENCH_RULE == 2 ? 0 : 1; pass < 2; pass++) {  /* 0: the mean output */\n"
"        for (i = 0; i < BENCH_POOL; i++) {\n"
"            if (@p_predict(teacher, bx + i * @P_BATCH * @P_IN, t, @P_BATCH))\n"
"                return -1;\n"
"            for (r = 0; r < @P_BATCH; r++) {\n"
"                const float *o = t + r * @P_OUT;\n"
"                float *y = by + (i * @P_BATCH + r) * @P_TARGET;\n"
"                size_t best = 0, k;\n"
"                if (pass == 0) {\n"
"                    for (j = 0; j < @P_OUT; j++)\n"
"                        mean[j] += o[j] / (double)rows;\n"
"                    continue;\n"
"                }\n"
"                for (j = 1; j < @P_OUT; j++)\n"
"                    best = o[j] > o[best] ? j : best;\n"
"                switch (BENCH_RULE) {\n"
"                case 0:  /* one class per target: of each group of OUT / TARGET outputs */\n"
"                    for (k = 0; k < @P_TARGET; k++) {\n"
"                        const size_t nc = @P_OUT / @P_TARGET;\n"
"                        best = 0;\n"
"                        for (j = 1; j < nc; j++)\n"
"                            best = o[k * nc + j] > o[k * nc + best] ? j : best;\n"
"                        y[k] = (float)best;\n"
"                    }\n"
"                    break;\n"
"                case 1: y[best] = 1.0f; break;\n"
"                case 2:\n"
"                    for (j = 0; j < @P_OUT && j < @P_TARGET; j++)\n"
"                        y[j] = o[j] > mean[j] ? 1.0f : 0.0f;\n"
"                    break;\n"
"                default:\n"
"                    for (j = 0; j < @P_OUT && j < @P_TARGET; j++)\n"
"                        y[j] = o[j];\n"
"                }\n"
"            }\n"
"        }\n"
"    }\n"
"    free(t);\n"
"    @p_destroy(teacher);\n"
"    return 0;\n"
"}\n"
"\nstatic float bench_step(void)\n"
"{\n"
"    long b = cursor++ % BENCH_POOL;\n"
"    return @p_train_step(ctx, bx + b * @P_BATCH * @P_IN, by + b * @P_BATCH * @P_TARGET);\n"
"}\n"
"\n/* Times train_step (prog 0) or predict (1) in blocks of 10 calls for at\n"
" * least secs; the seconds per call. fresh: the weights, gradients and\n"
" * optimizer state (and the context) are put back after every block,\n"
" * outside the timing, so that every call sees the initial weights. */\n"
"static double bench_time(int prog, double secs, int fresh, long *runs)\n"
"{\n"
"    const size_t keep = @P_PARAM_BYTES + @P_GRAD_BYTES + @P_OPT_STATE_BYTES;\n"
"    struct @p_ctx saved = *ctx;\n"
"    float *copy = fresh ? malloc(keep) : NULL;\n"
"    double t = 0, t0;\n"
"    long n = 0;\n"
"    int i;\n"
"    if (fresh && !copy) {\n"
"        fprintf(stderr, \"out of memory\\n\");\n"
"        exit(1);\n"
"    }\n"
"    if (fresh)\n"
"        memcpy(copy, ctx->mem, keep);\n"
"    memset(prof_time[prog], 0, sizeof prof_time[prog]);\n"
"    do {\n"
"        t0 = nnc_now();\n"
"        for (i = 0; i < 10; i++) {\n"
"            if (prog == 0)\n"
"                (void)bench_step();\n"
"            else if (@p_predict(ctx, bx, bench_out, @P_BATCH))\n"
"                exit(1);\n"
"        }\n"
"        t += nnc_now() - t0;\n"
"        n += 10;\n"
"        if (fresh) {\n"
"            *ctx = saved;\n"
"            memcpy(ctx->mem, copy, keep);\n"
"        }\n"
"    } while (t < secs);\n"
"    free(copy);\n"
"    *runs = n;\n"
"    return t / (double)n;\n"
"}\n"
"\n/* Subnormal floats among the parameters, gradients and optimizer state. */\n"
"static long bench_subnormals(long *total)\n"
"{\n"
"    long i, k = 0;\n"
"    *total = (long)((@P_PARAM_BYTES + @P_GRAD_BYTES + @P_OPT_STATE_BYTES) / sizeof(float));\n"
"    for (i = 0; i < *total; i++)\n"
"        k += fpclassify(ctx->mem[i]) == FP_SUBNORMAL;\n"
"    return k;\n"
"}\n";

/* The program's main(): the data, each program timed on fresh weights,
 * the warm-up (training), then each timed again for a number of seconds
 * (argv[1]) and reported. */
static const char bench_main[] =
"\nstatic void usage(const char *argv0)\n"
"{\n"
"    fprintf(stderr, \"usage: %s [SECONDS] [--steps N] [--flops]\\n\"\n"
"            \"  SECONDS    time each measurement for at least this long (0.5)\\n\"\n"
"            \"  --steps N  train N steps before the timed runs (default %ld;\\n\"\n"
"            \"             or NNC_BENCH_STEPS=N)\\n\"\n"
"            \"  --flops    print the FLOPs of a train step and of predict per sample\\n\",\n"
"            argv0, (long)BENCH_STEPS);\n"
"}\n"
"\nint main(int argc, char **argv)\n"
"{\n"
"    static double fresh[2][BENCH_NK];\n"
"    double secs = 0.5, peak, t0, wall, ftrain, fpred, first = 0, last = 0;\n"
"    long steps = BENCH_STEPS, runs, fresh_runs[2], i, sub, total, avg;\n"
"    const char *env = getenv(\"NNC_BENCH_STEPS\"), *dn = getenv(\"NNC_DENORMALS\");\n"
"    char *end;\n"
"    int a;\n"
"    if (env && *env)\n"
"        steps = strtol(env, &end, 10);\n"
"    for (a = 1; a < argc; a++) {\n"
"        if (strcmp(argv[a], \"--steps\") == 0 && a + 1 < argc) {\n"
"            steps = strtol(argv[++a], &end, 10);\n"
"        } else if (strcmp(argv[a], \"--flops\") == 0) {\n"
"            printf(\"train_step_flops %.0f\\npredict_flops_per_sample %.1f\\n\",\n"
"                   BENCH_TRAIN_FLOPS, BENCH_PREDICT_FLOPS / @P_BATCH);\n"
"            return 0;\n"
"        } else if (argv[a][0] != '-' && (secs = strtod(argv[a], &end)) >= 0 && !*end) {\n"
"            continue;\n"
"        } else {\n"
"            usage(argv[0]);\n"
"            return 2;\n"
"        }\n"
"    }\n"
"    if (steps < 0) {\n"
"        usage(argv[0]);\n"
"        return 2;\n"
"    }\n"
"    ctx = @p_create(1);\n"
"    if (!ctx || bench_data()) {\n"
"        fprintf(stderr, \"out of memory\\n\");\n"
"        return 1;\n"
"    }\n"
"    peak = nnc_peak_gflops();\n"
"    printf(\"model @p: batch %d, %d -> %d, ISA %s, %d thread(s), peak %.1f GFLOP/s (measured, one core)\\n\",\n"
"           @P_BATCH, @P_IN, @P_OUT, nnc_isa(), nnc_num_threads(), peak);\n"
"    printf(\"data: %d batches of random %s, targets: %s, from a teacher \"\n"
"           \"(the same model, other initial weights)\\n\", BENCH_POOL,\n"
"           BENCH_IDS ? \"token ids\" : \"inputs in [-1, 1)\", BENCH_RULE_TEXT);\n"
"    printf(\"denormals: NNC_DENORMALS=%s\\n\", dn ? dn : \"(unset)\");\n"
"    /* fresh weights: predict, then train_step with the state put back */\n"
"    for (i = 0; i < 20; i++)\n"
"        if (@p_predict(ctx, bx, bench_out, @P_BATCH))\n"
"            return 1;\n"
"    fpred = bench_time(1, secs, 0, &fresh_runs[1]);\n"
"    memcpy(fresh[1], prof_time[1], sizeof fresh[1]);\n"
"    ftrain = bench_time(0, secs, 1, &fresh_runs[0]);\n"
"    memcpy(fresh[0], prof_time[0], sizeof fresh[0]);\n"
"    /* the warm-up: training */\n"
"    cursor = 0;\n"
"    avg = steps < BENCH_POOL ? steps : BENCH_POOL;\n"
"    t0 = nnc_now();\n"
"    for (i = 0; i < steps; i++) {\n"
"        float l = bench_step();\n"
"        if (i < avg)\n"
"            first += l;\n"
"        if (i >= steps - avg)\n"
"            last += l;\n"
"    }\n"
"    printf(\"warm-up: %ld train steps before timing (%.2f s; change with --steps N or \"\n"
"           \"NNC_BENCH_STEPS=N)\", steps, nnc_now() - t0);\n"
"    if (avg > 0)\n"
"        printf(\"; mean loss of the first %ld steps %.4g, of the last %ld %.4g\", avg,\n"
"               first / (double)avg, avg, last / (double)avg);\n"
"    sub = bench_subnormals(&total);\n"
"    printf(\"\\nsubnormal floats in the parameters, gradients and optimizer state: %ld of %ld\\n\",\n"
"           sub, total);\n"
"    wall = bench_time(0, secs, 0, &runs);\n"
"    report(\"train_step\", 0, train_kernels, BENCH_TRAIN_NK, runs, peak, fresh[0], fresh_runs[0],\n"
"           steps);\n"
"    printf(\"train_step: %.3f us per step (wall) after %ld training steps; %.3f us on fresh weights\\n\",\n"
"           1e6 * wall, steps, 1e6 * ftrain);\n"
"    for (i = 0; i < 20; i++)\n"
"        if (@p_predict(ctx, bx, bench_out, @P_BATCH))\n"
"            return 1;\n"
"    wall = bench_time(1, secs, 0, &runs);\n"
"    report(\"predict\", 1, predict_kernels, BENCH_PREDICT_NK, runs, peak, fresh[1], fresh_runs[1],\n"
"           steps);\n"
"    printf(\"predict: %.3f us per batch of %d (wall) after %ld training steps; %.3f us on \"\n"
"           \"fresh weights\\n\", 1e6 * wall, @P_BATCH, steps, 1e6 * fpred);\n"
"    @p_destroy(ctx);\n"
"    free(bx);\n"
"    free(by);\n"
"    return 0;\n"
"}\n";

void emit_bench(Buf *out, const Compiled *c, const EmitOptions *o)
{
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", emit_upper(p));
    buf_printf(out, "/* Generated by nnc %s: kernel timings of model '%s'. Build with\n"
                    " *   cc -O3 -march=native bench.c $(pkg-config --cflags --libs nncrt) -lm\n"
                    " * and run ./a.out [seconds per measurement] [--steps N]. */\n", NNC_VERSION, p);
    buf_puts(out, "#define _POSIX_C_SOURCE 199309L\n#include <math.h>\n#include <stdint.h>\n"
                  "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                  "#include <time.h>\n\n#include \"nncrt.h\"\n\n");
    buf_puts(out, "static double nnc_now(void)\n{\n    struct timespec ts;\n"
                  "    clock_gettime(CLOCK_MONOTONIC, &ts);\n"
                  "    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;\n}\n\n");
    int nk = c->train.nkernels > c->predict.nkernels ? c->train.nkernels : c->predict.nkernels;
    buf_printf(out, "static double prof_t0, prof_time[2][%d];\n", nk);
    buf_puts(out, "static void nnc_prof_begin(void)\n{\n    prof_t0 = nnc_now();\n}\n\n");
    buf_puts(out, "static void nnc_prof_end(int prog, int k)\n{\n"
                  "    prof_time[prog][k] += nnc_now() - prof_t0;\n}\n");
    emit_header(out, c, o);
    EmitOptions po = *o;
    po.profile = true;
    emit_source(out, c, &po);
    buf_puts(out, "\ntypedef struct KernelInfo {\n    const char *loc, *ops;\n"
                  "    double flops, bytes;\n} KernelInfo;\n");
    kernel_table(out, c, &c->train, "train_kernels");
    kernel_table(out, c, &c->predict, "predict_kernels");
    /* The warm-up: BENCH_STEPS_SMALL steps, or for a model whose step
     * exceeds BENCH_BIG_FLOPS, one epoch of a 60,000-sample data set
     * (Fashion-MNIST's training set) at its batch. */
    double tf = plan_flops(c, &c->train);
    long steps = tf > BENCH_BIG_FLOPS ? BENCH_EPOCH_SAMPLES / c->g.batch : BENCH_STEPS_SMALL;
    /* a pool of up to 64 batches, at most about 16 MB of inputs */
    long bytes = 4L * (long)c->g.batch * (long)emit_per_sample(NODE(&c->g, c->g.input));
    long pool = bytes > 0 ? (16L << 20) / bytes : 64;
    pool = pool > 64 ? 64 : pool < 1 ? 1 : pool;
    TargetRule rule = target_rule(&c->g);
    buf_printf(out, "\n#define BENCH_NK %d\n#define BENCH_TRAIN_NK %d\n#define BENCH_PREDICT_NK %d\n"
                    "#define BENCH_TRAIN_FLOPS %.1f\n#define BENCH_PREDICT_FLOPS %.1f\n"
                    "#define BENCH_STEPS %ldL  /* default warm-up */\n"
                    "#define BENCH_POOL %ld  /* batches of data */\n"
                    "#define BENCH_RULE %d\n#define BENCH_RULE_TEXT \"%s\"\n"
                    "#define BENCH_IDS %d  /* the input holds ids of this many rows, or 0 */\n",
               nk, c->train.nkernels, c->predict.nkernels, tf, plan_flops(c, &c->predict), steps,
               pool, (int)rule, rule_text[rule], input_rows(&c->g));
    put_template(out, bench_report, p, P);
    put_template(out, bench_data, p, P);
    put_template(out, bench_main, p, P);
}
