/* test_reclaim.c — memory that follows what is live (core/reclaim.c, batch/dict.c,
 * ops/keymap.c): unmarked dictionary entries and keymap ids are freed and their ids reused,
 * marked and pinned ones never; jobs over a rotating key set give the same output with
 * reclaiming as without (so no id was reused while a pane, a state row or a remembered batch
 * still held it), while the dictionary and the keymaps stay bounded. */
#include "batch/batch_int.h"
#include "ops/kreduce_int.h"
#include "spate.h"
#include "support/envfix.h"
#include "support/jobfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ dictionary unit */

static uint32_t intern_fmt(sp_dict *d, const char *fmt, unsigned v)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, fmt, v);
    uint32_t id = dict_intern(d, buf, (size_t)n);
    assert_int_not_equal(id, UINT32_MAX);
    return id;
}

static void test_dict_sweep_frees_unmarked_and_reuses_ids(void **st)
{
    (void)st;
    sp_dict *d;
    assert_int_equal(dict_new(NULL, &d), 0);
    uint32_t pinned = intern_fmt(d, "literal-%u", 0);
    dict_pin(d, pinned);
    uint32_t ids[1000];
    for (unsigned i = 0; i < 1000; i++)
        ids[i] = intern_fmt(d, "key-%u", i);
    assert_int_equal(dict_live(d), 1001);
    uint64_t g0 = dict_generation(d);

    dict_mark_begin(d);
    for (unsigned i = 0; i < 1000; i += 2)
        dict_mark(d, ids[i]);
    assert_int_equal(dict_sweep(d), 500);
    assert_int_equal(dict_live(d), 501);
    assert_true(dict_generation(d) != g0);
    for (unsigned i = 0; i < 1000; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "key-%u", i);
        if (i % 2 == 0) {
            size_t len;
            const char *s = dict_get(d, ids[i], &len);
            assert_non_null(s);
            assert_int_equal(len, (size_t)n);
            assert_memory_equal(s, buf, len);
            assert_int_equal(dict_find(d, buf, (size_t)n), ids[i]);
        } else {
            assert_int_equal(dict_find(d, buf, (size_t)n), UINT32_MAX);
            assert_null(dict_get(d, ids[i], NULL));
        }
    }
    /* The pinned literal survives a sweep that marks nothing. */
    uint32_t size = dict_size(d);
    dict_mark_begin(d);
    for (unsigned i = 0; i < 1000; i += 2)
        dict_mark(d, ids[i]);
    assert_int_equal(dict_sweep(d), 0);
    assert_string_equal(dict_get(d, pinned, NULL), "literal-0");

    /* New strings take the freed ids: the id domain does not grow (the sweep lowered it by
     * the free ids at its top, here the last one). */
    uint8_t *seen = calloc(size + 1, 1);
    for (unsigned i = 0; i < 1000; i += 2)
        seen[ids[i]] = 1;
    seen[pinned] = 1;
    for (unsigned i = 0; i < 500; i++) {
        uint32_t id = intern_fmt(d, "new-%u", i);
        assert_true(id <= size);
        assert_int_equal(seen[id], 0); /* never an id still in use */
        seen[id] = 1;
    }
    assert_true(dict_size(d) <= size + 1);
    free(seen);

    /* Nothing marked: everything but the literal goes, and the id domain shrinks to it. */
    dict_mark_begin(d);
    assert_int_equal(dict_sweep(d), 1000);
    assert_int_equal(dict_live(d), 1);
    assert_int_equal(dict_size(d), pinned + 1);
    dict_free(d);
}

