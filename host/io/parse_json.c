/* parse_json.c — JSON lines through jansson: each line one JSON value; each column a dotted
 * path into nested objects ("request.status"), optionally typed ("request.status:i32").
 * A key that itself contains dots ("id.orig_h") is matched before the path is split. Missing
 * fields and null are the zero value ("" for str); objects and arrays read as str are their
 * compact JSON text. */
#include "io/parse_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct json_paths {
    char **path; /* per column, without the ":type" suffix */
    size_t *len;
    int n;
} json_paths;

static void json_paths_free(const sp_allocator *a, void *impl)
{
    json_paths *jp = impl;
    for (int i = 0; i < jp->n; i++)
        mem_free(a, jp->path[i]);
    mem_free(a, jp->path);
    mem_free(a, jp->len);
    mem_free(a, jp);
}

/* Value at dotted path [p, p+n) under o: the longest literal key first, then split at dots.
 * Cost: at most one lookup per dot per level. */
static json_t *pj_at(json_t *o, const char *p, size_t n)
{
    if (!json_is_object(o)) return NULL;
    json_t *v = json_object_getn(o, p, n);
    if (v) return v;
    for (size_t k = 0; k < n; k++) {
        if (p[k] != '.') continue;
        json_t *c = json_object_getn(o, p, k);
        if (c && (v = pj_at(c, p + k + 1, n - k - 1))) return v;
    }
    return NULL;
}

/* Copies n bytes into the line's scratch as column c. */
static const char *pj_copy(parse_line *l, int c, const char *s, size_t n)
{
    char *w;
    uint32_t off = parse_scratch(l, n, &w);
    if (off == UINT32_MAX) return "out of memory";
    memcpy(w, s, n);
    parse_set_scratch(l, c, off, n);
    return NULL;
}

static const char *pj_value(const parse_spec *ps, parse_line *l, int c, json_t *v)
{
    sp_type t = ps->types[c];
    parse_val *pv = &l->v[c];
    pv->i = 0;
    pv->f = 0;
    parse_set_str(l, c, "", 0);
    if (!v || json_is_null(v)) return NULL;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (t == SP_STR) return pj_copy(l, c, s, n);
        return parse_set_text(ps, l, c, s, n);
    }
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        if (t == SP_STR) {
            int n = snprintf(buf, sizeof buf, "%lld", (long long)x);
            return pj_copy(l, c, buf, (size_t)n);
        }
        if (t == SP_TS)
            pv->i = (x >= 100000000000LL || x <= -100000000000LL) ? (int64_t)x : (int64_t)x * 1000;
        else if (t == SP_F32 || t == SP_F64)
            pv->f = (double)x;
        else if (t == SP_I32 && (x < INT32_MIN || x > INT32_MAX))
            return "integer out of range";
        else
            pv->i = t == SP_BOOL ? x != 0 : (int64_t)x;
        return NULL;
    }
    case JSON_REAL: {
        double x = json_real_value(v);
        if (t == SP_STR) {
            int n = snprintf(buf, sizeof buf, "%.17g", x);
            return pj_copy(l, c, buf, (size_t)n);
        }
        if (t == SP_F32 || t == SP_F64)
            pv->f = x;
        else if (t == SP_TS)
            pv->i = (int64_t)(x * 1000.0);
        else if (t == SP_BOOL)
            pv->i = x != 0;
        else if (x != (double)(int64_t)x)
            return "not an integer";
        else
            pv->i = (int64_t)x;
        return NULL;
    }
    case JSON_TRUE:
    case JSON_FALSE: {
        int b = json_is_true(v);
        if (t == SP_STR) return pj_copy(l, c, b ? "true" : "false", b ? 4 : 5);
        if (t == SP_F32 || t == SP_F64)
            pv->f = b;
        else
            pv->i = b;
        return NULL;
    }
    default: { /* object or array */
        if (t != SP_STR) return "object or array for a scalar column";
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!txt) return "out of memory";
        const char *why = pj_copy(l, c, txt, strlen(txt));
        free(txt);
        return why;
    }
    }
}

static const char *pj_line(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const json_paths *jp = ps->impl;
    json_error_t err;
    json_t *root = json_loadb(s, len, 0, &err);
    if (!root) return "malformed JSON";
    const char *why = NULL;
    if (!json_is_object(root)) why = "not a JSON object";
    for (int c = 0; c < ps->ncols && !why; c++) {
        why = pj_value(ps, l, c, pj_at(root, jp->path[c], jp->len[c]));
        if (why) l->reject_col = c;
    }
    json_decref(root);
    return why;
}

int parse_json_init(parse_spec *ps, const char *arg, sp_diag *d)
{
    SP_CHECK(d, arg && *arg, SP_EINVAL,
             "parse(json): needs the fields, comma-separated dotted paths (\"a.b,c:i64\")");
    json_paths *jp = mem_calloc(ps->alloc, 1, sizeof *jp);
    if (!jp) return diag_set(d, SP_ENOMEM, "parse(json): out of memory");
    ps->impl = jp;
    ps->impl_free = json_paths_free;
    for (const char *p = arg;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int rc = parse_spec_typed_col(ps, p, n, d);
        if (rc) return rc;
        /* the path is the column name */
        int c = ps->ncols - 1;
        char **np = mem_realloc(ps->alloc, jp->path, (size_t)ps->ncols * sizeof *np);
        if (!np) return diag_set(d, SP_ENOMEM, "parse(json): out of memory");
        jp->path = np;
        size_t *nl = mem_realloc(ps->alloc, jp->len, (size_t)ps->ncols * sizeof *nl);
        if (!nl) return diag_set(d, SP_ENOMEM, "parse(json): out of memory");
        jp->len = nl;
        if (!(jp->path[c] = mem_strdup(ps->alloc, ps->names[c])))
            return diag_set(d, SP_ENOMEM, "parse(json): out of memory");
        jp->len[c] = strlen(jp->path[c]);
        jp->n = ps->ncols;
        if (!comma) break;
        p = comma + 1;
    }
    ps->line = pj_line;
    return 0;
}
