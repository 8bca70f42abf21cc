/* jobfix.h — helpers of the tests that run whole jobs through the public API: input files in
 * a fresh directory, a run that must succeed, string ordering. Header-only (static inline) so
 * that tests linking only some layers do not depend on it. */
#ifndef SPATE_JOBFIX_H
#define SPATE_JOBFIX_H

#include "spate.h"
#include "support/testutil.h"

#include <stdio.h>
#include <string.h>

/** Writes text to NAME in a fresh directory named after it; returns the path (one of 8
 *  rotating static buffers). */
static inline const char *write_tmp(const char *name, const char *text)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    const char *dir = tu_tmpdir(name);
    snprintf(p, 512, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(p, text), 0);
    return p;
}

/** Runs the job; fails the test with the context's message when the run fails. */
static inline void run_ok(sp_context *ctx)
{
    int rc = sp_context_run(ctx);
    if (rc != SP_OK) fail_msg("run failed: %s", sp_context_errmsg(ctx));
}

/** qsort comparator for arrays of C strings. */
static inline int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#endif