/* Strings of every size class and long ones (own blocks): bytes are reused after a sweep. */
static void test_dict_rotating_strings_stay_bounded(void **st)
{
    (void)st;
    sp_dict *d;
    assert_int_equal(dict_new(NULL, &d), 0);
    enum { ROUNDS = 120, PER = 3000 };
    uint32_t *prev = calloc(PER, sizeof *prev), *cur = calloc(PER, sizeof *cur);
    char *big = malloc(40000);
    size_t bytes_at_20 = 0, max_size = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        for (unsigned i = 0; i < PER; i++) {
            unsigned v = r * PER + i;
            size_t len = (size_t)snprintf(big, 40000, "r%u-", v);
            size_t want = i % 100 == 0 ? 20000 + i : (size_t)(v % 97);
            while (len < want) {
                big[len] = (char)('a' + (v + len) % 26);
                len++;
            }
            cur[i] = dict_intern(d, big, len);
            assert_int_not_equal(cur[i], UINT32_MAX);
        }
        /* Live: this round and the previous one. */
        dict_mark_begin(d);
        dict_mark_ids(d, cur, PER);
        if (r) dict_mark_ids(d, prev, PER);
        dict_sweep(d);
        assert_true(dict_live(d) <= 2 * PER);
        if (dict_size(d) > max_size) max_size = dict_size(d);
        if (r == 20) bytes_at_20 = dict_bytes(d);
        uint32_t *t = prev;
        prev = cur;
        cur = t;
    }
    assert_true(max_size <= 3 * PER);
    assert_true(dict_bytes(d) <= bytes_at_20 + bytes_at_20 / 10);
    /* The last round reads back. */
    for (unsigned i = 0; i < PER; i += 7) {
        unsigned v = (ROUNDS - 1) * PER + i;
        char head[32];
        int n = snprintf(head, sizeof head, "r%u-", v);
        const char *s = dict_get(d, prev[i], NULL);
        assert_non_null(s);
        assert_memory_equal(s, head, (size_t)n);
    }
    free(big);
    free(prev);
    free(cur);
    dict_free(d);
}

/* -------------------------------------------------------------------------- keymap unit */

static void test_keymap_sweep_reuses_ids_and_keeps_marked_keys(void **st)
{
    fixture *f = *st;
    sp_arena *ar = f->arena;
    sp_dict *dict = f->dict;
    sp_type types[2] = {SP_I64, SP_STR};
    keymap *km;
    assert_int_equal(keymap_new(NULL, 2, types, &km), 0);
    enum { ROUNDS = 60, PER = 2000 };
    sp_col a, b;
    uint32_t *ids = malloc(PER * sizeof *ids), *prev = malloc(PER * sizeof *prev);
    uint32_t max_size = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        col_init(&a, SP_I64, ENC_PLAIN, ar);
        col_init(&b, SP_STR, ENC_DICT, ar);
        for (unsigned i = 0; i < PER; i++) {
            assert_int_equal(col_push_i64(&a, (int64_t)(r * PER + i)), 0);
            assert_int_equal(col_push_id(&b, intern_fmt(dict, "s%u", (r * PER + i) % 977)), 0);
        }
        const sp_col *cols[2] = {&a, &b};
        assert_int_equal(keymap_ids(km, cols, 0, PER, ids, NULL), 0);
        /* Keys of the previous round looked up again keep their ids. */
        if (r) {
            sp_col pa, pb;
            col_init(&pa, SP_I64, ENC_PLAIN, ar);
            col_init(&pb, SP_STR, ENC_DICT, ar);
            for (unsigned i = 0; i < PER; i += 10) {
                assert_int_equal(col_push_i64(&pa, (int64_t)((r - 1) * PER + i)), 0);
                assert_int_equal(
                    col_push_id(&pb, intern_fmt(dict, "s%u", ((r - 1) * PER + i) % 977)), 0);
            }
            const sp_col *pc[2] = {&pa, &pb};
            uint32_t again[PER / 10];
            assert_int_equal(keymap_ids(km, pc, 0, PER / 10, again, NULL), 0);
            for (unsigned i = 0; i < PER / 10; i++)
                assert_int_equal(again[i], prev[i * 10]);
            col_release(&pa);
            col_release(&pb);
        }
        /* Live: this round only; the previous round's keys go. */
        keymap_mark_begin(km);
        for (unsigned i = 0; i < PER; i++)
            keymap_mark(km, ids[i]);
        uint32_t freed;
        assert_int_equal(keymap_sweep(km, &freed), 0);
        assert_int_equal(freed, r ? PER : 0);
        assert_int_equal(keymap_live(km), PER);
        if (keymap_size(km) > max_size) max_size = keymap_size(km);
        /* Every live id gives back its key. */
        sp_col oa, ob;
        col_init(&oa, SP_I64, ENC_PLAIN, ar);
        col_init(&ob, SP_STR, ENC_DICT, ar);
        sp_col *oc[2] = {&oa, &ob};
        for (unsigned i = 0; i < PER; i++)
            assert_int_equal(keymap_push_key(km, ids[i], oc), 0);
        for (unsigned i = 0; i < PER; i++) {
            assert_int_equal(col_get_i64(&oa, i), (int64_t)(r * PER + i));
            assert_int_equal(((const uint32_t *)ob.data)[i], ((const uint32_t *)b.data)[i]);
        }
        col_release(&oa);
        col_release(&ob);
        col_release(&a);
        col_release(&b);
        memcpy(prev, ids, PER * sizeof *ids);
    }
    assert_true(max_size <= 2 * PER);
    /* Marking the dictionary through the keymap keeps exactly the strings of live keys. */
    dict_mark_begin(dict);
    keymap_mark_dict(km, dict);
    dict_sweep(dict);
    assert_true(dict_live(dict) <= 977);
    assert_true(dict_live(dict) >= 977 * 9 / 10);
    keymap_clear(km);
    assert_int_equal(keymap_live(km), 0);
    assert_int_equal(keymap_size(km), 0);
    free(ids);
    free(prev);
    keymap_free(km);
}

