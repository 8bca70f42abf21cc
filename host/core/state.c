/* state.c — updateStateByKey with Spark's semantics (StateDStream): at every batch time the
 * update function is called once for every key in the previous state or in the batch, with
 * the batch's values of the key (in arrival order, possibly none) and the previous state
 * (NULL if none); it emits the new state, or nothing to remove the key. The whole state is the
 * stream's batch at every time. An initial state (a JSON file of [key, state] pairs) is the
 * state before the first batch.
 *
 * The state lives in columnar form: the previous output batch (K, S), kept between batch
 * times. Cost per batch time: O((state keys + batch rows) log of the same) for the cogroup
 * (a sort of key ids) plus one callback per key. A lambda of the numeric shape
 * (state_expr.c) skips the cogroup and the callbacks: one generated kernel over all live keys,
 * O(state keys + batch rows). */
#include "core/state_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_state {
    sp_update_fn fn;
    void *ud;
    stx *x;          /* the lambda form (state_expr.c), or NULL */
    json_t *initial; /* parsed initial state, turned into `state` at the first batch time */
    sp_batch *state;
    uint32_t *ids;
    size_t ids_cap;
} st_state;

typedef struct st_ent {
    uint32_t id, src, row;
} st_ent;

static int st_cmp(const void *a, const void *b)
{
    const st_ent *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* ------------------------------------------------------------------------- initial state */

/* 1 when v fits the flat type t (numbers for numbers, strings, booleans, arrays for tuples). */
static int st_fits(const sp_td *t, json_t *v)
{
    if (t->kind == TD_TUPLE) {
        if (!json_is_array(v) || json_array_size(v) != (size_t)t->n) return 0;
        for (int i = 0; i < t->n; i++)
            if (!st_fits(t->child[i], json_array_get(v, (size_t)i))) return 0;
        return 1;
    }
    switch (t->leaf) {
    case SP_STR:
        return json_is_string(v);
    case SP_BOOL:
        return json_is_boolean(v);
    case SP_F32:
    case SP_F64:
        return json_is_number(v);
    default:
        return json_is_integer(v);
    }
}

static int st_push(sp_batch *b, const sp_td *t, json_t *v)
{
    if (t->kind == TD_TUPLE) {
        for (int i = 0; i < t->n; i++)
            if (st_push(b, t->child[i], json_array_get(v, (size_t)i))) return SP_ENOMEM;
        return SP_OK;
    }
    sp_col *c = &b->cols[t->col];
    switch (t->leaf) {
    case SP_STR: {
        uint32_t id = dict_intern(b->env->dict, json_string_value(v), json_string_length(v));
        return id == UINT32_MAX ? SP_ENOMEM : col_push_id(c, id);
    }
    case SP_BOOL:
        return col_push_i64(c, json_is_true(v));
    case SP_F32:
    case SP_F64:
        return col_push_f64(c, json_number_value(v));
    default:
        return col_push_i64(c, (int64_t)json_integer_value(v));
    }
}

static int st_initial_batch(sp_stream *s, st_state *st, int64_t t, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, t, &st->state, d);
    if (rc) return rc;
    size_t i;
    json_t *pair;
    json_array_foreach(st->initial, i, pair)
    {
        if (st_push(st->state, s->td, pair))
            return diag_set(d, SP_ENOMEM,
                            "updateStateByKey: out of memory loading the initial "
                            "state");
        st->state->n++;
    }
    return SP_OK;
}

/* -------------------------------------------------------------------------------- update */

static int st_key_ids(sp_stream *s, st_state *st, sp_batch *b, sp_diag *d)
{
    int nkey = s->nkey;
    size_t n = b->n;
    if (n > st->ids_cap) {
        uint32_t *p = mem_realloc(&s->ctx->alloc, st->ids, n * sizeof *p);
        if (!p) return diag_set(d, SP_ENOMEM, "updateStateByKey: key ids");
        st->ids = p;
        st->ids_cap = n;
    }
    for (int c = 0; c < nkey; c++)
        if (b->cols[c].enc == ENC_RAW && col_encode(&b->cols[c], s->ctx->dict, d))
            return d ? d->code : SP_ENOMEM;
    if (nkey == 1 && td_col_type(s->td, 0) == SP_STR) {
        if (n) memcpy(st->ids, b->cols[0].data, n * sizeof *st->ids);
        return SP_OK;
    }
    if (!s->km) {
        sp_type types[64];
        if (nkey > 64) return diag_set(d, SP_EUNSUPPORTED, "keys of more than 64 columns");
        for (int c = 0; c < nkey; c++)
            types[c] = td_col_type(s->td, c);
        if (keymap_new(&s->ctx->alloc, nkey, types, &s->km))
            return diag_set(d, SP_ENOMEM, "updateStateByKey: keymap");
    }
    const sp_col *cols[64];
    for (int c = 0; c < nkey; c++)
        cols[c] = &b->cols[c];
    return keymap_ids(s->km, cols, 0, n, st->ids, d);
}

