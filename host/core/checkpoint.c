/* checkpoint.c — the checkpoint directory's files and their records (contract in
 * checkpoint_int.h). */
#include "core/checkpoint_int.h"
#include "io/io_int.h"
#include "util/strbuf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_VERSION 1

typedef struct ckpt_off {
    int64_t batch, time;
    char *text;
} ckpt_off;

struct ckpt {
    const sp_allocator *a;
    char *dir;
    FILE *log;
    int offsets_fd, commits_fd;
    ckpt_off *offs;
    size_t noffs, cap_offs;
    int64_t committed, committed_time;
    uint64_t *sinks;
    int nsinks;
    int readonly; /* spate checkpoint DIR: look, change nothing */
    strbuf sb;
    /* Group commit: commit records not yet on disk (the text of their lines) and the last of
     * them; ckpt_sync writes them after the outputs and the offsets are durable. */
    strbuf pending;
    int64_t pending_k, pending_t;
    uint64_t *pending_sinks;
    int pending_n;
};

static char *ckpt_path(ckpt *c, const char *name)
{
    sb_reset(&c->sb);
    sb_printf(&c->sb, "%s/%s", c->dir, name);
    return c->sb.oom ? NULL : mem_strdup(c->a, sb_cstr(&c->sb));
}

/* "CRC JSON\n" for text. */
static void ckpt_record(strbuf *sb, const char *text)
{
    uLong crc = crc32(0L, (const Bytef *)text, (uInt)strlen(text));
    sb_printf(sb, "%08lx %s\n", (unsigned long)crc, text);
}

/* The JSON of one record line (without its newline), or NULL when the CRC disagrees. */
static json_t *ckpt_parse_line(const char *line, size_t len)
{
    if (len < 10 || line[8] != ' ') return NULL;
    char hex[9];
    memcpy(hex, line, 8);
    hex[8] = '\0';
    char *end;
    unsigned long want = strtoul(hex, &end, 16);
    if (*end) return NULL;
    const char *text = line + 9;
    size_t tl = len - 9;
    if (crc32(0L, (const Bytef *)text, (uInt)tl) != want) return NULL;
    return json_loadb(text, tl, 0, NULL);
}

typedef int (*ckpt_take_fn)(ckpt *c, json_t *rec, sp_diag *d);

/* Reads every record of DIR/name through take. A cut-short last record is dropped and the
 * file truncated back to the records before it; a damaged earlier one is an error. Leaves
 * the file open for appending in *fd. */
