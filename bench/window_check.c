/* window_check.c — the keyed sliding aggregate through the public API, on the pane path and on
 * the naive recompute (sp_config.naive_windows), on the same generated input, with every
 * window's result compared between the two and checked against the input itself.
 *
 *   window_check [--quick] [--rows N] [--slides T] [--keys K,K,...] [--ratios R,R,...]
 *                [--aggs sum,max] [--naive-max-ratio R]
 *
 * A case is (aggregate, key count K, window/slide ratio R): a flat-out generator of N rows per
 * batch with string keys "k0".."k<K-1>" (dictionary ids) and values in [0, 1000), then
 * reduceByKeyAndWindow(agg, R x 1000 ms, 1000 ms) and a foreachRDD output that folds every
 * window into a checksum (an order-independent sum of a mix of key, value and batch time),
 * over R + T batches. The same job runs with naive_windows 0 and 1 and, as a baseline, with
 * the generator alone. A tap on the generator keeps each batch's value sum, so every SUM
 * window is also checked against the sum of the values of its batches.
 *
 * Prints one JSON row per case and system (bench/README.md's format) on stdout:
 * seconds_min / seconds_median are per slide over the last T batches (the window full), from
 * the end of one window output to the start of the next, less the tap's own time: the
 * generator batch, the slide, and building the window's output batch. "generator_s_median"
 * is the generator alone at the same N and K; "net_s_median" the median slide less it.
 * "correct" is true when every window of both paths agreed (and SUM windows matched the
 * input). Exit status 1 when a result differs, 2 on a failed run. */
#include "benchutil.h"
#include "spate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 8

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What one run leaves: per batch, the checksum and row count of its window, the tap's value
 * sum, and the slide time. Arrays have `cap` entries, indexed by batch number from 0. */
typedef struct run {
    size_t cap, nout, ntap;
    uint64_t *hash;
    size_t *rows;
    int64_t *wsum; /* sum of the window's values */
    int64_t *tsum; /* sum of the batch's values (tap) */
    double *slide;
    double last_end, tap_s;
} run;

static int run_init(run *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->hash = calloc(cap, sizeof *r->hash);
    r->rows = calloc(cap, sizeof *r->rows);
    r->wsum = calloc(cap, sizeof *r->wsum);
    r->tsum = calloc(cap, sizeof *r->tsum);
    r->slide = calloc(cap, sizeof *r->slide);
    return r->hash && r->rows && r->wsum && r->tsum && r->slide ? 0 : -1;
}

static void run_free(run *r)
{
    free(r->hash);
    free(r->rows);
    free(r->wsum);
    free(r->tsum);
    free(r->slide);
}

/* foreachRDD on the generator: the batch's value sum. Its time is taken out of the slide. */
static int on_tap(void *ud, const sp_batch *b)
{
    run *r = ud;
    double t0 = bench_now();
    int64_t s = 0;
    size_t n = sp_batch_count(b);
    for (size_t i = 0; i < n; i++)
        s += sp_batch_i64(b, i, 1);
    if (r->ntap < r->cap) r->tsum[r->ntap] = s;
    r->ntap++;
    double t1 = bench_now();
    r->tap_s = t1 - t0;
    /* Generator-only runs have no window output: the tap marks the batch's end. */
    return 0;
}

static int on_window(void *ud, const sp_batch *b)
{
    run *r = ud;
    double t0 = bench_now();
    size_t k = r->nout;
    if (k < r->cap) {
        r->slide[k] = k ? t0 - r->last_end - r->tap_s : 0;
        uint64_t h = 0;
        int64_t s = 0;
        size_t n = sp_batch_count(b);
        uint64_t bt = (uint64_t)sp_batch_time(b);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *key = sp_batch_str(b, i, 0, &len);
            uint64_t kh = 1469598103934665603ull;
            for (size_t j = 0; key && j < len; j++)
                kh = (kh ^ (unsigned char)key[j]) * 1099511628211ull;
            int64_t v = sp_batch_i64(b, i, 1);
            s += v;
            h += mix(kh ^ mix((uint64_t)v + 0x9E3779B97F4A7C15ull * bt));
        }
        r->hash[k] = h;
        r->rows[k] = n;
        r->wsum[k] = s;
    }
    r->nout++;
    r->last_end = bench_now();
    return 0;
}

