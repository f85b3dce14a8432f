/*
 * qgemm_check.c - qgemm_check.h's cases under every int8 kernel set this
 * CPU (or emulator) runs, with no test framework, for tests/runtime/
 * neon.sh (aarch64 under qemu). Prints "qgemm_check: isas: ..." and the
 * failed cases; exits 1 if any failed.
 */
#include "qgemm_check.h"

int main(void)
{
    static const char *const isas[] = {"avx512", "avx2", "neon", "scalar"};
    int failed = 0;
    size_t i;
    printf("qgemm_check: isas:");
    for (i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (nnc_set_qisa(isas[i]) == NNC_OK) {
            printf(" %s", isas[i]);
            failed += qc_all();
        }
    printf("\nqgemm_check: %d failed cases\n", failed);
    return failed != 0;
}
