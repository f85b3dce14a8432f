/*
 * fuzz_gzip.c - libFuzzer target: the gzip path of the data readers
 * (runtime/data.c's gunzip_file, zlib underneath), then the format
 * readers on what it decompresses (fuzz_data's checks) and the text
 * corpus reader.
 *
 * The first byte picks how the rest becomes a file:
 *   0 (mod 3)  gzip-compressed as one member, so the CSV, IDX and .npy
 *              parsers see the fuzzer's bytes through the gzip path;
 *   1          two members, split at the second byte's position;
 *   2          as it is after the gzip magic 1f 8b: a corrupt, truncated
 *              or hand-made stream (header flags, extra fields, trailing
 *              bytes, checksums).
 */
#define FUZZ_NO_ENTRY
#include "fuzz_data.c" /* first: fuzz_file.h defines _GNU_SOURCE */

#include <zlib.h>

/* Appends data[0 .. n) as one gzip member to out (room for it); the new
 * length. */
static size_t gzip_member(const uint8_t *data, size_t n, unsigned char *out, size_t room)
{
    z_stream z;
    size_t len;

    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)room;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    len = room - z.avail_out;
    deflateEnd(&z);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *file;
    size_t len = 0, room, cut;
    char err[256];
    nnc_text t;

    if (size < 1)
        return 0;
    room = 2 * compressBound((uLong)size) + 64;
    if ((file = malloc(room)) == NULL)
        return 0;
    switch (data[0] % 3) {
    case 0:
        len = gzip_member(data + 1, size - 1, file, room);
        break;
    case 1:
        cut = size > 1 ? data[1] % size : 0;
        cut = cut < 1 ? 1 : cut;
        len = gzip_member(data + 1, cut - 1, file, room);
        len += gzip_member(data + cut, size - cut, file + len, room - len);
        break;
    default:
        file[0] = 0x1f;
        file[1] = 0x8b;
        memcpy(file + 2, data + 1, size - 1);
        len = size + 1;
    }
    const char *path = fuzz_path(file, len);
    free(file);
    load_data(path);
    if (nnc_text_load(path, data[0] & 8, 0.1, 4, &t, err, sizeof err) == 0)
        nnc_text_free(&t);
    return 0;
}
