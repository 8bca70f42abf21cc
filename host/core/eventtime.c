/* eventtime.c — event-time batches.
 *
 * sp_stream_event_time(s, ts_col, watermark) re-cuts a stream into batches by the records' own
 * timestamps: the batch with time T holds the records stamped in [T - interval, T), T a
 * multiple of the interval in epoch milliseconds. Everything downstream of it (windows,
 * panes, print times) follows event time, so a replay yields the same batches and output
 * however fast it is read.
 *
 * The driver runs the upstream side (sources, parsing) on arrival ticks and hands each
 * arrival batch to eventtime_ingest, which files rows into per-T buckets. A bucket T is due
 * when the watermark (the largest timestamp seen minus the watermark delay) has reached T —
 * no record of [T - interval, T) can still count as on time — or when the input has ended.
 * Due batches are emitted in order without gaps (an empty T in between is an empty batch).
 * A record whose T was already emitted is late: counted and routed to the rejects output.
 *
 * Cost: O(rows) per arrival batch; memory: the rows of buckets not yet due (bounded by the
 * watermark delay and the disorder of the input). */
#include "core/core_int.h"

#include <string.h>

typedef struct bucket {
    int64_t t;
    sp_batch *b;
} bucket;

typedef struct evtime {
    int ts_col;
    int64_t watermark_ms;
    bucket *buckets; /* sorted by t */
    size_t nbuckets, cap;
    int64_t max_ts;
    int have_ts;
    int64_t last_emitted; /* valid when emitted */
    int emitted;
    uint64_t late_total;
    uint64_t late_batch; /* late records since the last emitted batch */
} evtime;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bucket *bucket_for(sp_stream *s, evtime *e, int64_t t, sp_diag *d)
{
    size_t lo = 0, hi = e->nbuckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->buckets[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < e->nbuckets && e->buckets[lo].t == t) return &e->buckets[lo];
    if (e->nbuckets == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        bucket *p = mem_realloc(&s->ctx->alloc, e->buckets, cap * sizeof *p);
        if (!p) {
            diag_set(d, SP_ENOMEM, "eventTime: out of memory");
            return NULL;
        }
        e->buckets = p;
        e->cap = cap;
    }
    memmove(&e->buckets[lo + 1], &e->buckets[lo], (e->nbuckets - lo) * sizeof *e->buckets);
    e->buckets[lo].t = t;
    e->buckets[lo].b = NULL;
    e->nbuckets++;
    if (batch_new(&s->ctx->env, s->td, t, &e->buckets[lo].b, d)) {
        memmove(&e->buckets[lo], &e->buckets[lo + 1], (e->nbuckets - lo - 1) * sizeof *e->buckets);
        e->nbuckets--;
        return NULL;
    }
    return &e->buckets[lo];
}

/* Rows are filed by runs: a maximal run of consecutive rows with the same T is one range copy
 * per column (batch_append_rows), so an input in time order (or in order within each batch
 * interval) costs one bucket lookup per run and memcpy-speed copies. Disordered input degrades
 * to runs of one row, the same copies one row at a time. */
int eventtime_ingest(sp_stream *s, const sp_batch *in, sp_diag *d)
{
    evtime *e = s->state;
    int64_t iv = s->ctx->cfg.batch_ms;
    const sp_col *ts = &in->cols[e->ts_col];
    strbuf sb;
    sb_init(&sb, &s->ctx->alloc);
    int rc = SP_OK;
    size_t i = 0;
    while (i < in->n && !rc) {
        int64_t v = col_get_i64(ts, i);
        int64_t t = (floor_div(v, iv) + 1) * iv;
        if (e->emitted && t <= e->last_emitted) {
            e->late_total++;
            e->late_batch++;
            sb_reset(&sb);
            batch_format_row(in, i, &sb);
            rc = ctx_reject(s->ctx, "eventTime", -1, "late record: its batch was already emitted",
                            sb_cstr(&sb), sb.len, d);
            i++;
            continue;
        }
        /* The run [i, j): every row stamped in [t - iv, t); none is late if row i is not. */
        int64_t lo = t - iv, hi_ts = v;
        size_t j = i + 1;
        for (; j < in->n; j++) {
            int64_t w = col_get_i64(ts, j);
            if (w < lo || w >= t) break;
            if (w > hi_ts) hi_ts = w;
        }
        if (!e->have_ts || hi_ts > e->max_ts) e->max_ts = hi_ts;
        e->have_ts = 1;
        bucket *bk = bucket_for(s, e, t, d);
        if (!bk)
            rc = d ? d->code : SP_ENOMEM;
        else if (batch_append_rows(bk->b, in, i, j))
            rc = diag_set(d, SP_ENOMEM, "eventTime: out of memory");
        i = j;
    }
    sb_free(&sb);
    return rc;
}

