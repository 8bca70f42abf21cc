/* lpanes.c — host two-stacks over sparse per-pane partials of a reduce lambda (lpanes_int.h).
 *
 * Invariants:
 *  - Retained panes are a list in increasing index order; the entered ones are a prefix of it
 *    (`pending` is the first pane not entered yet, or NULL). The entered panes with an F come
 *    first (the front stack, oldest on top); the entered panes after them are the back stack,
 *    whose combination is `back`.
 *  - Every list is sorted by key id, ids distinct, and owns the nested memory of its values
 *    (copied in with lp_copy), so lists can be freed in any order. */
#include "ops/lpanes_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct lp_list {
    size_t n, cap;
    uint32_t *id;
    expr_val *v;
    expr_scratch mem; /* nested memory of the values */
} lp_list;

typedef struct lp_pane {
    int64_t index;
    int entered;
    lp_list P;
    lp_list *F; /* front-stack entry: this pane f every newer front pane */
    struct lp_pane *next, *prev;
} lp_pane;

struct lpanes {
    const sp_allocator *a;
    const expr_typed *f;
    expr_scratch tmp; /* evaluation temporaries, reset after each merge */
    lp_list open, batch, back, spare, res;
    const lp_list *view;
    lp_pane *head, *tail, *pending;
    size_t npanes;
    uint64_t *ord; /* (id << 32 | row) of the rows being folded, then as much scratch */
    size_t ord_cap;
    uint64_t merges, calls;
};

static int lp_oom(sp_diag *d, const char *what)
{
    return diag_set(d, SP_ENOMEM, "lambda panes: out of memory (%s)", what);
}

/* ------------------------------------------------------------------------------ lists */

static void lp_list_init(lpanes *p, lp_list *l)
{
    memset(l, 0, sizeof *l);
    expr_scratch_init(&l->mem, p->a);
}

static void lp_list_clear(lp_list *l)
{
    l->n = 0;
    expr_scratch_reset(&l->mem);
}

static void lp_list_fini(lpanes *p, lp_list *l)
{
    mem_free(p->a, l->id);
    mem_free(p->a, l->v);
    expr_scratch_free(&l->mem);
    memset(l, 0, sizeof *l);
}

/* Deep copy of a value into m (strings with a dictionary id are shared: the dictionary's
 * bytes live as long as the context). */
static int lp_copy(expr_scratch *m, const expr_val *s, expr_val *o)
{
    *o = *s;
    if (s->t == SP_STR) {
        if (s->u.s.id != UINT32_MAX) return SP_OK;
        if (s->u.s.len == 0) {
            o->u.s.p = "";
            return SP_OK;
        }
        char *b = expr_scratch_alloc(m, s->u.s.len);
        if (!b) return SP_ENOMEM;
        memcpy(b, s->u.s.p, s->u.s.len);
        o->u.s.p = b;
        return SP_OK;
    }
    if (s->t < SP_TYPE_COUNT || s->n == 0) return SP_OK;
    expr_val *it = expr_scratch_alloc(m, (size_t)s->n * sizeof *it);
    if (!it) return SP_ENOMEM;
    for (int i = 0; i < s->n; i++)
        if (lp_copy(m, &s->u.items[i], &it[i])) return SP_ENOMEM;
    o->u.items = it;
    return SP_OK;
}

static int lp_push(lpanes *p, lp_list *l, uint32_t id, const expr_val *v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint32_t *ids = mem_realloc(p->a, l->id, cap * sizeof *ids);
        if (!ids) return SP_ENOMEM;
        l->id = ids;
        expr_val *vs = mem_realloc(p->a, l->v, cap * sizeof *vs);
        if (!vs) return SP_ENOMEM;
        l->v = vs;
        l->cap = cap;
    }
    if (lp_copy(&l->mem, v, &l->v[l->n])) return SP_ENOMEM;
    l->id[l->n++] = id;
    return SP_OK;
}

static void lp_swap(lp_list *x, lp_list *y)
{
    lp_list t = *x;
    *x = *y;
    *y = t;
}

/* out = x f y, key by key (f(x, y) where both hold the key). out aliases neither. */
static int lp_merge(lpanes *p, const lp_list *x, const lp_list *y, lp_list *out, sp_diag *d)
{
    lp_list_clear(out);
    p->merges++;
    size_t i = 0, j = 0;
    int rc = SP_OK;
    while (!rc && (i < x->n || j < y->n)) {
        if (j == y->n || (i < x->n && x->id[i] < y->id[j])) {
            if (lp_push(p, out, x->id[i], &x->v[i])) rc = lp_oom(d, "merge");
            i++;
        } else if (i == x->n || y->id[j] < x->id[i]) {
            if (lp_push(p, out, y->id[j], &y->v[j])) rc = lp_oom(d, "merge");
            j++;
        } else {
            expr_val args[2] = {x->v[i], y->v[j]}, r;
            p->calls++;
            rc = expr_eval(p->f, args, &p->tmp, &r, d);
            if (!rc && lp_push(p, out, x->id[i], &r)) rc = lp_oom(d, "merge");
            i++;
            j++;
        }
    }
    expr_scratch_reset(&p->tmp);
    return rc;
}

