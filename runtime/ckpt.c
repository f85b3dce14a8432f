/*
 * ckpt.c - checkpoints: nnc tensors to and from safetensors files, and the
 * runtime's error strings.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes
 * of JSON ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__":
 * {string: string}}, padded with spaces), then the raw little-endian data.
 * Floats are encoded and decoded byte by byte, so the code is the same on
 * little- and big-endian hosts (compilers turn it into plain loads on
 * little-endian ones).
 *
 * Saving writes "<path>.tmp.XXXXXX" in the same directory, fsyncs it and
 * renames it over path, so path always holds either the old or the new
 * file. The temporary file is created with open(O_EXCL, 0666) rather than
 * mkstemp, whose 0600 mode would survive the rename and make checkpoints
 * unreadable to everyone else regardless of the umask.
 *
 * Loading reads the whole file, then works in three phases: validate the
 * format (every entry well-formed, data_offsets tiling the data region
 * exactly, as the safetensors spec requires: no overlaps, no holes), then
 * match it against the model (same names, F32, same shapes), and only then
 * copy. Any error leaves the caller's tensors untouched. JSON numbers are
 * accepted as sizes only when they are integers below 2^53, where doubles
 * are exact.
 *
 * Every error also leaves a message for nnc_last_error() (error.c) that
 * names the file and says what is wrong with it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nncrt.h"
#include "nncrt_io.h"

#define METADATA_KEY "__metadata__"

const char *nnc_strerror(int err)
{
    switch (err) {
    case NNC_OK:
        return "success";
    case NNC_ERR_IO:
        return "cannot open, read, write or rename the file";
    case NNC_ERR_FORMAT:
        return "not a well-formed safetensors file";
    case NNC_ERR_MISMATCH:
        return "checkpoint names, shapes or dtypes do not match the model";
    case NNC_ERR_NOMEM:
        return "out of memory";
    case NNC_ERR_ARG:
        return "bad argument";
    default:
        return "unknown error";
    }
}

/* ---- Messages ----------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static int fail(int err, const char *path, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Sets this thread's message to "path: ..." and returns err. */
static int fail(int err, const char *path, const char *fmt, ...)
{
    char text[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    nnc_set_error("%s: %s", path != NULL ? path : "(null path)", text);
    return err;
}

/* errno's text, thread-safely (the XSI strerror_r). */
static const char *errno_text(int e, char *buf, size_t size)
{
    if (strerror_r(e, buf, size) != 0)
        snprintf(buf, size, "error %d", e);
    return buf;
}

/* "[4, 10]" from dims, into buf. */
static const char *dims_text(const int64_t *dims, int rank, char *buf, size_t size)
{
    size_t len = 0;
    int d;

    len += (size_t)snprintf(buf, size, "[");
    for (d = 0; d < rank && len + 24 < size; d++)
        len += (size_t)snprintf(buf + len, size - len, d ? ", %" PRId64 : "%" PRId64,
                                dims[d]);
    snprintf(buf + len, size - len, "]");
    return buf;
}

/* The same for a JSON shape (an array of numbers). */
static const char *json_dims_text(const cJSON *shape, char *buf, size_t size)
{
    const cJSON *dim;
    size_t len = 0;
    int first = 1;

    len += (size_t)snprintf(buf, size, "[");
    cJSON_ArrayForEach(dim, shape) {
        if (len + 24 >= size)
            break;
        len += (size_t)snprintf(buf + len, size - len, first ? "%.0f" : ", %.0f",
                                cJSON_IsNumber(dim) ? dim->valuedouble : -1.0);
        first = 0;
    }
    snprintf(buf + len, size - len, "]");
    return buf;
}

/* ---- Bytes -------------------------------------------------------------- */

static void put_f32le(unsigned char *p, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof v);
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static float get_f32le(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                 | (uint32_t)p[3] << 24;
    float f;

    memcpy(&f, &v, sizeof f);
    return f;
}

/* ---- The model's side --------------------------------------------------- */

/* Bytes of float data in t, or 0 with *ok cleared if the shape is invalid
 * or its byte count overflows. */
static uint64_t tensor_bytes(const nnc_tensor *t, int *ok)
{
    uint64_t count = 1;
    int d;

    if (t->rank < 0 || t->rank > NNC_MAX_RANK) {
        *ok = 0;
        return 0;
    }
    for (d = 0; d < t->rank; d++)
        if (t->shape[d] < 0)
            *ok = 0;
    for (d = 0; d < t->rank && *ok; d++) {
        uint64_t dim = (uint64_t)t->shape[d];
        if (dim == 0)
            return 0;
        if (count > UINT64_MAX / 4 / dim)
            *ok = 0;
        else
            count *= dim;
    }
    return *ok ? count * 4 : 0;
}

/* NNC_ERR_ARG unless every tensor has a name (unique, not the metadata
 * key), a valid shape and data; the quadratic name check is fine for the
 * few hundred parameters of a model. */
static int check_model(const char *path, const nnc_tensor *t, int n)
{
    int i, j, ok = 1;

    for (i = 0; i < n; i++) {
        uint64_t bytes = tensor_bytes(&t[i], &ok);

        if (!ok || t[i].name == NULL || (bytes > 0 && t[i].data == NULL)
            || strcmp(t[i].name, METADATA_KEY) == 0)
            return fail(NNC_ERR_ARG, path, "bad argument: tensor %d has no name, "
                        "a reserved name, a bad shape or no data", i);
        for (j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return fail(NNC_ERR_ARG, path, "bad argument: tensor name '%s' given "
                            "twice", t[i].name);
    }
    return NNC_OK;
}

/* NNC_ERR_ARG unless metadata is NULL or complete key, value pairs with
 * unique keys. */
static int check_metadata(const char *path, const char *const *metadata)
{
    size_t i, j;

    if (metadata == NULL)
        return NNC_OK;
    for (i = 0; metadata[i] != NULL; i += 2) {
        if (metadata[i + 1] == NULL)
            return fail(NNC_ERR_ARG, path, "bad argument: metadata key '%s' has no value",
                        metadata[i]);
        for (j = 0; j < i; j += 2)
            if (strcmp(metadata[i], metadata[j]) == 0)
                return fail(NNC_ERR_ARG, path, "bad argument: metadata key '%s' given "
                            "twice", metadata[i]);
    }
    return NNC_OK;
}

/* ---- Saving ------------------------------------------------------------- */

/* Appends v to a JSON array as a raw integer literal: cJSON stores numbers
 * as doubles and would print large ones in exponent form. */
static int add_uint(cJSON *array, uint64_t v)
{
    char text[24];
    cJSON *item;

    sprintf(text, "%" PRIu64, v);
    item = cJSON_CreateRaw(text);
    return item != NULL && cJSON_AddItemToArray(array, item);
}

static int add_tensor(cJSON *root, const nnc_tensor *t, uint64_t begin,
                      uint64_t end)
{
    cJSON *obj = cJSON_AddObjectToObject(root, t->name);
    cJSON *shape, *offsets;
    int d, ok;

    ok = obj != NULL && cJSON_AddStringToObject(obj, "dtype", "F32") != NULL;
    shape = ok ? cJSON_AddArrayToObject(obj, "shape") : NULL;
    ok = shape != NULL;
    for (d = 0; ok && d < t->rank; d++)
        ok = add_uint(shape, (uint64_t)t->shape[d]);
    offsets = ok ? cJSON_AddArrayToObject(obj, "data_offsets") : NULL;
    return offsets != NULL && add_uint(offsets, begin)
           && add_uint(offsets, end);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes so that the
 * data starts 8-aligned; NULL if out of memory. */
static char *build_header(const nnc_tensor *t, int n,
                          const char *const *metadata, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL, *padded = NULL;
    uint64_t offset = 0;
    int i, ok = root != NULL;

    if (ok && metadata != NULL) {
        cJSON *meta = cJSON_AddObjectToObject(root, METADATA_KEY);
        size_t k;

        ok = meta != NULL;
        for (k = 0; ok && metadata[k] != NULL; k += 2)
            ok = cJSON_AddStringToObject(meta, metadata[k], metadata[k + 1])
                 != NULL;
    }
    for (i = 0; ok && i < n; i++) {
        uint64_t bytes = tensor_bytes(&t[i], &ok);
        ok = ok && add_tensor(root, &t[i], offset, offset + bytes);
        offset += bytes;
    }
    if (ok)
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text != NULL) {
        size_t raw = strlen(text);

        *len = (raw + 7) / 8 * 8;
        padded = malloc(*len + 1);
        if (padded != NULL) {
            memcpy(padded, text, raw);
            memset(padded + raw, ' ', *len - raw);
            padded[*len] = '\0';
        }
        cJSON_free(text);
    }
    return padded;
}

static int write_data(FILE *f, const nnc_tensor *t)
{
    unsigned char buf[4096];
    uint64_t count, i;
    size_t fill = 0;
    int ok = 1;

    count = tensor_bytes(t, &ok) / 4;
    for (i = 0; i < count; i++) {
        put_f32le(buf + fill, t->data[i]);
        fill += 4;
        if (fill == sizeof buf || i + 1 == count) {
            if (fwrite(buf, 1, fill, f) != fill)
                return 0;
            fill = 0;
        }
    }
    return 1;
}

static int write_file(FILE *f, const char *header, size_t len,
                      const nnc_tensor *t, int n)
{
    unsigned char size[8];
    uint64_t v = len;
    int i;

    for (i = 0; i < 8; i++, v >>= 8)
        size[i] = (unsigned char)v;
    if (fwrite(size, 1, 8, f) != 8 || fwrite(header, 1, len, f) != len)
        return 0;
    for (i = 0; i < n; i++)
        if (!write_data(f, &t[i]))
            return 0;
    return 1;
}

/* Creates and opens "<path>.tmp.XXXXXX" (tmp has room for it) with a
 * random, unused suffix; returns the descriptor, or -1 with errno set. */
static int open_temp(const char *path, char *tmp)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned calls;
    size_t base = strlen(path) + 5;
    nnc_rng r;
    int tries, i;

    nnc_rng_seed(&r, (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32
                         ^ (uint64_t)clock() << 16 ^ ++calls);
    sprintf(tmp, "%s.tmp.", path);
    for (tries = 0; tries < 100; tries++) {
        int fd;

        for (i = 0; i < 6; i++)
            tmp[base + (size_t)i] = digits[nnc_rng_next(&r) % 62];
        tmp[base + 6] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Makes the rename durable; best effort, as not every file system can
 * fsync a directory. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 2);
    int fd;

    if (dir == NULL)
        return;
    if (len == 0) {
        strcpy(dir, ".");
    } else {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int nnc_ckpt_save(const char *path, const nnc_tensor *t, int n,
                  const char *const *metadata)
{
    char *header, *tmp, why[128];
    const char *step = "write";
    size_t len;
    FILE *f;
    int fd, err, ok, e = 0;

    if (path == NULL || n < 0 || (t == NULL && n > 0))
        return fail(NNC_ERR_ARG, path, "bad argument: %s",
                    path == NULL ? "no path" : "no tensors or a negative count");
    if ((err = check_model(path, t, n)) != NNC_OK
        || (err = check_metadata(path, metadata)) != NNC_OK)
        return err;
    header = build_header(t, n, metadata, &len);
    tmp = malloc(strlen(path) + sizeof ".tmp.XXXXXX");
    if (header == NULL || tmp == NULL) {
        free(header);
        free(tmp);
        return fail(NNC_ERR_NOMEM, path, "out of memory for the header");
    }
    fd = open_temp(path, tmp);
    e = errno;
    f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (f == NULL) {
        if (fd >= 0) {
            e = errno;
            close(fd);
            unlink(tmp);
        }
        free(header);
        free(tmp);
        return fail(NNC_ERR_IO, path, "cannot create a temporary file beside it: %s",
                    errno_text(e, why, sizeof why));
    }
    /* errno of the first step that fails: writing (a full disk, a file
     * size limit), syncing, closing or renaming */
    ok = write_file(f, header, len, t, n) && fflush(f) == 0;
    if (ok && fsync(fileno(f)) != 0) {
        ok = 0;
        step = "sync";
    }
    e = ok ? 0 : errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
        step = "rename the temporary file over";
    }
    if (ok)
        sync_dir(path);
    else
        unlink(tmp);
    free(header);
    free(tmp);
    if (!ok)
        return fail(NNC_ERR_IO, path, "cannot %s it: %s (an existing file is left as "
                    "it was)", step, errno_text(e, why, sizeof why));
    return NNC_OK;
}

/* ---- Loading: reading and parsing --------------------------------------- */

/* One tensor entry of a header, pointing into the parsed JSON. */
typedef struct Entry {
    const char *name;
    const char *dtype;
    const cJSON *shape;   /* validated array of integers */
    uint64_t begin, end;  /* byte offsets into the data region */
} Entry;

/* The whole file and its parsed header (io.c), messages naming path. */
static int read_checkpoint(const char *path, unsigned char **file, size_t *size,
                           cJSON **root, size_t *hlen)
{
    char why[300];
    int err = nnc_read_file(path, file, size, why, sizeof why);

    if (err == NNC_OK)
        err = nnc_st_header(*file, *size, root, hlen, why, sizeof why);
    return err == NNC_OK ? NNC_OK : fail(err, path, "%s", why);
}

/* Bytes per element of a safetensors dtype, 0 if unknown. */
static uint64_t dtype_size(const char *dtype)
{
    static const struct {
        const char *name;
        unsigned size;
    } dtypes[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"F8_E8M0", 1}, {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
        {"U32", 4}, {"I32", 4}, {"F32", 4}, {"U64", 8}, {"I64", 8},
        {"F64", 8}, {"C64", 8},
    };
    size_t i;

    for (i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype, dtypes[i].name) == 0)
            return dtypes[i].size;
    return 0;
}

/* Bytes that shape (an array of integers) times elem needs; 0 with *ok
 * cleared if it is malformed or larger than any file can be. */
static uint64_t shape_bytes(const cJSON *shape, uint64_t elem, int *ok)
{
    const cJSON *dim;
    uint64_t bytes = elem, v;
    int zero = 0;

    if (!cJSON_IsArray(shape)) {
        *ok = 0;
        return 0;
    }
    cJSON_ArrayForEach(dim, shape) {
        if (!nnc_st_uint(dim, &v))
            *ok = 0;
        else if (v == 0)
            zero = 1;
        else if (bytes > UINT64_MAX / v)
            *ok = 0;    /* a 0 later on cannot rescue it: it is not sane */
        else
            bytes *= v;
    }
    return *ok && !zero ? bytes : 0;
}

/* "__metadata__" must be an object of strings. */
static int valid_metadata(const cJSON *meta)
{
    const cJSON *item;

    if (!cJSON_IsObject(meta))
        return 0;
    cJSON_ArrayForEach(item, meta)
        if (!cJSON_IsString(item))
            return 0;
    return 1;
}

/* Fills e from the header entry item; NULL, or what is wrong with it if
 * it is malformed or its data does not fit in data_size bytes. */
static const char *parse_entry(const cJSON *item, uint64_t data_size, Entry *e)
{
    const cJSON *dtype, *offsets;
    uint64_t elem, bytes;
    int ok = 1;

    if (!cJSON_IsObject(item))
        return "is not an object";
    dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype))
        return "has no dtype";
    if ((elem = dtype_size(dtype->valuestring)) == 0)
        return "has an unknown dtype";
    e->name = item->string;
    e->dtype = dtype->valuestring;
    e->shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    bytes = shape_bytes(e->shape, elem, &ok);
    if (!ok)
        return "has a malformed shape";
    offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!(cJSON_IsArray(offsets) && cJSON_GetArraySize(offsets) == 2
          && nnc_st_uint(offsets->child, &e->begin)
          && nnc_st_uint(offsets->child->next, &e->end) && e->begin <= e->end))
        return "has malformed data_offsets";
    if (e->end > data_size)
        return "has data past the end of the file (truncated?)";
    if (e->end - e->begin != bytes)
        return "has data_offsets that do not match its shape and dtype";
    return NULL;
}

