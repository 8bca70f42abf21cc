/* parse_int.h — parsing text lines into typed, flat records (log formats, JSON lines, CSV),
 * in parallel over chunks of a batch, dictionary-encoding strings as they are parsed.
 *
 * A parse_spec is compiled once from (format, arg) and is immutable afterwards, so executor
 * threads share it. Each format parser reads one line into per-column values (parse_val) and
 * either accepts it (the values become one row) or rejects it with a static reason; a
 * rejected line never yields a partial row. The semantics of every format, and each decision
 * about messy input, are in host/io/PARSING.md. */
#ifndef SPATE_PARSE_INT_H
#define SPATE_PARSE_INT_H

#include "batch/batch_int.h"
#include "exec/exec_int.h"
#include "io/lines_int.h"

#include <stdio.h>

/* ------------------------------------------------------------------------------ the spec */

typedef struct parse_spec parse_spec;

/** Compiles a format: "combined", "common", "syslog" (arg: NULL or "year=YYYY"), "json"
 *  (arg: comma-separated dotted paths, each optionally ":type"), "csv" (arg: the header,
 *  names optionally ":type"), or a GoAccess-style format string ("%h %^[%d:%t %^] ..."). Errors
 *  (SP_EINVAL) name the format and the offending column. Free with parse_spec_free. */
int parse_spec_new(const sp_allocator *a, const char *format, const char *arg, parse_spec **out,
                   sp_diag *d);
void parse_spec_free(parse_spec *ps);
/** The record type: a tuple of the columns (a single column: its leaf). Belongs to ps. */
const sp_td *parse_spec_td(const parse_spec *ps);
/** The format's short name ("combined", "json", "format", ...). */
const char *parse_spec_name(const parse_spec *ps);
/** "host str, ident str, ..." for explain output. */
void parse_spec_describe(const parse_spec *ps, strbuf *sb);
/** 1 when yearless timestamps occur in this format (syslog) and no year was configured. */
int parse_spec_needs_year(const parse_spec *ps);

/* ------------------------------------------------------------------------------ running */

typedef struct parse_reject {
    size_t row;         /* row of the input batch */
    const char *reason; /* static text */
    int col;            /* column the reason is about, or -1 */
} parse_reject;

/** Per-executor caches of string -> dictionary id, kept across batches (ids are stable for the
 *  dictionary's life). One per worker; a worker runs one task at a time. */
typedef struct parse_cache parse_cache;
int parse_cache_new(const sp_allocator *a, unsigned workers, parse_cache **out, sp_diag *d);
void parse_cache_free(parse_cache *pc);

typedef struct parse_opts {
    sp_exec *exec;              /* executors; NULL runs every chunk on the caller */
    const lines_origin *origin; /* where the input rows came from, or NULL */
    int64_t ref_time_s;         /* reference time for yearless timestamps when the origin
                                   does not give one (seconds since the epoch) */
    size_t chunk_rows;          /* rows per task (0: a default that balances the executors) */
    parse_cache *cache;         /* per-worker id caches, or NULL (one per task) */
} parse_opts;

typedef struct parse_result {
    sp_batch *out;         /* the parsed records, in input order */
    parse_reject *rejects; /* in row order; free with parse_result_free */
    size_t nrejects;
    size_t bytes; /* text bytes parsed */
} parse_result;

/** Parses every row of `in` (a batch of str, either encoding) into a batch of ps's type at
 *  in's time, on the executors, one task per chunk of rows. Rejected lines are listed in
 *  res->rejects. Errors: SP_ETYPE when in is not a str stream, SP_ENOMEM. */
int parse_run(const parse_spec *ps, batch_env *env, const sp_batch *in, const parse_opts *o,
              parse_result *res, sp_diag *d);
void parse_result_free(const sp_allocator *a, parse_result *res);

/* --------------------------------------------------------- for the format parsers (parse_*.c) */

/** One value of a line: a string (s, len; or bytes at `off` in the line's scratch when s is
 *  NULL), an integer (i32, i64, ts in ms, bool) or a double. */
typedef struct parse_val {
    const char *s;
    uint32_t len;
    uint32_t off;
    int64_t i;
    double f;
} parse_val;

/** Per-task state handed to a line parser. */
typedef struct parse_line {
    parse_val *v;  /* one per column */
    char *scratch; /* unescaped / converted text of this line */
    size_t nscratch, cap_scratch;
    const sp_allocator *alloc;
    int reject_col; /* set by a parser with a column-specific reason, else -1 */
    /* reference time for yearless timestamps, looked up lazily (parse_ref_time) */
    const lines_origin *origin;
    size_t row;
    int64_t ref_default_s;
} parse_line;