static int ckpt_read_log(ckpt *c, const char *name, ckpt_take_fn take, int *fd, sp_diag *d)
{
    char *path = ckpt_path(c, name);
    if (!path) return diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", c->dir);
    int rc = SP_OK;
    char *text = NULL;
    *fd = c->readonly ? open(path, O_RDONLY | O_CLOEXEC)
                      : open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (*fd < 0 && c->readonly && errno == ENOENT) goto out; /* nothing logged yet */
    if (*fd < 0) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: %s", path, strerror(errno));
        goto out;
    }
    size_t size = (size_t)st.st_size, got = 0;
    text = mem_alloc(c->a, size + 1);
    if (!text) {
        rc = diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", path);
        goto out;
    }
    while (got < size) {
        ssize_t r = pread(*fd, text + got, size - got, (off_t)got);
        if (r <= 0) {
            rc = diag_set(d, SP_EIO, "checkpoint %s: %s", path,
                          r < 0 ? strerror(errno) : "short read");
            goto out;
        }
        got += (size_t)r;
    }
    text[size] = '\0';
    size_t pos = 0, good = 0;
    int64_t line = 0;
    while (pos < size) {
        line++;
        char *nl = memchr(text + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;
        json_t *rec = nl ? ckpt_parse_line(text + pos, len) : NULL;
        if (!rec) {
            if (nl && (size_t)(nl - text) + 1 < size) {
                rc = diag_set(d, SP_EIO,
                              "checkpoint %s:%" PRId64 ": damaged record (bad checksum): the "
                              "checkpoint cannot be trusted; remove the directory to start over",
                              path, line);
                goto out;
            }
            fprintf(c->log,
                    "spate: checkpoint %s:%" PRId64 ": a record cut short by a crash was dropped\n",
                    path, line);
            if (c->readonly) break;
            if (ftruncate(*fd, (off_t)good) != 0 || io_fsync(*fd) != 0) {
                rc = diag_set(d, SP_EIO, "checkpoint %s: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
        rc = take(c, rec, d);
        json_decref(rec);
        if (rc) {
            diag_prefix(d, "checkpoint %s:%" PRId64, path, line);
            goto out;
        }
        pos += len + 1;
        good = pos;
    }
out:
    mem_free(c->a, text);
    mem_free(c->a, path);
    return rc;
}

static int ckpt_take_offsets(ckpt *c, json_t *rec, sp_diag *d)
{
    json_t *b = json_object_get(rec, "batch"), *t = json_object_get(rec, "time"),
           *s = json_object_get(rec, "sources");
    if (!json_is_integer(b) || !json_is_integer(t) || !json_is_string(s))
        return diag_set(d, SP_EIO, "an offsets record without batch, time and sources");
    int64_t k = json_integer_value(b);
    if (k != (int64_t)c->noffs + 1)
        return diag_set(d, SP_EIO, "offsets of batch %" PRId64 " after batch %zu", k, c->noffs);
    if (c->noffs == c->cap_offs) {
        size_t cap = c->cap_offs ? c->cap_offs * 2 : 64;
        ckpt_off *o = mem_realloc(c->a, c->offs, cap * sizeof *o);
        if (!o) return diag_set(d, SP_ENOMEM, "out of memory");
        c->offs = o;
        c->cap_offs = cap;
    }
    char *text = mem_strdup(c->a, json_string_value(s));
    if (!text) return diag_set(d, SP_ENOMEM, "out of memory");
    c->offs[c->noffs++] = (ckpt_off){k, json_integer_value(t), text};
    return SP_OK;
}

static int ckpt_take_commit(ckpt *c, json_t *rec, sp_diag *d)
{
    json_t *b = json_object_get(rec, "batch"), *t = json_object_get(rec, "time"),
           *s = json_object_get(rec, "sinks");
    if (!json_is_integer(b) || !json_is_integer(t) || !json_is_array(s))
        return diag_set(d, SP_EIO, "a commit record without batch, time and sinks");
    int64_t k = json_integer_value(b);
    if (k != c->committed + 1)
        return diag_set(d, SP_EIO, "commit of batch %" PRId64 " after batch %" PRId64, k,
                        c->committed);
    size_t n = json_array_size(s);
    uint64_t *v = mem_calloc(c->a, n ? n : 1, sizeof *v);
    if (!v) return diag_set(d, SP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(s, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0) {
            mem_free(c->a, v);
            return diag_set(d, SP_EIO, "a commit record with a bad output position");
        }
        v[i] = (uint64_t)json_integer_value(x);
    }
    mem_free(c->a, c->sinks);
    c->sinks = v;
    c->nsinks = (int)n;
    c->committed = k;
    c->committed_time = json_integer_value(t);
    return SP_OK;
}

/* Checks DIR/meta against the job, or writes it (temporary name, fsync, rename). */
static int ckpt_meta(ckpt *c, const char *fingerprint, int64_t batch_ms, sp_diag *d)
{
    char *path = ckpt_path(c, "meta");
    if (!path) return diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", c->dir);
    int rc = SP_OK;
    json_error_t err;
    json_t *m = json_load_file(path, 0, &err);
    if (m) {
        json_t *v = json_object_get(m, "version"), *f = json_object_get(m, "fingerprint"),
               *b = json_object_get(m, "batch_ms");
        if (!json_is_integer(v) || json_integer_value(v) != CKPT_VERSION || !json_is_string(f) ||
            !json_is_integer(b))
            rc = diag_set(d, SP_ESTATE, "checkpoint %s: not a checkpoint of this version", path);
        else if (strcmp(json_string_value(f), fingerprint))
            rc = diag_set(d, SP_ESTATE,
                          "checkpoint %s belongs to another job (fingerprint %s; this job's is "
                          "%s): use another directory, or remove it to start over",
                          c->dir, json_string_value(f), fingerprint);
        else if (json_integer_value(b) != batch_ms)
            rc = diag_set(d, SP_ESTATE,
                          "checkpoint %s was written with batches of %" PRId64
                          " ms, this run has %" PRId64 " ms",
                          c->dir, (int64_t)json_integer_value(b), batch_ms);
        json_decref(m);
        goto out;
    }
    if (access(path, F_OK) == 0) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: unreadable (%s)", path, err.text);
        goto out;
    }
    sb_reset(&c->sb);
    sb_printf(&c->sb, "%s.tmp", path);
    char *tmp = mem_strdup(c->a, sb_cstr(&c->sb));
    FILE *f = tmp ? fopen(tmp, "w") : NULL;
    if (!f) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: %s", c->dir, strerror(errno));
    } else {
        fprintf(f, "{\"version\":%d,\"fingerprint\":\"%s\",\"batch_ms\":%" PRId64 "}\n",
                CKPT_VERSION, fingerprint, batch_ms);
        int bad = fflush(f) != 0 || io_fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0 || io_fsync_dir_of(path) != 0)
            rc = diag_set(d, SP_EIO, "checkpoint %s: %s", path, strerror(errno));
    }
    mem_free(c->a, tmp);
out:
    mem_free(c->a, path);
    return rc;
}

