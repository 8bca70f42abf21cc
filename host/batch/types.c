/* types.c — element type trees (td_*): construction, layout into flattened columns, the
 * type-string parser and printer. */
#include "batch/batch_int.h"

#include <assert.h>
#include <ctype.h>
#include <string.h>

size_t type_width(sp_type t)
{
    switch (t) {
    case SP_BOOL:
        return 1;
    case SP_I32:
    case SP_F32:
    case SP_STR:
        return 4;
    default:
        return 8;
    }
}

static sp_td *td_node(const sp_allocator *a, td_kind kind, int n)
{
    sp_td *t = mem_calloc(a, 1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->n = n;
    if (n > 0) {
        t->child = mem_calloc(a, (size_t)n, sizeof *t->child);
        if (!t->child) {
            mem_free(a, t);
            return NULL;
        }
    }
    return t;
}

sp_td *td_leaf(const sp_allocator *a, sp_type t)
{
    assert((unsigned)t < SP_TYPE_COUNT);
    sp_td *n = td_node(a, TD_LEAF, 0);
    if (n) {
        n->leaf = t;
        n->ncols = 1;
    }
    return n;
}

sp_td *td_tuple(const sp_allocator *a, int n, sp_td **children)
{
    int ok = n >= 1;
    for (int i = 0; i < n; i++)
        ok = ok && children[i] != NULL;
    sp_td *t = ok ? td_node(a, TD_TUPLE, n) : NULL;
    if (!t) {
        for (int i = 0; i < n; i++)
            td_free(a, children[i]);
        return NULL;
    }
    memcpy(t->child, children, (size_t)n * sizeof *children);
    td_layout(t, 0);
    return t;
}

sp_td *td_tuple2(const sp_allocator *a, sp_td *x, sp_td *y)
{
    sp_td *c[2] = {x, y};
    return td_tuple(a, 2, c);
}

static sp_td *td_wrap(const sp_allocator *a, td_kind kind, sp_td *child)
{
    sp_td *t = child ? td_node(a, kind, 1) : NULL;
    if (!t) {
        td_free(a, child);
        return NULL;
    }
    t->child[0] = child;
    td_layout(t, 0);
    return t;
}

sp_td *td_option(const sp_allocator *a, sp_td *child)
{
    return td_wrap(a, TD_OPTION, child);
}

sp_td *td_list(const sp_allocator *a, sp_td *child)
{
    return td_wrap(a, TD_LIST, child);
}

sp_td *td_copy(const sp_allocator *a, const sp_td *t)
{
    if (!t) return NULL;
    sp_td *c = td_node(a, t->kind, t->n);
    if (!c) return NULL;
    c->leaf = t->leaf;
    c->col = t->col;
    c->ncols = t->ncols;
    for (int i = 0; i < t->n; i++) {
        c->child[i] = td_copy(a, t->child[i]);
        if (!c->child[i]) {
            td_free(a, c);
            return NULL;
        }
    }
    return c;
}

void td_free(const sp_allocator *a, sp_td *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        td_free(a, t->child[i]);
    mem_free(a, t->child);
    mem_free(a, t);
}

int td_layout(sp_td *t, int first)
{
    t->col = first;
    int next = first;
    switch (t->kind) {
    case TD_LEAF:
        next = first + 1;
        break;
    case TD_TUPLE:
        for (int i = 0; i < t->n; i++)
            next += td_layout(t->child[i], next);
        break;
    case TD_OPTION:
    case TD_LIST:
        next = first + 1;
        next += td_layout(t->child[0], next);
        break;
    }
    t->ncols = next - first;
    return t->ncols;
}

int td_equal(const sp_td *x, const sp_td *y)
{
    if (x == y) return 1;
    if (!x || !y || x->kind != y->kind || x->n != y->n) return 0;
    if (x->kind == TD_LEAF) return x->leaf == y->leaf;
    for (int i = 0; i < x->n; i++)
        if (!td_equal(x->child[i], y->child[i])) return 0;
    return 1;
}

sp_type td_col_type(const sp_td *t, int c)
{
    assert(c >= t->col && c < t->col + t->ncols);
    for (;;) {
        switch (t->kind) {
        case TD_LEAF:
            return t->leaf;
        case TD_OPTION:
            if (c == t->col) return SP_BOOL;
            t = t->child[0];
            break;
        case TD_LIST:
            if (c == t->col) return SP_I64;
            t = t->child[0];
            break;
        case TD_TUPLE: {
            const sp_td *next = NULL;
            for (int i = 0; i < t->n && !next; i++)
                if (c < t->child[i]->col + t->child[i]->ncols) next = t->child[i];
            assert(next);
            t = next;
            break;
        }
        }
    }
}

int td_is_flat(const sp_td *t)
{
    if (t->kind == TD_OPTION || t->kind == TD_LIST) return 0;
    for (int i = 0; i < t->n; i++)
        if (!td_is_flat(t->child[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------ parsing */

typedef struct td_parser {
    const sp_allocator *a;
    const char *src;
    const char *p;
    sp_diag *d;
    int depth;
} td_parser;

/* Deep nesting (TD_MAX_DEPTH) is an error rather than a stack overflow. */

static const struct {
    const char *name;
    sp_type t;
} td_names[] = {
    {"i32", SP_I32},    {"i64", SP_I64},   {"f32", SP_F32},    {"f64", SP_F64},
    {"bool", SP_BOOL},  {"ts", SP_TS},     {"str", SP_STR},    {"Int", SP_I32},
    {"Long", SP_I64},   {"Float", SP_F32}, {"Double", SP_F64}, {"Boolean", SP_BOOL},
    {"String", SP_STR},
};

static void td_skip_ws(td_parser *ps)
{
    while (*ps->p && isspace((unsigned char)*ps->p))
        ps->p++;
}

static int td_err(td_parser *ps, const char *what)
{
    return diag_set(ps->d, SP_EPARSE, "type \"%s\": col %d: expected %s", ps->src,
                    (int)(ps->p - ps->src) + 1, what);
}

static int td_expect(td_parser *ps, char c, const char *what)
{
    td_skip_ws(ps);
    if (*ps->p != c) return td_err(ps, what);
    ps->p++;
    return 0;
}

static int td_parse_type(td_parser *ps, sp_td **out);

static int td_parse_tuple(td_parser *ps, sp_td **out)
{
    sp_td *kids[256];
    int n = 0, rc = 0;
    ps->p++; /* '(' */
    for (;;) {
        if (n == (int)(sizeof kids / sizeof kids[0])) {
            rc = td_err(ps, "at most 256 tuple fields");
            goto fail;
        }
        rc = td_parse_type(ps, &kids[n]);
        if (rc) goto fail;
        n++;
        td_skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ')' && n >= 2) {
            ps->p++;
            break;
        }
        rc = td_err(ps, n >= 2 ? "',' or ')'" : "','");
        goto fail;
    }
    *out = td_tuple(ps->a, n, kids);
    return *out ? 0 : diag_set(ps->d, SP_ENOMEM, "type \"%s\": out of memory", ps->src);
fail:
    for (int i = 0; i < n; i++)
        td_free(ps->a, kids[i]);
    return rc;
}

static int td_parse_type(td_parser *ps, sp_td **out)
{
    *out = NULL;
    td_skip_ws(ps);
    if (++ps->depth > TD_MAX_DEPTH) return td_err(ps, "less nesting");
    int rc = 0;
    if (*ps->p == '(') {
        rc = td_parse_tuple(ps, out);
        ps->depth--;
        return rc;
    }
    const char *w = ps->p;
    while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
        ps->p++;
    size_t wl = (size_t)(ps->p - w);
    for (size_t i = 0; i < sizeof td_names / sizeof td_names[0]; i++) {
        if (strlen(td_names[i].name) == wl && memcmp(td_names[i].name, w, wl) == 0) {
            ps->depth--;
            *out = td_leaf(ps->a, td_names[i].t);
            return *out ? 0 : diag_set(ps->d, SP_ENOMEM, "type \"%s\": out of memory", ps->src);
        }
    }
    td_kind kind;
    if (wl == 6 && memcmp(w, "Option", 6) == 0)
        kind = TD_OPTION;
    else if ((wl == 4 && memcmp(w, "List", 4) == 0) || (wl == 8 && memcmp(w, "Iterable", 8) == 0) ||
             (wl == 3 && memcmp(w, "Seq", 3) == 0))
        kind = TD_LIST;
    else {
        ps->p = w;
        return td_err(ps, "a type (i32 i64 f32 f64 bool ts str, (..,..), Option[..], List[..])");
    }
    rc = td_expect(ps, '[', "'['");
    if (rc) return rc;
    sp_td *child;
    rc = td_parse_type(ps, &child);
    if (rc) return rc;
    rc = td_expect(ps, ']', "']'");
    if (rc) {
        td_free(ps->a, child);
        return rc;
    }
    ps->depth--;
    *out = kind == TD_OPTION ? td_option(ps->a, child) : td_list(ps->a, child);
    return *out ? 0 : diag_set(ps->d, SP_ENOMEM, "type \"%s\": out of memory", ps->src);
}

int td_parse(const sp_allocator *a, const char *s, sp_td **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, s != NULL, SP_EINVAL, "td_parse: NULL type string");
    td_parser ps = {a, s, s, d, 0};
    sp_td *t;
    int rc = td_parse_type(&ps, &t);
    if (rc) return rc;
    td_skip_ws(&ps);
    if (*ps.p) {
        td_free(a, t);
        return td_err(&ps, "end of type");
    }
    td_layout(t, 0);
    *out = t;
    return 0;
}

void td_format(const sp_td *t, strbuf *sb)
{
    switch (t->kind) {
    case TD_LEAF:
        sb_adds(sb, sp_type_name(t->leaf));
        break;
    case TD_TUPLE:
        sb_addc(sb, '(');
        for (int i = 0; i < t->n; i++) {
            if (i) sb_addc(sb, ',');
            td_format(t->child[i], sb);
        }
        sb_addc(sb, ')');
        break;
    case TD_OPTION:
    case TD_LIST:
        sb_adds(sb, t->kind == TD_OPTION ? "Option[" : "List[");
        td_format(t->child[0], sb);
        sb_addc(sb, ']');
        break;
    }
}
