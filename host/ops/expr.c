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
    e->pool = p;
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
    const sp_td *arg[EXPR_MAX_ARGS];
    int nargs;
    sp_diag *d;
    int *depth; /* nesting level of the node being typed (shared with inner lambdas) */
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

/* The nodes of a chain (expr_typed.spine, n of them, NULL entries allowed), without
 * recursing along it: sp[i]'s kids[0] is sp[i - 1] for i > 0. */
static void typed_free_chain(const sp_allocator *a, expr_typed **sp, int n)
{
    for (int i = 0; i < n; i++) {
        expr_typed *t = sp[i];
        if (!t) continue;
        if (i == 0 && t->n >= 1) expr_typed_free(a, t->kids[0]);
        if (t->n >= 2) expr_typed_free(a, t->kids[1]);
        td_free(a, t->td);
        mem_free(a, t);
    }
}

void expr_typed_free(const sp_allocator *a, expr_typed *t)
{
    if (!t) return;
    if (t->nspine) {
        expr_typed **sp = t->spine;
        typed_free_chain(a, sp, t->nspine); /* frees t too */
        mem_free(a, sp);
        return;
    }
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
        /* str + str only: other values need .toString (the tests pin this). */
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

/* ------------------------------------------------------------------ nothing, unify, calls */

int expr_is_nothing(const sp_td *t)
{
    return t && t->kind == TD_TUPLE && t->n == 0;
}

/* The type of None's and Seq()'s element: an empty tuple (td_tuple refuses n == 0). */
static sp_td *tc_nothing(const sp_allocator *a)
{
    sp_td *t = td_leaf(a, SP_BOOL);
    if (t) {
        t->kind = TD_TUPLE;
        t->n = 0;
        t->ncols = 0;
    }
    return t;
}

/* The common type of x and y: equal types, nothing with anything, options and lists of
 * unifiable elements, tuples element-wise; numeric leaves promote only at the top (top = 1),
 * where the evaluator converts. *out NULL and SP_ETYPE when they do not unify. */
static int tc_unify(const tc_ctx *c, const sp_td *x, const sp_td *y, int top, sp_td **out)
{
    *out = NULL;
    sp_type lx, ly;
    if (td_equal(x, y) || expr_is_nothing(y)) {
        *out = td_copy(c->a, x);
    } else if (expr_is_nothing(x)) {
        *out = td_copy(c->a, y);
    } else if (top && expr_is_leaf(x, &lx) && expr_is_leaf(y, &ly) && expr_num_rank(lx) >= 0 &&
               expr_num_rank(ly) >= 0) {
        *out = td_leaf(c->a, expr_promote(lx, ly));
    } else if (x->kind == y->kind && (x->kind == TD_OPTION || x->kind == TD_LIST)) {
        sp_td *ch;
        int rc = tc_unify(c, x->child[0], y->child[0], 0, &ch);
        if (rc) return rc;
        *out = x->kind == TD_OPTION ? td_option(c->a, ch) : td_list(c->a, ch);
    } else if (x->kind == TD_TUPLE && y->kind == TD_TUPLE && x->n == y->n) {
        sp_td **ch = mem_calloc(c->a, (size_t)x->n, sizeof *ch);
        if (!ch) return tc_oom(c);
        int rc = SP_OK;
        for (int i = 0; i < x->n && !rc; i++)
            rc = tc_unify(c, x->child[i], y->child[i], 0, &ch[i]);
        if (rc) {
            for (int i = 0; i < x->n; i++)
                td_free(c->a, ch[i]);
            mem_free(c->a, ch);
            return rc;
        }
        *out = td_tuple(c->a, x->n, ch);
        mem_free(c->a, ch);
    } else {
        return SP_ETYPE;
    }
    if (!*out) return tc_oom(c);
    td_layout(*out, 0);
    return SP_OK;
}

typedef enum call_id {
    CALL_SOME = 1,
    CALL_NONE,
    CALL_SEQ,
    CALL_S_LENGTH,
    CALL_S_CONTAINS,
    CALL_S_STARTS,
    CALL_S_ENDS,
    CALL_S_SPLIT,
    CALL_S_LOWER,
    CALL_S_UPPER,
    CALL_S_TRIM,
    CALL_S_SUBSTRING,
    CALL_S_ISEMPTY,
    CALL_S_NONEMPTY,
    CALL_L_SUM,
    CALL_L_SIZE,
    CALL_L_ISEMPTY,
    CALL_L_NONEMPTY,
    CALL_L_MAP,
    CALL_L_FILTER,
    CALL_L_MIN,
    CALL_L_MAX,
    CALL_L_HEAD,
    CALL_L_CONTAINS,
    CALL_L_MKSTRING,
    CALL_O_GETORELSE,
    CALL_O_ISDEFINED,
    CALL_O_ISEMPTY,
    CALL_O_GET,
    CALL_MILLIS,
    CALL_CONV
} call_id;

static int tc_node(const tc_ctx *c, const sp_expr *e, expr_typed **out);

/* Types an inner lambda (EX_LAMBDA) whose parameter has type pt. */
static int tc_lambda(const tc_ctx *c, const sp_expr *e, const sp_td *pt, expr_typed **out)
{
    *out = NULL;
    if (!e || e->kind != EX_LAMBDA || e->n != 1)
        return tc_err(c, e, "this argument must be a lambda");
    if (e->index < c->nargs || e->index >= EXPR_MAX_ARGS)
        return tc_err(c, e, "lambda parameter %d: nested too deeply", e->index + 1);
    tc_ctx in = *c;
    for (int i = c->nargs; i < e->index; i++)
        in.arg[i] = NULL;
    in.arg[e->index] = pt;
    in.nargs = e->index + 1;
    expr_typed *t = mem_calloc(c->a, 1, sizeof *t + sizeof(expr_typed *));
    if (!t) return tc_oom(c);
    t->e = e;
    t->kids = (expr_typed **)(t + 1);
    int rc = tc_node(&in, e->kids[0], &t->kids[0]);
    if (!rc) {
        t->n = 1;
        t->td = td_copy(c->a, t->kids[0]->td);
        rc = t->td ? SP_OK : tc_oom(c);
    }
    if (rc) {
        expr_typed_free(c->a, t);
        return rc;
    }
    *out = t;
    return SP_OK;
}

static int tc_is(const sp_td *t, sp_type leaf)
{
    return t->kind == TD_LEAF && t->leaf == leaf;
}

static int tc_is_int(const sp_td *t)
{
    return t->kind == TD_LEAF && expr_is_int(t->leaf);
}

/* EX_CALL: types the receiver and arguments (lambdas with the receiver's element type), then
 * the call; t->call receives its id. */
static int tc_call(const tc_ctx *c, expr_typed *t)
{
    const sp_expr *e = t->e;
    const char *m = e->s ? e->s : "";
    char bx[128], by[128];
    int rc = SP_OK;
    /* Receiver (or every argument of a function) first; lambdas are typed below. */
    for (int i = 0; i < e->n && !rc; i++) {
        if (e->kids[i] && e->kids[i]->kind == EX_LAMBDA) continue;
        rc = tc_node(c, e->kids[i], &t->kids[i]);
    }
    t->n = e->n;
    if (rc) return rc;
    if (!strcmp(m, "Some") || !strcmp(m, "None") || !strcmp(m, "Seq") || !strcmp(m, "List")) {
        if (m[0] == 'S' && m[1] == 'o') {
            if (e->n != 1) return tc_err(c, e, "Some takes 1 argument, got %d", e->n);
            t->call = CALL_SOME;
            sp_td *ch = td_copy(c->a, t->kids[0]->td);
            t->td = ch ? td_option(c->a, ch) : NULL;
            return t->td ? SP_OK : tc_oom(c);
        }
        if (m[0] == 'N') {
            if (e->n != 0) return tc_err(c, e, "None takes no arguments");
            t->call = CALL_NONE;
            sp_td *ch = tc_nothing(c->a);
            t->td = ch ? td_option(c->a, ch) : NULL;
            return t->td ? SP_OK : tc_oom(c);
        }
        t->call = CALL_SEQ;
        sp_td *el = tc_nothing(c->a);
        if (!el) return tc_oom(c);
        for (int i = 0; i < e->n; i++) {
            sp_td *u;
            rc = tc_unify(c, el, t->kids[i]->td, 1, &u);
            if (rc == SP_ETYPE)
                rc = tc_err(c, e->kids[i], "Seq elements have different types: %s and %s",
                            tc_name(c, el, bx, sizeof bx),
                            tc_name(c, t->kids[i]->td, by, sizeof by));
            td_free(c->a, el);
            if (rc) return rc;
            el = u;
        }
        t->td = td_list(c->a, el);
        return t->td ? SP_OK : tc_oom(c);
    }
    if (e->n < 1) return tc_err(c, e, "unknown function %s", m);
    const sp_td *r = t->kids[0]->td;
    int na = e->n - 1;
    const sp_td *a1 = na >= 1 && t->kids[1] ? t->kids[1]->td : NULL;
    const sp_td *a2 = na >= 2 && t->kids[2] ? t->kids[2]->td : NULL;
    sp_type res = SP_TYPE_COUNT;
    int want = 0, want_hi = -1;
#define TC_ARGS(lo, hi)                                                                            \
    do {                                                                                           \
        want = (lo);                                                                               \
        want_hi = (hi);                                                                            \
    } while (0)
    if (!strcmp(m, "toInt") || !strcmp(m, "toLong") || !strcmp(m, "toDouble") ||
        !strcmp(m, "toFloat") || !strcmp(m, "toString")) {
        sp_type to = m[2] == 'I'   ? SP_I32
                     : m[2] == 'L' ? SP_I64
                     : m[2] == 'D' ? SP_F64
                     : m[2] == 'F' ? SP_F32
                                   : SP_STR;
        sp_type from;
        if (!expr_is_leaf(r, &from) || (to != SP_STR && from == SP_BOOL))
            return tc_err(c, e, "value of type %s has no method %s", tc_name(c, r, bx, sizeof bx),
                          m);
        TC_ARGS(0, 0);
        t->call = CALL_CONV;
        res = to;
    } else if (tc_is(r, SP_STR)) {
        static const struct {
            const char *name;
            call_id id;
            int lo, hi;
            sp_type res;
        } sm[] = {{"length", CALL_S_LENGTH, 0, 0, SP_I64},
                  {"size", CALL_S_LENGTH, 0, 0, SP_I64},
                  {"contains", CALL_S_CONTAINS, 1, 1, SP_BOOL},
                  {"startsWith", CALL_S_STARTS, 1, 1, SP_BOOL},
                  {"endsWith", CALL_S_ENDS, 1, 1, SP_BOOL},
                  {"split", CALL_S_SPLIT, 1, 1, SP_TYPE_COUNT},
                  {"toLowerCase", CALL_S_LOWER, 0, 0, SP_STR},
                  {"toUpperCase", CALL_S_UPPER, 0, 0, SP_STR},
                  {"trim", CALL_S_TRIM, 0, 0, SP_STR},
                  {"substring", CALL_S_SUBSTRING, 1, 2, SP_STR},
                  {"isEmpty", CALL_S_ISEMPTY, 0, 0, SP_BOOL},
                  {"nonEmpty", CALL_S_NONEMPTY, 0, 0, SP_BOOL}};
        size_t k = 0;
        while (k < sizeof sm / sizeof sm[0] && strcmp(sm[k].name, m))
            k++;
        if (k == sizeof sm / sizeof sm[0])
            return tc_err(c, e, "value of type str has no method %s", m);
        t->call = sm[k].id;
        TC_ARGS(sm[k].lo, sm[k].hi);
        res = sm[k].res;
        if (na >= want && na <= want_hi) {
            int ok = 1;
            if (t->call == CALL_S_SUBSTRING)
                ok = tc_is_int(a1) && (!a2 || tc_is_int(a2));
            else if (na == 1)
                ok = tc_is(a1, SP_STR);
            if (!ok)
                return tc_err(c, e, "%s: wrong argument type %s", m,
                              tc_name(c, a2 && !tc_is_int(a2) ? a2 : a1, bx, sizeof bx));
        }
    } else if (r->kind == TD_LIST) {
        const sp_td *el = r->child[0];
        sp_type l;
        int num = expr_is_leaf(el, &l) && expr_num_rank(l) >= 0;
        if (!strcmp(m, "sum") || !strcmp(m, "min") || !strcmp(m, "max")) {
            if (!num && !(m[0] == 'm' && expr_is_leaf(el, &l)))
                return tc_err(c, e, "%s needs numbers, got %s", m, tc_name(c, r, bx, sizeof bx));
            t->call = m[0] == 's' ? CALL_L_SUM : m[1] == 'i' ? CALL_L_MIN : CALL_L_MAX;
            TC_ARGS(0, 0);
            res = l == SP_TS && m[0] == 's' ? SP_I64 : l;
        } else if (!strcmp(m, "size") || !strcmp(m, "length")) {
            t->call = CALL_L_SIZE;
            TC_ARGS(0, 0);
            res = SP_I64;
        } else if (!strcmp(m, "isEmpty") || !strcmp(m, "nonEmpty")) {
            t->call = m[0] == 'i' ? CALL_L_ISEMPTY : CALL_L_NONEMPTY;
            TC_ARGS(0, 0);
            res = SP_BOOL;
        } else if (!strcmp(m, "head")) {
            t->call = CALL_L_HEAD;
            TC_ARGS(0, 0);
        } else if (!strcmp(m, "contains")) {
            t->call = CALL_L_CONTAINS;
            TC_ARGS(1, 1);
            res = SP_BOOL;
        } else if (!strcmp(m, "mkString")) {
            t->call = CALL_L_MKSTRING;
            TC_ARGS(0, 1);
            res = SP_STR;
        } else if (!strcmp(m, "map") || !strcmp(m, "filter")) {
            t->call = m[0] == 'm' ? CALL_L_MAP : CALL_L_FILTER;
            if (na != 1) return tc_err(c, e, "%s takes 1 argument, got %d", m, na);
            if ((rc = tc_lambda(c, e->kids[1], el, &t->kids[1]))) return rc;
            const sp_td *bt = t->kids[1]->td;
            if (t->call == CALL_L_FILTER && !tc_is(bt, SP_BOOL))
                return tc_err(c, e->kids[1], "filter needs a bool, got %s",
                              tc_name(c, bt, bx, sizeof bx));
            sp_td *ch = td_copy(c->a, t->call == CALL_L_MAP ? bt : el);
            t->td = ch ? td_list(c->a, ch) : NULL;
            return t->td ? SP_OK : tc_oom(c);
        } else {
            return tc_err(c, e, "value of type %s has no method %s", tc_name(c, r, bx, sizeof bx),
                          m);
        }
    } else if (r->kind == TD_OPTION) {
        if (!strcmp(m, "getOrElse")) {
            t->call = CALL_O_GETORELSE;
            if (na != 1) return tc_err(c, e, "getOrElse takes 1 argument, got %d", na);
            rc = tc_unify(c, r->child[0], a1, 1, &t->td);
            if (rc == SP_ETYPE)
                return tc_err(c, e, "getOrElse: the default %s does not fit %s",
                              tc_name(c, a1, bx, sizeof bx), tc_name(c, r, by, sizeof by));
            return rc;
        } else if (!strcmp(m, "isDefined") || !strcmp(m, "nonEmpty") || !strcmp(m, "isEmpty")) {
            t->call = m[1] == 's' && m[2] == 'E' ? CALL_O_ISEMPTY : CALL_O_ISDEFINED;
            TC_ARGS(0, 0);
            res = SP_BOOL;
        } else if (!strcmp(m, "get")) {
            t->call = CALL_O_GET;
            TC_ARGS(0, 0);
        } else {
            return tc_err(c, e, "value of type %s has no method %s", tc_name(c, r, bx, sizeof bx),
                          m);
        }
    } else if (!strcmp(m, "milliseconds") && tc_is_int(r)) {
        t->call = CALL_MILLIS;
        TC_ARGS(0, 0);
        res = SP_I64;
    } else {
        return tc_err(c, e, "value of type %s has no method %s", tc_name(c, r, bx, sizeof bx), m);
    }
#undef TC_ARGS
    if (na < want || na > want_hi) {
        if (want == want_hi)
            return tc_err(c, e, "%s takes %d argument%s, got %d", m, want, want == 1 ? "" : "s",
                          na);
        return tc_err(c, e, "%s takes %d to %d arguments, got %d", m, want, want_hi, na);
    }
    if (t->call == CALL_L_CONTAINS) {
        sp_td *u = NULL;
        rc = tc_unify(c, r->child[0], a1, 1, &u);
        td_free(c->a, u);
        if (rc == SP_ETYPE)
            return tc_err(c, e, "contains: %s cannot be in %s", tc_name(c, a1, bx, sizeof bx),
                          tc_name(c, r, by, sizeof by));
        if (rc) return rc;
    }
    if (t->call == CALL_L_MKSTRING && a1 && !tc_is(a1, SP_STR))
        return tc_err(c, e, "mkString takes a str separator");
    if (t->call == CALL_S_SPLIT) {
        sp_td *ch = td_leaf(c->a, SP_STR);
        t->td = ch ? td_list(c->a, ch) : NULL;
    } else if (t->call == CALL_L_HEAD || t->call == CALL_O_GET) {
        t->td = td_copy(c->a, r->child[0]);
    } else {
        t->td = td_leaf(c->a, res);
    }
    return t->td ? SP_OK : tc_oom(c);
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
    int rc = tc_unify(c, x, y, 0, &t->td);
    if (rc == SP_ETYPE)
        return tc_err(c, e, "if branches have different types: %s and %s",
                      tc_name(c, x, bx, sizeof bx), tc_name(c, y, by, sizeof by));
    return rc;
}

static int tc_node1(const tc_ctx *c, const sp_expr *e, expr_typed **out);

/* A binary node that continues a chain through left operands (a + b + c). */
static int tc_is_link(const sp_expr *e)
{
    return e && e->kind == EX_BINOP && e->n == 2 && e->kids[0] && e->kids[1];
}

/* e, a binary node whose left operand is one too: the chain through left operands is typed
 * from the innermost node up in a loop, on e's nesting level, so that its length costs no
 * stack; the result keeps the chain in expr_typed.spine for the other walks. */
static int tc_chain(const tc_ctx *c, const sp_expr *e, expr_typed **out)
{
    int n = 0, rc = SP_OK;
    for (const sp_expr *q = e; tc_is_link(q); q = q->kids[0])
        n++;
    expr_typed **sp = mem_calloc(c->a, (size_t)n, sizeof *sp);
    if (!sp) return tc_oom(c);
    const sp_expr *q = e;
    for (int i = n - 1; i >= 0; i--, q = q->kids[0]) {
        if (!(sp[i] = mem_calloc(c->a, 1, sizeof **sp + 2 * sizeof(expr_typed *)))) {
            rc = tc_oom(c);
            goto fail;
        }
        sp[i]->e = q;
        sp[i]->kids = (expr_typed **)(sp[i] + 1);
    }
    if ((rc = tc_node(c, q, &sp[0]->kids[0]))) goto fail;
    sp[0]->n = 1;
    for (int i = 0; i < n; i++) {
        expr_typed *t = sp[i];
        if (i) {
            t->kids[0] = sp[i - 1];
            t->n = 1;
        }
        if ((rc = tc_node(c, t->e->kids[1], &t->kids[1]))) goto fail;
        t->n = 2;
        if ((rc = tc_binop(c, t))) goto fail;
        td_layout(t->td, 0);
    }
    sp[n - 1]->spine = sp;
    sp[n - 1]->nspine = n;
    *out = sp[n - 1];
    return SP_OK;
fail:
    typed_free_chain(c->a, sp, n);
    mem_free(c->a, sp);
    return rc;
}

/* Nesting of type t (a leaf is 1); t comes from the checker, so at most one more than
 * TD_MAX_DEPTH. */
static int tc_type_depth(const sp_td *t)
{
    int m = 0;
    for (int i = 0; t->kind != TD_LEAF && i < t->n; i++) {
        int k = tc_type_depth(t->child[i]);
        if (k > m) m = k;
    }
    return m + 1;
}

/* Types e one level below its parent (SP_EXPR_MAX_DEPTH). */
static int tc_node(const tc_ctx *c, const sp_expr *e, expr_typed **out)
{
    *out = NULL;
    if (*c->depth >= SP_EXPR_MAX_DEPTH)
        return tc_err(c, e, "expression too deeply nested (limit %d)", SP_EXPR_MAX_DEPTH);
    ++*c->depth;
    int rc = tc_is_link(e) && tc_is_link(e->kids[0]) ? tc_chain(c, e, out) : tc_node1(c, e, out);
    --*c->depth;
    return rc;
}

static int tc_node1(const tc_ctx *c, const sp_expr *e, expr_typed **out)
{
    *out = NULL;
    if (!e) return diag_set(c->d, SP_EINVAL, "type check: missing expression");
    expr_typed *t = mem_calloc(c->a, 1, sizeof *t + (size_t)e->n * sizeof(expr_typed *));
    if (!t) return tc_oom(c);
    t->e = e;
    t->kids = (expr_typed **)(t + 1);
    int rc = SP_OK;
    if (e->kind == EX_CALL) {
        if ((rc = tc_call(c, t))) goto fail;
        if (tc_type_depth(t->td) > TD_MAX_DEPTH) {
            rc = tc_err(c, e, "the value's type nests more than %d deep", TD_MAX_DEPTH);
            goto fail;
        }
        td_layout(t->td, 0);
        *out = t;
        return SP_OK;
    }
    if (e->kind == EX_LAMBDA) {
        rc = tc_err(c, e, "a lambda is only allowed as the argument of map or filter");
        goto fail;
    }
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
    case EX_CALL:
    case EX_LAMBDA:
        break;
    }
    if (want != e->n) {
        rc = tc_err(c, e, "malformed expression node (kind %d with %d children)", (int)e->kind,
                    e->n);
        goto fail;
    }
    switch (e->kind) {
    case EX_ARG:
        if (e->index < 0 || e->index >= c->nargs || !c->arg[e->index]) {
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
        if (!rc && tc_type_depth(t->td) > TD_MAX_DEPTH)
            rc = tc_err(c, e, "the value's type nests more than %d deep", TD_MAX_DEPTH);
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
    case EX_CALL:
    case EX_LAMBDA:
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
    int depth = 0;
    tc_ctx c = {a, {arg0, arg1}, arg1 ? 2 : 1, d, &depth};
    int rc = tc_node(&c, e, out);
    if (!rc) (*out)->nargs = c.nargs;
    return rc;
}

int expr_compile_n(const sp_expr *e, const sp_allocator *a, int nargs, const sp_td *const *args,
                   expr_typed **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, nargs >= 0 && nargs <= 4 && (args || nargs == 0), SP_EINVAL,
             "expr_compile_n: bad parameters");
    int depth = 0;
    tc_ctx c = {a, {NULL}, nargs, d, &depth};
    for (int i = 0; i < nargs; i++)
        c.arg[i] = args[i];
    int rc = tc_node(&c, e, out);
    if (!rc) (*out)->nargs = nargs;
    return rc;
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
    int nargs;
    expr_scratch *s;
    sp_diag *d;
    const sp_expr *blame; /* the innermost positioned node of a runtime error */
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
    if (x->t >= SP_TYPE_COUNT)
        return diag_set(c->d, SP_EUNSUPPORTED, "toString of a tuple, Option or Seq");
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

static int ev_node(ev_ctx *c, const expr_typed *t, expr_val *out);

/* A scratch copy of bytes as a string value (no dictionary id). */
static int ev_str_make(ev_ctx *c, const char *p, size_t n, expr_val *out)
{
    char *q = expr_scratch_alloc(c->s, n + 1);
    if (!q) return ev_oom(c);
    if (n) memcpy(q, p, n);
    q[n] = '\0';
    *out = (expr_val){.t = SP_STR, .u.s = {q, n, UINT32_MAX}};
    return SP_OK;
}

static int ev_has(const expr_val *s, const expr_val *x, int where)
{
    size_t n = s->u.s.len, k = x->u.s.len;
    if (k > n) return 0;
    if (where < 0) return k == 0 || memcmp(s->u.s.p, x->u.s.p, k) == 0;
    if (where > 0) return k == 0 || memcmp(s->u.s.p + n - k, x->u.s.p, k) == 0;
    if (k == 0) return 1;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s->u.s.p + i, x->u.s.p, k) == 0) return 1;
    return 0;
}