/* The lambda's kernel path (state_expr.c): key ids of the state and of the batch. */
static int st_kernel(sp_stream *s, st_state *st, int64_t t, sp_batch *b, sp_batch **out, sp_diag *d)
{
    size_t n0 = st->state ? st->state->n : 0;
    uint32_t *pids = mem_alloc(&s->ctx->alloc, (n0 ? n0 : 1) * sizeof *pids);
    if (!pids) return diag_set(d, SP_ENOMEM, "updateStateByKey: key ids");
    int rc = n0 ? st_key_ids(s, st, st->state, d) : SP_OK;
    if (!rc && n0) memcpy(pids, st->ids, n0 * sizeof *pids);
    if (!rc) rc = st_key_ids(s, st, b, d);
    if (!rc) rc = stx_run(s, st->x, t, st->state, pids, b, st->ids, out, d);
    mem_free(&s->ctx->alloc, pids);
    if (rc) return rc;
    batch_release(st->state);
    st->state = batch_retain(*out);
    return SP_OK;
}

static int st_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d)
{
    st_state *st = s->state;
    sp_context *ctx = s->ctx;
    const sp_allocator *al = &ctx->alloc;
    int nkey = s->nkey;
    int rc = SP_OK;
    if (st->initial) {
        rc = st_initial_batch(s, st, t, d);
        json_decref(st->initial);
        st->initial = NULL;
        if (rc) return rc;
    }
    sp_batch *b = NULL, *src[2] = {st->state, NULL};
    if ((rc = stream_compute(s->parent[0], t, &b, d))) return rc;
    src[1] = b;
    if (st->x && stx_kernel(st->x)) {
        rc = st_kernel(s, st, t, b, out, d);
        batch_release(b);
        return rc;
    }
    size_t total = (st->state ? st->state->n : 0) + b->n, ne = 0;
    st_ent *e = mem_alloc(al, (total ? total : 1) * sizeof *e);
    const sp_row **vals = mem_alloc(al, (b->n ? b->n : 1) * sizeof *vals);
    sp_row *vrows = mem_alloc(al, (b->n ? b->n : 1) * sizeof *vrows);
    if (!e || !vals || !vrows) rc = diag_set(d, SP_ENOMEM, "updateStateByKey: cogroup");
    for (int k = 0; k < 2 && !rc; k++) {
        if (!src[k]) continue;
        if ((rc = st_key_ids(s, st, src[k], d))) break;
        for (size_t i = 0; i < src[k]->n; i++)
            e[ne++] = (st_ent){st->ids[i], (uint32_t)k, (uint32_t)i};
    }
    if (!rc) qsort(e, ne, sizeof *e, st_cmp);
    if (!rc) rc = batch_new(&ctx->env, s->td, t, out, d);
    sp_emitter em;
    if (!rc) emitter_init(&em, *out, nkey);
    for (size_t i = 0; !rc && i < ne;) {
        size_t j = i;
        while (j < ne && e[j].id == e[i].id)
            j++;
        const sp_batch *kb = src[e[i].src];
        sp_row key = {kb, e[i].row, 0};
        sp_row prev = {st->state, e[i].row, nkey};
        const sp_row *state = e[i].src == 0 ? &prev : NULL;
        size_t nv = 0;
        for (size_t k = i; k < j; k++)
            if (e[k].src == 1) {
                vrows[nv] = (sp_row){b, e[k].row, nkey};
                vals[nv] = &vrows[nv];
                nv++;
            }
        size_t before = (*out)->n;
        int urc = st->fn(st->ud, t, &key, vals, nv, state, &em);
        if (urc && st->x && stx_error(st->x, d)) {
            rc = d->code;
            break;
        }
        if (urc || em.err) {
            rc = diag_set(d, SP_ECALLBACK, "updateStateByKey callback (stream %d) failed with %d",
                          s->id, urc ? urc : em.err);
            break;
        }
        size_t made = (*out)->n - before;
        if (made > 1) {
            rc = diag_set(d, SP_ECALLBACK,
                          "updateStateByKey callback (stream %d) emitted %zu states for one key",
                          s->id, made);
            break;
        }
        for (int c = 0; made && c < nkey && !rc; c++)
            if (col_push_from(&(*out)->cols[c], &kb->cols[c], ctx->dict, e[i].row))
                rc = diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
        i = j;
    }
    mem_free(al, e);
    mem_free(al, vals);
    mem_free(al, vrows);
    batch_release(b);
    if (rc) {
        batch_release(*out);
        *out = NULL;
        return rc;
    }
    batch_release(st->state);
    st->state = batch_retain(*out);
    return SP_OK;
}

