/* sinks.c — output operations: print (Spark's DStream.print format), saveAsTextFiles
 * (directory per batch, written under a hidden name and renamed into place), CSV and JSON
 * lines files (one file for the run, appended batch by batch), foreachRDD. */
#include "io/io_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Output is built in a strbuf and written when it passes this many bytes. */
#define SINK_FLUSH ((size_t)1 << 20)

static int sink_alloc(const sp_allocator *a, const sink_vt *vt, size_t impl_size, sp_sink **out,
                      sp_diag *d)
{
    *out = NULL;
    sp_sink *k = mem_calloc(a, 1, sizeof *k);
    void *impl = mem_calloc(a, 1, impl_size);
    if (!k || !impl) {
        mem_free(a, k);
        mem_free(a, impl);
        diag_set(d, SP_ENOMEM, "%s: out of memory", vt->kind);
        return SP_ENOMEM;
    }
    k->vt = vt;
    k->alloc = a;
    k->impl = impl;
    *out = k;
    return 0;
}

void sink_free(sp_sink *k)
{
    if (!k) return;
    k->vt->destroy(k);
    mem_free(k->alloc, k->impl);
    mem_free(k->alloc, k);
}

static int sink_close_nothing(sp_sink *k, sp_diag *d)
{
    return 0;
}

/* Writes sb to f and empties it. */
static int sink_drain(strbuf *sb, FILE *f, const char *kind, const char *path, sp_diag *d)
{
    if (sb->oom) return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
    if (sb->len && fwrite(sb->s, 1, sb->len, f) != sb->len)
        return diag_set(d, SP_EIO, "%s %s: %s", kind, path, strerror(errno));
    sb_reset(sb);
    return 0;
}

int io_fsync(int fd)
{
    return getenv("SPATE_CHECKPOINT_NO_FSYNC") ? 0 : fsync(fd);
}

/* The directory part of path ("." when it has none). */
static void io_dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else
        snprintf(dir, size, "%.*s", (int)(slash == path ? 1 : slash - path), path);
}

/* fsync or syncfs of the directory holding path. */
static int io_sync_dir(const char *path, int whole_fs)
{
    if (getenv("SPATE_CHECKPOINT_NO_FSYNC")) return 0;
    char dir[4096];
    io_dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = whole_fs ? syncfs(fd) : fsync(fd);
    close(fd);
    return rc;
}

int io_fsync_dir_of(const char *path)
{
    return io_sync_dir(path, 0);
}

int io_syncfs_of(const char *path)
{
    return io_sync_dir(path, 1);
}

/* ---------------------------------------------------------------------------------- print */

typedef struct print_sink {
    FILE *f;
    int n;
    strbuf sb;
} print_sink;

static const char print_rule[] = "-------------------------------------------\n";

static int print_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    print_sink *p = k->impl;
    strbuf *sb = &p->sb;
    int rc;
    sb_reset(sb);
    sb_adds(sb, print_rule);
    sb_printf(sb, "Time: %" PRId64 " ms\n", b->time_ms);
    sb_adds(sb, print_rule);
    size_t m = b->n < (size_t)p->n ? b->n : (size_t)p->n;
    for (size_t i = 0; i < m; i++) {
        if ((rc = batch_format_row(b, i, sb)))
            return diag_set(d, rc, "print: formatting element %zu of batch %" PRId64, i,
                            b->time_ms);
        sb_addc(sb, '\n');
        if (sb->len >= SINK_FLUSH && (rc = sink_drain(sb, p->f, "print", "output", d))) return rc;
    }
    if (b->n > m) sb_adds(sb, "...\n");
    sb_addc(sb, '\n');
    if ((rc = sink_drain(sb, p->f, "print", "output", d))) return rc;
    if (fflush(p->f) != 0) return diag_set(d, SP_EIO, "print: %s", strerror(errno));
    return 0;
}

static void print_destroy(sp_sink *k)
{
    print_sink *p = k->impl;
    sb_free(&p->sb);
}

/* stdout cannot be taken back: a batch cut short by a crash is printed again on restart */
static const sink_vt print_vt = {"print", print_write, sink_close_nothing, print_destroy,
                                 NULL,    NULL,        0};

