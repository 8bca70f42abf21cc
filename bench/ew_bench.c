/* ew_bench.c — element-wise stages against the best plain-C loop, side by side in one run:
 * fused map+filter (ew_stage_run on the OpenCL device) and filter compaction (kscan_compact),
 * from 1 Ki to 64 Mi rows, at one and at two threads.
 *
 *   ew_bench [--threads T] [--reps R] [--min-kibi K] [--max-mebi M] [--quick]
 *
 * Without --threads the program runs itself twice, in child processes, at one thread and at
 * two (the device's thread count is POCL_MAX_PTHREAD_COUNT, read once when the device opens,
 * so each thread count needs its own process), and prints one table.
 *
 * map+filter: map (k, v) => (k, v * 3 + 1) then filter _2 % 10 < 3 on an (i64,i64) batch of
 * in-memory columns split into T partitions; about 30% of the rows are kept. The C loop is
 * one fused pass per thread writing rows branch-free into a preallocated output, then the
 * per-thread pieces moved together. compaction: indices of set u8 flags (30% set), C loop
 * likewise. The best plain-C loop at T threads is the faster of the loop on one thread and
 * on a persistent pool of T threads (small inputs do not pay for waking threads). Times are the
 * minimum over R runs after one untimed warm-up (kernel builds, page faults), each run repeated
 * until it lasts about a millisecond for small sizes. Every Spate result is compared with the C
 * loop's; a mismatch prints "WRONG" and makes the exit status 1. Records/s count input rows. */
#include "benchutil.h"
#include "ops/ew_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EB_MAX_THREADS 64