/* Java's String.split(sep) with sep taken literally: trailing empty strings are dropped, a
 * string without sep gives itself, "" as sep gives one-character strings. */
static int ev_split(ev_ctx *c, const expr_val *x, const expr_val *sep, expr_val *out)
{
    const char *p = x->u.s.p, *q = sep->u.s.p;
    size_t n = x->u.s.len, k = sep->u.s.len, cnt = 0;
    expr_val *items;
    if (k == 0) {
        items = expr_scratch_alloc(c->s, (n ? n : 1) * sizeof *items);
        if (!items) return ev_oom(c);
        if (n == 0) {
            items[0] = *x;
            cnt = 1;
        }
        for (size_t i = 0; i < n; i++) {
            int rc = ev_str_make(c, p + i, 1, &items[cnt++]);
            if (rc) return rc;
        }
        *out = (expr_val){.t = EV_LIST, .n = (int)cnt, .u.items = items};
        return SP_OK;
    }
    size_t parts = 1;
    for (size_t i = 0; i + k <= n;)
        if (memcmp(p + i, q, k) == 0) {
            parts++;
            i += k;
        } else {
            i++;
        }
    items = expr_scratch_alloc(c->s, parts * sizeof *items);
    if (!items) return ev_oom(c);
    if (parts == 1) {
        items[0] = *x;
        *out = (expr_val){.t = EV_LIST, .n = 1, .u.items = items};
        return SP_OK;
    }
    size_t b = 0;
    for (size_t i = 0; i <= n;) {
        if (i == n || (i + k <= n && memcmp(p + i, q, k) == 0)) {
            items[cnt++] = (expr_val){.t = SP_STR, .u.s = {p + b, i - b, UINT32_MAX}};
            if (i == n) break;
            i += k;
            b = i;
        } else {
            i++;
        }
    }
    while (cnt > 0 && items[cnt - 1].u.s.len == 0)
        cnt--;
    *out = (expr_val){.t = EV_LIST, .n = (int)cnt, .u.items = items};
    return SP_OK;
}

