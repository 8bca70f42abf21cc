/* layers: util device exec batch ops */
/* test_kreduce.c — keyed and whole-column aggregation: every kernel path (CPU and GPU
 * strategies, dense and radix) against the plain-C reference on random inputs; the keymap;
 * keyed_aggregate on small hand-made batches. */
#include "support/testutil.h"

#include "ops/kreduce_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    sp_dev *dev[2]; /* CPU strategy, GPU strategy */
    sp_topo *topo;
    sp_arena *arena;
    sp_dict *dict;
    batch_env env;
} fixture;

static fixture fx;

static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4097, 100003, 1 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const uint32_t ks[] = {1, 16, 1000, 65536, 1 << 20};
#define NKS (sizeof ks / sizeof ks[0])
static const sp_type vtypes[] = {SP_I32, SP_I64, SP_F32, SP_F64, SP_BOOL, SP_TS};
#define NVT (sizeof vtypes / sizeof vtypes[0])
static const sp_agg aggs[] = {SP_AGG_SUM, SP_AGG_COUNT, SP_AGG_MIN, SP_AGG_MAX, SP_AGG_AVG};
#define NAGG (sizeof aggs / sizeof aggs[0])

/* Page-aligned (zero-copy) memory of at least one page. */
static void *palloc(size_t bytes)
{
    size_t b = (bytes + 4095) / 4096 * 4096;
    void *p = aligned_alloc(4096, b ? b : 4096);
    assert_non_null(p);
    return p;
}

/* Random values of type t with extremes mixed in. */
static void fill_vals(void *v, sp_type t, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = tu_rand(s);
        switch (t) {
        case SP_I32:
            ((int32_t *)v)[i] = (int32_t)(uint32_t)r;
            break;
        case SP_I64:
        case SP_TS: {
            int64_t x = (int64_t)r;
            if (r % 8 == 0)
                x = INT64_MAX - (int64_t)(r >> 60);
            else if (r % 8 == 1)
                x = INT64_MIN + (int64_t)(r >> 60);
            else if (r % 8 == 2)
                x = -(int64_t)(r >> 40);
            ((int64_t *)v)[i] = x;
            break;
        }
        case SP_F32:
            ((float *)v)[i] = (float)((double)(int64_t)(r % 2000001) - 1e6) / 7.0f;
            break;
        case SP_F64:
            ((double *)v)[i] =
                ((double)(int64_t)(r % 2000001) - 1e6) * ldexp(1.0, (int)(r >> 58) - 32);
            break;
        case SP_BOOL:
            ((uint8_t *)v)[i] = (uint8_t)(r & 1);
            break;
        default:
            fail();
        }
    }
}

static double val_abs(const void *v, sp_type t, size_t i)
{
    switch (t) {
    case SP_I32:
        return fabs((double)((const int32_t *)v)[i]);
    case SP_F32:
        return fabs((double)((const float *)v)[i]);
    case SP_F64:
        return fabs(((const double *)v)[i]);
    case SP_BOOL:
        return ((const uint8_t *)v)[i];
    default:
        return fabs((double)((const int64_t *)v)[i]);
    }
}

/* Compares kreduce_dense on dev to the reference; returns the number of mismatches. */
static size_t check_dense(sp_dev *dev, const uint32_t *keys, const void *vals, sp_type vt, size_t n,
                          uint32_t K, sp_agg agg, const char *what)
{
    size_t kb = (size_t)K * 8;
    void *acc = palloc(kb), *racc = malloc(kb ? kb : 1);
    int64_t *cnt = palloc(kb), *rcnt = malloc(kb ? kb : 1);
    double *abssum = NULL;
    assert_non_null(racc);
    assert_non_null(rcnt);
    sp_diag d = {0};
    memset(acc, 0xA5, kb);
    memset(cnt, 0xA5, kb);
    int rc = kreduce_dense(dev, keys, vals, vt, n, K, agg, acc, cnt, &d);
    if (rc) fprintf(stderr, "%s: %s\n", what, d.msg);
    assert_int_equal(rc, SP_OK);
    kreduce_dense_ref(keys, vals, vt, n, K, agg, racc, rcnt);
    int dbl = kagg_acc_type(agg, vt) == SP_F64;
    int sum = agg == SP_AGG_SUM || agg == SP_AGG_AVG;
    if (dbl && sum) {
        abssum = calloc(K ? K : 1, sizeof *abssum);
        assert_non_null(abssum);
        for (size_t i = 0; i < n; i++)
            abssum[keys[i]] += val_abs(vals, vt, i);
    }
    size_t bad = 0;
    for (uint32_t k = 0; k < K; k++) {
        if (cnt[k] != rcnt[k]) {
            if (bad++ < 3)
                fprintf(stderr, "%s: cnt[%u] = %lld, want %lld\n", what, k, (long long)cnt[k],
                        (long long)rcnt[k]);
            continue;
        }
        if (agg == SP_AGG_COUNT || rcnt[k] == 0) continue;
        if (!dbl) {
            int64_t a = ((int64_t *)acc)[k], r = ((int64_t *)racc)[k];
            if (a != r && bad++ < 3)
                fprintf(stderr, "%s: acc[%u] = %lld, want %lld\n", what, k, (long long)a,
                        (long long)r);
        } else {
            double a = ((double *)acc)[k], r = ((double *)racc)[k];
            int ok = sum ? fabs(a - r) <= 1e-9 * abssum[k] + 1e-300 : a == r;
            if (!ok && bad++ < 3)
                fprintf(stderr, "%s: acc[%u] = %.17g, want %.17g\n", what, k, a, r);
        }
    }
    free(abssum);
    free(acc);
    free(racc);
    free(cnt);
    free(rcnt);
    return bad;
}

