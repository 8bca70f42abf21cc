/* reclaim.c — memory that follows what is live: dictionary strings and keymap ids that no
 * structure holds any more are freed between batch times, and their ids reused.
 *
 * The invariant (batch/dict.c and ops/keymap.c describe the mechanics): an id is reclaimed
 * only in a cycle that runs on the driver between two batch times, after the batch time's
 * memoised batches are released, and only when no holder marked it in that cycle. At that
 * point no executor task, source or sink is running, so the only ids in existence are those
 * kept by nodes across batch times, and every node says how it keeps them:
 *  - per-batch nodes (map, filter, flatMap, reduceByKey, joins, groupByKey, transform, ...)
 *    keep none; their keymaps only number the keys of one batch, so they are emptied;
 *  - stateful nodes (N_OPS) mark through stream_ops.mark: windows their panes' key ids, their
 *    lambda panes' ids and values, their remembered batches and previous window;
 *    updateStateByKey its state batch; event time the rows of its buckets not yet due; the
 *    sketch operators (analytics.c) their window panes' key ids, dropping their memos indexed
 *    by dictionary id. A node without a mark function keeps ids it cannot enumerate: a job
 *    with one never reclaims (decided once, at the first cycle), so correctness never
 *    depends on a holder forgetting to mark;
 *  - keymaps that survive then mark the dictionary ids in their string key columns;
 *  - what was interned before the first batch time (expression and kernel literals) is
 *    pinned by ctx_reclaim_start;
 *  - caches of string -> id outside these structures (parsers, the generator) compare
 *    dict_generation and drop their entries after a sweep that freed something.
 * Sinks and reports format strings while the batch is live and copy what they keep, so they
 * hold no ids. Cost: a cycle is O(ids held + dictionary and keymap high-water marks), run
 * once as many new strings (or keys of a keymap) arrived as were live after the previous
 * cycle, and at least sp_config.reclaim_every: O(1) amortised per new key. */
#include "core/core_int.h"

#include <string.h>

enum { RECLAIM_DEFAULT_EVERY = 65536 };

static uint32_t reclaim_every(const sp_context *ctx)
{
    int64_t e = ctx->cfg.reclaim_every;
    if (e <= 0) return RECLAIM_DEFAULT_EVERY;
    return e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

/* 1 when every node can enumerate the ids it keeps across batch times. */
static int reclaim_possible(const sp_context *ctx)
{
    if (ctx->cfg.reclaim_every < 0 || !ctx->dict) return 0;
    for (int i = 0; i < ctx->nstreams; i++) {
        const sp_stream *s = ctx->streams[i];
        if (s->ops && !s->ops->mark) return 0;
    }
    return 1;
}

void ctx_reclaim_start(sp_context *ctx)
{
    if (ctx->dict) dict_pin_all(ctx->dict);
}

void ctx_reclaim(sp_context *ctx)
{
    if (ctx->reclaim == 0) ctx->reclaim = reclaim_possible(ctx) ? 1 : -1;
    if (ctx->reclaim < 0) return;
    uint32_t every = reclaim_every(ctx);
    int due = dict_sweep_due(ctx->dict, every);
    for (int i = 0; i < ctx->nstreams && !due; i++)
        due = keymap_sweep_due(ctx->streams[i]->km, every);
    if (!due) return;
    sp_dict *dict = ctx->dict;
    dict_mark_begin(dict);
    for (int i = 0; i < ctx->nstreams; i++) {
        sp_stream *s = ctx->streams[i];
        if (s->ops)
            s->ops->mark(s, dict);
        else
            keymap_clear(s->km);
    }
    for (int i = 0; i < ctx->nstreams; i++)
        keymap_mark_dict(ctx->streams[i]->km, dict);
    dict_sweep(dict);
    ctx->reclaim_cycles++;
}

int sp_context_memory(const sp_context *ctx, sp_memory_stats *st)
{
    if (!ctx || !st) return SP_EINVAL;
    memset(st, 0, sizeof *st);
    if (ctx->dict) {
        st->dict_live = dict_live(ctx->dict);
        st->dict_ids = dict_size(ctx->dict);
        st->dict_bytes = dict_bytes(ctx->dict);
        st->dict_reclaimed = dict_reclaimed(ctx->dict);
    }
    for (int i = 0; i < ctx->nstreams; i++)
        st->keymap_live += keymap_live(ctx->streams[i]->km);
    st->reclaim_cycles = ctx->reclaim_cycles;
    st->reclaiming = ctx->reclaim > 0 || (ctx->reclaim == 0 && reclaim_possible(ctx));
    return SP_OK;
}
