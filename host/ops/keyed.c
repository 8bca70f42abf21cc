/* keyed.c — keyed_aggregate: reduceByKey / countByValue of one flat batch.
 *
 * Key ids: a single str key uses its dictionary ids as they are (K = dictionary size); any
 * other key (integers, floats, composites) goes through the stream's keymap (K = map size).
 * Raw-text (ENC_RAW) str key columns are interned into the dictionary here, into a temporary
 * id array: the input batch is not modified.
 * Compaction: K counts every key the stream has seen, so when K > 4n the batch's ids are first
 * renumbered to a compact range in increasing global-id order (a host hash, then a sort of
 * the distinct ids): the dense arrays are then O(n), not O(dictionary), and rows still come
 * out in order of first appearance. Cost O(n + m log m) for m distinct keys.
 * Temporary arrays come from the batch arena (page aligned: the device wraps them
 * zero-copy). */
#include "ops/kreduce_int.h"

#include <stdlib.h>
#include <string.h>

enum { KD_MAX_KEYS = 64, KD_COMPACT_MIN = 1024 };

typedef struct kd_tmp {
    void *p;
    size_t cap;
} kd_tmp;

static void *kd_get(sp_arena *ar, size_t bytes, kd_tmp *t)
{
    t->p = arena_get(ar, bytes ? bytes : 1, &t->cap);
    return t->p;
}

static void kd_put(sp_arena *ar, kd_tmp *t)
{
    if (t->p) arena_put(ar, t->p, t->cap);
    t->p = NULL;
}

/* ids[i] = dictionary id of element i of a str column (either encoding). */
static int kd_intern(const sp_col *c, sp_dict *dict, size_t n, uint32_t *ids, sp_diag *d)
{
    if (c->enc == ENC_DICT) {
        memcpy(ids, c->data, n * sizeof *ids);
        return SP_OK;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = col_get_str(c, dict, i, &len);
        ids[i] = dict_intern(dict, s, len);
        if (ids[i] == UINT32_MAX)
            return diag_set(d, SP_ENOMEM, "keyed_aggregate: interning key %zu", i);
    }
    return SP_OK;
}

static int kd_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static size_t kd_slot(uint32_t id, size_t mask)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

/* Renumbers ids[0..n) in place to [0, *m) in increasing order of the original id; glob[j] is
 * the original id of compact id j (glob has room for n). */
static int kd_compact(const sp_allocator *a, uint32_t *ids, size_t n, uint32_t *glob, uint32_t *m,
                      sp_diag *d)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    size_t mask = cap - 1;
    uint64_t *tab = mem_calloc(a, cap, sizeof *tab); /* (id+1) << 32 | compact id; 0 empty */
    if (!tab) return diag_set(d, SP_ENOMEM, "keyed_aggregate: compaction table of %zu slots", cap);
    uint32_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = kd_slot(ids[i], mask);
        uint64_t want = (uint64_t)ids[i] + 1;
        while (tab[s] && (tab[s] >> 32) != want)
            s = (s + 1) & mask;
        if (!tab[s]) {
            tab[s] = want << 32;
            glob[cnt++] = ids[i];
        }
    }
    qsort(glob, cnt, sizeof *glob, kd_cmp_u32);
    for (uint32_t j = 0; j < cnt; j++) {
        size_t s = kd_slot(glob[j], mask);
        while ((tab[s] >> 32) != (uint64_t)glob[j] + 1)
            s = (s + 1) & mask;
        tab[s] |= j;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = kd_slot(ids[i], mask);
        while ((tab[s] >> 32) != (uint64_t)ids[i] + 1)
            s = (s + 1) & mask;
        ids[i] = (uint32_t)tab[s];
    }
    mem_free(a, tab);
    *m = cnt;
    return SP_OK;
}

static int kd_is_int(sp_type t)
{
    return t == SP_I32 || t == SP_I64 || t == SP_TS || t == SP_BOOL;
}

/* Appends an aggregate to the value column, converting to its type. */
static int kd_push(sp_col *c, int isf, int64_t i, double f)
{
    if (kd_is_int(c->type)) return col_push_i64(c, isf ? (int64_t)f : i);
    return col_push_f64(c, isf ? f : (double)i);
}

