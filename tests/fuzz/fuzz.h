/* fuzz.h — shared by the fuzz targets (tests/fuzz/fuzz_*.c): the libFuzzer entry points, the
 * line splitter every log target uses, and the checks every accepted or rejected line of a
 * parse_spec must pass. A failed check is a bug: it prints what failed and aborts, so that
 * libFuzzer (and the replay driver, replay.c) report it with the input.
 *
 * Header-only: each target is one .c file, linked either with libFuzzer (clang,
 * -DSPATE_FUZZ=ON) or with replay.c's main (any compiler, run by ctest). */
#ifndef SPATE_FUZZ_H
#define SPATE_FUZZ_H

#include "io/parse_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/** Fails the run: message to stderr, then abort (libFuzzer and replay.c report the input). */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/** The next line of [*p, e): sets *s and *n (without the '\n', a '\r' before it dropped, as
 *  lines.c reads files) and advances *p; 0 when none is left. */
static inline int fz_next_line(const char **p, const char *e, const char **s, size_t *n)
{
    if (*p >= e) return 0;
    const char *nl = memchr(*p, '\n', (size_t)(e - *p));
    const char *end = nl ? nl : e;
    *s = *p;
    *n = (size_t)(end - *p);
    if (*n && end[-1] == '\r') (*n)--;
    *p = nl ? nl + 1 : e;
    return 1;
}

/** A NUL-terminated copy of the first line of [data, data + size) (the format or argument a
 *  target takes from its input), and the rest after it. Free with free(). NULL when the input
 *  has no newline or the line holds a NUL byte (the C strings of the API cannot carry it). */
static inline char *fz_head(const uint8_t *data, size_t size, const char **rest)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    if (!nl || memchr(s, '\0', (size_t)(nl - s))) return NULL;
    size_t n = (size_t)(nl - s);
    char *h = malloc(n + 1);
    if (!h) return NULL;
    memcpy(h, s, n);
    h[n] = 0;
    *rest = nl + 1;
    return h;
}

/** Per-line state for a parser; free with fz_line_free. */
static inline void fz_line_init(parse_line *l, const sp_allocator *a, const parse_spec *ps)
{
    memset(l, 0, sizeof *l);
    l->alloc = a;
    l->v = calloc((size_t)ps->ncols, sizeof *l->v);
    FZ_CHECK(l->v != NULL, "out of memory");
}

static inline void fz_line_free(parse_line *l)
{
    free(l->v);
    mem_free(l->alloc, l->scratch);
    memset(l, 0, sizeof *l);
}

/** Runs ps's line parser on [s, s + n) as parse_run does, then checks its contract: a reason is
 *  non-empty text with a reject column of -1 or a column; an accepted row's non-empty strings
 *  lie in the line or in the line's scratch, and integers fit their column (i32, bool 0/1). Returns
 * the reason, or NULL. */
static inline const char *fz_parse(const parse_spec *ps, parse_line *l, const char *s, size_t n)
{
    l->nscratch = 0;
    l->reject_col = -1;
    const char *why = ps->line(ps, l, s, n);
    if (why) {
        FZ_CHECK(*why, "empty reason");
        FZ_CHECK(l->reject_col >= -1 && l->reject_col < ps->ncols, "reject column %d of %d",
                 l->reject_col, ps->ncols);
        return why;
    }
    for (int c = 0; c < ps->ncols; c++) {
        const parse_val *v = &l->v[c];
        switch (ps->types[c]) {
        case SP_STR:
            if (v->len == 0) /* "" may be any empty string */
                break;
            if (v->s)
                FZ_CHECK(v->s >= s && v->s + v->len <= s + n, "column %s outside the line",
                         ps->names[c]);
            else
                FZ_CHECK((size_t)v->off + v->len <= l->nscratch, "column %s outside the scratch",
                         ps->names[c]);
            break;
        case SP_I32:
            FZ_CHECK(v->i >= INT32_MIN && v->i <= INT32_MAX, "column %s: %lld is not an i32",
                     ps->names[c], (long long)v->i);
            break;
        case SP_BOOL:
            FZ_CHECK(v->i == 0 || v->i == 1, "column %s: bool %lld", ps->names[c], (long long)v->i);
            break;
        default:
            break;
        }
    }
    return NULL;
}

#endif
