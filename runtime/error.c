/*
 * error.c - the runtime's error messages: what failed and why, per thread.
 *
 * Functions that fail return an NNC_ERR_* code (or, for train_step, a
 * non-finite loss) and leave a message in a thread-local buffer, as errno
 * does, so that threads working on different models never see each
 * other's messages and no call needs an extra argument. C99 has no thread
 * storage class: C11's _Thread_local, GCC's and Clang's __thread or
 * MSVC's __declspec(thread) is used, whichever the compiler has.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nncrt.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#define NNC_THREAD_LOCAL _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define NNC_THREAD_LOCAL __thread
#elif defined(_MSC_VER)
#define NNC_THREAD_LOCAL __declspec(thread)
#else
#error "nncrt needs thread-local storage for its error messages"
#endif

#define MAX_MESSAGE 512

static NNC_THREAD_LOCAL char message[MAX_MESSAGE];

const char *nnc_last_error(void)
{
    return message;
}

void nnc_set_error(const char *fmt, ...)
{
    va_list ap;

    if (fmt == NULL) {
        message[0] = '\0';
        return;
    }
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
}
