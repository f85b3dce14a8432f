/*
 * emit_weights.c - weights compiled into the emitted C as constant data,
 * so that a deployed predictor needs no checkpoint file:
 *
 *   --weights=embedded      the initial weights of --seed=N, computed here
 *                           with the runtime's own PRNG code (rng.c is
 *                           linked into the compiler), so they are the
 *                           bits <prefix>_create(N) draws in a normal build;
 *   --weights-from=CKPT     the weights of a safetensors checkpoint, checked
 *                           against the model: every parameter present, F32,
 *                           the checkpoint shape <prefix>_save writes, data
 *                           inside the file; optimizer state ("optimizer.*")
 *                           is ignored, anything else is an error.
 *
 * One `static const float` array per tensor, headed by a comment with its
 * name and shape, values as C99 hex float literals (exact: every float is
 * written with all its bits, -0 and subnormals included); tensors that
 * are all +0 get no array, as reset clears the memory first. NaN and
 * infinities have no literal and are rejected. The file and its header
 * are read by the runtime's code (runtime/io.c), as <prefix>_load does.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nnc.h"
#include "../../runtime/nncrt.h"
#include "../../runtime/nncrt_io.h"

static Weights *weights_new(const Compiled *c, const char *source)
{
    const Graph *g = &c->g;
    Weights *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->n = g->nparams;
    w->data = calloc((size_t)(g->nparams > 0 ? g->nparams : 1), sizeof(float *));
    w->source = strdup(source);
    /* it goes into comments */
    for (char *s = w->source; s && (s = strstr(s, "*/")) != NULL;)
        *s = '_';
    bool ok = w->data && w->source;
    for (int i = 0; ok && i < g->nparams; i++) {
        w->data[i] = calloc(shape_numel(&NODE(g, g->params[i])->shape), sizeof(float));
        ok = w->data[i] != NULL;
    }
    if (!ok) {
        weights_free(w);
        return NULL;
    }
    return w;
}

void weights_free(Weights *w)
{
    if (!w)
        return;
    for (int i = 0; w->data && i < w->n; i++)
        free(w->data[i]);
    free(w->data);
    free(w->source);
    free(w);
}

/* The same draws as <prefix>_reset in emit_c.c: zeros, ones for INIT_ONE,
 * one nnc_rng stream over the uniform initializers in parameter order
 * (the emitted bounds are printed with %.17g: the same doubles). */
Weights *weights_from_seed(const Compiled *c, uint64_t seed)
{
    const Graph *g = &c->g;
    char src[48];
    snprintf(src, sizeof src, "seed %llu", (unsigned long long)seed);
    Weights *w = weights_new(c, src);
    if (!w)
        return NULL;
    nnc_rng rng;
    nnc_rng_seed(&rng, seed);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        size_t k = shape_numel(&n->shape);
        if (n->init == INIT_ONE)
            for (size_t j = 0; j < k; j++)
                w->data[i][j] = 1.0f;
        if (n->init != INIT_GLOROT && n->init != INIT_UNIFORM)
            continue;
        double lim = n->init == INIT_UNIFORM ? 0.05 : sqrt(6.0 / (n->fan_in + n->fan_out));
        nnc_fill_uniform(w->data[i], k, -lim, lim, &rng);
    }
    return w;
}

/* ---- reading a checkpoint ------------------------------------------------ */

static const Shape *ckpt_shape(const Node *n)
{
    return n->ckpt_shape.rank ? &n->ckpt_shape : &n->shape;
}

static void dims_str(char *b, size_t size, const double *d, int rank)
{
    size_t k = (size_t)snprintf(b, size, "[");
    for (int i = 0; i < rank && k < size; i++)
        k += (size_t)snprintf(b + k, size - k, "%s%.0f", i ? ", " : "", d[i]);
    if (k < size)
        snprintf(b + k, size - k, "]");
}

