/* lines.c — line splitting over 1 MiB buffered reads, appending into raw-text columns. */
#include "io/lines_int.h"
#include "io/source_int.h"

#include <errno.h>
#include <string.h>

#define LINES_CHUNK ((size_t)1 << 20)

void lines_init(lines_reader *r, const sp_allocator *a)
{
    memset(r, 0, sizeof *r);
    r->alloc = a;
}

int lines_open(lines_reader *r, const char *kind, const char *path, sp_diag *d)
{
    lines_close(r);
    if (!r->buf) {
        r->buf = mem_alloc(r->alloc, LINES_CHUNK);
        if (!r->buf) return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
        r->cap = LINES_CHUNK;
    }
    r->f = fopen(path, "rb");
    if (!r->f) return source_errno(d, kind, path, errno);
    r->pos = r->len = 0;
    r->eof = 0;
    return 0;
}

/* Moves the unread tail to the front and reads one more chunk; doubles the buffer when a
 * line fills it. Sets eof on end of file. */
static int lines_fill(lines_reader *r, const char *kind, const char *path, sp_diag *d)
{
    size_t rest = r->len - r->pos;
    if (r->pos) memmove(r->buf, r->buf + r->pos, rest);
    r->pos = 0;
    r->len = rest;
    if (r->len == r->cap) {
        char *nb = mem_realloc(r->alloc, r->buf, r->cap * 2);
        if (!nb)
            return diag_set(d, SP_ENOMEM, "%s %s: out of memory for a %zu-byte line", kind, path,
                            r->len);
        r->buf = nb;
        r->cap *= 2;
    }
    size_t want = r->cap - r->len;
    if (want > LINES_CHUNK) want = LINES_CHUNK;
    size_t n = fread(r->buf + r->len, 1, want, r->f);
    r->len += n;
    if (n == 0) {
        if (ferror(r->f)) return source_errno(d, kind, path, errno ? errno : EIO);
        r->eof = 1;
    }
    return 0;
}

int lines_read(lines_reader *r, sp_col *c, size_t max, size_t *nout, int *at_end, const char *kind,
               const char *path, sp_diag *d)
{
    size_t got = 0;
    int rc = 0;
    *at_end = 0;
    while (!max || got < max) {
        char *p = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = avail ? memchr(p, '\n', avail) : NULL;
        if (nl) {
            size_t l = (size_t)(nl - p);
            r->pos += l + 1;
            if (l && p[l - 1] == '\r') l--;
            if (col_push_text(c, p, l)) goto oom;
            got++;
            continue;
        }
        if (r->eof) {
            if (avail) {
                size_t l = avail;
                if (p[l - 1] == '\r') l--;
                r->pos = r->len;
                if (col_push_text(c, p, l)) goto oom;
                got++;
            }
            break;
        }
        if ((rc = lines_fill(r, kind, path, d))) goto out;
    }
    /* Look ahead so that the batch that drains the file is the one that says so. */
    if (r->pos == r->len && !r->eof) rc = lines_fill(r, kind, path, d);
    *at_end = r->eof && r->pos == r->len;
out:
    *nout += got;
    return rc;
oom:
    *nout += got;
    return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
}

void lines_close(lines_reader *r)
{
    if (r->f) fclose(r->f);
    r->f = NULL;
}

void lines_free(lines_reader *r)
{
    lines_close(r);
    mem_free(r->alloc, r->buf);
    r->buf = NULL;
    r->cap = 0;
}
