/* textfile.c — textFile (replays one file's lines) and textFileStream (watches a directory
 * and reads each new file once). Both yield raw-text str columns (ENC_RAW). */
#include "io/lines_int.h"
#include "io/source_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------- textFile */

typedef struct textfile {
    char *path;
    size_t batch_lines; /* 0: the whole file in the first batch */
    lines_reader rd;
    int at_end;
} textfile;

static int textfile_start(sp_source *s, sp_diag *d)
{
    textfile *tf = s->impl;
    tf->at_end = 0;
    return lines_open(&tf->rd, s->vt->kind, tf->path, d);
}

static int textfile_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    textfile *tf = s->impl;
    *done = 0;
    SP_CHECK(d, tf->rd.f || tf->at_end, SP_ESTATE, "textFile %s: not started", tf->path);
    int rc = source_col_raw(&out->cols[0], d);
    if (rc) return rc;
    size_t n = 0;
    if (!tf->at_end) {
        rc = lines_read(&tf->rd, &out->cols[0], tf->batch_lines, &n, &tf->at_end, s->vt->kind,
                        tf->path, d);
        out->n += n;
        if (rc) return rc;
        if (tf->at_end) lines_close(&tf->rd);
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
    mem_free(s->env->alloc, tf->path);
    mem_free(s->env->alloc, tf);
}

static const source_vt textfile_vt = {"textFile", textfile_start, textfile_next, textfile_stop,
                                      textfile_destroy};

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
        size_t n = 0;
        int end;
        rc = lines_read(&w->rd, &out->cols[0], 0, &n, &end, kind, p, d);
        lines_close(&w->rd);
        out->n += n;
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
    sb_free(&w->path);
    mem_free(a, w->dir);
    mem_free(a, w);
}

static const source_vt dirwatch_vt = {"textFileStream", dirwatch_start, dirwatch_next,
                                      dirwatch_stop, dirwatch_destroy};

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
