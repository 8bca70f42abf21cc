/* layers: util device exec batch ops io core */
/* test_parse.c — sp_stream_parse end to end (textFile -> parse -> foreachRDD): every format on
 * hand-written edge cases with exact expected rows, the rejects file (file, line, reason),
 * per-batch reject counts in the metrics, compressed and rotated inputs, and the real logs of
 * ../shared/data against independent awk computations. */
#include "spate.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>
#include <zlib.h>
#include <zstd.h>

/* ------------------------------------------------------------------------------ collecting */

typedef struct rows {
    char *text; /* rows in Scala toString form, one per line, in output order */
    size_t len, cap;
    size_t n;
    int col;           /* column to count values of (-1: none) */
    char keys[64][64]; /* distinct values of col, and their counts */
    long counts[64];
    int nkeys;
} rows;

static void rows_add(rows *r, const char *s, size_t n)
{
    if (r->len + n + 2 > r->cap) {
        r->cap = (r->len + n + 2) * 2;
        r->text = realloc(r->text, r->cap);
        assert_non_null(r->text);
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len++] = '\n';
    r->text[r->len] = 0;
}

static int on_batch(void *ud, const sp_batch *b)
{
    rows *r = ud;
    size_t n = sp_batch_count(b);
    char buf[8192];
    for (size_t i = 0; i < n; i++) {
        if (r->col < 0) {
            int len = sp_batch_format(b, i, buf, sizeof buf);
            assert_true(len >= 0 && (size_t)len < sizeof buf);
            rows_add(r, buf, (size_t)len);
        } else {
            char key[64];
            size_t kl;
            const char *ks = NULL;
            if (sp_batch_columns(b) > r->col && (ks = sp_batch_str(b, i, r->col, &kl)) == NULL)
                kl = 0;
            if (ks)
                snprintf(key, sizeof key, "%.*s", (int)(kl < 63 ? kl : 63), ks);
            else
                snprintf(key, sizeof key, "%lld", (long long)sp_batch_i64(b, i, r->col));
            int k = 0;
            while (k < r->nkeys && strcmp(r->keys[k], key) != 0)
                k++;
            if (k == r->nkeys) {
                assert_true(r->nkeys < 64);
                strcpy(r->keys[r->nkeys++], key);
            }
            r->counts[k]++;
        }
        r->n++;
    }
    return 0;
}

typedef struct job {
    const char *path;
    const char *format, *arg;
    const char *rejects; /* rejects file, or NULL */
    const char *metrics; /* metrics file, or NULL */
    size_t batch_lines;
    int col; /* count values of this column instead of collecting rows */
} job;