static int by_offset(const void *pa, const void *pb)
{
    const Entry *a = pa, *b = pb;

    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    return a->end < b->end ? -1 : a->end > b->end;
}

static int by_name(const void *pa, const void *pb)
{
    return strcmp(((const Entry *)pa)->name, ((const Entry *)pb)->name);
}

/* Validates every entry of root into *ents (sorted by name, names unique)
 * and checks that their data tiles [0, data_size) exactly. */
static int collect_entries(const char *path, const cJSON *root, uint64_t data_size,
                           Entry **ents, size_t *nents)
{
    const cJSON *item;
    const char *why;
    uint64_t pos = 0;
    size_t i, count = 0;
    int seen_meta = 0;

    cJSON_ArrayForEach(item, root)
        count++;
    if ((*ents = malloc((count + 1) * sizeof **ents)) == NULL)
        return fail(NNC_ERR_NOMEM, path, "out of memory for %zu entries", count);
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, METADATA_KEY) == 0) {
            if (seen_meta++ || !valid_metadata(item))
                return fail(NNC_ERR_FORMAT, path, "malformed %s (one object of strings)",
                            METADATA_KEY);
        } else if ((why = parse_entry(item, data_size, &(*ents)[(*nents)++])) != NULL) {
            return fail(NNC_ERR_FORMAT, path, "tensor '%s' %s", item->string, why);
        }
    }
    qsort(*ents, *nents, sizeof **ents, by_offset);
    for (i = 0; i < *nents; i++) {     /* each starts where the last ended */
        if ((*ents)[i].begin != pos)
            return fail(NNC_ERR_FORMAT, path, "tensor '%s' starts at data byte %" PRIu64
                        ", not %" PRIu64 ": tensors overlap or leave a gap",
                        (*ents)[i].name, (*ents)[i].begin, pos);
        pos = (*ents)[i].end;
    }
    if (pos != data_size)
        return fail(NNC_ERR_FORMAT, path, "%" PRIu64 " bytes after the last tensor's data",
                    data_size - pos);
    qsort(*ents, *nents, sizeof **ents, by_name);
    for (i = 1; i < *nents; i++)
        if (strcmp((*ents)[i - 1].name, (*ents)[i].name) == 0)
            return fail(NNC_ERR_FORMAT, path, "tensor '%s' appears twice",
                        (*ents)[i].name);
    return NNC_OK;
}

