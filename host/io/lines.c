/* lines.c — cutting bytes into lines of bounded length (every line source), line reading
 * over 1 MiB buffered reads (plain, gzip or zstd) appending into raw-text columns, and the
 * per-batch origin (file, line number) of the lines. */
#include "io/lines_int.h"
#include "io/source_int.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#define LINES_CHUNK ((size_t)1 << 20)

enum { DEC_GZIP = 1, DEC_ZSTD = 2 };

struct lines_dec {
    int kind;
    gzFile gz;
    ZSTD_DCtx *zctx;
    char *in; /* compressed bytes read from r->f */
    size_t in_cap;
    ZSTD_inBuffer zin;
    size_t zlast; /* last ZSTD_decompressStream return: 0 at a frame boundary */
};

/* ------------------------------------------------------------------------ cutting lines */

static size_t lines_cut_max(size_t max)
{
    if (!max) return SOURCE_LINE_MAX_DEFAULT;
    return max > SIZE_MAX / 4 ? SIZE_MAX / 4 : max; /* max + 2 + a read must not overflow */
}

void lines_cut_init(lines_cut *c, const sp_allocator *a, size_t max)
{
    memset(c, 0, sizeof *c);
    c->alloc = a;
    c->max = lines_cut_max(max);
}

void lines_cut_free(lines_cut *c)
{
    mem_free(c->alloc, c->buf);
    c->buf = NULL;
    c->cap = c->pos = c->len = 0;
}

void lines_cut_reset(lines_cut *c)
{
    c->pos = c->len = 0;
    c->line = 0;
    c->skipping = 0;
}

char *lines_cut_room(lines_cut *c, size_t want)
{
    size_t rest = c->len - c->pos;
    if (c->pos) memmove(c->buf, c->buf + c->pos, rest);
    c->pos = 0;
    c->len = rest;
    if (c->cap - rest < want) {
        size_t nc = c->cap ? c->cap : want;
        while (nc - rest < want)
            nc *= 2;
        char *nb = mem_realloc(c->alloc, c->buf, nc);
        if (!nb) return NULL;
        c->buf = nb;
        c->cap = nc;
    }
    return c->buf + c->len;
}

void lines_cut_commit(lines_cut *c, size_t n)
{
    assert(n <= c->cap - c->len);
    c->len += n;
}

static void lines_cut_refuse(lines_cut *c, const char *b, size_t avail)
{
    c->over.line = c->line;
    c->over.nhead = avail < LINES_HEAD ? avail : LINES_HEAD;
    memcpy(c->over.head, b, c->over.nhead);
}

int lines_cut_next(lines_cut *c, int eof, const char **p, size_t *n)
{
    for (;;) {
        char *b = c->buf + c->pos;
        size_t avail = c->len - c->pos;
        if (c->skipping) {
            char *nl = avail ? memchr(b, '\n', avail) : NULL;
            if (!nl) {
                c->pos = c->len;
                if (eof) c->skipping = 0;
                return LINES_NEED;
            }
            c->pos += (size_t)(nl - b) + 1;
            c->skipping = 0;
            continue;
        }
        if (!avail) return LINES_NEED;
        /* A line of max bytes, a '\r' and its '\n' fit in max + 2 bytes. */
        size_t look = avail < c->max + 2 ? avail : c->max + 2;
        char *nl = memchr(b, '\n', look);
        size_t l;
        if (nl) {
            l = (size_t)(nl - b);
            c->pos += l + 1;
        } else if (look == c->max + 2) { /* too long: dropped up to its end, if read yet */
            c->line++;
            lines_cut_refuse(c, b, avail);
            char *end = memchr(b + look, '\n', avail - look);
            c->pos = end ? c->pos + (size_t)(end - b) + 1 : c->len;
            c->skipping = !end && !eof;
            return LINES_LONG;
        } else if (eof) { /* a last line without '\n' */
            l = avail;
            c->pos = c->len;
        } else {
            return LINES_NEED;
        }
        if (l && b[l - 1] == '\r') l--;
        c->line++;
        if (l > c->max) {
            lines_cut_refuse(c, b, l);
            return LINES_LONG;
        }
        *p = b;
        *n = l;
        return LINES_LINE;
    }
}

/* ----------------------------------------------------------------------------- the reader */

void lines_init(lines_reader *r, const sp_allocator *a)
{
    memset(r, 0, sizeof *r);
    r->alloc = a;
    lines_cut_init(&r->cut, a, 0);
}

void lines_set_max(lines_reader *r, size_t max)
{
    r->cut.max = lines_cut_max(max);
}

static void lines_dec_free(lines_reader *r)
{
    lines_dec *z = r->dec;
    if (!z) return;
    if (z->gz) gzclose(z->gz);
    if (z->zctx) ZSTD_freeDCtx(z->zctx);
    mem_free(r->alloc, z->in);
    mem_free(r->alloc, z);
    r->dec = NULL;
}

