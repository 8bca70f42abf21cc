/* panes.c — sliding-window panes: key slots, sparse panes built with kreduce_dense, and the
 * window kept from them by the kernels of kernels/window.cl (or their plain-C references when
 * the panes have no device). See panes_int.h for the modes and their costs.
 *
 * Invariants:
 *  - ref[s] counts the retained panes holding slot s; a slot is free when ref[s] == 0 and
 *    it is not live (PANES_INVERSE), and then every dense array holds the identity and a
 *    count of 0 at s (unscatter resets a slot whose count reaches 0; two-stacks aggregates
 *    only cover retained panes; panes_remove resets removed keys).
 *  - Retained panes are a list in increasing index order; entered panes are a contiguous run
 *    of it. TWO_STACKS: the entered panes with a front aggregate F come first (the front
 *    stack, oldest on top), the others are the back stack, whose aggregate is `win`.
 *  - The host touches pane and dense memory only after dev_finish (end of each call that
 *    launches kernels), so blocks can go back to the arena safely. */
#include "ops/panes_int.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { PN_NONE = UINT32_MAX, PN_MIN_CAP = 1024, PN_MIN_CHUNK = 16384, PN_MAP_MIN_BITS = 6 };

typedef struct pn_arr {
    void *p;
    size_t cap; /* bytes of the arena block */
    dev_buf b;
} pn_arr;

typedef struct pn_dense {
    pn_arr acc, cnt;
} pn_dense;

typedef struct pn_pane {
    int64_t index;
    uint32_t m;
    int entered;
    pn_arr slots, acc, cnt;
    pn_dense *F; /* TWO_STACKS front entry: this pane and every newer front pane */
    struct pn_pane *next, *prev;
} pn_pane;

struct panes {
    panes_cfg c;
    int accf;
    size_t w;
    union {
        int64_t l;
        double f;
    } ident;
    /* key id -> slot: open addressing (linear probing, backward-shift deletion), entries
     * slot << 32 | id, PN_EMPTY when free; mcap a power of two, live keys at most half of it,
     * halved when they fall under an eighth */
    uint64_t *map;
    size_t mcap;
    int mbits;
    /* per-slot host state */
    uint32_t *slot2id, *ref, *stamp, *local;
    uint8_t *live;
    size_t scap;
    uint32_t nslots, nlive, serial;
    uint32_t *freel;
    size_t nfree;
    /* open pane */
    pn_arr lk, vals;
    size_t nrows;
    uint32_t *pslots;
    uint32_t m;
    /* retained panes; panes dropped during a call wait for dev_finish in `dead` */
    pn_pane *head, *tail, *dead;
    size_t npanes;
    /* dense arrays of cap slots */
    uint32_t cap;
    pn_dense win, res;
    pn_dense *view; /* what panes_view_get shows */
    pn_dense **pool;
    size_t npool, pool_cap;
};

/* ------------------------------------------------------------------------------- memory */

static int pn_oom(sp_diag *d, const char *what)
{
    return diag_set(d, SP_ENOMEM, "panes: out of memory (%s)", what);
}

static int pn_arr_get(panes *p, pn_arr *a, size_t bytes, int access, sp_diag *d)
{
    memset(a, 0, sizeof *a);
    a->p = arena_get(p->c.arena, bytes ? bytes : 1, &a->cap);
    if (!a->p) return pn_oom(d, "pane memory");
    if (p->c.dev && bytes) return dev_buf_wrap(p->c.dev, a->p, bytes, access, &a->b, d);
    return SP_OK;
}

static void pn_arr_put(panes *p, pn_arr *a)
{
    dev_buf_release(&a->b);
    if (a->p) arena_put(p->c.arena, a->p, a->cap);
    memset(a, 0, sizeof *a);
}

static int pn_grow(const sp_allocator *al, void **ptr, size_t *cap, size_t need, size_t elem,
                   int fill)
{
    if (need <= *cap) return SP_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = mem_realloc(al, *ptr, n * elem);
    if (!q) return SP_ENOMEM;
    memset((char *)q + *cap * elem, fill, (n - *cap) * elem);
    *ptr = q;
    *cap = n;
    return SP_OK;
}

/* ------------------------------------------------------------------------------ kernels */

typedef struct pn_karg {
    size_t size;
    const void *ptr;
} pn_karg;

#define PN_MEM(a)                                                                                  \
    {                                                                                              \
        sizeof(cl_mem), &(a).b.mem                                                                 \
    }
#define PN_VAL(x)                                                                                  \
    {                                                                                              \
        sizeof(x), &(x)                                                                            \
    }

