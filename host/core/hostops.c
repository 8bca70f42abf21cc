/* hostops.c — per-batch operators that run on the host: flatMap callbacks on the executors,
 * union, count, reduce, keyed operators that are not built-in aggregates (grouping by keymap
 * ids), joins and cogroup, transform. Built-in keyed aggregates go to the device through
 * keyed_aggregate. Output row order is deterministic: input order, keys in first-seen order. */
#include "core/core_int.h"

#include <string.h>

/* ------------------------------------------------------------------------- value copying */

static int push_offset(sp_col *off, int64_t end)
{
    if (off->len == 0 && col_push_i64(off, 0)) return SP_ENOMEM;
    return col_push_i64(off, end);
}

static int64_t last_offset(const sp_col *off)
{
    return off->len ? col_get_i64(off, off->len - 1) : 0;
}

/** Appends a default value of subtree dn (zero, "", None, empty list): the filler under None. */
static int push_default(sp_batch *dst, const sp_td *dn)
{
    sp_col *c = &dst->cols[dn->col];
    switch (dn->kind) {
    case TD_LEAF:
        if (dn->leaf == SP_STR)
            return c->enc == ENC_RAW ? col_push_text(c, "", 0)
                                     : col_push_id(c, dict_intern(dst->env->dict, "", 0));
        if (dn->leaf == SP_F32 || dn->leaf == SP_F64) return col_push_f64(c, 0.0);
        return col_push_i64(c, 0);
    case TD_TUPLE:
        for (int i = 0; i < dn->n; i++)
            if (push_default(dst, dn->child[i])) return SP_ENOMEM;
        return SP_OK;
    case TD_OPTION:
        if (col_push_i64(c, 0)) return SP_ENOMEM;
        return push_default(dst, dn->child[0]);
    case TD_LIST:
        return push_offset(c, last_offset(c));
    }
    return SP_EINVAL;
}

/** Appends the value of subtree sn at element `row` of src as subtree dn of dst (same shape). */
static int value_append(sp_batch *dst, const sp_td *dn, const sp_batch *src, const sp_td *sn,
                        size_t row)
{
    sp_col *c = &dst->cols[dn->col];
    const sp_col *sc = &src->cols[sn->col];
    switch (dn->kind) {
    case TD_LEAF:
        return col_push_from(c, sc, src->env->dict, row);
    case TD_TUPLE:
        for (int i = 0; i < dn->n; i++)
            if (value_append(dst, dn->child[i], src, sn->child[i], row)) return SP_ENOMEM;
        return SP_OK;
    case TD_OPTION: {
        int64_t some = col_get_i64(sc, row);
        if (col_push_i64(c, some)) return SP_ENOMEM;
        return some ? value_append(dst, dn->child[0], src, sn->child[0], row)
                    : push_default(dst, dn->child[0]);
    }
    case TD_LIST: {
        int64_t b = col_get_i64(sc, row), e = col_get_i64(sc, row + 1);
        for (int64_t j = b; j < e; j++)
            if (value_append(dst, dn->child[0], src, sn->child[0], (size_t)j)) return SP_ENOMEM;
        return push_offset(c, last_offset(c) + (e - b));
    }
    }
    return SP_EINVAL;
}

static int option_some(sp_batch *dst, const sp_td *dn, const sp_batch *src, const sp_td *sn,
                       size_t row)
{
    if (col_push_i64(&dst->cols[dn->col], 1)) return SP_ENOMEM;
    return value_append(dst, dn->child[0], src, sn, row);
}

static int option_none(sp_batch *dst, const sp_td *dn)
{
    return push_default(dst, dn);
}

/** Appends a list (subtree dn, TD_LIST) holding the values sn of rows[0..n) of src. */
static int list_of(sp_batch *dst, const sp_td *dn, const sp_batch *src, const sp_td *sn,
                   const size_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (value_append(dst, dn->child[0], src, sn, rows[i])) return SP_ENOMEM;
    sp_col *off = &dst->cols[dn->col];
    return push_offset(off, last_offset(off) + (int64_t)n);
}

/** Rows were added by bumping b->n directly: one partition covering them all. */
static int rows_done(sp_batch *b)
{
    size_t start[2] = {0, b->n};
    return batch_set_parts(b, 1, start, NULL);
}

