/* driver.c — the batch clock and the run loop.
 *
 * Batch times follow Spark: on the manual clock (queue streams and replays) the k-th batch has
 * time k x interval; on the system clock the first batch time is the first multiple of the
 * interval after the start, and the driver sleeps until each boundary. At each batch time the
 * driver seals every source into a batch, runs the output operations in declaration order,
 * writes metrics, and releases the batch time's memoised batches. */
#include "core/checkpoint_int.h"
#include "core/core_int.h"

#include <inttypes.h>
#include <string.h>
#include <xxhash.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/** Sleeps until wall-clock time t (ms), waking early when a stop is requested. */
static void sleep_until(sp_context *ctx, double t)
{
    for (;;) {
        double left = t - now_ms();
        if (left <= 0 || atomic_load(&ctx->stop)) return;
        if (left > 50) left = 50;
        struct timespec ts = {(time_t)(left / 1e3),
                              (long)((left - (double)(time_t)(left / 1e3) * 1e3) * 1e6)};
        nanosleep(&ts, NULL);
    }
}

typedef struct batch_metrics {
    int64_t batch;
    int64_t time_ms;
    size_t records_in, records_out;
    double sched_delay_ms, processing_ms;
    uint64_t rejected, late;
} batch_metrics;

static void report(sp_context *ctx, const batch_metrics *m)
{
    if (ctx->metrics) {
        /* device work since the previous line: launches, rows operators ran on the device
         * and rows they kept on the host */
        dev_counters c;
        dev_counters_get(ctx->dev, &c);
        fprintf(ctx->metrics,
                "{\"batch\":%lld,\"time_ms\":%lld,\"records_in\":%zu,\"records_out\":%zu,"
                "\"rejected\":%llu,\"late\":%llu,"
                "\"scheduling_delay_ms\":%.3f,\"processing_ms\":%.3f,\"total_delay_ms\":%.3f,"
                "\"kernel_launches\":%llu,\"rows_device\":%llu,\"rows_host\":%llu}\n",
                (long long)m->batch, (long long)m->time_ms, m->records_in, m->records_out,
                (unsigned long long)m->rejected, (unsigned long long)m->late, m->sched_delay_ms,
                m->processing_ms, m->sched_delay_ms + m->processing_ms,
                (unsigned long long)(c.launches - ctx->dev_seen.launches),
                (unsigned long long)(c.rows_device - ctx->dev_seen.rows_device),
                (unsigned long long)(c.rows_host - ctx->dev_seen.rows_host));
        ctx->dev_seen = c;
        fflush(ctx->metrics);
    }
    if (ctx->status_tty)
        fprintf(ctx->cfg.log,
                "\r\033[Kspate: batch %lld (%lld ms) | in %zu | out %zu | processing %.1f ms | "
                "scheduling delay %.1f ms",
                (long long)m->batch, (long long)m->time_ms, m->records_in, m->records_out,
                m->processing_ms, m->sched_delay_ms);
}

static void release_memos(sp_context *ctx)
{
    for (int i = 0; i < ctx->nstreams; i++) {
        batch_release(ctx->streams[i]->memo);
        ctx->streams[i]->memo = NULL;
        ctx->streams[i]->memo_time = -1;
    }
}

/** Seals every source for batch time t. Returns the records taken in. */
static int seal_sources(sp_context *ctx, int64_t t, size_t *records, sp_diag *d)
{
    *records = 0;
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (!s->source) continue;
        sp_batch *b = NULL;
        int rc = batch_new(&ctx->env, s->td, t, &b, d);
        if (rc) return rc;
        if (!s->source_done) {
            int done = 0;
            rc = s->source->vt->next(s->source, t, b, &done, d);
            if (rc) {
                batch_release(b);
                return rc;
            }
            s->source_done = done;
        }
        /* Spread a large batch over the executors so host stages run in parallel. */
        unsigned nx = exec_count(ctx->exec);
        if (b->nparts <= 1 && nx > 1 && b->n >= 4096) {
            unsigned nodes[256];
            unsigned np = nx < 256 ? nx : 256;
            for (unsigned p = 0; p < np; p++)
                nodes[p] = exec_node(ctx->exec, p);
            if (batch_split_even(b, np, nodes)) {
                batch_release(b);
                return diag_set(d, SP_ENOMEM, "out of memory partitioning a batch");
            }
        }
        s->memo = b;
        s->memo_time = t;
        *records += b->n;
    }
    return SP_OK;
}

