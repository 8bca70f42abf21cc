/* test_core.c — the engine end to end through the public API: each per-batch operator with
 * Spark's semantics on queueStream inputs (hand-worked expected outputs and random inputs
 * against plain-C references), the batch clock, fusion, outputs, and bad input. */
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

#define A0(ctx) sp_expr_arg(ctx, 0)
#define A1(ctx) sp_expr_arg(ctx, 1)

/* ------------------------------------------------------------------------ per-batch ops */

static void test_count_and_reduce_empty(void **state)
{
    (void)state;
    const char *q = write_tmp("q1.jsonl", "[1,2,3]\n[]\n[4]\n");
    sp_context *ctx = new_ctx(0);
    collect *c1 = calloc(1, sizeof *c1), *c2 = calloc(1, sizeof *c2);
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    assert_non_null(s);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_count(s), on_batch, c1), SP_OK);
    sp_stream *r = sp_stream_reduce(s, sp_expr_binop(ctx, SP_OP_ADD, A0(ctx), A1(ctx)));
    assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c2), SP_OK);
    run_ok(ctx);
    assert_int_equal(c1->n, 3);
    /* count() of an empty batch is 0; reduce() of an empty batch gives nothing. */
    assert_string_equal(c1->lines[0], "1000:3");
    assert_string_equal(c1->lines[1], "2000:0");
    assert_string_equal(c1->lines[2], "3000:1");
    assert_string_equal(c2->lines[0], "1000:6");
    assert_string_equal(c2->lines[1], "2000:");
    assert_string_equal(c2->lines[2], "3000:4");
    sp_context_free(ctx);
    free(c1);
    free(c2);
}

static void test_reduce_lambda_host(void **state)
{
    (void)state;
    const char *q = write_tmp("q2.jsonl", "[2,3,4]\n[5]\n");
    sp_context *ctx = new_ctx(0);
    collect *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    /* a * b is no built-in monoid: folded on the host. */
    sp_stream *r = sp_stream_reduce(s, sp_expr_binop(ctx, SP_OP_MUL, A0(ctx), A1(ctx)));
    assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), SP_OK);
    run_ok(ctx);
    assert_string_equal(c->lines[0], "1000:24");
    assert_string_equal(c->lines[1], "2000:5");
    sp_context_free(ctx);
    free(c);
}

static void test_reduce_by_key_and_empty_key(void **state)
{
    (void)state;
    const char *q = write_tmp("q3.jsonl", "[[\"a\",1],[\"\",2],[\"a\",3],[\"b\",4],[\"\",5]]\n"
                                          "[]\n[[\"b\",1]]\n");
    sp_context *ctx = new_ctx(0);
    collect *c = calloc(1, sizeof *c), *cv = calloc(1, sizeof *cv), *cm = calloc(1, sizeof *cm);
    c->sorted = cv->sorted = cm->sorted = 1;
    sp_stream *s = sp_queue_stream(ctx, q, NULL);
    assert_non_null(s);
    assert_string_equal(sp_stream_type(s), "(str,i64)");
    sp_stream *r = sp_stream_reduce_by_key(s, sp_expr_binop(ctx, SP_OP_ADD, A0(ctx), A1(ctx)));
    assert_int_equal(sp_stream_foreach_rdd(r, on_batch, c), SP_OK);
    sp_stream *keys = sp_stream_map(s, sp_expr_field(ctx, A0(ctx), 0));
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_count_by_value(keys), on_batch, cv), SP_OK);
    assert_int_equal(
        sp_stream_foreach_rdd(sp_stream_reduce_by_key_agg(s, SP_AGG_MAX), on_batch, cm), SP_OK);
    run_ok(ctx);
    assert_int_equal(c->n, 3);
    assert_string_equal(c->lines[0], "1000:(,7)|(a,4)|(b,4)");
    assert_string_equal(c->lines[1], "2000:");
    assert_string_equal(c->lines[2], "3000:(b,1)");
    assert_string_equal(cv->lines[0], "1000:(,2)|(a,2)|(b,1)");
    assert_string_equal(cm->lines[0], "1000:(,5)|(a,3)|(b,4)");
    sp_context_free(ctx);
    free(c);
    free(cv);
    free(cm);
}

