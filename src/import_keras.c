/*
 * import_keras.c - `nnc import-keras MODEL.json -o MODEL.nn`: a Keras
 * Sequential model's `model.to_json()` (Keras 2 or 3) as nnc source.
 *
 * Each Keras layer becomes one named statement of the functional form,
 * named after the Keras layer (so checkpoints call the tensors
 * `dense_1.weight` like the Keras layer `dense_1`). The importer follows
 * the shape through the layers (batch excluded) to check what nnc cannot
 * express before nnc does, and reports the first such layer by position,
 * name and class: an unsupported layer or activation, channels_first,
 * dilation, groups, non-square kernels, 'same' pooling, a non-Sequential
 * model. to_json() holds no loss, optimizer or batch size: the loss
 * follows the output (softmax: categorical cross-entropy, which nnc fuses
 * with the softmax; sigmoid: binary cross-entropy; else mse), the
 * optimizer is Adam with Keras' defaults and the batch 32 (Keras' fit
 * default), each overridable (--loss, --optimizer, --batch).
 *
 * Exit status: 0, 1 for a model that cannot be imported (nothing written),
 * 2 for bad usage.
 */
#define _GNU_SOURCE     /* getopt_long */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sema.h"
#include "../runtime/nncrt_io.h"   /* nnc_json_valid */

typedef struct Imp {
    const char *file;       /* the JSON file, for messages */
    Buf out;
    Arena arena;
    const char **used;      /* value names given out */
    int nused, ucap;
    int rank, dim[3];       /* the current value's shape, batch excluded */
    const char *cur;        /* the current value's name */
    const char *out_act;    /* activation at the end of the model so far */
    int index;              /* the layer being imported (1-based), 0: none */
    const char *lname, *lclass;
} Imp;

static const char usage_text[] =
    "usage: nnc import-keras MODEL.json [-o MODEL.nn] [--loss NAME]\n"
    "                        [--optimizer SPEC] [--batch N]\n"
    "\n"
    "Turns a Keras Sequential model's model.to_json() (Keras 2 or 3) into nnc\n"
    "source (stdout without -o).\n"
    "\n"
    "  --loss NAME       binary_crossentropy, categorical_crossentropy,\n"
    "                    sparse_categorical_crossentropy, softmax_cross_entropy\n"
    "                    (logits: not after a softmax), mse, mae or huber\n"
    "                    (default: from the output's activation: softmax ->\n"
    "                    categorical_crossentropy, sigmoid -> binary_crossentropy,\n"
    "                    else mse)\n"
    "  --optimizer SPEC  e.g. 'sgd(lr=0.01, momentum=0.9)' (default: adam)\n"
    "  --batch N         training batch (default 32)\n";

static NNC_NORETURN void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "nnc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'nnc import-keras --help' for usage)\n");
    exit(2);
}