/** Parses line [s, s + len) into l->v; returns NULL (accepted) or a static reason. */
typedef const char *(*parse_line_fn)(const parse_spec *ps, parse_line *l, const char *s,
                                     size_t len);

struct parse_spec {
    const sp_allocator *alloc;
    char *name;
    int ncols;
    sp_type *types;
    char **names;
    sp_td *td;
    parse_line_fn line;
    void *impl; /* the format's compiled state */
    void (*impl_free)(const sp_allocator *a, void *impl);
    int year;     /* syslog: configured year, 0: from the reference time */
    int yearless; /* the format may meet yearless timestamps */
};

/** Appends a column (name copied). */
int parse_spec_col(parse_spec *ps, const char *name, size_t nlen, sp_type t, sp_diag *d);
/** Reads "name" or "name:type" (type one of i32 i64 f32 f64 bool ts str; default str). */
int parse_spec_typed_col(parse_spec *ps, const char *item, size_t n, sp_diag *d);

/* format initialisers: fill columns, line and impl */
int parse_clf_init(parse_spec *ps, int combined, sp_diag *d);
int parse_goaccess_init(parse_spec *ps, const char *fmt, sp_diag *d);
int parse_syslog_init(parse_spec *ps, const char *arg, sp_diag *d);
int parse_json_init(parse_spec *ps, const char *arg, sp_diag *d);
int parse_csv_init(parse_spec *ps, const char *arg, sp_diag *d);

/** n bytes of scratch for this line; returns the offset (stored in parse_val.off) and sets
 *  *p, or returns UINT32_MAX when memory runs out. Pointers into scratch are invalidated by
 *  the next call; offsets stay valid for the line. */
uint32_t parse_scratch(parse_line *l, size_t n, char **p);
/** Sets column c to a string in the line / in scratch. */
static inline void parse_set_str(parse_line *l, int c, const char *s, size_t n)
{
    l->v[c].s = s;
    l->v[c].len = (uint32_t)n;
}
static inline void parse_set_scratch(parse_line *l, int c, uint32_t off, size_t n)
{
    l->v[c].s = NULL;
    l->v[c].off = off;
    l->v[c].len = (uint32_t)n;
}
/** Converts text to column c's type (str: copied reference; numbers; bool "true"/"false"/
 *  "1"/"0"; ts: ISO 8601, CLF "dd/Mon/yyyy:HH:MM:SS zone" or epoch seconds/ms). Empty
 *  text and "-" are the zero value. Returns NULL or a reason. */
const char *parse_set_text(const parse_spec *ps, parse_line *l, int c, const char *s, size_t n);

/** Seconds given as a real (epoch seconds with a fraction) to ts milliseconds, truncated toward
 *  zero. Returns NULL, "not a finite timestamp" (NaN, infinities) or "timestamp out of range"
 *  (beyond the int64 range of milliseconds, about 292 million years either way). */
const char *parse_real_ts(double sec, int64_t *ms);
/** A real that must be an integer of column type t (i32 or i64): NULL, "not an integer" (a
 *  fraction, NaN) or "integer out of range". */
const char *parse_real_int(double x, sp_type t, int64_t *v);

/** Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t parse_days(int64_t y, int m, int d);
/** Month from its three-letter English abbreviation (case-insensitive): 1..12, or 0. */
int parse_month3(const char *s);
/** Reads digits [s, s+n) exactly; -1 if any is not a digit. */
int64_t parse_digits(const char *s, size_t n);
/** A time zone at s (end e): "Z", "+hhmm", "+hh:mm", "+hh" (or '-'); sets *off_s (seconds
 *  east of UTC) and returns the end, or NULL if there is none. */
const char *parse_zone(const char *s, const char *e, int64_t *off_s);
/** ISO 8601 date-time at s: "yyyy-mm-ddThh:mm:ss[.frac][zone]" (a space for T accepted);
 *  no zone means UTC. Sets *ms and returns the end, or NULL. */
const char *parse_iso8601(const char *s, const char *e, int64_t *ms);
/** CLF time "dd/Mon/yyyy:hh:mm:ss[.frac][ zone]" at s; no zone means UTC. */
const char *parse_clf_time(const char *s, const char *e, int64_t *ms);
/** Reference time (seconds) for the current line's yearless timestamps: the mtime of its file
 *  when the origin knows it, else l->ref_default_s. */
int64_t parse_ref_time(parse_line *l);
/** Year for a yearless (month, day, seconds of day) given ps->year or the reference time: the
 *  reference's year, minus one when that would put the record more than two days after the
 *  reference (a file written in January holding December's lines). */
int64_t parse_yearless_ms(const parse_spec *ps, parse_line *l, int mon, int day, int64_t sod_ms);

#endif