/* Generator-only baseline: the tap's own interval is the generator batch. */
static int on_gen(void *ud, const sp_batch *b)
{
    run *r = ud;
    double t0 = bench_now();
    size_t k = r->nout;
    if (k < r->cap) r->slide[k] = k ? t0 - r->last_end : 0;
    r->nout++;
    (void)b;
    r->last_end = bench_now();
    return 0;
}

typedef struct cas {
    sp_agg agg;
    uint32_t K;
    int R;
    size_t N;
    int T;
} cas;

/* mode 0: panes, 1: naive recompute, 2: generator alone. */
static int run_job(const cas *c, int mode, run *r)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.batch_ms = 1000;
    cfg.max_batches = c->R + c->T;
    cfg.naive_windows = mode == 1;
    cfg.status_line = 0;
    sp_context *ctx = NULL;
    int rc = sp_context_new(&cfg, &ctx);
    if (rc) return rc;
    sp_generator_opts g = {0};
    g.seed = 11 + c->K;
    g.keys = c->K;
    g.string_keys = 1;
    g.value_max = 1000;
    g.per_batch = c->N;
    sp_stream *gen = sp_generator(ctx, &g);
    if (!gen) {
        rc = -1;
        goto out;
    }
    if (mode == 2) {
        rc = sp_stream_foreach_rdd(gen, on_gen, r);
    } else {
        sp_stream *w =
            sp_stream_reduce_by_key_and_window_agg(gen, c->agg, 1000 * (int64_t)c->R, 1000);
        rc = sp_stream_foreach_rdd(gen, on_tap, r);
        if (!rc) rc = w ? sp_stream_foreach_rdd(w, on_window, r) : -1;
    }
    if (!rc) rc = sp_context_run(ctx);
out:
    if (rc) fprintf(stderr, "window_check: %s\n", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    return rc;
}

/* min and median of the slides of batches R .. R+T-1 (window full). */
static void stats(const run *r, const cas *c, double *mn, double *med)
{
    size_t lo = (size_t)c->R, hi = r->nout < r->cap ? r->nout : r->cap;
    if (lo < 1) lo = 1;
    if (hi <= lo) {
        *mn = *med = 0;
        return;
    }
    size_t n = hi - lo;
    double *s = malloc(n * sizeof *s);
    if (!s) {
        *mn = *med = 0;
        return;
    }
    memcpy(s, r->slide + lo, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_dbl);
    *mn = s[0];
    *med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
}

/* Both paths gave the same windows, and SUM windows add up to their batches' values. */
static int agree(const run *a, const run *b, const cas *c, char *why, size_t wsz)
{
    size_t want = (size_t)(c->R + c->T);
    if (a->nout != want || b->nout != want) {
        snprintf(why, wsz, "%zu and %zu windows, want %zu", a->nout, b->nout, want);
        return 0;
    }
    for (size_t k = 0; k < want; k++) {
        if (a->rows[k] != b->rows[k] || a->hash[k] != b->hash[k]) {
            snprintf(why, wsz, "window %zu differs: %zu rows vs %zu", k, a->rows[k], b->rows[k]);
            return 0;
        }
        if (c->agg != SP_AGG_SUM) continue;
        int64_t s = 0;
        for (size_t j = k + 1 >= (size_t)c->R ? k + 1 - (size_t)c->R : 0; j <= k; j++)
            s += a->tsum[j];
        if (s != a->wsum[k]) {
            snprintf(why, wsz, "window %zu sums to %lld, its batches to %lld", k,
                     (long long)a->wsum[k], (long long)s);
            return 0;
        }
    }
    return 1;
}

static void print_row(const cas *c, const char *sys, const run *r, int correct, double gen_med,
                      const char *note)
{
    double mn, med;
    stats(r, c, &mn, &med);
    printf("{\"case\":\"window job %s keys=%u W/S=%d\",\"system\":\"%s\",\"device\":\"%s\","
           "\"threads\":0,\"records\":%zu,\"bytes\":%zu,\"seconds_min\":%.6g,"
           "\"seconds_median\":%.6g,\"records_per_s\":%.6g,\"limit_ratio\":null,"
           "\"correct\":%s,\"generator_s_median\":%.6g,\"net_s_median\":%.6g,"
           "\"window_rows\":%zu,\"note\":\"%s\",\"timed\":\"per slide through the public API: "
           "a generator batch of %zu rows, reduceByKeyAndWindow, the window's output batch; "
           "checksum time excluded\"}\n",
           c->agg == SP_AGG_SUM ? "sum" : "max", c->K, c->R, sys, "engine", c->N, c->N * 12, mn,
           med, mn > 0 ? (double)c->N / mn : 0.0, correct ? "true" : "false", gen_med,
           med - gen_med, r->nout ? r->rows[r->nout < r->cap ? r->nout - 1 : r->cap - 1] : 0, note,
           c->N);
    fflush(stdout);
}