/* "nnc: error: FILE: layer N 'NAME' (CLASS): MESSAGE"; returns false. */
static bool fail(Imp *im, const char *fmt, ...) NNC_PRINTF(2, 3);
static bool fail(Imp *im, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nnc: error: %s: ", im->file);
    if (im->index > 0)
        fprintf(stderr, "layer %d '%s' (%s): ", im->index, im->lname, im->lclass);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

/* ---- JSON helpers ---------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_int(const cJSON *v, long lo, long hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
           v->valuedouble >= (double)lo && v->valuedouble <= (double)hi;
}

/* key as an int or a list of ints (kernel_size, strides, ...) into a[];
 * returns the count, or -1 if malformed. */
static int get_ints(const cJSON *o, const char *key, int *a, int max)
{
    const cJSON *v = get(o, key), *e;
    int n = 0;
    if (is_int(v, -(1L << 30), 1L << 30)) {
        a[0] = (int)v->valuedouble;
        return 1;
    }
    if (!cJSON_IsArray(v))
        return -1;
    cJSON_ArrayForEach(e, v) {
        if (n == max || !is_int(e, -(1L << 30), 1L << 30))
            return -1;
        a[n++] = (int)e->valuedouble;
    }
    return n;
}

/* A square window parameter (kernel_size, pool_size, strides): one value
 * or two equal ones, positive. */
static bool square(Imp *im, const cJSON *cfg, const char *key, int *v)
{
    int a[2];
    int n = get_ints(cfg, key, a, 2);
    if (n < 1 || a[0] < 1 || (n == 2 && a[1] < 1))
        return fail(im, "'%s' is missing or not a positive integer or pair", key);
    if (n == 2 && a[0] != a[1])
        return fail(im, "%s (%d, %d) is not square; nnc supports square windows only", key,
                    a[0], a[1]);
    *v = a[0];
    return true;
}

/* The shortest decimal that reads back as the same float. */
static const char *num(Imp *im, double v)
{
    char text[40];
    if (v == floor(v) && fabs(v) < 1e15)
        return arena_printf(&im->arena, "%.0f", v);
    for (int p = 1; p <= 17; p++) {
        snprintf(text, sizeof text, "%.*g", p, v);
        if ((float)strtod(text, NULL) == (float)v)
            break;
    }
    return arena_strdup(&im->arena, text);
}

static bool get_num(Imp *im, const cJSON *cfg, const char *key, double *v)
{
    const cJSON *x = get(cfg, key);
    if (!cJSON_IsNumber(x))
        return fail(im, "'%s' is missing or not a number", key);
    *v = x->valuedouble;
    return true;
}

static bool get_bool(const cJSON *cfg, const char *key, bool def)
{
    const cJSON *x = get(cfg, key);
    return cJSON_IsBool(x) ? cJSON_IsTrue(x) : def;
}

/* ---- names ----------------------------------------------------------------- */

static bool used(const Imp *im, const char *s)
{
    static const char *const reserved[] = {"model", "input", "loss", "optimizer", "batch",
                                             "freeze"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (!strcmp(s, reserved[i]))
            return true;
    for (int i = 0; i < im->nused; i++)
        if (!strcmp(im->used[i], s))
            return true;
    return false;
}

/* A fresh nnc identifier made from the Keras name s (other characters
 * become '_'; "_2", "_3", ... appended if taken). */
static const char *fresh(Imp *im, const char *s)
{
    size_t n = strlen(s ? s : "");
    char *id = arena_alloc(&im->arena, n + 2);
    size_t k = 0;
    if (n == 0 || isdigit((unsigned char)s[0]))
        id[k++] = n == 0 ? 'v' : '_';
    for (size_t i = 0; i < n; i++)
        id[k++] = isalnum((unsigned char)s[i]) ? s[i] : '_';
    const char *name = id;
    for (int j = 2; used(im, name); j++)
        name = arena_printf(&im->arena, "%s_%d", id, j);
    im->used = nnc_grow(im->used, &im->ucap, im->nused + 1, sizeof *im->used);
    im->used[im->nused++] = name;
    return name;
}

static const char *shape_text(Imp *im)
{
    switch (im->rank) {
    case 1: return arena_printf(&im->arena, "(%d)", im->dim[0]);
    case 2: return arena_printf(&im->arena, "(%d, %d)", im->dim[0], im->dim[1]);
    default:
        return arena_printf(&im->arena, "(%d, %d, %d)", im->dim[0], im->dim[1], im->dim[2]);
    }
}

/* ---- activations ----------------------------------------------------------- */

/* The activation row of the layer table for Keras activation `act`
 * (its name, or its Keras name: swish is silu), or NULL after an error;
 * *is_linear set for none. */
static const LayerInfo *activation_row(Imp *im, const cJSON *act, bool *is_linear)
{
    const char *a = cJSON_IsString(act) ? act->valuestring : NULL;
    const LayerInfo *ly = a ? activation_find(a, true) : NULL;
    *is_linear = act == NULL || cJSON_IsNull(act) || (ly && ly->op == OP_INPUT);
    if (*is_linear || ly)
        return ly;
    const char *known = activation_list(&im->arena, ", ");
    if (!a)
        fail(im, "activation is not a plain name (a custom or serialized function); "
                 "nnc knows %s", known);
    else
        fail(im, "activation '%s' has no nnc equivalent (nnc knows %s)", a, known);
    return NULL;
}

/* The nnc call of activation row `ly` on `x`, with the arguments that
 * give Keras' activation function ("leaky_relu(x, negative_slope=0.2)"). */
static const char *activation_call(Imp *im, const LayerInfo *ly, const char *x)
{
    if (ly->keras_args)
        return arena_printf(&im->arena, "%s(%s, %s)", ly->name, x, ly->keras_args);
    return arena_printf(&im->arena, "%s(%s)", ly->name, x);
}

/* Emits `name = call` for the current layer, making it the current value. */
static void emit(Imp *im, const char *name, const char *call)
{
    buf_printf(&im->out, "    %s = %s\n", name, call);
    im->cur = name;
}

/* A dense or conv2d statement with the activation folded in when nnc's
 * activation= means the same thing, else a separate statement. */
static bool emit_with_activation(Imp *im, const char *name, const char *head,
                                 const cJSON *act)
{
    bool is_linear;
    const LayerInfo *ly = activation_row(im, act, &is_linear);
    if (is_linear) {
        emit(im, name, arena_printf(&im->arena, "%s)", head));
        im->out_act = "linear";
        return true;
    }
    if (!ly)
        return false;
    if (!ly->keras_args) {
        emit(im, name, arena_printf(&im->arena, "%s, activation=%s)", head, ly->name));
    } else {
        emit(im, name, arena_printf(&im->arena, "%s)", head));
        emit(im, fresh(im, arena_printf(&im->arena, "%s_%s", name, ly->name)),
             activation_call(im, ly, name));
    }
    im->out_act = ly->name;
    return true;
}

/* ---- layers ---------------------------------------------------------------- */

static bool channels_last(Imp *im, const cJSON *cfg)
{
    const char *f = get_str(cfg, "data_format");
    if (f && strcmp(f, "channels_last") != 0)
        return fail(im, "data_format '%s' is not supported: nnc images are NHWC "
                        "(channels_last)", f);
    return true;
}

static bool need_image(Imp *im)
{
    if (im->rank != 3)
        return fail(im, "needs an image input (height, width, channels), got %s",
                    shape_text(im));
    return true;
}

/* Output size of a window over n: valid or same padding. */
static bool window_out(Imp *im, int n, int k, int s, bool same, int *out)
{
    *out = same ? (n + s - 1) / s : n < k ? 0 : (n - k) / s + 1;
    if (*out < 1)
        return fail(im, "window %d does not fit the input %s", k, shape_text(im));
    return true;
}

static bool padding(Imp *im, const cJSON *cfg, bool *same)
{
    const char *p = get_str(cfg, "padding");
    *same = p && !strcmp(p, "same");
    if (p && !*same && strcmp(p, "valid") != 0)
        return fail(im, "padding '%s' is not supported (valid or same)", p);
    return true;
}

static bool layer_dense(Imp *im, const cJSON *cfg, const char *name)
{
    const cJSON *units = get(cfg, "units");
    if (!is_int(units, 1, 1L << 24))
        return fail(im, "'units' is missing or not a positive integer");
    if (im->rank != 1)
        return fail(im, "input %s: nnc's dense takes (batch, features); add Flatten before it",
                    shape_text(im));
    const char *head = arena_printf(&im->arena, "dense(%s, %d", im->cur, (int)units->valuedouble);
    if (!get_bool(cfg, "use_bias", true))
        head = arena_printf(&im->arena, "%s, use_bias=false", head);
    if (!get_bool(cfg, "trainable", true))  /* a frozen Keras layer */
        head = arena_printf(&im->arena, "%s, trainable=false", head);
    im->dim[0] = (int)units->valuedouble;
    return emit_with_activation(im, name, head, get(cfg, "activation"));
}

static bool layer_conv(Imp *im, const cJSON *cfg, const char *name)
{
    const cJSON *filters = get(cfg, "filters");
    int k, s, d[2], oh, ow;
    bool same;
    if (!channels_last(im, cfg) || !need_image(im))
        return false;
    if (!is_int(filters, 1, 1L << 16))
        return fail(im, "'filters' is missing or not a positive integer");
    int nd = get_ints(cfg, "dilation_rate", d, 2);
    if (nd > 0 && (d[0] != 1 || (nd == 2 && d[1] != 1)))
        return fail(im, "dilation_rate %d is not supported (nnc convolutions are not dilated)",
                    d[0] != 1 ? d[0] : d[1]);
    const cJSON *groups = get(cfg, "groups");
    if (groups && !is_int(groups, 1, 1))
        return fail(im, "groups %s is not supported (nnc convolutions have one group)",
                    num(im, cJSON_IsNumber(groups) ? groups->valuedouble : 0));
    if (!square(im, cfg, "kernel_size", &k) || !square(im, cfg, "strides", &s) ||
        !padding(im, cfg, &same))
        return false;
    if (!window_out(im, im->dim[0], k, s, same, &oh) ||
        !window_out(im, im->dim[1], k, s, same, &ow))
        return false;
    const char *head = arena_printf(&im->arena, "conv2d(%s, %d, %d", im->cur,
                                    (int)filters->valuedouble, k);
    if (s != 1)
        head = arena_printf(&im->arena, "%s, strides=%d", head, s);
    if (same)
        head = arena_printf(&im->arena, "%s, padding=same", head);
    if (!get_bool(cfg, "use_bias", true))
        head = arena_printf(&im->arena, "%s, use_bias=false", head);
    if (!get_bool(cfg, "trainable", true))  /* a frozen Keras layer */
        head = arena_printf(&im->arena, "%s, trainable=false", head);
    im->dim[0] = oh;
    im->dim[1] = ow;
    im->dim[2] = (int)filters->valuedouble;
    return emit_with_activation(im, name, head, get(cfg, "activation"));
}

static bool layer_pool(Imp *im, const cJSON *cfg, const char *name, const char *op)
{
    int k, s, oh, ow;
    bool same;
    if (!channels_last(im, cfg) || !need_image(im) || !square(im, cfg, "pool_size", &k) ||
        !padding(im, cfg, &same))
        return false;
    if (same)
        return fail(im, "padding 'same' is not supported for pooling (valid only)");
    if (cJSON_IsNull(get(cfg, "strides")) || !get(cfg, "strides"))
        s = k;
    else if (!square(im, cfg, "strides", &s))
        return false;
    if (!window_out(im, im->dim[0], k, s, false, &oh) ||
        !window_out(im, im->dim[1], k, s, false, &ow))
        return false;
    const char *call = arena_printf(&im->arena, "%s(%s, %d", op, im->cur, k);
    if (s != k)
        call = arena_printf(&im->arena, "%s, strides=%d", call, s);
    emit(im, name, arena_printf(&im->arena, "%s)", call));
    im->dim[0] = oh;
    im->dim[1] = ow;
    im->out_act = "linear";
    return true;
}

static bool layer_gap(Imp *im, const cJSON *cfg, const char *name)
{
    if (!channels_last(im, cfg) || !need_image(im))
        return false;
    if (get_bool(cfg, "keepdims", false))
        return fail(im, "keepdims=True is not supported");
    emit(im, name, arena_printf(&im->arena, "global_avgpool2d(%s)", im->cur));
    im->rank = 1;
    im->dim[0] = im->dim[2];
    im->out_act = "linear";
    return true;
}

static bool layer_flatten(Imp *im, const cJSON *cfg, const char *name)
{
    if (im->rank > 1 && !channels_last(im, cfg))
        return false;
    emit(im, name, arena_printf(&im->arena, "flatten(%s)", im->cur));
    int n = 1;
    for (int d = 0; d < im->rank; d++)
        n *= im->dim[d];
    im->rank = 1;
    im->dim[0] = n;
    return true;
}

static bool layer_dropout(Imp *im, const cJSON *cfg, const char *name)
{
    double rate = 0;
    if (!get_num(im, cfg, "rate", &rate))
        return false;
    if (!(rate >= 0 && rate < 1))
        return fail(im, "rate %s is outside [0, 1)", num(im, rate));
    if (get(cfg, "noise_shape") && !cJSON_IsNull(get(cfg, "noise_shape")))
        return fail(im, "noise_shape is not supported (nnc drops elements independently)");
    emit(im, name, arena_printf(&im->arena, "dropout(%s, %s)", im->cur, num(im, rate)));
    return true;
}

/* axis must be the last one: -1, or its index counting the batch axis
 * (Keras 2 writes [3] for images). */
static bool last_axis(Imp *im, const cJSON *cfg)
{
    int a[4];
    int n = get_ints(cfg, "axis", a, 4);
    if (n == 0 && !get(cfg, "axis"))
        return true;
    if (n != 1 || (a[0] != -1 && a[0] != im->rank))
        return fail(im, "only the last axis is supported (axis -1)");
    return true;
}

static bool layer_norm(Imp *im, const cJSON *cfg, const char *name, bool batch)
{
    double eps = 0, momentum = 0;
    if (!last_axis(im, cfg) || !get_num(im, cfg, "epsilon", &eps) ||
        (batch && !get_num(im, cfg, "momentum", &momentum)))
        return false;
    if (!get_bool(cfg, "center", true) || !get_bool(cfg, "scale", true))
        return fail(im, "center=False or scale=False is not supported");
    if (get_bool(cfg, "renorm", false) || get_bool(cfg, "rms_scaling", false))
        return fail(im, "%s is not supported", batch ? "renorm" : "rms_scaling");
    if (batch)
        emit(im, name, arena_printf(&im->arena, "batchnorm(%s, momentum=%s, epsilon=%s)",
                                    im->cur, num(im, momentum), num(im, eps)));
    else
        emit(im, name, arena_printf(&im->arena, "layernorm(%s, epsilon=%s)", im->cur,
                                    num(im, eps)));
    im->out_act = "linear";
    return true;
}

static bool layer_activation(Imp *im, const cJSON *cfg, const char *name)
{
    bool is_linear;
    const LayerInfo *ly = activation_row(im, get(cfg, "activation"), &is_linear);
    if (is_linear) {
        emit(im, name, arena_printf(&im->arena, "linear(%s)", im->cur));
        im->out_act = "linear";
        return true;
    }
    if (!ly)
        return false;
    emit(im, name, activation_call(im, ly, im->cur));
    im->out_act = ly->name;
    return true;
}

static bool layer_relu(Imp *im, const cJSON *cfg, const char *name)
{
    const cJSON *max = get(cfg, "max_value"), *slope = get(cfg, "negative_slope"),
                *threshold = get(cfg, "threshold");
    if (max && !cJSON_IsNull(max))
        return fail(im, "max_value is not supported");
    if (threshold && !(cJSON_IsNumber(threshold) && threshold->valuedouble == 0))
        return fail(im, "a nonzero threshold is not supported");
    if (slope && cJSON_IsNumber(slope) && slope->valuedouble != 0)
        emit(im, name, arena_printf(&im->arena, "leaky_relu(%s, negative_slope=%s)", im->cur,
                                    num(im, slope->valuedouble)));
    else
        emit(im, name, arena_printf(&im->arena, "relu(%s)", im->cur));
    im->out_act = "relu";
    return true;
}

static bool layer_leaky(Imp *im, const cJSON *cfg, const char *name)
{
    double slope = 0;
    const char *key = get(cfg, "negative_slope") ? "negative_slope" : "alpha";
    if (!get_num(im, cfg, key, &slope))
        return false;
    emit(im, name, arena_printf(&im->arena, "leaky_relu(%s, negative_slope=%s)", im->cur,
                                num(im, slope)));
    im->out_act = "leaky_relu";
    return true;
}

static bool layer_elu(Imp *im, const cJSON *cfg, const char *name)
{
    double alpha = 1.0;
    if (get(cfg, "alpha") && !get_num(im, cfg, "alpha", &alpha))
        return false;
    emit(im, name, arena_printf(&im->arena, "elu(%s, alpha=%s)", im->cur, num(im, alpha)));
    im->out_act = "elu";
    return true;
}

static bool layer_softmax(Imp *im, const cJSON *cfg, const char *name)
{
    if (!last_axis(im, cfg))
        return false;
    emit(im, name, arena_printf(&im->arena, "softmax(%s)", im->cur));
    im->out_act = "softmax";
    return true;
}

/* The input shape: [null, d1, ...] (Keras 2 batch_input_shape, Keras 3
 * batch_shape). */
static bool input_shape(Imp *im, const cJSON *shape)
{
    const cJSON *e;
    int n = 0;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) < 2)
        return fail(im, "the input shape is missing or has no dimension besides the batch");
    if (cJSON_GetArraySize(shape) > 4)
        return fail(im, "inputs of rank %d are not supported (features, sequences or "
                        "images: at most 3 dimensions besides the batch)",
                    cJSON_GetArraySize(shape) - 1);
    cJSON_ArrayForEach(e, shape) {
        if (n++ == 0)
            continue;
        if (!is_int(e, 1, 1L << 24))
            return fail(im, "input dimension %d is unknown or not a positive integer "
                            "(nnc needs fixed shapes)", n - 1);
        im->dim[n - 2] = (int)e->valuedouble;
    }
    im->rank = n - 1;
    return true;
}

