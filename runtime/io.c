/*
 * io.c - the whole-file reader and the safetensors header parser that
 * the runtime (ckpt.c, ckpt_torch.c, data.c) and the compiler (source.c,
 * --weights-from) share; see nncrt_io.h.
 *
 * A header is accepted only if its length fits in the file and under the
 * safetensors limit of 100 MB, it holds no NUL byte (cJSON would stop
 * there) and it parses as one JSON object with nothing after it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nncrt.h"
#include "nncrt_io.h"

#define MAX_EXACT_DOUBLE 9007199254740992.0 /* 2^53 */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(int err, char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && size > 0) {
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* errno's text, thread-safely (the XSI strerror_r). */
static const char *errno_text(int e, char *buf, size_t size)
{
    if (strerror_r(e, buf, size) != 0)
        snprintf(buf, size, "error %d", e);
    return buf;
}

int nnc_read_file(const char *path, unsigned char **bytes, size_t *size, char *why,
                  size_t whysize)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    char text[128];
    int e;

    if (f == NULL) {
        e = errno;
        fail(NNC_ERR_IO, why, whysize, "cannot open: %s", errno_text(e, text, sizeof text));
        errno = e;
        return NNC_ERR_IO;
    }
    for (;;) {
        size_t got;
        if (len == cap) {   /* grow by doubling, from 64 KB; one byte for the NUL */
            unsigned char *p;
            cap = cap ? cap * 2 : (size_t)1 << 16;
            p = cap > len ? (unsigned char *)realloc(buf, cap + 1) : NULL;
            if (p == NULL) {
                free(buf);
                fclose(f);
                return fail(NNC_ERR_NOMEM, why, whysize, "out of memory (%zu bytes)", len);
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        e = errno;
        free(buf);
        fclose(f);
        fail(NNC_ERR_IO, why, whysize, "cannot read: %s", errno_text(e, text, sizeof text));
        errno = e;
        return NNC_ERR_IO;
    }
    fclose(f);
    buf[len] = '\0';
    *bytes = buf;
    *size = len;
    return NNC_OK;
}

/* ---- JSON syntax, without allocating ---------------------------------------
 *
 * cJSON returns NULL both for malformed text and when it runs out of
 * memory. To tell the two apart (NNC_ERR_FORMAT or NNC_ERR_NOMEM), a
 * failed parse is checked again by this recognizer, which allocates
 * nothing and accepts what cJSON 1.7 accepts, or less: whitespace is any
 * byte up to 32, a UTF-8 byte-order mark may lead, numbers are RFC 8259's
 * of at most 63 characters, strings may hold raw control bytes but only
 * JSON's escapes, \u surrogates only in pairs, nesting at most
 * CJSON_NESTING_LIMIT deep. Text it accepts that cJSON refused means
 * cJSON ran out of memory. */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
    while (*p != '\0' && (unsigned char)*p <= 32)
        p++;
    return p;
}

static int hex4(const char *p, unsigned *v)
{
    int i;

    *v = 0;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

/* p at the opening quote; past the closing one, or NULL. */
static const char *json_string(const char *p)
{
    unsigned u, lo;

    for (p++; *p != '"'; p++) {
        if (*p == '\0')
            return NULL;
        if (*p != '\\')
            continue;
        p++;
        if (*p == 'u') {
            if (!hex4(p + 1, &u) || (u >= 0xDC00 && u <= 0xDFFF))
                return NULL;
            p += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {   /* a pair: \uD8xx\uDCxx */
                if (p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, &lo) || lo < 0xDC00
                    || lo > 0xDFFF)
                    return NULL;
                p += 6;
            }
        } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
            return NULL;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    const char *start = p;

    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p - start <= 63 ? p : NULL;
}

/* [ values ] or { "key": values }: p at the bracket. */
static const char *json_container(const char *p, int depth)
{
    char close = *p == '[' ? ']' : '}';

    if (depth >= CJSON_NESTING_LIMIT)
        return NULL;
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if (*p != '"' || (p = json_string(p)) == NULL)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if ((p = json_value(p, depth + 1)) == NULL)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = json_ws(p + 1);
    }
}

/* A value with the whitespace around it; past it, or NULL. */
static const char *json_value(const char *p, int depth)
{
    p = json_ws(p);
    if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0)
        p += 4;
    else if (strncmp(p, "false", 5) == 0)
        p += 5;
    else if (*p == '"')
        p = json_string(p);
    else if (*p == '[' || *p == '{')
        p = json_container(p, depth);
    else
        p = json_number(p);
    return p == NULL ? NULL : json_ws(p);
}

