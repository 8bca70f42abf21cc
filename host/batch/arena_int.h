/* arena_int.h — column memory: per-NUMA-node arenas of page-aligned blocks in power-of-two
 * size classes (from 4 KiB), taken with hwloc_alloc_membind through topo_alloc_mem and
 * recycled batch after batch: in steady state no block is mapped or freed per batch.
 * Thread-safe. */
#ifndef SPATE_ARENA_INT_H
#define SPATE_ARENA_INT_H

#include "exec/topo_int.h"

#include <stddef.h>

typedef struct sp_arena sp_arena;

/** An arena for NUMA node `node` of t. cache_limit: bytes of free blocks kept for reuse
 *  (0: unlimited); beyond it, released blocks are returned to the system. */
int arena_new(sp_topo *t, unsigned node, size_t cache_limit, const sp_allocator *a,
              sp_arena **out, sp_diag *d);
void arena_free(sp_arena *ar);

unsigned arena_node(const sp_arena *ar);

/** A block of at least `bytes` (>= 1), 4 KiB aligned; *cap receives its usable size.
 *  NULL when memory runs out. */
void *arena_get(sp_arena *ar, size_t bytes, size_t *cap);
/** Returns a block obtained from arena_get with its cap. */
void arena_put(sp_arena *ar, void *p, size_t cap);

typedef struct arena_stats {
    size_t live_bytes;    /* handed out and not returned */
    size_t cached_bytes;  /* free, kept for reuse */
    size_t mapped_total;  /* blocks ever obtained from the system */
    size_t reused_total;  /* arena_get calls served from the cache */
} arena_stats;
void arena_get_stats(sp_arena *ar, arena_stats *s);

#endif