static void test_joins(void **state)
{
    (void)state;
    const char *qa = write_tmp("qa.jsonl", "[[\"a\",1],[\"b\",2],[\"a\",3]]\n");
    const char *qb = write_tmp("qb.jsonl", "[[\"a\",\"x\"],[\"c\",\"y\"]]\n");
    sp_context *ctx = new_ctx(0);
    collect *cs = calloc(6, sizeof *cs);
    for (int i = 0; i < 6; i++)
        cs[i].sorted = 1;
    sp_stream *a = sp_queue_stream(ctx, qa, "(str,i64)");
    sp_stream *b = sp_queue_stream(ctx, qb, "(str,str)");
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_join(a, b), on_batch, &cs[0]), SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_left_outer_join(a, b), on_batch, &cs[1]),
                     SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_right_outer_join(a, b), on_batch, &cs[2]),
                     SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_full_outer_join(a, b), on_batch, &cs[3]),
                     SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_cogroup(a, b), on_batch, &cs[4]), SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_group_by_key(a), on_batch, &cs[5]), SP_OK);
    run_ok(ctx);
    assert_string_equal(cs[0].lines[0], "1000:(a,(1,x))|(a,(3,x))");
    assert_string_equal(cs[1].lines[0], "1000:(a,(1,Some(x)))|(a,(3,Some(x)))|(b,(2,None))");
    assert_string_equal(cs[2].lines[0], "1000:(a,(Some(1),x))|(a,(Some(3),x))|(c,(None,y))");
    assert_string_equal(cs[3].lines[0], "1000:(a,(Some(1),Some(x)))|(a,(Some(3),Some(x)))|"
                                        "(b,(Some(2),None))|(c,(None,Some(y)))");
    assert_string_equal(cs[4].lines[0], "1000:(a,(CompactBuffer(1, 3),CompactBuffer(x)))|"
                                        "(b,(CompactBuffer(2),CompactBuffer()))|"
                                        "(c,(CompactBuffer(),CompactBuffer(y)))");
    assert_string_equal(cs[5].lines[0], "1000:(a,CompactBuffer(1, 3))|(b,CompactBuffer(2))");
    sp_context_free(ctx);
    free(cs);
}

static void test_union_map_filter_fused(void **state)
{
    (void)state;
    const char *qa = write_tmp("qu1.jsonl", "[1,2,3,4,5,6]\n[7]\n");
    const char *qb = write_tmp("qu2.jsonl", "[10,11]\n[]\n");
    sp_context *ctx = new_ctx(0);
    collect *c = calloc(1, sizeof *c), *cu = calloc(1, sizeof *cu);
    sp_stream *a = sp_queue_stream(ctx, qa, "i64");
    sp_stream *b = sp_queue_stream(ctx, qb, "i64");
    sp_stream *u = sp_stream_union(a, b);
    assert_int_equal(sp_stream_foreach_rdd(u, on_batch, cu), SP_OK);
    /* filter(x % 2 == 0).map(x => (x * 10, x > 4)).mapValues(!_) fuses into one stage. */
    sp_stream *f = sp_stream_filter(
        u, sp_expr_binop(ctx, SP_OP_EQ, sp_expr_binop(ctx, SP_OP_MOD, A0(ctx), sp_expr_i64(ctx, 2)),
                         sp_expr_i64(ctx, 0)));
    sp_stream *m = sp_stream_map(
        f, sp_expr_tuple2(ctx, sp_expr_binop(ctx, SP_OP_MUL, A0(ctx), sp_expr_i64(ctx, 10)),
                          sp_expr_binop(ctx, SP_OP_GT, A0(ctx), sp_expr_i64(ctx, 4))));
    sp_stream *mv = sp_stream_map_values(m, sp_expr_unop(ctx, SP_OP_NOT, A0(ctx)));
    assert_non_null(mv);
    assert_string_equal(sp_stream_type(mv), "(i64,bool)");
    assert_int_equal(sp_stream_foreach_rdd(mv, on_batch, c), SP_OK);
    run_ok(ctx);
    assert_string_equal(cu->lines[0], "1000:1|2|3|4|5|6|10|11");
    assert_string_equal(cu->lines[1], "2000:7");
    assert_string_equal(c->lines[0], "1000:(20,true)|(40,true)|(60,false)|(100,false)");
    assert_string_equal(c->lines[1], "2000:");
    sp_context_free(ctx);
    free(c);
    free(cu);
}