static int all_sources_done(sp_context *ctx)
{
    int any = 0;
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (!s->source) continue;
        any = 1;
        if (!s->source_done) return 0;
    }
    return any;
}

static int run_outputs(sp_context *ctx, int64_t t, size_t *records, sp_diag *d)
{
    *records = 0;
    for (int i = 0; i < ctx->noutputs; i++) {
        sp_output *o = &ctx->outputs[i];
        if (!stream_time_valid(o->stream, t)) continue; /* windowed: only at slide times */
        if (ctx->replaying && !o->sink->vt->replays) continue; /* written before the crash */
        sp_batch *b = NULL;
        int rc = stream_compute(o->stream, t, &b, d);
        if (rc) return rc;
        rc = o->sink->vt->write(o->sink, b, d);
        *records += b->n;
        batch_release(b);
        if (rc) return rc;
    }
    return SP_OK;
}

/** Lets stateful nodes take in their parent's batch of time t, in declaration order. */
static int tick_stateful(sp_context *ctx, int64_t t, int side, sp_diag *d)
{
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (s->ops && s->ops->tick && s->event_side == side) {
            int rc = s->ops->tick(s, t, d);
            if (rc) return rc;
        }
    }
    return SP_OK;
}

static void stop_sources(sp_context *ctx)
{
    for (int i = 0; i < ctx->nstreams; i++)
        if (ctx->streams[i]->source && ctx->streams[i]->source->vt->stop)
            ctx->streams[i]->source->vt->stop(ctx->streams[i]->source);
}

static int close_sinks(sp_context *ctx, sp_diag *d)
{
    int first = SP_OK;
    for (int i = 0; i < ctx->noutputs; i++) {
        sp_sink *k = ctx->outputs[i].sink;
        sp_diag d2;
        diag_clear(&d2);
        if (k->vt->close && k->vt->close(k, &d2) && first == SP_OK) {
            first = d2.code;
            *d = d2;
        }
    }
    return first;
}

/* ---------------------------------------------------------------------------- checkpoints */

static const char *kind_name(const sp_stream *s);

/* The job's fingerprint: the caller's (script text and arguments) and the stream graph's
 * shape (kinds, types, slides, parents, operator parameters, outputs), hashed. */
static void ckpt_fingerprint(sp_context *ctx, char out[17])
{
    strbuf sb;
    sb_init(&sb, &ctx->alloc);
    /* and the settings that change what the job outputs */
    sb_printf(&sb, "%s\n%lld %zu %d %lld %zu\n",
              ctx->cfg.job_fingerprint ? ctx->cfg.job_fingerprint : "", (long long)ctx->cfg.batch_ms,
              ctx->cfg.batch_lines, ctx->cfg.on_error_skip, (long long)ctx->cfg.event_horizon_ms,
              ctx->cfg.line_max);
    for (int i = 0; i < ctx->nstreams; i++) {
        const sp_stream *s = ctx->streams[i];
        sb_printf(&sb, "%d %s %s %lld %d %d", s->id, kind_name(s), s->type_str,
                  (long long)s->slide_ms, s->parent[0] ? s->parent[0]->id : -1,
                  s->parent[1] ? s->parent[1]->id : -1);
        if (s->ops && s->ops->explain) {
            sb_addc(&sb, ' ');
            s->ops->explain(s, &sb);
        }
        sb_addc(&sb, '\n');
    }
    for (int i = 0; i < ctx->noutputs; i++)
        sb_printf(&sb, "out %s %d\n", ctx->outputs[i].sink->vt->kind, ctx->outputs[i].stream->id);
    XXH64_hash_t h = XXH3_64bits(sb.s ? sb.s : "", sb.len);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    sb_free(&sb);
}

/* Opens the checkpoint, refuses sources that cannot be replayed, and cuts every output back
 * to its last commit. */
