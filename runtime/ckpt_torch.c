/*
 * ckpt_torch.c - checkpoints in PyTorch's layout: loading a state dict
 * that torch wrote (safetensors.torch.save_file(model.state_dict())) and
 * writing one that model.load_state_dict() takes as it is.
 *
 * nnc and PyTorch agree on everything but images: nnc's are NHWC, torch's
 * NCHW. So a convolution kernel is [out, kh, kw, in] in nnc and
 * [out, in, kh, kw] in torch, and the parameters along a flattened image
 * (a dense layer's input columns after flatten, a batchnorm of the
 * flattened features) run in (h, w, c) order in nnc and (c, h, w) in
 * torch. Both cases are one permutation: rows of an (h, w, c) block in
 * nnc, of a (c, h, w) block in torch (a kernel row is an (kh, kw, in)
 * block). The emitted code describes each parameter with an
 * nnc_torch_layout.
 *
 * Names: a file that has every name of the model is matched by name.
 * Otherwise the tensors are matched layer by layer in order: the file's
 * layers (the part of a name before its last '.') sorted with numbers
 * compared as numbers (nn.Sequential's "0", "2", "10"; "features.3"),
 * each with the same set of tensors (weight, bias, running_mean, ...) as
 * the model's layer in the same position. Anything else is
 * NNC_ERR_MISMATCH.
 *
 * Both directions go through ckpt.c (nnc_ckpt_load and nnc_ckpt_save) with
 * temporary tensors in torch's layout, so the validation, the
 * num_batches_tracked rule and the atomic save are the same; the only
 * extra cost is one copy of the weights.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nncrt.h"
#include "nncrt_io.h"

/* The parsed JSON header of path into *root (io.c); a failure leaves
 * its message. */
static int read_header(const char *path, cJSON **root)
{
    char why[300];
    int err = nnc_st_read_header(path, root, why, sizeof why);

    if (err != NNC_OK)
        nnc_set_error("%s: %s", path, why);
    return err;
}

int nnc_ckpt_is_nnc(const char *path)
{
    cJSON *root;
    const cJSON *meta, *format;
    int err, nnc;

    if (path == NULL)
        return NNC_ERR_ARG;
    if ((err = read_header(path, &root)) != NNC_OK)
        return err;
    meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    format = cJSON_GetObjectItemCaseSensitive(meta, "format");
    nnc = cJSON_IsString(format) && strcmp(format->valuestring, "nnc") == 0;
    cJSON_Delete(root);
    return nnc;
}

/* ---- The permutation ---------------------------------------------------- */

/* Rows of an (h, w, c) block (nnc) to rows of a (c, h, w) block (torch),
 * or back; lay describes one tensor of count floats. */
static void permute(const nnc_torch_layout *lay, const float *src, float *dst,
                    size_t count, int to_torch)
{
    size_t h, w, c, block, r, y, x, k;

    if (lay->kind == NNC_TORCH_SAME) {
        memcpy(dst, src, count * sizeof *src);
        return;
    }
    h = (size_t)lay->h;
    w = (size_t)lay->w;
    c = (size_t)lay->c;
    block = h * w * c;
    for (r = 0; r < count / block; r++) {
        const float *s = src + r * block;
        float *d = dst + r * block;

        for (y = 0; y < h; y++)
            for (x = 0; x < w; x++)
                for (k = 0; k < c; k++) {
                    size_t hwc = (y * w + x) * c + k, chw = (k * h + y) * w + x;
                    if (to_torch)
                        d[chw] = s[hwc];
                    else
                        d[hwc] = s[chw];
                }
    }
}

static size_t numel(const nnc_tensor *t)
{
    size_t count = 1;
    int d;

    for (d = 0; d < t->rank; d++)
        count *= (size_t)t->shape[d];
    return count;
}

/* NNC_ERR_ARG unless lay fits t: a kernel is [out, h, w, c], a block
 * tensor's last axis is a multiple of h*w*c. */
