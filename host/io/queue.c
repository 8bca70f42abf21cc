/* queue.c — queueStream on the manual clock: a JSON-lines file, one line per batch, each line
 * a JSON array of records. Batch k (time k x interval) gets line k; a blank line is an empty
 * batch like "[]". Records map onto the flattened columns of the element type: JSON integers
 * to integer (and float) columns, reals to float columns, strings to str, true/false to bool,
 * arrays to tuples (and to List[...]), null to None (Option[...]; any other value is Some).
 * Messages name "FILE:LINE:COL" for bad JSON and "FILE:LINE: record R" (R counted from 1) for
 * a record that does not fit the type. */
#include "io/source_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>

typedef struct queue {
    char *path;
    FILE *f;
    char *line; /* the next line (lookahead), NUL-terminated, newline stripped */
    size_t len, cap;
    int have;    /* line holds a line not yet consumed */
    long lineno; /* 1-based number of `line` */
    strbuf tds;  /* the element type, formatted, for messages */
} queue;

/* Reads the next line into q->line; 1 when there was one, 0 at end of file, or an error. The
 * line is read byte by byte up to its '\n', so a NUL byte inside it stays in the line (and
 * q->len counts it): queue_parse_line rejects it, and the lines after it keep their numbers. */
static int queue_readline(queue *q, const sp_allocator *a, sp_diag *d)
{
    int c;
    q->len = 0;
    for (;;) {
        c = getc_unlocked(q->f);
        if (c == EOF) break;
        if (q->cap - q->len < 2) {
            size_t nc = q->cap ? q->cap * 2 : 4096;
            char *nl = mem_realloc(a, q->line, nc);
            if (!nl)
                return diag_set(d, SP_ENOMEM, "queueStream %s:%ld: out of memory", q->path,
                                q->lineno + 1);
            q->line = nl;
            q->cap = nc;
        }
        if (c == '\n') break;
        q->line[q->len++] = (char)c;
    }
    if (c == EOF) {
        if (ferror(q->f)) return source_errno(d, "queueStream", q->path, errno ? errno : EIO);
        if (q->len == 0) return 0;
    }
    while (q->len && q->line[q->len - 1] == '\r')
        q->len--;
    q->line[q->len] = '\0';
    q->lineno++;
    return 1;
}

static int queue_advance(queue *q, const sp_allocator *a, sp_diag *d)
{
    int r = queue_readline(q, a, d);
    if (r < 0) return r;
    q->have = r;
    return 0;
}

/* A JSON value for a message: compact, cut at 60 bytes. */
static void queue_show(json_t *v, char *buf, size_t size)
{
    size_t n = json_dumpb(v, buf, size - 4, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
        snprintf(buf, size, "?");
    else if (n > size - 4)
        memcpy(buf + size - 4, "...", 4);
    else
        buf[n] = '\0';
}

static int queue_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

/* Parses q->line: an array (returned in *out) or an error naming the line. A blank line is
 * an empty array. */
static int queue_parse_line(queue *q, json_t **out, sp_diag *d)
{
    json_error_t err;
    *out = NULL;
    const char *nul = memchr(q->line, '\0', q->len);
    if (nul)
        return diag_set(d, SP_EPARSE, "queueStream %s:%ld:%ld: NUL byte in the line", q->path,
                        q->lineno, (long)(nul - q->line) + 1);
    if (queue_blank(q->line)) {
        if (!(*out = json_array()))
            return diag_set(d, SP_ENOMEM, "queueStream %s:%ld: out of memory", q->path, q->lineno);
        return 0;
    }
    json_t *v = json_loadb(q->line, q->len, JSON_DECODE_ANY, &err);
    if (!v)
        return diag_set(d, SP_EPARSE, "queueStream %s:%ld:%d: %s", q->path, q->lineno, err.column,
                        err.text);
    if (!json_is_array(v)) {
        char shown[64];
        queue_show(v, shown, sizeof shown);
        json_decref(v);
        return diag_set(d, SP_EPARSE,
                        "queueStream %s:%ld: expected a JSON array of records, got %s", q->path,
                        q->lineno, shown);
    }
    *out = v;
    return 0;
}

/* ----------------------------------------------------------------------- type inference */

/* The type of a record: integer i64, real f64, string str, boolean bool, an array of two or
 * more values a tuple of their types. NULL where no type follows (null, objects, arrays of
 * fewer than two values) or memory runs out (*oom set). */
static sp_td *queue_infer(const sp_allocator *a, json_t *v, int *oom)
{
    sp_td *t = NULL;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        t = td_leaf(a, SP_I64);
        break;
    case JSON_REAL:
        t = td_leaf(a, SP_F64);
        break;
    case JSON_STRING:
        t = td_leaf(a, SP_STR);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        t = td_leaf(a, SP_BOOL);
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n < 2 || n > 64) return NULL;
        sp_td *kids[64];
        for (size_t i = 0; i < n; i++) {
            kids[i] = queue_infer(a, json_array_get(v, i), oom);
            if (!kids[i]) {
                while (i)
                    td_free(a, kids[--i]);
                return NULL;
            }
        }
        t = td_tuple(a, (int)n, kids);
        break;
    }
    default:
        return NULL;
    }
    if (!t) *oom = 1;
    return t;
}