/* Every size x key count x value type x aggregate on one device. forced: 0 automatic path,
 * 1 radix forced (dense limit 1), 2 both. */
static void run_dense_matrix(sp_dev *dev, const char *tag, int forced, uint32_t only_k)
{
    uint64_t s = 42;
    size_t maxn = sizes[NSIZES - 1];
    uint32_t *keys = palloc(maxn * 4);
    void *vals = palloc(maxn * 8);
    size_t bad = 0;
    for (size_t si = 0; si < NSIZES; si++) {
        size_t n = sizes[si];
        for (size_t ki = 0; ki < NKS; ki++) {
            uint32_t K = ks[ki];
            if (only_k && K != only_k) continue;
            for (size_t i = 0; i < n; i++)
                keys[i] = (uint32_t)tu_rand_below(&s, K);
            for (size_t ti = 0; ti < NVT; ti++) {
                sp_type vt = vtypes[ti];
                fill_vals(vals, vt, n, &s);
                for (size_t ai = 0; ai < NAGG; ai++) {
                    for (int f = forced == 2 ? 0 : forced; f <= (forced ? 1 : 0); f++) {
                        char what[128];
                        snprintf(what, sizeof what, "%s n=%zu K=%u %s agg=%d%s", tag, n, K,
                                 sp_type_name(vt), (int)aggs[ai], f ? " radix" : "");
                        kreduce_set_dense_limit(dev, f ? 1 : 0);
                        bad += check_dense(dev, keys, vals, vt, n, K, aggs[ai], what);
                    }
                }
            }
        }
    }
    kreduce_set_dense_limit(dev, 0);
    free(keys);
    free(vals);
    assert_int_equal(bad, 0);
}

static void test_dense_cpu(void **state)
{
    (void)state;
    run_dense_matrix(fx.dev[0], "cpu", 0, 0);
}

static void test_dense_gpu(void **state)
{
    (void)state;
    run_dense_matrix(fx.dev[1], "gpu", 0, 0);
}

static void test_dense_radix_cpu(void **state)
{
    (void)state;
    run_dense_matrix(fx.dev[0], "cpu", 1, 16);
    run_dense_matrix(fx.dev[0], "cpu", 1, 1 << 20);
}

static void test_dense_radix_gpu(void **state)
{
    (void)state;
    run_dense_matrix(fx.dev[1], "gpu", 1, 1000);
    run_dense_matrix(fx.dev[1], "gpu", 1, 1 << 20);
}

/* Skewed keys, unaligned (copied) host memory and a key count that is not a power of two. */
static void test_dense_skew_unaligned(void **state)
{
    (void)state;
    uint64_t s = 7;
    size_t n = 300007;
    uint32_t K = 100000;
    char *kraw = malloc(n * 4 + 8), *vraw = malloc(n * 8 + 8);
    assert_non_null(kraw);
    assert_non_null(vraw);
    uint32_t *keys = (uint32_t *)(kraw + 4);
    int64_t *vals = (int64_t *)(vraw + 8);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = tu_rand(&s);
        keys[i] = r % 4 ? 3 : (uint32_t)(r >> 32) % K; /* 3/4 of the records on key 3 */
        vals[i] = (int64_t)(r >> 1) - INT64_MAX / 2;
    }
    for (int dv = 0; dv < 2; dv++)
        for (int f = 0; f < 2; f++)
            for (size_t ai = 0; ai < NAGG; ai++) {
                kreduce_set_dense_limit(fx.dev[dv], f ? 1 : 0);
                assert_int_equal(
                    check_dense(fx.dev[dv], keys, vals, SP_I64, n, K, aggs[ai], "skew"), 0);
            }
    kreduce_set_dense_limit(fx.dev[0], 0);
    kreduce_set_dense_limit(fx.dev[1], 0);
    free(kraw);
    free(vraw);
}

