/* parse_clf.c — Apache/NCSA access logs: the Common and Combined formats (a hand-written
 * single pass, the hot path of log analytics) and GoAccess-style format strings (an
 * interpreter over literals and %-fields). Decisions on messy lines: host/io/PARSING.md. */
#include "io/parse_int.h"

#include <stdlib.h>
#include <string.h>

enum {
    C_HOST,
    C_IDENT,
    C_USER,
    C_TIME,
    C_METHOD,
    C_PATH,
    C_PROTO,
    C_STATUS,
    C_BYTES,
    C_REFERER,
    C_AGENT
};

static const char *const clf_names[] = {"host",     "ident",  "user",  "time",    "method", "path",
                                        "protocol", "status", "bytes", "referer", "agent"};
static const sp_type clf_types[] = {SP_STR, SP_STR, SP_STR, SP_TS,  SP_STR, SP_STR,
                                    SP_STR, SP_I32, SP_I64, SP_STR, SP_STR};

static inline const char *skip_sp(const char *p, const char *e)
{
    while (p < e && *p == ' ')
        p++;
    return p;
}

/* 1 when the quote at q is escaped by an odd run of backslashes that starts after `from`. */
static int escaped(const char *from, const char *q)
{
    size_t bs = 0;
    while (q > from && q[-1] == '\\')
        q--, bs++;
    return (int)(bs & 1);
}

/* The closing quote of a field opened before p: the first unescaped '"' followed by a space or
 * the end of the line. NULL if there is none. */
static const char *close_quote(const char *p, const char *e)
{
    const char *from = p;
    while (p < e) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (!q) return NULL;
        if (!escaped(from, q) && (q + 1 == e || q[1] == ' ')) return q;
        p = q + 1;
    }
    return NULL;
}

/* Splits a request "METHOD PATH PROTOCOL" into three string columns. "-" and "" give three
 * empty strings; a request without a protocol (HTTP/0.9) gives an empty protocol; runs of
 * spaces separate; a last word that does not start with "HTTP/" belongs to the path. */
static void split_request(parse_line *l, int cm, const char *a, const char *b)
{
    while (a < b && *a == ' ')
        a++;
    while (b > a && b[-1] == ' ')
        b--;
    if (b - a == 1 && *a == '-') b = a;
    const char *sp = memchr(a, ' ', (size_t)(b - a));
    if (!sp) {
        parse_set_str(l, cm, a, (size_t)(b - a));
        parse_set_str(l, cm + 1, b, 0);
        parse_set_str(l, cm + 2, b, 0);
        return;
    }
    parse_set_str(l, cm, a, (size_t)(sp - a));
    const char *path = sp + 1;
    while (path < b && *path == ' ')
        path++;
    const char *last = b;
    while (last > path && last[-1] != ' ')
        last--;
    if (last > path && b - last >= 5 && memcmp(last, "HTTP/", 5) == 0) {
        parse_set_str(l, cm + 2, last, (size_t)(b - last));
        const char *pe = last;
        while (pe > path && pe[-1] == ' ')
            pe--;
        parse_set_str(l, cm + 1, path, (size_t)(pe - path));
    } else {
        parse_set_str(l, cm + 1, path, (size_t)(b - path));
        parse_set_str(l, cm + 2, b, 0);
    }
}

/* Unsigned decimal [a, b) into *v; "-" is 0 when dash_ok. */
static int read_uint(const char *a, const char *b, int dash_ok, int64_t *v)
{
    if (b - a == 1 && *a == '-' && dash_ok) {
        *v = 0;
        return 0;
    }
    if (a == b || b - a > 18) return -1;
    *v = parse_digits(a, (size_t)(b - a));
    return *v < 0 ? -1 : 0;
}