/* ----------------------------------------------------------------------------- job tests */

/* Per batch: row count and an order-independent checksum of the rows in toString form (the
 * strings come through the dictionary, so a recycled id would change it). */
enum { MAX_BATCHES = 64 };
typedef struct digest {
    size_t rows[MAX_BATCHES];
    uint64_t sum[MAX_BATCHES];
    int n;
} digest;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int on_digest(void *ud, const sp_batch *b)
{
    digest *g = ud;
    if (g->n >= MAX_BATCHES) return -1;
    char buf[512];
    uint64_t sum = 0;
    size_t n = sp_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        if (sp_batch_format(b, i, buf, sizeof buf) >= (int)sizeof buf) return -1;
        sum += fnv(buf);
    }
    g->rows[g->n] = n;
    g->sum[g->n++] = sum;
    return 0;
}

typedef sp_stream *(*job_fn)(sp_context *ctx);

typedef struct job_result {
    digest g;
    sp_memory_stats mem;
    uint64_t max_live; /* largest dict_live seen after a batch */
} job_result;

static int on_watch(void *ud, const sp_batch *b)
{
    (void)b;
    void **p = ud;
    sp_memory_stats m;
    sp_context_memory(p[0], &m);
    uint64_t *max = p[1];
    if (m.dict_live > *max) *max = m.dict_live;
    return 0;
}

static sp_stream *gen(sp_context *ctx, uint64_t seed, int strings, uint64_t keys, uint64_t rot)
{
    sp_generator_opts o = {0};
    o.seed = seed;
    o.keys = keys;
    o.string_keys = strings;
    o.value_max = 100;
    o.per_batch = 400;
    o.rotate = rot;
    return sp_generator(ctx, &o);
}

/* Runs the job for `batches` batch times with reclaim_every = every. */
static void run_job(job_fn fn, int64_t every, int batches, job_result *r)
{
    memset(r, 0, sizeof *r);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.max_batches = batches;
    cfg.threads = 2;
    cfg.reclaim_every = every;
    cfg.log = stderr;
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), 0);
    sp_stream *out = fn(ctx);
    if (!out) fail_msg("job: %s", sp_context_errmsg(ctx));
    assert_int_equal(sp_stream_foreach_rdd(out, on_digest, &r->g), 0);
    void *w[2] = {ctx, &r->max_live};
    assert_int_equal(sp_stream_foreach_rdd(out, on_watch, w), 0);
    run_ok(ctx);
    assert_int_equal(sp_context_memory(ctx, &r->mem), 0);
    sp_context_free(ctx);
}

/* The job with reclaiming every 100 new strings equals the job without, batch by batch; the
 * reclaiming run freed strings and held at most `live_bound` at once. */
static void check_job(job_fn fn, int batches, uint64_t live_bound)
{
    job_result *ref = calloc(1, sizeof *ref), *got = calloc(1, sizeof *got);
    run_job(fn, -1, batches, ref);
    run_job(fn, 100, batches, got);
    assert_int_equal(ref->g.n, got->g.n);
    assert_true(got->g.n > 0);
    size_t total = 0;
    for (int k = 0; k < ref->g.n; k++) {
        assert_int_equal(ref->g.rows[k], got->g.rows[k]);
        assert_true(ref->g.sum[k] == got->g.sum[k]);
        total += got->g.rows[k];
    }
    assert_true(total > 0);
    assert_int_equal(ref->mem.reclaim_cycles, 0);
    assert_int_equal(got->mem.reclaiming, 1);
    assert_true(got->mem.reclaim_cycles > 0);
    assert_true(got->mem.dict_reclaimed > 0);
    assert_true(got->max_live <= live_bound);
    assert_true(ref->max_live > live_bound); /* without reclaiming it would have grown */
    free(ref);
    free(got);
}

