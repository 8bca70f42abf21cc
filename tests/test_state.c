/* test_state.c — updateStateByKey with Spark's semantics: running counts with the whole state
 * emitted every batch (empty batches included), removal by emitting nothing, the time
 * argument, an initial state file, and bad initial files and callbacks. */
#include "spate.h"
#include "support/collect.h"
#include "support/jobfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    c->sorted = 1;
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
    c->sorted = 1;
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
    c->sorted = 1;
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
    c->sorted = 1;
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
    c->sorted = 1;
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

/* ------------------------------------------------------------------- lambda trees (expr) */

static sp_expr *call0(sp_context *ctx, const char *m, sp_expr *recv)
{
    return sp_expr_call(ctx, m, 1, &recv);
}

static sp_expr *call1(sp_context *ctx, const char *m, sp_expr *recv, sp_expr *arg)
{
    sp_expr *k[2] = {recv, arg};
    return sp_expr_call(ctx, m, 2, k);
}

static sp_expr *some(sp_context *ctx, sp_expr *e)
{
    return sp_expr_call(ctx, "Some", 1, &e);
}

static sp_expr *none(sp_context *ctx)
{
    return sp_expr_call(ctx, "None", 0, NULL);
}

/* The values parameter, or (host) vs.map(v => v): the same list through a call the kernel
 * path does not take, so the lambda runs on the host evaluator. */
static sp_expr *vals_of(sp_context *ctx, int param, int host)
{
    sp_expr *v = sp_expr_arg(ctx, param);
    if (!host) return v;
    return call1(ctx, "map", v, sp_expr_lambda(ctx, 7, sp_expr_arg(ctx, 7)));
}

typedef enum ulam {
    U_COUNT,  /* (vs, st) => Some(st.getOrElse(0) + vs.size) */
    U_DECAY,  /* (vs, st) => if (st.getOrElse(0.0) * 0.5 + vs.sum < 2.0) None else Some(...) */
    U_TIME,   /* (t, k, vs, st) => if (vs.isEmpty) Some(st.getOrElse(k)) else
                 Some(t.milliseconds / 1000 * 100 + k + vs.sum) */
    U_ACTIVE, /* (vs, st) => if (vs.nonEmpty || st.isEmpty) Some(vs.sum) else None */
    U_DIVIDE, /* (vs, st) => Some(vs.sum / vs.size): division by zero for a key without values */
    U_N
} ulam;

static sp_expr *make_lambda(sp_context *ctx, ulam which, int host)
{
    sp_expr *st2 = sp_expr_arg(ctx, 1), *st4 = sp_expr_arg(ctx, 3);
    switch (which) {
    case U_COUNT:
        return some(ctx,
                    sp_expr_binop(ctx, SP_OP_ADD, call1(ctx, "getOrElse", st2, sp_expr_i64(ctx, 0)),
                                  call0(ctx, "size", vals_of(ctx, 0, host))));
    case U_DECAY: {
        sp_expr *x = sp_expr_binop(
            ctx, SP_OP_ADD,
            sp_expr_binop(ctx, SP_OP_MUL, call1(ctx, "getOrElse", st2, sp_expr_f64(ctx, 0.0)),
                          sp_expr_f64(ctx, 0.5)),
            call0(ctx, "sum", vals_of(ctx, 0, host)));
        return sp_expr_if(ctx, sp_expr_binop(ctx, SP_OP_LT, x, sp_expr_f64(ctx, 2.0)), none(ctx),
                          some(ctx, x));
    }
    case U_TIME: {
        sp_expr *vs = vals_of(ctx, 2, host), *k = sp_expr_arg(ctx, 1);
        sp_expr *ms = call0(ctx, "milliseconds", sp_expr_arg(ctx, 0));
        sp_expr *v = sp_expr_binop(
            ctx, SP_OP_ADD,
            sp_expr_binop(ctx, SP_OP_ADD,
                          sp_expr_binop(ctx, SP_OP_MUL,
                                        sp_expr_binop(ctx, SP_OP_DIV, ms, sp_expr_i64(ctx, 1000)),
                                        sp_expr_i64(ctx, 100)),
                          k),
            call0(ctx, "sum", vs));
        return sp_expr_if(ctx, call0(ctx, "isEmpty", vs),
                          some(ctx, call1(ctx, "getOrElse", st4, k)), some(ctx, v));
    }
    case U_ACTIVE: {
        sp_expr *vs = vals_of(ctx, 0, host);
        return sp_expr_if(
            ctx,
            sp_expr_binop(ctx, SP_OP_OR, call0(ctx, "nonEmpty", vs), call0(ctx, "isEmpty", st2)),
            some(ctx, call0(ctx, "sum", vs)), none(ctx));
    }
    default: {
        sp_expr *vs = vals_of(ctx, 0, host);
        return some(ctx,
                    sp_expr_binop(ctx, SP_OP_DIV, call0(ctx, "sum", vs), call0(ctx, "size", vs)));
    }
    }
}

/* Random keyed batches: keys 0..nkeys-1 (as "k<i>" strings or integers), values 0..9,
 * about one batch in four empty. */
static char *random_queue(uint64_t *rng, int batches, int nkeys, int int_keys)
{
    size_t cap = 1 << 16, off = 0;
    char *t = malloc(cap);
    for (int b = 0; b < batches; b++) {
        int n = tu_rand_below(rng, 4) == 0 ? 0 : (int)tu_rand_below(rng, 30);
        off += (size_t)snprintf(t + off, cap - off, "[");
        for (int i = 0; i < n; i++) {
            int k = (int)tu_rand_below(rng, (uint64_t)nkeys), v = (int)tu_rand_below(rng, 10);
            if (int_keys)
                off += (size_t)snprintf(t + off, cap - off, "%s[%d,%d]", i ? "," : "", k, v);
            else
                off += (size_t)snprintf(t + off, cap - off, "%s[\"k%d\",%d]", i ? "," : "", k, v);
        }
        off += (size_t)snprintf(t + off, cap - off, "]\n");
    }
    return t;
}

