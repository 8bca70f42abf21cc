/* analytics.c — the analytics people ask of logs as stream nodes: countApproxDistinct (per
 * batch, per key, per window), approximate quantiles per key (per batch, per window) and
 * topK. Sketches: ops/hll.c (HyperLogLog), ops/qsketch.c (DDSketch), ops/topk.c.
 *
 * Windows follow Spark's rules: window and slide are multiples of the parent's slide (slide 0:
 * the parent's); the node emits at every multiple of the slide from the start, the first
 * windows being partial. State is a ring of panes of g = gcd(window, slide) ms: at every batch
 * time at which the parent emits, tick() adds the parent's batch to the pane that ends at or
 * after it (pane k covers (zero + (k-1) g, zero + k g]); at an emit time T the window is the
 * W/g panes ending in (T - W, T], merged. A slot whose pane number is not the expected one
 * holds an older pane and counts as empty, so times without a batch (event time) need no
 * bookkeeping. Cost per slide: W/g sketch merges per key present in the window; memory: one
 * sketch per key present in each pane (HLL 2^p bytes, DDSketch 8 bytes per bucket in use).
 *
 * Keyed outputs list keys in keymap-id order: first-seen order over the stream's life until a
 * reclaim cycle (an_mark) frees ids, which later keys reuse (row order inside a batch is not
 * specified). */
#include "core/core_int.h"
#include "ops/hll_int.h"
#include "ops/qsketch_int.h"
#include "ops/topk_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum an_kind { AN_DISTINCT, AN_DISTINCT_KEY, AN_QUANT, AN_TOPK } an_kind;

enum { AN_MAX_PANES = 1 << 20, AN_MAX_NQ = 64, AN_PAR_ROWS = 1 << 15 };

/** One key's sketch in a pane (hll * or qsketch *). */
typedef struct an_entry {
    uint32_t id;
    void *sk;
} an_entry;

typedef struct an_pane {
    int64_t idx; /* pane number; -1: never used */
    hll *h;      /* AN_DISTINCT */
    an_entry *e; /* keyed: one per key present, in first-seen order within the pane */
    size_t n, cap;
} an_pane;

typedef struct an_state {
    an_kind kind;
    int p;  /* HLL precision */
    int nq; /* quantiles */
    double *qs;
    double alpha; /* DDSketch relative accuracy */
    size_t k;     /* topK */
    int vcol;     /* first value column */
    int windowed;
    int64_t window_ms, pane_ms;
    int64_t npanes;
    an_pane *ring;  /* npanes slots; pane k in slot k mod npanes */
    an_pane cur;    /* per-batch nodes: the batch's pane; windows: the merged window */
    uint32_t *slot; /* key id -> entry index in the pane being filled (UINT32_MAX: none) */
    uint32_t nslot;
    void **pool; /* cleared sketches for reuse: keys come back batch after batch */
    size_t npool, cap_pool;
    /* Memos indexed by dictionary id, grown on demand to the largest id seen; dropped at every
     * reclaim cycle (an_mark), since a sweep may reuse dictionary and keymap ids. kid: keymap id of
     * a one-column str key (UINT32_MAX: not yet looked up). hash/hknown: hll hash of a one-column
     * str value. Memory: 4 bytes per id for kid, 9 per id for the hashes. */
    uint32_t *kid;
    size_t nkid;
    uint64_t *hash;
    uint8_t *hknown;
    size_t nhash;
    /* AN_QUANT: direct-mapped memo of qs_bucket by magnitude (all the node's sketches share
     * alpha); key NaN: empty. NULL until the first quantile batch. */
    struct an_qmemo {
        double ax;
        int32_t idx;
    } * qmemo;
} an_state;

/* ------------------------------------------------------------------------------- sketches */

static void *an_sk_new(sp_stream *s, an_state *st)
{
    if (st->npool) return st->pool[--st->npool];
    if (st->kind == AN_QUANT) return qs_new(&s->ctx->alloc, st->alpha);
    return hll_new(&s->ctx->alloc, st->p);
}

static void an_sk_free(sp_stream *s, const an_state *st, void *sk)
{
    if (st->kind == AN_QUANT)
        qs_free(sk);
    else
        hll_free(&s->ctx->alloc, sk);
}

/** Clears a sketch and keeps it for reuse (frees it when the pool cannot grow). The pool never
 *  holds more sketches than were alive at once. */
static void an_sk_release(sp_stream *s, an_state *st, void *sk)
{
    if (st->npool == st->cap_pool) {
        size_t cap = st->cap_pool ? st->cap_pool * 2 : 64;
        void **p = mem_realloc(&s->ctx->alloc, st->pool, cap * sizeof *p);
        if (!p) {
            an_sk_free(s, st, sk);
            return;
        }
        st->pool = p;
        st->cap_pool = cap;
    }
    if (st->kind == AN_QUANT)
        qs_clear(sk);
    else
        hll_clear(sk);
    st->pool[st->npool++] = sk;
}

