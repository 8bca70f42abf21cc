/* test_window.c — window operators end to end with Spark's semantics: hand-worked outputs
 * for each rule (durations, partial first windows, W < S, output at every slide, the inverse
 * path keeping zero keys, filterFunc, countByWindow once an element arrived,
 * countByValueAndWindow dropping zeros), and random streams through the device panes checked
 * against the naive recompute (sp_config.naive_windows) for both kernel strategies. */
#include "ops/lpanes_int.h"
#include "ops/panes_int.h"
#include "spate.h"
#include "support/envfix.h"
#include "support/jobfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ collecting */

/* Every batch as one line "T:row|row|..." with rows sorted. */
typedef struct collect {
    char *lines[256];
    int n;
} collect;

static int on_batch(void *ud, const sp_batch *b)
{
    collect *c = ud;
    size_t n = sp_batch_count(b);
    char **rows = calloc(n ? n : 1, sizeof *rows);
    size_t total = 32;
    for (size_t i = 0; i < n; i++) {
        int len = sp_batch_format(b, i, NULL, 0);
        rows[i] = malloc((size_t)len + 1);
        sp_batch_format(b, i, rows[i], (size_t)len + 1);
        total += (size_t)len + 1;
    }
    qsort(rows, n, sizeof *rows, cmp_str);
    if (c->n == 256) return -1;
    char *line = malloc(total);
    int off = snprintf(line, total, "%lld:", (long long)sp_batch_time(b));
    for (size_t i = 0; i < n; i++) {
        off += snprintf(line + off, total - (size_t)off, "%s%s", i ? "|" : "", rows[i]);
        free(rows[i]);
    }
    free(rows);
    c->lines[c->n++] = line;
    return 0;
}

static void collect_free(collect *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->lines[i]);
    free(c);
}

static collect *collector(void)
{
    return calloc(1, sizeof(collect));
}

static sp_context *new_ctx(int64_t batches, int naive, int strategy)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.max_batches = batches;
    cfg.status_line = 0;
    cfg.naive_windows = naive;
    cfg.strategy = strategy;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    return ctx;
}

#define A0(ctx) sp_expr_arg(ctx, 0)
#define A1(ctx) sp_expr_arg(ctx, 1)
#define ADD(ctx) sp_expr_binop(ctx, SP_OP_ADD, A0(ctx), A1(ctx))
#define SUB(ctx) sp_expr_binop(ctx, SP_OP_SUB, A0(ctx), A1(ctx))

static void expect(const collect *c, int n, const char *const *want)
{
    if (c->n != n) fail_msg("%d batches, want %d (first: %s)", c->n, n, c->n ? c->lines[0] : "");
    for (int i = 0; i < n; i++)
        assert_string_equal(c->lines[i], want[i]);
}

/* Modes every hand-worked test runs in: device panes (CPU and GPU kernel shapes), naive. */
static const int MODES[3][2] = {{0, SP_STRATEGY_CPU}, {0, SP_STRATEGY_GPU}, {1, SP_STRATEGY_CPU}};

/* ------------------------------------------------------------------------- durations */

static void test_durations_must_be_multiples(void **state)
{
    (void)state;
    const char *q = write_tmp("d.jsonl", "[1]\n");
    sp_context *ctx = new_ctx(0, 0, 0);
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    assert_null(sp_stream_window(s, 1500, 1000));
    assert_non_null(strstr(sp_context_errmsg(ctx), "1500 ms"));
    assert_non_null(strstr(sp_context_errmsg(ctx), "1000 ms"));
    assert_null(sp_stream_count_by_window(s, 2000, 500));
    assert_non_null(strstr(sp_context_errmsg(ctx), "500 ms"));
    /* A windowed parent's slide is the unit of a window over it. */
    sp_stream *w = sp_stream_window(s, 4000, 2000);
    assert_non_null(w);
    assert_null(sp_stream_window(w, 3000, 2000));
    assert_non_null(strstr(sp_context_errmsg(ctx), "2000 ms"));
    assert_non_null(sp_stream_window(w, 4000, 0));
    sp_context_free(ctx);
}

/* ------------------------------------------------------------------------- window() */

