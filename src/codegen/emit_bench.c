/*
 * emit_bench.c - --emit=bench: one C file with the model, compiled with a
 * timer around every kernel (emit_program.c's profile mode), and a main()
 * that runs train_step and predict on random data and prints each
 * kernel's time, FLOP rate and bytes moved against the measured peak.
 *
 *     nnc model.nn --emit=bench -o bench.c
 *     cc -O3 -march=native bench.c $(pkg-config --cflags --libs nncrt) -lm
 *     ./a.out 0.5
 *
 * A kernel's FLOPs come from node_flops (schedule.c) and its bytes from
 * the buffers it touches, each counted once: figures to compare kernels
 * and runs with, not a cache model.
 */
#include "codegen.h"

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

static void kernel_table(Buf *out, const Compiled *c, const Plan *p, const char *name)
{
    const Graph *g = &c->g;
    buf_printf(out, "static const KernelInfo %s[%d] = {\n", name, p->nkernels);
    for (int k = 0; k < p->nkernels; k++) {
        const Kernel *kr = &p->kernels[k];
        const Node *r = NODE(g, kr->root);
        double flops = 0, bytes = kernel_bytes(g, p, kr);
        Buf ops = {0};
        for (int m = 0; m < kr->n; m++) {
            NodeId id = p->members[kr->first + m];
            flops += node_flops(g, id);
            if (optab[r->op].kind != K_UPDATE || m == 0)
                buf_printf(&ops, "%s%s", m ? "+" : "", op_name(NODE(g, id)->op));
        }
        if (optab[r->op].kind == K_UPDATE) {
            size_t pf = c->layout.param_floats;
            if (kr->n > 1) {
                flops = 10.0 * (double)pf;
                bytes = 4.0 * (double)pf * (2.0 + 2.0 * c->layout.nstate + 1.0);
            }
        }
        buf_printf(out, "    {\"%s\", \"%s%s\", %.0f, %.0f},\n", emit_loc(r->loc), ops.data,
                   r->is_grad ? " (bwd)" : "", flops, bytes);
        buf_free(&ops);
    }
    buf_puts(out, "};\n");
}

/* The program's report(): a table of the kernels' times and rates. */
static void bench_report(Buf *out)
{
    buf_printf(out,
"\nstatic void report(const char *title, int prog, const KernelInfo *ki, int nk, long runs,\n"
"                   double peak)\n"
"{\n"
"    double t = 0, f = 0, b = 0;\n"
"    int k;\n"
"    printf(\"\\n%%s: %%d kernels, %%ld runs\\n\", title, nk, runs);\n"
"    printf(\"%%3s  %%-22s %%-34s %%10s %%10s %%10s %%9s %%6s\\n\", \"#\", \"source\", \"kernel\",\n"
"           \"MFLOP\", \"KB moved\", \"us\", \"GFLOP/s\", \"%%peak\");\n"
"    for (k = 0; k < nk; k++) {\n"
"        double us = 1e6 * prof_time[prog][k] / (double)runs;\n"
"        double gf = ki[k].flops / (us * 1e3);\n"
"        printf(\"%%3d  %%-22s %%-34.34s %%10.4f %%10.1f %%10.3f %%9.2f %%5.1f%%%%\\n\", k + 1,\n"
"               ki[k].loc, ki[k].ops, ki[k].flops / 1e6, ki[k].bytes / 1024, us, gf,\n"
"               100 * gf / peak);\n"
"        t += us;\n"
"        f += ki[k].flops;\n"
"        b += ki[k].bytes;\n"
"    }\n"
"    printf(\"     %%-22s %%-34s %%10.4f %%10.1f %%10.3f %%9.2f %%5.1f%%%%\\n\", \"total\", \"\",\n"
"           f / 1e6, b / 1024, t, f / (t * 1e3), 100 * f / (t * 1e3) / peak);\n"
"}\n");
}

/* The program's main(): random data, a warm-up, then each program timed
 * for a number of seconds (argv[1]). */
static void bench_main(Buf *out, const Compiled *c, const char *p, const char *P)
{
    buf_printf(out,
"\nint main(int argc, char **argv)\n"
"{\n"
"    static float x[%s_BATCH * %s_IN], y[%s_BATCH * %s_TARGET], out[%s_BATCH * %s_OUT];\n"
"    double secs = argc > 1 ? atof(argv[1]) : 0.5, peak, t0, t1;\n"
"    long runs, i;\n"
"    uint64_t s = 12345;\n"
"    %s_ctx *ctx = %s_create(1);\n"
"    if (!ctx) {\n        fprintf(stderr, \"out of memory\\n\");\n        return 1;\n    }\n"
"    for (i = 0; i < %s_BATCH * %s_IN; i++) {\n"
"        s = s * 6364136223846793005ULL + 1442695040888963407ULL;\n"
"        x[i] = (float)((s >> 40) * (2.0 / 16777216.0) - 1.0);\n"
"    }\n"
"    for (i = 0; i < %s_BATCH; i++)\n        y[i * %s_TARGET + i %% %s_TARGET] = 1.0f;\n"
"    peak = nnc_peak_gflops();\n"
"    printf(\"model %s: batch %%d, %%d -> %%d, ISA %%s, %%d thread(s), peak %%.1f GFLOP/s (measured, one core)\\n\",\n"
"           %s_BATCH, %s_IN, %s_OUT, nnc_isa(), nnc_num_threads(), peak);\n"
"    for (i = 0; i < 20; i++)\n        %s_train_step(ctx, x, y);\n"
"    memset(prof_time, 0, sizeof prof_time);\n"
"    t0 = nnc_now();\n"
"    for (runs = 0; (t1 = nnc_now()) - t0 < secs || runs < 10; runs++)\n"
"        %s_train_step(ctx, x, y);\n"
"    report(\"train_step\", 0, train_kernels, %d, runs, peak);\n"
"    printf(\"train_step: %%.3f us per step (wall)\\n\", 1e6 * (t1 - t0) / (double)runs);\n"
"    for (i = 0; i < 20; i++)\n        %s_predict(ctx, x, out, %s_BATCH);\n"
"    memset(prof_time, 0, sizeof prof_time);\n"
"    t0 = nnc_now();\n"
"    for (runs = 0; (t1 = nnc_now()) - t0 < secs || runs < 10; runs++)\n"
"        %s_predict(ctx, x, out, %s_BATCH);\n"
"    report(\"predict\", 1, predict_kernels, %d, runs, peak);\n"
"    printf(\"predict: %%.3f us per batch of %%d (wall)\\n\", 1e6 * (t1 - t0) / (double)runs, %s_BATCH);\n"
"    %s_destroy(ctx);\n"
"    return 0;\n"
"}\n",
        P, P, P, P, P, P, p, p, P, P, P, P, P, p, P, P, P, p, p, c->train.nkernels, p, P, p, P,
        c->predict.nkernels, P, p);
}

void emit_bench(Buf *out, const Compiled *c, const EmitOptions *o)
{
    const char *p = o->prefix;
    char P[128];
    snprintf(P, sizeof P, "%s", emit_upper(p));
    buf_printf(out, "/* Generated by nnc %s: kernel timings of model '%s'. Build with\n"
                    " *   cc -O3 -march=native bench.c $(pkg-config --cflags --libs nncrt) -lm\n"
                    " * and run ./a.out [seconds per measurement]. */\n", NNC_VERSION, p);
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
    bench_report(out);
    bench_main(out, c, p, P);
}