static int an_sk_merge(const an_state *st, void *dst, const void *src, sp_diag *d)
{
    if (st->kind == AN_QUANT) return qs_merge(dst, src, d);
    return hll_merge(dst, src, d);
}

static void an_pane_reset(sp_stream *s, an_state *st, an_pane *p, int64_t idx)
{
    if (p->h) hll_clear(p->h);
    for (size_t j = 0; j < p->n; j++)
        an_sk_release(s, st, p->e[j].sk);
    p->n = 0;
    p->idx = idx;
}

static void an_pane_free(sp_stream *s, const an_state *st, an_pane *p)
{
    for (size_t j = 0; j < p->n; j++)
        an_sk_free(s, st, p->e[j].sk);
    hll_free(&s->ctx->alloc, p->h);
    mem_free(&s->ctx->alloc, p->e);
    memset(p, 0, sizeof *p);
}

static int an_oom(sp_stream *s, sp_diag *d)
{
    return diag_set(d, SP_ENOMEM, "out of memory in %s (stream %d)", s->ops->name, s->id);
}

/** The entry of key `id` in p, added (with a new sketch) if absent; uses st->slot. */
static int an_pane_entry(sp_stream *s, an_state *st, an_pane *p, uint32_t id, void **sk, sp_diag *d)
{
    uint32_t j = st->slot[id];
    if (j != UINT32_MAX) {
        *sk = p->e[j].sk;
        return SP_OK;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        an_entry *e = mem_realloc(&s->ctx->alloc, p->e, cap * sizeof *e);
        if (!e) return an_oom(s, d);
        p->e = e;
        p->cap = cap;
    }
    void *x = an_sk_new(s, st);
    if (!x) return an_oom(s, d);
    p->e[p->n].id = id;
    p->e[p->n].sk = x;
    st->slot[id] = (uint32_t)p->n++;
    *sk = x;
    return SP_OK;
}

/** Grows the id -> entry scratch to the keymap's size. */
static int an_slots(sp_stream *s, an_state *st, sp_diag *d)
{
    uint32_t K = keymap_size(s->km);
    if (K <= st->nslot) return SP_OK;
    uint32_t *p = mem_realloc(&s->ctx->alloc, st->slot, (size_t)K * sizeof *p);
    if (!p) return an_oom(s, d);
    memset(p + st->nslot, 0xff, (size_t)(K - st->nslot) * sizeof *p);
    st->slot = p;
    st->nslot = K;
    return SP_OK;
}

static void an_slots_mark(an_state *st, const an_pane *p, int on)
{
    for (size_t j = 0; j < p->n; j++)
        st->slot[p->e[j].id] = on ? (uint32_t)j : UINT32_MAX;
}

/* -------------------------------------------------------------------------- adding batches */

typedef struct an_par {
    const sp_batch *b;
    hll **parts;
} an_par;

