/* layers: util device exec */
/* test_exec.c — executor pool: placement on synthetic topologies, placed and dynamic runs,
 * error propagation, odd pool sizes, many runs in a row. */
#include "exec/exec_int.h"
#include "support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SYN_2X2X4 "pack:2 numa:2 core:4 pu:1"

static sp_topo *open_topo(const char *synthetic)
{
    topo_opts o = {.synthetic = synthetic};
    sp_topo *t = NULL;
    sp_diag d = {0};
    int rc = topo_open(&o, &t, &d);
    if (rc != SP_OK) fprintf(stderr, "topo_open: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    return t;
}

static sp_exec *new_exec(sp_topo *t, unsigned n)
{
    sp_exec *x = NULL;
    sp_diag d = {0};
    int rc = exec_new(t, n, NULL, &x, &d);
    if (rc != SP_OK) fprintf(stderr, "exec_new: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    assert_non_null(x);
    return x;
}

/* What every task records: the worker it ran on, how often it ran, the thread. */
typedef struct rec {
    size_t n;
    unsigned *worker;
    atomic_uint *runs;
    pthread_t *thread;
    size_t fail_task; /* task that returns fail_code; SIZE_MAX for none */
    int fail_code;
    atomic_size_t total;
} rec;

static void rec_init(rec *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->worker = calloc(n ? n : 1, sizeof *r->worker);
    r->runs = calloc(n ? n : 1, sizeof *r->runs);
    r->thread = calloc(n ? n : 1, sizeof *r->thread);
    assert_true(r->worker && r->runs && r->thread);
    for (size_t i = 0; i < n; i++)
        atomic_init(&r->runs[i], 0);
    atomic_init(&r->total, 0);
    r->fail_task = SIZE_MAX;
}

static void rec_free(rec *r)
{
    free(r->worker);
    free((void *)r->runs);
    free(r->thread);
}

static int rec_task(void *ud, size_t task, unsigned worker)
{
    rec *r = ud;
    if (task >= r->n) return -100; /* a task number out of range fails the run */
    r->worker[task] = worker;
    r->thread[task] = pthread_self();
    atomic_fetch_add(&r->runs[task], 1);
    atomic_fetch_add(&r->total, 1);
    return task == r->fail_task ? r->fail_code : 0;
}

static void test_placement_2x2x4(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 16);
    assert_int_equal(exec_count(x), 16);
    for (unsigned w = 0; w < 16; w++) {
        assert_int_equal(exec_core(x, w), w);
        assert_int_equal(exec_node(x, w), w / 4);
    }
    /* Partitions of node k go to node k's executors, round-robin by partition number. */
    for (unsigned k = 0; k < 4; k++) {
        unsigned seen[16] = {0};
        for (size_t p = 0; p < 40; p++) {
            unsigned w = exec_place(x, k, p);
            assert_int_equal(exec_node(x, w), k);
            assert_int_equal(w, k * 4 + p % 4);
            seen[w]++;
        }
        for (unsigned w = k * 4; w < k * 4 + 4; w++)
            assert_int_equal(seen[w], 10);
    }
    /* A node that has no executor: any executor, round-robin over all. */
    for (size_t p = 0; p < 40; p++)
        assert_int_equal(exec_place(x, 7, p), p % 16);
    exec_free(x);
    topo_close(t);
}

static void test_placement_wraps(void **state)
{
    /* 6 executors on 16 cores: only nodes 0 and 1 have executors. 0 executors: per core. */
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 6);
    for (unsigned w = 0; w < 6; w++)
        assert_int_equal(exec_node(x, w), w / 4);
    assert_int_equal(exec_place(x, 1, 0), 4);
    assert_int_equal(exec_place(x, 1, 1), 5);
    assert_int_equal(exec_place(x, 1, 2), 4);
    assert_int_equal(exec_place(x, 2, 9), 9 % 6);
    exec_free(x);

    /* 20 executors on 16 cores: executors 16..19 share cores 0..3 (node 0). */
    x = new_exec(t, 20);
    for (unsigned w = 0; w < 20; w++) {
        assert_int_equal(exec_core(x, w), w % 16);
        assert_int_equal(exec_node(x, w), (w % 16) / 4);
    }
    const unsigned node0[] = {0, 1, 2, 3, 16, 17, 18, 19};
    for (size_t p = 0; p < 24; p++)
        assert_int_equal(exec_place(x, 0, p), node0[p % 8]);
    exec_free(x);

    x = new_exec(t, 0);
    assert_int_equal(exec_count(x), 16);
    exec_free(x);
    topo_close(t);
}