/* Numeric leaf v as type to (no-op for other types). */
static expr_val ev_as(const expr_val *v, const sp_td *to)
{
    if (to->kind == TD_LEAF && expr_num_rank(to->leaf) >= 0 && v->t != to->leaf &&
        v->t < SP_TYPE_COUNT && expr_num_rank(v->t) >= 0)
        return ev_conv(v, to->leaf);
    return *v;
}

/* Structural equality of two values of unifiable types (List.contains). */
static int ev_equal(const expr_val *x, const expr_val *y)
{
    if (x->t >= SP_TYPE_COUNT || y->t >= SP_TYPE_COUNT) {
        if (x->t != y->t || x->n != y->n) return 0;
        for (int i = 0; i < x->n; i++)
            if (!ev_equal(&x->u.items[i], &y->u.items[i])) return 0;
        return 1;
    }
    if (x->t == SP_STR) return ev_str_cmp(x, y) == 0;
    if (expr_num_rank(x->t) >= 0 && expr_num_rank(y->t) >= 0) {
        sp_type ct = expr_promote(x->t, y->t);
        expr_val a = ev_conv(x, ct), b = ev_conv(y, ct);
        return (ct == SP_F32 || ct == SP_F64) ? a.u.f == b.u.f : a.u.i == b.u.i;
    }
    return x->u.i == y->u.i;
}