int sink_print_new(const sp_allocator *a, FILE *f, int n, sp_sink **out, sp_diag *d)
{
    SP_CHECK(d, f, SP_EINVAL, "print: no output file");
    SP_CHECK(d, n >= 0, SP_EINVAL, "print(%d): the count must not be negative", n);
    int rc = sink_alloc(a, &print_vt, sizeof(print_sink), out, d);
    if (rc) return rc;
    print_sink *p = (*out)->impl;
    p->f = f;
    p->n = n;
    sb_init(&p->sb, a);
    return 0;
}

/* ------------------------------------------------------------------------ saveAsTextFiles */

typedef struct text_sink {
    char *prefix;
    char *suffix; /* NULL or "" : no suffix */
    strbuf sb, target, tmp, old, part;
    int dirty; /* checkpointed: directories written since the last sync point */
    int swept; /* stale siblings of killed runs removed (text_sweep, at the first write) */
} text_sink;

static int text_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* rm -r path; a missing path is not an error. */
static int text_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, text_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p of the directory part of path (up to its last '/'). */
static int text_mkdir_parents(char *path)
{
    char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    *slash = '\0';
    int rc = 0;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        rc = errno == ENOENT ? text_mkdir_parents(path) : -1;
        if (rc == 0 && mkdir(path, 0777) != 0 && errno != EEXIST) rc = -1;
    }
    *slash = '/';
    return rc;
}

/* dir/.base<mid>-PID: a hidden sibling of the target (Spark readers skip '.' names). */
static void text_sibling(strbuf *out, const char *target, const char *mid)
{
    const char *slash = strrchr(target, '/');
    size_t dl = slash ? (size_t)(slash - target) + 1 : 0;
    sb_reset(out);
    sb_add(out, target, dl);
    sb_printf(out, ".%s%s-%ld", target + dl, mid, (long)getpid());
}

/* Stale siblings. A run killed while writing leaves dir/.base-T[.suffix].tmp-PID (a partial
 * output) and, between its two renames, dir/.base-T[.suffix].old-PID (the previous output of
 * T, moved aside). At the first write, siblings of this prefix and suffix whose PID is no live
 * process (kill(PID, 0) fails with ESRCH) are cleaned up: a .tmp is removed; an .old is moved
 * back when the target is missing (the killed run took it away), else removed. Siblings of
 * live processes, other prefixes and other suffixes are left alone. Best effort: what cannot
 * be listed or removed stays. Cost: one listing of the prefix's directory, once per run. */

/* The PID of a stale-sibling candidate `name` of base/suffix, or -1; *old says which kind,
 * *tlen is the length of the target's name inside it (after the leading '.'). */
static long text_sibling_pid(const char *name, const char *base, const char *suffix, int *old,
                             size_t *tlen)
{
    size_t bl = strlen(base);
    if (name[0] != '.' || strncmp(name + 1, base, bl) != 0 || name[1 + bl] != '-') return -1;
    const char *p = name + 2 + bl;
    if (*p == '-') p++; /* a batch time before 1970 */
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9')
        p++;
    if (suffix && *suffix) {
        size_t sl = strlen(suffix);
        if (*p != '.' || strncmp(p + 1, suffix, sl) != 0) return -1;
        p += 1 + sl;
    }
    if (strncmp(p, ".tmp-", 5) == 0)
        *old = 0;
    else if (strncmp(p, ".old-", 5) == 0)
        *old = 1;
    else
        return -1;
    *tlen = (size_t)(p - (name + 1));
    p += 5;
    if (*p < '1' || *p > '9') return -1;
    char *end;
    errno = 0;
    long pid = strtol(p, &end, 10);
    return *end || errno || pid > INT_MAX ? -1 : pid;
}

