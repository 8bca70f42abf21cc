/* Every output operation against every operator family. Each job below ends in one operator
 * (per-batch, window, state, analytics, join, union, transform, event time, and chains of
 * them) whose stream feeds all six sinks at once: print, saveAsTextFiles, CSV, JSON lines,
 * foreachRDD and the report. The inputs are random (fixed seeds), with empty batches, small
 * batches that take the host paths and large ones that take the device paths and several
 * partitions. print is the reference: every other sink must hold the same records for every
 * batch time, and the same set of batch times.
 *
 * Each sink is read back in its own format and reduced to what can be compared:
 *   foreachRDD, saveAsTextFiles   the toString text of every record, exactly;
 *   CSV, JSON lines               the record's leaf values in order (the format differs from
 *                                 toString; leaves do not), batch times of non-empty batches
 *                                 (an empty batch leaves no line in an appending file);
 *   report                        the section's batch count, first and last batch time and
 *                                 element total (an aggregate view: it keeps no records). */
#include "spate.h"
#include "support/jobfix.h"
#include "support/statefix.h"
#include "support/testutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ records */

static const int64_t us_limit = 60; /* state_sum_upto drops a key past it */

typedef struct recs {
    size_t n, cap;
    int64_t *t;
    char **s;
    size_t nt, tcap; /* batch times, in order */
    int64_t *times;
} recs;

static void recs_add(recs *r, int64_t t, const char *s, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->t = realloc(r->t, r->cap * sizeof *r->t);
        r->s = realloc(r->s, r->cap * sizeof *r->s);
        assert_non_null(r->t);
        assert_non_null(r->s);
    }
    r->t[r->n] = t;
    r->s[r->n] = strndup(s, len);
    assert_non_null(r->s[r->n]);
    r->n++;
}

static void recs_time(recs *r, int64_t t)
{
    if (r->nt == r->tcap) {
        r->tcap = r->tcap ? r->tcap * 2 : 64;
        r->times = realloc(r->times, r->tcap * sizeof *r->times);
        assert_non_null(r->times);
    }
    r->times[r->nt++] = t;
}

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->s[i]);
    free(r->s);
    free(r->t);
    free(r->times);
    memset(r, 0, sizeof *r);
}

/* The leaf values of a record in any of the formats, in order, separated by one space:
 * tokens between the delimiters of toString, JSON and CSV, without the names of Scala's
 * containers and without None/null/empty fields (a None is absent in each format alike). */