/* ------------------------------------------------------------------------------ lifecycle */

int lpanes_new(const sp_allocator *a, const expr_typed *f, lpanes **out, sp_diag *d)
{
    SP_CHECK(d, f && out, SP_EINVAL, "lpanes_new: NULL argument");
    lpanes *p = mem_calloc(a, 1, sizeof *p);
    if (!p) return lp_oom(d, "panes");
    p->a = a;
    p->f = f;
    expr_scratch_init(&p->tmp, a);
    lp_list_init(p, &p->open);
    lp_list_init(p, &p->batch);
    lp_list_init(p, &p->back);
    lp_list_init(p, &p->spare);
    lp_list_init(p, &p->res);
    p->view = &p->back;
    *out = p;
    return SP_OK;
}

static void lp_pane_free(lpanes *p, lp_pane *q)
{
    lp_list_fini(p, &q->P);
    if (q->F) {
        lp_list_fini(p, q->F);
        mem_free(p->a, q->F);
    }
    mem_free(p->a, q);
}

void lpanes_free(lpanes *p)
{
    if (!p) return;
    while (p->head) {
        lp_pane *q = p->head;
        p->head = q->next;
        lp_pane_free(p, q);
    }
    lp_list_fini(p, &p->open);
    lp_list_fini(p, &p->batch);
    lp_list_fini(p, &p->back);
    lp_list_fini(p, &p->spare);
    lp_list_fini(p, &p->res);
    expr_scratch_free(&p->tmp);
    mem_free(p->a, p->ord);
    mem_free(p->a, p);
}

/* ------------------------------------------------------------------------------ building */

/* Stable LSD radix sort of (id << 32 | row) by id, 8 bits a pass, skipping bytes that are the
 * same in every id; tmp holds n entries. Rows start in increasing order and stay so within an
 * id. O(n) per pass, at most 4 passes. */