/* The elements of list v through inner lambda lt: map (keep = 0) or filter (keep = 1). */
static int ev_list_lambda(ev_ctx *c, const expr_typed *lt, const expr_val *v, int keep,
                          expr_val *out)
{
    int p = lt->e->index;
    expr_val *args = expr_scratch_alloc(c->s, (size_t)(p + 1) * sizeof *args);
    expr_val *items = expr_scratch_alloc(c->s, (size_t)(v->n ? v->n : 1) * sizeof *items);
    if (!args || !items) return ev_oom(c);
    memset(args, 0, (size_t)(p + 1) * sizeof *args);
    for (int i = 0; i < c->nargs && i < p; i++)
        args[i] = c->args[i];
    ev_ctx in = {args, p + 1, c->s, c->d, NULL};
    int cnt = 0;
    for (int i = 0; i < v->n; i++) {
        expr_val r;
        args[p] = v->u.items[i];
        int rc = ev_node(&in, lt->kids[0], &r);
        if (rc) {
            c->blame = in.blame;
            return rc;
        }
        if (!keep)
            items[cnt++] = r;
        else if (r.u.i)
            items[cnt++] = v->u.items[i];
    }
    *out = (expr_val){.t = EV_LIST, .n = cnt, .u.items = items};
    return SP_OK;
}

