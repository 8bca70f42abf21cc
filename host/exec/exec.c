/* exec.c — the executor pool: n threads, each bound to one core, woken per exec_run.
 *
 * Protocol (all under x->mu): exec_run writes the run's parameters, sets active = n,
 * increments gen and broadcasts work_cv; every worker that sees a new gen copies the
 * parameters, drops the lock, runs its share, then decrements active, and the last one
 * signals done_cv. Because exec_run returns only when active reaches 0, every worker sees
 * every generation exactly once, and the mutex hand-off orders the tasks' writes before
 * exec_run's return. Nobody spins: idle workers sleep on work_cv, the caller on done_cv.
 *
 * Shares: with a node array each worker runs the tasks placed on it (order[begin, end),
 * filled by the caller before the wake-up) and nothing else, so placement is exact; without
 * one, workers take task numbers from one shared atomic counter (dynamic balance).
 * After a task fails, tasks not yet started are skipped. */
#include "exec/exec_int.h"
#include "util/mem_int.h"

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define EXEC_LINE 64          /* cache line: per-worker state never shares one */
#define EXEC_MAX_WORKERS 4096 /* sanity bound on n */

typedef struct exec_worker {
    _Alignas(EXEC_LINE) pthread_t thread;
    struct sp_exec *x;
    unsigned id;
    unsigned core;
    unsigned node;
    size_t begin; /* placed runs: this worker's tasks are order[begin, end) */
    size_t end;
} exec_worker;

struct sp_exec {
    sp_topo *t;
    sp_allocator alloc;
    void *raw;         /* allocation holding this struct (aligned inside it) */
    void *workers_raw; /* allocation holding w */
    exec_worker *w;    /* [n], each on its own cache lines */
    unsigned n;
    unsigned started; /* threads created */
    unsigned nodes;
    unsigned *node_off;  /* [nodes + 1]: executors of node k are node_list[off[k], off[k+1]) */
    unsigned *node_list; /* [n], ascending executor index within a node */
    size_t *order;       /* placed runs: task numbers grouped by executor */
    size_t order_cap;
    size_t *fill; /* [n] scratch for grouping */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    uint64_t gen;    /* run generation; guarded by mu */
    unsigned active; /* workers not yet done with gen; guarded by mu */
    int stop;        /* guarded by mu */
    exec_fn fn;      /* the run's parameters; guarded by mu */
    void *ud;
    size_t ntasks;
    int placed;

    _Alignas(EXEC_LINE) atomic_size_t next; /* dynamic runs: next task number to take */
    _Alignas(EXEC_LINE) atomic_int err;     /* first non-zero task return of the run */
};

/* `bytes` of zeroed memory aligned to EXEC_LINE through the allocator; *raw is what to
 * mem_free. */
static void *exec_alloc_aligned(const sp_allocator *a, size_t bytes, void **raw)
{
    if (bytes > SIZE_MAX - EXEC_LINE) return NULL;
    *raw = mem_alloc(a, bytes + EXEC_LINE);
    if (!*raw) return NULL;
    uintptr_t p = ((uintptr_t)*raw + EXEC_LINE - 1) & ~(uintptr_t)(EXEC_LINE - 1);
    memset((void *)p, 0, bytes);
    return (void *)p;
}

static void exec_note_error(sp_exec *x, int r)
{
    int zero = 0;
    atomic_compare_exchange_strong(&x->err, &zero, r);
}

static void exec_do_placed(sp_exec *x, exec_worker *w, size_t b, size_t e, exec_fn fn, void *ud)
{
    for (size_t i = b; i < e; i++) {
        if (atomic_load_explicit(&x->err, memory_order_relaxed) != 0) return;
        int r = fn(ud, x->order[i], w->id);
        if (r != 0) exec_note_error(x, r);
    }
}

static void exec_do_dynamic(sp_exec *x, exec_worker *w, size_t ntasks, exec_fn fn, void *ud)
{
    for (;;) {
        if (atomic_load_explicit(&x->err, memory_order_relaxed) != 0) return;
        size_t t = atomic_fetch_add_explicit(&x->next, 1, memory_order_relaxed);
        if (t >= ntasks) return;
        int r = fn(ud, t, w->id);
        if (r != 0) exec_note_error(x, r);
    }
}

