/* jsonscan_int.h — single-pass extraction of dotted paths from one JSON-lines record, the fast
 * path of parse(json).
 *
 * The requested paths are compiled once into a trie of keys (jsonscan_new). A line is scanned
 * once, left to right: objects on a requested path are descended into, everything else is
 * validated and skipped without being materialised; the value found for each path is returned
 * as a reference into the line (js_value), to be converted by the caller.
 *
 * Contract: for every line, the result equals what jansson's json_loadb(line, len, 0) followed
 * by parse_json.c's path lookup gives, or the scan answers JS_FALLBACK and the caller must use
 * jansson for that line. The accepted grammar is jansson 2.14's: the top level is an object or
 * an array; strict RFC 8259 tokens; strings are valid UTF-8 (no overlongs, surrogates or code
 * points over U+10FFFF) without control characters, with valid escapes, paired \u surrogates and
 * no \u0000; integers fit int64 (else the line is malformed); reals must not overflow to
 * infinity. A path "a.b.c" matches the key "a.b.c", else splits at its dots (first dot first,
 * the rest recursively, as parse_json.c's pj_at): among the splittings present in the record,
 * the first in that order wins, null values included. Duplicate keys keep the last value
 * (json_object_set), which the scan does not model: a key on a requested path that appears
 * twice in one object answers JS_FALLBACK. Other fallbacks: nesting deeper than 128, an escaped
 * key longer than 256 bytes on a requested path, a NUL byte right after a number or literal
 * (jansson's lexer swallows it), a real of more than 511 characters that might overflow.
 *
 * Cost: one pass over the line; strings are scanned 16 bytes at a time (SSE2 on x86-64, 8 with
 * SWAR elsewhere on little-endian machines, bytewise otherwise) for '"', '\\', control and
 * non-ASCII bytes; each key in an object on a requested path is compared with that node's
 * edges (filtered by key length); no allocation. */
#ifndef SPATE_JSONSCAN_INT_H
#define SPATE_JSONSCAN_INT_H

#include "io/parse_int.h"

#include <stddef.h>
#include <stdint.h>

enum { JSONSCAN_MAX_COLS = 64 };

typedef struct jsonscan jsonscan;

/** Compiles n (at most JSONSCAN_MAX_COLS) dotted paths. *out is NULL (and 0 returned) when the
 *  paths are beyond the scanner's limits (more than 64 dots in a path, more than 64 distinct
 *  keys under one object): the caller then uses jansson for every line. Errors: SP_ENOMEM.
 *  Free with jsonscan_free. */
int jsonscan_new(const sp_allocator *a, char *const *paths, int n, jsonscan **out, sp_diag *d);
void jsonscan_free(const sp_allocator *a, jsonscan *js);

typedef enum js_kind {
    JS_ABSENT,   /* no splitting of the path is present */
    JS_NULL,     /* null */
    JS_STR,      /* a string without escapes: s, n are its bytes (inside the line) */
    JS_STR_ESC,  /* a string with escapes: s, n are its raw text; see jsonscan_unescape */
    JS_INT,      /* an integer that fits int64: s, n its text */
    JS_REAL,     /* a number with a fraction or exponent (finite): s, n its text */
    JS_TRUE,     /* true */
    JS_FALSE,    /* false */
    JS_COMPOSITE /* an object or array: s, n its text */
} js_kind;

typedef struct js_value {
    const char *s;
    uint32_t n;
    uint32_t kind;  /* js_kind */
    uint64_t split; /* the dots the path was split at (a bit per dot), for choosing */
} js_value;

typedef enum js_status {
    JS_OK,         /* an object; v[] holds each path's value */
    JS_NOT_OBJECT, /* valid JSON whose top level is an array */
    JS_MALFORMED,  /* jansson rejects the line */
    JS_FALLBACK    /* outside the scanner's model: parse this line with jansson */
} js_status;

/** Scans one line; v has one entry per path. Thread-safe (js is read only). */
js_status jsonscan_line(const jsonscan *js, const char *s, size_t len, js_value *v);

/** Decodes a JS_STR_ESC string's n raw bytes into out (at least n bytes); returns the decoded
 *  length (escapes as jansson decodes them, \u pairs to UTF-8). */
size_t jsonscan_unescape(const char *s, size_t n, char *out);
/** A JS_INT's value. */
int64_t jsonscan_int(const char *s, size_t n);
/** A JS_REAL's value, bit-identical to strtod's (exact powers-of-ten fast path for at most 15
 *  significant digits and |exponent| <= 22, strtod otherwise). Returns -1 when out of memory
 *  (texts of 64 bytes or more are copied to be NUL-terminated). */
int jsonscan_real(const char *s, size_t n, double *out);

/* ---------------------------------------------- parse_json.c's two line parsers (tests, bench) */

/** The jansson line parser of parse(json). */
const char *parse_json_line_jansson(const parse_spec *ps, parse_line *l, const char *s, size_t len);
/** The compiled scanner of a json spec, or NULL when every line goes through jansson. */
const jsonscan *parse_json_scan(const parse_spec *ps);
/** Makes a json spec parse every line with jansson (to measure or compare it); call before the
 *  spec is shared. */
void parse_json_use_jansson(parse_spec *ps);

#endif