static int ckpt_mkdir_p(char *dir)
{
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            int bad = mkdir(dir, 0777) != 0 && errno != EEXIST;
            *p = '/';
            if (bad) return -1;
        }
    return mkdir(dir, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int ckpt_open_mode(const sp_allocator *a, const char *dir, const char *fingerprint,
                          int64_t batch_ms, FILE *log, int readonly, ckpt **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, dir && *dir && fingerprint, SP_EINVAL, "checkpoint: no directory");
    ckpt *c = mem_calloc(a, 1, sizeof *c);
    if (!c) return diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", dir);
    c->a = a;
    c->log = log ? log : stderr;
    c->offsets_fd = c->commits_fd = -1;
    c->readonly = readonly;
    sb_init(&c->sb, a);
    sb_init(&c->pending, a);
    int rc = SP_OK;
    if (!(c->dir = mem_strdup(a, dir))) {
        rc = diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", dir);
        goto fail;
    }
    size_t dl = strlen(c->dir);
    while (dl > 1 && c->dir[dl - 1] == '/')
        c->dir[--dl] = '\0';
    if (!readonly && ckpt_mkdir_p(c->dir) != 0) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((!readonly && (rc = ckpt_meta(c, fingerprint, batch_ms, d))) ||
        (rc = ckpt_read_log(c, "offsets", ckpt_take_offsets, &c->offsets_fd, d)) ||
        (rc = ckpt_read_log(c, "commits", ckpt_take_commit, &c->commits_fd, d)))
        goto fail;
    if (c->committed > (int64_t)c->noffs) {
        rc = diag_set(d, SP_EIO,
                      "checkpoint %s: batch %" PRId64 " is committed but its offsets are not "
                      "logged",
                      dir, c->committed);
        goto fail;
    }
    if (c->committed && c->offs[c->committed - 1].time != c->committed_time) {
        rc = diag_set(d, SP_EIO, "checkpoint %s: batch %" PRId64 " has two times", dir,
                      c->committed);
        goto fail;
    }
    *out = c;
    return SP_OK;
fail:
    ckpt_close(c);
    return rc;
}

int ckpt_open(const sp_allocator *a, const char *dir, const char *fingerprint, int64_t batch_ms,
              FILE *log, ckpt **out, sp_diag *d)
{
    return ckpt_open_mode(a, dir, fingerprint, batch_ms, log, 0, out, d);
}

void ckpt_close(ckpt *c)
{
    if (!c) return;
    if (c->offsets_fd >= 0) close(c->offsets_fd);
    if (c->commits_fd >= 0) close(c->commits_fd);
    for (size_t i = 0; i < c->noffs; i++)
        mem_free(c->a, c->offs[i].text);
    mem_free(c->a, c->offs);
    mem_free(c->a, c->sinks);
    mem_free(c->a, c->pending_sinks);
    mem_free(c->a, c->dir);
    sb_free(&c->sb);
    sb_free(&c->pending);
    mem_free(c->a, c);
}