static void test_window_partial_first_and_empty_slides(void **state)
{
    (void)state;
    const char *q = write_tmp("w1.jsonl", "[1]\n[2]\n[]\n[3]\n");
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(7, MODES[m][0], MODES[m][1]);
        collect *c1 = collector(), *c2 = collector(), *c3 = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "i64");
        assert_int_equal(sp_stream_foreach_rdd(sp_stream_window(s, 3000, 0), on_batch, c1), 0);
        /* Slide 2000: emits at 2000, 4000, 6000 only. */
        assert_int_equal(sp_stream_foreach_rdd(sp_stream_window(s, 3000, 2000), on_batch, c2), 0);
        /* W < S: each window is only the last batch of its slide. */
        assert_int_equal(sp_stream_foreach_rdd(sp_stream_window(s, 1000, 2000), on_batch, c3), 0);
        run_ok(ctx);
        const char *w1[] = {"1000:1", "2000:1|2", "3000:1|2", "4000:2|3",
                            "5000:3", "6000:3",   "7000:"};
        expect(c1, 7, w1);
        const char *w2[] = {"2000:1|2", "4000:2|3", "6000:3"};
        expect(c2, 3, w2);
        const char *w3[] = {"2000:2", "4000:3", "6000:"};
        expect(c3, 3, w3);
        sp_context_free(ctx);
        collect_free(c1);
        collect_free(c2);
        collect_free(c3);
    }
}

/* ---------------------------------------------------------------- unkeyed reductions */

static void test_count_by_window_once_an_element_arrived(void **state)
{
    (void)state;
    /* countByWindow is map(_ => 1L).reduceByWindow(_ + _, _ - _): the dummy key appears with
     * the first element and then never leaves, so a count (0 included) follows every slide. */
    const char *q = write_tmp("c1.jsonl", "[]\n[7,8]\n[]\n[]\n[9]\n");
    sp_context *ctx = new_ctx(6, 0, 0);
    collect *c = collector();
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_count_by_window(s, 2000, 1000), on_batch, c),
                     0);
    run_ok(ctx);
    const char *want[] = {"1000:", "2000:2", "3000:2", "4000:0", "5000:1", "6000:1"};
    expect(c, 6, want);
    sp_context_free(ctx);
    collect_free(c);
}

static void test_reduce_by_window_with_and_without_inverse(void **state)
{
    (void)state;
    const char *q = write_tmp("r1.jsonl", "[]\n[5]\n[]\n[]\n[2,3]\n");
    sp_context *ctx = new_ctx(5, 0, 0);
    collect *c1 = collector(), *c2 = collector();
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    sp_stream *r1 = sp_stream_reduce_by_window(s, ADD(ctx), NULL, 2000, 1000);
    sp_stream *r2 = sp_stream_reduce_by_window(s, ADD(ctx), SUB(ctx), 2000, 1000);
    assert_int_equal(sp_stream_foreach_rdd(r1, on_batch, c1), 0);
    assert_int_equal(sp_stream_foreach_rdd(r2, on_batch, c2), 0);
    run_ok(ctx);
    /* Without an inverse: reduce of the window, nothing for an empty window. */
    const char *w1[] = {"1000:", "2000:5", "3000:5", "4000:", "5000:5"};
    expect(c1, 5, w1);
    /* With one: Spark's keyed inverse path on a dummy key, which stays at 0. */
    const char *w2[] = {"1000:", "2000:5", "3000:5", "4000:0", "5000:5"};
    expect(c2, 5, w2);
    sp_context_free(ctx);
    collect_free(c1);
    collect_free(c2);
}

/* ------------------------------------------------------------------ keyed reductions */

static const char *KQ = "[[\"a\",1],[\"b\",2]]\n[[\"a\",3]]\n[]\n[]\n[[\"b\",7]]\n";

