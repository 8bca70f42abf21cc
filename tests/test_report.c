/* test_report.c — the report sink (sp_stream_report): jobs from queue files with scalar, keyed
 * and row streams, checked in the HTML page they leave (balanced markup, nothing fetched, a
 * section per stream in order, a polyline per series, the tables' rows worked by hand); the
 * bounds on chart points and keys, fed through the sink directly; and API misuse. */
#include "core/core_int.h"
#include "io/report_int.h"
#include "spate.h"
#include "support/envfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------- helpers */

static const char *write_tmp(const char *dir, const char *name, const char *text)
{
    static char paths[8][600];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 600, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(p, text), 0);
    return p;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Every element opened is closed, in order (elements written "<x .../>" and void ones
 * excepted). Fails the test with the first mismatch. */
static void check_balanced(const char *html)
{
    static const char *const voids[] = {"meta", "br", "hr", "img", "input", "link"};
    char stack[256][16];
    int depth = 0;
    for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
        if (p[1] == '!') continue;
        int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[16];
        size_t n = 0;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')) {
            if (n < sizeof name - 1) name[n++] = *q;
            q++;
        }
        name[n] = '\0';
        assert_true(n > 0);
        const char *gt = strchr(q, '>');
        assert_non_null(gt);
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name))
                fail_msg("</%s> closes <%s>", name, depth ? stack[depth - 1] : "(nothing)");
            depth--;
            continue;
        }
        if (gt[-1] == '/') continue;
        int is_void = 0;
        for (size_t i = 0; i < sizeof voids / sizeof voids[0]; i++)
            is_void |= !strcmp(voids[i], name);
        if (is_void) continue;
        assert_true(depth < 256);
        strcpy(stack[depth++], name);
    }
    if (depth) fail_msg("<%s> is never closed", stack[depth - 1]);
}

/* Nothing to fetch: no scripts, no external references. */
static void check_self_contained(const char *html)
{
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "url("));
}

/* The text of section i (1-based) of the page (malloc'd). */
static char *section(const char *html, int i)
{
    char open[32];
    snprintf(open, sizeof open, "<section id=\"s%d\" ", i);
    const char *a = strstr(html, open);
    assert_non_null(a);
    const char *b = strstr(a, "</section>");
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

static sp_context *new_ctx(void)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    return ctx;
}

/* --------------------------------------------------------------------------------- the jobs */

/* Five batches worked by hand (times 1 s .. 5 s on the manual clock):
 *   count   3 1 0 2 3
 *   sums    {a:4,b:2} {b:5} {} {c:7,a:1} {a:2,b:1,c:1}
 * totals a 7 (3 batches), b 8 (3), c 8 (2). */
static const char queue_text[] = "[[\"a\",1],[\"b\",2],[\"a\",3]]\n"
                                 "[[\"b\",5]]\n"
                                 "[]\n"
                                 "[[\"c\",7],[\"a\",1]]\n"
                                 "[[\"a\",2],[\"b\",1],[\"c\",1]]\n";