static const cJSON *batch_shape(const cJSON *cfg)
{
    const cJSON *s = get(cfg, "batch_shape");
    return s ? s : get(cfg, "batch_input_shape");
}

static bool layer_maxpool(Imp *im, const cJSON *cfg, const char *name)
{
    return layer_pool(im, cfg, name, "maxpool2d");
}

static bool layer_avgpool(Imp *im, const cJSON *cfg, const char *name)
{
    return layer_pool(im, cfg, name, "avgpool2d");
}

static bool layer_batchnorm(Imp *im, const cJSON *cfg, const char *name)
{
    return layer_norm(im, cfg, name, true);
}

static bool layer_layernorm(Imp *im, const cJSON *cfg, const char *name)
{
    return layer_norm(im, cfg, name, false);
}

/* The Keras layer classes nnc imports (and Keras' other spelling). */
static const struct {
    const char *cls, *alias;
    bool (*import)(Imp *im, const cJSON *cfg, const char *name);
} classes[] = {
    {"Dense", NULL, layer_dense},
    {"Conv2D", "Convolution2D", layer_conv},
    {"MaxPooling2D", "MaxPool2D", layer_maxpool},
    {"AveragePooling2D", "AvgPool2D", layer_avgpool},
    {"GlobalAveragePooling2D", "GlobalAvgPool2D", layer_gap},
    {"Flatten", NULL, layer_flatten},
    {"Dropout", NULL, layer_dropout},
    {"BatchNormalization", NULL, layer_batchnorm},
    {"LayerNormalization", NULL, layer_layernorm},
    {"Activation", NULL, layer_activation},
    {"ReLU", NULL, layer_relu},
    {"LeakyReLU", NULL, layer_leaky},
    {"ELU", NULL, layer_elu},
    {"Softmax", NULL, layer_softmax},
};
#define NCLASSES (sizeof classes / sizeof classes[0])