/* Identities for empty input and the extremes of min/max. */
static void test_dense_extremes(void **state)
{
    (void)state;
    uint32_t keys[4] = {0, 0, 1, 1};
    int64_t vals[4] = {INT64_MAX, INT64_MAX - 1, INT64_MIN, INT64_MIN + 1};
    for (int dv = 0; dv < 2; dv++) {
        int64_t acc[3], cnt[3];
        assert_int_equal(
            kreduce_dense(fx.dev[dv], keys, vals, SP_I64, 4, 3, SP_AGG_MIN, acc, cnt, NULL), 0);
        assert_true(acc[0] == INT64_MAX - 1 && acc[1] == INT64_MIN);
        assert_true(cnt[0] == 2 && cnt[1] == 2 && cnt[2] == 0);
        assert_int_equal(
            kreduce_dense(fx.dev[dv], keys, vals, SP_I64, 4, 3, SP_AGG_MAX, acc, cnt, NULL), 0);
        assert_true(acc[0] == INT64_MAX && acc[1] == INT64_MIN + 1);
        double dacc[3];
        assert_int_equal(
            kreduce_dense(fx.dev[dv], keys, vals, SP_I64, 0, 3, SP_AGG_MIN, acc, cnt, NULL), 0);
        assert_true(cnt[0] == 0 && cnt[1] == 0 && cnt[2] == 0);
        assert_int_equal(kreduce_all(fx.dev[dv], vals, SP_F64, 0, SP_AGG_MAX, dacc, NULL), 0);
        assert_true(isinf(dacc[0]) && dacc[0] < 0);
        assert_int_equal(kreduce_all(fx.dev[dv], vals, SP_I64, 4, SP_AGG_SUM, acc, NULL), 0);
        assert_int_equal(acc[0], -2); /* (MAX + MIN) + (MAX-1 + MIN+1) = -1 + -1 */
    }
    assert_int_equal(kreduce_dense(fx.dev[0], keys, NULL, SP_STR, 4, 2, SP_AGG_SUM, (int64_t[2]){0},
                                   (int64_t[2]){0}, NULL),
                     SP_ETYPE);
}

static void run_all(sp_dev *dev, const char *tag)
{
    uint64_t s = 99;
    size_t maxn = sizes[NSIZES - 1] * 4;
    void *vals = palloc(maxn * 8);
    size_t bad = 0;
    for (size_t si = 0; si <= NSIZES; si++) {
        size_t n = si < NSIZES ? sizes[si] : maxn;
        for (size_t ti = 0; ti < NVT; ti++) {
            sp_type vt = vtypes[ti];
            fill_vals(vals, vt, n, &s);
            double abssum = 0;
            for (size_t i = 0; i < n; i++)
                abssum += val_abs(vals, vt, i);
            for (size_t ai = 0; ai < NAGG; ai++) {
                sp_agg agg = aggs[ai];
                union {
                    int64_t i;
                    double f;
                } a, r;
                sp_diag d = {0};
                int rc = kreduce_all(dev, vals, vt, n, agg, &a, &d);
                if (rc) fprintf(stderr, "%s: %s\n", tag, d.msg);
                assert_int_equal(rc, 0);
                kreduce_all_ref(vals, vt, n, agg, &r);
                int ok;
                if (kagg_acc_type(agg, vt) == SP_I64)
                    ok = a.i == r.i;
                else if (agg == SP_AGG_SUM || agg == SP_AGG_AVG)
                    ok = fabs(a.f - r.f) <= 1e-9 * abssum + 1e-300;
                else
                    ok = a.f == r.f;
                if (!ok && bad++ < 5)
                    fprintf(stderr, "%s all n=%zu %s agg=%d: %lld/%.17g want %lld/%.17g\n", tag, n,
                            sp_type_name(vt), (int)agg, (long long)a.i, a.f, (long long)r.i, r.f);
            }
        }
    }
    free(vals);
    assert_int_equal(bad, 0);
}

static void test_all_cpu(void **state)
{
    (void)state;
    run_all(fx.dev[0], "cpu");
}

static void test_all_gpu(void **state)
{
    (void)state;
    run_all(fx.dev[1], "gpu");
}

/* ----------------------------------------------------------------------------- keymap */

static void mkcol(sp_col *c, sp_type t)
{
    col_init(c, t, t == SP_STR ? ENC_DICT : ENC_PLAIN, fx.arena);
}

