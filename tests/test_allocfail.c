/* Allocation failure anywhere in a job (STYLE.md's one allocator hook): a job crossing
 * sources, element-wise stages, keyed aggregation, windows, state, joins, analytics and every
 * sink is built and run with an allocator that fails its Nth allocation, for N from 1 to past
 * the last allocation of a clean run. Each run either succeeds or fails with a status and a
 * one-line message; none crashes, and the sanitizer build proves nothing leaks (the context
 * frees everything it took, whatever failed). */
#include "spate.h"
#include "support/jobfix.h"
#include "support/statefix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t us_limit = 30; /* state_sum_upto drops a key past it */

typedef struct failer {
    long n, fail_at; /* allocations so far; the one to refuse (0: none) */
    long live;       /* blocks handed out and not freed */
} failer;

static void *fail_alloc(void *ud, void *ptr, size_t nsize)
{
    failer *f = ud;
    if (nsize == 0) {
        if (ptr) f->live--;
        free(ptr);
        return NULL;
    }
    if (++f->n == f->fail_at) return NULL;
    void *p = realloc(ptr, nsize);
    if (p && !ptr) f->live++;
    return p;
}

static int on_rdd(void *ud, const sp_batch *b)
{
    (*(size_t *)ud) += sp_batch_count(b);
    return 0;
}

typedef struct paths {
    const char *qa, *qb, *dir;
} paths;

/* Builds and runs the job under f; returns the status (SP_OK or the failure's), with the
 * message checked to be one non-empty line. */
static int run_job(const paths *p, failer *f, size_t *rows)
{
    char prefix[512], csv[512], jsonl[512], html[512];
    snprintf(prefix, sizeof prefix, "%s/out", p->dir);
    snprintf(csv, sizeof csv, "%s/o.csv", p->dir);
    snprintf(jsonl, sizeof jsonl, "%s/o.jsonl", p->dir);
    snprintf(html, sizeof html, "%s/r.html", p->dir);
    FILE *out = tmpfile();
    assert_non_null(out);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.out = out;
    cfg.max_batches = 6;
    cfg.alloc = fail_alloc;
    cfg.alloc_ud = f;
    sp_context *ctx = NULL;
    int rc = sp_context_new(&cfg, &ctx);
    if (rc != SP_OK) {
        assert_null(ctx);
        fclose(out);
        return rc;
    }
    sp_expr *a0 = sp_expr_arg(ctx, 0), *a1 = sp_expr_arg(ctx, 1);
    sp_expr *add = sp_expr_binop(ctx, SP_OP_ADD, a0, a1);
    sp_expr *sub = sp_expr_binop(ctx, SP_OP_SUB, a0, a1);
    sp_stream *a = sp_queue_stream(ctx, p->qa, "(str,i64)");
    sp_stream *b = sp_queue_stream(ctx, p->qb, NULL);
    sp_stream *m =
        sp_stream_map(a, sp_expr_tuple2(ctx, sp_expr_field(ctx, a0, 0),
                                        sp_expr_binop(ctx, SP_OP_MUL, sp_expr_field(ctx, a0, 1),
                                                      sp_expr_i64(ctx, 3))));
    sp_stream *w = sp_stream_reduce_by_key_and_window(m, add, sub, 2000, 1000, NULL);
    sp_stream *st =
        sp_stream_update_state_by_key(a, "i64", state_sum_upto, (void *)&us_limit, NULL);
    sp_stream *j = sp_stream_left_outer_join(w, b);
    sp_stream *g = sp_stream_group_by_key_and_window(a, 2000, 1000);
    sp_stream *keys = sp_stream_map(a, sp_expr_field(ctx, a0, 0));
    sp_stream *dc = sp_stream_count_approx_distinct_and_window(keys, 0.05, 2000, 1000);
    static const double qs[] = {0.5};
    sp_stream *q = sp_stream_approx_quantiles_by_key(a, 1, qs, 0.01);
    sp_stream *top = sp_stream_top_k(sp_stream_reduce_by_key_agg(a, SP_AGG_SUM), 2);
    int brc = !w || !st || !j || !g || !dc || !q || !top ? SP_ENOMEM : SP_OK;
    if (!brc)
        brc = sp_stream_print(j, 100) || sp_stream_save_as_text_files(w, prefix, "txt") ||
              sp_stream_save_csv(st, csv) || sp_stream_save_jsonl(g, jsonl) ||
              sp_stream_foreach_rdd(q, on_rdd, rows) || sp_stream_report(dc, html, "distinct") ||
              sp_stream_report(top, html, "top");
    rc = brc ? -1 : sp_context_run(ctx);
    if (rc != SP_OK) {
        const char *msg = sp_context_errmsg(ctx);
        if (!msg || !*msg)
            fail_msg("allocation %ld refused: a failure without a message", f->fail_at);
        if (strchr(msg, '\n'))
            fail_msg("allocation %ld: the message is not one line: %s", f->fail_at, msg);
    }
    sp_context_free(ctx);
    fclose(out);
    if (f->live != 0)
        fail_msg("allocation %ld refused: %ld blocks still allocated after sp_context_free",
                 f->fail_at, f->live);
    return rc;
}

static void test_every_allocation_may_fail(void **state)
{
    (void)state;
    paths p;
    p.qa = write_tmp("af-a.jsonl", "[[\"a\",1],[\"b\",2],[\"a\",3]]\n[]\n[[\"c\",4],[\"a\",5]]\n"
                                   "[[\"b\",6]]\n[]\n[[\"a\",7],[\"d\",8]]\n");
    p.qb = write_tmp("af-b.jsonl", "[[\"a\",\"x\"]]\n[[\"b\",\"y\"]]\n[]\n[[\"a\",\"z\"]]\n");
    p.dir = tu_tmpdir("af-out");
    failer clean = {0, 0, 0};
    size_t rows = 0;
    int rc = run_job(&p, &clean, &rows);
    if (rc != SP_OK) fail_msg("the job fails without any refused allocation (%d)", rc);
    assert_true(rows > 0);
    long total = clean.n;
    print_message("a clean run makes %ld allocations\n", total);
    assert_true(total > 10);
    /* every one of the first 400, then a stride that keeps the test near 400 runs */
    long stride = total > 400 ? (total - 400) / 400 + 1 : 1;
    int failures = 0, runs = 0;
    for (long n = 1; n <= total; n += n <= 400 ? 1 : stride) {
        failer f = {0, n, 0};
        rows = 0;
        rc = run_job(&p, &f, &rows);
        runs++;
        if (rc != SP_OK) failures++;
    }
    print_message("%d runs, %d failed cleanly\n", runs, failures);
    assert_true(failures > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_may_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