static void test_scalar_and_keyed(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("report-job");
    const char *q = write_tmp(dir, "q.jsonl", queue_text);
    char out[600], out2[600];
    snprintf(out, sizeof out, "%s/report.html", dir);
    snprintf(out2, sizeof out2, "%s/rows.html", dir);
    sp_context *ctx = new_ctx();
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_stream *n = sp_stream_count(s);
    sp_stream *sums = sp_stream_reduce_by_key_agg(s, SP_AGG_SUM);
    sp_stream *keys = sp_stream_map(s, sp_expr_field(ctx, sp_expr_arg(ctx, 0), 0));
    assert_int_equal(sp_stream_report(n, out, "Records per batch"), SP_OK);
    assert_int_equal(sp_stream_report(keys, out2, "Keys <&> \"seen\""), SP_OK);
    assert_int_equal(sp_stream_report(sums, out, "Sum per key"), SP_OK);
    /* The page exists (empty) as soon as the job is built. */
    char *early = tu_read_file(out, NULL);
    assert_non_null(early);
    assert_non_null(strstr(early, "No batches yet"));
    free(early);
    if (sp_context_run(ctx) != SP_OK) fail_msg("run: %s", sp_context_errmsg(ctx));
    sp_context_free(ctx);

    char *html = tu_read_file(out, NULL);
    assert_non_null(html);
    check_balanced(html);
    check_self_contained(html);
    assert_non_null(strstr(html, "<title>Spate report: report.html</title>"));
    assert_non_null(strstr(html, "Batch times 1s &#8211; 5s after time zero &#183; 5 batch times"));
    /* One section per reporting stream, in declaration order. */
    assert_int_equal(count_of(html, "<section "), 2);
    const char *h1 = strstr(html, "<h2>Records per batch</h2>");
    const char *h2 = strstr(html, "<h2>Sum per key</h2>");
    assert_non_null(h1);
    assert_non_null(h2);
    assert_true(h1 < h2);

    /* Scalar: one series, a polyline through the five counts; stats and the latest batches. */
    char *sc = section(html, 1);
    assert_int_equal(count_of(sc, "<svg "), 1);
    assert_int_equal(count_of(sc, "<g class=\"series\""), 1);
    assert_int_equal(count_of(sc, "<polyline"), 1);
    assert_int_equal(count_of(sc, "<circle"), 5);
    assert_non_null(strstr(sc, "<span>latest</span><b>3</b>"));
    assert_non_null(strstr(sc, "<span>min</span><b>0</b>"));
    assert_non_null(strstr(sc, "<span>mean</span><b>1.8</b>"));
    assert_non_null(strstr(sc, "<span>max</span><b>3</b>"));
    assert_non_null(strstr(sc, "<tr><td>5s</td><td class=\"num\">3</td></tr>\n"
                               "<tr><td>4s</td><td class=\"num\">2</td></tr>\n"
                               "<tr><td>3s</td><td class=\"num\">0</td></tr>"));
    /* Time axis labels as durations from time zero. */
    assert_non_null(strstr(sc, ">5s</text>"));
    free(sc);

    /* Keyed: a series (with a polyline) per key; the latest batch by value, ties in first-seen
     * order; few rows per batch, so keys are ranked by how often they appeared. */
    char *kd = section(html, 2);
    assert_int_equal(count_of(kd, "<g class=\"series\""), 3);
    const char *g = kd;
    for (int i = 0; i < 3; i++) {
        g = strstr(g, "<g class=\"series\"");
        const char *end = strstr(g, "</g>");
        const char *pl = strstr(g, "<polyline");
        assert_true(pl && pl < end);
        g = end;
    }
    assert_non_null(strstr(kd, "<caption>Latest batch, 5s &#183; 3 rows, largest first</caption>"));
    assert_non_null(strstr(kd, "<tr><td class=\"num\">1</td><td class=\"key\">a</td>"
                               "<td class=\"num\">2</td></tr>\n"
                               "<tr><td class=\"num\">2</td><td class=\"key\">b</td>"
                               "<td class=\"num\">1</td></tr>\n"
                               "<tr><td class=\"num\">3</td><td class=\"key\">c</td>"
                               "<td class=\"num\">1</td></tr>"));
    assert_non_null(strstr(kd, "<caption>Keys seen most often over 5 batches</caption>"));
    assert_non_null(strstr(kd, "<td class=\"key\">b</td><td class=\"num\">3</td>"
                               "<td class=\"num\">8</td><td class=\"num\">1</td></tr>\n"
                               "<tr><td class=\"num\">2</td><td class=\"key\">a</td>"
                               "<td class=\"num\">3</td><td class=\"num\">7</td>"
                               "<td class=\"num\">2</td></tr>\n"
                               "<tr><td class=\"num\">3</td><td class=\"key\">c</td>"
                               "<td class=\"num\">2</td><td class=\"num\">8</td>"
                               "<td class=\"num\">1</td></tr>"));
    assert_non_null(strstr(kd, "b <span class=\"dim\">(sum 8)</span>"));
    free(kd);
    free(html);

    /* Rows (a str stream) on its own page: elements per batch, the latest rows, an escaped
     * title. */
    html = tu_read_file(out2, NULL);
    assert_non_null(html);
    check_balanced(html);
    check_self_contained(html);
    assert_int_equal(count_of(html, "<section "), 1);
    assert_non_null(strstr(html, "<h2>Keys &lt;&amp;&gt; &quot;seen&quot;</h2>"));
    assert_null(strstr(html, "<&>"));
    assert_non_null(strstr(html, "<th>element</th>"));
    assert_non_null(strstr(html, "<tr><td class=\"key\">a</td></tr>\n<tr><td class=\"key\">b</td>"
                                 "</tr>\n<tr><td class=\"key\">c</td></tr>"));
    assert_int_equal(count_of(html, "<polyline"), 1);
    assert_non_null(strstr(html, "<span>most rows in a batch</span><b>3</b>"));
    free(html);
}