static int ev_call(ev_ctx *c, const expr_typed *t, expr_val *out)
{
    const sp_expr *e = t->e;
    expr_val v[3];
    int rc;
    for (int i = 0; i < e->n && i < 3; i++)
        if (e->kids[i]->kind != EX_LAMBDA && (rc = ev_node(c, t->kids[i], &v[i]))) return rc;
    const expr_val *x = &v[0];
    switch ((call_id)t->call) {
    case CALL_SOME: {
        expr_val *it = expr_scratch_alloc(c->s, sizeof *it);
        if (!it) return ev_oom(c);
        *it = v[0];
        *out = (expr_val){.t = EV_OPTION, .n = 1, .u.items = it};
        return SP_OK;
    }
    case CALL_NONE:
        *out = (expr_val){.t = EV_OPTION, .n = 0};
        return SP_OK;
    case CALL_SEQ: {
        expr_val *items = expr_scratch_alloc(c->s, (size_t)(e->n ? e->n : 1) * sizeof *items);
        if (!items) return ev_oom(c);
        for (int i = 0; i < e->n; i++) {
            if (i < 3)
                items[i] = v[i];
            else if ((rc = ev_node(c, t->kids[i], &items[i])))
                return rc;
            items[i] = ev_as(&items[i], t->td->child[0]);
        }
        *out = (expr_val){.t = EV_LIST, .n = e->n, .u.items = items};
        return SP_OK;
    }
    case CALL_S_LENGTH:
        *out = (expr_val){.t = SP_I64, .u.i = (int64_t)x->u.s.len};
        return SP_OK;
    case CALL_S_CONTAINS:
    case CALL_S_STARTS:
    case CALL_S_ENDS:
        *out = (expr_val){.t = SP_BOOL,
                          .u.i = ev_has(x, &v[1],
                                        t->call == CALL_S_STARTS ? -1
                                        : t->call == CALL_S_ENDS ? 1
                                                                 : 0)};
        return SP_OK;
    case CALL_S_SPLIT:
        return ev_split(c, x, &v[1], out);
    case CALL_S_LOWER:
    case CALL_S_UPPER: {
        if ((rc = ev_str_make(c, x->u.s.p, x->u.s.len, out))) return rc;
        char *q = (char *)out->u.s.p;
        for (size_t i = 0; i < out->u.s.len; i++) {
            if (t->call == CALL_S_LOWER && q[i] >= 'A' && q[i] <= 'Z') q[i] = (char)(q[i] + 32);
            if (t->call == CALL_S_UPPER && q[i] >= 'a' && q[i] <= 'z') q[i] = (char)(q[i] - 32);
        }
        return SP_OK;
    }
    case CALL_S_TRIM: {
        size_t b = 0, n = x->u.s.len;
        while (b < n && (unsigned char)x->u.s.p[b] <= ' ')
            b++;
        while (n > b && (unsigned char)x->u.s.p[n - 1] <= ' ')
            n--;
        *out = (expr_val){.t = SP_STR, .u.s = {x->u.s.p + b, n - b, UINT32_MAX}};
        return SP_OK;
    }
    case CALL_S_SUBSTRING: {
        int64_t len = (int64_t)x->u.s.len, b = v[1].u.i, en = e->n > 2 ? v[2].u.i : len;
        if (b < 0 || en > len || b > en)
            return diag_set(c->d, SP_ERUNTIME,
                            "substring(%lld, %lld) is out of range for a string of length %lld",
                            (long long)b, (long long)en, (long long)len);
        *out = (expr_val){.t = SP_STR, .u.s = {x->u.s.p + b, (size_t)(en - b), UINT32_MAX}};
        return SP_OK;
    }
    case CALL_S_ISEMPTY:
    case CALL_S_NONEMPTY:
        *out = (expr_val){.t = SP_BOOL, .u.i = (x->u.s.len == 0) == (t->call == CALL_S_ISEMPTY)};
        return SP_OK;
    case CALL_L_SUM: {
        sp_type rt = t->td->leaf;
        expr_val acc = ev_conv(&(expr_val){.t = SP_I64, .u.i = 0}, rt);
        for (int i = 0; i < x->n; i++) {
            expr_val el = ev_conv(&x->u.items[i], rt);
            if (rt == SP_F32 || rt == SP_F64)
                acc.u.f = rt == SP_F32 ? (double)(float)(acc.u.f + el.u.f) : acc.u.f + el.u.f;
            else
                acc.u.i = ev_wrap(rt, (uint64_t)acc.u.i + (uint64_t)el.u.i);
        }
        *out = acc;
        return SP_OK;
    }
    case CALL_L_SIZE:
        *out = (expr_val){.t = SP_I64, .u.i = x->n};
        return SP_OK;
    case CALL_L_ISEMPTY:
    case CALL_L_NONEMPTY:
        *out = (expr_val){.t = SP_BOOL, .u.i = (x->n == 0) == (t->call == CALL_L_ISEMPTY)};
        return SP_OK;
    case CALL_L_MAP:
    case CALL_L_FILTER:
        return ev_list_lambda(c, t->kids[1], x, t->call == CALL_L_FILTER, out);
    case CALL_L_MIN:
    case CALL_L_MAX:
    case CALL_L_HEAD:
        if (x->n == 0) return diag_set(c->d, SP_ERUNTIME, "%s of an empty Seq", e->s);
        *out = x->u.items[0];
        for (int i = 1; i < x->n && t->call != CALL_L_HEAD; i++) {
            const expr_val *y = &x->u.items[i];
            int less;
            if (y->t == SP_STR)
                less = ev_str_cmp(y, out) < 0;
            else if (y->t == SP_F32 || y->t == SP_F64)
                less = y->u.f < out->u.f || isnan(y->u.f);
            else
                less = y->u.i < out->u.i;
            int greater = y->t == SP_STR ? ev_str_cmp(y, out) > 0
                          : (y->t == SP_F32 || y->t == SP_F64)
                              ? (y->u.f > out->u.f || isnan(y->u.f))
                              : y->u.i > out->u.i;
            if (t->call == CALL_L_MIN ? less : greater) *out = *y;
        }
        return SP_OK;
    case CALL_L_CONTAINS: {
        int hit = 0;
        for (int i = 0; i < x->n && !hit; i++)
            hit = ev_equal(&x->u.items[i], &v[1]);
        *out = (expr_val){.t = SP_BOOL, .u.i = hit};
        return SP_OK;
    }
    case CALL_L_MKSTRING: {
        strbuf sb;
        sb_init(&sb, c->s->a);
        for (int i = 0; i < x->n && !rc; i++) {
            expr_val sv;
            if (i && e->n > 1) sb_add(&sb, v[1].u.s.p, v[1].u.s.len);
            if (!(rc = ev_to_str(c, &x->u.items[i], &sv))) sb_add(&sb, sv.u.s.p, sv.u.s.len);
        }
        if (!rc) rc = sb.oom ? ev_oom(c) : ev_str_make(c, sb.s ? sb.s : "", sb.len, out);
        sb_free(&sb);
        return rc;
    }
    case CALL_O_GETORELSE:
        *out = ev_as(x->n ? &x->u.items[0] : &v[1], t->td);
        return SP_OK;
    case CALL_O_ISDEFINED:
    case CALL_O_ISEMPTY:
        *out = (expr_val){.t = SP_BOOL, .u.i = (x->n == 1) == (t->call == CALL_O_ISDEFINED)};
        return SP_OK;
    case CALL_O_GET:
        if (!x->n) return diag_set(c->d, SP_ERUNTIME, "None.get");
        *out = x->u.items[0];
        return SP_OK;
    case CALL_MILLIS:
        *out = (expr_val){.t = SP_I64, .u.i = x->u.i};
        return SP_OK;
    case CALL_CONV: {
        sp_type to = t->td->leaf;
        if (to == SP_STR) return ev_to_str(c, x, out);
        if (x->t == SP_STR) return ev_parse(c, x, to, out);
        *out = ev_conv(x, to);
        return SP_OK;
    }
    }
    return diag_set(c->d, SP_EINVAL, "evaluation: unknown call %s", e->s ? e->s : "?");
}

