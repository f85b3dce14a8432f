/*
 * tmp_dir.h - the fixture the runtime's file tests share: a fresh
 * directory from mkdtemp per test (make_dir / remove_dir, for a Criterion
 * suite's .init and .fini), paths in it, and whole-file write and read
 * (the read with the runtime's own reader, io.c). Define TMP_DIR_NAME
 * (a mkdtemp template) before including it to tell the suites' leftovers
 * apart.
 */
#ifndef NNC_TESTS_TMP_DIR_H
#define NNC_TESTS_TMP_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nncrt.h"
#include "nncrt_io.h"

#ifndef TMP_DIR_NAME
#define TMP_DIR_NAME "/tmp/nnc_test_XXXXXX"
#endif

static char dir[64];

static inline void make_dir(void)
{
    strcpy(dir, TMP_DIR_NAME);
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes path and what the tests put in it (files and directories). */
static inline void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[512];

    if (d == NULL) {
        remove(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
            continue;
        if (remove(sub) != 0)
            remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static inline void remove_dir(void)
{
    remove_tree(dir);
}

/* dir/name; the last four results stay valid. */
static inline const char *in_dir(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static inline void write_all(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

/* The whole file, with the runtime's reader (io.c). */
static inline unsigned char *read_all(const char *path, size_t *size)
{
    unsigned char *buf;
    char why[200];

    cr_assert_eq(nnc_read_file(path, &buf, size, why, sizeof why), NNC_OK, "%s: %s", path,
                 why);
    return buf;
}

#endif