/* ------------------------------------------------------------------ random vs references */

static int split_ws(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *s = sp_row_str(in, 0, &len);
    size_t b = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ' ') {
            if (i > b && (sp_emit_str(out, s + b, i - b) || sp_emit_end(out))) return -1;
            b = i + 1;
        }
    }
    return 0;
}

typedef struct ref_counts {
    int64_t count[64];
    int64_t sum[64];
    int64_t min[64];
} ref_counts;

static int check_counts(void *ud, const sp_batch *b)
{
    ref_counts *r = ud;
    int64_t seen = 0;
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        size_t n;
        const char *w = sp_batch_str(b, i, 0, &n);
        int k = atoi(w + 1);
        if (r->count[k] != sp_batch_i64(b, i, 1)) return -1;
        seen += r->count[k];
    }
    int64_t total = 0;
    for (int k = 0; k < 64; k++)
        total += r->count[k];
    return seen == total ? 0 : -2;
}

static void test_random_word_counts(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    /* One batch of random lines; the count of each word checked against a reference. */
    for (int round = 0; round < 4; round++) {
        size_t lines = round == 0 ? 1 : round == 1 ? 100 : round == 2 ? 4097 : 20000;
        ref_counts *ref = calloc(1, sizeof *ref);
        const char *dir = tu_tmpdir("words");
        char path[600];
        snprintf(path, sizeof path, "%s/w.txt", dir);
        FILE *f = fopen(path, "w");
        for (size_t l = 0; l < lines; l++) {
            int n = (int)tu_rand_below(&seed, 8);
            for (int i = 0; i < n; i++) {
                int k = (int)tu_rand_below(&seed, 64);
                ref->count[k]++;
                fprintf(f, "%sw%d", i ? " " : "", k);
            }
            fputc('\n', f);
        }
        fclose(f);
        sp_config cfg;
        sp_config_init(&cfg);
        cfg.batch_lines = 0; /* the whole file in one batch */
        cfg.status_line = 0;
        sp_context *ctx;
        assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
        sp_stream *w = sp_stream_flat_map(sp_text_file(ctx, path), "str", split_ws, NULL);
        sp_stream *p = sp_stream_map(w, sp_expr_tuple2(ctx, A0(ctx), sp_expr_i64(ctx, 1)));
        sp_stream *r = sp_stream_reduce_by_key_agg(p, SP_AGG_SUM);
        assert_non_null(r);
        assert_int_equal(sp_stream_foreach_rdd(r, check_counts, ref), SP_OK);
        run_ok(ctx);
        assert_int_equal(sp_context_batches(ctx), 1);
        sp_context_free(ctx);
        free(ref);
    }
}

/* ----------------------------------------------------------------------- clock and outputs */

static void test_print_and_batches_beyond_input(void **state)
{
    (void)state;
    const char *q = write_tmp("qp.jsonl", "[[\"a\",1],[\"b\",2],[\"c\",3]]\n");
    const char *dir = tu_tmpdir("print");
    char outp[600];
    snprintf(outp, sizeof outp, "%s/out.txt", dir);
    FILE *out = fopen(outp, "w");
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.max_batches = 3; /* missing input = empty batches */
    cfg.batch_ms = 500;
    cfg.out = out;
    cfg.status_line = 0;
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *s = sp_queue_stream(ctx, q, NULL);
    assert_int_equal(sp_stream_print(s, 2), SP_OK);
    run_ok(ctx);
    assert_int_equal(sp_context_batches(ctx), 3);
    sp_context_free(ctx);
    fclose(out);
    char *got = tu_read_file(outp, NULL);
    const char *dash = "-------------------------------------------\n";
    char expect[1024];
    snprintf(expect, sizeof expect,
             "%sTime: 500 ms\n%s(a,1)\n(b,2)\n...\n\n"
             "%sTime: 1000 ms\n%s\n"
             "%sTime: 1500 ms\n%s\n",
             dash, dash, dash, dash, dash, dash);
    assert_string_equal(got, expect);
    free(got);
}

static int stop_after_two(void *ud, const sp_batch *b)
{
    (void)b;
    void **p = ud;
    int *count = p[1];
    if (++*count == 2) sp_context_stop(p[0]);
    return 0;
}