/* ---- Loading: matching and copying -------------------------------------- */

static const Entry *find(const Entry *ents, size_t nents, const char *name)
{
    Entry key;

    key.name = name;
    return bsearch(&key, ents, nents, sizeof *ents, by_name);
}

static int same_shape(const cJSON *shape, const nnc_tensor *t)
{
    const cJSON *dim;
    uint64_t v;
    int d = 0;

    if (cJSON_GetArraySize(shape) != t->rank)
        return 0;
    cJSON_ArrayForEach(dim, shape)
        if (!nnc_st_uint(dim, &v) || v != (uint64_t)t->shape[d++])
            return 0;
    return 1;
}

/* Tensor i is in the file as F32 with its shape: 1; absent: 0; there
 * with another dtype or shape: -1. */
static int lookup(const Entry *ents, size_t nents, const nnc_tensor *t)
{
    const Entry *e = find(ents, nents, t->name);

    if (e == NULL)
        return 0;
    return strcmp(e->dtype, "F32") == 0 && same_shape(e->shape, t) ? 1 : -1;
}

/* Is `name` the optimizer state "optimizer.PARAM.SLOT" of a parameter
 * PARAM among t[0 .. nreq) that has no state among t[nreq .. n)? Such a
 * parameter is not trained here (frozen, or loaded as weights only), so
 * the state a file holds for it (a checkpoint of the model trained
 * whole) is skipped. */