static void text_sweep(sp_sink *k)
{
    text_sink *t = k->impl;
    const char *slash = strrchr(t->prefix, '/');
    strbuf dir, path, target;
    sb_init(&dir, k->alloc);
    sb_init(&path, k->alloc);
    sb_init(&target, k->alloc);
    if (slash)
        sb_add(&dir, t->prefix, (size_t)(slash - t->prefix) + 1);
    else
        sb_add(&dir, "./", 2);
    const char *base = slash ? slash + 1 : t->prefix;
    DIR *dp = dir.oom ? NULL : opendir(sb_cstr(&dir));
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        int old;
        size_t tlen;
        long pid = text_sibling_pid(e->d_name, base, t->suffix, &old, &tlen);
        if (pid < 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        sb_reset(&path);
        sb_printf(&path, "%s%s", sb_cstr(&dir), e->d_name);
        sb_reset(&target);
        sb_printf(&target, "%s%.*s", sb_cstr(&dir), (int)tlen, e->d_name + 1);
        if (path.oom || target.oom) break;
        struct stat st;
        if (old && lstat(sb_cstr(&target), &st) != 0 && errno == ENOENT &&
            rename(sb_cstr(&path), sb_cstr(&target)) == 0)
            continue;
        text_rm_tree(sb_cstr(&path));
    }
    if (dp) closedir(dp);
    sb_free(&dir);
    sb_free(&path);
    sb_free(&target);
}

static int text_part(text_sink *t, const sp_batch *b, unsigned part, size_t lo, size_t hi,
                     sp_diag *d)
{
    sb_reset(&t->part);
    sb_printf(&t->part, "%s/part-%05u", sb_cstr(&t->tmp), part);
    if (t->part.oom) return diag_set(d, SP_ENOMEM, "saveAsTextFiles: out of memory");
    const char *path = sb_cstr(&t->part);
    FILE *f = fopen(path, "wb");
    if (!f) return diag_set(d, SP_EIO, "saveAsTextFiles %s: %s", path, strerror(errno));
    int rc = 0;
    sb_reset(&t->sb);
    for (size_t i = lo; i < hi && !rc; i++) {
        if ((rc = batch_format_row(b, i, &t->sb))) {
            rc = diag_set(d, rc, "saveAsTextFiles %s: formatting element %zu", path, i);
            break;
        }
        sb_addc(&t->sb, '\n');
        if (t->sb.len >= SINK_FLUSH) rc = sink_drain(&t->sb, f, "saveAsTextFiles", path, d);
    }
    if (!rc) rc = sink_drain(&t->sb, f, "saveAsTextFiles", path, d);
    if (fclose(f) != 0 && !rc)
        rc = diag_set(d, SP_EIO, "saveAsTextFiles %s: %s", path, strerror(errno));
    return rc;
}

/* Writes everything under the temporary name, then renames it into place; a directory of
 * the same batch time from an earlier run is moved aside first and removed after, so the
 * target is never half-written (it may be missing for the instant between the renames). */
static int text_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    text_sink *t = k->impl;
    int rc = 0;
    if (!t->swept) {
        text_sweep(k);
        t->swept = 1;
    }
    sb_reset(&t->target);
    sb_printf(&t->target, "%s-%" PRId64, t->prefix, b->time_ms);
    if (t->suffix && *t->suffix) sb_printf(&t->target, ".%s", t->suffix);
    text_sibling(&t->tmp, sb_cstr(&t->target), ".tmp");
    text_sibling(&t->old, sb_cstr(&t->target), ".old");
    if (t->target.oom || t->tmp.oom || t->old.oom)
        return diag_set(d, SP_ENOMEM, "saveAsTextFiles: out of memory");
    const char *target = sb_cstr(&t->target), *tmp = sb_cstr(&t->tmp), *old = sb_cstr(&t->old);
    text_rm_tree(tmp); /* left over by a crashed run with our pid */
    if (mkdir(tmp, 0777) != 0 &&
        (errno != ENOENT || text_mkdir_parents(t->tmp.s) != 0 || mkdir(tmp, 0777) != 0))
        return diag_set(d, SP_EIO, "saveAsTextFiles %s: %s", tmp, strerror(errno));
    /* One part file per partition, as Spark writes one per RDD partition. */
    unsigned nparts = b->nparts ? b->nparts : 1;
    for (unsigned p = 0; p < nparts && !rc; p++) {
        size_t lo, hi;
        batch_part_range(b, p, &lo, &hi);
        rc = text_part(t, b, p, lo, hi, d);
    }
    if (rc) goto fail;
    sb_reset(&t->part);
    sb_printf(&t->part, "%s/_SUCCESS", tmp);
    FILE *f = t->part.oom ? NULL : fopen(sb_cstr(&t->part), "wb");
    if (!f || fclose(f) != 0) {
        rc = diag_set(d, SP_EIO, "saveAsTextFiles %s/_SUCCESS: %s", tmp, strerror(errno));
        goto fail;
    }

    int replaced = 0;
    if (rename(target, old) == 0)
        replaced = 1;
    else if (errno != ENOENT) {
        rc = diag_set(d, SP_EIO, "saveAsTextFiles %s: cannot move the old output aside: %s", target,
                      strerror(errno));
        goto fail;
    }
    if (rename(tmp, target) != 0) {
        rc = diag_set(d, SP_EIO, "saveAsTextFiles %s: %s", target, strerror(errno));
        if (replaced) rename(old, target);
        goto fail;
    }
    if (replaced) text_rm_tree(old);
    t->dirty = 1;
    return 0;
