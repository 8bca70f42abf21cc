/* ops_bench.c — operators on columnar input already in memory, through the library internals:
 * the OpenCL device path, the host path where there is one, and the best plain-C loop for the
 * same work ("reference-c"), at one thread count per process, beside a STREAM-style read
 * bandwidth measured in the same process.
 *
 *   ops_bench [--quick] [--threads T] [--reps R] [--n MEBI] [--max-size-mebi M] [--only LIST]
 *
 * --only: a comma-separated subset of rbk, size, cbv, mapfilter, compact, ysb (default: all;
 * the read bandwidth always runs: the other rows' limit).
 *
 * The device's thread count is set by the caller through the environment before the device
 * opens (POCL_MAX_PTHREAD_COUNT); --threads sets the executors and the reference loops.
 * Prints one JSON object per line and case on stdout (the row format of bench/README.md):
 * seconds are min and median over R timed runs after one untimed warm-up run (kernel builds,
 * page faults); limit_ratio = achieved input GB/s over the read bandwidth at the same thread
 * count; vs_best_c = records/s over the plain-C loop's records/s at the same thread count.
 * Every path's result is compared with the plain-C loop's; a mismatch sets "correct": false
 * and the exit status 1. What is timed: the operator call on in-memory columns, output
 * written to memory; no parsing, no I/O. */
#include "benchutil.h"
#include "ops/ew_int.h"
#include "ops/kreduce_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 64
/* Below this many records the timed runs are repeated more (min of more, less noise). */
#define SMALL_N (1u << 20)
/* The reference loops use one worker per this many records, at most `threads`: thread start-up
 * (tens of us) would dominate smaller inputs, and the best C loop for them is one thread. */
#define REF_RECORDS_PER_WORKER (256u << 10)
#define MAX_THREADS 256

