/*
 * fuzz_file.h - for the fuzz targets of nnc's file readers, which take a
 * path: the input bytes as a file, kept in memory (a memfd, opened by its
 * /proc/self/fd path), rewritten for each input; and the replay main()
 * that runs a corpus once through LLVMFuzzerTestOneInput when the target
 * is built without libFuzzer (make check, tests/fuzz/replay.c).
 *
 * A target includes this header and calls fuzz_path(data, size), which
 * returns the path of a file holding exactly those bytes.
 */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H

#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of a file that holds data[0 .. size); the same file (a new
 * content) for every call of one process. */
static const char *fuzz_path(const uint8_t *data, size_t size)
{
    static char path[64];
    static int fd = -1;

    if (fd < 0) {
        fd = memfd_create("fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_path");
        abort();
    }
    return path;
}

#endif