int eventtime_next_due(sp_stream *s, int input_done, int pad, int64_t *t)
{
    evtime *e = s->state;
    int64_t iv = s->ctx->cfg.batch_ms;
    int64_t next;
    if (e->emitted)
        next = e->last_emitted + iv;
    else if (e->nbuckets)
        next = e->buckets[0].t;
    else
        return 0;
    if (input_done) {
        /* Flush: every T up to the last bucket; with pad, empty batches after it (--batches N
         * runs exactly N batch times). */
        if (!pad && (!e->nbuckets || next > e->buckets[e->nbuckets - 1].t)) return 0;
    } else {
        if (!e->have_ts || e->max_ts - e->watermark_ms < next) return 0;
    }
    *t = next;
    return 1;
}

uint64_t eventtime_take_late(sp_stream *s)
{
    evtime *e = s->state;
    uint64_t n = e->late_batch;
    e->late_batch = 0;
    return n;
}

static int evt_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    evtime *e = s->state;
    e->emitted = 1;
    e->last_emitted = t;
    if (e->nbuckets && e->buckets[0].t == t) {
        *out = e->buckets[0].b;
        memmove(&e->buckets[0], &e->buckets[1], (e->nbuckets - 1) * sizeof *e->buckets);
        e->nbuckets--;
        return SP_OK;
    }
    return batch_new(&s->ctx->env, s->td, t, out, d);
}

static void evt_destroy(sp_stream *s)
{
    evtime *e = s->state;
    if (!e) return;
    for (size_t i = 0; i < e->nbuckets; i++)
        batch_release(e->buckets[i].b);
    mem_free(&s->ctx->alloc, e->buckets);
    mem_free(&s->ctx->alloc, e);
    s->state = NULL;
}

static void evt_explain(const sp_stream *s, strbuf *sb)
{
    const evtime *e = s->state;
    sb_printf(sb, "event-time batches by column %d, watermark %lld ms (host)", e->ts_col,
              (long long)e->watermark_ms);
}

/* Reclaim cycle: the buckets not yet due keep rows (their dictionary-encoded strings) past the
 * batch time; the emitted batch belongs to the batch time and was released. The node numbers
 * no keys (s->km is unused). Cost: O(rows in the buckets). */
static void evt_mark(sp_stream *s, sp_dict *dict)
{
    const evtime *e = s->state;
    for (size_t i = 0; i < e->nbuckets; i++)
        batch_mark_ids(e->buckets[i].b, dict);
    keymap_clear(s->km);
}

static const stream_ops evt_ops = {"eventTime", NULL,        evt_compute,
                                   evt_destroy, evt_explain, evt_mark};

int stream_is_event_time(const sp_stream *s)
{
    return s->ops == &evt_ops;
}

sp_stream *sp_stream_event_time(sp_stream *s, int ts_col, int64_t watermark_ms)
{
    if (!s) return NULL;
    sp_context *ctx = s->ctx;
    if (watermark_ms < 0) {
        ctx_fail(ctx, SP_EINVAL, "eventTime: the watermark delay must be >= 0");
        return NULL;
    }
    if (ts_col < 0 || ts_col >= s->td->ncols || !td_is_flat(s->td) ||
        (td_col_type(s->td, ts_col) != SP_TS && td_col_type(s->td, ts_col) != SP_I64)) {
        ctx_fail(ctx, SP_ETYPE, "eventTime: column %d of %s is not a timestamp", ts_col,
                 s->type_str);
        return NULL;
    }
    for (int i = 0; i < ctx->nstreams; i++)
        if (stream_is_event_time(ctx->streams[i])) {
            ctx_fail(ctx, SP_EUNSUPPORTED, "eventTime: a job has one event-time stream");
            return NULL;
        }
    if (s->slide_ms != ctx->cfg.batch_ms) {
        ctx_fail(ctx, SP_EINVAL, "eventTime: apply it before any window");
        return NULL;
    }
    evtime *e = mem_calloc(&ctx->alloc, 1, sizeof *e);
    if (!e) {
        ctx_fail(ctx, SP_ENOMEM, "eventTime: out of memory");
        return NULL;
    }
    e->ts_col = ts_col;
    e->watermark_ms = watermark_ms;
    sp_stream *o = stream_new_ops(ctx, &evt_ops, s, NULL, td_copy(&ctx->alloc, s->td), 0);
    if (!o) {
        mem_free(&ctx->alloc, e);
        return NULL;
    }
    o->state = e;
    return o;
}