/* A JSON number that is a non-negative integer below 2^53 (exact). */
static bool json_size(const cJSON *j, double *v)
{
    uint64_t u;
    if (!nnc_st_uint(j, &u))
        return false;
    *v = (double)u;
    return true;
}

/* Checks one header entry against parameter n and copies its data; false
 * after printing why not. */
static bool take_tensor(const char *path, const char *model, const cJSON *e, const Node *n,
                        const unsigned char *data, size_t data_len, float *dst)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
        fprintf(stderr, "nnc: error: %s: tensor '%s': malformed entry (needs dtype, shape, "
                "data_offsets)\n", path, n->name);
        return false;
    }
    if (strcmp(dtype->valuestring, "F32")) {
        fprintf(stderr, "nnc: error: %s: tensor '%s' has dtype %s; nnc needs F32\n", path,
                n->name, dtype->valuestring);
        return false;
    }
    const Shape *want = ckpt_shape(n);
    double dims[16];
    int rank = cJSON_GetArraySize(shape);
    bool same = rank == want->rank;
    for (int d = 0; d < rank && d < 16; d++) {
        if (!json_size(cJSON_GetArrayItem(shape, d), &dims[d])) {
            fprintf(stderr, "nnc: error: %s: tensor '%s': shape is not a list of sizes\n",
                    path, n->name);
            return false;
        }
        same = same && dims[d] == (double)want->dim[d];
    }
    if (!same) {
        char got[160], exp[160];
        double wd[16];
        for (int d = 0; d < want->rank; d++)
            wd[d] = want->dim[d];
        dims_str(got, sizeof got, dims, rank < 16 ? rank : 16);
        dims_str(exp, sizeof exp, wd, want->rank);
        fprintf(stderr, "nnc: error: %s: tensor '%s' has shape %s; model '%s' needs %s\n", path,
                n->name, got, model, exp);
        return false;
    }
    double b, e2;
    size_t k = shape_numel(&n->shape);
    if (!json_size(cJSON_GetArrayItem(offs, 0), &b) ||
        !json_size(cJSON_GetArrayItem(offs, 1), &e2) || e2 < b || e2 > (double)data_len ||
        e2 - b != 4.0 * (double)k) {
        fprintf(stderr, "nnc: error: %s: tensor '%s': data_offsets out of range or not %zu "
                "bytes (truncated file?)\n", path, n->name, 4 * k);
        return false;
    }
    const unsigned char *p = data + (size_t)b;
    for (size_t i = 0; i < k; i++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        memcpy(&dst[i], &u, sizeof u);
        if (!isfinite(dst[i])) {
            fprintf(stderr, "nnc: error: %s: tensor '%s' holds %s at element %zu; only "
                    "finite weights can be embedded\n", path, n->name,
                    isnan(dst[i]) ? "NaN" : "an infinity", i);
            return false;
        }
    }
    return true;
}