static void *eb_alloc(size_t bytes)
{
    void *p = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096);
    if (!p) {
        fprintf(stderr, "ew_bench: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    memset(p, 0, bytes); /* fault the pages in before timing */
    return p;
}

static size_t eb_chunk(size_t n, unsigned w, unsigned nw)
{
    return n / nw * w + (w < n % nw ? w : n % nw);
}

typedef void (*eb_fn)(void *ud, unsigned w, unsigned nw);

/* A persistent pool of nw - 1 threads (worker 0 is the caller), woken by a condition
 * variable per call: what a parallel C program would keep between batches. */
typedef struct eb_pool {
    unsigned nw;
    pthread_t th[EB_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;
    unsigned pending;
    int quit;
    eb_fn fn;
    void *ud;
} eb_pool;

typedef struct eb_worker {
    eb_pool *p;
    unsigned w;
} eb_worker;

static eb_worker eb_workers[EB_MAX_THREADS];

static void *eb_main(void *arg)
{
    eb_worker *me = arg;
    eb_pool *p = me->p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ud, me->w, p->nw);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void eb_pool_start(eb_pool *p, unsigned nw)
{
    memset(p, 0, sizeof *p);
    p->nw = nw;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (unsigned w = 1; w < nw; w++) {
        eb_workers[w] = (eb_worker){p, w};
        if (pthread_create(&p->th[w], NULL, eb_main, &eb_workers[w])) {
            fprintf(stderr, "ew_bench: pthread_create failed\n");
            exit(2);
        }
    }
}

static void eb_pool_stop(eb_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned w = 1; w < p->nw; w++)
        pthread_join(p->th[w], NULL);
}

/* fn(ud, w, nw) for w < nw (the pool's size), worker 0 on the caller. */
static void eb_par(eb_pool *p, eb_fn fn, void *ud)
{
    if (p->nw > 1) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->ud = ud;
        p->pending = p->nw - 1;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ud, 0, p->nw);
    if (p->nw > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->pending)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

typedef struct eb {
    unsigned threads;
    eb_pool pool1, pool; /* one thread; `threads` threads */
    int reps;
    sp_dev *dev;
    sp_topo *topo;
    sp_arena *arena;
    sp_exec *exec;
    sp_dict *dict;
    batch_env env;
    int failed;
} eb;

typedef int (*eb_run)(void *ud);

/* Minimum seconds per call over reps, each rep `inner` calls; -1 on error. */
static double eb_time(const eb *B, size_t n, eb_run fn, void *ud)
{
    if (fn(ud)) return -1;
    size_t inner = n >= (1u << 18) ? 1 : (1u << 18) / (n ? n : 1);
    double best = 1e30;
    for (int r = 0; r < B->reps; r++) {
        double t0 = bench_now();
        for (size_t k = 0; k < inner; k++)
            if (fn(ud)) return -1;
        double s = (bench_now() - t0) / (double)inner;
        if (s < best) best = s;
    }
    return best;
}

static void eb_row(eb *B, const char *cas, size_t n, double tc, double ts, int ok)
{
    if (!ok) B->failed = 1;
    double rc = tc > 0 ? (double)n / tc : 0, rs = ts > 0 ? (double)n / ts : 0;
    printf("| %-17s | %7u | %9zu | %12.4g | %12.4g | %7.3f | %-5s |\n", cas, B->threads, n, rc, rs,
           rc > 0 ? rs / rc : 0.0, ok ? "yes" : "WRONG");
    fflush(stdout);
}

/* ------------------------------------------------------------------------ map+filter */

typedef struct mf {
    const eb *B;
    eb_pool *pool; /* the C loop's threads */
    size_t n;
    const int64_t *k, *v;
    int64_t *ok, *ov;
    size_t cnt[EB_MAX_THREADS * 8];
    size_t total;
    ew_stage *st;
    sp_batch *in, *out;
} mf;

static void mf_part(void *ud, unsigned w, unsigned nw)
{
    mf *m = ud;
    size_t lo = eb_chunk(m->n, w, nw), hi = eb_chunk(m->n, w + 1, nw), j = lo;
    const int64_t *restrict k = m->k, *restrict v = m->v;
    int64_t *restrict ok = m->ok, *restrict ov = m->ov;
    for (size_t i = lo; i < hi; i++) {
        int64_t x = v[i] * 3 + 1;
        ok[j] = k[i];
        ov[j] = x;
        j += x % 10 < 3;
    }
    m->cnt[w * 8] = j - lo;
}

static int mf_ref(void *ud)
{
    mf *m = ud;
    unsigned nw = m->pool->nw;
    eb_par(m->pool, mf_part, m);
    size_t at = m->cnt[0];
    for (unsigned w = 1; w < nw; w++) {
        size_t lo = eb_chunk(m->n, w, nw);
        memmove(m->ok + at, m->ok + lo, m->cnt[w * 8] * 8);
        memmove(m->ov + at, m->ov + lo, m->cnt[w * 8] * 8);
        at += m->cnt[w * 8];
    }
    m->total = at;
    return 0;
}

static int mf_spate(void *ud)
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

static sp_expr *eb_node(expr_pool *P, expr_kind k, int n, sp_expr *const *kids)
{
    sp_expr *e = expr_make(P, k, n, kids);
    if (!e) {
        fprintf(stderr, "ew_bench: out of memory\n");
        exit(2);
    }
    return e;
}

static sp_expr *eb_lit(expr_pool *P, int64_t v)
{
    sp_expr *e = eb_node(P, EX_I64, 0, NULL);
    e->i = v;
    return e;
}

static sp_expr *eb_field(expr_pool *P, int i)
{
    sp_expr *a = eb_node(P, EX_ARG, 0, NULL);
    sp_expr *e = eb_node(P, EX_FIELD, 1, &a);
    e->index = i;
    return e;
}

static sp_expr *eb_bin(expr_pool *P, sp_op op, sp_expr *a, sp_expr *b)
{
    sp_expr *k[2] = {a, b};
    sp_expr *e = eb_node(P, EX_BINOP, 2, k);
    e->op = op;
    return e;
}

static void eb_mapfilter(eb *B, size_t n, uint64_t *seed)
{
    mf m = {0};
    m.B = B;
    m.n = n;
    sp_diag d = {0};
    sp_td *td = NULL;
    expr_pool *P = NULL;
    if (td_parse(NULL, "(i64,i64)", &td, &d) || expr_pool_new(NULL, &P) ||
        batch_new(&B->env, td, 1000, &m.in, &d) || col_reserve(&m.in->cols[0], n, 0) ||
        col_reserve(&m.in->cols[1], n, 0)) {
        fprintf(stderr, "ew_bench: set-up: %s\n", d.msg);
        exit(2);
    }
    int64_t *k = m.in->cols[0].data, *v = m.in->cols[1].data;
    for (size_t i = 0; i < n; i++) {
        k[i] = (int64_t)(bench_rnd(seed) % 1000000);
        v[i] = (int64_t)(bench_rnd(seed) % 1000000) - 500000;
    }
    m.in->cols[0].len = m.in->cols[1].len = m.in->n = n;
    batch_split_even(m.in, B->threads, NULL);
    m.k = k;
    m.v = v;
    m.ok = eb_alloc(n * 8);
    m.ov = eb_alloc(n * 8);
    sp_expr *kv[2] = {
        eb_field(P, 0),
        eb_bin(P, SP_OP_ADD, eb_bin(P, SP_OP_MUL, eb_field(P, 1), eb_lit(P, 3)), eb_lit(P, 1))};
    ew_step steps[2] = {
        {EW_MAP, eb_node(P, EX_TUPLE, 2, kv)},
        {EW_FILTER,
         eb_bin(P, SP_OP_LT, eb_bin(P, SP_OP_MOD, eb_field(P, 1), eb_lit(P, 10)), eb_lit(P, 3))},
    };
    if (ew_stage_new(B->dev, &B->env, td, 2, steps, "bench stage", &m.st, &d)) {
        fprintf(stderr, "ew_stage_new: %s\n", d.msg);
        exit(2);
    }
    m.pool = &B->pool1;
    double tc = eb_time(B, n, mf_ref, &m);
    if (B->threads > 1) {
        m.pool = &B->pool;
        double t2 = eb_time(B, n, mf_ref, &m);
        tc = t2 >= 0 && t2 < tc ? t2 : tc;
    }
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += (v[i] * 3 + 1) % 10 < 3;
    double ts = eb_time(B, n, mf_spate, &m);
    int ok = tc >= 0 && ts >= 0 && want == m.total && ew_stage_on_device(m.st) && m.out &&
             m.out->n == m.total && !memcmp(m.out->cols[0].data, m.ok, m.total * 8) &&
             !memcmp(m.out->cols[1].data, m.ov, m.total * 8);
    eb_row(B, "map+filter", n, tc, ts, ok);
    ew_stage_free(m.st);
    batch_release(m.out);
    batch_release(m.in);
    free(m.ok);
    free(m.ov);
    td_free(NULL, td);
    expr_pool_free(P);
}

/* ------------------------------------------------------------------------ compaction */

typedef struct cp {
    const eb *B;
    eb_pool *pool;
    size_t n;
    const uint8_t *flags;
    uint32_t *oidx, *sidx;
    size_t cnt[EB_MAX_THREADS * 8];
    size_t total, scount;
} cp;

static void cp_part(void *ud, unsigned w, unsigned nw)
{
    cp *c = ud;
    size_t lo = eb_chunk(c->n, w, nw), hi = eb_chunk(c->n, w + 1, nw), j = lo;
    const uint8_t *restrict f = c->flags;
    uint32_t *restrict o = c->oidx;
    for (size_t i = lo; i < hi; i++) {
        o[j] = (uint32_t)i;
        j += f[i] != 0;
    }
    c->cnt[w * 8] = j - lo;
}

static int cp_ref(void *ud)
{
    cp *c = ud;
    unsigned nw = c->pool->nw;
    eb_par(c->pool, cp_part, c);
    size_t at = c->cnt[0];
    for (unsigned w = 1; w < nw; w++) {
        memmove(c->oidx + at, c->oidx + eb_chunk(c->n, w, nw), c->cnt[w * 8] * 4);
        at += c->cnt[w * 8];
    }
    c->total = at;
    return 0;
}

static int cp_spate(void *ud)
{
    cp *c = ud;
    sp_diag d = {0};
    if (kscan_compact(c->B->dev, c->flags, c->n, c->sidx, &c->scount, &d)) {
        fprintf(stderr, "kscan_compact: %s\n", d.msg);
        return 1;
    }
    return 0;
}

static void eb_compact(eb *B, size_t n, uint64_t *seed)
{
    cp c = {0};
    c.B = B;
    c.n = n;
    uint8_t *flags = eb_alloc(n);
    for (size_t i = 0; i < n; i++)
        flags[i] = bench_rnd(seed) % 10 < 3;
    c.flags = flags;
    c.oidx = eb_alloc(n * 4);
    c.sidx = eb_alloc(n * 4);
    c.pool = &B->pool1;
    double tc = eb_time(B, n, cp_ref, &c);
    if (B->threads > 1) {
        c.pool = &B->pool;
        double t2 = eb_time(B, n, cp_ref, &c);
        tc = t2 >= 0 && t2 < tc ? t2 : tc;
    }
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += flags[i];
    double ts = eb_time(B, n, cp_spate, &c);
    int ok = tc >= 0 && ts >= 0 && want == c.total && c.scount == c.total &&
             !memcmp(c.sidx, c.oidx, c.total * 4);
    eb_row(B, "filter-compaction", n, tc, ts, ok);
    free(flags);
    free(c.oidx);
    free(c.sidx);
}

/* ----------------------------------------------------------------------------- main */

static int eb_one(unsigned threads, int reps, size_t min_n, size_t max_n)
{
    char v[16];
    snprintf(v, sizeof v, "%u", threads);
    setenv("POCL_MAX_PTHREAD_COUNT", v, 1);
    eb B = {0};
    B.threads = threads;
    B.reps = reps;
    sp_diag d = {0};
    dev_opts o = {0};
    o.use_cache = 1;
    topo_opts to = {0};
    if (dev_open(&o, &B.dev, &d) || topo_open(&to, &B.topo, &d) ||
        arena_new(B.topo, 0, 0, NULL, &B.arena, &d) ||
        exec_new(B.topo, threads, NULL, &B.exec, &d) || dict_new(NULL, &B.dict)) {
        fprintf(stderr, "ew_bench: set-up failed: %s\n", d.msg);
        return 2;
    }
    B.env = (batch_env){NULL, B.dict, &B.arena, 1};
    eb_pool_start(&B.pool1, 1);
    eb_pool_start(&B.pool, threads);
    uint64_t seed = 42;
    for (size_t n = min_n; n <= max_n; n *= 4)
        eb_mapfilter(&B, n, &seed);
    for (size_t n = min_n; n <= max_n; n *= 4)
        eb_compact(&B, n, &seed);
    eb_pool_stop(&B.pool1);
    eb_pool_stop(&B.pool);
    dict_free(B.dict);
    exec_free(B.exec);
    dev_close(B.dev);
    arena_free(B.arena);
    topo_close(B.topo);
    return B.failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    unsigned threads = 0;
    int reps = 5;
    size_t min_kibi = 1, max_mebi = 64;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(argv[i], "--threads")) {
            threads = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--reps")) {
            reps = atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--min-kibi")) {
            min_kibi = (size_t)atol(v);
            i++;
        } else if (!strcmp(argv[i], "--max-mebi")) {
            max_mebi = (size_t)atol(v);
            i++;
        } else if (!strcmp(argv[i], "--quick")) {
            reps = 3;
            max_mebi = 4;
        } else {
            fprintf(stderr, "usage: ew_bench [--threads T] [--reps R] [--min-kibi K] "
                            "[--max-mebi M] [--quick]\n");
            return 2;
        }
    }
    if (reps < 1 || min_kibi < 1 || max_mebi < 1 || threads > EB_MAX_THREADS) {
        fprintf(stderr, "ew_bench: bad arguments\n");
        return 2;
    }
    size_t min_n = min_kibi << 10, max_n = max_mebi << 20;
    printf("records/s of input rows; C: best plain-C loop; spate: device path (POCL threads = "
           "threads); min of %d runs\n\n",
           reps);
    printf("| case              | threads |      rows  |   C rec/s    | spate rec/s  |  × C    "
           "| ok    |\n");
    printf("|---|---:|---:|---:|---:|---:|:-:|\n");
    fflush(stdout);
    if (threads) return eb_one(threads, reps, min_n, max_n);
    int rc = 0;
    for (unsigned t = 1; t <= 2; t++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("ew_bench: fork");
            return 2;
        }
        if (pid == 0) _exit(eb_one(t, reps, min_n, max_n));
        int st = 0;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) rc = 1;
    }
    return rc;
}