static void test_stop_finishes_current_batch(void **state)
{
    (void)state;
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.batch_ms = 10;
    cfg.status_line = 0;
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_generator_opts g = {.seed = 1, .keys = 10, .value_max = 100, .per_batch = 50};
    sp_stream *s = sp_generator(ctx, &g);
    assert_non_null(s);
    int count = 0;
    void *p[2] = {ctx, &count};
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_count(s), stop_after_two, p), SP_OK);
    run_ok(ctx);
    assert_int_equal(count, 2);
    assert_int_equal(sp_context_batches(ctx), 2);
    sp_context_free(ctx);
}

/* ------------------------------------------------------------------------------ bad input */

static void test_bad_inputs(void **state)
{
    (void)state;
    sp_context *ctx = new_ctx(0);
    assert_null(sp_queue_stream(ctx, "no/such/file.jsonl", "i64"));
    assert_non_null(strstr(sp_context_errmsg(ctx), "no/such/file.jsonl"));
    sp_context_free(ctx);

    const char *q = write_tmp("qbad.jsonl", "[1,2]\n[3,\n[4]\n");
    ctx = new_ctx(0);
    collect *c = calloc(1, sizeof *c);
    sp_stream *s = sp_queue_stream(ctx, q, "i64");
    assert_non_null(s);
    assert_int_equal(sp_stream_foreach_rdd(s, on_batch, c), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_EPARSE);
    assert_non_null(strstr(sp_context_errmsg(ctx), "qbad.jsonl:2"));
    assert_int_equal(c->n, 1); /* the good batch before it was delivered */
    sp_context_free(ctx);
    free(c);

    ctx = new_ctx(0);
    sp_stream *a = sp_queue_stream(ctx, write_tmp("qt.jsonl", "[[\"a\",1]]\n"), NULL);
    /* type errors at job build */
    assert_null(sp_stream_map(
        a, sp_expr_binop(ctx, SP_OP_ADD, sp_expr_field(ctx, A0(ctx), 0), sp_expr_i64(ctx, 1))));
    assert_null(sp_stream_union(a, sp_stream_count(a)));
    assert_non_null(strstr(sp_context_errmsg(ctx), "union"));
    assert_int_equal(sp_context_run(ctx), SP_EINVAL); /* no outputs */
    sp_context_free(ctx);

    /* a refused connection */
    ctx = new_ctx(1);
    sp_stream *sock = sp_socket_text_stream(ctx, "127.0.0.1", 1);
    if (sock) {
        assert_int_equal(sp_stream_print(sock, 1), SP_OK);
        assert_int_equal(sp_context_run(ctx), SP_ECONN);
    }
    assert_non_null(strstr(sp_context_errmsg(ctx), "127.0.0.1"));
    sp_context_free(ctx);
}

static int failing(void *ud, const sp_batch *b)
{
    (void)ud;
    (void)b;
    return 7;
}

static void test_callback_failure(void **state)
{
    (void)state;
    sp_context *ctx = new_ctx(0);
    sp_stream *s = sp_queue_stream(ctx, write_tmp("qf.jsonl", "[1]\n"), "i64");
    assert_int_equal(sp_stream_foreach_rdd(s, failing, NULL), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_ECALLBACK);
    sp_context_free(ctx);
}

/* ------------------------------------------------- flatMapValues, transform, integer keys */

static int explode(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    int64_t v = sp_row_i64(in, 0);
    for (int64_t i = 0; i < v; i++)
        if (sp_emit_i64(out, i) || sp_emit_end(out)) return -1;
    return 0;
}

static int reverse_rows(void *ud, const sp_batch *in, sp_emitter *out)
{
    (void)ud;
    for (size_t i = sp_batch_count(in); i-- > 0;)
        if (sp_emit_i64(out, sp_batch_i64(in, i, 0) * 2) || sp_emit_end(out)) return -1;
    return 0;
}