fail:
    text_rm_tree(tmp);
    return rc;
}

static void text_destroy(sp_sink *k)
{
    text_sink *t = k->impl;
    sb_free(&t->sb);
    sb_free(&t->target);
    sb_free(&t->tmp);
    sb_free(&t->old);
    sb_free(&t->part);
    mem_free(k->alloc, t->prefix);
    mem_free(k->alloc, t->suffix);
}

/* At a sync point: every batch directory written since the last one, files and renames,
 * reaches the disk (one syncfs of the file system that holds them). Each batch's directory
 * is replaced whole, so there is no position to commit. */
static int text_commit(sp_sink *k, int sync, uint64_t *pos, sp_diag *d)
{
    text_sink *t = k->impl;
    *pos = 0;
    if (!sync || !t->dirty) return 0;
    if (io_syncfs_of(t->prefix) != 0)
        return diag_set(d, SP_EIO, "saveAsTextFiles %s: syncfs: %s", t->prefix, strerror(errno));
    t->dirty = 0;
    return 0;
}

static const sink_vt text_vt = {"saveAsTextFiles", text_write, sink_close_nothing, text_destroy,
                                NULL,              text_commit, 0};

int sink_text_files_new(const sp_allocator *a, const char *prefix, const char *suffix,
                        sp_sink **out, sp_diag *d)
{
    SP_CHECK(d, prefix && *prefix, SP_EINVAL, "saveAsTextFiles: no prefix");
    int rc = sink_alloc(a, &text_vt, sizeof(text_sink), out, d);
    if (rc) return rc;
    text_sink *t = (*out)->impl;
    sb_init(&t->sb, a);
    sb_init(&t->target, a);
    sb_init(&t->tmp, a);
    sb_init(&t->old, a);
    sb_init(&t->part, a);
    if (!(t->prefix = mem_strdup(a, prefix)) || (suffix && !(t->suffix = mem_strdup(a, suffix)))) {
        sink_free(*out);
        *out = NULL;
        return diag_set(d, SP_ENOMEM, "saveAsTextFiles %s: out of memory", prefix);
    }
    return 0;
}

/* ------------------------------------------------------------------------ csv and jsonl */

typedef struct file_sink {
    char *path;
    FILE *f;
    strbuf sb, tmp;
    int header_done;
} file_sink;

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they
 * are (strings are UTF-8). */
static void json_str(strbuf *sb, const char *s, size_t len)
{
    sb_addc(sb, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        sb_add(sb, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"':
            sb_adds(sb, "\\\"");
            break;
        case '\\':
            sb_adds(sb, "\\\\");
            break;
        case '\n':
            sb_adds(sb, "\\n");
            break;
        case '\r':
            sb_adds(sb, "\\r");
            break;
        case '\t':
            sb_adds(sb, "\\t");
            break;
        case '\b':
            sb_adds(sb, "\\b");
            break;
        case '\f':
            sb_adds(sb, "\\f");
            break;
        default:
            sb_printf(sb, "\\u%04x", ch);
        }
    }
    sb_add(sb, s + run, len - run);
    sb_addc(sb, '"');
}