static void *palloc(size_t bytes)
{
    void *p = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096);
    if (!p) {
        fprintf(stderr, "ops_bench: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------ the benchmark */

typedef struct bench {
    unsigned threads;
    int reps;
    int quick;
    sp_dev *dev;
    sp_topo *topo;
    sp_arena *arena;
    sp_exec *exec;
    expr_pool *pool;
    char devname[256];
    double bw; /* read bandwidth, bytes/s, at `threads` */
    int failed;
} bench;

typedef int (*run_fn)(void *ud);

typedef struct timing {
    double min, med;
    int err;
} timing;

/* One untimed warm-up then reps timed runs of fn (6x as many, up to MAX_REPS, for inputs
 * under SMALL_N records). */
static timing time_n(const bench *B, run_fn fn, void *ud, size_t records)
{
    timing t = {0, 0, 0};
    double s[MAX_REPS];
    int reps = B->reps;
    if (records < SMALL_N) reps = reps * 6 < MAX_REPS ? reps * 6 : MAX_REPS;
    if (fn(ud)) {
        t.err = 1;
        return t;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (fn(ud)) {
            t.err = 1;
            return t;
        }
        s[r] = bench_now() - t0;
    }
    qsort(s, (size_t)reps, sizeof s[0], cmp_dbl);
    t.min = s[0];
    t.med = reps % 2 ? s[reps / 2] : 0.5 * (s[reps / 2 - 1] + s[reps / 2]);
    return t;
}

static timing time_it(const bench *B, run_fn fn, void *ud)
{
    return time_n(B, fn, ud, SMALL_N);
}

/* One JSON row. base_rps: the plain-C loop's records/s for vs_best_c (0: none). */
static double row(bench *B, const char *cas, const char *sys, const char *device, size_t records,
                  size_t bytes, timing t, int correct, double base_rps, const char *timed)
{
    double rps = t.err || t.min <= 0 ? 0 : (double)records / t.min;
    double lim = t.err || t.min <= 0 || B->bw <= 0 ? 0 : (double)bytes / t.min / B->bw;
    if (t.err) correct = 0;
    if (!correct) B->failed = 1;
    printf("{\"case\":\"%s\",\"system\":\"%s\",\"device\":\"%s\",\"threads\":%u,"
           "\"records\":%zu,\"bytes\":%zu,\"seconds_min\":%.6g,\"seconds_median\":%.6g,"
           "\"records_per_s\":%.6g,\"limit_ratio\":%.4f,\"correct\":%s,\"vs_best_c\":%.4f,"
           "\"timed\":\"%s\"}\n",
           cas, sys, device, B->threads, records, bytes, t.min, t.med, rps, lim,
           correct ? "true" : "false", base_rps > 0 ? rps / base_rps : 0.0, timed);
    fflush(stdout);
    return rps;
}

/* ------------------------------------------------------------------- parallel C helper */

typedef void (*par_fn)(void *ud, unsigned w, unsigned nw);

typedef struct par_arg {
    par_fn fn;
    void *ud;
    unsigned w, nw;
} par_arg;

static void *par_main(void *p)
{
    par_arg *a = p;
    a->fn(a->ud, a->w, a->nw);
    return NULL;
}

/* Runs fn(ud, w, nw) for w < nw, worker 0 on the caller. */
static void par_run(unsigned nw, par_fn fn, void *ud)
{
    pthread_t th[MAX_THREADS];
    par_arg a[MAX_THREADS];
    for (unsigned w = 0; w < nw; w++)
        a[w] = (par_arg){fn, ud, w, nw};
    for (unsigned w = 1; w < nw; w++)
        if (pthread_create(&th[w], NULL, par_main, &a[w])) {
            fprintf(stderr, "ops_bench: pthread_create failed\n");
            exit(2);
        }
    fn(ud, 0, nw);
    for (unsigned w = 1; w < nw; w++)
        pthread_join(th[w], NULL);
}

static size_t chunk_lo(size_t n, unsigned w, unsigned nw)
{
    return n / nw * w + (w < n % nw ? w : n % nw);
}

/* ----------------------------------------------------------------------- read bandwidth */

typedef struct sum_job {
    const uint64_t *a;
    size_t n;
    unsigned nw;
    uint64_t part[MAX_THREADS * 8]; /* one 64-byte line per worker */
} sum_job;

static void sum_part(void *ud, unsigned w, unsigned nw)
{
    sum_job *j = ud;
    size_t lo = chunk_lo(j->n, w, nw), hi = chunk_lo(j->n, w + 1, nw);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        s0 += j->a[i];
        s1 += j->a[i + 1];
        s2 += j->a[i + 2];
        s3 += j->a[i + 3];
    }
    for (; i < hi; i++)
        s0 += j->a[i];
    j->part[w * 8] = s0 + s1 + s2 + s3;
}

static int sum_run(void *ud)
{
    sum_job *j = ud;
    par_run(j->nw, sum_part, j);
    return 0;
}

static void bench_bandwidth(bench *B)
{
    size_t bytes = (size_t)(B->quick ? 128 : 512) << 20;
    sum_job *j = calloc(1, sizeof *j);
    uint64_t *a = palloc(bytes);
    j->a = a;
    j->n = bytes / 8;
    for (size_t i = 0; i < j->n; i++)
        a[i] = i;
    j->nw = B->threads;
    timing t = time_it(B, sum_run, j);
    uint64_t s = 0;
    for (unsigned w = 0; w < B->threads; w++)
        s += j->part[w * 8];
    uint64_t want = (uint64_t)j->n * (uint64_t)(j->n - 1) / 2;
    B->bw = (double)bytes / t.min;
    row(B, "stream-read", "reference-c", "host", j->n, bytes, t, s == want, 0,
        "sum of u64 array, 4 accumulators");
    free(a);
    free(j);
}

/* ------------------------------------------------------------------------- reduceByKey */

typedef struct rbk {
    bench *B;
    const uint32_t *keys;
    const int64_t *vals;
    size_t n;
    uint32_t K;
    int64_t *acc, *cnt;                             /* result */
    int64_t *pacc[MAX_THREADS], *pcnt[MAX_THREADS]; /* per-worker partials (reference) */
    sp_agg agg;
    unsigned nw;               /* reference workers (ref_workers) */
    int64_t *tbl[MAX_THREADS]; /* per-worker interleaved tables (K <= 4096), made once */
} rbk;

static unsigned ref_workers(unsigned threads, size_t n)
{
    size_t w = (n + REF_RECORDS_PER_WORKER - 1) / REF_RECORDS_PER_WORKER;
    return w < 1 ? 1 : w < threads ? (unsigned)w : threads;
}

/* Allocates the reference's per-worker memory once, outside the timed runs. */
static void rbk_alloc(rbk *r)
{
    r->nw = ref_workers(r->B->threads, r->n);
    for (unsigned w = 0; w < r->nw; w++) {
        if (r->nw > 1) {
            if (r->vals) r->pacc[w] = palloc((size_t)r->K * 8);
            r->pcnt[w] = palloc((size_t)r->K * 8);
        }
        if (r->K <= 4096) r->tbl[w] = palloc((size_t)r->K * 4 * 16);
    }
}

static void rbk_release(rbk *r)
{
    for (unsigned w = 0; w < r->nw; w++) {
        free(r->pacc[w]);
        free(r->pcnt[w]);
        free(r->tbl[w]);
        r->pacc[w] = r->pcnt[w] = r->tbl[w] = NULL;
    }
}

static void rbk_part(void *ud, unsigned w, unsigned nw)
{
    rbk *r = ud;
    size_t lo = chunk_lo(r->n, w, nw), hi = chunk_lo(r->n, w + 1, nw);
    int64_t *acc = nw == 1 ? r->acc : r->pacc[w], *cnt = nw == 1 ? r->cnt : r->pcnt[w];
    memset(cnt, 0, (size_t)r->K * 8);
    if (r->K <= 4096) {
        /* (sum, count) pairs side by side: one cache line per record. For K <= 256, four
         * tables used in turn break the store-to-load chain on repeated keys (at larger K
         * repeats are rare and the extra tables only cost cache). */
        size_t K = r->K, nt = K <= 256 ? 4 : 1, i = lo;
        int64_t *t = r->tbl[w];
        memset(t, 0, nt * K * 16);
        if (r->vals) {
            for (; nt == 4 && i + 4 <= hi; i += 4)
                for (size_t u = 0; u < 4; u++) {
                    int64_t *e = t + 2 * (u * K + r->keys[i + u]);
                    e[0] += r->vals[i + u];
                    e[1]++;
                }
            for (; i < hi; i++) {
                int64_t *e = t + 2 * (size_t)r->keys[i];
                e[0] += r->vals[i];
                e[1]++;
            }
        } else {
            for (; nt == 4 && i + 4 <= hi; i += 4)
                for (size_t u = 0; u < 4; u++)
                    t[u * K + r->keys[i + u]]++;
            for (; i < hi; i++)
                t[r->keys[i]]++;
        }
        for (size_t k = 0; k < K; k++) {
            int64_t a = 0, c = 0;
            for (size_t u = 0; u < nt; u++) {
                if (r->vals) {
                    a += t[2 * (u * K + k)];
                    c += t[2 * (u * K + k) + 1];
                } else {
                    c += t[u * K + k];
                }
            }
            cnt[k] = c;
            if (r->vals) acc[k] = a;
        }
        return;
    }
    if (r->vals) {
        memset(acc, 0, (size_t)r->K * 8);
        for (size_t i = lo; i < hi; i++) {
            acc[r->keys[i]] += r->vals[i];
            cnt[r->keys[i]]++;
        }
    } else {
        for (size_t i = lo; i < hi; i++)
            cnt[r->keys[i]]++;
    }
}

static void rbk_merge(void *ud, unsigned w, unsigned nw)
{
    rbk *r = ud;
    size_t lo = chunk_lo(r->K, w, nw), hi = chunk_lo(r->K, w + 1, nw);
    for (size_t k = lo; k < hi; k++) {
        int64_t a = 0, c = 0;
        for (unsigned p = 0; p < nw; p++) {
            c += r->pcnt[p][k];
            if (r->vals) a += r->pacc[p][k];
        }
        r->cnt[k] = c;
        if (r->vals) r->acc[k] = a;
    }
}

static int rbk_ref(void *ud)
{
    rbk *r = ud;
    par_run(r->nw, rbk_part, r);
    if (r->nw > 1) par_run(r->nw, rbk_merge, r);
    return 0;
}

static int rbk_dev(void *ud)
{
    rbk *r = ud;
    sp_diag d = {0};
    if (kreduce_dense_scratch(r->B->dev, r->B->arena, r->keys, r->vals, SP_I64, r->n, r->K, r->agg,
                              r->vals ? r->acc : NULL, r->cnt, &d)) {
        fprintf(stderr, "kreduce_dense: %s\n", d.msg);
        return 1;
    }
    return 0;
}

static int same_keyed(const rbk *r, const int64_t *racc, const int64_t *rcnt)
{
    for (uint32_t k = 0; k < r->K; k++) {
        if (r->cnt[k] != rcnt[k]) return 0;
        if (r->vals && rcnt[k] && r->acc[k] != racc[k]) return 0;
    }
    return 1;
}

static void kname(uint32_t K, char *buf, size_t sz)
{
    if (K >= (1u << 20) && K % (1u << 20) == 0)
        snprintf(buf, sz, "%uMi", K >> 20);
    else if (K >= 1024 && K % 1024 == 0)
        snprintf(buf, sz, "%uKi", K >> 10);
    else
        snprintf(buf, sz, "%u", K);
}

/* reduceByKey (i64 SUM) over n uniform keys in [0,K): device vs the plain-C loop. */
static void bench_rbk(bench *B, const char *cas, uint32_t *keys, int64_t *vals, size_t n,
                      uint32_t K, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++)
        keys[i] = (uint32_t)(bench_rnd(seed) % K);
    rbk r = {B,   keys, vals,       n, K,  palloc((size_t)K * 8), palloc((size_t)K * 8),
             {0}, {0},  SP_AGG_SUM, 0, {0}};
    rbk_alloc(&r);
    size_t bytes = n * 12;
    timing tr = time_n(B, rbk_ref, &r, n);
    int64_t *racc = r.acc, *rcnt = r.cnt;
    r.acc = palloc((size_t)K * 8);
    r.cnt = palloc((size_t)K * 8);
    /* the reference must itself be right: check total count and sum */
    int64_t tc = 0, ts = 0, vs = 0;
    for (uint32_t k = 0; k < K; k++) {
        tc += rcnt[k];
        ts += rcnt[k] ? racc[k] : 0;
    }
    for (size_t i = 0; i < n; i++)
        vs += vals[i];
    const char *what = "i64 SUM over u32 keys in memory; result arrays in memory";
    double base =
        row(B, cas, "reference-c", "host", n, bytes, tr, tc == (int64_t)n && ts == vs, 0, what);
    timing td = time_n(B, rbk_dev, &r, n);
    row(B, cas, "spate-opencl", B->devname, n, bytes, td, !td.err && same_keyed(&r, racc, rcnt),
        base, what);
    free(r.acc);
    free(r.cnt);
    free(racc);
    free(rcnt);
    rbk_release(&r);
}