/* Runs textFile(path) -> parse(format, arg) -> foreachRDD; returns the run status. */
static int run_job(const job *j, rows *r, char *err, size_t errsz)
{
    memset(r, 0, sizeof *r);
    r->col = j->col;
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.batch_lines = j->batch_lines;
    cfg.rejects_path = j->rejects;
    cfg.metrics_path = j->metrics;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *lines = sp_text_file(ctx, j->path);
    assert_non_null(lines);
    sp_stream *p = sp_stream_parse(lines, j->format, j->arg);
    int rc;
    if (!p) {
        rc = -1;
    } else {
        assert_int_equal(sp_stream_foreach_rdd(p, on_batch, r), SP_OK);
        rc = sp_context_run(ctx);
    }
    if (err) snprintf(err, errsz, "%s", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    return rc;
}

static void run_ok(const job *j, rows *r)
{
    char err[1024];
    if (run_job(j, r, err, sizeof err) != SP_OK) fail_msg("run failed: %s", err);
}

static const char *data_path(const char *rel)
{
    static char p[4][1024];
    static int slot;
    char *s = p[slot++ % 4];
    snprintf(s, 1024, "%s/%s", getenv("SPATE_SOURCE_DIR") ? getenv("SPATE_SOURCE_DIR") : "..", rel);
    return s;
}

/* A path under the shared real logs (../shared/data beside the checkout). */
static const char *shared_path(const char *rel)
{
    static char p[4][1024];
    static int slot;
    char *s = p[slot++ % 4];
    snprintf(s, 1024, "%s/../shared/data/%s",
             getenv("SPATE_SOURCE_DIR") ? getenv("SPATE_SOURCE_DIR") : "..", rel);
    return s;
}

static void assert_text(const char *got, const char *want)
{
    if (strcmp(got ? got : "", want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", got ? got : "(nothing)", want);
}

/* The value counts of r as "VALUE:COUNT " entries in strcmp order of the entries (as
 * `LC_ALL=C sort` orders awk's lines). */
static void counts_text(const rows *r, char *out, size_t size)
{
    char ent[64][96];
    char *idx[64];
    for (int i = 0; i < r->nkeys; i++) {
        snprintf(ent[i], sizeof ent[i], "%s:%ld", r->keys[i], r->counts[i]);
        idx[i] = ent[i];
    }
    for (int i = 0; i < r->nkeys; i++)
        for (int k = i + 1; k < r->nkeys; k++)
            if (strcmp(idx[k], idx[i]) < 0) {
                char *t = idx[i];
                idx[i] = idx[k];
                idx[k] = t;
            }
    size_t off = 0;
    out[0] = 0;
    for (int i = 0; i < r->nkeys; i++)
        off += (size_t)snprintf(out + off, size - off, "%s ", idx[i]);
}

/* Output of a shell command (awk computations run from the test). */
static char *sh(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    assert_int_equal(pclose(f), 0);
    return buf;
}

/* ------------------------------------------------------------------------ combined / common */

static const char *combined_edge_rows =
    "(::1,-,-,1482761789000,GET,/favicon.ico,HTTP/1.1,404,209,,)\n"
    "(10.0.0.2, 10.0.0.1, 127.0.0.1,-,frank,1481105107000,GET,/ocelot,HTTP/1.1,200,571,-,"
    "Mozilla/5.0 (X))\n"
    "(2001:41d0:8:f69::1,-,-,1446097656000,GET,/history/apollo/,HTTP/1.0,200,6245,-,curl/7.1)\n"
    "(host1,-,-,807249601000,GET,/history/apollo/apollo-13.gif,,200,12859,,)\n"
    "(host2,-,-,807249602000,GET,/facts/a.html,HTTP/1.0,404,0,,)\n"
    "(1.2.3.4,-,-,1432033510000,GET,/a\\\"b,HTTP/1.0,200,10,http://\\xe4\\xe5/,UA \\\"quoted\\\")\n"
    "(1.2.3.4,-,-,1432123517000,GET,/x,HTTP/1.1,200,235,-,Mozilla/5.0 (compatible; "
    "Googlebot/2.1)\n"
    "(5.6.7.8,-,-,1432123518000,POST,/login,HTTP/1.1,302,0,-,ua)\n"
    "(127.0.0.1,-,-,1523519320000,,,,400,0,-,-)\n"
    "(::1,-,-,1482761808000,,,,408,0,,)\n"
    "(9.9.9.9,-,-,1577836800000,GET,/,HTTP/1.1,200,1,-,-)\n"
    "(8.8.8.8,-,-,1577836801250,HEAD,/,HTTP/1.1,200,0,-,-)\n";

static void test_combined_edge_cases(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("combined-edge");
    char rej[512], met[512];
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    snprintf(met, sizeof met, "%s/metrics.jsonl", dir);
    const char *path = data_path("tests/data/logs-combined-edge.log");
    job j = {path, "combined", NULL, rej, met, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, combined_edge_rows);
    free(r.text);

    /* every rejected line, with its file, line number, reason and text */
    char want[4096];
    snprintf(want, sizeof want,
             "%s:12: parse(combined): unterminated request: 46.161.41.24 - - "
             "[18/May/2015:19:05:46 +0000]\"\n"
             "%s:13: parse(combined): no request after the time: 46.118.127.106 - - "
             "[20/May/2015:12:05:26 +0000] (X11; U; ) - BrowseX (2.0.0 Windows)\"\n"
             "%s:14: parse(combined): bad status: 1.1.1.1 - - [01/Jan/2020:00:00:00 +0000] \"GET "
             "/ HTTP/1.1\" abc 12 \"-\" \"-\"\n"
             "%s:15: parse(combined): bad time: 1.1.1.1 - - [32/Jan/2020:00:00:00 +0000] \"GET / "
             "HTTP/1.1\" 200 12 \"-\" \"-\"\n"
             "%s:16: parse(combined): no [time]\n"
             "%s:17: parse(combined): unterminated request: 1.1.1.1 - - [01/Jan/2020:00:00:00 "
             "+0000] \"GET / HTTP/1.1 200 12\n",
             path, path, path, path, path, path);
    char *got = tu_read_file(rej, NULL);
    assert_text(got, want);
    free(got);
    /* the batch's reject count is in its metrics line */
    got = tu_read_file(met, NULL);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"rejected\":6"));
    free(got);
}

static void test_common_ignores_the_rest(void **state)
{
    (void)state;
    job j = {data_path("tests/data/logs-combined-edge.log"), "common", NULL, NULL, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 12);
    assert_non_null(strstr(r.text, "(2001:41d0:8:f69::1,-,-,1446097656000,GET,/history/apollo/,"
                                   "HTTP/1.0,200,6245)\n"));
    free(r.text);
}

/* A GoAccess-style format string equal to Combined gives the same rows on lines that are
 * well-formed for both (GoAccess splits the host at the first space, so no lists there). */
static void test_goaccess_format(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("goaccess");
    char path[512];
    snprintf(path, sizeof path, "%s/a.log", dir);
    assert_int_equal(
        tu_write_file(path,
                      "::1 - - [26/Dec/2016:16:16:29 +0200] \"GET /favicon.ico HTTP/1.1\" 404 209 "
                      "\"-\" \"UA 1\"\n"
                      "host1 - - [01/Aug/1995:00:00:01 -0400] \"GET /x.gif\" 200 - \"-\" \"b\"\n"
                      "1.2.3.4 - - [20/May/2015:12:05:17 +0000] \"GET /x HTTP/1.1\" 200 235 \"-\" "
                      "\"Mozilla/5.0 (compatible\n"
                      "garbage\n"),
        0);
    job j = {path, "%h %^[%d:%t %z] \"%r\" %s %b \"%R\" \"%u\"", NULL, NULL, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, "(::1,1482761789000,GET,/favicon.ico,HTTP/1.1,404,209,-,UA 1)\n"
                        "(host1,807249601000,GET,/x.gif,,200,0,-,b)\n"
                        "(1.2.3.4,1432123517000,GET,/x,HTTP/1.1,200,235,-,Mozilla/5.0 "
                        "(compatible)\n");
    free(r.text);
    /* vhost and response time, ISO dates */
    assert_int_equal(tu_write_file(path, "example.org 2020-01-02 03:04:05 GET /a 0.25\n"), 0);
    job j2 = {path, "%v %d %t %m %U %T", NULL, NULL, NULL, 0, -1};
    run_ok(&j2, &r);
    assert_text(r.text, "(example.org,1577934245000,GET,/a,0.25)\n");
    free(r.text);
    /* bad format strings are errors at declaration */
    char err[1024];
    job j3 = {path, "%h%s", NULL, NULL, NULL, 0, -1};
    assert_int_not_equal(run_job(&j3, &r, err, sizeof err), SP_OK);
    assert_non_null(strstr(err, "separator"));
    job j4 = {path, "%h %Y", NULL, NULL, NULL, 0, -1};
    assert_int_not_equal(run_job(&j4, &r, err, sizeof err), SP_OK);
    assert_non_null(strstr(err, "unknown field %Y"));
}

/* A format that ends in a field ignores the rest of the line (PARSING.md), so the Common format
 * string reads Combined lines; a field followed by %~ ends at the first space (it used to read
 * past the end of the format's items). */
static void test_goaccess_field_at_the_end(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("goaccess-end");
    char path[512], rej[512];
    snprintf(path, sizeof path, "%s/a.log", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    assert_int_equal(tu_write_file(path, "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a "
                                         "HTTP/1.0\" 200 2326 \"http://x/\" \"Mozilla/4.08\"\n"
                                         "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /b "
                                         "HTTP/1.0\" 304 -\n"
                                         "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /c "
                                         "HTTP/1.0\" 200 x1\n"),
                     0);
    job j = {path, "%h %^[%d:%t %^] \"%r\" %s %b", NULL, rej, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, "(1.2.3.4,971186136000,GET,/a,HTTP/1.0,200,2326)\n"
                        "(1.2.3.4,971186136000,GET,/b,HTTP/1.0,304,0)\n");
    free(r.text);
    char *got = tu_read_file(rej, NULL);
    char want[1024];
    snprintf(want, sizeof want, "%s:3: parse(format): bytes: not a number: %s", path,
             "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /c HTTP/1.0\" 200 x1\n");
    assert_text(got, want);
    free(got);
    assert_int_equal(tu_write_file(path, "1.1.1.1   200\n1.1.1.1 404 trailing text\n9.9.9.9\n"), 0);
    job j2 = {path, "%h%~%s", NULL, rej, NULL, 0, -1};
    run_ok(&j2, &r);
    assert_text(r.text, "(1.1.1.1,200)\n(1.1.1.1,404)\n");
    free(r.text);
    got = tu_read_file(rej, NULL);
    snprintf(want, sizeof want, "%s:3: parse(format): bad status: 9.9.9.9\n", path);
    assert_text(got, want);
    free(got);
}

/* Real-valued timestamps beyond what an int64 of milliseconds holds, NaN and infinities are
 * rejected with the reason (they used to become INT64_MIN through an undefined cast), in csv
 * text and in JSON reals alike; so are reals beyond an integer column's range. */
static void test_timestamps_out_of_range(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ts-range");
    char path[512], rej[512];
    snprintf(path, sizeof path, "%s/a.csv", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    assert_int_equal(tu_write_file(path, "1.5\nnan\ninf\n1e300\n-1e19\n1e16\n-9e15\n"), 0);
    job j = {path, "csv", "t:ts", rej, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, "1500\n-9000000000000000000\n");
    free(r.text);
    char *got = tu_read_file(rej, NULL);
    char want[4096];
    snprintf(want, sizeof want,
             "%s:2: parse(csv): t: not a finite timestamp: nan\n"
             "%s:3: parse(csv): t: not a finite timestamp: inf\n"
             "%s:4: parse(csv): t: timestamp out of range: 1e300\n"
             "%s:5: parse(csv): t: timestamp out of range: -1e19\n"
             "%s:6: parse(csv): t: timestamp out of range: 1e16\n",
             path, path, path, path, path);
    assert_text(got, want);
    free(got);
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    assert_int_equal(tu_write_file(path, "{\"t\":1.5,\"n\":2.0,\"m\":-3.0}\n"
                                         "{\"t\":1e300}\n"
                                         "{\"t\":1e16}\n"
                                         "{\"t\":-1e19}\n"
                                         "{\"t\":\"nan\"}\n"
                                         "{\"n\":1e300}\n"
                                         "{\"n\":-9.3e18}\n"
                                         "{\"m\":3e9}\n"
                                         "{\"m\":2147483647.0,\"n\":-9.2e18}\n"),
                     0);
    job j2 = {path, "json", "t:ts,n:i64,m:i32", rej, NULL, 0, -1};
    run_ok(&j2, &r);
    assert_text(r.text, "(1500,2,-3)\n(0,-9200000000000000000,2147483647)\n");
    free(r.text);
    got = tu_read_file(rej, NULL);
    snprintf(want, sizeof want,
             "%s:2: parse(json): t: timestamp out of range: {\"t\":1e300}\n"
             "%s:3: parse(json): t: timestamp out of range: {\"t\":1e16}\n"
             "%s:4: parse(json): t: timestamp out of range: {\"t\":-1e19}\n"
             "%s:5: parse(json): t: not a finite timestamp: {\"t\":\"nan\"}\n"
             "%s:6: parse(json): n: integer out of range: {\"n\":1e300}\n"
             "%s:7: parse(json): n: integer out of range: {\"n\":-9.3e18}\n"
             "%s:8: parse(json): m: integer out of range: {\"m\":3e9}\n",
             path, path, path, path, path, path, path);
    assert_text(got, want);
    free(got);
}

/* ----------------------------------------------------------------------------------- syslog */

static void test_syslog_edge_cases(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("syslog");
    char path[512], rej[512];
    snprintf(path, sizeof path, "%s/messages", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    assert_int_equal(
        tu_write_file(
            path,
            "Mar 27 13:06:56 ip-10-77-20-248 sshd[1291]: Server listening on 0.0.0.0 port 22.\n"
            "Apr  1 00:00:01 host sudo:   ubuntu : TTY=pts/0 ; COMMAND=/bin/ls\n"
            "Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2\n"
            "Jul  1 09:00:55 mac sandboxd[129] ([31211]): deny file-read\n"
            "Jul  1 09:00:56 mac Microsoft Word[14463]: saved\r\n"
            "Nov 9 12:01:01 dn228 last message repeated 2 times\n"
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n"
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 "
            "iut=\"3\" eventSource=\"App\\]\"] \xEF\xBB\xBF"
            "An application event\n"
            "1986-04-26T01:23:45.101+0400 rmbkmonitor04 shutdown[2649]: shutting down\n"
            "1986-04-26T01:23:45.388424+04:00 rmbkmonitor04 thermald: exceeded.\n"
            "2019-06-14T10:40:20.912134 localhost sudo: pam_unix(sudo-i:session): opened\n"
            "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2915]: x\n"
            "<999>Mar 27 13:06:56 h a: b\n"
            "Dec 31 23:59:59 h app[1]: before the new year"),
        0);
    /* The file was last written on 2 Jan 2016: every line here is later in the year than that,
     * so all belong to 2015 (March as much as December). */
    struct utimbuf ut = {1451736000, 1451736000}; /* 2016-01-02T12:00:00Z */
    assert_int_equal(utime(path, &ut), 0);
    job j = {path, "syslog", NULL, rej, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(
        r.text,
        "(-1,-1,1427461616000,ip-10-77-20-248,sshd,1291,,,Server listening on 0.0.0.0 port 22.)\n"
        "(-1,-1,1427846401000,host,sudo,,,,  ubuntu : TTY=pts/0 ; COMMAND=/bin/ls)\n"
        "(-1,-1,1436256375000,combo,-- root,2421,,,ROOT LOGIN ON tty2)\n"
        "(-1,-1,1435741255000,mac,sandboxd,129,,,([31211]): deny file-read)\n"
        "(-1,-1,1435741256000,mac,Microsoft Word,14463,,,saved)\n"
        "(-1,-1,1447070461000,dn228,,,,,last message repeated 2 times)\n"
        "(4,2,1065910455003,mymachine.example.com,su,,ID47,,'su root' failed)\n"
        "(20,5,1061727255000,192.0.2.1,myproc,8710,,[exampleSDID@32473 iut=\"3\" "
        "eventSource=\"App\\]\"],An application event)\n"
        "(-1,-1,514848225101,rmbkmonitor04,shutdown,2649,,,shutting down)\n"
        "(-1,-1,514848225388,rmbkmonitor04,thermald,,,,exceeded.)\n"
        "(-1,-1,1560508820912,localhost,sudo,,,,pam_unix(sudo-i:session): opened)\n"
        "(-1,-1,1451606399000,h,app,1,,,before the new year)\n");
    free(r.text);
    char *got = tu_read_file(rej, NULL);
    char want[4096];
    snprintf(want, sizeof want,
             "%s:12: parse(syslog): no syslog timestamp: - 1131566461 2005.11.09 dn228 Nov 9 "
             "12:01:01 dn228/dn228 crond[2915]: x\n"
             "%s:13: parse(syslog): bad priority: <999>Mar 27 13:06:56 h a: b\n",
             path, path);
    assert_text(got, want);
    free(got);

    /* A configured year wins over the file's time. */
    job j2 = {path, "syslog", "year=2010", NULL, NULL, 0, -1};
    run_ok(&j2, &r);
    assert_non_null(strstr(r.text, "(-1,-1,1293839999000,h,app,1,,,before the new year)"));
    assert_non_null(strstr(r.text, "(-1,-1,1269695216000,ip-10-77-20-248,sshd"));
    free(r.text);
    char err[1024];
    job j3 = {path, "syslog", "year=abc", NULL, NULL, 0, -1};
    assert_int_not_equal(run_job(&j3, &r, err, sizeof err), SP_OK);
    assert_non_null(strstr(err, "year=YYYY"));
}

/* ------------------------------------------------------------------------------ json, csv */

static void test_json_lines(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("json");
    char path[512], rej[512];
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    assert_int_equal(
        tu_write_file(
            path, "{\"ts\":\"2018-03-24T17:15:47.733658Z\",\"id.orig_h\":\"10.47.22.82\",\"req\":{"
                  "\"status\":200,\"bytes\":12.0},\"ok\":true,\"tags\":[1,\"a\"],\"msg\":\"say "
                  "\\\"hi\\\" "
                  "\\\\ \\u00e9\"}\n"
                  "{\"ts\":1446249499322,\"req\":{\"status\":\"404\"}}\n"
                  "{\"ts\":1446249499.5,\"id.orig_h\":null,\"req\":{\"status\":500,\"bytes\":7},"
                  "\"ok\":false,\"tags\":{\"k\":1}}\n"
                  "{\"ts\":\"x\"}\n"
                  "[1,2]\n"
                  "{\"req\":{\"status\":2.5}}\n"
                  "{\"unterminated\": \n"),
        0);
    job j = {path, "json", "ts:ts,id.orig_h,req.status:i32,req.bytes:i64,ok:bool,tags,msg",
             rej,  NULL,   0,
             -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, "(1521911747733,10.47.22.82,200,12,true,[1,\"a\"],say \"hi\" \\ \xC3\xA9)\n"
                        "(1446249499322,,404,0,false,,)\n"
                        "(1446249499500,,500,7,false,{\"k\":1},)\n");
    free(r.text);
    char *got = tu_read_file(rej, NULL);
    char want[4096];
    snprintf(want, sizeof want,
             "%s:4: parse(json): ts: not a timestamp: {\"ts\":\"x\"}\n"
             "%s:5: parse(json): not a JSON object: [1,2]\n"
             "%s:6: parse(json): req.status: not an integer: {\"req\":{\"status\":2.5}}\n"
             "%s:7: parse(json): malformed JSON: {\"unterminated\": \n",
             path, path, path, path);
    assert_text(got, want);
    free(got);
}

static void test_csv(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("csv");
    char path[512], rej[512];
    snprintf(path, sizeof path, "%s/a.csv", dir);
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    assert_int_equal(tu_write_file(path, "name,n,t,x\n"
                                         "a,1,2020-01-01T00:00:00Z,1.5\n"
                                         "\"b, \"\"quoted\"\"\",-2,1577836800,\n"
                                         ",,,\n"
                                         "c,1,2\n"
                                         "c,1,2,3,4\n"
                                         "d,x,2,3\n"
                                         "\"open,1,2,3\n"),
                     0);
    job j = {path, "csv", "name,n:i64,t:ts,x:f64", rej, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_text(r.text, "(a,1,1577836800000,1.5)\n"
                        "(b, \"quoted\",-2,1577836800000,0.0)\n"
                        "(,0,0,0.0)\n");
    free(r.text);
    char *got = tu_read_file(rej, NULL);
    char want[4096];
    snprintf(want, sizeof want,
             "%s:1: parse(csv): header row: name,n,t,x\n"
             "%s:5: parse(csv): too few fields: c,1,2\n"
             "%s:6: parse(csv): too many fields: c,1,2,3,4\n"
             "%s:7: parse(csv): n: not an integer: d,x,2,3\n"
             "%s:8: parse(csv): unterminated quote: \"open,1,2,3\n",
             path, path, path, path, path);
    assert_text(got, want);
    free(got);
}

/* ------------------------------------------------------------------- compressed and rotated */

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(g), Z_OK);
}

static void write_zst(const char *path, const char *text, int truncate)
{
    size_t n = strlen(text), cap = ZSTD_compressBound(n);
    char *buf = malloc(cap);
    size_t z = ZSTD_compress(buf, cap, text, n, 3);
    assert_false(ZSTD_isError(z));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, truncate ? z - 4 : z, f), truncate ? z - 4 : z);
    fclose(f);
    free(buf);
}

static void test_compressed_and_rotated(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("rotated");
    char p[512], rej[512], pattern[512];
    const char *l1 = "a - - [01/Jan/2020:00:00:01 +0000] \"GET /1 HTTP/1.1\" 200 1\n";
    const char *l2 = "b - - [01/Jan/2020:00:00:02 +0000] \"GET /2 HTTP/1.1\" 200 2\n";
    const char *bad = "not a log line\n";
    /* access.log.1 plain, .2.gz, .3.zst: read in name order, each decompressed */
    snprintf(p, sizeof p, "%s/access.log.1", dir);
    char text[1024];
    snprintf(text, sizeof text, "%s%s", l1, bad);
    assert_int_equal(tu_write_file(p, text), 0);
    snprintf(p, sizeof p, "%s/access.log.2.gz", dir);
    snprintf(text, sizeof text, "%s%s%s", l2, bad, l1);
    write_gz(p, text);
    snprintf(p, sizeof p, "%s/access.log.3.zst", dir);
    snprintf(text, sizeof text, "%s%s%s", bad, l2,
             "c - - [01/Jan/2020:00:00:03 +0000] \"GET /3\" 404 -");
    write_zst(p, text, 0);
    snprintf(pattern, sizeof pattern, "%s/access.log.*", dir);
    snprintf(rej, sizeof rej, "%s/../rejects-rotated.txt", dir);
    for (int bl = 0; bl <= 2; bl += 2) { /* whole set at once, and 2 lines per batch */
        job j = {pattern, "common", NULL, rej, NULL, (size_t)bl, -1};
        rows r;
        run_ok(&j, &r);
        assert_text(r.text, "(a,-,-,1577836801000,GET,/1,HTTP/1.1,200,1)\n"
                            "(b,-,-,1577836802000,GET,/2,HTTP/1.1,200,2)\n"
                            "(a,-,-,1577836801000,GET,/1,HTTP/1.1,200,1)\n"
                            "(b,-,-,1577836802000,GET,/2,HTTP/1.1,200,2)\n"
                            "(c,-,-,1577836803000,GET,/3,,404,0)\n");
        free(r.text);
        char *got = tu_read_file(rej, NULL);
        char want[4096];
        snprintf(want, sizeof want,
                 "%s/access.log.1:2: parse(common): no [time]: not a log line\n"
                 "%s/access.log.2.gz:2: parse(common): no [time]: not a log line\n"
                 "%s/access.log.3.zst:1: parse(common): no [time]: not a log line\n",
                 dir, dir, dir);
        assert_text(got, want);
        free(got);
    }
    /* a truncated zstd frame is an error naming the file */
    snprintf(p, sizeof p, "%s/cut.zst", dir);
    write_zst(p, "x - - [01/Jan/2020:00:00:03 +0000] \"GET /3\" 404 -\n", 1);
    job j = {p, "common", NULL, NULL, NULL, 0, -1};
    rows r;
    char err[1024];
    assert_int_equal(run_job(&j, &r, err, sizeof err), SP_EIO);
    assert_non_null(strstr(err, "cut.zst: zstd"));
    free(r.text);
    /* a pattern that matches nothing */
    snprintf(p, sizeof p, "%s/nothing.*", dir);
    job j2 = {p, "common", NULL, NULL, NULL, 0, -1};
    assert_int_equal(run_job(&j2, &r, err, sizeof err), SP_ENOENT);
    assert_non_null(strstr(err, "no file matches"));
    free(r.text);
}

/* --------------------------------------------------------------------------- the real logs */

/* NASA Aug 1995 (Common): every line parses; per-status counts equal awk's (status is the
 * next-to-last field of every line of this file). */
static void test_real_nasa(void **state)
{
    (void)state;
    const char *path = shared_path("nasa/nasa.log");
    job j = {path, "common", NULL, NULL, NULL, 3000, 7};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 20000);
    char got[4096], cmd[2048];
    counts_text(&r, got, sizeof got);
    snprintf(cmd, sizeof cmd,
             "awk '{c[$(NF-1)]++} END {for (k in c) print k\":\"c[k]}' '%s' | LC_ALL=C sort | tr "
             "'\\n' ' '",
             path);
    char *want = sh(cmd);
    assert_text(got, want);
    free(want);
    free(r.text);
}

/* The Logstash demo log (Combined): 0 rejects, including line 8899 whose agent lacks its
 * closing quote; status counts equal awk's, taking the status as the first word after the
 * request's closing '" ' (no request in this file has an escaped quote). */
static void test_real_apache_logs(void **state)
{
    (void)state;
    const char *path = shared_path("elastic-examples/apache_logs");
    const char *dir = tu_tmpdir("apache-logs");
    char rej[512], cmd[2048], got[4096];
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    job j = {path, "combined", NULL, rej, NULL, 0, 7};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 10000);
    struct stat st;
    assert_int_equal(stat(rej, &st), 0); /* nothing rejected: an empty file */
    assert_int_equal(st.st_size, 0);
    counts_text(&r, got, sizeof got);
    snprintf(cmd, sizeof cmd,
             "awk -F'\" ' '{split($2, a, \" \"); c[a[1]]++} END {for (k in c) print "
             "k\":\"c[k]}' '%s' | LC_ALL=C sort | tr '\\n' ' '",
             path);
    char *want = sh(cmd);
    assert_text(got, want);
    free(want);
    free(r.text);
}