static int untrained_state(const char *name, const nnc_tensor *t, int nreq, int n)
{
    static const char pre[] = "optimizer.";
    const size_t lp = sizeof pre - 1;
    int i, k;

    if (strncmp(name, pre, lp) != 0)
        return 0;
    for (i = 0; i < nreq; i++) {
        size_t ln = strlen(t[i].name);
        if (strncmp(name + lp, t[i].name, ln) != 0 || name[lp + ln] != '.' ||
            strchr(name + lp + ln + 1, '.') != NULL)
            continue;
        for (k = nreq; k < n; k++)
            if (strncmp(t[k].name, name, lp + ln + 1) == 0)
                return 0;
        return 1;
    }
    return 0;
}

/* t[0 .. nreq) must all be in the file, t[nreq .. n) all or none, and
 * nothing else (but torch's num_batches_tracked, and the optimizer state
 * of parameters without state here: untrained_state); *nload is how many
 * to copy (nreq or n). */
static int match(const char *path, const Entry *ents, size_t nents, const nnc_tensor *t,
                 int nreq, int n, int *nload)
{
    char a[160], b[160];
    int i, have = 0, missing = -1;
    size_t skip = 0, j;

    for (i = 0; i < n; i++) {
        int r = lookup(ents, nents, &t[i]);

        if (r < 0) {
            const Entry *e = find(ents, nents, t[i].name);
            return fail(NNC_ERR_MISMATCH, path, "tensor '%s' is %s %s; the model expects "
                        "F32 %s", t[i].name, e->dtype, json_dims_text(e->shape, a, sizeof a),
                        dims_text(t[i].shape, t[i].rank, b, sizeof b));
        }
        if (r == 0 && i < nreq)
            return fail(NNC_ERR_MISMATCH, path, "no tensor '%s' (a parameter of the "
                        "model)", t[i].name);
        if (i >= nreq)
            have += r;
        if (i >= nreq && r == 0 && missing < 0)
            missing = i;
    }
    if (have != 0 && have != n - nreq)
        return fail(NNC_ERR_MISMATCH, path, "has part of the optimizer state, but no "
                    "tensor '%s'", t[missing].name);
    *nload = nreq + have;
    for (j = 0; j < nents; j++)
        skip += (size_t)(nnc_st_ignorable(ents[j].name) ||
                         untrained_state(ents[j].name, t, nreq, n));
    if (nents == (size_t)*nload + skip)
        return NNC_OK;
    for (j = 0; j < nents; j++) {   /* the one the model does not have */
        for (i = 0; i < *nload && strcmp(t[i].name, ents[j].name) != 0; i++)
            ;
        if (i == *nload && !nnc_st_ignorable(ents[j].name) &&
            !untrained_state(ents[j].name, t, nreq, n))
            return fail(NNC_ERR_MISMATCH, path, "tensor '%s' is not in the model",
                        ents[j].name);
    }
    return fail(NNC_ERR_MISMATCH, path, "tensors do not match the model");
}