static void test_flat_map_values_and_transform(void **state)
{
    (void)state;
    const char *q = write_tmp("qfv.jsonl", "[[\"a\",2],[\"b\",0],[\"c\",1]]\n[[\"d\",3]]\n");
    sp_context *ctx = new_ctx(0);
    collect *c = calloc(1, sizeof *c), *ct = calloc(1, sizeof *ct);
    sp_stream *s = sp_queue_stream(ctx, q, NULL);
    sp_stream *fv = sp_stream_flat_map_values(s, "i64", explode, NULL);
    assert_non_null(fv);
    assert_string_equal(sp_stream_type(fv), "(str,i64)");
    assert_int_equal(sp_stream_foreach_rdd(fv, on_batch, c), SP_OK);
    sp_stream *vals = sp_stream_map(s, sp_expr_field(ctx, A0(ctx), 1));
    sp_stream *t = sp_stream_transform(vals, "i64", reverse_rows, NULL);
    assert_int_equal(sp_stream_foreach_rdd(t, on_batch, ct), SP_OK);
    run_ok(ctx);
    assert_string_equal(c->lines[0], "1000:(a,0)|(a,1)|(c,0)");
    assert_string_equal(c->lines[1], "2000:(d,0)|(d,1)|(d,2)");
    assert_string_equal(ct->lines[0], "1000:2|0|4");
    assert_string_equal(ct->lines[1], "2000:6");
    sp_context_free(ctx);
    free(c);
    free(ct);
}

typedef struct gen_ref {
    int64_t sum[1000];
    int64_t cnt[1000];
    double fsum[1000];
    int batches;
    int bad;
} gen_ref;

static int check_gen(void *ud, const sp_batch *b)
{
    gen_ref *r = ud;
    r->batches++;
    size_t n = sp_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        int64_t k = sp_batch_i64(b, i, 0);
        if (k < 0 || k >= 1000 || sp_batch_i64(b, i, 1) != r->sum[k]) r->bad++;
    }
    size_t present = 0;
    for (int k = 0; k < 1000; k++)
        present += r->cnt[k] != 0;
    if (present != n) r->bad++;
    memset(r->sum, 0, sizeof r->sum);
    memset(r->cnt, 0, sizeof r->cnt);
    return 0;
}

static int ref_gen(void *ud, const sp_batch *b)
{
    gen_ref *r = ud;
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        int64_t k = sp_batch_i64(b, i, 0);
        r->sum[k] += sp_batch_i64(b, i, 1);
        r->cnt[k]++;
    }
    return 0;
}

static void test_generator_integer_keys(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        sp_config cfg;
        sp_config_init(&cfg);
        cfg.status_line = 0;
        cfg.threads = threads;
        sp_context *ctx;
        assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
        sp_generator_opts g = {
            .seed = 99, .keys = 1000, .value_max = 1000000, .per_batch = 50000, .total = 220000};
        sp_stream *s = sp_generator(ctx, &g);
        gen_ref *r = calloc(1, sizeof *r);
        /* The reference sums come first (outputs run in declaration order). */
        assert_int_equal(sp_stream_foreach_rdd(s, ref_gen, r), SP_OK);
        sp_stream *red =
            sp_stream_reduce_by_key(s, sp_expr_binop(ctx, SP_OP_ADD, A0(ctx), A1(ctx)));
        assert_int_equal(sp_stream_foreach_rdd(red, check_gen, r), SP_OK);
        run_ok(ctx);
        assert_int_equal(r->batches, 5); /* 4 full batches and the 20000 left */
        assert_int_equal(r->bad, 0);
        sp_context_free(ctx);
        free(r);
    }
}

static void test_device_out_of_memory(void **state)
{
    (void)state;
    /* 300 records: small batches are aggregated on the host, this one must reach the device. */
    char text[4096] = "[";
    for (int i = 0; i < 300; i++)
        strcat(text, i ? ",[\"a\",1]" : "[\"a\",1]");
    strcat(text, "]\n");
    const char *q = write_tmp("qoom.jsonl", text);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.device_mem_limit = 8; /* bytes: nothing fits */
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *s = sp_queue_stream(ctx, q, NULL);
    assert_int_equal(sp_stream_print(sp_stream_reduce_by_key_agg(s, SP_AGG_SUM), 10), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_EDEVMEM);
    assert_non_null(strstr(sp_context_errmsg(ctx), "device out of memory"));
    sp_context_free(ctx);
}

