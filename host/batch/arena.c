/* arena.c — per-NUMA-node block cache for column memory.
 *
 * Blocks come in size classes ARENA_MIN << k. A free block is kept on its class's list,
 * linked through its own first bytes (the block is mapped memory we own, so storing the link
 * there costs nothing). Blocks are mapped and unmapped outside the mutex: only the lists and
 * the statistics are guarded. */
#include "batch/arena_int.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>

enum { ARENA_MIN_LOG = 12, ARENA_CLASSES = 48 };
#define ARENA_MIN ((size_t)1 << ARENA_MIN_LOG)

typedef struct arena_free_block {
    struct arena_free_block *next;
} arena_free_block;

struct sp_arena {
    sp_topo *topo;
    unsigned node;
    size_t cache_limit;
    const sp_allocator *alloc;
    pthread_mutex_t mu;
    arena_free_block *free[ARENA_CLASSES];
    arena_stats st;
};

int arena_new(sp_topo *t, unsigned node, size_t cache_limit, const sp_allocator *a, sp_arena **out,
              sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, t != NULL, SP_EINVAL, "arena_new: no topology");
    sp_arena *ar = mem_calloc(a, 1, sizeof *ar);
    if (!ar) return diag_set(d, SP_ENOMEM, "arena_new: out of memory");
    if (pthread_mutex_init(&ar->mu, NULL) != 0) {
        mem_free(a, ar);
        return diag_set(d, SP_ENOMEM, "arena_new: mutex init failed");
    }
    ar->topo = t;
    ar->node = node;
    ar->cache_limit = cache_limit;
    ar->alloc = a;
    *out = ar;
    return 0;
}

void arena_free(sp_arena *ar)
{
    if (!ar) return;
    /* Live blocks at this point are a leak by the caller; they are not ours to free. */
    assert(ar->st.live_bytes == 0);
    for (int k = 0; k < ARENA_CLASSES; k++) {
        size_t size = ARENA_MIN << k;
        for (arena_free_block *b = ar->free[k], *next; b; b = next) {
            next = b->next;
            topo_free_mem(ar->topo, b, size);
        }
    }
    pthread_mutex_destroy(&ar->mu);
    mem_free(ar->alloc, ar);
}

unsigned arena_node(const sp_arena *ar)
{
    return ar->node;
}

/* Smallest class holding `bytes`, or -1 when beyond the largest. */
static int arena_class(size_t bytes)
{
    if (bytes <= ARENA_MIN) return 0;
    int top = 63 - __builtin_clzll((unsigned long long)(bytes - 1)) + 1;
    int k = top - ARENA_MIN_LOG;
    return k < ARENA_CLASSES ? k : -1;
}

void *arena_get(sp_arena *ar, size_t bytes, size_t *cap)
{
    int k = arena_class(bytes ? bytes : 1);
    if (k < 0) return NULL;
    size_t size = ARENA_MIN << k;
    pthread_mutex_lock(&ar->mu);
    arena_free_block *b = ar->free[k];
    if (b) {
        ar->free[k] = b->next;
        ar->st.cached_bytes -= size;
        ar->st.live_bytes += size;
        ar->st.reused_total++;
        pthread_mutex_unlock(&ar->mu);
        *cap = size;
        return b;
    }
    pthread_mutex_unlock(&ar->mu);

    void *p = topo_alloc_mem(ar->topo, ar->node, size);
    if (!p) return NULL;
    assert(((uintptr_t)p & (ARENA_MIN - 1)) == 0);
    pthread_mutex_lock(&ar->mu);
    ar->st.live_bytes += size;
    ar->st.mapped_total++;
    pthread_mutex_unlock(&ar->mu);
    *cap = size;
    return p;
}

void arena_put(sp_arena *ar, void *p, size_t cap)
{
    if (!p) return;
    int k = arena_class(cap);
    assert(k >= 0 && (ARENA_MIN << k) == cap);
    pthread_mutex_lock(&ar->mu);
    assert(ar->st.live_bytes >= cap);
    ar->st.live_bytes -= cap;
    if (ar->cache_limit && ar->st.cached_bytes + cap > ar->cache_limit) {
        pthread_mutex_unlock(&ar->mu);
        topo_free_mem(ar->topo, p, cap);
        return;
    }
    arena_free_block *b = p;
    b->next = ar->free[k];
    ar->free[k] = b;
    ar->st.cached_bytes += cap;
    pthread_mutex_unlock(&ar->mu);
}

void arena_get_stats(sp_arena *ar, arena_stats *s)
{
    pthread_mutex_lock(&ar->mu);
    *s = ar->st;
    pthread_mutex_unlock(&ar->mu);
}
