/* layers: util device exec batch ops */
/* test_ew.c — fused element-wise stages. Every device stage (CPU and GPU kernel strategies on
 * the same OpenCL device) is compared with the same chain run by the host evaluator, the
 * reference, on random inputs of sizes 0, 1, 63, 64, 65, 1000, 4097, 100003 split into
 * partitions; plus direct checks of a few values, row order, division by zero reporting, the
 * host path for string concatenation, uneven and empty partitions, more rows than the CPU
 * strategy has chunks, and skipping failing rows (ew_stage_set_on_error). */
#include "ops/ew_int.h"
#include "support/exprfix.h"
#include "support/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4097, 100003};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static sp_topo *topo;
static sp_arena *arena;
static sp_dict *dict;
static batch_env env;
static sp_exec *exec;
static sp_dev *devs[2];
static const char *const strategy_name[2] = {"cpu", "gpu"};

/* ----------------------------------------------------------------------------- batches */

static sp_td *ty(const char *s)
{
    sp_td *t = NULL;
    sp_diag d = {0};
    assert_int_equal(td_parse(NULL, s, &t, &d), SP_OK);
    return t;
}

static const char *const keys[] = {"a", "b", "c", "dd", "e"};

/* Random rows of `type`; integers in [-range, range], 3 partitions when n allows. */
static sp_batch *mk_batch(const char *type, size_t n, uint64_t seed, int64_t range)
{
    sp_td *td = ty(type);
    sp_batch *b = NULL;
    sp_diag d = {0};
    assert_int_equal(batch_new(&env, td, 1000, &b, &d), SP_OK);
    td_free(NULL, td);
    for (int c = 0; c < b->ncols; c++) {
        sp_col *col = &b->cols[c];
        assert_int_equal(col_reserve(col, n, 0), 0);
        for (size_t i = 0; i < n; i++) {
            int rc;
            switch (col->type) {
            case SP_F32:
            case SP_F64:
                rc = col_push_f64(col, (double)tu_rand_below(&seed, 2000001) / 1000.0 - 1000.0);
                break;
            case SP_STR: {
                const char *k = keys[tu_rand_below(&seed, 5)];
                rc = col_push_id(col, dict_intern(dict, k, strlen(k)));
                break;
            }
            case SP_BOOL:
                rc = col_push_i64(col, (int64_t)tu_rand_below(&seed, 2));
                break;
            default:
                rc = col_push_i64(col,
                                  (int64_t)tu_rand_below(&seed, (uint64_t)(2 * range + 1)) - range);
            }
            assert_int_equal(rc, 0);
        }
    }
    b->n = n;
    assert_int_equal(batch_split_even(b, n >= 3 ? 3 : 1, NULL), 0);
    return b;
}

static void same_batch(const sp_batch *x, const sp_batch *y)
{
    assert_true(td_equal(x->td, y->td));
    assert_int_equal(x->n, y->n);
    assert_int_equal(x->nparts, y->nparts);
    for (unsigned p = 0; p <= x->nparts; p++)
        assert_int_equal(x->part_start[p], y->part_start[p]);
    for (int c = 0; c < x->ncols; c++) {
        const sp_col *a = &x->cols[c], *b = &y->cols[c];
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->len, x->n);
        assert_int_equal(b->len, y->n);
        for (size_t i = 0; i < x->n; i++) {
            if (a->type == SP_F64 || a->type == SP_F32) {
                double u = col_get_f64(a, i), v = col_get_f64(b, i);
                if (!(u == v || (isnan(u) && isnan(v))))
                    fail_msg("column %d row %zu: %.17g vs %.17g", c, i, u, v);
            } else if (a->type == SP_STR) {
                assert_int_equal(((uint32_t *)a->data)[i], ((uint32_t *)b->data)[i]);
            } else if (col_get_i64(a, i) != col_get_i64(b, i)) {
                fail_msg("column %d row %zu: %lld vs %lld", c, i, (long long)col_get_i64(a, i),
                         (long long)col_get_i64(b, i));
            }
        }
    }
}

