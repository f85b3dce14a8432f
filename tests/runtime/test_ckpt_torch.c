/*
 * test_ckpt_torch.c - checkpoints in PyTorch's layout (runtime/ckpt_torch.c):
 * the kernel and flatten permutations both ways, the format test, names
 * matched exactly or layer by layer (digits compared as numbers), and
 * refusals that leave the model untouched. tests/interop checks the same
 * against real PyTorch modules.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nncrt.h"

#define TMP_DIR_NAME "/tmp/nnc_ckptt_XXXXXX"
#include "tmp_dir.h"

TestSuite(torch, .init = make_dir, .fini = remove_dir);

static nnc_tensor tensor(const char *name, int rank, const int64_t *shape, float *data)
{
    nnc_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.rank = rank;
    memcpy(t.shape, shape, (size_t)rank * sizeof *shape);
    t.data = data;
    return t;
}

/* A conv kernel [2, 2, 3, 4] (out, kh, kw, in) and a dense weight [2, 12]
 * whose columns are a flattened (1, 3, 4) image... and a plain bias. */
static const nnc_torch_layout lay[3] = {
    {NNC_TORCH_KERNEL, 2, 3, 4}, {NNC_TORCH_FLAT, 1, 3, 4}, {NNC_TORCH_SAME, 0, 0, 0}};
static float k[48], w[24], b[2];

static void model(nnc_tensor *t, const char *n0, const char *n1, const char *n2)
{
    static const int64_t ks[4] = {2, 2, 3, 4}, ws[2] = {2, 12}, bs[1] = {2};
    t[0] = tensor(n0, 4, ks, k);
    t[1] = tensor(n1, 2, ws, w);
    t[2] = tensor(n2, 1, bs, b);
}

static void fill(float base)
{
    for (int i = 0; i < 48; i++)
        k[i] = base + (float)i;
    for (int i = 0; i < 24; i++)
        w[i] = base + 100.0f + (float)i;
    b[0] = base + 200.0f;
    b[1] = base + 201.0f;
}