static void test_inverse_keeps_zero_keys(void **state)
{
    (void)state;
    const char *q = write_tmp("k1.jsonl", KQ);
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(5, MODES[m][0], MODES[m][1]);
        collect *ci = collector(), *cn = collector(), *ca = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
        sp_stream *inv =
            sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), 2000, 1000, NULL);
        sp_stream *plain = sp_stream_reduce_by_key_and_window(s, ADD(ctx), NULL, 2000, 1000, NULL);
        sp_stream *agg = sp_stream_reduce_by_key_and_window_agg(s, SP_AGG_SUM, 2000, 1000);
        assert_int_equal(sp_stream_foreach_rdd(inv, on_batch, ci), 0);
        assert_int_equal(sp_stream_foreach_rdd(plain, on_batch, cn), 0);
        assert_int_equal(sp_stream_foreach_rdd(agg, on_batch, ca), 0);
        run_ok(ctx);
        const char *wi[] = {"1000:(a,1)|(b,2)", "2000:(a,4)|(b,2)", "3000:(a,3)|(b,0)",
                            "4000:(a,0)|(b,0)", "5000:(a,0)|(b,7)"};
        expect(ci, 5, wi);
        const char *wn[] = {"1000:(a,1)|(b,2)", "2000:(a,4)|(b,2)", "3000:(a,3)",
                            "4000:", "5000:(b,7)"};
        expect(cn, 5, wn);
        expect(ca, 5, wn);
        sp_context_free(ctx);
        collect_free(ci);
        collect_free(cn);
        collect_free(ca);
    }
}

static void test_inverse_filter_removes_keys(void **state)
{
    (void)state;
    const char *q = write_tmp("k2.jsonl", KQ);
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(5, MODES[m][0], MODES[m][1]);
        collect *c = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
        /* filterFunc = kv => kv._2 != 0 */
        sp_expr *flt =
            sp_expr_binop(ctx, SP_OP_NE, sp_expr_field(ctx, A0(ctx), 1), sp_expr_i64(ctx, 0));
        sp_stream *r = sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), 2000, 1000, flt);
        assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), 0);
        run_ok(ctx);
        const char *w[] = {"1000:(a,1)|(b,2)", "2000:(a,4)|(b,2)", "3000:(a,3)",
                           "4000:", "5000:(b,7)"};
        expect(c, 5, w);
        sp_context_free(ctx);
        collect_free(c);
    }
}

static void test_inverse_filtered_key_with_leaving_values_fails_like_spark(void **state)
{
    (void)state;
    /* a: +1 then -1 sums to 0 and the filter drops it; when the +1 leaves, Spark finds a key
     * with old values but neither a previous value nor new values, and throws. */
    const char *q = write_tmp("k3.jsonl", "[[\"a\",1]]\n[[\"a\",-1]]\n[]\n[]\n");
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(4, MODES[m][0], MODES[m][1]);
        collect *c = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
        sp_expr *flt =
            sp_expr_binop(ctx, SP_OP_NE, sp_expr_field(ctx, A0(ctx), 1), sp_expr_i64(ctx, 0));
        sp_stream *r = sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), 3000, 1000, flt);
        assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), 0);
        assert_int_equal(sp_context_run(ctx), SP_ERUNTIME);
        assert_non_null(strstr(sp_context_errmsg(ctx), "previous window"));
        sp_context_free(ctx);
        collect_free(c);
    }
}

static void test_count_by_value_and_window_drops_zero(void **state)
{
    (void)state;
    const char *q = write_tmp("v1.jsonl", "[\"a\",\"b\",\"a\"]\n[\"a\"]\n[]\n[]\n[\"b\"]\n");
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(5, MODES[m][0], MODES[m][1]);
        collect *c = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "str");
        sp_stream *r = sp_stream_count_by_value_and_window(s, 2000, 1000);
        assert_string_equal(sp_stream_type(r), "(str,i64)");
        assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), 0);
        run_ok(ctx);
        const char *w[] = {"1000:(a,2)|(b,1)", "2000:(a,3)|(b,1)", "3000:(a,1)",
                           "4000:", "5000:(b,1)"};
        expect(c, 5, w);
        sp_context_free(ctx);
        collect_free(c);
    }
}