static int ev_node1(ev_ctx *c, const expr_typed *t, expr_val *out);

static int ev_node(ev_ctx *c, const expr_typed *t, expr_val *out)
{
    int rc = ev_node1(c, t, out);
    if (rc == SP_ERUNTIME && !c->blame && t->e->line > 0) c->blame = t->e;
    return rc;
}

/* Binary node t once its left operand is x: the right one, then the operator. */
static int ev_binop_right(ev_ctx *c, const expr_typed *t, const expr_val *x, expr_val *out)
{
    const sp_expr *e = t->e;
    expr_val y;
    int rc;
    if (e->op == SP_OP_AND || e->op == SP_OP_OR) {
        /* Short circuit: the right side runs only when it decides. */
        if ((e->op == SP_OP_AND) != (x->u.i != 0)) {
            *out = (expr_val){.t = SP_BOOL, .u.i = x->u.i != 0};
            return SP_OK;
        }
        if ((rc = ev_node(c, t->kids[1], &y))) return rc;
        *out = (expr_val){.t = SP_BOOL, .u.i = y.u.i != 0};
        return SP_OK;
    }
    if ((rc = ev_node(c, t->kids[1], &y))) return rc;
    if (e->op == SP_OP_ADD && t->td->leaf == SP_STR && (x->t != SP_STR || y.t != SP_STR)) {
        expr_val xs, ys;
        if ((rc = ev_to_str(c, x, &xs)) || (rc = ev_to_str(c, &y, &ys))) return rc;
        return ev_binop(c, t, &xs, &ys, out);
    }
    return ev_binop(c, t, x, &y, out);
}

