/* parse_node.c — sp_stream_parse: a stateless node that parses its parent's text lines into
 * typed records on the executors (host/io/parse*.c), reporting each rejected line to the
 * context's rejects output with its file and line number when the parent is a textFile or
 * textFileStream source (else "stream N batch T" and the row within the batch). */
#include "core/core_int.h"
#include "io/parse_int.h"

#include <time.h>

static const stream_ops parse_node_ops;

typedef struct parse_node {
    parse_spec *spec;
    parse_cache *cache; /* made on the first batch (the executors exist by then) */
    int warned_year;
    uint64_t rejected; /* over the run */
    /* The input rows rejected in the batch of time rej_time, ascending: output row j is input
     * row j + (the number of them before it), which is how later nodes find a row's line. */
    size_t *rej_rows;
    size_t nrej, cap_rej;
    int64_t rej_time;
} parse_node;

static void parse_node_destroy(sp_stream *s)
{
    parse_node *pn = s->state;
    if (!pn) return;
    parse_spec_free(pn->spec);
    parse_cache_free(pn->cache);
    mem_free(&s->ctx->alloc, pn->rej_rows);
    mem_free(&s->ctx->alloc, pn);
    s->state = NULL;
}

static void parse_node_explain(const sp_stream *s, strbuf *sb)
{
    const parse_node *pn = s->state;
    sb_printf(sb, "parse(%s) on the executors: ", parse_spec_name(pn->spec));
    parse_spec_describe(pn->spec, sb);
}

/* The origin of the parent's rows at time t, when the parent is a text source that produced
 * them at t. */
static const lines_origin *parse_node_origin(const sp_stream *s, int64_t t)
{
    const sp_stream *p = s->parent[0];
    if (p->kind != N_SOURCE || !p->source) return NULL;
    const lines_origin *o = textfile_origin(p->source);
    return o && o->time == t ? o : NULL;
}

/* Remembers which input rows of batch t were rejected (res->rejects is in row order). */
static int parse_node_keep_rejects(sp_stream *s, int64_t t, const parse_result *res, sp_diag *d)
{
    parse_node *pn = s->state;
    pn->rej_time = -1;
    pn->nrej = 0;
    if (res->nrejects > pn->cap_rej) {
        size_t *p = mem_realloc(&s->ctx->alloc, pn->rej_rows, res->nrejects * sizeof *p);
        if (!p) return diag_set(d, SP_ENOMEM, "parse: out of memory");
        pn->rej_rows = p;
        pn->cap_rej = res->nrejects;
    }
    for (size_t i = 0; i < res->nrejects; i++)
        pn->rej_rows[i] = res->rejects[i].row;
    pn->nrej = res->nrejects;
    pn->rej_time = t;
    return SP_OK;
}

int stream_line_origin(const sp_stream *s, int64_t t, size_t row, const char **file, int64_t *line)
{
    for (;;) {
        if (s->kind == N_SOURCE) {
            const lines_origin *o = s->source ? textfile_origin(s->source) : NULL;
            if (!o || o->time != t) return -1;
            return lines_origin_at(o, row, file, line, NULL);
        }
        if (s->ops != &parse_node_ops) return -1;
        const parse_node *pn = s->state;
        if (pn->rej_time != t) return -1;
        /* The k rejected rows before output row j are those with rej_rows[k] - k <= j
         * (rej_rows[k] - k does not decrease): a binary search for their number. */
        size_t lo = 0, hi = pn->nrej;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (pn->rej_rows[mid] - mid <= row)
                lo = mid + 1;
            else
                hi = mid;
        }
        row += lo;
        s = s->parent[0];
    }
}