static void test_group_by_key_and_window(void **state)
{
    (void)state;
    const char *q = write_tmp("g1.jsonl", "[[\"a\",1]]\n[[\"a\",2],[\"b\",3]]\n[]\n");
    sp_context *ctx = new_ctx(3, 0, 0);
    collect *c = collector();
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *g = sp_stream_group_by_key_and_window(s, 2000, 1000);
    assert_string_equal(sp_stream_type(g), "(str,List[i64])");
    assert_int_equal(sp_stream_foreach_rdd(g, on_batch, c), 0);
    run_ok(ctx);
    const char *w[] = {"1000:(a,CompactBuffer(1))",
                       "2000:(a,CompactBuffer(1, 2))|(b,CompactBuffer(3))",
                       "3000:(a,CompactBuffer(2))|(b,CompactBuffer(3))"};
    expect(c, 3, w);
    sp_context_free(ctx);
    collect_free(c);
}

static void test_slides_gcd_panes_and_aggregates(void **state)
{
    (void)state;
    /* W = 3000, S = 2000: panes of gcd 1000; windows at 2000 (1..2), 4000 (2..4), 6000 (4..6). */
    const char *q =
        write_tmp("s1.jsonl", "[[1,5]]\n[[1,1],[2,4]]\n[[2,9]]\n[[1,3]]\n[]\n[[2,2]]\n");
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(6, MODES[m][0], MODES[m][1]);
        collect *c[5];
        sp_stream *s = sp_queue_stream(ctx, q, "(i64,i64)");
        for (int a = 0; a < 5; a++) {
            c[a] = collector();
            sp_stream *r = sp_stream_reduce_by_key_and_window_agg(s, (sp_agg)a, 3000, 2000);
            assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c[a]), 0);
        }
        run_ok(ctx);
        const char *sum[] = {"2000:(1,6)|(2,4)", "4000:(1,4)|(2,13)", "6000:(1,3)|(2,2)"};
        const char *cnt[] = {"2000:(1,2)|(2,1)", "4000:(1,2)|(2,2)", "6000:(1,1)|(2,1)"};
        const char *mn[] = {"2000:(1,1)|(2,4)", "4000:(1,1)|(2,4)", "6000:(1,3)|(2,2)"};
        const char *mx[] = {"2000:(1,5)|(2,4)", "4000:(1,3)|(2,9)", "6000:(1,3)|(2,2)"};
        const char *avg[] = {"2000:(1,3.0)|(2,4.0)", "4000:(1,2.0)|(2,6.5)",
                             "6000:(1,3.0)|(2,2.0)"};
        expect(c[SP_AGG_SUM], 3, sum);
        expect(c[SP_AGG_COUNT], 3, cnt);
        expect(c[SP_AGG_MIN], 3, mn);
        expect(c[SP_AGG_MAX], 3, mx);
        expect(c[SP_AGG_AVG], 3, avg);
        sp_context_free(ctx);
        for (int a = 0; a < 5; a++)
            collect_free(c[a]);
    }
}

static void test_inverse_with_window_shorter_than_slide(void **state)
{
    (void)state;
    /* Spark's inverse path with W < S: the first window has no previous one, so it is the
     * reduction of every batch of the first slide (new RDDs span S), and later windows keep
     * that surplus: previous - leaving + entering telescopes to it. Reproduced as is. */
    const char *q = write_tmp("k4.jsonl", "[[\"a\",1]]\n[[\"a\",2]]\n[[\"a\",4]]\n[[\"a\",8]]\n");
    for (int m = 0; m < 3; m++) {
        sp_context *ctx = new_ctx(4, MODES[m][0], MODES[m][1]);
        collect *ci = collector(), *cn = collector();
        sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
        sp_stream *inv =
            sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), 1000, 2000, NULL);
        sp_stream *pl = sp_stream_reduce_by_key_and_window(s, ADD(ctx), NULL, 1000, 2000, NULL);
        assert_int_equal(sp_stream_foreach_rdd(inv, on_batch, ci), 0);
        assert_int_equal(sp_stream_foreach_rdd(pl, on_batch, cn), 0);
        run_ok(ctx);
        const char *wi[] = {"2000:(a,3)", "4000:(a,9)"};
        expect(ci, 2, wi);
        const char *wn[] = {"2000:(a,2)", "4000:(a,8)"};
        expect(cn, 2, wn);
        sp_context_free(ctx);
        collect_free(ci);
        collect_free(cn);
    }
}

