/* layers: util device exec batch io */
/* Sinks (host/io): print, saveAsTextFiles, CSV, JSON lines, foreachRDD. */
#include "io/io_int.h"
#include "support/envfix.h"
#include "support/testutil.h"

#include <jansson.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static sp_batch *new_batch(fixture *f, const char *type, int64_t t)
{
    sp_td *td;
    sp_diag d = {0};
    assert_int_equal(td_parse(NULL, type, &td, &d), 0);
    sp_batch *b;
    assert_int_equal(batch_new(&f->env, td, t, &b, &d), 0);
    td_free(NULL, td);
    return b;
}

/* A (str,i64) batch of n rows ("w<i>", i * 10). */
static sp_batch *str_i64_batch(fixture *f, int64_t t, int n)
{
    sp_batch *b = new_batch(f, "(str,i64)", t);
    sp_emitter em;
    emitter_init(&em, b, 0);
    for (int i = 0; i < n; i++) {
        char w[16];
        int l = snprintf(w, sizeof w, "w%d", i);
        assert_int_equal(sp_emit_str(&em, w, (size_t)l), 0);
        assert_int_equal(sp_emit_i64(&em, i * 10), 0);
        assert_int_equal(sp_emit_end(&em), 0);
    }
    return b;
}

/* Everything a sink wrote to a temporary FILE. */
static char *file_text(FILE *fp)
{
    long n = ftell(fp);
    rewind(fp);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    rewind(fp);
    assert_int_equal(ftruncate(fileno(fp), 0), 0);
    return s;
}

#define RULE "-------------------------------------------\n"

static void test_print_format(void **state)
{
    fixture *f = *state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    sp_diag d = {0};
    sp_sink *k = NULL;
    assert_int_equal(sink_print_new(NULL, fp, 10, &k, &d), 0);
    sp_batch *b = str_i64_batch(f, 1000, 3);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    char *out = file_text(fp);
    assert_string_equal(out, RULE "Time: 1000 ms\n" RULE "(w0,0)\n(w1,10)\n(w2,20)\n\n");
    free(out);
    /* Empty batch: the header still. */
    b = str_i64_batch(f, 2000, 0);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    out = file_text(fp);
    assert_string_equal(out, RULE "Time: 2000 ms\n" RULE "\n");
    free(out);
    /* Exactly n elements: no "...". */
    b = str_i64_batch(f, 3000, 10);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    out = file_text(fp);
    assert_null(strstr(out, "..."));
    assert_non_null(strstr(out, "(w9,90)\n\n"));
    free(out);
    assert_int_equal(k->vt->close(k, &d), 0);
    sink_free(k);
    /* n smaller than the batch. */
    assert_int_equal(sink_print_new(NULL, fp, 2, &k, &d), 0);
    b = str_i64_batch(f, 4000, 3);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    out = file_text(fp);
    assert_string_equal(out, RULE "Time: 4000 ms\n" RULE "(w0,0)\n(w1,10)\n...\n\n");
    free(out);
    sink_free(k);
    /* print(0): header and "..." only. */
    assert_int_equal(sink_print_new(NULL, fp, 0, &k, &d), 0);
    b = str_i64_batch(f, 5000, 1);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    out = file_text(fp);
    assert_string_equal(out, RULE "Time: 5000 ms\n" RULE "...\n\n");
    free(out);
    sink_free(k);
    assert_int_equal(sink_print_new(NULL, fp, -1, &k, &d), SP_EINVAL);
    fclose(fp);
}

static int dir_has_hidden(const char *dir)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *e;
    int hidden = 0;
    while ((e = readdir(dp)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) hidden = 1;
    closedir(dp);
    return hidden;
}

static void check_text_dir(const char *dir, const char *want_part0)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/_SUCCESS", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    snprintf(p, sizeof p, "%s/part-00000", dir);
    char *text = tu_read_file(p, NULL);
    assert_non_null(text);
    assert_string_equal(text, want_part0);
    free(text);
}