static const char *clf_line(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const char *e = s + len, *p;
    int combined = ps->ncols == 11;
    /* host ident user: the words before " [", user and ident taken from the right, so that a
     * host field holding a list ("a, b") or a vhost prefix stays one host value. */
    const char *br = memchr(s, '[', len);
    if (!br) return "no [time]";
    const char *ue = br;
    while (ue > s && ue[-1] == ' ')
        ue--;
    const char *us = ue;
    while (us > s && us[-1] != ' ')
        us--;
    const char *ie = us;
    while (ie > s && ie[-1] == ' ')
        ie--;
    const char *is = ie;
    while (is > s && is[-1] != ' ')
        is--;
    const char *he = is;
    while (he > s && he[-1] == ' ')
        he--;
    const char *hs = skip_sp(s, he);
    if (us == ue || is == ie || hs == he || ue == br) return "expected host, ident and user";
    parse_set_str(l, C_HOST, hs, (size_t)(he - hs));
    parse_set_str(l, C_IDENT, is, (size_t)(ie - is));
    parse_set_str(l, C_USER, us, (size_t)(ue - us));
    /* [dd/Mon/yyyy:hh:mm:ss zone] */
    p = parse_clf_time(br + 1, e, &l->v[C_TIME].i);
    if (!p) return "bad time";
    p = skip_sp(p, e);
    if (p == e || *p != ']') return "bad time";
    p = skip_sp(p + 1, e);
    if (p == e || *p != '"') return "no request after the time";
    const char *rq = p + 1;
    const char *rqe = close_quote(rq, e);
    if (!rqe) return "unterminated request";
    split_request(l, C_METHOD, rq, rqe);
    p = skip_sp(rqe + 1, e);
    const char *w = p;
    while (p < e && *p != ' ')
        p++;
    int64_t v;
    if (read_uint(w, p, 0, &v) || v > 999) return "bad status";
    l->v[C_STATUS].i = v;
    p = skip_sp(p, e);
    w = p;
    while (p < e && *p != ' ')
        p++;
    if (read_uint(w, p, 1, &v)) return "bad bytes";
    l->v[C_BYTES].i = v;
    if (!combined) return NULL; /* common: whatever follows is ignored */
    p = skip_sp(p, e);
    parse_set_str(l, C_REFERER, e, 0);
    parse_set_str(l, C_AGENT, e, 0);
    if (p == e) return NULL; /* a common-format line: no referer, no agent */
    if (*p != '"') return "expected a quoted referer";
    const char *q = close_quote(p + 1, e);
    if (!q) { /* unterminated last field: the rest of the line */
        parse_set_str(l, C_REFERER, p + 1, (size_t)(e - p - 1));
        return NULL;
    }
    parse_set_str(l, C_REFERER, p + 1, (size_t)(q - p - 1));
    p = skip_sp(q + 1, e);
    if (p == e) return NULL;
    if (*p != '"') return "expected a quoted user agent";
    q = close_quote(p + 1, e);
    parse_set_str(l, C_AGENT, p + 1, (size_t)((q ? q : e) - p - 1));
    return NULL;
}

int parse_clf_init(parse_spec *ps, int combined, sp_diag *d)
{
    int n = combined ? 11 : 9;
    for (int i = 0; i < n; i++) {
        int rc = parse_spec_col(ps, clf_names[i], strlen(clf_names[i]), clf_types[i], d);
        if (rc) return rc;
    }
    ps->line = clf_line;
    return 0;
}

/* --------------------------------------------------------------------- GoAccess-style format */

typedef struct ga_item {
    char spec; /* 0: literal */
    char *lit; /* literal text */
    size_t nlit;
    int spaces; /* literal made only of spaces: matches one or more */
    int col;    /* first column of a field, -1 if none */
} ga_item;

typedef struct ga_fmt {
    ga_item *items;
    int n;
    int time_col; /* -1: no time */
    int has_date, has_tod;
} ga_fmt;

static void ga_free(const sp_allocator *a, void *impl)
{
    ga_fmt *g = impl;
    for (int i = 0; i < g->n; i++)
        mem_free(a, g->items[i].lit);
    mem_free(a, g->items);
    mem_free(a, g);
}

typedef struct ga_field {
    char c;
    const char *cols[3];
    sp_type types[3];
} ga_field;

static const ga_field ga_fields[] = {
    {'h', {"host"}, {SP_STR}},     {'e', {"user"}, {SP_STR}},
    {'v', {"vhost"}, {SP_STR}},    {'R', {"referer"}, {SP_STR}},
    {'u', {"agent"}, {SP_STR}},    {'m', {"method"}, {SP_STR}},
    {'U', {"path"}, {SP_STR}},     {'q', {"query"}, {SP_STR}},
    {'H', {"protocol"}, {SP_STR}}, {'r', {"method", "path", "protocol"}, {SP_STR, SP_STR, SP_STR}},
    {'s', {"status"}, {SP_I32}},   {'b', {"bytes"}, {SP_I64}},
    {'T', {"rtime"}, {SP_F64}},    {'D', {"rtime_us"}, {SP_I64}},
    {'L', {"rtime_ms"}, {SP_I64}}, {'^', {NULL}, {SP_STR}},
    {'~', {NULL}, {SP_STR}},       {'d', {NULL}, {SP_TS}},
    {'t', {NULL}, {SP_TS}},        {'x', {NULL}, {SP_TS}},
    {'z', {NULL}, {SP_TS}},
};