/* reduceByKey over string keys that move by 200 a batch (domain 300: a key lives in two
 * consecutive batches). */
static sp_stream *job_reduce(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 11, 1, 300, 200);
    return g ? sp_stream_reduce_by_key_agg(g, SP_AGG_SUM) : NULL;
}

static void test_reduce_by_key_equals_reference(void **st)
{
    (void)st;
    check_job(job_reduce, 40, 1500);
}

/* Integer keys: the per-batch keymap is emptied by the cycles. */
static sp_stream *job_reduce_int_keys(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 12, 0, 300, 200);
    return g ? sp_stream_reduce_by_key_agg(g, SP_AGG_MAX) : NULL;
}

/* A long window (12 batches) on the device panes: keys stay in the panes for 12 batch times
 * after they were last seen, then leave. */
static sp_stream *job_window_agg(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 14, 1, 300, 100);
    return g ? sp_stream_reduce_by_key_and_window_agg(g, SP_AGG_SUM, 12000, 1000) : NULL;
}

static void test_window_panes_keep_their_ids_over_a_long_window(void **st)
{
    (void)st;
    check_job(job_window_agg, 36, 3000);
}

/* Lambda panes (a reduce the device panes do not know) over a window of 6 slides of 2. */
static sp_stream *job_window_lambda(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 15, 1, 300, 100);
    sp_expr *f = sp_expr_binop(
        ctx, SP_OP_MOD,
        sp_expr_binop(ctx, SP_OP_ADD,
                      sp_expr_binop(ctx, SP_OP_MUL, sp_expr_arg(ctx, 0), sp_expr_i64(ctx, 3)),
                      sp_expr_arg(ctx, 1)),
        sp_expr_i64(ctx, 1000003));
    return g ? sp_stream_reduce_by_key_and_window(g, f, NULL, 6000, 2000, NULL) : NULL;
}

static void test_lambda_panes_keep_their_ids(void **st)
{
    (void)st;
    check_job(job_window_lambda, 36, 3000);
}

/* window(): remembered batches, then a per-batch count by key of the window. */
static sp_stream *job_window_batches(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 16, 1, 300, 100);
    sp_stream *w = g ? sp_stream_window(g, 8000, 1000) : NULL;
    return w ? sp_stream_reduce_by_key_agg(w, SP_AGG_COUNT) : NULL;
}

static void test_window_remembered_batches_keep_their_ids(void **st)
{
    (void)st;
    check_job(job_window_batches, 36, 3000);
}

/* Join of two windowed streams: the join's inputs are remembered batches on both sides. */
static sp_stream *job_join_windows(sp_context *ctx)
{
    sp_stream *a = gen(ctx, 17, 1, 300, 100);
    sp_stream *b = gen(ctx, 18, 1, 300, 100);
    sp_stream *wa = a ? sp_stream_window(a, 4000, 1000) : NULL;
    sp_stream *wb = b ? sp_stream_window(b, 6000, 1000) : NULL;
    return wa && wb ? sp_stream_join(wa, wb) : NULL;
}

static void test_join_of_windows_keeps_history_ids(void **st)
{
    (void)st;
    check_job(job_join_windows, 36, 3000);
}

/* updateStateByKey: a key keeps (sum, last time seen) for 10 batch times after it was last
 * seen, then is removed. */
static int upd_keep_10(void *ud, int64_t t, const sp_row *key, const sp_row *const *vals, size_t nv,
                       const sp_row *state, sp_emitter *out)
{
    (void)ud;
    (void)key;
    int64_t sum = state ? sp_row_i64(state, 0) : 0, last = state ? sp_row_i64(state, 1) : t;
    for (size_t i = 0; i < nv; i++)
        sum += sp_row_i64(vals[i], 0);
    if (nv) last = t;
    if (t - last >= 10000) return 0;
    int rc = sp_emit_i64(out, sum);
    if (!rc) rc = sp_emit_i64(out, last);
    if (!rc) rc = sp_emit_end(out);
    return rc;
}