static ew_stage *mk_stage(sp_dev *dev, const char *in, int n, const ew_step *steps)
{
    sp_td *td = ty(in);
    ew_stage *st = NULL;
    sp_diag d = {0};
    int rc = ew_stage_new(dev, &env, td, n, steps, "stage 1", &st, &d);
    if (rc) fprintf(stderr, "ew_stage_new: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    td_free(NULL, td);
    return st;
}

static sp_batch *run(ew_stage *st, const sp_batch *in)
{
    sp_batch *out = NULL;
    sp_diag d = {0};
    int rc = ew_stage_run(st, exec, in, &out, &d);
    if (rc) fprintf(stderr, "ew_stage_run: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    assert_non_null(out);
    assert_int_equal(out->time_ms, in->time_ms);
    return out;
}

/* Runs the chain on both strategies and on the host for every size; `check` (may be NULL)
 * verifies the host result against the input independently. Returns the last host result
 * (for n = 100003) for callers that want to look further, or NULL. */
typedef void (*check_fn)(const sp_batch *in, const sp_batch *out);

static void compare_all(const char *in_type, int nsteps, const ew_step *steps, int64_t range,
                        int want_device, check_fn check)
{
    ew_stage *host = mk_stage(NULL, in_type, nsteps, steps);
    assert_false(ew_stage_on_device(host));
    ew_stage *dev[2];
    for (int s = 0; s < 2; s++) {
        dev[s] = mk_stage(devs[s], in_type, nsteps, steps);
        assert_int_equal(ew_stage_on_device(dev[s]), want_device);
        assert_true(td_equal(ew_stage_type(dev[s]), ew_stage_type(host)));
    }
    for (size_t k = 0; k < NSIZES; k++) {
        sp_batch *in = mk_batch(in_type, sizes[k], 1234 + k, range);
        sp_batch *want = run(host, in);
        if (check) check(in, want);
        for (int s = 0; s < 2; s++) {
            sp_batch *got = run(dev[s], in);
            same_batch(got, want);
            batch_release(got);
        }
        batch_release(want);
        batch_release(in);
    }
    for (int s = 0; s < 2; s++)
        ew_stage_free(dev[s]);
    ew_stage_free(host);
}

/* ------------------------------------------------------------------------------- tests */

static void check_map_i64(const sp_batch *in, const sp_batch *out)
{
    assert_int_equal(out->n, in->n);
    for (size_t i = 0; i < in->n; i++)
        assert_int_equal(col_get_i64(&out->cols[0], i), col_get_i64(&in->cols[0], i) * 2 + 1);
}

static void test_map_i64(void **state)
{
    (void)state;
    ew_step s[] = {{EW_MAP, bin(SP_OP_ADD, bin(SP_OP_MUL, arg(0), lit(2)), lit(1))}};
    compare_all("i64", 1, s, 1000000, 1, check_map_i64);
}

static void check_map_values(const sp_batch *in, const sp_batch *out)
{
    assert_int_equal(out->n, in->n);
    for (size_t i = 0; i < in->n; i++) {
        assert_int_equal(((uint32_t *)out->cols[0].data)[i], ((uint32_t *)in->cols[0].data)[i]);
        assert_int_equal(col_get_i64(&out->cols[1], i), col_get_i64(&in->cols[1], i) * 3);
    }
}

static void test_map_values(void **state)
{
    (void)state;
    ew_step s[] = {{EW_MAP_VALUES, bin(SP_OP_MUL, arg(0), lit(3))}};
    compare_all("(str,i64)", 1, s, 1000, 1, check_map_values);
}

static void check_filter_map(const sp_batch *in, const sp_batch *out)
{
    size_t j = 0;
    for (size_t i = 0; i < in->n; i++) {
        int64_t v = col_get_i64(&in->cols[0], i);
        if (v % 3 != 0) continue;
        assert_true(j < out->n);
        assert_int_equal(col_get_i64(&out->cols[0], j), v);
        assert_true(col_get_f64(&out->cols[1], j) == (double)(v / 3) + 0.5);
        j++;
    }
    assert_int_equal(j, out->n);
}

static void test_filter_map(void **state)
{
    (void)state;
    ew_step s[] = {
        {EW_FILTER, bin(SP_OP_EQ, bin(SP_OP_MOD, arg(0), lit(3)), lit(0))},
        {EW_MAP, tup2(arg(0), bin(SP_OP_ADD, bin(SP_OP_DIV, arg(0), lit(3)), flt(0.5)))},
    };
    compare_all("i64", 2, s, 100000, 1, check_filter_map);
}

static void test_chain4(void **state)
{
    (void)state;
    /* (i64,f64): map p => (p._1 * 2, p._2 + p._1); filter p => p._2 > 0.5;
     * mapValues v => v * 1.5 + 2; map p => (p._2, max(p._1, 7) - p._2.toLong % 5) */
    sp_expr *p = arg(0);
    ew_step s[] = {
        {EW_MAP, tup2(bin(SP_OP_MUL, fld(p, 0), lit(2)), bin(SP_OP_ADD, fld(p, 1), fld(p, 0)))},
        {EW_FILTER, bin(SP_OP_GT, fld(p, 1), flt(0.5))},
        {EW_MAP_VALUES, bin(SP_OP_ADD, bin(SP_OP_MUL, arg(0), flt(1.5)), lit(2))},
        {EW_MAP, tup2(fld(p, 1), bin(SP_OP_SUB, bin(SP_OP_MAX, fld(p, 0), lit(7)),
                                     bin(SP_OP_MOD, cast(fld(p, 1), SP_I64), lit(5))))},
    };
    compare_all("(i64,f64)", 4, s, 1000, 1, NULL);
}

static void test_mixed_i32_bool(void **state)
{
    (void)state;
    /* (i32,bool,f32): filter p => p._2 || p._1 < 0; map p => (p._1 / 3, p._3 * 2, !p._2) */
    sp_expr *p = arg(0);
    sp_expr *neg = node(EX_UNOP, 1, (sp_expr *[]){fld(p, 1)});
    neg->op = SP_OP_NOT;
    sp_expr *k3[3] = {bin(SP_OP_DIV, fld(p, 0), cast(lit(3), SP_I32)),
                      bin(SP_OP_MUL, fld(p, 2), cast(lit(2), SP_F32)), neg};
    ew_step s[] = {
        {EW_FILTER, bin(SP_OP_OR, fld(p, 1), bin(SP_OP_LT, fld(p, 0), lit(0)))},
        {EW_MAP, node(EX_TUPLE, 3, k3)},
    };
    compare_all("(i32,bool,f32)", 2, s, 100000, 1, NULL);
}

static void check_key_b(const sp_batch *in, const sp_batch *out)
{
    uint32_t b = dict_find(dict, "b", 1);
    size_t j = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (((uint32_t *)in->cols[0].data)[i] != b) continue;
        assert_int_equal(col_get_i64(&out->cols[1], j), col_get_i64(&in->cols[1], i));
        j++;
    }
    assert_int_equal(j, out->n);
}

static void test_str_key_filter(void **state)
{
    (void)state;
    ew_step s[] = {{EW_FILTER, bin(SP_OP_EQ, fld(arg(0), 0), str("b"))}};
    compare_all("(str,i64)", 1, s, 1000, 1, check_key_b);
    /* A literal string as an output value, and != on ids. */
    ew_step s2[] = {{EW_MAP, tup2(str("const"), bin(SP_OP_NE, fld(arg(0), 0), str("zz")))}};
    compare_all("(str,i64)", 1, s2, 10, 1, NULL);
}

static void check_concat(const sp_batch *in, const sp_batch *out)
{
    assert_int_equal(out->n, in->n);
    for (size_t i = 0; i < in->n; i++) {
        size_t la, lb;
        const char *a = col_get_str(&in->cols[0], dict, i, &la);
        const char *b = col_get_str(&out->cols[0], dict, i, &lb);
        assert_int_equal(lb, la + 1);
        assert_memory_equal(b, a, la);
        assert_int_equal(b[la], '!');
        assert_int_equal(col_get_i64(&out->cols[1], i), col_get_i64(&in->cols[1], i));
    }
}

static void test_host_concat(void **state)
{
    (void)state;
    ew_step s[] = {{EW_MAP, tup2(bin(SP_OP_ADD, fld(arg(0), 0), str("!")), fld(arg(0), 1))}};
    compare_all("(str,i64)", 1, s, 1000000, 0, check_concat);
    ew_stage *st = mk_stage(devs[0], "(str,i64)", 1, s);
    strbuf sb;
    sb_init(&sb, NULL);
    ew_stage_explain(st, &sb);
    assert_non_null(strstr(sb.s, "host"));
    assert_non_null(strstr(sb.s, "concatenation"));
    sb_free(&sb);
    ew_stage_free(st);
}

/* First row with a zero in column 0, or SIZE_MAX. */
static size_t first_zero(const sp_batch *in)
{
    for (size_t i = 0; i < in->n; i++)
        if (col_get_i64(&in->cols[0], i) == 0) return i;
    return SIZE_MAX;
}

static void test_div_zero(void **state)
{
    (void)state;
    ew_step s[] = {{EW_MAP, bin(SP_OP_DIV, lit(100), arg(0))}};
    for (int s_ = 0; s_ < 3; s_++) {
        ew_stage *st = mk_stage(s_ < 2 ? devs[s_] : NULL, "i64", 1, s);
        for (size_t k = 0; k < NSIZES; k++) {
            sp_batch *in = mk_batch("i64", sizes[k], 77 + k, 20), *out = NULL;
            sp_diag d = {0};
            size_t z = first_zero(in);
            int rc = ew_stage_run(st, exec, in, &out, &d);
            if (z == SIZE_MAX) {
                assert_int_equal(rc, SP_OK);
                batch_release(out);
            } else {
                char want[128];
                snprintf(want, sizeof want, "stage 1: division by zero at row %zu", z);
                assert_int_equal(rc, SP_ERUNTIME);
                assert_null(out);
                if (strcmp(d.msg, want))
                    fail_msg("%s: got \"%s\", want \"%s\"", s_ < 2 ? strategy_name[s_] : "host",
                             d.msg, want);
            }
            batch_release(in);
        }
        ew_stage_free(st);
    }
}

static void test_guarded_div(void **state)
{
    (void)state;
    /* filter x => x != 0 && 10 / x > 1, then map x => if (x > 0) 100 % x else x: no error. */
    sp_expr *x = arg(0);
    sp_expr *k3[3] = {bin(SP_OP_GT, x, lit(0)), bin(SP_OP_MOD, lit(100), x), x};
    ew_step s[] = {
        {EW_FILTER, bin(SP_OP_AND, bin(SP_OP_NE, x, lit(0)),
                        bin(SP_OP_GT, bin(SP_OP_DIV, lit(10), x), lit(1)))},
        {EW_MAP, node(EX_IF, 3, k3)},
    };
    compare_all("i64", 2, s, 20, 1, NULL);
    /* Without a filter: a zero in a not-taken branch is no error either. */
    sp_expr *k3b[3] = {bin(SP_OP_EQ, x, lit(0)), lit(-1), bin(SP_OP_DIV, lit(1000), x)};
    ew_step s2[] = {{EW_MAP, node(EX_IF, 3, k3b)}};
    compare_all("i64", 1, s2, 5, 1, NULL);
}

static void test_explain(void **state)
{
    (void)state;
    sp_expr *p = arg(0);
    ew_step s[] = {
        {EW_FILTER, bin(SP_OP_EQ, fld(p, 0), str("b"))},
        {EW_MAP_VALUES, bin(SP_OP_DIV, arg(0), lit(3))},
    };
    for (int k = 0; k < 2; k++) {
        ew_stage *st = mk_stage(devs[k], "(str,i64)", 2, s);
        strbuf sb;
        sb_init(&sb, NULL);
        ew_stage_explain(st, &sb);
        if (k == 0) {
            assert_non_null(strstr(sb.s, "CPU strategy"));
            assert_non_null(strstr(sb.s, "__kernel void ew_eval"));
            assert_non_null(strstr(sb.s, "__kernel void ew_pack"));
        } else {
            assert_non_null(strstr(sb.s, "GPU strategy"));
            assert_non_null(strstr(sb.s, "__kernel void ew_stage"));
        }
        assert_non_null(strstr(sb.s, "sp_div_l"));
        fprintf(stderr, "---- generated (%s strategy) ----\n%s\n", strategy_name[k], sb.s);
        sb_free(&sb);
        ew_stage_free(st);
    }
}

static void test_raw_strings_use_host(void **state)
{
    (void)state;
    /* A batch whose str column is raw text still runs (on the host) and agrees. */
    ew_step s[] = {{EW_FILTER, bin(SP_OP_EQ, fld(arg(0), 0), str("b"))}};
    ew_stage *st = mk_stage(devs[0], "(str,i64)", 1, s);
    sp_batch *in = mk_batch("(str,i64)", 1000, 5, 10);
    sp_batch *want = run(st, in);
    sp_col raw;
    memset(&raw, 0, sizeof raw);
    raw.type = SP_STR;
    raw.enc = ENC_RAW;
    raw.arena = arena;
    for (size_t i = 0; i < in->n; i++) {
        size_t len;
        const char *t = col_get_str(&in->cols[0], dict, i, &len);
        assert_int_equal(col_push_text(&raw, t, len), 0);
    }
    col_release(&in->cols[0]);
    in->cols[0] = raw;
    sp_batch *got = run(st, in);
    same_batch(got, want);
    batch_release(got);
    batch_release(want);
    batch_release(in);
    ew_stage_free(st);
}

/* Uneven partitions, some empty, and more rows than the CPU strategy has chunks: the output
 * partition table must match the host's. */
static void test_partitions(void **state)
{
    (void)state;
    ew_step s[] = {
        {EW_MAP, tup2(arg(0), bin(SP_OP_MUL, arg(0), lit(5)))},
        {EW_FILTER, bin(SP_OP_GT, fld(arg(0), 1), lit(0))},
    };
    ew_stage *host = mk_stage(NULL, "i64", 2, s);
    ew_stage *dev[2] = {mk_stage(devs[0], "i64", 2, s), mk_stage(devs[1], "i64", 2, s)};
    static const size_t ns[] = {10, 1000, 1000003};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        sp_batch *in = mk_batch("i64", n, 99 + k, 1000);
        /* 6 partitions: empty, tiny, empty, a third, the rest, empty at the end. */
        size_t start[7] = {0, 0, n / 10 > 0 ? 1 : 0, n / 10 > 0 ? 1 : 0, n / 3, n, n};
        unsigned nodes[6] = {0};
        assert_int_equal(batch_set_parts(in, 6, start, nodes), 0);
        sp_batch *want = run(host, in);
        for (int d = 0; d < 2; d++) {
            sp_batch *got = run(dev[d], in);
            same_batch(got, want);
            batch_release(got);
        }
        batch_release(want);
        batch_release(in);
    }
    ew_stage_free(dev[0]);
    ew_stage_free(dev[1]);
    ew_stage_free(host);
}

