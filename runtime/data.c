/*
 * data.c - numeric tables from data files, for the training driver:
 * CSV text, IDX (the MNIST format) and NumPy .npy, each optionally
 * gzip-compressed (decompressed with zlib as the file is read, one or
 * more members). The format is told by the content, not the name. Every
 * value becomes a float; the first dimension is the row, the others are
 * flattened into columns. nnc_idx_load gives an IDX file's values as they
 * are stored, for programs that keep them in their own type (uint8 pixels
 * take a quarter of the floats' memory).
 *
 * Errors name the file and the line (CSV) or the byte offset (binary
 * formats; in the decompressed data for .gz files) in the message
 * buffer, and return a negative NNC_ERR_* code.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "nncrt.h"
#include "nncrt_io.h"

static int fail(char *err, size_t size, int code, const char *fmt, ...)
{
    va_list ap;
    if (err && size) {
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Decompresses the gzip file f (one or more members; bytes after the
 * last one that do not start another are ignored, as gzip does). */
static int gunzip_file(FILE *f, const char *path, unsigned char **out, size_t *outn,
                       char *err, size_t es)
{
    unsigned char in[1 << 16], *buf = NULL;
    size_t len = 0, cap = 0, pos = 0;
    int r = Z_OK, ended = 0;
    z_stream z;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", path);
    for (;;) {
        size_t room, before;
        if (z.avail_in == 0) {
            size_t got = fread(in, 1, sizeof in, f);
            if (got == 0)
                break;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        if (ended) {   /* another member, or trailing bytes */
            if (z.next_in[0] != 0x1f)
                break;
            inflateReset(&z);
            ended = 0;
        }
        if (len == cap) {   /* one byte more for the CSV parser's NUL */
            unsigned char *p;
            cap = cap ? cap * 2 : (size_t)1 << 20;
            if (cap <= len || (p = (unsigned char *)realloc(buf, cap + 1)) == NULL) {
                r = Z_MEM_ERROR;
                break;
            }
            buf = p;
        }
        room = cap - len < UINT_MAX ? cap - len : UINT_MAX;
        z.next_out = buf + len;
        z.avail_out = (uInt)room;
        before = z.avail_in;
        r = inflate(&z, Z_NO_FLUSH);
        len += room - z.avail_out;
        pos += before - z.avail_in;
        if (r == Z_STREAM_END)
            ended = 1;
        else if (r != Z_OK && r != Z_BUF_ERROR)
            break;
    }
    inflateEnd(&z);
    if (ferror(f)) {
        free(buf);
        return fail(err, es, NNC_ERR_IO, "%s: read error", path);
    }
    if (!ended) {
        long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        free(buf);
        return fail(err, es, r == Z_MEM_ERROR ? NNC_ERR_NOMEM : NNC_ERR_FORMAT,
                    "%s: byte offset %zu: %s (the file has %ld bytes)", path, pos,
                    r == Z_MEM_ERROR ? "out of memory"
                                     : "corrupt or truncated gzip data (header, deflate "
                                       "stream or checksum)", size);
    }
    if (buf == NULL && (buf = (unsigned char *)malloc(1)) == NULL)
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", path);
    buf[len] = 0;
    *out = buf;
    *outn = len;
    return 0;
}

/* The bytes of path, decompressed if it is gzipped (*gzipped set), with a
 * NUL after them. */
static int read_data(const char *path, unsigned char **out, size_t *n, int *gzipped,
                     char *err, size_t es)
{
    FILE *f = fopen(path, "rb");
    char why[200];
    int c0, c1, r;

    *gzipped = 0;
    if (f == NULL && errno == ENOMEM)   /* not a reason to read it again as plain */
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", path);
    if (f != NULL) {
        c0 = getc(f);
        c1 = getc(f);
        if (c0 == 0x1f && c1 == 0x8b) {
            rewind(f);
            *gzipped = 1;
            r = gunzip_file(f, path, out, n, err, es);
            fclose(f);
            return r;
        }
        fclose(f);
    }
    r = nnc_read_file(path, out, n, why, sizeof why);
    return r ? fail(err, es, r, "%s: %s", path, why) : 0;
}

int nnc_read_data(const char *path, unsigned char **bytes, size_t *size, int *gzipped,
                  char *err, size_t errsize)
{
    return read_data(path, bytes, size, gzipped, err, errsize);
}

static int alloc_table(nnc_data *d, size_t rows, size_t cols, char *err, size_t es)
{
    if (cols && rows > ((size_t)-1 / sizeof(float)) / cols)
        return fail(err, es, NNC_ERR_NOMEM, "%s: table too large", d->path);
    d->rows = rows;
    d->cols = cols;
    d->data = (float *)malloc(rows * cols * sizeof(float) + 1);
    if (!d->data)
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", d->path);
    return 0;
}

/* ---- CSV -------------------------------------------------------------- */

static int is_sep(int c)
{
    return c == ',' || c == ';' || c == '\t' || c == ' ';
}

/* Parses one field at *p (after blanks): 1 and *v on a number, 0 if the
 * field is not a number; *p moves past the field and one separator. */
static int field(const char **p, double *v, const char **start, size_t *len)
{
    const char *s = *p, *e;
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    *start = s;
    e = s;
    while (*e && *e != '\n' && *e != '\r' && *e != ',' && *e != ';' && *e != '\t' &&
           *e != ' ')
        e++;
    *len = (size_t)(e - s);
    errno = 0;
    *v = strtod(s, &end);
    /* skip trailing blanks, then one separator */
    while (*e == ' ' || *e == '\t')
        e++;
    if (*e == ',' || *e == ';')
        e++;
    *p = e;
    return end == s + *len && *len > 0;
}

/* The values of a CSV file as they are read. */
typedef struct Csv {
    nnc_data *d;
    float *v;
    size_t n, cap;      /* values */
    size_t *lines;      /* the line of each row */
    size_t rows, cols;
} Csv;

static int csv_push(Csv *c, double x, char *err, size_t es)
{
    if (c->n == c->cap) {
        float *nv;
        c->cap = c->cap ? c->cap * 2 : 4096;
        nv = (float *)realloc(c->v, c->cap * sizeof(float));
        if (!nv)
            return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", c->d->path);
        c->v = nv;
    }
    c->v[c->n++] = (float)x;
    return 0;
}

/* Ends a row of k values read from `line`. */
static int csv_end_row(Csv *c, size_t k, size_t line, char *err, size_t es)
{
    if (c->rows == 0)
        c->cols = k;
    else if (k != c->cols)
        return fail(err, es, NNC_ERR_FORMAT, "%s:%zu: %zu values, but line %zu has %zu",
                    c->d->path, line, k, c->lines[0], c->cols);
    if ((c->rows & (c->rows + 1)) == 0) {   /* grow at 0, 1, 3, 7, ... */
        size_t *nl = (size_t *)realloc(c->lines, 2 * (c->rows + 1) * sizeof(size_t));
        if (!nl)
            return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", c->d->path);
        c->lines = nl;
    }
    c->lines[c->rows++] = line;
    return 0;
}

/* Reads the fields of one line p[0 .. eol) into c: 0, 1 if it is a
 * header (a first line whose first field is not a number), or an error. */
static int csv_line(Csv *c, const char *p, const char *eol, size_t line, int first,
                    char *err, size_t es)
{
    size_t k = 0;
    int r;
    while (p < eol && *p != '\r') {
        double x;
        const char *fs;
        size_t fl;
        int ok = field(&p, &x, &fs, &fl), w = (int)(fl > 40 ? 40 : fl);
        if (!ok && first && k == 0)
            return 1;
        if (!ok)
            return fail(err, es, NNC_ERR_FORMAT, "%s:%zu: bad number '%.*s' in column %zu",
                        c->d->path, line, w, fs, k + 1);
        if (!isfinite(x) || fabs(x) > 3.4028234663852886e38)
            return fail(err, es, NNC_ERR_FORMAT,
                        "%s:%zu: '%.*s' in column %zu is not a finite float", c->d->path,
                        line, w, fs, k + 1);
        if ((r = csv_push(c, x, err, es)) != 0)
            return r;
        k++;
        while (p < eol && is_sep(*p) && *p != ',' && *p != ';')
            p++;
    }
    return csv_end_row(c, k, line, err, es);
}

static int blank(const char *p, const char *eol)
{
    while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p == eol;
}

static int parse_csv(nnc_data *d, const char *text, char *err, size_t es)
{
    Csv c;
    const char *p = text;
    size_t line = 0;
    int first = 1, r = 0;
    memset(&c, 0, sizeof c);
    c.d = d;
    while (*p && r >= 0) {
        const char *eol = p;
        line++;
        while (*eol && *eol != '\n')
            eol++;
        if (!blank(p, eol)) {
            r = csv_line(&c, p, eol, line, first, err, es);
            first = 0;
        }
        p = *eol ? eol + 1 : eol;
    }
    if (r >= 0 && c.rows == 0)
        r = fail(err, es, NNC_ERR_FORMAT, "%s:%zu: no data rows", d->path, line ? line : 1);
    if (r < 0) {
        free(c.v);
        free(c.lines);
        return r;
    }
    d->data = c.v;
    d->rows = c.rows;
    d->cols = c.cols;
    d->line = c.lines;
    return 0;
}

/* ---- binary formats ----------------------------------------------------- */

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_U64, T_I64, T_F32, T_F64, T_BOOL };
static const int type_size[] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 1};

