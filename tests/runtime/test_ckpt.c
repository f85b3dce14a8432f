/*
 * test_ckpt.c - safetensors checkpoints: round trips, the file layout that
 * other tools rely on, atomic saving, and refusal of every kind of bad file.
 *
 * Each test gets a fresh directory from mkdtemp (removed by the suite's
 * fini). Bad files are written by hand with write_st() from a JSON header
 * and a data size, next to a known-good control, so each test changes one
 * thing. Every refused load is checked to leave the destination tensors
 * bit-for-bit as they were (expect_load compares against a sentinel copy).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "nncrt.h"
#include "nncrt_io.h"

/* ---- Fixture: a temporary directory ------------------------------------ */

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/nnc_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes dir and what the tests put in it (files, one level of dirs). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[512];

    if (d == NULL) {
        remove(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (remove(sub) != 0)
            remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void remove_dir(void)
{
    remove_tree(dir);
}

TestSuite(ckpt, .init = make_dir, .fini = remove_dir);

static const char *in_dir(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Names in dir, sorted, joined by spaces. */
static char *listing(const char *path)
{
    static char out[1024];
    char names[16][256];
    int n = 0;
    DIR *d = opendir(path);
    struct dirent *e;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && n < 16)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_string);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, i ? " " : "");
        strcat(out, names[i]);
    }
    return out;
}

/* The whole file, with the runtime's reader (io.c). */
static unsigned char *read_all(const char *path, size_t *size)
{
    unsigned char *buf;
    char why[200];

    cr_assert_eq(nnc_read_file(path, &buf, size, why, sizeof why), NNC_OK, "%s: %s", path,
                 why);
    return buf;
}

static void write_all(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

/* A safetensors file with the given header length field, header text and
 * data_bytes bytes of little-endian floats 0, 1, 2, ... */
static void write_st_len(const char *path, uint64_t len, const char *header,
                         size_t data_bytes)
{
    size_t hlen = strlen(header), size = 8 + hlen + data_bytes;
    unsigned char *buf = calloc(size, 1);

    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i + 4 <= data_bytes; i += 4) {
        float f = (float)(i / 4);
        uint32_t v;
        memcpy(&v, &f, 4);
        for (int j = 0; j < 4; j++)
            buf[8 + hlen + i + (size_t)j] = (unsigned char)(v >> (8 * j));
    }
    write_all(path, buf, size);
    free(buf);
}

static void write_st(const char *path, const char *header, size_t data_bytes)
{
    write_st_len(path, strlen(header), header, data_bytes);
}

/* ---- Models ------------------------------------------------------------- */

/* A small model: w (3, 4), b (3), s () - a scalar. */
typedef struct Model {
    float w[12], b[3], s[1];
    nnc_tensor t[3];
} Model;

static void model_init(Model *m, float base)
{
    static const nnc_tensor shapes[3] = {
        {"dense_0.weight", 2, {3, 4}, NULL},
        {"dense_0.bias", 1, {3}, NULL},
        {"step", 0, {0}, NULL},
    };

    memcpy(m->t, shapes, sizeof shapes);
    m->t[0].data = m->w, m->t[1].data = m->b, m->t[2].data = m->s;
    for (int i = 0; i < 12; i++)
        m->w[i] = base + (float)i * 0.25f;
    for (int i = 0; i < 3; i++)
        m->b[i] = -base - (float)i;
    m->s[0] = base * 1000;
}

/* The model that the hand-written files below are checked against:
 * a (2, 2) then b (3), 28 bytes of data. */
typedef struct Small {
    float a[4], b[3];
    nnc_tensor t[2];
} Small;

#define GOOD_HEADER                                                    \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}"

static void small_init(Small *m)
{
    static const nnc_tensor shapes[2] = {
        {"a", 2, {2, 2}, NULL},
        {"b", 1, {3}, NULL},
    };

    memcpy(m->t, shapes, sizeof shapes);
    m->t[0].data = m->a, m->t[1].data = m->b;
    for (int i = 0; i < 4; i++)
        m->a[i] = -1.0f;
    for (int i = 0; i < 3; i++)
        m->b[i] = -2.0f;
}