static int parse_list(const char *s, long *out)
{
    int n = 0;
    while (*s && n < MAX_LIST) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv)
{
    int quick = 0, T = 0, naive_max = 0;
    size_t N = 0;
    long keys[MAX_LIST], ratios[MAX_LIST];
    int nkeys = 0, nratios = 0, do_sum = 1, do_max = 1;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
            continue;
        }
        if (!v) goto usage;
        i++;
        if (!strcmp(argv[i - 1], "--rows"))
            N = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--slides"))
            T = atoi(v);
        else if (!strcmp(argv[i - 1], "--naive-max-ratio"))
            naive_max = atoi(v);
        else if (!strcmp(argv[i - 1], "--keys"))
            nkeys = parse_list(v, keys);
        else if (!strcmp(argv[i - 1], "--ratios"))
            nratios = parse_list(v, ratios);
        else if (!strcmp(argv[i - 1], "--aggs")) {
            do_sum = strstr(v, "sum") != NULL;
            do_max = strstr(v, "max") != NULL;
        } else
            goto usage;
        if (nkeys < 0 || nratios < 0) goto usage;
    }
    if (!N) N = quick ? 4096 : 16384;
    if (!T) T = quick ? 8 : 20;
    if (!naive_max) naive_max = quick ? 100 : 1000;
    if (!nkeys) {
        keys[nkeys++] = 16;
        keys[nkeys++] = 65536;
        if (!quick) keys[nkeys++] = 4 << 20;
    }
    if (!nratios) {
        ratios[nratios++] = 1;
        ratios[nratios++] = 10;
        ratios[nratios++] = 100;
        if (!quick) ratios[nratios++] = 1000;
    }
    int failed = 0, crashed = 0;
    for (int a = 0; a < 2; a++) {
        if ((a == 0 && !do_sum) || (a == 1 && !do_max)) continue;
        for (int ki = 0; ki < nkeys; ki++) {
            cas c0 = {a ? SP_AGG_MAX : SP_AGG_SUM, (uint32_t)keys[ki], 1, N, T};
            run g;
            if (run_init(&g, (size_t)T + 2)) return 2;
            double gmn = 0, gmed = 0;
            c0.R = 1;
            if (run_job(&c0, 2, &g) == 0) stats(&g, &c0, &gmn, &gmed);
            run_free(&g);
            for (int ri = 0; ri < nratios; ri++) {
                cas c = c0;
                c.R = (int)ratios[ri];
                if (c.R > naive_max) continue;
                /* Naive recompute costs O(R^2 N) over the fill; emission O(live keys) per
                 * batch: the largest cases are left out (and the table says so). */
                if (c.K > (1u << 20) && c.R > 100) continue;
                run p, nv;
                if (run_init(&p, (size_t)(c.R + c.T)) || run_init(&nv, (size_t)(c.R + c.T)))
                    return 2;
                fprintf(stderr, "window_check: %s keys=%u W/S=%d\n", a ? "max" : "sum", c.K, c.R);
                int rp = run_job(&c, 0, &p), rn = rp ? -1 : run_job(&c, 1, &nv);
                char why[160] = "";
                int ok = !rp && !rn && agree(&p, &nv, &c, why, sizeof why);
                if (rp || rn) {
                    crashed = 1;
                    snprintf(why, sizeof why, "run failed");
                } else if (!ok) {
                    failed = 1;
                    fprintf(stderr, "window_check: %s keys=%u W/S=%d: %s\n", a ? "max" : "sum", c.K,
                            c.R, why);
                }
                print_row(&c, "spate-panes", &p, ok, gmed, why);
                print_row(&c, "spate-naive", &nv, ok, gmed, why);
                run_free(&p);
                run_free(&nv);
            }
        }
    }
    return crashed ? 2 : failed ? 1 : 0;
usage:
    fprintf(stderr, "usage: window_check [--quick] [--rows N] [--slides T] [--keys K,..] "
                    "[--ratios R,..] [--aggs sum,max] [--naive-max-ratio R]\n");
    return 2;
}