static void test_keymap_dense_stable(void **state)
{
    (void)state;
    sp_type t = SP_I64;
    keymap *km;
    assert_int_equal(keymap_new(NULL, 1, &t, &km), 0);
    sp_col c;
    mkcol(&c, SP_I64);
    uint64_t s = 5;
    size_t n = 200000;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(col_push_i64(&c, (int64_t)tu_rand_below(&s, 50000) - 25000), 0);
    const sp_col *cols[1] = {&c};
    uint32_t *ids = malloc(n * 4), *ids2 = malloc(n * 4);
    assert_non_null(ids);
    assert_non_null(ids2);
    assert_int_equal(keymap_ids(km, cols, 0, n, ids, NULL), 0);
    uint32_t m = keymap_size(km);
    assert_true(m > 40000 && m <= 50000);
    /* Dense, first-seen order: a new id is exactly one more than the largest so far. */
    uint32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] <= next);
        if (ids[i] == next) next++;
    }
    assert_int_equal(next, m);
    /* Stable: the same rows again (split in two calls) give the same ids, nothing new. */
    assert_int_equal(keymap_ids(km, cols, 0, n / 2, ids2, NULL), 0);
    assert_int_equal(keymap_ids(km, cols, n / 2, n - n / 2, ids2 + n / 2, NULL), 0);
    assert_memory_equal(ids, ids2, n * 4);
    assert_int_equal(keymap_size(km), m);
    /* Equal values share an id; push_key gives back the value. */
    sp_col back;
    mkcol(&back, SP_I64);
    sp_col *bcols[1] = {&back};
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(keymap_push_key(km, ids[i], bcols), 0);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(col_get_i64(&back, i), col_get_i64(&c, i));
    assert_int_equal(keymap_push_key(km, m, bcols), SP_EINVAL);
    /* Rows past the column are refused. */
    assert_int_equal(keymap_ids(km, cols, n, 1, ids, NULL), SP_EINVAL);
    col_release(&back);
    col_release(&c);
    free(ids);
    free(ids2);
    keymap_free(km);
}

static void test_keymap_composite(void **state)
{
    (void)state;
    sp_type t[2] = {SP_STR, SP_I64};
    keymap *km;
    assert_int_equal(keymap_new(NULL, 2, t, &km), 0);
    sp_col a, b;
    mkcol(&a, SP_STR);
    mkcol(&b, SP_I64);
    const char *words[] = {"x", "y", "x", "", "x", "y"};
    int64_t nums[] = {1, 1, 2, 1, 1, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(col_push_id(&a, dict_intern(fx.dict, words[i], strlen(words[i]))), 0);
        assert_int_equal(col_push_i64(&b, nums[i]), 0);
    }
    const sp_col *cols[2] = {&a, &b};
    uint32_t ids[6];
    assert_int_equal(keymap_ids(km, cols, 0, 6, ids, NULL), 0);
    uint32_t want[6] = {0, 1, 2, 3, 0, 1};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(keymap_size(km), 4);
    assert_int_equal(keymap_ncols(km), 2);
    sp_col oa, ob;
    mkcol(&oa, SP_STR);
    mkcol(&ob, SP_I64);
    sp_col *ocols[2] = {&oa, &ob};
    assert_int_equal(keymap_push_key(km, 3, ocols), 0);
    size_t len;
    assert_string_equal(col_get_str(&oa, fx.dict, 0, &len), "");
    assert_int_equal(len, 0);
    assert_int_equal(col_get_i64(&ob, 0), 1);
    /* Wrong column type. */
    const sp_col *bad[2] = {&b, &b};
    sp_diag d = {0};
    assert_int_equal(keymap_ids(km, bad, 0, 1, ids, &d), SP_ETYPE);
    col_release(&a);
    col_release(&b);
    col_release(&oa);
    col_release(&ob);
    keymap_free(km);
}

static void test_keymap_floats(void **state)
{
    (void)state;
    sp_type t[2] = {SP_F64, SP_F32};
    keymap *km;
    assert_int_equal(keymap_new(NULL, 2, t, &km), 0);
    sp_col a, b;
    mkcol(&a, SP_F64);
    mkcol(&b, SP_F32);
    double da[] = {0.0, -0.0, NAN, -NAN, 1.5, 1.5};
    double db[] = {-0.0, 0.0, 2.0, 2.0, 0.25, -0.25};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(col_push_f64(&a, da[i]), 0);
        assert_int_equal(col_push_f64(&b, db[i]), 0);
    }
    const sp_col *cols[2] = {&a, &b};
    uint32_t ids[6];
    assert_int_equal(keymap_ids(km, cols, 0, 6, ids, NULL), 0);
    uint32_t want[6] = {0, 0, 1, 1, 2, 3};
    assert_memory_equal(ids, want, sizeof want);
    sp_col oa, ob;
    mkcol(&oa, SP_F64);
    mkcol(&ob, SP_F32);
    sp_col *ocols[2] = {&oa, &ob};
    assert_int_equal(keymap_push_key(km, 0, ocols), 0);
    assert_int_equal(keymap_push_key(km, 3, ocols), 0);
    assert_true(col_get_f64(&oa, 0) == 0.0 && !signbit(col_get_f64(&oa, 0)));
    assert_true(col_get_f64(&oa, 1) == 1.5 && col_get_f64(&ob, 1) == -0.25);
    col_release(&a);
    col_release(&b);
    col_release(&oa);
    col_release(&ob);
    keymap_free(km);
}