/* Loads path into a sentinel-filled Small and expects err; on error the
 * tensors must be untouched. */
static void expect_small(const char *path, int err, const char *what)
{
    Small m, copy;
    int rc;

    small_init(&m);
    copy = m;
    nnc_set_error(NULL);
    rc = nnc_ckpt_load(path, m.t, 2);
    cr_assert_eq(rc, err, "%s: got %d (%s), want %d", what, rc,
                 nnc_strerror(rc), err);
    if (err != NNC_OK) {
        /* every refusal says which file and why */
        cr_assert(strncmp(nnc_last_error(), path, strlen(path)) == 0
                      && strlen(nnc_last_error()) > strlen(path) + 10,
                  "%s: message '%s'", what, nnc_last_error());
        cr_assert_eq(memcmp(m.a, copy.a, sizeof m.a), 0, "%s wrote a", what);
        cr_assert_eq(memcmp(m.b, copy.b, sizeof m.b), 0, "%s wrote b", what);
    }
}

/* Writes header + data_bytes and expects err loading it into Small. */
static void expect_header(const char *header, size_t data_bytes, int err)
{
    const char *path = in_dir("hand.safetensors");

    write_st(path, header, data_bytes);
    expect_small(path, err, header);
}

/* ---- Round trips and layout --------------------------------------------- */

Test(ckpt, round_trip)
{
    Model out, in;
    const char *path = in_dir("m.safetensors");

    model_init(&out, 1.5f);
    out.w[0] = -0.0f, out.w[1] = INFINITY, out.w[2] = NAN;
    out.w[3] = 1e-40f;                   /* subnormal */
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_save(path, out.t, 3, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_load(path, in.t, 3), NNC_OK);
    cr_assert_eq(memcmp(in.w, out.w, sizeof in.w), 0);
    cr_assert_eq(memcmp(in.b, out.b, sizeof in.b), 0);
    cr_assert_eq(memcmp(in.s, out.s, sizeof in.s), 0);
}

