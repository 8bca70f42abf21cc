/* keymap.c — key rows to dense ids, open addressing with linear probing.
 *
 * Each key row is `ncols` 64-bit words: integers (i32 i64 ts bool) by value, str by dictionary
 * id (ENC_DICT columns only), floats by bit pattern with -0.0 folded into 0.0 and every NaN
 * into one quiet NaN, so equal-comparing floats (and all NaNs) share an id. Words of id i live
 * at words[i*ncols], with their XXH3 hash in hashes[i]; the table holds id+1 (0 = empty) and
 * stays at most 5/8 full, doubling when it would not. Cost: O(ncols) per row expected;
 * memory 8*(ncols+1) + 4 bytes per key plus 8 bytes per table slot (4 per slot, load <= 5/8).
 *
 * Reclaiming: ids are stable while a holder marks them. In a reclaim cycle (between batch
 * times, core/reclaim.c) the holders of this map's ids mark them (keymap_mark), keymap_sweep
 * frees the others: their ids go on a free stack that later new keys take first (so `size`,
 * the dense id domain, follows the peak of live keys) and the table is rebuilt from the live
 * ids. A map whose ids do not outlive a batch time is emptied instead (keymap_clear). A map
 * with str key columns then marks the dictionary ids of its live keys (keymap_mark_dict),
 * before the dictionary sweeps. */
#include "ops/kreduce_int.h"

#include <assert.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

struct keymap {
    sp_allocator alloc;
    int ncols;
    sp_type *types;
    uint64_t *words;  /* size*ncols key words, id order */
    uint64_t *hashes; /* size */
    uint32_t *mark;   /* size: epoch of the last keymap_mark; KM_FREE for a free id */
    size_t kcap;      /* keys words/hashes/mark have room for */
    uint32_t size;    /* high-water mark of ids */
    uint32_t live;
    uint32_t epoch;
    uint32_t live_after_sweep, added_since_sweep;
    uint32_t *freeid; /* free ids below size, a stack (lowest on top) */
    size_t nfree, fcap;
    uint32_t *table; /* id+1 per slot, 0 empty */
    size_t tcap;     /* power of two */
};

enum { KM_INIT_SLOTS = 64 };

#define KM_FREE UINT32_MAX

static int km_type_ok(sp_type t)
{
    return t >= SP_I32 && t < SP_TYPE_COUNT;
}

int keymap_new(const sp_allocator *a, int ncols, const sp_type *types, keymap **out)
{
    *out = NULL;
    if (ncols < 1 || !types) return SP_EINVAL;
    for (int c = 0; c < ncols; c++)
        if (!km_type_ok(types[c])) return SP_EINVAL;
    keymap *km = mem_calloc(a, 1, sizeof *km);
    if (!km) return SP_ENOMEM;
    if (a) km->alloc = *a;
    km->ncols = ncols;
    km->types = mem_alloc(a, (size_t)ncols * sizeof *km->types);
    km->table = mem_calloc(a, KM_INIT_SLOTS, sizeof *km->table);
    if (!km->types || !km->table) {
        keymap_free(km);
        return SP_ENOMEM;
    }
    memcpy(km->types, types, (size_t)ncols * sizeof *types);
    km->tcap = KM_INIT_SLOTS;
    km->epoch = 1;
    *out = km;
    return SP_OK;
}

void keymap_free(keymap *km)
{
    if (!km) return;
    sp_allocator a = km->alloc;
    mem_free(&a, km->types);
    mem_free(&a, km->words);
    mem_free(&a, km->hashes);
    mem_free(&a, km->mark);
    mem_free(&a, km->freeid);
    mem_free(&a, km->table);
    mem_free(&a, km);
}

uint32_t keymap_size(const keymap *km)
{
    return km ? km->size : 0;
}

int keymap_ncols(const keymap *km)
{
    return km ? km->ncols : 0;
}

static uint64_t km_float_word(double v)
{
    uint64_t w;
    if (v == 0.0) v = 0.0; /* -0.0 -> +0.0 */
    if (isnan(v)) return 0x7ff8000000000000ull;
    memcpy(&w, &v, sizeof w);
    return w;
}

/* The key word of element i of column c (type t); the caller checked the encoding. */
static uint64_t km_word(const sp_col *c, size_t i)
{
    switch (c->type) {
    case SP_I32:
        return (uint64_t)(int64_t)((const int32_t *)c->data)[i];
    case SP_I64:
    case SP_TS:
        return (uint64_t)((const int64_t *)c->data)[i];
    case SP_BOOL:
        return ((const uint8_t *)c->data)[i] != 0;
    case SP_F32:
        return km_float_word(((const float *)c->data)[i]);
    case SP_F64:
        return km_float_word(((const double *)c->data)[i]);
    case SP_STR:
        return ((const uint32_t *)c->data)[i];
    default:
        assert(!"km_word: type");
        return 0;
    }
}

