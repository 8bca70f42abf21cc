/* stream.c — building the stream graph (sources, transformations, outputs), typing each node,
 * planning fused element-wise stages, and computing a node's batch for a batch time. */
#include "core/core_int.h"

#include <string.h>

/* ------------------------------------------------------------------------------ node basics */

sp_stream *stream_new(sp_context *ctx, node_kind kind, sp_stream *p0, sp_stream *p1, sp_td *td)
{
    if (!td) {
        if (ctx->diag.code == SP_OK)
            ctx_fail(ctx, SP_ENOMEM, "out of memory building the stream graph");
        return NULL;
    }
    if (ctx->started && ctx->planned) {
        td_free(&ctx->alloc, td);
        ctx_fail(ctx, SP_ESTATE, "streams cannot be added once the context runs");
        return NULL;
    }
    if (ctx->nstreams == ctx->cap_streams) {
        int cap = ctx->cap_streams ? ctx->cap_streams * 2 : 16;
        sp_stream **p = mem_realloc(&ctx->alloc, ctx->streams, (size_t)cap * sizeof *p);
        if (!p) {
            td_free(&ctx->alloc, td);
            ctx_fail(ctx, SP_ENOMEM, "out of memory building the stream graph");
            return NULL;
        }
        ctx->streams = p;
        ctx->cap_streams = cap;
    }
    sp_stream *s = mem_calloc(&ctx->alloc, 1, sizeof *s);
    strbuf sb;
    sb_init(&sb, &ctx->alloc);
    td_format(td, &sb);
    if (!s || sb.oom) {
        mem_free(&ctx->alloc, s);
        sb_free(&sb);
        td_free(&ctx->alloc, td);
        ctx_fail(ctx, SP_ENOMEM, "out of memory building the stream graph");
        return NULL;
    }
    s->ctx = ctx;
    s->id = ctx->nstreams;
    s->kind = kind;
    s->parent[0] = p0;
    s->parent[1] = p1;
    s->td = td;
    s->type_str = sb.s ? sb.s : mem_strdup(&ctx->alloc, "");
    s->monoid = -1;
    s->memo_time = -1;
    if (td->kind == TD_TUPLE && td->n == 2) s->nkey = td->child[0]->ncols;
    s->slide_ms = p0 ? p0->slide_ms : ctx->cfg.batch_ms;
    if (p0 && p1 && p0->slide_ms != p1->slide_ms) {
        /* Spark: "Some of the DStreams have different slide durations". */
        ctx_fail(ctx, SP_EINVAL,
                 "streams %d and %d have different slide durations (%lld ms and %lld ms)", p0->id,
                 p1->id, (long long)p0->slide_ms, (long long)p1->slide_ms);
        mem_free(&ctx->alloc, s->type_str);
        mem_free(&ctx->alloc, s);
        td_free(&ctx->alloc, td);
        return NULL;
    }
    if (p0) p0->consumers++;
    if (p1) p1->consumers++;
    ctx->streams[ctx->nstreams++] = s;
    return s;
}

sp_stream *stream_new_ops(sp_context *ctx, const stream_ops *ops, sp_stream *p0, sp_stream *p1,
                          sp_td *td, int64_t slide_ms)
{
    sp_stream *s = stream_new(ctx, N_OPS, p0, p1, td);
    if (s) {
        s->ops = ops;
        if (slide_ms > 0) s->slide_ms = slide_ms;
    }
    return s;
}

int stream_time_valid(const sp_stream *s, int64_t t)
{
    return (t - s->ctx->zero_time) % s->slide_ms == 0;
}

void stream_free(sp_stream *s)
{
    if (!s) return;
    const sp_allocator *a = &s->ctx->alloc;
    if (s->ops && s->ops->destroy) s->ops->destroy(s);
    batch_release(s->memo);
    if (s->source) source_free(s->source);
    if (s->stage) ew_stage_free(s->stage);
    if (s->km) keymap_free(s->km);
    td_free(a, s->td);
    mem_free(a, s->type_str);
    mem_free(a, s);
}