/* Placed runs: every task runs once, on the executor exec_place names. */
static void check_placed(sp_exec *x, unsigned nodes, size_t ntasks, uint64_t *seed)
{
    unsigned *node = calloc(ntasks ? ntasks : 1, sizeof *node);
    for (size_t i = 0; i < ntasks; i++)
        node[i] = (unsigned)tu_rand_below(seed, 5); /* 4 = a node with no executors */
    rec r;
    rec_init(&r, ntasks);
    assert_int_equal(exec_run(x, ntasks, node, rec_task, &r), 0);
    assert_int_equal(atomic_load(&r.total), ntasks);
    for (size_t i = 0; i < ntasks; i++) {
        assert_int_equal(atomic_load(&r.runs[i]), 1);
        unsigned want = exec_place(x, node[i], i);
        assert_int_equal(r.worker[i], want);
        if (node[i] < nodes) assert_int_equal(exec_node(x, r.worker[i]), node[i]);
    }
    /* Same worker number means the same thread; different workers, different threads. */
    for (size_t i = 1; i < ntasks; i++) {
        size_t j = tu_rand_below(seed, i);
        assert_int_equal(r.worker[i] == r.worker[j], pthread_equal(r.thread[i], r.thread[j]) != 0);
        assert_false(pthread_equal(r.thread[i], pthread_self()));
    }
    rec_free(&r);
    free(node);
}

static void test_run_placed(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 16);
    uint64_t seed = 42;
    const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 255, 1000, 4099};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_placed(x, 4, sizes[i], &seed);
    exec_free(x);
    topo_close(t);
}

static void check_dynamic(sp_exec *x, size_t ntasks)
{
    rec r;
    rec_init(&r, ntasks);
    assert_int_equal(exec_run(x, ntasks, NULL, rec_task, &r), 0);
    assert_int_equal(atomic_load(&r.total), ntasks);
    for (size_t i = 0; i < ntasks; i++) {
        assert_int_equal(atomic_load(&r.runs[i]), 1);
        assert_true(r.worker[i] < exec_count(x));
    }
    rec_free(&r);
}

static void test_run_dynamic(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 16);
    const size_t sizes[] = {0, 1, 3, 16, 17, 1000, 10007};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_dynamic(x, sizes[i]);
    exec_free(x);
    topo_close(t);
}

static void test_run_zero_tasks(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 4);
    rec r;
    rec_init(&r, 0);
    assert_int_equal(exec_run(x, 0, NULL, rec_task, &r), 0);
    assert_int_equal(exec_run(x, 0, (const unsigned[]){0}, rec_task, &r), 0);
    assert_int_equal(atomic_load(&r.total), 0);
    assert_int_equal(exec_run(x, 3, NULL, NULL, &r), SP_EINVAL);
    rec_free(&r);
    exec_free(x);
    topo_close(t);
}

static void test_run_error(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 16);
    const size_t ntasks = 500;
    unsigned *node = calloc(ntasks, sizeof *node);
    for (size_t i = 0; i < ntasks; i++)
        node[i] = (unsigned)(i % 4);
    for (int placed = 0; placed < 2; placed++) {
        for (size_t fail = 0; fail < ntasks; fail += 97) {
            rec r;
            rec_init(&r, ntasks);
            r.fail_task = fail;
            r.fail_code = -5;
            assert_int_equal(exec_run(x, ntasks, placed ? node : NULL, rec_task, &r), -5);
            /* The failing task ran; no task ran twice; later tasks may have been skipped. */
            assert_int_equal(atomic_load(&r.runs[fail]), 1);
            size_t total = 0;
            for (size_t i = 0; i < ntasks; i++) {
                assert_true(atomic_load(&r.runs[i]) <= 1);
                total += atomic_load(&r.runs[i]);
            }
            assert_int_equal(total, atomic_load(&r.total));
            rec_free(&r);
            /* The pool is intact after a failure. */
            check_dynamic(x, 100);
        }
    }
    /* A lone task's failure too. */
    rec r;
    rec_init(&r, 1);
    r.fail_task = 0;
    r.fail_code = -7;
    assert_int_equal(exec_run(x, 1, NULL, rec_task, &r), -7);
    assert_int_equal(exec_run(x, 1, node, rec_task, &r), -7);
    rec_free(&r);
    free(node);
    exec_free(x);
    topo_close(t);
}

static void test_one_executor(void **state)
{
    sp_topo *t = open_topo("pack:1 numa:1 core:1 pu:1");
    sp_exec *x = new_exec(t, 0);
    assert_int_equal(exec_count(x), 1);
    assert_int_equal(exec_place(x, 0, 12345), 0);
    assert_int_equal(exec_place(x, 3, 12345), 0);
    uint64_t seed = 7;
    check_placed(x, 1, 0, &seed);
    check_placed(x, 1, 1, &seed);
    check_placed(x, 1, 333, &seed);
    check_dynamic(x, 1);
    check_dynamic(x, 333);
    exec_free(x);
    /* More executors than the single core. */
    x = new_exec(t, 5);
    for (unsigned w = 0; w < 5; w++) {
        assert_int_equal(exec_core(x, w), 0);
        assert_int_equal(exec_node(x, w), 0);
    }
    check_placed(x, 1, 50, &seed);
    check_dynamic(x, 50);
    exec_free(x);
    topo_close(t);
}