/* The earlier revision of the same file has 14 truncated or garbled lines: each is rejected
 * with its line number and reason, none silently dropped. */
static void test_real_apache_logs_prefix(void **state)
{
    (void)state;
    const char *path = shared_path("elastic-examples/pre-fix-cf3fd7c/apache_logs");
    const char *dir = tu_tmpdir("apache-prefix");
    char rej[512];
    snprintf(rej, sizeof rej, "%s/rejects.txt", dir);
    job j = {path, "combined", NULL, rej, NULL, 2500, 7};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 10000 - 14);
    char *got = tu_read_file(rej, NULL);
    assert_non_null(got);
    static const int lines[14] = {4031, 4192, 8897, 8898, 8899, 9064, 9952,
                                  9953, 9954, 9955, 9956, 9957, 9996, 9997};
    const char *p = got;
    for (int i = 0; i < 14; i++) {
        /* cut right after the time's ']': no closing quote can follow; other garbage there:
         * no request at all */
        const char *why = lines[i] == 4031 || lines[i] == 4192 || lines[i] == 9064
                              ? "unterminated request"
                              : "no request after the time";
        char head[1200];
        snprintf(head, sizeof head, "%s:%d: parse(combined): %s: ", path, lines[i], why);
        if (strncmp(p, head, strlen(head)) != 0) fail_msg("reject %d: got %.200s", i, p);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_int_equal(*p, 0);
    free(got);
    free(r.text);
}