Test(ckpt, round_trip_large_tensor_and_empty_tensor)
{
    enum { N = 10007 };     /* more than the writer's buffer, odd size */
    static float big[N], back[N];
    float dummy = 5.0f;
    nnc_tensor t[2] = {{"big", 2, {1, N}, big}, {"empty", 3, {4, 0, 2}, &dummy}};
    nnc_tensor u[2] = {{"big", 2, {1, N}, back}, {"empty", 3, {4, 0, 2}, NULL}};
    nnc_rng r;
    const char *path = in_dir("big.safetensors");

    nnc_rng_seed(&r, 9);
    nnc_fill_uniform(big, N, -1, 1, &r);
    cr_assert_eq(nnc_ckpt_save(path, t, 2, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_load(path, u, 2), NNC_OK);
    cr_assert_eq(memcmp(big, back, sizeof big), 0);
}

Test(ckpt, round_trip_no_tensors)
{
    const char *path = in_dir("none.safetensors");

    cr_assert_eq(nnc_ckpt_save(path, NULL, 0, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_load(path, NULL, 0), NNC_OK);
}

Test(ckpt, file_layout)
{
    static const char *const meta[] = {"format", "pt", "nnc", NNCRT_VERSION,
                                       NULL};
    static const char *const order[] = {"dense_0.weight", "dense_0.bias",
                                        "step"};
    static const uint64_t offsets[] = {0, 48, 60, 64};
    const char *path = in_dir("m.safetensors");
    unsigned char *bytes;
    size_t size, n, i = 0;
    cJSON *root, *item;
    char *header;
    Model m;

    model_init(&m, 1.0f);     /* w[0] = 1.0f */
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, meta), NNC_OK);
    bytes = read_all(path, &size);
    n = 0;
    for (int b = 7; b >= 0; b--)
        n = n << 8 | bytes[b];
    cr_assert_eq((8 + n) % 8, 0, "data not 8-aligned");
    cr_assert_eq(size, 8 + n + 64);
    cr_assert(n == 0 || bytes[8] == '{');
    header = calloc(n + 1, 1);
    memcpy(header, bytes + 8, n);
    root = cJSON_Parse(header);
    cr_assert(cJSON_IsObject(root), "header: %s", header);

    cJSON_ArrayForEach(item, root) {
        cJSON *shape, *offs;
        if (strcmp(item->string, "__metadata__") == 0) {
            cr_assert_str_eq(cJSON_GetObjectItem(item, "format")->valuestring,
                             "pt");
            cr_assert_str_eq(cJSON_GetObjectItem(item, "nnc")->valuestring,
                             NNCRT_VERSION);
            continue;
        }
        cr_assert_lt(i, 3);
        cr_assert_str_eq(item->string, order[i], "tensor order");
        cr_assert_str_eq(cJSON_GetObjectItem(item, "dtype")->valuestring,
                         "F32");
        shape = cJSON_GetObjectItem(item, "shape");
        cr_assert_eq(cJSON_GetArraySize(shape), m.t[i].rank);
        for (int d = 0; d < m.t[i].rank; d++)
            cr_assert_eq(cJSON_GetArrayItem(shape, d)->valuedouble,
                         (double)m.t[i].shape[d]);
        offs = cJSON_GetObjectItem(item, "data_offsets");
        cr_assert_eq(cJSON_GetArrayItem(offs, 0)->valuedouble,
                     (double)offsets[i]);
        cr_assert_eq(cJSON_GetArrayItem(offs, 1)->valuedouble,
                     (double)offsets[i + 1]);
        i++;
    }
    cr_assert_eq(i, 3);
    cr_assert_not_null(cJSON_GetObjectItem(root, "__metadata__"));
    /* 1.0f little-endian is 00 00 80 3f. */
    cr_assert(bytes[8 + n] == 0x00 && bytes[8 + n + 1] == 0x00
              && bytes[8 + n + 2] == 0x80 && bytes[8 + n + 3] == 0x3f);
    cJSON_Delete(root);
    free(header);
    free(bytes);
}

Test(ckpt, no_metadata_key_without_metadata)
{
    const char *path = in_dir("m.safetensors");
    unsigned char *bytes;
    size_t size;
    Model m;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    bytes = read_all(path, &size);
    bytes[size] = '\0';
    cr_assert_null(strstr((char *)bytes + 8, "__metadata__"));
    free(bytes);
}

Test(ckpt, loads_hand_written_file)
{
    /* The control for the malformed files below; padded header too. */
    Small m;

    write_st(in_dir("h.safetensors"), GOOD_HEADER "    ", 28);
    small_init(&m);
    cr_assert_eq(nnc_ckpt_load(in_dir("h.safetensors"), m.t, 2), NNC_OK);
    cr_assert(m.a[0] == 0 && m.a[3] == 3 && m.b[0] == 4 && m.b[2] == 6);
}

Test(ckpt, loads_metadata_and_any_entry_order)
{
    expect_header("{\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[16,28]},"
                  "\"__metadata__\":{\"format\":\"pt\"},"
                  "\"a\":{\"data_offsets\":[0,16],\"shape\":[2,2],"
                  "\"dtype\":\"F32\"}}",
                  28, NNC_OK);
}

/* ---- Atomic saving ------------------------------------------------------ */

Test(ckpt, save_leaves_no_temp_files)
{
    const char *path = in_dir("m.safetensors");
    Model m, in;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    cr_assert_str_eq(listing(dir), "m.safetensors");
    model_init(&m, 2.0f);           /* overwrite an existing checkpoint */
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    cr_assert_str_eq(listing(dir), "m.safetensors");
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load(path, in.t, 3), NNC_OK);
    cr_assert_eq(in.w[0], 2.0f);
}