/* Converts count values of type t, big-endian if `big`, into floats. */
static int convert(nnc_data *d, const unsigned char *p, size_t count, int t, int big,
                   char *err, size_t es)
{
    size_t i;
    int sz = type_size[t], b;
    for (i = 0; i < count; i++, p += sz) {
        uint64_t u = 0;
        double x;
        for (b = 0; b < sz; b++)
            u |= (uint64_t)p[big ? b : sz - 1 - b] << (8 * (sz - 1 - b));
        switch (t) {
        case T_U8: case T_U16: case T_U32: case T_U64: case T_BOOL:
            x = (double)u;
            break;
        case T_I8:
            x = (double)(int8_t)(uint8_t)u;
            break;
        case T_I16:
            x = (double)(int16_t)(uint16_t)u;
            break;
        case T_I32:
            x = (double)(int32_t)(uint32_t)u;
            break;
        case T_I64:
            x = (double)(int64_t)u;
            break;
        case T_F32: {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            x = f;
            break;
        }
        default:
            memcpy(&x, &u, 8);
            break;
        }
        if (!isfinite(x) || fabs(x) > 3.4028234663852886e38)
            return fail(err, es, NNC_ERR_FORMAT,
                        "%s: row %zu, column %zu (value %zu, byte offset %zu) is not a finite "
                        "float: %s", d->path, i / (d->cols ? d->cols : 1) + 1,
                        i % (d->cols ? d->cols : 1) + 1, i, d->offset + i * (size_t)sz,
                        x != x ? "NaN" : isinf(x) ? "infinity" : "out of float range");
        d->data[i] = (float)x;
    }
    return 0;
}