static char *leaves(const char *s)
{
    static const char *const drop[] = {"ArrayBuffer", "CompactBuffer", "List",   "Some",
                                       "None",        "null",          "Vector", "Seq"};
    size_t n = strlen(s);
    char *out = malloc(n + 2), *o = out;
    assert_non_null(out);
    size_t i = 0;
    while (i < n) {
        while (i < n && strchr("()[],\" ", s[i]))
            i++;
        size_t j = i;
        while (j < n && !strchr("()[],\" ", s[j]))
            j++;
        if (j == i) break;
        int skip = 0;
        for (size_t k = 0; k < sizeof drop / sizeof drop[0]; k++)
            skip |= j - i == strlen(drop[k]) && !memcmp(s + i, drop[k], j - i);
        if (!skip) {
            if (o != out) *o++ = ' ';
            memcpy(o, s + i, j - i);
            o += j - i;
        }
        i = j;
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------------------ reading sinks */

static void read_print(FILE *f, recs *r)
{
    fflush(f);
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t cur = INT64_MIN;
    int in_batch = 0, rules = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        long long t;
        if (!strcmp(line, "-------------------------------------------")) {
            rules++;
            in_batch = rules % 2 == 0;
            continue;
        }
        if (sscanf(line, "Time: %lld ms", &t) == 1 && !in_batch) {
            cur = t;
            recs_time(r, cur);
            continue;
        }
        if (!len) {
            in_batch = 0;
            continue;
        }
        assert_true(in_batch);
        assert_string_not_equal(line, "...");
        recs_add(r, cur, line, (size_t)len);
    }
    free(line);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void read_text_files(const char *dir, recs *r)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        long long t;
        char tail[16];
        if (sscanf(e->d_name, "out-%lld.%15s", &t, tail) == 2) {
            assert_string_equal(tail, "txt");
            recs_time(r, t);
        } else if (strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".old-")) {
            fail_msg("%s: left behind: %s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(r->times, r->nt, sizeof *r->times, cmp_i64);
    for (size_t k = 0; k < r->nt; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/out-%" PRId64 ".txt/_SUCCESS", dir, r->times[k]);
        size_t len;
        char *ok = tu_read_file(path, &len);
        assert_non_null(ok);
        free(ok);
        for (int p = 0;; p++) {
            snprintf(path, sizeof path, "%s/out-%" PRId64 ".txt/part-%05d", dir, r->times[k], p);
            char *text = tu_read_file(path, &len);
            if (!text) break;
            for (char *s = text; *s;) {
                char *nl = strchr(s, '\n');
                assert_non_null(nl); /* every record ends with a newline */
                recs_add(r, r->times[k], s, (size_t)(nl - s));
                s = nl + 1;
            }
            free(text);
        }
    }
}

static void read_csv(const char *path, recs *r)
{
    size_t len;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    char *s = text;
    if (*s) {
        assert_true(!strncmp(s, "time_ms,", 8));
        s = strchr(s, '\n') + 1;
    }
    while (*s) {
        char *nl = strchr(s, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *comma;
        long long t = strtoll(s, &comma, 10);
        assert_true(*comma == ',');
        recs_add(r, t, comma + 1, strlen(comma + 1));
        if (!r->nt || r->times[r->nt - 1] != t) recs_time(r, t);
        s = nl + 1;
    }
    free(text);
}

static void read_jsonl(const char *path, recs *r)
{
    size_t len;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    for (char *s = text; *s;) {
        char *nl = strchr(s, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_error_t err;
        json_t *j = json_loads(s, 0, &err);
        if (!j) fail_msg("%s: not JSON: %s (%s)", path, s, err.text);
        json_t *t = json_object_get(j, "time"), *v = json_object_get(j, "value");
        assert_true(json_is_integer(t));
        assert_non_null(v);
        /* the value's own text (a re-encoding would print doubles its own way) */
        const char *vs = strstr(s, "\"value\":");
        size_t vl = strlen(s);
        assert_non_null(vs);
        assert_true(vl && s[vl - 1] == '}');
        vs += 8;
        int64_t tv = json_integer_value(t);
        recs_add(r, tv, vs, (size_t)(s + vl - 1 - vs));
        if (!r->nt || r->times[r->nt - 1] != tv) recs_time(r, tv);
        json_decref(j);
        s = nl + 1;
    }
    free(text);
}

static int on_rdd(void *ud, const sp_batch *b)
{
    recs *r = ud;
    int64_t t = sp_batch_time(b);
    recs_time(r, t);
    char buf[4096];
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        int len = sp_batch_format(b, i, buf, sizeof buf);
        if (len < 0 || (size_t)len >= sizeof buf) return -1;
        recs_add(r, t, buf, (size_t)len);
    }
    return 0;
}

/* ----------------------------------------------------------------------------- checking */

/* The checks below print what differs and return 1, so that one run lists every cell of
 * the matrix that fails. */
static int mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int mismatch(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int same_times(const char *job, const char *sink, const int64_t *want, size_t nw,
                      const recs *got)
{
    if (got->nt != nw)
        return mismatch("%s: %s saw %zu batch times, print %zu", job, sink, got->nt, nw);
    for (size_t i = 0; i < nw; i++)
        if (got->times[i] != want[i])
            return mismatch("%s: %s batch time %zu is %" PRId64 ", print's %" PRId64, job, sink, i,
                            got->times[i], want[i]);
    return 0;
}

/* got's records equal print's, exactly or leaf by leaf. */
static int same_records(const char *job, const char *sink, const recs *want, const recs *got,
                        int by_leaves)
{
    if (got->n != want->n)
        return mismatch("%s: %s holds %zu records, print %zu", job, sink, got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        if (got->t[i] != want->t[i])
            return mismatch("%s: %s record %zu (%s) at %" PRId64 ", print's (%s) at %" PRId64, job,
                            sink, i, got->s[i], got->t[i], want->s[i], want->t[i]);
        if (!by_leaves) {
            if (strcmp(got->s[i], want->s[i]))
                return mismatch("%s: %s record %zu at %" PRId64 " is %s, print's %s", job, sink, i,
                                got->t[i], got->s[i], want->s[i]);
            continue;
        }
        char *a = leaves(got->s[i]), *b = leaves(want->s[i]);
        int bad = strcmp(a, b) != 0;
        if (bad)
            mismatch("%s: %s record %zu at %" PRId64 " is %s [%s], print's %s [%s]", job, sink, i,
                     got->t[i], got->s[i], a, want->s[i], b);
        free(a);
        free(b);
        if (bad) return 1;
    }
    return 0;
}

static long long attr(const char *html, const char *name)
{
    const char *p = strstr(html, name);
    if (!p) fail_msg("report: no %s attribute", name);
    return strtoll(p + strlen(name) + 2, NULL, 10);
}

static int check_report(const char *job, const char *path, const recs *pr)
{
    size_t len;
    char *html = tu_read_file(path, &len);
    assert_non_null(html);
    const char *sec = strstr(html, "<section id=\"s1\"");
    if (!sec) fail_msg("%s: the report has no section", job);
    long long nb = attr(sec, "data-batches"), rows = attr(sec, "data-rows");
    int bad = 0;
    if (nb != (long long)pr->nt || rows != (long long)pr->n)
        bad = mismatch("%s: the report took %lld batches and %lld elements, print %zu and %zu", job,
                       nb, rows, pr->nt, pr->n);
    else if (pr->nt && (attr(sec, "data-first") != pr->times[0] ||
                        attr(sec, "data-last") != pr->times[pr->nt - 1]))
        bad = mismatch("%s: the report's batch times %lld..%lld, print's %" PRId64 "..%" PRId64,
                       job, attr(sec, "data-first"), attr(sec, "data-last"), pr->times[0],
                       pr->times[pr->nt - 1]);
    free(html);
    return bad;
}

/* -------------------------------------------------------------------------------- inputs */

/* A queue file of nb batches of (str,i64) records: about a third of the batches empty,
 * the others of 1..max records, keys from a domain of nkeys, values in [0, 20). */
static void write_queue(const char *path, uint64_t seed, int nb, int max, int nkeys)
{
    uint64_t rs = seed;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int b = 0; b < nb; b++) {
        fputc('[', f);
        int n = tu_rand_below(&rs, 3) == 0 ? 0 : 1 + (int)tu_rand_below(&rs, (uint64_t)max);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s[\"k%d\",%d]", i ? "," : "", (int)tu_rand_below(&rs, (uint64_t)nkeys),
                    (int)tu_rand_below(&rs, 20));
        fputs("]\n", f);
    }
    fclose(f);
}

/* ------------------------------------------------------------------------ the operators */

#define A0 sp_expr_arg(ctx, 0)
#define A1 sp_expr_arg(ctx, 1)
#define F(e, i) sp_expr_field(ctx, (e), (i))
#define OP(o, a, b) sp_expr_binop(ctx, SP_OP_##o, (a), (b))
#define I(v) sp_expr_i64(ctx, (v))
#define KEY(s) sp_stream_map((s), F(A0, 0))
#define VAL(s) sp_stream_map((s), F(A0, 1))

static sp_expr *sum2(sp_context *ctx)
{
    return OP(ADD, A0, A1);
}

static int fm_keys(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *k = sp_row_str(in, 0, &len);
    int64_t v = sp_row_i64(in, 1);
    for (int64_t i = 0; i <= v % 3; i++)
        if (sp_emit_str(out, k, len) || sp_emit_end(out)) return -1;
    return 0;
}

static int fm_values(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    int64_t v = sp_row_i64(in, 0);
    for (int64_t i = 0; i < v % 3; i++)
        if (sp_emit_i64(out, v * 10 + i) || sp_emit_end(out)) return -1;
    return 0;
}

static int tr_reverse(void *ud, const sp_batch *in, sp_emitter *out)
{
    (void)ud;
    for (size_t i = sp_batch_count(in); i-- > 0;) {
        size_t len;
        const char *k = sp_batch_str(in, i, 0, &len);
        if (sp_emit_str(out, k, len) || sp_emit_i64(out, sp_batch_i64(in, i, 1) + 1) ||
            sp_emit_end(out))
            return -1;
    }
    return 0;
}

typedef sp_stream *(*build_fn)(sp_context *ctx, sp_stream *a, sp_stream *b);

static sp_stream *b_map(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_map(a, sp_expr_tuple2(ctx, F(A0, 0), OP(MUL, F(A0, 1), I(2))));
}
static sp_stream *b_filter(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_filter(a, OP(EQ, OP(MOD, F(A0, 1), I(2)), I(0)));
}
static sp_stream *b_map_values(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_map_values(a, OP(ADD, A0, I(1)));
}
static sp_stream *b_flat_map(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_flat_map(a, "str", fm_keys, NULL);
}
static sp_stream *b_flat_map_values(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_flat_map_values(a, "i64", fm_values, NULL);
}
static sp_stream *b_count(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_count(a);
}
static sp_stream *b_reduce(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce(VAL(a), sum2(ctx));
}
static sp_stream *b_count_by_value(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_count_by_value(KEY(a));
}
static sp_stream *b_rbk_sum(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_agg(a, SP_AGG_SUM);
}
static sp_stream *b_rbk_min(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_agg(a, SP_AGG_MIN);
}
static sp_stream *b_rbk_avg(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_agg(a, SP_AGG_AVG);
}
static sp_stream *b_rbk_lambda(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_key(a, sum2(ctx));
}
static sp_stream *b_rbk_max_lambda(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_key(a, OP(MAX, A0, A1));
}
static sp_stream *b_group_by_key(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_group_by_key(a);
}
static sp_stream *b_union(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_union(a, b);
}
static sp_stream *b_transform(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_transform(a, "(str,i64)", tr_reverse, NULL);
}
static sp_stream *b_join(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_join(a, b);
}
static sp_stream *b_left_join(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_left_outer_join(a, b);
}
static sp_stream *b_right_join(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_right_outer_join(a, b);
}
static sp_stream *b_full_join(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_full_outer_join(a, b);
}
static sp_stream *b_cogroup(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_cogroup(a, b);
}
static sp_stream *b_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_window(a, 2000, 1000);
}
static sp_stream *b_window_slide2(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_window(a, 3000, 2000);
}
static sp_stream *b_count_by_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_count_by_window(a, 3000, 1000);
}
static sp_stream *b_reduce_by_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_window(VAL(a), sum2(ctx), NULL, 3000, 1000);
}
static sp_stream *b_reduce_by_window_inv(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_window(VAL(a), sum2(ctx), OP(SUB, A0, A1), 3000, 1000);
}
static sp_stream *b_rbkw(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_key_and_window(a, sum2(ctx), NULL, 2000, 1000, NULL);
}
static sp_stream *b_rbkw_inv(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_key_and_window(a, sum2(ctx), OP(SUB, A0, A1), 3000, 1000, NULL);
}
static sp_stream *b_rbkw_inv_filter(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    /* values >= 1: a key the filter drops has no values left in the window (Spark fails on
     * one that has: host/semantics.md) */
    sp_stream *pos = sp_stream_map_values(a, OP(ADD, A0, I(1)));
    return sp_stream_reduce_by_key_and_window(pos, sum2(ctx), OP(SUB, A0, A1), 3000, 1000,
                                              OP(NE, F(A0, 1), I(0)));
}
static sp_stream *b_rbkw_slide2(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_reduce_by_key_and_window(a, sum2(ctx), NULL, 4000, 2000, NULL);
}
static sp_stream *b_rbkw_sum(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_SUM, 3000, 1000);
}
static sp_stream *b_rbkw_min(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_MIN, 3000, 1000);
}
static sp_stream *b_rbkw_avg(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_AVG, 2000, 2000);
}
static sp_stream *b_cbvw(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_count_by_value_and_window(KEY(a), 3000, 1000);
}
static sp_stream *b_gbkw(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_group_by_key_and_window(a, 2000, 1000);
}
static sp_stream *b_update_state(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_update_state_by_key(a, "i64", state_sum_upto, (void *)&us_limit, NULL);
}
static sp_stream *b_update_state_expr(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    sp_expr *sum = sp_expr_call(ctx, "sum", 1, (sp_expr *[]){A0});
    sp_expr *prev = sp_expr_call(ctx, "getOrElse", 2, (sp_expr *[]){A1, I(0)});
    sp_expr *next = OP(ADD, sum, prev);
    /* (values, state) => if (sum + prev > 40) None else Some(sum + prev) */
    sp_expr *f = sp_expr_if(ctx, OP(GT, next, I(40)), sp_expr_call(ctx, "None", 0, NULL),
                            sp_expr_call(ctx, "Some", 1, (sp_expr *[]){next}));
    return sp_stream_update_state_by_key_expr(a, NULL, f, NULL);
}
static sp_stream *b_distinct(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_count_approx_distinct(KEY(a), 0.05);
}
static sp_stream *b_distinct_by_key(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_count_approx_distinct_by_key(a, 0.05);
}
static sp_stream *b_distinct_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_count_approx_distinct_and_window(KEY(a), 0.05, 3000, 1000);
}
static sp_stream *b_distinct_by_key_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_count_approx_distinct_by_key_and_window(a, 0.05, 3000, 1000);
}
static const double qs[] = {0.5, 0.9};
static sp_stream *b_quantiles(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_approx_quantiles_by_key(a, 2, qs, 0.01);
}
static sp_stream *b_quantiles_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_approx_quantiles_by_key_and_window(a, 2, qs, 0.01, 3000, 1000);
}
static sp_stream *b_top_k(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_top_k(sp_stream_reduce_by_key(a, sum2(ctx)), 3);
}
static sp_stream *b_top_k_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    (void)b;
    return sp_stream_top_k(sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_SUM, 3000, 1000), 3);
}
/* Chains: element-wise after a window, a window after a join, a join of windows. */
static sp_stream *b_window_then_map(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    return sp_stream_map(sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_SUM, 2000, 1000), A0);
}
static sp_stream *b_join_then_window(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    sp_stream *j = sp_stream_map_values(sp_stream_join(a, b), OP(ADD, F(A0, 0), F(A0, 1)));
    return sp_stream_reduce_by_key_and_window(j, sum2(ctx), OP(SUB, A0, A1), 2000, 1000, NULL);
}
static sp_stream *b_join_of_windows(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_join(sp_stream_reduce_by_key_and_window_agg(a, SP_AGG_SUM, 2000, 1000),
                          sp_stream_reduce_by_key_and_window_agg(b, SP_AGG_MAX, 2000, 1000));
}
static sp_stream *b_union_of_state(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)ctx;
    return sp_stream_union(
        sp_stream_update_state_by_key(a, "i64", state_sum_upto, (void *)&us_limit, NULL),
        sp_stream_reduce_by_key_and_window_agg(b, SP_AGG_COUNT, 2000, 1000));
}
/* Event time: the value picks the record's timestamp (0..19 x 250 ms: the first 5 s). */
static sp_stream *b_event_time(sp_context *ctx, sp_stream *a, sp_stream *b)
{
    (void)b;
    sp_stream *ts = sp_stream_map(a, sp_expr_tuple2(ctx, F(A0, 0), OP(MUL, F(A0, 1), I(250))));
    return sp_stream_reduce_by_key_agg(sp_stream_event_time(ts, 1, 1000), SP_AGG_COUNT);
}