static void test_save_as_text_files(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("textfiles");
    char prefix[512], path[1024];
    snprintf(prefix, sizeof prefix, "%s/out/words", dir); /* out/ does not exist yet */
    sp_diag d = {0};
    sp_sink *k = NULL;
    /* With a suffix. */
    assert_int_equal(sink_text_files_new(NULL, prefix, "txt", &k, &d), 0);
    sp_batch *b = str_i64_batch(f, 1000, 3);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    snprintf(path, sizeof path, "%s-1000.txt", prefix);
    check_text_dir(path, "(w0,0)\n(w1,10)\n(w2,20)\n");
    /* Re-run of the same batch time replaces: a stray file of the old output is gone. */
    char stray[1100];
    snprintf(stray, sizeof stray, "%s/part-00007", path);
    assert_int_equal(tu_write_file(stray, "old\n"), 0);
    b = str_i64_batch(f, 1000, 1);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    check_text_dir(path, "(w0,0)\n");
    assert_int_not_equal(access(stray, F_OK), 0);
    /* An empty batch: an empty part file and _SUCCESS. */
    b = str_i64_batch(f, 2000, 0);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    snprintf(path, sizeof path, "%s-2000.txt", prefix);
    check_text_dir(path, "");
    assert_int_equal(k->vt->close(k, &d), 0);
    sink_free(k);
    /* Without a suffix (NULL or ""): no dot. Two partitions, two part files. */
    for (int empty = 0; empty < 2; empty++) {
        assert_int_equal(sink_text_files_new(NULL, prefix, empty ? "" : NULL, &k, &d), 0);
        b = str_i64_batch(f, 3000 + empty, 5);
        size_t start[3] = {0, 2, 5};
        assert_int_equal(batch_set_parts(b, 2, start, NULL), 0);
        assert_int_equal(k->vt->write(k, b, &d), 0);
        batch_release(b);
        snprintf(path, sizeof path, "%s-%d", prefix, 3000 + empty);
        check_text_dir(path, "(w0,0)\n(w1,10)\n");
        snprintf(path, sizeof path, "%s-%d/part-00001", prefix, 3000 + empty);
        char *text = tu_read_file(path, NULL);
        assert_non_null(text);
        assert_string_equal(text, "(w2,20)\n(w3,30)\n(w4,40)\n");
        free(text);
        sink_free(k);
    }
    /* No temporary or moved-aside directory is left. */
    snprintf(path, sizeof path, "%s/out", dir);
    assert_false(dir_has_hidden(path));
    /* A prefix under a regular file cannot be written. */
    snprintf(path, sizeof path, "%s/file", dir);
    assert_int_equal(tu_write_file(path, "x"), 0);
    snprintf(prefix, sizeof prefix, "%s/file/words", dir);
    assert_int_equal(sink_text_files_new(NULL, prefix, NULL, &k, &d), 0);
    b = str_i64_batch(f, 1000, 1);
    assert_int_equal(k->vt->write(k, b, &d), SP_EIO);
    assert_non_null(strstr(d.msg, "saveAsTextFiles"));
    batch_release(b);
    sink_free(k);
}

/* A pid that no process has: a child that has exited and been waited for. */
static long dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(kill(pid, 0), -1);
    return (long)pid;
}

/* dir/name as a finished output directory: part-00000 holding `text`, and _SUCCESS. */
static void fake_dir(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/%s/part-00000", dir, name);
    assert_int_equal(tu_write_file(path, text), 0);
    snprintf(path, sizeof path, "%s/%s/_SUCCESS", dir, name);
    assert_int_equal(tu_write_file(path, ""), 0);
}

static int exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_save_as_text_files_stale(void **state)
{
    fixture *f = *state;
    /* What killed runs leave: .tmp and .old siblings. The first write removes those of dead
     * pids, puts back an .old whose target the killed run had moved away, and keeps the rest:
     * live pids (init, ours), other prefixes and suffixes, other names. */
    const char *dir = tu_tmpdir("textfiles-stale");
    char name[32][128], prefix[512];
    long dead = dead_pid(), self = (long)getpid();
    snprintf(name[0], sizeof name[0], ".words-5000.txt.tmp-%ld", dead);   /* removed */
    snprintf(name[1], sizeof name[1], ".words-6000.txt.old-%ld", dead);   /* moved back */
    snprintf(name[2], sizeof name[2], ".words-7000.txt.old-%ld", dead);   /* removed */
    snprintf(name[3], sizeof name[3], ".words--60000.txt.tmp-%ld", dead); /* removed */
    snprintf(name[4], sizeof name[4], ".words-5000.txt.tmp-1");           /* init: alive */
    snprintf(name[5], sizeof name[5], ".words-5000.txt.tmp-%ld", self);   /* ours: alive */
    snprintf(name[6], sizeof name[6], ".other-5000.txt.tmp-%ld", dead);   /* other prefix */
    snprintf(name[7], sizeof name[7], ".words-5000.csv.tmp-%ld", dead);   /* other suffix */
    snprintf(name[8], sizeof name[8], ".words-5000.txt.tmp-%ldx", dead);  /* not a pid */
    snprintf(name[9], sizeof name[9], ".words-x.txt.tmp-%ld", dead);      /* not a time */
    for (int i = 0; i < 10; i++)
        fake_dir(dir, name[i], "stale\n");
    fake_dir(dir, "words-7000.txt", "current\n");
    snprintf(prefix, sizeof prefix, "%s/words", dir);
    sp_diag d = {0};
    sp_sink *k = NULL;
    assert_int_equal(sink_text_files_new(NULL, prefix, "txt", &k, &d), 0);
    sp_batch *b = str_i64_batch(f, 1000, 1);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    sink_free(k);
    assert_false(exists(dir, name[0]));
    assert_false(exists(dir, name[1]));
    assert_false(exists(dir, name[2]));
    assert_false(exists(dir, name[3]));
    for (int i = 4; i < 10; i++)
        assert_true(exists(dir, name[i]));
    char path[1024];
    snprintf(path, sizeof path, "%s/words-6000.txt", dir);
    check_text_dir(path, "stale\n");
    snprintf(path, sizeof path, "%s/words-7000.txt", dir);
    check_text_dir(path, "current\n");
    snprintf(path, sizeof path, "%s/words-1000.txt", dir);
    check_text_dir(path, "(w0,0)\n");
}