static bool layer(Imp *im, const cJSON *l)
{
    const cJSON *cfg = get(l, "config");
    const char *cls = im->lclass;
    const char *name = fresh(im, im->lname);
    if (!cJSON_IsObject(cfg))
        return fail(im, "no 'config' object");
    for (size_t i = 0; i < NCLASSES; i++)
        if (!strcmp(cls, classes[i].cls) || (classes[i].alias && !strcmp(cls, classes[i].alias)))
            return classes[i].import(im, cfg, name);
    if (!strcmp(cls, "InputLayer"))
        return fail(im, "an input layer in the middle of the model is not supported");
    const char *names[NCLASSES + 1] = {0};
    for (size_t i = 0; i < NCLASSES; i++)
        names[i] = classes[i].cls;
    return fail(im, "layer class '%s' is not supported (nnc imports %s)", cls,
                name_list(&im->arena, names, ", "));
}

/* ---- the model ------------------------------------------------------------- */

typedef struct KerasOptions {
    const char *input, *output, *loss, *optimizer;
    int batch;
} KerasOptions;

/* The input's shape and name: an InputLayer first (*skip_first set), else
 * the Sequential's build_input_shape, else the first layer's
 * batch_input_shape. */
static bool model_input(Imp *im, const cJSON *cfg, const cJSON *layers, const char **in_name,
                        bool *skip_first)
{
    const cJSON *first = layers->child, *fcfg = get(first, "config");
    const char *fcls = get_str(first, "class_name");
    const cJSON *shape = NULL;
    *in_name = "x";
    *skip_first = false;
    if (fcls && !strcmp(fcls, "InputLayer")) {
        shape = batch_shape(fcfg);
        if (get_str(fcfg, "name"))
            *in_name = get_str(fcfg, "name");
        *skip_first = true;
        im->index = 1;
        im->lname = *in_name;
        im->lclass = fcls;
    } else if (get(cfg, "build_input_shape")) {
        shape = get(cfg, "build_input_shape");
    } else {
        shape = batch_shape(fcfg);
    }
    if (!shape) {
        im->index = 0;
        return fail(im, "the input shape is unknown (no InputLayer, build_input_shape or "
                        "batch_input_shape): build the model before to_json()");
    }
    bool ok = input_shape(im, shape);
    im->index = 0;
    return ok;
}

