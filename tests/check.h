/*
 * check.h - what the C programs of tests/e2e, tests/torch and
 * tests/interop share: checks, test data, files. Each program includes it
 * once ("../check.h"); everything is static inline, so a program pays
 * nothing (and gets no warning) for what it does not use. C99, built with
 * -Wall -Wextra -Wpedantic -Werror by gcc and clang.
 *
 *   CHECK(cond, fmt, ...)  counts a pass, or prints "FAIL file:line: ..."
 *                          and counts a failure (passed, failed)
 *   frand()                uniform in [0, 1) from a fixed LCG: the same
 *                          numbers on every run and machine
 *   die(fmt, ...)          "CHECK_PROGRAM: message" on stderr, exit 1
 *   read_file(path, &len)  the whole file, malloc'd, or NULL
 *   same_file(a, b)        both readable and byte for byte equal
 */
#ifndef NNC_TESTS_CHECK_H
#define NNC_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_PROGRAM
#define CHECK_PROGRAM "test"
#endif

static int passed, failed;
#define CHECK(c, ...)                                                    \
    do {                                                                 \
        if (c) {                                                         \
            passed++;                                                    \
        } else {                                                         \
            failed++;                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                  \
            printf(__VA_ARGS__);                                         \
            printf("\n");                                                \
        }                                                                \
    } while (0)

/* "N passed, M failed"; the exit status: 1 after a failure. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

static unsigned long long lcg = 88172645463325252ULL;
static inline float frand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) * (1.0 / 16777216.0));
}

#ifdef __GNUC__
__attribute__((noreturn, format(printf, 1, 2)))
#endif
static inline void die(const char *fmt, ...)
{
    va_list ap;

    fputs(CHECK_PROGRAM ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap ? 2 * cap : 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = cap ? 2 * cap : 65536;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static inline int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

#endif
