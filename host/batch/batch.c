/* batch.c — sp_batch: columns laid out from the element type, partitions, reference counts,
 * appends of nested rows; the public emitter, row view and batch accessors of spate.h.
 *
 * Partitions always cover [0, n): appending rows extends the last partition. */
#include "batch/batch_int.h"

#include <assert.h>
#include <string.h>

/* Every list node's offsets column starts as {0} (len = rows + 1). */
static int batch_init_lists(sp_batch *b, const sp_td *t)
{
    if (t->kind == TD_LIST && col_push_i64(&b->cols[t->col], 0)) return SP_ENOMEM;
    for (int i = 0; i < t->n; i++)
        if (batch_init_lists(b, t->child[i])) return SP_ENOMEM;
    return 0;
}

static void batch_destroy(sp_batch *b)
{
    const sp_allocator *a = b->env->alloc;
    if (b->cols)
        for (int c = 0; c < b->ncols; c++)
            col_release(&b->cols[c]);
    mem_free(a, b->cols);
    mem_free(a, b->part_start);
    mem_free(a, b->part_node);
    td_free(a, b->td);
    mem_free(a, b);
}

int batch_new(batch_env *env, const sp_td *td, int64_t t, sp_batch **out, sp_diag *d)
{
    return batch_new_on(env, td, t, 0, out, d);
}

int batch_new_on(batch_env *env, const sp_td *td, int64_t t, unsigned node, sp_batch **out,
                 sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, env && env->narenas >= 1 && env->arenas && td, SP_EINVAL,
             "batch_new: no arena or no type");
    const sp_allocator *a = env->alloc;
    sp_batch *b = mem_calloc(a, 1, sizeof *b);
    if (!b) return diag_set(d, SP_ENOMEM, "batch_new: out of memory");
    b->env = env;
    b->time_ms = t;
    atomic_init(&b->refs, 1);
    b->td = td_copy(a, td);
    if (!b->td) goto oom;
    b->ncols = td_layout(b->td, 0);
    b->cols = mem_calloc(a, (size_t)b->ncols, sizeof *b->cols);
    b->part_start = mem_calloc(a, 2, sizeof *b->part_start);
    b->part_node = mem_calloc(a, 1, sizeof *b->part_node);
    if (!b->cols || !b->part_start || !b->part_node) goto oom;
    b->nparts = 1;
    b->part_node[0] = node < env->narenas ? node : 0;
    for (int c = 0; c < b->ncols; c++) {
        sp_type ct = td_col_type(b->td, c);
        col_init(&b->cols[c], ct, ct == SP_STR ? ENC_DICT : ENC_PLAIN,
                 env->arenas[node < env->narenas ? node : 0]);
    }
    if (batch_init_lists(b, b->td)) goto oom;
    *out = b;
    return 0;
oom:
    batch_destroy(b);
    return diag_set(d, SP_ENOMEM, "batch_new: out of memory");
}

int batch_set_parts(sp_batch *b, unsigned nparts, const size_t *start, const unsigned *node)
{
    if (nparts < 1 || start[0] != 0 || start[nparts] != b->n) return SP_EINVAL;
    for (unsigned p = 0; p < nparts; p++)
        if (start[p] > start[p + 1]) return SP_EINVAL;
    const sp_allocator *a = b->env->alloc;
    size_t *ns = mem_alloc(a, (nparts + 1) * sizeof *ns);
    unsigned *nn = mem_alloc(a, nparts * sizeof *nn);
    if (!ns || !nn) {
        mem_free(a, ns);
        mem_free(a, nn);
        return SP_ENOMEM;
    }
    memcpy(ns, start, (nparts + 1) * sizeof *ns);
    for (unsigned p = 0; p < nparts; p++)
        nn[p] = node ? node[p] : 0;
    mem_free(a, b->part_start);
    mem_free(a, b->part_node);
    b->part_start = ns;
    b->part_node = nn;
    b->nparts = nparts;
    return 0;
}

int batch_split_even(sp_batch *b, unsigned nparts, const unsigned *nodes)
{
    if (nparts < 1) return SP_EINVAL;
    const sp_allocator *a = b->env->alloc;
    size_t *start = mem_alloc(a, (nparts + 1) * sizeof *start);
    if (!start) return SP_ENOMEM;
    for (unsigned p = 0; p <= nparts; p++)
        start[p] = b->n / nparts * p + b->n % nparts * p / nparts;
    int rc = batch_set_parts(b, nparts, start, nodes);
    mem_free(a, start);
    return rc;
}

