/* jobs_bench.c — jobs end to end through the public API (spate.h), for bench/run.
 *
 *   jobs_bench wordcount FILE OUT [opts]        word count over text lines
 *   jobs_bench ysb FILE ADS OUT [opts]          Yahoo Streaming Benchmark, per-batch part
 *   jobs_bench cluster FILE OUT [opts]          average CPU per job category (task events)
 *   jobs_bench sched [opts]                     a tiny generator job, for per-batch overhead
 *   jobs_bench keys KEYS [opts]                 one batch with KEYS distinct string keys
 * opts: --threads N  --batch MS  --batches N  --batch-lines N (0: the whole file in one batch,
 *       the default)  --per-batch N  --metrics FILE  --no-kernel-cache
 *
 * Jobs write their result rows, tab-separated, to OUT (bench/suite.py sums rows of the same
 * key over batches and compares them with the reference). On stdout one JSON object:
 * {"start_s":..., "run_s":..., "batches":..., "max_rss_kib":...}: start_s is
 * sp_context_start (device, executors, arenas), run_s is sp_context_run (sources, parsing,
 * operators, sinks; kernel builds come from the cache when it is warm). */
#include "spate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------- result writer */

typedef struct writer {
    FILE *f;
    int ncols; /* columns written per row (flattened) */
} writer;

/* Writes every row of the batch: strings as they are, integers in decimal, floats %.17g. */
static int write_rows(void *ud, const sp_batch *b)
{
    writer *w = ud;
    size_t n = sp_batch_count(b);
    int nc = sp_batch_columns(b);
    char buf[64];
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < nc; c++) {
            if (c) fputc('\t', w->f);
            size_t len;
            const char *s = sp_batch_str(b, i, c, &len);
            if (s) {
                fwrite(s, 1, len, w->f);
                continue;
            }
            /* Not a string column: format the element and take the field. Simpler: the
             * value as f64 and i64 both; print the integer when they agree. */
            double f = sp_batch_f64(b, i, c);
            int64_t v = sp_batch_i64(b, i, c);
            if ((double)v == f)
                fprintf(w->f, "%lld", (long long)v);
            else {
                snprintf(buf, sizeof buf, "%.17g", f);
                fputs(buf, w->f);
            }
        }
        fputc('\n', w->f);
    }
    return ferror(w->f) ? -1 : 0;
}

/* --------------------------------------------------------------------------- parsing */

/* Java's String.split(" ") semantics are not needed here: words are separated by runs of
 * spaces and empty words are dropped (what awk's default field splitting does). */
static int split_words(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *s = sp_row_str(in, 0, &len);
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t b = i;
        while (i < len && s[i] != ' ' && s[i] != '\t')
            i++;
        if (i > b) {
            int rc = sp_emit_str(out, s + b, i - b);
            if (rc || (rc = sp_emit_end(out))) return rc;
        }
    }
    return 0;
}

/* The string value of "key":"..." in a flat JSON object line (no escapes inside the values the
 * generator writes). Returns its start and sets *vlen, or NULL. */
static const char *json_str(const char *s, size_t len, const char *key, size_t *vlen)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 3 < len; i++) {
        if (s[i] != '"' || memcmp(s + i + 1, key, kl) || s[i + 1 + kl] != '"') continue;
        size_t j = i + kl + 2;
        while (j < len && (s[j] == ':' || s[j] == ' '))
            j++;
        if (j >= len || s[j] != '"') return NULL;
        size_t e = ++j;
        while (e < len && s[e] != '"')
            e++;
        if (e >= len) return NULL;
        *vlen = e - j;
        return s + j;
    }
    return NULL;
}

/* YSB event line -> (ad_id, event_type, event_time ms). Lines that do not parse are dropped. */
static int ysb_parse(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len, al, tl, ml;
    const char *s = sp_row_str(in, 0, &len);
    const char *ad = json_str(s, len, "ad_id", &al);
    const char *ty = json_str(s, len, "event_type", &tl);
    const char *tm = json_str(s, len, "event_time", &ml);
    if (!ad || !ty || !tm) return 0;
    int64_t t = 0;
    for (size_t i = 0; i < ml && tm[i] >= '0' && tm[i] <= '9'; i++)
        t = t * 10 + (tm[i] - '0');
    int rc = sp_emit_str(out, ad, al);
    if (!rc) rc = sp_emit_str(out, ty, tl);
    if (!rc) rc = sp_emit_i64(out, t);
    if (!rc) rc = sp_emit_end(out);
    return rc;
}

/* ad_id -> campaign_id, an open-addressing table built before the run, read-only during it
 * (so the flatMap that uses it is thread-safe): the join of the benchmark's Redis lookup. */