static void test_explain_names_the_route(void **state)
{
    (void)state;
    const char *q = write_tmp("e1.jsonl", KQ);
    sp_context *ctx = new_ctx(1, 0, 0);
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *a = sp_stream_reduce_by_key_and_window_agg(s, SP_AGG_SUM, 2000, 1000);
    sp_stream *b = sp_stream_reduce_by_key_and_window_agg(s, SP_AGG_MAX, 2000, 1000);
    sp_stream *c = sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), 2000, 1000, NULL);
    sp_stream *m = sp_stream_reduce_by_key_and_window(
        s, sp_expr_binop(ctx, SP_OP_MUL, A0(ctx), A1(ctx)), NULL, 2000, 1000, NULL);
    sp_stream *g = sp_stream_group_by_key_and_window(s, 2000, 1000);
    assert_int_equal(sp_stream_print(a, 1), 0);
    assert_int_equal(sp_stream_print(b, 1), 0);
    assert_int_equal(sp_stream_print(c, 1), 0);
    assert_int_equal(sp_stream_print(m, 1), 0);
    assert_int_equal(sp_stream_print(g, 1), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(sp_context_explain(ctx, f), 0);
    fclose(f);
    assert_non_null(strstr(buf, "window += entering - leaving"));
    assert_non_null(strstr(buf, "two-stacks over panes"));
    assert_non_null(strstr(buf, "previous - leaving + entering on live keys"));
    assert_non_null(strstr(buf, "host two-stacks over panes of 1000 ms"));
    assert_non_null(strstr(buf, "recomputed"));
    free(buf);
    sp_context_free(ctx);
}

/* ------------------------------------------------------------- random vs naive recompute */

typedef enum rop {
    R_AGG_SUM,
    R_AGG_COUNT,
    R_AGG_MIN,
    R_AGG_MAX,
    R_AGG_AVG,
    R_LAMBDA_SUM,
    R_LAMBDA_MAX,
    R_LAMBDA_MUL,   /* general lambdas: host two-stacks (wrapping products) */
    R_LAMBDA_LAST,  /* (a, b) => b: associative, not commutative (order matters) */
    R_LAMBDA_TUPLE, /* tuple-valued: (a, b) => (a._1 * b._1, b._2) over (v, v) */
    R_INVERSE,
    R_INVERSE_FILTER,
    R_COUNT_BY_VALUE,
    R_COUNT_BY_WINDOW,
    R_REDUCE_BY_WINDOW,
    R_REDUCE_BY_WINDOW_INV,
    R_REDUCE_BY_WINDOW_MUL,
    R_REDUCE_BY_WINDOW_TUPLE,
    R_WINDOW,
    R_OPS
} rop;

#define MUL(ctx) sp_expr_binop(ctx, SP_OP_MUL, A0(ctx), A1(ctx))

/* (a, b) => (a._1 * b._1, b._2) */
static sp_expr *tuple_fn(sp_context *ctx)
{
    sp_expr *p = sp_expr_binop(ctx, SP_OP_MUL, sp_expr_field(ctx, A0(ctx), 0),
                               sp_expr_field(ctx, A1(ctx), 0));
    return sp_expr_tuple2(ctx, p, sp_expr_field(ctx, A1(ctx), 1));
}