/* A number leaf as text: integers in decimal, floats as Java prints them (1.0, 1.0E7). */
static void sink_number(strbuf *sb, const sp_col *c, size_t i, int json)
{
    if (c->type == SP_F64 || c->type == SP_F32) {
        double v =
            c->type == SP_F64 ? ((const double *)c->data)[i] : (double)((const float *)c->data)[i];
        if (json && !isfinite(v))
            sb_adds(sb, "null"); /* JSON has no NaN or Infinity */
        else if (c->type == SP_F64)
            format_java_double(v, sb);
        else
            format_java_float((float)v, sb);
    } else if (c->type == SP_BOOL) {
        sb_adds(sb, col_get_i64(c, i) ? "true" : "false");
    } else {
        sb_printf(sb, "%" PRId64, col_get_i64(c, i));
    }
}

/* Element i of node t as JSON: tuples and lists as arrays, Some(x) as x, None as null. */
static void json_value(const sp_batch *b, const sp_td *t, size_t i, strbuf *sb)
{
    const sp_col *c = &b->cols[t->col];
    switch (t->kind) {
    case TD_LEAF:
        if (t->leaf == SP_STR) {
            size_t len = 0;
            const char *s = col_get_str(c, b->env->dict, i, &len);
            json_str(sb, s ? s : "", s ? len : 0);
        } else {
            sink_number(sb, c, i, 1);
        }
        break;
    case TD_TUPLE:
        sb_addc(sb, '[');
        for (int k = 0; k < t->n; k++) {
            if (k) sb_addc(sb, ',');
            json_value(b, t->child[k], i, sb);
        }
        sb_addc(sb, ']');
        break;
    case TD_OPTION:
        if (col_get_i64(c, i))
            json_value(b, t->child[0], i, sb);
        else
            sb_adds(sb, "null");
        break;
    case TD_LIST: {
        int64_t lo = col_get_i64(c, i), hi = col_get_i64(c, i + 1);
        sb_addc(sb, '[');
        for (int64_t k = lo; k < hi; k++) {
            if (k > lo) sb_addc(sb, ',');
            json_value(b, t->child[0], (size_t)k, sb);
        }
        sb_addc(sb, ']');
        break;
    }
    }
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, or is empty (so
 * that an empty string differs from a None, which is an empty field). */
static void csv_field(strbuf *sb, const char *s, size_t len)
{
    int quote = len == 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        sb_add(sb, s, len);
        return;
    }
    sb_addc(sb, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '"') {
            sb_add(sb, s + run, i + 1 - run);
            sb_addc(sb, '"');
            run = i + 1;
        }
    sb_add(sb, s + run, len - run);
    sb_addc(sb, '"');
}

/* Fields of node t: a leaf is one, a tuple its children's, an option its child's, a list
 * one (the list as JSON). */
static int csv_nfields(const sp_td *t)
{
    switch (t->kind) {
    case TD_TUPLE: {
        int n = 0;
        for (int k = 0; k < t->n; k++)
            n += csv_nfields(t->child[k]);
        return n;
    }
    case TD_OPTION:
        return csv_nfields(t->child[0]);
    default:
        return 1;
    }
}

/* Header names: "value" for a scalar element, else Scala's accessor paths _1, _2._1, ... */
static void csv_names(const sp_td *t, strbuf *path, strbuf *sb)
{
    size_t mark = path->len;
    switch (t->kind) {
    case TD_TUPLE:
        for (int k = 0; k < t->n; k++) {
            if (path->len) sb_addc(path, '.');
            sb_printf(path, "_%d", k + 1);
            csv_names(t->child[k], path, sb);
            path->len = mark;
        }
        break;
    case TD_OPTION:
        csv_names(t->child[0], path, sb);
        break;
    default:
        sb_addc(sb, ',');
        if (path->len)
            sb_add(sb, path->s, path->len);
        else
            sb_adds(sb, "value");
    }
}

