/*
 * data.c - numeric tables from data files, for the training driver:
 * CSV text, IDX (the MNIST format) and NumPy .npy, each optionally
 * gzip-compressed (inflate.c). The format is told by the content, not
 * the name. Every value becomes a float; the first dimension is the row,
 * the others are flattened into columns.
 *
 * Errors name the file and the line (CSV) or the byte offset (binary
 * formats; in the decompressed data for .gz files) in the message
 * buffer, and return a negative NNC_ERR_* code.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"

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

static int read_all(const char *path, unsigned char **out, size_t *n, char *err, size_t es)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return fail(err, es, NNC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len == cap) {
            unsigned char *p;
            cap = cap ? cap * 2 : 1 << 16;
            p = (unsigned char *)realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return fail(err, es, NNC_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    buf[len] = 0;   /* room was kept: CSV parsing stops at the NUL */
    *out = buf;
    *n = len;
    return 0;
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

static int parse_csv(nnc_data *d, const char *text, char *err, size_t es)
{
    const char *p = text;
    size_t line = 0, rows = 0, cap = 0, cols = 0, n = 0;
    float *v = NULL;
    size_t *lines = NULL;
    int first = 1;
    while (*p) {
        const char *eol = p;
        size_t k = 0;
        line++;
        while (*eol && *eol != '\n')
            eol++;
        {   /* blank line: skipped */
            const char *q = p;
            while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            if (q == eol) {
                p = *eol ? eol + 1 : eol;
                continue;
            }
        }
        while (p < eol && *p != '\r') {
            double x;
            const char *fs;
            size_t fl;
            int ok = field(&p, &x, &fs, &fl);
            if (!ok && first && k == 0) {   /* a header line */
                k = (size_t)-1;
                break;
            }
            if (!ok) {
                free(v);
                free(lines);
                return fail(err, es, NNC_ERR_FORMAT,
                            "%s:%zu: bad number '%.*s' in column %zu", d->path, line,
                            (int)(fl > 40 ? 40 : fl), fs, k + 1);
            }
            if (!isfinite(x) || fabs(x) > 3.4028234663852886e38) {
                free(v);
                free(lines);
                return fail(err, es, NNC_ERR_FORMAT,
                            "%s:%zu: '%.*s' in column %zu is not a finite float", d->path,
                            line, (int)(fl > 40 ? 40 : fl), fs, k + 1);
            }
            if (n == cap) {
                float *nv;
                cap = cap ? cap * 2 : 4096;
                nv = (float *)realloc(v, cap * sizeof(float));
                if (!nv) {
                    free(v);
                    free(lines);
                    return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", d->path);
                }
                v = nv;
            }
            v[n++] = (float)x;
            k++;
            while (p < eol && is_sep(*p) && *p != ',' && *p != ';')
                p++;
        }
        first = 0;
        p = *eol ? eol + 1 : eol;
        if (k == (size_t)-1)
            continue;
        if (rows == 0)
            cols = k;
        else if (k != cols) {
            size_t l0 = lines[0];
            free(v);
            free(lines);
            return fail(err, es, NNC_ERR_FORMAT, "%s:%zu: %zu values, but line %zu has %zu",
                        d->path, line, k, l0, cols);
        }
        if ((rows & (rows + 1)) == 0) {   /* grow at 0, 1, 3, 7, ... */
            size_t *nl = (size_t *)realloc(lines, 2 * (rows + 1) * sizeof(size_t));
            if (!nl) {
                free(v);
                free(lines);
                return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", d->path);
            }
            lines = nl;
        }
        lines[rows++] = line;
    }
    if (rows == 0) {
        free(v);
        free(lines);
        return fail(err, es, NNC_ERR_FORMAT, "%s:%zu: no data rows", d->path, line ? line : 1);
    }
    d->data = v;
    d->rows = rows;
    d->cols = cols;
    d->line = lines;
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
                        "%s: value %zu (byte offset %zu) is not a finite float", d->path, i,
                        d->offset + i * (size_t)sz);
        d->data[i] = (float)x;
    }
    return 0;
}