static sp_stream *make_op(sp_context *ctx, sp_stream *s, rop op, int64_t W, int64_t S)
{
    sp_expr *mx = sp_expr_binop(ctx, SP_OP_MAX, A0(ctx), A1(ctx));
    sp_expr *flt =
        sp_expr_binop(ctx, SP_OP_GT, sp_expr_field(ctx, A0(ctx), 1), sp_expr_i64(ctx, 0));
    switch (op) {
    case R_AGG_SUM:
    case R_AGG_COUNT:
    case R_AGG_MIN:
    case R_AGG_MAX:
    case R_AGG_AVG:
        return sp_stream_reduce_by_key_and_window_agg(s, (sp_agg)(op - R_AGG_SUM), W, S);
    case R_LAMBDA_SUM:
        return sp_stream_reduce_by_key_and_window(s, ADD(ctx), NULL, W, S, NULL);
    case R_LAMBDA_MAX:
        return sp_stream_reduce_by_key_and_window(s, mx, NULL, W, S, NULL);
    case R_LAMBDA_MUL:
        return sp_stream_reduce_by_key_and_window(s, MUL(ctx), NULL, W, S, NULL);
    case R_LAMBDA_LAST:
        return sp_stream_reduce_by_key_and_window(s, A1(ctx), NULL, W, S, NULL);
    case R_LAMBDA_TUPLE: {
        sp_stream *p = sp_stream_map_values(s, sp_expr_tuple2(ctx, A0(ctx), A0(ctx)));
        return sp_stream_reduce_by_key_and_window(p, tuple_fn(ctx), NULL, W, S, NULL);
    }
    case R_INVERSE:
        return sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), W, S, NULL);
    case R_INVERSE_FILTER:
        return sp_stream_reduce_by_key_and_window(s, ADD(ctx), SUB(ctx), W, S, flt);
    case R_COUNT_BY_VALUE:
        return sp_stream_count_by_value_and_window(s, W, S);
    case R_COUNT_BY_WINDOW:
        return sp_stream_count_by_window(s, W, S);
    case R_REDUCE_BY_WINDOW:
        return sp_stream_reduce_by_window(sp_stream_map(s, sp_expr_field(ctx, A0(ctx), 1)),
                                          ADD(ctx), NULL, W, S);
    case R_REDUCE_BY_WINDOW_INV:
        return sp_stream_reduce_by_window(sp_stream_map(s, sp_expr_field(ctx, A0(ctx), 1)),
                                          ADD(ctx), SUB(ctx), W, S);
    case R_REDUCE_BY_WINDOW_MUL:
        return sp_stream_reduce_by_window(sp_stream_map(s, sp_expr_field(ctx, A0(ctx), 1)),
                                          MUL(ctx), NULL, W, S);
    case R_REDUCE_BY_WINDOW_TUPLE:
        return sp_stream_reduce_by_window(
            sp_stream_map(s, sp_expr_tuple2(ctx, sp_expr_field(ctx, A0(ctx), 1),
                                            sp_expr_field(ctx, A0(ctx), 1))),
            tuple_fn(ctx), NULL, W, S);
    default:
        return sp_stream_window(s, W, S);
    }
}

/* Random keyed stream: some empty batches, keys from a small or a wider domain, positive
 * values (the inverse filter then never meets Spark's failure case). */
static char *random_queue(uint64_t *rng, int batches, int keys)
{
    size_t cap = 1 << 20, off = 0;
    char *t = malloc(cap);
    for (int b = 0; b < batches; b++) {
        int n = tu_rand_below(rng, 4) == 0 ? 0 : (int)tu_rand_below(rng, 40);
        off += (size_t)snprintf(t + off, cap - off, "[");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(t + off, cap - off, "%s[\"k%d\",%d]", i ? "," : "",
                                    (int)tu_rand_below(rng, (uint64_t)keys),
                                    1 + (int)tu_rand_below(rng, 100));
        off += (size_t)snprintf(t + off, cap - off, "]\n");
    }
    return t;
}

static collect *run_random(const char *q, rop op, int64_t W, int64_t S, int batches, int naive,
                           int strategy)
{
    sp_context *ctx = new_ctx(batches, naive, strategy);
    collect *c = collector();
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *r = make_op(ctx, s, op, W, S);
    if (!r) fail_msg("op %d: %s", (int)op, sp_context_errmsg(ctx));
    assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), 0);
    run_ok(ctx);
    sp_context_free(ctx);
    return c;
}

