/*
 * irprint.c - dumps of the graph IR: a stable text form for humans and
 * tests (--dump-after), and JSON (--emit=graph-json) for tools.
 *
 * Both are deterministic: nodes in id order, no pointers, attributes
 * printed with round-tripping precision, so dumps can be diffed.
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "nnc.h"

static void print_loc(FILE *f, Loc l)
{
    if (l.src)
        fprintf(f, "  # %s:%d:%d", l.src->name, l.line, l.col);
}

void ir_print(FILE *f, const Graph *g)
{
    fprintf(f, "model %s batch %d\n", g->name ? g->name : "?", g->batch);
    for (int id = 1; id < g->nnodes; id++) {
        const Node *n = &g->nodes[id];
        fprintf(f, "  %%%d = %s", id, op_name(n->op));
        for (int k = 0; k < n->nin; k++)
            fprintf(f, "%s%%%u", k ? ", " : " ", (unsigned)n->in[k]);
        if (n->op == OP_MATMUL || n->op == OP_BMATMUL)
            fprintf(f, " ta=%d tb=%d", n->iattr[0], n->iattr[1]);
        if (n->op == OP_TRANSPOSE)
            for (int d = 0; d < n->shape.rank; d++)
                fprintf(f, "%s%d", d ? "," : " perm=", n->iattr[d]);
        if (n->op == OP_NARROW || n->op == OP_NARROW_BACK)
            fprintf(f, " axis=%d start=%d len=%d", n->iattr[0], n->iattr[1], n->iattr[2]);
        if (optab[n->op].kind == K_WINDOW)
            fprintf(f, " k=%dx%d s=%dx%d%s", n->iattr[0], n->iattr[1], n->iattr[2],
                    n->iattr[3], n->iattr[4] ? " same" : "");
        if (n->op == OP_MAXPOOL_BACK && n->iattr[7])
            fprintf(f, " relu");
        if (n->op == OP_IM2COL && n->iattr[5])
            fprintf(f, " crop=%dx%d", n->iattr[5], n->iattr[6]);
        if (n->op == OP_SCALE || n->op == OP_CONST || (optab[n->op].flags & F_ATTR))
            fprintf(f, " %.9g", n->fattr[0]);
        if (n->op == OP_SLICE)
            fprintf(f, " start=%d width=%d", n->iattr[0], n->iattr[1]);
        if (n->op == OP_EMBED_BACK)
            fprintf(f, " vocab=%d", n->iattr[0]);
        if (n->op == OP_SGD)
            fprintf(f, " lr=%.9g momentum=%.9g", n->fattr[0], n->fattr[1]);
        if (n->op == OP_SGD && n->iattr[1])
            fprintf(f, " nesterov");
        if (n->op == OP_ADAM)
            fprintf(f, " lr=%.9g beta1=%.9g beta2=%.9g eps=%.9g", n->fattr[0], n->fattr[1],
                    n->fattr[2], n->fattr[3]);
        if ((n->op == OP_SGD && n->fattr[2]) || (n->op == OP_ADAM && n->fattr[4]))
            fprintf(f, " %s=%.9g", n->op == OP_ADAM && n->iattr[1] ? "decoupled_wd" : "wd",
                    n->fattr[n->op == OP_SGD ? 2 : 4]);
        if (n->op == OP_RMSPROP)
            fprintf(f, " lr=%.9g rho=%.9g momentum=%.9g eps=%.9g%s", n->fattr[0], n->fattr[1],
                    n->fattr[2], n->fattr[3], n->iattr[1] ? " centered" : "");
        if (n->op == OP_ADAGRAD)
            fprintf(f, " lr=%.9g eps=%.9g init=%.9g", n->fattr[0], n->fattr[1], n->fattr[2]);
        if (optab[n->op].kind == K_UPDATE && n->iattr[3])
            fprintf(f, " lr_scheduled");
        if (n->name)
            fprintf(f, " '%s'", n->name);
        fprintf(f, " : %s", shape_str(&n->shape));
        if (n->bmask)
            fprintf(f, " batch=%u", n->bmask);
        if (n->is_grad)
            fprintf(f, " grad");
        if (n->kernel)
            fprintf(f, " in-kernel=%%%u%s", (unsigned)n->kernel, n->sibling ? " stored" : "");
        print_loc(f, n->loc);
        fputc('\n', f);
    }
}

static cJSON *int_array(const int *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *node_json(const Graph *g, int id)
{
    const Node *n = &g->nodes[id];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "op", op_name(n->op));
    if (n->name)
        cJSON_AddStringToObject(o, "name", n->name);
    if (n->what)
        cJSON_AddStringToObject(o, "layer", n->what);
    cJSON_AddItemToObject(o, "shape", int_array(n->shape.dim, n->shape.rank));
    int bd[NNC_MAX_DIMS], nb = 0;
    for (int d = 0; d < n->shape.rank; d++)
        if (n->bmask & (1u << d))
            bd[nb++] = d;
    cJSON_AddItemToObject(o, "batch_dims", int_array(bd, nb));
    int in[NNC_MAX_IN];
    for (int k = 0; k < n->nin; k++)
        in[k] = (int)n->in[k];
    cJSON_AddItemToObject(o, "inputs", int_array(in, n->nin));
    cJSON_AddBoolToObject(o, "grad", n->is_grad);
    if (n->kernel)
        cJSON_AddNumberToObject(o, "kernel", n->kernel);
    if (n->sibling)
        cJSON_AddBoolToObject(o, "stored", true);
    if (n->op == OP_MATMUL || n->op == OP_BMATMUL) {
        cJSON_AddNumberToObject(o, "trans_a", n->iattr[0]);
        cJSON_AddNumberToObject(o, "trans_b", n->iattr[1]);
    }
    if (n->op == OP_SLICE) {
        cJSON_AddNumberToObject(o, "start", n->iattr[0]);
        cJSON_AddNumberToObject(o, "width", n->iattr[1]);
    }
    if (n->op == OP_EMBED_BACK)
        cJSON_AddNumberToObject(o, "vocab", n->iattr[0]);
    if (optab[n->op].kind == K_WINDOW) {
        cJSON_AddItemToObject(o, "window", int_array(n->iattr, 2));
        cJSON_AddItemToObject(o, "strides", int_array(n->iattr + 2, 2));
        cJSON_AddStringToObject(o, "padding", n->iattr[4] ? "same" : "valid");
    }
    if (n->op == OP_SCALE || n->op == OP_CONST || (optab[n->op].flags & F_ATTR))
        cJSON_AddNumberToObject(o, "value", n->fattr[0]);
    if (n->loc.src) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s:%d:%d", n->loc.src->name, n->loc.line, n->loc.col);
        cJSON_AddStringToObject(o, "loc", buf);
    }
    return o;
}

char *ir_json(const Graph *g)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", g->name);
    cJSON_AddNumberToObject(root, "batch", g->batch);
    cJSON_AddNumberToObject(root, "input", g->input);
    cJSON_AddNumberToObject(root, "target", g->target);
    cJSON_AddNumberToObject(root, "output", g->output);
    cJSON_AddNumberToObject(root, "loss", g->loss);
    cJSON *params = cJSON_AddArrayToObject(root, "params");
    for (int i = 0; i < g->nparams; i++) {
        cJSON *p = cJSON_CreateObject();
        const Node *n = NODE(g, g->params[i]);
        cJSON_AddStringToObject(p, "name", n->name);
        cJSON_AddNumberToObject(p, "id", g->params[i]);
        cJSON_AddItemToObject(p, "shape", int_array(n->shape.dim, n->shape.rank));
        if (g->grads)
            cJSON_AddNumberToObject(p, "grad", g->grads[i]);
        cJSON_AddItemToArray(params, p);
    }
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    for (int id = 1; id < g->nnodes; id++)
        cJSON_AddItemToArray(nodes, node_json(g, id));
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    NNC_ASSERT(s);
    return s;
}