Test(ckpt, failed_save_removes_temp_file)
{
    /* rename() cannot replace a non-empty directory. */
    const char *path = in_dir("taken");
    Model m;

    cr_assert_eq(mkdir(path, 0700), 0);
    write_all(in_dir("taken/x"), "x", 1);
    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_IO);
    cr_assert_str_eq(listing(dir), "taken");
}

Test(ckpt, save_respects_umask)
{
    const char *path = in_dir("m.safetensors");
    struct stat st;
    Model m;

    model_init(&m, 1.0f);
    umask(022);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
    umask(077);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
}

Test(ckpt, save_into_missing_directory)
{
    Model m;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(in_dir("nope/m.safetensors"), m.t, 3, NULL),
                 NNC_ERR_IO);
    cr_assert_str_eq(listing(dir), "");
}

/* ---- Refused files ------------------------------------------------------ */

Test(ckpt, missing_file_is_io_error)
{
    expect_small(in_dir("absent.safetensors"), NNC_ERR_IO, "absent");
    expect_small(dir, NNC_ERR_IO, "a directory");
}

Test(ckpt, truncated_at_every_length)
{
    const char *good = in_dir("m.safetensors");
    const char *cut = in_dir("cut.safetensors");
    unsigned char *bytes;
    size_t size;
    Model m, in, sentinel;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(good, m.t, 3, NULL), NNC_OK);
    bytes = read_all(good, &size);
    model_init(&sentinel, -9.0f);
    for (size_t len = 0; len < size; len++) {
        write_all(cut, bytes, len);
        model_init(&in, -9.0f);
        cr_assert_eq(nnc_ckpt_load(cut, in.t, 3), NNC_ERR_FORMAT,
                     "length %zu of %zu", len, size);
        cr_assert_eq(memcmp(in.w, sentinel.w, sizeof in.w), 0, "len %zu", len);
        cr_assert_eq(memcmp(in.b, sentinel.b, sizeof in.b), 0, "len %zu", len);
        cr_assert_eq(memcmp(in.s, sentinel.s, sizeof in.s), 0, "len %zu", len);
    }
    free(bytes);
}

Test(ckpt, trailing_bytes_refused)
{
    write_st_len(in_dir("t.safetensors"), strlen(GOOD_HEADER), GOOD_HEADER,
                 32);
    expect_small(in_dir("t.safetensors"), NNC_ERR_FORMAT, "4 extra bytes");
}

Test(ckpt, corrupt_header_json)
{
    static const char *const bad[] = {
        "", "{", "}", "[]", "null", "42", "\"a\"", "not json",
        "{\"a\":}", GOOD_HEADER " x", GOOD_HEADER "}",
        /* the closing brace missing */
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}"),
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_header(bad[i], 28, NNC_ERR_FORMAT);
}

Test(ckpt, nul_byte_in_header)
{
    char header[] = GOOD_HEADER "  ";
    size_t len = strlen(header);
    const char *path = in_dir("nul.safetensors");
    unsigned char buf[8 + sizeof header + 28] = {0};

    header[len - 1] = '\0';   /* inside the declared length */
    buf[0] = (unsigned char)len;
    memcpy(buf + 8, header, len);
    write_all(path, buf, 8 + len + 28);
    expect_small(path, NNC_ERR_FORMAT, "NUL in header");
}