/* A chain through left operands (expr_typed.spine), innermost first, in a loop. A runtime
 * error is blamed as the recursion would: on the innermost node with a position on the way
 * up from where it happened (t itself is left to the caller's ev_node). */
static int ev_chain(ev_ctx *c, const expr_typed *t, expr_val *out)
{
    expr_typed *const *sp = t->spine;
    int n = t->nspine, i = 0;
    expr_val x, r;
    int rc = ev_node(c, sp[0]->kids[0], &x);
    while (!rc && i < n) {
        if ((rc = ev_binop_right(c, sp[i], &x, &r))) break;
        x = r;
        i++;
    }
    if (rc == SP_ERUNTIME)
        for (int k = i; k < n - 1 && !c->blame; k++)
            if (sp[k]->e->line > 0) c->blame = sp[k]->e;
    if (!rc) *out = x;
    return rc;
}

static int ev_node1(ev_ctx *c, const expr_typed *t, expr_val *out)
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
        if (t->nspine) return ev_chain(c, t, out);
        if ((rc = ev_node(c, t->kids[0], &x))) return rc;
        return ev_binop_right(c, t, &x, out);
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
    case EX_CALL:
        return ev_call(c, t, out);
    case EX_LAMBDA:
        break;
    }
    return diag_set(c->d, SP_EINVAL, "evaluation: unknown node kind %d", (int)e->kind);
}