static int check_layout(const nnc_tensor *t, const nnc_torch_layout *lay)
{
    int64_t block;

    if (t->rank < 0 || t->rank > NNC_MAX_RANK)
        return NNC_ERR_ARG;
    if (lay->kind == NNC_TORCH_SAME)
        return NNC_OK;
    if (lay->h <= 0 || lay->w <= 0 || lay->c <= 0 || t->rank < 1)
        return NNC_ERR_ARG;
    block = (int64_t)lay->h * lay->w * lay->c;
    if (lay->kind == NNC_TORCH_KERNEL)
        return t->rank == 4 && t->shape[1] == lay->h && t->shape[2] == lay->w
                       && t->shape[3] == lay->c ? NNC_OK : NNC_ERR_ARG;
    if (lay->kind == NNC_TORCH_FLAT)
        return t->shape[t->rank - 1] % block == 0 ? NNC_OK : NNC_ERR_ARG;
    return NNC_ERR_ARG;
}

/* Torch's shape of t: a kernel [out, in, kh, kw]; the rest unchanged. */
static void torch_shape(const nnc_tensor *t, const nnc_torch_layout *lay,
                        nnc_tensor *out)
{
    *out = *t;
    if (lay->kind == NNC_TORCH_KERNEL) {
        out->shape[1] = t->shape[3];
        out->shape[2] = t->shape[1];
        out->shape[3] = t->shape[2];
    }
}

/* Copies of t in torch's shapes, names and data uninitialized, with room
 * for every tensor's data in one block (*data); NULL if out of memory. */
static nnc_tensor *torch_tensors(const nnc_tensor *t,
                                 const nnc_torch_layout *lay, int n,
                                 float **data)
{
    nnc_tensor *tt = malloc(((size_t)n + 1) * sizeof *tt);
    size_t total = 0, pos = 0;
    int i;

    for (i = 0; i < n; i++)
        total += numel(&t[i]);
    *data = malloc((total + 1) * sizeof **data);
    if (tt == NULL || *data == NULL) {
        free(tt);
        free(*data);
        *data = NULL;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        torch_shape(&t[i], &lay[i], &tt[i]);
        tt[i].data = *data + pos;
        pos += numel(&t[i]);
    }
    return tt;
}

/* NNC_ERR_ARG unless path, t and lay are there, every layout fits its
 * tensor, every tensor has data (and a name, for loading). */
static int check_args(const char *path, const nnc_tensor *t, const nnc_torch_layout *lay,
                      int n, int need_names)
{
    int i, err;

    if (path == NULL || n < 0 || (n > 0 && (t == NULL || lay == NULL)))
        return NNC_ERR_ARG;
    for (i = 0; i < n; i++) {
        if ((err = check_layout(&t[i], &lay[i])) != NNC_OK)
            return err;
        if ((need_names && t[i].name == NULL) || (t[i].data == NULL && numel(&t[i]) > 0))
            return NNC_ERR_ARG;
    }
    return NNC_OK;
}

/* ---- Saving ------------------------------------------------------------- */

int nnc_ckpt_save_torch(const char *path, const nnc_tensor *t,
                        const nnc_torch_layout *lay, int n,
                        const char *const *metadata)
{
    nnc_tensor *tt;
    float *data;
    int i, err;

    if ((err = check_args(path, t, lay, n, 0)) != NNC_OK)
        return err;
    if ((tt = torch_tensors(t, lay, n, &data)) == NULL) {
        nnc_set_error("%s: out of memory for the tensors in PyTorch's layout", path);
        return NNC_ERR_NOMEM;
    }
    for (i = 0; i < n; i++)
        permute(&lay[i], t[i].data, tt[i].data, numel(&t[i]), 1);
    err = nnc_ckpt_save(path, tt, n, metadata);
    free(data);
    free(tt);
    return err;
}