Test(torch, export_permutes_and_load_restores)
{
    nnc_tensor t[3], plain[3];
    const char *p = in_dir("x.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    float kt[48], wt[24], bt[2];

    model(t, "c.weight", "d.weight", "d.bias");
    fill(0);
    cr_assert_eq(nnc_ckpt_save_torch(p, t, lay, 3, meta), NNC_OK);
    cr_assert_eq(nnc_ckpt_is_nnc(p), 0);
    /* read back as plain tensors in torch's shapes */
    static const int64_t ks[4] = {2, 4, 2, 3}, ws[2] = {2, 12}, bs[1] = {2};
    plain[0] = tensor("c.weight", 4, ks, kt);
    plain[1] = tensor("d.weight", 2, ws, wt);
    plain[2] = tensor("d.bias", 1, bs, bt);
    cr_assert_eq(nnc_ckpt_load(p, plain, 3), NNC_OK);
    /* kernel: torch [o][c][y][x] = nnc [o][y][x][c] */
    for (int o = 0; o < 2; o++)
        for (int c = 0; c < 4; c++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++)
                    cr_assert_eq(kt[((o * 4 + c) * 2 + y) * 3 + x], k[((o * 2 + y) * 3 + x) * 4 + c]);
    /* columns: torch (c, h, w), nnc (h, w, c), h = 1 */
    for (int o = 0; o < 2; o++)
        for (int c = 0; c < 4; c++)
            for (int x = 0; x < 3; x++)
                cr_assert_eq(wt[o * 12 + c * 3 + x], w[o * 12 + x * 4 + c]);
    cr_assert_eq(bt[0], b[0]);
    /* and back */
    fill(1000);
    cr_assert_eq(nnc_ckpt_load_torch(p, t, lay, 3), NNC_OK);
    for (int i = 0; i < 48; i++)
        cr_assert_eq(k[i], (float)i);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(w[i], 100.0f + (float)i);
    cr_assert_eq(b[1], 201.0f);
}

Test(torch, format_metadata)
{
    nnc_tensor t[3];
    const char *nnc_meta[] = {"format", "nnc", NULL};

    model(t, "c.weight", "d.weight", "d.bias");
    fill(0);
    cr_assert_eq(nnc_ckpt_save(in_dir("a"), t, 3, nnc_meta), NNC_OK);
    cr_assert_eq(nnc_ckpt_is_nnc(in_dir("a")), 1);
    cr_assert_eq(nnc_ckpt_save(in_dir("b"), t, 3, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_is_nnc(in_dir("b")), 0);
    cr_assert_eq(nnc_ckpt_is_nnc(in_dir("missing")), NNC_ERR_IO);
    FILE *f = fopen(in_dir("short"), "wb");
    cr_assert_not_null(f);
    fputs("\x10\0\0\0\0\0\0\0{}", f);
    fclose(f);
    cr_assert_eq(nnc_ckpt_is_nnc(in_dir("short")), NNC_ERR_FORMAT);
    cr_assert_eq(nnc_ckpt_is_nnc(NULL), NNC_ERR_ARG);
}

/* Saved under the torch names src, loaded into a model named dst. */
static int load_as(const char *const *src, const char *const *dst)
{
    nnc_tensor t[3];
    const char *p = in_dir("n.safetensors");

    model(t, src[0], src[1], src[2]);
    fill(0);
    cr_assert_eq(nnc_ckpt_save_torch(p, t, lay, 3, NULL), NNC_OK);
    model(t, dst[0], dst[1], dst[2]);
    fill(1000);
    return nnc_ckpt_load_torch(p, t, lay, 3);
}

Test(torch, names_by_layer_order)
{
    const char *const seq[] = {"2.weight", "10.weight", "10.bias"};
    const char *const nnc[] = {"conv2d_0.weight", "dense_0.weight", "dense_0.bias"};
    const char *const nested[] = {"features.0.weight", "head.weight", "head.bias"};

    cr_assert_eq(load_as(seq, nnc), NNC_OK);   /* "10" after "2" */
    cr_assert_eq(k[5], 5.0f);
    cr_assert_eq(w[0], 100.0f);
    cr_assert_eq(b[1], 201.0f);
    cr_assert_eq(load_as(nested, nnc), NNC_OK);
}

Test(torch, names_refused)
{
    const char *const nnc[] = {"conv2d_0.weight", "dense_0.weight", "dense_0.bias"};
    /* same layers, other suffixes */
    const char *const suffix[] = {"0.weight", "1.weight", "1.other"};
    /* three layers where nnc has two: sizes differ */
    const char *const split[] = {"0.weight", "1.weight", "2.bias"};
    /* lexicographic order would fit ("10" < "2"), numeric order does not */
    const char *const order[] = {"10.weight", "2.weight", "2.bias"};

    cr_assert_eq(load_as(suffix, nnc), NNC_ERR_MISMATCH);
    cr_assert_eq(k[0], 1000.0f);   /* untouched */
    cr_assert_eq(load_as(split, nnc), NNC_ERR_MISMATCH);
    cr_assert_eq(load_as(order, nnc), NNC_ERR_MISMATCH);
    cr_assert_eq(w[0], 1100.0f);
}

Test(torch, bad_arguments)
{
    nnc_tensor t[3];
    nnc_torch_layout bad[3];

    model(t, "c.weight", "d.weight", "d.bias");
    memcpy(bad, lay, sizeof bad);
    bad[0].c = 5;   /* does not fit the kernel's shape */
    cr_assert_eq(nnc_ckpt_save_torch(in_dir("x"), t, bad, 3, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load_torch(in_dir("x"), t, bad, 3), NNC_ERR_ARG);
    memcpy(bad, lay, sizeof bad);
    bad[1].w = 5;   /* 12 columns are not blocks of 1x5x4 */
    cr_assert_eq(nnc_ckpt_save_torch(in_dir("x"), t, bad, 3, NULL), NNC_ERR_ARG);
    bad[1].kind = 9;
    cr_assert_eq(nnc_ckpt_save_torch(in_dir("x"), t, bad, 3, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_save_torch(NULL, t, lay, 3, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load_torch(in_dir("x"), NULL, lay, 3), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load_torch(in_dir("x"), t, NULL, 3), NNC_ERR_ARG);
    cr_assert_eq(access(in_dir("x"), F_OK), -1);
}

Test(torch, single_module_without_prefix)
{
    /* torch.nn.Linear(3, 2).state_dict(): "weight", "bias" */
    static const int64_t ws[2] = {2, 3}, bs[1] = {2};
    static const nnc_torch_layout same[2] = {{NNC_TORCH_SAME, 0, 0, 0}, {NNC_TORCH_SAME, 0, 0, 0}};
    float wv[6] = {1, 2, 3, 4, 5, 6}, bv[2] = {7, 8};
    nnc_tensor t[2];
    const char *p = in_dir("linear.safetensors");

    t[0] = tensor("weight", 2, ws, wv);
    t[1] = tensor("bias", 1, bs, bv);
    cr_assert_eq(nnc_ckpt_save(p, t, 2, NULL), NNC_OK);
    memset(wv, 0, sizeof wv);
    memset(bv, 0, sizeof bv);
    t[0].name = "dense_0.weight";
    t[1].name = "dense_0.bias";
    cr_assert_eq(nnc_ckpt_load_torch(p, t, same, 2), NNC_OK);
    cr_assert_eq(wv[5], 6.0f);
    cr_assert_eq(bv[1], 8.0f);
}

/* ---- A damaged header says so (issue 15) --------------------------------- */

/* What a model's generated <prefix>_load does: the layout from the
 * metadata, then nnc's loader (with the optimizer state) or torch's. */
static int load_as_generated(const char *path, const nnc_tensor *t, int nreq, int n)
{
    static const nnc_torch_layout same[4] = {{NNC_TORCH_SAME, 0, 0, 0}};
    uint64_t step;
    int found;

    if (nnc_ckpt_is_nnc(path) == 0)
        return nnc_ckpt_load_torch(path, t, same, nreq);
    return nnc_ckpt_load_opt(path, t, nreq, n, &found, &step);
}

/* A small nnc checkpoint as <prefix>_save writes it: two parameters, their
 * optimizer state, the metadata; its bytes, and its header length. */
static float dw[6], db[2], sw[6], sb[2];

static void small_model(nnc_tensor *t, float base)
{
    static const int64_t ws[2] = {2, 3}, bs[1] = {2};
    t[0] = tensor("d.weight", 2, ws, dw);
    t[1] = tensor("d.bias", 1, bs, db);
    t[2] = tensor("optimizer.d.weight.exp_avg", 2, ws, sw);
    t[3] = tensor("optimizer.d.bias.exp_avg", 1, bs, sb);
    for (int i = 0; i < 6; i++)
        dw[i] = base + (float)i, sw[i] = base - (float)i;
    db[0] = db[1] = sb[0] = sb[1] = base;
}

static unsigned char *small_checkpoint(size_t *size, size_t *hlen)
{
    static const char *const meta[] = {"format", "nnc", "model", "m", "step", "5", NULL};
    const char *good = in_dir("good.safetensors");
    nnc_tensor t[4];
    unsigned char *bytes;

    small_model(t, 1.0f);
    cr_assert_eq(nnc_ckpt_save(good, t, 4, meta), NNC_OK);
    bytes = read_all(good, size);
    *hlen = (size_t)bytes[0] | (size_t)bytes[1] << 8;
    return bytes;
}

/* Whether header byte i (of the whole file) is inside a tensor's name or
 * shape: a change there can leave a well-formed header that names a
 * tensor or a shape the model does not have, NNC_ERR_MISMATCH. */
static int in_name_or_shape(const unsigned char *bytes, size_t hlen, size_t i)
{
    static const char *const names[] = {"\"d.weight\"", "\"d.bias\"",
                                        "\"optimizer.d.weight.exp_avg\"",
                                        "\"optimizer.d.bias.exp_avg\""};
    char *h = strndup((const char *)bytes + 8, hlen), *p;
    int inside = 0;

    for (size_t j = 0; j < 4; j++) {
        p = strstr(h, names[j]);
        cr_assert_not_null(p);
        inside |= i >= 8 + (size_t)(p - h) && i < 8 + (size_t)(p - h) + strlen(names[j]);
    }
    for (p = h; (p = strstr(p, "\"shape\":[")) != NULL; p++)
        inside |= i >= 8 + (size_t)(p - h) + 8 && i <= 8 + (size_t)(strchr(p, ']') - h);
    free(h);
    return inside;
}

/* A FORMAT message names the file and speaks of its header. */
static int about_header(const char *path, const char *msg)
{
    static const char *const words[] = {"header", "tensor '", "__metadata__", "truncated"};

    if (strncmp(msg, path, strlen(path)) != 0)
        return 0;
    for (size_t j = 0; j < 4; j++)
        if (strstr(msg, words[j]) != NULL)
            return 1;
    return 0;
}

Test(torch, every_damaged_header_byte_is_a_format_error)
{
    /* every byte of the length and the header set to a few values: a
     * malformed header is NNC_ERR_FORMAT with a message about it; only a
     * changed tensor name or shape can give a well-formed header that does
     * not match (NNC_ERR_MISMATCH, naming the tensor); a change that still
     * loads (a digit of "step", a space) loads the same weights */
    const char *bad = in_dir("bad.safetensors");
    size_t size, hlen, nformat = 0, nmismatch = 0;
    unsigned char *bytes = small_checkpoint(&size, &hlen), *orig = malloc(size);
    nnc_tensor t[4];

    memcpy(orig, bytes, size);
    for (size_t i = 0; i < 8 + hlen; i++) {
        unsigned char keep = bytes[i];
        const unsigned char values[] = {keep ^ 0x01, keep ^ 0x20, '}', '"', ' ', 0};
        for (size_t v = 0; v < sizeof values; v++) {
            int rc;
            if (values[v] == keep)
                continue;
            bytes[i] = values[v];
            write_all(bad, bytes, size);
            small_model(t, -9.0f);
            nnc_set_error(NULL);
            rc = load_as_generated(bad, t, 2, 4);
            if (rc == NNC_ERR_FORMAT) {
                nformat++;
                cr_assert(about_header(bad, nnc_last_error()), "byte %zu = %#x: '%s'", i,
                          values[v], nnc_last_error());
            } else if (rc == NNC_ERR_MISMATCH) {
                nmismatch++;
                cr_assert(in_name_or_shape(orig, hlen, i)
                              && strstr(nnc_last_error(), "tensor '") != NULL,
                          "byte %zu = %#x (%c): mismatch '%s'", i, values[v], keep,
                          nnc_last_error());
            } else {
                cr_assert_eq(rc, NNC_OK, "byte %zu = %#x: %d '%s'", i, values[v], rc,
                             nnc_last_error());
                cr_assert(dw[5] == 6.0f && db[1] == 1.0f, "byte %zu = %#x: loaded others", i,
                          values[v]);
            }
        }
        bytes[i] = keep;
    }
    cr_assert_gt(nformat, 4 * hlen, "%zu format errors", nformat);
    cr_assert_gt(nmismatch, 0);
    free(orig);
    free(bytes);
}

Test(torch, truncated_header_is_a_format_error)
{
    const char *cut = in_dir("cut.safetensors");
    size_t size, hlen;
    unsigned char *bytes = small_checkpoint(&size, &hlen);
    nnc_tensor t[4];

    for (size_t len = 0; len < size; len++) {
        write_all(cut, bytes, len);
        small_model(t, -9.0f);
        cr_assert_eq(load_as_generated(cut, t, 2, 4), NNC_ERR_FORMAT, "length %zu", len);
        cr_assert(about_header(cut, nnc_last_error()) || len > 8 + hlen, "length %zu: '%s'",
                  len, nnc_last_error());
    }
    free(bytes);
}

Test(torch, damaged_format_marker_is_a_format_error)
{
    /* "format": "nnc" damaged sends the file to the torch path, whose
     * names then do not match: the header is to blame, not the model */
    static const char *const keys[][6] = {
        {"formaX", "nnc", "model", "m", "step", "5"},
        {"format", "nnX", "model", "m", "step", "5"},
    };
    const char *path = in_dir("marker.safetensors");
    nnc_tensor t[4];

    for (size_t j = 0; j < 2; j++) {
        const char *meta[7] = {keys[j][0], keys[j][1], keys[j][2], keys[j][3], keys[j][4],
                               keys[j][5], NULL};
        small_model(t, 1.0f);
        cr_assert_eq(nnc_ckpt_save(path, t, 4, meta), NNC_OK);
        cr_assert_eq(load_as_generated(path, t, 2, 4), NNC_ERR_FORMAT, "%s", keys[j][0]);
        cr_assert_not_null(strstr(nnc_last_error(), "damaged header"), "%s",
                           nnc_last_error());
    }
}

Test(torch, issue_15_empty_object_then_metadata)
{
    /* the issue's case: a header starting {}__metadata__": ... */
    static const char header[] = "{}__metadata__\":{\"format\":\"nnc\"},\"d.bias\":"
                                 "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} ";
    const char *path = in_dir("issue.safetensors");
    unsigned char buf[8 + sizeof header + 8] = {0};
    nnc_tensor t[4];

    buf[0] = (unsigned char)(sizeof header - 1);
    memcpy(buf + 8, header, sizeof header - 1);
    write_all(path, buf, 8 + sizeof header - 1 + 8);
    small_model(t, -9.0f);
    cr_assert_eq(load_as_generated(path, t, 2, 4), NNC_ERR_FORMAT);
    cr_assert(about_header(path, nnc_last_error()), "'%s'", nnc_last_error());
    cr_assert_eq(nnc_ckpt_load_torch(path, t, lay, 0), NNC_ERR_FORMAT);
}
