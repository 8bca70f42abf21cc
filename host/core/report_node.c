/* report_node.c — sp_stream_report: an output operation whose sink is a section of a report
 * page (host/io/report.c). Streams reporting to the same path share one report object, kept
 * in a small registry in the context, so the page has one section per call in declaration
 * order. Paths are matched as written ("out.html" and "./out.html" are two reports). */
#include "core/core_int.h"
#include "io/report_int.h"

#include <string.h>

typedef struct report_registry {
    report **v; /* one reference each */
    int n, cap;
} report_registry;

static int report_due(void *ud, int64_t t)
{
    return stream_time_valid(ud, t);
}

/* The report writing to path, made (and registered) if there is none yet. */
static int registry_get(sp_context *ctx, const char *path, report **out, sp_diag *d)
{
    report_registry *g = ctx->reports;
    if (!g) {
        if (!(g = mem_calloc(&ctx->alloc, 1, sizeof *g)))
            return diag_set(d, SP_ENOMEM, "report %s: out of memory", path);
        ctx->reports = g;
    }
    for (int i = 0; i < g->n; i++)
        if (!strcmp(report_path(g->v[i]), path)) {
            *out = g->v[i];
            return 0;
        }
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 4;
        report **p = mem_realloc(&ctx->alloc, g->v, (size_t)cap * sizeof *p);
        if (!p) return diag_set(d, SP_ENOMEM, "report %s: out of memory", path);
        g->v = p;
        g->cap = cap;
    }
    int rc = report_new(&ctx->alloc, path, out, d);
    if (rc) return rc;
    g->v[g->n++] = *out;
    return 0;
}

void report_registry_free(sp_context *ctx)
{
    report_registry *g = ctx->reports;
    if (!g) return;
    for (int i = 0; i < g->n; i++)
        report_release(g->v[i]);
    mem_free(&ctx->alloc, g->v);
    mem_free(&ctx->alloc, g);
    ctx->reports = NULL;
}

int sp_stream_report(sp_stream *s, const char *path, const char *title)
{
    if (!s) return SP_EINVAL;
    sp_context *ctx = s->ctx;
    if (ctx->planned)
        return ctx_fail(ctx, SP_ESTATE, "report: outputs cannot be added once the context runs");
    if (!path || !*path) return ctx_fail(ctx, SP_EINVAL, "report: a path is required");
    sp_diag d;
    diag_clear(&d);
    report *r = NULL;
    int rc = registry_get(ctx, path, &r, &d);
    if (rc) return ctx_take(ctx, &d);
    strbuf about;
    sb_init(&about, &ctx->alloc);
    sb_printf(&about, "stream %d of type %s", s->id, s->type_str);
    if (about.oom) {
        sb_free(&about);
        return ctx_fail(ctx, SP_ENOMEM, "report %s: out of memory", path);
    }
    int index = -1;
    rc = report_add_section(r, s->td, title, sb_cstr(&about), report_due, s, &index, &d);
    sb_free(&about);
    if (rc) return ctx_take(ctx, &d);
    sp_sink *k = NULL;
    rc = sink_report_new(r, index, &k, &d);
    return stream_add_output(s, rc, k, &d);
}
