/* textfile.c — textFile (replays the lines of a file or of a glob's files, decompressing
 * .gz/.zst) and textFileStream (watches a directory and reads each new file once). Both yield
 * raw-text str columns (ENC_RAW) and keep the origin (file, line) of each batch's rows. */
#include "io/lines_int.h"
#include "io/source_int.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------- textFile */

/* A path with glob characters (*, ?, [) names every matching file, read in strcmp order of
 * their names (a rotated set access.log.* gives access.log.1, access.log.2.gz, ...), one after
 * another as if concatenated; each is decompressed as lines_open detects. */
typedef struct textfile {
    char *path;
    size_t batch_lines; /* 0: every file whole in the first batch */
    char **files;       /* the files to read, in order (one: the path itself) */
    size_t nfiles, cur; /* cur: the file being read */
    lines_reader rd;
    lines_origin origin;
    int at_end;
} textfile;

static int textfile_has_glob(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

static int textfile_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void textfile_files_free(sp_source *s)
{
    textfile *tf = s->impl;
    for (size_t i = 0; i < tf->nfiles; i++)
        mem_free(s->env->alloc, tf->files[i]);
    mem_free(s->env->alloc, tf->files);
    tf->files = NULL;
    tf->nfiles = tf->cur = 0;
}

/* Expands the path into the file list. Cost: one glob(3) at start. */
static int textfile_expand(sp_source *s, sp_diag *d)
{
    textfile *tf = s->impl;
    const sp_allocator *a = s->env->alloc;
    const char *kind = s->vt->kind;
    textfile_files_free(s);
    if (!textfile_has_glob(tf->path)) {
        tf->files = mem_alloc(a, sizeof *tf->files);
        if (!tf->files || !(tf->files[0] = mem_strdup(a, tf->path))) goto oom;
        tf->nfiles = 1;
        return 0;
    }
    glob_t g;
    int grc = glob(tf->path, GLOB_ERR, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        globfree(&g);
        return diag_set(d, SP_ENOENT, "%s %s: no file matches", kind, tf->path);
    }
    if (grc != 0) {
        globfree(&g);
        return grc == GLOB_NOSPACE ? diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, tf->path)
                                   : diag_set(d, SP_EIO, "%s %s: cannot list", kind, tf->path);
    }
    tf->files = mem_calloc(a, g.gl_pathc ? g.gl_pathc : 1, sizeof *tf->files);
    if (!tf->files) {
        globfree(&g);
        goto oom;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!(tf->files[tf->nfiles] = mem_strdup(a, g.gl_pathv[i]))) {
            globfree(&g);
            goto oom;
        }
        tf->nfiles++;
    }
    globfree(&g);
    if (tf->nfiles == 0) return diag_set(d, SP_ENOENT, "%s %s: no file matches", kind, tf->path);
    qsort(tf->files, tf->nfiles, sizeof *tf->files, textfile_cmp);
    return 0;
oom:
    return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, tf->path);
}

static int textfile_start(sp_source *s, sp_diag *d)
{
    textfile *tf = s->impl;
    tf->at_end = 0;
    lines_set_max(&tf->rd, s->line_max);
    int rc = textfile_expand(s, d);
    if (rc) return rc;
    return lines_open(&tf->rd, s->vt->kind, tf->files[0], d);
}

static int textfile_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    textfile *tf = s->impl;
    const char *kind = s->vt->kind;
    *done = 0;
    SP_CHECK(d, tf->rd.f || tf->rd.dec || tf->at_end, SP_ESTATE, "%s %s: not started", kind,
             tf->path);
    int rc = source_col_raw(&out->cols[0], d);
    if (rc) return rc;
    lines_origin_reset(&tf->origin, t);
    while (!tf->at_end && (!tf->batch_lines || out->n < tf->batch_lines)) {
        const char *path = tf->files[tf->cur];
        uint32_t fid = lines_origin_file(&tf->origin, path);
        if (fid == UINT32_MAX || lines_origin_add(&tf->origin, out->n, tf->rd.line + 1, fid))
            return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, path);
        size_t n = 0;
        int end = 0, over = 0;
        size_t want = tf->batch_lines ? tf->batch_lines - out->n : 0;
        rc = lines_read(&tf->rd, &out->cols[0], want, &n, &end, &over, kind, path, d);
        out->n += n;
        if (rc) return rc;
        /* An overlong line: rejected; the next round starts a new origin run after it. */
        if (over && (rc = source_reject_long(s, path, tf->rd.cut.over.line, tf->rd.cut.over.head,
                                             tf->rd.cut.over.nhead, d)))
            return rc;
        if (!end) continue;
        lines_close(&tf->rd);
        if (++tf->cur == tf->nfiles) {
            tf->at_end = 1;
            break;
        }
        if ((rc = lines_open(&tf->rd, kind, tf->files[tf->cur], d))) return rc;
    }
    *done = tf->at_end;
    return source_seal(out, d);
}

