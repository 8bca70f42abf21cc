/* lines_int.h — a line splitter over buffered reads (1 MiB fread chunks, no allocation per
 * line) that appends lines straight into a raw-text column. A line ends at '\n'; a '\r'
 * before it is dropped (CRLF files); a last line without '\n' still counts; empty lines are
 * records. */
#ifndef SPATE_LINES_INT_H
#define SPATE_LINES_INT_H

#include "batch/batch_int.h"

#include <stdio.h>

typedef struct lines_reader {
    const sp_allocator *alloc;
    FILE *f;
    char *buf; /* read buffer, kept across files; grows for lines longer than it */
    size_t cap;
    size_t pos; /* next unread byte */
    size_t len; /* bytes in buf */
    int eof;
} lines_reader;

void lines_init(lines_reader *r, const sp_allocator *a);
/** Opens path for reading (any file open before is closed). Errors: source_errno's. */
int lines_open(lines_reader *r, const char *kind, const char *path, sp_diag *d);
/** Appends up to max lines (0: all that remain) to the ENC_RAW column c and adds their count
 *  to *nout. *at_end becomes 1 when the file has no more lines after these. */
int lines_read(lines_reader *r, sp_col *c, size_t max, size_t *nout, int *at_end, const char *kind,
               const char *path, sp_diag *d);
void lines_close(lines_reader *r);
/** Closes and frees the buffer. */
void lines_free(lines_reader *r);

#endif