static int pn_launch(panes *p, const char *name, const pn_karg *args, int nargs, size_t n,
                     sp_diag *d)
{
    if (n == 0) return SP_OK;
    sp_dev *dev = p->c.dev;
    cl_kernel k;
    int rc = dev_kernel(dev, "window.cl", name, &k, d);
    if (rc) return rc;
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS) {
            dev_check(err, "clSetKernelArg", d);
            return diag_prefix(d, "%s argument %d", name, i);
        }
    }
    size_t gws, lws;
    if (dev_strategy(dev) == DEV_STRATEGY_GPU) {
        lws = dev_wg_size(dev);
        gws = (n + lws - 1) / lws * lws;
        size_t most = dev_groups(dev) * lws;
        if (gws > most) gws = most;
    } else {
        size_t cu = dev_get_info(dev)->compute_units;
        size_t P = (cu ? cu : 1) * 2, byn = n / PN_MIN_CHUNK;
        gws = byn < 1 ? 1 : byn < P ? byn : P;
        lws = 1;
    }
    return dev_launch(dev, k, gws, lws, name, d);
}

static const char *pn_a(const panes *p)
{
    return p->accf ? "d" : "l";
}

static const char *pn_o(const panes *p)
{
    return p->c.agg == SP_AGG_MIN ? "mn" : p->c.agg == SP_AGG_MAX ? "mx" : "sum";
}