static void test_real_system_oversubscribed(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    topo_opts o = {.log = log};
    sp_topo *t = NULL;
    assert_int_equal(topo_open(&o, &t, NULL), SP_OK);
    unsigned n = topo_cores(t) * 3 + 1;
    sp_exec *x = new_exec(t, n);
    assert_int_equal(exec_count(x), n);
    for (unsigned w = 0; w < n; w++) {
        assert_int_equal(exec_core(x, w), w % topo_cores(t));
        assert_true(exec_node(x, w) < topo_numa_nodes(t));
    }
    check_dynamic(x, 2000);
    unsigned *node = calloc(777, sizeof *node);
    for (size_t i = 0; i < 777; i++)
        node[i] = (unsigned)(i % topo_numa_nodes(t));
    rec r;
    rec_init(&r, 777);
    assert_int_equal(exec_run(x, 777, node, rec_task, &r), 0);
    for (size_t i = 0; i < 777; i++) {
        assert_int_equal(atomic_load(&r.runs[i]), 1);
        assert_int_equal(r.worker[i], exec_place(x, node[i], i));
    }
    rec_free(&r);
    free(node);
    exec_free(x);
    topo_close(t);
    fclose(log);
    /* At most one binding warning, however many executors were refused. */
    if (len) {
        char *first = strstr(buf, "cannot bind");
        assert_non_null(first);
        assert_null(strstr(first + 1, "cannot bind"));
    }
    free(buf);
}

/* Sums task numbers; used for back-to-back runs. */
static int sum_task(void *ud, size_t task, unsigned worker)
{
    atomic_fetch_add((atomic_size_t *)ud, task + 1);
    return 0;
}

static void test_many_runs(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    sp_exec *x = new_exec(t, 16);
    uint64_t seed = 1234;
    unsigned node[64];
    for (int i = 0; i < 1000; i++) {
        size_t ntasks = tu_rand_below(&seed, 64);
        atomic_size_t sum;
        atomic_init(&sum, 0);
        const unsigned *np = NULL;
        if (i % 2) {
            for (size_t k = 0; k < ntasks; k++)
                node[k] = (unsigned)tu_rand_below(&seed, 4);
            np = node;
        }
        assert_int_equal(exec_run(x, ntasks, np, sum_task, &sum), 0);
        assert_int_equal(atomic_load(&sum), ntasks * (ntasks + 1) / 2);
    }
    exec_free(x);
    topo_close(t);
}

static void test_create_free_repeatedly(void **state)
{
    /* Pools that are freed right after creation (threads possibly not yet started). */
    sp_topo *t = open_topo(SYN_2X2X4);
    for (int i = 0; i < 50; i++) {
        sp_exec *x = new_exec(t, (unsigned)(i % 7) + 1);
        if (i % 3 == 0) check_dynamic(x, 10);
        exec_free(x);
    }
    exec_free(NULL);
    sp_exec *x = NULL;
    sp_diag d = {0};
    assert_int_equal(exec_new(NULL, 1, NULL, &x, &d), SP_EINVAL);
    assert_int_equal(exec_new(t, 1u << 20, NULL, &x, &d), SP_EINVAL);
    assert_null(x);
    topo_close(t);
}

/* Allocator that fails the Nth allocation. */
typedef struct failing {
    int countdown;
} failing;

static void *failing_alloc(void *ud, void *ptr, size_t n)
{
    failing *f = ud;
    if (n == 0) {
        free(ptr);
        return NULL;
    }
    if (f->countdown-- == 0) return NULL;
    return realloc(ptr, n);
}

static void test_alloc_failure(void **state)
{
    sp_topo *t = open_topo(SYN_2X2X4);
    int ok = 0;
    for (int k = 0; k < 20 && !ok; k++) {
        failing f = {.countdown = k};
        sp_allocator a = {failing_alloc, &f};
        sp_exec *x = NULL;
        sp_diag d = {0};
        int rc = exec_new(t, 8, &a, &x, &d);
        if (rc == SP_OK) {
            ok = 1;
            /* The order buffer is allocated on the first placed run: it may fail cleanly. */
            f.countdown = 0;
            unsigned node[10] = {0};
            atomic_size_t sum;
            atomic_init(&sum, 0);
            assert_int_equal(exec_run(x, 10, node, sum_task, &sum), SP_ENOMEM);
            assert_int_equal(atomic_load(&sum), 0);
            assert_int_equal(exec_run(x, 10, node, sum_task, &sum), 0);
            assert_int_equal(atomic_load(&sum), 55);
            exec_free(x);
        } else {
            assert_int_equal(rc, SP_ENOMEM);
            assert_null(x);
            assert_non_null(strstr(d.msg, "exec_new"));
        }
    }
    assert_true(ok);
    topo_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_2x2x4), cmocka_unit_test(test_placement_wraps),
        cmocka_unit_test(test_run_placed),      cmocka_unit_test(test_run_dynamic),
        cmocka_unit_test(test_run_zero_tasks),  cmocka_unit_test(test_run_error),
        cmocka_unit_test(test_one_executor),    cmocka_unit_test(test_real_system_oversubscribed),
        cmocka_unit_test(test_many_runs),       cmocka_unit_test(test_create_free_repeatedly),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