static const char *ga_line(const parse_spec *ps, parse_line *l, const char *s, size_t len);

static int ga_push(parse_spec *ps, ga_fmt *g, ga_item it, sp_diag *d)
{
    ga_item *ni = mem_realloc(ps->alloc, g->items, (size_t)(g->n + 1) * sizeof *ni);
    if (!ni) {
        mem_free(ps->alloc, it.lit);
        return diag_set(d, SP_ENOMEM, "parse(format): out of memory");
    }
    g->items = ni;
    g->items[g->n++] = it;
    return 0;
}

int parse_goaccess_init(parse_spec *ps, const char *fmt, sp_diag *d)
{
    ga_fmt *g = mem_calloc(ps->alloc, 1, sizeof *g);
    if (!g) return diag_set(d, SP_ENOMEM, "parse(format): out of memory");
    ps->impl = g;
    ps->impl_free = ga_free;
    g->time_col = -1;
    int rc;
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            const char *q = p;
            while (*q && *q != '%')
                q++;
            ga_item it = {0, mem_alloc(ps->alloc, (size_t)(q - p) + 1), (size_t)(q - p), 1, -1};
            if (!it.lit) return diag_set(d, SP_ENOMEM, "parse(format): out of memory");
            memcpy(it.lit, p, it.nlit);
            it.lit[it.nlit] = 0;
            for (size_t k = 0; k < it.nlit; k++)
                if (it.lit[k] != ' ') it.spaces = 0;
            if ((rc = ga_push(ps, g, it, d))) return rc;
            p = q;
            continue;
        }
        char c = p[1];
        const ga_field *f = NULL;
        for (size_t k = 0; k < sizeof ga_fields / sizeof *ga_fields; k++)
            if (ga_fields[k].c == c) f = &ga_fields[k];
        if (!f)
            return diag_set(d, SP_EINVAL, "parse(format): unknown field %%%c at column %d",
                            c ? c : ' ', (int)(p - fmt) + 1);
        if (g->n && g->items[g->n - 1].spec && c != '~' && g->items[g->n - 1].spec != '~')
            return diag_set(d, SP_EINVAL,
                            "parse(format): fields at column %d need a separator between them",
                            (int)(p - fmt) + 1);
        ga_item it = {c, NULL, 0, 0, -1};
        if (f->types[0] == SP_TS) {
            if (g->time_col < 0) {
                g->time_col = ps->ncols;
                if ((rc = parse_spec_col(ps, "time", 4, SP_TS, d))) return rc;
            }
            it.col = g->time_col;
            if (c == 'd' || c == 'x') g->has_date = 1;
            if (c == 't') g->has_tod = 1;
        } else if (f->cols[0]) {
            it.col = ps->ncols;
            for (int k = 0; k < 3 && f->cols[k]; k++)
                if ((rc = parse_spec_col(ps, f->cols[k], strlen(f->cols[k]), f->types[k], d)))
                    return rc;
        }
        if ((rc = ga_push(ps, g, it, d))) return rc;
        p += 2;
    }
    if (g->has_tod && !g->has_date)
        return diag_set(d, SP_EINVAL, "parse(format): %%t needs %%d for the date");
    ps->line = ga_line;
    return 0;
}

/* Date "dd/Mon/yyyy" or "yyyy-mm-dd" -> days. */
static int ga_date(const char *a, const char *b, int64_t *days)
{
    if (b - a == 11 && a[2] == '/' && a[6] == '/') {
        int64_t dd = parse_digits(a, 2), y = parse_digits(a + 7, 4);
        int mo = parse_month3(a + 3);
        if (dd < 1 || dd > 31 || y < 0 || !mo) return -1;
        *days = parse_days(y, mo, (int)dd);
        return 0;
    }
    if (b - a == 10 && a[4] == '-' && a[7] == '-') {
        int64_t y = parse_digits(a, 4), mo = parse_digits(a + 5, 2), dd = parse_digits(a + 8, 2);
        if (y < 0 || mo < 1 || mo > 12 || dd < 1 || dd > 31) return -1;
        *days = parse_days(y, (int)mo, (int)dd);
        return 0;
    }
    return -1;
}