/* ---------------------------------------------------------------------- keyed_aggregate */

static sp_td *parse_td(const char *s)
{
    sp_td *td = NULL;
    sp_diag d = {0};
    assert_int_equal(td_parse(NULL, s, &td, &d), 0);
    return td;
}

/* A (str, i64) batch from parallel arrays. */
static sp_batch *mk_pairs(const char *const *k, const int64_t *v, size_t n, int raw)
{
    sp_td *td = parse_td("(str,i64)");
    sp_batch *b;
    assert_int_equal(batch_new(&fx.env, td, 1000, &b, NULL), 0);
    td_free(NULL, td);
    if (raw) {
        col_release(&b->cols[0]);
        col_init(&b->cols[0], SP_STR, ENC_RAW, fx.arena);
    }
    for (size_t i = 0; i < n; i++) {
        if (raw)
            assert_int_equal(col_push_text(&b->cols[0], k[i], strlen(k[i])), 0);
        else
            assert_int_equal(col_push_id(&b->cols[0], dict_intern(fx.dict, k[i], strlen(k[i]))), 0);
        assert_int_equal(col_push_i64(&b->cols[1], v[i]), 0);
    }
    b->n = n;
    size_t st[2] = {0, n};
    assert_int_equal(batch_set_parts(b, 1, st, NULL), 0);
    return b;
}

static void expect_row(const sp_batch *b, size_t i, const char *k, int64_t v)
{
    size_t len;
    const char *s = col_get_str(&b->cols[0], fx.dict, i, &len);
    assert_int_equal(len, strlen(k));
    assert_memory_equal(s, k, len);
    assert_int_equal(col_get_i64(&b->cols[1], i), v);
}

/* The row of key k holds v (wherever it is). */
static void expect_key(const sp_batch *b, const char *k, int64_t v)
{
    const uint32_t *ids = b->cols[0].data;
    uint32_t id = dict_find(fx.dict, k, strlen(k));
    for (size_t i = 0; i < b->n; i++)
        if (ids[i] == id) {
            expect_row(b, i, k, v);
            return;
        }
    fail_msg("no row for key '%s'", k);
}

static void test_keyed_str_sum(void **state)
{
    (void)state;
    const char *k[] = {"b", "a", "", "b", "a", "b", ""};
    int64_t v[] = {1, 2, 3, 4, 5, 6, -7};
    sp_td *otd = parse_td("(str,i64)");
    for (int raw = 0; raw < 2; raw++) {
        sp_batch *in = mk_pairs(k, v, 7, raw);
        for (int dv = -1; dv < 2; dv++) {
            sp_dev *dev = dv < 0 ? NULL : fx.dev[dv];
            sp_batch *out = NULL;
            sp_diag d = {0};
            int rc = keyed_aggregate(dev, &fx.env, NULL, in, 1, 1, SP_AGG_SUM, otd, &out, &d);
            if (rc) fprintf(stderr, "keyed: %s\n", d.msg);
            assert_int_equal(rc, 0);
            assert_int_equal(out->n, 3);
            assert_int_equal(out->time_ms, 1000);
            /* Rows come out in order of first appearance in the batch. */
            expect_row(out, 0, "b", 11);
            expect_row(out, 1, "a", 7);
            expect_row(out, 2, "", -4);
            batch_release(out);
            /* COUNT and MAX on the same batch. */
            assert_int_equal(
                keyed_aggregate(dev, &fx.env, NULL, in, 1, -1, SP_AGG_COUNT, otd, &out, NULL), 0);
            assert_int_equal(out->n, 3);
            expect_key(out, "b", 3);
            expect_key(out, "", 2);
            batch_release(out);
            assert_int_equal(
                keyed_aggregate(dev, &fx.env, NULL, in, 1, 1, SP_AGG_MAX, otd, &out, NULL), 0);
            expect_key(out, "b", 6);
            expect_key(out, "a", 5);
            expect_key(out, "", 3);
            batch_release(out);
        }
        batch_release(in);
    }
    td_free(NULL, otd);
}

