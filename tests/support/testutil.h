/* testutil.h — shared by the cmocka tests: fixed-seed randomness, temp dirs, device choice. */
#ifndef SPATE_TESTUTIL_H
#define SPATE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above included first. */
#include <cmocka.h>

/** splitmix64: deterministic per-test random numbers. */
uint64_t tu_rand(uint64_t *state);
/** Uniform in [0, n). */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);

/** A fresh empty directory under the test's working directory; returns its path (static
 *  storage per call slot, do not free). */
const char *tu_tmpdir(const char *tag);
/** Writes text to path; returns 0 on success. */
int tu_write_file(const char *path, const char *text);
/** Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *tu_read_file(const char *path, size_t *len);
/** Path of a file in the source tree (SPATE_SOURCE_DIR/rel). Static storage. */
const char *tu_src_path(const char *rel);

#endif