/* Shape dims[0..rank) into rows and cols; 0 dims are allowed for cols only. */
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
    if (dims[0] > (uint64_t)((size_t)-1 / 16) || cols > (uint64_t)((size_t)-1 / 16) ||
        dims[0] * cols > (uint64_t)((size_t)-1 / 16))
        return fail(err, es, NNC_ERR_FORMAT, "%s: shape too large", d->path);
    return alloc_table(d, (size_t)dims[0], (size_t)cols, err, es);
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

static int parse_idx(nnc_data *d, const unsigned char *p, size_t n, char *err, size_t es)
{
    uint64_t dims[8];
    int t, rank = p[3], i;
    switch (p[2]) {
    case 0x08: t = T_U8; break;
    case 0x09: t = T_I8; break;
    case 0x0B: t = T_I16; break;
    case 0x0C: t = T_I32; break;
    case 0x0D: t = T_F32; break;
    default: t = T_F64; break;
    }
    if (rank < 1 || rank > 8)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset 3: IDX with %d dimensions",
                    d->path, rank);
    if (n < 4 + 4 * (size_t)rank)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: IDX header truncated",
                    d->path, n);
    for (i = 0; i < rank; i++) {
        const unsigned char *q = p + 4 + 4 * i;
        dims[i] = (uint64_t)q[0] << 24 | (uint64_t)q[1] << 16 | (uint64_t)q[2] << 8 | q[3];
    }
    d->offset = 4 + 4 * (size_t)rank;
    d->elsize = (size_t)type_size[t];
    if (shape_table(d, dims, rank, err, es))
        return NNC_ERR_FORMAT;
    if (check_size(d, n - d->offset, t, err, es))
        return NNC_ERR_FORMAT;
    return convert(d, p + d->offset, d->rows * d->cols, t, 1, err, es);
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

static int parse_npy(nnc_data *d, const unsigned char *p, size_t n, char *err, size_t es)
{
    size_t hlen, hstart;
    char *h;
    const char *s;
    uint64_t dims[8];
    int rank = 0, t = -1, r;
    if (n < 10)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header truncated",
                    d->path, n);
    if (p[6] == 1) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        hstart = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (n < 12)
            return fail(err, es, NNC_ERR_FORMAT, "%s: .npy header truncated", d->path);
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        hstart = 12;
    } else {
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset 6: .npy version %d not supported",
                    d->path, p[6]);
    }
    if (hlen > n - hstart)
        return fail(err, es, NNC_ERR_FORMAT, "%s: byte offset %zu: .npy header truncated",
                    d->path, n);
    h = (char *)malloc(hlen + 1);
    if (!h)
        return fail(err, es, NNC_ERR_NOMEM, "%s: out of memory", d->path);
    memcpy(h, p + hstart, hlen);
    h[hlen] = 0;
    d->offset = hstart + hlen;
    r = NNC_ERR_FORMAT;
    s = npy_key(h, "descr");
    if (!s) {
        fail(err, es, r, "%s: byte offset %zu: .npy header has no 'descr'", d->path, hstart);
        goto done;
    }
    {
        static const struct { const char *name; int t; } types[] = {
            {"|u1", T_U8}, {"|i1", T_I8}, {"<u2", T_U16}, {"<i2", T_I16}, {"<u4", T_U32},
            {"<i4", T_I32}, {"<u8", T_U64}, {"<i8", T_I64}, {"<f4", T_F32}, {"<f8", T_F64},
            {"|b1", T_BOOL}, {"u1", T_U8}, {"i1", T_I8}};
        size_t i;
        for (i = 0; i < sizeof types / sizeof types[0] && t < 0; i++)
            if (!strncmp(s, types[i].name, strlen(types[i].name)) &&
                (s[strlen(types[i].name)] == '\'' || s[strlen(types[i].name)] == '"'))
                t = types[i].t;
        if (t < 0) {
            size_t k = 0;
            while (s[k] && s[k] != '\'' && s[k] != '"' && k < 20)
                k++;
            fail(err, es, r, "%s: byte offset %zu: .npy dtype '%.*s' not supported (expected "
                 "little-endian float32/64, int8-64, uint8-64 or bool)", d->path, hstart,
                 (int)k, s);
            goto done;
        }
    }
    s = npy_key(h, "fortran_order");
    if (s && !strncmp(s, "True", 4)) {
        fail(err, es, r, "%s: byte offset %zu: Fortran-order .npy not supported (save with "
             "np.ascontiguousarray)", d->path, hstart);
        goto done;
    }
    s = npy_key(h, "shape");
    if (!s || *s != '(') {
        fail(err, es, r, "%s: byte offset %zu: .npy header has no shape", d->path, hstart);
        goto done;
    }
    for (s++; *s && *s != ')';) {
        char *end;
        unsigned long long v;
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (rank == 8) {
            fail(err, es, r, "%s: .npy with more than 8 dimensions", d->path);
            goto done;
        }
        errno = 0;
        v = strtoull(s, &end, 10);
        if (end == s || errno) {
            fail(err, es, r, "%s: byte offset %zu: bad .npy shape", d->path, hstart);
            goto done;
        }
        dims[rank++] = v;
        s = end;
        if (*s == 'L')
            s++;
    }
    if (rank == 0) {
        fail(err, es, r, "%s: a 0-dimensional .npy array, not a table", d->path);
        goto done;
    }
    if (rank == 1) {   /* a vector: one column */
        dims[1] = 1;
        rank = 2;
    }
    d->elsize = (size_t)type_size[t];
    if (shape_table(d, dims, rank, err, es) || check_size(d, n - d->offset, t, err, es))
        goto done;
    r = convert(d, p + d->offset, d->rows * d->cols, t, 0, err, es);