Test(ckpt, malformed_entries)
{
    static const char *const bad[] = {
        /* entry not an object */
        "{\"a\":[],\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
        "\"data_offsets\":[16,28]}}",
        /* dtype missing, not a string, unknown */
        "{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":4,\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":\"F33\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        /* shape missing, not an array, negative, fractional, huge */
        "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2,-2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5,1.6],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\",2],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
        /* duplicate name */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_header(bad[i], 28, NNC_ERR_FORMAT);
    /* A product that overflows is refused even if a later dimension is 0
     * (as the safetensors library does). */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
                  "4294967296,4294967296,0],\"data_offsets\":[0,0]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[0,12]}}",
                  12, NNC_ERR_FORMAT);
    /* metadata not an object of strings, or twice */
    expect_header("{\"__metadata__\":[],\"a\":{\"dtype\":\"F32\",\"shape\":"
                  "[2,2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\","
                  "\"shape\":[3],\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_FORMAT);
    expect_header("{\"__metadata__\":{\"n\":1},\"a\":{\"dtype\":\"F32\","
                  "\"shape\":[2,2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":"
                  "\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_FORMAT);
    expect_header("{\"__metadata__\":{},\"__metadata__\":{},\"a\":{\"dtype\":"
                  "\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"b\":"
                  "{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_FORMAT);
}

#define A_WITH(offs)                                                   \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":" offs "}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}"
#define B_WITH(offs)                                                   \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":" offs "}}"

Test(ckpt, offsets_out_of_range)
{
    static const char *const bad[] = {
        B_WITH("[16,32]"),              /* past the end of the file */
        B_WITH("[100,112]"),
        B_WITH("[18446744073709551615,18446744073709551627]"),
        B_WITH("[28,16]"),              /* begin > end */
        B_WITH("[16,24]"),              /* length does not match shape */
        B_WITH("[-16,28]"),
        B_WITH("[16.5,28]"),
        B_WITH("[1e300,28]"),
        B_WITH("[16]"),
        B_WITH("[16,28,40]"),
        B_WITH("{\"begin\":16,\"end\":28}"),
        B_WITH("[\"16\",\"28\"]"),
        A_WITH("[4,20]"),              /* overlaps b, leaves a hole */
        B_WITH("[12,24]"),              /* overlaps a */
        B_WITH("[0,12]"),               /* inside a */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_header(bad[i], 28, NNC_ERR_FORMAT);
    /* Swapped, but still tiling the data: fine. */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[12,28]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[0,12]}}",
                  28, NNC_OK);
    /* Offsets tile the data but disagree with the shapes (a is 16 bytes):
     * trusting them would copy 4 floats into b's 3. */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,12]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[12,28]}}",
                  28, NNC_ERR_FORMAT);
    /* A hole between tensors (12 bytes of data unused). */
    expect_header(B_WITH("[28,40]"), 40, NNC_ERR_FORMAT);
}

Test(ckpt, header_length_huge)
{
    static const uint64_t lens[] = {
        UINT64_MAX, UINT64_C(1) << 63, UINT64_C(1) << 32, 100000001,
        strlen(GOOD_HEADER) + 29,       /* one past the end of the file */
        0,
    };
    const char *path = in_dir("len.safetensors");

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        write_st_len(path, lens[i], GOOD_HEADER, 28);
        expect_small(path, NNC_ERR_FORMAT, "header length");
    }
}

/* ---- Mismatches --------------------------------------------------------- */

Test(ckpt, wrong_dtype)
{
    /* Well-formed files whose tensors are not F32. */
    expect_header(A_WITH("[0,16]"), 28, NNC_OK);
    expect_header("{\"a\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_MISMATCH);
    expect_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,32]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[32,44]}}",
                  44, NNC_ERR_MISMATCH);
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,16]},\"b\":{\"dtype\":\"F16\",\"shape\":[3],"
                  "\"data_offsets\":[16,22]}}",
                  22, NNC_ERR_MISMATCH);
}

Test(ckpt, wrong_shape)
{
    Model m, other;
    const char *path = in_dir("m.safetensors");

    /* (4, 3) instead of (3, 4): same byte count, different shape. */
    model_init(&m, 1.0f);
    m.t[0].shape[0] = 4, m.t[0].shape[1] = 3;
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    model_init(&other, 0.0f);
    cr_assert_eq(nnc_ckpt_load(path, other.t, 3), NNC_ERR_MISMATCH);
    cr_assert_eq(other.w[0], 0.0f);
    /* Rank differs: (12) against (3, 4); () against (1). */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":"
                  "[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_MISMATCH);
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2,1],"
                  "\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\","
                  "\"shape\":[3],\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_MISMATCH);
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[1,3],"
                  "\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_MISMATCH);
}