/* Shape dims[0..rank) into rows and cols; 0 dims are allowed for cols only.
 * The table is allocated (alloc_table) only once check_size has found
 * its data in the file, so that a header cannot ask for gigabytes. */
static int shape_table(nnc_data *d, const uint64_t *dims, int rank, char *err, size_t es)
{
    uint64_t cols = 1;
    int i;
    if (rank < 1)
        return fail(err, es, NNC_ERR_FORMAT, "%s: a scalar, not a table", d->path);
    for (i = 1; i < rank; i++) {
        if (dims[i] && cols > UINT64_MAX / dims[i])
            return fail(err, es, NNC_ERR_FORMAT, "%s: shape too large", d->path);
        cols *= dims[i];
    }
    if (dims[0] == 0 || cols == 0)
        return fail(err, es, NNC_ERR_FORMAT, "%s: no data (a dimension is 0)", d->path);
    /* dims[0] * cols is not computed before it is known to fit: the
     * product of header dims could wrap around to match the file */
    if (dims[0] > (uint64_t)((size_t)-1 / 16) || cols > (uint64_t)((size_t)-1 / 16) ||
        dims[0] > (uint64_t)((size_t)-1 / 16) / cols)
        return fail(err, es, NNC_ERR_FORMAT, "%s: shape too large", d->path);
    d->rows = (size_t)dims[0];
    d->cols = (size_t)cols;
    return 0;
}

