/*
 * replay.c - main() for a fuzz target built without libFuzzer: runs every
 * file of the directories (or files) on the command line once through
 * LLVMFuzzerTestOneInput, as `fuzz_X -runs=0 corpus` does, so that make
 * check replays each target's corpus under the build's own compiler and
 * sanitizers (--enable-sanitizers), with no clang needed.
 *
 * Without arguments it replays $srcdir/tests/fuzz/corpus/NAME, NAME being
 * the program's name after "replay_": each target is then one test.
 * Exit status 0 after every input ran (a crash or a sanitizer report ends
 * the process before), 1 if a file cannot be read or the corpus is empty.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;

    if (f == NULL) {
        perror(path);
        return 0;
    }
    do {
        if (len == cap) {
            unsigned char *p = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (p == NULL) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(buf);
                fclose(f);
                return 0;
            }
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs path, or every file in it (sorted, so a failure names the same
 * input each time); the count of inputs run, -1 on an error. */
static long run_path(const char *path)
{
    struct stat st;
    struct dirent *e;
    char **names = NULL, full[4096];
    size_t n = 0, i;
    long count = 0;
    DIR *d;

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return run_file(path) ? 1 : -1;
    if ((d = opendir(path)) == NULL) {
        perror(path);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char **p;
        if (e->d_name[0] == '.' || (p = realloc(names, (n + 1) * sizeof *names)) == NULL)
            continue;
        names = p;
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (i = 0; i < n; i++) {
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (count >= 0)
            count = run_file(full) ? count + 1 : -1;
        free(names[i]);
    }
    free(names);
    return count;
}

/* At most 1 GB of memory, so that an allocation sized by a header's
 * claim fails (NNC_ERR_NOMEM, which the targets refuse) as libFuzzer's
 * -malloc_limit_mb would report it: ASan's own limit in a sanitized
 * build (its shadow memory does not fit under an rlimit), else
 * RLIMIT_DATA. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(REPLAY_ASAN)
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=1024:allocator_may_return_null=1";
}
static void cap_memory(void)
{
}
#else
#include <sys/resource.h>
static void cap_memory(void)
{
    struct rlimit r = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    setrlimit(RLIMIT_DATA, &r);
}
#endif

int main(int argc, char **argv)
{
    char dflt[4096];
    const char *name = strrchr(argv[0], '/'), *srcdir = getenv("srcdir");
    long total = 0, c;
    int i;

    cap_memory();
    name = name ? name + 1 : argv[0];
    if (strncmp(name, "lt-", 3) == 0)   /* libtool's wrapper */
        name += 3;
    if (argc < 2) {
        if (strncmp(name, "replay_", 7) != 0) {
            fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
            return 1;
        }
        snprintf(dflt, sizeof dflt, "%s/tests/fuzz/corpus/%s", srcdir ? srcdir : ".",
                 name + 7);
        argv[1] = dflt;
        argc = 2;
    }
    for (i = 1; i < argc; i++) {
        if ((c = run_path(argv[i])) <= 0) {
            fprintf(stderr, "%s: %s: %s\n", name, argv[i], c ? "unreadable" : "empty");
            return 1;
        }
        total += c;
    }
    printf("%s: %ld inputs ran\n", name, total);
    return 0;
}