typedef struct job {
    const char *name;
    build_fn build;
} job;

#define J(x)                                                                                       \
    {                                                                                              \
#x, b_##x                                                                                  \
    }
static const job jobs[] = {
    J(map),
    J(filter),
    J(map_values),
    J(flat_map),
    J(flat_map_values),
    J(count),
    J(reduce),
    J(count_by_value),
    J(rbk_sum),
    J(rbk_min),
    J(rbk_avg),
    J(rbk_lambda),
    J(rbk_max_lambda),
    J(group_by_key),
    J(union),
    J(transform),
    J(join),
    J(left_join),
    J(right_join),
    J(full_join),
    J(cogroup),
    J(window),
    J(window_slide2),
    J(count_by_window),
    J(reduce_by_window),
    J(reduce_by_window_inv),
    J(rbkw),
    J(rbkw_inv),
    J(rbkw_inv_filter),
    J(rbkw_slide2),
    J(rbkw_sum),
    J(rbkw_min),
    J(rbkw_avg),
    J(cbvw),
    J(gbkw),
    J(update_state),
    J(update_state_expr),
    J(distinct),
    J(distinct_by_key),
    J(distinct_window),
    J(distinct_by_key_window),
    J(quantiles),
    J(quantiles_window),
    J(top_k),
    J(top_k_window),
    J(window_then_map),
    J(join_then_window),
    J(join_of_windows),
    J(union_of_state),
    J(event_time),
};