static int check_size(nnc_data *d, size_t have, int t, char *err, size_t es)
{
    size_t need = d->rows * d->cols * (size_t)type_size[t];
    if (have != need)
        return fail(err, es, NNC_ERR_FORMAT,
                    "%s: byte offset %zu: the shape needs %zu bytes of data, the file has %zu%s",
                    d->path, d->offset, need, have,
                    have < need ? " (truncated?)" : " (trailing bytes)");
    return 0;
}

/* IDX: 0, 0, a type code, the rank; rank big-endian u32 dimensions;
 * the values, big-endian. */
static int is_idx(const unsigned char *p, size_t n)
{
    return n >= 4 && p[0] == 0 && p[1] == 0 &&
           (p[2] == 0x08 || p[2] == 0x09 || p[2] == 0x0B || p[2] == 0x0C || p[2] == 0x0D ||
            p[2] == 0x0E);
}

static int idx_type(int code)
{
    switch (code) {
    case 0x08: return T_U8;
    case 0x09: return T_I8;
    case 0x0B: return T_I16;
    case 0x0C: return T_I32;
    case 0x0D: return T_F32;
    default: return T_F64;
    }
}

/* Reads the header of the IDX file p[0 .. n) (is_idx) into dims[0 ..
 * *rank) and *offset, where the values start. */
static int idx_header(const char *path, const unsigned char *p, size_t n, uint64_t *dims,
                      int *rank, size_t *offset, char *err, size_t es)
{
    int i;
    *rank = p[3];
    if (*rank < 1 || *rank > 8)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset 3: IDX with %d dimensions",
                    path, *rank);
    if (n < 4 + 4 * (size_t)*rank)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: IDX header truncated",
                    path, n);
    for (i = 0; i < *rank; i++) {
        const unsigned char *q = p + 4 + 4 * i;
        dims[i] = (uint64_t)q[0] << 24 | (uint64_t)q[1] << 16 | (uint64_t)q[2] << 8 | q[3];
    }
    *offset = 4 + 4 * (size_t)*rank;
    return 0;
}

static int parse_idx(nnc_data *d, const unsigned char *p, size_t n, char *err, size_t es)
{
    uint64_t dims[8];
    int t = idx_type(p[2]), rank, r;
    if (idx_header(d->path, p, n, dims, &rank, &d->offset, err, es))
        return NNC_ERR_FORMAT;
    d->elsize = (size_t)type_size[t];
    if (shape_table(d, dims, rank, err, es))
        return NNC_ERR_FORMAT;
    if (check_size(d, n - d->offset, t, err, es))
        return NNC_ERR_FORMAT;
    if ((r = alloc_table(d, d->rows, d->cols, err, es)) != 0)
        return r;
    return convert(d, p + d->offset, d->rows * d->cols, t, 1, err, es);
}