/* A batch of type "(str,(i64,f64))" from the given rows. */
static sp_batch *nested_batch(fixture *f, int64_t t)
{
    sp_batch *b = new_batch(f, "(str,(i64,f64))", t);
    static const struct {
        const char *s;
        int64_t i;
        double x;
    } rows[] = {{"plain", 1, 0.5}, {"a,b", -2, 1e7}, {"say \"hi\"\n", 3, 2.0}, {"", 4, -0.25}};
    sp_emitter em;
    emitter_init(&em, b, 0);
    for (size_t r = 0; r < 4; r++) {
        assert_int_equal(sp_emit_str(&em, rows[r].s, strlen(rows[r].s)), 0);
        assert_int_equal(sp_emit_i64(&em, rows[r].i), 0);
        assert_int_equal(sp_emit_f64(&em, rows[r].x), 0);
        assert_int_equal(sp_emit_end(&em), 0);
    }
    return b;
}

static void test_csv(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("csv");
    char path[512];
    snprintf(path, sizeof path, "%s/out.csv", dir);
    sp_diag d = {0};
    sp_sink *k = NULL;
    assert_int_equal(sink_csv_new(NULL, path, 0, &k, &d), 0);
    sp_batch *b = nested_batch(f, 1000);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    b = new_batch(f, "(str,(i64,f64))", 2000); /* empty */
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    /* Visible after each write, before close. */
    char *text = tu_read_file(path, NULL);
    assert_string_equal(text, "time_ms,_1,_2._1,_2._2\n"
                              "1000,plain,1,0.5\n"
                              "1000,\"a,b\",-2,1.0E7\n"
                              "1000,\"say \"\"hi\"\"\n\",3,2.0\n"
                              "1000,\"\",4,-0.25\n");
    free(text);
    assert_int_equal(k->vt->close(k, &d), 0);
    assert_int_equal(k->vt->close(k, &d), 0);
    sink_free(k);
    /* A scalar element is "value". */
    assert_int_equal(sink_csv_new(NULL, path, 0, &k, &d), 0);
    b = new_batch(f, "i64", 5);
    sp_emitter em;
    emitter_init(&em, b, 0);
    sp_emit_i64(&em, 42);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    sink_free(k); /* closes */
    text = tu_read_file(path, NULL);
    assert_string_equal(text, "time_ms,value\n5,42\n");
    free(text);
    snprintf(path, sizeof path, "%s/no/such/dir/out.csv", dir);
    assert_int_equal(sink_csv_new(NULL, path, 0, &k, &d), SP_ENOENT);
    assert_null(k);
    assert_non_null(strstr(d.msg, "out.csv"));
}

/* A batch of an Option/List type, through queueStream (the emitter takes flat types only). */
static sp_batch *queue_batch(fixture *f, const char *dir, const char *json, const char *type)
{
    char path[512];
    snprintf(path, sizeof path, "%s/q.jsonl", dir);
    assert_int_equal(tu_write_file(path, json), 0);
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, path, type, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    sp_batch *b;
    assert_int_equal(batch_new(&f->env, s->td, 7000, &b, &d), 0);
    int done;
    assert_int_equal(s->vt->next(s, 7000, b, &done, &d), 0);
    source_free(s);
    return b;
}