/* IPv6 clients (12 lines) and +0100 times in a real spam log. */
static void test_real_hackers_ipv6(void **state)
{
    (void)state;
    const char *path = shared_path("logparser/hackers-access.log");
    job j = {path, "combined", NULL, NULL, NULL, 0, -1};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 3456);
    long v6 = 0;
    for (const char *p = r.text; p && *p; p = strchr(p, '\n') + 1) {
        const char *comma = strchr(p, ',');
        const char *colon = strchr(p, ':');
        if (colon && colon < comma) v6++;
    }
    free(r.text);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "awk '$1 ~ /:/' '%s' | wc -l", path);
    char *want = sh(cmd);
    assert_int_equal(v6, atol(want));
    assert_int_equal(v6, 12);
    free(want);
}

/* auth.log (RFC 3164, no year): every line parses; the count per app equals awk's count of
 * the tag word (up to '[' or ':'). */
static void test_real_auth_log(void **state)
{
    (void)state;
    const char *path = shared_path("elastic-examples/auth.log");
    job j = {path, "syslog", "year=2017", NULL, NULL, 0, 4};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 7121);
    char got[4096], cmd[2048];
    counts_text(&r, got, sizeof got);
    snprintf(cmd, sizeof cmd,
             "awk '{t=$5; i=index(t, \"[\"); if (i) t=substr(t, 1, i-1); i=index(t, \":\"); "
             "if (i) t=substr(t, 1, i-1); c[t]++} END {for (k in c) print k\":\"c[k]}' "
             "'%s' | LC_ALL=C sort | tr '\\n' ' '",
             path);
    char *want = sh(cmd);
    assert_text(got, want);
    free(want);
    free(r.text);
}

