/*
 * source.c - reading model source files into memory.
 *
 * The whole file is kept (NUL-terminated) for the life of the
 * compilation, so diagnostics can quote any line of it. Files are read
 * with the runtime's reader (runtime/io.c), the one whole-file reader of
 * the tree; --weights-from reads checkpoints with it too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"
#include "../runtime/nncrt.h"
#include "../runtime/nncrt_io.h"

SrcFile *src_from_string(Arena *a, const char *name, const char *text)
{
    SrcFile *s = arena_alloc(a, sizeof *s);
    s->name = arena_strdup(a, name);
    s->len = strlen(text);
    s->text = arena_strndup(a, text, s->len);
    return s;
}

unsigned char *src_read_bytes(const char *path, size_t *len, const char *verb)
{
    unsigned char *bytes;
    int err = nnc_read_file(path, &bytes, len, NULL, 0);
    if (err == NNC_ERR_NOMEM)
        fprintf(stderr, "nnc: error: out of memory reading '%s'\n", path);
    else if (err)
        fprintf(stderr, "nnc: error: cannot %s '%s': %s\n", verb, path, strerror(errno));
    return err ? NULL : bytes;
}

SrcFile *src_read(Arena *a, const char *path)
{
    size_t len;
    unsigned char *text = src_read_bytes(path, &len, "open");
    if (!text)
        return NULL;
    SrcFile *s = arena_alloc(a, sizeof *s);
    s->name = arena_strdup(a, path);
    s->len = len;
    s->text = arena_strndup(a, (const char *)text, len);
    free(text);
    return s;
}