typedef struct lines {
    char *l[64];
    int n;
    int rc;
    char err[512];
    char explain[8192];
} lines;

static int on_lines(void *ud, const sp_batch *b)
{
    lines *c = ud;
    static collect one; /* 512 KiB: not on the stack */
    memset(&one, 0, sizeof one);
    one.sorted = 1;
    on_batch(&one, b);
    if (c->n < 64) c->l[c->n++] = strdup(one.lines[0]);
    return 0;
}

static void lines_free(lines *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->l[i]);
    free(c);
}

static lines *run_lambda(const char *q, const char *type, ulam which, int host, int batches,
                         const char *init)
{
    sp_context *ctx = new_ctx(batches);
    lines *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, type);
    sp_stream *u = sp_stream_update_state_by_key_expr(s, NULL, make_lambda(ctx, which, host), init);
    if (!u) fail_msg("lambda %d: %s", (int)which, sp_context_errmsg(ctx));
    assert_int_equal(sp_stream_foreach_rdd(u, on_lines, c), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(sp_context_explain(ctx, f), 0);
    fclose(f);
    snprintf(c->explain, sizeof c->explain, "%s", buf);
    free(buf);
    c->rc = sp_context_run(ctx);
    snprintf(c->err, sizeof c->err, "%s", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    return c;
}

static void test_lambda_kernel_matches_host_on_random_streams(void **state)
{
    (void)state;
    uint64_t rng = 77;
    for (int seed = 0; seed < 4; seed++) {
        int int_keys = seed % 2, batches = 12;
        char *text = random_queue(&rng, batches, seed < 2 ? 5 : 40, int_keys);
        char name[32];
        snprintf(name, sizeof name, "lq%d.jsonl", seed);
        const char *q = write_tmp(name, text);
        free(text);
        const char *type = int_keys ? "(i64,i64)" : "(str,i64)";
        for (int w = 0; w < U_DIVIDE; w++) {
            if (w == U_TIME && !int_keys) continue;
            lines *k = run_lambda(q, type, (ulam)w, 0, batches, NULL);
            lines *h = run_lambda(q, type, (ulam)w, 1, batches, NULL);
            if (k->rc || h->rc) fail_msg("lambda %d: %s / %s", w, k->err, h->err);
            assert_non_null(strstr(k->explain, "kernel over all live keys"));
            assert_non_null(strstr(h->explain, "host evaluator"));
            assert_int_equal(k->n, batches);
            assert_int_equal(h->n, batches);
            for (int i = 0; i < batches; i++)
                if (strcmp(k->l[i], h->l[i]))
                    fail_msg("lambda %d seed %d batch %d:\nkernel %s\n  host %s", w, seed, i,
                             k->l[i], h->l[i]);
            lines_free(k);
            lines_free(h);
        }
    }
}

static void test_lambda_hand_worked_and_initial_state(void **state)
{
    (void)state;
    const char *q = write_tmp("lh.jsonl", "[[\"a\",3],[\"b\",2],[\"a\",3]]\n[[\"a\",1]]\n[]\n");
    const char *init = write_tmp("linit.json", "[[\"a\",1.0],[\"c\",8.0]]\n");
    for (int host = 0; host < 2; host++) {
        /* counts: a 2, b 1; then a 3; then unchanged */
        lines *c = run_lambda(q, "(str,i64)", U_COUNT, host, 3, NULL);
        assert_int_equal(c->rc, SP_OK);
        assert_string_equal(c->l[0], "1000:(a,2)|(b,1)");
        assert_string_equal(c->l[1], "2000:(a,3)|(b,1)");
        assert_string_equal(c->l[2], "3000:(a,3)|(b,1)");
        lines_free(c);
        /* decaying sum, None under 2.0, from an initial state: a 0.5+6, c 4, b 2 at 1000;
         * a 3.25+1, c 2, b 1 -> dropped at 2000; a 2.125, c 1 -> dropped at 3000 */
        c = run_lambda(q, "(str,i64)", U_DECAY, host, 3, init);
        assert_int_equal(c->rc, SP_OK);
        assert_string_equal(c->l[0], "1000:(a,6.5)|(b,2.0)|(c,4.0)");
        assert_string_equal(c->l[1], "2000:(a,4.25)|(c,2.0)");
        assert_string_equal(c->l[2], "3000:(a,2.125)");
        lines_free(c);
    }
}

static void test_lambda_division_by_zero_fails_on_both_paths(void **state)
{
    (void)state;
    const char *q = write_tmp("ld.jsonl", "[[\"a\",4]]\n[]\n");
    for (int host = 0; host < 2; host++) {
        lines *c = run_lambda(q, "(str,i64)", U_DIVIDE, host, 2, NULL);
        assert_int_equal(c->rc, SP_ERUNTIME);
        assert_non_null(strstr(c->err, "zero"));
        assert_int_equal(c->n, 1);
        assert_string_equal(c->l[0], "1000:(a,4)");
        lines_free(c);
    }
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
        cmocka_unit_test(test_lambda_kernel_matches_host_on_random_streams),
        cmocka_unit_test(test_lambda_hand_worked_and_initial_state),
        cmocka_unit_test(test_lambda_division_by_zero_fails_on_both_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