typedef struct ad_map {
    size_t cap;
    char **ad, **camp;
} ad_map;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int ad_map_load(ad_map *m, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    m->cap = 1 << 16;
    m->ad = calloc(m->cap, sizeof *m->ad);
    m->camp = calloc(m->cap, sizeof *m->camp);
    if (!m->ad || !m->camp) {
        fclose(f);
        return -1;
    }
    char a[128], c[128];
    size_t count = 0;
    while (fscanf(f, "%127s %127s", a, c) == 2) {
        if (++count > m->cap / 2) break;
        size_t h = hash_bytes(a, strlen(a)) & (m->cap - 1);
        while (m->ad[h])
            h = (h + 1) & (m->cap - 1);
        m->ad[h] = strdup(a);
        m->camp[h] = strdup(c);
    }
    fclose(f);
    return 0;
}

static const char *ad_map_get(const ad_map *m, const char *s, size_t n)
{
    size_t h = hash_bytes(s, n) & (m->cap - 1);
    while (m->ad[h]) {
        if (strlen(m->ad[h]) == n && !memcmp(m->ad[h], s, n)) return m->camp[h];
        h = (h + 1) & (m->cap - 1);
    }
    return NULL;
}

static void ad_map_free(ad_map *m)
{
    for (size_t i = 0; m->ad && i < m->cap; i++) {
        free(m->ad[i]);
        free(m->camp[i]);
    }
    free(m->ad);
    free(m->camp);
}

/* (ad_id, window_start) -> ((campaign_id, window_start), 1); unknown ads are dropped. */
static int ysb_join(void *ud, const sp_row *in, sp_emitter *out)
{
    const ad_map *m = ud;
    size_t len;
    const char *ad = sp_row_str(in, 0, &len);
    const char *camp = ad_map_get(m, ad, len);
    if (!camp) return 0;
    int rc = sp_emit_str(out, camp, strlen(camp));
    if (!rc) rc = sp_emit_i64(out, sp_row_i64(in, 1));
    if (!rc) rc = sp_emit_i64(out, 1);
    if (!rc) rc = sp_emit_end(out);
    return rc;
}

/* Task event CSV line: timestamp,job_id,task_index,machine_id,event_type,user,category,
 * priority,cpu,ram,disk,constraint -> (category, cpu). */
static int cluster_parse(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *s = sp_row_str(in, 0, &len);
    const char *f[12];
    size_t fl[12];
    int nf = 0;
    size_t b = 0;
    for (size_t i = 0; i <= len && nf < 12; i++)
        if (i == len || s[i] == ',') {
            f[nf] = s + b;
            fl[nf++] = i - b;
            b = i + 1;
        }
    if (nf < 9) return 0;
    char buf[64];
    size_t n = fl[8] < sizeof buf - 1 ? fl[8] : sizeof buf - 1;
    memcpy(buf, f[8], n);
    buf[n] = 0;
    int64_t cat = 0;
    for (size_t i = 0; i < fl[6]; i++)
        cat = cat * 10 + (f[6][i] - '0');
    int rc = sp_emit_i64(out, cat);
    if (!rc) rc = sp_emit_f64(out, strtod(buf, NULL));
    if (!rc) rc = sp_emit_end(out);
    return rc;
}

static int noop(void *ud, const sp_batch *b)
{
    (void)ud;
    (void)b;
    return 0;
}

/* ------------------------------------------------------------------------------- main */

typedef struct opts {
    sp_config cfg;
    uint64_t per_batch;
} opts;

static int parse_opts(int argc, char **argv, int first, opts *o)
{
    sp_config_init(&o->cfg);
    o->cfg.batch_lines = 0;
    o->cfg.status_line = 0;
    o->per_batch = 1000;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-kernel-cache")) {
            o->cfg.kernel_cache = 0;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--threads"))
            o->cfg.threads = atoi(v);
        else if (!strcmp(a, "--batch"))
            o->cfg.batch_ms = atoll(v);
        else if (!strcmp(a, "--batches"))
            o->cfg.max_batches = atoll(v);
        else if (!strcmp(a, "--batch-lines"))
            o->cfg.batch_lines = (size_t)atoll(v);
        else if (!strcmp(a, "--per-batch"))
            o->per_batch = (uint64_t)atoll(v);
        else if (!strcmp(a, "--metrics"))
            o->cfg.metrics_path = v;
        else
            return -1;
    }
    return 0;
}

