/* window.c — window operators with Spark's semantics (host/semantics.md): window,
 * countByWindow, reduceByWindow (with and without inverse), reduceByKeyAndWindow (lambda,
 * lambda + inverse [+ filter], built-in aggregates), countByValueAndWindow and
 * groupByKeyAndWindow.
 *
 * Every node is an N_OPS stream whose tick takes the parent's batch of each batch time and
 * computes (memoised) its own batch at each valid slide time, so its state advances whether or
 * not an output asks. Times are relative to ctx->zero_time; a batch at time t belongs to pane
 * (t - 1) / g with g = gcd(W, S), and the window at a slide time t is the panes [(t-W)/g, t/g).
 *
 * Routes:
 *  panes    keyed reductions that are built-in aggregates or recognised lambdas (sum, min,
 *           max; inverse a - b) run on the device panes (ops/panes_int.h): sums, counts and
 *           averages as + entering - leaving, min and max as two-stacks, Spark's inverse path
 *           as previous - leaving + entering on live keys. O(rows moved + keys emitted) per
 *           slide, whatever W/S is.
 *  lambda   reductions without an inverse that the device panes do not know (general
 *           keyed lambdas such as a * b or tuple-valued ones, and every unkeyed
 *           reduceByWindow(f)): per-pane per-key partials folded with the lambda on the host,
 *           combined by a two-stacks queue (ops/lpanes_int.h). O(1) amortised merges of
 *           O(live keys) per slide, whatever W/S is.
 *  literal  Spark's algorithms on remembered batches, on the host: window/groupByKeyAndWindow
 *           union the batches of the window; reductions without an inverse reduce the union;
 *           the inverse path cogroups the previous window with the per-batch reductions that
 *           leave and enter (ReducedWindowedDStream). Taken for the general inverse path, for
 *           window and groupByKeyAndWindow, and for everything when sp_config.naive_windows is
 *           set (the benchmark baseline and the tests' oracle). */
#include "core/core_int.h"
#include "ops/lpanes_int.h"
#include "ops/panes_int.h"

#include <stdlib.h>
#include <string.h>

typedef enum win_op {
    W_WINDOW,
    W_GROUP,
    W_REDUCE,      /* reduceByWindow(f) */
    W_SCALAR_INV,  /* reduceByWindow(f, inv), countByWindow */
    W_KREDUCE,     /* reduceByKeyAndWindow(f) and built-in aggregates */
    W_KREDUCE_INV, /* reduceByKeyAndWindow(f, inv[, filter]), countByValueAndWindow */
} win_op;

typedef struct win {
    win_op op;
    int64_t W, S, B, g;
    sp_expr *f, *inv, *filter;
    int use_agg;      /* W_KREDUCE: s->agg is a built-in aggregate */
    int count_values; /* countByValueAndWindow: elements are keys, values are counts */
    int count_scalar; /* countByWindow: per-batch values are counts */
    int drop_zero;    /* countByValueAndWindow's filter (count != 0) */
    int panes_route;
    int lp_route; /* reduce lambdas without inverse: host two-stacks (ops/lpanes_int.h) */
    panes_mode mode;
    sp_agg pagg;
    sp_type vt;
    /* remembered batches (raw, or per-batch reductions on the inverse paths), time order */
    sp_batch **hb;
    int64_t *ht;
    size_t nh, hcap;
    sp_batch *prev; /* literal inverse path: the previous window's output */
    int64_t prev_t;
    panes *pn;
    lpanes *lp;
    expr_val *lv; /* lambda route: values of the batch being taken */
    size_t lv_cap;
    expr_scratch lsc;
    expr_typed *ft, *invt, *filt;
    uint32_t *ids;
    size_t ids_cap;
} win;

/* ------------------------------------------------------------------------------- helpers */

static int64_t win_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Floor division (times before zero give negative pane numbers). */
static int64_t win_fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int win_oom(sp_diag *d, const sp_stream *s)
{
    return diag_set(d, SP_ENOMEM, "out of memory in window stream %d", s->id);
}

static sp_td *win_typecheck(sp_context *ctx, const sp_expr *e, const sp_td *a0, const sp_td *a1,
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
    td_layout(t, 0);
    return t;
}

/* f(a: v, b: v) must return v. */
static int win_check_fold(sp_context *ctx, const sp_expr *f, const sp_td *v, const char *op)
{
    sp_td *t = win_typecheck(ctx, f, v, v, op);
    if (!t) return 0;
    int ok = td_equal(t, v);
    td_free(&ctx->alloc, t);
    if (!ok) ctx_fail(ctx, SP_ETYPE, "%s: the function must return the value type", op);
    return ok;
}

static int win_numeric(const sp_td *v)
{
    return v->kind == TD_LEAF && (v->leaf == SP_I32 || v->leaf == SP_I64 || v->leaf == SP_F32 ||
                                  v->leaf == SP_F64 || v->leaf == SP_TS);
}

static int win_is_sub(const sp_expr *e)
{
    return e && e->kind == EX_BINOP && e->op == SP_OP_SUB && e->kids[0]->kind == EX_ARG &&
           e->kids[0]->index == 0 && e->kids[1]->kind == EX_ARG && e->kids[1]->index == 1;
}

