/* layers: util device exec batch */
#include "batch/arena_int.h"
#include "support/testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static sp_topo *open_topo(void)
{
    topo_opts o = {0};
    o.synthetic = "pack:1 numa:1 core:2 pu:1";
    sp_topo *t = NULL;
    sp_diag d = {0};
    assert_int_equal(topo_open(&o, &t, &d), 0);
    assert_non_null(t);
    return t;
}

static void test_reuse_same_class(void **state)
{
    (void)state;
    sp_topo *t = open_topo();
    sp_arena *ar;
    assert_int_equal(arena_new(t, 0, 0, NULL, &ar, NULL), 0);
    assert_int_equal(arena_node(ar), 0);
    size_t cap1, cap2;
    void *p = arena_get(ar, 5000, &cap1);
    assert_non_null(p);
    assert_int_equal(cap1, 8192);
    memset(p, 0xab, cap1);
    arena_stats s;
    arena_get_stats(ar, &s);
    assert_int_equal(s.live_bytes, 8192);
    assert_int_equal(s.mapped_total, 1);
    assert_int_equal(s.reused_total, 0);
    arena_put(ar, p, cap1);
    arena_get_stats(ar, &s);
    assert_int_equal(s.live_bytes, 0);
    assert_int_equal(s.cached_bytes, 8192);
    void *q = arena_get(ar, 8192, &cap2); /* same class */
    assert_ptr_equal(q, p);
    assert_int_equal(cap2, 8192);
    arena_get_stats(ar, &s);
    assert_int_equal(s.reused_total, 1);
    assert_int_equal(s.mapped_total, 1);
    assert_int_equal(s.cached_bytes, 0);
    /* A different class does not take the cached block. */
    arena_put(ar, q, cap2);
    void *r = arena_get(ar, 1, &cap1);
    assert_int_equal(cap1, 4096);
    arena_get_stats(ar, &s);
    assert_int_equal(s.mapped_total, 2);
    assert_int_equal(s.reused_total, 1);
    arena_put(ar, r, cap1);
    arena_free(ar);
    topo_close(t);
}

static void test_many_sizes_aligned(void **state)
{
    (void)state;
    sp_topo *t = open_topo();
    sp_arena *ar;
    assert_int_equal(arena_new(t, 0, 0, NULL, &ar, NULL), 0);
    uint64_t rng = 42;
    enum { N = 200 };
    void *p[N];
    size_t cap[N], want[N];
    for (int i = 0; i < N; i++) {
        want[i] = i < 3 ? (size_t)(i == 0   ? 1
                                   : i == 1 ? 4096
                                            : 4097)
                        : 1 + tu_rand_below(&rng, 1u << (1 + tu_rand_below(&rng, 21)));
        p[i] = arena_get(ar, want[i], &cap[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 4096, 0);
        assert_true(cap[i] >= want[i] && cap[i] >= 4096);
        assert_int_equal(cap[i] & (cap[i] - 1), 0); /* power of two */
        assert_true(cap[i] < 2 * want[i] || cap[i] == 4096);
        memset(p[i], i & 0xff, want[i]);
    }
    for (int i = 0; i < N; i++) {
        unsigned char *b = p[i];
        assert_int_equal(b[0], i & 0xff);
        assert_int_equal(b[want[i] - 1], i & 0xff);
    }
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        total += cap[i];
        arena_put(ar, p[i], cap[i]);
    }
    arena_stats s;
    arena_get_stats(ar, &s);
    assert_int_equal(s.live_bytes, 0);
    assert_int_equal(s.cached_bytes, total);
    /* Second round of the same sizes: every block comes from the cache. */
    for (int i = 0; i < N; i++)
        p[i] = arena_get(ar, want[i], &cap[i]);
    arena_get_stats(ar, &s);
    assert_int_equal(s.reused_total, N);
    assert_int_equal(s.mapped_total, N);
    for (int i = 0; i < N; i++)
        arena_put(ar, p[i], cap[i]);
    arena_free(ar);
    topo_close(t);
}

static void test_cache_limit(void **state)
{
    (void)state;
    sp_topo *t = open_topo();
    sp_arena *ar;
    assert_int_equal(arena_new(t, 0, 3 * 4096, NULL, &ar, NULL), 0);
    void *p[5];
    size_t cap[5];
    for (int i = 0; i < 5; i++)
        p[i] = arena_get(ar, 4096, &cap[i]);
    for (int i = 0; i < 5; i++)
        arena_put(ar, p[i], cap[i]);
    arena_stats s;
    arena_get_stats(ar, &s);
    assert_int_equal(s.cached_bytes, 3 * 4096);
    assert_int_equal(s.live_bytes, 0);
    /* A block bigger than the limit is never cached. */
    size_t c;
    void *big = arena_get(ar, 65536, &c);
    arena_put(ar, big, c);
    arena_get_stats(ar, &s);
    assert_int_equal(s.cached_bytes, 3 * 4096);
    arena_free(ar);
    topo_close(t);
}

typedef struct worker_arg {
    sp_arena *ar;
    uint64_t seed;
    int failures;
} worker_arg;

static void *worker(void *arg)
{
    worker_arg *w = arg;
    void *held[16] = {0};
    size_t cap[16] = {0};
    for (int it = 0; it < 20000; it++) {
        int k = (int)tu_rand_below(&w->seed, 16);
        if (held[k]) {
            if (*(uint64_t *)held[k] != (uint64_t)(uintptr_t)held[k]) w->failures++;
            arena_put(w->ar, held[k], cap[k]);
            held[k] = NULL;
        } else {
            held[k] = arena_get(w->ar, 1 + tu_rand_below(&w->seed, 40000), &cap[k]);
            if (!held[k]) {
                w->failures++;
                continue;
            }
            *(uint64_t *)held[k] = (uint64_t)(uintptr_t)held[k];
        }
    }
    for (int k = 0; k < 16; k++)
        if (held[k]) arena_put(w->ar, held[k], cap[k]);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    sp_topo *t = open_topo();
    sp_arena *ar;
    assert_int_equal(arena_new(t, 0, 0, NULL, &ar, NULL), 0);
    worker_arg a[2] = {{ar, 1, 0}, {ar, 2, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(a[0].failures, 0);
    assert_int_equal(a[1].failures, 0);
    arena_stats s;
    arena_get_stats(ar, &s);
    assert_int_equal(s.live_bytes, 0);
    assert_true(s.reused_total > 0);
    /* At most 32 blocks live at once: the cache bounds what was ever mapped. */
    assert_true(s.mapped_total <= 32 * 5);
    arena_free(ar);
    topo_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_same_class),
        cmocka_unit_test(test_many_sizes_aligned),
        cmocka_unit_test(test_cache_limit),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