static int usage(void)
{
    fputs("usage: jobs_bench wordcount FILE OUT | ysb FILE ADS OUT | cluster FILE OUT | sched | "
          "keys KEYS  [--threads N] [--batch MS] [--batches N] [--batch-lines N] "
          "[--per-batch N] [--metrics FILE] [--no-kernel-cache]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *job = argv[1];
    int npos = !strcmp(job, "wordcount") || !strcmp(job, "cluster") ? 2
               : !strcmp(job, "ysb")                                ? 3
               : !strcmp(job, "keys")                               ? 1
               : !strcmp(job, "sched")                              ? 0
                                                                    : -1;
    if (npos < 0 || argc < 2 + npos) return usage();
    opts o;
    if (parse_opts(argc, argv, 2 + npos, &o)) return usage();
    if (!strcmp(job, "keys") && !o.cfg.max_batches) o.cfg.max_batches = 1;
    if (!strcmp(job, "sched")) o.cfg.clock = SP_CLOCK_SYSTEM; /* real batch times */
    const char *out_path = npos >= 2 ? argv[1 + npos] : NULL;
    writer w = {NULL, 0};
    if (out_path && !(w.f = fopen(out_path, "w"))) {
        fprintf(stderr, "jobs_bench: cannot write %s\n", out_path);
        return 1;
    }
    ad_map ads = {0, NULL, NULL};
    sp_context *ctx = NULL;
    int rc = sp_context_new(&o.cfg, &ctx);
    if (rc) {
        fprintf(stderr, "jobs_bench: %s\n", sp_strerror(rc));
        return 1;
    }
    sp_stream *res = NULL;
    if (!strcmp(job, "wordcount")) {
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *words = lines ? sp_stream_flat_map(lines, "str", split_words, NULL) : NULL;
        sp_expr *pair = sp_expr_tuple2(ctx, sp_expr_arg(ctx, 0), sp_expr_i64(ctx, 1));
        sp_stream *pairs = words ? sp_stream_map(words, pair) : NULL;
        res = pairs ? sp_stream_reduce_by_key_agg(pairs, SP_AGG_SUM) : NULL;
    } else if (!strcmp(job, "ysb")) {
        if (ad_map_load(&ads, argv[3])) {
            fprintf(stderr, "jobs_bench: cannot read %s\n", argv[3]);
            return 1;
        }
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *ev = lines ? sp_stream_flat_map(lines, "(str,str,i64)", ysb_parse, NULL) : NULL;
        sp_expr *x = sp_expr_arg(ctx, 0);
        sp_expr *is_view =
            sp_expr_binop(ctx, SP_OP_EQ, sp_expr_field(ctx, x, 1), sp_expr_str(ctx, "view"));
        sp_stream *views = ev ? sp_stream_filter(ev, is_view) : NULL;
        /* (ad, event_time / 10000 * 10000): the 10 s event-time window the event falls in */
        sp_expr *win = sp_expr_binop(
            ctx, SP_OP_MUL,
            sp_expr_binop(ctx, SP_OP_DIV, sp_expr_field(ctx, x, 2), sp_expr_i64(ctx, 10000)),
            sp_expr_i64(ctx, 10000));
        sp_expr *proj = sp_expr_tuple2(ctx, sp_expr_field(ctx, x, 0), win);
        sp_stream *aw = views ? sp_stream_map(views, proj) : NULL;
        sp_stream *cw = aw ? sp_stream_flat_map(aw, "((str,i64),i64)", ysb_join, &ads) : NULL;
        res = cw ? sp_stream_reduce_by_key_agg(cw, SP_AGG_SUM) : NULL;
    } else if (!strcmp(job, "cluster")) {
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *ev = lines ? sp_stream_flat_map(lines, "(i64,f64)", cluster_parse, NULL) : NULL;
        res = ev ? sp_stream_reduce_by_key_agg(ev, SP_AGG_AVG) : NULL;
    } else {
        sp_generator_opts g = {0};
        g.seed = 7;
        g.keys = !strcmp(job, "keys") ? (uint64_t)atoll(argv[2]) : 1000;
        g.string_keys = 1;
        g.value_max = 100;
        g.per_batch = !strcmp(job, "keys") ? 2 * g.keys : o.per_batch;
        sp_stream *gen = sp_generator(ctx, &g);
        res = gen ? sp_stream_reduce_by_key_agg(gen, SP_AGG_SUM) : NULL;
    }
    if (!res)
        rc = -1;
    else
        rc = w.f ? sp_stream_foreach_rdd(res, write_rows, &w)
                 : sp_stream_foreach_rdd(res, noop, NULL);
    double t0 = now_s(), t1 = t0, t2 = t0;
    if (!rc) rc = sp_context_start(ctx);
    t1 = now_s();
    if (!rc) rc = sp_context_run(ctx);
    t2 = now_s();
    if (rc) fprintf(stderr, "jobs_bench: %s\n", sp_context_errmsg(ctx));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"start_s\":%.6f,\"run_s\":%.6f,\"batches\":%lld,\"max_rss_kib\":%ld}\n", t1 - t0,
           t2 - t1, (long long)sp_context_batches(ctx), ru.ru_maxrss);
    sp_context_free(ctx);
    ad_map_free(&ads);
    if (w.f && fclose(w.f)) rc = -1;
    return rc ? 1 : 0;
}