static int oom(sp_diag *d, const sp_stream *s)
{
    return diag_set(d, SP_ENOMEM, "out of memory in stream %d (%s)", s->id, s->type_str);
}

/* -------------------------------------------------------------------------------- flatMap */

typedef struct fm_job {
    sp_stream *s;
    const sp_batch *in;
    sp_batch **parts;
    int *errs;
} fm_job;

static int fm_task(void *ud, size_t p, unsigned worker)
{
    fm_job *j = ud;
    sp_stream *s = j->s;
    const sp_batch *in = j->in;
    /* The partition's output lives in its executor's NUMA node. */
    if (batch_new_on(&s->ctx->env, s->td, in->time_ms, exec_node(s->ctx->exec, worker),
                     &j->parts[p], NULL))
        return SP_ENOMEM;
    sp_batch *o = j->parts[p];
    int vfirst = s->kind == N_FLAT_MAP_VALUES ? s->nkey : 0;
    sp_emitter em;
    emitter_init(&em, o, vfirst);
    sp_row row = {in, 0, vfirst};
    size_t lo, hi;
    batch_part_range(in, (unsigned)p, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        row.i = i;
        size_t before = o->n;
        int rc = s->fm_fn(s->ud, &row, &em);
        if (rc || em.err) {
            j->errs[p] = rc ? rc : em.err;
            return SP_ECALLBACK;
        }
        for (size_t r = before; r < o->n && vfirst; r++)
            for (int c = 0; c < vfirst; c++)
                if (col_push_from(&o->cols[c], &in->cols[c], in->env->dict, i)) return SP_ENOMEM;
    }
    return SP_OK;
}

int hostop_flat_map(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    unsigned np = in->nparts ? in->nparts : 1;
    sp_batch **parts = mem_calloc(&s->ctx->alloc, np, sizeof *parts);
    int *errs = mem_calloc(&s->ctx->alloc, np, sizeof *errs);
    size_t *start = mem_calloc(&s->ctx->alloc, np + 1, sizeof *start);
    int rc = SP_OK;
    if (!parts || !errs || !start) {
        rc = oom(d, s);
        goto out;
    }
    fm_job j = {s, in, parts, errs};
    rc = exec_run(s->ctx->exec, np, in->part_node, fm_task, &j);
    if (rc) {
        int ue = 0;
        for (unsigned p = 0; p < np && !ue; p++)
            ue = errs[p];
        if (rc == SP_ECALLBACK && ue)
            rc = diag_set(d, SP_ECALLBACK, "%s callback (stream %d) failed with %d",
                          s->kind == N_FLAT_MAP ? "flatMap" : "flatMapValues", s->id, ue);
        else
            rc = oom(d, s);
        goto out;
    }
    if ((rc = batch_new(&s->ctx->env, s->td, in->time_ms, out, d))) goto out;
    for (unsigned p = 0; p < np; p++) {
        start[p] = (*out)->n;
        if ((rc = batch_append(*out, parts[p], d))) goto out;
    }
    start[np] = (*out)->n;
    if (batch_set_parts(*out, np, start, in->part_node)) rc = oom(d, s);
out:
    if (rc && out && *out) {
        batch_release(*out);
        *out = NULL;
    }
    for (unsigned p = 0; parts && p < np; p++)
        batch_release(parts[p]);
    mem_free(&s->ctx->alloc, parts);
    mem_free(&s->ctx->alloc, errs);
    mem_free(&s->ctx->alloc, start);
    return rc;
}

/* ------------------------------------------------------------------ union, count, transform */

int hostop_union(sp_stream *s, const sp_batch *a, const sp_batch *b, sp_batch **out, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, a->time_ms, out, d);
    if (!rc) rc = batch_append(*out, a, d);
    if (!rc) rc = batch_append(*out, b, d);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

int hostop_count(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, in->time_ms, out, d);
    if (rc) return rc;
    sp_emitter em;
    emitter_init(&em, *out, 0);
    if (sp_emit_i64(&em, (int64_t)in->n) || sp_emit_end(&em)) {
        batch_release(*out);
        *out = NULL;
        return oom(d, s);
    }
    return SP_OK;
}

