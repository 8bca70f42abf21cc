/* windows.c — cost of one slide of a keyed sliding aggregate on the device panes, for window /
 * slide ratios 1, 10, 100, 1000 and key domains 16, 64 Ki, 4 Mi: the invertible path (SUM:
 * window += entering - leaving) and the two-stacks path (MAX), against the naive recompute of
 * the window from its batches (kreduce_dense over the W/S remembered batches, what
 * sp_config.naive_windows does).
 *
 *   windows [--quick] [--naive-windows] [--strategy cpu|gpu] [--rows N]
 *
 * One slide = one batch of N rows (uniform random keys, i64 values) taken into a pane, the
 * slide, and a pass over the window's present keys (what emission reads). Each case first
 * fills the window (W/S slides), then times a few slides; it prints ms per slide. Two-stacks
 * keeps one dense aggregate per front pane: cases whose memory (front panes x live keys x 16
 * bytes) would exceed the budget are skipped and say so. --quick: N = 4096, keys 16 and 64 Ki,
 * naive only up to W/S = 100.
 *
 * --lambda: a general reduce lambda without an inverse, reduceByKeyAndWindow((a, b) => a * b,
 * R s, 1 s) through the public API (a flat-out generator of N rows per batch, string keys), on
 * the host two-stacks route against naive_windows (the recompute, which was the only route
 * of general lambdas before); ms per slide over the last slides, the window full, including
 * the generator's batch and building the output. W/S 1, 10, 100 (and 1000 without --quick,
 * where the naive run stops at 100). */
#include "ops/panes_int.h"
#include "spate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum { POOL = 32, TIMED = 40 };

typedef struct data {
    uint32_t *keys[POOL];
    int64_t *vals[POOL];
} data;

static void *palloc(size_t bytes)
{
    return aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
}

/* ms per slide of the panes path, or -1 on error. */
static double run_panes(sp_dev *dev, sp_arena *ar, panes_mode mode, sp_agg agg, const data *dt,
                        size_t n, int ratio, int64_t *check)
{
    panes *p = NULL;
    sp_diag d = {0};
    panes_cfg c = {dev, ar, NULL, mode, agg, SP_I64};
    if (panes_new(&c, &p, &d)) {
        fprintf(stderr, "panes_new: %s\n", d.msg);
        return -1;
    }
    double t0 = 0;
    int total = ratio + 2 + TIMED;
    for (int k = 0; k < total; k++) {
        if (k == ratio + 2) t0 = now_ms();
        int b = k % POOL;
        panes_view v;
        if (panes_add(p, dt->keys[b], dt->vals[b], n, &d) || panes_close(p, k, &d) ||
            panes_slide(p, k + 1 - ratio, k + 1, &d) || panes_view_get(p, &v, &d)) {
            fprintf(stderr, "panes: %s\n", d.msg);
            panes_free(p);
            return -1;
        }
        int64_t sum = 0;
        for (uint32_t s = 0; s < v.nslots; s++)
            if (v.cnt[s] > 0) sum += ((const int64_t *)v.acc)[s];
        *check = sum;
    }
    double ms = (now_ms() - t0) / TIMED;
    panes_free(p);
    return ms;
}