/* The comment, `model NAME {` and the input statement. */
static void write_head(Imp *im, const cJSON *root, const cJSON *cfg, const char *in_name)
{
    const char *kname = get_str(cfg, "name");
    const char *model = fresh(im, kname ? kname : "model");
    const char *version = get_str(root, "keras_version");
    if (!version && get_str(root, "module"))  /* Keras 3 writes no version */
        version = "3";
    const char *base = strrchr(im->file, '/');
    base = base ? base + 1 : im->file;
    buf_printf(&im->out, "# Imported by `nnc import-keras %s` from a Keras%s%s Sequential\n"
                         "# model; the layers keep their Keras names (checkpoint tensors\n"
                         "# LAYER.weight, LAYER.bias, ...).\n",
               base, version ? " " : "", version ? version : "");
    buf_printf(&im->out, "model %s {\n", model);
    im->cur = fresh(im, in_name);
    buf_printf(&im->out, "    input %s[", im->cur);
    for (int d = 0; d < im->rank; d++)
        buf_printf(&im->out, "%s%d", d ? ", " : "", im->dim[d]);
    buf_puts(&im->out, "]\n");
    im->out_act = "linear";
}

/* Every layer but a leading InputLayer, one statement (or two) each. */
static bool import_layers(Imp *im, const cJSON *layers, bool skip_first)
{
    const cJSON *l;
    int index = 0;
    cJSON_ArrayForEach(l, layers) {
        index++;
        if (index == 1 && skip_first)
            continue;
        const cJSON *lc = get(l, "config");
        im->index = index;
        im->lclass = get_str(l, "class_name") ? get_str(l, "class_name") : "?";
        im->lname = get_str(lc, "name") ? get_str(lc, "name") : im->lclass;
        if (!get_str(l, "class_name"))
            return fail(im, "no 'class_name'");
        if (!layer(im, l))
            return false;
    }
    im->index = 0;
    if (index == (skip_first ? 1 : 0))
        return fail(im, "the model has no layers besides its input");
    return true;
}