static int ckpt_begin(sp_context *ctx, sp_diag *d)
{
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_source *src = ctx->streams[i]->source;
        if (src && !src->vt->position)
            return diag_set(d, SP_EUNSUPPORTED,
                            "checkpoint %s: %s (stream %d) is live input that a restart cannot "
                            "replay, and it has no write-ahead log yet: run it without a "
                            "checkpoint",
                            ctx->cfg.checkpoint_dir, src->vt->kind, ctx->streams[i]->id);
    }
    char fp[17];
    ckpt_fingerprint(ctx, fp);
    int rc = ckpt_open(&ctx->alloc, ctx->cfg.checkpoint_dir, fp, ctx->cfg.batch_ms, ctx->cfg.log,
                       &ctx->ckpt, d);
    if (rc) return rc;
    int n;
    const uint64_t *pos = ckpt_sink_positions(ctx->ckpt, &n);
    for (int i = 0; i < ctx->noutputs && !rc; i++) {
        sp_sink *k = ctx->outputs[i].sink;
        if (k->vt->resume) rc = k->vt->resume(k, i < n ? pos[i] : 0, d);
    }
    if (!rc && ckpt_committed(ctx->ckpt))
        fprintf(ctx->cfg.log, "spate: checkpoint %s: resuming after batch %lld (replaying it)\n",
                ctx->cfg.checkpoint_dir, (long long)ckpt_committed(ctx->ckpt));
    return rc;
}

/* Before batch k's outputs: its offsets record (checked against the log when replayed). */
static int ckpt_before(sp_context *ctx, int64_t k, int64_t t, sp_diag *d)
{
    if (!ctx->ckpt) return SP_OK;
    strbuf sb;
    sb_init(&sb, &ctx->alloc);
    for (int i = 0; i < ctx->nstreams; i++) {
        const sp_stream *s = ctx->streams[i];
        if (!s->source) continue;
        sb_printf(&sb, "%s%d: ", sb.len ? "; " : "", s->id);
        s->source->vt->position(s->source, &sb);
    }
    int rc = sb.oom ? diag_set(d, SP_ENOMEM, "checkpoint: out of memory")
                    : ckpt_log_offsets(ctx->ckpt, k, t, sb_cstr(&sb), d);
    sb_free(&sb);
    ctx->replaying = k <= ckpt_committed(ctx->ckpt);
    return rc;
}

/* After batch k's outputs are visible: its commit; at a sync point (CKPT_SYNC_MS since the
 * last, or `final`) the outputs are made durable and the pending commits written. */
static int ckpt_after(sp_context *ctx, int64_t k, int64_t t, int final, sp_diag *d)
{
    if (!ctx->ckpt || (ctx->replaying && !final)) return SP_OK;
    double now = now_ms();
    int sync = final || now - ctx->ckpt_synced_ms >= CKPT_SYNC_MS;
    uint64_t small[16], *pos = small;
    if (ctx->noutputs > 16 && !(pos = mem_alloc(&ctx->alloc, (size_t)ctx->noutputs * 8)))
        return diag_set(d, SP_ENOMEM, "checkpoint: out of memory");
    int rc = SP_OK;
    for (int i = 0; i < ctx->noutputs && !rc; i++) {
        sp_sink *s = ctx->outputs[i].sink;
        pos[i] = 0;
        if (s->vt->commit) rc = s->vt->commit(s, sync, &pos[i], d);
    }
    if (!rc && k > 0) rc = ckpt_log_commit(ctx->ckpt, k, t, pos, ctx->noutputs, d);
    if (!rc && sync) {
        rc = ckpt_sync(ctx->ckpt, d);
        ctx->ckpt_synced_ms = now;
    }
    if (pos != small) mem_free(&ctx->alloc, pos);
    return rc;
}

/* A batch a restart replays: its time is the logged one and nobody waits for it. */
static int ckpt_replays(const sp_context *ctx, int64_t k, int64_t *t)
{
    return ctx->ckpt && ckpt_offsets(ctx->ckpt, k, t) != NULL;
}

/** Processing time: batch k at start + (k-1) x interval; every node runs at every batch time. */
static int run_processing_time(sp_context *ctx, int manual, int64_t start, sp_diag *d)
{
    int64_t interval = ctx->cfg.batch_ms;
    int rc = SP_OK;
    int64_t next = start; /* the next batch's time, unless a restart replays it */
    for (int64_t k = 1;; k++) {
        if (atomic_load(&ctx->stop)) break;
        int64_t t = next;
        int replay = ckpt_replays(ctx, k, &t);
        if (!manual && !replay) sleep_until(ctx, (double)t);
        if (atomic_load(&ctx->stop) && !manual) break;
        batch_metrics m = {k, t, 0, 0, 0, 0, 0, 0};
        double t0 = now_ms();
        m.sched_delay_ms = manual || replay ? 0.0 : t0 - (double)t;
        rc = seal_sources(ctx, t, &m.records_in, d);
        if (!rc) rc = ckpt_before(ctx, k, t, d);
        if (!rc) rc = tick_stateful(ctx, t, 0, d);
        if (!rc) rc = run_outputs(ctx, t, &m.records_out, d);
        if (!rc) rc = ckpt_after(ctx, k, t, 0, d);
        release_memos(ctx);
        if (rc) break;
        next = t + interval;
        if (replay && !manual) {
            /* after the replay, the system clock's next boundary (never an earlier time) */
            int64_t wall = ((int64_t)now_ms() / interval + 1) * interval;
            if (!ckpt_replays(ctx, k + 1, NULL) && wall > next) next = wall;
        }
        ctx_reclaim(ctx);
        m.processing_ms = now_ms() - t0;
        m.rejected = ctx_rejects_take(ctx);
        ctx->batches = k;
        report(ctx, &m);
        if (ctx->cfg.max_batches ? k >= ctx->cfg.max_batches : all_sources_done(ctx)) break;
    }
    return rc;
}