/* A reduce over an empty batch yields no element: a gap in the series, a dash in the table.
 * Event-time batches give epoch times: the axis and tables show UTC clock times. */
static void test_gaps_and_epoch_times(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("report-epoch");
    /* 2024-05-01 12:00:00 UTC = 1714564800000; one-minute batches. */
    const char *q = write_tmp(dir, "q.jsonl",
                              "[[1714564810000,5],[1714564820000,6]]\n"
                              "[[1714564930000,7]]\n"
                              "[[1714565050000,1],[1714565051000,2]]\n");
    char out[600];
    snprintf(out, sizeof out, "%s/epoch.html", dir);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.batch_ms = 60000;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *ev = sp_stream_event_time(sp_queue_stream(ctx, q, "(ts,i64)"), 0, 0);
    sp_stream *v = sp_stream_map(ev, sp_expr_field(ctx, sp_expr_arg(ctx, 0), 1));
    sp_stream *sum = sp_stream_reduce(
        v, sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1)));
    assert_int_equal(sp_stream_report(sum, out, NULL), SP_OK);
    if (sp_context_run(ctx) != SP_OK) fail_msg("run: %s", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    char *html = tu_read_file(out, NULL);
    assert_non_null(html);
    check_balanced(html);
    check_self_contained(html);
    /* Batch T holds [T - 1 min, T): 12:01 (5 + 6), 12:02 (empty), 12:03 (7), 12:04 (empty),
     * 12:05 (1 + 2). */
    assert_non_null(
        strstr(html, "Batch times 2024-05-01 12:01:00 &#8211; 2024-05-01 12:05:00 UTC"));
    assert_non_null(strstr(html, "<h2>stream 3 of type i64</h2>")); /* no title: the stream */
    assert_non_null(strstr(html, "<tr><td>2024-05-01 12:05:00</td><td class=\"num\">3</td></tr>"));
    assert_non_null(strstr(html, "<tr><td>2024-05-01 12:04:00</td><td class=\"num\">&#8212;</td>"));
    assert_non_null(strstr(html, ">12:03:00</text>"));
    /* 11 and 7 are separated by the empty 12:02 batch, 7 and 3 by 12:04: three lone dots and
     * no line. */
    assert_int_equal(count_of(html, "<polyline"), 0);
    assert_int_equal(count_of(html, "<circle"), 3);
    free(html);
}

/* ------------------------------------------------------------------------- bounds, directly */

static sp_batch *kv_batch(fixture *f, const sp_td *td, int64_t t, const char *const *keys,
                          const int64_t *vals, int n)
{
    sp_batch *b = NULL;
    assert_int_equal(batch_new(&f->env, td, t, &b, NULL), 0);
    sp_emitter em;
    emitter_init(&em, b, 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(sp_emit_str(&em, keys[i], strlen(keys[i])), 0);
        assert_int_equal(sp_emit_i64(&em, vals[i]), 0);
        assert_int_equal(sp_emit_end(&em), 0);
    }
    return b;
}

/* 4500 batches: chart points are thinned to at most REPORT_POINTS, keys pruned to a bounded
 * number, and the key present in every batch keeps its exact statistics. */