static void copy_all(const Entry *ents, size_t nents,
                     const unsigned char *data, const nnc_tensor *t, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        const Entry *e = find(ents, nents, t[i].name);
        size_t count = (size_t)(e->end - e->begin) / 4, j;

        for (j = 0; j < count; j++)
            t[i].data[j] = get_f32le(data + (size_t)e->begin + 4 * j);
    }
}

/* The "step" metadata, a decimal integer: 0 if absent (NNC_ERR_FORMAT
 * then if `needed`), NNC_ERR_FORMAT if malformed. */
static int read_step(const char *path, const cJSON *root, int needed, uint64_t *step)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, METADATA_KEY);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(meta, "step");
    const char *c;
    uint64_t v = 0;

    if (s == NULL) {
        *step = 0;
        return needed ? fail(NNC_ERR_FORMAT, path, "optimizer state without a \"step\" "
                             "in %s", METADATA_KEY)
                      : NNC_OK;
    }
    if (!cJSON_IsString(s) || s->valuestring[0] == '\0')
        return fail(NNC_ERR_FORMAT, path, "malformed \"step\" in %s", METADATA_KEY);
    for (c = s->valuestring; *c; c++) {
        if (*c < '0' || *c > '9' || v > (UINT64_MAX - 9) / 10)
            return fail(NNC_ERR_FORMAT, path, "malformed \"step\" in %s", METADATA_KEY);
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *step = v;
    return NNC_OK;
}

