/* jobs_bench.c — jobs end to end through the public API (spate.h), for bench/run.
 *
 *   jobs_bench wordcount FILE OUT [opts]        word count over text lines
 *   jobs_bench ysb FILE ADS OUT [opts]          Yahoo Streaming Benchmark: JSON events, views
 *                                               joined to campaigns, counted per campaign in
 *                                               10 s tumbling event-time windows
 *   jobs_bench ysbparse FILE [opts]             the YSB job's parse alone (flatMap, count)
 *   jobs_bench cluster FILE OUT [opts]          average CPU per job category over a sliding
 *                                               window of --window batches (--batch-lines
 *                                               lines each), sliding by one batch
 *   jobs_bench sched [opts]                     a tiny generator job, for per-batch overhead
 *   jobs_bench keys KEYS [opts]                 one batch with KEYS distinct string keys
 *   jobs_bench soak [opts]                      a generator job at full speed for --seconds:
 *                                               reduceByKey and a sliding reduceByKeyAndWindow
 *   jobs_bench rsoak OP [opts]                  rotating keys for --seconds: every batch draws
 *                                               --keys new string keys (none seen before),
 *                                               into OP = reduce | window | rkw | state:
 *                                               reduceByKey, window(--window batches) then
 *                                               reduceByKey, reduceByKeyAndWindow over
 *                                               --window batches, updateStateByKey whose
 *                                               update removes keys without new values. Every
 *                                               output batch is checked (value sum against
 *                                               the generator's, every key string in the
 *                                               range the window's batches drew from)
 *   jobs_bench rsoak logs [opts]                the flagship log job's shape over rotating
 *                                               keys: every batch --per-batch requests from as
 *                                               many new client addresses (paths: one per 8
 *                                               requests, also new), event-time batches, then
 *                                               unique clients (HLL) and bytes quantiles
 *                                               (DDSketch) per path over --window batches,
 *                                               and the top 10 paths of the window; every
 *                                               output batch checked (see ls_check_*)
 * opts: --threads N  --batch MS  --batches N  --batch-lines N (0: the whole file in one batch,
 *       the default)  --per-batch N  --metrics FILE  --no-kernel-cache  --window R
 *       --seconds S  --keys K  --no-reclaim
 *
 * Jobs write their result rows, tab-separated, to OUT (bench/suite.py sums rows of the same
 * key over batches and compares them with the reference); windowed jobs write the window's
 * time as a key column (ysb: the window start after the campaign; cluster: the batch time
 * first). On stdout one JSON object:
 * {"start_s":..., "run_s":..., "batches":..., "max_rss_kib":...}: start_s is
 * sp_context_start (device, executors, arenas), run_s is sp_context_run (sources, parsing,
 * operators, sinks; kernel builds come from the cache when it is warm). */
#include "benchutil.h"
#include "spate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ------------------------------------------------------------------------- result writer */

typedef struct writer {
    FILE *f;
    int time_at;      /* column before which the batch time is written; -1: not written */
    int64_t time_sub; /* written: batch time - time_sub (a window's start) */
} writer;