int expr_eval(const expr_typed *t, const expr_val *args, expr_scratch *s, expr_val *out, sp_diag *d)
{
    ev_ctx c = {args, t->nargs, s, d, NULL};
    int rc = ev_node(&c, t, out);
    if (rc == SP_ERUNTIME && d && c.blame && strncmp(d->msg, "at ", 3))
        diag_prefix(d, "%d:%d", c.blame->line, c.blame->col);
    return rc;
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
    if (td->kind == TD_OPTION) {
        int some = col_get_i64(&b->cols[(*col)++], row) != 0;
        int inner = *col;
        *col += td->child[0]->ncols;
        expr_val *it = some ? expr_scratch_alloc(s, sizeof *it) : NULL;
        if (some && !it) return SP_ENOMEM;
        *out = (expr_val){.t = EV_OPTION, .n = some, .u.items = it};
        return some ? ev_load(b, td->child[0], &inner, row, s, it) : SP_OK;
    }
    if (td->kind == TD_LIST) {
        const sp_col *oc = &b->cols[(*col)++];
        size_t lo = (size_t)col_get_i64(oc, row), hi = (size_t)col_get_i64(oc, row + 1);
        int inner = *col;
        *col += td->child[0]->ncols;
        expr_val *items = expr_scratch_alloc(s, (hi - lo ? hi - lo : 1) * sizeof *items);
        if (!items) return SP_ENOMEM;
        for (size_t k = lo; k < hi; k++) {
            int c2 = inner;
            int rc = ev_load(b, td->child[0], &c2, k, s, &items[k - lo]);
            if (rc) return rc;
        }
        *out = (expr_val){.t = EV_LIST, .n = (int)(hi - lo), .u.items = items};
        return SP_OK;
    }
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
    if (v->t == EV_OPTION || v->t == EV_LIST) return SP_EUNSUPPORTED;
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
    if (v->t == EV_OPTION || v->t == EV_LIST) return SP_EUNSUPPORTED;
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
    if (v->t >= SP_TYPE_COUNT) {
        if (v->n == 0) return SP_OK;
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
        tc_ctx c = {a, {vtd, vtd}, 2, d, NULL};
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

void expr_val_mark(const expr_val *v, sp_dict *dict)
{
    if (v->t >= SP_TYPE_COUNT) {
        for (int i = 0; i < v->n; i++)
            expr_val_mark(&v->u.items[i], dict);
    } else if (v->t == SP_STR && v->u.s.id != UINT32_MAX) {
        dict_mark(dict, v->u.s.id);
    }
}
