/* exprfix.h — builders of expression trees for the tests of host/ops (the lambda bodies the
 * public sp_expr_* API and the script compiler build). Header-only; nodes come from the
 * test's pool P. */
#ifndef SPATE_EXPRFIX_H
#define SPATE_EXPRFIX_H

#include "ops/expr_int.h"
#include "support/testutil.h"

#include <string.h>

static expr_pool *P;

static inline sp_expr *node(expr_kind k, int n, sp_expr *const *kids)
{
    sp_expr *e = expr_make(P, k, n, kids);
    assert_non_null(e);
    return e;
}
static inline sp_expr *arg(int i)
{
    sp_expr *e = node(EX_ARG, 0, NULL);
    e->index = i;
    return e;
}
static inline sp_expr *lit(int64_t v)
{
    sp_expr *e = node(EX_I64, 0, NULL);
    e->i = v;
    return e;
}
static inline sp_expr *flt(double v)
{
    sp_expr *e = node(EX_F64, 0, NULL);
    e->f = v;
    return e;
}
static inline sp_expr *str(const char *s)
{
    sp_expr *e = expr_make_str(P, s, strlen(s));
    assert_non_null(e);
    return e;
}
static inline sp_expr *fld(sp_expr *t, int i)
{
    sp_expr *e = node(EX_FIELD, 1, &t);
    e->index = i;
    return e;
}
static inline sp_expr *bin(sp_op op, sp_expr *a, sp_expr *b)
{
    sp_expr *k[2] = {a, b};
    sp_expr *e = node(EX_BINOP, 2, k);
    e->op = op;
    return e;
}
static inline sp_expr *un(sp_op op, sp_expr *a)
{
    sp_expr *e = node(EX_UNOP, 1, &a);
    e->op = op;
    return e;
}
static inline sp_expr *iff(sp_expr *c, sp_expr *a, sp_expr *b)
{
    sp_expr *k[3] = {c, a, b};
    return node(EX_IF, 3, k);
}
static inline sp_expr *cast(sp_expr *a, sp_type to)
{
    sp_expr *e = node(EX_CAST, 1, &a);
    e->to = to;
    return e;
}
static inline sp_expr *tup2(sp_expr *a, sp_expr *b)
{
    sp_expr *k[2] = {a, b};
    return node(EX_TUPLE, 2, k);
}
#endif