/* ---------------------------------------------------------------------------- the matrix */

typedef struct shape {
    uint64_t seed;
    int batches, max_rows, keys;
} shape;

/* Runs one cell; returns the number of sinks that disagree with print. */
static int run_cell(const job *jb, const shape *sh)
{
    char tag[128], job_name[160];
    snprintf(tag, sizeof tag, "m-%s-%" PRIu64, jb->name, sh->seed);
    snprintf(job_name, sizeof job_name, "%s (seed %" PRIu64 ", up to %d rows)", jb->name, sh->seed,
             sh->max_rows);
    const char *dir = tu_tmpdir(tag);
    char qa[512], qb[512], prefix[512], csv[512], jsonl[512], html[512];
    snprintf(qa, sizeof qa, "%s/a.jsonl", dir);
    snprintf(qb, sizeof qb, "%s/b.jsonl", dir);
    snprintf(prefix, sizeof prefix, "%s/out", dir);
    snprintf(csv, sizeof csv, "%s/o.csv", dir);
    snprintf(jsonl, sizeof jsonl, "%s/o.jsonl", dir);
    snprintf(html, sizeof html, "%s/r.html", dir);
    write_queue(qa, sh->seed, sh->batches, sh->max_rows, sh->keys);
    write_queue(qb, sh->seed * 7919 + 1, sh->batches, sh->max_rows, sh->keys);

    FILE *pf = tmpfile();
    assert_non_null(pf);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.status_line = 0;
    cfg.out = pf;
    cfg.max_batches = sh->batches + 3; /* windows keep emitting after the input ends */
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    sp_stream *a = sp_queue_stream(ctx, qa, "(str,i64)");
    sp_stream *b = sp_queue_stream(ctx, qb, "(str,i64)");
    sp_stream *o = a && b ? jb->build(ctx, a, b) : NULL;
    if (!o) fail_msg("%s: %s", job_name, sp_context_errmsg(ctx));
    recs pr = {0}, fr = {0}, tr = {0}, cr = {0}, jr = {0};
    assert_int_equal(sp_stream_print(o, 1000000), SP_OK);
    assert_int_equal(sp_stream_save_as_text_files(o, prefix, "txt"), SP_OK);
    assert_int_equal(sp_stream_save_csv(o, csv), SP_OK);
    assert_int_equal(sp_stream_save_jsonl(o, jsonl), SP_OK);
    assert_int_equal(sp_stream_foreach_rdd(o, on_rdd, &fr), SP_OK);
    assert_int_equal(sp_stream_report(o, html, "matrix"), SP_OK);
    run_ok(ctx);
    sp_context_free(ctx);

    read_print(pf, &pr);
    fclose(pf);
    if (!pr.nt) fail_msg("%s: print saw no batch", job_name);
    read_text_files(dir, &tr);
    read_csv(csv, &cr);
    read_jsonl(jsonl, &jr);

    int bad = same_times(job_name, "foreachRDD", pr.times, pr.nt, &fr) ||
              same_records(job_name, "foreachRDD", &pr, &fr, 0);
    bad += same_times(job_name, "saveAsTextFiles", pr.times, pr.nt, &tr) ||
           same_records(job_name, "saveAsTextFiles", &pr, &tr, 0);
    /* appending files: the times of non-empty batches */
    int64_t *ne = calloc(pr.nt + 1, sizeof *ne);
    assert_non_null(ne);
    size_t nne = 0;
    for (size_t i = 0; i < pr.n; i++)
        if (!nne || ne[nne - 1] != pr.t[i]) ne[nne++] = pr.t[i];
    bad += same_times(job_name, "saveCsv", ne, nne, &cr) ||
           same_records(job_name, "saveCsv", &pr, &cr, 1);
    bad += same_times(job_name, "saveJsonl", ne, nne, &jr) ||
           same_records(job_name, "saveJsonl", &pr, &jr, 1);
    free(ne);
    bad += check_report(job_name, html, &pr);

    recs_free(&pr);
    recs_free(&fr);
    recs_free(&tr);
    recs_free(&cr);
    recs_free(&jr);
    return bad;
}

