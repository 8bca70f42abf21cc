/* expr.c — expression trees: the node pool, type checking (expr_compile keeps the typed
 * tree), the host evaluator, built-in monoid recognition and the host fold.
 *
 * Semantics follow the Scala subset the script language compiles from: integers wrap on
 * overflow (two's complement, like the JVM), integer / and % truncate toward zero and fail on
 * a zero divisor, MIN_VALUE / -1 == MIN_VALUE, float division by zero gives Infinity/NaN,
 * float → integer casts saturate and map NaN to 0 (Java's d2i/d2l). */
#include "ops/expr_int.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- bump memory */

struct expr_blk {
    struct expr_blk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

enum { EXPR_BLK_MIN = 16384 };

void expr_scratch_init(expr_scratch *s, const sp_allocator *a)
{
    s->a = a;
    s->head = NULL;
}

void *expr_scratch_alloc(expr_scratch *s, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    struct expr_blk *b = s->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > EXPR_BLK_MIN ? n : EXPR_BLK_MIN;
        b = mem_alloc(s->a, sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = s->head;
        s->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

/* Keeps the oldest block (the one a steady state reuses), frees the rest. */
void expr_scratch_reset(expr_scratch *s)
{
    struct expr_blk *b = s->head;
    if (!b) return;
    while (b->next) {
        struct expr_blk *next = b->next;
        mem_free(s->a, b);
        b = next;
    }
    b->used = 0;
    s->head = b;
}

void expr_scratch_free(expr_scratch *s)
{
    struct expr_blk *b = s->head;
    while (b) {
        struct expr_blk *next = b->next;
        mem_free(s->a, b);
        b = next;
    }
    s->head = NULL;
}

/* ---------------------------------------------------------------------------------- pool */

struct expr_pool {
    expr_scratch mem;
};

int expr_pool_new(const sp_allocator *a, expr_pool **out)
{
    expr_pool *p = mem_alloc(a, sizeof *p);
    *out = p;
    if (!p) return SP_ENOMEM;
    expr_scratch_init(&p->mem, a);
    return SP_OK;
}

void expr_pool_free(expr_pool *p)
{
    if (!p) return;
    const sp_allocator *a = p->mem.a;
    expr_scratch_free(&p->mem);
    mem_free(a, p);
}

sp_expr *expr_make(expr_pool *p, expr_kind kind, int n, sp_expr *const *kids)
{
    if (!p || n < 0 || (n > 0 && !kids)) return NULL;
    for (int i = 0; i < n; i++)
        if (!kids[i]) return NULL;
    sp_expr *e = expr_scratch_alloc(&p->mem, sizeof *e + (size_t)n * sizeof(sp_expr *));
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->n = n;
    e->kids = (sp_expr **)(e + 1);
    for (int i = 0; i < n; i++)
        e->kids[i] = kids[i];
    return e;
}

sp_expr *expr_make_str(expr_pool *p, const char *s, size_t len)
{
    if (!s) return NULL;
    sp_expr *e = expr_make(p, EX_STR, 0, NULL);
    char *c = e ? expr_scratch_alloc(&p->mem, len + 1) : NULL;
    if (!c) return NULL;
    memcpy(c, s, len);
    c[len] = '\0';
    e->s = c;
    e->slen = len;
    return e;
}

/* ----------------------------------------------------------------------------- typing */

int expr_num_rank(sp_type t)
{
    switch (t) {
    case SP_I32:
        return 0;
    case SP_I64:
    case SP_TS:
        return 1;
    case SP_F32:
        return 2;
    case SP_F64:
        return 3;
    default:
        return -1;
    }
}

sp_type expr_promote(sp_type x, sp_type y)
{
    if (x == y) return x;
    static const sp_type by_rank[] = {SP_I32, SP_I64, SP_F32, SP_F64};
    int r = expr_num_rank(x) > expr_num_rank(y) ? expr_num_rank(x) : expr_num_rank(y);
    assert(r >= 0);
    return by_rank[r];
}

static int expr_is_int(sp_type t)
{
    return t == SP_I32 || t == SP_I64 || t == SP_TS;
}

static int expr_is_leaf(const sp_td *t, sp_type *leaf)
{
    if (t->kind != TD_LEAF) return 0;
    *leaf = t->leaf;
    return 1;
}

static const char *expr_op_verb(sp_op op)
{
    switch (op) {
    case SP_OP_ADD:
        return "add";
    case SP_OP_SUB:
        return "subtract";
    case SP_OP_MUL:
        return "multiply";
    case SP_OP_DIV:
        return "divide";
    case SP_OP_MOD:
        return "take the remainder of";
    case SP_OP_MIN:
        return "take the min of";
    case SP_OP_MAX:
        return "take the max of";
    default:
        return "compare";
    }
}

typedef struct tc_ctx {
    const sp_allocator *a;
    const sp_td *arg[2];
    sp_diag *d;
} tc_ctx;

/* SP_ETYPE with "L:C: " when the node knows its position. */
__attribute__((format(printf, 3, 4))) static int tc_err(const tc_ctx *c, const sp_expr *e,
                                                        const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e && e->line > 0) return diag_set(c->d, SP_ETYPE, "%d:%d: %s", e->line, e->col, msg);
    return diag_set(c->d, SP_ETYPE, "%s", msg);
}

/* A type's text into buf (for messages). */
static const char *tc_name(const tc_ctx *c, const sp_td *t, char *buf, size_t size)
{
    strbuf sb;
    sb_init(&sb, c->a);
    td_format(t, &sb);
    snprintf(buf, size, "%s", sb.len && !sb.oom ? sb.s : "?");
    sb_free(&sb);
    return buf;
}

static int tc_oom(const tc_ctx *c)
{
    return diag_set(c->d, SP_ENOMEM, "type check: out of memory");
}

void expr_typed_free(const sp_allocator *a, expr_typed *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        expr_typed_free(a, t->kids[i]);
    td_free(a, t->td);
    mem_free(a, t);
}

static int tc_leaf(const tc_ctx *c, expr_typed *t, sp_type leaf)
{
    t->td = td_leaf(c->a, leaf);
    return t->td ? SP_OK : tc_oom(c);
}

static int tc_binop(const tc_ctx *c, expr_typed *t)
{
    const sp_expr *e = t->e;
    const sp_td *x = t->kids[0]->td, *y = t->kids[1]->td;
    sp_type lx = SP_TYPE_COUNT, ly = SP_TYPE_COUNT;
    int leaves = expr_is_leaf(x, &lx) && expr_is_leaf(y, &ly);
    int num = leaves && expr_num_rank(lx) >= 0 && expr_num_rank(ly) >= 0;
    char bx[128], by[128];
    switch (e->op) {
    case SP_OP_ADD:
        if (leaves && lx == SP_STR && ly == SP_STR) return tc_leaf(c, t, SP_STR);
        /* fall through */
    case SP_OP_SUB:
    case SP_OP_MUL:
    case SP_OP_DIV:
    case SP_OP_MOD:
    case SP_OP_MIN:
    case SP_OP_MAX:
        if (!num) break;
        return tc_leaf(c, t, expr_promote(lx, ly) == SP_TS ? SP_I64 : expr_promote(lx, ly));
    case SP_OP_EQ:
    case SP_OP_NE:
    case SP_OP_LT:
    case SP_OP_LE:
    case SP_OP_GT:
    case SP_OP_GE:
        if (num || (leaves && lx == ly && (lx == SP_STR || lx == SP_BOOL)))
            return tc_leaf(c, t, SP_BOOL);
        break;
    case SP_OP_AND:
    case SP_OP_OR:
        if (leaves && lx == SP_BOOL && ly == SP_BOOL) return tc_leaf(c, t, SP_BOOL);
        return tc_err(c, e, "%s needs bool operands, got %s and %s",
                      e->op == SP_OP_AND ? "&&" : "||", tc_name(c, x, bx, sizeof bx),
                      tc_name(c, y, by, sizeof by));
    default:
        return tc_err(c, e, "operator %d is not a binary operator", (int)e->op);
    }
    return tc_err(c, e, "cannot %s %s and %s", expr_op_verb(e->op), tc_name(c, x, bx, sizeof bx),
                  tc_name(c, y, by, sizeof by));
}

static int tc_cast(const tc_ctx *c, expr_typed *t)
{
    const sp_expr *e = t->e;
    sp_type from;
    char bx[128];
    int ok = expr_is_leaf(t->kids[0]->td, &from);
    if (ok) {
        switch (e->to) {
        case SP_I32:
        case SP_I64:
        case SP_F32:
        case SP_F64:
            ok = expr_num_rank(from) >= 0 || from == SP_STR;
            break;
        case SP_TS:
            ok = expr_is_int(from);
            break;
        case SP_STR:
            ok = 1;
            break;
        case SP_BOOL:
            ok = from == SP_BOOL || from == SP_STR;
            break;
        default:
            ok = 0;
        }
    }
    if (!ok)
        return tc_err(c, e, "cannot convert %s to %s", tc_name(c, t->kids[0]->td, bx, sizeof bx),
                      sp_type_name(e->to));
    return tc_leaf(c, t, e->to);
}

static int tc_if(const tc_ctx *c, expr_typed *t)
{
    const sp_expr *e = t->e;
    const sp_td *cd = t->kids[0]->td, *x = t->kids[1]->td, *y = t->kids[2]->td;
    sp_type lc, lx, ly;
    char bx[128], by[128];
    if (!expr_is_leaf(cd, &lc) || lc != SP_BOOL)
        return tc_err(c, e, "if needs a bool condition, got %s", tc_name(c, cd, bx, sizeof bx));
    if (expr_is_leaf(x, &lx) && expr_is_leaf(y, &ly) && expr_num_rank(lx) >= 0 &&
        expr_num_rank(ly) >= 0)
        return tc_leaf(c, t, expr_promote(lx, ly));
    if (!td_equal(x, y))
        return tc_err(c, e, "if branches have different types: %s and %s",
                      tc_name(c, x, bx, sizeof bx), tc_name(c, y, by, sizeof by));
    t->td = td_copy(c->a, x);
    return t->td ? SP_OK : tc_oom(c);
}

static int tc_node(const tc_ctx *c, const sp_expr *e, expr_typed **out)
{
    *out = NULL;
    if (!e) return diag_set(c->d, SP_EINVAL, "type check: missing expression");
    expr_typed *t = mem_calloc(c->a, 1, sizeof *t + (size_t)e->n * sizeof(expr_typed *));
    if (!t) return tc_oom(c);
    t->e = e;
    t->kids = (expr_typed **)(t + 1);
    int rc = SP_OK;
    for (int i = 0; i < e->n && !rc; i++) {
        rc = tc_node(c, e->kids[i], &t->kids[i]);
        if (t->kids[i]) t->n = i + 1;
    }
    if (rc) goto fail;
    char bx[128];
    int want = -1;
    switch (e->kind) {
    case EX_ARG:
    case EX_I64:
    case EX_F64:
    case EX_BOOL:
    case EX_STR:
        want = 0;
        break;
    case EX_FIELD:
    case EX_UNOP:
    case EX_CAST:
        want = 1;
        break;
    case EX_BINOP:
        want = 2;
        break;
    case EX_IF:
        want = 3;
        break;
    case EX_TUPLE:
        want = e->n >= 1 ? e->n : -2;
        break;
    }
    if (want != e->n) {
        rc = tc_err(c, e, "malformed expression node (kind %d with %d children)", (int)e->kind,
                    e->n);
        goto fail;
    }
    switch (e->kind) {
    case EX_ARG:
        if (e->index < 0 || e->index > 1 || !c->arg[e->index]) {
            rc = tc_err(c, e, "the lambda has no parameter %d", e->index + 1);
            break;
        }
        t->td = td_copy(c->a, c->arg[e->index]);
        rc = t->td ? SP_OK : tc_oom(c);
        break;
    case EX_I64:
        rc = tc_leaf(c, t, SP_I64);
        break;
    case EX_F64:
        rc = tc_leaf(c, t, SP_F64);
        break;
    case EX_BOOL:
        rc = tc_leaf(c, t, SP_BOOL);
        break;
    case EX_STR:
        rc = tc_leaf(c, t, SP_STR);
        break;
    case EX_FIELD: {
        const sp_td *k = t->kids[0]->td;
        if (k->kind != TD_TUPLE) {
            rc = tc_err(c, e, "_%d of %s: not a tuple", e->index + 1, tc_name(c, k, bx, sizeof bx));
            break;
        }
        if (e->index < 0 || e->index >= k->n) {
            rc = tc_err(c, e, "_%d is out of range for %s", e->index + 1,
                        tc_name(c, k, bx, sizeof bx));
            break;
        }
        t->td = td_copy(c->a, k->child[e->index]);
        rc = t->td ? SP_OK : tc_oom(c);
        break;
    }
    case EX_TUPLE: {
        sp_td **ch = mem_calloc(c->a, (size_t)e->n, sizeof *ch);
        if (!ch) {
            rc = tc_oom(c);
            break;
        }
        int ok = 1;
        for (int i = 0; i < e->n; i++)
            ok = ok && (ch[i] = td_copy(c->a, t->kids[i]->td)) != NULL;
        if (ok) {
            t->td = td_tuple(c->a, e->n, ch);
        } else {
            for (int i = 0; i < e->n; i++)
                td_free(c->a, ch[i]);
        }
        mem_free(c->a, ch);
        rc = t->td ? SP_OK : tc_oom(c);
        break;
    }
    case EX_BINOP:
        rc = tc_binop(c, t);
        break;
    case EX_UNOP: {
        sp_type l;
        const sp_td *k = t->kids[0]->td;
        if (e->op == SP_OP_NOT) {
            if (expr_is_leaf(k, &l) && l == SP_BOOL)
                rc = tc_leaf(c, t, SP_BOOL);
            else
                rc = tc_err(c, e, "! needs a bool, got %s", tc_name(c, k, bx, sizeof bx));
        } else if (e->op == SP_OP_NEG) {
            if (expr_is_leaf(k, &l) && expr_num_rank(l) >= 0)
                rc = tc_leaf(c, t, l == SP_TS ? SP_I64 : l);
            else
                rc = tc_err(c, e, "cannot negate %s", tc_name(c, k, bx, sizeof bx));
        } else {
            rc = tc_err(c, e, "operator %d is not a unary operator", (int)e->op);
        }
        break;
    }
    case EX_IF:
        rc = tc_if(c, t);
        break;
    case EX_CAST:
        rc = tc_cast(c, t);
        break;
    }
    if (rc) goto fail;
    td_layout(t->td, 0);
    *out = t;
    return SP_OK;
fail:
    expr_typed_free(c->a, t);
    return rc;
}

int expr_compile(const sp_expr *e, const sp_allocator *a, const sp_td *arg0, const sp_td *arg1,
                 expr_typed **out, sp_diag *d)
{
    tc_ctx c = {a, {arg0, arg1}, d};
    return tc_node(&c, e, out);
}

int expr_typecheck(const sp_expr *e, const sp_allocator *a, const sp_td *arg0, const sp_td *arg1,
                   sp_td **out, sp_diag *d)
{
    expr_typed *t;
    *out = NULL;
    int rc = expr_compile(e, a, arg0, arg1, &t, d);
    if (rc) return rc;
    *out = t->td;
    t->td = NULL;
    expr_typed_free(a, t);
    return SP_OK;
}

/* ------------------------------------------------------------------------ host values */

/* Java's d2l / d2i: NaN → 0, saturate, truncate toward zero. */
static int64_t ev_d2l(double v)
{
    if (isnan(v)) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static int64_t ev_d2i(double v)
{
    if (isnan(v)) return 0;
    if (v >= 2147483647.0) return INT32_MAX;
    if (v <= -2147483648.0) return INT32_MIN;
    return (int32_t)v;
}

/* Integer of type t from the wrapped 64-bit pattern. */
static int64_t ev_wrap(sp_type t, uint64_t v)
{
    return t == SP_I32 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
}

/* Numeric leaf x converted to numeric type t. */
static expr_val ev_conv(const expr_val *x, sp_type t)
{
    expr_val r = {.t = t};
    int xf = x->t == SP_F32 || x->t == SP_F64;
    if (t == SP_F32 || t == SP_F64) {
        double v = xf ? x->u.f : (double)x->u.i;
        r.u.f = t == SP_F32 ? (double)(float)v : v;
    } else if (xf) {
        r.u.i = t == SP_I32 ? ev_d2i(x->u.f) : ev_d2l(x->u.f);
    } else {
        r.u.i = ev_wrap(t, (uint64_t)x->u.i);
    }
    return r;
}

typedef struct ev_ctx {
    const expr_val *args;
    expr_scratch *s;
    sp_diag *d;
} ev_ctx;

static int ev_oom(ev_ctx *c)
{
    return diag_set(c->d, SP_ENOMEM, "evaluation: out of memory");
}

static int ev_str_cmp(const expr_val *x, const expr_val *y)
{
    if (x->u.s.id != UINT32_MAX && y->u.s.id != UINT32_MAX && x->u.s.id == y->u.s.id) return 0;
    size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
    int r = n ? memcmp(x->u.s.p, y->u.s.p, n) : 0;
    if (r) return r;
    return x->u.s.len < y->u.s.len ? -1 : x->u.s.len > y->u.s.len;
}

static int ev_cmp_result(sp_op op, int cmp)
{
    switch (op) {
    case SP_OP_EQ:
        return cmp == 0;
    case SP_OP_NE:
        return cmp != 0;
    case SP_OP_LT:
        return cmp < 0;
    case SP_OP_LE:
        return cmp <= 0;
    case SP_OP_GT:
        return cmp > 0;
    default:
        return cmp >= 0;
    }
}

/* Java's min/max on doubles: NaN wins; written like the device helper. */
static double ev_fmin(double x, double y)
{
    return (x < y || isnan(x)) ? x : y;
}

static double ev_fmax(double x, double y)
{
    return (x > y || isnan(x)) ? x : y;
}

static int ev_binop(ev_ctx *c, const expr_typed *t, const expr_val *x, const expr_val *y,
                    expr_val *r)
{
    sp_op op = t->e->op;
    sp_type rt = t->td->leaf;
    if (x->t == SP_STR) {
        if (op == SP_OP_ADD) {
            char *p = expr_scratch_alloc(c->s, x->u.s.len + y->u.s.len + 1);
            if (!p) return ev_oom(c);
            if (x->u.s.len) memcpy(p, x->u.s.p, x->u.s.len);
            if (y->u.s.len) memcpy(p + x->u.s.len, y->u.s.p, y->u.s.len);
            p[x->u.s.len + y->u.s.len] = '\0';
            *r = (expr_val){.t = SP_STR, .u.s = {p, x->u.s.len + y->u.s.len, UINT32_MAX}};
            return SP_OK;
        }
        *r = (expr_val){.t = SP_BOOL, .u.i = ev_cmp_result(op, ev_str_cmp(x, y))};
        return SP_OK;
    }
    if (x->t == SP_BOOL) {
        int cmp = (x->u.i > y->u.i) - (x->u.i < y->u.i);
        *r = (expr_val){.t = SP_BOOL, .u.i = ev_cmp_result(op, cmp)};
        return SP_OK;
    }
    sp_type ct = expr_promote(x->t, y->t);
    if (ct == SP_TS) ct = SP_I64;
    expr_val a = ev_conv(x, ct), b = ev_conv(y, ct);
    int fl = ct == SP_F32 || ct == SP_F64;
    if (op >= SP_OP_EQ && op <= SP_OP_GE) {
        int cmp;
        if (fl) {
            /* NaN compares false except for != (IEEE, as the JVM does). */
            if (isnan(a.u.f) || isnan(b.u.f)) {
                *r = (expr_val){.t = SP_BOOL, .u.i = op == SP_OP_NE};
                return SP_OK;
            }
            cmp = (a.u.f > b.u.f) - (a.u.f < b.u.f);
        } else {
            cmp = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        }
        *r = (expr_val){.t = SP_BOOL, .u.i = ev_cmp_result(op, cmp)};
        return SP_OK;
    }
    r->t = rt;
    r->n = 0;
    if (fl) {
        double v, p = a.u.f, q = b.u.f;
        switch (op) {
        case SP_OP_ADD:
            v = p + q;
            break;
        case SP_OP_SUB:
            v = p - q;
            break;
        case SP_OP_MUL:
            v = p * q;
            break;
        case SP_OP_DIV:
            v = p / q;
            break;
        case SP_OP_MOD:
            v = fmod(p, q);
            break;
        case SP_OP_MIN:
            v = ev_fmin(p, q);
            break;
        default:
            v = ev_fmax(p, q);
            break;
        }
        r->u.f = rt == SP_F32 ? (double)(float)v : v;
        return SP_OK;
    }
    uint64_t p = (uint64_t)a.u.i, q = (uint64_t)b.u.i, v;
    switch (op) {
    case SP_OP_ADD:
        v = p + q;
        break;
    case SP_OP_SUB:
        v = p - q;
        break;
    case SP_OP_MUL:
        v = p * q;
        break;
    case SP_OP_DIV:
    case SP_OP_MOD:
        if (b.u.i == 0) return diag_set(c->d, SP_ERUNTIME, "division by zero");
        if (b.u.i == -1)
            v = op == SP_OP_DIV ? 0 - p : 0;
        else
            v = (uint64_t)(op == SP_OP_DIV ? a.u.i / b.u.i : a.u.i % b.u.i);
        break;
    case SP_OP_MIN:
        v = a.u.i < b.u.i ? p : q;
        break;
    default:
        v = a.u.i > b.u.i ? p : q;
        break;
    }
    r->u.i = ev_wrap(rt, v);
    return SP_OK;
}

/* Java's Integer.parseInt / Long.parseLong / Double.parseDouble on a string value. */
static int ev_parse(ev_ctx *c, const expr_val *x, sp_type to, expr_val *r)
{
    char buf[128];
    size_t n = x->u.s.len;
    int ok = n > 0 && n < sizeof buf;
    if (ok) {
        memcpy(buf, x->u.s.p, n);
        buf[n] = '\0';
    }
    *r = (expr_val){.t = to};
    if (ok && (to == SP_F32 || to == SP_F64)) {
        char *s = buf, *end;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        errno = 0;
        double v = strtod(s, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
            end++;
        ok = end != s && *end == '\0';
        r->u.f = to == SP_F32 ? (double)(float)v : v;
    } else if (ok && to == SP_BOOL) {
        ok = strcasecmp(buf, "true") == 0 || strcasecmp(buf, "false") == 0;
        r->u.i = strcasecmp(buf, "true") == 0;
    } else if (ok) {
        /* Integers: optional sign and decimal digits only, range checked. */
        const char *s = buf + (buf[0] == '-' || buf[0] == '+');
        ok = *s != '\0';
        for (const char *q = s; ok && *q; q++)
            ok = *q >= '0' && *q <= '9';
        if (ok) {
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            ok = errno == 0 && (to != SP_I32 || (v >= INT32_MIN && v <= INT32_MAX));
            r->u.i = v;
        }
    }
    if (!ok)
        return diag_set(c->d, SP_ERUNTIME, "cannot convert \"%.*s\" to %s", (int)(n > 64 ? 64 : n),
                        x->u.s.p, sp_type_name(to));
    return SP_OK;
}

static int ev_to_str(ev_ctx *c, const expr_val *x, expr_val *r)
{
    if (x->t == SP_STR) {
        *r = *x;
        return SP_OK;
    }
    strbuf sb;
    sb_init(&sb, c->s->a);
    char tmp[32];
    switch (x->t) {
    case SP_F64:
        format_java_double(x->u.f, &sb);
        break;
    case SP_F32:
        format_java_float((float)x->u.f, &sb);
        break;
    case SP_BOOL:
        sb_adds(&sb, x->u.i ? "true" : "false");
        break;
    default:
        snprintf(tmp, sizeof tmp, "%lld", (long long)x->u.i);
        sb_adds(&sb, tmp);
    }
    char *p = sb.oom ? NULL : expr_scratch_alloc(c->s, sb.len + 1);
    if (p) {
        if (sb.len) memcpy(p, sb.s, sb.len);
        p[sb.len] = '\0';
        *r = (expr_val){.t = SP_STR, .u.s = {p, sb.len, UINT32_MAX}};
    }
    sb_free(&sb);
    return p ? SP_OK : ev_oom(c);
}

static int ev_node(ev_ctx *c, const expr_typed *t, expr_val *out)
{
    const sp_expr *e = t->e;
    expr_val x, y;
    int rc;
    switch (e->kind) {
    case EX_ARG:
        *out = c->args[e->index];
        return SP_OK;
    case EX_I64:
        *out = (expr_val){.t = SP_I64, .u.i = e->i};
        return SP_OK;
    case EX_F64:
        *out = (expr_val){.t = SP_F64, .u.f = e->f};
        return SP_OK;
    case EX_BOOL:
        *out = (expr_val){.t = SP_BOOL, .u.i = e->i != 0};
        return SP_OK;
    case EX_STR:
        *out = (expr_val){.t = SP_STR, .u.s = {e->s, e->slen, UINT32_MAX}};
        return SP_OK;
    case EX_FIELD:
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        assert(x.t == SP_TYPE_COUNT && e->index < x.n);
        *out = x.u.items[e->index];
        return SP_OK;
    case EX_TUPLE: {
        expr_val *items = expr_scratch_alloc(c->s, (size_t)e->n * sizeof *items);
        if (!items) return ev_oom(c);
        for (int i = 0; i < e->n; i++)
            if ((rc = ev_node(c, t->kids[i], &items[i]))) return rc;
        *out = (expr_val){.t = SP_TYPE_COUNT, .n = e->n, .u.items = items};
        return SP_OK;
    }
    case EX_BINOP:
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        if (e->op == SP_OP_AND || e->op == SP_OP_OR) {
            /* Short circuit: the right side runs only when it decides. */
            if ((e->op == SP_OP_AND) != (x.u.i != 0)) {
                *out = (expr_val){.t = SP_BOOL, .u.i = x.u.i != 0};
                return SP_OK;
            }
            if ((rc = ev_node(c, t->kids[1], &y))) return rc;
            *out = (expr_val){.t = SP_BOOL, .u.i = y.u.i != 0};
            return SP_OK;
        }
        if ((rc = ev_node(c, t->kids[1], &y))) return rc;
        return ev_binop(c, t, &x, &y, out);
    case EX_UNOP:
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        if (e->op == SP_OP_NOT) {
            *out = (expr_val){.t = SP_BOOL, .u.i = !x.u.i};
        } else if (x.t == SP_F32 || x.t == SP_F64) {
            *out = (expr_val){.t = x.t, .u.f = -x.u.f};
        } else {
            sp_type rt = t->td->leaf;
            *out = (expr_val){.t = rt, .u.i = ev_wrap(rt, 0 - (uint64_t)x.u.i)};
        }
        return SP_OK;
    case EX_IF:
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        if ((rc = ev_node(c, t->kids[x.u.i ? 1 : 2], &y))) return rc;
        *out = (t->td->kind == TD_LEAF && expr_num_rank(t->td->leaf) >= 0 && y.t != t->td->leaf)
                   ? ev_conv(&y, t->td->leaf)
                   : y;
        return SP_OK;
    case EX_CAST:
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        if (e->to == SP_STR) return ev_to_str(c, &x, out);
        if (x.t == SP_STR) return ev_parse(c, &x, e->to, out);
        if (e->to == SP_BOOL) {
            *out = x;
            return SP_OK;
        }
        *out = ev_conv(&x, e->to);
        return SP_OK;
    }
    return diag_set(c->d, SP_EINVAL, "evaluation: unknown node kind %d", (int)e->kind);
}

int expr_eval(const expr_typed *t, const expr_val *args, expr_scratch *s, expr_val *out, sp_diag *d)
{
    ev_ctx c = {args, s, d};
    return ev_node(&c, t, out);
}

static int ev_load(const sp_batch *b, const sp_td *td, int *col, size_t row, expr_scratch *s,
                   expr_val *out)
{
    if (td->kind == TD_TUPLE) {
        expr_val *items = expr_scratch_alloc(s, (size_t)td->n * sizeof *items);
        if (!items) return SP_ENOMEM;
        for (int i = 0; i < td->n; i++) {
            int rc = ev_load(b, td->child[i], col, row, s, &items[i]);
            if (rc) return rc;
        }
        *out = (expr_val){.t = SP_TYPE_COUNT, .n = td->n, .u.items = items};
        return SP_OK;
    }
    if (td->kind != TD_LEAF) return SP_EUNSUPPORTED;
    const sp_col *c = &b->cols[(*col)++];
    *out = (expr_val){.t = td->leaf};
    switch (td->leaf) {
    case SP_F32:
    case SP_F64:
        out->u.f = col_get_f64(c, row);
        break;
    case SP_STR:
        out->u.s.p = col_get_str(c, b->env->dict, row, &out->u.s.len);
        out->u.s.id = c->enc == ENC_DICT ? ((const uint32_t *)c->data)[row] : UINT32_MAX;
        break;
    default:
        out->u.i = col_get_i64(c, row);
        break;
    }
    return SP_OK;
}

int expr_val_load(const sp_batch *b, const sp_td *td, int first, size_t row, expr_scratch *s,
                  expr_val *out)
{
    int col = first;
    return ev_load(b, td, &col, row, s, out);
}

int expr_val_push(const expr_val *v, sp_col *cols, sp_dict *dict)
{
    if (v->t == SP_TYPE_COUNT) {
        int k = 0;
        for (int i = 0; i < v->n; i++) {
            int rc = expr_val_push(&v->u.items[i], cols + k, dict);
            if (rc < 0) return rc;
            k += rc;
        }
        return k;
    }
    int rc;
    switch (v->t) {
    case SP_F32:
    case SP_F64:
        rc = col_push_f64(cols, v->u.f);
        break;
    case SP_STR:
        if (cols->enc == ENC_RAW) {
            rc = col_push_text(cols, v->u.s.p, v->u.s.len);
        } else {
            uint32_t id =
                v->u.s.id != UINT32_MAX ? v->u.s.id : dict_intern(dict, v->u.s.p, v->u.s.len);
            rc = id == UINT32_MAX ? SP_ENOMEM : col_push_id(cols, id);
        }
        break;
    default:
        rc = col_push_i64(cols, v->u.i);
        break;
    }
    return rc ? SP_ENOMEM : 1;
}

int expr_val_emit(const expr_val *v, sp_emitter *em)
{
    if (v->t == SP_TYPE_COUNT) {
        for (int i = 0; i < v->n; i++) {
            int rc = expr_val_emit(&v->u.items[i], em);
            if (rc) return rc;
        }
        return SP_OK;
    }
    switch (v->t) {
    case SP_F32:
    case SP_F64:
        return sp_emit_f64(em, v->u.f);
    case SP_STR:
        return sp_emit_str(em, v->u.s.p, v->u.s.len);
    case SP_BOOL:
        return sp_emit_bool(em, (int)v->u.i);
    default:
        return sp_emit_i64(em, v->u.i);
    }
}

/* ----------------------------------------------------------------------------- monoids */

static int mono_arg(const sp_expr *e, int index)
{
    return e->kind == EX_ARG && e->index == index;
}

/* 1 when {x, y} is {a, b} in some order: *first receives x's parameter. */
static int mono_pair(const sp_expr *x, const sp_expr *y, int *first)
{
    if (mono_arg(x, 0) && mono_arg(y, 1))
        *first = 0;
    else if (mono_arg(x, 1) && mono_arg(y, 0))
        *first = 1;
    else
        return 0;
    return 1;
}

int expr_match_monoid(const sp_expr *f)
{
    int p, q;
    if (!f) return -1;
    if (f->kind == EX_BINOP && f->n == 2 && mono_pair(f->kids[0], f->kids[1], &p)) {
        if (f->op == SP_OP_ADD) return SP_AGG_SUM;
        if (f->op == SP_OP_MIN) return SP_AGG_MIN;
        if (f->op == SP_OP_MAX) return SP_AGG_MAX;
        return -1;
    }
    /* if (x CMP y) p else q with {x,y} = {p,q} = {a,b}. */
    if (f->kind != EX_IF || f->n != 3) return -1;
    const sp_expr *c = f->kids[0];
    if (c->kind != EX_BINOP || c->n != 2 || !mono_pair(c->kids[0], c->kids[1], &p) ||
        !mono_pair(f->kids[1], f->kids[2], &q))
        return -1;
    int picks_left = p == q; /* the then-branch is the comparison's left operand */
    switch (c->op) {
    case SP_OP_LT:
    case SP_OP_LE:
        return picks_left ? SP_AGG_MIN : SP_AGG_MAX;
    case SP_OP_GT:
    case SP_OP_GE:
        return picks_left ? SP_AGG_MAX : SP_AGG_MIN;
    default:
        return -1;
    }
}

/* ------------------------------------------------------------------------------- fold */

/* Copies v's tuples and scratch strings into s (dictionary strings stay where they are). */
static int fold_copy(const expr_val *v, expr_scratch *s, expr_val *out)
{
    *out = *v;
    if (v->t == SP_TYPE_COUNT) {
        expr_val *items = expr_scratch_alloc(s, (size_t)v->n * sizeof *items);
        if (!items) return SP_ENOMEM;
        for (int i = 0; i < v->n; i++)
            if (fold_copy(&v->u.items[i], s, &items[i])) return SP_ENOMEM;
        out->u.items = items;
    } else if (v->t == SP_STR && v->u.s.id == UINT32_MAX) {
        char *p = expr_scratch_alloc(s, v->u.s.len + 1);
        if (!p) return SP_ENOMEM;
        if (v->u.s.len) memcpy(p, v->u.s.p, v->u.s.len);
        p[v->u.s.len] = '\0';
        out->u.s.p = p;
    }
    return SP_OK;
}

int expr_fold(const sp_expr *f, const sp_allocator *a, const sp_batch *in, const sp_td *vtd,
              int vcol, const size_t *rows, size_t nrows, sp_emitter *em, sp_diag *d)
{
    SP_CHECK(d, f && in && vtd && rows && nrows >= 1 && em, SP_EINVAL, "fold: bad argument");
    expr_typed *t = NULL;
    int rc = expr_compile(f, a, vtd, vtd, &t, d);
    if (rc) return rc;
    if (!td_equal(t->td, vtd)) {
        strbuf x, y;
        sb_init(&x, a);
        sb_init(&y, a);
        td_format(t->td, &x);
        td_format(vtd, &y);
        tc_ctx c = {a, {vtd, vtd}, d};
        rc = tc_err(&c, f, "the reduce function returns %s, the values are %s", x.len ? x.s : "?",
                    y.len ? y.s : "?");
        sb_free(&x);
        sb_free(&y);
        expr_typed_free(a, t);
        return rc;
    }
    /* acc lives in keep[cur]; each step evaluates in tmp and copies into keep[!cur]. */
    expr_scratch keep[2], tmp;
    expr_scratch_init(&keep[0], a);
    expr_scratch_init(&keep[1], a);
    expr_scratch_init(&tmp, a);
    int cur = 0;
    expr_val args[2];
    rc = expr_val_load(in, vtd, vcol, rows[0], &keep[0], &args[0]);
    for (size_t k = 1; k < nrows && !rc; k++) {
        expr_val r;
        expr_scratch_reset(&tmp);
        rc = expr_val_load(in, vtd, vcol, rows[k], &tmp, &args[1]);
        if (rc) break;
        rc = expr_eval(t, args, &tmp, &r, d);
        if (rc) goto out;
        expr_scratch_reset(&keep[!cur]);
        rc = fold_copy(&r, &keep[!cur], &args[0]);
        cur = !cur;
    }
    if (rc) {
        rc = rc == SP_EUNSUPPORTED
                 ? diag_set(d, rc, "fold: values with options or lists are not supported")
                 : diag_set(d, SP_ENOMEM, "fold: out of memory");
        goto out;
    }
    rc = expr_val_emit(&args[0], em);
    if (rc) rc = diag_set(d, rc, "fold: cannot emit the result");
out:
    expr_scratch_free(&keep[0]);
    expr_scratch_free(&keep[1]);
    expr_scratch_free(&tmp);
    expr_typed_free(a, t);
    return rc;
}
