/*
 * qpack.c - the int8 GEMM's weight layout (qgemm.c describes it): W
 * (n x k, row-major int8) into panels of 16 columns, k in groups of 4,
 * zero padded, with each column's sum. The compiler links this file too:
 * nnc --quantize=int8 packs the weights once and embeds them packed.
 */
#include <string.h>

#include "nncrt.h"

size_t nnc_qpack_bytes(int n, int k)
{
    return (size_t)((n + 15) / 16) * 16 * (size_t)((k + 3) / 4) * 4;
}

void nnc_qpack(int n, int k, const int8_t *w, int8_t *packed, int32_t *wsum)
{
    size_t groups = (size_t)((k + 3) / 4);
    int j, kk;
    memset(packed, 0, nnc_qpack_bytes(n, k));
    for (j = 0; j < (n + 15) / 16 * 16; j++)
        wsum[j] = 0;
    for (j = 0; j < n; j++)
        for (kk = 0; kk < k; kk++) {
            int8_t v = w[(size_t)j * (size_t)k + (size_t)kk];
            packed[(size_t)(j / 16) * groups * 64 + (size_t)(kk / 4) * 64 +
                   (size_t)(j % 16) * 4 + (size_t)(kk % 4)] = v;
            wsum[j] += v;
        }
}