static void run_matrix(const shape *sh)
{
    int bad = 0;
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++)
        bad += run_cell(&jobs[j], sh);
    if (bad) fail_msg("%d (operator, sink) cells disagree with print", bad);
}

/* Small batches: the host paths of every operator. */
static void test_small_batches_seed1(void **state)
{
    (void)state;
    run_matrix(&(shape){1, 9, 12, 6});
}

static void test_small_batches_seed2(void **state)
{
    (void)state;
    run_matrix(&(shape){2, 7, 5, 3});
}

/* Large batches: kernels, several partitions, many keys. */
static void test_large_batches(void **state)
{
    (void)state;
    run_matrix(&(shape){3, 6, 3000, 400});
}

/* The leaf reduction itself: the three formats of one record agree, and differ when a
 * value does. */
static void test_leaves(void **state)
{
    (void)state;
    const char *same[][3] = {
        {"(k1,(3,CompactBuffer(1, 2)))", "[\"k1\",[3,[1,2]]]", "k1,3,\"[1,2]\""},
        {"(k2,(Some(4),None))", "[\"k2\",[4,null]]", "k2,4,"},
        {"(k3,ArrayBuffer(2.5, 1.0E7))", "[\"k3\",[2.5,1.0E7]]", "k3,\"[2.5,1.0E7]\""},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char *a = leaves(same[i][0]), *b = leaves(same[i][1]), *c = leaves(same[i][2]);
        assert_string_equal(a, b);
        assert_string_equal(a, c);
        free(a);
        free(b);
        free(c);
    }
    char *a = leaves("(k1,3)"), *b = leaves("[\"k1\",4]");
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaves),
        cmocka_unit_test(test_small_batches_seed1),
        cmocka_unit_test(test_small_batches_seed2),
        cmocka_unit_test(test_large_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