/* Writes every row of the batch: strings as they are, integers in decimal, floats %.17g. */
static int write_rows(void *ud, const sp_batch *b)
{
    writer *w = ud;
    size_t n = sp_batch_count(b);
    int nc = sp_batch_columns(b);
    char buf[64];
    long long t = (long long)(sp_batch_time(b) - w->time_sub);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < nc; c++) {
            if (c == w->time_at) fprintf(w->f, c ? "\t%lld" : "%lld", t);
            if (c || w->time_at == 0) fputc('\t', w->f);
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

/* ad_id -> (campaign_id, 1); unknown ads are dropped. */
static int ysb_join(void *ud, const sp_row *in, sp_emitter *out)
{
    const ad_map *m = ud;
    size_t len;
    const char *ad = sp_row_str(in, 0, &len);
    const char *camp = ad_map_get(m, ad, len);
    if (!camp) return 0;
    int rc = sp_emit_str(out, camp, strlen(camp));
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

/* soak: stops the context once the deadline has passed (checked after every batch). */
typedef struct soak {
    sp_context *ctx;
    double deadline;
    uint64_t rows;
} soak;

/* ysbparse: adds up count()'s values. */
static int sum_counts(void *ud, const sp_batch *b)
{
    soak *k = ud;
    for (size_t i = 0; i < sp_batch_count(b); i++)
        k->rows += (uint64_t)sp_batch_i64(b, i, 0);
    return 0;
}

static int soak_tick(void *ud, const sp_batch *b)
{
    soak *k = ud;
    k->rows += sp_batch_count(b);
    if (bench_now() >= k->deadline) sp_context_stop(k->ctx);
    return 0;
}

/* ------------------------------------------------------------------- rotating-key soak */

enum { RS_RING = 64 };

typedef struct rsoak {
    sp_context *ctx;
    double deadline;
    int64_t batch_ms;
    uint64_t keys;     /* keys drawn per batch, also the rotation */
    int window;        /* batches in the window (1: none) */
    int state_sum_col; /* output value column */
    int64_t in_n[RS_RING], in_sum[RS_RING];
    uint64_t batches, checked, errors, rows;
} rsoak;

/* Generator tap (registered first, so it runs before the output of the same batch time). */
static int rs_tap(void *ud, const sp_batch *b)
{
    rsoak *k = ud;
    int64_t bi = sp_batch_time(b) / k->batch_ms - 1; /* the generator's batch number */
    int64_t sum = 0;
    size_t n = sp_batch_count(b);
    for (size_t i = 0; i < n; i++)
        sum += sp_batch_i64(b, i, 1);
    k->in_n[bi % RS_RING] = (int64_t)n;
    k->in_sum[bi % RS_RING] = sum;
    return 0;
}

static int rs_check(void *ud, const sp_batch *b)
{
    rsoak *k = ud;
    int64_t bi = sp_batch_time(b) / k->batch_ms - 1;
    int64_t first = bi - k->window + 1 < 0 ? 0 : bi - k->window + 1;
    uint64_t lo = (uint64_t)first * k->keys, hi = (uint64_t)(bi + 1) * k->keys;
    int64_t want = 0, sum = 0;
    for (int64_t j = first; j <= bi; j++)
        want += k->in_sum[j % RS_RING];
    size_t n = sp_batch_count(b);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = sp_batch_str(b, i, 0, &len);
        uint64_t v = 0;
        int ok = s && len >= 2 && len < 24 && s[0] == 'k';
        for (size_t c = 1; ok && c < len; c++) {
            ok = s[c] >= '0' && s[c] <= '9';
            v = v * 10 + (uint64_t)(s[c] - '0');
        }
        if (!ok || v < lo || v >= hi) bad = 1;
        sum += sp_batch_i64(b, i, k->state_sum_col);
    }
    if (sum != want) bad = 1;
    if (bad && k->errors < 5)
        fprintf(stderr, "jobs_bench rsoak: batch %lld: value sum %lld, want %lld%s\n",
                (long long)bi, (long long)sum, (long long)want,
                sum == want ? " (a key outside the window's range)" : "");
    k->errors += (uint64_t)bad;
    k->checked++;
    k->rows += n;
    if (bench_now() >= k->deadline) sp_context_stop(k->ctx);
    return 0;
}

/* updateStateByKey: the state is the sum of the key's values in this batch; a key without
 * new values is removed (live state: the keys of the current batch). */
static int rs_update(void *ud, int64_t t, const sp_row *key, const sp_row *const *vals, size_t nv,
                     const sp_row *state, sp_emitter *out)
{
    (void)ud;
    (void)t;
    (void)key;
    (void)state;
    if (!nv) return 0;
    int64_t sum = 0;
    for (size_t i = 0; i < nv; i++)
        sum += sp_row_i64(vals[i], 0);
    int rc = sp_emit_i64(out, sum);
    if (!rc) rc = sp_emit_end(out);
    return rc;
}

/* ------------------------------------------------------- rotating keys, log-job shape */

/* Request N (N = j x per_batch + i for row i of generator batch j, each N once) comes from
 * client N (an address, a.b.c.d of N's bytes) for path "/item/<N / 8>" with N % 1000 + 1
 * bytes, stamped in event batch E = j (time LS_ORIGIN + (E + 1) x B), one in four (N % 4 == 0)
 * an interval earlier (E = j - 1): with the watermark of two intervals the event-time buckets
 * hold rows across batch times and none is late. A path's 8 requests then fall in E = j - 1
 * (2) and E = j (6), its bytes in [(8 n) % 1000 + 1, (8 n) % 1000 + 8]. The window of W event
 * batches ending at E holds paths of generator batches max(0, E - W + 1) .. E + 1, all 8
 * requests of those of batches E - W + 2 .. E. */
enum { LS_PATH = 8 };
#define LS_ORIGIN_BATCHES 3600 /* event time starts an hour of batches after epoch 0 */

typedef struct lsoak {
    rsoak *k;              /* deadline, batch_ms, window, counters */
    uint64_t per;          /* requests per generator batch */
    int64_t ev_n[RS_RING]; /* requests per event batch E, at E mod RS_RING */
    int64_t last_ev;       /* the latest event batch seen by the tap */
} lsoak;

static int ls_transform(void *ud, const sp_batch *in, sp_emitter *out)
{
    lsoak *L = ud;
    int64_t B = L->k->batch_ms;
    int64_t j = sp_batch_time(in) / B - 1;
    size_t n = sp_batch_count(in);
    char ip[32], path[32];
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t N = (uint64_t)j * L->per + i;
        int64_t ts =
            (LS_ORIGIN_BATCHES + j) * B + (int64_t)(N * 7919 % (uint64_t)B) - (N % 4 == 0 ? B : 0);
        int li = snprintf(ip, sizeof ip, "%u.%u.%u.%u", (unsigned)(N >> 24 & 255),
                          (unsigned)(N >> 16 & 255), (unsigned)(N >> 8 & 255), (unsigned)(N & 255));
        int lp = snprintf(path, sizeof path, "/item/%llu", (unsigned long long)(N / LS_PATH));
        rc = sp_emit_i64(out, ts);
        if (!rc) rc = sp_emit_str(out, ip, (size_t)li);
        if (!rc) rc = sp_emit_str(out, path, (size_t)lp);
        if (!rc) rc = sp_emit_i64(out, (int64_t)(N % 1000 + 1));
        if (!rc) rc = sp_emit_end(out);
    }
    return rc;
}