Test(ckpt, missing_tensor)
{
    Model m, in;
    const char *path = in_dir("m.safetensors");

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 2, NULL), NNC_OK);
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load(path, in.t, 3), NNC_ERR_MISMATCH);
    cr_assert_eq(in.w[0], 0.0f);
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,16]}}",
                  16, NNC_ERR_MISMATCH);
    /* Same count, different name. */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                  "[0,16]},\"c\":{\"dtype\":\"F32\",\"shape\":[3],"
                  "\"data_offsets\":[16,28]}}",
                  28, NNC_ERR_MISMATCH);
}

Test(ckpt, extra_tensor)
{
    Model m, in;
    const char *path = in_dir("m.safetensors");

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load(path, in.t, 2), NNC_ERR_MISMATCH);
    cr_assert_eq(in.w[0], 0.0f);
    cr_assert_eq(nnc_ckpt_load(path, NULL, 0), NNC_ERR_MISMATCH);
}

/* ---- Optional tensors (optimizer state) --------------------------------- */

/* The model's first two tensors are required, the third ("step" here) is
 * the optional group. */
Test(ckpt, optional_tensors_loaded_with_step)
{
    Model m, in;
    const char *meta[] = {"step", "12345678901", NULL};
    const char *path = in_dir("m.safetensors");
    int found = 0;
    uint64_t step = 0;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, meta), NNC_OK);
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_OK);
    cr_assert(found && step == 12345678901ull);
    cr_assert_eq(memcmp(&in.w, &m.w, sizeof m.w + sizeof m.b + sizeof m.s), 0);
}

Test(ckpt, optional_tensors_absent)
{
    Model m, in;
    const char *path = in_dir("m.safetensors");
    int found = 1;
    uint64_t step = 7;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 2, NULL), NNC_OK);  /* weights only */
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_OK);
    cr_assert(!found && step == 0);
    cr_assert_eq(memcmp(in.w, m.w, sizeof m.w), 0);
    cr_assert_eq(in.s[0], 0.0f);                /* the optional one untouched */
    /* weights only, with a step: it is read */
    const char *meta[] = {"step", "42", NULL};
    cr_assert_eq(nnc_ckpt_save(path, m.t, 2, meta), NNC_OK);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_OK);
    cr_assert(!found && step == 42);
}

Test(ckpt, optional_tensors_refused_untouched)
{
    Model m, in;
    const char *bad[] = {"step", "12x", NULL};
    const char *path = in_dir("m.safetensors");
    int found = 5;
    uint64_t step = 9;

    model_init(&m, 1.0f);
    /* state but no step, or a malformed one: nothing written */
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    model_init(&in, 0.0f);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_ERR_FORMAT);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, bad), NNC_OK);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_ERR_FORMAT);
    cr_assert(in.w[0] == 0.0f && in.s[0] == 0.0f && found == 5 && step == 9);
    /* a required tensor missing */
    cr_assert_eq(nnc_ckpt_save(path, m.t + 1, 2, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, &step), NNC_ERR_MISMATCH);
    /* without the step, the state alone loads */
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_OK);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 2, 3, &found, NULL), NNC_OK);
    cr_assert(found == 1 && in.s[0] == m.s[0]);
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 3, 2, NULL, NULL), NNC_ERR_ARG);
}

Test(ckpt, optional_group_is_all_or_nothing)
{
    Model m, in;
    const char *path = in_dir("m.safetensors");
    const char *meta[] = {"step", "3", NULL};

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 2, meta), NNC_OK);
    model_init(&in, 0.0f);
    /* dense_0.bias optional with step: present, step absent -> must be all */
    cr_assert_eq(nnc_ckpt_load_opt(path, in.t, 1, 3, NULL, NULL), NNC_ERR_MISMATCH);
    cr_assert_eq(in.w[0], 0.0f);
}

/* ---- Messages ------------------------------------------------------------ */

/* Loads path into Small, expects err and a message holding `part`. */
static void expect_message(const char *path, int err, const char *part)
{
    expect_small(path, err, part);
    cr_assert(strstr(nnc_last_error(), part) != NULL, "message '%s' lacks '%s'",
              nnc_last_error(), part);
}