int nnc_json_valid(const char *text)
{
    const char *p = strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;

    p = json_value(p, 0);
    return p != NULL && *p == '\0';
}

/* Parses the JSON text[0 .. len) into *root. */
static int parse_json(const char *text, size_t len, cJSON **root, char *why, size_t whysize)
{
    const char *end = NULL;
    char *copy;

    if (memchr(text, '\0', len) != NULL)
        return fail(NNC_ERR_FORMAT, why, whysize, "NUL byte in the JSON header");
    if ((copy = malloc(len + 1)) == NULL)
        return fail(NNC_ERR_NOMEM, why, whysize, "out of memory for the header");
    memcpy(copy, text, len);
    copy[len] = '\0';
    *root = cJSON_ParseWithOpts(copy, &end, 1);
    if (*root == NULL) {
        long at = end != NULL && end >= copy ? (long)(end - copy) : -1;
        int nomem = nnc_json_valid(copy);
        free(copy);
        if (nomem)
            return fail(NNC_ERR_NOMEM, why, whysize, "out of memory for the JSON header "
                        "(%zu bytes)", len);
        return fail(NNC_ERR_FORMAT, why, whysize, "malformed JSON header (at byte %ld of %zu)",
                    at, len);
    }
    free(copy);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return fail(NNC_ERR_FORMAT, why, whysize, "the JSON header is not an object");
    }
    return NNC_OK;
}

static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The header length at p: NNC_ERR_FORMAT if over the limit or past
 * `room`, the bytes after the length field. */
static int header_length(const unsigned char *p, uint64_t room, uint64_t *len, char *why,
                         size_t whysize)
{
    *len = get_u64le(p);
    if (*len > room)
        return fail(NNC_ERR_FORMAT, why, whysize, "header length %" PRIu64 " runs past the "
                    "end of the file (%" PRIu64 " bytes): truncated, or not a safetensors "
                    "file", *len, room + 8);
    if (*len > NNC_ST_MAX_HEADER)
        return fail(NNC_ERR_FORMAT, why, whysize, "header length %" PRIu64 " is over the "
                    "safetensors limit of %" PRIu64 " bytes", *len, NNC_ST_MAX_HEADER);
    return NNC_OK;
}

int nnc_st_header(const unsigned char *file, size_t size, cJSON **root, size_t *hlen,
                  char *why, size_t whysize)
{
    uint64_t len;
    int err;

    *root = NULL;
    if (size < 8)
        return fail(NNC_ERR_FORMAT, why, whysize, "truncated: %zu bytes, less than the 8 of "
                    "the header length", size);
    if ((err = header_length(file, (uint64_t)size - 8, &len, why, whysize)) != NNC_OK)
        return err;
    *hlen = (size_t)len;
    return parse_json((const char *)file + 8, *hlen, root, why, whysize);
}

int nnc_st_read_header(const char *path, cJSON **root, char *why, size_t whysize)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[8];
    char *text = NULL, buf[128];
    uint64_t len = 0;
    struct stat st;
    int err;

    *root = NULL;
    if (f == NULL)
        return fail(NNC_ERR_IO, why, whysize, "cannot open: %s",
                    errno_text(errno, buf, sizeof buf));
    if (fstat(fileno(f), &st) != 0 || st.st_size < 8 || fread(head, 1, 8, f) != 8)
        err = fail(NNC_ERR_FORMAT, why, whysize, "truncated: less than the 8 bytes of the "
                   "header length");
    else if ((err = header_length(head, (uint64_t)st.st_size - 8, &len, why, whysize)) != 0)
        ;
    else if ((text = malloc((size_t)len + 1)) == NULL)
        err = fail(NNC_ERR_NOMEM, why, whysize, "out of memory for the header");
    else if (fread(text, 1, (size_t)len, f) != (size_t)len)
        err = fail(NNC_ERR_FORMAT, why, whysize, "the header is truncated");
    else
        err = parse_json(text, (size_t)len, root, why, whysize);
    fclose(f);
    free(text);
    return err;
}

int nnc_st_uint(const cJSON *item, uint64_t *v)
{
    double d;

    if (!cJSON_IsNumber(item))
        return 0;
    d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_EXACT_DOUBLE))
        return 0;
    *v = (uint64_t)d;
    return (double)*v == d;
}

int nnc_st_ignorable(const char *name)
{
    static const char suffix[] = ".num_batches_tracked";
    size_t n = strlen(name), k = sizeof suffix - 1;

    return n > k && strcmp(name + n - k, suffix) == 0;
}