static void test_random_panes_against_naive(void **state)
{
    (void)state;
    uint64_t rng = 20240607;
    char name[64];
    for (int seed = 0; seed < 3; seed++) {
        int batches = 14;
        int keys = seed == 2 ? 200 : 8;
        char *text = random_queue(&rng, batches, keys);
        snprintf(name, sizeof name, "rq%d.jsonl", seed);
        const char *q = write_tmp(name, text);
        free(text);
        for (int op = 0; op < R_OPS; op++) {
            int64_t W = 1000 * (1 + (int64_t)tu_rand_below(&rng, 5));
            int64_t S = 1000 * (1 + (int64_t)tu_rand_below(&rng, 3));
            collect *ref = run_random(q, (rop)op, W, S, batches, 1, SP_STRATEGY_CPU);
            for (int st = SP_STRATEGY_CPU; st <= SP_STRATEGY_GPU; st++) {
                collect *got = run_random(q, (rop)op, W, S, batches, 0, st);
                if (got->n != ref->n)
                    fail_msg("op %d W %lld S %lld: %d batches, naive %d", op, (long long)W,
                             (long long)S, got->n, ref->n);
                for (int i = 0; i < ref->n; i++)
                    if (strcmp(got->lines[i], ref->lines[i]))
                        fail_msg("op %d W %lld S %lld strategy %d seed %d:\n got %s\nwant %s", op,
                                 (long long)W, (long long)S, st, seed, got->lines[i],
                                 ref->lines[i]);
                collect_free(got);
            }
            collect_free(ref);
        }
    }
}

/* ---------------------------------------------------------- host two-stacks, directly */

static void test_lambda_panes_constant_merges_per_slide(void **state)
{
    (void)state;
    /* The lambda route's cost: list merges per slide stay at most 3 amortised whatever W/S is
     * (W/S = 1, 10, 100), and the window equals the product of its panes' values per key. */
    sp_context *ctx = new_ctx(1, 0, 0);
    sp_allocator al = {0};
    sp_td *v = td_leaf(&al, SP_I64);
    td_layout(v, 0);
    expr_typed *f = NULL;
    sp_diag d = {0};
    assert_int_equal(expr_compile(MUL(ctx), &al, v, v, &f, &d), SP_OK);
    const int ratios[] = {1, 10, 100};
    for (int r = 0; r < 3; r++) {
        int R = ratios[r];
        lpanes *p = NULL;
        assert_int_equal(lpanes_new(&al, f, &p, &d), SP_OK);
        uint64_t merges0 = 0;
        int total = 4 * R + 20, timed_from = 2 * R + 10;
        for (int k = 0; k < total; k++) {
            /* pane k: keys 0..7 (key 7 only on even panes), value k + key + 1 */
            uint32_t ids[16];
            expr_val vals[16];
            int n = 0;
            for (uint32_t key = 0; key < 8; key++) {
                if (key == 7 && k % 2) continue;
                ids[n] = key;
                vals[n++] = (expr_val){.t = SP_I64, .u.i = k + (int64_t)key + 1};
            }
            assert_int_equal(lpanes_add(p, ids, vals, (size_t)n, &d), SP_OK);
            assert_int_equal(lpanes_close(p, k, &d), SP_OK);
            if (k == timed_from) {
                lpanes_stats st;
                lpanes_stats_get(p, &st);
                merges0 = st.merges;
            }
            assert_int_equal(lpanes_slide(p, k + 1 - R, k + 1, &d), SP_OK);
            lpanes_view w;
            lpanes_view_get(p, &w);
            int lo = k + 1 - R < 0 ? 0 : k + 1 - R;
            assert_int_equal(w.n, (lo == k && k % 2) ? 7 : 8);
            for (size_t j = 0; j < w.n; j++) {
                int64_t want = 1;
                for (int q = lo; q <= k; q++)
                    if (w.ids[j] != 7 || q % 2 == 0)
                        want = (int64_t)((uint64_t)want * (uint64_t)(q + (int64_t)w.ids[j] + 1));
                assert_int_equal(w.ids[j], j);
                assert_true(w.vals[j].u.i == want);
            }
        }
        lpanes_stats st;
        lpanes_stats_get(p, &st);
        assert_int_equal(st.panes, (size_t)R);
        /* at most: the entering pane into B, the result, one flip entry per slide */
        assert_true(st.merges - merges0 <= 3 * (uint64_t)(total - timed_from));
        assert_true(st.entries <= (size_t)(3 * R + 2) * 8);
        lpanes_free(p);
    }
    expr_typed_free(&al, f);
    td_free(&al, v);
    sp_context_free(ctx);
}

/* ------------------------------------------------------------ slots of rotating keys */

