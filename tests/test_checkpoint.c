/* Checkpoints (host/core/checkpoint.c and the driver's recovery): the logs' records, their
 * checks (fingerprint, batch interval, torn and damaged records, a changed input), group
 * commit, the read-only description, and jobs stopped and resumed through the C API whose
 * appending outputs equal one uninterrupted run's. */
#include "core/checkpoint_int.h"
#include "spate.h"
#include "support/jobfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static FILE *quiet(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    return f;
}

static long file_size(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void append_text(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static ckpt *open_ok(const char *dir, const char *fp, int64_t ms, FILE *log)
{
    ckpt *c = NULL;
    sp_diag d = {0};
    int rc = ckpt_open(NULL, dir, fp, ms, log, &c, &d);
    if (rc) fail_msg("ckpt_open: %s", d.msg);
    return c;
}

/* Three batches logged, two committed (synced), reopened: the state is read back. */
static void test_logs_round_trip(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ck-rt");
    FILE *log = quiet();
    sp_diag d = {0};
    ckpt *c = open_ok(dir, "fp1", 1000, log);
    assert_int_equal(ckpt_committed(c), 0);
    uint64_t pos[2] = {10, 0};
    for (int k = 1; k <= 3; k++) {
        char src[32];
        snprintf(src, sizeof src, "0: line %d", k);
        assert_int_equal(ckpt_log_offsets(c, k, k * 1000, src, &d), 0);
        if (k <= 2) {
            pos[0] = 10 * (uint64_t)k;
            assert_int_equal(ckpt_log_commit(c, k, k * 1000, pos, 2, &d), 0);
        }
    }
    /* group commit: nothing is on disk before the sync point */
    assert_int_equal(file_size(dir, "commits"), 0);
    assert_int_equal(ckpt_sync(c, &d), 0);
    assert_true(file_size(dir, "commits") > 0);
    ckpt_close(c);

    c = open_ok(dir, "fp1", 1000, log);
    assert_int_equal(ckpt_committed(c), 2);
    int n;
    const uint64_t *p = ckpt_sink_positions(c, &n);
    assert_int_equal(n, 2);
    assert_int_equal(p[0], 20);
    int64_t t;
    assert_string_equal(ckpt_offsets(c, 3, &t), "0: line 3");
    assert_int_equal(t, 3000);
    assert_null(ckpt_offsets(c, 4, NULL));
    /* a replayed batch must be the one logged */
    assert_int_equal(ckpt_log_offsets(c, 2, 2000, "0: line 2", &d), 0);
    assert_int_equal(ckpt_log_offsets(c, 2, 2000, "0: line 7", &d), SP_ESTATE);
    assert_non_null(strstr(d.msg, "the input changed since the checkpoint was written"));
    ckpt_close(c);
    fclose(log);
}

static void test_another_job_is_refused(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ck-fp");
    FILE *log = quiet();
    ckpt_close(open_ok(dir, "aaaa", 1000, log));
    ckpt *c = NULL;
    sp_diag d = {0};
    assert_int_equal(ckpt_open(NULL, dir, "bbbb", 1000, log, &c, &d), SP_ESTATE);
    assert_null(c);
    assert_non_null(strstr(d.msg, "belongs to another job (fingerprint aaaa; this job's is bbbb)"));
    assert_int_equal(ckpt_open(NULL, dir, "aaaa", 2000, log, &c, &d), SP_ESTATE);
    assert_non_null(strstr(d.msg, "batches of 1000 ms, this run has 2000 ms"));
    fclose(log);
}

/* A record cut short by a crash is dropped (and the file cut back); one damaged before the
 * last is an error naming the file and line; describing changes nothing. */
static void test_torn_and_damaged_records(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ck-torn");
    FILE *log = quiet();
    sp_diag d = {0};
    ckpt *c = open_ok(dir, "fp", 1000, log);
    uint64_t pos = 0;
    for (int k = 1; k <= 2; k++) {
        assert_int_equal(ckpt_log_offsets(c, k, k * 1000, "0: x", &d), 0);
        assert_int_equal(ckpt_log_commit(c, k, k * 1000, &pos, 1, &d), 0);
    }
    assert_int_equal(ckpt_sync(c, &d), 0);
    ckpt_close(c);
    long good = file_size(dir, "commits");
    append_text(dir, "commits", "0badc0de {\"batch\":3,\"ti"); /* no newline: torn */

    /* spate checkpoint DIR looks without touching */
    FILE *out = tmpfile();
    assert_int_equal(ckpt_describe(dir, out, &d), 0);
    assert_true(file_size(dir, "commits") > good);
    rewind(out);
    char buf[2048] = "";
    size_t got = fread(buf, 1, sizeof buf - 1, out);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "batches committed: 2"));
    fclose(out);

    c = open_ok(dir, "fp", 1000, log);
    assert_int_equal(ckpt_committed(c), 2);
    assert_int_equal(file_size(dir, "commits"), good);
    ckpt_close(c);

    /* flip one byte of the first offsets record */
    char p[1024];
    snprintf(p, sizeof p, "%s/offsets", dir);
    FILE *f = fopen(p, "r+");
    assert_non_null(f);
    fseek(f, 12, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 12, SEEK_SET);
    fputc(ch == '9' ? '8' : '9', f);
    fclose(f);
    c = NULL;
    assert_int_equal(ckpt_open(NULL, dir, "fp", 1000, log, &c, &d), SP_EIO);
    assert_null(c);
    assert_non_null(strstr(d.msg, "offsets:1: damaged record"));
    fclose(log);
}