/* --------------------------------------------------------------- countByValue (batch) */

typedef struct cbv {
    bench *B;
    batch_env *env;
    sp_batch *in;
    sp_td *otd;
    sp_dev *dev; /* NULL: host path */
    sp_batch *out;
} cbv;

static int cbv_run(void *ud)
{
    cbv *c = ud;
    sp_diag d = {0};
    batch_release(c->out);
    c->out = NULL;
    if (keyed_aggregate(c->dev, c->env, NULL, c->in, 1, -1, SP_AGG_COUNT, c->otd, &c->out, &d)) {
        fprintf(stderr, "keyed_aggregate: %s\n", d.msg);
        return 1;
    }
    return 0;
}

static int cbv_check(const sp_batch *out, const int64_t *rcnt, uint32_t K)
{
    if (!out) return 0;
    size_t present = 0;
    for (uint32_t k = 0; k < K; k++)
        present += rcnt[k] != 0;
    if (out->n != present) return 0;
    const uint32_t *ids = out->cols[0].data;
    const int64_t *cnt = out->cols[1].data;
    for (size_t i = 0; i < out->n; i++)
        if (ids[i] >= K || cnt[i] != rcnt[ids[i]]) return 0;
    return 1;
}

/* countByValue over a dictionary-encoded str column with K distinct strings: keyed_aggregate
 * on the device and on the host, against the plain-C count loop. */