/* Reads the file up to its first record and takes that record's type. */
static int queue_infer_file(queue *q, const sp_allocator *a, sp_td **out, sp_diag *d)
{
    int rc;
    json_t *arr = NULL;
    *out = NULL;
    for (;;) {
        if ((rc = queue_advance(q, a, d))) return rc;
        if (!q->have)
            return diag_set(d, SP_ETYPE,
                            "queueStream %s: no record to infer the element type from (only "
                            "empty batches); give the type",
                            q->path);
        if ((rc = queue_parse_line(q, &arr, d))) return rc;
        if (json_array_size(arr) > 0) break;
        json_decref(arr);
    }
    int oom = 0;
    json_t *rec = json_array_get(arr, 0);
    *out = queue_infer(a, rec, &oom);
    if (!*out) {
        char shown[64];
        queue_show(rec, shown, sizeof shown);
        json_decref(arr);
        if (oom) return diag_set(d, SP_ENOMEM, "queueStream %s: out of memory", q->path);
        return diag_set(d, SP_EPARSE,
                        "queueStream %s:%ld: record 1: cannot infer a type from %s; give the "
                        "type",
                        q->path, q->lineno, shown);
    }
    json_decref(arr);
    td_layout(*out, 0);
    return 0;
}

/* ----------------------------------------------------------------------- records to columns */

/* 1 when v has the shape and leaf types of t. */
static int queue_fits(const sp_td *t, json_t *v)
{
    switch (t->kind) {
    case TD_LEAF:
        switch (t->leaf) {
        case SP_I32:
            return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
                   json_integer_value(v) <= INT32_MAX;
        case SP_I64:
        case SP_TS:
            return json_is_integer(v);
        case SP_F32:
        case SP_F64:
            return json_is_number(v);
        case SP_BOOL:
            return json_is_boolean(v);
        case SP_STR:
            return json_is_string(v);
        default:
            return 0;
        }
    case TD_TUPLE:
        if (!json_is_array(v) || json_array_size(v) != (size_t)t->n) return 0;
        for (int i = 0; i < t->n; i++)
            if (!queue_fits(t->child[i], json_array_get(v, (size_t)i))) return 0;
        return 1;
    case TD_OPTION:
        return json_is_null(v) || queue_fits(t->child[0], v);
    case TD_LIST:
        if (!json_is_array(v)) return 0;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!queue_fits(t->child[0], json_array_get(v, i))) return 0;
        return 1;
    }
    return 0;
}

static int queue_push_str(batch_env *env, sp_col *c, const char *s, size_t len)
{
    if (c->enc == ENC_RAW) return col_push_text(c, s, len);
    uint32_t id = dict_intern(env->dict, s, len);
    return id == UINT32_MAX ? SP_ENOMEM : col_push_id(c, id);
}

/* The offsets column of a list: starts with offsets[0] = 0. */
static int queue_list_last(sp_col *c, int64_t *last)
{
    if (c->len == 0 && col_push_i64(c, 0)) return SP_ENOMEM;
    *last = col_get_i64(c, c->len - 1);
    return 0;
}

/* Appends the zero value of t (the child columns of a None). */
static int queue_push_zero(batch_env *env, sp_col *cols, const sp_td *t)
{
    sp_col *c = &cols[t->col];
    int64_t last;
    switch (t->kind) {
    case TD_LEAF:
        if (t->leaf == SP_STR) return queue_push_str(env, c, "", 0);
        if (t->leaf == SP_F32 || t->leaf == SP_F64) return col_push_f64(c, 0.0);
        return col_push_i64(c, 0);
    case TD_TUPLE:
        for (int i = 0; i < t->n; i++)
            if (queue_push_zero(env, cols, t->child[i])) return SP_ENOMEM;
        return 0;
    case TD_OPTION:
        return col_push_i64(c, 0) || queue_push_zero(env, cols, t->child[0]) ? SP_ENOMEM : 0;
    case TD_LIST:
        return queue_list_last(c, &last) || col_push_i64(c, last) ? SP_ENOMEM : 0;
    }
    return SP_EINVAL;
}

