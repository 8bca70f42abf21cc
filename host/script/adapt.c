/* adapt.c — host adapters running script lambdas as public-API callbacks. */
#include "script/adapt_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { ADAPT_SCRATCH = 32 };

struct adapter {
    const sp_allocator *a;
    adapt_kind kind;
    sp_td *in;                  /* element (flatMap, sort, take) or value (flatMapValues) type */
    sp_td *key, *state;         /* updateStateByKey: key type, state type S */
    sp_td *time, *vlist, *sopt; /* updateStateByKey parameter types */
    int nparams;
    expr_typed *t; /* the lambda (flatMap, sortBy), or NULL */
    char *out_type;
    int ascending;
    int64_t n;
    atomic_int busy[ADAPT_SCRATCH];
    expr_scratch scratch[ADAPT_SCRATCH];
    /* the first runtime error, for the report after the run */
    pthread_mutex_t mu;
    sp_diag err;
    /* --on-error skip */
    int skip;
    sp_context *ctx; /* rejects output when skipping */
};

void adapt_free(adapter *ad)
{
    if (!ad) return;
    for (int i = 0; i < ADAPT_SCRATCH; i++)
        expr_scratch_free(&ad->scratch[i]);
    expr_typed_free(ad->a, ad->t);
    td_free(ad->a, ad->in);
    td_free(ad->a, ad->key);
    td_free(ad->a, ad->state);
    td_free(ad->a, ad->time);
    td_free(ad->a, ad->vlist);
    td_free(ad->a, ad->sopt);
    mem_free(ad->a, ad->out_type);
    pthread_mutex_destroy(&ad->mu);
    mem_free(ad->a, ad);
}

static adapter *adapt_alloc(const sp_allocator *a, adapt_kind kind, const sp_td *in)
{
    adapter *ad = mem_calloc(a, 1, sizeof *ad);
    if (!ad) return NULL;
    ad->a = a;
    ad->kind = kind;
    pthread_mutex_init(&ad->mu, NULL);
    for (int i = 0; i < ADAPT_SCRATCH; i++) {
        atomic_init(&ad->busy[i], 0);
        expr_scratch_init(&ad->scratch[i], a);
    }
    ad->in = td_copy(a, in);
    if (!ad->in) {
        adapt_free(ad);
        return NULL;
    }
    td_layout(ad->in, 0);
    return ad;
}

void adapt_set_skip(adapter *ad, int skip, sp_context *ctx)
{
    ad->skip = skip;
    ad->ctx = ctx;
}

const char *adapt_error(const adapter *ad)
{
    return ad->err.code ? ad->err.msg : NULL;
}

int adapt_flat_map_new(const sp_allocator *a, adapt_kind kind, const sp_expr *body, const sp_td *in,
                       adapter **out, const char **out_type, sp_diag *d)
{
    *out = NULL;
    adapter *ad = adapt_alloc(a, kind, in);
    if (!ad) return diag_set(d, SP_ENOMEM, "flatMap: out of memory");
    int rc = expr_compile(body, a, ad->in, NULL, &ad->t, d);
    if (rc) goto fail;
    const sp_td *r = ad->t->td;
    if (r->kind != TD_LIST && r->kind != TD_OPTION) {
        strbuf sb;
        sb_init(&sb, a);
        td_format(r, &sb);
        rc = diag_set(d, SP_ETYPE, "%d:%d: flatMap needs a Seq or an Option, the lambda gives %s",
                      body->line, body->col, sb.len ? sb.s : "?");
        sb_free(&sb);
        goto fail;
    }
    if (expr_is_nothing(r->child[0]) || !td_is_flat(r->child[0])) {
        rc =
            diag_set(d, SP_ETYPE, "%d:%d: flatMap: the elements must be values or tuples of values",
                     body->line, body->col);
        goto fail;
    }
    strbuf sb;
    sb_init(&sb, a);
    td_format(r->child[0], &sb);
    if (sb.oom) {
        sb_free(&sb);
        rc = diag_set(d, SP_ENOMEM, "flatMap: out of memory");
        goto fail;
    }
    ad->out_type = sb.s;
    *out_type = ad->out_type;
    *out = ad;
    return SP_OK;
fail:
    adapt_free(ad);
    return rc;
}

