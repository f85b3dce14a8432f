/*
 * diag.c - user-facing diagnostics in the gcc/clang format:
 *
 *     seed.nn:4:5: error: unknown layer 'dens'; did you mean 'dense'?
 *         dens(128)
 *         ^~~~
 *
 * Editors and CI parse the first line; the source line and caret show the
 * spot. Errors are counted, not fatal: the driver stops after a stage that
 * reported any. Output is capped so a cascade cannot flood a terminal.
 * Suggestions use the edit distance between the unknown name and the
 * candidates, as clang's typo correction does.
 *
 * The parser reports syntax errors before lowering reports the others, so
 * diagnostics are held back and printed sorted by position (an error or
 * warning with the notes that follow it moves as one): at exit, before an
 * internal error, when one of another file or one without a location comes,
 * or on diag_flush(). The text is formatted when reported, so the source
 * may be freed before it prints.
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#define MAX_ERRORS DIAG_MAX_ERRORS

int diag_errors;
bool diag_quiet;
FILE *diag_out;

/* A held-back diagnostic: its position and its text, notes included. */
typedef struct Held {
    int line, col, seq;
    Buf text;
} Held;

static Held *held;
static int nheld, capheld;
static const SrcFile *held_src;  /* the file all held diagnostics are in */
static bool held_too_many;       /* the cap was reached: say so last */
static bool last_direct;         /* the last error/warning was not held */

static FILE *out(void)
{
    return diag_out ? diag_out : stderr;
}

static int by_position(const void *pa, const void *pb)
{
    const Held *a = pa, *b = pb;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void diag_flush(void)
{
    if (nheld > 1)  /* qsort must not be given a null array, even for 0 */
        qsort(held, (size_t)nheld, sizeof *held, by_position);
    for (int i = 0; i < nheld; i++) {
        fwrite(held[i].text.data, 1, held[i].text.len, out());
        buf_free(&held[i].text);
    }
    nheld = 0;
    held_src = NULL;
    if (held_too_many)
        fprintf(out(), "nnc: too many errors (more than %d), stopping\n", MAX_ERRORS);
    held_too_many = false;
    fflush(out());
}

/* Of a line longer than this, only this many bytes around the column are
 * shown (a file without newlines is one line). */
#define SHOW_MAX 512

static void show_line(Buf *b, Loc loc)
{
    const char *p = loc.src->text;
    for (int l = 1; l < loc.line && p; l++)
        if ((p = strchr(p, '\n')) != NULL)
            p++;
    if (!p)
        p = loc.src->text + strlen(loc.src->text);
    const char *line = p, *end = p;
    const char *at = line + loc.col - 1;  /* the column, if on the line */
    const char *stop = at + SHOW_MAX;     /* the line is not read past it */
    while (end < stop && *end && *end != '\n' && *end != '\r')
        end++;
    bool cut_left = false, cut_right = end == stop && *end && *end != '\n' && *end != '\r';
    if (end - line > SHOW_MAX || cut_right) {
        if (at > end)
            at = end;
        if (at - line > SHOW_MAX / 2) {
            p = at - SHOW_MAX / 2;
            while (p < at && (*p & 0xc0) == 0x80)  /* not inside a character */
                p++;
            cut_left = true;
        }
        if (end - p > SHOW_MAX) {
            end = p + SHOW_MAX;
            cut_right = true;
        }
        while (cut_right && end > p && (*end & 0xc0) == 0x80)
            end--;
    }
    buf_printf(b, "%s%.*s%s\n", cut_left ? "..." : "", (int)(end - p), p,
               cut_right ? "..." : "");
    /* caret: keep tabs so that it lines up under the column; one space
     * per UTF-8 character (columns count bytes) */
    if (cut_left)
        buf_puts(b, "   ");
    for (const char *c = p; c < at && c < end; c++)
        if ((*c & 0xc0) != 0x80)
            buf_puts(b, *c == '\t' ? "\t" : " ");
    buf_puts(b, "^");
    for (int i = 1; i < loc.len && at + i < end; i++)
        buf_puts(b, "~");
    buf_puts(b, "\n");
}

/* The entry a new error or warning at loc goes into; NULL: print now. */
static Buf *hold(Loc loc)
{
    static bool registered;
    if (!loc.src || (held_src && held_src != loc.src))
        diag_flush();
    if (!loc.src)
        return NULL;
    if (!registered)
        registered = atexit(diag_flush) == 0;
    held = nnc_grow(held, &capheld, nheld + 1, sizeof *held);
    held_src = loc.src;
    held[nheld] = (Held){loc.line, loc.col, nheld, {0}};
    return &held[nheld++].text;
}

static void report(const char *kind, Loc loc, const char *fmt, va_list ap)
{
    if (diag_quiet)
        return;
    Buf text = {0};
    if (loc.src)
        buf_printf(&text, "%s:%d:%d: %s: ", loc.src->name, loc.line, loc.col, kind);
    else
        buf_printf(&text, "nnc: %s: ", kind);
    buf_vprintf(&text, fmt, ap);
    buf_puts(&text, "\n");
    if (loc.src && loc.line > 0)
        show_line(&text, loc);
    /* a note goes with the error or warning before it */
    Buf *to = NULL;
    if (strcmp(kind, "note") != 0) {
        to = hold(loc);
        last_direct = to == NULL;
    } else if (!last_direct && nheld > 0) {
        to = &held[nheld - 1].text;
    }
    if (to)
        buf_append(to, text.data, text.len);
    else
        fwrite(text.data, 1, text.len, out());
    buf_free(&text);
}

void diag_error(Loc loc, const char *fmt, ...)
{
    va_list ap;
    diag_errors++;
    if (diag_errors == MAX_ERRORS + 1 && !diag_quiet)
        held_too_many = true;
    if (diag_errors > MAX_ERRORS)
        return;
    va_start(ap, fmt);
    report("error", loc, fmt, ap);
    va_end(ap);
}

void diag_warning(Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("warning", loc, fmt, ap);
    va_end(ap);
}

void diag_note(Loc loc, const char *fmt, ...)
{
    va_list ap;
    if (diag_errors > MAX_ERRORS)
        return;
    va_start(ap, fmt);
    report("note", loc, fmt, ap);
    va_end(ap);
}

/* Levenshtein distance, case-insensitive; names are short. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 1000;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20;
            int cur = row[j];
            int best = prev + (ca != cb);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *diag_suggest(const char *name, const char *const *cands)
{
    const char *best = NULL;
    int bestd = 1000;
    int limit = (int)strlen(name) / 3 + 1; /* one typo per three letters */
    for (int i = 0; cands && cands[i]; i++) {
        int d = distance(name, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    return bestd <= limit && bestd > 0 ? best : NULL;
}