/* The loghub BSD-syslog samples (CRLF, no final newline) parse whole; Thunderbird's prefixed
 * lines are not syslog and are all rejected, deliberately. */
static void test_real_loghub_syslog(void **state)
{
    (void)state;
    static const char *files[] = {"loghub/Linux_2k.log", "loghub/OpenSSH_2k.log",
                                  "loghub/Mac_2k.log", "loghub/Thunderbird_2k.log"};
    static const size_t want[] = {2000, 2000, 2000, 0};
    for (int i = 0; i < 4; i++) {
        job j = {shared_path(files[i]), "syslog", "year=2005", NULL, NULL, 0, 1};
        rows r;
        run_ok(&j, &r);
        if (r.n != want[i]) fail_msg("%s: %zu rows, want %zu", files[i], r.n, want[i]);
        free(r.text);
    }
}

/* Zeek dns.json.gz: gzip read transparently; 53,615 records, varying field sets, dotted key
 * names; the A-query count equals grep's. */
static void test_real_zeek_dns_gz(void **state)
{
    (void)state;
    const char *path = shared_path("zeek-wrccdc/dns.json.gz");
    job j = {path, "json", "ts:ts,id.orig_h,query,qtype_name,rcode:i32,AA:bool,rtt:f64",
             NULL, NULL,   20000,
             3};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 53615);
    long a = 0;
    for (int k = 0; k < r.nkeys; k++)
        if (strcmp(r.keys[k], "A") == 0) a = r.counts[k];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "zcat '%s' | grep -c '\"qtype_name\":\"A\"'", path);
    char *want = sh(cmd);
    assert_int_equal(a, atol(want));
    free(want);
    free(r.text);
}