Weights *weights_from_file(const Compiled *c, const char *path)
{
    const Graph *g = &c->g;
    size_t len = 0, hl = 0;
    unsigned char *file = src_read_bytes(path, &len, "read");
    if (!file)
        return NULL;
    Weights *w = NULL;
    cJSON *h = NULL;
    char why[300];
    int err = nnc_st_header(file, len, &h, &hl, why, sizeof why);
    if (err) {
        fprintf(stderr, "nnc: error: %s: %s%s%s\n", path,
                err == NNC_ERR_NOMEM ? "" : "not a safetensors file (", why,
                err == NNC_ERR_NOMEM ? "" : ")");
        goto out;
    }
    char src[512];
    snprintf(src, sizeof src, "checkpoint '%s'", path);
    w = weights_new(c, src);
    if (!w) {
        fprintf(stderr, "nnc: error: out of memory\n");
        goto out;
    }
    bool ok = true;
    /* every parameter, in the model's order */
    for (int i = 0; i < g->nparams && ok; i++) {
        const Node *n = NODE(g, g->params[i]);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(h, n->name);
        if (!e) {
            fprintf(stderr, "nnc: error: %s: no tensor '%s' (model '%s' has %d parameter "
                    "tensors)\n", path, n->name, g->name, g->nparams);
            ok = false;
        } else {
            ok = take_tensor(path, g->name, e, n, file + 8 + hl, (size_t)(len - 8 - hl),
                             w->data[i]);
        }
    }
    /* and nothing the model does not have; the data ends where the last
     * tensor does (else the file is truncated or has trailing bytes) */
    const cJSON *e;
    double end = 0;
    cJSON_ArrayForEach(e, h) {
        if (!ok)
            break;
        if (!e->string || !strcmp(e->string, "__metadata__"))
            continue;
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        double o1;
        if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
            !json_size(cJSON_GetArrayItem(offs, 1), &o1)) {
            fprintf(stderr, "nnc: error: %s: tensor '%s': malformed data_offsets\n", path,
                    e->string);
            ok = false;
            break;
        }
        end = o1 > end ? o1 : end;
        if (!strncmp(e->string, "optimizer.", 10))
            continue;
        bool known = false;
        for (int i = 0; i < g->nparams && !known; i++)
            known = !strcmp(NODE(g, g->params[i])->name, e->string);
        if (!known) {
            fprintf(stderr, "nnc: error: %s: tensor '%s' is not a parameter of model '%s'\n",
                    path, e->string, g->name);
            ok = false;
        }
    }
    if (ok && end != (double)(len - 8 - hl)) {
        fprintf(stderr, "nnc: error: %s: %s\n", path,
                end > (double)(len - 8 - hl) ? "the data is shorter than the header says "
                                               "(truncated file?)"
                                             : "bytes after the last tensor's data");
        ok = false;
    }
    if (!ok) {
        weights_free(w);
        w = NULL;
    }
out:
    cJSON_Delete(h);
    free(file);
    return w;
}

/* ---- emission ------------------------------------------------------------ */

static const char *ident(const char *s)
{
    static char b[101]; /* as emit_c.c's c_ident: 100 characters */
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof b; i++)
        b[i] = (char)((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                              (s[i] >= '0' && s[i] <= '9')
                          ? s[i]
                          : '_');
    b[i] = '\0';
    return b;
}

static bool all_zero(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        if (u)
            return false;
    }
    return true;
}

void emit_weights_data(Buf *out, const Compiled *c, const Weights *w, const char *prefix)
{
    const Graph *g = &c->g;
    NNC_ASSERT(w->n == g->nparams);
    buf_printf(out, "\n/* The weights, embedded (from %s): create and init copy them;\n"
                    " * the seed they take only drives dropout. Exact hex floats. */\n",
               w->source);
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        size_t k = shape_numel(&n->shape);
        if (all_zero(w->data[i], k)) {
            buf_printf(out, "/* %s %s: all zeros */\n", n->name, shape_str(ckpt_shape(n)));
            continue;
        }
        buf_printf(out, "static const float %s_w_%s[%zu] = {  /* %s %s */", prefix,
                   ident(n->name), k, n->name, shape_str(ckpt_shape(n)));
        for (size_t j = 0; j < k; j++) {
            NNC_ASSERT(isfinite(w->data[i][j]));
            buf_printf(out, "%s%a", j % 5 ? ", " : (j ? ",\n    " : "\n    "),
                       (double)w->data[i][j]);
            buf_puts(out, "f");
        }
        buf_puts(out, "\n};\n");
    }
}

void emit_weights_copy(Buf *out, const Compiled *c, const Weights *w, const char *prefix)
{
    const Graph *g = &c->g;
    for (int i = 0; i < g->nparams; i++) {
        const Node *n = NODE(g, g->params[i]);
        if (all_zero(w->data[i], shape_numel(&n->shape)))
            continue;
        const char *id = ident(n->name);
        buf_printf(out, "    memcpy(W_%s, %s_w_%s, sizeof %s_w_", id, prefix, id, prefix);
        buf_printf(out, "%s);\n", ident(n->name));
    }
}