static int pn_fill(panes *p, pn_dense *x, size_t lo, size_t n, sp_diag *d)
{
    if (!p->c.dev) {
        int64_t *c = x->cnt.p;
        for (size_t j = lo; j < lo + n; j++) {
            if (p->accf)
                ((double *)x->acc.p)[j] = p->ident.f;
            else
                ((int64_t *)x->acc.p)[j] = p->ident.l;
            c[j] = 0;
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_fill_%s", pn_a(p));
    cl_ulong lo64 = lo, n64 = n;
    pn_karg a[] = {PN_MEM(x->acc),
                   PN_MEM(x->cnt),
                   PN_VAL(lo64),
                   PN_VAL(n64),
                   {8, p->accf ? (const void *)&p->ident.f : (const void *)&p->ident.l}};
    return pn_launch(p, name, a, 5, n, d);
}

static int pn_copy(panes *p, pn_dense *dst, pn_dense *src, size_t n, sp_diag *d)
{
    if (!p->c.dev) {
        memcpy(dst->acc.p, src->acc.p, n * 8);
        memcpy(dst->cnt.p, src->cnt.p, n * 8);
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_copy_%s", pn_a(p));
    cl_ulong n64 = n;
    pn_karg a[] = {PN_MEM(dst->acc), PN_MEM(dst->cnt), PN_MEM(src->acc), PN_MEM(src->cnt),
                   PN_VAL(n64)};
    return pn_launch(p, name, a, 5, n, d);
}

/* A pane enters x (scatter with the aggregate's operation). */
static int pn_scatter(panes *p, pn_dense *x, const pn_pane *q, sp_diag *d)
{
    if (q->m == 0) return SP_OK;
    if (!p->c.dev) {
        const uint32_t *sl = q->slots.p;
        int64_t *c = x->cnt.p;
        const int64_t *pc = q->cnt.p;
        for (uint32_t j = 0; j < q->m; j++) {
            uint32_t s = sl[j];
            if (p->accf) {
                double *a = x->acc.p, v = ((const double *)q->acc.p)[j];
                a[s] = p->c.agg == SP_AGG_MIN   ? (v < a[s] ? v : a[s])
                       : p->c.agg == SP_AGG_MAX ? (v > a[s] ? v : a[s])
                                                : a[s] + v;
            } else {
                int64_t *a = x->acc.p, v = ((const int64_t *)q->acc.p)[j];
                a[s] = p->c.agg == SP_AGG_MIN   ? (v < a[s] ? v : a[s])
                       : p->c.agg == SP_AGG_MAX ? (v > a[s] ? v : a[s])
                                                : (int64_t)((uint64_t)a[s] + (uint64_t)v);
            }
            c[s] += pc[j];
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_scatter_%s_%s", pn_a(p), pn_o(p));
    cl_ulong m = q->m;
    pn_karg a[] = {PN_MEM(x->acc), PN_MEM(x->cnt), PN_MEM(q->slots),
                   PN_MEM(q->acc), PN_MEM(q->cnt), PN_VAL(m)};
    return pn_launch(p, name, a, 6, q->m, d);
}

static int pn_unscatter(panes *p, pn_dense *x, const pn_pane *q, sp_diag *d)
{
    if (q->m == 0) return SP_OK;
    if (!p->c.dev) {
        const uint32_t *sl = q->slots.p;
        int64_t *c = x->cnt.p;
        const int64_t *pc = q->cnt.p;
        for (uint32_t j = 0; j < q->m; j++) {
            uint32_t s = sl[j];
            c[s] -= pc[j];
            if (p->accf)
                ((double *)x->acc.p)[s] =
                    c[s] == 0 ? 0.0 : ((double *)x->acc.p)[s] - ((const double *)q->acc.p)[j];
            else
                ((int64_t *)x->acc.p)[s] =
                    c[s] == 0 ? 0
                              : (int64_t)((uint64_t)((int64_t *)x->acc.p)[s] -
                                          (uint64_t)((const int64_t *)q->acc.p)[j]);
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_unscatter_%s", pn_a(p));
    cl_ulong m = q->m;
    pn_karg a[] = {PN_MEM(x->acc), PN_MEM(x->cnt), PN_MEM(q->slots),
                   PN_MEM(q->acc), PN_MEM(q->cnt), PN_VAL(m)};
    return pn_launch(p, name, a, 6, q->m, d);
}

static int pn_inv(panes *p, pn_dense *x, const pn_pane *q, int enter, sp_diag *d)
{
    if (q->m == 0) return SP_OK;
    if (!p->c.dev) {
        const uint32_t *sl = q->slots.p;
        int64_t *live = x->cnt.p;
        for (uint32_t j = 0; j < q->m; j++) {
            uint32_t s = sl[j];
            if (!enter && !live[s]) continue;
            if (p->accf) {
                double v = ((const double *)q->acc.p)[j];
                ((double *)x->acc.p)[s] += enter ? v : -v;
            } else {
                uint64_t v = (uint64_t)((const int64_t *)q->acc.p)[j];
                int64_t *a = x->acc.p;
                a[s] = (int64_t)(enter ? (uint64_t)a[s] + v : (uint64_t)a[s] - v);
            }
            if (enter) live[s] = 1;
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_inv_%s_%s", enter ? "enter" : "leave", pn_a(p));
    cl_ulong m = q->m;
    pn_karg a[] = {PN_MEM(x->acc), PN_MEM(x->cnt), PN_MEM(q->slots), PN_MEM(q->acc), PN_VAL(m)};
    return pn_launch(p, name, a, 5, q->m, d);
}

static int pn_comb(panes *p, pn_dense *o, pn_dense *x, pn_dense *y, size_t n, sp_diag *d)
{
    if (!p->c.dev) {
        int64_t *oc = o->cnt.p;
        const int64_t *xc = x->cnt.p, *yc = y->cnt.p;
        for (size_t k = 0; k < n; k++) {
            if (p->accf) {
                double a = ((double *)x->acc.p)[k], b = ((double *)y->acc.p)[k];
                ((double *)o->acc.p)[k] = p->c.agg == SP_AGG_MIN   ? (b < a ? b : a)
                                          : p->c.agg == SP_AGG_MAX ? (b > a ? b : a)
                                                                   : a + b;
            } else {
                int64_t a = ((int64_t *)x->acc.p)[k], b = ((int64_t *)y->acc.p)[k];
                ((int64_t *)o->acc.p)[k] = p->c.agg == SP_AGG_MIN   ? (b < a ? b : a)
                                           : p->c.agg == SP_AGG_MAX ? (b > a ? b : a)
                                                                    : a + b;
            }
            oc[k] = xc[k] + yc[k];
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_comb_%s_%s", pn_a(p), pn_o(p));
    cl_ulong n64 = n;
    pn_karg a[] = {PN_MEM(o->acc), PN_MEM(o->cnt), PN_MEM(x->acc), PN_MEM(x->cnt),
                   PN_MEM(y->acc), PN_MEM(y->cnt), PN_VAL(n64)};
    return pn_launch(p, name, a, 7, n, d);
}

static int pn_reset(panes *p, pn_dense *x, pn_arr *slots, size_t m, sp_diag *d)
{
    if (m == 0) return SP_OK;
    if (!p->c.dev) {
        const uint32_t *sl = slots->p;
        for (size_t j = 0; j < m; j++) {
            if (p->accf)
                ((double *)x->acc.p)[sl[j]] = p->ident.f;
            else
                ((int64_t *)x->acc.p)[sl[j]] = p->ident.l;
            ((int64_t *)x->cnt.p)[sl[j]] = 0;
        }
        return SP_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "wp_reset_%s", pn_a(p));
    cl_ulong m64 = m;
    pn_karg a[] = {PN_MEM(x->acc),
                   PN_MEM(x->cnt),
                   PN_MEM(*slots),
                   PN_VAL(m64),
                   {8, p->accf ? (const void *)&p->ident.f : (const void *)&p->ident.l}};
    return pn_launch(p, name, a, 5, m, d);
}

static int pn_finish(panes *p, sp_diag *d)
{
    return p->c.dev ? dev_finish(p->c.dev, d) : SP_OK;
}

/* ------------------------------------------------------------------------- dense arrays */

static int pn_dense_init(panes *p, pn_dense *x, sp_diag *d)
{
    memset(x, 0, sizeof *x);
    size_t bytes = (size_t)p->cap * 8;
    int rc = pn_arr_get(p, &x->acc, bytes, DEV_BUF_RW, d);
    if (!rc) rc = pn_arr_get(p, &x->cnt, bytes, DEV_BUF_RW, d);
    if (!rc) rc = pn_fill(p, x, 0, p->cap, d);
    return rc;
}

static void pn_dense_fini(panes *p, pn_dense *x)
{
    pn_arr_put(p, &x->acc);
    pn_arr_put(p, &x->cnt);
}

static int pn_dense_take(panes *p, pn_dense **out, sp_diag *d)
{
    if (p->npool) {
        *out = p->pool[--p->npool];
        return SP_OK;
    }
    pn_dense *x = mem_calloc(p->c.alloc, 1, sizeof *x);
    if (!x) return pn_oom(d, "dense aggregate");
    int rc = pn_dense_init(p, x, d);
    if (rc) {
        pn_dense_fini(p, x);
        mem_free(p->c.alloc, x);
        return rc;
    }
    *out = x;
    return SP_OK;
}

/* Gives a front aggregate back; it must already hold the identity on [0, nslots). */
static int pn_dense_give(panes *p, pn_dense *x, sp_diag *d)
{
    int rc = pn_fill(p, x, 0, p->nslots, d);
    if (!rc &&
        pn_grow(p->c.alloc, (void **)&p->pool, &p->pool_cap, p->npool + 1, sizeof *p->pool, 0))
        rc = pn_oom(d, "pool");
    if (rc) {
        pn_dense_fini(p, x);
        mem_free(p->c.alloc, x);
        return rc;
    }
    p->pool[p->npool++] = x;
    return SP_OK;
}

/* Moves x to a new block of the current cap: identity fill, then the old slots copied. */
static int pn_dense_regrow(panes *p, pn_dense *x, uint32_t old_cap, sp_diag *d)
{
    pn_dense y;
    int rc = pn_dense_init(p, &y, d);
    if (!rc) rc = pn_copy(p, &y, x, old_cap, d);
    if (!rc) rc = pn_finish(p, d);
    if (rc) {
        pn_dense_fini(p, &y);
        return rc;
    }
    pn_dense_fini(p, x);
    *x = y;
    return SP_OK;
}

static int pn_ensure_cap(panes *p, sp_diag *d)
{
    if (p->nslots <= p->cap) return SP_OK;
    uint32_t old = p->cap, cap = p->cap ? p->cap : PN_MIN_CAP;
    while (cap < p->nslots)
        cap *= 2;
    p->cap = cap;
    int rc = pn_dense_regrow(p, &p->win, old, d);
    if (!rc && p->c.mode == PANES_TWO_STACKS) rc = pn_dense_regrow(p, &p->res, old, d);
    for (pn_pane *q = p->head; q && !rc; q = q->next)
        if (q->F) rc = pn_dense_regrow(p, q->F, old, d);
    while (p->npool) {
        pn_dense *x = p->pool[--p->npool];
        pn_dense_fini(p, x);
        mem_free(p->c.alloc, x);
    }
    return rc;
}

/* ------------------------------------------------------------------------- key id -> slot */

#define PN_EMPTY UINT64_MAX

static size_t pn_hash(const panes *p, uint32_t id)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> (64 - p->mbits));
}

static uint32_t pn_map_find(const panes *p, uint32_t id)
{
    if (!p->mcap) return PN_NONE;
    size_t mask = p->mcap - 1;
    for (size_t i = pn_hash(p, id);; i = (i + 1) & mask) {
        uint64_t e = p->map[i];
        if (e == PN_EMPTY) return PN_NONE;
        if ((uint32_t)e == id) return (uint32_t)(e >> 32);
    }
}

static void pn_map_put(panes *p, uint64_t e)
{
    size_t mask = p->mcap - 1, i = pn_hash(p, (uint32_t)e);
    while (p->map[i] != PN_EMPTY)
        i = (i + 1) & mask;
    p->map[i] = e;
}

/* Rehashes into 2^bits entries. O(old capacity). */
static int pn_map_resize(panes *p, int bits)
{
    size_t cap = (size_t)1 << bits;
    uint64_t *m = mem_alloc(p->c.alloc, cap * sizeof *m), *old = p->map;
    if (!m) return SP_ENOMEM;
    memset(m, 0xff, cap * sizeof *m);
    size_t ocap = p->mcap;
    p->map = m;
    p->mcap = cap;
    p->mbits = bits;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != PN_EMPTY) pn_map_put(p, old[i]);
    mem_free(p->c.alloc, old);
    return SP_OK;
}

static void pn_map_del(panes *p, uint32_t id)
{
    size_t mask = p->mcap - 1, i = pn_hash(p, id);
    while ((uint32_t)p->map[i] != id)
        i = (i + 1) & mask;
    /* backward shift: move later entries of the probe run whose home is not in (i, j] */
    for (size_t j = (i + 1) & mask; p->map[j] != PN_EMPTY; j = (j + 1) & mask) {
        size_t k = pn_hash(p, (uint32_t)p->map[j]);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        p->map[i] = p->map[j];
        i = j;
    }
    p->map[i] = PN_EMPTY;
}

/* ---------------------------------------------------------------------------------- slots */

static void pn_slot_free(panes *p, uint32_t s)
{
    pn_map_del(p, p->slot2id[s]);
    p->slot2id[s] = PN_NONE;
    p->stamp[s] = 0;
    p->freel[p->nfree++] = s;
    p->nlive--;
    /* Shrinking is best effort: on failure the larger table stays valid. */
    if (p->mbits > PN_MAP_MIN_BITS && (size_t)p->nlive * 8 < p->mcap)
        (void)pn_map_resize(p, p->mbits - 1);
}

static int pn_slot_new(panes *p, uint32_t id, uint32_t *out)
{
    if ((size_t)(p->nlive + 1) * 2 > p->mcap &&
        pn_map_resize(p, p->mcap ? p->mbits + 1 : PN_MAP_MIN_BITS))
        return SP_ENOMEM;
    uint32_t s;
    if (p->nfree) {
        s = p->freel[--p->nfree];
    } else {
        s = p->nslots;
        size_t cap = p->scap;
        const sp_allocator *a = p->c.alloc;
        if (pn_grow(a, (void **)&p->slot2id, &cap, s + 1, 4, 0xff)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->ref, &cap, s + 1, 4, 0)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->stamp, &cap, s + 1, 4, 0)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->local, &cap, s + 1, 4, 0)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->live, &cap, s + 1, 1, 0)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->freel, &cap, s + 1, 4, 0)) return SP_ENOMEM;
        cap = p->scap;
        if (pn_grow(a, (void **)&p->pslots, &cap, s + 1, 4, 0)) return SP_ENOMEM;
        p->scap = cap;
        p->nslots++;
    }
    pn_map_put(p, (uint64_t)s << 32 | id);
    p->slot2id[s] = id;
    p->nlive++;
    *out = s;
    return SP_OK;
}

/* ------------------------------------------------------------------------------ lifecycle */

int panes_new(const panes_cfg *cfg, panes **out, sp_diag *d)
{
    SP_CHECK(d, cfg && out && cfg->arena, SP_EINVAL, "panes_new: NULL argument");
    *out = NULL;
    sp_agg g = cfg->agg;
    int ok = cfg->mode == PANES_TWO_STACKS ? (g == SP_AGG_MIN || g == SP_AGG_MAX)
             : cfg->mode == PANES_INVERSE
                 ? (g == SP_AGG_SUM || g == SP_AGG_COUNT)
                 : (g == SP_AGG_SUM || g == SP_AGG_COUNT || g == SP_AGG_AVG);
    SP_CHECK(d, ok, SP_EINVAL, "panes_new: aggregate %d does not fit mode %d", (int)g,
             (int)cfg->mode);
    panes *p = mem_calloc(cfg->alloc, 1, sizeof *p);
    if (!p) return pn_oom(d, "panes");
    p->c = *cfg;
    sp_type vt = g == SP_AGG_COUNT ? SP_I64 : cfg->vt;
    p->accf = g != SP_AGG_COUNT && kagg_acc_type(g, vt) == SP_F64;
    p->w = type_width(vt);
    if (p->accf)
        p->ident.f = g == SP_AGG_MIN ? INFINITY : g == SP_AGG_MAX ? -INFINITY : 0.0;
    else
        p->ident.l = g == SP_AGG_MIN ? INT64_MAX : g == SP_AGG_MAX ? INT64_MIN : 0;
    p->serial = 1;
    p->cap = PN_MIN_CAP;
    int rc = pn_dense_init(p, &p->win, d);
    if (!rc && cfg->mode == PANES_TWO_STACKS) rc = pn_dense_init(p, &p->res, d);
    if (!rc) rc = pn_finish(p, d);
    if (rc) {
        panes_free(p);
        return rc;
    }
    p->view = &p->win;
    *out = p;
    return SP_OK;
}

static void pn_pane_free(panes *p, pn_pane *q)
{
    pn_arr_put(p, &q->slots);
    pn_arr_put(p, &q->acc);
    pn_arr_put(p, &q->cnt);
    if (q->F) {
        pn_dense_fini(p, q->F);
        mem_free(p->c.alloc, q->F);
    }
    mem_free(p->c.alloc, q);
}

static void pn_bury(panes *p)
{
    while (p->dead) {
        pn_pane *q = p->dead;
        p->dead = q->next;
        pn_pane_free(p, q);
    }
}

void panes_free(panes *p)
{
    if (!p) return;
    if (p->c.dev) dev_finish(p->c.dev, NULL);
    while (p->head) {
        pn_pane *q = p->head;
        p->head = q->next;
        pn_pane_free(p, q);
    }
    pn_bury(p);
    pn_dense_fini(p, &p->win);
    pn_dense_fini(p, &p->res);
    while (p->npool) {
        pn_dense *x = p->pool[--p->npool];
        pn_dense_fini(p, x);
        mem_free(p->c.alloc, x);
    }
    pn_arr_put(p, &p->lk);
    pn_arr_put(p, &p->vals);
    const sp_allocator *a = p->c.alloc;
    mem_free(a, p->pool);
    mem_free(a, p->map);
    mem_free(a, p->slot2id);
    mem_free(a, p->ref);
    mem_free(a, p->stamp);
    mem_free(a, p->local);
    mem_free(a, p->live);
    mem_free(a, p->freel);
    mem_free(a, p->pslots);
    mem_free(a, p);
}

uint32_t panes_live_slots(const panes *p)
{
    return p->nlive;
}

size_t panes_count(const panes *p)
{
    return p->npanes;
}

void panes_stats_get(const panes *p, panes_stats *st)
{
    memset(st, 0, sizeof *st);
    st->live = p->nlive;
    st->slots = p->nslots;
    st->cap = p->cap;
    st->map_cap = p->mcap;
    st->panes = p->npanes;
    st->dense = 1 + (p->c.mode == PANES_TWO_STACKS) + p->npool;
    for (const pn_pane *q = p->head; q; q = q->next) {
        st->entries += q->m;
        st->dense += q->F != NULL;
    }
}

/* ------------------------------------------------------------------------------- building */

/* Grows a host-only buffer block (no device buffer: wrapped when the pane closes). */
static int pn_buf_grow(panes *p, pn_arr *a, size_t need)
{
    if (need <= a->cap) return SP_OK;
    size_t want = a->cap ? a->cap * 2 : 1 << 16;
    while (want < need)
        want *= 2;
    size_t cap;
    void *q = arena_get(p->c.arena, want, &cap);
    if (!q) return SP_ENOMEM;
    if (a->p) {
        memcpy(q, a->p, a->cap);
        arena_put(p->c.arena, a->p, a->cap);
    }
    a->p = q;
    a->cap = cap;
    return SP_OK;
}

int panes_add(panes *p, const uint32_t *ids, const void *vals, size_t n, sp_diag *d)
{
    if (n == 0) return SP_OK;
    int withv = p->c.agg != SP_AGG_COUNT;
    SP_CHECK(d, ids && (vals || !withv), SP_EINVAL, "panes_add: NULL rows");
    if (pn_buf_grow(p, &p->lk, (p->nrows + n) * 4) ||
        (withv && pn_buf_grow(p, &p->vals, (p->nrows + n) * p->w)))
        return pn_oom(d, "open pane rows");
    uint32_t *lk = (uint32_t *)p->lk.p + p->nrows;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        uint32_t s = pn_map_find(p, id);
        if (s == PN_NONE && pn_slot_new(p, id, &s)) return pn_oom(d, "key slots");
        if (p->stamp[s] != p->serial) {
            p->stamp[s] = p->serial;
            p->local[s] = p->m;
            p->pslots[p->m++] = s;
        }
        lk[i] = p->local[s];
    }
    if (withv) memcpy((char *)p->vals.p + p->nrows * p->w, vals, n * p->w);
    p->nrows += n;
    return SP_OK;
}

int panes_close(panes *p, int64_t index, sp_diag *d)
{
    SP_CHECK(d, !p->tail || index > p->tail->index, SP_EINVAL,
             "panes_close: pane %lld after pane %lld", (long long)index, (long long)p->tail->index);
    pn_pane *q = mem_calloc(p->c.alloc, 1, sizeof *q);
    if (!q) return pn_oom(d, "pane");
    q->index = index;
    q->m = p->m;
    int rc = SP_OK;
    if (q->m) {
        size_t m = q->m;
        memset(&q->slots, 0, sizeof q->slots);
        q->slots.p = arena_get(p->c.arena, m * 4, &q->slots.cap);
        q->acc.p = arena_get(p->c.arena, m * 8, &q->acc.cap);
        q->cnt.p = arena_get(p->c.arena, m * 8, &q->cnt.cap);
        if (!q->slots.p || !q->acc.p || !q->cnt.p) {
            rc = pn_oom(d, "pane entries");
            goto out;
        }
        memcpy(q->slots.p, p->pslots, m * 4);
        int count = p->c.agg == SP_AGG_COUNT;
        rc = kreduce_dense_scratch(p->c.dev, p->c.arena, p->lk.p, count ? NULL : p->vals.p, p->c.vt,
                                   p->nrows, q->m, p->c.agg, count ? NULL : q->acc.p, q->cnt.p, d);
        if (rc) goto out;
        if (count) memcpy(q->acc.p, q->cnt.p, m * 8);
        if (p->c.dev &&
            ((rc = dev_buf_wrap(p->c.dev, q->slots.p, m * 4, DEV_BUF_READ, &q->slots.b, d)) ||
             (rc = dev_buf_wrap(p->c.dev, q->acc.p, m * 8, DEV_BUF_READ, &q->acc.b, d)) ||
             (rc = dev_buf_wrap(p->c.dev, q->cnt.p, m * 8, DEV_BUF_READ, &q->cnt.b, d))))
            goto out;
        const uint32_t *sl = q->slots.p;
        for (uint32_t j = 0; j < q->m; j++)
            p->ref[sl[j]]++;
    }
out:
    p->nrows = 0;
    p->m = 0;
    p->serial++;
    if (rc) {
        pn_pane_free(p, q);
        return diag_prefix(d, "panes_close(%lld)", (long long)index);
    }
    q->prev = p->tail;
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    p->npanes++;
    return pn_ensure_cap(p, d);
}

/* ------------------------------------------------------------------------------- sliding */

/* Unlinks the head pane and releases its slots; its memory waits in `dead`. */
static void pn_drop_head(panes *p)
{
    pn_pane *q = p->head;
    p->head = q->next;
    if (p->head)
        p->head->prev = NULL;
    else
        p->tail = NULL;
    p->npanes--;
    const uint32_t *sl = q->slots.p;
    for (uint32_t j = 0; j < q->m; j++) {
        uint32_t s = sl[j];
        if (--p->ref[s] == 0 && !p->live[s]) pn_slot_free(p, s);
    }
    q->next = p->dead;
    p->dead = q;
}

/* Two-stacks flip: every back pane (entered, no F) gets its front aggregate, newest first;
 * the back aggregate returns to the identity. O(back panes) dense operations. */
static int pn_flip(panes *p, sp_diag *d)
{
    size_t nb = 0;
    for (pn_pane *q = p->head; q && q->entered; q = q->next)
        nb++;
    if (nb == 0) return SP_OK;
    pn_pane **v = mem_alloc(p->c.alloc, nb * sizeof *v);
    if (!v) return pn_oom(d, "flip");
    size_t i = 0;
    for (pn_pane *q = p->head; q && q->entered; q = q->next)
        v[i++] = q;
    int rc = SP_OK;
    pn_dense *newer = NULL;
    for (size_t k = nb; k-- > 0 && !rc;) {
        pn_dense *F = NULL;
        if ((rc = pn_dense_take(p, &F, d))) break;
        if (newer) rc = pn_copy(p, F, newer, p->nslots, d);
        if (!rc) rc = pn_scatter(p, F, v[k], d);
        v[k]->F = F;
        newer = F;
    }
    mem_free(p->c.alloc, v);
    if (!rc) rc = pn_fill(p, &p->win, 0, p->nslots, d);
    return rc;
}

int panes_slide(panes *p, int64_t lo, int64_t hi, sp_diag *d)
{
    SP_CHECK(d, p->c.mode != PANES_INVERSE, SP_EINVAL, "panes_slide: inverse panes");
    int ts = p->c.mode == PANES_TWO_STACKS;
    int rc = SP_OK;
    while (!rc && p->head && p->head->index < lo) {
        pn_pane *q = p->head;
        if (q->entered && !ts) rc = pn_unscatter(p, &p->win, q, d);
        if (q->entered && ts && !q->F) rc = pn_flip(p, d);
        if (!rc && q->F) {
            rc = pn_dense_give(p, q->F, d);
            q->F = NULL;
        }
        if (!rc) pn_drop_head(p);
    }
    /* Retained panes are entered from the head on: the new ones are at the tail. */
    pn_pane *first = p->tail;
    while (first && first->prev && !first->prev->entered)
        first = first->prev;
    for (pn_pane *q = first; q && !q->entered && !rc; q = q->next) {
        if (q->index >= hi) break;
        rc = pn_scatter(p, &p->win, q, d);
        q->entered = 1;
    }
    p->view = &p->win;
    if (!rc && ts && p->head && p->head->F) {
        rc = pn_comb(p, &p->res, p->head->F, &p->win, p->nslots, d);
        p->view = &p->res;
    }
    if (!rc) rc = pn_finish(p, d);
    pn_bury(p);
    return rc ? diag_prefix(d, "panes_slide") : SP_OK;
}

int panes_slide_inverse(panes *p, int64_t old_lo, int64_t old_hi, int64_t new_lo, int64_t new_hi,
                        sp_diag *d)
{
    SP_CHECK(d, p->c.mode == PANES_INVERSE, SP_EINVAL, "panes_slide_inverse: not inverse panes");
    uint32_t mark = ++p->serial;
    p->serial++;
    /* Leaving panes are at the head, entering ones at the tail: O(panes that move). */
    pn_pane *enter = p->tail;
    while (enter && enter->prev && enter->prev->index >= new_lo)
        enter = enter->prev;
    for (pn_pane *q = enter; q; q = q->next)
        if (q->index >= new_lo && q->index < new_hi)
            for (uint32_t j = 0; j < q->m; j++)
                p->stamp[((uint32_t *)q->slots.p)[j]] = mark;
    for (pn_pane *q = p->head; q && q->index < old_hi; q = q->next)
        if (q->index >= old_lo)
            for (uint32_t j = 0; j < q->m; j++) {
                uint32_t s = ((uint32_t *)q->slots.p)[j];
                if (!p->live[s] && p->stamp[s] != mark)
                    return diag_set(d, SP_ERUNTIME,
                                    "reduceByKeyAndWindow: neither the previous window has a "
                                    "value for key id %u, nor new values were found (Spark "
                                    "fails here too: a key removed by the filter still has "
                                    "values leaving the window)",
                                    p->slot2id[s]);
            }
    int rc = SP_OK;
    for (pn_pane *q = p->head; q && q->index < old_hi && !rc; q = q->next)
        if (q->index >= old_lo) rc = pn_inv(p, &p->win, q, 0, d);
    for (pn_pane *q = enter; q && !rc; q = q->next)
        if (q->index >= new_lo && q->index < new_hi) {
            rc = pn_inv(p, &p->win, q, 1, d);
            for (uint32_t j = 0; j < q->m; j++)
                p->live[((uint32_t *)q->slots.p)[j]] = 1;
        }
    while (!rc && p->head && p->head->index < old_hi)
        pn_drop_head(p);
    p->view = &p->win;
    if (!rc) rc = pn_finish(p, d);
    pn_bury(p);
    return rc ? diag_prefix(d, "panes_slide_inverse") : SP_OK;
}

int panes_view_get(panes *p, panes_view *v, sp_diag *d)
{
    pn_dense *x = p->view;
    if (p->c.dev && ((x->acc.b.mem && dev_buf_sync_host(p->c.dev, &x->acc.b, d)) ||
                     (x->cnt.b.mem && dev_buf_sync_host(p->c.dev, &x->cnt.b, d))))
        return diag_prefix(d, "panes_view_get");
    v->nslots = p->nslots;
    v->slot_id = p->slot2id;
    v->acc = x->acc.p;
    v->cnt = x->cnt.p;
    v->acc_f64 = p->accf;
    return SP_OK;
}

int panes_remove(panes *p, const uint32_t *slots, size_t n, sp_diag *d)
{
    if (n == 0) return SP_OK;
    pn_arr a;
    int rc = pn_arr_get(p, &a, 0, DEV_BUF_READ, d);
    if (rc) return rc;
    if (a.cap < n * 4) {
        arena_put(p->c.arena, a.p, a.cap);
        a.p = arena_get(p->c.arena, n * 4, &a.cap);
        if (!a.p) return pn_oom(d, "removed keys");
    }
    memcpy(a.p, slots, n * 4);
    if (p->c.dev) rc = dev_buf_wrap(p->c.dev, a.p, n * 4, DEV_BUF_READ, &a.b, d);
    if (!rc) rc = pn_reset(p, &p->win, &a, n, d);
    if (!rc) rc = pn_finish(p, d);
    pn_arr_put(p, &a);
    if (rc) return diag_prefix(d, "panes_remove");
    for (size_t j = 0; j < n; j++) {
        uint32_t s = slots[j];
        p->live[s] = 0;
        if (p->ref[s] == 0 && p->slot2id[s] != PN_NONE) pn_slot_free(p, s);
    }
    return SP_OK;
}

void panes_mark(const panes *p, void (*mark)(void *ud, uint32_t id), void *ud)
{
    if (!p) return;
    for (uint32_t s = 0; s < p->nslots; s++)
        if (p->slot2id[s] != PN_NONE) mark(ud, p->slot2id[s]);
}