static void test_save_as_text_files_job(void **state)
{
    (void)state;
    const char *q = write_tmp("qs.jsonl", "[[\"a\",1]]\n[]\n");
    const char *dir = tu_tmpdir("save");
    char prefix[600], part[700];
    snprintf(prefix, sizeof prefix, "%s/out", dir);
    sp_context *ctx = new_ctx(0);
    sp_stream *s = sp_queue_stream(ctx, q, NULL);
    assert_int_equal(sp_stream_save_as_text_files(s, prefix, "txt"), SP_OK);
    run_ok(ctx);
    sp_context_free(ctx);
    snprintf(part, sizeof part, "%s-1000.txt/part-00000", prefix);
    char *got = tu_read_file(part, NULL);
    assert_non_null(got);
    assert_string_equal(got, "(a,1)\n");
    free(got);
    snprintf(part, sizeof part, "%s-2000.txt/_SUCCESS", prefix);
    got = tu_read_file(part, NULL);
    assert_non_null(got); /* an empty batch still gets its directory */
    free(got);
}

/* ------------------------------------------------------------------------------ event time */

static void test_event_time_batches(void **state)
{
    (void)state;
    /* Three arrival batches, out of order; watermark 1 s; batch interval 1 s. Worked by hand:
     * arrival 1 emits T=1000 (watermark 1500); arrival 2 rejects (600,f) as late and emits
     * T=2000; arrival 3 is the last: T=3000, 4000, the empty 5000 and 6000 are flushed. */
    const char *q = write_tmp("qev.jsonl", "[[500,\"a\"],[1500,\"b\"],[2500,\"c\"]]\n"
                                           "[[1200,\"d\"],[3100,\"e\"],[600,\"f\"]]\n"
                                           "[[5200,\"g\"]]\n");
    const char *dir = tu_tmpdir("ev");
    char rej[600];
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.rejects_path = rej;
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    collect *c = calloc(1, sizeof *c);
    c->sorted = 1;
    sp_stream *s = sp_queue_stream(ctx, q, "(ts,str)");
    assert_null(sp_stream_event_time(s, 1, 1000)); /* a str column is no timestamp */
    sp_stream *ev = sp_stream_event_time(s, 0, 1000);
    assert_non_null(ev);
    assert_int_equal(sp_stream_foreach_rdd(ev, on_batch, c), SP_OK);
    run_ok(ctx);
    assert_int_equal(c->n, 6);
    assert_string_equal(c->lines[0], "1000:(500,a)");
    assert_string_equal(c->lines[1], "2000:(1200,d)|(1500,b)");
    assert_string_equal(c->lines[2], "3000:(2500,c)");
    assert_string_equal(c->lines[3], "4000:(3100,e)");
    assert_string_equal(c->lines[4], "5000:");
    assert_string_equal(c->lines[5], "6000:(5200,g)");
    sp_context_free(ctx);
    char *r = tu_read_file(rej, NULL);
    assert_non_null(r);
    assert_non_null(strstr(r, "late record"));
    assert_non_null(strstr(r, "(600,f)"));
    free(r);
    free(c);

    /* --batches N runs exactly N event-time batches: empty ones after the input ends. */
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.max_batches = 8;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    c = calloc(1, sizeof *c);
    c->sorted = 1;
    s = sp_queue_stream(ctx, q, "(ts,str)");
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_event_time(s, 0, 1000), on_batch, c), SP_OK);
    run_ok(ctx);
    assert_int_equal(c->n, 8);
    assert_string_equal(c->lines[5], "6000:(5200,g)");
    assert_string_equal(c->lines[6], "7000:");
    assert_string_equal(c->lines[7], "8000:");
    sp_context_free(ctx);
    free(c);

    /* Every output must follow the event-time stream. */
    ctx = new_ctx(0);
    s = sp_queue_stream(ctx, q, "(ts,str)");
    assert_non_null(sp_stream_event_time(s, 0, 0));
    assert_int_equal(sp_stream_print(s, 1), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_EINVAL);
    assert_non_null(strstr(sp_context_errmsg(ctx), "eventTime"));
    sp_context_free(ctx);
}