/* Rejected rows, collected from any thread. */
typedef struct rejects {
    pthread_mutex_t mu;
    size_t n, cap;
    size_t *rows;
    char last[256];
    int fail_with; /* status the callback returns (0: accept) */
} rejects;

static int on_reject(void *ud, size_t row, const char *reason)
{
    rejects *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->rows = realloc(r->rows, r->cap * sizeof *r->rows);
    }
    r->rows[r->n++] = row;
    snprintf(r->last, sizeof r->last, "%s", reason);
    pthread_mutex_unlock(&r->mu);
    return r->fail_with;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void test_skip_div_zero(void **state)
{
    (void)state;
    /* filter x => x % 7 != 3, then map x => (x, 100 / x): a zero that passes the filter is
     * rejected; x == 3 rows never reach the division. */
    sp_expr *x = arg(0);
    ew_step s[] = {
        {EW_FILTER, bin(SP_OP_NE, bin(SP_OP_MOD, x, lit(7)), lit(3))},
        {EW_MAP, tup2(x, bin(SP_OP_DIV, lit(100), x))},
    };
    /* map only: x => 100 / x */
    ew_step m[] = {{EW_MAP, bin(SP_OP_DIV, lit(100), x)}};
    for (int chain = 0; chain < 2; chain++) {
        for (int where = 0; where < 3; where++) {
            ew_stage *st =
                mk_stage(where < 2 ? devs[where] : NULL, "i64", chain ? 1 : 2, chain ? m : s);
            rejects r = {.mu = PTHREAD_MUTEX_INITIALIZER};
            ew_stage_set_on_error(st, 1, on_reject, &r);
            for (size_t k = 0; k < NSIZES; k++) {
                sp_batch *in = mk_batch("i64", sizes[k], 300 + k, 20), *out = NULL;
                sp_diag d = {0};
                r.n = 0;
                int rc = ew_stage_run(st, exec, in, &out, &d);
                if (rc) fprintf(stderr, "ew_stage_run: %s\n", d.msg);
                assert_int_equal(rc, SP_OK);
                /* Expected survivors and rejects, in order. */
                size_t j = 0, nrej = 0;
                for (size_t i = 0; i < in->n; i++) {
                    int64_t v = col_get_i64(&in->cols[0], i);
                    if (!chain && v % 7 == 3) continue;
                    if (v == 0) {
                        assert_true(nrej < r.n);
                        nrej++;
                        continue;
                    }
                    assert_true(j < out->n);
                    assert_int_equal(col_get_i64(&out->cols[0], j), chain ? 100 / v : v);
                    if (!chain) assert_int_equal(col_get_i64(&out->cols[1], j), 100 / v);
                    j++;
                }
                assert_int_equal(j, out->n);
                assert_int_equal(out->part_start[out->nparts], out->n);
                assert_int_equal(r.n, nrej);
                if (r.n) qsort(r.rows, r.n, sizeof *r.rows, cmp_size);
                for (size_t q = 0, i = 0; i < in->n; i++) {
                    int64_t v = col_get_i64(&in->cols[0], i);
                    if (v == 0 && (chain || v % 7 != 3)) assert_int_equal(r.rows[q++], i);
                }
                if (r.n) {
                    assert_non_null(strstr(r.last, "stage 1: division by zero at row "));
                    assert_non_null(strstr(r.last, ": 0"));
                }
                batch_release(out);
                batch_release(in);
            }
            /* A callback that fails fails the run with its status. */
            r.fail_with = SP_EIO;
            sp_batch *in = mk_batch("i64", 1000, 7, 20), *out = NULL;
            sp_diag d = {0};
            assert_true(first_zero(in) != SIZE_MAX);
            assert_int_equal(ew_stage_run(st, exec, in, &out, &d), SP_EIO);
            assert_null(out);
            assert_non_null(strstr(d.msg, "rejected row"));
            batch_release(in);
            /* Back to the default: the first failing row fails the run. */
            ew_stage_set_on_error(st, 0, NULL, NULL);
            in = mk_batch("i64", 1000, 7, 20);
            assert_int_equal(ew_stage_run(st, exec, in, &out, &d), SP_ERUNTIME);
            assert_null(out);
            batch_release(in);
            free(r.rows);
            ew_stage_free(st);
        }
    }
}