const char *sp_stream_type(const sp_stream *s)
{
    return s ? s->type_str : "";
}

/** A pair type (K, V): returns 1 and sets the parts, else records a type error. */
static int need_pair(sp_stream *s, const char *op)
{
    if (s->td->kind == TD_TUPLE && s->td->n == 2) return 1;
    ctx_fail(s->ctx, SP_ETYPE, "%s needs a stream of (key, value) pairs, got %s", op, s->type_str);
    return 0;
}

static sp_td *copy_td(sp_context *ctx, const sp_td *t)
{
    return td_copy(&ctx->alloc, t);
}

static sp_td *laid_out(sp_td *t)
{
    if (t) td_layout(t, 0);
    return t;
}

/* ----------------------------------------------------------------------------------- sources */

static sp_stream *source_stream(sp_context *ctx, int rc, sp_source *src, sp_diag *d)
{
    if (rc != SP_OK) {
        ctx_take(ctx, d);
        return NULL;
    }
    sp_stream *s = stream_new(ctx, N_SOURCE, NULL, NULL, copy_td(ctx, src->td));
    if (!s) {
        source_free(src);
        return NULL;
    }
    s->source = src;
    /* Line sources cap their lines and send the longer ones to the rejects output. */
    src->line_max = ctx->cfg.line_max ? ctx->cfg.line_max : SOURCE_LINE_MAX_DEFAULT;
    src->reject = ctx_source_reject;
    src->reject_ud = ctx;
    src->stop = &ctx->stop;
    return s;
}