int64_t ckpt_committed(const ckpt *c)
{
    return c ? c->committed : 0;
}

const uint64_t *ckpt_sink_positions(const ckpt *c, int *n)
{
    *n = c && c->committed ? c->nsinks : 0;
    return *n ? c->sinks : NULL;
}

const char *ckpt_offsets(const ckpt *c, int64_t k, int64_t *time)
{
    if (!c || k < 1 || k > (int64_t)c->noffs) return NULL;
    if (time) *time = c->offs[k - 1].time;
    return c->offs[k - 1].text;
}

/* Writes the record lines in sb to fd, fsynced when sync is set. */
static int ckpt_write(ckpt *c, int fd, const char *name, strbuf *sb, int sync, sp_diag *d)
{
    if (sb->oom) return diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", c->dir);
    const char *p = sb->s;
    size_t left = sb->len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return diag_set(d, SP_EIO, "checkpoint %s/%s: %s", c->dir, name,
                            w < 0 ? strerror(errno) : "short write");
        p += w;
        left -= (size_t)w;
    }
    if (sync && io_fsync(fd) != 0)
        return diag_set(d, SP_EIO, "checkpoint %s/%s: fsync: %s", c->dir, name, strerror(errno));
    return SP_OK;
}

static int ckpt_append(ckpt *c, int fd, const char *name, const char *json, int sync, sp_diag *d)
{
    sb_reset(&c->sb);
    ckpt_record(&c->sb, json);
    return ckpt_write(c, fd, name, &c->sb, sync, d);
}

int ckpt_log_offsets(ckpt *c, int64_t k, int64_t t, const char *sources, sp_diag *d)
{
    if (k <= (int64_t)c->noffs) {
        /* logged by an earlier run and replayed now: it must be the same batch */
        const ckpt_off *o = &c->offs[k - 1];
        if (o->time != t || strcmp(o->text, sources))
            return diag_set(d, SP_ESTATE,
                            "checkpoint %s: batch %" PRId64 " differs from the one logged (time "
                            "%" PRId64 ", sources %s; now time %" PRId64 ", sources %s): the "
                            "input changed since the checkpoint was written",
                            c->dir, k, o->time, o->text, t, sources);
        return SP_OK;
    }
    SP_CHECK(d, k == (int64_t)c->noffs + 1, SP_EINVAL,
             "ckpt_log_offsets: batch %" PRId64 " after %zu", k, c->noffs);
    json_t *s = json_string(sources);
    char *st = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    strbuf j;
    sb_init(&j, c->a);
    sb_printf(&j, "{\"batch\":%" PRId64 ",\"time\":%" PRId64 ",\"sources\":%s}", k, t,
              st ? st : "\"\"");
    free(st);
    int rc = j.oom || !st ? diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", c->dir)
                          : ckpt_append(c, c->offsets_fd, "offsets", sb_cstr(&j), 0, d);
    sb_free(&j);
    if (rc) return rc;
    json_t *rec =
        json_pack("{sIsIss}", "batch", (json_int_t)k, "time", (json_int_t)t, "sources", sources);
    rc = rec ? ckpt_take_offsets(c, rec, d) : diag_set(d, SP_ENOMEM, "out of memory");
    json_decref(rec);
    return rc;
}