static void textfile_stop(sp_source *s)
{
    textfile *tf = s->impl;
    lines_close(&tf->rd);
}

static void textfile_destroy(sp_source *s)
{
    textfile *tf = s->impl;
    lines_free(&tf->rd);
    lines_origin_free(&tf->origin);
    textfile_files_free(s);
    mem_free(s->env->alloc, tf->path);
    mem_free(s->env->alloc, tf);
}

/* Checkpoints: the file being read and the lines taken from it. */
static void textfile_position(const sp_source *s, strbuf *out)
{
    const textfile *tf = s->impl;
    sb_printf(out, "file %zu of %zu, line %lld", tf->cur + 1, tf->nfiles, (long long)tf->rd.line);
}

static const source_vt textfile_vt = {"textFile",       textfile_start,   textfile_next,
                                      textfile_stop,    textfile_destroy, textfile_position};

static int textfile_str_td(sp_source *s, sp_diag *d)
{
    s->td = td_leaf(s->env->alloc, SP_STR);
    if (!s->td) return diag_set(d, SP_ENOMEM, "%s: out of memory", s->vt->kind);
    td_layout(s->td, 0);
    return 0;
}

int source_text_file_new(batch_env *env, const char *path, size_t batch_lines, sp_source **out,
                         sp_diag *d)
{
    SP_CHECK(d, path, SP_EINVAL, "textFile: no path");
    sp_source *s;
    int rc = source_alloc(env, &textfile_vt, &s, d);
    if (rc) return rc;
    textfile *tf = mem_calloc(env->alloc, 1, sizeof *tf);
    if (!tf) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "textFile %s: out of memory", path);
    }
    s->impl = tf;
    s->manual_clock = 1; /* a replay runs as fast as the pipeline goes: batch k at k x interval */
    lines_init(&tf->rd, env->alloc);
    lines_origin_init(&tf->origin, env->alloc);
    tf->batch_lines = batch_lines;
    if (!(tf->path = mem_strdup(env->alloc, path))) {
        rc = diag_set(d, SP_ENOMEM, "textFile %s: out of memory", path);
        goto fail;
    }
    if ((rc = textfile_str_td(s, d))) goto fail;
    *out = s;
    return 0;
fail:
    source_free(s);
    return rc;
}

/* ------------------------------------------------------------------------- textFileStream */

/* Like Spark's FileInputDStream: a file is picked up in the batch whose listing first shows
 * it, read whole, and never again (by name). Names starting with '.' or '_' are skipped
 * (hidden and temporary files), so writers should create a file under such a name and
 * rename it into place when complete; a file still being written may be read partially. */
typedef struct dirwatch {
    char *dir;
    char **seen; /* sorted names already read */
    size_t nseen, capseen;
    lines_reader rd;
    lines_origin origin;
    strbuf path;
    int started;
} dirwatch;

static int dirwatch_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dirwatch_seen(const dirwatch *w, const char *name)
{
    return w->nseen && bsearch(&name, w->seen, w->nseen, sizeof *w->seen, dirwatch_cmp);
}

static int dirwatch_start(sp_source *s, sp_diag *d)
{
    dirwatch *w = s->impl;
    struct stat st;
    if (stat(w->dir, &st) != 0) return source_errno(d, s->vt->kind, w->dir, errno);
    if (!S_ISDIR(st.st_mode))
        return diag_set(d, SP_EIO, "%s %s: not a directory", s->vt->kind, w->dir);
    lines_set_max(&w->rd, s->line_max);
    w->started = 1;
    return 0;
}