static int km_grow_table(keymap *km)
{
    size_t ncap = km->tcap * 2;
    uint32_t *t = mem_calloc(&km->alloc, ncap, sizeof *t);
    if (!t) return SP_ENOMEM;
    for (uint32_t id = 0; id < km->size; id++) {
        if (km->mark[id] == KM_FREE) continue;
        size_t s = km->hashes[id] & (ncap - 1);
        while (t[s])
            s = (s + 1) & (ncap - 1);
        t[s] = id + 1;
    }
    mem_free(&km->alloc, km->table);
    km->table = t;
    km->tcap = ncap;
    return SP_OK;
}

static int km_grow_keys(keymap *km)
{
    size_t ncap = km->kcap ? km->kcap * 2 : 64;
    uint64_t *w = mem_realloc(&km->alloc, km->words, ncap * (size_t)km->ncols * sizeof *w);
    if (!w) return SP_ENOMEM;
    km->words = w;
    uint64_t *h = mem_realloc(&km->alloc, km->hashes, ncap * sizeof *h);
    if (!h) return SP_ENOMEM;
    km->hashes = h;
    uint32_t *m = mem_realloc(&km->alloc, km->mark, ncap * sizeof *m);
    if (!m) return SP_ENOMEM;
    km->mark = m;
    km->kcap = ncap;
    return SP_OK;
}

/* Id of the key row `w` (ncols words), added when new. */
static int km_lookup(keymap *km, const uint64_t *w, uint32_t *id, sp_diag *d)
{
    size_t bytes = (size_t)km->ncols * sizeof *w;
    uint64_t h = XXH3_64bits(w, bytes);
    size_t mask = km->tcap - 1, s = h & mask;
    for (;;) {
        uint32_t e = km->table[s];
        if (!e) break;
        if (km->hashes[e - 1] == h && !memcmp(km->words + (size_t)(e - 1) * km->ncols, w, bytes)) {
            *id = e - 1;
            return SP_OK;
        }
        s = (s + 1) & mask;
    }
    uint32_t nid;
    if (km->nfree) {
        nid = km->freeid[--km->nfree];
    } else {
        SP_CHECK(d, km->size < UINT32_MAX - 1, SP_ENOMEM, "keymap: more than 2^32-2 keys");
        if (km->size == km->kcap && km_grow_keys(km))
            return diag_set(d, SP_ENOMEM, "keymap: growing to %u keys", km->size + 1);
        nid = km->size++;
    }
    memcpy(km->words + (size_t)nid * km->ncols, w, bytes);
    km->hashes[nid] = h;
    km->mark[nid] = km->epoch - 1; /* unmarked */
    km->table[s] = nid + 1;
    km->live++;
    km->added_since_sweep++;
    if ((size_t)km->live * 8 > km->tcap * 5 && km_grow_table(km))
        return diag_set(d, SP_ENOMEM, "keymap: growing the table past %zu slots", km->tcap);
    *id = nid;
    return SP_OK;
}

int keymap_ids(keymap *km, const sp_col *const *cols, size_t first, size_t n, uint32_t *ids,
               sp_diag *d)
{
    SP_CHECK(d, km && cols && (ids || n == 0), SP_EINVAL, "keymap_ids: NULL argument");
    for (int c = 0; c < km->ncols; c++) {
        const sp_col *col = cols[c];
        SP_CHECK(d, col, SP_EINVAL, "keymap_ids: key column %d is NULL", c);
        SP_CHECK(d, col->type == km->types[c], SP_ETYPE,
                 "keymap_ids: key column %d is %s, the map holds %s", c, sp_type_name(col->type),
                 sp_type_name(km->types[c]));
        SP_CHECK(d, col->type != SP_STR || col->enc == ENC_DICT, SP_EINVAL,
                 "keymap_ids: str key column %d is not dictionary-encoded (col_encode it)", c);
        SP_CHECK(d, first + n <= col->len, SP_EINVAL,
                 "keymap_ids: rows [%zu, %zu) past column %d's %zu elements", first, first + n, c,
                 col->len);
    }
    uint64_t stackw[16];
    uint64_t *w = km->ncols <= 16 ? stackw : mem_alloc(&km->alloc, km->ncols * sizeof *w);
    if (!w) return diag_set(d, SP_ENOMEM, "keymap_ids: key row buffer");
    int rc = SP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        for (int c = 0; c < km->ncols; c++)
            w[c] = km_word(cols[c], first + i);
        rc = km_lookup(km, w, &ids[i], d);
    }
    if (w != stackw) mem_free(&km->alloc, w);
    return rc;
}