/* ---- Loading: names ----------------------------------------------------- */

/* Length of name's layer part (before the last '.'), 0 if none. */
static size_t prefix_len(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot == NULL ? 0 : (size_t)(dot - name);
}

/* strcmp of a[0 .. na) and b[0 .. nb), except that runs of digits compare
 * as numbers ("2" < "10"). */
static int natural_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0;

    while (i < na && j < nb) {
        if (isdigit((unsigned char)a[i]) && isdigit((unsigned char)b[j])) {
            size_t si, sj, li, lj;

            while (i + 1 < na && a[i] == '0' && isdigit((unsigned char)a[i + 1]))
                i++;
            while (j + 1 < nb && b[j] == '0' && isdigit((unsigned char)b[j + 1]))
                j++;
            for (si = i; i < na && isdigit((unsigned char)a[i]); i++)
                ;
            for (sj = j; j < nb && isdigit((unsigned char)b[j]); j++)
                ;
            li = i - si;
            lj = j - sj;
            if (li != lj)
                return li < lj ? -1 : 1;
            if (memcmp(a + si, b + sj, li) != 0)
                return memcmp(a + si, b + sj, li);
        } else {
            if (a[i] != b[j])
                return (unsigned char)a[i] < (unsigned char)b[j] ? -1 : 1;
            i++;
            j++;
        }
    }
    return (i < na) - (j < nb);
}

static int by_layer(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int c = natural_cmp(a, prefix_len(a), b, prefix_len(b));

    return c != 0 ? c : strcmp(a, b);
}

static int same_layer(const char *a, const char *b)
{
    size_t n = prefix_len(a);

    return n == prefix_len(b) && strncmp(a, b, n) == 0;
}

/* The part of a name after its layer: after the last '.', or all of it. */
static const char *suffix_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot == NULL ? name : dot + 1;
}

/* The file tensor in the layer of `layer` (a file name) with this suffix,
 * or NULL. */
static const char *find_in_layer(const char *const *names, size_t count,
                                 const char *layer, const char *suffix)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (same_layer(names[i], layer) && strcmp(suffix_of(names[i]), suffix) == 0)
            return names[i];
    return NULL;
}

/* Sets map[i] to the file's name for t[i] (pointing into root);
 * NNC_ERR_MISMATCH if the names match neither exactly nor layer by
 * layer. */
static int map_names(const cJSON *root, const nnc_tensor *t, int n,
                     const char **map)
{
    const cJSON *item;
    const char **names;
    size_t count = 0, i, k;
    int exact = 1, j, err = NNC_OK;

    cJSON_ArrayForEach(item, root)
        count++;
    if ((names = malloc((count + 1) * sizeof *names)) == NULL)
        return NNC_ERR_NOMEM;
    count = 0;
    cJSON_ArrayForEach(item, root)
        if (strcmp(item->string, "__metadata__") != 0 && !nnc_st_ignorable(item->string))
            names[count++] = item->string;
    for (j = 0; j < n && exact; j++) {
        exact = 0;
        for (i = 0; i < count && !exact; i++)
            exact = strcmp(names[i], t[j].name) == 0;
    }
    if (exact) {
        for (j = 0; j < n; j++)
            map[j] = t[j].name;
        free(names);
        return NNC_OK;
    }
    /* layer by layer: the file's names sorted by layer, then walked in
     * step with the model's layers (consecutive tensors of one layer) */
    qsort(names, count, sizeof *names, by_layer);
    k = 0;  /* first file name of the current file layer */
    for (j = 0; j < n && err == NNC_OK;) {
        int first = j, m, in_file = 0;
        const char *layer;

        while (j < n && same_layer(t[j].name, t[first].name))
            j++;
        if (k >= count) {
            err = NNC_ERR_MISMATCH;
            break;
        }
        layer = names[k];
        while (k < count && same_layer(names[k], layer)) {
            k++;
            in_file++;
        }
        if (in_file != j - first)
            err = NNC_ERR_MISMATCH;
        for (m = first; m < j && err == NNC_OK; m++)
            if ((map[m] = find_in_layer(names, count, layer, suffix_of(t[m].name))) == NULL)
                err = NNC_ERR_MISMATCH;
    }
    if (err == NNC_OK && k != count)
        err = NNC_ERR_MISMATCH;
    free(names);
    return err;
}