int keyed_aggregate(sp_dev *dev, batch_env *env, keymap *km, const sp_batch *in, int nkey, int vcol,
                    sp_agg agg, const sp_td *out_td, sp_batch **out, sp_diag *d)
{
    SP_CHECK(d, out, SP_EINVAL, "keyed_aggregate: NULL out");
    *out = NULL;
    SP_CHECK(d, env && in && out_td && env->narenas >= 1, SP_EINVAL,
             "keyed_aggregate: NULL argument");
    SP_CHECK(d, agg >= SP_AGG_SUM && agg <= SP_AGG_AVG, SP_EINVAL, "keyed_aggregate: aggregate %d",
             (int)agg);
    SP_CHECK(d, td_is_flat(in->td), SP_ETYPE, "keyed_aggregate: input rows are not flat");
    SP_CHECK(d, nkey >= 1 && nkey <= in->ncols && nkey <= KD_MAX_KEYS, SP_EINVAL,
             "keyed_aggregate: %d key columns of %d", nkey, in->ncols);
    SP_CHECK(d, agg == SP_AGG_COUNT || (vcol >= 0 && vcol < in->ncols), SP_EINVAL,
             "keyed_aggregate: value column %d of %d", vcol, in->ncols);
    sp_type vt = agg == SP_AGG_COUNT ? SP_I64 : in->cols[vcol].type;
    SP_CHECK(d, vt != SP_STR, SP_ETYPE, "keyed_aggregate: cannot aggregate str values");
    int single = nkey == 1 && in->cols[0].type == SP_STR;
    SP_CHECK(d, single || km, SP_EINVAL, "keyed_aggregate: these keys need a keymap");
    SP_CHECK(d, single || keymap_ncols(km) == nkey, SP_EINVAL,
             "keyed_aggregate: %d key columns, the keymap has %d", nkey, keymap_ncols(km));

    sp_batch *ob = NULL;
    int rc = batch_new(env, out_td, in->time_ms, &ob, d);
    if (rc) return diag_prefix(d, "keyed_aggregate");
    if (ob->ncols != nkey + 1) {
        rc = diag_set(d, SP_ETYPE, "keyed_aggregate: output type has %d columns, want %d",
                      ob->ncols, nkey + 1);
        goto fail;
    }
    for (int c = 0; c < nkey; c++)
        if (ob->cols[c].type != in->cols[c].type) {
            rc = diag_set(d, SP_ETYPE, "keyed_aggregate: output key column %d is %s, input %s", c,
                          sp_type_name(ob->cols[c].type), sp_type_name(in->cols[c].type));
            goto fail;
        }
    if (ob->cols[nkey].type == SP_STR) {
        rc = diag_set(d, SP_ETYPE, "keyed_aggregate: output value column is str");
        goto fail;
    }
    size_t n = in->n;
    if (n == 0) {
        *out = ob;
        return SP_OK;
    }
    for (int c = 0; c < nkey; c++)
        if (in->cols[c].len < n) {
            rc = diag_set(d, SP_EINVAL, "keyed_aggregate: key column %d is short", c);
            goto fail;
        }
    if (agg != SP_AGG_COUNT && in->cols[vcol].len < n) {
        rc = diag_set(d, SP_EINVAL, "keyed_aggregate: value column %d is short", vcol);
        goto fail;
    }

    sp_arena *ar = env->arenas[0];
    kd_tmp t_ids = {0}, t_glob = {0}, t_acc = {0}, t_cnt = {0}, t_raw[KD_MAX_KEYS];
    memset(t_raw, 0, sizeof t_raw);
    const uint32_t *keys;
    uint32_t K;

    /* ---- key ids */
    if (single && in->cols[0].enc == ENC_DICT) {
        keys = in->cols[0].data;
        K = dict_size(env->dict);
    } else if (single) {
        uint32_t *ids = kd_get(ar, n * 4, &t_ids);
        if (!ids) {
            rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: %zu key ids", n);
            goto out;
        }
        if ((rc = kd_intern(&in->cols[0], env->dict, n, ids, d))) goto out;
        keys = ids;
        K = dict_size(env->dict);
    } else {
        sp_col views[KD_MAX_KEYS];
        const sp_col *cols[KD_MAX_KEYS];
        for (int c = 0; c < nkey; c++) {
            const sp_col *col = &in->cols[c];
            cols[c] = col;
            if (col->type == SP_STR && col->enc == ENC_RAW) {
                /* A dictionary-encoded view of the raw column, over temporary ids. */
                uint32_t *ids = kd_get(ar, n * 4, &t_raw[c]);
                if (!ids) {
                    rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: %zu key ids", n);
                    goto out;
                }
                if ((rc = kd_intern(col, env->dict, n, ids, d))) goto out;
                views[c] = *col;
                views[c].enc = ENC_DICT;
                views[c].data = ids;
                views[c].len = n;
                cols[c] = &views[c];
            }
        }
        uint32_t *ids = kd_get(ar, n * 4, &t_ids);
        if (!ids) {
            rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: %zu key ids", n);
            goto out;
        }
        if ((rc = keymap_ids(km, cols, 0, n, ids, d))) goto out;
        keys = ids;
        K = keymap_size(km);
    }

    /* ---- compaction when the key space dwarfs the batch */
    const uint32_t *glob = NULL;
    if (K > KD_COMPACT_MIN && (uint64_t)K > 4 * (uint64_t)n) {
        uint32_t *ids = t_ids.p;
        if (!ids) { /* keys still point into the input column: copy before renumbering */
            if (!(ids = kd_get(ar, n * 4, &t_ids))) {
                rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: %zu key ids", n);
                goto out;
            }
            memcpy(ids, keys, n * 4);
        }
        uint32_t *g = kd_get(ar, n * 4, &t_glob);
        if (!g) {
            rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: %zu global ids", n);
            goto out;
        }
        if ((rc = kd_compact(env->alloc, ids, n, g, &K, d))) goto out;
        keys = ids;
        glob = g;
    }

    /* ---- aggregate */
    void *acc = agg == SP_AGG_COUNT ? NULL : kd_get(ar, (size_t)K * 8, &t_acc);
    int64_t *cnt = kd_get(ar, (size_t)K * 8, &t_cnt);
    if ((agg != SP_AGG_COUNT && !acc) || !cnt) {
        rc = diag_set(d, SP_ENOMEM, "keyed_aggregate: partials for %u keys", K);
        goto out;
    }
    const void *vals = agg == SP_AGG_COUNT ? NULL : in->cols[vcol].data;
    if ((rc = kreduce_dense_scratch(dev, ar, keys, vals, vt, n, K, agg, acc, cnt, d))) goto out;

    /* ---- emit one row per present key, in order of first appearance in the batch: the
     * output order then depends only on the input, not on which executor interned a string
     * first. cnt[k] is negated once k is emitted (counts are > 0). O(K) to count the present
     * keys, then rows up to the last first appearance (O(n) at worst). */
    sp_col *kcols[KD_MAX_KEYS];
    for (int c = 0; c < nkey; c++)
        kcols[c] = &ob->cols[c];
    sp_col *vc = &ob->cols[nkey];
    int accf = kagg_acc_type(agg, vt) == SP_F64;
    size_t rows = 0, present = 0;
    for (uint32_t k = 0; k < K; k++)
        present += cnt[k] > 0;
    /* The pass stops once every present key is out: with few or skewed keys that is after a
     * handful of rows, not n. */
    for (size_t i = 0; i < n && rows < present; i++) {
        uint32_t k = keys[i];
        if (cnt[k] <= 0) continue;
        int64_t c = cnt[k];
        cnt[k] = -c;
        uint32_t gid = glob ? glob[k] : k;
        rc = single ? col_push_id(kcols[0], gid) : keymap_push_key(km, gid, kcols);
        if (!rc) {
            if (agg == SP_AGG_COUNT)
                rc = kd_push(vc, 0, c, 0);
            else if (agg == SP_AGG_AVG)
                rc = kd_push(vc, 1, 0, ((const double *)acc)[k] / (double)c);
            else if (accf)
                rc = kd_push(vc, 1, 0, ((const double *)acc)[k]);
            else
                rc = kd_push(vc, 0, ((const int64_t *)acc)[k], 0);
        }
        if (rc) {
            rc = diag_set(d, rc, "keyed_aggregate: appending output row %zu", rows);
            goto out;
        }
        rows++;
    }
    ob->n = rows;
    size_t start[2] = {0, rows};
    if ((rc = batch_set_parts(ob, 1, start, NULL)))
        rc = diag_set(d, rc, "keyed_aggregate: partition table");
out:
    kd_put(ar, &t_cnt);
    kd_put(ar, &t_acc);
    kd_put(ar, &t_glob);
    kd_put(ar, &t_ids);
    for (int c = 0; c < nkey; c++)
        kd_put(ar, &t_raw[c]);
    if (!rc) {
        *out = ob;
        return SP_OK;
    }
fail:
    batch_release(ob);
    return rc;
}
