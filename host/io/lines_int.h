/* lines_int.h — cutting bytes into lines with a cap on their length (lines_cut, for every
 * line source: textFile, textFileStream, stdin, sockets), a reader over buffered file reads
 * (1 MiB chunks, no allocation per line) that appends lines straight into a raw-text column,
 * and the origin of each line.
 *
 * A line ends at '\n'; a '\r' before it is dropped (CRLF files); a last line without '\n'
 * still counts; empty lines are records. Input may be compressed: a file whose first bytes
 * are the gzip magic (1f 8b) is read through zlib, the zstd magic (28 b5 2f fd) through
 * libzstd's streaming decoder; concatenated members/frames are read in turn. Anything else
 * is read as plain bytes. Line numbers are 1-based and count lines of the decompressed text. */
#ifndef SPATE_LINES_INT_H
#define SPATE_LINES_INT_H

#include "batch/batch_int.h"
#include "io/io_int.h"

#include <stdio.h>

/* ------------------------------------------------------------------------ cutting lines */

/** Bytes of an overlong line kept for its reject. */
#define LINES_HEAD 64

/** The last line lines_cut_next refused as too long. */
typedef struct lines_over {
    int64_t line; /* its 1-based number */
    char head[LINES_HEAD];
    size_t nhead; /* its first bytes: head[0, nhead) */
} lines_over;

/** Bytes become lines here. The buffer holds the bytes not yet cut: at most one partial line
 *  plus the last read. A line longer than `max` bytes (not counting the '\r' of a CRLF) is
 *  never returned: lines_cut_next reports it once (LINES_LONG, with its number and first
 *  bytes in `over`) as soon as max + 2 bytes show no newline, and drops the rest of it as it
 *  is read. So memory stays below max + 2 + one read, whatever the input; the lines after an
 *  overlong one flow on with their own numbers. Line numbers count overlong lines too. */
typedef struct lines_cut {
    const sp_allocator *alloc;
    char *buf;
    size_t cap, pos, len; /* unread bytes: buf[pos, len) */
    size_t max;
    int64_t line; /* lines cut so far (returned and refused) */
    int skipping; /* dropping the rest of an overlong line up to its '\n' */
    lines_over over;
} lines_cut;

enum { LINES_NEED = 0, LINES_LINE = 1, LINES_LONG = 2 };

/** An empty cutter for lines of at most max bytes (0: SOURCE_LINE_MAX_DEFAULT). */
void lines_cut_init(lines_cut *c, const sp_allocator *a, size_t max);
/** Frees the buffer. */
void lines_cut_free(lines_cut *c);
/** New input: drops buffered bytes; line numbers start again at 1. */
void lines_cut_reset(lines_cut *c);
/** Space for at least `want` more bytes after the buffered ones (moving those to the front),
 *  for the caller to read into and then lines_cut_commit; NULL when memory runs out. Call it
 *  only after lines_cut_next has returned LINES_NEED (that is what bounds the buffer). */
char *lines_cut_room(lines_cut *c, size_t want);
void lines_cut_commit(lines_cut *c, size_t n);
/** The next line: LINES_LINE with its bytes in [*p, *p + *n) (the '\n' and a '\r' before it
 *  dropped; valid until the next lines_cut_room), LINES_LONG for an overlong line (c->over),
 *  or LINES_NEED when no whole line is buffered. eof: no more bytes will come, so the bytes
 *  left are the last line. Cost: one memchr over at most max + 2 bytes per line. */
int lines_cut_next(lines_cut *c, int eof, const char **p, size_t *n);
/** Bytes buffered and not yet cut (a partial line). */
static inline size_t lines_cut_pending(const lines_cut *c)
{
    return c->len - c->pos;
}

/* ----------------------------------------------------------------------------- the reader */

typedef struct lines_dec lines_dec;

typedef struct lines_reader {
    const sp_allocator *alloc;
    FILE *f;        /* plain and zstd input */
    lines_dec *dec; /* decompressor, or NULL for plain files */
    lines_cut cut;  /* read buffer and cap, kept across files */
    int eof;
    int64_t line; /* lines read so far from the open file (overlong ones included) */
} lines_reader;

void lines_init(lines_reader *r, const sp_allocator *a);
/** Sets the longest line kept (0: SOURCE_LINE_MAX_DEFAULT); before lines_open. */
void lines_set_max(lines_reader *r, size_t max);
/** Opens path for reading (any file open before is closed), detecting compression by magic
 *  bytes. Errors: source_errno's; SP_EIO naming the library for a decoder that cannot start. */
int lines_open(lines_reader *r, const char *kind, const char *path, sp_diag *d);
/** Appends up to max lines (0: all that remain) to the ENC_RAW column c and adds their count
 *  to *nout. Stops early after a line longer than the cap, with *over = 1 (the line is in
 *  r->cut.over, for the caller to reject; the lines after it have numbers from r->line + 1).
 *  *at_end becomes 1 when the file has no more lines after these. Corrupt compressed data is
 *  SP_EIO naming the file. */
int lines_read(lines_reader *r, sp_col *c, size_t max, size_t *nout, int *at_end, int *over,
               const char *kind, const char *path, sp_diag *d);
void lines_close(lines_reader *r);
/** Closes and frees the buffer. */
void lines_free(lines_reader *r);

/* ------------------------------------------------------------------------------- origins */

/** A run of consecutive rows of one batch that are consecutive lines of one file. */
typedef struct lines_run {
    size_t row;   /* first row of the run in the batch */
    int64_t line; /* its line number in the file (1-based) */
    uint32_t file;
} lines_run;

/** Where the rows of the last batch a text source produced came from. File names are kept
 *  for the source's lifetime (ids are stable); runs are reset per batch. */
typedef struct lines_origin {
    const sp_allocator *alloc;
    int64_t time; /* batch time the runs describe; -1: none yet */
    lines_run *runs;
    size_t nruns, cap_runs;
    char **files;
    int64_t *mtime; /* modification time of each file, seconds since the epoch */
    uint32_t nfiles, cap_files;
} lines_origin;

void lines_origin_init(lines_origin *o, const sp_allocator *a);
void lines_origin_free(lines_origin *o);
/** Starts the description of batch time t (drops the previous runs). */
void lines_origin_reset(lines_origin *o, int64_t t);
/** Id of a file name (added on first use, with the mtime of path; 0 if it cannot be read).
 *  UINT32_MAX when memory runs out. */
uint32_t lines_origin_file(lines_origin *o, const char *path);
/** Records that rows from `row` on are lines from `line` on of file `file`. */
int lines_origin_add(lines_origin *o, size_t row, int64_t line, uint32_t file);
/** File name, line number and file mtime of batch row `row`: 0, or -1 if unknown.
 *  Cost: a binary search over the batch's runs. */
int lines_origin_at(const lines_origin *o, size_t row, const char **file, int64_t *line,
                    int64_t *mtime);

/** The origin kept by a textFile or textFileStream source (NULL for other sources). */
const lines_origin *textfile_origin(const sp_source *s);

#endif