/* ------------------------------------------------------------------ jobs through the API */

static int run_job(const char *q, const char *ck, const char *csv, const char *jsonl,
                   int64_t batches)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.max_batches = batches;
    cfg.checkpoint_dir = ck;
    cfg.job_fingerprint = "test job";
    FILE *log = quiet();
    cfg.log = log;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *s = sp_queue_stream(ctx, q, "(str,i64)");
    sp_expr *add = sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    sp_expr *sub = sp_expr_binop(ctx, SP_OP_SUB, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    sp_stream *w = sp_stream_reduce_by_key_and_window(s, add, sub, 3000, 1000, NULL);
    assert_int_equal(sp_stream_save_csv(w, csv), SP_OK);
    assert_int_equal(sp_stream_save_jsonl(sp_stream_count(s), jsonl), SP_OK);
    int rc = sp_context_run(ctx);
    if (rc) print_message("run: %s\n", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    fclose(log);
    return rc;
}

/* Stopped after 3 batches, then after 5, then run to 8: the files equal one 8-batch run's. */
static void test_resume_appending_files(void **state)
{
    (void)state;
    const char *q =
        write_tmp("ck-q.jsonl", "[[\"a\",1],[\"b\",2]]\n[[\"a\",3]]\n[]\n[[\"c\",4]]\n"
                                "[[\"a\",5],[\"c\",1]]\n[]\n[[\"b\",7]]\n[[\"a\",2]]\n");
    const char *dir = tu_tmpdir("ck-job");
    char ref_csv[512], ref_js[512], csv[512], js[512], ck[512];
    snprintf(ref_csv, sizeof ref_csv, "%s/ref.csv", dir);
    snprintf(ref_js, sizeof ref_js, "%s/ref.jsonl", dir);
    snprintf(csv, sizeof csv, "%s/o.csv", dir);
    snprintf(js, sizeof js, "%s/o.jsonl", dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    char rck[600];
    snprintf(rck, sizeof rck, "%s/refck", dir);
    assert_int_equal(run_job(q, rck, ref_csv, ref_js, 8), SP_OK);
    assert_int_equal(run_job(q, ck, csv, js, 3), SP_OK);
    /* what a crash after the commit could leave: a half-written line past it */
    FILE *f = fopen(csv, "a");
    fputs("9999,zz,", f);
    fclose(f);
    assert_int_equal(run_job(q, ck, csv, js, 5), SP_OK);
    assert_int_equal(run_job(q, ck, csv, js, 8), SP_OK);
    size_t la, lb;
    char *a = tu_read_file(ref_csv, &la), *b = tu_read_file(csv, &lb);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "time_ms,_1,_2\n"));
    free(a);
    free(b);
    a = tu_read_file(ref_js, &la);
    b = tu_read_file(js, &lb);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* a file shorter than its committed size was changed behind the checkpoint's back */
    f = fopen(csv, "w");
    fclose(f);
    assert_int_equal(run_job(q, ck, csv, js, 8), SP_ESTATE);
}

static void test_live_sources_are_refused(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ck-live");
    char ck[512];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.checkpoint_dir = ck;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    assert_int_equal(sp_stream_print(sp_stream_count(sp_stdin_stream(ctx)), 1), SP_OK);
    assert_int_equal(sp_context_run(ctx), SP_EUNSUPPORTED);
    assert_non_null(strstr(sp_context_errmsg(ctx), "live input that a restart cannot replay"));
    sp_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logs_round_trip),
        cmocka_unit_test(test_another_job_is_refused),
        cmocka_unit_test(test_torn_and_damaged_records),
        cmocka_unit_test(test_resume_appending_files),
        cmocka_unit_test(test_live_sources_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