sp_batch *batch_retain(sp_batch *b)
{
    if (b) atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void batch_release(sp_batch *b)
{
    if (!b) return;
    int old = atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel);
    assert(old >= 1);
    if (old == 1) batch_destroy(b);
}

void batch_mark_ids(const sp_batch *b, sp_dict *dict)
{
    if (!b) return;
    for (int c = 0; c < b->ncols; c++) {
        const sp_col *col = &b->cols[c];
        if (col->type == SP_STR && col->enc == ENC_DICT && col->len)
            dict_mark_ids(dict, col->data, col->len);
    }
}

static void batch_add_rows(sp_batch *b, size_t k)
{
    b->n += k;
    b->part_start[b->nparts] = b->n;
}

/* Appends rows [lo, hi) of node t (rows of t's own columns: elements, inside a list) from src
 * to dst. Both batches have t's layout. */
static int batch_append_node(sp_batch *dst, const sp_batch *src, const sp_td *t, size_t lo,
                             size_t hi)
{
    const sp_dict *dict = dst->env->dict;
    int rc = 0;
    switch (t->kind) {
    case TD_LEAF:
        return col_push_range(&dst->cols[t->col], &src->cols[t->col], dict, lo, hi);
    case TD_TUPLE:
        for (int i = 0; i < t->n && !rc; i++)
            rc = batch_append_node(dst, src, t->child[i], lo, hi);
        return rc;
    case TD_OPTION:
        rc = col_push_range(&dst->cols[t->col], &src->cols[t->col], dict, lo, hi);
        return rc ? rc : batch_append_node(dst, src, t->child[0], lo, hi);
    case TD_LIST: {
        sp_col *dc = &dst->cols[t->col];
        const int64_t *so = src->cols[t->col].data;
        assert(dc->len >= 1 && src->cols[t->col].len >= hi + 1);
        if (col_reserve(dc, dc->len + (hi - lo), 0)) return SP_ENOMEM;
        int64_t *dof = dc->data;
        int64_t shift = dof[dc->len - 1] - so[lo];
        for (size_t r = lo; r < hi; r++)
            dof[dc->len++] = so[r + 1] + shift;
        return batch_append_node(dst, src, t->child[0], (size_t)so[lo], (size_t)so[hi]);
    }
    }
    return SP_EINVAL;
}

/* Appends rows [lo, hi) of src to dst, all or nothing. */
static int batch_append_range(sp_batch *dst, const sp_batch *src, size_t lo, size_t hi)
{
    assert(dst->env->dict == src->env->dict && "batches of one context share a dictionary");
    size_t small[32], *lens = small;
    if ((size_t)dst->ncols > sizeof small / sizeof small[0]) {
        lens = mem_alloc(dst->env->alloc, (size_t)dst->ncols * sizeof *lens);
        if (!lens) return SP_ENOMEM;
    }
    for (int c = 0; c < dst->ncols; c++)
        lens[c] = dst->cols[c].len;
    int rc = batch_append_node(dst, src, dst->td, lo, hi);
    if (rc)
        for (int c = 0; c < dst->ncols; c++)
            col_truncate(&dst->cols[c], lens[c]);
    else
        batch_add_rows(dst, hi - lo);
    if (lens != small) mem_free(dst->env->alloc, lens);
    return rc;
}

int batch_append(sp_batch *dst, const sp_batch *src, sp_diag *d)
{
    SP_CHECK(d, td_equal(dst->td, src->td), SP_ETYPE, "batch_append: element types differ");
    int rc = batch_append_range(dst, src, 0, src->n);
    return rc ? diag_set(d, rc, "batch_append: out of column memory (%zu rows)", src->n) : 0;
}

int batch_append_row(sp_batch *dst, const sp_batch *src, size_t i)
{
    if (i >= src->n || !td_equal(dst->td, src->td)) return SP_EINVAL;
    return batch_append_range(dst, src, i, i + 1);
}

int batch_append_rows(sp_batch *dst, const sp_batch *src, size_t lo, size_t hi)
{
    if (lo > hi || hi > src->n || !td_equal(dst->td, src->td)) return SP_EINVAL;
    if (lo == hi) return 0;
    return batch_append_range(dst, src, lo, hi);
}

/* --------------------------------------------------------------------------- emitter */