static void bench_cbv(bench *B, const char *cas, size_t n, uint32_t K, uint64_t *seed)
{
    sp_dict *dict = NULL;
    sp_td *td = NULL, *otd = NULL;
    sp_diag d = {0};
    sp_batch *in = NULL;
    if (dict_new(NULL, &dict) || td_parse(NULL, "str", &td, &d) ||
        td_parse(NULL, "(str,i64)", &otd, &d)) {
        fprintf(stderr, "ops_bench: countByValue set-up failed\n");
        B->failed = 1;
        return;
    }
    char buf[32];
    for (uint32_t k = 0; k < K; k++) {
        int len = snprintf(buf, sizeof buf, "k%u", k);
        if (dict_intern(dict, buf, (size_t)len) != k) {
            fprintf(stderr, "ops_bench: dictionary ids are not dense\n");
            B->failed = 1;
            return;
        }
    }
    batch_env env = {NULL, dict, &B->arena, 1};
    if (batch_new(&env, td, 1000, &in, &d) || col_reserve(&in->cols[0], n, 0)) {
        fprintf(stderr, "ops_bench: batch: %s\n", d.msg);
        B->failed = 1;
        return;
    }
    uint32_t *ids = in->cols[0].data;
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)(bench_rnd(seed) % K);
    in->cols[0].len = n;
    in->n = n;
    batch_split_even(in, B->threads, NULL);

    rbk r = {B, ids, NULL, n, K, NULL, palloc((size_t)K * 8), {0}, {0}, SP_AGG_COUNT, 0, {0}};
    rbk_alloc(&r);
    const char *what = "count per dictionary id of a str column in memory; output batch built";
    timing tr = time_it(B, rbk_ref, &r);
    int64_t tc = 0;
    for (uint32_t k = 0; k < K; k++)
        tc += r.cnt[k];
    double base = row(B, cas, "reference-c", "host", n, n * 4, tr, tc == (int64_t)n, 0, what);
    cbv c = {B, &env, in, otd, B->dev, NULL};
    timing td1 = time_it(B, cbv_run, &c);
    row(B, cas, "spate-opencl", B->devname, n, n * 4, td1, !td1.err && cbv_check(c.out, r.cnt, K),
        base, what);
    c.dev = NULL;
    timing th = time_it(B, cbv_run, &c);
    row(B, cas, "spate-host", "host", n, n * 4, th, !th.err && cbv_check(c.out, r.cnt, K), base,
        what);
    batch_release(c.out);
    batch_release(in);
    rbk_release(&r);
    free(r.cnt);
    td_free(NULL, td);
    td_free(NULL, otd);
    dict_free(dict);
}

/* ------------------------------------------------------- fused map+filter, compaction */

/* The chain: map (k, v) => (k, v * 3 + 1), then filter (_2 % 10 < 3): about 30% kept. */
typedef struct mf {
    bench *B;
    const int64_t *k, *v;
    const uint8_t *flags; /* compaction input */
    size_t n;
    int64_t *ok, *ov; /* reference output */
    uint32_t *oidx;
    size_t cnt[MAX_THREADS * 8];
    size_t total;
    ew_stage *st;
    sp_batch *in, *out;
} mf;

static void mf_part(void *ud, unsigned w, unsigned nw)
{
    mf *m = ud;
    size_t lo = chunk_lo(m->n, w, nw), hi = chunk_lo(m->n, w + 1, nw), j = lo;
    for (size_t i = lo; i < hi; i++) {
        int64_t v = m->v[i] * 3 + 1;
        m->ok[j] = m->k[i];
        m->ov[j] = v;
        j += v % 10 < 3;
    }
    m->cnt[w * 8] = j - lo;
}