/* Appends record v (queue_fits(t, v) holds); fails only when memory runs out. */
static int queue_push(batch_env *env, sp_col *cols, const sp_td *t, json_t *v)
{
    sp_col *c = &cols[t->col];
    switch (t->kind) {
    case TD_LEAF:
        switch (t->leaf) {
        case SP_F32:
        case SP_F64:
            return col_push_f64(c, json_number_value(v));
        case SP_BOOL:
            return col_push_i64(c, json_is_true(v));
        case SP_STR:
            return queue_push_str(env, c, json_string_value(v), json_string_length(v));
        default:
            return col_push_i64(c, (int64_t)json_integer_value(v));
        }
    case TD_TUPLE:
        for (int i = 0; i < t->n; i++)
            if (queue_push(env, cols, t->child[i], json_array_get(v, (size_t)i))) return SP_ENOMEM;
        return 0;
    case TD_OPTION:
        if (json_is_null(v))
            return col_push_i64(c, 0) || queue_push_zero(env, cols, t->child[0]) ? SP_ENOMEM : 0;
        return col_push_i64(c, 1) || queue_push(env, cols, t->child[0], v) ? SP_ENOMEM : 0;
    case TD_LIST: {
        int64_t last;
        if (queue_list_last(c, &last)) return SP_ENOMEM;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            if (queue_push(env, cols, t->child[0], json_array_get(v, i))) return SP_ENOMEM;
        return col_push_i64(c, last + (int64_t)n);
    }
    }
    return SP_EINVAL;
}

/* ----------------------------------------------------------------------------- the source */

static int queue_open(queue *q, sp_diag *d)
{
    if (q->f) fclose(q->f);
    q->f = fopen(q->path, "rb");
    if (!q->f) return source_errno(d, "queueStream", q->path, errno);
    q->lineno = 0;
    q->have = 0;
    return 0;
}

static int queue_start(sp_source *s, sp_diag *d)
{
    queue *q = s->impl;
    int rc = queue_open(q, d);
    return rc ? rc : queue_advance(q, s->env->alloc, d);
}

static int queue_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    queue *q = s->impl;
    json_t *arr = NULL;
    int rc;
    *done = 0;
    SP_CHECK(d, q->f, SP_ESTATE, "queueStream %s: not started", q->path);
    if (!q->have) { /* an empty file, or called again after the end */
        *done = 1;
        return source_seal(out, d);
    }
    if ((rc = queue_parse_line(q, &arr, d))) return rc;
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_array_get(arr, i);
        if (!queue_fits(s->td, rec)) {
            char shown[64];
            queue_show(rec, shown, sizeof shown);
            rc = diag_set(d, SP_EPARSE, "queueStream %s:%ld: record %zu: expected %s, got %s",
                          q->path, q->lineno, i + 1, sb_cstr(&q->tds), shown);
            goto out;
        }
        if (queue_push(s->env, out->cols, s->td, rec)) {
            rc = diag_set(d, SP_ENOMEM, "queueStream %s:%ld: out of memory", q->path, q->lineno);
            goto out;
        }
        out->n++;
    }
    if ((rc = queue_advance(q, s->env->alloc, d))) goto out;
    *done = !q->have;
    rc = source_seal(out, d);
out:
    json_decref(arr);
    return rc;
}

static void queue_stop(sp_source *s)
{
    queue *q = s->impl;
    if (q->f) fclose(q->f);
    q->f = NULL;
}

static void queue_destroy(sp_source *s)
{
    queue *q = s->impl;
    const sp_allocator *a = s->env->alloc;
    sb_free(&q->tds);
    mem_free(a, q->line);
    mem_free(a, q->path);
    mem_free(a, q);
}

/* Checkpoints: the lines (batches) taken so far. */
static void queue_position(const sp_source *s, strbuf *out)
{
    const queue *q = s->impl;
    sb_printf(out, "line %ld", q->have ? q->lineno - 1 : q->lineno);
}

static const source_vt queue_vt = {"queueStream", queue_start,   queue_next,    queue_stop,
                                   queue_destroy, queue_position};

int source_queue_new(batch_env *env, const char *path, const char *type, sp_source **out,
                     sp_diag *d)
{
    SP_CHECK(d, path, SP_EINVAL, "queueStream: no path");
    const sp_allocator *a = env ? env->alloc : NULL;
    sp_source *s;
    int rc = source_alloc(env, &queue_vt, &s, d);
    if (rc) return rc;
    queue *q = mem_calloc(a, 1, sizeof *q);
    if (!q) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "queueStream %s: out of memory", path);
    }
    s->impl = q;
    s->manual_clock = 1;
    sb_init(&q->tds, a);
    if (!(q->path = mem_strdup(a, path))) {
        rc = diag_set(d, SP_ENOMEM, "queueStream %s: out of memory", path);
        goto fail;
    }
    if (type) {
        if ((rc = td_parse(a, type, &s->td, d))) {
            diag_prefix(d, "queueStream %s", path);
            goto fail;
        }
    }
    /* The file is opened now even with a type, so that a missing file fails at construction. */
    if ((rc = queue_open(q, d))) goto fail;
    if (!type && (rc = queue_infer_file(q, a, &s->td, d))) goto fail;
    fclose(q->f);
    q->f = NULL;
    q->have = 0;
    td_format(s->td, &q->tds);
    if (q->tds.oom) {
        rc = diag_set(d, SP_ENOMEM, "queueStream %s: out of memory", path);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    source_free(s);
    return rc;
}