/* loss, optimizer and batch: as given, else from the output's activation,
 * Adam and 32. */
static bool write_training(Imp *im, const KerasOptions *o)
{
    const char *loss = o->loss;
    const char *why = "from --loss";
    if (!loss) {
        if (!strcmp(im->out_act, "softmax")) {
            loss = "categorical_crossentropy";
            why = "softmax output, one-hot targets (fused at -O2)";
        } else if (!strcmp(im->out_act, "sigmoid")) {
            loss = "binary_crossentropy";
            why = "sigmoid output";
        } else {
            loss = "mse";
            why = "neither softmax nor sigmoid output";
        }
    } else if (!strcmp(loss, "softmax_cross_entropy") && !strcmp(im->out_act, "softmax")) {
        return fail(im, "--loss softmax_cross_entropy takes logits, but the model ends in a "
                        "softmax: use categorical_crossentropy (nnc fuses it with the softmax)");
    }
    buf_puts(&im->out, o->loss && o->optimizer && o->batch
                           ? "    # Keras' to_json() has no loss, optimizer or batch size: as given\n"
                           : "    # Keras' to_json() has no loss, optimizer or batch size: nnc\n"
                             "    # import-keras' defaults (--loss, --optimizer, --batch override)\n");
    buf_printf(&im->out, "    loss %s(%s)  # %s\n", loss, im->cur, why);
    buf_printf(&im->out, "    optimizer %s%s\n", o->optimizer ? o->optimizer : "adam",
               o->optimizer ? "" : "  # Keras' defaults: lr=0.001, eps=1e-7");
    buf_printf(&im->out, "    batch %d%s\n}\n", o->batch ? o->batch : 32,
               o->batch ? "" : "  # Keras' fit() default");
    return true;
}