/* The compression of a file from its first bytes m[0..n). */
static int lines_magic(const unsigned char *m, size_t n)
{
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return DEC_GZIP;
    if (n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return DEC_ZSTD;
    return 0;
}

int lines_open(lines_reader *r, const char *kind, const char *path, sp_diag *d)
{
    lines_close(r);
    r->f = fopen(path, "rb");
    if (!r->f) return source_errno(d, kind, path, errno);
    lines_cut_reset(&r->cut);
    r->eof = 0;
    r->line = 0;
    /* Sniff the first four bytes. A regular file is rewound; a pipe or FIFO cannot be, so
     * the bytes read stay in hand: the start of the text (plain) or of the decoder's input
     * (zstd). They are never dropped. */
    unsigned char m[4] = {0, 0, 0, 0};
    size_t n = fread(m, 1, 4, r->f);
    if (n == 0 && ferror(r->f)) {
        int err = errno ? errno : EIO;
        lines_close(r);
        return source_errno(d, kind, path, err);
    }
    int seekable = fseek(r->f, 0, SEEK_SET) == 0;
    int magic = lines_magic(m, n);
    if (!magic) {
        if (!seekable && n) {
            char *room = lines_cut_room(&r->cut, n);
            if (!room) {
                lines_close(r);
                return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
            }
            memcpy(room, m, n);
            lines_cut_commit(&r->cut, n);
        }
        return 0;
    }
    if (magic == DEC_GZIP && !seekable) {
        lines_close(r);
        return diag_set(d, SP_EUNSUPPORTED,
                        "%s %s: gzip input from a pipe is not supported: read the file itself, "
                        "or decompress it first (zcat FILE | spate ... -)",
                        kind, path);
    }
    lines_dec *z = mem_calloc(r->alloc, 1, sizeof *z);
    if (!z) {
        lines_close(r);
        return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
    }
    r->dec = z;
    z->kind = magic;
    if (magic == DEC_GZIP) {
        /* zlib reads the file itself (gzread handles concatenated members). */
        fclose(r->f);
        r->f = NULL;
        z->gz = gzopen(path, "rb");
        if (!z->gz) {
            int err = errno ? errno : EIO;
            lines_close(r);
            return source_errno(d, kind, path, err);
        }
        gzbuffer(z->gz, 256 * 1024);
        return 0;
    }
    z->zctx = ZSTD_createDCtx();
    z->in_cap = ZSTD_DStreamInSize();
    z->in = mem_alloc(r->alloc, z->in_cap);
    if (!z->zctx || !z->in) {
        lines_close(r);
        return diag_set(d, SP_ENOMEM, "%s %s: out of memory for the zstd decoder", kind, path);
    }
    z->zin.src = z->in;
    z->zin.size = z->zin.pos = 0;
    if (!seekable) {
        memcpy(z->in, m, n);
        z->zin.size = n;
    }
    return 0;
}

/* Reads up to `want` decompressed bytes into dst; *got 0 means end of input. */
static int lines_src_read(lines_reader *r, char *dst, size_t want, size_t *got, const char *kind,
                          const char *path, sp_diag *d)
{
    lines_dec *z = r->dec;
    *got = 0;
    if (!z) {
        size_t n = fread(dst, 1, want, r->f);
        if (n == 0 && ferror(r->f)) return source_errno(d, kind, path, errno ? errno : EIO);
        *got = n;
        return 0;
    }
    if (z->kind == DEC_GZIP) {
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        int n = gzread(z->gz, dst, (unsigned)want);
        int zerr = 0;
        const char *msg = gzerror(z->gz, &zerr);
        if (n < 0 || (n == 0 && zerr != Z_OK))
            return diag_set(d, SP_EIO, "%s %s: gzip: %s", kind, path, msg ? msg : "read error");
        *got = (size_t)n;
        return 0;
    }
    ZSTD_outBuffer out = {dst, want, 0};
    while (out.pos == 0) {
        if (z->zin.pos == z->zin.size) {
            size_t n = fread(z->in, 1, z->in_cap, r->f);
            if (n == 0) {
                if (ferror(r->f)) return source_errno(d, kind, path, errno ? errno : EIO);
                if (z->zlast != 0)
                    return diag_set(d, SP_EIO, "%s %s: zstd: truncated frame", kind, path);
                return 0;
            }
            z->zin.size = n;
            z->zin.pos = 0;
        }
        size_t rc = ZSTD_decompressStream(z->zctx, &out, &z->zin);
        if (ZSTD_isError(rc))
            return diag_set(d, SP_EIO, "%s %s: zstd: %s", kind, path, ZSTD_getErrorName(rc));
        z->zlast = rc;
    }
    *got = out.pos;
    return 0;
}

/* Reads one more chunk after the bytes not yet cut. Sets eof on end of file. */
static int lines_fill(lines_reader *r, const char *kind, const char *path, sp_diag *d)
{
    char *dst = lines_cut_room(&r->cut, LINES_CHUNK);
    if (!dst) return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
    size_t n = 0;
    int rc = lines_src_read(r, dst, LINES_CHUNK, &n, kind, path, d);
    if (rc) return rc;
    lines_cut_commit(&r->cut, n);
    if (n == 0) r->eof = 1;
    return 0;
}

int lines_read(lines_reader *r, sp_col *c, size_t max, size_t *nout, int *at_end, int *over,
               const char *kind, const char *path, sp_diag *d)
{
    size_t got = 0;
    int rc = 0;
    *at_end = 0;
    *over = 0;
    while (!max || got < max) {
        const char *p;
        size_t l;
        int k = lines_cut_next(&r->cut, r->eof, &p, &l);
        if (k == LINES_LINE) {
            if (col_push_text(c, p, l)) {
                rc = diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
                goto out;
            }
            got++;
            continue;
        }
        if (k == LINES_LONG) {
            *over = 1;
            break;
        }
        if (r->eof) break;
        if ((rc = lines_fill(r, kind, path, d))) goto out;
    }
    /* Look ahead so that the batch that drains the file is the one that says so. */
    if (lines_cut_pending(&r->cut) == 0 && !r->eof) rc = lines_fill(r, kind, path, d);
    *at_end = r->eof && lines_cut_pending(&r->cut) == 0;
out:
    r->line = r->cut.line;
    *nout += got;
    return rc;
}

void lines_close(lines_reader *r)
{
    lines_dec_free(r);
    if (r->f) fclose(r->f);
    r->f = NULL;
}

void lines_free(lines_reader *r)
{
    lines_close(r);
    lines_cut_free(&r->cut);
}

/* ------------------------------------------------------------------------------- origins */

void lines_origin_init(lines_origin *o, const sp_allocator *a)
{
    memset(o, 0, sizeof *o);
    o->alloc = a;
    o->time = -1;
}

void lines_origin_free(lines_origin *o)
{
    for (uint32_t i = 0; i < o->nfiles; i++)
        mem_free(o->alloc, o->files[i]);
    mem_free(o->alloc, o->files);
    mem_free(o->alloc, o->mtime);
    mem_free(o->alloc, o->runs);
    lines_origin_init(o, o->alloc);
}

void lines_origin_reset(lines_origin *o, int64_t t)
{
    o->time = t;
    o->nruns = 0;
}

uint32_t lines_origin_file(lines_origin *o, const char *path)
{
    for (uint32_t i = o->nfiles; i-- > 0;)
        if (strcmp(o->files[i], path) == 0) return i;
    if (o->nfiles == o->cap_files) {
        uint32_t nc = o->cap_files ? o->cap_files * 2 : 8;
        char **nf = mem_realloc(o->alloc, o->files, nc * sizeof *nf);
        if (!nf) return UINT32_MAX;
        o->files = nf;
        int64_t *nm = mem_realloc(o->alloc, o->mtime, nc * sizeof *nm);
        if (!nm) return UINT32_MAX;
        o->mtime = nm;
        o->cap_files = nc;
    }
    char *s = mem_strdup(o->alloc, path);
    if (!s) return UINT32_MAX;
    struct stat st;
    o->files[o->nfiles] = s;
    o->mtime[o->nfiles] = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    return o->nfiles++;
}

int lines_origin_add(lines_origin *o, size_t row, int64_t line, uint32_t file)
{
    if (o->nruns == o->cap_runs) {
        size_t nc = o->cap_runs ? o->cap_runs * 2 : 8;
        lines_run *nr = mem_realloc(o->alloc, o->runs, nc * sizeof *nr);
        if (!nr) return SP_ENOMEM;
        o->runs = nr;
        o->cap_runs = nc;
    }
    o->runs[o->nruns++] = (lines_run){row, line, file};
    return 0;
}

int lines_origin_at(const lines_origin *o, size_t row, const char **file, int64_t *line,
                    int64_t *mtime)
{
    if (!o || o->nruns == 0 || row < o->runs[0].row) return -1;
    size_t lo = 0, hi = o->nruns; /* last run with runs[i].row <= row */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->runs[mid].row <= row)
            lo = mid;
        else
            hi = mid;
    }
    const lines_run *r = &o->runs[lo];
    if (file) *file = o->files[r->file];
    if (line) *line = r->line + (int64_t)(row - r->row);
    if (mtime) *mtime = o->mtime[r->file];
    return 0;
}