static int64_t ls_event(const lsoak *L, const sp_batch *b)
{
    return sp_batch_time(b) / L->k->batch_ms - LS_ORIGIN_BATCHES - 1;
}

/* Event-time tap (registered first): requests per event batch. */
static int ls_tap(void *ud, const sp_batch *b)
{
    lsoak *L = ud;
    int64_t e = ls_event(L, b);
    L->ev_n[(e + RS_RING) % RS_RING] = (int64_t)sp_batch_count(b);
    L->last_ev = e;
    return 0;
}

/* Path n of "/item/<n>", or -1. */
static int64_t ls_path(const sp_batch *b, size_t i)
{
    size_t len;
    const char *s = sp_batch_str(b, i, 0, &len);
    if (!s || len < 7 || len > 26 || memcmp(s, "/item/", 6)) return -1;
    int64_t v = 0;
    for (size_t c = 6; c < len; c++) {
        if (s[c] < '0' || s[c] > '9') return -1;
        v = v * 10 + (s[c] - '0');
    }
    return v;
}

/* Every key a path of the window's generator batches. */
static int ls_keys_in_window(const lsoak *L, const sp_batch *b, int64_t e)
{
    int64_t per_path = (int64_t)L->per / LS_PATH, first = e - L->k->window + 1;
    int64_t lo = (first < 0 ? 0 : first) * per_path, hi = (e + 2) * per_path;
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        int64_t p = ls_path(b, i);
        if (p < lo || p >= hi) return 0;
    }
    return 1;
}