static bool import_model(Imp *im, const cJSON *root, const KerasOptions *o)
{
    const char *cls = get_str(root, "class_name");
    const cJSON *cfg = get(root, "config");
    if (!cls || !cJSON_IsObject(cfg))
        return fail(im, "not a Keras model (no 'class_name' and 'config'; expected the "
                        "output of model.to_json())");
    if (strcmp(cls, "Sequential") != 0)
        return fail(im, "the model is a '%s' model: only Sequential models can be imported",
                    cls);
    const cJSON *layers = get(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return fail(im, "the Sequential model has no layers");
    const char *in_name;
    bool skip_first;
    if (!model_input(im, cfg, layers, &in_name, &skip_first))
        return false;
    write_head(im, root, cfg, in_name);
    return import_layers(im, layers, skip_first) && write_training(im, o);
}

/* ---- the command ----------------------------------------------------------- */

static bool write_out(const char *path, const Buf *b)
{
    if (!path)
        return fwrite(b->data, 1, b->len, stdout) == b->len && fflush(stdout) == 0;
    size_t n = strlen(path) + 16;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    bool ok = f && fwrite(b->data, 1, b->len, f) == b->len;
    ok = (f ? fclose(f) == 0 : false) && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(errno));
        if (fd >= 0)
            remove(tmp);
    }
    free(tmp);
    return ok;
}