/* ms per slide of recomputing the window from its W/S batches. */
static double run_naive(sp_dev *dev, sp_arena *ar, sp_agg agg, const data *dt, size_t n, int ratio,
                        uint32_t K, int64_t *check)
{
    size_t rows = n * (size_t)ratio;
    uint32_t *keys = palloc(rows * 4);
    int64_t *vals = palloc(rows * 8), *acc = palloc((size_t)K * 8), *cnt = palloc((size_t)K * 8);
    double best = -1;
    if (!keys || !vals || !acc || !cnt) goto out;
    int timed = ratio >= 100 ? 3 : 6;
    double t0 = 0;
    for (int k = 0; k < timed + 1; k++) {
        if (k == 1) t0 = now_ms();
        /* the union of the window's batches, then one reduceByKey over it */
        for (int j = 0; j < ratio; j++) {
            int b = (k + j) % POOL;
            memcpy(keys + (size_t)j * n, dt->keys[b], n * 4);
            memcpy(vals + (size_t)j * n, dt->vals[b], n * 8);
        }
        sp_diag d = {0};
        if (kreduce_dense_scratch(dev, ar, keys, vals, SP_I64, rows, K, agg, acc, cnt, &d)) {
            fprintf(stderr, "kreduce: %s\n", d.msg);
            goto out;
        }
        int64_t sum = 0;
        for (uint32_t s = 0; s < K; s++)
            if (cnt[s]) sum += acc[s];
        *check = sum;
    }
    best = (now_ms() - t0) / timed;
out:
    free(keys);
    free(vals);
    free(acc);
    free(cnt);
    return best;
}

/* ------------------------------------------------------------- general lambda (C API) */

typedef struct lam_clock {
    int64_t batches, from;
    double t0, t1;
    int64_t rows;
} lam_clock;

static int lam_tick(void *ud, const sp_batch *b)
{
    lam_clock *c = ud;
    c->batches++;
    c->rows += (int64_t)sp_batch_count(b);
    if (c->batches == c->from) c->t0 = now_ms();
    c->t1 = now_ms();
    return 0;
}

/* ms per slide of reduceByKeyAndWindow(a * b, R s, 1 s) over n rows per batch, K keys. */
static double run_lambda(int naive, uint64_t K, int R, size_t n, int64_t *rows)
{
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.batch_ms = 1000;
    cfg.status_line = 0;
    cfg.naive_windows = naive;
    int timed = R >= 100 ? 10 : 20;
    cfg.max_batches = R + timed;
    sp_context *ctx = NULL;
    if (sp_context_new(&cfg, &ctx)) return -1;
    sp_generator_opts g = {0};
    g.seed = 7;
    g.keys = K;
    g.string_keys = 1;
    g.value_max = 1000;
    g.per_batch = n;
    lam_clock c = {0, R + 1, 0, 0, 0};
    sp_stream *gen = sp_generator(ctx, &g);
    sp_expr *f = sp_expr_binop(ctx, SP_OP_MUL, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1));
    sp_stream *r =
        gen ? sp_stream_reduce_by_key_and_window(gen, f, NULL, (int64_t)R * 1000, 1000, NULL)
            : NULL;
    double ms = -1;
    if (r && !sp_stream_foreach_rdd(r, lam_tick, &c) && !sp_context_run(ctx) && c.batches > c.from)
        ms = (c.t1 - c.t0) / (double)(c.batches - c.from);
    else
        fprintf(stderr, "lambda: %s\n", sp_context_errmsg(ctx));
    *rows = c.rows;
    sp_context_free(ctx);
    return ms;
}