/* Time of day "hh:mm:ss[.frac]" -> ms. */
static int ga_tod(const char *a, const char *b, int64_t *ms)
{
    if (b - a < 8 || a[2] != ':' || a[5] != ':') return -1;
    int64_t h = parse_digits(a, 2), mi = parse_digits(a + 3, 2), s = parse_digits(a + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return -1;
    int64_t frac = 0;
    const char *p = a + 8;
    if (p < b) {
        if (*p != '.' && *p != ',') return -1;
        int k = 0;
        for (p++; p < b; p++, k++) {
            if ((unsigned)(*p - '0') > 9) return -1;
            if (k < 3) frac = frac * 10 + (*p - '0');
        }
        for (; k < 3; k++)
            frac *= 10;
    }
    *ms = (h * 3600 + mi * 60 + s) * 1000 + frac;
    return 0;
}

/* Where the field starting at p ends, given the item that follows it: where that literal
 * begins (one starting with '"' only at an unescaped quote), NULL when it does not occur. A
 * field followed by %~ or by nothing (NULL: the format's end) ends at the first space or the
 * end of the line: text after the format's end is ignored. */
static const char *ga_field_end(const char *p, const char *e, const ga_item *next)
{
    if (!next || next->spec) {
        const char *q = memchr(p, ' ', (size_t)(e - p));
        return q ? q : e;
    }
    if (next->spaces) {
        const char *q = memchr(p, ' ', (size_t)(e - p));
        return q ? q : NULL;
    }
    const char *from = p;
    while (p < e) {
        const char *q = memchr(p, next->lit[0], (size_t)(e - p));
        if (!q || (size_t)(e - q) < next->nlit) return NULL;
        if (memcmp(q, next->lit, next->nlit) == 0 && !(next->lit[0] == '"' && escaped(from, q)))
            return q;
        p = q + 1;
    }
    return NULL;
}

static const char *ga_line(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const ga_fmt *g = ps->impl;
    const char *p = s, *e = s + len;
    int64_t days = 0, tod = 0, zone = 0, full = 0;
    int have_full = 0;
    for (int c = 0; c < ps->ncols; c++) {
        l->v[c].i = 0;
        l->v[c].f = 0;
        parse_set_str(l, c, e, 0);
    }
    for (int i = 0; i < g->n; i++) {
        const ga_item *it = &g->items[i];
        if (!it->spec) {
            if (it->spaces) {
                if (p == e && i == g->n - 1) break;
                if (p == e || *p != ' ') return "line does not match the format";
                p = skip_sp(p, e);
                continue;
            }
            if ((size_t)(e - p) < it->nlit || memcmp(p, it->lit, it->nlit) != 0) {
                /* a missing closing quote at the very end */
                if (i == g->n - 1 && it->lit[0] == '"' && p == e) break;
                return "line does not match the format";
            }
            p += it->nlit;
            continue;
        }
        if (it->spec == '~') {
            p = skip_sp(p, e);
            continue;
        }
        const ga_item *next = i + 1 < g->n ? &g->items[i + 1] : NULL;
        const char *fe = ga_field_end(p, e, next);
        if (!fe) {
            if (next && !next->spec && i + 2 == g->n && next->lit[0] == '"')
                fe = e; /* unterminated last quoted field: the rest of the line */
            else
                return "line does not match the format";
        }
        int64_t v;
        switch (it->spec) {
        case '^':
            break;
        case 'r':
            split_request(l, it->col, p, fe);
            break;
        case 's':
            if (read_uint(p, fe, 0, &v) || v > 999) return "bad status";
            l->v[it->col].i = v;
            break;
        case 'b':
        case 'D':
        case 'L':
            if (read_uint(p, fe, 1, &v)) {
                l->reject_col = it->col;
                return "not a number";
            }
            l->v[it->col].i = v;
            break;
        case 'T': {
            const char *why = parse_set_text(ps, l, it->col, p, (size_t)(fe - p));
            if (why) {
                l->reject_col = it->col;
                return why;
            }
            break;
        }
        case 'd':
            if (ga_date(p, fe, &days)) return "bad date";
            break;
        case 't':
            if (ga_tod(p, fe, &tod)) return "bad time";
            break;
        case 'z':
            if (fe > p && parse_zone(p, fe, &zone) != fe) return "bad time zone";
            break;
        case 'x': {
            const char *why = parse_set_text(ps, l, it->col, p, (size_t)(fe - p));
            if (why) return "bad time";
            full = l->v[it->col].i;
            have_full = 1;
            break;
        }
        default: /* strings */
            parse_set_str(l, it->col, p, (size_t)(fe - p));
        }
        p = fe;
    }
    if (g->time_col >= 0)
        l->v[g->time_col].i = have_full ? full - zone * 1000 : days * 86400000 + tod - zone * 1000;
    return NULL;
}