/* The name of the list's entry that the n characters at s spell, or NULL. */
static const char *known_name(const char *const *names, const char *s, size_t n)
{
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == n && !strncmp(s, names[i], n))
            return names[i];
    return NULL;
}

/* An optimizer spec: a known name, optionally "(...)" (nnc checks the
 * arguments when compiling). */
static void check_optimizer(Arena *a, const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    if (!known_name(optimizer_names(), s, n))
        usage_error(arena_printf(a, "--optimizer '%%s': expected %s, optionally with arguments, "
                                 "e.g. 'sgd(lr=0.01, momentum=0.9)'",
                                 name_list(a, optimizer_names(), " or ")), s);
    const char *rest = s + n;
    size_t m = strlen(rest);
    if (m > 0 && (rest[0] != '(' || rest[m - 1] != ')' || strchr(rest, '\n') ||
                  strchr(rest, '#') || strchr(rest, '}')))
        usage_error("--optimizer '%s': arguments go in parentheses, e.g. "
                    "'adam(lr=0.0005)'", s);
}

static void check_loss(Arena *a, const char *s)
{
    if (!known_name(loss_names(), s, strlen(s)))
        usage_error(arena_printf(a, "--loss '%%s': expected %s",
                                 name_list(a, loss_names(), " or ")), s);
}

static int parse_batch(const char *v)
{
    char *end;
    errno = 0;
    long b = strtol(v, &end, 10);
    if (errno || *end || end == v || b < 1 || b > (1L << 20))
        usage_error("--batch '%s': expected an integer from 1 to 1048576", v);
    return (int)b;
}

/* The command line, with getopt_long (GNU: options and the file in any
 * order, --opt=value or --opt value). */
static void parse_options(int argc, char **argv, KerasOptions *o, Arena *a)
{
    enum { OPT_LOSS = 256, OPT_OPTIMIZER, OPT_BATCH };
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'},
        {"loss", required_argument, NULL, OPT_LOSS},
        {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
        {"batch", required_argument, NULL, OPT_BATCH},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;     /* glibc: start afresh (the driver may have used getopt) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longs, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        case 'o': o->output = optarg; break;
        case OPT_LOSS: check_loss(a, o->loss = optarg); break;
        case OPT_OPTIMIZER: check_optimizer(a, o->optimizer = optarg); break;
        case OPT_BATCH: o->batch = parse_batch(optarg); break;
        case ':':
            usage_error("option '%s' needs a value", optopt == 'o' ? "-o"
                        : optopt == OPT_LOSS ? "--loss" : optopt == OPT_OPTIMIZER
                        ? "--optimizer" : "--batch");
            break;
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->input)
            usage_error("more than one input file ('%s')", argv[i]);
        o->input = argv[i];
    }
}

int import_keras_main(int argc, char **argv)
{
    KerasOptions o = {0};
    Imp im = {0};
    parse_options(argc, argv, &o, &im.arena);
    if (!o.input)
        usage_error("%s", "no input file (usage: nnc import-keras MODEL.json -o MODEL.nn)");

    size_t len;
    char *text = (char *)src_read_bytes(o.input, &len, "read");
    if (!text)
        return 1;
    im.file = o.input;
    cJSON *root = cJSON_ParseWithLength(text, len);
    bool ok;
    if (!root && len == strlen(text) && nnc_json_valid(text)) {
        fprintf(stderr, "nnc: out of memory parsing '%s'\n", o.input);
        ok = false;
    } else if (!root) {
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        for (const char *p = text; at && p < at && *p; p++)
            line += *p == '\n';
        ok = fail(&im, "not valid JSON (line %d)", line);
    } else {
        ok = import_model(&im, root, &o);
    }
    ok = ok && write_out(o.output, &im.out);
    cJSON_Delete(root);
    free(text);
    buf_free(&im.out);
    free(im.used);
    arena_free(&im.arena);
    return ok ? 0 : 1;
}