/* Appends ",field" for each field of element i of node t. */
static void csv_fields(const sp_batch *b, const sp_td *t, size_t i, strbuf *sb, strbuf *tmp)
{
    const sp_col *c = &b->cols[t->col];
    switch (t->kind) {
    case TD_LEAF:
        sb_addc(sb, ',');
        if (t->leaf == SP_STR) {
            size_t len = 0;
            const char *s = col_get_str(c, b->env->dict, i, &len);
            csv_field(sb, s ? s : "", s ? len : 0);
        } else {
            sink_number(sb, c, i, 0);
        }
        break;
    case TD_TUPLE:
        for (int k = 0; k < t->n; k++)
            csv_fields(b, t->child[k], i, sb, tmp);
        break;
    case TD_OPTION:
        if (col_get_i64(c, i))
            csv_fields(b, t->child[0], i, sb, tmp);
        else
            for (int k = csv_nfields(t->child[0]); k > 0; k--)
                sb_addc(sb, ',');
        break;
    case TD_LIST:
        sb_addc(sb, ',');
        sb_reset(tmp);
        json_value(b, t, i, tmp);
        csv_field(sb, tmp->s ? tmp->s : "", tmp->len);
        break;
    }
}

static int file_flush(file_sink *fs, const char *kind, sp_diag *d)
{
    int rc = sink_drain(&fs->sb, fs->f, kind, fs->path, d);
    if (!rc && fs->tmp.oom) rc = diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, fs->path);
    if (!rc && fflush(fs->f) != 0)
        rc = diag_set(d, SP_EIO, "%s %s: %s", kind, fs->path, strerror(errno));
    return rc;
}

static int csv_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    file_sink *fs = k->impl;
    int rc;
    SP_CHECK(d, fs->f, SP_ESTATE, "saveCsv %s: closed", fs->path);
    sb_reset(&fs->sb);
    if (!fs->header_done) {
        sb_adds(&fs->sb, "time_ms");
        sb_reset(&fs->tmp);
        csv_names(b->td, &fs->tmp, &fs->sb);
        sb_addc(&fs->sb, '\n');
        fs->header_done = 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        sb_printf(&fs->sb, "%" PRId64, b->time_ms);
        csv_fields(b, b->td, i, &fs->sb, &fs->tmp);
        sb_addc(&fs->sb, '\n');
        if (fs->sb.len >= SINK_FLUSH && (rc = sink_drain(&fs->sb, fs->f, "saveCsv", fs->path, d)))
            return rc;
    }
    return file_flush(fs, "saveCsv", d);
}

static int jsonl_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    file_sink *fs = k->impl;
    int rc;
    SP_CHECK(d, fs->f, SP_ESTATE, "saveJsonl %s: closed", fs->path);
    sb_reset(&fs->sb);
    for (size_t i = 0; i < b->n; i++) {
        sb_printf(&fs->sb, "{\"time\":%" PRId64 ",\"value\":", b->time_ms);
        json_value(b, b->td, i, &fs->sb);
        sb_adds(&fs->sb, "}\n");
        if (fs->sb.len >= SINK_FLUSH && (rc = sink_drain(&fs->sb, fs->f, "saveJsonl", fs->path, d)))
            return rc;
    }
    return file_flush(fs, "saveJsonl", d);
}

static int file_close(sp_sink *k, sp_diag *d)
{
    file_sink *fs = k->impl;
    if (!fs->f) return 0;
    int bad = fclose(fs->f) != 0;
    fs->f = NULL;
    if (bad) return diag_set(d, SP_EIO, "%s %s: %s", k->vt->kind, fs->path, strerror(errno));
    return 0;
}

static void file_destroy(sp_sink *k)
{
    file_sink *fs = k->impl;
    file_close(k, NULL);
    sb_free(&fs->sb);
    sb_free(&fs->tmp);
    mem_free(k->alloc, fs->path);
}

/* Cuts the file back to its committed size; the CSV header counts as written when anything
 * was committed. */
