/* diag_int.h — one place for an error code and its one-line message. */
#ifndef SPATE_DIAG_INT_H
#define SPATE_DIAG_INT_H

#include "spate.h"
#include <stdarg.h>

/** The status and message of the last failure of a call chain. Every internal fallible
 *  function takes one (possibly NULL) and fills it on failure. */
typedef struct sp_diag {
    int code;
    char msg[1024];
} sp_diag;

/** Records code and a printf-style message; returns code, so that callers can write
 *  `return diag_set(d, SP_EINVAL, "...")`. A NULL d only returns the code. */
int diag_set(sp_diag *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_vset(sp_diag *d, int code, const char *fmt, va_list ap);
/** Prefixes the existing message with "what: ". Returns d->code. */
int diag_prefix(sp_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_clear(sp_diag *d);

/** Argument checks, one line each (the API-misuse tier). */
#define SP_CHECK(d, cond, code, ...)                                                               \
    do {                                                                                           \
        if (!(cond)) return diag_set((d), (code), __VA_ARGS__);                                    \
    } while (0)

#endif