done:
    free(h);
    return r;
}

int nnc_data_load(const char *path, nnc_data *d, char *err, size_t errsize)
{
    unsigned char *raw = NULL, *p;
    size_t n = 0, pn;
    int r;
    if (!path || !d)
        return fail(err, errsize, NNC_ERR_ARG, "nnc_data_load: NULL argument");
    memset(d, 0, sizeof *d);
    d->path = path;
    if ((r = read_all(path, &raw, &n, err, errsize)) != 0)
        return r;
    p = raw;
    pn = n;
    if (n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        unsigned char *z;
        size_t zn, off = 0;
        r = nnc_gunzip(raw, n, &z, &zn, &off);
        free(raw);
        if (r)
            return fail(err, errsize, r, "%s: byte offset %zu: %s (the file has %zu bytes)",
                        path, off, r == NNC_ERR_NOMEM ? "out of memory"
                                   : "corrupt or truncated gzip data (header, deflate "
                                     "stream or checksum)", n);
        /* NUL-terminate for the CSV parser */
        raw = (unsigned char *)realloc(z, zn + 1);
        if (!raw) {
            free(z);
            return fail(err, errsize, NNC_ERR_NOMEM, "%s: out of memory", path);
        }
        raw[zn] = 0;
        p = raw;
        pn = zn;
        d->gzipped = 1;
    }
    if (pn >= 6 && !memcmp(p, "\x93NUMPY", 6)) {
        r = parse_npy(d, p, pn, err, errsize);
    } else if (pn >= 4 && p[0] == 0 && p[1] == 0 &&
               (p[2] == 0x08 || p[2] == 0x09 || p[2] == 0x0B || p[2] == 0x0C || p[2] == 0x0D ||
                p[2] == 0x0E)) {
        r = parse_idx(d, p, pn, err, errsize);
    } else if (memchr(p, 0, pn)) {
        r = fail(err, errsize, NNC_ERR_FORMAT,
                 "%s: byte offset %zu: not a CSV, IDX or .npy file (binary data)", path,
                 (size_t)((unsigned char *)memchr(p, 0, pn) - p));
    } else {
        r = parse_csv(d, (const char *)p, err, errsize);
    }
    free(raw);
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