static void *exec_main(void *arg)
{
    exec_worker *w = arg;
    sp_exec *x = w->x;
    topo_bind_thread(x->t, w->core);
    uint64_t seen = 0;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->stop && x->gen == seen)
            pthread_cond_wait(&x->work_cv, &x->mu);
        if (x->stop) break;
        seen = x->gen;
        exec_fn fn = x->fn;
        void *ud = x->ud;
        size_t ntasks = x->ntasks;
        int placed = x->placed;
        size_t b = w->begin, e = w->end;
        pthread_mutex_unlock(&x->mu);

        if (placed)
            exec_do_placed(x, w, b, e, fn, ud);
        else
            exec_do_dynamic(x, w, ntasks, fn, ud);

        pthread_mutex_lock(&x->mu);
        assert(x->active > 0);
        if (--x->active == 0) pthread_cond_signal(&x->done_cv);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* Stops and joins the started threads; frees everything. Safe on a half-built pool. */
static void exec_destroy(sp_exec *x, int sync_inited)
{
    if (sync_inited) {
        pthread_mutex_lock(&x->mu);
        x->stop = 1;
        pthread_cond_broadcast(&x->work_cv);
        pthread_mutex_unlock(&x->mu);
        for (unsigned i = 0; i < x->started; i++)
            pthread_join(x->w[i].thread, NULL);
        pthread_cond_destroy(&x->done_cv);
        pthread_cond_destroy(&x->work_cv);
        pthread_mutex_destroy(&x->mu);
    }
    sp_allocator a = x->alloc;
    mem_free(&a, x->order);
    mem_free(&a, x->fill);
    mem_free(&a, x->node_list);
    mem_free(&a, x->node_off);
    mem_free(&a, x->workers_raw);
    mem_free(&a, x->raw);
}