sp_stream *sp_queue_stream(sp_context *ctx, const char *path, const char *type)
{
    if (!ctx || !path) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_queue_new(&ctx->env, path, type, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

sp_stream *sp_text_file(sp_context *ctx, const char *path)
{
    if (!ctx || !path) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_text_file_new(&ctx->env, path, ctx->cfg.batch_lines, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

sp_stream *sp_text_file_stream(sp_context *ctx, const char *dir)
{
    if (!ctx || !dir) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_dir_new(&ctx->env, dir, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

sp_stream *sp_socket_text_stream(sp_context *ctx, const char *host, int port)
{
    if (!ctx || !host) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_socket_new(&ctx->env, host, port, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

sp_stream *sp_stdin_stream(sp_context *ctx)
{
    if (!ctx) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_fd_new(&ctx->env, 0, "stdin", ctx->cfg.batch_lines, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

sp_stream *sp_generator(sp_context *ctx, const sp_generator_opts *o)
{
    if (!ctx || !o) return NULL;
    sp_diag d;
    diag_clear(&d);
    sp_source *src = NULL;
    int rc = source_generator_new(&ctx->env, o, &src, &d);
    return source_stream(ctx, rc, src, &d);
}

/* --------------------------------------------------------------------------- transformations */

static sp_td *typecheck(sp_context *ctx, const sp_expr *e, const sp_td *a0, const sp_td *a1,
                        const char *op)
{
    sp_diag d;
    diag_clear(&d);
    sp_td *t = NULL;
    if (expr_typecheck(e, &ctx->alloc, a0, a1, &t, &d)) {
        diag_prefix(&d, "%s", op);
        ctx_take(ctx, &d);
        return NULL;
    }
    return laid_out(t);
}

sp_stream *sp_stream_map(sp_stream *s, sp_expr *body)
{
    if (!s || !body) return NULL;
    sp_stream *o = stream_new(s->ctx, N_MAP, s, NULL, typecheck(s->ctx, body, s->td, NULL, "map"));
    if (o) o->expr = body;
    return o;
}

sp_stream *sp_stream_filter(sp_stream *s, sp_expr *pred)
{
    if (!s || !pred) return NULL;
    sp_td *t = typecheck(s->ctx, pred, s->td, NULL, "filter");
    if (!t) return NULL;
    int ok = t->kind == TD_LEAF && t->leaf == SP_BOOL;
    td_free(&s->ctx->alloc, t);
    if (!ok) {
        ctx_fail(s->ctx, SP_ETYPE, "filter: the predicate must return bool");
        return NULL;
    }
    sp_stream *o = stream_new(s->ctx, N_FILTER, s, NULL, copy_td(s->ctx, s->td));
    if (o) o->expr = pred;
    return o;
}

sp_stream *sp_stream_map_values(sp_stream *s, sp_expr *body)
{
    if (!s || !body || !need_pair(s, "mapValues")) return NULL;
    sp_td *v = typecheck(s->ctx, body, s->td->child[1], NULL, "mapValues");
    if (!v) return NULL;
    sp_td *t = laid_out(td_tuple2(&s->ctx->alloc, copy_td(s->ctx, s->td->child[0]), v));
    sp_stream *o = stream_new(s->ctx, N_MAP_VALUES, s, NULL, t);
    if (o) o->expr = body;
    return o;
}

static sp_td *parse_type(sp_context *ctx, const char *type, const char *op)
{
    sp_diag d;
    diag_clear(&d);
    sp_td *t = NULL;
    if (!type) {
        ctx_fail(ctx, SP_EINVAL, "%s: an output type is required", op);
        return NULL;
    }
    if (td_parse(&ctx->alloc, type, &t, &d)) {
        diag_prefix(&d, "%s", op);
        ctx_take(ctx, &d);
        return NULL;
    }
    if (!td_is_flat(t)) {
        td_free(&ctx->alloc, t);
        ctx_fail(ctx, SP_EUNSUPPORTED, "%s: callbacks emit flat types (tuples of scalars)", op);
        return NULL;
    }
    return t;
}

sp_stream *sp_stream_flat_map(sp_stream *s, const char *out_type, sp_flatmap_fn fn, void *ud)
{
    if (!s || !fn) return NULL;
    sp_stream *o = stream_new(s->ctx, N_FLAT_MAP, s, NULL, parse_type(s->ctx, out_type, "flatMap"));
    if (o) {
        o->fm_fn = fn;
        o->ud = ud;
    }
    return o;
}

sp_stream *sp_stream_flat_map_values(sp_stream *s, const char *out_value_type, sp_flatmap_fn fn,
                                     void *ud)
{
    if (!s || !fn || !need_pair(s, "flatMapValues")) return NULL;
    sp_td *v = parse_type(s->ctx, out_value_type, "flatMapValues");
    if (!v) return NULL;
    sp_td *t = laid_out(td_tuple2(&s->ctx->alloc, copy_td(s->ctx, s->td->child[0]), v));
    if (t && !td_is_flat(t)) {
        td_free(&s->ctx->alloc, t);
        ctx_fail(s->ctx, SP_EUNSUPPORTED, "flatMapValues: the key must be a flat type");
        return NULL;
    }
    sp_stream *o = stream_new(s->ctx, N_FLAT_MAP_VALUES, s, NULL, t);
    if (o) {
        o->fm_fn = fn;
        o->ud = ud;
    }
    return o;
}

sp_stream *sp_stream_union(sp_stream *a, sp_stream *b)
{
    if (!a || !b) return NULL;
    if (a->ctx != b->ctx) {
        ctx_fail(a->ctx, SP_EINVAL, "union: streams of different contexts");
        return NULL;
    }
    if (!td_equal(a->td, b->td)) {
        ctx_fail(a->ctx, SP_ETYPE, "union: element types differ: %s and %s", a->type_str,
                 b->type_str);
        return NULL;
    }
    return stream_new(a->ctx, N_UNION, a, b, copy_td(a->ctx, a->td));
}

sp_stream *sp_stream_count(sp_stream *s)
{
    if (!s) return NULL;
    return stream_new(s->ctx, N_COUNT, s, NULL, laid_out(td_leaf(&s->ctx->alloc, SP_I64)));
}

sp_stream *sp_stream_reduce(sp_stream *s, sp_expr *f)
{
    if (!s || !f) return NULL;
    sp_td *t = typecheck(s->ctx, f, s->td, s->td, "reduce");
    if (!t) return NULL;
    int ok = td_equal(t, s->td);
    td_free(&s->ctx->alloc, t);
    if (!ok) {
        ctx_fail(s->ctx, SP_ETYPE, "reduce: the function must return the element type %s",
                 s->type_str);
        return NULL;
    }
    sp_stream *o = stream_new(s->ctx, N_REDUCE, s, NULL, copy_td(s->ctx, s->td));
    if (o) {
        o->expr = f;
        o->monoid = expr_match_monoid(f);
    }
    return o;
}

static int need_flat_key(sp_stream *s, const char *op)
{
    if (td_is_flat(s->td->child[0])) return 1;
    ctx_fail(s->ctx, SP_EUNSUPPORTED, "%s: keys must be scalars or tuples of scalars", op);
    return 0;
}

sp_stream *sp_stream_count_by_value(sp_stream *s)
{
    if (!s) return NULL;
    if (!td_is_flat(s->td)) {
        ctx_fail(s->ctx, SP_EUNSUPPORTED, "countByValue: elements must be flat, got %s",
                 s->type_str);
        return NULL;
    }
    sp_td *t = laid_out(
        td_tuple2(&s->ctx->alloc, copy_td(s->ctx, s->td), td_leaf(&s->ctx->alloc, SP_I64)));
    return stream_new(s->ctx, N_COUNT_BY_VALUE, s, NULL, t);
}

static int numeric(sp_type t)
{
    return t == SP_I32 || t == SP_I64 || t == SP_F32 || t == SP_F64 || t == SP_TS;
}

sp_stream *sp_stream_reduce_by_key_agg(sp_stream *s, sp_agg agg)
{
    if (!s || !need_pair(s, "reduceByKey") || !need_flat_key(s, "reduceByKey")) return NULL;
    const sp_td *v = s->td->child[1];
    if (agg != SP_AGG_COUNT && !(v->kind == TD_LEAF && numeric(v->leaf))) {
        ctx_fail(s->ctx, SP_ETYPE,
                 "reduceByKey: a built-in aggregate needs numeric values, "
                 "got %s",
                 s->type_str);
        return NULL;
    }
    sp_type acc = agg == SP_AGG_COUNT ? SP_I64
                  : agg == SP_AGG_AVG ? SP_F64
                                      : kagg_acc_type(agg, v->leaf);
    sp_td *t = laid_out(
        td_tuple2(&s->ctx->alloc, copy_td(s->ctx, s->td->child[0]), td_leaf(&s->ctx->alloc, acc)));
    sp_stream *o = stream_new(s->ctx, N_REDUCE_BY_KEY_AGG, s, NULL, t);
    if (o) o->agg = agg;
    return o;
}

sp_stream *sp_stream_reduce_by_key(sp_stream *s, sp_expr *f)
{
    if (!s || !f || !need_pair(s, "reduceByKey") || !need_flat_key(s, "reduceByKey")) return NULL;
    const sp_td *v = s->td->child[1];
    sp_td *t = typecheck(s->ctx, f, v, v, "reduceByKey");
    if (!t) return NULL;
    int ok = td_equal(t, v);
    td_free(&s->ctx->alloc, t);
    if (!ok) {
        ctx_fail(s->ctx, SP_ETYPE, "reduceByKey: the function must return the value type");
        return NULL;
    }
    sp_stream *o = stream_new(s->ctx, N_REDUCE_BY_KEY, s, NULL, copy_td(s->ctx, s->td));
    if (o) {
        o->expr = f;
        o->monoid = (v->kind == TD_LEAF && numeric(v->leaf)) ? expr_match_monoid(f) : -1;
    }
    return o;
}

sp_stream *sp_stream_group_by_key(sp_stream *s)
{
    if (!s || !need_pair(s, "groupByKey") || !need_flat_key(s, "groupByKey")) return NULL;
    const sp_allocator *a = &s->ctx->alloc;
    sp_td *t = laid_out(td_tuple2(a, copy_td(s->ctx, s->td->child[0]),
                                  td_list(a, copy_td(s->ctx, s->td->child[1]))));
    return stream_new(s->ctx, N_GROUP_BY_KEY, s, NULL, t);
}

static sp_stream *join_like(sp_stream *a, sp_stream *b, node_kind kind, int jk, const char *op)
{
    if (!a || !b || !need_pair(a, op) || !need_pair(b, op) || !need_flat_key(a, op)) return NULL;
    if (!td_equal(a->td->child[0], b->td->child[0])) {
        ctx_fail(a->ctx, SP_ETYPE, "%s: key types differ: %s and %s", op, a->type_str, b->type_str);
        return NULL;
    }
    const sp_allocator *al = &a->ctx->alloc;
    sp_td *v = copy_td(a->ctx, a->td->child[1]);
    sp_td *w = copy_td(a->ctx, b->td->child[1]);
    if (kind == N_COGROUP) {
        v = td_list(al, v);
        w = td_list(al, w);
    } else {
        if (jk == JOIN_RIGHT || jk == JOIN_FULL) v = td_option(al, v);
        if (jk == JOIN_LEFT || jk == JOIN_FULL) w = td_option(al, w);
    }
    sp_td *t = laid_out(td_tuple2(al, copy_td(a->ctx, a->td->child[0]), td_tuple2(al, v, w)));
    sp_stream *o = stream_new(a->ctx, kind, a, b, t);
    if (o) o->join = jk;
    return o;
}

sp_stream *sp_stream_join(sp_stream *a, sp_stream *b)
{
    return join_like(a, b, N_JOIN, JOIN_INNER, "join");
}

sp_stream *sp_stream_left_outer_join(sp_stream *a, sp_stream *b)
{
    return join_like(a, b, N_JOIN, JOIN_LEFT, "leftOuterJoin");
}

sp_stream *sp_stream_right_outer_join(sp_stream *a, sp_stream *b)
{
    return join_like(a, b, N_JOIN, JOIN_RIGHT, "rightOuterJoin");
}

sp_stream *sp_stream_full_outer_join(sp_stream *a, sp_stream *b)
{
    return join_like(a, b, N_JOIN, JOIN_FULL, "fullOuterJoin");
}

sp_stream *sp_stream_cogroup(sp_stream *a, sp_stream *b)
{
    return join_like(a, b, N_COGROUP, JOIN_FULL, "cogroup");
}

sp_stream *sp_stream_transform(sp_stream *s, const char *out_type, sp_transform_fn fn, void *ud)
{
    if (!s || !fn) return NULL;
    sp_stream *o =
        stream_new(s->ctx, N_TRANSFORM, s, NULL, parse_type(s->ctx, out_type, "transform"));
    if (o) {
        o->tr_fn = fn;
        o->ud = ud;
    }
    return o;
}

/* ---------------------------------------------------------------------------------- outputs */

int stream_add_output(sp_stream *s, int rc, sp_sink *k, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    if (rc != SP_OK) return ctx_take(ctx, d);
    if (ctx->noutputs == ctx->cap_outputs) {
        int cap = ctx->cap_outputs ? ctx->cap_outputs * 2 : 8;
        sp_output *p = mem_realloc(&ctx->alloc, ctx->outputs, (size_t)cap * sizeof *p);
        if (!p) {
            sink_free(k);
            return ctx_fail(ctx, SP_ENOMEM, "out of memory adding an output");
        }
        ctx->outputs = p;
        ctx->cap_outputs = cap;
    }
    ctx->outputs[ctx->noutputs].stream = s;
    ctx->outputs[ctx->noutputs].sink = k;
    ctx->noutputs++;
    s->consumers++;
    return SP_OK;
}

#define OUTPUT_PROLOGUE(s)                                                                         \
    if (!(s)) return SP_EINVAL;                                                                    \
    if ((s)->ctx->planned)                                                                         \
        return ctx_fail((s)->ctx, SP_ESTATE, "outputs cannot be added once the context runs");     \
    sp_diag d;                                                                                     \
    diag_clear(&d);                                                                                \
    sp_sink *k = NULL;

int sp_stream_print(sp_stream *s, int n)
{
    OUTPUT_PROLOGUE(s)
    if (n < 0) return ctx_fail(s->ctx, SP_EINVAL, "print: n must be >= 0");
    int rc = sink_print_new(&s->ctx->alloc, s->ctx->cfg.out, n, &k, &d);
    return stream_add_output(s, rc, k, &d);
}

int sp_stream_save_as_text_files(sp_stream *s, const char *prefix, const char *suffix)
{
    OUTPUT_PROLOGUE(s)
    if (!prefix) return ctx_fail(s->ctx, SP_EINVAL, "saveAsTextFiles: a prefix is required");
    int rc = sink_text_files_new(&s->ctx->alloc, prefix, suffix, &k, &d);
    return stream_add_output(s, rc, k, &d);
}

int sp_stream_foreach_rdd(sp_stream *s, sp_foreach_fn fn, void *ud)
{
    OUTPUT_PROLOGUE(s)
    if (!fn) return ctx_fail(s->ctx, SP_EINVAL, "foreachRDD: a callback is required");
    int rc = sink_foreach_new(&s->ctx->alloc, fn, ud, &k, &d);
    return stream_add_output(s, rc, k, &d);
}

int sp_stream_save_csv(sp_stream *s, const char *path)
{
    OUTPUT_PROLOGUE(s)
    if (!path) return ctx_fail(s->ctx, SP_EINVAL, "saveAsCsv: a path is required");
    int rc = sink_csv_new(&s->ctx->alloc, path, s->ctx->cfg.checkpoint_dir != NULL, &k, &d);
    return stream_add_output(s, rc, k, &d);
}

int sp_stream_save_jsonl(sp_stream *s, const char *path)
{
    OUTPUT_PROLOGUE(s)
    if (!path) return ctx_fail(s->ctx, SP_EINVAL, "saveAsJsonLines: a path is required");
    int rc = sink_jsonl_new(&s->ctx->alloc, path, s->ctx->cfg.checkpoint_dir != NULL, &k, &d);
    return stream_add_output(s, rc, k, &d);
}

/* ------------------------------------------------------------------------------------- plan */

static int is_elementwise(const sp_stream *s)
{
    return s->kind == N_MAP || s->kind == N_FILTER || s->kind == N_MAP_VALUES;
}

static ew_kind ew_of(node_kind k)
{
    return k == N_MAP ? EW_MAP : k == N_FILTER ? EW_FILTER : EW_MAP_VALUES;
}

/** --on-error skip: a row whose lambda failed in an element-wise stage goes to the rejects
 *  output (its value is part of the reason). */
static int stage_reject(void *ud, size_t row, const char *reason)
{
    (void)row;
    const sp_stream *s = ud;
    return sp_context_reject(s->ctx, s->kind == N_FILTER ? "filter" : "map", -1, reason, "", 0);
}

int stream_plan(sp_context *ctx)
{
    if (ctx->planned) return SP_OK;
    /* Event time: mark what runs at event times; every output must be among it. */
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (stream_is_event_time(s)) ctx->event = s;
        s->event_side = (ctx->event && s == ctx->event) ||
                        (s->parent[0] && s->parent[0]->event_side) ||
                        (s->parent[1] && s->parent[1]->event_side);
    }
    for (int i = 0; ctx->event && i < ctx->noutputs; i++)
        if (!ctx->outputs[i].stream->event_side)
            return ctx_fail(ctx, SP_EINVAL,
                            "output %d (%s) does not follow eventTime: in an event-time job "
                            "every output must be downstream of the event-time stream",
                            i, ctx->outputs[i].sink->vt->kind);
    /* An element-wise node whose only consumer is element-wise is fused into it. */
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (is_elementwise(s) && s->parent[0] && is_elementwise(s->parent[0]) &&
            s->parent[0]->consumers == 1)
            s->parent[0]->fused = 1;
    }
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (!is_elementwise(s) || s->fused) continue;
        int n = 1;
        sp_stream *in = s->parent[0];
        while (is_elementwise(in) && in->fused) {
            n++;
            in = in->parent[0];
        }
        ew_step *steps = mem_calloc(&ctx->alloc, (size_t)n, sizeof *steps);
        if (!steps) return ctx_fail(ctx, SP_ENOMEM, "out of memory planning stages");
        sp_stream *c = s;
        for (int k = n - 1; k >= 0; k--, c = c->parent[0]) {
            steps[k].kind = ew_of(c->kind);
            steps[k].body = c->expr;
        }
        char name[64];
        snprintf(name, sizeof name, "stage %d", s->id);
        sp_diag d;
        diag_clear(&d);
        int rc = ew_stage_new(ctx->dev, &ctx->env, in->td, n, steps, name, &s->stage, &d);
        mem_free(&ctx->alloc, steps);
        if (rc) return ctx_take(ctx, &d);
        if (ctx->cfg.on_error_skip) ew_stage_set_on_error(s->stage, 1, stage_reject, s);
        s->stage_input = in;
    }
    ctx->planned = 1;
    ctx_reclaim_start(ctx);
    return SP_OK;
}

/* ---------------------------------------------------------------------------------- compute */

static int empty_batch(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    return batch_new(&s->ctx->env, s->td, t, out, d);
}

int stream_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    *out = NULL;
    if (s->memo && s->memo_time == t) {
        *out = batch_retain(s->memo);
        return SP_OK;
    }
    sp_batch *a = NULL, *b = NULL, *r = NULL;
    int rc = SP_OK;
    if (s->kind == N_SOURCE) {
        rc = empty_batch(s, t, &r, d); /* not sealed this time (e.g. after it ended) */
        goto done;
    }
    if (s->ops) {
        rc = s->ops->compute(s, t, &r, d);
        goto done;
    }
    if (s->stage) {
        if ((rc = stream_compute(s->stage_input, t, &a, d))) goto done;
        rc = ew_stage_run(s->stage, s->ctx->exec, a, &r, d);
        goto done;
    }
    if ((rc = stream_compute(s->parent[0], t, &a, d))) goto done;
    if (s->parent[1] && (rc = stream_compute(s->parent[1], t, &b, d))) goto done;
    switch (s->kind) {
    case N_FLAT_MAP:
    case N_FLAT_MAP_VALUES:
        rc = hostop_flat_map(s, a, &r, d);
        break;
    case N_UNION:
        rc = hostop_union(s, a, b, &r, d);
        break;
    case N_COUNT:
        rc = hostop_count(s, a, &r, d);
        break;
    case N_REDUCE:
        rc = hostop_reduce(s, a, &r, d);
        break;
    case N_COUNT_BY_VALUE:
    case N_REDUCE_BY_KEY_AGG:
    case N_REDUCE_BY_KEY:
        rc = hostop_reduce_by_key(s, a, &r, d);
        break;
    case N_GROUP_BY_KEY:
        rc = hostop_group_by_key(s, a, &r, d);
        break;
    case N_JOIN:
    case N_COGROUP:
        rc = hostop_join(s, a, b, &r, d);
        break;
    case N_TRANSFORM:
        rc = hostop_transform(s, a, &r, d);
        break;
    default:
        rc = diag_set(d, SP_EINVAL, "internal: stream %d of kind %d has no stage", s->id,
                      (int)s->kind);
    }
done:
    batch_release(a);
    batch_release(b);
    if (rc) {
        batch_release(r);
        return rc;
    }
    r->time_ms = t;
    batch_release(s->memo);
    s->memo = batch_retain(r);
    s->memo_time = t;
    *out = r;
    return SP_OK;
}