static void test_keyed_empty(void **state)
{
    (void)state;
    sp_batch *in = mk_pairs(NULL, NULL, 0, 0);
    sp_td *otd = parse_td("(str,i64)");
    sp_batch *out = NULL;
    assert_int_equal(
        keyed_aggregate(fx.dev[0], &fx.env, NULL, in, 1, 1, SP_AGG_SUM, otd, &out, NULL), 0);
    assert_non_null(out);
    assert_int_equal(out->n, 0);
    assert_int_equal(out->ncols, 2);
    batch_release(out);
    /* Misuse: a wrong output type, a composite key without a keymap. */
    sp_td *bad = parse_td("(i64,i64)");
    assert_int_equal(
        keyed_aggregate(fx.dev[0], &fx.env, NULL, in, 1, 1, SP_AGG_SUM, bad, &out, NULL), SP_ETYPE);
    assert_null(out);
    assert_int_equal(
        keyed_aggregate(fx.dev[0], &fx.env, NULL, in, 2, 1, SP_AGG_COUNT, otd, &out, NULL),
        SP_EINVAL);
    td_free(NULL, bad);
    td_free(NULL, otd);
    batch_release(in);
}

/* (str, i64) keys through a keymap with a f64 value: SUM and AVG; ids stable across
 * batches, so a second batch's rows come out in the order the keys were first seen. */
static void test_keyed_composite(void **state)
{
    (void)state;
    sp_td *itd = parse_td("(str,i64,f64)");
    sp_td *otd = parse_td("(str,i64,f64)");
    sp_type kt[2] = {SP_STR, SP_I64};
    keymap *km;
    assert_int_equal(keymap_new(NULL, 2, kt, &km), 0);
    const char *w[] = {"p", "q", "p", "p", "q"};
    int64_t x[] = {1, 1, 2, 1, 1};
    double y[] = {0.5, 1.0, 2.0, 1.5, 3.0};
    sp_batch *in;
    assert_int_equal(batch_new(&fx.env, itd, 0, &in, NULL), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(col_push_id(&in->cols[0], dict_intern(fx.dict, w[i], 1)), 0);
        assert_int_equal(col_push_i64(&in->cols[1], x[i]), 0);
        assert_int_equal(col_push_f64(&in->cols[2], y[i]), 0);
    }
    in->n = 5;
    size_t st[2] = {0, 5};
    assert_int_equal(batch_set_parts(in, 1, st, NULL), 0);
    for (int dv = -1; dv < 2; dv++) {
        sp_batch *out = NULL;
        assert_int_equal(keyed_aggregate(dv < 0 ? NULL : fx.dev[dv], &fx.env, km, in, 2, 2,
                                         SP_AGG_SUM, otd, &out, NULL),
                         0);
        assert_int_equal(out->n, 3);
        size_t len;
        assert_string_equal(col_get_str(&out->cols[0], fx.dict, 0, &len), "p");
        assert_int_equal(col_get_i64(&out->cols[1], 0), 1);
        assert_true(col_get_f64(&out->cols[2], 0) == 2.0);
        assert_string_equal(col_get_str(&out->cols[0], fx.dict, 1, &len), "q");
        assert_true(col_get_f64(&out->cols[2], 1) == 4.0);
        assert_int_equal(col_get_i64(&out->cols[1], 2), 2);
        assert_true(col_get_f64(&out->cols[2], 2) == 2.0);
        batch_release(out);
        assert_int_equal(keyed_aggregate(dv < 0 ? NULL : fx.dev[dv], &fx.env, km, in, 2, 2,
                                         SP_AGG_AVG, otd, &out, NULL),
                         0);
        assert_true(col_get_f64(&out->cols[2], 0) == 1.0);
        assert_true(col_get_f64(&out->cols[2], 1) == 2.0);
        batch_release(out);
    }
    assert_int_equal(keymap_size(km), 3);
    batch_release(in);
    keymap_free(km);
    td_free(NULL, itd);
    td_free(NULL, otd);
}