Test(ckpt, messages_name_the_problem)
{
    const char *path = in_dir("m.safetensors");

    write_all(path, "\x10\0\0", 3);
    expect_message(path, NNC_ERR_FORMAT, "truncated: 3 bytes");
    write_st_len(path, 1000, GOOD_HEADER, 28);
    expect_message(path, NNC_ERR_FORMAT, "header length 1000 runs past the end");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",", 0);
    expect_message(path, NNC_ERR_FORMAT, "malformed JSON header");
    write_st(path, GOOD_HEADER, 24);
    expect_message(path, NNC_ERR_FORMAT, "tensor 'b' has data past the end");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}", 28);
    expect_message(path, NNC_ERR_MISMATCH, "tensor 'a' is F32 [4]; the model expects F32 [2, 2]");
    write_st(path, "{\"a\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}", 28);
    expect_message(path, NNC_ERR_MISMATCH, "tensor 'a' is I32 [2, 2]");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
    expect_message(path, NNC_ERR_MISMATCH, "no tensor 'b'");
    write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]},"
                   "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[28,32]}}", 32);
    expect_message(path, NNC_ERR_MISMATCH, "tensor 'c' is not in the model");
    expect_message(in_dir("absent"), NNC_ERR_IO, "cannot open: No such file");
}

/* A save that fails half-way (a file size limit, as a full disk would)
 * returns NNC_ERR_IO with errno's reason, and leaves the existing file as
 * it was and no temporary file. */
Test(ckpt, failed_write_keeps_the_old_file)
{
    const char *path = in_dir("m.safetensors");
    unsigned char *before, *after;
    size_t n, m;
    struct rlimit lim;
    Model big;
    static float data[4096];
    nnc_tensor t = {"big", 1, {4096}, data};

    model_init(&big, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, big.t, 3, NULL), NNC_OK);
    before = read_all(path, &n);
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    lim.rlim_cur = 4096;    /* the new file needs 16 KB and more */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    nnc_set_error(NULL);
    cr_assert_eq(nnc_ckpt_save(path, &t, 1, NULL), NNC_ERR_IO);
    cr_assert(strstr(nnc_last_error(), "File too large") != NULL
                  && strstr(nnc_last_error(), path) != NULL,
              "message '%s'", nnc_last_error());
    after = read_all(path, &m);
    cr_assert(m == n && memcmp(before, after, n) == 0, "the old file changed");
    cr_assert_str_eq(listing(dir), "m.safetensors");
    free(before);
    free(after);
}

/* A save killed half-way (SIGXFSZ's default action at the file size
 * limit) leaves the existing file as it was: the write went to a
 * temporary file, which the crash leaves behind beside it. */
Test(ckpt, interrupted_save_keeps_the_old_file)
{
    const char *path = in_dir("m.safetensors");
    unsigned char *before, *after;
    size_t n, m;
    int status;
    pid_t pid;
    Model small;

    model_init(&small, 1.0f);
    cr_assert_eq(nnc_ckpt_save(path, small.t, 3, NULL), NNC_OK);
    before = read_all(path, &n);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        static float data[4096];
        nnc_tensor t = {"big", 1, {4096}, data};
        struct rlimit lim;

        signal(SIGXFSZ, SIG_DFL);
        getrlimit(RLIMIT_FSIZE, &lim);
        lim.rlim_cur = 4096;
        setrlimit(RLIMIT_FSIZE, &lim);
        nnc_ckpt_save(path, &t, 1, NULL);
        _exit(0);   /* not reached: the write past the limit kills */
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "status %x", status);
    after = read_all(path, &m);
    cr_assert(m == n && memcmp(before, after, n) == 0, "the old file changed");
    free(before);
    free(after);
}

static void *fail_in_thread(void *arg)
{
    Small m;

    small_init(&m);
    nnc_ckpt_load((const char *)arg, m.t, 2);
    return strstr(nnc_last_error(), (const char *)arg) != NULL ? arg : NULL;
}