int hostop_transform(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, in->time_ms, out, d);
    if (rc) return rc;
    sp_emitter em;
    emitter_init(&em, *out, 0);
    rc = s->tr_fn(s->ud, in, &em);
    if (rc || em.err) {
        batch_release(*out);
        *out = NULL;
        return diag_set(d, SP_ECALLBACK, "transform callback (stream %d) failed with %d", s->id,
                        rc ? rc : em.err);
    }
    return SP_OK;
}

/* ------------------------------------------------------------------------------------ reduce */

static int push_cast(sp_col *c, sp_type to, sp_type acc_t, const void *acc)
{
    if (acc_t == SP_F64) {
        double v = *(const double *)acc;
        return (to == SP_F32 || to == SP_F64) ? col_push_f64(c, v) : col_push_i64(c, (int64_t)v);
    }
    int64_t v = *(const int64_t *)acc;
    if (to == SP_I32) /* Scala Int arithmetic wraps */
        v = (int32_t)(uint32_t)(uint64_t)v;
    return (to == SP_F32 || to == SP_F64) ? col_push_f64(c, (double)v) : col_push_i64(c, v);
}

static size_t *iota(const sp_allocator *a, size_t n)
{
    size_t *r = mem_alloc(a, (n ? n : 1) * sizeof *r);
    for (size_t i = 0; r && i < n; i++)
        r[i] = i;
    return r;
}