/* A dictionary far larger than the batch: compaction keeps rows in id order, same results. */
static void test_keyed_compaction(void **state)
{
    (void)state;
    char buf[32];
    for (int i = 0; i < 20000; i++) {
        int len = snprintf(buf, sizeof buf, "big%d", i);
        dict_intern(fx.dict, buf, (size_t)len);
    }
    const char *k[] = {"big19999", "big5", "big700", "big5", "big19999", "big12"};
    int64_t v[] = {1, 2, 3, 4, 5, 6};
    sp_batch *in = mk_pairs(k, v, 6, 0);
    sp_td *otd = parse_td("(str,i64)");
    for (int dv = -1; dv < 2; dv++) {
        sp_batch *out = NULL;
        assert_int_equal(keyed_aggregate(dv < 0 ? NULL : fx.dev[dv], &fx.env, NULL, in, 1, 1,
                                         SP_AGG_SUM, otd, &out, NULL),
                         0);
        assert_int_equal(out->n, 4);
        expect_row(out, 0, "big19999", 6);
        expect_row(out, 1, "big5", 6);
        expect_row(out, 2, "big700", 3);
        expect_row(out, 3, "big12", 6);
        batch_release(out);
    }
    td_free(NULL, otd);
    batch_release(in);
}

/* i64 keys, many distinct, random: keyed_aggregate agrees with a direct reference. */
static void test_keyed_int_random(void **state)
{
    (void)state;
    sp_td *td = parse_td("(i64,i32)");
    sp_td *otd = parse_td("(i64,i64)");
    sp_type kt = SP_I64;
    keymap *km;
    assert_int_equal(keymap_new(NULL, 1, &kt, &km), 0);
    sp_batch *in;
    assert_int_equal(batch_new(&fx.env, td, 0, &in, NULL), 0);
    uint64_t s = 11;
    size_t n = 100003;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(col_push_i64(&in->cols[0], (int64_t)tu_rand_below(&s, 3000) * 1000003), 0);
        assert_int_equal(col_push_i64(&in->cols[1], (int64_t)tu_rand_below(&s, 2001) - 1000), 0);
    }
    in->n = n;
    size_t st[2] = {0, n};
    assert_int_equal(batch_set_parts(in, 1, st, NULL), 0);
    sp_batch *ref = NULL;
    assert_int_equal(keyed_aggregate(NULL, &fx.env, km, in, 1, 1, SP_AGG_SUM, otd, &ref, NULL), 0);
    int64_t total = 0;
    for (size_t i = 0; i < ref->n; i++)
        total += col_get_i64(&ref->cols[1], i);
    int64_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += col_get_i64(&in->cols[1], i);
    assert_int_equal(total, want);
    for (int dv = 0; dv < 2; dv++) {
        sp_batch *out = NULL;
        assert_int_equal(
            keyed_aggregate(fx.dev[dv], &fx.env, km, in, 1, 1, SP_AGG_SUM, otd, &out, NULL), 0);
        assert_int_equal(out->n, ref->n);
        for (size_t i = 0; i < ref->n; i++) {
            assert_int_equal(col_get_i64(&out->cols[0], i), col_get_i64(&ref->cols[0], i));
            assert_int_equal(col_get_i64(&out->cols[1], i), col_get_i64(&ref->cols[1], i));
        }
        batch_release(out);
    }
    /* A later small batch: K (3000 keys) > 4n, so ids are compacted; rows come in order of
     * first appearance, the new key 42 first. */
    int64_t k0 = col_get_i64(&in->cols[0], 0);
    sp_batch *small;
    assert_int_equal(batch_new(&fx.env, td, 0, &small, NULL), 0);
    int64_t sk[3] = {42, k0, k0}, sv[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(col_push_i64(&small->cols[0], sk[i]), 0);
        assert_int_equal(col_push_i64(&small->cols[1], sv[i]), 0);
    }
    small->n = 3;
    size_t st3[2] = {0, 3};
    assert_int_equal(batch_set_parts(small, 1, st3, NULL), 0);
    for (int dv = -1; dv < 2; dv++) {
        sp_batch *out = NULL;
        assert_int_equal(keyed_aggregate(dv < 0 ? NULL : fx.dev[dv], &fx.env, km, small, 1, 1,
                                         SP_AGG_SUM, otd, &out, NULL),
                         0);
        assert_int_equal(out->n, 2);
        assert_int_equal(col_get_i64(&out->cols[0], 0), 42);
        assert_int_equal(col_get_i64(&out->cols[1], 0), 2);
        assert_int_equal(col_get_i64(&out->cols[0], 1), k0);
        assert_int_equal(col_get_i64(&out->cols[1], 1), 4);
        batch_release(out);
    }
    batch_release(small);
    batch_release(ref);
    batch_release(in);
    keymap_free(km);
    td_free(NULL, td);
    td_free(NULL, otd);
}