int nnc_idx_load(const char *path, nnc_idx *x, char *err, size_t errsize)
{
    unsigned char *raw = NULL;
    uint64_t dims[8], count = 1;
    size_t n = 0, offset, bytes;
    int r, gz, i;
    if (!path || !x)
        return fail(err, errsize, NNC_ERR_ARG, "nnc_idx_load: NULL argument");
    memset(x, 0, sizeof *x);
    if ((r = read_data(path, &raw, &n, &gz, err, errsize)) != 0)
        return r;
    if (!is_idx(raw, n))
        r = fail(err, errsize, NNC_ERR_FORMAT, "%s: not an IDX file", path);
    else
        r = idx_header(path, raw, n, dims, &x->rank, &offset, err, errsize);
    for (i = 0; r == 0 && i < x->rank; i++) {
        if (dims[i] && count > ((size_t)-1 / 8) / dims[i])
            r = fail(err, errsize, NNC_ERR_FORMAT, "%s: shape too large", path);
        count *= dims[i];
        x->dims[i] = (size_t)dims[i];
    }
    bytes = (size_t)count * (size_t)(r == 0 ? type_size[idx_type(raw[2])] : 0);
    if (r == 0 && n - offset != bytes)
        r = fail(err, errsize, NNC_ERR_FORMAT, "%s: byte offset %zu: the shape needs %zu "
                 "bytes of data, the file has %zu%s", path, offset, bytes, n - offset,
                 n - offset < bytes ? " (truncated?)" : " (trailing bytes)");
    if (r) {
        free(raw);
        memset(x, 0, sizeof *x);
        return r;
    }
    x->bytes = raw;
    x->data = raw + offset;
    x->type = raw[2];
    x->count = (size_t)count;
    return 0;
}

void nnc_idx_free(nnc_idx *x)
{
    if (!x)
        return;
    free(x->bytes);
    memset(x, 0, sizeof *x);
}

/* The text after 'key': in the .npy header dict, or NULL. */
static const char *npy_key(const char *h, const char *key)
{
    const char *s = strstr(h, key);
    if (!s)
        return NULL;
    s += strlen(key);
    while (*s == ' ' || *s == '\'' || *s == '"' || *s == ':')
        s++;
    return s;
}

/* The type of the .npy header h's 'descr' (hstart: its offset, for
 * messages), or -1 after a message. */
static int npy_dtype(const nnc_data *d, const char *h, size_t hstart, char *err, size_t es)
{
    static const struct { const char *name; int t; } types[] = {
        {"|u1", T_U8}, {"|i1", T_I8}, {"<u2", T_U16}, {"<i2", T_I16}, {"<u4", T_U32},
        {"<i4", T_I32}, {"<u8", T_U64}, {"<i8", T_I64}, {"<f4", T_F32}, {"<f8", T_F64},
        {"|b1", T_BOOL}, {"u1", T_U8}, {"i1", T_I8}};
    const char *s = npy_key(h, "descr");
    size_t i, k = 0;
    if (!s) {
        fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header has no 'descr'",
             d->path, hstart);
        return -1;
    }
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t len = strlen(types[i].name);
        if (!strncmp(s, types[i].name, len) && (s[len] == '\'' || s[len] == '"'))
            return types[i].t;
    }
    while (s[k] && s[k] != '\'' && s[k] != '"' && k < 20)
        k++;
    fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy dtype '%.*s' not supported "
         "(expected little-endian float32/64, int8-64, uint8-64 or bool)", d->path, hstart,
         (int)k, s);
    return -1;
}

/* The 'shape' tuple of the .npy header h into dims[0 .. *rank) (a vector
 * becomes one column). */
static int npy_shape(const nnc_data *d, const char *h, size_t hstart, uint64_t *dims,
                     int *rank, char *err, size_t es)
{
    const char *s = npy_key(h, "shape");
    *rank = 0;
    if (!s || *s != '(')
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header has no shape",
                    d->path, hstart);
    for (s++; *s && *s != ')';) {
        char *end;
        unsigned long long v;
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (*rank == 8)
            return fail(err, es, NNC_ERR_FORMAT, "%s: .npy with more than 8 dimensions",
                        d->path);
        errno = 0;
        v = strtoull(s, &end, 10);
        if (end == s || errno)
            return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: bad .npy shape",
                        d->path, hstart);
        dims[(*rank)++] = v;
        s = end;
        if (*s == 'L')
            s++;
    }
    if (*rank == 0)
        return fail(err, es, NNC_ERR_FORMAT, "%s: a 0-dimensional .npy array, not a table",
                    d->path);
    if (*rank == 1) {
        dims[1] = 1;
        *rank = 2;
    }
    return 0;
}

