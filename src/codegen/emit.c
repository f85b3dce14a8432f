/*
 * emit.c - the C-writing primitives (emit.h): lines at an indent, and
 * small strings (dimensions, element counts, float literals, names) for
 * the op rules and the emitter to splice into them.
 *
 * The small strings come from a ring of static buffers, so that callers
 * can pass several to one printf and never free: the emitter runs once
 * per compilation, on one thread, and no result is kept past the line
 * it is printed into.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "emit.h"

#define RING 32
#define RING_BYTES 160

static char *rotating(void)
{
    static char bufs[RING][RING_BYTES];
    static int k;
    return bufs[k++ % RING];
}

const char *emit_str(const char *fmt, ...)
{
    char *b = rotating();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, RING_BYTES, fmt, ap);
    va_end(ap);
    return b;
}

void emit_line(Emit *e, const char *fmt, ...)
{
    va_list ap;
    static const char spaces[] = "                                        ";
    for (int i = e->indent * 4; i > 0; i -= (int)sizeof spaces - 1)
        buf_append(e->out, spaces, i < (int)sizeof spaces - 1 ? (size_t)i : sizeof spaces - 1);
    va_start(ap, fmt);
    buf_vprintf(e->out, fmt, ap);
    va_end(ap);
    buf_append(e->out, "\n", 1);
}

static const char *batch_name = "nb";

const char *emit_batch_as(const char *name)
{
    const char *old = batch_name;
    batch_name = name;
    return old;
}

const char *emit_dim(const Node *n, int d)
{
    if (n->bmask & (1u << d))
        return batch_name;
    return emit_str("%d", n->shape.dim[d]);
}

const char *emit_numel(const Node *n)
{
    long k = 1;
    int nbatch = 0;
    for (int d = 0; d < n->shape.rank; d++) {
        if (n->bmask & (1u << d))
            nbatch++;
        else
            k *= n->shape.dim[d];
    }
    NNC_ASSERT(nbatch <= 1);
    return nbatch ? emit_str("(%s * %ld)", batch_name, k) : emit_str("%ld", k);
}

const char *emit_float(double v)
{
    char *b = rotating();
    NNC_ASSERT(isfinite(v));
    snprintf(b, RING_BYTES, "%.9g", v);
    if (!strpbrk(b, ".e"))
        strcat(b, ".0");
    strcat(b, "f");
    return b;
}

/* s with each character through f, at most 100 characters. */
static const char *map_chars(const char *s, int (*f)(int))
{
    char *b = rotating();
    size_t i = 0;
    for (; s[i] && i < 100; i++)
        b[i] = (char)f((unsigned char)s[i]);
    b[i] = '\0';
    return b;
}

static int ident_char(int c)
{
    return isalnum(c) ? c : '_';
}

const char *emit_ident(const char *s)
{
    return map_chars(s, ident_char);
}

const char *emit_upper(const char *s)
{
    return map_chars(s, toupper);
}

const char *emit_loc(Loc l)
{
    if (l.src)
        return emit_str("%s:%d:%d", l.src->name, l.line, l.col);
    return "(generated)";
}
