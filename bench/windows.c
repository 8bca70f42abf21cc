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
 * naive only up to W/S = 100. */
#include "ops/panes_int.h"

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

int main(int argc, char **argv)
{
    int quick = 0, naive_only = 0, strategy = 0;
    size_t n = 16384;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--naive-windows"))
            naive_only = 1;
        else if (!strcmp(argv[i], "--strategy") && i + 1 < argc)
            strategy = !strcmp(argv[++i], "gpu") ? DEV_STRATEGY_GPU : DEV_STRATEGY_CPU;
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            n = (size_t)strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: windows [--quick] [--naive-windows] [--strategy cpu|gpu] "
                            "[--rows N]\n");
            return 2;
        }
    }
    if (quick) n = 4096;
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