/* ---- Loading ------------------------------------------------------------ */

/* A file that comes to the torch path is sometimes not a PyTorch file at
 * all but an nnc checkpoint with a damaged header: then say so,
 * NNC_ERR_FORMAT with a message about the header, rather than blame the
 * names or load part of it. damaged_marker, before anything is loaded:
 * its metadata has the "step" that only nnc's <prefix>_save writes but
 * not its "format": "nnc" (a damaged marker sent the file here).
 * damaged_header, after a mismatch: the file is malformed (the message of
 * ckpt.c's format phase); it runs only after a failure, so loading a good
 * file reads it no more often. */
static int damaged_marker(const char *path, const cJSON *root)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(meta, "format");

    if (cJSON_GetObjectItemCaseSensitive(meta, "step") == NULL
        || (cJSON_IsString(format) && strcmp(format->valuestring, "pt") == 0))
        return 0;
    nnc_set_error("%s: a damaged header: its __metadata__ has the \"step\" of an nnc "
                  "checkpoint but not \"format\": \"nnc\" (read as PyTorch's layout, its "
                  "tensors do not match the model)", path);
    return 1;
}

static int damaged_header(const char *path, int err)
{
    int check;

    if (err != NNC_ERR_MISMATCH)
        return err;
    if ((check = nnc_ckpt_check(path)) != NNC_OK)
        return check;
    return err;
}

int nnc_ckpt_load_torch(const char *path, const nnc_tensor *t,
                        const nnc_torch_layout *lay, int n)
{
    cJSON *root = NULL;
    const char **map = NULL;
    nnc_tensor *tt = NULL;
    float *data = NULL;
    int i, err;

    if ((err = check_args(path, t, lay, n, 1)) != NNC_OK)
        return err;
    if ((err = read_header(path, &root)) != NNC_OK)
        return err;
    /* checked first: a checkpoint of the whole model also matches a
     * model that loads its weights alone (frozen layers), but its
     * optimizer state would then be lost without a word */
    if (damaged_marker(path, root))
        err = NNC_ERR_FORMAT;
    map = err == NNC_OK ? malloc(((size_t)n + 1) * sizeof *map) : NULL;
    if (err == NNC_OK && map == NULL)
        err = NNC_ERR_NOMEM;
    if (err == NNC_OK && (err = map_names(root, t, n, map)) == NNC_ERR_MISMATCH)
        nnc_set_error("%s: a checkpoint in PyTorch's layout (no \"format\": \"nnc\" in "
                      "its metadata) whose tensors match neither the model's names nor "
                      "its layers in order", path);
    if (err == NNC_OK && (tt = torch_tensors(t, lay, n, &data)) == NULL)
        err = NNC_ERR_NOMEM;
    if (err == NNC_OK) {
        for (i = 0; i < n; i++)
            tt[i].name = map[i];
        err = nnc_ckpt_load(path, tt, n);
    }
    if (err == NNC_OK)
        for (i = 0; i < n; i++)
            permute(&lay[i], tt[i].data, t[i].data, numel(&t[i]), 0);
    if (err == NNC_ERR_NOMEM && (map == NULL || tt == NULL))  /* ours, not ckpt.c's */
        nnc_set_error("%s: out of memory for the tensors in PyTorch's layout", path);
    err = damaged_header(path, err);
    free(data);
    free(tt);
    free(map);
    cJSON_Delete(root);
    return err;
}