int exec_new(sp_topo *t, unsigned n, const sp_allocator *a, sp_exec **out, sp_diag *d)
{
    SP_CHECK(d, t && out, SP_EINVAL, "exec_new: NULL argument");
    *out = NULL;
    if (n == 0) n = topo_cores(t);
    SP_CHECK(d, n <= EXEC_MAX_WORKERS, SP_EINVAL, "exec_new: %u executors requested (at most %d)",
             n, EXEC_MAX_WORKERS);

    void *raw;
    sp_exec *x = exec_alloc_aligned(a, sizeof *x, &raw);
    if (!x) return diag_set(d, SP_ENOMEM, "exec_new: out of memory");
    x->raw = raw;
    if (a) x->alloc = *a;
    x->t = t;
    x->n = n;
    x->nodes = topo_numa_nodes(t);
    atomic_init(&x->next, 0);
    atomic_init(&x->err, 0);

    int rc;
    x->w = exec_alloc_aligned(a, (size_t)n * sizeof *x->w, &x->workers_raw);
    x->node_off = mem_calloc(a, (size_t)x->nodes + 1, sizeof *x->node_off);
    x->node_list = mem_calloc(a, n, sizeof *x->node_list);
    x->fill = mem_calloc(a, n, sizeof *x->fill);
    if (!x->w || !x->node_off || !x->node_list || !x->fill) {
        rc = diag_set(d, SP_ENOMEM, "exec_new: out of memory");
        goto fail;
    }

    /* Placement: executor i on core i % cores; node lists by counting sort (stable, so
     * each node's executors stay in ascending order). */
    unsigned cores = topo_cores(t);
    for (unsigned i = 0; i < n; i++) {
        exec_worker *w = &x->w[i];
        w->x = x;
        w->id = i;
        w->core = i % cores;
        w->node = topo_core_node(t, w->core);
        assert(w->node < x->nodes);
        x->node_off[w->node + 1]++;
    }
    for (unsigned k = 0; k < x->nodes; k++)
        x->node_off[k + 1] += x->node_off[k];
    for (unsigned i = 0; i < n; i++) {
        unsigned k = x->w[i].node;
        x->node_list[x->node_off[k] + x->fill[k]++] = i;
    }

    if (pthread_mutex_init(&x->mu, NULL) != 0) {
        rc = diag_set(d, SP_ERUNTIME, "exec_new: pthread_mutex_init failed");
        goto fail;
    }
    if (pthread_cond_init(&x->work_cv, NULL) != 0) {
        pthread_mutex_destroy(&x->mu);
        rc = diag_set(d, SP_ERUNTIME, "exec_new: pthread_cond_init failed");
        goto fail;
    }
    if (pthread_cond_init(&x->done_cv, NULL) != 0) {
        pthread_cond_destroy(&x->work_cv);
        pthread_mutex_destroy(&x->mu);
        rc = diag_set(d, SP_ERUNTIME, "exec_new: pthread_cond_init failed");
        goto fail;
    }

    /* Executors block all signals: they are delivered to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (unsigned i = 0; i < n && !err; i++) {
        err = pthread_create(&x->w[i].thread, NULL, exec_main, &x->w[i]);
        if (!err) x->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        rc = diag_set(d, SP_ERUNTIME, "exec_new: cannot start executor thread %u of %u: %s",
                      x->started, n, strerror(err));
        exec_destroy(x, 1);
        return rc;
    }
    *out = x;
    return SP_OK;

fail:
    exec_destroy(x, 0);
    return rc;
}

void exec_free(sp_exec *x)
{
    if (x) exec_destroy(x, 1);
}

unsigned exec_count(const sp_exec *x)
{
    return x->n;
}

unsigned exec_node(const sp_exec *x, unsigned w)
{
    assert(w < x->n);
    return x->w[w % x->n].node;
}

unsigned exec_core(const sp_exec *x, unsigned w)
{
    assert(w < x->n);
    return x->w[w % x->n].core;
}

unsigned exec_place(const sp_exec *x, unsigned node, size_t part)
{
    if (node < x->nodes) {
        unsigned cnt = x->node_off[node + 1] - x->node_off[node];
        if (cnt > 0) return x->node_list[x->node_off[node] + part % cnt];
    }
    return (unsigned)(part % x->n);
}

/* Groups the tasks by placed executor into x->order and sets each worker's range.
 * Cost: O(ntasks + n). */
static int exec_group(sp_exec *x, size_t ntasks, const unsigned *node)
{
    if (ntasks > x->order_cap) {
        if (ntasks > SIZE_MAX / sizeof *x->order) return SP_ENOMEM;
        size_t *o = mem_realloc(&x->alloc, x->order, ntasks * sizeof *o);
        if (!o) return SP_ENOMEM;
        x->order = o;
        x->order_cap = ntasks;
    }
    memset(x->fill, 0, x->n * sizeof *x->fill);
    for (size_t t = 0; t < ntasks; t++)
        x->fill[exec_place(x, node[t], t)]++;
    size_t pos = 0;
    for (unsigned i = 0; i < x->n; i++) {
        x->w[i].begin = x->w[i].end = pos;
        pos += x->fill[i];
    }
    for (size_t t = 0; t < ntasks; t++)
        x->order[x->w[exec_place(x, node[t], t)].end++] = t;
    return SP_OK;
}

int exec_run(sp_exec *x, size_t ntasks, const unsigned *node, exec_fn fn, void *ud)
{
    if (!x || !fn) return SP_EINVAL;
    if (ntasks == 0) return 0;
    if (!node && ntasks == 1) return fn(ud, 0, 0); /* no hand-off for a lone unplaced task */

    pthread_mutex_lock(&x->mu);
    assert(x->active == 0);
    if (node) {
        int r = exec_group(x, ntasks, node);
        if (r != SP_OK) {
            pthread_mutex_unlock(&x->mu);
            return r;
        }
    }
    x->fn = fn;
    x->ud = ud;
    x->ntasks = ntasks;
    x->placed = node != NULL;
    atomic_store(&x->next, 0);
    atomic_store(&x->err, 0);
    x->active = x->n;
    x->gen++;
    pthread_cond_broadcast(&x->work_cv);
    while (x->active > 0)
        pthread_cond_wait(&x->done_cv, &x->mu);
    int r = atomic_load(&x->err);
    pthread_mutex_unlock(&x->mu);
    return r;
}
