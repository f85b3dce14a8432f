/*
 * arena.c - bump allocation, growable arrays and text buffers.
 *
 * The compiler allocates from arenas and frees a whole arena at once, so
 * lifetimes are never tracked per object. Blocks are linked; a request
 * larger than the block size gets a block of its own. Test builds
 * (-DNNC_TEST) use tiny blocks to exercise the block-chaining path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#ifdef NNC_TEST
#define BLOCK_SIZE 256
#else
#define BLOCK_SIZE (64 * 1024)
#endif

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

static void *checked(void *p)
{
    if (!p) {
        fprintf(stderr, "nnc: out of memory\n");
        exit(1);
    }
    return p;
}

void *xmalloc(size_t n)
{
    return checked(malloc(n ? n : 1));
}

void *xcalloc(size_t n, size_t size)
{
    return checked(calloc(n ? n : 1, size ? size : 1));
}

void *xrealloc(void *p, size_t n)
{
    return checked(realloc(p, n ? n : 1));
}

char *xstrdup(const char *s)
{
    return strcpy(xmalloc(strlen(s) + 1), s);
}

void *arena_alloc(Arena *a, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    ArenaBlock *b = a->head;
    if (!b || b->size - b->used < bytes) {
        size_t size = bytes > BLOCK_SIZE ? bytes : BLOCK_SIZE;
        b = xmalloc(sizeof(ArenaBlock) + size);
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free(Arena *a)
{
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

void *nnc_grow(void *p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return p;
    int c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    p = realloc(p, (size_t)c * elem);
    if (!p) {
        fprintf(stderr, "nnc: out of memory\n");
        exit(1);
    }
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *cap = c;
    return p;
}

/* Room for n more bytes and a terminating NUL. */
static void buf_reserve(Buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n + 1)
            c *= 2;
        b->data = realloc(b->data, c);
        if (!b->data) {
            fprintf(stderr, "nnc: out of memory\n");
            exit(1);
        }
        b->cap = c;
    }
}

/* One formatting pass when the text fits the room left (the usual case:
 * the buffer doubles), a second after growing it when it does not. */
void buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        nnc_fatal(__FILE__, __LINE__, "vsnprintf failed on '%s'", fmt);
    if ((size_t)n >= room) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_append(Buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(Buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_free(Buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void nnc_fatal(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    diag_flush(); /* the user's diagnostics so far, before the abort */
    fprintf(stderr, "nnc: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
