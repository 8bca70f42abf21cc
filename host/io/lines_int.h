/* lines_int.h — a line splitter over buffered reads (1 MiB chunks, no allocation per line)
 * that appends lines straight into a raw-text column, and the origin of each line.
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

typedef struct lines_dec lines_dec;

typedef struct lines_reader {
    const sp_allocator *alloc;
    FILE *f;        /* plain and zstd input */
    lines_dec *dec; /* decompressor, or NULL for plain files */
    char *buf;      /* read buffer, kept across files; grows for lines longer than it */
    size_t cap;
    size_t pos; /* next unread byte */
    size_t len; /* bytes in buf */
    int eof;
    int64_t line; /* lines returned so far from the open file */
} lines_reader;

void lines_init(lines_reader *r, const sp_allocator *a);
/** Opens path for reading (any file open before is closed), detecting compression by magic
 *  bytes. Errors: source_errno's; SP_EIO naming the library for a decoder that cannot start. */
int lines_open(lines_reader *r, const char *kind, const char *path, sp_diag *d);
/** Appends up to max lines (0: all that remain) to the ENC_RAW column c and adds their count
 *  to *nout. *at_end becomes 1 when the file has no more lines after these. Corrupt
 *  compressed data is SP_EIO naming the file. */
int lines_read(lines_reader *r, sp_col *c, size_t max, size_t *nout, int *at_end, const char *kind,
               const char *path, sp_diag *d);
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
