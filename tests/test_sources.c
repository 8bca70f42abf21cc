/* layers: util device exec batch io */
/* Sources (host/io): queueStream, textFile, textFileStream, socketTextStream, fd, generator. */
#include "io/io_int.h"
#include "io/lines_int.h"
#include "support/envfix.h"
#include "support/testutil.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One next() into a fresh batch; checks rc and that the partition table covers the rows. */
static sp_batch *next_batch(fixture *f, sp_source *s, int64_t t, int *done, int want_rc, sp_diag *d)
{
    sp_batch *b = NULL;
    assert_int_equal(batch_new(&f->env, s->td, t, &b, d), 0);
    *done = -1;
    int rc = s->vt->next(s, t, b, done, d);
    if (rc != want_rc) fail_msg("next: rc %d (%s), wanted %d", rc, d->msg, want_rc);
    if (rc == 0) {
        assert_true(*done == 0 || *done == 1);
        assert_int_equal(b->nparts, 1);
        assert_int_equal(b->part_start[1], b->n);
    }
    return b;
}

/* Row i in toString form (static storage). */
static const char *row(const sp_batch *b, size_t i)
{
    static char buf[4096];
    assert_true(sp_batch_format(b, i, buf, sizeof buf) >= 0);
    return buf;
}

/* Line i of a str batch (static storage, NUL-terminated). */
static const char *line(const sp_batch *b, size_t i)
{
    static char buf[1 << 16];
    size_t len = 0;
    const char *s = col_get_str(&b->cols[0], b->env->dict, i, &len);
    assert_non_null(s);
    assert_true(len < sizeof buf);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

static char *type_str(const sp_td *t)
{
    static char buf[256];
    strbuf sb;
    sb_init(&sb, NULL);
    td_format(t, &sb);
    snprintf(buf, sizeof buf, "%s", sb_cstr(&sb));
    sb_free(&sb);
    return buf;
}

/* ---------------------------------------------------------------------------- queueStream */

static void test_queue_explicit_type(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(
        source_queue_new(&f->env, tu_src_path("tests/data/queue-basic.jsonl"), "(str,i64)", &s, &d),
        0);
    assert_true(s->manual_clock);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1000, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_int_equal(done, 0);
    assert_string_equal(row(b, 0), "(a,1)");
    assert_string_equal(row(b, 1), "(b,2)");
    assert_int_equal(b->time_ms, 1000);
    batch_release(b);
    b = next_batch(f, s, 2000, &done, 0, &d);
    assert_int_equal(b->n, 0);
    assert_int_equal(done, 0);
    batch_release(b);
    b = next_batch(f, s, 3000, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_int_equal(done, 1);
    assert_string_equal(row(b, 0), "(q\"uo\\te\n\xc3\xa9\xe4\xb8\xad,3)");
    assert_string_equal(row(b, 1), "(,-4)");
    /* The same string has the same dictionary id in every batch. */
    size_t len;
    assert_string_equal(col_get_str(&b->cols[0], f->dict, 1, &len), "");
    batch_release(b);
    /* After the end: empty and done. */
    b = next_batch(f, s, 4000, &done, 0, &d);
    assert_int_equal(b->n, 0);
    assert_int_equal(done, 1);
    batch_release(b);
    source_free(s);
}

static void test_queue_inferred_nested(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(
        source_queue_new(&f->env, tu_src_path("tests/data/queue-nested.jsonl"), NULL, &s, &d), 0);
    assert_string_equal(type_str(s->td), "(str,(i64,f64))");
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d); /* line 1: [] */
    assert_int_equal(b->n, 0);
    batch_release(b);
    b = next_batch(f, s, 2, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_string_equal(row(b, 0), "(a,(1,2.5))");
    assert_string_equal(row(b, 1), "(b,(3,4.0))"); /* an integer in an f64 column */
    batch_release(b);
    b = next_batch(f, s, 3, &done, 0, &d);
    assert_int_equal(done, 1);
    assert_string_equal(row(b, 0), "(c,(-5,1.0E7))");
    batch_release(b);
    source_free(s);
}

static void test_queue_bool_float(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(
        source_queue_new(&f->env, tu_src_path("tests/data/queue-mixed.jsonl"), NULL, &s, &d), 0);
    assert_string_equal(type_str(s->td), "(bool,f64,str)");
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_string_equal(row(b, 0), "(true,1.5,x)");
    assert_string_equal(row(b, 1), "(false,-0.25,y)");
    batch_release(b);
    b = next_batch(f, s, 2, &done, 0, &d);
    assert_string_equal(row(b, 0), "(true,2.0,z)");
    assert_int_equal(done, 1);
    batch_release(b);
    source_free(s);
}

static void test_queue_option_list(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, tu_src_path("tests/data/queue-nested-types.jsonl"),
                                      "(str,Option[i64],List[f64])", &s, &d),
                     0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_string_equal(row(b, 0), "(a,None,CompactBuffer(1.5, 2.0))");
    assert_string_equal(row(b, 1), "(b,Some(7),CompactBuffer())");
    batch_release(b);
    b = next_batch(f, s, 2, &done, 0, &d);
    assert_string_equal(row(b, 0), "(c,None,CompactBuffer())");
    assert_int_equal(done, 1);
    batch_release(b);
    source_free(s);
}

/* Runs a queue file to its failing line; returns the message. */
static const char *queue_fail(fixture *f, const char *rel, const char *type, int fail_at, int code)
{
    static sp_diag d;
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, tu_src_path(rel), type, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    for (int k = 1; k < fail_at; k++)
        batch_release(next_batch(f, s, k, &done, 0, &d));
    batch_release(next_batch(f, s, fail_at, &done, code, &d));
    assert_int_equal(d.code, code);
    source_free(s);
    return d.msg;
}

static void test_queue_malformed(void **state)
{
    fixture *f = *state;
    const char *m = queue_fail(f, "tests/data/queue-bad.jsonl", NULL, 3, SP_EPARSE);
    assert_non_null(strstr(m, "queue-bad.jsonl:3:"));
    assert_non_null(strstr(m, "queueStream"));
    m = queue_fail(f, "tests/data/queue-badtype.jsonl", "(str,i64)", 2, SP_EPARSE);
    assert_non_null(
        strstr(m, "queue-badtype.jsonl:2: record 2: expected (str,i64), got [\"a\",\"x\"]"));
    /* Inferred types are checked the same way. */
    m = queue_fail(f, "tests/data/queue-badtype.jsonl", NULL, 2, SP_EPARSE);
    assert_non_null(strstr(m, "record 2"));
    m = queue_fail(f, "tests/data/queue-notarray.jsonl", NULL, 2, SP_EPARSE);
    assert_non_null(strstr(m, "queue-notarray.jsonl:2: expected a JSON array"));
    /* A real in an integer column, an i32 out of range, a tuple of the wrong arity. */
    const char *dir = tu_tmpdir("queue-types");
    char path[512];
    snprintf(path, sizeof path, "%s/q.jsonl", dir);
    assert_int_equal(tu_write_file(path, "[[1,2]]\n[[1.5,2]]\n"), 0);
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, path, "(i64,i32)", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    batch_release(next_batch(f, s, 1, &done, 0, &d));
    batch_release(next_batch(f, s, 2, &done, SP_EPARSE, &d));
    assert_non_null(strstr(d.msg, "q.jsonl:2: record 1: expected (i64,i32), got [1.5,2]"));
    source_free(s);
    assert_int_equal(tu_write_file(path, "[[1,3000000000]]\n[[1,2,3]]\n"), 0);
    assert_int_equal(source_queue_new(&f->env, path, "(i64,i32)", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    batch_release(next_batch(f, s, 1, &done, SP_EPARSE, &d));
    source_free(s);
}

/* Writes n bytes (NULs included) to path. */
static void write_bytes(const char *path, const char *s, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(s, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* A NUL byte in a line is an error naming its line and column (a line starting with one used
 * to be read before the buffer, one inside a line cut it and merged it with the next). */
static void test_queue_nul_byte(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("queue-nul");
    char path[512], want[600];
    snprintf(path, sizeof path, "%s/q.jsonl", dir);
    static const char first[] = "[[\"a\",1]]\n\0[[\"b\",2]]\n[[\"c\",3]]\n";
    write_bytes(path, first, sizeof first - 1);
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, path, "(str,i64)", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 1);
    assert_int_equal(done, 0);
    batch_release(b);
    batch_release(next_batch(f, s, 2, &done, SP_EPARSE, &d));
    snprintf(want, sizeof want, "queueStream %s:2:1: NUL byte in the line", path);
    assert_string_equal(d.msg, want);
    source_free(s);
    /* inside a line */
    static const char inside[] = "[[\"a\",1]]\0[[\"b\",2]]\n[[\"c\",3]]\n";
    write_bytes(path, inside, sizeof inside - 1);
    assert_int_equal(source_queue_new(&f->env, path, "(str,i64)", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    batch_release(next_batch(f, s, 1, &done, SP_EPARSE, &d));
    snprintf(want, sizeof want, "queueStream %s:1:10: NUL byte in the line", path);
    assert_string_equal(d.msg, want);
    source_free(s);
    /* while inferring the type, after empty batches: the line number counts them */
    static const char infer[] = "[]\n\n\0\n[1]\n";
    write_bytes(path, infer, sizeof infer - 1);
    assert_int_equal(source_queue_new(&f->env, path, NULL, &s, &d), SP_EPARSE);
    snprintf(want, sizeof want, "queueStream %s:3:1: NUL byte in the line", path);
    assert_string_equal(d.msg, want);
}

static void test_queue_missing_and_untyped(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_queue_new(&f->env, "no-such-queue.jsonl", "i64", &s, &d), SP_ENOENT);
    assert_null(s);
    assert_non_null(strstr(d.msg, "no-such-queue.jsonl: No such file or directory"));
    assert_int_equal(source_queue_new(&f->env, "no-such-queue.jsonl", NULL, &s, &d), SP_ENOENT);
    assert_int_equal(
        source_queue_new(&f->env, tu_src_path("tests/data/queue-empty-only.jsonl"), NULL, &s, &d),
        SP_ETYPE);
    assert_non_null(strstr(d.msg, "give the type"));
    /* A bad type string names the type. */
    int rc =
        source_queue_new(&f->env, tu_src_path("tests/data/queue-basic.jsonl"), "(str,", &s, &d);
    assert_true(rc < 0);
    assert_int_equal(rc, d.code);
    assert_non_null(strstr(d.msg, "queueStream"));
    /* With a type, only empty batches are fine; an empty file is done at once. */
    assert_int_equal(
        source_queue_new(&f->env, tu_src_path("tests/data/queue-empty-only.jsonl"), "i64", &s, &d),
        0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    batch_release(next_batch(f, s, 1, &done, 0, &d));
    assert_int_equal(done, 0);
    batch_release(next_batch(f, s, 2, &done, 0, &d));
    assert_int_equal(done, 1);
    source_free(s);
    const char *dir = tu_tmpdir("queue-empty");
    char path[512];
    snprintf(path, sizeof path, "%s/empty.jsonl", dir);
    assert_int_equal(tu_write_file(path, ""), 0);
    assert_int_equal(source_queue_new(&f->env, path, "(str,i64)", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 0);
    assert_int_equal(done, 1);
    batch_release(b);
    source_free(s);
}

/* ------------------------------------------------------------------------------- textFile */

/* Runs a text source to its end, appending all lines; returns the number of batches. */
static size_t drain_lines(fixture *f, sp_source *s, size_t per_batch, size_t *nlines, char ***lines)
{
    sp_diag d = {0};
    size_t nb = 0, cap = 0;
    int done = 0;
    *nlines = 0;
    if (lines) *lines = NULL;
    while (!done) {
        sp_batch *b = next_batch(f, s, (int64_t)nb, &done, 0, &d);
        nb++;
        assert_true(nb < 1000000);
        if (per_batch && !done) assert_int_equal(b->n, per_batch);
        assert_int_equal(b->cols[0].enc, ENC_RAW);
        for (size_t i = 0; i < b->n && lines; i++) {
            if (*nlines == cap) {
                cap = cap ? cap * 2 : 16;
                *lines = realloc(*lines, cap * sizeof **lines);
            }
            (*lines)[(*nlines)++] = strdup(line(b, i));
        }
        if (!lines) *nlines += b->n;
        batch_release(b);
    }
    return nb;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void test_text_file_shapes(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("textfile");
    char path[512];
    snprintf(path, sizeof path, "%s/in.txt", dir);
    static const char *want[] = {"a", "b", "", "c d", "", "last"};
    /* CRLF, empty lines, no final newline. */
    assert_int_equal(tu_write_file(path, "a\r\nb\n\r\nc d\n\nlast"), 0);
    static const size_t per[] = {1, 2, 1000, 0};
    for (size_t k = 0; k < 4; k++) {
        sp_diag d = {0};
        sp_source *s = NULL;
        assert_int_equal(source_text_file_new(&f->env, path, per[k], &s, &d), 0);
        assert_string_equal(type_str(s->td), "str");
        assert_int_equal(s->vt->start(s, &d), 0);
        size_t n;
        char **l;
        size_t nb = drain_lines(f, s, per[k], &n, &l);
        assert_int_equal(n, 6);
        for (size_t i = 0; i < 6; i++)
            assert_string_equal(l[i], want[i]);
        assert_int_equal(nb, per[k] == 1 ? 6 : per[k] == 2 ? 3 : 1);
        free_lines(l, n);
        source_free(s);
    }
    /* A final newline does not make an extra empty line; an empty file has no lines. */
    static const struct {
        const char *text;
        size_t lines;
    } cases[] = {{"x\n", 1}, {"x\r\n", 1}, {"", 0}, {"\n", 1}, {"\n\n", 2}, {"a\rb\n", 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(tu_write_file(path, cases[k].text), 0);
        sp_diag d = {0};
        sp_source *s = NULL;
        assert_int_equal(source_text_file_new(&f->env, path, 1, &s, &d), 0);
        assert_int_equal(s->vt->start(s, &d), 0);
        size_t n;
        drain_lines(f, s, 1, &n, NULL);
        assert_int_equal(n, cases[k].lines);
        source_free(s);
    }
}

static void test_text_file_big(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("textfile-big");
    char path[512];
    snprintf(path, sizeof path, "%s/big.txt", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    enum { N = 200000 };
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        /* Lines of varied length so that lines straddle the 1 MiB read chunks. */
        int pad = (int)tu_rand_below(&seed, 40);
        fprintf(fp, "line-%d-%.*s%s", i, pad, "0123456789012345678901234567890123456789",
                i % 3 ? "\n" : "\r\n");
    }
    /* A line longer than the read buffer. */
    for (int i = 0; i < 3 * (1 << 20); i++)
        fputc('a' + i % 26, fp);
    fclose(fp);
    static const size_t per[] = {0, 1000, 7};
    for (size_t k = 0; k < 3; k++) {
        sp_diag d = {0};
        sp_source *s = NULL;
        assert_int_equal(source_text_file_new(&f->env, path, per[k], &s, &d), 0);
        s->line_max = 4 << 20; /* above the default cap (1 MiB), which would reject it */
        assert_int_equal(s->vt->start(s, &d), 0);
        size_t total = 0, nb = 0;
        int done = 0;
        seed = 7;
        while (!done) {
            sp_batch *b = next_batch(f, s, (int64_t)nb++, &done, 0, &d);
            if (per[k] == 0) assert_int_equal(b->n, N + 1);
            for (size_t i = 0; i < b->n; i++, total++) {
                size_t len;
                const char *str = col_get_str(&b->cols[0], f->dict, i, &len);
                if (total < N) {
                    char want[128];
                    int pad = (int)tu_rand_below(&seed, 40);
                    int wl = snprintf(want, sizeof want, "line-%zu-%.*s", total, pad,
                                      "0123456789012345678901234567890123456789");
                    assert_int_equal(len, (size_t)wl);
                    assert_memory_equal(str, want, len);
                } else {
                    assert_int_equal(len, 3 * (1 << 20));
                    assert_int_equal(str[len - 1], 'a' + (int)((len - 1) % 26));
                }
            }
            batch_release(b);
        }
        assert_int_equal(total, N + 1);
        source_free(s);
    }
    assert_int_equal(unlink(path), 0);
}

static void test_text_file_missing(void **state)
{
    fixture *f = *state;
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_text_file_new(&f->env, "no/such/file.txt", 0, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), SP_ENOENT);
    assert_non_null(strstr(d.msg, "textFile no/such/file.txt: No such file or directory"));
    source_free(s);
}

/* ------------------------------------------------------------------------- textFileStream */

static void test_text_file_stream(void **state)
{
    fixture *f = *state;
    const char *dir = tu_tmpdir("dirstream");
    char path[512];
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_dir_new(&f->env, dir, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 0);
    assert_int_equal(done, 0);
    batch_release(b);
    snprintf(path, sizeof path, "%s/b.txt", dir);
    assert_int_equal(tu_write_file(path, "b1\r\nb2"), 0);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    assert_int_equal(tu_write_file(path, "a1\n"), 0);
    snprintf(path, sizeof path, "%s/.hidden", dir);
    assert_int_equal(tu_write_file(path, "h\n"), 0);
    snprintf(path, sizeof path, "%s/_COPYING_", dir);
    assert_int_equal(tu_write_file(path, "t\n"), 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    b = next_batch(f, s, 2, &done, 0, &d);
    assert_int_equal(b->n, 3); /* files in name order */
    assert_string_equal(line(b, 0), "a1");
    assert_string_equal(line(b, 1), "b1");
    assert_string_equal(line(b, 2), "b2");
    assert_int_equal(done, 0);
    batch_release(b);
    /* Nothing new: nothing read again, even when a seen file changes. */
    snprintf(path, sizeof path, "%s/a.txt", dir);
    assert_int_equal(tu_write_file(path, "a1\na2\n"), 0);
    b = next_batch(f, s, 3, &done, 0, &d);
    assert_int_equal(b->n, 0);
    batch_release(b);
    /* A file renamed into place from a hidden name is picked up once. */
    snprintf(path, sizeof path, "%s/.hidden", dir);
    char dst[512];
    snprintf(dst, sizeof dst, "%s/c.txt", dir);
    assert_int_equal(rename(path, dst), 0);
    b = next_batch(f, s, 4, &done, 0, &d);
    assert_int_equal(b->n, 1);
    assert_string_equal(line(b, 0), "h");
    assert_int_equal(done, 0);
    batch_release(b);
    b = next_batch(f, s, 5, &done, 0, &d);
    assert_int_equal(b->n, 0);
    batch_release(b);
    source_free(s);
    assert_int_equal(source_dir_new(&f->env, "no-such-dir", &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), SP_ENOENT);
    assert_non_null(strstr(d.msg, "textFileStream no-such-dir"));
    source_free(s);
}

/* ---------------------------------------------------------------------------------- socket */

typedef struct server {
    int lfd;
    int port;
    int nlines;
    int hold; /* 1: keep the connection open until `release` */
    atomic_int release;
} server;

static int server_listen(server *sv)
{
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(sv->lfd, (struct sockaddr *)&a, sizeof a) || listen(sv->lfd, 1)) return -1;
    socklen_t al = sizeof a;
    getsockname(sv->lfd, (struct sockaddr *)&a, &al);
    sv->port = ntohs(a.sin_port);
    return 0;
}

static void *server_main(void *arg)
{
    server *sv = arg;
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char buf[8192];
    size_t len = 0;
    for (int i = 0; i < sv->nlines; i++) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "msg-%d%s", i,
                                i % 4 == 3 ? "\r\n" : "\n");
        if (len > sizeof buf - 64 || i % 97 == 0) {
            if (write(fd, buf, len) != (ssize_t)len) break;
            len = 0;
            if (i % 5 == 0) usleep(200);
        }
    }
    if (len && write(fd, buf, len) != (ssize_t)len) len = 0;
    while (sv->hold && !sv->release)
        usleep(1000);
    close(fd);
    return NULL;
}

static void run_socket(fixture *f, int nlines, size_t limit)
{
    server sv = {.nlines = nlines};
    assert_int_equal(server_listen(&sv), 0);
    pthread_t th;
    pthread_create(&th, NULL, server_main, &sv);
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_socket_new(&f->env, "127.0.0.1", sv.port, &s, &d), 0);
    if (limit) assert_int_equal(source_set_ingest_limit(s, limit, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done = 0, got = 0;
    size_t nb = 0;
    while (!done) {
        sp_batch *b = next_batch(f, s, (int64_t)nb++, &done, 0, &d);
        for (size_t i = 0; i < b->n; i++, got++) {
            char want[32];
            snprintf(want, sizeof want, "msg-%d", got);
            assert_string_equal(line(b, i), want);
        }
        batch_release(b);
        if (!done) usleep(500);
    }
    assert_int_equal(got, nlines);
    pthread_join(th, NULL);
    close(sv.lfd);
    source_free(s);
}

static void test_socket_lines(void **state)
{
    fixture *f = *state;
    run_socket(f, 0, 0);
    run_socket(f, 1, 0);
    run_socket(f, 20000, 0);
    run_socket(f, 20000, 100); /* back-pressure: the ring holds a few lines at a time */
}

static void test_socket_refused(void **state)
{
    fixture *f = *state;
    server sv = {0};
    assert_int_equal(server_listen(&sv), 0);
    close(sv.lfd); /* the port is now closed */
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_socket_new(&f->env, "127.0.0.1", sv.port, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), SP_ECONN);
    char want[64];
    snprintf(want, sizeof want, "socketTextStream 127.0.0.1:%d: Connection refused", sv.port);
    assert_string_equal(d.msg, want);
    source_free(s);
    assert_int_equal(source_socket_new(&f->env, "127.0.0.1", 0, &s, &d), SP_EINVAL);
    assert_int_equal(source_socket_new(&f->env, "no-such-host.invalid", 9, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), SP_ECONN);
    assert_non_null(strstr(d.msg, "no-such-host.invalid:9"));
    source_free(s);
}

static void test_socket_stop_does_not_hang(void **state)
{
    fixture *f = *state;
    server sv = {.nlines = 3, .hold = 1};
    assert_int_equal(server_listen(&sv), 0);
    pthread_t th;
    pthread_create(&th, NULL, server_main, &sv);
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_socket_new(&f->env, "127.0.0.1", sv.port, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done, got = 0;
    for (int k = 0; k < 5000 && got < 3; k++) {
        sp_batch *b = next_batch(f, s, k, &done, 0, &d);
        got += (int)b->n;
        assert_int_equal(done, 0);
        batch_release(b);
        usleep(1000);
    }
    assert_int_equal(got, 3);
    s->vt->stop(s); /* the peer is still connected and silent */
    s->vt->stop(s); /* idempotent */
    sv.release = 1;
    pthread_join(th, NULL);
    close(sv.lfd);
    source_free(s);
}

/* -------------------------------------------------------------------------------------- fd */

static void test_fd_source(void **state)
{
    fixture *f = *state;
    /* batch_lines 2: batches of exactly two lines, the last one shorter. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    const char *text = "one\ntwo\r\nthree\n\nfive";
    assert_int_equal(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_fd_new(&f->env, p[0], "pipe", 2, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_string_equal(line(b, 0), "one");
    assert_string_equal(line(b, 1), "two");
    assert_int_equal(done, 0);
    batch_release(b);
    b = next_batch(f, s, 2, &done, 0, &d);
    assert_int_equal(b->n, 2);
    assert_string_equal(line(b, 0), "three");
    assert_string_equal(line(b, 1), "");
    assert_int_equal(done, 0);
    batch_release(b);
    close(p[1]);
    b = next_batch(f, s, 3, &done, 0, &d);
    assert_int_equal(b->n, 1);
    assert_string_equal(line(b, 0), "five");
    assert_int_equal(done, 1);
    batch_release(b);
    source_free(s);
    close(p[0]);

    /* batch_lines 0: what has arrived; stop while the writer is still open. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(source_fd_new(&f->env, p[0], NULL, 0, &s, &d), 0);
    assert_int_equal(s->vt->start(s, &d), 0);
    assert_int_equal(write(p[1], "x\ny\n", 4), 4);
    int got = 0;
    for (int k = 0; k < 5000 && got < 2; k++) {
        b = next_batch(f, s, k, &done, 0, &d);
        got += (int)b->n;
        assert_int_equal(done, 0);
        batch_release(b);
        usleep(1000);
    }
    assert_int_equal(got, 2);
    source_free(s);
    close(p[0]);
    close(p[1]);

    /* batch_lines 10 and a silent writer: a stop request cuts the batch short. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(source_fd_new(&f->env, p[0], NULL, 10, &s, &d), 0);
    atomic_int stop = 1;
    s->stop = &stop;
    assert_int_equal(s->vt->start(s, &d), 0);
    b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 0);
    assert_int_equal(done, 0);
    batch_release(b);
    source_free(s);
    close(p[0]);
    close(p[1]);
    assert_int_equal(source_fd_new(&f->env, -1, NULL, 0, &s, &d), SP_EINVAL);
}

/* ------------------------------------------------------------------------ the line cap */

/* What a source's reject hook received. */
typedef struct rejlog {
    int n;
    char origin[8][128], reason[8][128], text[8][128];
    int64_t line[8];
} rejlog;

static int on_reject(void *ud, const char *origin, int64_t line, const char *reason,
                     const char *text, size_t len, sp_diag *d)
{
    (void)d;
    rejlog *r = ud;
    if (r->n == 8) return SP_ERUNTIME;
    snprintf(r->origin[r->n], sizeof r->origin[0], "%s", origin);
    snprintf(r->reason[r->n], sizeof r->reason[0], "%s", reason);
    snprintf(r->text[r->n], sizeof r->text[0], "%.*s", (int)len, text);
    r->line[r->n++] = line;
    return 0;
}

static void cap_source(sp_source *s, size_t max, rejlog *r)
{
    memset(r, 0, sizeof *r);
    s->line_max = max;
    s->reject = on_reject;
    s->reject_ud = r;
}

/* File line L of batch row i, from the source's origin. */
static int64_t origin_line(const sp_source *s, size_t i)
{
    const char *file;
    int64_t ln = -1;
    assert_int_equal(lines_origin_at(textfile_origin(s), i, &file, &ln, NULL), 0);
    return ln;
}

/* An overlong text: n bytes "0123456789..." */
static char *long_text(size_t n)
{
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = (char)('0' + i % 10);
    t[n] = '\0';
    return t;
}

static void test_line_cap_files(void **state)
{
    fixture *f = *state;
    /* Cap 100: line 2 has 101 bytes, line 4 exactly 100 and a CRLF (kept), line 6 has 300
     * (its end lies beyond the first 102 bytes), line 8 has no newline. Every batch size
     * gives the same lines, rejects and line numbers. */
    char *l100 = long_text(100), *l101 = long_text(101), *l300 = long_text(300);
    char *l5000 = long_text(5000);
    size_t cap = 6000;
    char *text = malloc(cap);
    snprintf(text, cap, "a\n%s\nb\r\n%s\r\n\n%s\nc\n%s", l101, l100, l300, l5000);
    const char *dir = tu_tmpdir("linecap");
    char path[512];
    snprintf(path, sizeof path, "%s/long.txt", dir);
    assert_int_equal(tu_write_file(path, text), 0);
    static const size_t per[] = {0, 1, 2};
    for (size_t k = 0; k < 3; k++) {
        sp_diag d = {0};
        sp_source *s = NULL;
        rejlog r;
        assert_int_equal(source_text_file_new(&f->env, path, per[k], &s, &d), 0);
        cap_source(s, 100, &r);
        assert_int_equal(s->vt->start(s, &d), 0);
        const char *want[] = {"a", "b", l100, "", "c"};
        const int64_t want_line[] = {1, 3, 4, 5, 7};
        size_t got = 0;
        int done = 0;
        for (int64_t t = 0; !done; t++) {
            sp_batch *b = next_batch(f, s, t, &done, 0, &d);
            for (size_t i = 0; i < b->n; i++, got++) {
                assert_true(got < 5);
                assert_string_equal(line(b, i), want[got]);
                assert_int_equal(origin_line(s, i), want_line[got]);
            }
            batch_release(b);
        }
        assert_int_equal(got, 5);
        assert_int_equal(r.n, 3);
        assert_int_equal(s->rejected, 3);
        assert_string_equal(r.origin[0], path);
        assert_int_equal(r.line[0], 2);
        assert_int_equal(r.line[1], 6);
        assert_int_equal(r.line[2], 8);
        assert_string_equal(r.reason[0], "textFile: line longer than 100 bytes (dropped)");
        assert_int_equal(strlen(r.text[0]), 64); /* its first bytes */
        assert_memory_equal(r.text[0], l101, 64);
        assert_memory_equal(r.text[2], l5000, 64);
        source_free(s);
    }

    /* textFileStream: the same file, whole in one batch. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/watch", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    sp_diag d = {0};
    sp_source *s = NULL;
    rejlog r;
    assert_int_equal(source_dir_new(&f->env, sub, &s, &d), 0);
    cap_source(s, 100, &r);
    assert_int_equal(s->vt->start(s, &d), 0);
    snprintf(path, sizeof path, "%s/watch/f.txt", dir);
    assert_int_equal(tu_write_file(path, text), 0);
    int done;
    sp_batch *b = next_batch(f, s, 1, &done, 0, &d);
    assert_int_equal(b->n, 5);
    assert_string_equal(line(b, 1), "b");
    assert_string_equal(line(b, 4), "c");
    assert_int_equal(origin_line(s, 0), 1);
    assert_int_equal(origin_line(s, 1), 3);
    assert_int_equal(origin_line(s, 3), 5);
    assert_int_equal(origin_line(s, 4), 7);
    batch_release(b);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.origin[1], path);
    assert_int_equal(r.line[1], 6);
    assert_string_equal(r.reason[1], "textFileStream: line longer than 100 bytes (dropped)");
    source_free(s);
    free(text);
    free(l100);
    free(l101);
    free(l300);
    free(l5000);
}

/* An allocator that tracks the bytes it holds and their peak. */
typedef struct peak_alloc {
    atomic_size_t live, peak;
} peak_alloc;

static void *peak_fn(void *ud, void *ptr, size_t nsize)
{
    peak_alloc *pa = ud;
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    void *p = NULL;
    if (nsize == 0)
        free(ptr);
    else if (!(p = realloc(ptr, nsize)))
        return NULL;
    size_t delta = (p ? malloc_usable_size(p) : 0) - old; /* modulo 2^64 */
    size_t now = atomic_fetch_add(&pa->live, delta) + delta;
    size_t pk = atomic_load(&pa->peak);
    while (now > pk && !atomic_compare_exchange_weak(&pa->peak, &pk, now)) {
    }
    return p;
}

typedef struct flood {
    int lfd;
    size_t nbytes; /* of the line without a newline */
} flood;

static void *flood_main(void *arg)
{
    flood *fl = arg;
    int fd = accept(fl->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    int ok = write(fd, "before\n", 7) == 7;
    for (size_t sent = 0; ok && sent < fl->nbytes; sent += sizeof buf)
        ok = write(fd, buf, sizeof buf) == (ssize_t)sizeof buf;
    if (ok) ok = write(fd, "\nafter\n", 7) == 7;
    close(fd);
    return NULL;
}

static void test_line_cap_socket(void **state)
{
    fixture *f = *state;
    /* 64 MiB without a newline (the 8.7 GB report, smaller): the receiver holds at most the
     * cap and a read, rejects the line with host:port and its number, and "after" flows. */
    peak_alloc pa = {0};
    sp_allocator a = {peak_fn, &pa};
    batch_env env = f->env;
    env.alloc = &a;
    server sv = {0};
    assert_int_equal(server_listen(&sv), 0);
    flood fl = {sv.lfd, (size_t)64 << 20};
    pthread_t th;
    pthread_create(&th, NULL, flood_main, &fl);
    sp_diag d = {0};
    sp_source *s = NULL;
    rejlog r;
    assert_int_equal(source_socket_new(&env, "127.0.0.1", sv.port, &s, &d), 0);
    cap_source(s, 0, &r);
    s->line_max = (size_t)1 << 20;
    assert_int_equal(s->vt->start(s, &d), 0);
    int done = 0;
    char got[2][16];
    int n = 0;
    for (int64_t t = 0; !done; t++) {
        sp_batch *b = next_batch(f, s, t, &done, 0, &d);
        for (size_t i = 0; i < b->n; i++, n++)
            if (n < 2) snprintf(got[n], sizeof got[n], "%s", line(b, i));
        batch_release(b);
        if (!done) usleep(1000);
    }
    pthread_join(th, NULL);
    close(sv.lfd);
    assert_int_equal(n, 2);
    assert_string_equal(got[0], "before");
    assert_string_equal(got[1], "after");
    assert_int_equal(r.n, 1);
    char place[64];
    snprintf(place, sizeof place, "127.0.0.1:%d", sv.port);
    assert_string_equal(r.origin[0], place);
    assert_int_equal(r.line[0], 2);
    assert_string_equal(r.reason[0], "socketTextStream: line longer than 1048576 bytes (dropped)");
    assert_string_equal(r.text[0],
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    print_message("socket source peak memory %zu KiB for a 64 MiB line\n",
                  atomic_load(&pa.peak) >> 10);
    assert_true(atomic_load(&pa.peak) < ((size_t)8 << 20));
    source_free(s);
    assert_int_equal(atomic_load(&pa.live), 0);

    /* stdin and other descriptors: the same cutter (CRLF kept under the cap). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    char *l30 = long_text(30);
    char text[256];
    int tl = snprintf(text, sizeof text, "x\n%s\r\ny\n%s1", l30, l30);
    assert_int_equal(write(p[1], text, (size_t)tl), tl);
    close(p[1]);
    assert_int_equal(source_fd_new(&f->env, p[0], "stdin", 0, &s, &d), 0);
    cap_source(s, 30, &r);
    assert_int_equal(s->vt->start(s, &d), 0);
    n = 0;
    const char *want[] = {"x", l30, "y"};
    done = 0;
    for (int64_t t = 0; !done; t++) {
        sp_batch *b = next_batch(f, s, t, &done, 0, &d);
        for (size_t i = 0; i < b->n; i++, n++) {
            assert_true(n < 3);
            assert_string_equal(line(b, i), want[n]);
        }
        batch_release(b);
        if (!done) usleep(1000);
    }
    assert_int_equal(n, 3);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.origin[0], "stdin");
    assert_int_equal(r.line[0], 4);
    assert_string_equal(r.reason[0], "fdStream: line longer than 30 bytes (dropped)");
    source_free(s);
    close(p[0]);
    free(l30);
}

/* ------------------------------------------------------------------------------- generator */

static void gen_collect(fixture *f, const sp_generator_opts *o, int64_t *keys, int64_t *vals,
                        size_t cap, size_t *n, size_t *nbatches, char *k0)
{
    sp_diag d = {0};
    sp_source *s = NULL;
    assert_int_equal(source_generator_new(&f->env, o, &s, &d), 0);
    assert_string_equal(type_str(s->td), o->string_keys ? "(str,i64)" : "(i64,i64)");
    assert_int_equal(s->vt->start(s, &d), 0);
    int done = 0;
    *n = 0;
    *nbatches = 0;
    while (!done) {
        sp_batch *b = next_batch(f, s, (int64_t)*nbatches, &done, 0, &d);
        (*nbatches)++;
        if (!done) assert_int_equal(b->n, o->per_batch);
        for (size_t i = 0; i < b->n; i++) {
            assert_true(*n < cap);
            if (o->string_keys) {
                size_t len;
                const char *str = col_get_str(&b->cols[0], f->dict, i, &len);
                assert_true(len > 1 && str[0] == 'k');
                keys[*n] = atoll(str + 1);
                if (*n == 0) snprintf(k0, 32, "%.*s", (int)len, str);
            } else {
                keys[*n] = col_get_i64(&b->cols[0], i);
            }
            vals[*n] = col_get_i64(&b->cols[1], i);
            assert_true(keys[*n] >= 0 && (uint64_t)keys[*n] < o->keys);
            assert_true(vals[*n] >= 0 && vals[*n] < o->value_max);
            (*n)++;
        }
        batch_release(b);
    }
    source_free(s);
}

static void test_generator(void **state)
{
    fixture *f = *state;
    enum { CAP = 3000 };
    static int64_t k1[CAP], v1[CAP], k2[CAP], v2[CAP];
    char s0[32], s1[32];
    sp_generator_opts o = {
        .seed = 42, .keys = 10, .value_max = 100, .per_batch = 1000, .total = 2500};
    size_t n1, n2, nb;
    gen_collect(f, &o, k1, v1, CAP, &n1, &nb, s0);
    assert_int_equal(n1, 2500);
    assert_int_equal(nb, 3);
    gen_collect(f, &o, k2, v2, CAP, &n2, &nb, s0);
    assert_int_equal(n2, 2500);
    assert_memory_equal(k1, k2, sizeof(int64_t) * n1);
    assert_memory_equal(v1, v2, sizeof(int64_t) * n1);
    /* Every key shows up over 2500 records. */
    int seen[10] = {0};
    for (size_t i = 0; i < n1; i++)
        seen[k1[i]] = 1;
    for (int i = 0; i < 10; i++)
        assert_true(seen[i]);
    /* String keys: the same key sequence, as "k<N>". */
    o.string_keys = 1;
    gen_collect(f, &o, k2, v2, CAP, &n2, &nb, s1);
    assert_memory_equal(k1, k2, sizeof(int64_t) * n1);
    assert_memory_equal(v1, v2, sizeof(int64_t) * n1);
    assert_true(s1[0] == 'k');
    /* Another seed, other records. */
    o.string_keys = 0;
    o.seed = 43;
    gen_collect(f, &o, k2, v2, CAP, &n2, &nb, s1);
    assert_int_equal(n2, 2500);
    assert_true(memcmp(k1, k2, sizeof(int64_t) * n1) != 0 ||
                memcmp(v1, v2, sizeof(int64_t) * n1) != 0);
    /* total a multiple of per_batch: done with the batch that reaches it. */
    o.total = 2000;
    gen_collect(f, &o, k2, v2, CAP, &n2, &nb, s1);
    assert_int_equal(n2, 2000);
    assert_int_equal(nb, 2);
    /* Paced: 200 records at 20000/s take about 10 ms (not asserted; it must finish). */
    o.total = 200;
    o.per_batch = 50;
    o.rate = 20000;
    gen_collect(f, &o, k2, v2, CAP, &n2, &nb, s1);
    assert_int_equal(n2, 200);
    assert_int_equal(nb, 4);
    sp_diag d = {0};
    sp_source *s = NULL;
    o.keys = 0;
    assert_int_equal(source_generator_new(&f->env, &o, &s, &d), SP_EINVAL);
    assert_null(s);
}

/* ------------------------------------------------------------------ allocation failures */

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

/* Builds, starts and drains a source with the Nth allocation failing, for every N until a
 * run succeeds: each failure is a clean error (ASan checks that nothing leaks). */
typedef int (*make_fn)(batch_env *env, sp_source **out, sp_diag *d);

static void fail_each_allocation(fixture *f, make_fn make)
{
    failalloc fa;
    sp_allocator a = {fail_fn, &fa};
    for (int budget = 0;; budget++) {
        assert_true(budget < 10000);
        fa.left = budget;
        f->env.alloc = &a;
        sp_diag d = {0};
        sp_source *s = NULL;
        int rc = make(&f->env, &s, &d);
        if (rc == 0) rc = s->vt->start(s, &d);
        int done = 0;
        for (int64_t t = 0; rc == 0 && !done; t++) {
            sp_batch *b = NULL;
            rc = batch_new(&f->env, s->td, t, &b, &d);
            if (rc == 0) rc = s->vt->next(s, t, b, &done, &d);
            batch_release(b);
        }
        source_free(s);
        f->env.alloc = NULL;
        if (rc == 0) return;
        assert_int_equal(rc, SP_ENOMEM);
        assert_int_equal(d.code, SP_ENOMEM);
    }
}

static int make_queue(batch_env *env, sp_source **out, sp_diag *d)
{
    return source_queue_new(env, tu_src_path("tests/data/queue-nested-types.jsonl"),
                            "(str,Option[i64],List[f64])", out, d);
}

static int make_queue_inferred(batch_env *env, sp_source **out, sp_diag *d)
{
    return source_queue_new(env, tu_src_path("tests/data/queue-nested.jsonl"), NULL, out, d);
}

static int make_text(batch_env *env, sp_source **out, sp_diag *d)
{
    return source_text_file_new(env, tu_src_path("tests/data/queue-basic.jsonl"), 1, out, d);
}

static int make_gen(batch_env *env, sp_source **out, sp_diag *d)
{
    sp_generator_opts o = {
        .seed = 1, .keys = 5, .string_keys = 1, .value_max = 9, .per_batch = 10, .total = 25};
    return source_generator_new(env, &o, out, d);
}

static void test_allocation_failures(void **state)
{
    fixture *f = *state;
    fail_each_allocation(f, make_queue);
    fail_each_allocation(f, make_queue_inferred);
    fail_each_allocation(f, make_text);
    fail_each_allocation(f, make_gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_explicit_type),
        cmocka_unit_test(test_queue_inferred_nested),
        cmocka_unit_test(test_queue_bool_float),
        cmocka_unit_test(test_queue_option_list),
        cmocka_unit_test(test_queue_malformed),
        cmocka_unit_test(test_queue_nul_byte),
        cmocka_unit_test(test_queue_missing_and_untyped),
        cmocka_unit_test(test_text_file_shapes),
        cmocka_unit_test(test_text_file_big),
        cmocka_unit_test(test_text_file_missing),
        cmocka_unit_test(test_text_file_stream),
        cmocka_unit_test(test_socket_lines),
        cmocka_unit_test(test_socket_refused),
        cmocka_unit_test(test_socket_stop_does_not_hang),
        cmocka_unit_test(test_fd_source),
        cmocka_unit_test(test_line_cap_files),
        cmocka_unit_test(test_line_cap_socket),
        cmocka_unit_test(test_generator),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
