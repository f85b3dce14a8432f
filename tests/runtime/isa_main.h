/*
 * isa_main.h - main() for a Criterion program that runs kernels under
 * every ISA; include it in exactly one file of the program.
 *
 * The tests skip an ISA this CPU cannot run (nnc_set_isa refuses it). A
 * path never run must not read as a pass: after every test passed, this
 * main names the ISAs of this architecture that were left out and exits
 * 77, automake's SKIP. (aarch64's NEON kernels also run on x86-64 hosts,
 * under qemu: tests/runtime/neon.sh.)
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nncrt.h"

/* the setter that refuses an ISA this CPU lacks (test_qgemm: nnc_set_qisa) */
#ifndef ISA_MAIN_SET
#define ISA_MAIN_SET nnc_set_isa
#endif

static const char *const isa_main_isas[] = {
#if defined(__x86_64__) || defined(__i386__)
    "avx2", "avx512",
#elif defined(__aarch64__)
    "neon",
#endif
    NULL
};

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int go = criterion_handle_args(argc, argv, true);
    int ok = go ? criterion_run_all_tests(tests) : 1;
    criterion_finalize(tests);
    if (!ok)
        return 1;
    if (!go)
        return 0;
    char missing[64] = "";
    for (int i = 0; isa_main_isas[i]; i++)
        if (ISA_MAIN_SET(isa_main_isas[i]) != NNC_OK) {
            strcat(missing, " ");
            strcat(missing, isa_main_isas[i]);
        }
    if (!missing[0])
        return 0;
    const char *name = strrchr(argv[0], '/');
    printf("%s: SKIP: this CPU lacks%s, whose kernels were not run "
           "(every other ISA passed)\n", name ? name + 1 : argv[0], missing);
    return 77;
}
