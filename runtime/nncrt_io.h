/*
 * nncrt_io.h - file reading shared by the runtime and the compiler (not
 * installed): the one whole-file reader, and the one parser of a
 * safetensors header (8-byte little-endian length, then a JSON object).
 * io.c is compiled into libnncrt and into the compiler's libnnc, as rng.c
 * is, so that `nnc --weights-from` reads checkpoints exactly as
 * <prefix>_load does.
 *
 * Functions return 0 or a negative NNC_ERR_* code and, on failure, write
 * what went wrong into why (whysize bytes; may be NULL) without the file's
 * name, so that each caller can put it into its own message format.
 */
#ifndef NNCRT_IO_H
#define NNCRT_IO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define NNC_ST_MAX_HEADER UINT64_C(100000000) /* the safetensors limit */

/* Reads all of path (a regular file, or a pipe or device read to its end)
 * into a new malloc'd block *bytes of *size bytes, followed by a NUL that
 * *size does not count. NNC_ERR_IO ("cannot open: ..." or "cannot read:
 * ..."; errno is kept) or NNC_ERR_NOMEM. */
int nnc_read_file(const char *path, unsigned char **bytes, size_t *size, char *why,
                  size_t whysize);

/* The bytes of path as nnc_read_file reads them, decompressed if they
 * are gzipped (*gzipped set); err gets a message naming the file
 * (data.c). */
int nnc_read_data(const char *path, unsigned char **bytes, size_t *size, int *gzipped,
                  char *err, size_t errsize);

/* Parses the header of the safetensors file file[0 .. size) into *root (a
 * JSON object: free it with cJSON_Delete) and sets *hlen to its length in
 * bytes; the data region then starts at file + 8 + *hlen. NNC_ERR_FORMAT
 * (too short, length past the end or over the limit, a NUL byte, malformed
 * JSON, not an object) or NNC_ERR_NOMEM. */
int nnc_st_header(const unsigned char *file, size_t size, cJSON **root, size_t *hlen,
                  char *why, size_t whysize);

/* The same for only the first part of a file: reads the length and the
 * header of path, not the data. */
int nnc_st_read_header(const char *path, cJSON **root, char *why, size_t whysize);

/* Whether path is a well-formed safetensors file (ckpt.c's format phase
 * of loading, with no model to match): NNC_OK, or the code and the
 * message (nnc_last_error) that nnc_ckpt_load would give for it. */
int nnc_ckpt_check(const char *path);

/* Whether the NUL-terminated text is one JSON value and nothing else, as
 * cJSON 1.7 parses it (or stricter), without allocating: when cJSON
 * returns NULL for text this accepts, cJSON ran out of memory. */
int nnc_json_valid(const char *text);

/* A JSON number that is an integer in [0, 2^53], where doubles are exact. */
int nnc_st_uint(const cJSON *item, uint64_t *v);

/* torch's BatchNorm counter LAYER.num_batches_tracked: nnc keeps no such
 * tensor, so a PyTorch state dict's is accepted and ignored. */
int nnc_st_ignorable(const char *name);

#endif