static void test_jsonl(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("jsonl");
    char path[512];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    sp_diag d = {0};
    sp_sink *k = NULL;
    assert_int_equal(sink_jsonl_new(NULL, path, 0, &k, &d), 0);
    sp_batch *b = nested_batch(f, 1000);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    b = queue_batch(f, dir, "[[\"a\",null,[1.5,2],true],[\"\\t\\u0001\",3,[],false]]\n",
                    "(str,Option[i64],List[f64],bool)");
    assert_int_equal(b->n, 2);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    assert_int_equal(k->vt->close(k, &d), 0);
    sink_free(k);
    char *text = tu_read_file(path, NULL);
    assert_string_equal(text, "{\"time\":1000,\"value\":[\"plain\",[1,0.5]]}\n"
                              "{\"time\":1000,\"value\":[\"a,b\",[-2,1.0E7]]}\n"
                              "{\"time\":1000,\"value\":[\"say \\\"hi\\\"\\n\",[3,2.0]]}\n"
                              "{\"time\":1000,\"value\":[\"\",[4,-0.25]]}\n"
                              "{\"time\":7000,\"value\":[\"a\",null,[1.5,2.0],true]}\n"
                              "{\"time\":7000,\"value\":[\"\\t\\u0001\",3,[],false]}\n");
    free(text);
    /* Every line is valid JSON that reads back as what was written. */
    json_t *v = json_loads("{\"time\":7000,\"value\":[\"\\t\\u0001\",3,[],false]}", 0, NULL);
    assert_non_null(v);
    json_decref(v);
    /* The same Option/List batch as CSV: None is an empty field, a list one JSON field. */
    snprintf(path, sizeof path, "%s/out.csv", dir);
    assert_int_equal(sink_csv_new(NULL, path, 0, &k, &d), 0);
    b = queue_batch(f, dir, "[[\"a\",null,[1.5,2],true],[\"b\",3,[],false]]\n",
                    "(str,Option[i64],List[f64],bool)");
    assert_int_equal(k->vt->write(k, b, &d), 0);
    batch_release(b);
    sink_free(k);
    text = tu_read_file(path, NULL);
    assert_string_equal(text, "time_ms,_1,_2,_3,_4\n"
                              "7000,a,,\"[1.5,2.0]\",true\n"
                              "7000,b,3,[],false\n");
    free(text);
}

static int fe_calls;
static size_t fe_rows;

static int fe_cb(void *ud, const sp_batch *b)
{
    fe_calls++;
    fe_rows += sp_batch_count(b);
    return *(int *)ud;
}

static void test_foreach(void **state)
{
    fixture *f = *state;
    int ret = 0;
    sp_diag d = {0};
    sp_sink *k = NULL;
    assert_int_equal(sink_foreach_new(NULL, fe_cb, &ret, &k, &d), 0);
    sp_batch *b = str_i64_batch(f, 1000, 3);
    assert_int_equal(k->vt->write(k, b, &d), 0);
    assert_int_equal(fe_calls, 1);
    assert_int_equal(fe_rows, 3);
    ret = 7;
    assert_int_equal(k->vt->write(k, b, &d), SP_ECALLBACK);
    assert_non_null(strstr(d.msg, "foreachRDD callback returned 7"));
    assert_int_equal(fe_calls, 2);
    batch_release(b);
    assert_int_equal(k->vt->close(k, &d), 0);
    sink_free(k);
    assert_int_equal(sink_foreach_new(NULL, NULL, NULL, &k, &d), SP_EINVAL);
}

typedef struct failalloc {
    int left; /* allocations that still succeed */
} failalloc;

static void *fail_fn(void *ud, void *p, size_t n)
{
    failalloc *fa = ud;
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (fa->left-- <= 0) return NULL;
    return realloc(p, n);
}

/* Every sink, with the Nth allocation of its own failing, for every N until it works. */
static void test_allocation_failures(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("sink-alloc");
    char prefix[512], csv[512], jsonl[512];
    snprintf(prefix, sizeof prefix, "%s/out", dir);
    snprintf(csv, sizeof csv, "%s/o.csv", dir);
    snprintf(jsonl, sizeof jsonl, "%s/o.jsonl", dir);
    FILE *fp = tmpfile();
    sp_batch *b = nested_batch(f, 1000);
    for (int kind = 0; kind < 4; kind++) {
        for (int budget = 0;; budget++) {
            assert_true(budget < 10000);
            failalloc fa = {budget};
            sp_allocator a = {fail_fn, &fa};
            sp_diag d = {0};
            sp_sink *k = NULL;
            int rc = kind == 0   ? sink_print_new(&a, fp, 3, &k, &d)
                     : kind == 1 ? sink_text_files_new(&a, prefix, "x", &k, &d)
                     : kind == 2 ? sink_csv_new(&a, csv, 0, &k, &d)
                                 : sink_jsonl_new(&a, jsonl, 0, &k, &d);
            if (rc == 0) rc = k->vt->write(k, b, &d);
            if (rc == 0) rc = k->vt->close(k, &d);
            sink_free(k);
            if (rc == 0) break;
            assert_int_equal(rc, SP_ENOMEM);
        }
    }
    assert_false(dir_has_hidden(dir));
    batch_release(b);
    fclose(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_print_format),
        cmocka_unit_test(test_save_as_text_files),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_save_as_text_files_stale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