static void mf_move(void *ud, unsigned w, unsigned nw)
{
    mf *m = ud;
    size_t at = 0;
    for (unsigned p = 0; p < w; p++)
        at += m->cnt[p * 8];
    size_t lo = chunk_lo(m->n, w, nw);
    memmove(m->ok + at, m->ok + lo, m->cnt[w * 8] * 8);
    memmove(m->ov + at, m->ov + lo, m->cnt[w * 8] * 8);
}

static int mf_ref(void *ud)
{
    mf *m = ud;
    unsigned nw = m->B->threads;
    par_run(nw, mf_part, m);
    if (nw > 1) {
        /* Sequential moves keep ranges from overlapping wrongly: worker w's target lies below
         * its source, and everything below was already moved. */
        for (unsigned w = 1; w < nw; w++)
            mf_move(m, w, nw);
    }
    m->total = 0;
    for (unsigned w = 0; w < nw; w++)
        m->total += m->cnt[w * 8];
    return 0;
}

static int mf_stage(void *ud)
{
    mf *m = ud;
    sp_diag d = {0};
    batch_release(m->out);
    m->out = NULL;
    if (ew_stage_run(m->st, m->B->exec, m->in, &m->out, &d)) {
        fprintf(stderr, "ew_stage_run: %s\n", d.msg);
        return 1;
    }
    return 0;
}

static int mf_check(const mf *m)
{
    if (!m->out || m->out->n != m->total) return 0;
    return !memcmp(m->out->cols[0].data, m->ok, m->total * 8) &&
           !memcmp(m->out->cols[1].data, m->ov, m->total * 8);
}

static sp_expr *mk(bench *B, expr_kind k, int n, sp_expr *const *kids)
{
    return expr_make(B->pool, k, n, kids);
}

static sp_expr *mk_lit(bench *B, int64_t v)
{
    sp_expr *e = mk(B, EX_I64, 0, NULL);
    if (e) e->i = v;
    return e;
}

static sp_expr *mk_field(bench *B, int i)
{
    sp_expr *a = mk(B, EX_ARG, 0, NULL);
    sp_expr *e = mk(B, EX_FIELD, 1, &a);
    if (e) e->index = i;
    return e;
}

static sp_expr *mk_bin(bench *B, sp_op op, sp_expr *a, sp_expr *b)
{
    sp_expr *k[2] = {a, b};
    sp_expr *e = mk(B, EX_BINOP, 2, k);
    if (e) e->op = op;
    return e;
}

static void bench_mapfilter(bench *B, size_t n, uint64_t *seed)
{
    sp_dict *dict = NULL;
    sp_td *td = NULL;
    sp_diag d = {0};
    if (dict_new(NULL, &dict) || td_parse(NULL, "(i64,i64)", &td, &d)) return;
    batch_env env = {NULL, dict, &B->arena, 1};
    mf m = {0};
    m.B = B;
    m.n = n;
    if (batch_new(&env, td, 1000, &m.in, &d) || col_reserve(&m.in->cols[0], n, 0) ||
        col_reserve(&m.in->cols[1], n, 0)) {
        fprintf(stderr, "ops_bench: batch: %s\n", d.msg);
        B->failed = 1;
        return;
    }
    int64_t *k = m.in->cols[0].data, *v = m.in->cols[1].data;
    for (size_t i = 0; i < n; i++) {
        k[i] = (int64_t)(bench_rnd(seed) % 1000000);
        v[i] = (int64_t)(bench_rnd(seed) % 1000000) - 500000;
    }
    m.in->cols[0].len = m.in->cols[1].len = n;
    m.in->n = n;
    batch_split_even(m.in, B->threads, NULL);
    m.k = k;
    m.v = v;
    m.ok = palloc(n * 8);
    m.ov = palloc(n * 8);
    const char *what = "map (k,v)=>(k,v*3+1) then filter _2%10<3 on in-memory columns; "
                       "compacted output batch";
    timing tr = time_it(B, mf_ref, &m);
    /* check the reference against a plain sequential count */
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += (v[i] * 3 + 1) % 10 < 3;
    double base =
        row(B, "map+filter", "reference-c", "host", n, n * 16, tr, want == m.total, 0, what);
    sp_expr *kv[2] = {
        mk_field(B, 0),
        mk_bin(B, SP_OP_ADD, mk_bin(B, SP_OP_MUL, mk_field(B, 1), mk_lit(B, 3)), mk_lit(B, 1))};
    sp_expr *map = mk(B, EX_TUPLE, 2, kv);
    sp_expr *pred =
        mk_bin(B, SP_OP_LT, mk_bin(B, SP_OP_MOD, mk_field(B, 1), mk_lit(B, 10)), mk_lit(B, 3));
    ew_step steps[2] = {{EW_MAP, map}, {EW_FILTER, pred}};
    for (int onhost = 0; onhost < 2; onhost++) {
        if (ew_stage_new(onhost ? NULL : B->dev, &env, td, 2, steps, "bench stage", &m.st, &d)) {
            fprintf(stderr, "ew_stage_new: %s\n", d.msg);
            B->failed = 1;
            continue;
        }
        int placed = ew_stage_on_device(m.st);
        timing t = time_it(B, mf_stage, &m);
        row(B, "map+filter", onhost ? "spate-host" : "spate-opencl", onhost ? "host" : B->devname,
            n, n * 16, t, !t.err && mf_check(&m) && placed == !onhost, base, what);
        ew_stage_free(m.st);
        m.st = NULL;
    }
    batch_release(m.out);
    batch_release(m.in);
    free(m.ok);
    free(m.ov);
    td_free(NULL, td);
    dict_free(dict);
}

