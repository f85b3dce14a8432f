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
 */
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#define MAX_ERRORS 20

int diag_errors;
bool diag_quiet;
FILE *diag_out;

static void show_line(FILE *f, Loc loc)
{
    const char *p = loc.src->text;
    for (int l = 1; l < loc.line && *p; p++)
        if (*p == '\n')
            l++;
    const char *end = p;
    while (*end && *end != '\n' && *end != '\r')
        end++;
    fprintf(f, "%.*s\n", (int)(end - p), p);
    /* caret: keep tabs so that it lines up under the column; one space
     * per UTF-8 character (columns count bytes) */
    for (int c = 1; c < loc.col && p + c - 1 < end; c++)
        if ((p[c - 1] & 0xc0) != 0x80)
            fputc(p[c - 1] == '\t' ? '\t' : ' ', f);
    fputc('^', f);
    for (int i = 1; i < loc.len && p + loc.col - 1 + i < end; i++)
        fputc('~', f);
    fputc('\n', f);
}

static void report(const char *kind, Loc loc, const char *fmt, va_list ap)
{
    FILE *f = diag_out ? diag_out : stderr;
    if (diag_quiet)
        return;
    if (loc.src)
        fprintf(f, "%s:%d:%d: %s: ", loc.src->name, loc.line, loc.col, kind);
    else
        fprintf(f, "nnc: %s: ", kind);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    if (loc.src && loc.line > 0)
        show_line(f, loc);
}

void diag_error(Loc loc, const char *fmt, ...)
{
    va_list ap;
    diag_errors++;
    if (diag_errors == MAX_ERRORS + 1 && !diag_quiet)
        fprintf(diag_out ? diag_out : stderr, "nnc: too many errors (more than %d), "
                "stopping\n", MAX_ERRORS);
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