/* ------------------------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    topo_opts o = {0};
    o.synthetic = "pack:1 numa:1 core:2 pu:1";
    if (topo_open(&o, &fx.topo, NULL) || arena_new(fx.topo, 0, 0, NULL, &fx.arena, NULL) ||
        dict_new(NULL, &fx.dict))
        return -1;
    fx.env.dict = fx.dict;
    fx.env.arenas = &fx.arena;
    fx.env.narenas = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_stats s;
    arena_get_stats(fx.arena, &s);
    if (s.live_bytes) fprintf(stderr, "arena: %zu bytes still live\n", s.live_bytes);
    arena_free(fx.arena);
    dict_free(fx.dict);
    topo_close(fx.topo);
    return s.live_bytes ? -1 : 0;
}

/* Below the default row threshold the reference runs on the host: no device buffer is needed,
 * so a device that refuses every buffer still answers; at the threshold it does not. */
static void test_small_on_host(void **state)
{
    (void)state;
    sp_dev *dev = fx.dev[0];
    uint64_t s = 99;
    enum { N = 1000, K = 16 };
    uint32_t *keys = palloc(N * 4);
    int64_t *vals = palloc(N * 8), *acc = palloc(K * 8), *cnt = palloc(K * 8);
    int64_t racc[K], rcnt[K], all, rall;
    for (size_t i = 0; i < N; i++) {
        keys[i] = (uint32_t)(tu_rand(&s) % K);
        vals[i] = (int64_t)(tu_rand(&s) % 1000) - 500;
    }
    dev_set_tunable(dev, DEV_TUNE_KREDUCE_HOST_BELOW, 0);
    dev_test_set_mem_limit(dev, 1);
    sp_diag d = {0};
    assert_int_equal(kreduce_dense(dev, keys, vals, SP_I64, 255, K, SP_AGG_SUM, acc, cnt, &d),
                     SP_OK);
    kreduce_dense_ref(keys, vals, SP_I64, 255, K, SP_AGG_SUM, racc, rcnt);
    assert_memory_equal(acc, racc, sizeof racc);
    assert_memory_equal(cnt, rcnt, sizeof rcnt);
    assert_int_equal(kreduce_all(dev, vals, SP_I64, 255, SP_AGG_MAX, &all, &d), SP_OK);
    kreduce_all_ref(vals, SP_I64, 255, SP_AGG_MAX, &rall);
    assert_true(all == rall);
    assert_int_equal(kreduce_dense(dev, keys, vals, SP_I64, N, K, SP_AGG_SUM, acc, cnt, &d),
                     SP_EDEVMEM);
    assert_int_equal(kreduce_all(dev, vals, SP_I64, N, SP_AGG_MAX, &all, &d), SP_EDEVMEM);
    /* A larger threshold moves N rows to the host too. */
    dev_set_tunable(dev, DEV_TUNE_KREDUCE_HOST_BELOW, N + 1);
    assert_int_equal(kreduce_dense(dev, keys, vals, SP_I64, N, K, SP_AGG_SUM, acc, cnt, &d), SP_OK);
    kreduce_dense_ref(keys, vals, SP_I64, N, K, SP_AGG_SUM, racc, rcnt);
    assert_memory_equal(acc, racc, sizeof racc);
    dev_test_set_mem_limit(dev, 0);
    dev_set_tunable(dev, DEV_TUNE_KREDUCE_HOST_BELOW, 1);
    free(keys);
    free(vals);
    free(acc);
    free(cnt);
}

int main(void)
{
    for (int i = 0; i < 2; i++) {
        dev_opts o = {0};
        o.strategy = i ? DEV_STRATEGY_GPU : DEV_STRATEGY_CPU;
        o.use_cache = 1;
        sp_diag d = {0};
        if (dev_open(&o, &fx.dev[i], &d)) {
            fprintf(stderr, "no OpenCL device (%s): skipping\n", d.msg);
            if (fx.dev[0]) dev_close(fx.dev[0]);
            return 77;
        }
        /* Check the kernels on every size, tiny ones included. */
        dev_set_tunable(fx.dev[i], DEV_TUNE_KREDUCE_HOST_BELOW, 1);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_extremes),   cmocka_unit_test(test_dense_skew_unaligned),
        cmocka_unit_test(test_dense_cpu),        cmocka_unit_test(test_dense_gpu),
        cmocka_unit_test(test_dense_radix_cpu),  cmocka_unit_test(test_dense_radix_gpu),
        cmocka_unit_test(test_all_cpu),          cmocka_unit_test(test_all_gpu),
        cmocka_unit_test(test_small_on_host),    cmocka_unit_test(test_keymap_dense_stable),
        cmocka_unit_test(test_keymap_composite), cmocka_unit_test(test_keymap_floats),
        cmocka_unit_test(test_keyed_str_sum),    cmocka_unit_test(test_keyed_empty),
        cmocka_unit_test(test_keyed_composite),  cmocka_unit_test(test_keyed_compaction),
        cmocka_unit_test(test_keyed_int_random),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dev_close(fx.dev[0]);
    dev_close(fx.dev[1]);
    return rc;
}