static void test_event_time_horizon(void **state)
{
    (void)state;
    /* One-minute batches, horizon 1 h: the first record (2024-03-10 08:00) anchors it. Year
     * 9999 and 2 h later are beyond it; INT64_MIN and INT64_MAX (what a NaN or an infinity
     * becomes) are no times at all; 30 min later is fine. Without the checks the job would
     * emit billions of empty batches (the collector fails the job after 64). */
    const char *q =
        write_tmp("qevh.jsonl", "[[1710057600000,\"a\"],[253402300000000,\"y9999\"],"
                                "[1710057630000,\"b\"]]\n"
                                "[[-9223372036854775808,\"nan\"],[1710064800001,\"2h\"],"
                                "[1710059400000,\"30m\"],[9223372036854775807,\"inf\"]]\n");
    const char *dir = tu_tmpdir("evh");
    char rej[600], met[600];
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    snprintf(met, sizeof met, "%s/metrics.jsonl", dir);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.batch_ms = 60000;
    cfg.event_horizon_ms = 3600000;
    cfg.rejects_path = rej;
    cfg.metrics_path = met;
    sp_context *ctx;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    collect *c = calloc(1, sizeof *c);
    c->sorted = 1;
    sp_stream *ev = sp_stream_event_time(sp_queue_stream(ctx, q, "(ts,str)"), 0, 0);
    assert_int_equal(sp_stream_foreach_rdd(ev, on_batch, c), SP_OK);
    run_ok(ctx);
    sp_context_free(ctx);
    assert_int_equal(c->n, 31); /* 08:01 .. 08:31 */
    assert_string_equal(c->lines[0], "1710057660000:(1710057600000,a)|(1710057630000,b)");
    assert_string_equal(c->lines[1], "1710057720000:");
    assert_string_equal(c->lines[30], "1710059460000:(1710059400000,30m)");
    free(c);
    char *r = tu_read_file(rej, NULL);
    assert_non_null(r);
    assert_string_equal(
        r, "stream 0 batch 60000:2: eventTime: timestamp more than 1h from the watermark (the "
           "event-time horizon): (253402300000000,y9999)\n"
           "stream 0 batch 120000:1: eventTime: timestamp out of range (years 1 to 9999 are "
           "event times): (-9223372036854775808,nan)\n"
           "stream 0 batch 120000:2: eventTime: timestamp more than 1h from the watermark (the "
           "event-time horizon): (1710064800001,2h)\n"
           "stream 0 batch 120000:4: eventTime: timestamp out of range (years 1 to 9999 are "
           "event times): (9223372036854775807,inf)\n");
    free(r);
    /* counted in the metrics as rejects, not as late records */
    char *m = tu_read_file(met, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"rejected\":4,\"late\":0"));
    free(m);

    /* The default horizon is 365 days; a negative one is refused. */
    sp_config_init(&cfg);
    cfg.event_horizon_ms = -1;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_EINVAL);
    ctx = new_ctx(0);
    ev = sp_stream_event_time(sp_queue_stream(ctx, q, "(ts,str)"), 0, 0);
    assert_int_equal(sp_stream_print(ev, 1), SP_OK);
    char *plan = NULL;
    size_t plen = 0;
    FILE *f = open_memstream(&plan, &plen);
    assert_int_equal(sp_context_explain(ctx, f), SP_OK);
    fclose(f);
    assert_non_null(strstr(plan, "horizon 31536000000 ms"));
    free(plan);
    sp_context_free(ctx);
}

/* A foreachRDD that asks its context to stop at the stop_at-th batch and fails the job if
 * another batch runs after that. */
typedef struct stopper {
    sp_context *ctx;
    int n, stop_at;
} stopper;

static int on_batch_stop(void *ud, const sp_batch *b)
{
    (void)b;
    stopper *st = ud;
    if (++st->n > st->stop_at) return -1;
    if (st->n == st->stop_at) sp_context_stop(st->ctx);
    return 0;
}

static void test_event_time_stop(void **state)
{
    (void)state;
    /* The second arrival moves the watermark 11.6 days on: a million empty batches are due at
     * once. A stop request is honoured between any two of them. */
    const char *q = write_tmp("qevstop.jsonl", "[[1000,\"a\"]]\n[[1000000000,\"b\"]]\n");
    sp_context *ctx = new_ctx(0);
    stopper st = {ctx, 0, 5};
    sp_stream *ev = sp_stream_event_time(sp_queue_stream(ctx, q, "(ts,str)"), 0, 0);
    assert_int_equal(sp_stream_foreach_rdd(ev, on_batch_stop, &st), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_OK);
    assert_int_equal(st.n, 5);
    assert_int_equal(sp_context_batches(ctx), 5);
    sp_context_free(ctx);
}