int adapt_batch_new(const sp_allocator *a, adapt_kind kind, const sp_expr *key, int ascending,
                    int64_t n, const sp_td *in, adapter **out, sp_diag *d)
{
    *out = NULL;
    adapter *ad = adapt_alloc(a, kind, in);
    if (!ad) return diag_set(d, SP_ENOMEM, "transform: out of memory");
    ad->ascending = ascending;
    ad->n = n;
    int rc = SP_OK;
    if (!td_is_flat(ad->in)) {
        rc = diag_set(d, SP_EUNSUPPORTED, "sorting and take need values or tuples of values");
        goto fail;
    }
    if (key && (rc = expr_compile(key, a, ad->in, NULL, &ad->t, d))) goto fail;
    if (kind == AD_SORT && !key && (ad->in->kind != TD_TUPLE || ad->in->n != 2)) {
        rc = diag_set(d, SP_ETYPE, "sortByKey needs (key, value) pairs");
        goto fail;
    }
    strbuf sb;
    sb_init(&sb, a);
    td_format(ad->in, &sb);
    ad->out_type = sb.s;
    if (sb.oom || !sb.s) {
        rc = diag_set(d, SP_ENOMEM, "transform: out of memory");
        goto fail;
    }
    *out = ad;
    return SP_OK;
fail:
    adapt_free(ad);
    return rc;
}

/* ------------------------------------------------------------------------- flatMap rows */

static int grab(adapter *ad, expr_scratch **s, expr_scratch *own)
{
    for (int i = 0; i < ADAPT_SCRATCH; i++) {
        int z = 0;
        if (atomic_compare_exchange_strong(&ad->busy[i], &z, 1)) {
            *s = &ad->scratch[i];
            return i;
        }
    }
    expr_scratch_init(own, ad->a);
    *s = own;
    return -1;
}

static void release(adapter *ad, int slot, expr_scratch *s)
{
    if (slot < 0) {
        expr_scratch_free(s);
        return;
    }
    expr_scratch_reset(s);
    atomic_store(&ad->busy[slot], 0);
}

static void record(adapter *ad, const sp_diag *d)
{
    pthread_mutex_lock(&ad->mu);
    if (!ad->err.code) ad->err = *d;
    pthread_mutex_unlock(&ad->mu);
}

static void reject(adapter *ad, const expr_val *v, const sp_diag *d)
{
    if (!ad->ctx) return;
    int rc = v->t == SP_STR
                 ? sp_context_reject(ad->ctx, "flatMap", -1, d->msg, v->u.s.p, v->u.s.len)
                 : sp_context_reject(ad->ctx, "flatMap", -1, d->msg, "(row)", 5);
    if (rc) {
        sp_diag e;
        diag_set(&e, rc, "%s", sp_context_errmsg(ad->ctx));
        record(ad, &e);
    }
}

int adapt_flat_map_fn(void *ud, const sp_row *in, sp_emitter *out)
{
    adapter *ad = ud;
    expr_scratch own, *s;
    int slot = grab(ad, &s, &own);
    sp_diag d;
    diag_clear(&d);
    expr_val v, r;
    int rc = expr_val_load(in->b, ad->in, in->first, in->i, s, &v);
    if (rc) {
        diag_set(&d, rc, "flatMap: cannot read row %zu", in->i);
        record(ad, &d);
        goto out;
    }
    rc = expr_eval(ad->t, &v, s, &r, &d);
    if (rc == SP_ERUNTIME && ad->skip) {
        reject(ad, &v, &d);
        rc = SP_OK;
        goto out;
    }
    if (rc) {
        record(ad, &d);
        goto out;
    }
    for (int k = 0; k < r.n && !rc; k++) {
        if (ad->kind == AD_FLAT_MAP_VALUES) {
            /* the key columns come first; the emitter starts at the value */
        }
        rc = expr_val_emit(&r.u.items[k], out);
        if (!rc) rc = sp_emit_end(out);
    }
    if (rc) {
        diag_set(&d, rc, "flatMap: cannot emit an element");
        record(ad, &d);
    }
out:
    release(ad, slot, s);
    return rc;
}

