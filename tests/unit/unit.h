/*
 * unit.h - what the compiler's unit tests share: an arena, parsing a
 * model from a string (diagnostics counted, not printed) and the classic
 * Keras example as text.
 */
#include <criterion/criterion.h>

#include "nnc.h"

static Arena arena;

static inline Model *parse(const char *text)
{
    diag_quiet = true;
    diag_errors = 0;
    return parse_file(&arena, src_from_string(&arena, "t.nn", text));
}

/* examples/seed.nn */
static const char seed[] =
    "# the classic Keras example\n"
    "model seed {\n"
    "    input x[10]\n"
    "    dense(128, activation=relu)\n"
    "    dense(64, activation=relu)\n"
    "    dense(1, activation=sigmoid)\n"
    "    loss binary_crossentropy\n"
    "    optimizer adam(lr=0.001)\n"
    "    batch 32\n"
    "}\n";