/** Event time: the upstream side (sources, parsing) runs on arrival ticks and feeds the
 *  event-time stream; each event-time batch that becomes due runs the downstream side (ticks
 *  of stateful nodes, outputs) at its own time T. */
static int run_event_time(sp_context *ctx, int manual, int64_t start, sp_diag *d)
{
    int64_t interval = ctx->cfg.batch_ms;
    sp_stream *ev = ctx->event;
    int rc = SP_OK;
    int64_t k = 0;
    size_t arrived = 0;
    for (int64_t a = 1;; a++) {
        if (atomic_load(&ctx->stop)) break;
        int64_t ta = start + (a - 1) * interval;
        /* a restart replaying committed event batches does not wait for arrival ticks */
        int replay = ctx->ckpt && k < ckpt_committed(ctx->ckpt);
        if (!manual && !replay) sleep_until(ctx, (double)ta);
        if (atomic_load(&ctx->stop) && !manual) break;
        double t0 = now_ms();
        size_t got = 0;
        sp_batch *in = NULL;
        rc = seal_sources(ctx, ta, &got, d);
        if (!rc) rc = tick_stateful(ctx, ta, 0, d);
        if (!rc) rc = stream_compute(ev->parent[0], ta, &in, d);
        if (!rc) rc = eventtime_ingest(ev, in, d);
        batch_release(in);
        release_memos(ctx);
        if (rc) break;
        arrived += got;
        int done = all_sources_done(ctx);
        int64_t t;
        int stop = 0;
        /* A stop request is honoured between any two event-time batches: one arrival batch
         * can make many batches due (a gap in the timestamps is a run of empty batches). */
        while (!rc && !atomic_load(&ctx->stop) &&
               eventtime_next_due(ev, done, ctx->cfg.max_batches > 0, &t)) {
            batch_metrics m = {++k, t, 0, 0, 0, 0, 0, 0};
            int64_t lt;
            if (ckpt_replays(ctx, k, &lt) && lt != t)
                rc = diag_set(d, SP_ESTATE,
                              "checkpoint %s: event batch %lld now has time %lld, the log says "
                              "%lld: the input changed since the checkpoint was written",
                              ctx->cfg.checkpoint_dir, (long long)k, (long long)t, (long long)lt);
            if (!rc) rc = ckpt_before(ctx, k, t, d);
            if (!rc) rc = tick_stateful(ctx, t, 1, d);
            if (!rc) rc = run_outputs(ctx, t, &m.records_out, d);
            if (!rc && ev->memo) m.records_in = ev->memo->n;
            if (!rc && !ev->memo) {
                /* No output asked for the event batch: take it out of its bucket anyway. */
                sp_batch *b = NULL;
                rc = stream_compute(ev, t, &b, d);
                if (!rc) m.records_in = b->n;
                batch_release(b);
            }
            if (!rc) rc = ckpt_after(ctx, k, t, 0, d);
            release_memos(ctx);
            if (!rc) ctx_reclaim(ctx);
            m.processing_ms = now_ms() - t0;
            m.rejected = ctx_rejects_take(ctx);
            m.late = eventtime_take_late(ev);
            t0 = now_ms();
            ctx->batches = k;
            report(ctx, &m);
            if (ctx->cfg.max_batches && k >= ctx->cfg.max_batches) stop = 1;
            if (stop) break;
        }
        if (rc || stop || done) break;
    }
    (void)arrived;
    return rc;
}