static int an_hll_task(void *ud, size_t part, unsigned worker)
{
    an_par *j = ud;
    const sp_batch *b = j->b;
    const sp_dict *dict = b->env->dict;
    size_t lo, hi;
    batch_part_range(b, (unsigned)part, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        hll_add_hash(j->parts[part], hll_hash_row(b->cols, b->ncols, dict, i));
    return SP_OK;
}

/** Adds every element of b to the unkeyed sketch h: on the executors, one sketch per
 *  partition then merged, when the batch is large and partitioned. */
static int an_add_distinct(sp_stream *s, const an_state *st, hll *h, const sp_batch *b, sp_diag *d)
{
    const sp_dict *dict = b->env->dict;
    if (b->nparts <= 1 || b->n < AN_PAR_ROWS) {
        for (size_t i = 0; i < b->n; i++)
            hll_add_hash(h, hll_hash_row(b->cols, b->ncols, dict, i));
        return SP_OK;
    }
    const sp_allocator *a = &s->ctx->alloc;
    hll **parts = mem_calloc(a, b->nparts, sizeof *parts);
    int rc = parts ? SP_OK : an_oom(s, d);
    for (unsigned q = 0; !rc && q < b->nparts; q++)
        if (!(parts[q] = hll_new(a, st->p))) rc = an_oom(s, d);
    if (!rc) {
        an_par j = {b, parts};
        if (exec_run(s->ctx->exec, b->nparts, b->part_node, an_hll_task, &j)) rc = an_oom(s, d);
    }
    for (unsigned q = 0; !rc && q < b->nparts; q++)
        rc = hll_merge(h, parts[q], d);
    for (unsigned q = 0; parts && q < b->nparts; q++)
        hll_free(a, parts[q]);
    mem_free(a, parts);
    return rc;
}

static int an_ensure_keymap(sp_stream *s, sp_batch *b, sp_diag *d)
{
    for (int c = 0; c < s->parent[0]->nkey; c++)
        if (b->cols[c].enc == ENC_RAW && col_encode(&b->cols[c], b->env->dict, d)) return d->code;
    if (s->km) return SP_OK;
    sp_type types[64];
    int nkey = s->parent[0]->nkey;
    SP_CHECK(d, nkey <= 64, SP_EUNSUPPORTED, "%s: keys of more than 64 columns", s->ops->name);
    for (int c = 0; c < nkey; c++)
        types[c] = td_col_type(b->td, c);
    if (keymap_new(&s->ctx->alloc, nkey, types, &s->km)) return an_oom(s, d);
    return SP_OK;
}

/** Grows a memo array of elem-byte entries to cover index id, new entries set to byte fill. */
static int an_memo_grow(sp_stream *s, void **arr, size_t *n, size_t elem, uint32_t id, int fill)
{
    if (id < *n) return SP_OK;
    size_t cap = *n ? *n : 1024;
    while (cap <= id)
        cap *= 2;
    void *p = mem_realloc(&s->ctx->alloc, *arr, cap * elem);
    if (!p) return SP_ENOMEM;
    memset((char *)p + *n * elem, fill, (cap - *n) * elem);
    *arr = p;
    *n = cap;
    return SP_OK;
}

/** Keymap ids of rows [0, b->n): for one dictionary-encoded str key column, each distinct id
 *  is looked up once per stream (memo st->kid); otherwise keymap_ids over the batch. The ids
 *  and first-seen order are those keymap_ids gives. */
static int an_key_ids(sp_stream *s, an_state *st, const sp_batch *b, int nkey, uint32_t *ids,
                      sp_diag *d)
{
    const sp_col *cols[64];
    for (int c = 0; c < nkey; c++)
        cols[c] = &b->cols[c];
    if (nkey != 1 || cols[0]->type != SP_STR || cols[0]->enc != ENC_DICT || cols[0]->len < b->n)
        return keymap_ids(s->km, cols, 0, b->n, ids, d);
    const uint32_t *dict_ids = cols[0]->data;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t v = dict_ids[i];
        if (v >= st->nkid &&
            an_memo_grow(s, (void **)&st->kid, &st->nkid, sizeof *st->kid, v, 0xff))
            return an_oom(s, d);
        if (st->kid[v] == UINT32_MAX) {
            int rc = keymap_ids(s->km, cols, i, 1, &st->kid[v], d);
            if (rc) return rc;
        }
        ids[i] = st->kid[v];
    }
    return SP_OK;
}

/** hll_hash_row of row i of a one-column dictionary-encoded str value, memoised per id. */
static int an_hash_dict(sp_stream *s, an_state *st, const sp_col *vc, const sp_dict *dict, size_t i,
                        uint64_t *h)
{
    uint32_t v = ((const uint32_t *)vc->data)[i];
    if (v >= st->nhash) {
        size_t n = st->nhash;
        if (an_memo_grow(s, (void **)&st->hash, &n, sizeof *st->hash, v, 0)) return SP_ENOMEM;
        size_t nk = st->nhash;
        if (an_memo_grow(s, (void **)&st->hknown, &nk, 1, v, 0)) return SP_ENOMEM;
        st->nhash = n < nk ? n : nk;
    }
    if (!st->hknown[v]) {
        st->hash[v] = hll_hash_row(vc, 1, dict, i);
        st->hknown[v] = 1;
    }
    *h = st->hash[v];
    return SP_OK;
}

enum { AN_QMEMO = 4096 }; /* entries of an_state.qmemo, a power of two */

/** qs_add(sk, x) through st->qmemo for the bucket index. */
static int an_qs_add(sp_stream *s, an_state *st, qsketch *sk, double x)
{
    double ax = fabs(x);
    if (!(ax >= DBL_MIN && ax <= DBL_MAX)) return qs_add(sk, x);
    if (!st->qmemo) {
        st->qmemo = mem_alloc(&s->ctx->alloc, AN_QMEMO * sizeof *st->qmemo);
        if (!st->qmemo) return qs_add(sk, x);
        for (size_t j = 0; j < AN_QMEMO; j++)
            st->qmemo[j].ax = NAN;
    }
    uint64_t bits;
    memcpy(&bits, &ax, sizeof bits);
    bits *= UINT64_C(0x9E3779B97F4A7C15);
    struct an_qmemo *m = &st->qmemo[bits >> 52 & (AN_QMEMO - 1)];
    if (m->ax != ax) {
        m->ax = ax;
        m->idx = qs_bucket(sk, ax);
    }
    return qs_add_bucket(sk, x, m->idx);
}