static int main_lambda(int quick, size_t n)
{
    const uint64_t key_counts[] = {16, 65536};
    const int ratios[] = {1, 10, 100, 1000};
    printf("reduceByKeyAndWindow((a, b) => a * b, R s, 1 s), %zu rows per batch; ms per slide\n",
           n);
    printf("%8s %6s %12s %12s\n", "keys", "W/S", "two-stacks", "naive");
    for (int ki = 0; ki < 2; ki++)
        for (int ri = 0; ri < (quick ? 3 : 4); ri++) {
            int R = ratios[ri];
            int64_t r1 = 0, r2 = 0;
            double ts = run_lambda(0, key_counts[ki], R, n, &r1);
            double nv = R <= 100 ? run_lambda(1, key_counts[ki], R, n, &r2) : -2;
            printf("%8llu %6d %12.3f", (unsigned long long)key_counts[ki], R, ts);
            if (nv > -2)
                printf(" %12.3f%s\n", nv, r1 == r2 ? "" : "  (row counts differ!)");
            else
                printf(" %12s\n", "skipped");
            fflush(stdout);
        }
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, naive_only = 0, strategy = 0, lambda = 0;
    size_t n = 16384;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--naive-windows"))
            naive_only = 1;
        else if (!strcmp(argv[i], "--lambda"))
            lambda = 1;
        else if (!strcmp(argv[i], "--strategy") && i + 1 < argc)
            strategy = !strcmp(argv[++i], "gpu") ? DEV_STRATEGY_GPU : DEV_STRATEGY_CPU;
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            n = (size_t)strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: windows [--quick] [--naive-windows] [--lambda] "
                            "[--strategy cpu|gpu] [--rows N]\n");
            return 2;
        }
    }
    if (quick) n = 4096;
    if (lambda) return main_lambda(quick, n);
    sp_diag d = {0};
    sp_topo *topo = NULL;
    sp_arena *ar = NULL;
    sp_dev *dev = NULL;
    topo_opts to = {0};
    dev_opts o = {NULL, 1, NULL, strategy, stderr, NULL};
    if (topo_open(&to, &topo, &d) || arena_new(topo, 0, 0, NULL, &ar, &d) ||
        dev_open(&o, &dev, &d)) {
        fprintf(stderr, "windows: %s\n", d.msg);
        return 1;
    }
    const uint32_t key_counts[] = {16, 65536, 4u << 20};
    const int ratios[] = {1, 10, 100, 1000};
    int nkeys = quick ? 2 : 3;
    const double budget = 6e9; /* bytes of two-stacks front aggregates */
    printf("device %s, %s kernels, %zu rows per slide; ms per slide\n", dev_get_info(dev)->name,
           dev_strategy(dev) == DEV_STRATEGY_GPU ? "GPU" : "CPU", n);
    printf("%8s %6s %12s %12s %12s\n", "keys", "W/S", "invertible", "two-stacks", "naive");
    uint64_t seed = 42;
    data dt;
    for (int i = 0; i < POOL; i++) {
        dt.keys[i] = palloc(n * 4);
        dt.vals[i] = palloc(n * 8);
    }
    for (int ki = 0; ki < nkeys; ki++) {
        uint32_t K = key_counts[ki];
        for (int b = 0; b < POOL; b++)
            for (size_t i = 0; i < n; i++) {
                dt.keys[b][i] = (uint32_t)(rnd(&seed) % K);
                dt.vals[b][i] = (int64_t)(rnd(&seed) % 1000);
            }
        for (int ri = 0; ri < 4; ri++) {
            int r = ratios[ri];
            double inv = -2, ts = -2, nv = -2;
            int64_t c1 = 0, c2 = 0, c3 = 0; /* results, read so nothing is optimised out */
            double live = (double)K;
            double fill = (double)n * r;
            if (fill < live) live = fill;
            if (!naive_only) {
                inv = run_panes(dev, ar, PANES_INVERTIBLE, SP_AGG_SUM, &dt, n, r, &c1);
                if ((double)r * live * 16 <= budget)
                    ts = run_panes(dev, ar, PANES_TWO_STACKS, SP_AGG_MAX, &dt, n, r, &c2);
            }
            if (!quick || r <= 100) nv = run_naive(dev, ar, SP_AGG_SUM, &dt, n, r, K, &c3);
            printf("%8u %6d", K, r);
            double v[3] = {inv, ts, nv};
            for (int j = 0; j < 3; j++)
                if (v[j] > -2)
                    printf(" %12.3f", v[j]);
                else
                    printf(" %12s", "skipped");
            printf("\n");
            fflush(stdout);
            if (c1 == 1 && c2 == 1 && c3 == 1) printf("\n");
        }
    }
    for (int i = 0; i < POOL; i++) {
        free(dt.keys[i]);
        free(dt.vals[i]);
    }
    dev_close(dev);
    arena_free(ar);
    topo_close(topo);
    return 0;
}
