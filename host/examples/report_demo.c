/* report_demo — an HTML report of a small access-log-like job with Spate's C API.
 *
 * With a queue file (JSON lines, one arrival batch per line, records [time_ms, path, status,
 * bytes]) the records are cut into event-time batches of BATCH_MS (default one minute) by
 * their own timestamps, and four streams report to one page:
 *
 *   count()                                       requests per batch          (a series)
 *   map(r => (r._2, r._4)).reduceByKey(_ + _)     bytes per path              (top paths)
 *   map(r => (r._3, 1)).reduceByKey(_ + _)        requests per status         (few keys)
 *   filter(r => r._3 >= 500).map(r => r._2)       paths of server errors      (rows)
 *
 * Without a queue file a seeded generator of (str, i64) records on the manual clock stands in:
 * records per batch and the keyed sum of their values.
 *
 * usage: report_demo OUT.html [QUEUE_FILE [BATCH_MS]] */
#include "spate.h"

#include <stdio.h>
#include <stdlib.h>

#define A0(ctx) sp_expr_arg(ctx, 0)
#define FIELD(ctx, i) sp_expr_field(ctx, A0(ctx), i)

static int log_job(sp_context *ctx, const char *queue, const char *out)
{
    sp_stream *recs = sp_queue_stream(ctx, queue, "(ts,str,i64,i64)");
    sp_stream *ev = sp_stream_event_time(recs, 0, 0);
    if (!ev) return -1;
    sp_stream *requests = sp_stream_count(ev);
    sp_expr *sum = sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    sp_stream *bytes = sp_stream_reduce_by_key(
        sp_stream_map(ev, sp_expr_tuple2(ctx, FIELD(ctx, 1), FIELD(ctx, 3))), sum);
    sp_stream *status = sp_stream_reduce_by_key(
        sp_stream_map(ev, sp_expr_tuple2(ctx, FIELD(ctx, 2), sp_expr_i64(ctx, 1))), sum);
    sp_stream *errors = sp_stream_map(
        sp_stream_filter(ev, sp_expr_binop(ctx, SP_OP_GE, FIELD(ctx, 2), sp_expr_i64(ctx, 500))),
        FIELD(ctx, 1));
    int rc = sp_stream_report(requests, out, "Requests per batch");
    if (!rc) rc = sp_stream_report(bytes, out, "Bytes served per path");
    if (!rc) rc = sp_stream_report(status, out, "Requests per status");
    if (!rc) rc = sp_stream_report(errors, out, "Paths of server errors (5xx)");
    return rc;
}

static int generator_job(sp_context *ctx, const char *out)
{
    sp_generator_opts o = {.seed = 42,
                           .keys = 40,
                           .string_keys = 1,
                           .value_max = 1000,
                           .per_batch = 5000,
                           .total = 5000 * 30};
    sp_stream *g = sp_generator(ctx, &o);
    sp_stream *n = sp_stream_count(g);
    sp_stream *sums = sp_stream_reduce_by_key_agg(g, SP_AGG_SUM);
    if (!n || !sums) return -1;
    int rc = sp_stream_report(n, out, "Records per batch");
    if (!rc) rc = sp_stream_report(sums, out, "Sum of values per key");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: report_demo OUT.html [QUEUE_FILE [BATCH_MS]]\n");
        return 2;
    }
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.clock = SP_CLOCK_MANUAL;
    cfg.batch_ms = argc > 3 ? strtoll(argv[3], NULL, 10) : argc > 2 ? 60000 : 1000;
    sp_context *ctx;
    if (sp_context_new(&cfg, &ctx) != SP_OK) return 1;
    int rc = argc > 2 ? log_job(ctx, argv[2], argv[1]) : generator_job(ctx, argv[1]);
    if (rc == SP_OK) rc = sp_context_run(ctx);
    if (rc != SP_OK) {
        fprintf(stderr, "report_demo: %s\n", sp_context_errmsg(ctx));
        sp_context_free(ctx);
        return 1;
    }
    fprintf(stderr, "report_demo: %lld batches, report in %s\n", (long long)sp_context_batches(ctx),
            argv[1]);
    sp_context_free(ctx);
    return 0;
}