static int file_resume(sp_sink *k, uint64_t pos, sp_diag *d)
{
    file_sink *fs = k->impl;
    SP_CHECK(d, fs->f, SP_ESTATE, "%s %s: closed", k->vt->kind, fs->path);
    struct stat st;
    if (fflush(fs->f) != 0 || fstat(fileno(fs->f), &st) != 0)
        return diag_set(d, SP_EIO, "%s %s: %s", k->vt->kind, fs->path, strerror(errno));
    if ((uint64_t)st.st_size < pos)
        return diag_set(d, SP_ESTATE,
                        "%s %s: %lld bytes, but the checkpoint committed %llu: the file was "
                        "changed or replaced since",
                        k->vt->kind, fs->path, (long long)st.st_size, (unsigned long long)pos);
    if (ftruncate(fileno(fs->f), (off_t)pos) != 0 || io_fsync(fileno(fs->f)) != 0)
        return diag_set(d, SP_EIO, "%s %s: %s", k->vt->kind, fs->path, strerror(errno));
    fs->header_done = pos > 0;
    return 0;
}

static int file_commit(sp_sink *k, int sync, uint64_t *pos, sp_diag *d)
{
    file_sink *fs = k->impl;
    struct stat st;
    if (!fs->f || fflush(fs->f) != 0 || (sync && io_fsync(fileno(fs->f)) != 0) ||
        fstat(fileno(fs->f), &st) != 0)
        return diag_set(d, SP_EIO, "%s %s: %s", k->vt->kind, fs->path,
                        fs->f ? strerror(errno) : "closed");
    *pos = (uint64_t)st.st_size;
    return 0;
}

static const sink_vt csv_vt = {"saveCsv",   csv_write,   file_close, file_destroy,
                               file_resume, file_commit, 0};
static const sink_vt jsonl_vt = {"saveJsonl", jsonl_write, file_close, file_destroy,
                                 file_resume, file_commit, 0};

/* Truncates path now, so that a bad path fails when the job is built. */
static int file_sink_new(const sp_allocator *a, const sink_vt *vt, const char *path, int keep,
                         sp_sink **out, sp_diag *d)
{
    SP_CHECK(d, path && *path, SP_EINVAL, "%s: no path", vt->kind);
    int rc = sink_alloc(a, vt, sizeof(file_sink), out, d);
    if (rc) return rc;
    file_sink *fs = (*out)->impl;
    sb_init(&fs->sb, a);
    sb_init(&fs->tmp, a);
    if (!(fs->path = mem_strdup(a, path))) {
        rc = diag_set(d, SP_ENOMEM, "%s %s: out of memory", vt->kind, path);
        goto fail;
    }
    if (!(fs->f = fopen(path, keep ? "ab" : "wb"))) {
        rc = diag_set(d, errno == ENOENT ? SP_ENOENT : SP_EIO, "%s %s: %s", vt->kind, path,
                      strerror(errno));
        goto fail;
    }
    return 0;
fail:
    sink_free(*out);
    *out = NULL;
    return rc;
}

int sink_csv_new(const sp_allocator *a, const char *path, int keep, sp_sink **out, sp_diag *d)
{
    return file_sink_new(a, &csv_vt, path, keep, out, d);
}

int sink_jsonl_new(const sp_allocator *a, const char *path, int keep, sp_sink **out, sp_diag *d)
{
    return file_sink_new(a, &jsonl_vt, path, keep, out, d);
}

/* -------------------------------------------------------------------------------- foreach */

typedef struct foreach_sink {
    sp_foreach_fn fn;
    void *ud;
} foreach_sink;

static int foreach_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    foreach_sink *f = k->impl;
    int r = f->fn(f->ud, b);
    if (r)
        return diag_set(d, SP_ECALLBACK, "foreachRDD callback returned %d (batch %" PRId64 ")", r,
                        b->time_ms);
    return 0;
}

static void foreach_destroy(sp_sink *k) {}

static const sink_vt foreach_vt = {"foreachRDD",    foreach_write, sink_close_nothing,
                                   foreach_destroy, NULL,          NULL,
                                   0};

int sink_foreach_new(const sp_allocator *a, sp_foreach_fn fn, void *ud, sp_sink **out, sp_diag *d)
{
    SP_CHECK(d, fn, SP_EINVAL, "foreachRDD: no callback");
    int rc = sink_alloc(a, &foreach_vt, sizeof(foreach_sink), out, d);
    if (rc) return rc;
    foreach_sink *f = (*out)->impl;
    f->fn = fn;
    f->ud = ud;
    return 0;
}