/* ------------------------------------------------------------------------ whole batches */

typedef struct sort_ctx {
    adapter *ad;
    expr_val *keys;
} sort_ctx;

static int val_cmp(const expr_val *x, const expr_val *y)
{
    if (x->t >= SP_TYPE_COUNT) {
        for (int i = 0; i < x->n && i < y->n; i++) {
            int c = val_cmp(&x->u.items[i], &y->u.items[i]);
            if (c) return c;
        }
        return (x->n > y->n) - (x->n < y->n);
    }
    if (x->t == SP_STR) {
        size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
        int r = n ? memcmp(x->u.s.p, y->u.s.p, n) : 0;
        if (r) return r < 0 ? -1 : 1;
        return (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
    }
    if (x->t == SP_F32 || x->t == SP_F64) {
        double a = x->u.f, b = y->t == SP_F32 || y->t == SP_F64 ? y->u.f : (double)y->u.i;
        return (a > b) - (a < b);
    }
    return (x->u.i > y->u.i) - (x->u.i < y->u.i);
}

/* Stable merge sort of row indices by keys. */
static void msort(size_t *idx, size_t *tmp, size_t n, const expr_val *keys, int asc)
{
    if (n < 2) return;
    size_t h = n / 2;
    msort(idx, tmp, h, keys, asc);
    msort(idx + h, tmp, n - h, keys, asc);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c = val_cmp(&keys[idx[j]], &keys[idx[i]]);
        if (asc ? c < 0 : c > 0)
            tmp[k++] = idx[j++];
        else
            tmp[k++] = idx[i++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

int adapt_transform_fn(void *ud, const sp_batch *in, sp_emitter *out)
{
    adapter *ad = ud;
    size_t n = in->n, m = n;
    size_t *idx = mem_calloc(ad->a, n ? n : 1, sizeof *idx);
    size_t *tmp = mem_calloc(ad->a, n ? n : 1, sizeof *tmp);
    expr_val *keys = ad->kind == AD_SORT ? mem_calloc(ad->a, n ? n : 1, sizeof *keys) : NULL;
    expr_scratch s;
    expr_scratch_init(&s, ad->a);
    sp_diag d;
    diag_clear(&d);
    int rc = SP_OK;
    if (!idx || !tmp || (ad->kind == AD_SORT && !keys)) {
        rc = diag_set(&d, SP_ENOMEM, "transform: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (ad->kind == AD_SORT) {
        for (size_t i = 0; i < n && !rc; i++) {
            expr_val v;
            if ((rc = expr_val_load(in, ad->in, 0, i, &s, &v))) {
                diag_set(&d, rc, "sort: cannot read row %zu", i);
                break;
            }
            if (ad->t)
                rc = expr_eval(ad->t, &v, &s, &keys[i], &d);
            else
                keys[i] = v.u.items[0];
        }
        if (rc) goto out;
        msort(idx, tmp, n, keys, ad->ascending);
    } else if ((int64_t)m > ad->n) {
        m = ad->n < 0 ? 0 : (size_t)ad->n;
    }
    for (size_t k = 0; k < m && !rc; k++) {
        expr_val v;
        expr_scratch row;
        expr_scratch_init(&row, ad->a);
        rc = expr_val_load(in, ad->in, 0, idx[k], &row, &v);
        if (!rc) rc = expr_val_emit(&v, out);
        if (!rc) rc = sp_emit_end(out);
        expr_scratch_free(&row);
        if (rc) diag_set(&d, rc, "transform: cannot copy row %zu", idx[k]);
    }
out:
    if (rc) record(ad, &d);
    expr_scratch_free(&s);
    mem_free(ad->a, idx);
    mem_free(ad->a, tmp);
    mem_free(ad->a, keys);
    return rc;
}

/* ---------------------------------------------------------------------- updateStateByKey */

static int upd_types(adapter *ad, const sp_td *st, sp_diag *d)
{
    td_free(ad->a, ad->sopt);
    sp_td *c = st ? td_copy(ad->a, st) : NULL;
    if (!c) {
        /* Option[nothing]: the empty tuple marker of expr.c, made from a copy of one. */
        sp_td *none = NULL;
        sp_diag d2;
        expr_typed *t = NULL;
        sp_expr probe = {.kind = EX_CALL, .s = "None", .n = 0};
        if (expr_compile(&probe, ad->a, NULL, NULL, &t, &d2)) return d2.code;
        none = td_copy(ad->a, t->td);
        expr_typed_free(ad->a, t);
        ad->sopt = none;
        return none ? SP_OK : diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
    }
    ad->sopt = td_option(ad->a, c);
    if (ad->sopt) td_layout(ad->sopt, 0);
    return ad->sopt ? SP_OK : diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
}

static int upd_compile(adapter *ad, const sp_expr *f, sp_diag *d)
{
    const sp_td *args[4];
    int n = 0;
    if (ad->nparams == 4) {
        args[n++] = ad->time;
        args[n++] = ad->key;
    }
    args[n++] = ad->vlist;
    args[n++] = ad->sopt;
    expr_typed_free(ad->a, ad->t);
    ad->t = NULL;
    return expr_compile_n(f, ad->a, n, args, &ad->t, d);
}

int adapt_update_new(const sp_allocator *a, const sp_expr *f, int nparams, const sp_td *kt,
                     const sp_td *vt, adapter **out, const char **state_type, sp_diag *d)
{
    *out = NULL;
    adapter *ad = adapt_alloc(a, AD_UPDATE, vt);
    if (!ad) return diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
    ad->nparams = nparams;
    ad->key = td_copy(a, kt);
    sp_td *vc = td_copy(a, vt);
    ad->vlist = vc ? td_list(a, vc) : NULL;
    ad->time = td_leaf(a, SP_TS);
    int rc = SP_OK;
    if (!ad->key || !ad->vlist || !ad->time) {
        rc = diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
        goto fail;
    }
    td_layout(ad->key, 0);
    td_layout(ad->vlist, 0);
    if ((rc = upd_types(ad, NULL, d)) || (rc = upd_compile(ad, f, d))) goto fail;
    const sp_td *r = ad->t->td;
    if (r->kind != TD_OPTION || expr_is_nothing(r->child[0])) {
        rc = diag_set(d, SP_ETYPE,
                      "%d:%d: updateStateByKey: the function must give Some(state) or None "
                      "with a known state type",
                      f->line, f->col);
        goto fail;
    }
    if (!td_is_flat(r->child[0])) {
        rc = diag_set(d, SP_ETYPE, "%d:%d: updateStateByKey: the state must be values or tuples",
                      f->line, f->col);
        goto fail;
    }
    ad->state = td_copy(a, r->child[0]);
    if (!ad->state) {
        rc = diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
        goto fail;
    }
    td_layout(ad->state, 0);
    if ((rc = upd_types(ad, ad->state, d)) || (rc = upd_compile(ad, f, d))) goto fail;
    if (!td_equal(ad->t->td, ad->sopt)) {
        rc = diag_set(d, SP_ETYPE,
                      "%d:%d: updateStateByKey: the new state's type differs from "
                      "the previous state's",
                      f->line, f->col);
        goto fail;
    }
    strbuf sb;
    sb_init(&sb, a);
    td_format(ad->state, &sb);
    if (sb.oom || !sb.s) {
        sb_free(&sb);
        rc = diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
        goto fail;
    }
    ad->out_type = sb.s;
    *state_type = ad->out_type;
    *out = ad;
    return SP_OK;
fail:
    adapt_free(ad);
    return rc;
}