/* Key set rotates: pane k holds keys 100k .. 100k+99 (ids grow without bound), a window of 3
 * panes. Slots, the id table and the retained entries stay bounded by panes x live keys; on
 * the inverse path keys whose value went back to 0 are removed (as a filter does). */
static void rotate_keys(sp_dev *dev, sp_arena *ar, panes_mode mode, sp_agg agg)
{
    panes *p = NULL;
    sp_diag d = {0};
    panes_cfg c = {dev, ar, NULL, mode, agg, SP_I64};
    assert_int_equal(panes_new(&c, &p, &d), SP_OK);
    uint32_t ids[100], drop[400];
    int64_t vals[100];
    for (int64_t k = 0; k < 150; k++) {
        for (int i = 0; i < 100; i++) {
            ids[i] = (uint32_t)(k * 100 + i);
            vals[i] = 1 + i;
        }
        assert_int_equal(panes_add(p, ids, vals, 100, &d), SP_OK);
        assert_int_equal(panes_close(p, k, &d), SP_OK);
        if (mode == PANES_INVERSE)
            assert_int_equal(panes_slide_inverse(p, k - 3, k - 2, k, k + 1, &d), SP_OK);
        else
            assert_int_equal(panes_slide(p, k - 2, k + 1, &d), SP_OK);
        panes_view v;
        assert_int_equal(panes_view_get(p, &v, &d), SP_OK);
        size_t present = 0, ndrop = 0;
        for (uint32_t sl = 0; sl < v.nslots; sl++) {
            if (v.slot_id[sl] == UINT32_MAX || v.cnt[sl] <= 0) continue;
            int64_t a = ((const int64_t *)v.acc)[sl];
            if (mode == PANES_INVERSE && a == 0)
                drop[ndrop++] = sl;
            else
                present++;
        }
        assert_int_equal(present, (size_t)(k < 2 ? k + 1 : 3) * 100);
        assert_int_equal(panes_remove(p, drop, ndrop, &d), SP_OK);
        panes_stats st;
        panes_stats_get(p, &st);
        assert_true(st.live <= 400);
        assert_true(st.slots <= 500);
        assert_true(st.map_cap <= 1024);
        assert_true(st.entries <= 400);
        assert_true(st.panes <= 4);
    }
    panes_stats st;
    panes_stats_get(p, &st);
    assert_int_equal(st.live, 300);
    assert_true(st.cap <= 1024);
    panes_free(p);
}

static void test_rotating_keys_keep_bounded_slots(void **state)
{
    fixture *f = *state;
    sp_dev *dev = NULL;
    dev_opts o = {NULL, 1, NULL, 0, NULL, NULL};
    sp_diag d = {0};
    assert_int_equal(dev_open(&o, &dev, &d), SP_OK);
    for (int k = 0; k < 2; k++) {
        sp_dev *x = k ? dev : NULL;
        rotate_keys(x, f->arena, PANES_INVERTIBLE, SP_AGG_SUM);
        rotate_keys(x, f->arena, PANES_TWO_STACKS, SP_AGG_MAX);
        rotate_keys(x, f->arena, PANES_INVERSE, SP_AGG_SUM);
    }
    dev_close(dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_must_be_multiples),
        cmocka_unit_test(test_window_partial_first_and_empty_slides),
        cmocka_unit_test(test_count_by_window_once_an_element_arrived),
        cmocka_unit_test(test_reduce_by_window_with_and_without_inverse),
        cmocka_unit_test(test_inverse_keeps_zero_keys),
        cmocka_unit_test(test_inverse_filter_removes_keys),
        cmocka_unit_test(test_inverse_filtered_key_with_leaving_values_fails_like_spark),
        cmocka_unit_test(test_count_by_value_and_window_drops_zero),
        cmocka_unit_test(test_group_by_key_and_window),
        cmocka_unit_test(test_slides_gcd_panes_and_aggregates),
        cmocka_unit_test(test_inverse_with_window_shorter_than_slide),
        cmocka_unit_test(test_explain_names_the_route),
        cmocka_unit_test(test_random_panes_against_naive),
        cmocka_unit_test(test_lambda_panes_constant_merges_per_slide),
        cmocka_unit_test_setup_teardown(test_rotating_keys_keep_bounded_slots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
