/* join_bench.c — the per-batch join of two keyed streams through the public API
 * (sp_stream_join) against a plain-C hash join of the same batches.
 *
 *   join_bench [--quick] [--rows N] [--keys K] [--batches T]
 *
 * Two flat-out generators of N (i64 key, i64 value) rows per batch, keys uniform in [0, K),
 * different seeds, joined batch by batch (Spark's join: every pair of rows with equal keys,
 * (k, (v, w))). Taps on both inputs copy each batch aside (their time is not counted); after
 * the run the C loop joins the same batches (build a chained hash table on the right side,
 * probe with the left, output rows written to memory, one thread, no allocation per call)
 * and every batch's output is compared by row count and an order-independent checksum.
 *
 * Prints one JSON row per system (bench/README.md's format): seconds per batch, min and
 * median over T batches after one warm-up batch. spate-host: from the end of one join output
 * to the start of the next, less the taps: both generator batches, the join, its output
 * batch; "generator_s_median" is the generators alone and "net_s_median" the median less it.
 * reference-c: the hash join alone. records = 2N input rows. Exit status 1 on a mismatch, 2
 * on a failed run. */
#include "benchutil.h"
#include "spate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t pair_hash(int64_t k, int64_t v, int64_t w)
{
    return mix((uint64_t)k ^ mix((uint64_t)v * 0x9E3779B97F4A7C15ull + mix((uint64_t)w)));
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct side {
    int64_t *k, *v; /* batch b's rows at [b * N, b * N + n[b]) */
    size_t *n;
    size_t nb;
} side;

typedef struct state {
    size_t N, cap; /* rows per batch, batches kept */
    side in[2];
    size_t nout;
    uint64_t *hash;
    size_t *rows;
    double *slide;
    double last_end, tap_s;
} state;

typedef struct tap {
    state *st;
    int which;
} tap;

static int on_tap(void *ud, const sp_batch *b)
{
    tap *t = ud;
    state *st = t->st;
    side *s = &st->in[t->which];
    double t0 = bench_now();
    if (t->which == 0) st->tap_s = 0;
    if (s->nb < st->cap) {
        size_t n = sp_batch_count(b);
        if (n > st->N) n = st->N;
        int64_t *k = s->k + s->nb * st->N, *v = s->v + s->nb * st->N;
        for (size_t i = 0; i < n; i++) {
            k[i] = sp_batch_i64(b, i, 0);
            v[i] = sp_batch_i64(b, i, 1);
        }
        s->n[s->nb] = n;
    }
    s->nb++;
    st->tap_s += bench_now() - t0;
    return 0;
}

static int on_join(void *ud, const sp_batch *b)
{
    state *st = ud;
    double t0 = bench_now();
    size_t j = st->nout;
    if (j < st->cap) {
        st->slide[j] = j ? t0 - st->last_end - st->tap_s : 0;
        uint64_t h = 0;
        size_t n = sp_batch_count(b);
        for (size_t i = 0; i < n; i++)
            h += pair_hash(sp_batch_i64(b, i, 0), sp_batch_i64(b, i, 1), sp_batch_i64(b, i, 2));
        st->hash[j] = h;
        st->rows[j] = n;
    }
    st->nout++;
    st->last_end = bench_now();
    return 0;
}

static int on_gen(void *ud, const sp_batch *b)
{
    state *st = ud;
    double t0 = bench_now();
    (void)b;
    if (st->nout < st->cap) st->slide[st->nout] = st->nout ? t0 - st->last_end : 0;
    st->nout++;
    st->last_end = bench_now();
    return 0;
}

/* gen_only: the two generators unioned into one output, no join. */
static int run_job(state *st, size_t N, uint64_t K, int T, int gen_only)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.max_batches = T;
    cfg.status_line = 0;
    sp_context *ctx = NULL;
    int rc = sp_context_new(&cfg, &ctx);
    if (rc) return rc;
    sp_generator_opts g = {0};
    g.keys = K;
    g.value_max = 1000000;
    g.per_batch = N;
    g.seed = 101;
    sp_stream *a = sp_generator(ctx, &g);
    g.seed = 202;
    sp_stream *b = sp_generator(ctx, &g);
    tap ta = {st, 0}, tb = {st, 1};
    if (!a || !b) {
        rc = -1;
    } else if (gen_only) {
        sp_stream *u = sp_stream_union(a, b);
        rc = u ? sp_stream_foreach_rdd(u, on_gen, st) : -1;
    } else {
        sp_stream *j = sp_stream_join(a, b);
        rc = sp_stream_foreach_rdd(a, on_tap, &ta);
        if (!rc) rc = sp_stream_foreach_rdd(b, on_tap, &tb);
        if (!rc) rc = j ? sp_stream_foreach_rdd(j, on_join, st) : -1;
    }
    if (!rc) rc = sp_context_run(ctx);
    if (rc) fprintf(stderr, "join_bench: %s\n", sp_context_errmsg(ctx));
    sp_context_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------ plain-C hash join */

typedef struct cjoin {
    size_t mask;
    uint32_t *head, *next; /* head[bucket], next[row]: row + 1, 0 ends a chain */
    int64_t *ok, *ov, *ow; /* output rows */
    size_t ocap;
} cjoin;

static int cjoin_init(cjoin *c, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    c->mask = cap - 1;
    c->head = calloc(cap, sizeof *c->head);
    c->next = malloc(n * sizeof *c->next);
    c->ocap = 4 * n + 1024;
    c->ok = malloc(c->ocap * 8);
    c->ov = malloc(c->ocap * 8);
    c->ow = malloc(c->ocap * 8);
    return c->head && c->next && c->ok && c->ov && c->ow ? 0 : -1;
}

static void cjoin_free(cjoin *c)
{
    free(c->head);
    free(c->next);
    free(c->ok);
    free(c->ov);
    free(c->ow);
}

/* Joins one batch; returns the number of output rows, or SIZE_MAX when they would not fit
 * (the caller grows the output and calls again). */
static size_t cjoin_run(cjoin *c, const int64_t *lk, const int64_t *lv, size_t ln,
                        const int64_t *rk, const int64_t *rv, size_t rn)
{
    memset(c->head, 0, (c->mask + 1) * sizeof *c->head);
    for (size_t i = 0; i < rn; i++) {
        size_t h = mix((uint64_t)rk[i]) & c->mask;
        c->next[i] = c->head[h];
        c->head[h] = (uint32_t)(i + 1);
    }
    size_t o = 0;
    for (size_t i = 0; i < ln; i++) {
        int64_t k = lk[i];
        for (uint32_t r = c->head[mix((uint64_t)k) & c->mask]; r; r = c->next[r - 1]) {
            if (rk[r - 1] != k) continue;
            if (o == c->ocap) return SIZE_MAX;
            c->ok[o] = k;
            c->ov[o] = lv[i];
            c->ow[o] = rv[r - 1];
            o++;
        }
    }
    return o;
}

static void stats(const double *s0, size_t lo, size_t hi, double *mn, double *med)
{
    *mn = *med = 0;
    if (hi <= lo) return;
    size_t n = hi - lo;
    double s[64];
    if (n > 64) n = 64;
    memcpy(s, s0 + lo, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_dbl);
    *mn = s[0];
    *med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int state_init(state *st, size_t N, size_t cap)
{
    memset(st, 0, sizeof *st);
    st->N = N;
    st->cap = cap;
    for (int i = 0; i < 2; i++) {
        st->in[i].k = malloc(N * cap * 8);
        st->in[i].v = malloc(N * cap * 8);
        st->in[i].n = calloc(cap, sizeof(size_t));
        if (!st->in[i].k || !st->in[i].v || !st->in[i].n) return -1;
    }
    st->hash = calloc(cap, sizeof *st->hash);
    st->rows = calloc(cap, sizeof *st->rows);
    st->slide = calloc(cap, sizeof *st->slide);
    return st->hash && st->rows && st->slide ? 0 : -1;
}

static void state_free(state *st)
{
    for (int i = 0; i < 2; i++) {
        free(st->in[i].k);
        free(st->in[i].v);
        free(st->in[i].n);
    }
    free(st->hash);
    free(st->rows);
    free(st->slide);
}

int main(int argc, char **argv)
{
    int quick = 0, T = 0;
    size_t N = 0;
    uint64_t K = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--rows") && ++i)
            N = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(argv[i], "--keys") && ++i)
            K = strtoull(v, NULL, 10);
        else if (!strcmp(argv[i], "--batches") && ++i)
            T = atoi(v);
        else {
            fprintf(stderr, "usage: join_bench [--quick] [--rows N] [--keys K] [--batches T]\n");
            return 2;
        }
    }
    if (!N) N = quick ? 65536 : 1 << 20;
    if (!K) K = N;
    if (!T) T = quick ? 5 : 8;
    if (T > 60) T = 60;
    size_t cap = (size_t)T;
    state st, gs;
    cjoin cj;
    if (state_init(&st, N, cap) || state_init(&gs, 1, cap) || cjoin_init(&cj, N)) {
        fprintf(stderr, "join_bench: out of memory\n");
        return 2;
    }
    int rc = run_job(&gs, N, K, T, 1);
    if (!rc) rc = run_job(&st, N, K, T, 0);
    if (rc) return 2;
    /* the plain-C join of the same batches, each checked against the engine's output */
    int ok = st.nout == cap && st.in[0].nb == cap && st.in[1].nb == cap;
    double cs[64];
    size_t total_out = 0;
    for (size_t b = 0; ok && b < cap; b++) {
        const side *l = &st.in[0], *r = &st.in[1];
        size_t o;
        double t0 = 0;
        for (;;) {
            t0 = bench_now();
            o = cjoin_run(&cj, l->k + b * N, l->v + b * N, l->n[b], r->k + b * N, r->v + b * N,
                          r->n[b]);
            if (o != SIZE_MAX) break;
            cj.ocap *= 2; /* untimed: grow and join the batch again */
            cj.ok = realloc(cj.ok, cj.ocap * 8);
            cj.ov = realloc(cj.ov, cj.ocap * 8);
            cj.ow = realloc(cj.ow, cj.ocap * 8);
            if (!cj.ok || !cj.ov || !cj.ow) return 2;
        }
        cs[b] = bench_now() - t0;
        uint64_t h = 0;
        for (size_t i = 0; i < o; i++)
            h += pair_hash(cj.ok[i], cj.ov[i], cj.ow[i]);
        if (o != st.rows[b] || h != st.hash[b]) {
            fprintf(stderr, "join_bench: batch %zu: %zu rows (C: %zu), checksums %s\n", b,
                    st.rows[b], o, h == st.hash[b] ? "equal" : "differ");
            ok = 0;
        }
        total_out += o;
    }
    double emn, emed, gmn, gmed, cmn, cmed;
    stats(st.slide, 1, st.nout < cap ? st.nout : cap, &emn, &emed);
    stats(gs.slide, 1, gs.nout < cap ? gs.nout : cap, &gmn, &gmed);
    stats(cs, 1, cap, &cmn, &cmed);
    char cas[96];
    snprintf(cas, sizeof cas, "stream join N=%zu K=%llu", N, (unsigned long long)K);
    const char *fmt =
        "{\"case\":\"%s\",\"system\":\"%s\",\"device\":\"host\",\"threads\":%d,"
        "\"records\":%zu,\"bytes\":%zu,\"seconds_min\":%.6g,\"seconds_median\":%.6g,"
        "\"records_per_s\":%.6g,\"limit_ratio\":null,\"correct\":%s,\"output_rows\":%zu,"
        "\"generator_s_median\":%.6g,\"net_s_median\":%.6g,\"timed\":\"%s\"}\n";
    printf(fmt, cas, "reference-c", 1, 2 * N, 32 * N, cmn, cmed, cmn > 0 ? 2.0 * N / cmn : 0.0,
           ok ? "true" : "false", total_out / cap, 0.0, cmed,
           "chained hash table on the right batch, probe with the left, output rows in memory");
    printf(fmt, cas, "spate-host", 0, 2 * N, 32 * N, emn, emed, emn > 0 ? 2.0 * N / emn : 0.0,
           ok ? "true" : "false", total_out / cap, gmed, emed - gmed,
           "per batch through the public API: two generator batches, sp_stream_join, its "
           "output batch (net_s_median: less the generators)");
    state_free(&st);
    state_free(&gs);
    cjoin_free(&cj);
    return ok ? 0 : 1;
}