static void test_bounds(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("report-bounds");
    char out[600];
    snprintf(out, sizeof out, "%s/bounds.html", dir);
    sp_diag d;
    diag_clear(&d);
    sp_td *td = NULL, *tn = NULL;
    assert_int_equal(td_parse(NULL, "(str,i64)", &td, &d), 0);
    assert_int_equal(td_parse(NULL, "i64", &tn, &d), 0);
    report *r = NULL;
    assert_int_equal(report_new(NULL, out, &r, &d), 0);
    int i0 = -1, i1 = -1;
    assert_int_equal(report_add_section(r, td, "keys", "k", NULL, NULL, &i0, &d), 0);
    assert_int_equal(report_add_section(r, tn, "values", "v", NULL, NULL, &i1, &d), 0);
    sp_sink *k0 = NULL, *k1 = NULL;
    assert_int_equal(sink_report_new(r, i0, &k0, &d), 0);
    assert_int_equal(sink_report_new(r, i1, &k1, &d), 0);
    report_release(r); /* the sinks hold it */
    const int nb = 4500;
    for (int i = 1; i <= nb; i++) {
        char u1[32], u2[32];
        snprintf(u1, sizeof u1, "u%d", 2 * i);
        snprintf(u2, sizeof u2, "u%d", 2 * i + 1);
        const char *keys[] = {"hot", u1, u2};
        const int64_t vals[] = {10, 1, 2};
        sp_batch *b = kv_batch(f, td, (int64_t)i * 1000, keys, vals, 3);
        assert_int_equal(k0->vt->write(k0, b, &d), 0);
        batch_release(b);
        assert_int_equal(batch_new(&f->env, tn, (int64_t)i * 1000, &b, &d), 0);
        assert_int_equal(col_push_i64(&b->cols[0], i), 0);
        b->n = 1;
        assert_int_equal(k1->vt->write(k1, b, &d), 0);
        batch_release(b);
    }
    assert_int_equal(k0->vt->close(k0, &d), 0);
    assert_int_equal(k1->vt->close(k1, &d), 0);
    sink_free(k0);
    sink_free(k1);
    td_free(NULL, td);
    td_free(NULL, tn);

    char *html = tu_read_file(out, NULL);
    assert_non_null(html);
    check_balanced(html);
    /* The scalar series: one polyline of between REPORT_POINTS / 2 and REPORT_POINTS points,
     * ending at the last batch. */
    char *sc = section(html, 2);
    const char *pl = strstr(sc, "<polyline");
    assert_non_null(pl);
    const char *pts = strstr(pl, "points=\"");
    const char *end = strchr(pts + 8, '"');
    int npts = 1;
    for (const char *p = pts + 8; p < end; p++)
        npts += *p == ' ';
    assert_true(npts <= REPORT_POINTS);
    assert_true(npts >= REPORT_POINTS / 2);
    assert_non_null(strstr(sc, "<tr><td>1h15m</td><td class=\"num\">4,500</td></tr>\n"
                               "<tr><td>1h14m59s</td>"));
    assert_non_null(strstr(sc, "<span>max</span><b>4,500</b>"));
    free(sc);
    /* Keys: 9001 distinct, at most REPORT_KEYS kept; "hot" exact. */
    char *kd = section(html, 1);
    const char *seen = strstr(kd, "<span>keys seen</span><b>");
    assert_non_null(seen);
    long kept = 0;
    for (const char *p = seen + strlen("<span>keys seen</span><b>"); *p != '<'; p++)
        if (*p != ',') kept = kept * 10 + (*p - '0');
    assert_true(kept > 0 && kept < 9001);
    assert_non_null(strstr(kd, "<tr><td class=\"num\">1</td><td class=\"key\">hot</td>"
                               "<td class=\"num\">4,500</td><td class=\"num\">45,000</td>"
                               "<td class=\"num\">10</td></tr>"));
    free(kd);
    free(html);
}

/* An allocator that fails every allocation after the first `left`. */
typedef struct failing {
    long left;
    int failed;
} failing;