int hostop_reduce(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    int rc = batch_new(&s->ctx->env, s->td, in->time_ms, out, d);
    if (rc || in->n == 0) /* reduce of an empty batch gives nothing */
        return rc;
    const sp_td *t = s->td;
    if (s->monoid >= 0 && t->kind == TD_LEAF && t->leaf != SP_STR && t->leaf != SP_BOOL) {
        union {
            int64_t i;
            double f;
        } acc;
        sp_type at = kagg_acc_type((sp_agg)s->monoid, t->leaf);
        rc = kreduce_all(s->ctx->dev, in->cols[0].data, t->leaf, in->n, (sp_agg)s->monoid, &acc, d);
        if (!rc && push_cast(&(*out)->cols[0], t->leaf, at, &acc)) rc = oom(d, s);
        if (!rc) (*out)->n = 1;
        if (!rc && rows_done(*out)) rc = oom(d, s);
    } else {
        size_t *rows = iota(&s->ctx->alloc, in->n);
        sp_emitter em;
        emitter_init(&em, *out, 0);
        rc = rows ? expr_fold(s->expr, &s->ctx->alloc, in, in->td, 0, rows, in->n, &em, d)
                  : oom(d, s);
        if (!rc && sp_emit_end(&em)) rc = oom(d, s);
        mem_free(&s->ctx->alloc, rows);
    }
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------------- keyed grouping */

/** Dictionary-encodes raw string columns among the first ncols of b in place (same strings,
 *  so consumers of the memoised batch see the same values). */
static int encode_keys(sp_batch *b, int ncols, sp_diag *d)
{
    for (int c = 0; c < ncols; c++)
        if (b->cols[c].enc == ENC_RAW && col_encode(&b->cols[c], b->env->dict, d))
            return d ? d->code : SP_ENOMEM;
    return SP_OK;
}

static int ensure_keymap(sp_stream *s, int nkey, const sp_td *td, sp_diag *d)
{
    if (s->km) return SP_OK;
    sp_type types[64];
    if (nkey > 64) return diag_set(d, SP_EUNSUPPORTED, "keys of more than 64 columns");
    for (int c = 0; c < nkey; c++)
        types[c] = td_col_type(td, c);
    if (keymap_new(&s->ctx->alloc, nkey, types, &s->km)) return oom(d, s);
    return SP_OK;
}

/** Rows of a batch grouped by key id: CSR lists in row order; groups in first-seen order. */
typedef struct groups {
    uint32_t *ids;                  /* id of each row */
    size_t *rows;                   /* rows ordered by group */
    size_t *start;                  /* group g's rows: rows[start[g] .. start[g+1]) */
    uint32_t *order;                /* present ids in first-seen order */
    uint32_t *slot_id, *slot_group; /* open-addressing map id -> group (UINT32_MAX: empty) */
    size_t mask;
    size_t ngroups;
} groups;

/* The map is sized by the batch (2n slots, a power of two), not by the keymap, whose size
 * grows with every key the stream has ever seen: grouping a batch is O(n). */
static uint32_t groups_find(const groups *g, uint32_t id)
{
    if (!g->slot_id) return UINT32_MAX;
    for (size_t h = (id * 2654435761u) & g->mask;; h = (h + 1) & g->mask) {
        if (g->slot_id[h] == id) return g->slot_group[h];
        if (g->slot_id[h] == UINT32_MAX) return UINT32_MAX;
    }
}

static void groups_free(const sp_allocator *a, groups *g)
{
    mem_free(a, g->ids);
    mem_free(a, g->rows);
    mem_free(a, g->start);
    mem_free(a, g->order);
    mem_free(a, g->slot_id);
    mem_free(a, g->slot_group);
    memset(g, 0, sizeof *g);
}

static int group_rows(sp_stream *s, const sp_batch *b, int nkey, groups *g, sp_diag *d)
{
    const sp_allocator *a = &s->ctx->alloc;
    memset(g, 0, sizeof *g);
    size_t n = b->n;
    g->ids = mem_alloc(a, (n ? n : 1) * sizeof *g->ids);
    if (!g->ids) return oom(d, s);
    const sp_col *cols[64];
    for (int c = 0; c < nkey; c++)
        cols[c] = &b->cols[c];
    int rc = keymap_ids(s->km, cols, 0, n, g->ids, d);
    if (rc) return rc;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    g->mask = cap - 1;
    g->slot_id = mem_alloc(a, cap * sizeof *g->slot_id);
    g->slot_group = mem_alloc(a, cap * sizeof *g->slot_group);
    g->order = mem_alloc(a, (n ? n : 1) * sizeof *g->order);
    g->start = mem_calloc(a, n + 2, sizeof *g->start);
    g->rows = mem_alloc(a, (n ? n : 1) * sizeof *g->rows);
    uint32_t *gof = mem_alloc(a, (n ? n : 1) * sizeof *gof); /* group of each row */
    if (!g->slot_id || !g->slot_group || !g->order || !g->start || !g->rows || !gof) {
        mem_free(a, gof);
        return oom(d, s);
    }
    memset(g->slot_id, 0xff, cap * sizeof *g->slot_id);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = g->ids[i];
        size_t h = (id * 2654435761u) & g->mask;
        while (g->slot_id[h] != UINT32_MAX && g->slot_id[h] != id)
            h = (h + 1) & g->mask;
        if (g->slot_id[h] == UINT32_MAX) {
            g->slot_id[h] = id;
            g->slot_group[h] = (uint32_t)g->ngroups;
            g->order[g->ngroups++] = id;
        }
        gof[i] = g->slot_group[h];
        g->start[gof[i] + 1]++;
    }
    for (size_t k = 0; k < g->ngroups; k++)
        g->start[k + 1] += g->start[k];
    size_t *fill = mem_alloc(a, (g->ngroups + 1) * sizeof *fill);
    if (!fill) {
        mem_free(a, gof);
        return oom(d, s);
    }
    memcpy(fill, g->start, (g->ngroups + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        g->rows[fill[gof[i]]++] = i;
    mem_free(a, fill);
    mem_free(a, gof);
    return SP_OK;
}

static int push_key(sp_batch *dst, const sp_batch *src, int nkey, size_t row)
{
    for (int c = 0; c < nkey; c++)
        if (col_push_from(&dst->cols[c], &src->cols[c], src->env->dict, row)) return SP_ENOMEM;
    return SP_OK;
}

/* ----------------------------------------------------------------------------- reduceByKey */

static int convert_values(sp_stream *s, sp_batch *tmp, sp_batch **out, sp_diag *d)
{
    /* tmp is (K, acc); out must be (K, V) with V the stream's value type. */
    int rc = batch_new(&s->ctx->env, s->td, tmp->time_ms, out, d);
    if (rc) return rc;
    int nk = s->nkey;
    sp_type vt = s->td->child[1]->leaf;
    sp_type at = tmp->td->child[1]->leaf;
    for (size_t i = 0; i < tmp->n && !rc; i++) {
        if (push_key(*out, tmp, nk, i)) {
            rc = oom(d, s);
            break;
        }
        union {
            int64_t i;
            double f;
        } acc;
        if (at == SP_F64)
            acc.f = col_get_f64(&tmp->cols[nk], i);
        else
            acc.i = col_get_i64(&tmp->cols[nk], i);
        if (push_cast(&(*out)->cols[nk], vt, at, &acc)) rc = oom(d, s);
    }
    (*out)->n = tmp->n;
    if (!rc && rows_done(*out)) rc = oom(d, s);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ---------------------------------------------------- component-wise monoids over tuples */

static int is_field_of(const sp_expr *e, int arg, int j)
{
    return e->kind == EX_FIELD && e->index == j && e->n == 1 && e->kids[0]->kind == EX_ARG &&
           e->kids[0]->index == arg;
}

/** SUM/MIN/MAX when e is a._j + b._j (either order), min or max of them; else -1. */
static int component_monoid(const sp_expr *e, int j)
{
    if (e->kind != EX_BINOP || e->n != 2) return -1;
    if (e->op != SP_OP_ADD && e->op != SP_OP_MIN && e->op != SP_OP_MAX) return -1;
    if (!((is_field_of(e->kids[0], 0, j) && is_field_of(e->kids[1], 1, j)) ||
          (is_field_of(e->kids[0], 1, j) && is_field_of(e->kids[1], 0, j))))
        return -1;
    return e->op == SP_OP_ADD ? SP_AGG_SUM : e->op == SP_OP_MIN ? SP_AGG_MIN : SP_AGG_MAX;
}

/** 1 when f is (a, b) => (a._1 op1 b._1, ..., a._m opm b._m) over a tuple of numeric leaves
 *  (the common "several counters per key" reduce), filling aggs[0..m). */
static int tuple_monoids(const sp_expr *f, const sp_td *v, sp_agg *aggs)
{
    if (v->kind != TD_TUPLE || v->n > 16 || f->kind != EX_TUPLE || f->n != v->n) return 0;
    for (int j = 0; j < v->n; j++) {
        const sp_td *c = v->child[j];
        if (c->kind != TD_LEAF || !(c->leaf == SP_I32 || c->leaf == SP_I64 || c->leaf == SP_F32 ||
                                    c->leaf == SP_F64 || c->leaf == SP_TS))
            return 0;
        int a = component_monoid(f->kids[j], j);
        if (a < 0) return 0;
        aggs[j] = (sp_agg)a;
    }
    return 1;
}

int hostop_tuple_monoids(const sp_stream *s)
{
    sp_agg aggs[16];
    return s->kind == N_REDUCE_BY_KEY && s->monoid < 0 && s->expr &&
           tuple_monoids(s->expr, s->td->child[1], aggs);
}

/** reduceByKey of a tuple-of-monoids lambda: one device aggregation per component. The
 *  outputs of the same input and keys come in the same row order (first appearance), so
 *  they are zipped row by row. */
static int reduce_by_key_tuple(sp_stream *s, const sp_batch *in, int nkey, const sp_agg *aggs,
                               sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    const sp_allocator *a = &ctx->alloc;
    const sp_td *v = s->td->child[1];
    int m = v->n, rc = SP_OK;
    sp_batch *parts[16] = {0};
    for (int j = 0; j < m && !rc; j++) {
        sp_type at = kagg_acc_type(aggs[j], v->child[j]->leaf);
        sp_td *tt = td_tuple2(a, td_copy(a, s->td->child[0]), td_leaf(a, at));
        if (!tt) {
            rc = oom(d, s);
            break;
        }
        td_layout(tt, 0);
        rc = keyed_aggregate(ctx->dev, &ctx->env, s->km, in, nkey, nkey + j, aggs[j], tt, &parts[j],
                             d);
        td_free(a, tt);
    }
    if (!rc) rc = batch_new(&ctx->env, s->td, in->time_ms, out, d);
    for (size_t i = 0; !rc && i < parts[0]->n; i++) {
        if (push_key(*out, parts[0], nkey, i)) rc = oom(d, s);
        for (int j = 0; j < m && !rc; j++) {
            union {
                int64_t i;
                double f;
            } acc;
            sp_type at = parts[j]->td->child[1]->leaf;
            if (at == SP_F64)
                acc.f = col_get_f64(&parts[j]->cols[nkey], i);
            else
                acc.i = col_get_i64(&parts[j]->cols[nkey], i);
            if (push_cast(&(*out)->cols[nkey + j], v->child[j]->leaf, at, &acc)) rc = oom(d, s);
        }
        if (!rc) (*out)->n++;
    }
    if (!rc && rows_done(*out)) rc = oom(d, s);
    for (int j = 0; j < m; j++)
        batch_release(parts[j]);
    if (rc && *out) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

int hostop_reduce_by_key(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    int nkey = s->kind == N_COUNT_BY_VALUE ? in->ncols : s->nkey;
    int rc = encode_keys((sp_batch *)in, nkey, d);
    if (rc) return rc;
    if (nkey != 1 || td_col_type(in->td, 0) != SP_STR)
        if ((rc = ensure_keymap(s, nkey, in->td, d))) return rc;
    if (s->kind == N_COUNT_BY_VALUE)
        return keyed_aggregate(ctx->dev, &ctx->env, s->km, in, nkey, -1, SP_AGG_COUNT, s->td, out,
                               d);
    if (s->kind == N_REDUCE_BY_KEY_AGG)
        return keyed_aggregate(ctx->dev, &ctx->env, s->km, in, nkey, nkey, s->agg, s->td, out, d);
    if (s->monoid >= 0) {
        sp_type vt = s->td->child[1]->leaf;
        sp_type at = kagg_acc_type((sp_agg)s->monoid, vt);
        if (at == vt)
            return keyed_aggregate(ctx->dev, &ctx->env, s->km, in, nkey, nkey, (sp_agg)s->monoid,
                                   s->td, out, d);
        const sp_allocator *a = &ctx->alloc;
        sp_td *tt = td_tuple2(a, td_copy(a, s->td->child[0]), td_leaf(a, at));
        if (!tt) return oom(d, s);
        td_layout(tt, 0);
        sp_batch *tmp = NULL;
        rc = keyed_aggregate(ctx->dev, &ctx->env, s->km, in, nkey, nkey, (sp_agg)s->monoid, tt,
                             &tmp, d);
        td_free(a, tt);
        if (!rc) rc = convert_values(s, tmp, out, d);
        batch_release(tmp);
        return rc;
    }
    sp_agg aggs[16];
    if (tuple_monoids(s->expr, s->td->child[1], aggs)) {
        if ((rc = ensure_keymap(s, nkey, in->td, d))) return rc;
        return reduce_by_key_tuple(s, in, nkey, aggs, out, d);
    }
    /* A general lambda: fold each key's values on the host, in arrival order. */
    if ((rc = ensure_keymap(s, nkey, in->td, d))) return rc;
    groups g;
    rc = group_rows(s, in, nkey, &g, d);
    if (!rc) rc = batch_new(&ctx->env, s->td, in->time_ms, out, d);
    sp_emitter em;
    if (!rc) emitter_init(&em, *out, nkey);
    for (size_t k = 0; !rc && k < g.ngroups; k++) {
        const size_t *rows = g.rows + g.start[k];
        size_t cnt = g.start[k + 1] - g.start[k];
        if (push_key(*out, in, nkey, rows[0]))
            rc = oom(d, s);
        else if (!(rc = expr_fold(s->expr, &ctx->alloc, in, in->td->child[1], nkey, rows, cnt, &em,
                                  d)) &&
                 sp_emit_end(&em))
            rc = oom(d, s);
    }
    groups_free(&ctx->alloc, &g);
    if (!rc && rows_done(*out)) rc = oom(d, s);
    if (rc && *out) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------------------ groupByKey */

int hostop_group_by_key(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    int nkey = s->nkey;
    int rc = encode_keys((sp_batch *)in, nkey, d);
    if (!rc) rc = ensure_keymap(s, nkey, in->td, d);
    if (rc) return rc;
    groups g;
    rc = group_rows(s, in, nkey, &g, d);
    if (!rc) rc = batch_new(&ctx->env, s->td, in->time_ms, out, d);
    for (size_t k = 0; !rc && k < g.ngroups; k++) {
        const size_t *rows = g.rows + g.start[k];
        size_t cnt = g.start[k + 1] - g.start[k];
        if (push_key(*out, in, nkey, rows[0]) ||
            list_of(*out, s->td->child[1], in, in->td->child[1], rows, cnt))
            rc = oom(d, s);
        else
            (*out)->n++;
    }
    groups_free(&ctx->alloc, &g);
    if (!rc && rows_done(*out)) rc = oom(d, s);
    if (rc && *out) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------------------- joins, cogroup */

int hostop_join(sp_stream *s, const sp_batch *a, const sp_batch *b, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    const sp_allocator *al = &ctx->alloc;
    int nkey = s->nkey;
    int rc = encode_keys((sp_batch *)a, nkey, d);
    if (!rc) rc = encode_keys((sp_batch *)b, nkey, d);
    if (!rc) rc = ensure_keymap(s, nkey, a->td, d);
    if (rc) return rc;
    groups ga, gb;
    memset(&gb, 0, sizeof gb);
    rc = group_rows(s, a, nkey, &ga, d);
    if (!rc) rc = group_rows(s, b, nkey, &gb, d);
    if (!rc) rc = batch_new(&ctx->env, s->td, a->time_ms, out, d);
    const sp_td *vw = s->td->child[1];
    const sp_td *av = a->td->child[1], *bw = b->td->child[1];
    int jk = s->join;
#define GID(g, id) groups_find(&(g), (id))
    if (s->kind == N_COGROUP) {
        /* Keys of a in first-seen order, then keys only in b. */
        for (int side = 0; side < 2 && !rc; side++) {
            groups *g = side ? &gb : &ga;
            const sp_batch *kb = side ? b : a;
            for (size_t k = 0; k < g->ngroups && !rc; k++) {
                uint32_t id = g->order[k];
                uint32_t x = GID(ga, id), y = GID(gb, id);
                if (side == 1 && x != UINT32_MAX) continue;
                const size_t *ra = x != UINT32_MAX ? ga.rows + ga.start[x] : NULL;
                size_t na = x != UINT32_MAX ? ga.start[x + 1] - ga.start[x] : 0;
                const size_t *rb = y != UINT32_MAX ? gb.rows + gb.start[y] : NULL;
                size_t nb = y != UINT32_MAX ? gb.start[y + 1] - gb.start[y] : 0;
                if (push_key(*out, kb, nkey, g->rows[g->start[k]]) ||
                    list_of(*out, vw->child[0], a, av, ra, na) ||
                    list_of(*out, vw->child[1], b, bw, rb, nb))
                    rc = oom(d, s);
                else
                    (*out)->n++;
            }
        }
    } else {
        const sp_td *dv = vw->child[0], *dw = vw->child[1];
        int vopt = jk == JOIN_RIGHT || jk == JOIN_FULL;
        int wopt = jk == JOIN_LEFT || jk == JOIN_FULL;
        for (size_t i = 0; i < a->n && !rc; i++) {
            uint32_t y = GID(gb, ga.ids[i]);
            size_t nb = y != UINT32_MAX ? gb.start[y + 1] - gb.start[y] : 0;
            if (nb == 0 && !wopt) continue;
            for (size_t j = 0; j < (nb ? nb : 1) && !rc; j++) {
                int e = push_key(*out, a, nkey, i);
                e = e ||
                    (vopt ? option_some(*out, dv, a, av, i) : value_append(*out, dv, a, av, i));
                if (nb) {
                    size_t r = gb.rows[gb.start[y] + j];
                    e = e ||
                        (wopt ? option_some(*out, dw, b, bw, r) : value_append(*out, dw, b, bw, r));
                } else {
                    e = e || option_none(*out, dw);
                }
                if (e)
                    rc = oom(d, s);
                else
                    (*out)->n++;
            }
        }
        if (vopt) {
            for (size_t j = 0; j < b->n && !rc; j++) {
                if (GID(ga, gb.ids[j]) != UINT32_MAX) continue;
                int e = push_key(*out, b, nkey, j) || option_none(*out, dv) ||
                        (wopt ? option_some(*out, dw, b, bw, j) : value_append(*out, dw, b, bw, j));
                if (e)
                    rc = oom(d, s);
                else
                    (*out)->n++;
            }
        }
    }
#undef GID
    groups_free(al, &ga);
    groups_free(al, &gb);
    if (!rc && rows_done(*out)) rc = oom(d, s);
    if (rc && *out) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}