static void cp_part(void *ud, unsigned w, unsigned nw)
{
    mf *m = ud;
    size_t lo = chunk_lo(m->n, w, nw), hi = chunk_lo(m->n, w + 1, nw), j = lo;
    for (size_t i = lo; i < hi; i++) {
        m->oidx[j] = (uint32_t)i;
        j += m->flags[i] != 0;
    }
    m->cnt[w * 8] = j - lo;
}

static int cp_ref(void *ud)
{
    mf *m = ud;
    unsigned nw = m->B->threads;
    par_run(nw, cp_part, m);
    size_t at = m->cnt[0];
    for (unsigned w = 1; w < nw; w++) {
        memmove(m->oidx + at, m->oidx + chunk_lo(m->n, w, nw), m->cnt[w * 8] * 4);
        at += m->cnt[w * 8];
    }
    m->total = at;
    return 0;
}

typedef struct cp_dev_job {
    mf *m;
    uint32_t *idx;
    size_t count;
} cp_dev_job;

static int cp_dev(void *ud)
{
    cp_dev_job *j = ud;
    sp_diag d = {0};
    if (kscan_compact(j->m->B->dev, j->m->flags, j->m->n, j->idx, &j->count, &d)) {
        fprintf(stderr, "kscan_compact: %s\n", d.msg);
        return 1;
    }
    return 0;
}

static void bench_compact(bench *B, size_t n, uint64_t *seed)
{
    mf m = {0};
    m.B = B;
    m.n = n;
    uint8_t *flags = palloc(n);
    for (size_t i = 0; i < n; i++)
        flags[i] = bench_rnd(seed) % 10 < 3;
    m.flags = flags;
    m.oidx = palloc(n * 4);
    const char *what = "indices of set u8 flags (30% set), in memory";
    timing tr = time_it(B, cp_ref, &m);
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += flags[i];
    double base =
        row(B, "filter-compaction", "reference-c", "host", n, n, tr, want == m.total, 0, what);
    cp_dev_job j = {&m, palloc(n * 4), 0};
    timing td = time_it(B, cp_dev, &j);
    row(B, "filter-compaction", "spate-opencl", B->devname, n, n, td,
        !td.err && j.count == m.total && !memcmp(j.idx, m.oidx, m.total * 4), base, what);
    free(j.idx);
    free(flags);
    free(m.oidx);
}

/* ----------------------------------------------------------- YSB on columnar events */

enum { YSB_ADS = 1000, YSB_CAMPAIGNS = 100, YSB_WINDOWS = 10 };

/* Pre-parsed YSB events in memory, one event-time batch per 10 s window (events arrive in
 * time order, so a window is a contiguous range): ad_id as a dictionary id, event_type as an
 * int (0 view, 1 click, 2 purchase). camp[ad] is the campaign table as a dense array (ads are
 * assigned to campaigns through a shuffle, so the lookup is a real join). */
typedef struct ysb {
    bench *B;
    size_t n, lo[YSB_WINDOWS + 1]; /* window w holds events [lo[w], lo[w+1]) */
    const uint32_t *ad;
    const int32_t *type;
    uint16_t camp[YSB_ADS];
    int64_t cnt[YSB_WINDOWS][YSB_CAMPAIGNS];               /* result */
    int64_t part[MAX_THREADS][YSB_WINDOWS][YSB_CAMPAIGNS]; /* reference partials */
    sp_batch *in[YSB_WINDOWS];                             /* engine input batches */
    ew_stage *st;
    batch_env *env;
    sp_td *otd;
} ysb;

static void ysb_part(void *ud, unsigned w, unsigned nw)
{
    ysb *y = ud;
    int64_t(*c)[YSB_CAMPAIGNS] = y->part[w];
    memset(c, 0, sizeof y->part[w]);
    for (int win = 0; win < YSB_WINDOWS; win++) {
        size_t len = y->lo[win + 1] - y->lo[win];
        size_t lo = y->lo[win] + chunk_lo(len, w, nw), hi = y->lo[win] + chunk_lo(len, w + 1, nw);
        int64_t *cw = c[win];
        for (size_t i = lo; i < hi; i++)
            cw[y->camp[y->ad[i]]] += y->type[i] == 0;
    }
}

/* Plain C: filter, join through the dense array and count in one pass, per-thread partials
 * (100 x 10 counters each) added at the end. */
static int ysb_ref(void *ud)
{
    ysb *y = ud;
    unsigned nw = y->B->threads;
    par_run(nw, ysb_part, y);
    for (int win = 0; win < YSB_WINDOWS; win++)
        for (int c = 0; c < YSB_CAMPAIGNS; c++) {
            int64_t s = 0;
            for (unsigned w = 0; w < nw; w++)
                s += y->part[w][win][c];
            y->cnt[win][c] = s;
        }
    return 0;
}