static void lp_sort(uint64_t *v, uint64_t *tmp, size_t n)
{
    uint32_t all_or = 0, all_and = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        all_or |= (uint32_t)(v[i] >> 32);
        all_and &= (uint32_t)(v[i] >> 32);
    }
    for (int shift = 32; shift < 64; shift += 8) {
        if ((((all_or ^ all_and) >> (shift - 32)) & 0xff) == 0) continue;
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((v[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(v[i] >> shift) & 0xff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
}

int lpanes_add(lpanes *p, const uint32_t *ids, const expr_val *vals, size_t n, sp_diag *d)
{
    if (n == 0) return SP_OK;
    SP_CHECK(d, ids && vals && n <= UINT32_MAX, SP_EINVAL, "lpanes_add: bad rows");
    if (n > p->ord_cap) {
        uint64_t *o = mem_realloc(p->a, p->ord, 2 * n * sizeof *o);
        if (!o) return lp_oom(d, "rows");
        p->ord = o;
        p->ord_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        p->ord[i] = (uint64_t)ids[i] << 32 | (uint64_t)i;
    lp_sort(p->ord, p->ord + n, n);
    /* The batch's partial per key: its values folded left to right (Spark's reduceByKey). */
    lp_list_clear(&p->batch);
    int rc = SP_OK;
    for (size_t i = 0; i < n && !rc;) {
        uint32_t id = (uint32_t)(p->ord[i] >> 32);
        expr_val acc = vals[(uint32_t)p->ord[i]];
        size_t j = i + 1;
        for (; j < n && (uint32_t)(p->ord[j] >> 32) == id && !rc; j++) {
            expr_val args[2] = {acc, vals[(uint32_t)p->ord[j]]};
            rc = expr_eval(p->f, args, &p->tmp, &acc, d);
        }
        if (!rc && lp_push(p, &p->batch, id, &acc)) rc = lp_oom(d, "batch partials");
        i = j;
    }
    expr_scratch_reset(&p->tmp);
    if (rc) return rc;
    if (p->open.n == 0) {
        lp_swap(&p->open, &p->batch);
        return SP_OK;
    }
    rc = lp_merge(p, &p->open, &p->batch, &p->spare, d);
    p->merges--; /* building a pane is not a pane combination */
    if (!rc) lp_swap(&p->open, &p->spare);
    return rc;
}

int lpanes_close(lpanes *p, int64_t index, sp_diag *d)
{
    SP_CHECK(d, !p->tail || index > p->tail->index, SP_EINVAL,
             "lpanes_close: pane %lld after pane %lld", (long long)index,
             (long long)p->tail->index);
    lp_pane *q = mem_calloc(p->a, 1, sizeof *q);
    if (!q) return lp_oom(d, "pane");
    q->index = index;
    q->P = p->open;
    lp_list_init(p, &p->open);
    q->prev = p->tail;
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    if (!p->pending) p->pending = q;
    p->npanes++;
    return SP_OK;
}

/* ------------------------------------------------------------------------------- sliding */

/* Two-stacks flip: every entered pane (none has an F) gets its front list, newest first:
 * F_m = P_m, F_k = P_k f F_k+1. The back list becomes empty. O(entered panes) merges. */
static int lp_flip(lpanes *p, sp_diag *d)
{
    lp_pane *last = p->pending ? p->pending->prev : p->tail;
    const lp_list *newer = NULL;
    int rc = SP_OK;
    for (lp_pane *q = last; q && q->entered && !rc; q = q->prev) {
        lp_list *F = mem_alloc(p->a, sizeof *F);
        if (!F) return lp_oom(d, "front list");
        lp_list_init(p, F);
        q->F = F;
        if (newer)
            rc = lp_merge(p, &q->P, newer, F, d);
        else
            for (size_t i = 0; i < q->P.n && !rc; i++)
                if (lp_push(p, F, q->P.id[i], &q->P.v[i])) rc = lp_oom(d, "front list");
        newer = F;
    }
    lp_list_clear(&p->back);
    return rc;
}

static void lp_drop_head(lpanes *p)
{
    lp_pane *q = p->head;
    p->head = q->next;
    if (p->head)
        p->head->prev = NULL;
    else
        p->tail = NULL;
    if (p->pending == q) p->pending = q->next;
    p->npanes--;
    lp_pane_free(p, q);
}

int lpanes_slide(lpanes *p, int64_t lo, int64_t hi, sp_diag *d)
{
    int rc = SP_OK;
    p->view = &p->back;
    while (!rc && p->head && p->head->index < lo) {
        if (p->head->entered && !p->head->F) rc = lp_flip(p, d);
        if (!rc) lp_drop_head(p);
    }
    while (!rc && p->pending && p->pending->index < hi) {
        lp_pane *q = p->pending;
        if (q->P.n) {
            rc = lp_merge(p, &p->back, &q->P, &p->spare, d);
            if (!rc) lp_swap(&p->back, &p->spare);
        }
        q->entered = 1;
        p->pending = q->next;
    }
    if (rc) return diag_prefix(d, "lambda panes");
    if (p->head && p->head->F) {
        if (p->back.n == 0) {
            p->view = p->head->F;
        } else {
            rc = lp_merge(p, p->head->F, &p->back, &p->res, d);
            p->view = &p->res;
        }
    }
    return rc ? diag_prefix(d, "lambda panes") : SP_OK;
}

void lpanes_view_get(const lpanes *p, lpanes_view *v)
{
    v->n = p->view->n;
    v->ids = p->view->id;
    v->vals = p->view->v;
}

void lpanes_stats_get(const lpanes *p, lpanes_stats *st)
{
    st->merges = p->merges;
    st->calls = p->calls;
    st->panes = p->npanes;
    size_t e = p->open.n + p->back.n;
    for (const lp_pane *q = p->head; q; q = q->next)
        e += q->P.n + (q->F ? q->F->n : 0);
    st->entries = e;
}

static void lp_list_mark(const lp_list *l, void (*mark)(void *ud, uint32_t id), void *ud,
                         sp_dict *dict)
{
    for (size_t i = 0; i < l->n; i++) {
        if (mark) mark(ud, l->id[i]);
        expr_val_mark(&l->v[i], dict);
    }
}

void lpanes_mark(const lpanes *p, void (*mark)(void *ud, uint32_t id), void *ud, sp_dict *dict)
{
    if (!p) return;
    lp_list_mark(&p->open, mark, ud, dict);
    lp_list_mark(&p->back, mark, ud, dict);
    if (p->view) lp_list_mark(p->view, mark, ud, dict);
    for (const lp_pane *q = p->head; q; q = q->next) {
        lp_list_mark(&q->P, mark, ud, dict);
        if (q->F) lp_list_mark(q->F, mark, ud, dict);
    }
}