int sp_context_run(sp_context *ctx)
{
    if (!ctx) return SP_EINVAL;
    if (ctx->noutputs == 0)
        return ctx_fail(ctx, SP_EINVAL,
                        "no output operations registered, so nothing to execute (add print, "
                        "saveAsTextFiles or foreachRDD)");
    int rc = sp_context_start(ctx);
    if (rc) return rc;
    if ((rc = stream_plan(ctx))) return rc;
    sp_diag d;
    diag_clear(&d);
    if (ctx->cfg.metrics_path && !ctx->metrics) {
        ctx->metrics = fopen(ctx->cfg.metrics_path, "w");
        if (!ctx->metrics)
            return ctx_fail(ctx, SP_EIO, "%s: cannot open metrics file", ctx->cfg.metrics_path);
    }
    if ((rc = ctx_rejects_open(ctx))) return rc;
    ctx->status_tty =
        ctx->cfg.status_line == 1 || (ctx->cfg.status_line < 0 && isatty(fileno(ctx->cfg.log)));

    int manual = ctx->cfg.clock == SP_CLOCK_MANUAL;
    if (ctx->cfg.clock == SP_CLOCK_AUTO) {
        manual = 1;
        for (int i = 0; i < ctx->nstreams; i++)
            if (ctx->streams[i]->source && !ctx->streams[i]->source->manual_clock) manual = 0;
    }
    if (ctx->cfg.checkpoint_dir && (rc = ckpt_begin(ctx, &d))) return ctx_take(ctx, &d);
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_source *src = ctx->streams[i]->source;
        if (src && src->vt->start && (rc = src->vt->start(src, &d))) {
            stop_sources(ctx);
            return ctx_take(ctx, &d);
        }
    }
    int64_t interval = ctx->cfg.batch_ms;
    int64_t start = interval; /* manual clock: batch k at k x interval */
    if (!manual) start = ((int64_t)now_ms() / interval + 1) * interval;
    ctx->zero_time = ctx->event ? 0 : start - interval; /* event time: epoch-aligned windows */
    rc = ctx->event ? run_event_time(ctx, manual, start, &d)
                    : run_processing_time(ctx, manual, start, &d);
    if (ctx->status_tty) fputc('\n', ctx->cfg.log);
    /* the last sync point: every batch that completed is committed, even when a later one
     * failed (it runs again on restart) */
    if (ctx->ckpt) {
        sp_diag d3;
        diag_clear(&d3);
        int rc3 = ckpt_after(ctx, 0, 0, 1, &d3);
        if (rc3 && !rc) {
            rc = rc3;
            d = d3;
        }
    }
    stop_sources(ctx);
    sp_diag d2;
    diag_clear(&d2);
    int rc2 = close_sinks(ctx, &d2);
    if (rc) return ctx_take(ctx, &d);
    if (rc2) return ctx_take(ctx, &d2);
    return SP_OK;
}

/* ------------------------------------------------------------------------------- devices */