static int st_tick(sp_stream *s, int64_t t, sp_diag *d)
{
    if (!stream_time_valid(s, t) || s->consumers == 0) return SP_OK;
    sp_batch *o = NULL;
    int rc = stream_compute(s, t, &o, d);
    batch_release(o);
    return rc;
}

static void st_destroy(sp_stream *s)
{
    st_state *st = s->state;
    if (!st) return;
    if (st->initial) json_decref(st->initial);
    stx_free(st->x);
    batch_release(st->state);
    mem_free(&s->ctx->alloc, st->ids);
    mem_free(&s->ctx->alloc, st);
    s->state = NULL;
}

static void st_explain(const sp_stream *s, strbuf *sb)
{
    const st_state *st = s->state;
    if (st->x)
        stx_explain(st->x, s->id, sb);
    else
        sb_adds(sb, "per-key state in columns, update callback on the driver for every key");
}

void state_attach_expr(sp_stream *o, stx *x)
{
    st_state *st = o->state;
    st->x = x;
}

/* Reclaim cycle: the state batch keeps its key and state columns; the keymap numbers one
 * batch time's keys only (st_key_ids renumbers the state every time), so it is emptied. */
static void st_mark(sp_stream *s, sp_dict *dict)
{
    st_state *st = s->state;
    batch_mark_ids(st->state, dict);
    keymap_clear(s->km);
}

static const stream_ops st_ops = {"updateStateByKey", st_tick,    st_compute,
                                  st_destroy,         st_explain, st_mark};

sp_stream *sp_stream_update_state_by_key(sp_stream *s, const char *state_type, sp_update_fn fn,
                                         void *ud, const char *initial_path)
{
    const char *op = "updateStateByKey";
    if (!s || !fn) return NULL;
    sp_context *ctx = s->ctx;
    const sp_allocator *a = &ctx->alloc;
    if (!(s->td->kind == TD_TUPLE && s->td->n == 2 && td_is_flat(s->td->child[0]))) {
        ctx_fail(ctx, SP_ETYPE, "%s needs a stream of (key, value) pairs with scalar keys, got %s",
                 op, s->type_str);
        return NULL;
    }
    if (!state_type) {
        ctx_fail(ctx, SP_EINVAL, "%s: a state type is required", op);
        return NULL;
    }
    sp_diag d;
    diag_clear(&d);
    sp_td *stt = NULL;
    if (td_parse(a, state_type, &stt, &d)) {
        diag_prefix(&d, "%s", op);
        ctx_take(ctx, &d);
        return NULL;
    }
    if (!td_is_flat(stt)) {
        td_free(a, stt);
        ctx_fail(ctx, SP_EUNSUPPORTED, "%s: the state type must be flat (scalars, tuples)", op);
        return NULL;
    }
    sp_td *td = td_tuple2(a, td_copy(a, s->td->child[0]), stt);
    if (td) td_layout(td, 0);
    json_t *init = NULL;
    if (initial_path) {
        json_error_t je;
        init = json_load_file(initial_path, 0, &je);
        if (!init) {
            td_free(a, td);
            ctx_fail(ctx, SP_EPARSE, "%s: initial state %s:%d:%d: %s", op, initial_path, je.line,
                     je.column, je.text);
            return NULL;
        }
        size_t i;
        json_t *pair;
        int ok = json_is_array(init);
        if (ok) json_array_foreach(init, i, pair) if (!td || !st_fits(td, pair))
            {
                ok = 0;
                break;
            }
        if (!ok) {
            json_decref(init);
            td_free(a, td);
            ctx_fail(ctx, SP_EPARSE,
                     "%s: initial state %s must be one JSON array of [key, state] pairs of "
                     "type %s",
                     op, initial_path, state_type);
            return NULL;
        }
    }
    st_state *st = mem_calloc(a, 1, sizeof *st);
    if (!st) {
        if (init) json_decref(init);
        td_free(a, td);
        ctx_fail(ctx, SP_ENOMEM, "%s: out of memory", op);
        return NULL;
    }
    sp_stream *o = stream_new_ops(ctx, &st_ops, s, NULL, td, 0);
    if (!o) {
        if (init) json_decref(init);
        mem_free(a, st);
        return NULL;
    }
    st->fn = fn;
    st->ud = ud;
    st->initial = init;
    o->state = st;
    return o;
}