static int win_single_str(const sp_stream *s, int nkey)
{
    return nkey == 1 && td_col_type(s->td, 0) == SP_STR;
}

static int win_keymap(sp_stream *s, int nkey, sp_diag *d)
{
    if (s->km || win_single_str(s, nkey)) return SP_OK;
    sp_type types[64];
    if (nkey > 64) return diag_set(d, SP_EUNSUPPORTED, "keys of more than 64 columns");
    for (int c = 0; c < nkey; c++)
        types[c] = td_col_type(s->td, c);
    return keymap_new(&s->ctx->alloc, nkey, types, &s->km) ? win_oom(d, s) : SP_OK;
}

/* Key ids of every row of b (dictionary ids for one str key, else keymap ids) into w->ids;
 * raw str key columns are dictionary-encoded in place, as hostops does. */
static int win_key_ids(sp_stream *s, win *w, sp_batch *b, int nkey, sp_diag *d)
{
    size_t n = b->n;
    if (n > w->ids_cap) {
        uint32_t *p = mem_realloc(&s->ctx->alloc, w->ids, n * sizeof *p);
        if (!p) return win_oom(d, s);
        w->ids = p;
        w->ids_cap = n;
    }
    if (nkey == 0) {
        if (n) memset(w->ids, 0, n * sizeof *w->ids);
        return SP_OK;
    }
    for (int c = 0; c < nkey; c++)
        if (b->cols[c].enc == ENC_RAW && col_encode(&b->cols[c], s->ctx->dict, d))
            return d ? d->code : SP_ENOMEM;
    if (win_single_str(s, nkey)) {
        if (n) memcpy(w->ids, b->cols[0].data, n * sizeof *w->ids);
        return SP_OK;
    }
    int rc = win_keymap(s, nkey, d);
    if (rc) return rc;
    const sp_col *cols[64];
    for (int c = 0; c < nkey; c++)
        cols[c] = &b->cols[c];
    return keymap_ids(s->km, cols, 0, n, w->ids, d);
}

static int win_push_key(sp_stream *s, sp_batch *out, int nkey, uint32_t id)
{
    if (win_single_str(s, nkey)) return col_push_id(&out->cols[0], id);
    sp_col *cols[64];
    for (int c = 0; c < nkey; c++)
        cols[c] = &out->cols[c];
    return keymap_push_key(s->km, id, cols);
}

/* Appends a number to a column of any numeric type (i32 wraps as Scala's Int). */
static int win_push_num(sp_col *c, int isf, int64_t i, double f)
{
    if (c->type == SP_F32 || c->type == SP_F64) return col_push_f64(c, isf ? f : (double)i);
    int64_t v = isf ? (int64_t)f : i;
    if (c->type == SP_I32) v = (int32_t)(uint32_t)(uint64_t)v;
    return col_push_i64(c, v);
}

static void win_truncate(sp_batch *b, size_t n)
{
    for (int c = 0; c < b->ncols; c++)
        col_truncate(&b->cols[c], n);
    b->n = n;
}

/* ---------------------------------------------------------------------------- history */

static int win_remember(sp_stream *s, win *w, int64_t t, sp_batch *b)
{
    if (w->nh == w->hcap) {
        size_t cap = w->hcap ? w->hcap * 2 : 16;
        sp_batch **hb = mem_realloc(&s->ctx->alloc, w->hb, cap * sizeof *hb);
        if (!hb) return SP_ENOMEM;
        w->hb = hb;
        int64_t *ht = mem_realloc(&s->ctx->alloc, w->ht, cap * sizeof *ht);
        if (!ht) return SP_ENOMEM;
        w->ht = ht;
        w->hcap = cap;
    }
    w->hb[w->nh] = b;
    w->ht[w->nh++] = t;
    return SP_OK;
}

/* Forgets batches at or before time `upto`. */
static void win_forget(win *w, int64_t upto)
{
    size_t k = 0;
    while (k < w->nh && w->ht[k] <= upto)
        batch_release(w->hb[k++]);
    if (k == 0) return;
    memmove(w->hb, w->hb + k, (w->nh - k) * sizeof *w->hb);
    memmove(w->ht, w->ht + k, (w->nh - k) * sizeof *w->ht);
    w->nh -= k;
}

/* Union of remembered batches with time in (lo, hi], in time order, as type td. */
static int win_union(sp_stream *s, win *w, const sp_td *td, int64_t lo, int64_t hi, sp_batch **out,
                     sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, td, hi, out, d);
    for (size_t k = 0; !rc && k < w->nh; k++)
        if (w->ht[k] > lo && w->ht[k] <= hi) rc = batch_append(*out, w->hb[k], d);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------ per-batch reductions */

/* The parent's batch reduced as Spark does before windowing (reduceByKey / reduce / count);
 * for countByWindow an empty batch gives no element. */
