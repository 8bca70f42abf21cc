/* context.c — sp_context: configuration, start-up of topology, executors, arenas, dictionary
 * and device, the error message, and the public expression constructors. */
#include "core/checkpoint_int.h"
#include "core/core_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sp_config_init(sp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_ms = 1000;
    cfg->kernel_cache = 1;
    cfg->status_line = -1;
}

int ctx_fail(sp_context *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vset(&ctx->diag, code, fmt, ap);
    va_end(ap);
    return code;
}

int ctx_take(sp_context *ctx, const sp_diag *d)
{
    if (d != &ctx->diag) {
        ctx->diag.code = d->code;
        memcpy(ctx->diag.msg, d->msg, sizeof ctx->diag.msg);
    }
    return d->code;
}

int sp_context_new(const sp_config *cfg, sp_context **out)
{
    if (!out) return SP_EINVAL;
    *out = NULL;
    sp_config def;
    if (!cfg) {
        sp_config_init(&def);
        cfg = &def;
    }
    if (cfg->batch_ms <= 0 || cfg->threads < 0 || cfg->max_batches < 0 || cfg->event_horizon_ms < 0)
        return SP_EINVAL;
    sp_allocator a = {cfg->alloc, cfg->alloc_ud};
    sp_context *ctx = mem_calloc(&a, 1, sizeof *ctx);
    if (!ctx) return SP_ENOMEM;
    ctx->cfg = *cfg;
    ctx->alloc = a;
    if (!ctx->cfg.out) ctx->cfg.out = stdout;
    if (!ctx->cfg.log) ctx->cfg.log = stderr;
    atomic_init(&ctx->stop, 0);
    atomic_init(&ctx->rejects_batch, 0);
    pthread_mutex_init(&ctx->rejects_lock, NULL);
    if (expr_pool_new(&ctx->alloc, &ctx->exprs) != SP_OK || dict_new(&ctx->alloc, &ctx->dict)) {
        sp_context_free(ctx);
        return SP_ENOMEM;
    }
    ctx->env.alloc = &ctx->alloc;
    ctx->env.dict = ctx->dict;
    *out = ctx;
    return SP_OK;
}

int sp_context_start(sp_context *ctx)
{
    if (!ctx) return SP_EINVAL;
    if (ctx->started) return SP_OK;
    sp_diag d;
    diag_clear(&d);
    topo_opts to = {ctx->cfg.topology_synthetic, ctx->cfg.topology_xml, ctx->cfg.log, &ctx->alloc};
    if (topo_open(&to, &ctx->topo, &d)) return ctx_take(ctx, &d);
    unsigned nodes = topo_numa_nodes(ctx->topo);
    ctx->arenas = mem_calloc(&ctx->alloc, nodes, sizeof *ctx->arenas);
    if (!ctx->arenas) return ctx_fail(ctx, SP_ENOMEM, "out of memory starting the context");
    for (unsigned i = 0; i < nodes; i++) {
        if (arena_new(ctx->topo, i, 0, &ctx->alloc, &ctx->arenas[i], &d)) return ctx_take(ctx, &d);
        ctx->narenas = i + 1;
    }
    ctx->env.arenas = ctx->arenas;
    ctx->env.narenas = ctx->narenas;
    if (exec_new(ctx->topo, (unsigned)ctx->cfg.threads, &ctx->alloc, &ctx->exec, &d))
        return ctx_take(ctx, &d);
    dev_opts dop = {ctx->cfg.device,
                    ctx->cfg.kernel_cache,
                    ctx->cfg.cache_dir,
                    ctx->cfg.strategy == SP_STRATEGY_CPU   ? DEV_STRATEGY_CPU
                    : ctx->cfg.strategy == SP_STRATEGY_GPU ? DEV_STRATEGY_GPU
                                                           : 0,
                    ctx->cfg.log,
                    &ctx->alloc};
    if (dev_open(&dop, &ctx->dev, &d)) return ctx_take(ctx, &d);
    if (ctx->cfg.device_mem_limit) dev_test_set_mem_limit(ctx->dev, ctx->cfg.device_mem_limit);
    if (ctx->cfg.dense_key_limit) kreduce_set_dense_limit(ctx->dev, ctx->cfg.dense_key_limit);
    for (int i = 0; i < ctx->nstreams; i++)
        if (ctx->streams[i]->source) ctx->streams[i]->source->exec = ctx->exec;
    ctx->started = 1;
    return SP_OK;
}

const char *sp_context_errmsg(const sp_context *ctx)
{
    return ctx ? ctx->diag.msg : "no context";
}

int64_t sp_context_batches(const sp_context *ctx)
{
    return ctx ? ctx->batches : 0;
}