/* Cost: one directory listing and a binary search per entry, per batch. */
static int dirwatch_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    dirwatch *w = s->impl;
    const sp_allocator *a = s->env->alloc;
    const char *kind = s->vt->kind;
    char **fresh = NULL;
    size_t nfresh = 0, capfresh = 0;
    int rc;
    *done = 0; /* a live source: never done */
    SP_CHECK(d, w->started, SP_ESTATE, "%s %s: not started", kind, w->dir);
    if ((rc = source_col_raw(&out->cols[0], d))) return rc;
    lines_origin_reset(&w->origin, t);
    DIR *dp = opendir(w->dir);
    if (!dp) return source_errno(d, kind, w->dir, errno);
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_' || dirwatch_seen(w, e->d_name)) continue;
        sb_reset(&w->path);
        sb_printf(&w->path, "%s/%s", w->dir, e->d_name);
        struct stat st;
        if (w->path.oom || stat(sb_cstr(&w->path), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (nfresh == capfresh) {
            size_t nc = capfresh ? capfresh * 2 : 16;
            char **nf = mem_realloc(a, fresh, nc * sizeof *nf);
            if (!nf) goto oom;
            fresh = nf;
            capfresh = nc;
        }
        if (!(fresh[nfresh] = mem_strdup(a, e->d_name))) goto oom;
        nfresh++;
    }
    closedir(dp);
    dp = NULL;
    if (nfresh == 0) return source_seal(out, d);
    /* New files in name order, so that a batch's rows do not depend on readdir's order. */
    qsort(fresh, nfresh, sizeof *fresh, dirwatch_cmp);
    if (w->nseen + nfresh > w->capseen) {
        size_t nc = w->capseen ? w->capseen : 16;
        while (nc < w->nseen + nfresh)
            nc *= 2;
        char **ns = mem_realloc(a, w->seen, nc * sizeof *ns);
        if (!ns) goto oom;
        w->seen = ns;
        w->capseen = nc;
    }
    rc = 0;
    for (size_t i = 0; i < nfresh; i++) {
        sb_reset(&w->path);
        sb_printf(&w->path, "%s/%s", w->dir, fresh[i]);
        if (w->path.oom) goto oom;
        const char *p = sb_cstr(&w->path);
        /* A file removed between listing and reading is skipped, like Spark does. */
        rc = lines_open(&w->rd, kind, p, d);
        if (rc == SP_ENOENT) {
            rc = 0;
            continue;
        }
        if (rc) break;
        uint32_t fid = lines_origin_file(&w->origin, p);
        int end = 0;
        while (!rc &&
               !end) { /* the whole file, one origin run per stretch between overlong lines */
            if (fid == UINT32_MAX || lines_origin_add(&w->origin, out->n, w->rd.line + 1, fid)) {
                rc = diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, p);
                break;
            }
            size_t n = 0;
            int over = 0;
            rc = lines_read(&w->rd, &out->cols[0], 0, &n, &end, &over, kind, p, d);
            out->n += n;
            if (!rc && over)
                rc = source_reject_long(s, p, w->rd.cut.over.line, w->rd.cut.over.head,
                                        w->rd.cut.over.nhead, d);
        }
        lines_close(&w->rd);
        if (rc) break;
    }
    /* Mark every listed file as seen, even one that failed, so it is not re-read. */
    memcpy(w->seen + w->nseen, fresh, nfresh * sizeof *fresh);
    w->nseen += nfresh;
    qsort(w->seen, w->nseen, sizeof *w->seen, dirwatch_cmp);
    mem_free(a, fresh);
    return rc ? rc : source_seal(out, d);
oom:
    if (dp) closedir(dp);
    for (size_t i = 0; i < nfresh; i++)
        mem_free(a, fresh[i]);
    mem_free(a, fresh);
    return diag_set(d, SP_ENOMEM, "%s %s: out of memory", kind, w->dir);
}

static void dirwatch_stop(sp_source *s)
{
    dirwatch *w = s->impl;
    lines_close(&w->rd);
}

static void dirwatch_destroy(sp_source *s)
{
    dirwatch *w = s->impl;
    const sp_allocator *a = s->env->alloc;
    for (size_t i = 0; i < w->nseen; i++)
        mem_free(a, w->seen[i]);
    mem_free(a, w->seen);
    lines_free(&w->rd);
    lines_origin_free(&w->origin);
    sb_free(&w->path);
    mem_free(a, w->dir);
    mem_free(a, w);
}

/* Checkpoints: the files taken so far and the lines of the last. A replay that finds the
 * files in other batches (they appeared at other times) is told apart by this. */
static void dirwatch_position(const sp_source *s, strbuf *out)
{
    const dirwatch *w = s->impl;
    sb_printf(out, "%zu files, line %lld", w->nseen, (long long)w->rd.line);
}

static const source_vt dirwatch_vt = {"textFileStream", dirwatch_start,   dirwatch_next,
                                      dirwatch_stop,    dirwatch_destroy, dirwatch_position};

int source_dir_new(batch_env *env, const char *dir, sp_source **out, sp_diag *d)
{
    SP_CHECK(d, dir, SP_EINVAL, "textFileStream: no directory");
    sp_source *s;
    int rc = source_alloc(env, &dirwatch_vt, &s, d);
    if (rc) return rc;
    dirwatch *w = mem_calloc(env->alloc, 1, sizeof *w);
    if (!w) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "textFileStream %s: out of memory", dir);
    }
    s->impl = w;
    lines_init(&w->rd, env->alloc);
    lines_origin_init(&w->origin, env->alloc);
    sb_init(&w->path, env->alloc);
    if (!(w->dir = mem_strdup(env->alloc, dir))) {
        rc = diag_set(d, SP_ENOMEM, "textFileStream %s: out of memory", dir);
        goto fail;
    }
    if ((rc = textfile_str_td(s, d))) goto fail;
    *out = s;
    return 0;
fail:
    source_free(s);
    return rc;
}

const lines_origin *textfile_origin(const sp_source *s)
{
    if (!s || !s->impl) return NULL;
    if (s->vt == &textfile_vt) return &((const textfile *)s->impl)->origin;
    if (s->vt == &dirwatch_vt) return &((const dirwatch *)s->impl)->origin;
    return NULL;
}
