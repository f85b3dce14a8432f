/*
 * failmalloc.c - a malloc that fails on request, for the allocation-
 * failure tests (tests/oom/run.sh): malloc, calloc, realloc,
 * posix_memalign, aligned_alloc and memalign count their calls and the
 * k-th one returns NULL (ENOMEM), only that one; the others go to glibc
 * (__libc_malloc and friends, so no dlsym, which itself allocates).
 *
 * Two ways in:
 *   - built as a shared library and preloaded (LD_PRELOAD) into a
 *     program (nnc, an --emit=main driver): NNC_FAIL_AT=k picks the call
 *     to fail (none if unset or 0), and NNC_FAIL_COUNT=FILE has the count
 *     of calls written to FILE at exit, so that the script knows how many
 *     cases there are;
 *   - #included into a test program (oom_api.c), whose definitions then
 *     replace the C library's for the whole process (libnncrt, cJSON,
 *     zlib, stdio); it sets fail_at itself and reads `calls` and `live`
 *     (allocations not yet freed) to find leaks after a failed call.
 *
 * Not for a sanitized build: ASan replaces malloc itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static long calls;        /* allocation calls so far */
static long fail_at = -1; /* the call to fail (1-based); -1: read the environment */
static long live;         /* blocks allocated and not freed */

/* Whether this call is the one to fail. */
static int failing(void)
{
    if (fail_at < 0) {
        const char *s = getenv("NNC_FAIL_AT");
        fail_at = s ? atol(s) : 0;
    }
    if (++calls == fail_at) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

static void *counted(void *p)
{
    live += p != NULL;
    return p;
}

void *malloc(size_t size)
{
    return failing() ? NULL : counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return failing() ? NULL : counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
    void *q;

    if (p == NULL)
        return malloc(size);
    if (size == 0) {
        live--;
        return __libc_realloc(p, 0);
    }
    if (failing())
        return NULL;
    q = __libc_realloc(p, size);
    return q;
}

void free(void *p)
{
    live -= p != NULL;
    __libc_free(p);
}

void *memalign(size_t align, size_t size)
{
    return failing() ? NULL : counted(__libc_memalign(align, size));
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p = memalign(align, size);

    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

#ifndef FAILMALLOC_NO_REPORT
/* NNC_FAIL_COUNT=FILE: the number of calls, written at exit. */
__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("NNC_FAIL_COUNT");
    char text[32];
    int fd, n;

    if (path == NULL)
        return;
    n = snprintf(text, sizeof text, "%ld\n", calls);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, text, (size_t)n) != n)
            n = -1;
        close(fd);
    }
}
#endif
