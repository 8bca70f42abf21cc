/* kreduce_bench.c — reduceByKey throughput: kreduce_dense on the device (automatic path and
 * the radix path forced) against the sequential plain-C reference, i64 SUM over uniform
 * random u32 keys.
 *
 *   kreduce_bench [n_mebi=16] [strategy: cpu|gpu] [reps=3]
 *
 * Device scratch comes from an arena (kreduce_dense_scratch), as in keyed_aggregate.
 * Prints one line per K in {16, 1Ki, 64Ki, 1Mi, 16Mi}: best-of-reps records/s. The first
 * launch of each path is a warm-up (kernel builds). Checks the results against each other. */
#include "benchutil.h"
#include "ops/kreduce_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *palloc(size_t bytes)
{
    return aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
}

/* Best time of reps runs of one path; dev NULL: the reference. Returns seconds, <0 on error. */
static double best_of(sp_dev *dev, sp_arena *ar, int radix, const uint32_t *keys,
                      const int64_t *vals, size_t n, uint32_t K, int64_t *acc, int64_t *cnt,
                      int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps + (dev ? 1 : 0); r++) {
        sp_diag d = {0};
        if (dev) kreduce_set_dense_limit(dev, radix ? 1 : 0);
        double t0 = bench_now();
        if (dev) {
            if (kreduce_dense_scratch(dev, ar, keys, vals, SP_I64, n, K, SP_AGG_SUM, acc, cnt,
                                      &d)) {
                fprintf(stderr, "kreduce_dense: %s\n", d.msg);
                return -1;
            }
        } else {
            kreduce_dense_ref(keys, vals, SP_I64, n, K, SP_AGG_SUM, acc, cnt);
        }
        double t = bench_now() - t0;
        if (dev && r == 0) continue; /* warm-up */
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t n = (size_t)(argc > 1 ? atoi(argv[1]) : 16) << 20;
    int gpu = argc > 2 && !strcmp(argv[2], "gpu");
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    static const uint32_t ks[] = {16, 1 << 10, 1 << 16, 1 << 20, 1 << 24};
    dev_opts o = {0};
    o.strategy = gpu ? DEV_STRATEGY_GPU : DEV_STRATEGY_CPU;
    o.use_cache = 1;
    sp_dev *dev = NULL;
    sp_diag d = {0};
    if (dev_open(&o, &dev, &d)) {
        fprintf(stderr, "dev_open: %s\n", d.msg);
        return 1;
    }
    topo_opts to = {0};
    sp_topo *topo = NULL;
    sp_arena *ar = NULL; /* recycled device scratch, as keyed_aggregate passes it */
    if (topo_open(&to, &topo, &d) || arena_new(topo, 0, 0, NULL, &ar, &d)) {
        fprintf(stderr, "arena: %s\n", d.msg);
        return 1;
    }
    uint32_t *keys = palloc(n * 4);
    int64_t *vals = palloc(n * 8);
    size_t kmax = (size_t)ks[sizeof ks / sizeof ks[0] - 1] * 8;
    int64_t *acc = palloc(kmax), *cnt = palloc(kmax), *racc = palloc(kmax), *rcnt = palloc(kmax);
    if (!keys || !vals || !acc || !cnt || !racc || !rcnt) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++)
        vals[i] = (int64_t)(bench_rnd(&s) % 1000);
    printf("n=%zu, i64 SUM, %s strategy on %s; records/s (best of %d)\n", n, gpu ? "GPU" : "CPU",
           dev_get_info(dev)->name, reps);
    printf("%10s %14s %14s %14s %8s\n", "K", "reference", "device", "device radix", "speedup");
    int rc = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        uint32_t K = ks[ki];
        for (size_t i = 0; i < n; i++)
            keys[i] = (uint32_t)(bench_rnd(&s) % K);
        double tr = best_of(NULL, NULL, 0, keys, vals, n, K, racc, rcnt, reps);
        double td = best_of(dev, ar, 0, keys, vals, n, K, acc, cnt, reps);
        int ok = td > 0 && !memcmp(acc, racc, (size_t)K * 8) && !memcmp(cnt, rcnt, (size_t)K * 8);
        double tx = best_of(dev, ar, 1, keys, vals, n, K, acc, cnt, reps);
        ok = ok && tx > 0 && !memcmp(acc, racc, (size_t)K * 8) && !memcmp(cnt, rcnt, (size_t)K * 8);
        printf("%10u %14.3g %14.3g %14.3g %7.2fx%s\n", K, n / tr, n / td, n / tx, tr / td,
               ok ? "" : "  MISMATCH");
        fflush(stdout);
        if (!ok) rc = 1;
    }
    kreduce_set_dense_limit(dev, 0);
    free(keys);
    free(vals);
    free(acc);
    free(cnt);
    free(racc);
    free(rcnt);
    dev_close(dev);
    arena_free(ar);
    topo_close(topo);
    return rc;
}