/** Adds a batch's (key, value) rows to pane p's per-key sketches. */
static int an_add_keyed(sp_stream *s, an_state *st, an_pane *p, sp_batch *b, sp_diag *d)
{
    if (b->n == 0) return SP_OK;
    const sp_allocator *a = &s->ctx->alloc;
    int nkey = s->parent[0]->nkey;
    int rc = an_ensure_keymap(s, b, d);
    if (rc) return rc;
    uint32_t *ids = mem_alloc(a, b->n * sizeof *ids);
    if (!ids) return an_oom(s, d);
    if ((rc = an_key_ids(s, st, b, nkey, ids, d)) || (rc = an_slots(s, st, d))) goto out;
    an_slots_mark(st, p, 1);
    const sp_dict *dict = b->env->dict;
    const sp_col *vc = &b->cols[st->vcol];
    int nv = b->ncols - st->vcol;
    int memo = nv == 1 && vc->type == SP_STR && vc->enc == ENC_DICT && vc->len >= b->n;
    for (size_t i = 0; i < b->n && !rc; i++) {
        void *sk = NULL;
        if ((rc = an_pane_entry(s, st, p, ids[i], &sk, d))) break;
        if (st->kind == AN_QUANT) {
            if (an_qs_add(s, st, sk, col_get_f64(vc, i))) rc = an_oom(s, d);
        } else if (memo) {
            uint64_t h;
            if (an_hash_dict(s, st, vc, dict, i, &h)) {
                rc = an_oom(s, d);
                break;
            }
            hll_add_hash(sk, h);
        } else {
            hll_add_hash(sk, hll_hash_row(vc, nv, dict, i));
        }
    }
    an_slots_mark(st, p, 0);
out:
    mem_free(a, ids);
    return rc;
}

static int an_add(sp_stream *s, an_state *st, an_pane *p, sp_batch *b, sp_diag *d)
{
    if (st->kind == AN_DISTINCT) {
        if (!p->h && !(p->h = hll_new(&s->ctx->alloc, st->p))) return an_oom(s, d);
        return an_add_distinct(s, st, p->h, b, d);
    }
    return an_add_keyed(s, st, p, b, d);
}

/* --------------------------------------------------------------------------------- output */

static int an_cmp_entry(const void *x, const void *y)
{
    uint32_t a = ((const an_entry *)x)->id, b = ((const an_entry *)y)->id;
    return a < b ? -1 : a > b;
}

/** Merges panes[0..np) into st->cur (keyed: per key). */
static int an_merge_panes(sp_stream *s, an_state *st, an_pane *const *panes, size_t np, sp_diag *d)
{
    an_pane *acc = &st->cur;
    an_pane_reset(s, st, acc, 0);
    int rc = SP_OK;
    if (st->kind == AN_DISTINCT) {
        if (!acc->h && !(acc->h = hll_new(&s->ctx->alloc, st->p))) return an_oom(s, d);
        for (size_t i = 0; i < np && !rc; i++)
            if (panes[i]->h) rc = hll_merge(acc->h, panes[i]->h, d);
        return rc;
    }
    if (!s->km) return SP_OK; /* nothing keyed seen yet */
    if ((rc = an_slots(s, st, d))) return rc;
    for (size_t i = 0; i < np && !rc; i++)
        for (size_t j = 0; j < panes[i]->n && !rc; j++) {
            void *sk = NULL;
            rc = an_pane_entry(s, st, acc, panes[i]->e[j].id, &sk, d);
            if (!rc) rc = an_sk_merge(st, sk, panes[i]->e[j].sk, d);
        }
    an_slots_mark(st, acc, 0);
    return rc;
}

/** The output batch of pane p (the batch's or the merged window's). */
static int an_emit(sp_stream *s, an_state *st, an_pane *p, int64_t t, sp_batch **out, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, t, out, d);
    if (rc) return rc;
    sp_batch *o = *out;
    if (st->kind == AN_DISTINCT) {
        double e = p->h ? hll_estimate(p->h) : 0.0;
        if (col_push_i64(&o->cols[0], (int64_t)llround(e))) goto oom;
        o->n = 1;
        return SP_OK;
    }
    if (p->n > 1) qsort(p->e, p->n, sizeof *p->e, an_cmp_entry);
    int nkey = s->nkey;
    sp_col *kc[64];
    for (int c = 0; c < nkey; c++)
        kc[c] = &o->cols[c];
    double v[AN_MAX_NQ];
    for (size_t j = 0; j < p->n; j++) {
        if (keymap_push_key(s->km, p->e[j].id, kc)) goto oom;
        if (st->kind == AN_QUANT) {
            qs_quantiles(p->e[j].sk, st->nq, st->qs, v);
            for (int q = 0; q < st->nq; q++)
                if (col_push_f64(&o->cols[nkey + q], v[q])) goto oom;
        } else {
            double e = hll_estimate(p->e[j].sk);
            if (col_push_i64(&o->cols[nkey], (int64_t)llround(e))) goto oom;
        }
        o->n++;
    }
    return SP_OK;