/* The engine, per window batch: the element-wise stage (filter _2 == 0, map _1) on the
 * device, keyed_aggregate COUNT over the ad's dictionary ids (the dense path), then the join
 * of the at most 1000 per-ad counts to their campaigns on the host: the aggregate is pushed
 * below the many-to-one join, which is exact for a count. */
static int ysb_engine(void *ud)
{
    ysb *y = ud;
    sp_diag d = {0};
    memset(y->cnt, 0, sizeof y->cnt);
    for (int win = 0; win < YSB_WINDOWS; win++) {
        sp_batch *views = NULL, *agg = NULL;
        if (ew_stage_run(y->st, y->B->exec, y->in[win], &views, &d) ||
            keyed_aggregate(y->B->dev, y->env, NULL, views, 1, -1, SP_AGG_COUNT, y->otd, &agg,
                            &d)) {
            fprintf(stderr, "ysb: %s\n", d.msg);
            batch_release(views);
            return 1;
        }
        const uint32_t *ids = agg->cols[0].data;
        const int64_t *c = agg->cols[1].data;
        for (size_t i = 0; i < agg->n; i++)
            y->cnt[win][y->camp[ids[i]]] += c[i];
        batch_release(views);
        batch_release(agg);
    }
    return 0;
}

static void bench_ysb(bench *B, size_t n, uint64_t *seed)
{
    sp_dict *dict = NULL;
    sp_td *td = NULL, *otd = NULL;
    sp_diag d = {0};
    ysb *y = calloc(1, sizeof *y);
    if (!y || dict_new(NULL, &dict) || td_parse(NULL, "(str,i32)", &td, &d) ||
        td_parse(NULL, "(str,i64)", &otd, &d)) {
        fprintf(stderr, "ops_bench: ysb set-up failed\n");
        B->failed = 1;
        free(y);
        return;
    }
    char buf[32];
    for (uint32_t a = 0; a < YSB_ADS; a++) {
        int len = snprintf(buf, sizeof buf, "ad-%u", a);
        if (dict_intern(dict, buf, (size_t)len) != a) B->failed = 1;
    }
    uint16_t perm[YSB_ADS];
    for (int a = 0; a < YSB_ADS; a++)
        perm[a] = (uint16_t)a;
    for (int a = YSB_ADS - 1; a > 0; a--) {
        int j = (int)(bench_rnd(seed) % (uint64_t)(a + 1));
        uint16_t t = perm[a];
        perm[a] = perm[j];
        perm[j] = t;
    }
    for (int a = 0; a < YSB_ADS; a++)
        y->camp[a] = (uint16_t)(perm[a] / (YSB_ADS / YSB_CAMPAIGNS));
    batch_env env = {NULL, dict, &B->arena, 1};
    y->B = B;
    y->n = n;
    y->env = &env;
    y->otd = otd;
    uint32_t *ad = palloc(n * 4);
    int32_t *type = palloc(n * 4);
    int64_t views = 0;
    for (size_t i = 0; i < n; i++) {
        ad[i] = (uint32_t)(bench_rnd(seed) % YSB_ADS);
        type[i] = (int32_t)(bench_rnd(seed) % 3);
        views += type[i] == 0;
    }
    y->ad = ad;
    y->type = type;
    /* events at t0 + i * 100 s / n: window w is [w n / 10, (w + 1) n / 10) */
    for (int w = 0; w <= YSB_WINDOWS; w++)
        y->lo[w] = n * (size_t)w / YSB_WINDOWS;
    for (int w = 0; w < YSB_WINDOWS; w++) {
        size_t m = y->lo[w + 1] - y->lo[w];
        sp_batch *b = NULL;
        if (batch_new(&env, td, 10000 * (w + 1), &b, &d) || col_reserve(&b->cols[0], m, 0) ||
            col_reserve(&b->cols[1], m, 0)) {
            fprintf(stderr, "ops_bench: ysb batch: %s\n", d.msg);
            B->failed = 1;
            return;
        }
        memcpy(b->cols[0].data, ad + y->lo[w], m * 4);
        memcpy(b->cols[1].data, type + y->lo[w], m * 4);
        b->cols[0].len = b->cols[1].len = m;
        b->n = m;
        batch_split_even(b, B->threads, NULL);
        y->in[w] = b;
    }
    const char *what = "pre-parsed columnar events in memory (ad_id dictionary id, event_type "
                       "int) in 10 event-time batches of 10 s: filter views, join ad->campaign "
                       "(dense array), count per campaign per window; bytes: the 8 read";
    timing tr = time_it(B, ysb_ref, y);
    int64_t tot = 0;
    for (int w = 0; w < YSB_WINDOWS; w++)
        for (int c = 0; c < YSB_CAMPAIGNS; c++)
            tot += y->cnt[w][c];
    int64_t want[YSB_WINDOWS][YSB_CAMPAIGNS];
    memcpy(want, y->cnt, sizeof want);
    double base =
        row(B, "ysb-columnar", "reference-c", "host", n, n * 8, tr, tot == views, 0, what);
    sp_expr *pred = mk_bin(B, SP_OP_EQ, mk_field(B, 1), mk_lit(B, 0));
    ew_step steps[2] = {{EW_FILTER, pred}, {EW_MAP, mk_field(B, 0)}};
    if (ew_stage_new(B->dev, &env, td, 2, steps, "ysb stage", &y->st, &d)) {
        fprintf(stderr, "ew_stage_new: %s\n", d.msg);
        B->failed = 1;
    } else {
        timing te = time_it(B, ysb_engine, y);
        row(B, "ysb-columnar", "spate-opencl", B->devname, n, n * 8, te,
            !te.err && !memcmp(want, y->cnt, sizeof want) && ew_stage_on_device(y->st), base, what);
        ew_stage_free(y->st);
    }
    for (int w = 0; w < YSB_WINDOWS; w++)
        batch_release(y->in[w]);
    free(ad);
    free(type);
    free(y);
    td_free(NULL, td);
    td_free(NULL, otd);
    dict_free(dict);
}

