/* parse_json.c — JSON lines: each line one JSON value; each column a dotted path into nested
 * objects ("request.status"), optionally typed ("request.status:i32"). A key that itself
 * contains dots ("id.orig_h") is matched before the path is split. Missing fields and null are
 * the zero value ("" for str); objects and arrays read as str are their compact JSON text.
 *
 * Two parsers give identical results: jsonscan.c's single-pass extractor (the default, several
 * times faster) and jansson, which defines the semantics and takes the lines the extractor
 * does not model (jsonscan_int.h lists them). */
#include "io/jsonscan_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct json_paths {
    char **path; /* per column, without the ":type" suffix */
    size_t *len;
    int n;
    jsonscan *scan; /* the fast path, or NULL: every line through jansson */
} json_paths;

static void json_paths_free(const sp_allocator *a, void *impl)
{
    json_paths *jp = impl;
    jsonscan_free(a, jp->scan);
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

/* One JSON value found for a column, from either parser, converted by pj_convert: the single
 * place where JSON values become column values, so both parsers agree by construction. */
typedef enum pj_where {
    PJ_TRANSIENT, /* s is freed after the line: copy it */
    PJ_LINE,      /* s lies in the line (valid while the row is built) */
    PJ_SCRATCH    /* the text is in the line's scratch at off */
} pj_where;

typedef struct pj_val {
    js_kind kind; /* JS_STR for any string, JS_COMPOSITE for compact JSON text */
    const char *s;
    size_t n;
    pj_where where;
    uint32_t off;
    long long i;
    double f;
} pj_val;

static const char *pj_convert(const parse_spec *ps, parse_line *l, int c, const pj_val *v)
{
    sp_type t = ps->types[c];
    parse_val *pv = &l->v[c];
    pv->i = 0;
    pv->f = 0;
    parse_set_str(l, c, "", 0);
    char buf[64];
    switch (v->kind) {
    case JS_ABSENT:
    case JS_NULL:
        return NULL;
    case JS_STR:
    case JS_STR_ESC:
        if (t == SP_STR) {
            if (v->where == PJ_LINE)
                parse_set_str(l, c, v->s, v->n);
            else if (v->where == PJ_SCRATCH)
                parse_set_scratch(l, c, v->off, v->n);
            else
                return pj_copy(l, c, v->s, v->n);
            return NULL;
        }
        return parse_set_text(ps, l, c, v->where == PJ_SCRATCH ? l->scratch + v->off : v->s, v->n);
    case JS_INT: {
        long long x = v->i;
        if (t == SP_STR) {
            int n = snprintf(buf, sizeof buf, "%lld", x);
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
    case JS_REAL: {
        double x = v->f;
        if (t == SP_STR) {
            int n = snprintf(buf, sizeof buf, "%.17g", x);
            return pj_copy(l, c, buf, (size_t)n);
        }
        if (t == SP_F32 || t == SP_F64)
            pv->f = x;
        else if (t == SP_TS)
            return parse_real_ts(x, &pv->i);
        else if (t == SP_BOOL)
            pv->i = x != 0;
        else
            return parse_real_int(x, t, &pv->i);
        return NULL;
    }
    case JS_TRUE:
    case JS_FALSE: {
        int b = v->kind == JS_TRUE;
        if (t == SP_STR) return pj_copy(l, c, b ? "true" : "false", b ? 4 : 5);
        if (t == SP_F32 || t == SP_F64)
            pv->f = b;
        else
            pv->i = b;
        return NULL;
    }
    default: /* object or array, as compact JSON text */
        if (t != SP_STR) return "object or array for a scalar column";
        return pj_copy(l, c, v->s, v->n);
    }
}

static const char *pj_value(const parse_spec *ps, parse_line *l, int c, json_t *j)
{
    pj_val v = {JS_ABSENT, NULL, 0, PJ_TRANSIENT, 0, 0, 0};
    char *txt = NULL;
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_NULL:
        break;
    case JSON_STRING:
        v.kind = JS_STR;
        v.s = json_string_value(j);
        v.n = json_string_length(j);
        break;
    case JSON_INTEGER:
        v.kind = JS_INT;
        v.i = (long long)json_integer_value(j);
        break;
    case JSON_REAL:
        v.kind = JS_REAL;
        v.f = json_real_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.kind = json_is_true(j) ? JS_TRUE : JS_FALSE;
        break;
    default:
        v.kind = JS_COMPOSITE;
        if (ps->types[c] == SP_STR) {
            if (!(txt = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY))) return "out of memory";
            v.s = txt;
            v.n = strlen(txt);
        }
    }
    const char *why = pj_convert(ps, l, c, &v);
    free(txt);
    return why;
}

const char *parse_json_line_jansson(const parse_spec *ps, parse_line *l, const char *s, size_t len)
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

/* The fast path: one scan (jsonscan.c), then the same conversions. Lines the scanner does not
 * model, and object or array values wanted as text (jansson's compact form), go to jansson. */
static const char *pj_line_fast(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const json_paths *jp = ps->impl;
    js_value jv[JSONSCAN_MAX_COLS];
    switch (jsonscan_line(jp->scan, s, len, jv)) {
    case JS_OK:
        break;
    case JS_NOT_OBJECT:
        return "not a JSON object";
    case JS_MALFORMED:
        return "malformed JSON";
    default:
        return parse_json_line_jansson(ps, l, s, len);
    }
    size_t mark = l->nscratch;
    for (int c = 0; c < ps->ncols; c++) {
        const js_value *j = &jv[c];
        pj_val v = {(js_kind)j->kind, j->s, j->n, PJ_LINE, 0, 0, 0};
        if (v.kind == JS_STR_ESC) {
            char *w;
            if ((v.off = parse_scratch(l, j->n, &w)) == UINT32_MAX) return "out of memory";
            v.n = jsonscan_unescape(j->s, j->n, w);
            l->nscratch = v.off + v.n;
            v.where = PJ_SCRATCH;
        } else if (v.kind == JS_INT) {
            v.i = (long long)jsonscan_int(j->s, j->n);
        } else if (v.kind == JS_REAL) {
            if (jsonscan_real(j->s, j->n, &v.f)) return "out of memory";
        } else if (v.kind == JS_COMPOSITE && ps->types[c] == SP_STR) {
            l->nscratch = mark;
            return parse_json_line_jansson(ps, l, s, len);
        }
        const char *why = pj_convert(ps, l, c, &v);
        if (why) {
            l->reject_col = c;
            return why;
        }
    }
    return NULL;
}

const jsonscan *parse_json_scan(const parse_spec *ps)
{
    return ps->line == pj_line_fast ? ((const json_paths *)ps->impl)->scan : NULL;
}

void parse_json_use_jansson(parse_spec *ps)
{
    if (ps->line == pj_line_fast) ps->line = parse_json_line_jansson;
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
    int rc = jsonscan_new(ps->alloc, jp->path, jp->n, &jp->scan, d);
    if (rc) return rc;
    ps->line = jp->scan ? pj_line_fast : parse_json_line_jansson;
    return 0;
}