/* NGINX Plus snapshots: deep nesting and keys with dots inside ("hg.nginx.org"). */
static void test_real_nginxplus_json(void **state)
{
    (void)state;
    const char *path = shared_path("elastic-examples/nginxplus_json_logs");
    job j = {
        path, "json", "timestamp:ts,connections.active:i64,server_zones.hg.nginx.org.requests:i64",
        NULL, NULL,   0,
        -1};
    rows r;
    run_ok(&j, &r);
    assert_int_equal(r.n, 500);
    /* first line: timestamp 1446249499322, hg.nginx.org requests 205543 */
    assert_true(strncmp(r.text, "(1446249499322,2,205543)\n", 25) == 0);
    free(r.text);
}

/* Two ctest tests: test_parse (the cases written here) and test_parse_real (argument
 * "real": the shared real logs, exit 77 — skipped — when any of them is missing, so a test
 * that did not run never shows as passed). */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_edge_cases),
        cmocka_unit_test(test_common_ignores_the_rest),
        cmocka_unit_test(test_goaccess_format),
        cmocka_unit_test(test_goaccess_field_at_the_end),
        cmocka_unit_test(test_timestamps_out_of_range),
        cmocka_unit_test(test_syslog_edge_cases),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_compressed_and_rotated),
    };
    const struct CMUnitTest real[] = {
        cmocka_unit_test(test_real_nasa),
        cmocka_unit_test(test_real_apache_logs),
        cmocka_unit_test(test_real_apache_logs_prefix),
        cmocka_unit_test(test_real_hackers_ipv6),
        cmocka_unit_test(test_real_auth_log),
        cmocka_unit_test(test_real_loghub_syslog),
        cmocka_unit_test(test_real_zeek_dns_gz),
        cmocka_unit_test(test_real_nginxplus_json),
    };
    if (argc < 2 || strcmp(argv[1], "real")) return cmocka_run_group_tests(tests, NULL, NULL);
    static const char *const need[] = {
        "nasa/nasa.log",
        "elastic-examples/apache_logs",
        "elastic-examples/pre-fix-cf3fd7c/apache_logs",
        "logparser/hackers-access.log",
        "elastic-examples/auth.log",
        "loghub/Linux_2k.log",
        "loghub/OpenSSH_2k.log",
        "loghub/Mac_2k.log",
        "loghub/Thunderbird_2k.log",
        "zeek-wrccdc/dns.json.gz",
        "elastic-examples/nginxplus_json_logs",
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        struct stat st;
        if (stat(shared_path(need[i]), &st) != 0) {
            fprintf(stderr, "test_parse_real: %s not found: skipped\n", need[i]);
            return 77;
        }
    }
    return cmocka_run_group_tests(real, NULL, NULL);
}
