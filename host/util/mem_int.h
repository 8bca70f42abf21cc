/* mem_int.h — the allocator hook every engine allocation goes through (not column memory,
 * which comes from NUMA arenas). */
#ifndef SPATE_MEM_INT_H
#define SPATE_MEM_INT_H

#include "spate.h"
#include <stddef.h>

typedef struct sp_allocator {
    sp_alloc_fn fn; /* NULL: libc */
    void *ud;
} sp_allocator;

/** malloc/calloc/realloc/free through the hook. All return NULL on failure; mem_free(NULL)
 *  is a no-op. */
void *mem_alloc(const sp_allocator *a, size_t n);
void *mem_calloc(const sp_allocator *a, size_t n, size_t size);
void *mem_realloc(const sp_allocator *a, void *p, size_t n);
void mem_free(const sp_allocator *a, void *p);
char *mem_strdup(const sp_allocator *a, const char *s);

#endif