oom:
    batch_release(o);
    *out = NULL;
    return an_oom(s, d);
}

/* ---------------------------------------------------------------------------- stream ops */

static int64_t an_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t an_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static int an_tick(sp_stream *s, int64_t t, sp_diag *d)
{
    an_state *st = s->state;
    sp_stream *par = s->parent[0];
    if (!stream_time_valid(par, t)) return SP_OK;
    /* Pane k covers (zero + (k-1) g, zero + k g]: the batch of time t is in pane ceil(rel/g). */
    int64_t rel = t - s->ctx->zero_time;
    int64_t idx = -an_floor_div(-rel, st->pane_ms);
    an_pane *p = &st->ring[an_mod(idx, st->npanes)];
    if (p->idx != idx) an_pane_reset(s, st, p, idx);
    sp_batch *b = NULL;
    int rc = stream_compute(par, t, &b, d);
    if (!rc) rc = an_add(s, st, p, b, d);
    batch_release(b);
    return rc;
}

static int an_window_compute(sp_stream *s, an_state *st, int64_t t, sp_batch **out, sp_diag *d)
{
    int64_t last = an_floor_div(t - s->ctx->zero_time, st->pane_ms);
    an_pane *panes[64];
    an_pane **list = panes;
    if (st->npanes > 64 && !(list = mem_alloc(&s->ctx->alloc, st->npanes * sizeof *list)))
        return an_oom(s, d);
    size_t np = 0;
    for (int64_t idx = last - st->npanes + 1; idx <= last; idx++) {
        an_pane *p = &st->ring[an_mod(idx, st->npanes)];
        if (p->idx == idx) list[np++] = p;
    }
    int rc = an_merge_panes(s, st, list, np, d);
    if (list != panes) mem_free(&s->ctx->alloc, list);
    if (!rc) rc = an_emit(s, st, &st->cur, t, out, d);
    return rc;
}

typedef struct an_topk_job {
    const sp_batch *b;
    int nkey, vcol;
    size_t k;
    size_t *cand; /* k per partition */
    size_t *ncand;
} an_topk_job;

static int an_topk_task(void *ud, size_t part, unsigned worker)
{
    an_topk_job *j = ud;
    size_t lo, hi;
    batch_part_range(j->b, (unsigned)part, &lo, &hi);
    j->ncand[part] =
        topk_select(j->b, j->nkey, j->vcol, j->k, NULL, lo, hi - lo, j->cand + part * j->k);
    return SP_OK;
}

/** topK of one batch: per partition on the executors when large, then over the candidates. */
static int an_topk(sp_stream *s, an_state *st, const sp_batch *in, int64_t t, sp_batch **out,
                   sp_diag *d)
{
    const sp_allocator *a = &s->ctx->alloc;
    int rc = batch_new(&s->ctx->env, s->td, t, out, d);
    if (rc) return rc;
    size_t k = st->k < in->n ? st->k : in->n;
    unsigned np = in->nparts > 1 && in->n >= AN_PAR_ROWS ? in->nparts : 1;
    size_t *best = mem_alloc(a, (k ? k : 1) * sizeof *best);
    size_t *cand = np > 1 ? mem_alloc(a, (size_t)np * (k ? k : 1) * sizeof *cand) : NULL;
    size_t *ncand = np > 1 ? mem_calloc(a, np, sizeof *ncand) : NULL;
    size_t nb = 0;
    if (!best || (np > 1 && (!cand || !ncand))) {
        rc = an_oom(s, d);
        goto out;
    }
    if (np > 1) {
        an_topk_job j = {in, s->nkey, st->vcol, k, cand, ncand};
        if (exec_run(s->ctx->exec, np, in->part_node, an_topk_task, &j)) {
            rc = an_oom(s, d);
            goto out;
        }
        size_t nc = 0; /* compact the candidates */
        for (unsigned q = 0; q < np; q++)
            for (size_t i = 0; i < ncand[q]; i++)
                cand[nc++] = cand[q * k + i];
        nb = topk_select(in, s->nkey, st->vcol, k, cand, 0, nc, best);
    } else {
        nb = topk_select(in, s->nkey, st->vcol, k, NULL, 0, in->n, best);
    }
    for (size_t i = 0; i < nb && !rc; i++)
        if (batch_append_row(*out, in, best[i])) rc = an_oom(s, d);
out:
    mem_free(a, best);
    mem_free(a, cand);
    mem_free(a, ncand);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

static int an_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    an_state *st = s->state;
    if (st->windowed) return an_window_compute(s, st, t, out, d);
    sp_batch *b = NULL;
    int rc = stream_compute(s->parent[0], t, &b, d);
    if (rc) return rc;
    if (st->kind == AN_TOPK) {
        rc = an_topk(s, st, b, t, out, d);
    } else {
        an_pane_reset(s, st, &st->cur, 0);
        rc = an_add(s, st, &st->cur, b, d);
        if (!rc) rc = an_emit(s, st, &st->cur, t, out, d);
    }
    batch_release(b);
    return rc;
}