/* The format phase: the whole file, its header and its entries (sorted
 * by name), or an error with its message (*file, *root and *ents are then
 * still the caller's to free). */
static int parse_checkpoint(const char *path, unsigned char **file, size_t *size,
                            cJSON **root, size_t *hlen, Entry **ents, size_t *nents)
{
    int err = read_checkpoint(path, file, size, root, hlen);

    if (err == NNC_OK)
        err = collect_entries(path, *root, *size - 8 - *hlen, ents, nents);
    return err;
}

int nnc_ckpt_check(const char *path)
{
    unsigned char *file = NULL;
    cJSON *root = NULL;
    Entry *ents = NULL;
    size_t size = 0, hlen = 0, nents = 0;
    int err = parse_checkpoint(path, &file, &size, &root, &hlen, &ents, &nents);

    free(ents);
    cJSON_Delete(root);
    free(file);
    return err;
}

static int load(const char *path, const nnc_tensor *t, int nreq, int n,
                int *found, uint64_t *step)
{
    unsigned char *file = NULL;
    cJSON *root = NULL;
    Entry *ents = NULL;
    size_t size = 0, hlen = 0, nents = 0;
    uint64_t st = 0;
    int err, nload = 0;

    if (path == NULL || nreq < 0 || n < nreq || (t == NULL && n > 0))
        return fail(NNC_ERR_ARG, path, "bad argument: %s",
                    path == NULL ? "no path" : "no tensors or bad counts");
    if ((err = check_model(path, t, n)) != NNC_OK)
        return err;
    err = parse_checkpoint(path, &file, &size, &root, &hlen, &ents, &nents);
    if (err == NNC_OK)
        err = match(path, ents, nents, t, nreq, n, &nload);
    if (err == NNC_OK && step != NULL)
        err = read_step(path, root, nload > nreq, &st);
    if (err == NNC_OK) {
        copy_all(ents, nents, file + 8 + hlen, t, nload);
        if (found != NULL)
            *found = nload > nreq;
        if (step != NULL)
            *step = st;
    }
    free(ents);
    cJSON_Delete(root);
    free(file);
    return err;
}

int nnc_ckpt_load(const char *path, const nnc_tensor *t, int n)
{
    return load(path, t, n, n, NULL, NULL);
}

int nnc_ckpt_load_opt(const char *path, const nnc_tensor *t, int nreq, int n,
                      int *found, uint64_t *step)
{
    return load(path, t, nreq, n, found, step);
}