static sp_stream *job_state(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 19, 1, 300, 100);
    return g ? sp_stream_update_state_by_key(g, "(i64,i64)", upd_keep_10, NULL, NULL) : NULL;
}

static void test_state_rows_keep_their_ids_for_many_batches(void **st)
{
    (void)st;
    check_job(job_state, 36, 3000);
}

static void test_int_keys_reduce_equals_reference(void **st)
{
    (void)st;
    job_result *ref = calloc(1, sizeof *ref), *got = calloc(1, sizeof *got);
    run_job(job_reduce_int_keys, -1, 40, ref);
    run_job(job_reduce_int_keys, 100, 40, got);
    assert_int_equal(ref->g.n, got->g.n);
    for (int k = 0; k < ref->g.n; k++) {
        assert_int_equal(ref->g.rows[k], got->g.rows[k]);
        assert_true(ref->g.sum[k] == got->g.sum[k]);
    }
    assert_true(got->mem.reclaim_cycles > 0);
    assert_true(got->mem.keymap_live < ref->mem.keymap_live);
    free(ref);
    free(got);
}

/* ------------------------------------------------------- event time and the sketch nodes */

/* An access-log shape, as the flagship log job reads it: (ts, client, path, bytes) in
 * EV_ARRIVALS arrival batches of EV_PER records. Clients and paths rotate (arrival a draws
 * clients from [200 a, 200 a + 300) and paths from [100 a, 100 a + 150)), and every third
 * record is stamped 1.5 s before its arrival batch: with a 2 s watermark the event-time
 * buckets hold rows (and their strings) across batch times, never late ones. */
enum { EV_ARRIVALS = 44, EV_PER = 300 };
static const char *ev_input(void)
{
    static char path[512];
    if (path[0]) return path;
    size_t cap = (size_t)EV_ARRIVALS * EV_PER * 64 + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned a = 0; a < EV_ARRIVALS; a++) {
        len += (size_t)snprintf(text + len, cap - len, "[");
        for (unsigned i = 0; i < EV_PER; i++) {
            long long ts = 10000000LL + a * 1000LL + (i * 37) % 1000 - (i % 3 == 0 ? 1500 : 0);
            len += (size_t)snprintf(text + len, cap - len, "%s[%lld,\"c%u\",\"/p/%u\",%u]",
                                    i ? "," : "", ts, a * 200 + (i * 7) % 300,
                                    a * 100 + (i * 11) % 150, (i * 131 + a * 17) % 5000 + 1);
        }
        len += (size_t)snprintf(text + len, cap - len, "]\n");
    }
    snprintf(path, sizeof path, "%s", write_tmp("access.jsonl", text));
    free(text);
    return path;
}

static sp_stream *ev_stream(sp_context *ctx)
{
    sp_stream *q = sp_queue_stream(ctx, ev_input(), "(ts,str,str,i64)");
    return q ? sp_stream_event_time(q, 0, 2000) : NULL;
}

/* r => (r._<a>, r._<b>) */
static sp_stream *pair_of(sp_context *ctx, sp_stream *s, int a, int b)
{
    sp_expr *r = sp_expr_arg(ctx, 0);
    return sp_stream_map(s,
                         sp_expr_tuple2(ctx, sp_expr_field(ctx, r, a), sp_expr_field(ctx, r, b)));
}

/* Unique clients per path over 6 s sliding by 1 s (HLL panes keep path ids; the memo of
 * client hashes is indexed by dictionary id). */
static sp_stream *job_ev_distinct_window(sp_context *ctx)
{
    sp_stream *e = ev_stream(ctx);
    return e ? sp_stream_count_approx_distinct_by_key_and_window(pair_of(ctx, e, 2, 1), 0.02, 6000,
                                                                 1000)
             : NULL;
}

static void test_event_time_distinct_by_key_window_equals_reference(void **st)
{
    (void)st;
    check_job(job_ev_distinct_window, 40, 4000);
}

/* Quantiles of bytes per client over 4 s sliding by 2 s (DDSketch panes keep client ids). */
static sp_stream *job_ev_quantiles_window(sp_context *ctx)
{
    static const double qs[] = {0.5, 0.95};
    sp_stream *e = ev_stream(ctx);
    return e ? sp_stream_approx_quantiles_by_key_and_window(pair_of(ctx, e, 1, 3), 2, qs, 0.01,
                                                            4000, 2000)
             : NULL;
}