static void an_destroy(sp_stream *s)
{
    an_state *st = s->state;
    if (!st) return;
    const sp_allocator *a = &s->ctx->alloc;
    for (int64_t i = 0; st->ring && i < st->npanes; i++)
        an_pane_free(s, st, &st->ring[i]);
    an_pane_free(s, st, &st->cur);
    for (size_t i = 0; i < st->npool; i++)
        an_sk_free(s, st, st->pool[i]);
    mem_free(a, st->pool);
    mem_free(a, st->ring);
    mem_free(a, st->slot);
    mem_free(a, st->kid);
    mem_free(a, st->hash);
    mem_free(a, st->hknown);
    mem_free(a, st->qmemo);
    mem_free(a, st->qs);
    mem_free(a, st);
    s->state = NULL;
}

static void an_explain(const sp_stream *s, strbuf *sb)
{
    const an_state *st = s->state;
    switch (st->kind) {
    case AN_DISTINCT:
    case AN_DISTINCT_KEY:
        sb_printf(sb, "HyperLogLog, 2^%d registers, relative standard error %.4f", st->p,
                  hll_rse(st->p));
        break;
    case AN_QUANT:
        sb_printf(sb, "DDSketch per key, relative accuracy %g, %d quantiles", st->alpha, st->nq);
        break;
    case AN_TOPK:
        sb_printf(sb, "top %zu by value, then key", st->k);
        break;
    }
    if (st->windowed)
        sb_printf(sb, "; window %lld ms in panes of %lld ms, slide %lld ms (host)",
                  (long long)st->window_ms, (long long)st->pane_ms, (long long)s->slide_ms);
    else
        sb_printf(sb, " (host)");
}

/* Reclaim cycle (core/reclaim.c). What outlives a batch time: the window ring's panes keep
 * keymap ids (one entry per key, the key's strings live in s->km, which reclaim.c then marks
 * in the dictionary); sketches keep hashes and values, never ids; topK keeps nothing. The
 * memos kid, hash and hknown are indexed by dictionary id and kid holds keymap ids: a sweep
 * may free and reuse both, so every cycle drops them (they regrow from the next batch, one
 * lookup per distinct string: O(1) amortised, as the cycle itself). The merged window in
 * st->cur is rebuilt at every emit: reset here, so that no entry keeps an unmarked id. Every
 * ring slot is marked, including one holding an older pane (never read again, reset when its
 * slot is reused): its keys stay as long as its sketches do. Per-batch nodes
 * number one batch's keys only: their keymap is emptied. Cost: O(entries in the ring). */
static void an_mark(sp_stream *s, sp_dict *dict)
{
    (void)dict;
    an_state *st = s->state;
    const sp_allocator *a = &s->ctx->alloc;
    mem_free(a, st->kid);
    mem_free(a, st->hash);
    mem_free(a, st->hknown);
    st->kid = NULL;
    st->hash = NULL;
    st->hknown = NULL;
    st->nkid = st->nhash = 0;
    an_pane_reset(s, st, &st->cur, st->cur.idx);
    if (!st->windowed || !s->km) {
        keymap_clear(s->km);
        return;
    }
    keymap_mark_begin(s->km);
    for (int64_t i = 0; i < st->npanes; i++)
        for (size_t j = 0; j < st->ring[i].n; j++)
            keymap_mark(s->km, st->ring[i].e[j].id);
    keymap_sweep(s->km, NULL); /* out of memory: nothing freed this time */
}