static void test_explain(void **state)
{
    (void)state;
    sp_context *ctx = new_ctx(0);
    sp_stream *s = sp_queue_stream(ctx, write_tmp("qx.jsonl", "[[\"a\",1]]\n"), NULL);
    sp_stream *m =
        sp_stream_map_values(s, sp_expr_binop(ctx, SP_OP_MUL, A0(ctx), sp_expr_i64(ctx, 3)));
    assert_int_equal(sp_stream_print(sp_stream_reduce_by_key_agg(m, SP_AGG_SUM), 5), SP_OK);
    const char *dir = tu_tmpdir("explain");
    char path[600];
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    FILE *f = fopen(path, "w");
    assert_int_equal(sp_context_explain(ctx, f), SP_OK);
    fclose(f);
    char *plan = tu_read_file(path, NULL);
    assert_non_null(strstr(plan, "__kernel"));
    assert_non_null(strstr(plan, "keyed aggregation on the device"));
    free(plan);
    sp_context_free(ctx);
}

/* reduceByKey of a tuple of counters: (a, b) => (a._1 + b._1, max(a._2, b._2)) runs one device
 * aggregation per component; a lambda that is not component-wise folds on the host. Both
 * must give the hand-worked values. */
static void test_reduce_by_key_tuple_monoids(void **state)
{
    (void)state;
    const char *q =
        write_tmp("qtm.jsonl", "[[\"a\",[1,5]],[\"b\",[2,7]],[\"a\",[3,2]],[\"a\",[4,9]]]\n"
                               "[]\n");
    sp_context *ctx = new_ctx(0);
    collect *c1 = calloc(1, sizeof *c1), *c2 = calloc(1, sizeof *c2);
    c1->sorted = c2->sorted = 1;
    sp_stream *s = sp_queue_stream(ctx, q, "(str,(i64,i32))");
    assert_non_null(s);
    sp_expr *a1 = sp_expr_field(ctx, A0(ctx), 0), *b1 = sp_expr_field(ctx, A1(ctx), 0);
    sp_expr *a2 = sp_expr_field(ctx, A0(ctx), 1), *b2 = sp_expr_field(ctx, A1(ctx), 1);
    sp_expr *f = sp_expr_tuple2(ctx, sp_expr_binop(ctx, SP_OP_ADD, a1, b1),
                                sp_expr_binop(ctx, SP_OP_MAX, b2, a2));
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_reduce_by_key(s, f), on_batch, c1), SP_OK);
    /* (a._1 * b._1, a._2 + b._2) is not component-wise monoids throughout: host fold. */
    sp_expr *g = sp_expr_tuple2(ctx, sp_expr_binop(ctx, SP_OP_MUL, a1, b1),
                                sp_expr_binop(ctx, SP_OP_ADD, a2, b2));
    assert_int_equal(sp_stream_foreach_rdd(sp_stream_reduce_by_key(s, g), on_batch, c2), SP_OK);
    run_ok(ctx);
    assert_string_equal(c1->lines[0], "1000:(a,(8,9))|(b,(2,7))");
    assert_string_equal(c1->lines[1], "2000:");
    assert_string_equal(c2->lines[0], "1000:(a,(12,16))|(b,(2,7))");
    sp_context_free(ctx);
    free(c1);
    free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_reduce_empty),
        cmocka_unit_test(test_reduce_lambda_host),
        cmocka_unit_test(test_reduce_by_key_and_empty_key),
        cmocka_unit_test(test_joins),
        cmocka_unit_test(test_union_map_filter_fused),
        cmocka_unit_test(test_random_word_counts),
        cmocka_unit_test(test_print_and_batches_beyond_input),
        cmocka_unit_test(test_stop_finishes_current_batch),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_callback_failure),
        cmocka_unit_test(test_flat_map_values_and_transform),
        cmocka_unit_test(test_generator_integer_keys),
        cmocka_unit_test(test_device_out_of_memory),
        cmocka_unit_test(test_save_as_text_files_job),
        cmocka_unit_test(test_event_time_batches),
        cmocka_unit_test(test_event_time_stop),
        cmocka_unit_test(test_event_time_horizon),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_reduce_by_key_tuple_monoids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