Test(ckpt, messages_are_per_thread)
{
    pthread_t th;
    void *res = NULL;
    const char *other = in_dir("other-thread.safetensors");

    nnc_set_error("%s", "this thread's");
    cr_assert_eq(pthread_create(&th, NULL, fail_in_thread, (void *)other), 0);
    cr_assert_eq(pthread_join(th, &res), 0);
    cr_assert(res != NULL, "the other thread saw no message of its own");
    cr_assert_str_eq(nnc_last_error(), "this thread's");
}

/* ---- Arguments and robustness ------------------------------------------ */

Test(ckpt, bad_arguments)
{
    static const char *const odd[] = {"key", NULL};
    static const char *const twice[] = {"k", "1", "k", "2", NULL};
    const char *path = in_dir("m.safetensors");
    Model m;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(NULL, m.t, 3, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load(NULL, m.t, 3), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_save(path, m.t, -1, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load(path, m.t, -1), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_save(path, NULL, 1, NULL), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_load(path, NULL, 1), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, odd), NNC_ERR_ARG);
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, twice), NNC_ERR_ARG);
    m.t[1].name = m.t[0].name;
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_ARG);
    model_init(&m, 1.0f);
    m.t[0].rank = NNC_MAX_RANK + 1;
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_ARG);
    model_init(&m, 1.0f);
    m.t[0].shape[1] = -4;
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_ARG);
    model_init(&m, 1.0f);
    m.t[2].name = "__metadata__";
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_ARG);
    model_init(&m, 1.0f);
    m.t[1].data = NULL;
    cr_assert_eq(nnc_ckpt_save(path, m.t, 3, NULL), NNC_ERR_ARG);
    cr_assert_str_eq(listing(dir), "", "a refused save wrote a file");
}

Test(ckpt, corrupted_bytes_never_crash_or_half_load)
{
    /* Every byte of a valid file set to a few values: either the load
     * succeeds (data bytes) or it fails leaving the tensors untouched. */
    static const unsigned char values[] = {0x00, 0x20, 0x7b, 0xff, '9', '"'};
    const char *good = in_dir("m.safetensors");
    const char *bad = in_dir("bad.safetensors");
    unsigned char *bytes;
    size_t size;
    Model m, in, sentinel;

    model_init(&m, 1.0f);
    cr_assert_eq(nnc_ckpt_save(good, m.t, 3, NULL), NNC_OK);
    bytes = read_all(good, &size);
    model_init(&sentinel, -9.0f);
    for (size_t i = 0; i < size; i++) {
        unsigned char keep = bytes[i];
        for (size_t v = 0; v < sizeof values; v++) {
            int rc;
            bytes[i] = values[v];
            write_all(bad, bytes, size);
            model_init(&in, -9.0f);
            rc = nnc_ckpt_load(bad, in.t, 3);
            if (rc != NNC_OK) {
                cr_assert(rc == NNC_ERR_FORMAT || rc == NNC_ERR_MISMATCH,
                          "byte %zu = %#x: %d", i, values[v], rc);
                cr_assert_eq(memcmp(&in.w, &sentinel.w, sizeof in.w), 0);
                cr_assert_eq(memcmp(&in.b, &sentinel.b, sizeof in.b), 0);
                cr_assert_eq(memcmp(&in.s, &sentinel.s, sizeof in.s), 0);
            }
        }
        bytes[i] = keep;
    }
    free(bytes);
}

Test(ckpt, strerror_covers_every_code)
{
    static const int codes[] = {NNC_OK, NNC_ERR_IO, NNC_ERR_FORMAT,
                                NNC_ERR_MISMATCH, NNC_ERR_NOMEM, NNC_ERR_ARG};

    for (size_t i = 0; i < 6; i++) {
        cr_assert_not_null(nnc_strerror(codes[i]));
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(nnc_strerror(codes[i]), nnc_strerror(codes[j]));
    }
    cr_assert_not_null(nnc_strerror(12345));
}