int ckpt_log_commit(ckpt *c, int64_t k, int64_t t, const uint64_t *sinks, int n, sp_diag *d)
{
    int64_t last = c->pending_k ? c->pending_k : c->committed;
    if (k <= last) return SP_OK; /* replayed: committed before */
    SP_CHECK(d, k == last + 1 && k <= (int64_t)c->noffs, SP_EINVAL,
             "ckpt_log_commit: batch %" PRId64 " (committed %" PRId64 ")", k, last);
    strbuf j;
    sb_init(&j, c->a);
    sb_printf(&j, "{\"batch\":%" PRId64 ",\"time\":%" PRId64 ",\"sinks\":[", k, t);
    for (int i = 0; i < n; i++)
        sb_printf(&j, "%s%" PRIu64, i ? "," : "", sinks[i]);
    sb_adds(&j, "]}");
    if (!j.oom) ckpt_record(&c->pending, sb_cstr(&j));
    int oom = j.oom || c->pending.oom;
    sb_free(&j);
    uint64_t *v = oom ? NULL : mem_realloc(c->a, c->pending_sinks, (n ? (size_t)n : 1) * sizeof *v);
    if (!v) return diag_set(d, SP_ENOMEM, "checkpoint %s: out of memory", c->dir);
    if (n) memcpy(v, sinks, (size_t)n * sizeof *v);
    c->pending_sinks = v;
    c->pending_n = n;
    c->pending_k = k;
    c->pending_t = t;
    return SP_OK;
}

int ckpt_sync(ckpt *c, sp_diag *d)
{
    if (!c || !c->pending_k) return SP_OK;
    /* the offsets first: a durable commit never names a batch whose offsets are not */
    if (io_fsync(c->offsets_fd) != 0)
        return diag_set(d, SP_EIO, "checkpoint %s/offsets: fsync: %s", c->dir, strerror(errno));
    int rc = ckpt_write(c, c->commits_fd, "commits", &c->pending, 1, d);
    if (rc) return rc;
    sb_reset(&c->pending);
    mem_free(c->a, c->sinks);
    c->sinks = c->pending_sinks;
    c->nsinks = c->pending_n;
    c->pending_sinks = NULL;
    c->committed = c->pending_k;
    c->committed_time = c->pending_t;
    c->pending_k = 0;
    return SP_OK;
}

int sp_checkpoint_describe(const char *dir, FILE *f, FILE *log)
{
    if (!dir || !f) return SP_EINVAL;
    sp_diag d;
    diag_clear(&d);
    int rc = ckpt_describe(dir, f, &d);
    if (rc) fprintf(log ? log : stderr, "spate: %s\n", d.msg);
    return rc;
}

int ckpt_describe(const char *dir, FILE *f, sp_diag *d)
{
    sp_allocator a = {NULL, NULL};
    char path[4096];
    snprintf(path, sizeof path, "%s/meta", dir);
    json_error_t err;
    json_t *m = json_load_file(path, 0, &err);
    if (!m) return diag_set(d, SP_ENOENT, "checkpoint %s: no checkpoint here (%s)", dir, err.text);
    json_t *fp = json_object_get(m, "fingerprint"), *bm = json_object_get(m, "batch_ms");
    char fps[256];
    snprintf(fps, sizeof fps, "%s", json_is_string(fp) ? json_string_value(fp) : "?");
    int64_t batch_ms = json_is_integer(bm) ? json_integer_value(bm) : 0;
    json_decref(m);
    ckpt *c = NULL;
    int rc = ckpt_open_mode(&a, dir, fps, batch_ms, stderr, 1, &c, d);
    if (rc) return rc;
    fprintf(f, "checkpoint %s\n", dir);
    fprintf(f, "  job fingerprint:  %s\n", fps);
    fprintf(f, "  batch interval:   %" PRId64 " ms\n", batch_ms);
    fprintf(f, "  batches logged:   %zu\n", c->noffs);
    fprintf(f, "  batches committed: %" PRId64 "\n", c->committed);
    if (c->committed) {
        fprintf(f, "  last commit:      batch %" PRId64 " at time %" PRId64 " ms\n", c->committed,
                c->committed_time);
        fprintf(f, "  sources after it: %s\n", c->offs[c->committed - 1].text);
        fprintf(f, "  outputs' committed positions:");
        for (int i = 0; i < c->nsinks; i++)
            fprintf(f, " %" PRIu64, c->sinks[i]);
        fputc('\n', f);
    }
    if ((int64_t)c->noffs > c->committed)
        fprintf(f,
                "  in flight:        batch %zu at time %" PRId64
                " ms (logged, not committed: it runs again on restart)\n",
                c->noffs, c->offs[c->noffs - 1].time);
    fprintf(f, "  state snapshots:  none (a restart replays the input from the start)\n");
    ckpt_close(c);
    return SP_OK;
}