static void test_skip_bad_number(void **state)
{
    (void)state;
    /* (str,i64): map p => (p._1.toLong + p._2); strings that are not numbers are rejected. */
    static const char *const texts[] = {"12", "x7", "-3", "", "40", "4.5", "7"};
    sp_td *td = ty("(str,i64)");
    sp_batch *in = NULL;
    sp_diag d = {0};
    assert_int_equal(batch_new(&env, td, 1000, &in, &d), SP_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(col_push_id(&in->cols[0], dict_intern(dict, texts[i], strlen(texts[i]))),
                         0);
        assert_int_equal(col_push_i64(&in->cols[1], i), 0);
    }
    in->n = 7;
    assert_int_equal(batch_split_even(in, 2, NULL), 0);
    ew_step s[] = {{EW_MAP, bin(SP_OP_ADD, cast(fld(arg(0), 0), SP_I64), fld(arg(0), 1))}};
    ew_stage *st = mk_stage(devs[0], "(str,i64)", 1, s);
    assert_false(ew_stage_on_device(st));
    sp_batch *out = NULL;
    assert_int_equal(ew_stage_run(st, exec, in, &out, &d), SP_ERUNTIME);
    assert_null(out);
    rejects r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ew_stage_set_on_error(st, 1, on_reject, &r);
    out = run(st, in);
    static const int64_t want[] = {12 + 0, -3 + 2, 40 + 4, 7 + 6};
    assert_int_equal(out->n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(col_get_i64(&out->cols[0], i), want[i]);
    assert_int_equal(r.n, 3);
    qsort(r.rows, r.n, sizeof *r.rows, cmp_size);
    assert_int_equal(r.rows[0], 1);
    assert_int_equal(r.rows[1], 3);
    assert_int_equal(r.rows[2], 5);
    free(r.rows);
    batch_release(out);
    batch_release(in);
    td_free(NULL, td);
    ew_stage_free(st);
}

static sp_dev *open_dev(int strategy)
{
    dev_opts o = {.use_cache = 1, .strategy = strategy};
    sp_dev *dev = NULL;
    sp_diag d = {0};
    if (dev_open(&o, &dev, &d) != SP_OK) {
        fprintf(stderr, "dev_open: %s\n", d.msg);
        return NULL;
    }
    /* Check the kernels on every size, tiny ones included. */
    dev_set_tunable(dev, DEV_TUNE_EW_HOST_BELOW, 1);
    return dev;
}

int main(void)
{
    sp_diag d = {0};
    topo_opts to = {0};
    if (expr_pool_new(NULL, &P) || topo_open(&to, &topo, &d) ||
        arena_new(topo, 0, 0, NULL, &arena, &d) || dict_new(NULL, &dict) ||
        exec_new(topo, 2, NULL, &exec, &d)) {
        fprintf(stderr, "test_ew: setup failed: %s\n", d.msg);
        return 1;
    }
    env = (batch_env){NULL, dict, &arena, 1};
    devs[0] = open_dev(DEV_STRATEGY_CPU);
    devs[1] = open_dev(DEV_STRATEGY_GPU);
    if (!devs[0] || !devs[1]) {
        fprintf(stderr, "test_ew: skipped: no OpenCL device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_i64),
        cmocka_unit_test(test_map_values),
        cmocka_unit_test(test_filter_map),
        cmocka_unit_test(test_chain4),
        cmocka_unit_test(test_mixed_i32_bool),
        cmocka_unit_test(test_str_key_filter),
        cmocka_unit_test(test_host_concat),
        cmocka_unit_test(test_div_zero),
        cmocka_unit_test(test_guarded_div),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_raw_strings_use_host),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_skip_div_zero),
        cmocka_unit_test(test_skip_bad_number),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dev_close(devs[0]);
    dev_close(devs[1]);
    exec_free(exec);
    expr_pool_free(P);
    dict_free(dict);
    arena_free(arena);
    topo_close(topo);
    return rc;
}