static const stream_ops an_ops_distinct = {
    "countApproxDistinct", NULL, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_distinct_w = {
    "countApproxDistinctAndWindow", an_tick, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_distinct_key = {
    "countApproxDistinctByKey", NULL, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_distinct_key_w = {
    "countApproxDistinctByKeyAndWindow", an_tick, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_quant = {
    "approxQuantilesByKey", NULL, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_quant_w = {
    "approxQuantilesByKeyAndWindow", an_tick, an_compute, an_destroy, an_explain, an_mark};
static const stream_ops an_ops_topk = {"topK", NULL, an_compute, an_destroy, an_explain, an_mark};

/* -------------------------------------------------------------------------- construction */

static int64_t an_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/** Spark's window checks; sets the window fields of st. */
static int an_window_check(sp_stream *s, const char *op, int64_t window_ms, int64_t *slide_ms,
                           an_state *st)
{
    sp_context *ctx = s->ctx;
    int64_t ps = s->slide_ms;
    if (*slide_ms == 0) *slide_ms = ps;
    if (window_ms <= 0 || *slide_ms < 0)
        return ctx_fail(ctx, SP_EINVAL, "%s: window and slide durations must be positive", op);
    if (window_ms % ps)
        return ctx_fail(ctx, SP_EINVAL,
                        "%s: the window duration (%lld ms) must be a multiple of the slide "
                        "duration of the parent stream (%lld ms)",
                        op, (long long)window_ms, (long long)ps);
    if (*slide_ms % ps)
        return ctx_fail(ctx, SP_EINVAL,
                        "%s: the slide duration (%lld ms) must be a multiple of the slide "
                        "duration of the parent stream (%lld ms)",
                        op, (long long)*slide_ms, (long long)ps);
    st->windowed = 1;
    st->window_ms = window_ms;
    st->pane_ms = an_gcd(window_ms, *slide_ms);
    st->npanes = window_ms / st->pane_ms;
    if (st->npanes > AN_MAX_PANES)
        return ctx_fail(ctx, SP_EUNSUPPORTED, "%s: a window of more than %d panes", op,
                        AN_MAX_PANES);
    return SP_OK;
}

static int an_pair(sp_stream *s, const char *op, int numeric_value)
{
    const sp_td *t = s->td;
    if (!(t->kind == TD_TUPLE && t->n == 2)) {
        ctx_fail(s->ctx, SP_ETYPE, "%s needs a stream of (key, value) pairs, got %s", op,
                 s->type_str);
        return 0;
    }
    if (!td_is_flat(t)) {
        ctx_fail(s->ctx, SP_EUNSUPPORTED,
                 "%s: keys and values must be scalars or tuples of "
                 "scalars, got %s",
                 op, s->type_str);
        return 0;
    }
    const sp_td *v = t->child[1];
    if (numeric_value &&
        !(v->kind == TD_LEAF && (v->leaf == SP_I32 || v->leaf == SP_I64 || v->leaf == SP_F32 ||
                                 v->leaf == SP_F64 || v->leaf == SP_TS))) {
        ctx_fail(s->ctx, SP_ETYPE, "%s needs numeric values, got %s", op, s->type_str);
        return 0;
    }
    return 1;
}

/** Makes the node; st (allocated by the caller) is freed on failure. */
static sp_stream *an_node(sp_stream *s, const stream_ops *ops, an_state *st, sp_td *td,
                          int64_t slide_ms)
{
    sp_context *ctx = s->ctx;
    const sp_allocator *a = &ctx->alloc;
    st->cur.idx = -1;
    if (st->windowed) {
        st->ring = mem_calloc(a, (size_t)st->npanes, sizeof *st->ring);
        for (int64_t i = 0; st->ring && i < st->npanes; i++)
            st->ring[i].idx = -1;
    }
    if (td) td_layout(td, 0);
    sp_stream *o = NULL;
    if (!st->windowed || st->ring)
        o = stream_new_ops(ctx, ops, s, NULL, td, slide_ms);
    else
        td_free(a, td);
    if (!o) {
        if (st->windowed && !st->ring) ctx_fail(ctx, SP_ENOMEM, "%s: out of memory", ops->name);
        mem_free(a, st->ring);
        mem_free(a, st->qs);
        mem_free(a, st);
        return NULL;
    }
    o->state = st;
    return o;
}

static an_state *an_state_new(sp_stream *s, an_kind kind)
{
    an_state *st = mem_calloc(&s->ctx->alloc, 1, sizeof *st);
    if (!st)
        ctx_fail(s->ctx, SP_ENOMEM, "out of memory building the stream graph");
    else
        st->kind = kind;
    return st;
}

static sp_stream *an_distinct(sp_stream *s, double rsd, int keyed, int windowed, int64_t window_ms,
                              int64_t slide_ms)
{
    if (!s) return NULL;
    sp_context *ctx = s->ctx;
    const char *op = keyed ? (windowed ? an_ops_distinct_key_w.name : an_ops_distinct_key.name)
                           : (windowed ? an_ops_distinct_w.name : an_ops_distinct.name);
    sp_diag d;
    diag_clear(&d);
    int p = 0;
    if (hll_precision(rsd, &p, &d)) {
        ctx_take(ctx, &d);
        return NULL;
    }
    if (keyed && !an_pair(s, op, 0)) return NULL;
    if (!keyed && !td_is_flat(s->td)) {
        ctx_fail(ctx, SP_EUNSUPPORTED, "%s: elements must be scalars or tuples of scalars, got %s",
                 op, s->type_str);
        return NULL;
    }
    an_state *st = an_state_new(s, keyed ? AN_DISTINCT_KEY : AN_DISTINCT);
    if (!st) return NULL;
    st->p = p;
    st->vcol = keyed ? s->nkey : 0;
    if (windowed && an_window_check(s, op, window_ms, &slide_ms, st)) {
        mem_free(&ctx->alloc, st);
        return NULL;
    }
    const sp_allocator *a = &ctx->alloc;
    sp_td *td =
        keyed ? td_tuple2(a, td_copy(a, s->td->child[0]), td_leaf(a, SP_I64)) : td_leaf(a, SP_I64);
    const stream_ops *ops = keyed ? (windowed ? &an_ops_distinct_key_w : &an_ops_distinct_key)
                                  : (windowed ? &an_ops_distinct_w : &an_ops_distinct);
    return an_node(s, ops, st, td, windowed ? slide_ms : 0);
}

sp_stream *sp_stream_count_approx_distinct(sp_stream *s, double rsd)
{
    return an_distinct(s, rsd, 0, 0, 0, 0);
}

sp_stream *sp_stream_count_approx_distinct_and_window(sp_stream *s, double rsd, int64_t window_ms,
                                                      int64_t slide_ms)
{
    return an_distinct(s, rsd, 0, 1, window_ms, slide_ms);
}

sp_stream *sp_stream_count_approx_distinct_by_key(sp_stream *s, double rsd)
{
    return an_distinct(s, rsd, 1, 0, 0, 0);
}

sp_stream *sp_stream_count_approx_distinct_by_key_and_window(sp_stream *s, double rsd,
                                                             int64_t window_ms, int64_t slide_ms)
{
    return an_distinct(s, rsd, 1, 1, window_ms, slide_ms);
}

static sp_stream *an_quantiles(sp_stream *s, int nq, const double *qs, double rel_err, int windowed,
                               int64_t window_ms, int64_t slide_ms)
{
    if (!s) return NULL;
    sp_context *ctx = s->ctx;
    const char *op = windowed ? an_ops_quant_w.name : an_ops_quant.name;
    if (nq < 1 || nq > AN_MAX_NQ || !qs) {
        ctx_fail(ctx, SP_EINVAL, "%s: between 1 and %d quantiles", op, AN_MAX_NQ);
        return NULL;
    }
    for (int i = 0; i < nq; i++)
        if (!(qs[i] >= 0.0 && qs[i] <= 1.0)) {
            ctx_fail(ctx, SP_EINVAL, "%s: quantile %g is not in [0, 1]", op, qs[i]);
            return NULL;
        }
    if (!(rel_err >= 1e-5 && rel_err < 1.0)) {
        ctx_fail(ctx, SP_EINVAL, "%s: the relative error (%g) must be in [1e-5, 1)", op, rel_err);
        return NULL;
    }
    if (!an_pair(s, op, 1)) return NULL;
    an_state *st = an_state_new(s, AN_QUANT);
    if (!st) return NULL;
    const sp_allocator *a = &ctx->alloc;
    st->nq = nq;
    st->alpha = rel_err;
    st->vcol = s->nkey;
    st->qs = mem_alloc(a, (size_t)nq * sizeof *st->qs);
    if (!st->qs) {
        mem_free(a, st);
        ctx_fail(ctx, SP_ENOMEM, "out of memory building the stream graph");
        return NULL;
    }
    memcpy(st->qs, qs, (size_t)nq * sizeof *qs);
    if (windowed && an_window_check(s, op, window_ms, &slide_ms, st)) {
        mem_free(a, st->qs);
        mem_free(a, st);
        return NULL;
    }
    sp_td *v;
    if (nq == 1) {
        v = td_leaf(a, SP_F64);
    } else {
        sp_td *ch[AN_MAX_NQ];
        for (int i = 0; i < nq; i++)
            ch[i] = td_leaf(a, SP_F64);
        v = td_tuple(a, nq, ch);
    }
    sp_td *td = td_tuple2(a, td_copy(a, s->td->child[0]), v);
    return an_node(s, windowed ? &an_ops_quant_w : &an_ops_quant, st, td, windowed ? slide_ms : 0);
}

sp_stream *sp_stream_approx_quantiles_by_key(sp_stream *s, int nq, const double *qs, double rel_err)
{
    return an_quantiles(s, nq, qs, rel_err, 0, 0, 0);
}

sp_stream *sp_stream_approx_quantiles_by_key_and_window(sp_stream *s, int nq, const double *qs,
                                                        double rel_err, int64_t window_ms,
                                                        int64_t slide_ms)
{
    return an_quantiles(s, nq, qs, rel_err, 1, window_ms, slide_ms);
}

sp_stream *sp_stream_top_k(sp_stream *s, int k)
{
    if (!s) return NULL;
    if (k < 1) {
        ctx_fail(s->ctx, SP_EINVAL, "topK: k must be >= 1, got %d", k);
        return NULL;
    }
    if (!an_pair(s, "topK", 1)) return NULL;
    an_state *st = an_state_new(s, AN_TOPK);
    if (!st) return NULL;
    st->k = (size_t)k;
    st->vcol = s->nkey;
    return an_node(s, &an_ops_topk, st, td_copy(&s->ctx->alloc, s->td), 0);
}