static void test_event_time_quantiles_by_key_window_equals_reference(void **st)
{
    (void)st;
    check_job(job_ev_quantiles_window, 40, 4000);
}

/* The top 5 paths by requests over 5 s (the window's panes), then per batch: unique clients
 * and p95 bytes per path of that batch (per-batch sketch nodes: their keymap and memos are
 * emptied at every cycle), all joined. */
static sp_stream *job_ev_topk_and_per_batch(sp_context *ctx)
{
    static const double q95[] = {0.95};
    sp_stream *e = ev_stream(ctx);
    if (!e) return NULL;
    sp_expr *r = sp_expr_arg(ctx, 0);
    sp_stream *hits =
        sp_stream_map(e, sp_expr_tuple2(ctx, sp_expr_field(ctx, r, 2), sp_expr_i64(ctx, 1)));
    sp_stream *top =
        sp_stream_top_k(sp_stream_reduce_by_key_and_window_agg(hits, SP_AGG_SUM, 5000, 1000), 5);
    sp_stream *uniq = sp_stream_count_approx_distinct_by_key(pair_of(ctx, e, 2, 1), 0.02);
    sp_stream *p95 = sp_stream_approx_quantiles_by_key(pair_of(ctx, e, 2, 3), 1, q95, 0.01);
    sp_stream *both = sp_stream_join(uniq, p95);
    /* (path, (clients, p95)) -> (path, clients * 100000 + p95 as an integer) */
    sp_expr *v = sp_expr_arg(ctx, 0);
    sp_expr *packed = sp_expr_binop(
        ctx, SP_OP_ADD,
        sp_expr_binop(ctx, SP_OP_MUL, sp_expr_field(ctx, v, 0), sp_expr_i64(ctx, 100000)),
        sp_expr_cast(ctx, sp_expr_field(ctx, v, 1), SP_I64));
    return top && both ? sp_stream_union(top, sp_stream_map_values(both, packed)) : NULL;
}

static void test_event_time_topk_and_per_batch_sketches_equal_reference(void **st)
{
    (void)st;
    check_job(job_ev_topk_and_per_batch, 40, 3000);
}

/* Without event time: unique values per rotating key over 12 batch times (HLL panes, integer
 * values hashed directly), unioned with the unkeyed distinct count of the keys. */
static sp_stream *job_distinct_window_gen(sp_context *ctx)
{
    sp_stream *g = gen(ctx, 21, 1, 300, 100);
    if (!g) return NULL;
    sp_stream *w = sp_stream_count_approx_distinct_by_key_and_window(g, 0.02, 12000, 1000);
    sp_stream *n = sp_stream_count_approx_distinct_and_window(
        sp_stream_map(g, sp_expr_field(ctx, sp_expr_arg(ctx, 0), 0)), 0.02, 3000, 1000);
    sp_stream *nk =
        n ? sp_stream_map(n, sp_expr_tuple2(ctx, sp_expr_str(ctx, "all"), sp_expr_arg(ctx, 0)))
          : NULL;
    return w && nk ? sp_stream_union(w, nk) : NULL;
}

static void test_sketch_windows_keep_their_ids(void **st)
{
    (void)st;
    check_job(job_distinct_window_gen, 36, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_sweep_frees_unmarked_and_reuses_ids),
        cmocka_unit_test(test_dict_rotating_strings_stay_bounded),
        cmocka_unit_test_setup_teardown(test_keymap_sweep_reuses_ids_and_keeps_marked_keys, setup,
                                        teardown),
        cmocka_unit_test(test_reduce_by_key_equals_reference),
        cmocka_unit_test(test_int_keys_reduce_equals_reference),
        cmocka_unit_test(test_window_panes_keep_their_ids_over_a_long_window),
        cmocka_unit_test(test_lambda_panes_keep_their_ids),
        cmocka_unit_test(test_window_remembered_batches_keep_their_ids),
        cmocka_unit_test(test_join_of_windows_keeps_history_ids),
        cmocka_unit_test(test_state_rows_keep_their_ids_for_many_batches),
        cmocka_unit_test(test_event_time_distinct_by_key_window_equals_reference),
        cmocka_unit_test(test_event_time_quantiles_by_key_window_equals_reference),
        cmocka_unit_test(test_event_time_topk_and_per_batch_sketches_equal_reference),
        cmocka_unit_test(test_sketch_windows_keep_their_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