static void ls_result(lsoak *L, const char *what, int64_t e, int bad, const sp_batch *b)
{
    rsoak *k = L->k;
    if (bad && k->errors < 5)
        fprintf(stderr, "jobs_bench rsoak logs: event batch %lld: %s wrong (%zu rows)\n",
                (long long)e, what, sp_batch_count(b));
    k->errors += (uint64_t)bad;
    k->checked++;
    k->rows += sp_batch_count(b);
    if (bench_now() >= k->deadline) sp_context_stop(k->ctx);
}

/* Unique clients per path: each estimate in [1, 2 x 8], their sum within 2% of the window's
 * requests (every request has its own client). */
static int ls_check_distinct(void *ud, const sp_batch *b)
{
    lsoak *L = ud;
    int64_t e = ls_event(L, b), want = 0, sum = 0;
    for (int64_t x = e - L->k->window + 1; x <= e; x++)
        if (x >= -1) want += L->ev_n[(x + RS_RING) % RS_RING];
    int bad = e != L->last_ev || !ls_keys_in_window(L, b, e);
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        int64_t v = sp_batch_i64(b, i, 1);
        if (v < 1 || v > 2 * LS_PATH) bad = 1;
        sum += v;
    }
    if (llabs(sum - want) > want / 50 + 10) bad = 1;
    ls_result(L, "countApproxDistinctByKeyAndWindow", e, bad, b);
    return 0;
}

/* Bytes quantiles per path: both within the relative accuracy of the path's byte range. */
static int ls_check_quantiles(void *ud, const sp_batch *b)
{
    lsoak *L = ud;
    int64_t e = ls_event(L, b);
    int bad = !ls_keys_in_window(L, b, e) || sp_batch_count(b) == 0;
    for (size_t i = 0; i < sp_batch_count(b) && !bad; i++) {
        int64_t p = ls_path(b, i);
        double lo = (double)(p * LS_PATH % 1000 + 1), hi = lo + LS_PATH - 1;
        for (int c = 1; c <= 2; c++) {
            double q = sp_batch_f64(b, i, c);
            if (!(q >= lo * 0.99 && q <= hi * 1.01)) bad = 1;
        }
    }
    ls_result(L, "approxQuantilesByKeyAndWindow", e, bad, b);
    return 0;
}

/* Top 10 paths by requests over the window: 10 rows, each a path of the window with all its
 * requests in it (8; 2 in the first window, which holds only early requests). */
static int ls_check_topk(void *ud, const sp_batch *b)
{
    lsoak *L = ud;
    int64_t e = ls_event(L, b);
    int64_t full = e >= 0 ? LS_PATH : 2;
    int bad = sp_batch_count(b) != 10 || !ls_keys_in_window(L, b, e);
    for (size_t i = 0; i < sp_batch_count(b); i++)
        if (sp_batch_i64(b, i, 1) != full) bad = 1;
    ls_result(L, "topK", e, bad, b);
    return 0;
}

/* ------------------------------------------------------------------------------- main */

typedef struct opts {
    sp_config cfg;
    uint64_t per_batch;
    int window;     /* cluster: window length in batches */
    double seconds; /* soak: run time */
    uint64_t keys;  /* soak: key domain */
} opts;

static int parse_opts(int argc, char **argv, int first, opts *o)
{
    sp_config_init(&o->cfg);
    o->cfg.batch_lines = 0;
    o->cfg.status_line = 0;
    o->per_batch = 1000;
    o->window = 10;
    o->seconds = 60;
    o->keys = 100000;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-kernel-cache")) {
            o->cfg.kernel_cache = 0;
            continue;
        }
        if (!strcmp(a, "--no-reclaim")) { /* the growth before reclaiming, for comparison */
            o->cfg.reclaim_every = -1;
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
        else if (!strcmp(a, "--window"))
            o->window = atoi(v);
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--keys"))
            o->keys = (uint64_t)atoll(v);
        else
            return -1;
    }
    return 0;
}

