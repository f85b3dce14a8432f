/*
 * source.c - reading model source files into memory.
 *
 * The whole file is kept (NUL-terminated) for the life of the
 * compilation, so diagnostics can quote any line of it.
 */
#include <errno.h>
#include <string.h>

#include "nnc.h"

SrcFile *src_from_string(Arena *a, const char *name, const char *text)
{
    SrcFile *s = arena_alloc(a, sizeof *s);
    s->name = arena_strdup(a, name);
    s->len = strlen(text);
    s->text = arena_strndup(a, text, s->len);
    return s;
}

SrcFile *src_read(Arena *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    Buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "nnc: error: cannot read '%s'\n", path);
        buf_free(&b);
        return NULL;
    }
    SrcFile *s = arena_alloc(a, sizeof *s);
    s->name = arena_strdup(a, path);
    s->len = b.len;
    char *text = arena_alloc(a, b.len + 1);
    if (b.len)
        memcpy(text, b.data, b.len);
    s->text = text;
    buf_free(&b);
    return s;
}