static int win_reduce_batch(sp_stream *s, win *w, sp_batch *b, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    if (w->op == W_SCALAR_INV && w->count_scalar) {
        int rc = batch_new(&ctx->env, s->td, b->time_ms, out, d);
        if (!rc && b->n) {
            if (col_push_i64(&(*out)->cols[0], (int64_t)b->n)) return win_oom(d, s);
            (*out)->n = 1;
        }
        return rc;
    }
    if (w->op == W_SCALAR_INV || w->op == W_REDUCE) return hostop_reduce(s, b, out, d);
    if (w->count_values) {
        int nkey = s->nkey;
        int rc = win_key_ids(s, w, b, nkey, d); /* encodes raw keys, makes the keymap */
        if (rc) return rc;
        return keyed_aggregate(ctx->dev, &ctx->env, s->km, b, nkey, -1, SP_AGG_COUNT, s->td, out,
                               d);
    }
    return hostop_reduce_by_key(s, b, out, d);
}

/* ------------------------------------------------------------- literal inverse (Spark's) */

typedef struct lit_ent {
    uint32_t id, src, row;
} lit_ent;

static int lit_cmp(const void *a, const void *b)
{
    const lit_ent *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int lit_fold(const expr_typed *f, expr_val *vals, size_t n, expr_scratch *sc, expr_val *out,
                    sp_diag *d)
{
    *out = vals[0];
    for (size_t i = 1; i < n; i++) {
        expr_val args[2] = {*out, vals[i]};
        int rc = expr_eval(f, args, sc, out, d);
        if (rc) return rc;
    }
    return SP_OK;
}

/* Evaluates the filter on row `row` of out; 1 keep, 0 drop, <0 error. */
static int win_filter_row(sp_stream *s, win *w, sp_batch *out, size_t row, expr_scratch *sc,
                          sp_diag *d)
{
    expr_val v, r;
    if (expr_val_load(out, s->td, 0, row, sc, &v)) return win_oom(d, s);
    int rc = expr_eval(w->filt, &v, sc, &r, d);
    if (rc) return rc;
    return r.u.i != 0;
}

/* ReducedWindowedDStream.compute on the host: cogroup of the previous window's output with
 * the per-batch reductions leaving ((t-W-S, t-W]) and entering ((t-S, t]). */
static int win_literal_inverse(sp_stream *s, win *w, int64_t t, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    const sp_allocator *al = &ctx->alloc;
    int nkey = w->op == W_SCALAR_INV ? 0 : s->nkey;
    const sp_td *vtd = nkey ? s->td->child[1] : s->td;
    int64_t rt = t - ctx->zero_time;
    sp_batch *src[1024];
    size_t nsrc = 1, nold = 0;
    src[0] = (w->prev && w->prev_t == t - w->S) ? w->prev : NULL;
    for (int pass = 0; pass < 2; pass++) {
        int64_t lo = pass ? rt - w->S : rt - w->W - w->S, hi = pass ? rt : rt - w->W;
        for (size_t k = 0; k < w->nh; k++) {
            int64_t ht = w->ht[k] - ctx->zero_time;
            if (ht > lo && ht <= hi && ht > 0) {
                if (nsrc == 1024)
                    return diag_set(d, SP_EUNSUPPORTED, "window stream %d: slide too long", s->id);
                src[nsrc++] = w->hb[k];
            }
        }
        if (!pass) nold = nsrc - 1;
    }
    size_t total = 0;
    for (size_t k = 0; k < nsrc; k++)
        total += src[k] ? src[k]->n : 0;
    lit_ent *e = mem_alloc(al, (total ? total : 1) * sizeof *e);
    expr_val *olds = mem_alloc(al, (nsrc + 1) * sizeof *olds);
    expr_val *news = mem_alloc(al, (nsrc + 1) * sizeof *news);
    int rc = (!e || !olds || !news) ? win_oom(d, s) : SP_OK;
    size_t ne = 0;
    for (size_t k = 0; !rc && k < nsrc; k++) {
        if (!src[k]) continue;
        if ((rc = win_key_ids(s, w, src[k], nkey, d))) break;
        for (size_t i = 0; i < src[k]->n; i++)
            e[ne++] = (lit_ent){w->ids[i], (uint32_t)k, (uint32_t)i};
    }
    if (!rc) qsort(e, ne, sizeof *e, lit_cmp);
    if (!rc) rc = batch_new(&ctx->env, s->td, t, out, d);
    expr_scratch sc;
    expr_scratch_init(&sc, al);
    uint32_t *drop = NULL;
    for (size_t i = 0; !rc && i < ne;) {
        size_t j = i;
        while (j < ne && e[j].id == e[i].id)
            j++;
        expr_scratch_reset(&sc);
        int has_prev = e[i].src == 0;
        size_t no = 0, nn = 0;
        for (size_t k = i; k < j && !rc; k++) {
            if (e[k].src == 0) continue;
            expr_val *v = e[k].src <= nold ? &olds[no++] : &news[nn++];
            if (expr_val_load(src[e[k].src], vtd, nkey, e[k].row, &sc, v)) rc = win_oom(d, s);
        }
        if (rc) break;
        expr_val val;
        if (!has_prev) {
            if (nn == 0) {
                rc = diag_set(d, SP_ERUNTIME,
                              "window stream %d: neither the previous window has a value for a "
                              "key, nor new values were found (Spark fails here too: a key "
                              "removed by the filter still has values leaving the window)",
                              s->id);
                break;
            }
            rc = lit_fold(w->ft, news, nn, &sc, &val, d);
        } else {
            if (expr_val_load(src[0], vtd, nkey, e[i].row, &sc, &val)) rc = win_oom(d, s);
            expr_val acc;
            if (!rc && no) {
                rc = lit_fold(w->ft, olds, no, &sc, &acc, d);
                expr_val args[2] = {val, acc};
                if (!rc) rc = expr_eval(w->invt, args, &sc, &val, d);
            }
            if (!rc && nn) {
                rc = lit_fold(w->ft, news, nn, &sc, &acc, d);
                expr_val args[2] = {val, acc};
                if (!rc) rc = expr_eval(w->ft, args, &sc, &val, d);
            }
        }
        if (rc) break;
        sp_batch *kb = src[e[i].src];
        size_t row = (*out)->n;
        for (int c = 0; c < nkey && !rc; c++)
            if (col_push_from(&(*out)->cols[c], &kb->cols[c], ctx->dict, e[i].row))
                rc = win_oom(d, s);
        if (!rc && expr_val_push(&val, &(*out)->cols[nkey], ctx->dict) < 0) rc = win_oom(d, s);
        if (rc) break;
        (*out)->n = row + 1;
        int keep = 1;
        if (w->drop_zero)
            keep = col_get_i64(&(*out)->cols[nkey], row) != 0;
        else if (w->filt)
            keep = win_filter_row(s, w, *out, row, &sc, d);
        if (keep < 0) rc = keep;
        if (keep == 0) win_truncate(*out, row);
        i = j;
    }
    expr_scratch_free(&sc);
    mem_free(al, drop);
    mem_free(al, e);
    mem_free(al, olds);
    mem_free(al, news);
    if (rc) {
        batch_release(*out);
        *out = NULL;
        return rc;
    }
    batch_release(w->prev);
    w->prev = batch_retain(*out);
    w->prev_t = t;
    return SP_OK;
}

/* -------------------------------------------------------------------------- panes route */

static int win_panes_open(sp_stream *s, win *w, sp_diag *d)
{
    if (w->pn) return SP_OK;
    panes_cfg c = {s->ctx->dev, s->ctx->env.arenas[0], &s->ctx->alloc, w->mode, w->pagg, w->vt};
    return panes_new(&c, &w->pn, d);
}

/* 1 when some window covers pane `pane` (always, unless W < S). */
static int win_pane_used(const win *w, int64_t pane)
{
    int64_t next = ((pane + 1) * w->g + w->S - 1) / w->S * w->S; /* next slide time */
    return pane * w->g >= next - w->W;
}

/* Takes a parent batch into the open pane; closes the pane at its end. Rows of panes that no
 * window will cover (W < S, non-inverse) are skipped. */
static int win_panes_take(sp_stream *s, win *w, int64_t t, sp_batch *b, sp_diag *d)
{
    int rc = win_panes_open(s, w, d);
    if (rc) return rc;
    int64_t rt = t - s->ctx->zero_time;
    int64_t pane = (rt - 1) / w->g;
    int use = w->mode == PANES_INVERSE || win_pane_used(w, pane);
    if (use && b->n) {
        int nkey = s->nkey;
        if ((rc = win_key_ids(s, w, b, nkey, d))) return rc;
        const void *vals = w->pagg == SP_AGG_COUNT ? NULL : b->cols[nkey].data;
        if ((rc = panes_add(w->pn, w->ids, vals, b->n, d))) return rc;
    }
    if (rt % w->g == 0) rc = panes_close(w->pn, pane, d);
    return rc;
}

static int win_panes_compute(sp_stream *s, win *w, int64_t t, sp_batch **out, sp_diag *d)
{
    int rc = win_panes_open(s, w, d);
    if (rc) return rc;
    int64_t rt = t - s->ctx->zero_time, g = w->g;
    if (w->mode == PANES_INVERSE)
        rc = panes_slide_inverse(w->pn, win_fdiv(rt - w->W - w->S, g), win_fdiv(rt - w->W, g),
                                 win_fdiv(rt - w->S, g), rt / g, d);
    else
        rc = panes_slide(w->pn, win_fdiv(rt - w->W, g), rt / g, d);
    panes_view v;
    if (!rc) rc = panes_view_get(w->pn, &v, d);
    if (!rc) rc = batch_new(&s->ctx->env, s->td, t, out, d);
    if (rc) return diag_prefix(d, "window stream %d", s->id);
    int nkey = s->nkey;
    sp_col *vc = &(*out)->cols[nkey];
    uint32_t *drop = NULL;
    size_t ndrop = 0;
    expr_scratch sc;
    expr_scratch_init(&sc, &s->ctx->alloc);
    for (uint32_t k = 0; k < v.nslots && !rc; k++) {
        if (v.slot_id[k] == UINT32_MAX || v.cnt[k] <= 0) continue;
        int64_t ai = v.acc_f64 ? 0 : ((const int64_t *)v.acc)[k];
        double af = v.acc_f64 ? ((const double *)v.acc)[k] : 0.0;
        if (w->drop_zero && ai == 0) {
            if (!drop) drop = mem_alloc(&s->ctx->alloc, (size_t)v.nslots * sizeof *drop);
            if (!drop) {
                rc = win_oom(d, s);
                break;
            }
            drop[ndrop++] = k;
            continue;
        }
        size_t row = (*out)->n;
        if (win_push_key(s, *out, nkey, v.slot_id[k])) {
            rc = win_oom(d, s);
            break;
        }
        if (w->mode != PANES_INVERSE && w->pagg == SP_AGG_COUNT)
            rc = win_push_num(vc, 0, v.cnt[k], 0);
        else if (w->pagg == SP_AGG_AVG)
            rc = win_push_num(vc, 1, 0, af / (double)v.cnt[k]);
        else
            rc = win_push_num(vc, v.acc_f64, ai, af);
        if (rc) {
            rc = win_oom(d, s);
            break;
        }
        (*out)->n = row + 1;
        if (w->filt) {
            expr_scratch_reset(&sc);
            int keep = win_filter_row(s, w, *out, row, &sc, d);
            if (keep < 0) rc = keep;
            if (keep == 0) {
                win_truncate(*out, row);
                if (!drop) drop = mem_alloc(&s->ctx->alloc, (size_t)v.nslots * sizeof *drop);
                if (!drop)
                    rc = win_oom(d, s);
                else
                    drop[ndrop++] = k;
            }
        }
    }
    expr_scratch_free(&sc);
    if (!rc && ndrop) rc = panes_remove(w->pn, drop, ndrop, d);
    mem_free(&s->ctx->alloc, drop);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------------- lambda route */

static int win_lp_open(sp_stream *s, win *w, sp_diag *d)
{
    if (w->lp) return SP_OK;
    return lpanes_new(&s->ctx->alloc, w->ft, &w->lp, d);
}

/* Takes a parent batch into the open lambda pane (values loaded on the host); closes the pane
 * at its end. */
static int win_lp_take(sp_stream *s, win *w, int64_t t, sp_batch *b, sp_diag *d)
{
    int rc = win_lp_open(s, w, d);
    if (rc) return rc;
    int64_t rt = t - s->ctx->zero_time;
    int64_t pane = (rt - 1) / w->g;
    if (b->n && win_pane_used(w, pane)) {
        int nkey = w->op == W_REDUCE ? 0 : s->nkey;
        const sp_td *vtd = nkey ? s->parent[0]->td->child[1] : s->parent[0]->td;
        if ((rc = win_key_ids(s, w, b, nkey, d))) return rc;
        if (b->n > w->lv_cap) {
            expr_val *v = mem_realloc(&s->ctx->alloc, w->lv, b->n * sizeof *v);
            if (!v) return win_oom(d, s);
            w->lv = v;
            w->lv_cap = b->n;
        }
        expr_scratch_reset(&w->lsc);
        for (size_t i = 0; i < b->n; i++)
            if (expr_val_load(b, vtd, nkey, i, &w->lsc, &w->lv[i])) return win_oom(d, s);
        rc = lpanes_add(w->lp, w->ids, w->lv, b->n, d);
        expr_scratch_reset(&w->lsc);
        if (rc) return diag_prefix(d, "window stream %d", s->id);
    }
    if (rt % w->g == 0) rc = lpanes_close(w->lp, pane, d);
    return rc;
}

static int win_lp_compute(sp_stream *s, win *w, int64_t t, sp_batch **out, sp_diag *d)
{
    int rc = win_lp_open(s, w, d);
    int64_t rt = t - s->ctx->zero_time;
    if (!rc) rc = lpanes_slide(w->lp, win_fdiv(rt - w->W, w->g), rt / w->g, d);
    if (!rc) rc = batch_new(&s->ctx->env, s->td, t, out, d);
    if (rc) return diag_prefix(d, "window stream %d", s->id);
    int nkey = w->op == W_REDUCE ? 0 : s->nkey;
    lpanes_view v;
    lpanes_view_get(w->lp, &v);
    for (size_t k = 0; k < v.n && !rc; k++) {
        if ((nkey && win_push_key(s, *out, nkey, v.ids[k])) ||
            expr_val_push(&v.vals[k], &(*out)->cols[nkey], s->ctx->dict) < 0)
            rc = win_oom(d, s);
        else
            (*out)->n++;
    }
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------------- stream_ops */

static int win_uses_history(const win *w)
{
    return !w->panes_route && !w->lp_route;
}

static int win_tick(sp_stream *s, int64_t t, sp_diag *d)
{
    win *w = s->state;
    sp_stream *par = s->parent[0];
    int rc = SP_OK;
    if (stream_time_valid(par, t)) {
        sp_batch *b = NULL;
        if ((rc = stream_compute(par, t, &b, d))) return rc;
        if (w->panes_route) {
            rc = win_panes_take(s, w, t, b, d);
        } else if (w->lp_route) {
            rc = win_lp_take(s, w, t, b, d);
        } else if (w->op == W_SCALAR_INV || w->op == W_REDUCE || w->op == W_KREDUCE_INV) {
            sp_batch *r = NULL;
            rc = win_reduce_batch(s, w, b, &r, d);
            if (!rc && win_remember(s, w, t, r)) {
                batch_release(r);
                rc = win_oom(d, s);
            }
        } else {
            rc = win_remember(s, w, t, batch_retain(b)) ? win_oom(d, s) : SP_OK;
        }
        batch_release(b);
        if (rc) return rc;
    }
    if (win_uses_history(w)) win_forget(w, t - w->W - w->S);
    if (stream_time_valid(s, t) && s->consumers > 0) {
        sp_batch *o = NULL;
        rc = stream_compute(s, t, &o, d);
        batch_release(o);
    }
    return rc;
}

static int win_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    win *w = s->state;
    sp_context *ctx = s->ctx;
    if (w->panes_route) return win_panes_compute(s, w, t, out, d);
    if (w->lp_route) return win_lp_compute(s, w, t, out, d);
    if (w->op == W_SCALAR_INV || w->op == W_KREDUCE_INV)
        return win_literal_inverse(s, w, t, out, d);
    sp_batch *u = NULL;
    const sp_td *utd = w->op == W_REDUCE ? s->td : s->parent[0]->td;
    int rc = win_union(s, w, utd, t - w->W, t, &u, d);
    if (rc) return rc;
    switch (w->op) {
    case W_WINDOW:
        *out = u;
        return SP_OK;
    case W_GROUP:
        rc = hostop_group_by_key(s, u, out, d);
        break;
    case W_REDUCE:
        rc = hostop_reduce(s, u, out, d);
        break;
    default:
        if (w->use_agg) {
            if (!(rc = win_key_ids(s, w, u, s->nkey, d)))
                rc = keyed_aggregate(ctx->dev, &ctx->env, s->km, u, s->nkey, s->nkey, s->agg, s->td,
                                     out, d);
        } else {
            rc = hostop_reduce_by_key(s, u, out, d);
        }
    }
    batch_release(u);
    return rc;
}

static void win_destroy(sp_stream *s)
{
    win *w = s->state;
    if (!w) return;
    const sp_allocator *a = &s->ctx->alloc;
    win_forget(w, INT64_MAX);
    mem_free(a, w->hb);
    mem_free(a, w->ht);
    batch_release(w->prev);
    panes_free(w->pn);
    lpanes_free(w->lp);
    mem_free(a, w->lv);
    expr_scratch_free(&w->lsc);
    expr_typed_free(a, w->ft);
    expr_typed_free(a, w->invt);
    expr_typed_free(a, w->filt);
    mem_free(a, w->ids);
    mem_free(a, w);
    s->state = NULL;
}

static void win_explain(const sp_stream *s, strbuf *sb)
{
    const win *w = s->state;
    sb_printf(sb, "window %lld ms, slide %lld ms: ", (long long)w->W, (long long)w->S);
    if (w->lp_route) {
        sb_printf(sb,
                  "host two-stacks over panes of %lld ms (per-key partials of the lambda, "
                  "O(1) amortised pane combinations per slide)",
                  (long long)w->g);
        return;
    }
    if (!w->panes_route) {
        sb_printf(sb, "%s on the host from remembered batches",
                  (w->op == W_SCALAR_INV || w->op == W_KREDUCE_INV)
                      ? "Spark's inverse reduction (previous window - leaving + entering)"
                      : "recomputed");
        return;
    }
    sb_printf(sb, "device panes of %lld ms (window.cl), %s", (long long)w->g,
              w->mode == PANES_INVERSE      ? "previous - leaving + entering on live keys"
              : w->mode == PANES_TWO_STACKS ? "two-stacks over panes"
                                            : "window += entering - leaving");
}

static void win_mark_km(void *ud, uint32_t id)
{
    keymap_mark(ud, id);
}

static void win_mark_dict(void *ud, uint32_t id)
{
    dict_mark(ud, id);
}

/* Reclaim cycle: the remembered batches and the previous window keep their key columns
 * (dictionary ids; keymap ids are recomputed from the columns each time); panes and lambda
 * panes keep key ids (keymap ids, or dictionary ids for one str key) and lambda panes values.
 * The keymap's other ids only number one batch's keys: they are swept. */
static void win_mark(sp_stream *s, sp_dict *dict)
{
    win *w = s->state;
    for (size_t k = 0; k < w->nh; k++)
        batch_mark_ids(w->hb[k], dict);
    batch_mark_ids(w->prev, dict);
    keymap_mark_begin(s->km);
    void (*mark)(void *, uint32_t) = s->km ? win_mark_km : win_mark_dict;
    void *ud = s->km ? (void *)s->km : (void *)dict;
    int keyed = !(w->op == W_REDUCE || w->op == W_SCALAR_INV);
    panes_mark(w->pn, mark, ud);
    lpanes_mark(w->lp, keyed ? mark : NULL, ud, dict);
    keymap_sweep(s->km, NULL); /* out of memory: nothing freed this time */
}

static const stream_ops win_ops = {"window",    win_tick,    win_compute,
                                   win_destroy, win_explain, win_mark};

/* ----------------------------------------------------------------------- constructors */

/* Checks durations and makes the node (td is consumed). */
static sp_stream *win_new(sp_stream *p, const char *op, sp_td *td, int64_t W, int64_t S, win **wout)
{
    sp_context *ctx = p->ctx;
    int64_t B = p->slide_ms;
    if (S == 0) S = B;
    if (W <= 0 || S < 0 || W % B != 0 || S % B != 0) {
        td_free(&ctx->alloc, td);
        ctx_fail(ctx, SP_EINVAL,
                 "%s: the window duration (%lld ms) and the slide duration (%lld ms) must be "
                 "positive multiples of the parent stream's slide duration (%lld ms)",
                 op, (long long)W, (long long)S, (long long)B);
        return NULL;
    }
    win *w = mem_calloc(&ctx->alloc, 1, sizeof *w);
    if (!w) {
        td_free(&ctx->alloc, td);
        ctx_fail(ctx, SP_ENOMEM, "%s: out of memory", op);
        return NULL;
    }
    if (td) td_layout(td, 0);
    sp_stream *s = stream_new_ops(ctx, &win_ops, p, NULL, td, S);
    if (!s) {
        mem_free(&ctx->alloc, w);
        return NULL;
    }
    w->W = W;
    w->S = S;
    w->B = B;
    w->g = win_gcd(W, S);
    expr_scratch_init(&w->lsc, &ctx->alloc);
    s->state = w;
    *wout = w;
    return s;
}

static int win_compile(sp_stream *s, win *w)
{
    sp_context *ctx = s->ctx;
    const sp_td *v = w->op == W_SCALAR_INV || w->op == W_REDUCE ? s->td : s->td->child[1];
    sp_diag d;
    diag_clear(&d);
    if ((w->f && expr_compile(w->f, &ctx->alloc, v, v, &w->ft, &d)) ||
        (w->inv && expr_compile(w->inv, &ctx->alloc, v, v, &w->invt, &d)) ||
        (w->filter && expr_compile(w->filter, &ctx->alloc, s->td, NULL, &w->filt, &d))) {
        ctx_take(ctx, &d);
        return 0;
    }
    return 1;
}

static int win_need_pair(sp_stream *s, const char *op)
{
    if (s->td->kind == TD_TUPLE && s->td->n == 2 && td_is_flat(s->td->child[0])) return 1;
    ctx_fail(s->ctx, SP_ETYPE, "%s needs a stream of (key, value) pairs with scalar keys, got %s",
             op, s->type_str);
    return 0;
}

sp_stream *sp_stream_window(sp_stream *s, int64_t window_ms, int64_t slide_ms)
{
    if (!s) return NULL;
    win *w;
    sp_stream *o = win_new(s, "window", td_copy(&s->ctx->alloc, s->td), window_ms, slide_ms, &w);
    if (o) w->op = W_WINDOW;
    return o;
}

sp_stream *sp_stream_group_by_key_and_window(sp_stream *s, int64_t window_ms, int64_t slide_ms)
{
    if (!s || !win_need_pair(s, "groupByKeyAndWindow")) return NULL;
    const sp_allocator *a = &s->ctx->alloc;
    sp_td *t = td_tuple2(a, td_copy(a, s->td->child[0]), td_list(a, td_copy(a, s->td->child[1])));
    win *w;
    sp_stream *o = win_new(s, "groupByKeyAndWindow", t, window_ms, slide_ms, &w);
    if (o) w->op = W_GROUP;
    return o;
}

sp_stream *sp_stream_count_by_window(sp_stream *s, int64_t window_ms, int64_t slide_ms)
{
    if (!s) return NULL;
    sp_context *ctx = s->ctx;
    win *w;
    sp_stream *o =
        win_new(s, "countByWindow", td_leaf(&ctx->alloc, SP_I64), window_ms, slide_ms, &w);
    if (!o) return NULL;
    w->op = W_SCALAR_INV;
    w->count_scalar = 1;
    w->f = sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    w->inv = sp_expr_binop(ctx, SP_OP_SUB, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    return (w->f && w->inv && win_compile(o, w)) ? o : NULL;
}

sp_stream *sp_stream_reduce_by_window(sp_stream *s, sp_expr *f, sp_expr *inv, int64_t window_ms,
                                      int64_t slide_ms)
{
    if (!s || !f) return NULL;
    sp_context *ctx = s->ctx;
    if (!win_check_fold(ctx, f, s->td, "reduceByWindow") ||
        (inv && !win_check_fold(ctx, inv, s->td, "reduceByWindow (inverse)")))
        return NULL;
    win *w;
    sp_stream *o =
        win_new(s, "reduceByWindow", td_copy(&ctx->alloc, s->td), window_ms, slide_ms, &w);
    if (!o) return NULL;
    w->op = inv ? W_SCALAR_INV : W_REDUCE;
    w->f = f;
    w->inv = inv;
    o->expr = f;
    o->monoid = win_numeric(s->td) ? expr_match_monoid(f) : -1;
    w->lp_route = !inv && !ctx->cfg.naive_windows;
    return win_compile(o, w) ? o : NULL;
}

/* Chooses the panes route for keyed reductions where the aggregate is one the panes know. */
static void win_route(sp_stream *o, win *w, sp_agg agg, int inverse)
{
    const sp_td *v = o->parent[0]->td->kind == TD_TUPLE && o->parent[0]->td->n == 2
                         ? o->parent[0]->td->child[1]
                         : NULL;
    if (o->ctx->cfg.naive_windows) return;
    if (w->count_values) {
        w->vt = SP_I64;
    } else {
        if (!v || v->kind != TD_LEAF || v->leaf == SP_STR) return;
        w->vt = v->leaf;
        if (agg != SP_AGG_COUNT && !win_numeric(v)) return;
    }
    w->pagg = agg;
    w->mode = inverse                                    ? PANES_INVERSE
              : (agg == SP_AGG_MIN || agg == SP_AGG_MAX) ? PANES_TWO_STACKS
                                                         : PANES_INVERTIBLE;
    w->panes_route = 1;
}

sp_stream *sp_stream_reduce_by_key_and_window(sp_stream *s, sp_expr *f, sp_expr *inv,
                                              int64_t window_ms, int64_t slide_ms, sp_expr *filter)
{
    const char *op = "reduceByKeyAndWindow";
    if (!s || !f || !win_need_pair(s, op)) return NULL;
    sp_context *ctx = s->ctx;
    const sp_td *v = s->td->child[1];
    if (!win_check_fold(ctx, f, v, op) || (inv && !win_check_fold(ctx, inv, v, op))) return NULL;
    if (filter) {
        if (!inv) {
            ctx_fail(ctx, SP_EINVAL, "%s: a filter function needs an inverse function", op);
            return NULL;
        }
        sp_td *t = win_typecheck(ctx, filter, s->td, NULL, op);
        if (!t) return NULL;
        int ok = t->kind == TD_LEAF && t->leaf == SP_BOOL;
        td_free(&ctx->alloc, t);
        if (!ok) {
            ctx_fail(ctx, SP_ETYPE, "%s: the filter function must return bool", op);
            return NULL;
        }
    }
    win *w;
    sp_stream *o = win_new(s, op, td_copy(&ctx->alloc, s->td), window_ms, slide_ms, &w);
    if (!o) return NULL;
    w->op = inv ? W_KREDUCE_INV : W_KREDUCE;
    w->f = f;
    w->inv = inv;
    w->filter = filter;
    o->expr = f;
    o->monoid = win_numeric(v) ? expr_match_monoid(f) : -1;
    if (o->monoid >= 0 && (!inv || (o->monoid == SP_AGG_SUM && win_is_sub(inv))))
        win_route(o, w, (sp_agg)o->monoid, inv != NULL);
    w->lp_route = !w->panes_route && !inv && !ctx->cfg.naive_windows;
    return win_compile(o, w) ? o : NULL;
}

sp_stream *sp_stream_reduce_by_key_and_window_agg(sp_stream *s, sp_agg agg, int64_t window_ms,
                                                  int64_t slide_ms)
{
    const char *op = "reduceByKeyAndWindow";
    if (!s || !win_need_pair(s, op)) return NULL;
    sp_context *ctx = s->ctx;
    const sp_td *v = s->td->child[1];
    if (agg < SP_AGG_SUM || agg > SP_AGG_AVG) {
        ctx_fail(ctx, SP_EINVAL, "%s: unknown aggregate %d", op, (int)agg);
        return NULL;
    }
    if (agg != SP_AGG_COUNT && !win_numeric(v)) {
        ctx_fail(ctx, SP_ETYPE, "%s: a built-in aggregate needs numeric values, got %s", op,
                 s->type_str);
        return NULL;
    }
    sp_type acc = agg == SP_AGG_COUNT ? SP_I64
                  : agg == SP_AGG_AVG ? SP_F64
                                      : kagg_acc_type(agg, v->leaf);
    const sp_allocator *a = &ctx->alloc;
    sp_td *t = td_tuple2(a, td_copy(a, s->td->child[0]), td_leaf(a, acc));
    win *w;
    sp_stream *o = win_new(s, op, t, window_ms, slide_ms, &w);
    if (!o) return NULL;
    w->op = W_KREDUCE;
    w->use_agg = 1;
    o->agg = agg;
    win_route(o, w, agg, 0);
    return o;
}

sp_stream *sp_stream_count_by_value_and_window(sp_stream *s, int64_t window_ms, int64_t slide_ms)
{
    const char *op = "countByValueAndWindow";
    if (!s) return NULL;
    sp_context *ctx = s->ctx;
    if (!td_is_flat(s->td)) {
        ctx_fail(ctx, SP_EUNSUPPORTED, "%s: elements must be flat, got %s", op, s->type_str);
        return NULL;
    }
    const sp_allocator *a = &ctx->alloc;
    sp_td *t = td_tuple2(a, td_copy(a, s->td), td_leaf(a, SP_I64));
    win *w;
    sp_stream *o = win_new(s, op, t, window_ms, slide_ms, &w);
    if (!o) return NULL;
    w->op = W_KREDUCE_INV;
    w->count_values = 1;
    w->drop_zero = 1;
    w->f = sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    w->inv = sp_expr_binop(ctx, SP_OP_SUB, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    if (!w->f || !w->inv) return NULL;
    win_route(o, w, SP_AGG_COUNT, 1);
    return win_compile(o, w) ? o : NULL;
}