static void print_bytes(FILE *f, uint64_t b)
{
    if (b >= (1ull << 30))
        fprintf(f, "%.1f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        fprintf(f, "%.1f MiB", (double)b / (double)(1ull << 20));
    else
        fprintf(f, "%.1f KiB", (double)b / 1024.0);
}

static const char *type_word(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    return "other";
}

int sp_devices_print(FILE *f, const sp_config *cfg)
{
    sp_config def;
    if (!cfg) {
        sp_config_init(&def);
        cfg = &def;
    }
    sp_allocator a = {cfg->alloc, cfg->alloc_ud};
    sp_diag d;
    diag_clear(&d);
    dev_info *list = NULL;
    size_t n = 0;
    sp_topo *topo = NULL;
    topo_opts to = {cfg->topology_synthetic, cfg->topology_xml, cfg->log ? cfg->log : stderr, &a};
    int trc = topo_open(&to, &topo, &d);
    int rc = dev_enumerate(&a, &list, &n, &d);
    if (rc) {
        if (topo) topo_close(topo);
        fprintf(cfg->log ? cfg->log : stderr, "spate: %s\n", d.msg);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const dev_info *x = &list[i];
        fprintf(f, "device %d: %s\n", x->index, x->name);
        fprintf(f, "  platform:        %s (%s)\n", x->platform, x->platform_version);
        fprintf(f, "  type:            %s\n", type_word(x->type));
        fprintf(f, "  compute units:   %u\n", x->compute_units);
        fprintf(f, "  global memory:   ");
        print_bytes(f, x->global_mem);
        fprintf(f, " (max allocation ");
        print_bytes(f, x->max_alloc);
        fprintf(f, ")\n  local memory:    ");
        print_bytes(f, x->local_mem);
        fprintf(f, "\n  OpenCL C:        %s\n", x->clc_version);
        fprintf(f, "  driver:          %s\n", x->driver);
        fprintf(f, "  int64 atomics:   %s\n", x->int64_atomics ? "yes" : "no");
        fprintf(f, "  fp64:            %s\n", x->fp64 ? "yes" : "no");
        fprintf(f, "  kernel shape:    %s\n",
                (x->type & CL_DEVICE_TYPE_GPU) ? "GPU (local memory, coalesced)"
                                               : "CPU (chunked, private partials)");
        if (topo && trc == SP_OK) {
            int node = topo_device_node(topo, x);
            if (node >= 0)
                fprintf(f, "  NUMA node:       %d\n", node);
            else
                fprintf(f, "  NUMA node:       unknown%s\n",
                        (x->type & CL_DEVICE_TYPE_CPU) ? " (CPU device: all nodes)" : "");
        }
    }
    mem_free(&a, list);
    if (topo) {
        topo_summary(topo, f);
        topo_close(topo);
    }
    return SP_OK;
}

/* ------------------------------------------------------------------------------- explain */

static const char *kind_name(const sp_stream *s)
{
    static const char *names[] = {
        "source",     "map",   "filter",  "mapValues",    "flatMap",     "flatMapValues",
        "union",      "count", "reduce",  "countByValue", "reduceByKey", "reduceByKey",
        "groupByKey", "join",  "cogroup", "transform",    "operator"};
    if (s->kind == N_SOURCE) return s->source->vt->kind;
    if (s->kind == N_OPS) return s->ops->name;
    return names[s->kind];
}

int sp_context_explain(sp_context *ctx, FILE *f)
{
    if (!ctx || !f) return SP_EINVAL;
    int rc = sp_context_start(ctx);
    if (!rc) rc = stream_plan(ctx);
    if (rc) return rc;
    const dev_info *di = dev_get_info(ctx->dev);
    fprintf(f, "device: %s (%s kernels), %u executor threads, batch %lld ms\n", di->name,
            dev_strategy(ctx->dev) == DEV_STRATEGY_GPU ? "GPU-shaped" : "CPU-shaped",
            exec_count(ctx->exec), (long long)ctx->cfg.batch_ms);
    strbuf sb;
    sb_init(&sb, &ctx->alloc);
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        fprintf(f, "\nstream %d: %s -> %s", s->id, kind_name(s), s->type_str);
        if (s->parent[0]) fprintf(f, " (from stream %d", s->parent[0]->id);
        if (s->parent[1]) fprintf(f, " and stream %d", s->parent[1]->id);
        if (s->parent[0]) fputc(')', f);
        if (s->slide_ms != ctx->cfg.batch_ms) fprintf(f, ", every %lld ms", (long long)s->slide_ms);
        fputc('\n', f);
        if (s->fused) fprintf(f, "  fused into the stage of a later stream\n");
        if (s->ops && s->ops->explain) {
            sb_reset(&sb);
            s->ops->explain(s, &sb);
            fprintf(f, "  %s\n", sb_cstr(&sb));
        }
        if (s->stage) {
            sb_reset(&sb);
            ew_stage_explain(s->stage, &sb);
            fprintf(f, "  stage over stream %d:\n%s\n", s->stage_input->id, sb_cstr(&sb));
        }
        if (hostop_tuple_monoids(s))
            fprintf(f, "  keyed aggregation on the device, one per tuple component (reduce.cl)\n");
        else if (s->kind == N_COUNT_BY_VALUE || s->kind == N_REDUCE_BY_KEY_AGG ||
                 (s->kind == N_REDUCE_BY_KEY && s->monoid >= 0))
            fprintf(f, "  keyed aggregation on the device (reduce.cl, %s shape)\n",
                    dev_strategy(ctx->dev) == DEV_STRATEGY_GPU ? "GPU" : "CPU");
        else if (s->kind == N_REDUCE_BY_KEY || s->kind == N_GROUP_BY_KEY || s->kind == N_JOIN ||
                 s->kind == N_COGROUP || s->kind == N_FLAT_MAP || s->kind == N_FLAT_MAP_VALUES)
            fprintf(f, "  runs on the executors (host)\n");
    }
    for (int i = 0; i < ctx->noutputs; i++)
        fprintf(f, "%soutput %d: %s of stream %d\n", i ? "" : "\n", i,
                ctx->outputs[i].sink->vt->kind, ctx->outputs[i].stream->id);
    sb_free(&sb);
    return SP_OK;
}
