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
 * Sane times. Every batch between the first and the last one is emitted, so one wild
 * timestamp would cost a batch per interval up to it (a record dated 9999 behind records of
 * 2024 is 4 billion one-minute batches). Two checks, whatever the parser let through:
 *  - a timestamp outside years 1 to 9999 (EVT_TS_MIN..EVT_TS_MAX) is rejected (a NaN or an
 *    infinity converted to an integer lands at INT64_MIN or INT64_MAX);
 *  - once a record is accepted, a timestamp further than the horizon (sp_config's
 *    event_horizon_ms, default 365 days) from the watermark, either way, is rejected.
 * The first accepted record anchors the horizon, which then follows the watermark. So the
 * batches between the first and the last are at most about (span of the input + horizon) /
 * interval, and one record cannot move the clock further than the horizon at once.
 * Rejects are counted and written as "FILE:LINE: eventTime: REASON: ROW" (FILE:LINE from the
 * text source through the parse node; otherwise "stream N batch T" and the row).
 *
 * Cost: O(rows) per arrival batch; memory: the rows of buckets not yet due (bounded by the
 * watermark delay and the disorder of the input). */
#include "core/core_int.h"

#include <stdio.h>
#include <string.h>

#define EVT_TS_MIN INT64_C(-62135596800000) /* 0001-01-01T00:00:00Z */
#define EVT_TS_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define EVT_HORIZON_DEFAULT (INT64_C(365) * 86400000)

typedef struct bucket {
    int64_t t;
    sp_batch *b;
} bucket;

typedef struct evtime {
    int ts_col;
    int64_t watermark_ms;
    int64_t horizon_ms;
    char horizon_why[96]; /* the reject reason for a time beyond the horizon */
    bucket *buckets;      /* sorted by t */
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

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The times a record may have once the largest accepted timestamp is mx: the watermark
 * (mx - delay) +/- the horizon, within years 1..9999. */
static void evt_bounds(const evtime *e, int64_t mx, int64_t *lo, int64_t *hi)
{
    int64_t wm = sat_add(mx, -e->watermark_ms);
    *lo = sat_add(wm, -e->horizon_ms);
    *hi = sat_add(wm, e->horizon_ms);
    if (*lo < EVT_TS_MIN) *lo = EVT_TS_MIN;
    if (*hi > EVT_TS_MAX) *hi = EVT_TS_MAX;
}

/* Why the record stamped v cannot be filed (NULL: it can); *late set for a late record. */
static const char *evt_refuse(const evtime *e, int64_t v, int64_t iv, int *late)
{
    *late = 0;
    if (v < EVT_TS_MIN || v > EVT_TS_MAX)
        return "timestamp out of range (years 1 to 9999 are event times)";
    int64_t t = (floor_div(v, iv) + 1) * iv;
    if (e->emitted && t <= e->last_emitted) {
        *late = 1;
        return "late record: its batch was already emitted";
    }
    if (!e->have_ts) return NULL; /* the first record anchors the horizon */
    int64_t lo, hi;
    evt_bounds(e, e->max_ts, &lo, &hi);
    return v < lo || v > hi ? e->horizon_why : NULL;
}

/* Routes row `row` of the arrival batch `in` (time in->time_ms, from the event-time stream's
 * parent) to the rejects with its place: FILE:LINE when the rows come from a text source,
 * else "stream N batch T" and the 1-based row. */
static int evt_reject(sp_stream *s, const sp_batch *in, size_t row, const char *why, strbuf *sb,
                      sp_diag *d)
{
    const sp_stream *p = s->parent[0];
    const char *file = NULL;
    int64_t line = -1;
    char where[64], reason[160];
    if (stream_line_origin(p, in->time_ms, row, &file, &line) != 0) {
        snprintf(where, sizeof where, "stream %d batch %lld", p->id, (long long)in->time_ms);
        file = where;
        line = (int64_t)row + 1;
    }
    snprintf(reason, sizeof reason, "eventTime: %s", why);
    sb_reset(sb);
    batch_format_row(in, row, sb);
    if (sb->oom) return diag_set(d, SP_ENOMEM, "eventTime: out of memory");
    return ctx_reject(s->ctx, file, line, reason, sb_cstr(sb), sb->len, d);
}

/* Rows are filed by runs: a maximal run of consecutive rows with the same T is one range copy
 * per column (batch_append_rows), so an input in time order (or in order within each batch
 * interval) costs one bucket lookup per run and memcpy-speed copies. Disordered input degrades
 * to runs of one row, the same copies one row at a time. A row outside the bounds ends a run
 * and is then looked at alone, so rows are judged exactly as if one at a time. */
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
        int late;
        const char *why = evt_refuse(e, v, iv, &late);
        if (why) {
            if (late) {
                e->late_total++;
                e->late_batch++;
            }
            rc = evt_reject(s, in, i, why, &sb, d);
            i++;
            continue;
        }
        int64_t t = (floor_div(v, iv) + 1) * iv;
        /* The run [i, j): every row stamped in [t - iv, t) and within the bounds that the
         * rows before it set; none is late if row i is not. */
        int64_t lo = t - iv, hi_ts = e->have_ts && e->max_ts > v ? e->max_ts : v;
        int64_t blo, bhi;
        evt_bounds(e, hi_ts, &blo, &bhi);
        size_t j = i + 1;
        for (; j < in->n; j++) {
            int64_t w = col_get_i64(ts, j);
            if (w < lo || w >= t || w < blo || w > bhi) break;
            if (w > hi_ts) {
                hi_ts = w;
                evt_bounds(e, hi_ts, &blo, &bhi);
            }
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
        if (!e->have_ts || sat_add(e->max_ts, -e->watermark_ms) < next) return 0;
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

/* "timestamp more than 8760h from the watermark": the horizon in the largest unit that
 * divides it, as job scripts write durations. */
static void evt_horizon_reason(evtime *e)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t u = 0;
    while (e->horizon_ms % units[u].ms) /* ends at ms */
        u++;
    snprintf(e->horizon_why, sizeof e->horizon_why,
             "timestamp more than %lld%s from the watermark (the event-time horizon)",
             (long long)(e->horizon_ms / units[u].ms), units[u].unit);
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
    sb_printf(sb, "event-time batches by column %d, watermark %lld ms, horizon %lld ms (host)",
              e->ts_col, (long long)e->watermark_ms, (long long)e->horizon_ms);
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
    e->horizon_ms = ctx->cfg.event_horizon_ms ? ctx->cfg.event_horizon_ms : EVT_HORIZON_DEFAULT;
    evt_horizon_reason(e);
    sp_stream *o = stream_new_ops(ctx, &evt_ops, s, NULL, td_copy(&ctx->alloc, s->td), 0);
    if (!o) {
        mem_free(&ctx->alloc, e);
        return NULL;
    }
    o->state = e;
    return o;
}