void sp_context_stop(sp_context *ctx)
{
    if (ctx) atomic_store(&ctx->stop, 1);
}

void sp_context_free(sp_context *ctx)
{
    if (!ctx) return;
    for (int i = 0; i < ctx->noutputs; i++)
        sink_free(ctx->outputs[i].sink);
    mem_free(&ctx->alloc, ctx->outputs);
    report_registry_free(ctx);
    for (int i = 0; i < ctx->nstreams; i++)
        stream_free(ctx->streams[i]);
    mem_free(&ctx->alloc, ctx->streams);
    if (ctx->metrics) fclose(ctx->metrics);
    ckpt_close(ctx->ckpt);
    ctx_rejects_close(ctx);
    pthread_mutex_destroy(&ctx->rejects_lock);
    if (ctx->dev) dev_close(ctx->dev);
    if (ctx->exec) exec_free(ctx->exec);
    for (unsigned i = 0; i < ctx->narenas; i++)
        arena_free(ctx->arenas[i]);
    mem_free(&ctx->alloc, ctx->arenas);
    if (ctx->dict) dict_free(ctx->dict);
    if (ctx->exprs) expr_pool_free(ctx->exprs);
    if (ctx->topo) topo_close(ctx->topo);
    sp_allocator a = ctx->alloc;
    mem_free(&a, ctx);
}

/* ------------------------------------------------------------------ expression constructors */

static sp_expr *ex(sp_context *ctx, expr_kind k, int n, sp_expr *const *kids)
{
    if (!ctx) return NULL;
    for (int i = 0; i < n; i++)
        if (!kids[i]) return NULL;
    sp_expr *e = expr_make(ctx->exprs, k, n, kids);
    if (!e) ctx_fail(ctx, SP_ENOMEM, "out of memory building an expression");
    return e;
}

sp_expr *sp_expr_arg(sp_context *ctx, int index)
{
    sp_expr *e = ex(ctx, EX_ARG, 0, NULL);
    if (e) e->index = index;
    return e;
}

sp_expr *sp_expr_i64(sp_context *ctx, int64_t v)
{
    sp_expr *e = ex(ctx, EX_I64, 0, NULL);
    if (e) e->i = v;
    return e;
}

sp_expr *sp_expr_f64(sp_context *ctx, double v)
{
    sp_expr *e = ex(ctx, EX_F64, 0, NULL);
    if (e) e->f = v;
    return e;
}

sp_expr *sp_expr_bool(sp_context *ctx, int v)
{
    sp_expr *e = ex(ctx, EX_BOOL, 0, NULL);
    if (e) e->i = v != 0;
    return e;
}

sp_expr *sp_expr_str(sp_context *ctx, const char *s)
{
    if (!ctx || !s) return NULL;
    sp_expr *e = expr_make_str(ctx->exprs, s, strlen(s));
    if (!e) ctx_fail(ctx, SP_ENOMEM, "out of memory building an expression");
    return e;
}

sp_expr *sp_expr_field(sp_context *ctx, sp_expr *tuple, int index)
{
    sp_expr *e = ex(ctx, EX_FIELD, 1, &tuple);
    if (e) e->index = index;
    return e;
}

sp_expr *sp_expr_tuple(sp_context *ctx, int n, sp_expr *const *elems)
{
    if (n < 2 || !elems) {
        if (ctx) ctx_fail(ctx, SP_EINVAL, "a tuple needs at least 2 elements");
        return NULL;
    }
    return ex(ctx, EX_TUPLE, n, elems);
}

sp_expr *sp_expr_tuple2(sp_context *ctx, sp_expr *a, sp_expr *b)
{
    sp_expr *kids[2] = {a, b};
    return sp_expr_tuple(ctx, 2, kids);
}

sp_expr *sp_expr_binop(sp_context *ctx, sp_op op, sp_expr *a, sp_expr *b)
{
    sp_expr *kids[2] = {a, b};
    sp_expr *e = ex(ctx, EX_BINOP, 2, kids);
    if (e) e->op = op;
    return e;
}

sp_expr *sp_expr_unop(sp_context *ctx, sp_op op, sp_expr *a)
{
    sp_expr *e = ex(ctx, EX_UNOP, 1, &a);
    if (e) e->op = op;
    return e;
}

sp_expr *sp_expr_if(sp_context *ctx, sp_expr *cond, sp_expr *then_e, sp_expr *else_e)
{
    sp_expr *kids[3] = {cond, then_e, else_e};
    return ex(ctx, EX_IF, 3, kids);
}

sp_expr *sp_expr_cast(sp_context *ctx, sp_expr *e0, sp_type to)
{
    sp_expr *e = ex(ctx, EX_CAST, 1, &e0);
    if (e) e->to = to;
    return e;
}