/* The header dict's text of the .npy file p[0 .. n) and where it starts. */
static int npy_header(const nnc_data *d, const unsigned char *p, size_t n, size_t *hlen,
                      size_t *hstart, char *err, size_t es)
{
    if (n < 10)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header truncated",
                    d->path, n);
    if (p[6] == 1) {
        *hlen = (size_t)p[8] | (size_t)p[9] << 8;
        *hstart = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (n < 12)
            return fail(err, es, NNC_ERR_FORMAT, "%s: .npy header truncated", d->path);
        *hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        *hstart = 12;
    } else {
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset 6: .npy version %d not "
                    "supported", d->path, p[6]);
    }
    if (*hlen > n - *hstart)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header truncated",
                    d->path, n);
    return 0;
}

static int parse_npy(nnc_data *d, const unsigned char *p, size_t n, char *err, size_t es)
{
    size_t hlen = 0, hstart = 0;
    char *h;
    const char *s;
    uint64_t dims[8];
    int rank = 0, t, r;
    if ((r = npy_header(d, p, n, &hlen, &hstart, err, es)) != 0)
        return r;
    h = (char *)malloc(hlen + 1);
    if (!h)
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", d->path);
    memcpy(h, p + hstart, hlen);
    h[hlen] = 0;
    d->offset = hstart + hlen;
    r = NNC_ERR_FORMAT;
    if ((t = npy_dtype(d, h, hstart, err, es)) < 0)
        goto done;
    s = npy_key(h, "fortran_order");
    if (s && !strncmp(s, "True", 4)) {
        fail(err, es, r, "%s: byte offset %zu: Fortran-order .npy not supported (save with "
             "np.ascontiguousarray)", d->path, hstart);
        goto done;
    }
    if (npy_shape(d, h, hstart, dims, &rank, err, es))
        goto done;
    d->elsize = (size_t)type_size[t];
    if (shape_table(d, dims, rank, err, es) || check_size(d, n - d->offset, t, err, es))
        goto done;
    if ((r = alloc_table(d, d->rows, d->cols, err, es)) != 0)
        goto done;
    r = convert(d, p + d->offset, d->rows * d->cols, t, 0, err, es);
done:
    free(h);
    return r;
}

int nnc_data_load(const char *path, nnc_data *d, char *err, size_t errsize)
{
    unsigned char *p = NULL;
    size_t n = 0;
    int r;
    if (!path || !d)
        return fail(err, errsize, NNC_ERR_ARG, "nnc_data_load: NULL argument");
    memset(d, 0, sizeof *d);
    d->path = path;
    if ((r = read_data(path, &p, &n, &d->gzipped, err, errsize)) != 0)
        return r;
    if (n >= 6 && !memcmp(p, "\x93NUMPY", 6))
        r = parse_npy(d, p, n, err, errsize);
    else if (is_idx(p, n))
        r = parse_idx(d, p, n, err, errsize);
    else if (memchr(p, 0, n))
        r = fail(err, errsize, NNC_ERR_FORMAT,
                 "%s: byte offset %zu: not a CSV, IDX or .npy file (binary data)", path,
                 (size_t)((unsigned char *)memchr(p, 0, n) - p));
    else
        r = parse_csv(d, (const char *)p, err, errsize);
    free(p);
    if (r) {
        nnc_data_free(d);
        d->path = path;
    }
    return r;
}

void nnc_data_free(nnc_data *d)
{
    if (!d)
        return;
    free(d->data);
    free(d->line);
    memset(d, 0, sizeof *d);
}

int nnc_data_where(const nnc_data *d, size_t row, char *buf, size_t size)
{
    if (d->line)
        return snprintf(buf, size, "%s:%zu", d->path, d->line[row]);
    return snprintf(buf, size, "%s: byte offset %zu%s", d->path,
                    d->offset + row * d->cols * d->elsize,
                    d->gzipped ? " (decompressed)" : "");
}