void emitter_init(sp_emitter *em, sp_batch *b, int first)
{
    memset(em, 0, sizeof *em);
    em->b = b;
    em->first = first;
    if (first == 0) {
        em->td = b->td;
    } else if (b->td->kind == TD_TUPLE) {
        for (int i = 0; i < b->td->n; i++)
            if (b->td->child[i]->col == first) em->td = b->td->child[i];
    }
    if (!em->td || !td_is_flat(em->td)) em->err = SP_EUNSUPPORTED;
}

/* The column the next value goes to, or NULL (em->err set). */
static sp_col *emit_col(sp_emitter *em)
{
    if (em->err) return NULL;
    if (em->col >= em->td->ncols) {
        em->err = SP_EINVAL;
        return NULL;
    }
    return &em->b->cols[em->first + em->col];
}

static int emit_done(sp_emitter *em, int rc)
{
    if (rc)
        em->err = rc;
    else
        em->col++;
    return rc;
}

int sp_emit_i64(sp_emitter *em, int64_t v)
{
    sp_col *c = emit_col(em);
    if (!c) return em->err;
    return emit_done(em, c->type == SP_STR ? SP_ETYPE : col_push_i64(c, v));
}

int sp_emit_f64(sp_emitter *em, double v)
{
    sp_col *c = emit_col(em);
    if (!c) return em->err;
    int ok = c->type == SP_F64 || c->type == SP_F32;
    return emit_done(em, ok ? col_push_f64(c, v) : SP_ETYPE);
}

int sp_emit_bool(sp_emitter *em, int v)
{
    sp_col *c = emit_col(em);
    if (!c) return em->err;
    return emit_done(em, c->type == SP_STR ? SP_ETYPE : col_push_i64(c, v != 0));
}

int sp_emit_str(sp_emitter *em, const char *s, size_t len)
{
    sp_col *c = emit_col(em);
    if (!c) return em->err;
    if (c->type != SP_STR) return emit_done(em, SP_ETYPE);
    if (c->enc == ENC_RAW) return emit_done(em, col_push_text(c, s, len));
    uint32_t id = dict_intern(em->b->env->dict, s, len);
    return emit_done(em, id == UINT32_MAX ? SP_ENOMEM : col_push_id(c, id));
}

int sp_emit_end(sp_emitter *em)
{
    if (!em->err && em->col != em->td->ncols) em->err = SP_EINVAL;
    if (em->err) {
        /* Drop the partial row so the columns stay aligned. */
        if (em->td)
            for (int c = 0; c < em->td->ncols; c++) {
                sp_col *col = &em->b->cols[em->first + c];
                if (col->len > em->b->n) col_truncate(col, em->b->n);
            }
        em->col = 0;
        return em->err;
    }
    em->col = 0;
    batch_add_rows(em->b, 1);
    return 0;
}

/* ------------------------------------------------------------------------ row views */

static const sp_col *batch_col_at(const sp_batch *b, size_t i, int col)
{
    if (!b || col < 0 || col >= b->ncols || i >= b->cols[col].len) return NULL;
    return &b->cols[col];
}

int64_t sp_row_i64(const sp_row *row, int col)
{
    const sp_col *c = batch_col_at(row->b, row->i, row->first + col);
    return c ? col_get_i64(c, row->i) : 0;
}

double sp_row_f64(const sp_row *row, int col)
{
    const sp_col *c = batch_col_at(row->b, row->i, row->first + col);
    return c ? col_get_f64(c, row->i) : 0.0;
}

const char *sp_row_str(const sp_row *row, int col, size_t *len)
{
    return sp_batch_str(row->b, row->i, row->first + col, len);
}

int64_t sp_batch_time(const sp_batch *b)
{
    return b->time_ms;
}

size_t sp_batch_count(const sp_batch *b)
{
    return b->n;
}

int sp_batch_columns(const sp_batch *b)
{
    return b->ncols;
}

int64_t sp_batch_i64(const sp_batch *b, size_t row, int col)
{
    const sp_col *c = batch_col_at(b, row, col);
    return c ? col_get_i64(c, row) : 0;
}

double sp_batch_f64(const sp_batch *b, size_t row, int col)
{
    const sp_col *c = batch_col_at(b, row, col);
    return c ? col_get_f64(c, row) : 0.0;
}

const char *sp_batch_str(const sp_batch *b, size_t row, int col, size_t *len)
{
    const sp_col *c = batch_col_at(b, row, col);
    if (!c || c->type != SP_STR) {
        if (len) *len = 0;
        return NULL;
    }
    return col_get_str(c, b->env->dict, row, len);
}