static int usage(void)
{
    fputs("usage: jobs_bench wordcount FILE OUT | ysb FILE ADS OUT | ysbparse FILE | "
          "cluster FILE OUT | sched | keys KEYS | soak | rsoak reduce|window|rkw|state|logs  "
          "[--threads "
          "N] [--batch MS] "
          "[--batches N] [--batch-lines N] [--per-batch N] [--metrics FILE] "
          "[--no-kernel-cache] [--no-reclaim] [--window R] [--seconds S] [--keys K]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *job = argv[1];
    int npos = !strcmp(job, "wordcount") || !strcmp(job, "cluster") ? 2
               : !strcmp(job, "ysb")                                ? 3
               : !strcmp(job, "keys") || !strcmp(job, "ysbparse")   ? 1
               : !strcmp(job, "rsoak")                              ? 1
               : !strcmp(job, "sched") || !strcmp(job, "soak")      ? 0
                                                                    : -1;
    if (npos < 0 || argc < 2 + npos) return usage();
    opts o;
    if (parse_opts(argc, argv, 2 + npos, &o)) return usage();
    if (!strcmp(job, "keys") && !o.cfg.max_batches) o.cfg.max_batches = 1;
    if (!strcmp(job, "sched")) o.cfg.clock = SP_CLOCK_SYSTEM; /* real batch times */
    const char *out_path = npos >= 2 ? argv[1 + npos] : NULL;
    writer w = {NULL, -1, 0};
    if (out_path && !(w.f = fopen(out_path, "w"))) {
        fprintf(stderr, "jobs_bench: cannot write %s\n", out_path);
        return 1;
    }
    ad_map ads = {0, NULL, NULL};
    soak soak_state = {NULL, 0, 0};
    static rsoak rs;
    static lsoak ls;
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
        /* Event time on the event's own timestamp: batch T holds [T - 1 s, T); the 10 s
         * tumbling window emitted at T (a multiple of 10 s, epoch-aligned) is written with
         * its start T - 10 s, as the benchmark keys its windows. */
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *ev = lines ? sp_stream_flat_map(lines, "(str,str,i64)", ysb_parse, NULL) : NULL;
        sp_stream *et = ev ? sp_stream_event_time(ev, 2, 0) : NULL;
        sp_expr *x = sp_expr_arg(ctx, 0);
        sp_expr *is_view =
            sp_expr_binop(ctx, SP_OP_EQ, sp_expr_field(ctx, x, 1), sp_expr_str(ctx, "view"));
        sp_stream *views = et ? sp_stream_filter(et, is_view) : NULL;
        sp_stream *ad = views ? sp_stream_map(views, sp_expr_field(ctx, x, 0)) : NULL;
        sp_stream *cw = ad ? sp_stream_flat_map(ad, "(str,i64)", ysb_join, &ads) : NULL;
        res = cw ? sp_stream_reduce_by_key_and_window_agg(cw, SP_AGG_SUM, 10000, 10000) : NULL;
        w.time_at = 1;
        w.time_sub = 10000;
    } else if (!strcmp(job, "ysbparse")) {
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *ev = lines ? sp_stream_flat_map(lines, "(str,str,i64)", ysb_parse, NULL) : NULL;
        res = ev ? sp_stream_count(ev) : NULL;
    } else if (!strcmp(job, "cluster")) {
        /* batch k (time k s) holds lines [(k-1)L, kL); the window at k the batches
         * k-R+1 .. k (fewer at the start). */
        sp_stream *lines = sp_text_file(ctx, argv[2]);
        sp_stream *ev = lines ? sp_stream_flat_map(lines, "(i64,f64)", cluster_parse, NULL) : NULL;
        res = ev ? sp_stream_reduce_by_key_and_window_agg(
                       ev, SP_AGG_AVG, (int64_t)o.window * o.cfg.batch_ms, o.cfg.batch_ms)
                 : NULL;
        w.time_at = 0;
    } else if (!strcmp(job, "rsoak") && !strcmp(argv[2], "logs")) {
        /* The flagship log job's shape (data/jobs/access_report.spate) over rotating keys. */
        static const double qs[] = {0.5, 0.95};
        int64_t B = o.cfg.batch_ms, W = (int64_t)o.window * B;
        if (o.window < 2 || o.window > RS_RING / 2 || o.per_batch % LS_PATH) return usage();
        sp_generator_opts g = {0};
        g.seed = 7;
        g.keys = 1; /* only the row count is used */
        g.value_max = 1;
        g.per_batch = o.per_batch;
        rs.ctx = ctx;
        rs.batch_ms = B;
        rs.window = o.window;
        ls.k = &rs;
        ls.per = o.per_batch;
        ls.last_ev = INT64_MIN;
        sp_stream *gen = sp_generator(ctx, &g);
        sp_stream *reqs =
            gen ? sp_stream_transform(gen, "(i64,str,str,i64)", ls_transform, &ls) : NULL;
        sp_stream *ev = reqs ? sp_stream_event_time(reqs, 0, 2 * B) : NULL;
        sp_expr *r = sp_expr_arg(ctx, 0);
        sp_expr *path = sp_expr_field(ctx, r, 2);
        sp_stream *clients =
            ev ? sp_stream_map(ev, sp_expr_tuple2(ctx, path, sp_expr_field(ctx, r, 1))) : NULL;
        sp_stream *bytes =
            ev ? sp_stream_map(ev, sp_expr_tuple2(ctx, path, sp_expr_field(ctx, r, 3))) : NULL;
        sp_stream *hits =
            ev ? sp_stream_map(ev, sp_expr_tuple2(ctx, path, sp_expr_i64(ctx, 1))) : NULL;
        sp_stream *uniq =
            clients ? sp_stream_count_approx_distinct_by_key_and_window(clients, 0.05, W, B) : NULL;
        sp_stream *quant =
            bytes ? sp_stream_approx_quantiles_by_key_and_window(bytes, 2, qs, 0.01, W, B) : NULL;
        sp_stream *top =
            hits ? sp_stream_top_k(sp_stream_reduce_by_key_and_window_agg(hits, SP_AGG_SUM, W, B),
                                   10)
                 : NULL;
        if (!uniq || !quant || !top) {
            res = NULL;
        } else {
            rc = sp_stream_foreach_rdd(ev, ls_tap, &ls);
            if (!rc) rc = sp_stream_foreach_rdd(uniq, ls_check_distinct, &ls);
            if (!rc) rc = sp_stream_foreach_rdd(quant, ls_check_quantiles, &ls);
            res = top;
            job = "lsoak";
        }
    } else if (!strcmp(job, "rsoak")) {
        const char *op = argv[2];
        sp_generator_opts g = {0};
        g.seed = 7;
        g.keys = o.keys;
        g.rotate = o.keys;
        g.string_keys = 1;
        g.value_max = 100;
        g.per_batch = o.per_batch;
        sp_stream *gen = sp_generator(ctx, &g);
        int64_t W = (int64_t)o.window * o.cfg.batch_ms, B = o.cfg.batch_ms;
        rs.ctx = ctx;
        rs.batch_ms = B;
        rs.keys = o.keys;
        rs.window = 1;
        rs.state_sum_col = 1;
        if (!gen) {
            res = NULL;
        } else if (!strcmp(op, "reduce")) {
            res = sp_stream_reduce_by_key_agg(gen, SP_AGG_SUM);
        } else if (!strcmp(op, "window")) {
            sp_stream *win = sp_stream_window(gen, W, B);
            res = win ? sp_stream_reduce_by_key_agg(win, SP_AGG_SUM) : NULL;
            rs.window = o.window;
        } else if (!strcmp(op, "rkw")) {
            res = sp_stream_reduce_by_key_and_window_agg(gen, SP_AGG_SUM, W, B);
            rs.window = o.window;
        } else if (!strcmp(op, "state")) {
            res = sp_stream_update_state_by_key(gen, "i64", rs_update, NULL, NULL);
        } else {
            fprintf(stderr, "jobs_bench rsoak: unknown operator %s\n", op);
            return 2;
        }
        if (o.window < 1 || o.window > RS_RING / 2) return usage();
        rc = res ? sp_stream_foreach_rdd(gen, rs_tap, &rs) : -1;
    } else if (!strcmp(job, "soak")) {
        sp_generator_opts g = {0};
        g.seed = 7;
        g.keys = o.keys;
        g.string_keys = 1;
        g.value_max = 100;
        g.per_batch = o.per_batch;
        sp_stream *gen = sp_generator(ctx, &g);
        sp_stream *r1 = gen ? sp_stream_reduce_by_key_agg(gen, SP_AGG_SUM) : NULL;
        sp_stream *r2 = gen ? sp_stream_reduce_by_key_and_window_agg(
                                  gen, SP_AGG_SUM, 10 * o.cfg.batch_ms, o.cfg.batch_ms)
                            : NULL;
        soak_state.ctx = ctx;
        rc = r1 && r2 ? sp_stream_foreach_rdd(r1, noop, NULL) : -1;
        res = r2;
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
    else if (!strcmp(job, "soak"))
        rc = rc ? rc : sp_stream_foreach_rdd(res, soak_tick, &soak_state);
    else if (!strcmp(job, "rsoak"))
        rc = rc ? rc : sp_stream_foreach_rdd(res, rs_check, &rs);
    else if (!strcmp(job, "lsoak"))
        rc = rc ? rc : sp_stream_foreach_rdd(res, ls_check_topk, &ls);
    else if (!strcmp(job, "ysbparse"))
        rc = sp_stream_foreach_rdd(res, sum_counts, &soak_state);
    else
        rc = w.f ? sp_stream_foreach_rdd(res, write_rows, &w)
                 : sp_stream_foreach_rdd(res, noop, NULL);
    double t0 = bench_now(), t1 = t0, t2 = t0;
    if (!rc) rc = sp_context_start(ctx);
    t1 = bench_now();
    soak_state.deadline = t1 + o.seconds;
    rs.deadline = t1 + o.seconds;
    if (!rc) rc = sp_context_run(ctx);
    t2 = bench_now();
    if (rc) fprintf(stderr, "jobs_bench: %s\n", sp_context_errmsg(ctx));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sp_memory_stats ms;
    sp_context_memory(ctx, &ms);
    if (!strcmp(job, "rsoak") || !strcmp(job, "lsoak")) {
        soak_state.rows = rs.rows;
        if (rs.errors || !rs.checked) rc = rc ? rc : -1;
    }
    printf("{\"start_s\":%.6f,\"run_s\":%.6f,\"batches\":%lld,\"max_rss_kib\":%ld,"
           "\"rows\":%llu,\"checked_batches\":%llu,\"bad_batches\":%llu,"
           "\"dict_live\":%llu,\"dict_ids\":%llu,\"dict_bytes\":%llu,\"dict_reclaimed\":%llu,"
           "\"keymap_live\":%llu,\"reclaim_cycles\":%llu}\n",
           t1 - t0, t2 - t1, (long long)sp_context_batches(ctx), ru.ru_maxrss,
           (unsigned long long)soak_state.rows, (unsigned long long)rs.checked,
           (unsigned long long)rs.errors, (unsigned long long)ms.dict_live,
           (unsigned long long)ms.dict_ids, (unsigned long long)ms.dict_bytes,
           (unsigned long long)ms.dict_reclaimed, (unsigned long long)ms.keymap_live,
           (unsigned long long)ms.reclaim_cycles);
    sp_context_free(ctx);
    ad_map_free(&ads);
    if (w.f && fclose(w.f)) rc = -1;
    return rc ? 1 : 0;
}