static int parse_node_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    parse_node *pn = s->state;
    sp_context *ctx = s->ctx;
    sp_batch *in = NULL;
    int rc = stream_compute(s->parent[0], t, &in, d);
    if (rc) return rc;
    const lines_origin *o = parse_node_origin(s, t);
    if (!pn->cache &&
        (rc = parse_cache_new(&ctx->alloc, ctx->exec ? exec_count(ctx->exec) : 1, &pn->cache, d)))
        goto out;
    parse_opts po = {ctx->exec, o, (int64_t)time(NULL), 0, pn->cache};
    if (parse_spec_needs_year(pn->spec) && !o && !pn->warned_year && in->n) {
        pn->warned_year = 1;
        fprintf(ctx->cfg.log,
                "spate: parse(%s) of stream %d: lines without a year take the current year "
                "(the input is not a file; give \"year=YYYY\" to fix it)\n",
                parse_spec_name(pn->spec), s->id);
    }
    parse_result res;
    rc = parse_run(pn->spec, &ctx->env, in, &po, &res, d);
    if (rc) goto out;
    if ((rc = parse_node_keep_rejects(s, t, &res, d))) {
        parse_result_free(&ctx->alloc, &res);
        goto out;
    }
    strbuf why, where;
    sb_init(&why, &ctx->alloc);
    sb_init(&where, &ctx->alloc);
    for (size_t i = 0; i < res.nrejects && !rc; i++) {
        const parse_reject *r = &res.rejects[i];
        const char *file = NULL;
        int64_t line = -1;
        size_t len;
        const char *text = col_get_str(&in->cols[0], ctx->dict, r->row, &len);
        sb_reset(&where);
        sb_reset(&why);
        if (lines_origin_at(o, r->row, &file, &line, NULL) != 0) {
            sb_printf(&where, "stream %d batch %lld", s->parent[0]->id, (long long)t);
            file = sb_cstr(&where);
            line = (int64_t)r->row + 1;
        }
        if (r->col >= 0)
            sb_printf(&why, "parse(%s): %s: %s", parse_spec_name(pn->spec), pn->spec->names[r->col],
                      r->reason);
        else
            sb_printf(&why, "parse(%s): %s", parse_spec_name(pn->spec), r->reason);
        if (why.oom || where.oom)
            rc = diag_set(d, SP_ENOMEM, "parse(%s): out of memory", parse_spec_name(pn->spec));
        else
            rc = ctx_reject(ctx, file, line, sb_cstr(&why), text, len, d);
    }
    sb_free(&why);
    sb_free(&where);
    pn->rejected += res.nrejects;
    if (!rc) {
        *out = res.out;
        res.out = NULL;
    }
    parse_result_free(&ctx->alloc, &res);
out:
    batch_release(in);
    return rc;
}

/* Reclaim cycle: a parse keeps no ids past its batch time (its string -> id caches drop their
 * entries when the dictionary's generation changes). */
static void parse_node_mark(sp_stream *s, sp_dict *dict)
{
    (void)s;
    (void)dict;
}

static const stream_ops parse_node_ops = {
    "parse", NULL, parse_node_compute, parse_node_destroy, parse_node_explain, parse_node_mark};

sp_stream *sp_stream_parse(sp_stream *lines, const char *format, const char *arg)
{
    if (!lines) return NULL;
    sp_context *ctx = lines->ctx;
    if (!format) {
        ctx_fail(ctx, SP_EINVAL, "parse: no format");
        return NULL;
    }
    if (!(lines->td->kind == TD_LEAF && lines->td->leaf == SP_STR)) {
        ctx_fail(ctx, SP_ETYPE, "parse(%s): needs a stream of text lines (str), got %s", format,
                 lines->type_str);
        return NULL;
    }
    sp_diag d;
    diag_clear(&d);
    parse_spec *spec = NULL;
    if (parse_spec_new(&ctx->alloc, format, arg, &spec, &d)) {
        ctx_take(ctx, &d);
        return NULL;
    }
    parse_node *pn = mem_calloc(&ctx->alloc, 1, sizeof *pn);
    sp_td *td = pn ? td_copy(&ctx->alloc, parse_spec_td(spec)) : NULL;
    if (td) td_layout(td, 0);
    sp_stream *s = stream_new_ops(ctx, &parse_node_ops, lines, NULL, td, 0);
    if (!s) {
        parse_spec_free(spec);
        mem_free(&ctx->alloc, pn);
        return NULL;
    }
    pn->spec = spec;
    s->state = pn;
    return s;
}
