/* exprapi.c — the public constructors of calls, inner lambdas and positions. They need only
 * a node's pool, which sp_expr_str provides, so they live beside the script compiler, their
 * main user. */
#include "ops/expr_int.h"

#include <string.h>

sp_expr *sp_expr_call(sp_context *ctx, const char *name, int n, sp_expr *const *args)
{
    if (!ctx || !name || n < 0 || (n > 0 && !args)) return NULL;
    for (int i = 0; i < n; i++)
        if (!args[i]) return NULL;
    sp_expr *nm = sp_expr_str(ctx, name); /* the name, and the context's pool */
    if (!nm) return NULL;
    sp_expr *e = expr_make(nm->pool, EX_CALL, n, args);
    if (e) {
        e->s = nm->s;
        e->slen = nm->slen;
    }
    return e;
}

sp_expr *sp_expr_lambda(sp_context *ctx, int param, sp_expr *body)
{
    if (!ctx || !body || param < 0 || param >= EXPR_MAX_ARGS) return NULL;
    sp_expr *e = expr_make(body->pool, EX_LAMBDA, 1, &body);
    if (e) e->index = param;
    return e;
}

sp_expr *sp_expr_at(sp_expr *e, int line, int col)
{
    if (e) {
        e->line = line;
        e->col = col;
    }
    return e;
}