static void *failing_alloc(void *ud, void *ptr, size_t nsize)
{
    failing *f = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (f->left-- <= 0) {
        f->failed = 1;
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* Out of memory at every allocation in turn: each failure is SP_ENOMEM, nothing leaks or
 * crashes (the sanitizer build checks the leaks). */
static void test_out_of_memory(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("report-oom");
    char out[600];
    snprintf(out, sizeof out, "%s/oom.html", dir);
    sp_td *td = NULL, *tn = NULL;
    assert_int_equal(td_parse(NULL, "(str,i64)", &td, NULL), 0);
    assert_int_equal(td_parse(NULL, "i64", &tn, NULL), 0);
    int completed = 0;
    for (long n = 0; n < 2000 && !completed; n++) {
        failing fa = {n, 0};
        sp_allocator a = {failing_alloc, &fa};
        sp_diag d;
        diag_clear(&d);
        report *r = NULL;
        sp_sink *k0 = NULL, *k1 = NULL;
        int i0, i1, rc = report_new(&a, out, &r, &d);
        if (!rc) rc = report_add_section(r, td, "keys", "k", NULL, NULL, &i0, &d);
        if (!rc) rc = report_add_section(r, tn, "values", "v", NULL, NULL, &i1, &d);
        if (!rc) rc = sink_report_new(r, i0, &k0, &d);
        if (!rc) rc = sink_report_new(r, i1, &k1, &d);
        for (int i = 1; i <= 40 && !rc; i++) {
            char u[32];
            snprintf(u, sizeof u, "key-%d", i % 7);
            const char *keys[] = {"a", u};
            const int64_t vals[] = {i, 2};
            sp_batch *b = kv_batch(f, td, (int64_t)i * 1000, keys, vals, 2);
            rc = k0->vt->write(k0, b, &d);
            batch_release(b);
            assert_int_equal(batch_new(&f->env, tn, (int64_t)i * 1000, &b, NULL), 0);
            assert_int_equal(col_push_i64(&b->cols[0], i), 0);
            b->n = 1;
            if (!rc) rc = k1->vt->write(k1, b, &d);
            batch_release(b);
        }
        if (!rc) rc = k0->vt->close(k0, &d);
        if (rc) {
            assert_int_equal(rc, SP_ENOMEM);
            assert_true(fa.failed);
        } else {
            completed = !fa.failed;
        }
        sink_free(k0);
        sink_free(k1);
        report_release(r);
    }
    assert_true(completed);
    td_free(NULL, td);
    td_free(NULL, tn);
}

/* --------------------------------------------------------------------------------- misuse */

static void test_misuse(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("report-misuse");
    const char *q = write_tmp(dir, "q.jsonl", queue_text);
    char bad[600], ok[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/r.html", dir);
    snprintf(ok, sizeof ok, "%s/r.html", dir);
    sp_context *ctx = new_ctx();
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    assert_int_equal(sp_stream_report(NULL, ok, "x"), SP_EINVAL);
    assert_int_equal(sp_stream_report(s, NULL, "x"), SP_EINVAL);
    assert_int_equal(sp_stream_report(s, "", "x"), SP_EINVAL);
    assert_int_equal(sp_stream_report(s, bad, "x"), SP_ENOENT);
    assert_non_null(strstr(sp_context_errmsg(ctx), "no/such/dir"));
    assert_int_equal(sp_stream_report(s, ok, "x"), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_OK);
    assert_int_equal(sp_stream_report(s, ok, "never added"), SP_ESTATE);
    sp_context_free(ctx);
    char *html = tu_read_file(ok, NULL);
    assert_non_null(html);
    /* (str,i64) with its repeated key: values summed within a batch. */
    assert_non_null(strstr(html, "<td class=\"key\">a</td><td class=\"num\">3</td>"
                                 "<td class=\"num\">7</td>"));
    assert_null(strstr(html, "never added"));
    free(html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_and_keyed),
        cmocka_unit_test(test_gaps_and_epoch_times),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
