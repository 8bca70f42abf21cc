/* test_state.c — updateStateByKey with Spark's semantics: running counts with the whole state
 * emitted every batch (empty batches included), removal by emitting nothing, the time
 * argument, an initial state file, and bad initial files and callbacks. */
#include "spate.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct collect {
    char lines[32][2048];
    int n;
} collect;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int on_batch(void *ud, const sp_batch *b)
{
    collect *c = ud;
    size_t n = sp_batch_count(b);
    char **rows = calloc(n ? n : 1, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        int len = sp_batch_format(b, i, NULL, 0);
        rows[i] = malloc((size_t)len + 1);
        sp_batch_format(b, i, rows[i], (size_t)len + 1);
    }
    qsort(rows, n, sizeof *rows, cmp_str);
    char *line = c->lines[c->n++];
    int off = snprintf(line, 2048, "%lld:", (long long)sp_batch_time(b));
    for (size_t i = 0; i < n; i++) {
        off += snprintf(line + off, (size_t)(2048 - off), "%s%s", i ? "|" : "", rows[i]);
        free(rows[i]);
    }
    free(rows);
    return 0;
}

static sp_context *new_ctx(int64_t batches)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.max_batches = batches;
    cfg.status_line = 0;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    return ctx;
}

static const char *write_tmp(const char *name, const char *text)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    const char *dir = tu_tmpdir(name);
    snprintf(p, 512, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(p, text), 0);
    return p;
}

static void run_ok(sp_context *ctx)
{
    int rc = sp_context_run(ctx);
    if (rc != SP_OK) fail_msg("run failed: %s", sp_context_errmsg(ctx));
}

static void expect(const collect *c, int n, const char *const *want)
{
    assert_int_equal(c->n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(c->lines[i], want[i]);
}

/* ----------------------------------------------------------------------- update functions */

typedef struct calls {
    int n;
    int64_t last_time;
} calls;

/* Running sum of the values: state + sum(values), keeps every key. */
static int running_sum(void *ud, int64_t t, const sp_row *key, const sp_row *const *values,
                       size_t nvalues, const sp_row *state, sp_emitter *out)
{
    calls *c = ud;
    (void)key;
    if (c) {
        c->n++;
        c->last_time = t;
    }
    int64_t s = state ? sp_row_i64(state, 0) : 0;
    for (size_t i = 0; i < nvalues; i++)
        s += sp_row_i64(values[i], 0);
    return sp_emit_i64(out, s) || sp_emit_end(out);
}

/* Keeps a key only while it has values in the batch: None removes it. */
static int only_active(void *ud, int64_t t, const sp_row *key, const sp_row *const *values,
                       size_t nvalues, const sp_row *state, sp_emitter *out)
{
    (void)ud;
    (void)t;
    (void)key;
    if (nvalues == 0) return 0;
    int64_t s = state ? sp_row_i64(state, 0) : 0;
    return sp_emit_i64(out, s + (int64_t)nvalues) || sp_emit_end(out);
}

/* State (last time seen, values seen so far): time-aware. */
static int last_seen(void *ud, int64_t t, const sp_row *key, const sp_row *const *values,
                     size_t nvalues, const sp_row *state, sp_emitter *out)
{
    (void)ud;
    (void)key;
    int64_t when = nvalues ? t : sp_row_i64(state, 0);
    int64_t seen = (state ? sp_row_i64(state, 1) : 0) + (int64_t)nvalues;
    return sp_emit_i64(out, when) || sp_emit_i64(out, seen) || sp_emit_end(out);
}

static int emits_two(void *ud, int64_t t, const sp_row *key, const sp_row *const *values,
                     size_t nvalues, const sp_row *state, sp_emitter *out)
{
    (void)ud;
    (void)t;
    (void)key;
    (void)values;
    (void)nvalues;
    (void)state;
    return sp_emit_i64(out, 1) || sp_emit_end(out) || sp_emit_i64(out, 2) || sp_emit_end(out);
}

/* ----------------------------------------------------------------------------------- tests */

static void test_running_sum_whole_state_every_batch(void **state)
{
    (void)state;
    const char *q = write_tmp("s1.jsonl", "[[\"a\",1],[\"b\",2],[\"a\",3]]\n[[\"a\",1]]\n[]\n");
    sp_context *ctx = new_ctx(4);
    collect *c = calloc(1, sizeof *c);
    calls k = {0, 0};
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *u = sp_stream_update_state_by_key(s, "i64", running_sum, &k, NULL);
    assert_non_null(u);
    assert_string_equal(sp_stream_type(u), "(str,i64)");
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, c), 0);
    run_ok(ctx);
    const char *w[] = {"1000:(a,4)|(b,2)", "2000:(a,5)|(b,2)", "3000:(a,5)|(b,2)",
                       "4000:(a,5)|(b,2)"};
    expect(c, 4, w);
    /* Called for every key in the state or the batch: 2 keys x 4 batch times. */
    assert_int_equal(k.n, 8);
    assert_int_equal(k.last_time, 4000);
    sp_context_free(ctx);
    free(c);
}