/* ------------------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    bench B = {0};
    B.threads = 1;
    B.reps = 5;
    size_t n_mebi = 16, max_size_mebi = 64;
    const char *only = "rbk,size,cbv,mapfilter,compact,ysb";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--quick")) {
            B.quick = 1;
        } else if (!strcmp(argv[i], "--threads")) {
            B.threads = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--reps")) {
            B.reps = atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--n")) {
            n_mebi = (size_t)atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--only")) {
            only = v;
            i++;
        } else if (!strcmp(argv[i], "--max-size-mebi")) {
            max_size_mebi = (size_t)atoi(v);
            i++;
        } else {
            fprintf(stderr, "usage: ops_bench [--quick] [--threads T] [--reps R] [--n MEBI] "
                            "[--max-size-mebi M] [--only LIST]\n");
            return 2;
        }
    }
    if (B.quick && n_mebi == 16) n_mebi = 4;
    if (B.quick) max_size_mebi = 4;
    if (B.threads < 1 || B.threads > MAX_THREADS || B.reps < 1 || B.reps > MAX_REPS || n_mebi < 1) {
        fprintf(stderr, "ops_bench: bad arguments\n");
        return 2;
    }
    size_t n = n_mebi << 20;
    sp_diag d = {0};
    dev_opts o = {0};
    o.use_cache = 1;
    topo_opts to = {0};
    if (dev_open(&o, &B.dev, &d) || topo_open(&to, &B.topo, &d) ||
        arena_new(B.topo, 0, 0, NULL, &B.arena, &d) ||
        exec_new(B.topo, B.threads, NULL, &B.exec, &d) || expr_pool_new(NULL, &B.pool)) {
        fprintf(stderr, "ops_bench: set-up failed: %s\n", d.msg);
        return 2;
    }
    snprintf(B.devname, sizeof B.devname, "%s", dev_get_info(B.dev)->name);
    for (char *c = B.devname; *c; c++)
        if (*c == '"' || *c == '\\') *c = ' ';

    uint64_t seed = 42;
    bench_bandwidth(&B);

    static const uint32_t ks_full[] = {16, 1u << 10, 1u << 16, 1u << 20, 1u << 24};
    static const uint32_t ks_quick[] = {16, 1u << 16};
    const uint32_t *ks = B.quick ? ks_quick : ks_full;
    size_t nks = B.quick ? 2 : 5;
    size_t nmax = n > (max_size_mebi << 20) ? n : max_size_mebi << 20;
    uint32_t *keys = palloc(nmax * 4);
    int64_t *vals = palloc(nmax * 8);
    for (size_t i = 0; i < nmax; i++)
        vals[i] = (int64_t)(bench_rnd(&seed) % 1000);
    char cas[64], kn[16];
    for (size_t i = 0; i < nks && strstr(only, "rbk"); i++) {
        kname(ks[i], kn, sizeof kn);
        snprintf(cas, sizeof cas, "reduceByKey K=%s", kn);
        bench_rbk(&B, cas, keys, vals, n, ks[i], &seed);
    }
    /* throughput against input size at K = 1Ki */
    for (size_t sz = 1024; sz <= (max_size_mebi << 20) && strstr(only, "size");
         sz *= B.quick ? 64 : 16) {
        bench_rbk(&B, "reduceByKey-size K=1Ki", keys, vals, sz, 1024, &seed);
    }
    free(keys);
    free(vals);
    for (size_t i = 0; i < nks && strstr(only, "cbv"); i++) {
        if (ks[i] > (1u << 20) && B.quick) continue;
        kname(ks[i], kn, sizeof kn);
        snprintf(cas, sizeof cas, "countByValue K=%s", kn);
        bench_cbv(&B, cas, n, ks[i], &seed);
    }
    if (strstr(only, "mapfilter")) bench_mapfilter(&B, n, &seed);
    if (strstr(only, "compact")) bench_compact(&B, n, &seed);
    if (strstr(only, "ysb")) bench_ysb(&B, n, &seed);

    expr_pool_free(B.pool);
    exec_free(B.exec);
    dev_close(B.dev);
    arena_free(B.arena);
    topo_close(B.topo);
    return B.failed ? 1 : 0;
}