int keymap_push_key(const keymap *km, uint32_t id, sp_col *const *cols)
{
    if (!km || !cols || id >= km->size || km->mark[id] == KM_FREE) return SP_EINVAL;
    const uint64_t *w = km->words + (size_t)id * km->ncols;
    for (int c = 0; c < km->ncols; c++) {
        int rc;
        double f;
        switch (km->types[c]) {
        case SP_F32:
        case SP_F64:
            memcpy(&f, &w[c], sizeof f); /* f32 words hold the float widened, exactly */
            rc = col_push_f64(cols[c], f);
            break;
        case SP_STR:
            rc = col_push_id(cols[c], (uint32_t)w[c]);
            break;
        default:
            rc = col_push_i64(cols[c], (int64_t)w[c]);
            break;
        }
        if (rc) return rc;
    }
    return SP_OK;
}

/* ------------------------------------------------------------------------------- reclaim */

uint32_t keymap_live(const keymap *km)
{
    return km ? km->live : 0;
}

int keymap_sweep_due(const keymap *km, uint32_t min_new)
{
    if (!km) return 0;
    uint32_t want = km->live_after_sweep > min_new ? km->live_after_sweep : min_new;
    return km->added_since_sweep >= want;
}

void keymap_mark_begin(keymap *km)
{
    if (!km) return;
    if (++km->epoch == KM_FREE) km->epoch = 1;
}

void keymap_mark(keymap *km, uint32_t id)
{
    if (km && id < km->size && km->mark[id] != KM_FREE) km->mark[id] = km->epoch;
}

/* Rebuilds the table from the live ids at a capacity that keeps the load <= 5/8 (and, after
 * a sweep, lets the table shrink with the live set). */
static void km_rebuild(keymap *km)
{
    size_t cap = KM_INIT_SLOTS;
    while ((size_t)km->live * 8 > cap * 5 / 2)
        cap *= 2;
    uint32_t *t = cap == km->tcap ? km->table : mem_calloc(&km->alloc, cap, sizeof *t);
    if (!t) { /* the table in place: the live keys fit, they only shrank */
        t = km->table;
        cap = km->tcap;
    }
    if (t == km->table) memset(t, 0, cap * sizeof *t);
    for (uint32_t id = 0; id < km->size; id++) {
        if (km->mark[id] == KM_FREE) continue;
        size_t s = km->hashes[id] & (cap - 1);
        while (t[s])
            s = (s + 1) & (cap - 1);
        t[s] = id + 1;
    }
    if (t != km->table) mem_free(&km->alloc, km->table);
    km->table = t;
    km->tcap = cap;
}

int keymap_sweep(keymap *km, uint32_t *freed)
{
    if (freed) *freed = 0;
    if (!km) return SP_OK;
    if (km->fcap < km->size) {
        size_t cap = km->fcap ? km->fcap : 64;
        while (cap < km->size)
            cap *= 2;
        uint32_t *f = mem_realloc(&km->alloc, km->freeid, cap * sizeof *f);
        if (!f) return SP_ENOMEM; /* nothing freed; the map stays valid */
        km->freeid = f;
        km->fcap = cap;
    }
    uint32_t n = 0, top = km->size;
    km->nfree = 0;
    for (uint32_t id = km->size; id-- > 0;) {
        if (km->mark[id] != KM_FREE && km->mark[id] != km->epoch) {
            km->mark[id] = KM_FREE;
            km->live--;
            n++;
        }
        if (km->mark[id] == KM_FREE) {
            if (id + 1 == top)
                top = id;
            else
                km->freeid[km->nfree++] = id;
        }
    }
    km->size = top;
    km->live_after_sweep = km->live;
    km->added_since_sweep = 0;
    if (freed) *freed = n;
    if (n) km_rebuild(km);
    return SP_OK;
}

void keymap_clear(keymap *km)
{
    if (!km) return;
    km->size = 0;
    km->live = 0;
    km->nfree = 0;
    km->live_after_sweep = 0;
    km->added_since_sweep = 0;
    memset(km->table, 0, km->tcap * sizeof *km->table);
}

void keymap_mark_dict(const keymap *km, sp_dict *dict)
{
    if (!km) return;
    for (int c = 0; c < km->ncols; c++) {
        if (km->types[c] != SP_STR) continue;
        for (uint32_t id = 0; id < km->size; id++)
            if (km->mark[id] != KM_FREE)
                dict_mark(dict, (uint32_t)km->words[(size_t)id * km->ncols + c]);
    }
}