static void test_emitting_nothing_removes_the_key(void **state)
{
    (void)state;
    const char *q = write_tmp("s2.jsonl", "[[1,0],[2,0]]\n[[2,0]]\n[]\n[[1,0]]\n");
    sp_context *ctx = new_ctx(4);
    collect *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, "(i64,i64)");
    sp_stream *u = sp_stream_update_state_by_key(s, "i64", only_active, NULL, NULL);
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, c), 0);
    run_ok(ctx);
    /* Key 1 is removed at 2000 and comes back at 4000 with no previous state. */
    const char *w[] = {"1000:(1,1)|(2,1)", "2000:(2,2)", "3000:", "4000:(1,1)"};
    expect(c, 4, w);
    sp_context_free(ctx);
    free(c);
}

static void test_time_argument(void **state)
{
    (void)state;
    const char *q = write_tmp("s3.jsonl", "[[\"x\",1]]\n[[\"y\",1]]\n[]\n[[\"x\",5]]\n");
    sp_context *ctx = new_ctx(4);
    collect *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *u = sp_stream_update_state_by_key(s, "(ts,i64)", last_seen, NULL, NULL);
    assert_string_equal(sp_stream_type(u), "(str,(ts,i64))");
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, c), 0);
    run_ok(ctx);
    const char *w[] = {"1000:(x,(1000,1))", "2000:(x,(1000,1))|(y,(2000,1))",
                       "3000:(x,(1000,1))|(y,(2000,1))", "4000:(x,(4000,2))|(y,(2000,1))"};
    expect(c, 4, w);
    sp_context_free(ctx);
    free(c);
}

static void test_initial_state(void **state)
{
    (void)state;
    const char *q = write_tmp("s4.jsonl", "[[\"a\",1]]\n[]\n");
    const char *init = write_tmp("init.json", "[[\"a\",10],[\"c\",5]]\n");
    sp_context *ctx = new_ctx(2);
    collect *c = calloc(1, sizeof *c);
    calls k = {0, 0};
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *u = sp_stream_update_state_by_key(s, "i64", running_sum, &k, init);
    assert_non_null(u);
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, c), 0);
    run_ok(ctx);
    /* The initial state is the state before batch 1: c is updated (no values) at 1000. */
    const char *w[] = {"1000:(a,11)|(c,5)", "2000:(a,11)|(c,5)"};
    expect(c, 2, w);
    assert_int_equal(k.n, 4);
    sp_context_free(ctx);
    free(c);
}

static void test_bad_initial_state_and_callbacks(void **state)
{
    (void)state;
    const char *q = write_tmp("s5.jsonl", "[[\"a\",1]]\n");
    const char *bad = write_tmp("bad.json", "[[\"a\",\"not a number\"]]\n");
    const char *broken = write_tmp("broken.json", "[[\"a\",1\n");
    sp_context *ctx = new_ctx(1);
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    assert_null(sp_stream_update_state_by_key(s, "i64", running_sum, NULL, bad));
    assert_non_null(strstr(sp_context_errmsg(ctx), "[key, state] pairs"));
    assert_null(sp_stream_update_state_by_key(s, "i64", running_sum, NULL, broken));
    assert_non_null(strstr(sp_context_errmsg(ctx), "broken.json"));
    assert_null(sp_stream_update_state_by_key(sp_stream_map(s, sp_expr_i64(ctx, 1)), "i64",
                                              running_sum, NULL, NULL));
    sp_stream *u = sp_stream_update_state_by_key(s, "i64", emits_two, NULL, NULL);
    assert_int_equal(sp_stream_print(u, 1), 0);
    assert_int_equal(sp_context_run(ctx), SP_ECALLBACK);
    assert_non_null(strstr(sp_context_errmsg(ctx), "2 states"));
    sp_context_free(ctx);
}

static void test_state_over_a_window(void **state)
{
    (void)state;
    /* The state's slide is its parent's: over a window sliding by 2000 it updates at 2000,
     * 4000, ... from the windowed batches. */
    const char *q = write_tmp("s6.jsonl", "[[\"a\",1]]\n[[\"a\",2]]\n[[\"a\",4]]\n[]\n");
    sp_context *ctx = new_ctx(4);
    collect *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *w = sp_stream_window(s, 2000, 2000);
    sp_stream *u = sp_stream_update_state_by_key(w, "i64", running_sum, NULL, NULL);
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, c), 0);
    run_ok(ctx);
    const char *want[] = {"2000:(a,3)", "4000:(a,7)"};
    expect(c, 2, want);
    sp_context_free(ctx);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_running_sum_whole_state_every_batch),
        cmocka_unit_test(test_emitting_nothing_removes_the_key),
        cmocka_unit_test(test_time_argument),
        cmocka_unit_test(test_initial_state),
        cmocka_unit_test(test_bad_initial_state_and_callbacks),
        cmocka_unit_test(test_state_over_a_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
